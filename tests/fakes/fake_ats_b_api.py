"""A loopback fake of the two sender APIs whose webhooks need a follow-up read here: the candidate
reads of SmartRecruiters' and Teamtailor's APIs, as their docs describe them.

* SmartRecruiters under ``/smartrecruiters``: ``GET /candidates/{id}`` with ``X-SmartToken``; the
  candidate object as the Candidates API returns it.
* Teamtailor under ``/teamtailor/v1``: ``GET /candidates/{id}`` and
  ``GET /job-applications/{id}/candidate`` with ``Authorization: Token token=<key>`` and an
  ``X-Api-Version`` header; JSON:API documents (``{"data": {"id", "type", "attributes"}}``).

A missing or wrong key answers 401, an unknown resource 404, as the real APIs do. ``requests``
records each request's method, path and headers.

    with FakeAtsApi(smartrecruiters_key="k1", teamtailor_key="k2") as fake:
        fake.smartrecruiters_candidates["c1"] = {...}
        env = {"SMARTRECRUITERS_API_BASE": fake.smartrecruiters_base, ...}
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from stardex_webhook.fake_stardex import LoopbackServer

SMARTRECRUITERS_PREFIX = "/smartrecruiters"
TEAMTAILOR_PREFIX = "/teamtailor/v1"
_SR_CANDIDATE = re.compile(r"^/smartrecruiters/candidates/([^/]+)$")
_TT_CANDIDATE = re.compile(r"^/teamtailor/v1/candidates/([^/]+)$")
_TT_APPLICATION_CANDIDATE = re.compile(r"^/teamtailor/v1/job-applications/([^/]+)/candidate$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


class FakeAtsApi(LoopbackServer):
    """Both APIs on one 127.0.0.1 port. Fill ``smartrecruiters_candidates`` (id → candidate),
    ``teamtailor_candidates`` (id → attributes) and ``teamtailor_applications`` (application id →
    candidate id) before sending webhooks."""

    def __init__(self, smartrecruiters_key: str, teamtailor_key: str) -> None:
        self.smartrecruiters_key = smartrecruiters_key
        self.teamtailor_key = teamtailor_key
        self.smartrecruiters_candidates: dict[str, dict[str, Any]] = {}
        self.teamtailor_candidates: dict[str, dict[str, Any]] = {}
        self.teamtailor_applications: dict[str, str] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def start(self) -> "FakeAtsApi":
        self._start_serving(("127.0.0.1", 0), _handler_for(self))
        return self

    def stop(self) -> None:
        self._stop_serving()

    @property
    def smartrecruiters_base(self) -> str:
        return self.origin + SMARTRECRUITERS_PREFIX

    @property
    def teamtailor_base(self) -> str:
        return self.origin + TEAMTAILOR_PREFIX

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        path = unquote(urlsplit(path).path)
        if path.startswith(SMARTRECRUITERS_PREFIX + "/"):
            if headers.get("x-smarttoken") != self.smartrecruiters_key:
                return 401, {"message": "Unauthorized"}
            match = _SR_CANDIDATE.match(path)
            candidate = self.smartrecruiters_candidates.get(match.group(1)) if match else None
            return (200, candidate) if candidate else (404, {"message": "Candidate not found"})
        if path.startswith(TEAMTAILOR_PREFIX + "/"):
            if headers.get("authorization") != f"Token token={self.teamtailor_key}" or not headers.get("x-api-version"):
                return 401, {"errors": [{"status": "401", "title": "Unauthorized"}]}
            match = _TT_CANDIDATE.match(path)
            candidate_id = match.group(1) if match else None
            application = _TT_APPLICATION_CANDIDATE.match(path)
            if application:
                candidate_id = self.teamtailor_applications.get(application.group(1))
            attributes = self.teamtailor_candidates.get(candidate_id or "")
            if attributes is None:
                return 404, {"errors": [{"status": "404", "title": "Not found"}]}
            return 200, {"data": {"id": candidate_id, "type": "candidates", "attributes": attributes}}
        return 404, {"message": "no such API"}


def _handler_for(fake: FakeAtsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            with fake._lock:
                fake.requests.append(RecordedRequest("GET", self.path, headers))
            status, document = fake._answer(self.path, headers)
            body = json.dumps(document).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.api+json" if self.path.startswith(TEAMTAILOR_PREFIX)
                             else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
