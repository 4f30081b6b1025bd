"""A loopback fake of the Stardex v1 persons API, for tests that run the real function over HTTP.

It follows the documented API (Stardex's published v1 reference), including its hazards, so that
tests catch the mistakes the real API would punish:

* success envelopes ``{"success": true, "data": ...}`` (lists with ``meta``); error envelope
  ``{"success": false, "error": {"code", "message"}}``; 404s (unknown person, unknown route) and
  500s in Fastify's shape ``{"message", "error", "statusCode"}``, as third-party code observed;
* ``Authorization: Bearer <key>`` checked (401 ``INVALID_API_KEY``);
* 60 requests a minute per key in a sliding window: 429 with ``Retry-After``, ``X-RateLimit-*``
  headers and ``retry_after_seconds``/``limit``/``reset_at`` in the error;
* PATCH replaces ``emails``/``phone_numbers`` whole (the documented hazard), and rejects unknown
  fields and malformed contact items with 400;
* reads answer contact lists as ``emails``/``phones`` of ``{contact_data_type, value}``; create
  takes plain string lists; GET does not return ``linkedin_url`` (only ``linkedin_public_id``);
  search answers person objects with the base fields and only the sections ``include`` asks for
  (``candidates``...); a PATCH with ``job_id`` makes the person a candidate on that job;
* jobs and stages: ``POST /v1/candidates/update-stage`` (the job by ``job_id`` or ``job_name``, the
  candidate by ``candidate_id``, ``candidate_email`` or ``candidate_name``, the stage by ``stage_id``
  or ``stage_name`` of the job's pipeline), answering ``{candidate_id, person_id, job_id,
  previous_stage_id, new_stage_id}``; the person's ``candidates[]`` then show the stage's name and
  id and ``current_pipeline_stage_date`` (the name ``GET /v1/candidates/{id}`` gives that time). A
  PATCH with the ``job_id`` of a job added with ``add_job`` puts the candidate at its first stage;
* person custom fields: ``GET /v1/custom-fields/persons`` (``[{id, name, description, data_type,
  job_id, list_id, tags}]``); a PATCH's ``custom_fields`` items (``attribute_id`` and ``value``,
  ``add_values``, ``remove_values`` or ``clear_all``) are checked against those definitions (an
  unknown attribute, an option a select field lacks, a date not ``YYYY-MM-DD`` or a number that is
  none: 400) and merged attribute by attribute; reads show ``custom_fields`` as ``[{attribute_id,
  name, data_type, value}]`` (a multi-select's value a list): search when ``include`` names them,
  GET always (Stardex's get page is cut off where its sections begin; the fake answers them as it
  answers ``candidates``);
* notes: ``POST /v1/person-activities`` (``activity_type`` and ``activity_content`` required, the
  person by ``person_id``, ``email`` or ``linkedin_url``) and ``GET /v1/persons/{id}/activities``
  (newest first, ``offset``/``limit`` 1-100, with ``meta``).

Switches for tests: ``add_person``, ``person``, ``activities``, ``add_job``, ``add_custom_field``, ``discard_writes`` (PATCHes are
checked and answered but not applied: the bench replays one event on one stored person), ``down``, ``fail_next``, ``delay_seconds``,
``rate_limit``, ``window_seconds``, ``api_key``, ``requests``, ``reset()``, and ``misbehave``: one of
``MISBEHAVIOURS``, the ways real servers and proxies go wrong (a redirect to ``redirect_to``, a
redirect loop, an answer dripped one byte every ``drip_seconds`` from its status line or after its
headers, an absurd ``Retry-After``, HTML or broken JSON with 200, a bad gzip body, a reset in the
middle of the answer; a 429 with no hint of when to retry, ``{"success": false}`` with 200, a
50 MB answer; ``huge_bytes_sent``). Standard library only.

As a command, for trying the function against it (seeded with ``SAMPLE_PEOPLE``, the persons the
shipped samples find)::

    python -m stardex_webhook.fake_stardex [--host 127.0.0.1] [--port 8090] [--api-key KEY]
                                           [--people FILE.json] [--misbehave MODE]

``--people`` takes a list of persons, or persons with custom-field definitions and jobs with their
stages (``seed``).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import json
import math
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

API_PREFIX = "/v1"
DEFAULT_API_KEY = "test-stardex-key"
# Redirects answer before the request is processed (as a moved endpoint would); the others mangle
# the answer of a request that was processed (as a slow or broken server or proxy would).
_REDIRECTS = {"redirect-302": 302, "redirect-303": 303, "redirect-307": 307, "redirect-loop": 301}
_ODD_RETRY_AFTER = {"retry-after-day": lambda: "86400", "retry-after-negative": lambda: "-30",
                    "retry-after-date": lambda: formatdate(time.time() + 86400, usegmt=True)}
# Faults of a server that answers, wrongly (tests/test_faults.py): a 429 that says nothing of when
# to come back, a 200 whose envelope says failure, and an answer of HUGE_ANSWER_BYTES (a runaway
# proxy), with its length declared or chunked; ``huge_bytes_sent`` counts what got out of it.
_FAULTS = ("429-bare", "success-false", "huge", "huge-chunked")
HUGE_ANSWER_BYTES = 50 * 1024 * 1024
MISBEHAVIOURS = (*_REDIRECTS, *_ODD_RETRY_AFTER, "drip-headers", "drip-body", "html", "bad-json",
                 "bad-gzip", "reset", *_FAULTS)
# What the command serves unless --people says otherwise: every shipped sample finds one of them
# (the form tools' and generic's samples name the first by id; greenhouse finds the second by
# email, workable the third, recruitee the fourth, teamtailor the fifth, ashby (without its API key)
# the sixth). Fixed ids, so a plan
# printed today reads the same tomorrow.
SAMPLE_PEOPLE = [
    {"id": "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42", "name": "Chidi Okafor", "emails": ["chidi.okafor@example.com"],
     "linkedin_url": "https://www.linkedin.com/in/chidi-okafor-example"},
    {"id": "3b8e1f52-7c4d-4a9e-b1f0-52d6c8a7e913", "name": "Marta Quintal",
     "emails": [{"contact_data_type": "personal", "value": "marta.quintal@example.org"}]},
    {"id": "a4d2c9e7-5b1f-4e83-9c6a-7f0b3d2e8a15", "name": "Ada Lovelace", "emails": ["ada@example.com"],
     "phones": ["+442079460958"], "linkedin_url": "https://www.linkedin.com/in/ada-lovelace-example",
     "current_job_title": "Analyst"},
    {"id": "c7f3a1d8-2e6b-4f95-8d0c-1a9e5b7c3f24", "name": "Pieter de Vries",
     "emails": [{"contact_data_type": "personal", "value": "pieter.devries@example.nl"}]},
    {"id": "e2b9d4f1-8a3c-4d67-a5e0-9c1f7b3d6a58", "name": "Lena Svensson",
     "linkedin_url": "https://www.linkedin.com/in/lena-svensson-example"},
    {"id": "9d3e6b2a-4f1c-4a8e-b7d5-2c0f8e1a6b39", "name": "Jonas Weber",
     "emails": [{"contact_data_type": "personal", "value": "jonas.weber@example.net"}]},
]

# PATCH /v1/persons/{id} body fields (docs' update-person page, newer version with custom_fields).
PATCH_STRING_FIELDS = frozenset(
    {
        "linkedin_url", "name", "first_name", "last_name", "current_job_title", "company_name",
        "linkedin_location", "linkedin_headline", "address", "work_email", "personal_email",
        "mobile_phone", "work_phone", "job_id",
    }
)
PATCH_FIELDS = PATCH_STRING_FIELDS | {"emails", "phone_numbers", "enrich_record", "custom_fields"}
# POST /v1/persons body fields (docs' create-person page).
CREATE_STRING_FIELDS = frozenset(
    {
        "name", "linkedin_url", "first_name", "last_name", "current_job_title", "linkedin_location",
        "company_name", "work_email", "work_phone", "personal_email", "mobile_phone", "notes",
        "job_id", "job_name", "client_name", "client_id", "external_source_id",
    }
)
CREATE_FIELDS = CREATE_STRING_FIELDS | {"emails", "phone_numbers", "enrich_record"}
# The subset of POST /v1/persons/search the fake implements; anything else is refused (400) so a
# test never passes by a filter the fake silently ignored.
SEARCH_FIELDS = frozenset({"email", "linkedin_url", "name", "limit", "offset", "include", "sort_by", "sort_order"})
# Convenience fields and the contact list + type they add to.
CONVENIENCE_CONTACTS = {
    "work_email": ("emails", "work"),
    "personal_email": ("emails", "personal"),
    "work_phone": ("phones", "work"),
    "mobile_phone": ("phones", "mobile"),
}
# Fields of a stored person that GET and search return (linkedin_url is stored but not returned).
BASE_FIELDS = (
    "id", "name", "first_name", "last_name", "linkedin_public_id", "current_job_title",
    "current_company_name", "current_company_id", "external_source_id", "linkedin_location",
    "linkedin_headline", "address", "emails", "phones",
)
# The sections GET returns and search only when its ``include`` names them.
SECTIONS = ("work_experience", "education_experience", "certifications", "candidates", "custom_fields")
PERSON_FIELDS = BASE_FIELDS + SECTIONS
# What search's ``include`` accepts (docs); sections the fake does not store come back empty.
INCLUDE_VALUES = frozenset({"work_experience", "education_experience", "certifications", "candidates",
                            "custom_fields", "activities", "compensation", "related_people", "offers"})
STAGE_FIELDS = frozenset({"job_id", "job_name", "candidate_id", "candidate_email", "candidate_name", "stage_id",
                          "stage_name"})
CUSTOM_FIELD_ITEM = frozenset({"attribute_id", "value", "add_values", "remove_values", "add_team_member_ids",
                               "remove_team_member_ids", "clear_all"})
ACTIVITY_FIELDS = frozenset({"person_id", "linkedin_url", "email", "full_name", "activity_type", "activity_content"})
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
_CODES = {400: "VALIDATION_ERROR", 401: "INVALID_API_KEY", 403: "FORBIDDEN", 409: "CONFLICT",
          422: "UNPROCESSABLE", 429: "RATE_LIMIT_EXCEEDED", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
          504: "GATEWAY_TIMEOUT"}


class RecordedRequest(NamedTuple):
    """One request as received: ``json`` is the parsed body (None without one; the raw text when
    it is not JSON), ``headers`` a plain dict with the names as sent."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]


class _Answer(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _envelope_error(status: int, message: str, code: str | None = None, **extra: Any) -> _Answer:
    return _Answer(status, {"success": False, "error": {"code": code or _CODES.get(status, f"HTTP_{status}"),
                                                        "message": message, **extra}})


def _fastify_error(status: int, message: str) -> _Answer:
    return _Answer(status, {"message": message, "error": _REASONS.get(status, "Error"), "statusCode": status})


def _invalid(message: str) -> _Answer:
    return _envelope_error(400, message, "VALIDATION_ERROR")


def _linkedin_public_id(url: str) -> str | None:
    parts = [part for part in urlsplit(url).path.split("/") if part]
    return parts[1] if len(parts) >= 2 and parts[0] == "in" else None


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def _is_date(value: str) -> bool:
    try:
        time.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class LoopbackServer:
    """A ``ThreadingHTTPServer`` served from a daemon thread, as a context manager: the lifecycle
    this fake and the tests' fake Secret Manager share. Subclasses define ``start`` and ``stop``."""

    _server: ThreadingHTTPServer | None = None

    def _start_serving(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = server = ThreadingHTTPServer(address, handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.02,), name=type(self).__name__, daemon=True).start()

    def _stop_serving(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # returns once serve_forever has stopped
            server.server_close()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class FakeStardex(LoopbackServer):
    """The fake server. Use as a context manager; ``base_url`` is ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, rate_limit: int = 60, window_seconds: float = 60.0,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.api_key = api_key
        self.rate_limit = rate_limit
        self.window_seconds = window_seconds
        self.clock = clock  # the rate limit's clock (a test may move it by hand)
        self.address = (host, port)
        self.down = False
        self.delay_seconds = 0.0
        self.misbehave: str | None = None
        self.redirect_to = "http://127.0.0.1:9"  # another origin (the discard port)
        self.drip_seconds = 2.0
        self.requests: list[RecordedRequest] = []
        self.discard_writes = False
        self.huge_bytes_sent = 0
        # X-RateLimit-Reset's step: whole Unix seconds, as documented; a run that scales the window
        # down scales it with it, or the rounding would weigh more than it does against 60 s.
        self.reset_step_seconds = 1.0
        self._persons: dict[str, dict[str, Any]] = {}
        self._activities: dict[str, list[dict[str, Any]]] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._custom_fields: list[dict[str, Any]] = []
        self._failures: collections.deque[tuple[int, float | None]] = collections.deque()
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "FakeStardex":
        self._stopping.clear()
        self._start_serving(self.address, self._handler_class())
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping for delay_seconds
        self._stop_serving()

    @property
    def base_url(self) -> str:
        return self.origin + API_PREFIX

    # -- test switches -----------------------------------------------------------------------

    def add_person(self, **fields: Any) -> str:
        """Store a person directly (no request, no rate limit) and return its id. Takes the read
        shape (``emails``/``phones`` of dicts) or plain strings, ``phone_numbers`` as an alias of
        ``phones``, ``linkedin_url``, ``company_name`` as an alias of ``current_company_name``."""
        fields = dict(fields)
        person_id = str(fields.pop("id", None) or uuid.uuid4())
        name = fields.pop("name", None) or " ".join(
            part for part in (fields.get("first_name"), fields.get("last_name")) if part
        )
        person = self._blank_person(person_id, name)
        if "company_name" in fields:
            fields["current_company_name"] = fields.pop("company_name")
        if "phone_numbers" in fields:
            fields["phones"] = fields.pop("phone_numbers")
        for list_key, default_type in (("emails", "work"), ("phones", "mobile")):
            items = fields.pop(list_key, [])
            person[list_key] = [
                {"contact_data_type": default_type, "value": item} if isinstance(item, str) else dict(item)
                for item in items
            ]
        if fields.get("linkedin_url"):
            person["linkedin_public_id"] = _linkedin_public_id(fields["linkedin_url"])
        person.update(fields)
        with self._lock:
            self._persons[person_id] = person
        return person_id

    def person(self, person_id: str) -> dict[str, Any]:
        """The stored person (a copy), including ``linkedin_url``, which GET does not return."""
        with self._lock:
            return copy.deepcopy(self._persons[person_id])

    def activities(self, person_id: str) -> list[dict[str, Any]]:
        """The person's activities (copies), oldest first."""
        with self._lock:
            return copy.deepcopy(self._activities.get(person_id, []))

    def add_job(self, name: str, stages: tuple[str, ...] = ("Sourced", "Screen", "Interview", "Offer", "Hired"),
                id: str | None = None) -> str:
        """A job with a pipeline of ``stages`` (names; each gets an id); returns the job id."""
        job_id = id or str(uuid.uuid4())
        with self._lock:
            self._jobs[job_id] = {"id": job_id, "name": name,
                                  "pipeline_stages": [{"id": str(uuid.uuid4()), "name": stage} for stage in stages]}
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        """The stored job (a copy), with its ``pipeline_stages``."""
        with self._lock:
            return copy.deepcopy(self._jobs[job_id])

    def add_custom_field(self, name: str, data_type: str, options: tuple[str, ...] = (), id: str | None = None,
                         job_id: str | None = None) -> str:
        """A person custom field definition (``options``: a select field's tag names); its id."""
        field_id = id or str(uuid.uuid4())
        with self._lock:
            self._custom_fields.append({
                "id": field_id, "name": name, "description": None, "data_type": data_type, "job_id": job_id,
                "list_id": None, "tags": [{"id": str(uuid.uuid4()), "name": option, "color": None, "description": None}
                                          for option in options]})
        return field_id

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (before auth and rate limiting);
        ``retry_after`` adds a ``Retry-After`` header (and ``retry_after_seconds`` for a 429)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    def reset(self) -> None:
        """Forget persons, requests, pending failures and rate-limit counts; restore switches."""
        with self._lock:
            self._persons.clear()
            self._activities.clear()
            self._jobs.clear()
            self._custom_fields.clear()
            self._failures.clear()
            self._hits.clear()
            self.requests.clear()
        self.down = False
        self.delay_seconds = 0.0
        self.misbehave = None
        self.discard_writes = False
        self.huge_bytes_sent = 0

    # -- request handling --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "FakeStardex/1"
            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = lambda self: fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        path, query = parts.path, parse_qs(parts.query)
        body: Any = None
        body_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, body_error = raw.decode("utf-8", "replace"), True
        with self._lock:
            self.requests.append(RecordedRequest(handler.command, path, body, dict(handler.headers.items())))
        if self.delay_seconds > 0 and self._stopping.wait(self.delay_seconds):
            return
        rate_headers: dict[str, str] = {}
        try:
            self._refuse_if_failing(path)
            self._check_key(handler.headers.get("Authorization", ""))
            rate_headers = self._count_request(handler.headers["Authorization"])
            if body_error:
                raise _invalid("Body is not valid JSON")
            status, answer = self._route(handler.command, path, body, query)
        except _Answer as answer_error:
            status, answer = answer_error.status, answer_error.body
            rate_headers = {**rate_headers, **answer_error.headers}
        self._send(handler, status, answer, rate_headers)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]) -> None:
        if self.misbehave in ("success-false", "huge", "huge-chunked"):
            return self._send_fault(handler, status, body, headers)
        payload, mode = json.dumps(body).encode("utf-8"), self.misbehave
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        if mode == "html":
            headers["Content-Type"], payload = "text/html", b"<html><body>Down for maintenance</body></html>"
        elif mode == "bad-json":
            payload = payload[:-3]
        elif mode == "bad-gzip":
            headers["Content-Encoding"], payload = "gzip", b"this is not gzip at all"
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Length: {len(payload)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "Connection: close\r\n\r\n"
        try:
            if mode == "reset":  # half the answer, then a TCP reset
                handler.wfile.write(head.encode() + payload[: len(payload) // 2])
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                handler.connection.close()
            elif mode in ("drip-headers", "drip-body"):
                answer = head.encode() + payload
                start = 0 if mode == "drip-headers" else len(head)
                handler.wfile.write(answer[:start])
                for index in range(start, len(answer)):
                    if self._stopping.wait(self.drip_seconds):
                        return
                    handler.wfile.write(answer[index:index + 1])
            else:
                handler.wfile.write(head.encode() + payload)
        except OSError:
            pass  # the client gave up (a deadline test): nothing to answer

    def _send_fault(self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]) -> None:
        """``success-false``: 200 with ``{"success": false}``; ``huge``/``huge-chunked``: the real
        envelope padded to HUGE_ANSWER_BYTES, written a megabyte at a time until the client hangs up."""
        if self.misbehave == "success-false":
            status, body = 200, {"success": False}
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items() if name != "Content-Type")
        if self.misbehave == "success-false":
            payload = json.dumps(body).encode()
            with contextlib.suppress(OSError):
                handler.wfile.write(f"{head}Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
            return
        envelope = json.dumps(body).encode()
        opening, closing = envelope[:-1] + b', "padding": "', b'"}'
        pad = HUGE_ANSWER_BYTES - len(opening) - len(closing)
        chunked = self.misbehave == "huge-chunked"
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE_ANSWER_BYTES}"
        pieces = [opening, *([b"x" * (1 << 20)] * (pad >> 20)), b"x" * (pad % (1 << 20)), closing]
        try:
            handler.wfile.write(f"{head}{framing}\r\nConnection: close\r\n\r\n".encode())
            for piece in pieces:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.huge_bytes_sent += len(piece)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading: what it refused is what huge_bytes_sent did not count

    def _refuse_if_failing(self, path: str) -> None:
        if self.down:
            raise _envelope_error(503, "Service temporarily unavailable")
        if self.misbehave == "429-bare":  # no Retry-After, no retry_after_seconds, no X-RateLimit-*
            raise _envelope_error(429, "Rate limit exceeded", "RATE_LIMIT_EXCEEDED")
        if self.misbehave in _REDIRECTS:
            origin = self.base_url[: -len(API_PREFIX)] if self.misbehave == "redirect-loop" else self.redirect_to
            raise _Answer(_REDIRECTS[self.misbehave], {"message": "Moved"}, {"Location": origin + path})
        if self.misbehave in _ODD_RETRY_AFTER:
            answer = _envelope_error(429, "Rate limit exceeded", "RATE_LIMIT_EXCEEDED")
            answer.headers["Retry-After"] = _ODD_RETRY_AFTER[self.misbehave]()
            raise answer
        with self._lock:
            injected = self._failures.popleft() if self._failures else None
        if injected is None:
            return
        status, retry_after = injected
        headers = {"Retry-After": str(int(math.ceil(retry_after)))} if retry_after is not None else {}
        if status == 429:
            wait = int(math.ceil(retry_after if retry_after is not None else self.window_seconds))
            answer = self._rate_limited(wait)
        elif status in (404, 500):
            answer = _fastify_error(status, "Injected failure")
        else:
            answer = _envelope_error(status, "Injected failure")
        answer.headers.update(headers)
        raise answer

    def _check_key(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            raise _envelope_error(401, "The provided API key is invalid or expired", "INVALID_API_KEY")

    def _rate_limited(self, wait: int) -> _Answer:
        reset_at = int(time.time()) + wait
        answer = _envelope_error(
            429, "Rate limit exceeded", "RATE_LIMIT_EXCEEDED",
            retry_after_seconds=wait, limit=self.rate_limit, reset_at=reset_at,
        )
        answer.headers.update({"Retry-After": str(wait), "X-RateLimit-Limit": str(self.rate_limit),
                               "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at)})
        return answer

    def _count_request(self, key: str) -> dict[str, str]:
        """Sliding window per key; refused requests do not count. Returns the X-RateLimit headers."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, collections.deque())
            while hits and hits[0] <= now - self.window_seconds:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                wait = max(1, int(math.ceil(hits[0] + self.window_seconds - now)))
                raise self._rate_limited(wait)
            hits.append(now)
            remaining = self.rate_limit - len(hits)
            reset_in = hits[0] + self.window_seconds - now
        step = self.reset_step_seconds
        reset = math.ceil((time.time() + reset_in) / step) * step
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(reset)) if step == 1 else f"{reset:.3f}"}

    def _route(self, method: str, path: str, body: Any, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == f"{API_PREFIX}/persons/search" and method == "POST":
            return self._search(body)
        if path == f"{API_PREFIX}/persons" and method == "POST":
            return self._create(body)
        if path == f"{API_PREFIX}/person-activities" and method == "POST":
            return self._create_activity(body)
        if path == f"{API_PREFIX}/candidates/update-stage" and method == "POST":
            return self._update_stage(body)
        if path == f"{API_PREFIX}/custom-fields/persons" and method == "GET":
            with self._lock:
                fields = copy.deepcopy(self._custom_fields)
            return 200, {"success": True, "data": fields}
        prefix = f"{API_PREFIX}/persons/"
        rest = path[len(prefix):] if path.startswith(prefix) else ""
        if rest and "/" not in rest:
            person_id = unquote(rest)
            if method == "GET":
                return self._get(person_id)
            if method == "PATCH":
                return self._patch(person_id, body)
        if rest.endswith("/activities") and rest.count("/") == 1 and method == "GET":
            return self._list_activities(unquote(rest[: -len("/activities")]), query)
        raise _fastify_error(404, f"Route {method}:{path} not found")

    # -- endpoints ---------------------------------------------------------------------------

    def _blank_person(self, person_id: str, name: str) -> dict[str, Any]:
        first, last = _split_name(name)
        return {
            "id": person_id, "name": name, "first_name": first, "last_name": last, "linkedin_url": None,
            "linkedin_public_id": None, "current_job_title": None, "current_company_name": None,
            "current_company_id": None, "external_source_id": None, "emails": [], "phones": [],
            "work_experience": [], "education_experience": [], "certifications": [], "candidates": [],
            "custom_fields": [],
        }

    def _public(self, person: dict[str, Any], fields: tuple[str, ...] = PERSON_FIELDS) -> dict[str, Any]:
        return copy.deepcopy({key: person.get(key, []) if key in INCLUDE_VALUES else person[key]
                              for key in fields if key in person or key in INCLUDE_VALUES})

    def _stored(self, person_id: str) -> dict[str, Any]:
        person = self._persons.get(person_id)
        if person is None:
            raise _fastify_error(404, "Person not found")
        return person

    def _get(self, person_id: str) -> tuple[int, Any]:
        with self._lock:
            return 200, {"success": True, "data": self._public(self._stored(person_id))}

    def _search(self, body: Any) -> tuple[int, Any]:
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise _invalid("body must be a JSON object")
        unknown = sorted(set(body) - SEARCH_FIELDS)
        if unknown:
            raise _invalid(f"unsupported search fields: {', '.join(unknown)}")
        limit, offset = body.get("limit", 100), body.get("offset", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise _invalid("limit must be an integer from 1 to 100")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _invalid("offset must be a non-negative integer")
        for key in ("email", "linkedin_url", "name"):
            if key in body and not isinstance(body[key], str):
                raise _invalid(f"{key} must be a string")
        include = body.get("include", [])
        if not isinstance(include, list) or not all(isinstance(item, str) and item in INCLUDE_VALUES for item in include):
            raise _invalid(f"include must be a list of: {', '.join(sorted(INCLUDE_VALUES))}")
        fields = BASE_FIELDS + tuple(dict.fromkeys(include))
        with self._lock:
            matches = [person for person in self._persons.values() if self._matches(person, body)]
            page = [self._public(person, fields) for person in matches[offset:offset + limit]]
        return 200, {"success": True, "data": page, "meta": {"total": len(matches), "offset": offset, "limit": limit}}

    @staticmethod
    def _matches(person: dict[str, Any], query: dict[str, Any]) -> bool:
        if "email" in query:
            wanted = query["email"].strip().casefold()
            if not any((item.get("value") or "").strip().casefold() == wanted for item in person["emails"]):
                return False
        if "linkedin_url" in query and person.get("linkedin_url") != query["linkedin_url"]:
            return False
        if "name" in query and query["name"].casefold() not in (person.get("name") or "").casefold():
            return False
        return True

    def _create(self, body: Any) -> tuple[int, Any]:
        self._check_body(body, CREATE_FIELDS, CREATE_STRING_FIELDS)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise _invalid("name is required")
        if not isinstance(body.get("linkedin_url"), str) or not _is_http_url(body["linkedin_url"]):
            raise _invalid("linkedin_url is required and must be a URL")
        for key in ("emails", "phone_numbers"):
            items = body.get(key, [])
            if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
                raise _invalid(f"{key} must be a list of non-empty strings")
        with self._lock:
            for person in self._persons.values():  # "used for deduplication"
                if person.get("linkedin_url") == body["linkedin_url"]:
                    return 200, {"success": True, "data": self._created_view(person)}
            person = self._blank_person(str(uuid.uuid4()), body["name"].strip())
            for key in ("first_name", "last_name", "current_job_title", "linkedin_location", "external_source_id"):
                if key in body:
                    person[key] = body[key]
            person["linkedin_url"] = body["linkedin_url"]
            person["linkedin_public_id"] = _linkedin_public_id(body["linkedin_url"])
            if "company_name" in body:
                person["current_company_name"] = body["company_name"]
            person["emails"] = [{"contact_data_type": "work", "value": v} for v in body.get("emails", [])]
            person["phones"] = [{"contact_data_type": "mobile", "value": v} for v in body.get("phone_numbers", [])]
            self._add_convenience_contacts(person, body)
            self._persons[person["id"]] = person
            return 201, {"success": True, "data": self._created_view(person)}

    @staticmethod
    def _created_view(person: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({
            "id": person["id"], "name": person["name"], "linkedin_public_id": person["linkedin_public_id"],
            "current_job_title": person.get("current_job_title"), "company_name": person.get("current_company_name"),
            "linkedin_location": person.get("linkedin_location"), "emails": person["emails"],
            "phones": person["phones"], "candidate_id": None, "client_contact_id": None,
            "external_source_id": person.get("external_source_id"),
        })

    def _patch(self, person_id: str, body: Any) -> tuple[int, Any]:
        self._check_body(body, PATCH_FIELDS, PATCH_STRING_FIELDS)
        for key in ("emails", "phone_numbers"):
            if key in body:
                self._check_contact_items(key, body[key])
        if "enrich_record" in body and not isinstance(body["enrich_record"], bool):
            raise _invalid("enrich_record must be a boolean")
        custom_fields = body.get("custom_fields", [])
        if not isinstance(custom_fields, list) or not all(
            isinstance(item, dict) and isinstance(item.get("attribute_id"), str) for item in custom_fields
        ):
            raise _invalid("custom_fields must be a list of objects with attribute_id")
        with self._lock:
            definitions = {field["id"]: copy.deepcopy(field) for field in self._custom_fields}
        for index, item in enumerate(custom_fields):
            self._check_custom_field(index, item, definitions)
        if "linkedin_url" in body and not _is_http_url(body["linkedin_url"]):
            raise _invalid("linkedin_url must be a URL")
        with self._lock:
            person = self._stored(person_id)
            if self.discard_writes:
                return 200, {"success": True, "data": {"message": "Person updated successfully"}}
            # The documented hazard: a sent list replaces the stored one entirely.
            if "emails" in body:
                person["emails"] = [dict(item) for item in body["emails"]]
            if "phone_numbers" in body:
                person["phones"] = [dict(item) for item in body["phone_numbers"]]
            for key in ("name", "first_name", "last_name", "current_job_title", "linkedin_location",
                        "linkedin_headline", "address", "linkedin_url"):
                if key in body:
                    person[key] = copy.deepcopy(body[key])
            for item in custom_fields:
                self._write_custom_field(person, item, definitions)
            if "job_id" in body:
                self._add_candidate(person, body["job_id"], self._jobs.get(body["job_id"]))
            if "company_name" in body:
                person["current_company_name"] = body["company_name"]
            if "linkedin_url" in body:
                person["linkedin_public_id"] = _linkedin_public_id(body["linkedin_url"])
            self._add_convenience_contacts(person, body)
        return 200, {"success": True, "data": {"message": "Person updated successfully"}}

    @staticmethod
    def _add_candidate(person: dict[str, Any], job_id: str, job: dict[str, Any] | None = None) -> None:
        """The docs' ``job_id`` ("Job ID of the person"), read as: the person becomes a candidate
        on that job, once, at its first stage ("Sourced" for a job the fake was not given)."""
        if not any(candidate.get("job_id") == job_id for candidate in person["candidates"]):
            first = job["pipeline_stages"][0] if job and job["pipeline_stages"] else {"id": None, "name": "Sourced"}
            person["candidates"].append({
                "candidate_id": str(uuid.uuid4()), "job_name": job["name"] if job else None, "job_id": job_id,
                "job_client_company_name": None, "current_pipeline_stage_name": first["name"],
                "current_pipeline_stage_id": first["id"], "is_archived": False, "created_at": _now_iso(),
                "current_pipeline_stage_date": _now_iso(),
            })

    def _update_stage(self, body: Any) -> tuple[int, Any]:
        self._check_body(body, STAGE_FIELDS, STAGE_FIELDS)
        for group in (("job_id", "job_name"), ("candidate_id", "candidate_email", "candidate_name"),
                      ("stage_id", "stage_name")):
            if not any(body.get(key, "").strip() for key in group):
                raise _invalid(f"one of {', '.join(group)} is required")
        with self._lock:
            job = self._jobs.get(body.get("job_id", "")) or next(
                (job for job in self._jobs.values() if "job_id" not in body and job["name"] == body.get("job_name")), None)
            if job is None:
                raise _fastify_error(404, "Job not found")
            found = []
            for person in self._persons.values():
                candidate = next((item for item in person["candidates"] if item.get("job_id") == job["id"]), None)
                if candidate is None:
                    continue
                if "candidate_id" in body:
                    matches = candidate["candidate_id"] == body["candidate_id"]
                elif "candidate_email" in body:
                    matches = self._matches(person, {"email": body["candidate_email"]})
                else:
                    matches = (person.get("name") or "").casefold() == body["candidate_name"].strip().casefold()
                if matches:
                    found.append((person, candidate))
            if not found:
                raise _fastify_error(404, "Candidate not found")
            if len(found) > 1:
                raise _invalid("several candidates of the job match")
            person, candidate = found[0]
            if "stage_id" in body:
                stage = next((item for item in job["pipeline_stages"] if item["id"] == body["stage_id"]), None)
            else:
                wanted = body["stage_name"].strip().casefold()
                stage = next((item for item in job["pipeline_stages"] if item["name"].casefold() == wanted), None)
            if stage is None:
                raise _invalid("the stage is not in the job's pipeline")
            previous = candidate.get("current_pipeline_stage_id")
            if previous != stage["id"]:
                candidate.update(current_pipeline_stage_id=stage["id"], current_pipeline_stage_name=stage["name"],
                                 current_pipeline_stage_date=_now_iso())
            return 200, {"success": True, "data": {
                "candidate_id": candidate["candidate_id"], "person_id": person["id"], "job_id": job["id"],
                "previous_stage_id": previous, "new_stage_id": stage["id"]}}

    @staticmethod
    def _check_custom_field(index: int, item: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> None:
        where = f"custom_fields[{index}]"
        if set(item) - CUSTOM_FIELD_ITEM:
            raise _invalid(f"{where}: unknown keys")
        definition = definitions.get(item["attribute_id"])
        if definition is None:
            raise _invalid(f"{where}: no person custom field has that attribute_id")
        kind = definition["data_type"]
        options = {tag["name"] for tag in definition["tags"]}
        if "value" in item:
            value = item["value"]
            if kind == "multi-select":
                raise _invalid(f"{where}: a multi-select takes add_values / remove_values")
            if kind == "single-select" and value not in options:
                raise _invalid(f"{where}: not an option of the field")
            if kind == "date" and not (isinstance(value, str) and len(value) == 10 and _is_date(value)):
                raise _invalid(f"{where}: dates are YYYY-MM-DD")
            if kind in ("number", "integer") and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise _invalid(f"{where}: not a number")
            if kind not in ("number", "integer") and not isinstance(value, str):
                raise _invalid(f"{where}: not text")
        for key in ("add_values", "remove_values"):
            if key in item:
                values = item[key]
                if kind != "multi-select" or not isinstance(values, list) or not all(value in options for value in values):
                    raise _invalid(f"{where}: {key} must be options of a multi-select field")

    @staticmethod
    def _write_custom_field(person: dict[str, Any], item: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> None:
        definition = definitions[item["attribute_id"]]
        stored = person.setdefault("custom_fields", [])
        entry = next((entry for entry in stored if entry["attribute_id"] == item["attribute_id"]), None)
        if entry is None:
            entry = {"attribute_id": definition["id"], "name": definition["name"], "data_type": definition["data_type"],
                     "value": [] if definition["data_type"] == "multi-select" else None}
            stored.append(entry)
        if item.get("clear_all"):
            entry["value"] = [] if definition["data_type"] == "multi-select" else None
        if "value" in item:
            entry["value"] = item["value"]
        held = entry["value"] if isinstance(entry["value"], list) else []
        if "add_values" in item:
            entry["value"] = held + [value for value in item["add_values"] if value not in held]
        if "remove_values" in item:
            entry["value"] = [value for value in entry["value"] if value not in item["remove_values"]]

    def _create_activity(self, body: Any) -> tuple[int, Any]:
        self._check_body(body, ACTIVITY_FIELDS, ACTIVITY_FIELDS)
        for key in ("activity_type", "activity_content"):
            if not body.get(key, "").strip():
                raise _invalid(f"{key} is required")
        with self._lock:
            if "person_id" in body:
                person = self._persons.get(body["person_id"])
            else:
                query = {key: body[key] for key in ("email", "linkedin_url") if key in body}
                if not query:
                    raise _invalid("the person is required: person_id, linkedin_url, email or full_name")
                person = next((item for item in self._persons.values() if self._matches(item, query)), None)
            if person is None:
                raise _fastify_error(404, "Person not found")
            activity = {"id": str(uuid.uuid4()), "activity_type": body["activity_type"], "created_at": _now_iso(),
                        "activity_content": body["activity_content"], "team_member": None, "job": None}
            self._activities.setdefault(person["id"], []).append(activity)
        return 201, {"success": True, "data": {"id": activity["id"], "person_id": person["id"],
                                               "activity_type": activity["activity_type"]}}

    def _list_activities(self, person_id: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        try:
            limit = int(query.get("limit", ["100"])[-1])
            offset = int(query.get("offset", ["0"])[-1])
        except ValueError:
            raise _invalid("offset and limit must be integers") from None
        if not 1 <= limit <= 100 or offset < 0:
            raise _invalid("limit must be from 1 to 100 and offset non-negative")
        with self._lock:
            self._stored(person_id)
            newest_first = list(reversed(self._activities.get(person_id, [])))
            page = copy.deepcopy(newest_first[offset:offset + limit])
        return 200, {"success": True, "data": page, "meta": {"total": len(newest_first), "offset": offset, "limit": limit}}

    @staticmethod
    def _check_body(body: Any, fields: frozenset[str], string_fields: frozenset[str]) -> None:
        if not isinstance(body, dict):
            raise _invalid("body must be a JSON object")
        unknown = sorted(set(body) - fields)
        if unknown:
            raise _invalid(f"unknown fields: {', '.join(unknown)}")
        for key in string_fields & set(body):
            if not isinstance(body[key], str):
                raise _invalid(f"{key} must be a string")

    @staticmethod
    def _check_contact_items(key: str, items: Any) -> None:
        if not isinstance(items, list):
            raise _invalid(f"{key} must be an array")
        for index, item in enumerate(items):
            if not isinstance(item, dict) or set(item) - {"contact_data_type", "value"}:
                raise _invalid(f"{key}[{index}] must be an object with contact_data_type and value")
            if not isinstance(item.get("value"), str) or not item["value"].strip():
                raise _invalid(f"{key}[{index}].value is required")
            if not isinstance(item.get("contact_data_type"), str) or not item["contact_data_type"].strip():
                raise _invalid(f"{key}[{index}].contact_data_type is required")

    @staticmethod
    def _add_convenience_contacts(person: dict[str, Any], body: dict[str, Any]) -> None:
        """``work_email`` and friends add an entry of their type unless the value is already there
        (the docs do not say more; adding is the least surprising reading)."""
        for field, (list_key, contact_type) in CONVENIENCE_CONTACTS.items():
            value = body.get(field)
            if not value:
                continue
            existing = {(item.get("value") or "").casefold() for item in person[list_key]}
            if value.casefold() not in existing:
                person[list_key].append({"contact_data_type": contact_type, "value": value})


def seed(fake: FakeStardex, document: Any) -> int:
    """Load a ``--people`` file into ``fake``; returns how many persons it holds. The file is either
    a JSON list of persons, or an object with any of ``people`` (that list), ``custom_fields``
    (person custom field definitions: ``name``, ``data_type`` such as ``text``, ``number``,
    ``date``, ``single-select``, ``multi-select``, optional ``options`` and ``id``) and ``jobs``
    (``name``, optional ``id`` and ``stages``, the pipeline's stage names in order). A person may
    carry ``candidates`` (``[{"candidate_id", "job_id"}]``) to be on a job already. Anything else
    raises ``ValueError`` naming what is wrong."""
    if isinstance(document, list):
        document = {"people": document}
    if not isinstance(document, dict):
        raise ValueError("expected a JSON list of persons, or an object with people, custom_fields and jobs")
    unknown = sorted(set(document) - {"people", "custom_fields", "jobs"})
    if unknown:
        raise ValueError(f"unknown keys {', '.join(unknown)} (expected people, custom_fields, jobs)")
    for index, field in enumerate(document.get("custom_fields", [])):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not isinstance(field.get("data_type"), str):
            raise ValueError(f"custom_fields[{index}]: expected an object with a name and a data_type")
        fake.add_custom_field(field["name"], field["data_type"], tuple(field.get("options", ())), id=field.get("id"))
    for index, job in enumerate(document.get("jobs", [])):
        if not isinstance(job, dict) or not isinstance(job.get("name"), str):
            raise ValueError(f"jobs[{index}]: expected an object with a name (and optional id and stages)")
        fake.add_job(job["name"], **({"stages": tuple(job["stages"])} if "stages" in job else {}), id=job.get("id"))
    people = document.get("people", [])
    for index, person in enumerate(people):
        if not isinstance(person, dict):
            raise ValueError(f"people[{index}]: expected an object")
        fake.add_person(**person)
    return len(people)


def main(argv: list[str] | None = None) -> None:
    """Serve the fake until interrupted, and say how to point the function at it."""
    parser = argparse.ArgumentParser(prog="python -m stardex_webhook.fake_stardex", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--people", type=argparse.FileType("r"),
                        help="a JSON list of persons to start with, or an object with people, custom_fields and jobs "
                             "(see docs/plan.md, 'The sandbox')")
    parser.add_argument("--misbehave", choices=MISBEHAVIOURS, help="answer every request this broken way")
    args = parser.parse_args(argv)
    fake = FakeStardex(api_key=args.api_key, host=args.host, port=args.port)
    fake.misbehave = args.misbehave
    try:
        count = seed(fake, json.load(args.people) if args.people else SAMPLE_PEOPLE)
    except (ValueError, TypeError, AttributeError) as error:
        parser.error(f"--people {args.people.name}: {error}")
    try:
        fake.start()
    except OSError as error:
        parser.error(f"cannot listen on {args.host}:{args.port}: {error.strerror}")
    print(f"fake Stardex at {fake.base_url} with {count} persons; run the function with:\n"
          f"  STARDEX_API_BASE={fake.base_url} STARDEX_API_KEY={fake.api_key}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
