"""Queued delivery end to end: the real functions-framework servers (the public function with
``DELIVERY=queued`` and the private worker, ``--target=handle_task``), gcloud-tasks-emulator
dispatching the tasks, fake-gcs-server holding claims and dead letters, the loopback fake Stardex
and Secret Manager. Stardex's limit is scaled (100 requests in any 2 s, the worker's limiter at 98)
so that a burst takes seconds, not minutes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from stardex_webhook.config import signing_key_name
from stardex_webhook.fake_stardex import FakeStardex
from tests.conftest import ROOT, SIGNING_KEYS, fixture_json, signed
from tests.fakes.emulators import bucket_names, final_outcomes, free_port, storage_emulator, tasks_emulator
from tests.fakes.fake_secret_manager import FakeSecretManager
from tests.test_e2e import SECRET_NAMES, STARDEX_KEY, function_server, patches

BUCKET = "stardex-webhook-state"
QUEUE = "projects/e2e/locations/here/queues/stardex-webhook"
ACCOUNT = "stardex-tasks@e2e.iam.gserviceaccount.com"
MAX_ATTEMPTS = 3
RATE_LIMIT, WINDOW_SECONDS, WORKER_LIMIT = 100, 2.0, 98


class CountingStardex(FakeStardex):
    """The fake Stardex, counting the requests its rate limit refused."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refused = 0

    def _rate_limited(self, wait):
        self.refused += 1
        return super()._rate_limited(wait)


@dataclass
class Stack:
    stardex: CountingStardex
    secret_manager: FakeSecretManager
    public_url: str
    worker_url: str
    worker_log: Path
    env: dict[str, str]
    log_mark: int = 0

    def mark(self) -> None:
        """Read only what the worker logs from now on."""
        self.log_mark = self.worker_log.stat().st_size

    def worker_text(self) -> str:
        with self.worker_log.open("rb") as log:
            log.seek(self.log_mark)
            return log.read().decode("utf-8", "replace")

    def worker_lines(self) -> list[dict]:
        lines = []
        for line in self.worker_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "outcome" in entry:
                    lines.append(entry)
        return lines

    def settle(self, delivery_ids, timeout: float = 120) -> dict[str, str]:
        """Wait (bounded) until the worker gave each delivery a final answer; its outcome by id."""
        wanted = set(delivery_ids)
        stop = time.monotonic() + timeout
        while True:
            outcomes = final_outcomes(self.worker_text(), wanted)
            if set(outcomes) == wanted or time.monotonic() > stop:
                return outcomes
            time.sleep(0.2)

    @contextlib.contextmanager
    def public(self, **overrides: str):
        """Another public function on the same queue and bucket, with other settings."""
        settings = {**self.env, "DELIVERY": "queued", "TASKS_WORKER_URL": self.worker_url + "/",
                    "TASKS_SERVICE_ACCOUNT": ACCOUNT, **overrides}
        with function_server(self.stardex, self.secret_manager, **settings) as (url, _log):
            yield url

    def replay(self, *args: str, **overrides: str) -> subprocess.CompletedProcess:
        """``python -m stardex_webhook.replay ARGS`` as an operator runs it, with the function's settings."""
        env = {key: value for key, value in os.environ.items() if not key.endswith(("_SIGNING_KEY", "_SECRET"))}
        env.pop("MAPPINGS_DIR", None)
        env.update(self.env, STARDEX_API_BASE=self.stardex.base_url, STARDEX_API_KEY=STARDEX_KEY, **overrides)
        return subprocess.run([sys.executable, "-m", "stardex_webhook.replay", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def stack():
    with contextlib.ExitStack() as exits:
        gcs_url = exits.enter_context(storage_emulator(BUCKET))
        tasks_endpoint = exits.enter_context(tasks_emulator(QUEUE, max_retries=MAX_ATTEMPTS - 1))
        stardex = exits.enter_context(CountingStardex(api_key=STARDEX_KEY, rate_limit=RATE_LIMIT,
                                                      window_seconds=WINDOW_SECONDS))
        secret_manager = exits.enter_context(FakeSecretManager())
        secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        for source, key in SIGNING_KEYS.items():
            secret_manager.set(SECRET_NAMES[signing_key_name(source)], key)
        env = {"STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": gcs_url, "TASKS_QUEUE": QUEUE,
               "CLOUD_TASKS_ENDPOINT": tasks_endpoint, "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
               "TASK_DEADLINE_SECONDS": "3", "STARDEX_REQUESTS_PER_MINUTE": str(WORKER_LIMIT),
               "STARDEX_RATE_WINDOW_SECONDS": str(WINDOW_SECONDS)}
        worker_url, worker_log = exits.enter_context(
            function_server(stardex, secret_manager, target="handle_task", **env))
        stack = Stack(stardex, secret_manager, "", worker_url, worker_log, env)
        stack.public_url = exits.enter_context(stack.public())
        yield stack


@pytest.fixture
def fresh(stack):
    """A clean fake Stardex, an empty bucket, and the worker's log from here on."""
    from google.cloud import storage

    stack.stardex.reset()
    stack.stardex.refused = 0
    for blob in storage.Client().list_blobs(BUCKET):
        blob.delete()
    stack.mark()
    yield stack
    stack.stardex.reset()


def hire(index: int, email: str | None = None) -> dict:
    """A Greenhouse hire of candidate ``index``, found in Stardex by its one email."""
    body = copy.deepcopy(fixture_json("greenhouse_hire_candidate.json"))
    candidate = body["payload"]["application"]["candidate"]
    candidate.update(first_name=f"Cand{index}", last_name="Burst", phone_numbers=[],
                     email_addresses=[{"value": email or f"cand{index}@example.org", "type": "personal"}],
                     social_media_addresses=[{"value": f"https://www.linkedin.com/in/cand-burst-{index}"}])
    return body


def post(url: str, body: dict, event_id: str) -> requests.Response:
    raw, headers = signed("greenhouse", body)
    headers["Greenhouse-Event-ID"] = event_id
    return requests.post(f"{url}/greenhouse", data=raw, headers=headers, timeout=30)


def dead_letters() -> list[dict]:
    from google.cloud import storage

    bucket = storage.Client().bucket(BUCKET)
    return [json.loads(bucket.blob(name).download_as_bytes()) for name in bucket_names(BUCKET, "dead-letters/")]


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
    assert sorted(answer.json()["status"] for answer in answers) == ["queued", "retry_later"]
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
