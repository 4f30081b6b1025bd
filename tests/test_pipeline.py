"""pipeline: the de-duplication protocol (``once``) and the one answer (``answered``).

``once`` is tested over an in-memory store with the claim interface of ``state.StateStore`` (which
``tests/test_state.py`` holds to its promises against fake-gcs-server): what each claim state
answers, and when a claim is settled, released or left pending."""

from __future__ import annotations

import io
import json

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater, Unprocessable
from stardex_webhook.logs import JsonLog
from stardex_webhook.pipeline import Pipeline, answered
from stardex_webhook.records import Claim, Event
from stardex_webhook.secrets import SecretProvider
from stardex_webhook.state import DONE, PENDING

EVENT = Event("greenhouse", "hire_candidate", "evt-1", {})


class Store:
    """Claims in memory: ``held`` is what another attempt left (a state), else the claim is ours."""

    def __init__(self, held: str | None = None, failing: bool = False) -> None:
        self.held, self.failing = held, failing
        self.settled: list[Claim] = []
        self.released: list[Claim] = []

    def claim(self, source, delivery_id, deadline, stale_seconds):
        return self.held if self.held else Claim(f"deliveries/{source}/{delivery_id}", 1)

    def settle(self, claim, deadline):
        if self.failing:
            raise RetryLater("state_unavailable", "down")
        self.settled.append(claim)

    def release(self, claim, deadline=None):
        if self.failing:
            raise RetryLater("state_unavailable", "down")
        self.released.append(claim)


@pytest.fixture
def log():
    return io.StringIO()


def pipeline(store: Store | None, log: io.StringIO) -> Pipeline:
    settings = load_settings({})
    built = Pipeline(settings, {}, {}, SecretProvider(settings), JsonLog(stream=log))
    built.state = store
    return built


def test_a_delivery_is_run_once_and_its_claim_settled(log):
    store = Store()
    answer = pipeline(store, log).once(EVENT, Deadline(5), lambda claim: {"status": "updated", "claim": claim})
    assert answer["status"] == "updated" and answer["claim"] is not None
    assert store.settled == [answer["claim"]] and store.released == []


def test_only_a_done_claim_is_a_duplicate(log):
    ran = []
    answer = pipeline(Store(held=DONE), log).once(EVENT, Deadline(5), lambda claim: ran.append(claim))
    assert answer == {"status": "duplicate"} and ran == []


def test_a_pending_claim_is_told_to_come_back_shortly(log):
    ran = []
    with pytest.raises(RetryLater) as caught:
        pipeline(Store(held=PENDING), log).once(EVENT, Deadline(5), lambda claim: ran.append(claim))
    assert (caught.value.reason, caught.value.status_code) == ("delivery_in_progress", 503)
    assert caught.value.retry_after <= 10 and ran == []


@pytest.mark.parametrize("error, settled", [
    (RetryLater("stardex_unavailable", "down"), False),  # the sender retries: released
    (Unprocessable("person_not_found", "no such person"), True),  # kept as a dead letter: a retry is a duplicate
], ids=["retry-later-releases", "unprocessable-settles"])
def test_a_failure_releases_the_claim_unless_the_event_cannot_be_applied(log, error, settled):
    store = Store()

    def work(claim):
        raise error

    with pytest.raises(type(error)):
        pipeline(store, log).once(EVENT, Deadline(5), work)
    assert (len(store.settled), len(store.released)) == ((1, 0) if settled else (0, 1))


def test_a_claim_left_pending_on_purpose_is_not_settled(log):
    """Queued: the worker settles it once the event is applied."""
    store = Store()
    pipeline(store, log).once(EVENT, Deadline(5), lambda claim: {"status": "queued"}, settle=False)
    assert store.settled == [] and store.released == []


def test_no_bucket_or_no_delivery_id_runs_without_a_claim(log):
    assert pipeline(None, log).once(EVENT, Deadline(5), lambda claim: {"claim": claim}) == {"claim": None}
    store = Store()
    anonymous = Event("greenhouse", "hire_candidate", None, {})
    assert pipeline(store, log).once(anonymous, Deadline(5), lambda claim: {"claim": claim}) == {"claim": None}


@pytest.mark.parametrize("outcome, severity, reason", [
    ("ok", "WARNING", "claim_not_settled"), ("fail", "ERROR", "claim_not_released")])
def test_a_claim_the_bucket_cannot_settle_or_release_is_said_loudly_with_its_delivery(log, outcome, severity, reason):
    def work(claim):
        if outcome == "fail":
            raise RetryLater("stardex_unavailable", "down")
        return {"status": "updated"}

    try:
        pipeline(Store(failing=True), log).once(EVENT, Deadline(5), work)
    except RetryLater:
        pass
    [line] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert (line["severity"], line["reason"], line["source"], line["delivery_id"]) == (
        severity, reason, "greenhouse", "evt-1")


def test_a_kept_payload_the_bucket_cannot_delete_is_said_with_its_name_source_and_delivery(log):
    """The payload holds the whole delivery (personal data) until the lifecycle rule: the line says
    which one, and for which event, as every line about a claim or a letter does."""
    class Down:
        def delete_payload(self, name, deadline):
            raise RetryLater("state_unavailable", "down")

    built = pipeline(None, log)
    built.state = Down()
    built.forget_payload("payloads/greenhouse/20261208T000000Z-0123456789abcdef-01234567.json", Deadline(5),
                         "greenhouse", "evt-1")
    [line] = [json.loads(line) for line in log.getvalue().splitlines()]
    assert (line["severity"], line["reason"], line["source"], line["delivery_id"]) == (
        "WARNING", "payload_not_deleted", "greenhouse", "evt-1")
    assert line["payload"].startswith("payloads/greenhouse/")


def test_the_answer_of_a_bug_is_a_500_that_says_where_not_what(log):
    def work(record):
        record["source"] = "greenhouse"
        raise KeyError("jane@example.com")

    status, body, headers = answered(JsonLog(stream=log), work)
    assert (status, body) == (500, {"status": "error", "reason": "internal_error"})
    line = json.loads(log.getvalue())
    assert line["error"].startswith("KeyError at test_pipeline.py:") and "jane" not in log.getvalue()


def test_the_answer_of_a_typed_error_is_its_status_and_headers(log):
    def work(record):
        raise RetryLater("stardex_rate_limited", "slow down", retry_after=12)

    status, body, headers = answered(JsonLog(stream=log), work)
    assert (status, body["reason"], headers) == (503, "stardex_rate_limited", {"Retry-After": "12"})
    assert json.loads(log.getvalue())["severity"] == "WARNING", "Stardex's own pacing is no error of ours"
