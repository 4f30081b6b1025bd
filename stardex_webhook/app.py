"""The HTTP side: routes, the one straight line per webhook, the CONTRACT's answers, the log line.

request ─► route ─► body (size limit, 5 s) ─► adapter (handshake · verify · parse) ─► mapping
        ─► schema ─► person resolver ─► contact merge ─► Stardex ─► answer

One Deadline per webhook starts once its body is read; the signing-key read and every Stardex
call share it.

Each stage returns plain values or raises one of the typed errors in ``errors``; ``handle`` is the
one place that turns them into answers and writes the one log line.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import traceback
from typing import Any, Callable, Mapping

from flask import Request, Response

from . import __version__
from .config import STARDEX_API_KEY, Settings, api_key_name, load_settings, signing_key_name
from .delivery import Deliverer
from .errors import (
    BadRequest,
    ConfigurationError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    RetryLater,
    TooLarge,
    Unauthorized,
    Unprocessable,
    WebhookError,
)
from .logs import JsonLog
from .mapping import BUILTIN_MAPPINGS_DIR, MappedUpdate, load_mappings
from .secrets import SecretProvider
from .sources import SOURCES
from .sender_api import SenderApiClient
from .sources.base import Delivery, Event, Headers, Source
from .deadline import WATCHDOG, Deadline
from .worker import Durability, DUPLICATE
from .stardex import RateLimiter, StardexClient
from .validation import build_validator, validate_update

HEALTH_PATH = "healthz"
_READ_CHUNK = 64 * 1024
# The time a sender has to send the whole body: a slow upload must not hold one of the server's
# few threads (a dozen of them would starve every other webhook).
BODY_READ_SECONDS = 5.0

Answer = tuple[int, dict[str, Any], dict[str, str]]


class WebhookApp:
    """One instance per process: settings, mappings and sources are fixed at start; the Stardex
    client and secrets are made on first use so a cold start stays fast."""

    def __init__(
        self,
        settings: Settings,
        sources: Mapping[str, Source],
        mappings: Mapping[str, Any],
        secrets: SecretProvider,
        log: JsonLog,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        missing = sorted(name for name in sources if name not in mappings)
        if missing:
            raise ConfigurationError(f"no mapping file for source(s): {', '.join(missing)}")
        self._settings = settings
        self._sources = dict(sources)
        self._mappings = dict(mappings)
        self._secrets = secrets
        self._log = log
        self._wall_clock = wall_clock
        self._client: StardexClient | None = None
        self._client_lock = threading.Lock()
        self._sender_apis: dict[str, SenderApiClient] = {}
        self._deliverer = Deliverer(settings, self._stardex, log)
        self._durability = Durability(settings, log)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "WebhookApp":
        """Read the CONTRACT's variables and load every mapping; any fault stops the start."""
        settings = load_settings(environ)
        mappings = load_mappings(BUILTIN_MAPPINGS_DIR, settings.mappings_dir, settings.phone_default_region, SOURCES)
        settings.check_api_bases(SOURCES)
        build_validator()
        secrets = SecretProvider(settings)
        for name in (STARDEX_API_KEY, *(signing_key_name(source) for source in SOURCES),
                     *(api_key_name(name) for name, source in SOURCES.items() if source.needs_api_key)):
            secrets.check(name)  # a malformed *_SECRET name stops the start, without a network call
        return cls(settings, SOURCES, mappings, secrets, JsonLog(settings.log_level))

    # ---- HTTP -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request; never lets an exception escape as the framework's HTML 500."""
        started = time.perf_counter()
        record: dict[str, Any] = {}
        path = request.path.strip("/")
        try:
            if path == HEALTH_PATH:
                return self._respond(self._health(request.method), streamed=False)
            status_code, body, headers = self._webhook(request, path, record)
        except WebhookError as error:
            status_code, body, headers = error.status_code, error.body(), error.headers()
        except Exception as error:  # a bug: say so honestly, and keep the traceback out of the answer
            status_code, body, headers = 500, {"status": "error", "reason": "internal_error"}, {}
            # Where it broke, without the exception's text (which may quote the payload).
            frame = traceback.extract_tb(error.__traceback__)[-1]
            record["error"] = f"{type(error).__name__} at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
        self._log_webhook(status_code, body, record, started)
        return self._respond((status_code, body, headers), streamed="body_read" not in record)

    @staticmethod
    def _respond(answer: Answer, streamed: bool) -> Response:
        """``streamed`` when the body was refused or never read: functions-framework reads the
        whole request body after a non-streamed answer, and would read it after all (or fail on it)."""
        status_code, body, headers = answer
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False)
        if streamed:
            return Response(iter([payload]), status_code, headers, mimetype="application/json")
        return Response(payload, status_code, headers, mimetype="application/json")

    def _health(self, method: str) -> Answer:
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed("method_not_allowed", f"{method} is not allowed on /{HEALTH_PATH}", allow="GET")
        return 200, {"status": "ok", "version": __version__, "sources": self.enabled_sources()}, {}

    def enabled_sources(self) -> list[str]:
        """Sources that can accept a delivery: a signing key is configured, or unsigned is allowed.
        Judged from the settings' names alone: a health check never reads a secret."""
        return sorted(
            name
            for name in self._sources
            if self._settings.allow_unsigned or self._settings.has_setting(signing_key_name(name))
        )

    def _log_webhook(self, status_code: int, body: dict[str, Any], record: dict[str, Any], started: float) -> None:
        if status_code >= 500 and body.get("reason") not in ("stardex_unavailable", "stardex_rate_limited"):
            severity = "ERROR"
        elif status_code >= 400:
            severity = "WARNING"
        else:
            severity = "INFO"
        outcome = body.get("status")
        source = record.get("source") or "-"
        self._log.write(
            severity,
            f"webhook {source} {record.get('event') or '-'}: {outcome}",
            source=record.get("source"),
            event=record.get("event"),
            outcome=outcome,
            status_code=status_code,
            reason=body.get("reason"),
            detail=body.get("message"),
            person_id=body.get("person_id") or record.get("person_id"),
            delivery_id=record.get("delivery_id"),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            error=record.get("error"),
        )

    # ---- the straight line ---------------------------------------------------------------

    def _webhook(self, request: Request, path: str, record: dict[str, Any]) -> Answer:
        source = self._sources.get(path)
        if source is None:
            raise NotFound("unknown_source", "no webhook source is served at this path")
        record["source"] = source.name
        if request.method != "POST":
            raise MethodNotAllowed("method_not_allowed", f"{request.method} is not allowed; webhooks are POSTed")
        body = self._read_body(request)
        record["body_read"] = True  # for _respond; not a logged field
        deadline = Deadline(self._settings.stardex_deadline_seconds)
        headers = Headers([(name, _header_text(value)) for name, value in request.headers.items()])
        delivery = Delivery(headers, body, self._wall_clock(), url=_sender_url(request, headers),
                            query={key: request.args.get(key, "") for key in request.args}, method=request.method)
        handshake = source.handshake(delivery)
        if handshake is not None:
            return handshake.status_code, handshake.body, handshake.headers

        self._verify(source, delivery, deadline)
        event = source.parse(delivery)
        record.update(event=event.event_type, delivery_id=event.delivery_id)
        ok = source.success_status
        ignored = self._ignored(source, event)
        if ignored is not None:
            return ok, ignored, {}
        if self._settings.dry_run:
            return ok, _dry_run(self._map(source, event, deadline)), {}
        return ok, self._durably(source, delivery, event, record, deadline), {}

    def _ignored(self, source: Source, event: Event) -> dict[str, Any] | None:
        """The answer for an event deliberately not acted on (a ping, an unmapped event), or None."""
        if event.ignore_reason:
            return {"status": "ignored", "reason": event.ignore_reason}
        if not self._mappings[source.name].acts_on(event.event_type):
            return {"status": "ignored", "reason": "event_not_mapped", "event": event.event_type}
        return None

    def _map(self, source: Source, event: Event, deadline: Deadline) -> MappedUpdate:
        """Follow-up read, mapping, schema: the update the event asks for, validated."""
        event = self._follow_up(source, event, deadline)
        mapped: MappedUpdate = self._mappings[source.name].apply(event.payload, event)
        validate_update(mapped.update)
        return mapped

    def _durably(self, source: Source, delivery: Delivery, event: Event, record: dict[str, Any],
                 deadline: Deadline) -> dict[str, Any]:
        """Claim the delivery id (``STATE_BUCKET``), then map and deliver (sync) or enqueue
        (``DELIVERY=queued``). The claim comes before the follow-up read, so a duplicate costs
        neither the sender's API nor Stardex, and an event that cannot be applied (any 422) is
        kept once as a dead letter. A failure the sender will retry releases the claim; once the
        event is settled (applied, queued, ignored or dead-lettered) the claim is marked done."""
        durable = self._durability
        claim = durable.claim(source.name, event.delivery_id, deadline)
        if claim is DUPLICATE:
            return {"status": "duplicate"}
        try:
            mapped = self._map(source, event, deadline)
            if self._settings.delivery == "queued":
                durable.enqueue(durable.task_body(source.name, delivery, event, mapped), deadline)
                answer: dict[str, Any] = {"status": "queued"}
            else:
                answer = self._deliver(mapped, record, deadline)
        except Unprocessable as error:
            if durable.state is not None:  # without a bucket, this answer's own log line is all there is
                try:
                    durable.dead_letter(durable.letter(source.name, delivery, event, error, attempts=1))
                except BaseException:
                    durable.release(claim)
                    raise
                durable.settle(claim, deadline)
            raise
        except BaseException:
            durable.release(claim)
            raise
        durable.settle(claim, deadline)
        return answer

    def replay(self, source_name: str, headers: Headers, body: bytes, received_at: float,
               query: Mapping[str, str] | None = None) -> Answer:
        """The pipeline from parse on, for a delivery verified when it was received (a dead
        letter): parse, ignore?, follow-up read, mapping (the files as they are now), schema,
        deliver. No claim and no new dead letter: the letter being replayed is both."""
        source = self._sources.get(source_name)
        if source is None:
            return NotFound("unknown_source", "no webhook source of that name").status_code, {
                "status": "not_found", "reason": "unknown_source"}, {}
        record: dict[str, Any] = {"source": source.name}
        try:
            delivery = Delivery(headers, body, received_at, query=dict(query or {}))
            event = source.parse(delivery)
            record.update(event=event.event_type, delivery_id=event.delivery_id)
            answer = self._ignored(source, event)
            if answer is None:
                deadline = Deadline(self._settings.task_deadline_seconds)
                mapped = self._map(source, event, deadline)
                answer = _dry_run(mapped) if self._settings.dry_run else self._deliver(mapped, record, deadline)
            return source.success_status, answer, {}
        except WebhookError as error:
            return error.status_code, error.body(), error.headers()

    def _read_body(self, request: Request) -> bytes:
        """Refuse an oversized body before reading it; read a body of unknown length only up to
        the limit, so a huge chunked upload costs no more memory than an accepted one.

        The sender has ``BODY_READ_SECONDS`` for the whole body: under gunicorn (``gunicorn.socket``
        in the WSGI environ) the watchdog then shuts the socket for reading, which ends a read
        blocked on a slow sender however it drips (a socket timeout restarts with every byte).
        A body the server cannot decode (a broken chunked encoding, a connection cut) is a 400."""
        limit = self._settings.max_body_bytes
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

    def _verify(self, source: Source, delivery: Delivery, deadline: Deadline) -> None:
        keys = self._secrets.get_keys(signing_key_name(source.name), deadline=deadline)
        if keys:
            source.verify(delivery, keys, delivery.received_at)
        elif not self._settings.allow_unsigned:
            raise Unauthorized("no_signing_key", f"{signing_key_name(source.name)} is not configured")

    def _follow_up(self, source: Source, event: Event, deadline: Deadline) -> Event:
        """The sender's own API read, for an event that carries only ids: the adapter names what to
        read, this stage reads it (within the webhook's deadline) and the adapter places the answer."""
        follow_up = source.follow_up(event)
        if follow_up is None:
            return event
        with self._client_lock:
            client = self._sender_apis.get(source.name)
            if client is None:
                key_setting = api_key_name(source.name)
                client = SenderApiClient(
                    source.name,
                    self._settings.api_base(source.name, source.api_base) or "",
                    lambda deadline, name=key_setting: self._secrets.get(name, deadline=deadline),
                    source.api_headers,
                    key_setting,
                )
                self._sender_apis[source.name] = client
        return source.with_follow_up(event, client.read(deadline, follow_up))

    def _deliver(self, mapped: MappedUpdate, record: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """Find the person, plan the write, call Stardex: ``delivery.Deliverer`` does it."""
        return self._deliverer.deliver(mapped, record, deadline)

    # ---- clients made on first use -------------------------------------------------------

    def _stardex(self) -> StardexClient:
        if not self._settings.has_setting(STARDEX_API_KEY):
            raise RetryLater("stardex_api_key_missing", "STARDEX_API_KEY is not configured", retry_after=300)
        with self._client_lock:
            if self._client is None:
                limiter = RateLimiter(self._settings.stardex_requests_per_minute,
                                      window_seconds=self._settings.stardex_rate_window_seconds)
                self._client = StardexClient(self._settings.stardex_api_base, self._api_key, limiter)
            return self._client

    def _api_key(self, refresh: bool, deadline: Deadline) -> str:
        key = self._secrets.get(STARDEX_API_KEY, refresh=refresh, deadline=deadline)
        if not key:
            raise RetryLater("stardex_api_key_missing", "STARDEX_API_KEY is empty", retry_after=300)
        return key


def _dry_run(mapped: MappedUpdate) -> dict[str, Any]:
    """The answer that shows what would be sent, and nothing is."""
    answer = {"status": "dry_run", "body": mapped.update}
    if mapped.person.id:
        answer["person_id"] = mapped.person.id
    return answer


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
