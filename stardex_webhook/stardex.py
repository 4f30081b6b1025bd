"""The Stardex v1 API client: HTTP, the shared rate limiter, retries, the deadline, error shapes.

Why it is built this way:

* A webhook sender waits for our answer, so every call of one webhook shares one ``Deadline``:
  no sleep, limiter wait or socket read may run past it. When it would, we stop and raise
  ``RetryLater`` so the sender retries later instead of timing out on us.
* Stardex allows 60 requests a minute per key (a sliding window). All threads of the instance
  share one ``RateLimiter`` so we keep under it instead of collecting 429s, and a 429 (or
  ``X-RateLimit-Remaining: 0``) holds every thread back until Stardex says so.
* Stardex answers errors in three shapes (its envelope, a bare ``error`` string, Fastify's
  ``{message, error, statusCode}``); all of them become one ``StardexError(status, code, message)``.
* Messages may reach the webhook's answer and the log, so they never carry the API key or a value
  we sent (emails, phones, names): server messages are scrubbed before they are kept.

Only ``requests`` is imported besides the standard library, to keep cold starts short.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import re
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import quote

import requests

from . import __version__
from .deadline import DEFAULT_DEADLINE_SECONDS, Deadline  # noqa: F401  (re-exported)
from .errors import RetryLater

logger = logging.getLogger(__name__)

# What we tell the sender when Stardex gave no Retry-After of its own.
DEFAULT_RETRY_AFTER_SECONDS = 30
# Not worth starting a request with less time than this left: it could not finish.
MIN_REQUEST_SECONDS = 0.25
# A bogus X-RateLimit-Reset must not freeze the instance: a sliding window frees within one window.
_MAX_GOOD_CITIZEN_PAUSE = 60.0

_RETRYABLE_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_EMAIL_PATTERN = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+")
_PHONE_PATTERN = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}")
_MAX_MESSAGE_CHARS = 300


class RateLimiter:
    """A sliding-window limiter shared by every thread of the instance, mirroring Stardex's own
    (60 requests in any 60 seconds), plus a pause that a 429 or an exhausted quota sets for all.

    ``acquire`` never waits past the caller's deadline: it raises ``RetryLater`` at once instead,
    with the time until a slot frees as ``retry_after``.
    """

    def __init__(
        self,
        requests_per_minute: int = 60,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        window_seconds: float = 60.0,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self.requests_per_window = requests_per_minute
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._granted: collections.deque[float] = collections.deque()
        self._paused_until = float("-inf")

    def acquire(self, deadline: Deadline) -> None:
        """Take one request slot, waiting (outside the lock) while the window is full or paused."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_locked(now)
                if wait <= 0:
                    self._granted.append(now)
                    return
                if wait > deadline.remaining():
                    raise RetryLater(
                        "stardex_rate_limited",
                        "waiting for a Stardex rate-limit slot would pass the deadline",
                        retry_after=wait,
                    )
            self._sleep(wait)

    def _wait_locked(self, now: float) -> float:
        window_start = now - self.window_seconds
        while self._granted and self._granted[0] <= window_start:
            self._granted.popleft()
        if self._paused_until > now:
            return self._paused_until - now
        if len(self._granted) >= self.requests_per_window:
            return self._granted[0] + self.window_seconds - now
        return 0.0

    def pause_until(self, until: float) -> None:
        """Hold every thread back until ``until`` (this limiter's clock); an earlier time never
        shortens a pause already set."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def pause_for(self, seconds: float) -> None:
        """``pause_until`` ``seconds`` from now, so callers need not share this limiter's clock."""
        if seconds > 0:
            self.pause_until(self._clock() + seconds)


class StardexError(Exception):
    """A Stardex answer that retrying cannot fix (400, 403, 404, 409, 422..., or 401 after one key
    refresh). ``message`` is Stardex's, scrubbed of the key and of the values we sent."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"Stardex answered HTTP {status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


def parse_error(response: requests.Response) -> tuple[str, str]:
    """Code and message from any of Stardex's error shapes:
    ``{"success": false, "error": {"code", "message"}}``, ``{"error": "text"}``,
    Fastify's ``{"message", "error", "statusCode"}``, or a body that is not JSON at all."""
    fallback_code = f"HTTP_{response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return fallback_code, response.reason or "Stardex answered without a JSON error body"
    error = body.get("error")
    top_message = body.get("message") if isinstance(body.get("message"), str) else None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else fallback_code
        message = error.get("message") if isinstance(error.get("message"), str) else top_message
        return code, message or response.reason or code
    if isinstance(error, str) and ("statusCode" in body or top_message is not None):
        # Fastify: "error" is the status phrase ("Not Found"), "message" the detail.
        code = body["code"] if isinstance(body.get("code"), str) else _phrase_to_code(error) or fallback_code
        return code, top_message or error
    if isinstance(error, str):
        return fallback_code, error
    return fallback_code, top_message or response.reason or fallback_code


def _phrase_to_code(phrase: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", phrase).strip("_").upper()


def retry_after_seconds(response: requests.Response, wall_clock: Callable[[], float] = time.time) -> float | None:
    """How long Stardex asked us to wait: the ``Retry-After`` header (seconds or an HTTP date) or
    ``retry_after_seconds`` in the body (top level or inside ``error``); the longer when both."""
    hints = []
    header = response.headers.get("Retry-After")
    if header:
        hints.append(_parse_retry_after_header(header.strip(), wall_clock))
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        for holder in (body, error if isinstance(error, dict) else {}):
            hints.append(_non_negative_number(holder.get("retry_after_seconds")))
    known = [hint for hint in hints if hint is not None]
    return max(known) if known else None


def _parse_retry_after_header(value: str, wall_clock: Callable[[], float]) -> float | None:
    seconds = _non_negative_number(value)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime  # rare: keep it off the import path

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - wall_clock())


def _non_negative_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _string_leaves(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _string_leaves(item)


def scrub(message: str, secrets: Iterable[str] = (), sent_values: Iterable[str] = ()) -> str:
    """Remove secrets (anywhere), values we sent (whole words only: a sent "work" must not mangle
    "network") and anything shaped like an email address or phone number from a server message,
    and keep it short."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, "[redacted]")
    for value in sorted({v for v in sent_values if len(v.strip()) >= 3}, key=len, reverse=True):
        message = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "[redacted]", message)
    message = _EMAIL_PATTERN.sub("[email]", message)
    message = _PHONE_PATTERN.sub("[number]", message)
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return message


def settled_session(base_url: str) -> requests.Session:
    """A session that reads the environment once instead of on every call.

    With ``trust_env`` on (the default) requests looks for proxy variables, CA-bundle variables and
    ``~/.netrc`` on every request: it scans the environment twice and stats two files each time,
    a fifth of what a call costs on a fast network. None of them can change while an instance
    runs, and every call goes to the same host, so what requests would find is read here, once,
    and set on the session: the same proxies, the same CA bundle, the same ``.netrc`` credentials
    (none, unless one is written for the Stardex host). Only a redirect to another host would be
    treated differently (its proxy and ``.netrc`` entry are not looked up); Stardex's API does not
    redirect.
    """
    session = requests.Session()
    settings = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.auth = requests.utils.get_netrc_auth(base_url)
    session.trust_env = False
    return session


class StardexClient:
    """The four person calls the function makes, each returning the ``data`` of the success
    envelope. One instance (and so one connection pool) per process; safe to share across threads.

    ``api_key(refresh)`` returns the key; ``refresh=True`` must read it afresh (after a 401: the
    key may have been rotated since it was cached).
    """

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[bool], str | None],
        limiter: RateLimiter,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.limiter = limiter
        self.session = session or settled_session(self.base_url)
        self.session.headers.update({
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"stardex-webhook/{__version__}",
        })
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._wall_clock = wall_clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    # -- the API -----------------------------------------------------------------------------

    def search_persons(
        self,
        deadline: Deadline,
        *,
        email: str | None = None,
        linkedin_url: str | None = None,
        limit: int = 2,
    ) -> list[dict[str, Any]]:
        """Persons whose email (exact) or LinkedIn URL (exact) matches; ``limit=2`` is enough to
        tell one match from several."""
        if (email is None) == (linkedin_url is None):
            raise ValueError("search_persons needs exactly one of email or linkedin_url")
        body: dict[str, Any] = {"email": email} if email is not None else {"linkedin_url": linkedin_url}
        body["limit"] = limit
        data = self._call(deadline, "POST", "/persons/search", body)
        if not isinstance(data, list):
            raise _unexpected("POST /persons/search", "a list")
        return data

    def get_person(self, deadline: Deadline, person_id: str) -> dict[str, Any]:
        """The person as stored (contact lists under ``emails`` and ``phones``)."""
        data = self._call(deadline, "GET", _person_path(person_id), None)
        if not isinstance(data, dict):
            raise _unexpected("GET /persons/{id}", "an object")
        return data

    def create_person(self, deadline: Deadline, body: dict[str, Any]) -> dict[str, Any]:
        """Create a person (needs ``name`` and ``linkedin_url``; contact lists as plain strings)."""
        data = self._call(deadline, "POST", "/persons", body)
        if not isinstance(data, dict):
            raise _unexpected("POST /persons", "an object")
        return data

    def update_person(self, deadline: Deadline, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH a person. Stardex replaces ``emails``/``phone_numbers`` whole: send the union."""
        data = self._call(deadline, "PATCH", _person_path(person_id), body)
        if not isinstance(data, dict):
            raise _unexpected("PATCH /persons/{id}", "an object")
        return data

    # -- the machinery -----------------------------------------------------------------------

    def _call(self, deadline: Deadline, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One logical call: limiter, request, retries with backoff, 401 key refresh, deadline."""
        operation = f"{method} {_path_template(path)}"
        started = self._clock()
        key = self._key(refresh=False)
        keys_used = [key]
        refreshed = False
        failures = 0
        while True:
            self.limiter.acquire(deadline)
            remaining = deadline.remaining()
            if remaining < MIN_REQUEST_SECONDS:
                raise RetryLater("stardex_unavailable", f"no time left for Stardex ({operation})",
                                 retry_after=DEFAULT_RETRY_AFTER_SECONDS)
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    data=None if body is None else json.dumps(body).encode("utf-8"),
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=(min(self.connect_timeout, remaining), min(self.read_timeout, remaining)),
                )
            except _RETRYABLE_EXCEPTIONS as exc:
                failure, server_wait, rate_limited = type(exc).__name__, None, False
            else:
                self._note_rate_headers(response)
                status = response.status_code
                if 200 <= status < 300:
                    return self._unwrap(response, operation, keys_used, body)
                if status == 401 and not refreshed:
                    refreshed = True
                    key = self._key(refresh=True)
                    keys_used.append(key)
                    logger.info("stardex %s: 401, retrying once with a freshly read key", operation)
                    continue
                if status != 429 and status < 500:
                    raise self._error(response, keys_used, body)
                failure, rate_limited = f"HTTP {status}", status == 429
                server_wait = retry_after_seconds(response, self._wall_clock)
            failures += 1
            wait = server_wait if server_wait is not None else self._backoff(failures)
            if rate_limited:
                self.limiter.pause_for(wait)  # every thread, not just this call, must hold back
            retry_after = server_wait if server_wait is not None else DEFAULT_RETRY_AFTER_SECONDS
            if failures >= self.max_attempts:
                raise RetryLater(
                    "stardex_unavailable",
                    f"Stardex failed {failures} times ({operation}: {failure})",
                    retry_after=retry_after,
                )
            if wait + MIN_REQUEST_SECONDS > deadline.remaining():
                raise RetryLater(
                    "stardex_unavailable",
                    f"Stardex did not answer in time ({operation}: {failure})",
                    retry_after=retry_after,
                )
            logger.info("stardex %s: %s after %.2fs, retry %d in %.2fs",
                        operation, failure, self._clock() - started, failures, wait)
            if wait > 0:
                self._sleep(wait)

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(n-1)))."""
        return self._rng() * min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))

    def _key(self, refresh: bool) -> str:
        key = self._api_key(refresh)
        if not key:
            raise StardexError(401, "MISSING_API_KEY", "no Stardex API key is configured")
        return key

    def _note_rate_headers(self, response: requests.Response) -> None:
        """Good citizen: when Stardex says the quota is used up, wait for its reset everywhere."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = _non_negative_number(response.headers.get("X-RateLimit-Reset"))
        if remaining is None or reset is None or remaining.strip() != "0":
            return
        # Documented as Unix seconds; a small number can only be a delay in seconds.
        seconds = reset - self._wall_clock() if reset > 1e9 else reset
        self.limiter.pause_for(min(seconds, _MAX_GOOD_CITIZEN_PAUSE))

    def _unwrap(self, response: requests.Response, operation: str, keys: list[str], body: Any) -> Any:
        try:
            envelope = response.json()
        except ValueError:
            raise _unexpected(operation, "a JSON envelope") from None
        if not isinstance(envelope, dict) or "data" not in envelope:
            raise _unexpected(operation, "an envelope with data")
        if envelope.get("success") is False or (envelope.get("error") and "success" not in envelope):
            raise self._error(response, keys, body)
        return envelope["data"]

    def _error(self, response: requests.Response, keys: list[str], body: Any) -> StardexError:
        code, message = parse_error(response)
        sent = list(_string_leaves(body))
        return StardexError(response.status_code, scrub(code, keys, sent), scrub(message, keys, sent))


def _person_path(person_id: str) -> str:
    """``/persons/<id>`` with the id as one path segment: an id from a payload must not be able
    to reach another endpoint (``../jobs``)."""
    person_id = str(person_id)
    if person_id.strip() in ("", ".", ".."):
        raise StardexError(400, "INVALID_PERSON_ID", "the person id is empty or not a path segment")
    return "/persons/" + quote(person_id, safe="")


def _path_template(path: str) -> str:
    """The path as logged: ids replaced, so a log line carries the endpoint and not the data."""
    return "/persons/{id}" if path.startswith("/persons/") and path != "/persons/search" else path


def _unexpected(operation: str, expected: str) -> RetryLater:
    return RetryLater("stardex_unexpected_answer", f"Stardex answered {operation} without {expected}",
                      retry_after=DEFAULT_RETRY_AFTER_SECONDS)
