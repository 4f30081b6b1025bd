"""The webhook doors over HTTP: routes, the body read, and the two ways a webhook is delivered.

POST /<source> ─► body (size limit, 5 s) ─► pipeline.accept ─► ignored?
   sync:   once(delivery id) around prepare ─► process          ─► updated / ignored / 4xx / 503
   queued: once(delivery id) around enqueue of the raw delivery  ─► queued (the worker does the rest)
GET /healthz ─► the version and the enabled sources

One ``Deadline`` per webhook starts once its body is read; the signing-key read, the claim, the
follow-up read and every Stardex call share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

from flask import Request, Response

from . import __version__
from .deadline import WATCHDOG, Deadline
from .errors import BadRequest, MethodNotAllowed, RequestTimeout, TooLarge, Unprocessable
from .pipeline import Answer, Pipeline, answered
from .records import Claim, Delivery, Event, Handshake, Headers, Received

HEALTH_PATH = "healthz"
_READ_CHUNK = 64 * 1024
BODY_READ_SECONDS = 5.0  # for the whole body: a dozen slow uploads must not hold every thread
TASK_KIND = "stardex-webhook/task"
TASK_VERSION = 2
WSGI_PATH = "PATH_INFO"  # the request's path as sent, decoded (a WSGI key, not a setting)


class Ingress:
    """``handle_webhook``: one per process, over the process's pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def handle(self, request: Request) -> Response:
        """Answer one request; never lets an exception escape as the framework's HTML 500."""
        body_read: list[bool] = []
        answer = answered(self.pipeline.log, lambda record: self._route(request, record, body_read),
                          self.pipeline.history)
        # Streamed when the body was not read: the framework would read it after a non-streamed answer.
        response = respond(answer, streamed=not body_read)
        if not body_read and (request.content_length or request.headers.get("Transfer-Encoding")):
            response.call_on_close(lambda: drop_body(request, self.pipeline.settings.max_body_bytes))
        return response

    def _route(self, request: Request, record: dict[str, Any], body_read: list[bool]) -> Answer:
        # The exact path, as sent: "/generic/" and "/generic%2F" are no source, nor "//generic"
        # (which ``request.path`` would fold into "/generic").
        path = request.environ.get(WSGI_PATH, "").removeprefix("/")
        if path == HEALTH_PATH:
            return health(self.pipeline, request.method)
        source = self.pipeline.source(path)
        record["source"] = source.name
        if request.method != "POST":
            raise MethodNotAllowed("method_not_allowed", f"{request.method} is not allowed; webhooks are POSTed")
        body = read_body(request, self.pipeline.settings.max_body_bytes)
        body_read.append(True)
        deadline = Deadline(self.pipeline.settings.stardex_deadline_seconds)
        headers = Headers([(name, _header_text(value)) for name, value in request.headers.items()])
        delivery = Delivery(headers, body, self.pipeline.wall_clock(), url=_sender_url(request, headers),
                            query={key: request.args.get(key, "") for key in request.args}, method=request.method)
        accepted = self.pipeline.accept(source, delivery, deadline)
        if isinstance(accepted, Handshake):
            return accepted.status_code, accepted.body, dict(accepted.headers)
        record.update(event=accepted.event_type, delivery_id=accepted.delivery_id, received_at=delivery.received_at,
                      door="webhook")
        ok = source.success_status
        answer = self.pipeline.ignored(accepted)
        if answer is not None:
            return ok, answer, {}
        if self.pipeline.settings.dry_run:  # nothing is written, so nothing is claimed or kept
            return ok, self.pipeline.process(self.pipeline.prepare(accepted, deadline), deadline, record), {}
        if self.pipeline.queue is not None:
            return ok, self.pipeline.once(accepted, deadline, lambda claim: self._enqueue(delivery, accepted, claim, deadline),
                                          settle=False), {}
        return ok, self.pipeline.once(accepted, deadline, lambda claim: self._apply(delivery, accepted, record, deadline)), {}

    def _apply(self, delivery: Delivery, event: Event, record: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """prepare ─► process; an event that cannot be applied is kept as a dead letter first. The
        work stops short of the deadline, so the letter or the claim's release still fits in it."""
        work = deadline.shortened()
        try:
            return self.pipeline.process(self.pipeline.prepare(event, work), work, record)
        except Unprocessable as error:
            if self.pipeline.state is not None:
                record["dead_letter"] = self.pipeline.dead_letter(Received.of(delivery, event), error, attempts=1,
                                                                  deadline=deadline)
            raise

    def _enqueue(self, delivery: Delivery, event: Event, claim: Claim | None, deadline: Deadline) -> dict[str, Any]:
        self.pipeline.enqueue(task_body(delivery, event, claim), deadline.shortened())
        return {"status": "queued"}


def task_body(delivery: Delivery, event: Event, claim: Claim | None = None) -> dict[str, Any]:
    """What a queued webhook hands the worker: the raw delivery (without its credentials) and the
    claim the worker settles once the event is applied, ignored or dead-lettered."""
    return {"kind": TASK_KIND, "version": TASK_VERSION, **Received.of(delivery, event).to_dict(),
            "claim": None if claim is None else {"name": claim.name, "generation": claim.generation}}


def health(pipeline: Pipeline, method: str) -> Answer:
    if method not in ("GET", "HEAD"):
        raise MethodNotAllowed("method_not_allowed", f"{method} is not allowed on /{HEALTH_PATH}", allow="GET")
    return 200, {"status": "ok", "version": __version__, "sources": pipeline.enabled_sources()}, {}


def drop_body(request: Request, limit: int) -> None:
    """Read and drop a body answered before it was read, as a webhook's (5 s, the size limit), else
    shut its connection for reading: gunicorn reads it before the next request, with no time limit."""
    try:
        read_body(request, limit)
    except (BadRequest, RequestTimeout, TooLarge):
        with contextlib.suppress(OSError, KeyError):
            request.environ["gunicorn.socket"].shutdown(socket.SHUT_RD)  # the answer is sent


def respond(answer: Answer, streamed: bool = False) -> Response:
    status_code, body, headers = answer
    payload = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(iter([payload]) if streamed else payload, status_code, headers, mimetype="application/json")


def read_body(request: Request, limit: int) -> bytes:
    """Up to ``limit`` (an oversized body refused unread, a chunked one read no further), within
    ``BODY_READ_SECONDS``: then the watchdog shuts gunicorn's socket for reading, which ends a read
    however the sender drips (a socket timeout restarts with every byte). Undecodable: a 400."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    sock = request.environ.get("gunicorn.socket")
    chunks, size = [], 0
    with WATCHDOG.watch(BODY_READ_SECONDS) as watch:
        if sock is not None:
            watch.cuts.append(lambda: sock.shutdown(socket.SHUT_RD))  # the answer can still be sent
        try:
            while size <= limit and size != length:  # at Content-Length the stream ends: one read less
                chunk = request.stream.read(min(_READ_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except Exception:  # gunicorn's InvalidChunkSize, ChunkMissingTerminator, NoMoreData...
            size = -1
    if size > limit:
        raise _too_large(limit)
    if size < 0 or (length is not None and size < length):
        if watch.fired:
            raise RequestTimeout("body_timeout", f"the body did not arrive within {BODY_READ_SECONDS:g} seconds")
        raise BadRequest("unreadable_body", "the body could not be read: broken chunked encoding or cut short")
    return b"".join(chunks)


def _too_large(limit: int) -> TooLarge:
    return TooLarge("body_too_large", f"the body is over the {limit}-byte limit")


def _sender_url(request: Request, headers: Headers) -> str:
    """The URL the sender used: behind Google's front end the function sees plain http, so the
    scheme comes from ``X-Forwarded-Proto`` when present; and a request to the function's
    ``cloudfunctions.net`` URL reaches it with the function's name cut from the path, so the name
    (Cloud Run's ``K_SERVICE``) is put back, as senders that sign the URL (HubSpot) signed it."""
    scheme = headers.get("X-Forwarded-Proto", "").split(",")[0].strip() or request.scheme
    query = request.query_string.decode("latin-1")
    path = request.path
    service = os.environ.get("K_SERVICE", "")
    if service and request.host.lower().endswith(".cloudfunctions.net") and not path.startswith(f"/{service}/"):
        path = f"/{service}{path}"
    return f"{scheme}://{request.host}{path}" + (f"?{query}" if query else "")


def _header_text(value: str) -> str:
    """A header as the sender wrote it: WSGI hands over its bytes decoded as Latin-1; a UTF-8
    header (a non-ASCII ``webhook-id``) becomes its text again, undecodable bytes kept as surrogate
    escapes, so ``signatures.utf8_bytes`` gives back exactly the bytes that were signed."""
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # not a WSGI string (a test client's text): already text
        return value
