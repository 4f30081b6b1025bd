"""HTTP plumbing shared by the Stardex client and the senders' API client (follow-up reads).

* ``watched_session``: a requests session whose connections the watchdog can cut, so that no
  request outlives its deadline, not even one whose server drips its answer a byte at a time (a
  read timeout restarts with every byte).
* ``send_within``: one request, redirects never followed, from connect to last byte within the
  time left.
* ``retry_after_seconds``: a server's ``Retry-After`` (seconds or an HTTP date) made sane.
* ``MAX_ANSWER_BYTES``: no answer is read past it (a 50 MB page from a broken proxy must not be
  held in memory, once per thread); ``AnswerTooLarge`` says so.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import time
from typing import Any, Callable

import requests
import urllib3

from .deadline import WATCHDOG, Watchdog, cut

# Everything a request can raise that is not our bug: requests' own errors, the urllib3,
# http.client and socket errors that reach us unwrapped (RequestException is an OSError too), and
# a key that cannot be encoded in a header.
TRANSPORT_ERRORS = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException, UnicodeError)
# The largest answer read: Stardex's and the senders' answers are a few kilobytes (a page of 100
# activities stays well under a megabyte), so anything near this is not the API answering.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_ANSWER_CHUNK = 64 * 1024


class AnswerTooLarge(requests.RequestException):
    """An answer over ``MAX_ANSWER_BYTES`` (declared or read): the rest is not read."""


class _WatchedPool:
    """Tells the watchdog what the call on this thread reads from: the connection's socket while
    the status line and headers come, then the response (``HTTPResponse.shutdown``) for the body."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(Watchdog.current, "watch", None)
        if watch is None:
            return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]
        watch.cuts.append(lambda: conn.sock.shutdown(socket.SHUT_RDWR))
        response = super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]
        watch.cuts.append(response.shutdown)
        if watch.fired:  # the deadline passed as the headers came: no body read may start
            cut(response.shutdown)
        return response


_WATCHED_POOLS = {
    "http": type("WatchedHTTPConnectionPool", (_WatchedPool, urllib3.HTTPConnectionPool), {}),
    "https": type("WatchedHTTPSConnectionPool", (_WatchedPool, urllib3.HTTPSConnectionPool), {}),
}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with watched pools (direct connections; a proxy's pools are not)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS


def retry_after_seconds(response: requests.Response, wall_clock: Callable[[], float] = time.time) -> float | None:
    """How long Stardex asked us to wait: the ``Retry-After`` header (seconds or an HTTP date),
    else ``retry_after_seconds`` in the body (top level or inside ``error``). None when absent or
    nonsense (negative, not a number, not a date)."""
    header = (response.headers.get("Retry-After") or "").strip()
    seconds = non_negative_number(header)
    if seconds is None and header:
        from email.utils import parsedate_to_datetime  # rare: keep it off the import path

        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            when = parsedate_to_datetime(header)
            if when.tzinfo is not None:  # an HTTP date is always GMT
                seconds = max(0.0, when.timestamp() - wall_clock())
    if seconds is None:
        body = json_or_none(response)
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


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def surely_unsent(error: Exception) -> bool:
    """The request never left: the connection could not be made."""
    cause = error.args[0] if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(
        getattr(cause, "reason", None), urllib3.exceptions.NewConnectionError
    )


def watched_session() -> requests.Session:
    """A session whose direct connections the watchdog can cut at the deadline."""
    session = requests.Session()
    session.mount("http://", _WatchedAdapter())
    session.mount("https://", _WatchedAdapter())
    return session


def send_within(session: requests.Session, method: str, url: str, remaining: float, *,
                data: bytes | None = None, headers: dict[str, str] | None = None,
                connect_timeout: float = 3.05, read_timeout: float = 10.0) -> requests.Response:
    """One request, from connect to last byte within ``remaining`` seconds; never follows a redirect."""
    with WATCHDOG.watch(remaining) as watch:
        try:
            response = session.request(
                method, url, data=data, headers=headers,
                timeout=(min(connect_timeout, remaining), min(read_timeout, remaining)),
                allow_redirects=False, stream=True,
            )
            _read_bounded(response, MAX_ANSWER_BYTES)
        except TRANSPORT_ERRORS:
            if not watch.fired:
                raise
    if watch.fired:  # also when the cut looked like the end of a body of unknown length
        raise requests.ReadTimeout("the server did not finish answering before the deadline")
    return response


def _read_bounded(response: requests.Response, limit: int) -> None:
    """Read the body as requests does when not streaming (``Response.content``), but stop past
    ``limit`` bytes (decoded), closing the connection, so memory stays bounded whatever is sent."""
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
    response._content = b"".join(chunks)  # what Response.content would hold; json() reads it
