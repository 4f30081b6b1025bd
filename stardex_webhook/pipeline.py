"""The pipeline, written once: three stages, the de-duplication protocol, and the one answer.

accept(source, delivery)  size limit · handshake? · verify · parse ─► Handshake | Event; ignored(event)?
prepare(event)            follow-up read (the sender's API)? · mapping · validation ─► MappedUpdate
process(update)           resolve the person · plan the writes · write through a Stardex client ─► answer

Each stage takes plain values (``records``) and returns plain values, or raises one of the typed
errors of ``errors``. ``answered`` turns a door's outcome or error into docs/contract.md's answer and
writes the one log line. The doors (``ingress`` for webhooks, ``worker`` for tasks, and the tools
``replay`` and ``plan``) call these and nothing else of each other. No HTTP framework here.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import replace
from typing import Any, Callable, Mapping, TextIO

from .config import STARDEX_API_KEY, Settings, api_key_name, load_settings, signing_key_name
from .deadline import Deadline
from .delivery import Deliverer
from .events import HISTORY_KEY, EventHistory, named
from .errors import ConfigurationError, NotFound, RetryLater, TooLarge, Unauthorized, Unprocessable, WebhookError
from .logs import JsonLog
from .mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from .queue import MAX_TASK_BYTES, TaskQueue, task_bytes
from .records import Claim, Delivery, Event, Handshake, MappedUpdate, Received
from .secrets import SecretProvider
from .sender_api import SenderApiClient
from .sources import SOURCES
from .sources.base import Source
from .sources.form_answers import field_sources
from .state import DONE, StateStore, dead_letter_document
from .stardex import RateLimiter, StardexClient
from .validation import build_validator, checked

Answer = tuple[int, dict[str, Any], dict[str, str]]
# What a webhook's retry is told while another attempt of the same delivery is at work.
IN_PROGRESS_RETRY_AFTER_SECONDS = 10


class Pipeline:
    """One per process: settings, sources and mappings fixed at start; the Stardex client, the
    senders' API clients, the bucket and the queue made on first use so a start stays fast."""

    def __init__(self, settings: Settings, sources: Mapping[str, Source], mappings: Mapping[str, Any],
                 secrets: SecretProvider, log: JsonLog, wall_clock: Callable[[], float] = time.time) -> None:
        missing = sorted(name for name in sources if name not in mappings)
        if missing:
            raise ConfigurationError(f"no mapping file for source(s): {', '.join(missing)}")
        self.settings = settings
        self.sources = dict(sources)
        self.mappings = dict(mappings)
        self.secrets = secrets
        self.log = log
        self.wall_clock = wall_clock
        self.state = StateStore(settings.state_bucket) if settings.state_bucket else None
        self.history = EventHistory(self.state, secrets, log) if self.state is not None else None
        self.queue = TaskQueue(settings.tasks_queue or "", settings.tasks_worker_url or "",
                               settings.tasks_service_account or "", settings.cloud_tasks_endpoint) \
            if settings.delivery == "queued" else None
        self._lock = threading.Lock()
        self._stardex: StardexClient | None = None
        self._sender_apis: dict[str, SenderApiClient] = {}
        self._deliverer = Deliverer(settings, self.stardex, log)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, log_stream: TextIO | None = None) -> "Pipeline":
        """Read docs/contract.md's variables and load every mapping; any fault stops the start. The
        tools log to stderr (``log_stream``): their stdout is their output."""
        settings = load_settings(environ)
        mappings = load_mappings(BUILTIN_MAPPINGS_DIR, settings.mappings_dir, settings.phone_default_region, SOURCES)
        settings.check_api_bases(SOURCES)
        build_validator()
        log = JsonLog(settings.log_level, stream=log_stream)
        secrets = SecretProvider(settings, log=log)
        for name in (STARDEX_API_KEY, HISTORY_KEY, *(signing_key_name(source) for source in SOURCES),
                     *(api_key_name(name) for name, source in SOURCES.items() if source.needs_api_key)):
            secrets.check(name)  # a malformed *_SECRET name stops the start, without a network call
        if not settings.dry_run and not settings.has_setting(STARDEX_API_KEY):
            # Not a fault that stops the start (the key may be stored after the deploy), but every
            # webhook will answer 503 until it is there: say so once, at start.
            log.write("WARNING", "no STARDEX_API_KEY (nor STARDEX_API_KEY_SECRET) and DRY_RUN is off: every webhook "
                      "answers 503 stardex_api_key_missing until the key is set", reason="stardex_api_key_missing")
        return cls(settings, SOURCES, mappings, secrets, log)

    def source(self, name: str) -> Source:
        source = self.sources.get(name)
        if source is None:
            # The valid paths are the public list of senders (never a secret): a typo shows its fix.
            raise NotFound("unknown_source", "no webhook source is served at this path", sources=sorted(self.sources))
        return source

    def enabled_sources(self) -> list[str]:
        """Sources that can accept a delivery: a signing key is configured, or unsigned is allowed.
        Judged from the settings' names alone: a health check never reads a secret."""
        return sorted(name for name in self.sources
                      if self.settings.allow_unsigned or self.settings.has_setting(signing_key_name(name)))

    # ---- accept ----------------------------------------------------------------------------

    def accept(self, source: Source, delivery: Delivery, deadline: Deadline, verify: bool = True) -> Handshake | Event:
        """The sender's handshake, or the authentic, parsed event."""
        limit = self.settings.max_body_bytes
        if len(delivery.body) > limit:
            raise TooLarge("body_too_large", f"the body is over the {limit}-byte limit")
        handshake = source.handshake(delivery)
        if handshake is not None:
            return handshake
        if verify:
            keys = self.secrets.get_keys(signing_key_name(source.name), deadline=deadline)
            if keys:
                source.verify(delivery, keys, delivery.received_at)
            elif not self.settings.allow_unsigned:
                raise Unauthorized("no_signing_key", f"{signing_key_name(source.name)} is not configured")
        return source.parse(delivery)

    def ignored(self, event: Event) -> dict[str, Any] | None:
        """The answer for an event deliberately not acted on (a ping, an unmapped event), or None."""
        if event.ignore_reason:
            return {"status": "ignored", "reason": event.ignore_reason}
        if not self.mappings[event.source].acts_on(event.event_type):
            return {"status": "ignored", "reason": "event_not_mapped", "event": event.event_type}
        return None

    # ---- prepare ---------------------------------------------------------------------------

    def prepare(self, event: Event, deadline: Deadline) -> MappedUpdate:
        """Follow-up read, mapping, validation: the update the event asks for."""
        return self.validated(self.mapped(self.follow_up(event, deadline)))

    def mapped(self, event: Event) -> MappedUpdate:
        """The event through its sender's mapping file (never fails: see ``mapping``)."""
        mapped = self.mappings[event.source].apply(event.payload, event)
        if event.incomplete or event.questions:
            mapped = replace(mapped, incomplete=event.incomplete,
                             sources=field_sources(mapped.update, event.questions))
        return mapped

    @staticmethod
    def validated(mapped: MappedUpdate) -> MappedUpdate:
        """The update without the values that fail the schema (listed in ``skipped``), or 422."""
        return checked(mapped)

    def follow_up(self, event: Event, deadline: Deadline) -> Event:
        """The sender's own API read, for an event that carries only ids: the adapter names what to
        read, this reads it (within the deadline) and the adapter places the answer."""
        source = self.sources[event.source]
        follow_up = source.follow_up(event)
        if follow_up is None:
            return event
        key_setting = api_key_name(source.name)
        if source.api_key_optional and not self.settings.has_setting(key_setting):
            return replace(event, incomplete=f"{key_setting} is not set: only the fields the webhook carries "
                                             f"were read; the rest needs the {source.name} API")
        return source.with_follow_up(event, self.sender_api(source).read(deadline, follow_up))

    def sender_api(self, source: Source) -> SenderApiClient:
        with self._lock:
            if source.name not in self._sender_apis:
                key_setting = api_key_name(source.name)
                self._sender_apis[source.name] = SenderApiClient(
                    source.name, self.settings.api_base(source.name, source.api_base) or "",
                    lambda deadline, name=key_setting: self.secrets.get(name, deadline=deadline),
                    source.api_headers, key_setting, log=self.log)
            return self._sender_apis[source.name]

    # ---- process ---------------------------------------------------------------------------

    def process(self, mapped: MappedUpdate, deadline: Deadline, record: dict[str, Any],
                client: Any = None) -> dict[str, Any]:
        """Find the person, plan the writes, write through ``client`` (the Stardex client, or one
        that records writes and makes none: ``plan``). A recording client starts with an empty
        person memory, so it sees every call an instance new to the person would make."""
        if mapped.skipped:
            record["skipped"] = list(mapped.skipped)
        if self.history is not None:
            record["named"] = named(mapped)  # for the event history's keyed hashes
        if self.settings.dry_run and client is None:
            answer = {"status": "dry_run", "body": mapped.update}
            if mapped.person.id:
                answer["person_id"] = mapped.person.id
        elif client is None:
            try:
                answer = self._deliverer.deliver(mapped, record, deadline)
            finally:  # for the dashboard's calls against Stardex's budget (this instance's share)
                if self._stardex is not None:
                    record["stardex_calls_last_minute"] = self._stardex.limiter.used()
        else:
            answer = Deliverer(self.settings, lambda: client, self.log).deliver(mapped, record, deadline)
        if mapped.incomplete:
            answer = {**answer, "incomplete": mapped.incomplete}
        return {**answer, "skipped": list(mapped.skipped)} if mapped.skipped else answer

    def stardex(self) -> StardexClient:
        if not self.settings.has_setting(STARDEX_API_KEY):
            raise RetryLater("stardex_api_key_missing", "STARDEX_API_KEY is not configured", retry_after=300)
        with self._lock:
            if self._stardex is None:
                limiter = RateLimiter(self.settings.stardex_requests_per_minute,
                                      window_seconds=self.settings.stardex_rate_window_seconds)
                self._stardex = StardexClient(self.settings.stardex_api_base, self._api_key, limiter, log=self.log)
            return self._stardex

    def _api_key(self, refresh: bool, deadline: Deadline) -> str:
        key = self.secrets.get(STARDEX_API_KEY, refresh=refresh, deadline=deadline)
        if not key:
            raise RetryLater("stardex_api_key_missing", "STARDEX_API_KEY is empty", retry_after=300)
        return key

    # ---- once: the de-duplication protocol ---------------------------------------------------

    def once(self, event: Event, deadline: Deadline, work: Callable[[Claim | None], dict[str, Any]],
             settle: bool = True) -> dict[str, Any]:
        """Run ``work`` at most once per delivery id (``STATE_BUCKET``): claim it pending, run, then
        mark the claim done (the event was applied, ignored or dead-lettered) or release it (a
        failure the sender will retry). Another attempt's pending claim answers 503 with a short
        ``Retry-After``; only a done claim is a ``duplicate``. ``settle=False`` leaves a successful
        claim pending for whoever settles it later (the worker, for a queued delivery)."""
        if self.state is None or not event.delivery_id:
            return work(None)
        held = self.state.claim(event.source, event.delivery_id, deadline, self.settings.function_timeout_seconds)
        if not isinstance(held, Claim):
            if held == DONE:
                return {"status": "duplicate"}
            raise RetryLater("delivery_in_progress", "another attempt of this delivery is still at work",
                             retry_after=IN_PROGRESS_RETRY_AFTER_SECONDS)
        try:
            answer = work(held)
        except Unprocessable:  # ``work`` kept it as a dead letter: settled
            self.settle(event.source, event.delivery_id, held, deadline)
            raise
        except BaseException:
            self.release(event.source, event.delivery_id, held, deadline)
            raise
        if settle:
            self.settle(event.source, event.delivery_id, held, deadline)
        return answer

    def settle(self, source: str, delivery_id: str | None, claim: Claim | None, deadline: Deadline | None) -> None:
        """Mark the claim done. A bucket that fails now changes nothing the sender is told (the
        event is settled); the claim stays pending until it is stale. Said loudly."""
        if self.state is None or claim is None:
            return
        try:
            self.state.settle(claim, deadline)
        except RetryLater:
            self.log.write("WARNING", "a claim could not be marked done", reason="claim_not_settled",
                           source=source, delivery_id=delivery_id)

    def release(self, source: str, delivery_id: str | None, claim: Claim, deadline: Deadline | None = None) -> None:
        try:
            self.state.release(claim, deadline)  # type: ignore[union-attr]
        except RetryLater:  # the retry meets a pending claim until it is stale: said loudly
            self.log.write("ERROR", "a claim could not be released", reason="claim_not_released",
                           source=source, delivery_id=delivery_id)

    # ---- dead letters and the queue ------------------------------------------------------

    def dead_letter(self, received: Received, error: WebhookError, attempts: int,
                    deadline: Deadline | None = None) -> str | None:
        """Keep the delivery in the bucket with why it failed, and log its name at ERROR (no
        personal data in the line); without a bucket the failure is only logged. Raises
        ``RetryLater`` if it cannot be stored."""
        letter = dead_letter_document(received, error, attempts)
        name = self.state.put_dead_letter(letter, deadline) if self.state is not None else None
        self.log.write("ERROR", f"dead letter {name}" if name else "dead letter not kept: STATE_BUCKET is not set",
                       source=received.source, event=received.event, outcome="dead_lettered", reason=error.reason,
                       status_code=error.status_code, delivery_id=received.delivery_id, dead_letter=name,
                       attempts=attempts)
        return name

    def enqueue(self, task: dict[str, Any], deadline: Deadline) -> str:
        """Create the task; a delivery too large for one is kept in the bucket and the task names it
        (``task["payload"]``): never refused for its size, which no retry changes."""
        if self.queue is None:
            raise ConfigurationError("DELIVERY is not queued")
        body = task_bytes(task)
        if len(body) > MAX_TASK_BYTES and self.state is not None:
            name = self.state.put_payload(task["source"], task, deadline)
            task = {key: task.get(key) for key in ("kind", "version", "source", "event", "delivery_id", "claim")}
            body = task_bytes({**task, "payload": name})
        return self.queue.enqueue(body, deadline)

    def forget_payload(self, name: str, deadline: Deadline, source: Any = None, delivery_id: Any = None) -> None:
        """A settled event's kept payload; left for the bucket's lifecycle rule when the bucket fails."""
        try:
            self.state.delete_payload(name, deadline)  # type: ignore[union-attr]
        except RetryLater:
            self.log.write("WARNING", "a kept payload could not be deleted", reason="payload_not_deleted", payload=name,
                           source=source, delivery_id=delivery_id)


# ---- the one answer and log line ------------------------------------------------------------

def answered(log: JsonLog, work: Callable[[dict[str, Any]], Answer], history: EventHistory | None = None) -> Answer:
    """Run a door's work, turn what it returns or raises into the answer docs/contract.md gives; write the event's
    history record (once the door set ``received_at``: the event is authentic) and the one log line,
    both from the record ``work`` fills. Never lets an exception escape: a bug is a 500 whose line says where."""
    started = time.perf_counter()
    record: dict[str, Any] = {}
    try:
        status_code, body, headers = work(record)
    except WebhookError as error:
        status_code, body, headers = error.status_code, error.body(), error.headers()
    except Exception as error:
        status_code, body, headers = 500, {"status": "error", "reason": "internal_error"}, {}
        frame = traceback.extract_tb(error.__traceback__)[-1]  # where it broke; its text may quote the payload
        record["error"] = f"{type(error).__name__} at {os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    severity = "INFO" if status_code < 400 else "WARNING"
    if status_code >= 500 and body.get("reason") not in ("stardex_unavailable", "stardex_rate_limited"):
        severity = "ERROR"
    outcome = body.get("status")
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    # Before the line: once an event is logged, it is kept.
    gauges = history.write(record, status_code, body, latency_ms) if history and "received_at" in record else {}
    log.write(severity, f"webhook {record.get('source') or '-'} {record.get('event') or '-'}: {outcome}",
              source=record.get("source"), event=record.get("event"), outcome=outcome, status_code=status_code,
              reason=body.get("reason"), detail=body.get("message"),
              person_id=body.get("person_id") or record.get("person_id"), delivery_id=record.get("delivery_id"),
              latency_ms=latency_ms, error=record.get("error"), attempts=record.get("attempts"),
              stardex_calls_last_minute=record.get("stardex_calls_last_minute"), skipped=record.get("skipped"),
              **gauges)
    return status_code, body, headers
