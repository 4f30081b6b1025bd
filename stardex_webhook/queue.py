"""Cloud Tasks: the durable queue between the public function and the private worker.

With ``DELIVERY=queued`` each verified event becomes one HTTP task to ``TASKS_WORKER_URL`` with an
OIDC token of ``TASKS_SERVICE_ACCOUNT``, so only the queue can invoke the worker; the queue then
paces and retries it for a day. A task that cannot be created is a 503, never a 200: the sender
still holds the event. The client is made on first use; ``CLOUD_TASKS_ENDPOINT`` is an emulator.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from .deadline import Deadline
from .errors import RetryLater

# Cloud Tasks refuses a task over 1 MB; its body is kept under that with room for the envelope.
MAX_TASK_BYTES = 1_000_000
# The longest a create may take: the sender is waiting for our answer.
CREATE_TIMEOUT_SECONDS = 10.0


def task_bytes(task_body: dict[str, Any]) -> bytes:
    """A task's body as sent: ASCII JSON (non-ASCII text escaped, up to six bytes a character)."""
    return json.dumps(task_body, separators=(",", ":"), allow_nan=False).encode("ascii")


class TaskQueue:
    """``enqueue(task_body)`` creates one HTTP task; every failure is ``RetryLater``."""

    def __init__(self, queue: str, worker_url: str, service_account: str, endpoint: str | None = None) -> None:
        self.queue = queue
        self.worker_url = worker_url
        self.service_account = service_account
        self.endpoint = endpoint
        self._client: Any = None
        self._lock = threading.Lock()

    def _tasks_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import tasks_v2

                transport = None  # the client's own
                if self.endpoint:
                    import grpc
                    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

                    target = self.endpoint.split("://", 1)[-1].rstrip("/")
                    transport = CloudTasksGrpcTransport(channel=grpc.insecure_channel(target))
                self._client = tasks_v2.CloudTasksClient(transport=transport)
            return self._client

    def enqueue(self, body: bytes, deadline: Deadline) -> str:
        """Create the task whose body is ``body`` (``task_bytes``) and return its name."""
        if len(body) > MAX_TASK_BYTES:
            # Retrying cannot make it smaller; but the event is authentic, so it is not dropped
            # silently either: the sender is told to retry and the operator sees the 503s.
            raise RetryLater("task_too_large", f"the task would be {len(body)} bytes, over Cloud Tasks' 1 MB", retry_after=300)
        timeout = min(CREATE_TIMEOUT_SECONDS, deadline.remaining())
        if timeout <= 0:
            raise RetryLater("queue_unavailable", "no time left to create the task")
        try:
            from google.cloud import tasks_v2

            client = self._tasks_client()
            request = tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=self.worker_url, body=body,
                                           headers={"Content-Type": "application/json"},
                                           oidc_token=tasks_v2.OidcToken(service_account_email=self.service_account))
            created = client.create_task(parent=self.queue, task=tasks_v2.Task(http_request=request), timeout=timeout)
        except Exception as error:  # grpc, auth, a missing queue: the event stays with the sender
            raise RetryLater("queue_unavailable", f"the task could not be created ({type(error).__name__})") from None
        return created.name
