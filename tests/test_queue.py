"""The public function's side of the queue: one HTTP task per event, against gcloud-tasks-emulator
through the real google-cloud-tasks client."""

from __future__ import annotations

import json

import pytest

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater
from stardex_webhook.queue import TaskQueue, task_bytes
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
        name = TaskQueue(QUEUE, WORKER_URL, ACCOUNT, endpoint=f"http://{endpoint}").enqueue(task_bytes(body), Deadline(5))
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
        TaskQueue(queue, WORKER_URL, ACCOUNT, endpoint=target).enqueue(task_bytes({"kind": "x"}), Deadline(3))
    assert caught.value.reason == "queue_unavailable"


def test_a_task_over_cloud_tasks_limit_is_refused_before_any_call(endpoint):
    with pytest.raises(RetryLater) as caught:
        TaskQueue(QUEUE, WORKER_URL, ACCOUNT, endpoint=endpoint).enqueue(task_bytes({"body": "x" * 1_000_001}), Deadline(3))
    assert caught.value.reason == "task_too_large"


# ---- the settings ------------------------------------------------------------------------------

QUEUED = {"DELIVERY": "queued", "TASKS_QUEUE": QUEUE, "TASKS_WORKER_URL": "https://worker.example.net/",
          "TASKS_SERVICE_ACCOUNT": ACCOUNT, "STATE_BUCKET": "my-state"}


def test_queued_settings_are_read():
    from stardex_webhook.config import load_settings

    settings = load_settings({**QUEUED, "STATE_BUCKET": "my-state", "TASK_MAX_ATTEMPTS": "5"})
    assert (settings.delivery, settings.tasks_queue, settings.tasks_worker_url, settings.tasks_service_account,
            settings.state_bucket, settings.task_max_attempts) == (
        "queued", QUEUE, "https://worker.example.net/", ACCOUNT, "my-state", 5)
    assert load_settings({}).delivery == "sync"


@pytest.mark.parametrize("change, named", [
    ({"TASKS_QUEUE": ""}, "TASKS_QUEUE"),
    ({"TASKS_WORKER_URL": ""}, "TASKS_WORKER_URL"),
    ({"TASKS_SERVICE_ACCOUNT": ""}, "TASKS_SERVICE_ACCOUNT"),
    ({"STATE_BUCKET": ""}, "STATE_BUCKET"),  # a queued delivery is claimed, and kept if it fails, there
    ({"DELIVERY": "later"}, "DELIVERY"),
    ({"TASKS_QUEUE": "stardex-webhook"}, "TASKS_QUEUE"),
    ({"TASKS_WORKER_URL": "http://worker.example.net/"}, "TASKS_WORKER_URL"),
    ({"TASKS_SERVICE_ACCOUNT": "tasks"}, "TASKS_SERVICE_ACCOUNT"),
    ({"STATE_BUCKET": "gs://my-state"}, "STATE_BUCKET"),
    ({"TASK_MAX_ATTEMPTS": "0"}, "TASK_MAX_ATTEMPTS"),
])
def test_a_queued_setting_that_cannot_work_stops_the_start_naming_it(change, named):
    from stardex_webhook.config import load_settings
    from stardex_webhook.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        load_settings({**QUEUED, **change})
    assert named in str(caught.value)
