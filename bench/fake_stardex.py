"""A loopback Stardex that answers at once, for load: one asyncio process, standard library only.

It is not the test fake (``tests/fakes/fake_stardex.py``): that one keeps persons, enforces the
60/min rate limit and records every request, which is what tests need and what a load run cannot
afford. This one answers the three calls the bench makes with canned success envelopes, checks the
API key, and counts calls, so the bench can prove that each webhook made exactly the calls it
should.

    python bench/fake_stardex.py --api-key KEY      # prints "port N" on stdout once listening

    GET  /__stats   {"GET /v1/persons/{id}": n, "PATCH /v1/persons/{id}": n, ..., "errors": n}
    POST /__reset   zero the counters

Keep-alive HTTP/1.1 only (what urllib3 speaks); every answer has a Content-Length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

PERSON_PREFIX = b"/v1/persons/"
# What GET answers: a person holding one email and one phone that no bench body carries, so a
# merging webhook always adds something and always ends in a PATCH.
STORED_PERSON = {
    "id": "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42",
    "name": "Stored Person",
    "first_name": "Stored",
    "last_name": "Person",
    "emails": [{"contact_data_type": "work", "value": "stored.person@bench-example.com"}],
    "phones": [{"contact_data_type": "mobile", "value": "+442071838750"}],
}


def _response(status: int, body: object) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    return head + payload


GET_ANSWER = _response(200, {"success": True, "data": STORED_PERSON})
PATCH_ANSWER = _response(200, {"success": True, "data": {"id": STORED_PERSON["id"]}})
SEARCH_ANSWER = _response(200, {"success": True, "data": [{"id": STORED_PERSON["id"]}],
                                "meta": {"total": 1, "limit": 2, "offset": 0}})
UNAUTHORIZED = _response(401, {"success": False, "error": {"code": "INVALID_API_KEY", "message": "bad key"}})
NOT_FOUND = _response(404, {"message": "Route not found", "error": "Not Found", "statusCode": 404})

COUNTER_NAMES = ("GET /v1/persons/{id}", "PATCH /v1/persons/{id}", "POST /v1/persons/search", "errors")


class FakeStardexProtocol(asyncio.Protocol):
    """One connection: parse pipelined requests from the buffer, answer each at once."""

    def __init__(self, counters: dict[str, int], authorization: bytes) -> None:
        self.counters = counters
        self.authorization = authorization
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            authorized = False
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"authorization":
                    authorized = value.strip() == self.authorization
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            method, path, _ = lines[0].split(b" ", 2)
            self.transport.write(self._answer(method, path, authorized))  # type: ignore[union-attr]

    def _answer(self, method: bytes, path: bytes, authorized: bool) -> bytes:
        counters = self.counters
        if path == b"/__stats":
            return _response(200, counters)
        if path == b"/__reset":
            for name in counters:
                counters[name] = 0
            return _response(200, counters)
        if not authorized:
            counters["errors"] += 1
            return UNAUTHORIZED
        if path == b"/v1/persons/search" and method == b"POST":
            counters["POST /v1/persons/search"] += 1
            return SEARCH_ANSWER
        if path.startswith(PERSON_PREFIX) and b"/" not in path[len(PERSON_PREFIX):]:
            if method == b"GET":
                counters["GET /v1/persons/{id}"] += 1
                return GET_ANSWER
            if method == b"PATCH":
                counters["PATCH /v1/persons/{id}"] += 1
                return PATCH_ANSWER
        counters["errors"] += 1
        return NOT_FOUND


async def serve(port: int, api_key: str) -> None:
    counters = {name: 0 for name in COUNTER_NAMES}
    authorization = f"Bearer {api_key}".encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeStardexProtocol(counters, authorization),
                                      "127.0.0.1", port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.api_key))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
