"""The public function's side of the queue: one HTTP task per event, against gcloud-tasks-emulator
through the real google-cloud-tasks client."""

from __future__ import annotations

import json

import pytest

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater
from stardex_webhook.queue import TaskQueue
from tests.fakes.emulators import free_port, tasks_emulator

QUEUE = "projects/test/locations/here/queues/stardex"
WORKER_URL = "http://127.0.0.1:9/"  # the discard port: nothing answers, and the task stays queued
ACCOUNT = "tasks@test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def endpoint():
    with tasks_emulator(QUEUE) as endpoint:
        yield endpoint


def _client(endpoint):
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(endpoint)))


def test_an_event_becomes_one_http_task_to_the_worker_with_an_oidc_token(endpoint):
    client = _client(endpoint)
    client.pause_queue(name=QUEUE)  # keep the task in the queue, to look at it
    try:
        body = {"kind": "stardex-webhook/task", "source": "greenhouse", "mapped": {"update": {"name": "Ada"}}}
        name = TaskQueue(QUEUE, WORKER_URL, ACCOUNT, endpoint=f"http://{endpoint}").enqueue(body, Deadline(5))
        tasks = {task.name: task for task in client.list_tasks(parent=QUEUE)}
        task = tasks[name]
        assert task.http_request.url == WORKER_URL
        assert task.http_request.http_method.name == "POST"
        assert task.http_request.oidc_token.service_account_email == ACCOUNT
        assert task.http_request.headers["Content-Type"] == "application/json"
        assert json.loads(task.http_request.body) == body
    finally:
        client.purge_queue(name=QUEUE)
        client.resume_queue(name=QUEUE)


@pytest.mark.parametrize("queue, where", [
    ("projects/test/locations/here/queues/no-such-queue", "emulator"),
    (QUEUE, "nowhere"),
])
def test_a_task_that_cannot_be_created_is_retry_later(endpoint, queue, where):
    target = endpoint if where == "emulator" else f"127.0.0.1:{free_port()}"
    with pytest.raises(RetryLater) as caught:
        TaskQueue(queue, WORKER_URL, ACCOUNT, endpoint=target).enqueue({"kind": "x"}, Deadline(3))
    assert caught.value.reason == "queue_unavailable"


def test_a_task_over_cloud_tasks_limit_is_refused_before_any_call(endpoint):
    with pytest.raises(RetryLater) as caught:
        TaskQueue(QUEUE, WORKER_URL, ACCOUNT, endpoint=endpoint).enqueue({"body": "x" * 1_000_001}, Deadline(3))
    assert caught.value.reason == "task_too_large"
