"""A loopback fake of the two sender APIs the Lever and Ashby follow-up reads call, so the
end-to-end tests drive the function's real sender-API client over HTTP.

It serves, as documented:

* Lever, under ``{origin}/lever/v1`` (``LEVER_API_BASE``): ``GET /opportunities/{id}`` with HTTP
  Basic auth (the API key as username, empty password), answering ``{"data": <opportunity>}``, or
  404 ``{"code": "ResourceNotFound", "message"}``;
* Ashby, under ``{origin}/ashby`` (``ASHBY_API_BASE``): ``POST /candidate.info`` with a JSON body
  ``{"id"}`` and the same Basic auth, answering ``{"success": true, "results": <candidate>}``, or,
  as Ashby answers its 4xx-like errors, HTTP 200 with ``{"success": false, "errorInfo": {...}}``.

A wrong key is 401 on both. Switches: ``down`` (every request 503), ``requests`` (each one as
received: method, path, JSON body, headers), and for the fault tests ``fail_status`` (every
request answers that status, with ``Retry-After: retry_after`` when set), ``delay`` (seconds
before answering), ``html`` (200 with an HTML page) and ``redirect_to`` (a 302 to that origin).
Standard library only.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from stardex_webhook.fake_stardex import LoopbackServer

LEVER_PREFIX = "/lever/v1/opportunities/"
ASHBY_INFO_PATH = "/ashby/candidate.info"


class ApiRequest(NamedTuple):
    method: str
    path: str
    json: Any
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    """Hands every GET and POST to its ``fake``; logs nothing."""

    fake: "FakeAtsApi"

    def do_GET(self) -> None:
        self.fake._serve(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeAtsApi(LoopbackServer):
    """Lever's and Ashby's APIs on 127.0.0.1, each with its own API key."""

    def __init__(self, lever_key: str, ashby_key: str) -> None:
        self.keys = {"lever": lever_key, "ashby": ashby_key}
        self.down = False
        self.fail_status: int | None = None
        self.retry_after: str | None = None
        self.delay = 0.0
        self.html = False
        self.redirect_to: str | None = None
        self.requests: list[ApiRequest] = []
        self._opportunities: dict[str, dict[str, Any]] = {}
        self._candidates: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(self) -> "FakeAtsApi":
        self._start_serving(("127.0.0.1", 0), type("Handler", (_Handler,), {"fake": self}))
        return self

    def stop(self) -> None:
        self._stop_serving()

    @property
    def lever_base(self) -> str:
        return self.origin + LEVER_PREFIX.removesuffix("/opportunities/")

    @property
    def ashby_base(self) -> str:
        return self.origin + ASHBY_INFO_PATH.removesuffix("/candidate.info")

    def add_opportunity(self, opportunity: dict[str, Any]) -> None:
        with self._lock:
            self._opportunities[opportunity["id"]] = opportunity

    def add_candidate(self, candidate: dict[str, Any]) -> None:
        with self._lock:
            self._candidates[candidate["id"]] = candidate

    def reset(self) -> None:
        with self._lock:
            self._opportunities.clear()
            self._candidates.clear()
            self.requests.clear()
        self.down = False
        self.fail_status, self.retry_after, self.delay, self.html, self.redirect_to = None, None, 0.0, False, None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        size = int(handler.headers.get("Content-Length") or 0)
        try:
            body = json.loads(handler.rfile.read(size)) if size else None
        except ValueError:
            body = None
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests.append(ApiRequest(handler.command, path, body, dict(handler.headers.items())))
        status, answer = self._answer(handler.command, path, body, handler.headers.get("Authorization", ""))
        headers = {"Content-Type": "application/json"}
        if self.delay:
            time.sleep(self.delay)
        if self.fail_status is not None:
            status, answer = self.fail_status, {"code": "Injected", "message": "injected failure"}
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
        if self.redirect_to is not None:
            status, headers["Location"] = 302, self.redirect_to + handler.path
        payload = json.dumps(answer).encode()
        if self.html:
            status, headers["Content-Type"], payload = 200, "text/html", b"<html><body>Sign in</body></html>"
        handler.send_response(status)
        for name, value in (*headers.items(), ("Content-Length", str(len(payload)))):
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _authorised(self, sender: str, authorization: str) -> bool:
        expected = base64.b64encode(f"{self.keys[sender]}:".encode()).decode()
        return authorization == f"Basic {expected}"

    def _answer(self, method: str, path: str, body: Any, authorization: str) -> tuple[int, Any]:
        if self.down:
            return 503, {"code": "ServiceUnavailable", "message": "try again later"}
        if method == "GET" and path.startswith(LEVER_PREFIX):
            if not self._authorised("lever", authorization):
                return 401, {"code": "UnauthorizedError", "message": "Invalid API key"}
            with self._lock:
                opportunity = self._opportunities.get(unquote(path[len(LEVER_PREFIX):]))
            if opportunity is None:
                return 404, {"code": "ResourceNotFound", "message": "Opportunity not found"}
            return 200, {"data": opportunity}
        if method == "POST" and path == ASHBY_INFO_PATH:
            if not self._authorised("ashby", authorization):
                return 401, {"success": False, "errorInfo": {"code": "invalid_api_key", "message": "Invalid API key"}}
            with self._lock:
                candidate = self._candidates.get(body.get("id")) if isinstance(body, dict) else None
            if candidate is None:
                return 200, {"success": False, "errorInfo": {"code": "candidate_not_found", "message": "Candidate not found"}}
            return 200, {"success": True, "results": candidate}
        return 404, {"code": "ResourceNotFound", "message": f"no route {method} {path}"}
