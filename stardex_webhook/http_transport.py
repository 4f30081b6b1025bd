"""Outbound HTTP: the one transport (``send_within``) and retry helper (``Retries``) of both API clients.

Why a watchdog: a socket timeout bounds each read, not the whole answer (a server dripping one byte
every half second never times out), and ``http.client`` reads the status line and headers in one
call nothing public can interrupt: ``deadline.WATCHDOG`` shuts the socket down at the deadline.
Public API only: our connections subclass urllib3's (``connect``, ``request``, ``getresponse``,
``sock``), its pools take them as ``ConnectionCls``, and requests' ``HTTPAdapter.init_poolmanager``
sets ``pool_classes_by_scheme`` per instance.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import quote

import requests
import urllib3

from .deadline import WATCHDOG, Deadline, Watch, Watchdog, cut
from .logs import JsonLog

# What a request can raise that is not our bug (RequestException is an OSError; UnicodeError: a key
# that cannot be encoded in a header).
TRANSPORT_ERRORS = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException, UnicodeError)
# No answer is read past this (a broken proxy's 50 MB page must not be held in memory per thread).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_ANSWER_CHUNK = 64 * 1024

DEFAULT_RETRY_AFTER_SECONDS = 30
# Not worth starting a request with less time than this left: it could not finish.
MIN_REQUEST_SECONDS = 0.25
# The longest wait honoured or passed on: a ``Retry-After: 86400`` must not hold anything a day.
MAX_WAIT_SECONDS = 60.0

T = TypeVar("T")


class AnswerTooLarge(requests.RequestException):
    """An answer over ``MAX_ANSWER_BYTES`` (declared or read): the rest is not read."""


@dataclass(frozen=True)
class Answer:
    """A whole answer: its status, its headers (case-insensitive) and its body as read."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    def json_or_none(self) -> Any:
        """The body as JSON (UTF-8, -16 or -32, as ``json.loads`` detects), or None when it is not
        (nested too deep for the parser, ``[[[…]]]`` 100,000 deep, included)."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # also UnicodeDecodeError
            return None


# -- the transport ---------------------------------------------------------------------------


class _WatchedConnection:
    """Hands its socket to this thread's watch (``Watchdog.current``) from connect (a TLS handshake
    can drip too) to the body's end; a cut never reaches a later call that took it from the pool."""

    sock: Any
    _watch: Watch | None = None
    _answering: Any = None  # the socket the answer comes on: http.client drops ``sock`` on "Connection: close"

    def connect(self) -> None:
        self._follow()
        super().connect()  # type: ignore[misc]
        self._cut_if_fired()

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._follow()
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        self._answering = self.sock
        self._cut_if_fired()
        response = super().getresponse()  # type: ignore[misc]
        self._cut_if_fired()  # the deadline passed as the headers came: no body read may start
        return response

    def _follow(self) -> None:
        watch = getattr(Watchdog.current, "watch", None)
        if watch is not self._watch:
            self._watch, self._answering = watch, None
            if watch is not None:
                watch.cuts.append(lambda: self._shut(watch))
        self._cut_if_fired()

    def _shut(self, watch: Watch) -> None:
        sock = self.sock or self._answering
        if self._watch is watch and sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def _cut_if_fired(self) -> None:
        watch = self._watch
        if watch is not None and watch.fired:
            cut(lambda: self._shut(watch))


class _WatchedHTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with watched pools (direct connections; a proxy's pools are not)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool,
        }


def watched_session() -> requests.Session:
    """A session whose direct connections the watchdog can cut at the deadline."""
    session = requests.Session()
    session.mount("http://", _WatchedAdapter())
    session.mount("https://", _WatchedAdapter())
    return session


def send_within(session: requests.Session, method: str, url: str, remaining: float, *,
                data: bytes | None = None, headers: dict[str, str] | None = None,
                connect_timeout: float = 3.05, read_timeout: float = 10.0) -> Answer:
    """One request, connect to last byte within ``remaining`` seconds; a 3xx comes back as it is
    (never followed). An answer not whole raises ``ReadTimeout`` (the deadline) or ``AnswerTooLarge``."""
    response = None
    with WATCHDOG.watch(remaining) as watch:
        try:
            response = session.request(
                method, url, data=data, headers=headers,
                timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
                allow_redirects=False, stream=True,
            )
            body = _read_bounded(response, MAX_ANSWER_BYTES)
        except TRANSPORT_ERRORS:
            if not watch.fired:
                raise
    if watch.fired:  # also when the cut looked like the end of a body of unknown length
        if response is not None:
            response.close()
        raise requests.ReadTimeout("the server did not finish answering before the deadline")
    return Answer(response.status_code, response.headers, body)


def _read_bounded(response: requests.Response, limit: int) -> bytes:
    """The body as requests decodes it; past ``limit`` bytes the connection is closed (memory stays
    bounded whatever is sent)."""
    declared = non_negative_number(response.headers.get("Content-Length"))
    if declared is not None and declared > limit:
        response.close()
        raise AnswerTooLarge(f"the answer declares {declared:.0f} bytes, over the {limit}-byte limit")
    chunks, size = [], 0
    for chunk in response.iter_content(_ANSWER_CHUNK):
        size += len(chunk)
        if size > limit:
            response.close()
            raise AnswerTooLarge(f"the answer passed the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


# -- the retry helper --------------------------------------------------------------------------


@dataclass(frozen=True)
class Failed:
    """An attempt that failed in a way a later one may not. ``what`` names it (a status or an exception's
    type, never server text); ``server_wait`` is the server's ``Retry-After``; ``maybe_applied``: the request
    may have been acted on; ``counted=False``: the next attempt starts at once, uncounted (a key read afresh)."""

    what: str
    server_wait: float | None = None
    rate_limited: bool = False
    maybe_applied: bool = True
    counted: bool = True


@dataclass(frozen=True)
class Retries:
    """One logical call's attempts: waits are the server's (up to ``MAX_WAIT_SECONDS``) or a full-jitter
    backoff; no attempt or wait passes the deadline."""

    max_attempts: int
    backoff_base: float
    backoff_max: float
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, failures: int) -> float:
        return self.rng() * min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))

    def run(self, deadline: Deadline, attempt: Callable[[float], T | Failed], *, label: str, log: JsonLog,
            out_of_time: Callable[[], Exception], give_up: Callable[[Failed, int, float], Exception],
            before: Callable[[], None] | None = None, on_failure: Callable[[Failed, float], None] | None = None) -> T:
        """``attempt(remaining)`` until it returns other than ``Failed``. A ``TRANSPORT_ERRORS`` it raises is a
        ``Failed`` (``AnswerTooLarge`` too: catch it in ``attempt`` so the same flood is not read again);
        anything else ends the call. ``before`` runs before each attempt (a limiter's slot); ``on_failure``
        may raise instead of a retry; ``give_up`` is raised when no attempt or no time for one is left,
        with the wait to pass on. Each failure has its line, the last too (the dashboard counts 429s by it)."""
        failures = 0
        while True:
            if before is not None:
                before()
            remaining = deadline.remaining()
            if remaining < MIN_REQUEST_SECONDS:
                raise out_of_time()
            try:
                outcome = attempt(remaining)
            except TRANSPORT_ERRORS as error:
                outcome = Failed(type(error).__name__, maybe_applied=not surely_unsent(error))
            if not isinstance(outcome, Failed):
                return outcome
            if not outcome.counted:
                continue
            failures += 1
            server_wait = None if outcome.server_wait is None else min(outcome.server_wait, MAX_WAIT_SECONDS)
            wait = server_wait if server_wait is not None else self.backoff(failures)
            if on_failure is not None:
                on_failure(outcome, wait)
            last = failures >= self.max_attempts or wait + MIN_REQUEST_SECONDS > deadline.remaining()
            then = "no retry left" if last else f"retry {failures} in {wait:.2f}s"
            log.write("INFO", f"{label}: {outcome.what}, {then}")
            if last:
                raise give_up(outcome, failures, server_wait or DEFAULT_RETRY_AFTER_SECONDS)
            if wait > 0:
                self.sleep(wait)


# -- reading answers -----------------------------------------------------------------------------


def retry_after_seconds(answer: Answer, wall_clock: Callable[[], float] = time.time) -> float | None:
    """The server's ``Retry-After`` (seconds or an HTTP date), else the body's ``retry_after_seconds``
    (top level or in ``error``, as Stardex sends it); None when absent or nonsense."""
    header = (answer.headers.get("Retry-After") or "").strip()
    seconds = non_negative_number(header)
    if seconds is None and header:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            when = parsedate_to_datetime(header)
            if when.tzinfo is not None:  # an HTTP date is always GMT
                seconds = max(0.0, when.timestamp() - wall_clock())
    if seconds is None:
        body = answer.json_or_none()
        for holder in (body, body.get("error") if isinstance(body, dict) else None):
            if isinstance(holder, dict) and seconds is None:
                seconds = non_negative_number(holder.get("retry_after_seconds"))
    return seconds


def non_negative_number(value: Any) -> float | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def surely_unsent(error: Exception) -> bool:
    """The request never left: the connection could not be made."""
    cause = error.args[0] if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(
        getattr(cause, "reason", None), urllib3.exceptions.NewConnectionError
    )


def url_segment(text: str) -> str | None:
    """``text`` as one URL path segment, ``/`` quoted too, so an id from a payload cannot reach
    another endpoint; None for text no URL can carry (a lone surrogate)."""
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        return None
