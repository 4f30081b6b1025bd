"""Fault injection against the real ``functions-framework`` server: each fault of Stardex, of
Secret Manager, of a sender's API, of the queue and of the bucket, and docs/contract.md's answer to it
(status code, ``status``/``reason``, ``Retry-After``), given before the webhook's deadline
(``STARDEX_DEADLINE_SECONDS``, 4 s in these servers) plus a margin. The elapsed time is only that
bound, never a speed target.

One row per fault, beside the faults other files already inject (not repeated here):
``tests/test_hostile_stardex.py`` (resets mid-answer, answers dripped a byte at a time, HTML and
broken JSON with 200, bad gzip, redirects to another host and redirect loops, a 429 asking for a
day or giving a date), ``tests/test_e2e.py`` (Stardex down, a 429 waited out, a key rotated with
Stardex, Secret Manager down or slow), ``tests/test_e2e_ats_a.py`` (a sender's API down) and
``tests/test_e2e_queued.py`` (the queue unreachable, Stardex down for the worker's attempts).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Callable

import pytest
import requests

from stardex_webhook.fake_stardex import HUGE_ANSWER_BYTES, FakeStardex
from tests.helpers.ats_a import basic_auth
from tests.conftest import fixture_json
from tests.fakes.fake_ats_a_api import FakeAtsApi
from tests.fakes.fake_secret_manager import FakeSecretManager
from tests.helpers.e2e import (  # noqa: F401  (fakes is a fixture)
    PROJECT, SECRET_NAMES, STARDEX_KEY, fakes, free_port, function_server, patches, send, typeform_body,
)

DEADLINE_SECONDS = 4.0  # function_server's STARDEX_DEADLINE_SECONDS
MARGIN_SECONDS = 3.0  # start-up of a thread, the answer's way back: not a speed target
LEVER_API_KEY = "faults-lever-api-key"
STATUS = {422: "unprocessable", 503: "retry_later"}
ONCE, RETRIED = "once", "retried"


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def assert_answer(answer: requests.Response, elapsed: float, status_code: int, reason: str,
                  retry_after: int | None) -> None:
    """The contract's answer (docs/contract.md): code, status and reason; a 503 carries ``Retry-After`` (exactly
    ``retry_after`` when the row knows it), and it all came within the deadline."""
    assert answer.status_code == status_code, answer.text
    body = answer.json()
    assert (body["status"], body["reason"]) == (STATUS[status_code], reason), body
    if status_code == 503:
        header = int(answer.headers["Retry-After"])
        assert header == (retry_after or header) and 1 <= header <= 300
        assert body["retry_after"] == header
    assert elapsed < DEADLINE_SECONDS + MARGIN_SECONDS, f"answered after {elapsed:.1f} s"


@contextlib.contextmanager
def black_hole():
    """A TCP port that accepts connections and never answers (a hung endpoint); yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in [*accepted, listener]:
            sock.close()


@pytest.fixture(scope="module")
def ats_api():
    with FakeAtsApi(LEVER_API_KEY, "faults-ashby-api-key") as fake:
        yield fake


@contextlib.contextmanager
def faults_server(fakes, ats_api):
    """The function with Lever's follow-up reads configured, and its own limiter out of the way
    (the faults here are Stardex's; the limiter has its own tests and the load test)."""
    stardex, secret_manager = fakes
    secret = f"{PROJECT}/secrets/lever-api-key"
    secret_manager.set(secret, LEVER_API_KEY)
    with function_server(stardex, secret_manager, LEVER_API_BASE=ats_api.lever_base,
                         LEVER_API_KEY_SECRET=f"{secret}/versions/latest",
                         STARDEX_REQUESTS_PER_MINUTE="100000") as (base_url, _log):
        yield base_url


@pytest.fixture(scope="module")
def server(fakes, ats_api):
    with faults_server(fakes, ats_api) as base_url:
        yield base_url


@pytest.fixture
def own_server(fakes, ats_api):
    """A server of the test's own: a 429 pauses the function's limiter for every later call
    (as it must), and that pause would eat into the next test's deadline on a shared server."""
    with faults_server(fakes, ats_api) as base_url:
        yield base_url


@pytest.fixture
def world(fakes, ats_api):
    stardex = fakes[0]
    for fake in (stardex, ats_api):
        fake.reset()
    yield stardex, ats_api
    for fake in (stardex, ats_api):
        fake.reset()


def merge_webhook(base_url: str, stardex: FakeStardex) -> tuple[requests.Response, float]:
    """A Typeform answer for a stored person: a GET (contacts to merge), then the PATCH."""
    person_id = stardex.add_person(name="Chidi Okafor")
    return timed(lambda: send(base_url, "typeform", typeform_body(person_id)))


def lever_webhook(base_url: str, stardex: FakeStardex, ats_api: FakeAtsApi) -> tuple[requests.Response, float]:
    """A Lever stage change: the opportunity is read from Lever's API before anything else."""
    ats_api.add_opportunity(fixture_json("lever_opportunity.json")["data"])
    stardex.add_person(name="Priya R.", emails=["priya.raman@example.net"])
    return timed(lambda: send(base_url, "lever", fixture_json("lever_candidateStageChange.json")))


# ---- Stardex -----------------------------------------------------------------------------------


def _set(**switches) -> Callable[[object], None]:
    return lambda fake: [setattr(fake, name, value) for name, value in switches.items()]


def _failing(status: int, retry_after: float | None = None) -> Callable[[FakeStardex], None]:
    return lambda fake: fake.fail_next(status, times=100, retry_after=retry_after)


RATE_LIMITED_FAULTS = [
    pytest.param(_failing(429, 1), "stardex_rate_limited", 1, RETRIED, id="429-storm-retry-after-1"),
    pytest.param(_set(misbehave="429-bare"), "stardex_rate_limited", 30, RETRIED, id="429-storm-no-retry-after"),
    pytest.param(_set(misbehave="retry-after-negative"), "stardex_rate_limited", 30, RETRIED, id="429-retry-after-negative"),
]
STARDEX_FAULTS = [
    pytest.param(_set(delay_seconds=8.0), "stardex_unavailable", 30, ONCE, id="slower-than-the-deadline"),
    *[pytest.param(_failing(status), "stardex_unavailable", 30, RETRIED, id=f"{status}-storm") for status in (500, 502, 503, 504)],
    pytest.param(_failing(503, 2), "stardex_unavailable", 2, RETRIED, id="503-storm-retry-after-2"),
    pytest.param(_set(misbehave="success-false"), "stardex_unexpected_answer", 30, ONCE, id="200-success-false"),
    pytest.param(_set(misbehave="huge"), "stardex_unexpected_answer", 30, ONCE, id="50mb-answer"),
    pytest.param(_set(misbehave="huge-chunked"), "stardex_unexpected_answer", 30, ONCE, id="50mb-answer-chunked"),
]


@pytest.mark.parametrize("fault, reason, retry_after, attempts", STARDEX_FAULTS)
def test_a_stardex_fault_is_503_within_the_deadline(server, world, fault, reason, retry_after, attempts):
    check_stardex_fault(server, world, fault, reason, retry_after, attempts)


@pytest.mark.parametrize("fault, reason, retry_after, attempts", RATE_LIMITED_FAULTS)
def test_a_stardex_rate_limit_is_503_within_the_deadline(own_server, world, fault, reason, retry_after, attempts):
    check_stardex_fault(own_server, world, fault, reason, retry_after, attempts)


def check_stardex_fault(server, world, fault, reason, retry_after, attempts):
    stardex, _ = world
    fault(stardex)
    answer, elapsed = merge_webhook(server, stardex)
    assert_answer(answer, elapsed, 503, reason, retry_after)
    assert patches(stardex) == [], "nothing is written on an answer that cannot be trusted"
    calls = len(stardex.requests)
    assert calls >= 2 if attempts == RETRIED else calls == 1, [request.method for request in stardex.requests]


def test_an_answer_slower_than_the_read_timeout_is_retried_within_the_deadline(fakes, world):
    """With a deadline (12 s) longer than the client's read timeout (10 s), a Stardex that answers
    after 11 s times the first read out at 10 s; the retry gets what is left, and the webhook is
    answered at its deadline, not at the second read's 10 s."""
    stardex, _ = world
    deadline = 12.0
    with function_server(*fakes, STARDEX_DEADLINE_SECONDS=str(deadline)) as (base_url, _log):
        assert merge_webhook(base_url, stardex)[0].status_code == 200  # secrets read, clients made
        stardex.requests.clear()
        stardex.delay_seconds = 11.0
        answer, elapsed = merge_webhook(base_url, stardex)
    assert answer.status_code == 503, answer.text
    assert (answer.json()["reason"], answer.headers["Retry-After"]) == ("stardex_unavailable", "30")
    assert elapsed < deadline + MARGIN_SECONDS, f"answered after {elapsed:.1f} s"
    assert [request.method for request in stardex.requests] == ["GET", "GET"], "one retry, in the time left"


@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_a_50_mb_answer_is_not_read_whole(server, world, mode):
    """The client stops at ``http_transport.MAX_ANSWER_BYTES`` (8 MiB) and hangs up: most of the
    50 MB never leaves the fake (what the loopback's buffers took is all it could write)."""
    stardex, _ = world
    stardex.misbehave = mode
    answer, _elapsed = merge_webhook(server, stardex)
    assert answer.json()["reason"] == "stardex_unexpected_answer"
    time.sleep(0.5)  # let the fake's writer notice the hang-up
    assert stardex.huge_bytes_sent < HUGE_ANSWER_BYTES // 2, stardex.huge_bytes_sent


@pytest.fixture(scope="module")
def refused_server(fakes):
    """Stardex and Lever's API on ports nobody listens on."""
    with function_server(*fakes, STARDEX_API_BASE=f"http://127.0.0.1:{free_port()}/v1",
                         LEVER_API_BASE=f"http://127.0.0.1:{free_port()}/lever/v1",
                         LEVER_API_KEY=LEVER_API_KEY) as (base_url, _log):
        yield base_url


@pytest.mark.parametrize("source, reason", [("typeform", "stardex_unavailable"), ("lever", "sender_api_unavailable")])
def test_connection_refused_is_503_within_the_deadline(refused_server, world, source, reason):
    body = typeform_body("6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42") if source == "typeform" \
        else fixture_json("lever_candidateStageChange.json")
    answer, elapsed = timed(lambda: send(refused_server, source, body))
    assert_answer(answer, elapsed, 503, reason, 30)


def test_an_expired_key_is_503_until_it_is_rotated_in_secret_manager(fakes, world):
    """Stardex stops taking the key: the function reads Secret Manager again once, still gets the
    old key, and answers 503 ``stardex_auth_failed`` (nothing lost: the sender retries). Once the
    operator adds the new version, the next webhook reads it after its 401 and is applied."""
    stardex, secret_manager = fakes
    rotated = "faults-stardex-key-rotated"
    with function_server(*fakes) as (base_url, _log):
        assert merge_webhook(base_url, stardex)[0].status_code == 200  # the key is cached
        stardex.api_key = rotated
        try:
            reads = secret_manager.access_count
            answer, elapsed = merge_webhook(base_url, stardex)
            assert_answer(answer, elapsed, 503, "stardex_auth_failed", 300)
            assert secret_manager.access_count == reads + 1, "the key is read afresh once after a 401"
            secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], rotated)
            answer, _ = merge_webhook(base_url, stardex)
            assert (answer.status_code, answer.json()["status"]) == (200, "updated"), answer.text
            assert patches(stardex)[-1].headers["Authorization"] == f"Bearer {rotated}"
        finally:
            secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
            stardex.api_key = STARDEX_KEY


# ---- a sender's API (the follow-up read) ---------------------------------------------------------


SENDER_API_FAULTS = [
    pytest.param(_set(fail_status=401), "sender_api_auth_failed", 300, ONCE, id="401"),
    pytest.param(_set(fail_status=403), "sender_api_auth_failed", 300, ONCE, id="403"),
    pytest.param(_set(fail_status=429, retry_after="1"), "sender_api_unavailable", 1, RETRIED, id="429-retry-after-1"),
    pytest.param(_set(fail_status=429), "sender_api_unavailable", 30, RETRIED, id="429-no-retry-after"),
    pytest.param(_set(fail_status=429, retry_after="86400"), "sender_api_unavailable", 60, ONCE, id="429-retry-after-a-day"),
    *[pytest.param(_set(fail_status=status), "sender_api_unavailable", 30, RETRIED, id=str(status)) for status in (500, 502, 504)],
    pytest.param(_set(delay=8.0), "sender_api_unavailable", 30, ONCE, id="slower-than-the-deadline"),
    pytest.param(_set(html=True), "sender_api_unavailable", 30, ONCE, id="200-html"),
]


@pytest.mark.parametrize("fault, reason, retry_after, attempts", SENDER_API_FAULTS)
def test_a_sender_api_fault_is_503_and_stardex_is_not_called(server, world, fault, reason, retry_after, attempts):
    stardex, ats_api = world
    fault(ats_api)
    answer, elapsed = lever_webhook(server, stardex, ats_api)
    assert_answer(answer, elapsed, 503, reason, retry_after)
    assert stardex.requests == []
    reads = len(ats_api.requests)
    assert reads >= 2 if attempts == RETRIED else reads == 1


def test_a_sender_api_redirect_to_another_host_is_not_followed(server, world):
    stardex, ats_api = world
    with FakeAtsApi(LEVER_API_KEY, "unused") as elsewhere:
        ats_api.redirect_to = elsewhere.origin
        answer, elapsed = lever_webhook(server, stardex, ats_api)
    assert_answer(answer, elapsed, 503, "sender_api_unavailable", 30)
    assert elsewhere.requests == [], "neither the key nor the request went there"
    assert ats_api.requests[0].headers["Authorization"] == basic_auth(LEVER_API_KEY)
    assert stardex.requests == []


# ---- Secret Manager ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unmemoised_server(fakes):
    """Every webhook reads its secrets afresh (``SECRET_TTL_SECONDS=0``)."""
    with function_server(*fakes, SECRET_TTL_SECONDS="0") as (base_url, _log):
        yield base_url


@pytest.mark.parametrize("switch", [
    pytest.param({"corrupt_crc": True}, id="wrong-checksum"),
    pytest.param({"drip": 0.5}, id="answer-dripped"),
])
def test_a_secret_manager_fault_is_503_and_stardex_is_not_called(unmemoised_server, fakes, world, switch):
    """The client checks ``data_crc32c`` (``secrets._read``), and the read is bounded by the
    webhook's deadline however the answer drips."""
    stardex, secret_manager = fakes
    for name, value in switch.items():
        setattr(secret_manager, name, value)
    try:
        answer, elapsed = merge_webhook(unmemoised_server, stardex)
    finally:
        secret_manager.corrupt_crc, secret_manager.drip = False, 0.0
    assert_answer(answer, elapsed, 503, "secret_unavailable", 30)
    assert stardex.requests == []


def test_secret_manager_down_after_a_good_read_serves_the_last_good_value(fakes, world):
    """Past the TTL, a read that fails serves the last good value (with a WARNING), for up to an
    hour: an outage of Secret Manager does not stop webhooks."""
    stardex, secret_manager = fakes
    with function_server(*fakes, SECRET_TTL_SECONDS="1") as (base_url, log_path):
        assert merge_webhook(base_url, stardex)[0].status_code == 200
        time.sleep(1.2)  # past the TTL
        secret_manager.down = True
        try:
            answer, elapsed = merge_webhook(base_url, stardex)
        finally:
            secret_manager.down = False
        assert (answer.status_code, answer.json()["status"]) == (200, "updated"), answer.text
        assert elapsed < DEADLINE_SECONDS + MARGIN_SECONDS
        time.sleep(0.2)
        text = log_path.read_text()
    stale = [json.loads(line) for line in text.splitlines() if line.startswith("{") and "secret_stale" in line]
    assert stale and all(line["severity"] == "WARNING" for line in stale)
    assert STARDEX_KEY not in text


@pytest.mark.parametrize("declared", [True, False], ids=["length-declared", "length-unknown"])
def test_a_sender_api_answer_over_the_cap_is_one_read_then_503(declared):
    """In-process (``responses``), the follow-up read's side of the cap: one read, not retried
    (the same read would bring the same flood), answered 503 ``sender_api_unavailable``."""
    import responses

    from stardex_webhook.deadline import Deadline
    from stardex_webhook.errors import RetryLater
    from stardex_webhook.http_transport import MAX_ANSWER_BYTES
    from stardex_webhook.sender_api import SenderApiClient
    from stardex_webhook.records import FollowUp

    body = b'{"data": "' + b"x" * MAX_ANSWER_BYTES + b'"}'
    api = SenderApiClient("sender", "https://api.sender.test/v1", lambda deadline: "key", lambda key: {}, "SENDER_API_KEY")
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, "https://api.sender.test/v1/candidates/1", body=body,
                 auto_calculate_content_length=declared)
        with pytest.raises(RetryLater) as caught:
            api.read(Deadline(10), FollowUp("GET", "candidates/1"))
        assert len(mock.calls) == 1
    assert caught.value.reason == "sender_api_unavailable"


# ---- queued delivery: the queue and the bucket ---------------------------------------------------

from tests.helpers.queued import hire, post, stack  # noqa: E402,F401  (stack is a fixture)


@pytest.fixture
def queued(stack):  # noqa: F811
    """The queued stack with a clean fake Stardex and an empty bucket (as ``tests/helpers/queued.py``'s ``fresh``)."""
    from google.cloud import storage

    from tests.helpers.queued import BUCKET

    stack.stardex.reset()
    for blob in storage.Client().list_blobs(BUCKET):
        blob.delete()
    stack.mark()
    yield stack
    stack.stardex.reset()


@pytest.mark.parametrize("endpoint, reason", [
    pytest.param("CLOUD_TASKS_ENDPOINT", "queue_unavailable", id="queue-hangs"),
    pytest.param("STORAGE_EMULATOR_HOST", "state_unavailable", id="bucket-hangs-on-claim"),
    pytest.param("STORAGE_EMULATOR_HOST=refused", "state_unavailable", id="bucket-down-on-claim"),
])
def test_the_queue_or_the_bucket_failing_is_503_never_200(queued, endpoint, reason):
    """A task that cannot be created, or a claim that cannot be made, leaves the event with the
    sender: 503 with Retry-After, never 200; and the sender's retry, once they are back, is queued
    (the failed attempt left no claim behind)."""
    queued.stardex.add_person(name="Cand5 Burst", emails=["cand5@example.org"])
    name, _, how = endpoint.partition("=")
    with black_hole() as port:
        address = f"127.0.0.1:{free_port() if how == 'refused' else port}"
        with queued.public(**{name: address if name == "CLOUD_TASKS_ENDPOINT" else f"http://{address}"}) as broken:
            answer, elapsed = timed(lambda: post(broken, hire(5), f"fault-{reason}"))
    assert_answer(answer, elapsed, 503, reason, None)
    assert queued.stardex.requests == []
    retried = post(queued.public_url, hire(5), f"fault-{reason}")
    assert (retried.status_code, retried.json()["status"]) == (200, "queued"), retried.text
    assert queued.settle([f"fault-{reason}"]) == {f"fault-{reason}": "updated"}


def _task_body(body: dict, event_id: str) -> bytes:
    """The task the public function enqueues for this Greenhouse delivery (built as it builds it)."""
    from stardex_webhook.ingress import task_body
    from stardex_webhook.sources import SOURCES
    from tests.conftest import make_delivery, signed

    raw, headers = signed("greenhouse", body)
    headers = {**{name.replace("-", "_"): value for name, value in headers.items()}, "Greenhouse_Event_ID": event_id}
    delivery = make_delivery(raw, time.time(), **headers)
    event = SOURCES["greenhouse"].parse(delivery)
    return json.dumps(task_body(delivery, event)).encode()


@pytest.mark.parametrize("attempt", ["first", "last"])
def test_the_bucket_down_on_dead_letter_is_never_a_2xx_to_the_queue(queued, attempt):
    """An event that cannot be applied (no such person) is kept as a dead letter. With the bucket
    down the worker answers 503 ``state_unavailable``, never 2xx, so the queue keeps the task and
    retries it; the retry, with the bucket back, stores the letter. (On the queue's very last
    attempt the 503 is all the worker can give: Cloud Tasks then drops the task, and the worker's
    ERROR line with the delivery id is what is left, for the operator to ask the sender again.)"""
    from tests.helpers.queued import MAX_ATTEMPTS, dead_letters

    event_id = f"fault-dead-letter-{attempt}"
    task = _task_body(hire(6, "nobody6@example.org"), event_id)
    retries = "0" if attempt == "first" else str(MAX_ATTEMPTS - 1)
    headers = {"X-CloudTasks-QueueName": "stardex-webhook", "X-CloudTasks-TaskRetryCount": retries,
               "Content-Type": "application/json"}
    settings = {**queued.env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"}
    with function_server(queued.stardex, queued.secret_manager, target="handle_task", **settings) as (worker, log):
        answer = requests.post(worker + "/", data=task, headers=headers, timeout=60)
        time.sleep(0.2)
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert answer.status_code == 503, answer.text
    assert (answer.json()["reason"], "Retry-After" in answer.headers) == ("state_unavailable", True)
    [line] = [line for line in lines if line.get("delivery_id") == event_id]
    assert (line["severity"], line["status_code"], line["reason"]) == ("ERROR", 503, "state_unavailable")
    assert dead_letters() == []

    headers["X-CloudTasks-TaskRetryCount"] = str(int(retries) + 1)  # the queue's retry, the bucket back
    kept = requests.post(queued.worker_url + "/", data=task, headers=headers, timeout=60)
    assert (kept.status_code, kept.json()["status"]) == (200, "dead_lettered"), kept.text
    [letter] = dead_letters()
    assert (letter["delivery_id"], letter["error"]["reason"]) == (event_id, "person_not_found")
