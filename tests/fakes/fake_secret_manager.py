"""A loopback fake of Secret Manager's REST API, so tests drive the REAL client end to end.

It serves only what the function uses, ``GET /v1/projects/P/secrets/S/versions/V:access``, and
answers the way Google does: the payload base64-encoded with its CRC32C as a decimal string, and
Google's error JSON for unknown secrets (404 NOT_FOUND) or an outage (503 UNAVAILABLE). Standard
library only, plus google_crc32c to compute the checksum the client verifies.

    with FakeSecretManager() as fake:
        fake.set("projects/p/secrets/greenhouse-key", "s3cret")
        env = {"SECRET_MANAGER_ENDPOINT": fake.endpoint,
               "GREENHOUSE_SIGNING_KEY_SECRET": "projects/p/secrets/greenhouse-key/versions/latest"}
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

import google_crc32c

from stardex_webhook.fake_stardex import LoopbackServer

_ACCESS_PATH = re.compile(r"^/v1/(projects/[^/]+/secrets/[^/]+)/versions/([^/:]+):access$")


class FakeSecretManager(LoopbackServer):
    """Secret Manager on 127.0.0.1 with switches for the failures the provider must survive.

    Switches (plain attributes, safe to flip while it runs):
      - ``down``: every request answers 503 UNAVAILABLE.
      - ``corrupt_crc``: the payload's dataCrc32c is off by one.
      - ``delay``: seconds to wait before answering (a slow or hung endpoint).
      - ``drip``: seconds between the bytes of the answer (a read timeout restarts at each byte).
      - ``redirect_to``: a base URL; every request answers 302 to the same path there.
    ``requests`` counts accesses per requested version name (e.g. ``.../versions/latest``).
    A delayed or dripping answer ends when the fake stops: its connection is closed, so a client
    still reading gets a closed connection at once rather than the rest of the wait.
    """

    def __init__(self) -> None:
        self.down = False
        self.corrupt_crc = False
        self.delay = 0.0
        self.drip = 0.0
        self.redirect_to: str | None = None
        self.requests: collections.Counter[str] = collections.Counter()
        self._versions: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- test controls -------------------------------------------------------------------------

    def set(self, secret: str, value: str | bytes) -> str:
        """Add a new version to ``secret`` (``projects/P/secrets/S``); returns the version's name."""
        if not re.fullmatch(r"projects/[^/]+/secrets/[^/]+", secret):
            raise ValueError(f"expected projects/P/secrets/S, got {secret!r}")
        data = value.encode("utf-8") if isinstance(value, str) else value
        with self._lock:
            versions = self._versions.setdefault(secret, [])
            versions.append(data)
            return f"{secret}/versions/{len(versions)}"

    @property
    def access_count(self) -> int:
        """All accesses so far, whatever the name or the answer."""
        with self._lock:
            return sum(self.requests.values())

    @property
    def endpoint(self) -> str:
        return self.origin

    def start(self) -> "FakeSecretManager":
        self._stopping.clear()
        self._start_serving(("127.0.0.1", 0), _handler_for(self))
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._stop_serving()

    # -- request handling --------------------------------------------------------------------

    def _answer(self, path: str) -> tuple[int, dict]:
        match = _ACCESS_PATH.match(unquote(urlsplit(path).path))
        if match is None:
            return _error(404, "NOT_FOUND", "unknown method or resource")
        secret, version = match.groups()
        with self._lock:
            self.requests[f"{secret}/versions/{version}"] += 1
            versions = list(self._versions.get(secret, ()))
        if self.delay and self._stopping.wait(self.delay):
            return 0, {}  # stopped while waiting: no answer
        if self.down:
            return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
        if not versions:
            return _error(404, "NOT_FOUND", f"Secret [{secret}] not found or has no versions.")
        if version == "latest":
            number = len(versions)
        elif version.isdigit() and 1 <= int(version) <= len(versions):
            number = int(version)
        else:
            return _error(404, "NOT_FOUND", f"Secret Version [{secret}/versions/{version}] not found.")
        data = versions[number - 1]
        crc = google_crc32c.value(data)
        if self.corrupt_crc:
            crc = (crc + 1) % (1 << 32)
        return 200, {
            "name": f"{secret}/versions/{number}",
            "payload": {"data": base64.b64encode(data).decode("ascii"), "dataCrc32c": str(crc)},
        }


def _error(code: int, status: str, message: str) -> tuple[int, dict]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _handler_for(fake: FakeSecretManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle's algorithm on, the second waits for
        # the client's delayed ACK (40 ms) on every request after a connection's first.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            status, document = fake._answer(self.path)
            if status == 0:
                self.close_connection = True
                return
            body = b"" if fake.redirect_to else json.dumps(document).encode("utf-8")
            self.send_response(302 if fake.redirect_to else status)
            if fake.redirect_to:
                self.send_header("Location", fake.redirect_to + self.path)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = 1 if fake.drip else max(1, len(body))
            for start in range(0, len(body), step):
                if fake._stopping.is_set():
                    self.close_connection = True
                    return  # stopped: a dripping answer ends with the fake
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if fake.drip:
                    fake._stopping.wait(fake.drip)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: test output stays readable."""

    return Handler
