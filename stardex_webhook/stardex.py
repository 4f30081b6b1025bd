"""The Stardex v1 API client; what it does on each failure, and what that answers: docs/stardex-client.md.
Every call of one webhook shares its ``Deadline`` (the sender waits for our answer), and all threads
one ``RateLimiter`` (Stardex's 60 a minute are per key). Only Stardex's refusals (4xx) are
``StardexError``, which keeps Stardex's error code and nothing else, so no server text carries the
key or personal data into our answers; every other failure is ``RetryLater``. Redirects are never
followed: the key goes to Stardex's origin only. A create is not idempotent: a failure that may have
reached Stardex is ``OutcomeUnknown``, never retried, so the resolver searches before a second try.
"""

from __future__ import annotations

import collections
import json
import random
import re
import threading
import time
from typing import Any, Callable
from urllib.parse import urlencode

import requests

from . import __version__
from .deadline import Deadline
from .errors import RetryLater
from .http_transport import (
    DEFAULT_RETRY_AFTER_SECONDS,
    MAX_ANSWER_BYTES,
    MIN_REQUEST_SECONDS,
    Answer,
    AnswerTooLarge,
    Failed,
    Retries,
    non_negative_number,
    retry_after_seconds,
    send_within,
    url_segment,
    watched_session,
)
from .logs import JsonLog

# Stardex's error codes are upper-case words joined by "_" (``INVALID_API_KEY``); anything else, or
# anything the key in use contains (an echoed ``Authorization``), is not copied into our answer.
_ERROR_CODE = re.compile(r"[A-Z]{2,20}(?:_[A-Z]{2,20}){0,5}")
# A person's id in a path (``_person_path`` quotes any "/" in it); ``/persons/search`` is an endpoint.
_PERSON_ID = re.compile(r"(?<=^/persons/)(?!search$)[^/]+")


class RateLimiter:
    """Stardex's sliding window and a 429's pause, for all threads; a wait the deadline cannot fit is ``RetryLater``."""

    def __init__(self, requests_per_minute: int = 60, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, *, window_seconds: float = 60.0) -> None:
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
                if wait + MIN_REQUEST_SECONDS > deadline.remaining():  # no time left for the call after it
                    raise RetryLater("stardex_rate_limited",
                                     "waiting for a Stardex rate-limit slot would pass the deadline", retry_after=wait)
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

    def used(self) -> int:
        """Requests granted in the last window: the log line's ``stardex_calls_last_minute``."""
        with self._lock:
            self._wait_locked(self._clock())  # drops the grants older than the window
            return len(self._granted)

    def pause_for(self, seconds: float) -> None:
        """Hold every thread back, at most one window; a shorter pause never shortens one set."""
        if seconds > 0:
            with self._lock:
                until = self._clock() + min(seconds, self.window_seconds)
                self._paused_until = max(self._paused_until, until)


class StardexError(Exception):
    """A refusal retrying cannot fix (a 4xx, or 401 after one key refresh), with Stardex's error
    code when well-formed, else ``HTTP_<status>``."""

    def __init__(self, status_code: int, code: str) -> None:
        super().__init__(f"Stardex answered HTTP {status_code} {code}")
        self.status_code = status_code
        self.code = code


class OutcomeUnknown(RetryLater):
    """A create failed after it may have reached Stardex: whether it was applied is unknown."""


def _error_code(answer: Answer, key: str) -> str:
    body = answer.json_or_none()
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code) and code.lower() not in key.lower():
        return code
    return f"HTTP_{answer.status_code}"


# Fastify's own answer for a path it has no route for (Stardex's API runs on it):
# {"message": "Route GET:/persons/x not found", "error": "Not Found", "statusCode": 404}.
_FASTIFY_NO_ROUTE = re.compile(r"Route [A-Z]+:\S* not found")
# A wrong base stays wrong until an operator fixes it: the sender need not come back soon.
ROUTE_RETRY_AFTER_SECONDS = 300


def _route_missing(answer: Answer) -> bool:
    """A 404 about the route, not a record: an answer that is not JSON (another server, a proxy's
    page) or Fastify's "Route ... not found". Stardex's envelope (``NOT_FOUND``) or its "Person not
    found" speaks of a person, and stays a 404 for that person."""
    body = answer.json_or_none()
    if not isinstance(body, dict):
        return True
    message = body.get("message")
    return isinstance(message, str) and _FASTIFY_NO_ROUTE.fullmatch(message.strip()) is not None


class StardexClient:
    """The calls the function makes, each returning the success envelope's ``data``; one per process,
    shared across threads. ``api_key(refresh=True, ...)`` reads the key afresh (after a 401: it may
    have been rotated)."""

    def __init__(self, base_url: str, api_key: Callable[[bool, Deadline], str | None], limiter: RateLimiter, *,
                 session: requests.Session | None = None, connect_timeout: float = 3.05, read_timeout: float = 10.0,
                 max_attempts: int = 4, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, wall_clock: Callable[[], float] = time.time,
                 backoff_base: float = 0.5, backoff_max: float = 8.0, log: JsonLog | None = None) -> None:
        self.retries = Retries(max_attempts, backoff_base, backoff_max, sleep, rng)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.limiter = limiter
        self.session = session if session is not None else watched_session()
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json",
                                     "User-Agent": f"stardex-webhook/{__version__}"})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._wall_clock = wall_clock
        self._log = log if log is not None else JsonLog("INFO")

    # -- the API -----------------------------------------------------------------------------

    def search_persons(self, deadline: Deadline, *, email: str | None = None, linkedin_url: str | None = None,
                       limit: int = 2, include: list[str] | None = None) -> list[dict[str, Any]]:
        """Persons whose email or LinkedIn URL matches exactly; ``limit=2`` tells one from several."""
        if (email is None) == (linkedin_url is None):
            raise ValueError("search_persons needs exactly one of email or linkedin_url")
        body: dict[str, Any] = {"email": email} if email is not None else {"linkedin_url": linkedin_url}
        body["limit"] = limit
        if include:
            body["include"] = list(include)
        return self._call(deadline, "POST", "/persons/search", body, list)

    def get_person(self, deadline: Deadline, person_id: str) -> dict[str, Any]:
        """The person as stored (contact lists under ``emails`` and ``phones``). Another person's
        data under this id is never merged into a write: ``RetryLater``."""
        person = self._call(deadline, "GET", _person_path(person_id), None, dict)
        if "id" in person and str(person["id"]).lower() != str(person_id).lower():  # a UUID in capitals is the same
            raise _unexpected("GET /persons/{id}", "another person's data")
        return person

    def create_person(self, deadline: Deadline, body: dict[str, Any]) -> dict[str, Any]:
        """Needs ``name`` and ``linkedin_url``; not retried once it may have reached Stardex."""
        return self._call(deadline, "POST", "/persons", body, dict, idempotent=False)

    def update_person(self, deadline: Deadline, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH a person. Stardex replaces ``emails``/``phone_numbers`` whole: send the union."""
        return self._call(deadline, "PATCH", _person_path(person_id), body, dict)

    def list_activities(self, deadline: Deadline, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The first page of the person's activities."""
        path = f"{_person_path(person_id)}/activities?" + urlencode({"offset": 0, "limit": limit})
        return self._call(deadline, "GET", path, None, list)

    def create_activity(self, deadline: Deadline, body: dict[str, Any]) -> dict[str, Any]:
        """Not idempotent: not retried once it may have reached Stardex (the caller looks first)."""
        return self._call(deadline, "POST", "/person-activities", body, dict, idempotent=False)

    def update_stage(self, deadline: Deadline, body: dict[str, Any]) -> dict[str, Any]:
        """Retried like a read: setting a stage twice leaves it as set once."""
        return self._call(deadline, "POST", "/candidates/update-stage", body, dict)

    def person_custom_fields(self, deadline: Deadline) -> list[dict[str, Any]]:
        return self._call(deadline, "GET", "/custom-fields/persons", None, list)

    # -- the machinery -----------------------------------------------------------------------

    def _call(self, deadline: Deadline, method: str, path: str, body: dict[str, Any] | None,
              data_type: type, idempotent: bool = True) -> Any:
        """One logical call: limiter, request, retries with backoff, 401 key refresh, deadline."""
        operation = f"{method} {_path_template(path)}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        key = self._key(False, deadline)
        refreshed = False

        def attempt(remaining: float) -> Any:
            nonlocal key, refreshed
            try:
                answer = send_within(self.session, method, self.base_url + path, remaining, data=data,
                                     headers={"Authorization": f"Bearer {key}"},
                                     connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)
            except AnswerTooLarge:
                self._log.write("WARNING", f"stardex {operation}: an answer over {MAX_ANSWER_BYTES} bytes, not read",
                                reason="stardex_unexpected_answer")
                raise _unexpected(operation, f"an answer over {MAX_ANSWER_BYTES} bytes") from None
            self._note_rate_headers(answer)
            status = answer.status_code
            if 200 <= status < 300:
                envelope = answer.json_or_none()
                if isinstance(envelope, dict) and envelope.get("success", True) is True \
                        and isinstance(envelope.get("data"), data_type):
                    return envelope["data"]
                raise _unexpected(operation, f"HTTP {status} without a success envelope")
            if 300 <= status < 400:
                self._log.write("WARNING", f"stardex {operation}: HTTP {status}, a redirect, not followed",
                                reason="stardex_unexpected_answer")
                raise _unexpected(operation, f"HTTP {status} (a redirect, not followed)")
            if status == 404 and _route_missing(answer):
                self._log.write("WARNING", f"stardex {operation}: HTTP 404 for the route itself: check STARDEX_API_BASE",
                                reason="stardex_route_not_found")
                raise RetryLater("stardex_route_not_found",
                                 f"Stardex has no route {operation} under STARDEX_API_BASE: a setting to fix "
                                 "(the base ends in /v1), not a missing person", retry_after=ROUTE_RETRY_AFTER_SECONDS)
            if status == 401 and not refreshed:
                refreshed, key = True, self._key(True, deadline)
                self._log.write("INFO", f"stardex {operation}: 401, retrying once with a freshly read key")
                return Failed("HTTP 401", counted=False)
            if status not in (408, 429) and status < 500:  # a 408 (the request timed out) is retried like a 5xx
                raise StardexError(status, _error_code(answer, key))
            return Failed(f"HTTP {status}", retry_after_seconds(answer, self._wall_clock),
                          rate_limited=status == 429, maybe_applied=status != 429)

        def on_failure(failed: Failed, wait: float) -> None:
            if failed.maybe_applied and not idempotent:
                raise OutcomeUnknown(_reason(failed), f"Stardex may have received {operation} ({failed.what})")
            if failed.rate_limited:
                self.limiter.pause_for(wait)  # every thread, not just this call, must hold back

        return self.retries.run(
            deadline, attempt, label=f"stardex {operation}", log=self._log,
            before=lambda: self.limiter.acquire(deadline), on_failure=on_failure,
            out_of_time=lambda: RetryLater("stardex_unavailable", f"no time left for Stardex ({operation})",
                                           retry_after=DEFAULT_RETRY_AFTER_SECONDS),
            give_up=lambda failed, failures, retry_after: RetryLater(
                _reason(failed), f"Stardex failed {failures} times ({operation}: {failed.what})", retry_after=retry_after),
        )

    def _key(self, refresh: bool, deadline: Deadline) -> str:
        key = self._api_key(refresh, deadline)
        if not key:
            raise StardexError(401, "MISSING_API_KEY")
        return key

    def _note_rate_headers(self, answer: Answer) -> None:
        """Good citizen: when Stardex says the quota is used up, wait for its reset everywhere."""
        reset = non_negative_number(answer.headers.get("X-RateLimit-Reset"))
        if reset is not None and answer.headers.get("X-RateLimit-Remaining", "").strip() == "0":
            # Documented as Unix seconds; a small number can only be a delay in seconds.
            self.limiter.pause_for(reset - self._wall_clock() if reset > 1e9 else reset)


def _person_path(person_id: str) -> str:
    """The id as one path segment (``url_segment``): an id from a payload must not reach another
    endpoint (``../jobs``), and one no URL can carry is no id Stardex has."""
    person_id = str(person_id)
    segment = url_segment(person_id) if person_id.strip() not in ("", ".", "..") else None
    if segment is None:
        raise StardexError(400, "INVALID_PERSON_ID")
    return "/persons/" + segment


def _path_template(path: str) -> str:
    """The path as logged: ids replaced, so a log line carries the endpoint and not the data."""
    return _PERSON_ID.sub("{id}", path.split("?", 1)[0])


def _reason(failed: Failed) -> str:
    return "stardex_rate_limited" if failed.rate_limited else "stardex_unavailable"


def _unexpected(operation: str, what: str) -> RetryLater:
    return RetryLater("stardex_unexpected_answer", f"Stardex answered {operation} with {what}",
                      retry_after=DEFAULT_RETRY_AFTER_SECONDS)
