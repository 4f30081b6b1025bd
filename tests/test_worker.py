"""worker: the task door (``main.handle_task``), built in-process from main.py, Stardex mocked.

What it takes (only the tasks the public function enqueues), what it answers the queue (2xx when
the event is settled, 429/503 to be retried, a dead letter on the last attempt), and that it maps
with the mapping files as they are when the task runs."""

from __future__ import annotations

import json
import time

import functions_framework
import pytest
import responses

from stardex_webhook.ingress import task_body
from stardex_webhook.records import Delivery, Headers
from stardex_webhook.sources import SOURCES
from tests.conftest import PERSON_ID, ROOT, signed

API = "https://stardex.test/v1"
QUEUE = {"X-CloudTasks-QueueName": "stardex-webhook", "X-CloudTasks-TaskRetryCount": "0"}


@pytest.fixture
def worker(base_env):
    base_env.setenv("TASK_MAX_ATTEMPTS", "3")
    base_env.setenv("TASK_DEADLINE_SECONDS", "2")
    base_env.setenv("PERSON_MEMORY_SECONDS", "0")
    return lambda: functions_framework.create_app(target="handle_task", source=str(ROOT / "main.py")).test_client()


@pytest.fixture
def stardex():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def task(body: dict | None = None) -> dict:
    """The task the public function enqueues for a Standard Webhooks delivery naming the person."""
    raw, headers = signed("generic", body or {"type": "candidate.updated", "stardex_person_id": PERSON_ID,
                                             "current_job_title": "Engineer"})
    delivery = Delivery(Headers(headers.items()), raw, time.time())
    return json.loads(json.dumps(task_body(delivery, SOURCES["generic"].parse(delivery))))


def post(client, document, retry: int = 0, **headers):
    return client.post("/", data=json.dumps(document), headers={**QUEUE, "X-CloudTasks-TaskRetryCount": str(retry),
                                                                 **headers})


def test_a_task_is_mapped_and_delivered_by_the_worker(worker, stardex):
    patch = stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    answer = post(worker(), task())
    assert (answer.status_code, answer.get_json()["status"]) == (200, "updated"), answer.get_json()
    assert json.loads(patch.calls[0].request.body) == {"current_job_title": "Engineer"}


def test_the_worker_maps_with_the_files_as_they_are_when_it_runs(worker, stardex, base_env, tmp_path):
    """The task holds the delivery, not a mapped update: a mapping changed since is the one used."""
    document = json.loads((ROOT / "mappings" / "generic.json").read_text())
    document["events"] = ["candidate.hired"]  # no longer acts on candidate.updated
    (tmp_path / "generic.json").write_text(json.dumps(document))
    base_env.setenv("MAPPINGS_DIR", str(tmp_path))
    answer = post(worker(), task())
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "candidate.updated"}
    assert len(stardex.calls) == 0


def test_a_task_enqueued_before_the_upgrade_is_delivered(worker, stardex):
    """Version 1 carried a mapped update beside the delivery; one still queued is not lost."""
    stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    old = {**task(), "version": 1, "mapped": {"update": {}}}
    old.pop("claim")
    assert post(worker(), old).get_json()["status"] == "updated"


@pytest.mark.parametrize("headers, document, reason", [
    ({"X-CloudTasks-QueueName": ""}, None, "not_a_task"),
    ({"X-CloudTasks-QueueName": "another-queue"}, None, "wrong_queue"),
    ({}, {"kind": "stardex-webhook/task", "version": 9}, "invalid_task"),
    ({}, {"hello": "world"}, "invalid_task"),
    ({}, "claim-elsewhere", "invalid_task"),
], ids=["no queue header", "another queue", "another version", "not a task", "a claim outside deliveries/"])
def test_only_the_tasks_the_public_function_enqueues_are_taken(worker, stardex, base_env, headers, document, reason):
    base_env.setenv("TASKS_QUEUE", "projects/p/locations/l/queues/stardex-webhook")
    if document == "claim-elsewhere":
        document = {**task(), "claim": {"name": "dead-letters/generic/x.json", "generation": 1}}
    answer = post(worker(), document or task(), **headers)
    assert (answer.status_code, answer.get_json()["reason"]) == (400, reason)
    assert len(stardex.calls) == 0


def test_a_422_is_settled_as_a_dead_letter_not_retried(worker, stardex):
    stardex.patch(f"{API}/persons/{PERSON_ID}", status=404, json={"success": False, "error": {"code": "NOT_FOUND"}})
    answer = post(worker(), task())
    assert answer.status_code == 200, "the queue stops: retrying cannot fix it"
    assert answer.get_json()["status"] == "failed"  # no bucket here: only the log keeps it
    assert answer.get_json()["reason"] == "person_not_found"


@pytest.mark.parametrize("status, expected", [(503, 503), (429, 429)])
def test_an_unavailable_stardex_is_retried_by_the_queue(worker, stardex, status, expected):
    stardex.patch(f"{API}/persons/{PERSON_ID}", status=status, headers={"Retry-After": "60"},
                json={"success": False, "error": {"code": "X"}})
    answer = post(worker(), task())
    assert answer.status_code == expected
    assert "Retry-After" in answer.headers


def test_the_last_attempt_dead_letters_instead_of_failing(worker, stardex):
    stardex.patch(f"{API}/persons/{PERSON_ID}", status=503, json={"success": False, "error": {"code": "X"}})
    answer = post(worker(), task(), retry=2)  # the third of TASK_MAX_ATTEMPTS=3
    assert answer.status_code == 200
    assert (answer.get_json()["status"], answer.get_json()["attempts"]) == ("failed", 3)


def test_a_task_met_with_dry_run_on_stays_queued_instead_of_being_settled_unapplied(worker, stardex, base_env):
    """DRY_RUN turned on while tasks wait (an operator stopping writes during an incident): a 200
    dry_run would end the task and mark its claim done with nothing applied, ignored or kept. The
    queue keeps it (503), and its last attempt keeps it as a dead letter to replay."""
    base_env.setenv("DRY_RUN", "1")
    client = worker()
    answer = post(client, task())
    assert (answer.status_code, answer.get_json()["reason"]) == (503, "dry_run")
    assert "Retry-After" in answer.headers
    last = post(client, task(), retry=2)
    assert (last.status_code, last.get_json()["reason"], last.get_json()["attempts"]) == (200, "dry_run", 3)
    assert last.get_json()["status"] == "failed"  # no bucket here: with one, the dead letter
    assert len(stardex.calls) == 0


def test_the_worker_answers_its_health_check(worker):
    answer = worker().get("/healthz")
    assert answer.status_code == 200 and answer.get_json()["status"] == "ok"


# ---- a claim taken over while its task was still queued ---------------------------------------

class Queue:
    """The queue, as a list of the task bodies created."""

    def __init__(self) -> None:
        self.tasks: list[bytes] = []

    def enqueue(self, body: bytes, deadline) -> str:
        self.tasks.append(body)
        return f"tasks/{len(self.tasks)}"


@pytest.fixture
def queued(base_env):
    """The public function and the worker in-process over one pipeline, a bucket in memory and a
    list for the queue: (public client, worker client, bucket, queue)."""
    from flask import Flask, request

    from stardex_webhook.ingress import Ingress
    from stardex_webhook.pipeline import Pipeline
    from stardex_webhook.worker import TaskWorker
    from tests.fakes.memory_bucket import MemoryBucket

    for name, value in {"DELIVERY": "queued", "STATE_BUCKET": "state-test", "TASKS_QUEUE": "projects/p/locations/l/queues/stardex-webhook",
                        "TASKS_WORKER_URL": "https://worker.test/", "TASKS_SERVICE_ACCOUNT": "tasks@p.iam.gserviceaccount.com",
                        "TASK_MAX_ATTEMPTS": "3", "TASK_DEADLINE_SECONDS": "2", "PERSON_MEMORY_SECONDS": "0"}.items():
        base_env.setenv(name, value)
    pipeline = Pipeline.from_environment()
    bucket, queue = MemoryBucket(), Queue()
    pipeline.state._bucket, pipeline.queue, pipeline.history = bucket, queue, None
    public, task_door = Flask("public"), Flask("worker")
    public.add_url_rule("/<source>", "webhook", lambda source: Ingress(pipeline).handle(request), methods=["POST"])
    task_door.add_url_rule("/", "task", lambda: TaskWorker(pipeline).handle(request), methods=["POST"])
    return public.test_client(), task_door.test_client(), bucket, queue


def test_a_task_whose_claim_a_later_delivery_took_over_leaves_the_event_to_the_newer_task(queued, stardex):
    """Stardex is down: the first task keeps being retried, its claim pending. A redelivery once the
    claim is older than the function's timeout takes it over and queues a second task. The event is
    then the newer task's: the older one stops (it applied it too, or kept a second dead letter)."""
    public, worker, bucket, queue = queued
    raw, headers = signed("generic", {"type": "candidate.updated", "stardex_person_id": PERSON_ID,
                                      "current_job_title": "Engineer"})
    assert public.post("/generic", data=raw, headers=headers).get_json()["status"] == "queued"
    (claim,) = [name for name in bucket.objects if name.startswith("deliveries/")]
    data, generation = bucket.objects[claim]
    aged = {**json.loads(data), "claimed_at": json.loads(data)["claimed_at"] - 3600}  # retried for an hour
    bucket.objects[claim] = (json.dumps(aged).encode(), generation)
    assert public.post("/generic", data=raw, headers=headers).get_json()["status"] == "queued"
    assert len(queue.tasks) == 2

    patch = stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    first, second = (worker.post("/", data=body, headers={**QUEUE, "X-CloudTasks-TaskRetryCount": "1"})
                     for body in queue.tasks)
    assert (first.status_code, first.get_json()) == (200, {"status": "duplicate", "reason": "claim_taken_over"})
    assert (second.status_code, second.get_json()["status"]) == (200, "updated")
    assert len(patch.calls) == 1, "applied once"
    assert json.loads(bucket.objects[claim][0])["state"] == "done"


def test_a_task_whose_claim_cannot_be_read_is_still_delivered(queued, stardex, monkeypatch):
    """Whether a later delivery took the claim over is not known while the bucket fails: the task
    goes on as before that check, and its attempt does not fail for it (on the last one the event
    would be lost)."""
    public, worker, bucket, queue = queued
    raw, headers = signed("generic", {"type": "candidate.updated", "stardex_person_id": PERSON_ID,
                                      "current_job_title": "Engineer"})
    assert public.post("/generic", data=raw, headers=headers).get_json()["status"] == "queued"
    readable = bucket.get_blob

    def get_blob(name, **kwargs):
        if name.startswith("deliveries/"):
            raise ConnectionError("the bucket is unreachable")
        return readable(name, **kwargs)

    monkeypatch.setattr(bucket, "get_blob", get_blob)
    patch = stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    (body,) = queue.tasks
    answer = worker.post("/", data=body, headers={**QUEUE, "X-CloudTasks-TaskRetryCount": "35"})
    assert (answer.status_code, answer.get_json()["status"]) == (200, "updated")
    assert len(patch.calls) == 1
