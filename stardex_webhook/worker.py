"""Queued delivery's two ends and what is never lost: the task the public function enqueues, the
private worker (``main.handle_task``) that delivers it, claims and dead letters.

Every authentic event ends in exactly one of: applied once, deliberately ignored, or kept as a
dead letter that ``python -m stardex_webhook.replay`` replays.

The worker runs the app's own delivery (``WebhookApp._deliver``) on the task's ``MappedUpdate``.
It answers 2xx when the event was applied, ignored or dead-lettered (the queue stops), 429/503
when Stardex or Secret Manager is unavailable (the queue retries with backoff), and on the last
attempt (``X-CloudTasks-TaskRetryCount`` + 1 reaching ``TASK_MAX_ATTEMPTS``, Terraform's
``max_attempts``) it dead-letters instead of failing. Its deadline (``TASK_DEADLINE_SECONDS``) is
longer than a webhook's, since no sender waits: it waits for the rate limiter within it.
"""

from __future__ import annotations

import json
import time
import traceback
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from flask import Request, Response

from .config import Settings
from .deadline import Deadline
from .errors import BadRequest, MethodNotAllowed, RetryLater, TooLarge, Unprocessable, WebhookError
from .logs import JsonLog
from .mapping import MappedUpdate
from .queue import MAX_TASK_BYTES, TaskQueue
from .sources.base import Delivery, Event, Headers
from .state import Claim, StateStore, decode_body, encode_body, without_credentials
from .validation import validate_update

if TYPE_CHECKING:
    from .app import WebhookApp

HEALTH_PATH = "healthz"

TASK_KIND = "stardex-webhook/task"
TASK_VERSION = 1
QUEUE_HEADER = "X-CloudTasks-QueueName"
RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"
# Returned by ``Durability.claim`` when another delivery of the same event holds the claim.
DUPLICATE = object()


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Received(NamedTuple):
    """What is kept of an authentic delivery, in a task and in a dead letter: enough to parse it
    again, never what proved it (signatures and tokens are dropped)."""

    source: str
    event: str | None
    delivery_id: str | None
    received_at: float
    headers: list[list[str]]
    query: list[list[str]]
    body: dict[str, str]  # {"body", "body_encoding"}

    @classmethod
    def of(cls, source: str, delivery: Delivery, event: Event) -> "Received":
        return cls(source, event.event_type, event.delivery_id, delivery.received_at,
                   without_credentials(delivery.headers.items()), without_credentials(delivery.query.items()),
                   encode_body(delivery.body))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "event": self.event, "delivery_id": self.delivery_id,
                "received_at": _iso(self.received_at), "received_at_unix": self.received_at,
                "headers": self.headers, "query": self.query, **self.body}

    @classmethod
    def from_dict(cls, document: Any) -> "Received":
        """Read one back from a task or a dead letter; any other shape raises ``ValueError``."""
        if not isinstance(document, dict):
            raise ValueError("not an object")
        source, event, delivery_id = document.get("source"), document.get("event"), document.get("delivery_id")
        received_at = document.get("received_at_unix")
        if not isinstance(source, str) or not all(v is None or isinstance(v, str) for v in (event, delivery_id)):
            raise ValueError("source, event and delivery_id must be strings")
        if not isinstance(received_at, (int, float)) or isinstance(received_at, bool):
            raise ValueError("received_at_unix must be a number")
        pairs = {}
        for key in ("headers", "query"):
            value = document.get(key, [])
            if not isinstance(value, list) or not all(
                    isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
                    for pair in value):
                raise ValueError(f"{key} must be a list of [name, value]")
            pairs[key] = value
        decode_body(document)  # raises ValueError when the body is missing or not decodable
        body = {"body": document["body"], "body_encoding": document.get("body_encoding", "utf-8")}
        return cls(source, event, delivery_id, float(received_at), pairs["headers"], pairs["query"], body)

    def delivery_headers(self) -> Headers:
        return Headers((name, value) for name, value in self.headers)

    def raw_body(self) -> bytes:
        return decode_body(self.body)


class Durability:
    """The queue and the bucket as the pipeline sees them; each is off when not configured."""

    def __init__(self, settings: Settings, log: JsonLog) -> None:
        self.settings = settings
        self.log = log
        self.state = StateStore(settings.state_bucket) if settings.state_bucket else None
        self.queue = TaskQueue(settings.tasks_queue or "", settings.tasks_worker_url or "",
                               settings.tasks_service_account or "", settings.cloud_tasks_endpoint) \
            if settings.delivery == "queued" else None

    def claim(self, source: str, delivery_id: str | None, deadline: Deadline | None = None) -> Claim | object | None:
        """The claim on this delivery id, ``DUPLICATE`` when another delivery holds it, or None
        when there is nothing to claim (no bucket, or a sender that gives no delivery id)."""
        if self.state is None or not delivery_id:
            return None
        claim = self.state.claim(source, delivery_id, deadline)
        return DUPLICATE if claim is None else claim

    def settle(self, claim: Claim | object | None, deadline: Deadline | None = None) -> None:
        """Mark the claim done once its event is settled. A bucket that fails now changes nothing
        the sender is told (the event is settled); the claim stays pending, and only a delivery of
        it after ``STALE_CLAIM_SECONDS`` would apply it again. Said loudly."""
        if self.state is not None and isinstance(claim, Claim):
            try:
                self.state.settle(claim, deadline)
            except RetryLater:
                self.log.write("WARNING", "a claim could not be marked done", reason="claim_not_settled")

    def release(self, claim: Claim | object | None) -> None:
        if self.state is not None and isinstance(claim, Claim):
            try:
                self.state.release(claim)
            except RetryLater:  # the sender's retry will then be a duplicate: say so loudly
                self.log.write("ERROR", "a claim could not be released", reason="claim_not_released")

    @staticmethod
    def task_body(source: str, delivery: Delivery, event: Event, mapped: MappedUpdate) -> dict[str, Any]:
        return {"kind": TASK_KIND, "version": TASK_VERSION, **Received.of(source, delivery, event).to_dict(),
                "mapped": mapped.to_dict()}

    def enqueue(self, task_body: dict[str, Any], deadline: Deadline) -> str:
        assert self.queue is not None
        return self.queue.enqueue(task_body, deadline)

    @staticmethod
    def letter(source: str, delivery: Delivery, event: Event, error: WebhookError, attempts: int) -> dict[str, Any]:
        return letter_of(Received.of(source, delivery, event), error, attempts)

    def dead_letter(self, letter: dict[str, Any]) -> str | None:
        """Keep the letter in the bucket and log its name at ERROR (no personal data in the line);
        without a bucket the failure is only logged. Raises ``RetryLater`` if it cannot be stored."""
        name = self.state.put_dead_letter(letter) if self.state is not None else None
        error = letter.get("error", {})
        self.log.write("ERROR", f"dead letter {name}" if name else "dead letter not kept: STATE_BUCKET is not set",
                       source=letter.get("source"), event=letter.get("event"), outcome="dead_lettered",
                       reason=error.get("reason"), status_code=error.get("status_code"),
                       delivery_id=letter.get("delivery_id"), dead_letter=name, attempts=letter.get("attempts"))
        return name


def letter_of(received: Received, error: WebhookError, attempts: int) -> dict[str, Any]:
    """A dead letter: the delivery as kept, why it failed, after how many attempts."""
    return {**received.to_dict(), "error": {"status_code": error.status_code, **error.body()},
            "attempts": attempts, "dead_lettered_at": _iso(time.time())}


class TaskWorker:
    """``handle_task``: accepts only the task bodies ``Durability.task_body`` makes."""

    def __init__(self, app: "WebhookApp") -> None:
        self.app = app
        self.settings: Settings = app._settings

    def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        record: dict[str, Any] = {}
        try:
            status_code, body, headers = self._task(request, record)
        except WebhookError as error:
            status_code, body, headers = error.status_code, error.body(), error.headers()
        except Exception as error:  # a bug: the queue retries it; the last attempt dead-letters it
            status_code, body, headers = 500, {"status": "error", "reason": "internal_error"}, {}
            frame = traceback.extract_tb(error.__traceback__)[-1]
            record["error"] = f"{type(error).__name__} at {frame.name}:{frame.lineno}"
        if status_code == 503 and body.get("reason") == "stardex_rate_limited":
            status_code = 429  # the queue backs off
        self.app._log_webhook(status_code, body, record, started)
        return self.app._respond((status_code, body, headers), streamed=False)

    def _task(self, request: Request, record: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if request.path.strip("/") == HEALTH_PATH:
            return self.app._health(request.method)
        if request.method != "POST":
            raise MethodNotAllowed("method_not_allowed", "tasks are POSTed")
        self._check_queue(request.headers.get(QUEUE_HEADER, ""))
        received, mapped = self._read(request)
        record.update(source=received.source, event=received.event, delivery_id=received.delivery_id)
        attempts = _retry_count(request.headers.get(RETRY_COUNT_HEADER, "")) + 1
        last = attempts >= self.settings.task_max_attempts
        deadline = Deadline(self.settings.task_deadline_seconds)
        try:
            return 200, self.app._deliver(mapped, record, deadline), {}
        except Unprocessable as error:
            return 200, self._dead_letter(received, error, attempts), {}
        except RetryLater as error:
            if not last:
                raise
            return 200, self._dead_letter(received, error, attempts), {}
        except Exception as error:
            if not last:
                raise
            record["error"] = type(error).__name__
            return 200, self._dead_letter(received, RetryLater("internal_error", "the worker failed"), attempts), {}

    def _dead_letter(self, received: Received, error: WebhookError, attempts: int) -> dict[str, Any]:
        name = self.app._durability.dead_letter(letter_of(received, error, attempts))
        answer = {"status": "dead_lettered" if name else "failed", "reason": error.reason, "attempts": attempts}
        if name:
            answer["dead_letter"] = name
        return answer

    def _check_queue(self, header: str) -> None:
        """A sanity check only: IAM is the protection (only the queue's account may invoke)."""
        if not header.strip():
            raise BadRequest("not_a_task", f"no {QUEUE_HEADER} header: this endpoint takes Cloud Tasks tasks only")
        queue = self.settings.tasks_queue
        if queue and header.strip() not in (queue, queue.rsplit("/", 1)[-1]):
            raise BadRequest("wrong_queue", "the task comes from another queue")

    def _read(self, request: Request) -> tuple[Received, MappedUpdate]:
        limit = MAX_TASK_BYTES + 64 * 1024
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge("task_too_large", "the task body is over Cloud Tasks' limit")
        chunks, size = [], 0
        while size <= limit:  # a stream may hand over less than asked: read to its end, bounded
            chunk = request.stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
        if size > limit:
            raise TooLarge("task_too_large", "the task body is over Cloud Tasks' limit")
        try:
            document = json.loads(raw.decode("utf-8"))
            if not isinstance(document, dict) or document.get("kind") != TASK_KIND or document.get("version") != TASK_VERSION:
                raise ValueError("not a task of this function")
            received = Received.from_dict(document)
            if received.source not in self.app._sources:
                raise ValueError("unknown source")
            mapped_document = document.get("mapped")
            if not isinstance(mapped_document, dict):
                raise ValueError("no mapped update")
            mapped = MappedUpdate.from_dict(mapped_document)
            if not isinstance(mapped.update, dict) or mapped.write_policy not in ("overwrite", "fill"):
                raise ValueError("not a mapped update")
            validate_update(mapped.update)
        except (UnicodeDecodeError, ValueError, RecursionError, Unprocessable) as error:
            reason = getattr(error, "reason", None) or "invalid_task"
            raise BadRequest("invalid_task", f"not a task this function enqueued ({reason})") from None
        return received, mapped


def _retry_count(header: str) -> int:
    try:
        return max(0, int(header.strip()))
    except ValueError:
        return 0


def replayable(letter: Mapping[str, Any]) -> Received:
    """The delivery kept in a dead letter; ``ValueError`` when the object is no dead letter."""
    return Received.from_dict(dict(letter))
