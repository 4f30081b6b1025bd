"""The queued delivery's worker (``main.handle_task``), private to the queue's service account: it parses
a task's raw delivery again (its signature was checked on receipt), prepares it with the mapping files as
they are now, processes it and settles the claim ``ingress`` took, within ``TASK_DEADLINE_SECONDS``.
What it answers the queue: docs/queued.md, "How it works"."""

from __future__ import annotations

import json
from typing import Any

from flask import Request, Response

from .deadline import Deadline
from .errors import BadRequest, MethodNotAllowed, RetryLater, TooLarge, Unprocessable, WebhookError
from .ingress import HEALTH_PATH, TASK_KIND, TASK_VERSION, health, respond
from .pipeline import Answer, Pipeline, answered
from .queue import MAX_TASK_BYTES
from .records import Claim, Handshake, Received
from .state import CLAIMS_PREFIX, PAYLOADS_PREFIX

QUEUE_HEADER = "X-CloudTasks-QueueName"
RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"


class TaskWorker:  # ``handle_task``: one per process, over the process's pipeline
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def handle(self, request: Request) -> Response:
        return respond(answered(self.pipeline.log, lambda record: self._task(request, record), self.pipeline.history))

    def _task(self, request: Request, record: dict[str, Any]) -> Answer:
        if request.path.strip("/") == HEALTH_PATH:
            return health(self.pipeline, request.method)
        if request.method != "POST":
            raise MethodNotAllowed("method_not_allowed", "tasks are POSTed")
        self._check_queue(request.headers.get(QUEUE_HEADER, ""))
        document, claim = self._read(request)
        record.update(source=document.get("source"), event=document.get("event"), delivery_id=document.get("delivery_id"))
        attempts = _retry_count(request.headers.get(RETRY_COUNT_HEADER, "")) + 1
        deadline = Deadline(self.pipeline.settings.task_deadline_seconds)
        payload = document.get("payload")
        if claim is not None and self.pipeline.state is not None and self.pipeline.state.taken_over(claim, deadline):
            if payload is not None:  # a later delivery took the claim over and queued a newer task, or it is settled
                self.pipeline.forget_payload(payload, deadline, document.get("source"), document.get("delivery_id"))
            return 200, {"status": "duplicate", "reason": "claim_taken_over"}, {}
        kept = document if payload is None else self._payload(payload, deadline)
        if kept is None:  # deleted once the event was settled: this is the queue delivering it again
            return 200, {"status": "duplicate", "reason": "payload_settled"}, {}
        received = self._received(kept)
        record.update(source=received.source, event=received.event, delivery_id=received.delivery_id,
                      received_at=received.received_at, door="worker", attempts=attempts)
        try:
            answer = self._deliver(received, record, deadline.shortened())
        except Unprocessable as error:
            answer = self._dead_letter(received, error, attempts, deadline)
        except Exception as error:
            if attempts < self.pipeline.settings.task_max_attempts:
                if isinstance(error, RetryLater) and error.reason == "stardex_rate_limited":
                    return 429, error.body(), error.headers()  # the queue backs off
                raise
            if not isinstance(error, WebhookError):
                record["error"] = type(error).__name__
                error = RetryLater("internal_error", "the worker failed")
            answer = self._dead_letter(received, error, attempts, deadline)
        self.pipeline.settle(received.source, received.delivery_id, claim, deadline)
        if payload is not None:  # settled: applied, ignored or in its dead letter
            self.pipeline.forget_payload(payload, deadline, received.source, received.delivery_id)
        return 200, answer, {}

    def _deliver(self, received: Received, record: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        pipeline = self.pipeline
        accepted = pipeline.accept(pipeline.source(received.source), received.delivery(), deadline, verify=False)
        if isinstance(accepted, Handshake):  # not a delivery a sender's handshake would answer
            raise BadRequest("invalid_task", "the task holds a handshake, not an event")
        answer = pipeline.ignored(accepted)
        if answer is not None:
            return answer
        if pipeline.settings.dry_run:  # a 200 would end the task, its claim done, nothing applied nor kept
            raise RetryLater("dry_run", "DRY_RUN is on: the event waits in the queue", retry_after=300)
        return pipeline.process(pipeline.prepare(accepted, deadline), deadline, record)

    def _dead_letter(self, received: Received, error: WebhookError, attempts: int, deadline: Deadline) -> dict[str, Any]:
        name = self.pipeline.dead_letter(received, error, attempts, deadline)
        answer = {"status": "dead_lettered" if name else "failed", "reason": error.reason, "attempts": attempts}
        return {**answer, "dead_letter": name} if name else answer

    def _check_queue(self, header: str) -> None:  # a sanity check only: IAM is the protection
        if not header.strip():
            raise BadRequest("not_a_task", f"no {QUEUE_HEADER} header: this endpoint takes Cloud Tasks tasks only")
        queue = self.pipeline.settings.tasks_queue
        if queue and header.strip() not in (queue, queue.rsplit("/", 1)[-1]):
            raise BadRequest("wrong_queue", "the task comes from another queue")

    def _payload(self, name: Any, deadline: Deadline) -> Any:
        """The delivery too large for a task, kept in the bucket; None once deleted (the event is settled)."""
        if not isinstance(name, str) or not name.startswith(PAYLOADS_PREFIX) or self.pipeline.state is None:
            raise BadRequest("invalid_task", "the task names no payload in the state bucket")
        return self.pipeline.state.payload(name, deadline)

    def _received(self, document: Any) -> Received:
        try:
            received = Received.from_dict(document)
        except ValueError as error:
            raise BadRequest("invalid_task", f"not a task this function enqueued ({error})") from None
        if received.source not in self.pipeline.sources:
            raise BadRequest("invalid_task", "not a task this function enqueued (unknown source)")
        return received

    def _read(self, request: Request) -> tuple[dict[str, Any], Claim | None]:
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
        if size > limit:
            raise TooLarge("task_too_large", "the task body is over Cloud Tasks' limit")
        try:
            document = json.loads(b"".join(chunks).decode("utf-8"))
            # Version 1 (a mapped update beside the delivery), queued across an upgrade: delivered as 2.
            if not isinstance(document, dict) or document.get("kind") != TASK_KIND \
                    or document.get("version") not in (1, TASK_VERSION):
                raise ValueError("not a task of this function")
            claim = _claim(document.get("claim"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise BadRequest("invalid_task", f"not a task this function enqueued ({error})") from None
        return document, claim


def _claim(document: Any) -> Claim | None:
    if document is None:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str) \
            or not isinstance(document.get("generation"), int) or isinstance(document.get("generation"), bool):
        raise ValueError("claim must be {name, generation}")
    if not document["name"].startswith(CLAIMS_PREFIX):
        raise ValueError("not a claim's name")
    return Claim(document["name"], document["generation"])


def _retry_count(header: str) -> int:
    try:
        return max(0, int(header.strip()))
    except ValueError:
        return 0
