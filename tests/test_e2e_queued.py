"""Queued delivery end to end: the real functions-framework servers (the public function with
``DELIVERY=queued`` and the private worker, ``--target=handle_task``), gcloud-tasks-emulator
dispatching the tasks, fake-gcs-server holding claims and dead letters, the loopback fake Stardex
and Secret Manager. Stardex's limit is scaled (100 requests in any 2 s, the worker's limiter at 98)
so that a burst takes seconds, not minutes.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import pytest
import requests

from tests.conftest import signed
from tests.fakes.emulators import bucket_names, free_port
from tests.helpers.e2e import patches
from tests.helpers.queued import (  # noqa: F401  (stack and fresh are fixtures)
    BUCKET, MAX_ATTEMPTS, RATE_LIMIT, dead_letters, fresh, hire, post, stack,
)

# ---- a burst -----------------------------------------------------------------------------------


def test_a_burst_of_200_is_queued_and_all_applied_within_stardex_limit(fresh):
    ids = {fresh.stardex.add_person(name=f"Cand{i} Burst", emails=[f"cand{i}@example.org"]): i for i in range(200)}
    events = [f"burst-{i:04d}" for i in range(200)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: post(fresh.public_url, hire(i), events[i]), range(200)))
    assert [answer.status_code for answer in answers] == [200] * 200, "no sender is refused"
    assert {answer.json()["status"] for answer in answers} == {"queued"}

    outcomes = fresh.settle(events)
    assert outcomes == {event: "updated" for event in events}
    assert len(patches(fresh.stardex)) == 200, "each event applied once"
    assert fresh.stardex.refused == 0, "Stardex's limit was never exceeded"
    assert len(fresh.stardex.requests) > RATE_LIMIT * 2, "the burst needed several of Stardex's windows"
    for person_id in ids:
        assert fresh.stardex.person(person_id)["current_job_title"] == "Data Engineer"


# ---- de-duplication ----------------------------------------------------------------------------


def test_a_duplicate_delivery_is_applied_once(fresh):
    fresh.stardex.add_person(name="Cand1 Burst", emails=["cand1@example.org"])
    first = post(fresh.public_url, hire(1), "dup-0001")
    assert (first.status_code, first.json()["status"]) == (200, "queued")
    assert fresh.settle(["dup-0001"]) == {"dup-0001": "updated"}
    second = post(fresh.public_url, hire(1), "dup-0001")
    assert (second.status_code, second.json()["status"]) == (200, "duplicate"), "the worker settled the claim"
    assert len(patches(fresh.stardex)) == 1


def test_a_retry_while_the_task_is_still_queued_is_told_to_come_back(fresh):
    """Only a settled claim is a duplicate: a retry before the worker applied the event is a 503
    with a short Retry-After, never a 200 that would make the sender drop it."""
    fresh.stardex.down = True  # the worker cannot apply it yet: the claim stays pending
    first = post(fresh.public_url, hire(4), "pend-0004")
    assert first.json()["status"] == "queued"
    second = post(fresh.public_url, hire(4), "pend-0004")
    assert (second.status_code, second.json()["reason"]) == (503, "delivery_in_progress")
    assert int(second.headers["Retry-After"]) <= 10
    fresh.stardex.down = False


def test_two_deliveries_at_the_same_moment_are_applied_once(fresh):
    fresh.stardex.add_person(name="Cand2 Burst", emails=["cand2@example.org"])
    barrier = threading.Barrier(2)
    answers = []

    def deliver():
        raw, headers = signed("greenhouse", hire(2))
        headers["Greenhouse-Event-ID"] = "dup-0002"
        barrier.wait()
        answers.append(requests.post(f"{fresh.public_url}/greenhouse", data=raw, headers=headers, timeout=30))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One is queued; the other meets its claim pending (retry_later) or, on a machine slow enough
    # that the worker applied the first before the second was read, done (duplicate). Never both queued.
    assert sorted(answer.json()["status"] for answer in answers) in (["queued", "retry_later"], ["duplicate", "queued"])
    assert fresh.settle(["dup-0002"]) == {"dup-0002": "updated"}
    assert len(patches(fresh.stardex)) == 1


def test_a_claim_left_by_an_instance_that_stopped_is_taken_over_by_the_retry_and_applied(fresh):
    """An instance killed mid-delivery leaves its claim pending: the sender's retry, past
    STALE_CLAIM_SECONDS, is applied rather than told duplicate (the event is not lost)."""
    import hashlib

    from google.cloud import storage

    from stardex_webhook.state import STALE_CLAIM_SECONDS

    fresh.stardex.add_person(name="Cand3 Burst", emails=["cand3@example.org"])
    name = f"deliveries/greenhouse/{hashlib.sha256(b'crash-0001').hexdigest()}"
    bucket = storage.Client().bucket(BUCKET)
    bucket.blob(name).upload_from_string(json.dumps({
        "source": "greenhouse", "claimed_at": time.time() - 2 * STALE_CLAIM_SECONDS, "token": "gone", "state": "pending"}))
    answer = post(fresh.public_url, hire(3), "crash-0001")
    assert (answer.status_code, answer.json()["status"]) == (200, "queued")
    assert fresh.settle(["crash-0001"]) == {"crash-0001": "updated"}
    assert json.loads(bucket.blob(name).download_as_bytes())["state"] == "done", "settled once queued"
    again = post(fresh.public_url, hire(3), "crash-0001")
    assert again.json()["status"] == "duplicate"
    assert len(patches(fresh.stardex)) == 1


def test_a_retry_during_a_slow_first_attempt_is_never_told_duplicate(fresh):
    """Sync delivery with a bucket: Stardex is slow, the sender gives up and retries while the first
    attempt still works. The retry is a 503 (come back), never a 200 duplicate; the first attempt
    then fails and releases its claim, and the sender's next retry applies the event."""
    fresh.stardex.add_person(name="Cand7 Burst", emails=["cand7@example.org"])
    with fresh.public(DELIVERY="sync") as sync_url:
        fresh.stardex.delay_seconds = 6.0  # past the webhook's 4 s deadline: the first attempt fails
        first: list[requests.Response] = []
        thread = threading.Thread(target=lambda: first.append(post(sync_url, hire(7), "slow-0007")))
        thread.start()
        deadline = time.monotonic() + 10
        while not fresh.stardex.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the first attempt holds its claim once it reaches Stardex
        retry = post(sync_url, hire(7), "slow-0007")
        thread.join()
        fresh.stardex.delay_seconds = 0.0
        assert (retry.status_code, retry.json()["reason"]) == (503, "delivery_in_progress")
        assert int(retry.headers["Retry-After"]) <= 10
        assert first[0].status_code == 503, first[0].text
        applied = post(sync_url, hire(7), "slow-0007")
        assert applied.json()["status"] == "updated", "the failed attempt released its claim"
        assert post(sync_url, hire(7), "slow-0007").json()["status"] == "duplicate"
    assert len(patches(fresh.stardex)) == 1


# ---- Stardex down ------------------------------------------------------------------------------


def test_stardex_down_for_a_while_then_back_all_applied(fresh):
    for i in range(5):
        fresh.stardex.add_person(name=f"Cand{i} Burst", emails=[f"cand{i}@example.org"])
    fresh.stardex.down = True
    events = [f"down-{i:04d}" for i in range(5)]
    assert {post(fresh.public_url, hire(i), events[i]).json()["status"] for i in range(5)} == {"queued"}
    stop = time.monotonic() + 60
    while not any(entry["status_code"] == 503 for entry in fresh.worker_lines()) and time.monotonic() < stop:
        time.sleep(0.2)
    assert any(entry["status_code"] == 503 for entry in fresh.worker_lines()), "the worker told the queue to retry"
    fresh.stardex.down = False
    assert fresh.settle(events) == {event: "updated" for event in events}
    assert dead_letters() == []
    assert len(patches(fresh.stardex)) == 5


def test_the_last_attempt_dead_letters_and_replay_applies_it_once_stardex_is_back(fresh):
    person_id = fresh.stardex.add_person(name="Cand7 Burst", emails=["cand7@example.org"])
    fresh.stardex.down = True
    assert post(fresh.public_url, hire(7), "last-0007").json()["status"] == "queued"
    assert fresh.settle(["last-0007"]) == {"last-0007": "dead_lettered"}
    [letter] = dead_letters()
    assert letter["attempts"] == MAX_ATTEMPTS
    assert letter["error"]["reason"] == "stardex_unavailable"
    assert (letter["source"], letter["event"], letter["delivery_id"]) == ("greenhouse", "hire_candidate", "last-0007")
    assert json.loads(letter["body"]) == hire(7)
    assert not any(name.lower() == "signature" for name, _ in letter["headers"]), "no signature is kept"
    assert ["Greenhouse-Event-ID".lower(), "last-0007"] in [[name.lower(), value] for name, value in letter["headers"]]
    [name] = bucket_names(BUCKET, "dead-letters/")
    [line] = [entry for entry in fresh.worker_lines() if entry["severity"] == "ERROR" and entry["outcome"] == "dead_lettered"]
    assert line["dead_letter"] == name and line["reason"] == "stardex_unavailable"
    assert "cand7" not in json.dumps(line) and "Cand7" not in json.dumps(line), "no personal data in the log line"

    fresh.stardex.down = False
    result = fresh.replay("run", "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "updated" in result.stdout
    assert dead_letters() == []
    assert fresh.stardex.person(person_id)["current_job_title"] == "Data Engineer"


# ---- accounting --------------------------------------------------------------------------------


def test_every_event_in_is_applied_ignored_or_dead_lettered(fresh):
    for i in range(6):
        fresh.stardex.add_person(name=f"Cand{i} Burst", emails=[f"cand{i}@example.org"])
    sent = {f"count-{i:04d}": hire(i) for i in range(6)}  # found: applied
    sent.update({f"count-{i:04d}": hire(i, f"nobody{i}@example.org") for i in range(6, 9)})  # no such person
    sent.update({f"count-{i:04d}": {"action": "ping", "payload": {"web_hook_id": i}} for i in range(9, 11)})
    answers = {event: post(fresh.public_url, body, event).json()["status"] for event, body in sent.items()}
    queued = [event for event, status in answers.items() if status == "queued"]
    ignored_at_once = [event for event, status in answers.items() if status == "ignored"]
    outcomes = fresh.settle(queued)
    applied = [event for event in queued if outcomes.get(event) == "updated"]
    ignored = ignored_at_once + [event for event in queued if outcomes.get(event) == "ignored"]
    dead = [event for event in queued if outcomes.get(event) == "dead_lettered"]
    assert len(sent) == len(applied) + len(ignored) + len(dead)
    assert (len(applied), len(ignored), len(dead)) == (6, 2, 3)
    assert sorted(letter["delivery_id"] for letter in dead_letters()) == sorted(dead)
    assert {letter["error"]["reason"] for letter in dead_letters()} == {"person_not_found"}


# ---- the queue cannot take it -----------------------------------------------------------------


def test_a_task_that_cannot_be_created_is_503_and_the_retry_succeeds(fresh):
    fresh.stardex.add_person(name="Cand3 Burst", emails=["cand3@example.org"])
    with fresh.public(CLOUD_TASKS_ENDPOINT=f"127.0.0.1:{free_port()}") as broken:
        refused = post(broken, hire(3), "noqueue-0003")
    assert refused.status_code == 503, refused.text
    assert refused.json()["reason"] == "queue_unavailable"
    assert "Retry-After" in refused.headers
    assert fresh.stardex.requests == [], "the public function never calls Stardex itself"
    retried = post(fresh.public_url, hire(3), "noqueue-0003")
    assert retried.json()["status"] == "queued", "the failed attempt released its claim"
    assert fresh.settle(["noqueue-0003"]) == {"noqueue-0003": "updated"}


# ---- the worker takes only our tasks -----------------------------------------------------------


@pytest.mark.parametrize("headers, body, reason", [
    ({}, b'{"kind": "stardex-webhook/task"}', "not_a_task"),
    ({"X-CloudTasks-QueueName": "another-queue"}, b"{}", "wrong_queue"),
    ({"X-CloudTasks-QueueName": "stardex-webhook"}, b"not json", "invalid_task"),
    ({"X-CloudTasks-QueueName": "stardex-webhook"}, b'{"kind": "stardex-webhook/task", "version": 1}', "invalid_task"),
    ({"X-CloudTasks-QueueName": "stardex-webhook"}, json.dumps(
        {"kind": "stardex-webhook/task", "version": 1, "source": "nowhere", "received_at_unix": 1, "body": "{}",
         "mapped": {"update": {}, "person": {"id": "p", "emails": [], "linkedin_url": None}, "create": False}}).encode(),
     "invalid_task"),
])
def test_the_worker_refuses_what_the_public_function_did_not_enqueue(fresh, headers, body, reason):
    answer = requests.post(fresh.worker_url + "/", data=body, headers=headers, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == reason
    assert fresh.stardex.requests == []
