"""The event history's record (``events``): one per event whatever the door, attempts counted,
nothing of the person's data in it, and a write that fails never failing the event."""

from __future__ import annotations

import io
import json

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.events import EventHistory, identity_hash, merged, named
from stardex_webhook.logs import JsonLog
from stardex_webhook.pipeline import answered
from stardex_webhook.records import MappedUpdate, PersonRef
from stardex_webhook.secrets import SecretProvider
from tests.fakes.memory_bucket import MemoryBucket, MemoryStore
from tests.helpers.fake_time import WALL_EPOCH

HISTORY_KEY = "history-test-key-0001"
LENA = MappedUpdate(
    update={"name": "Lena Park", "emails": [{"value": "Lena.Park@Example.com", "type": "personal"}],
            "phone_numbers": [{"value": "+351 910 000 111", "type": "mobile"}],
            "linkedin_url": "https://www.linkedin.com/in/lena-park"},
    person=PersonRef(id=None, emails=["Lena.Park@Example.com"], linkedin_url="https://www.linkedin.com/in/lena-park"),
    create=True)


def history(key: str | None = HISTORY_KEY) -> tuple[EventHistory, MemoryBucket, io.StringIO]:
    bucket, log = MemoryBucket(), io.StringIO()
    settings = load_settings({"HISTORY_KEY": key} if key else {})
    return EventHistory(MemoryStore(bucket), SecretProvider(settings), JsonLog(stream=log)), bucket, log


def door(history: EventHistory, answer, delivery_id: str | None = "d-1", received_at: float = WALL_EPOCH,
         mapped: MappedUpdate | None = LENA, **record_fields):
    """What a door does: the record filled once the event is authentic, the answer through ``answered``."""

    def work(record):
        record.update({"source": "greenhouse", "event": "candidate_hired", "delivery_id": delivery_id,
                       "received_at": received_at, "door": "webhook", **record_fields})
        if mapped is not None:
            record["named"] = named(mapped)
        if isinstance(answer, Exception):
            raise answer
        return 200, answer, {}

    return answered(JsonLog(stream=io.StringIO()), work, history)


def records(bucket: MemoryBucket) -> dict[str, dict]:
    return {name: json.loads(data) for name, (data, _) in bucket.objects.items() if not name.startswith("events/ids/")}


def test_an_update_leaves_one_record_with_what_happened_and_no_personal_data():
    events, bucket, _ = history()
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["emails", "name"]})
    [(name, record)] = records(bucket).items()
    assert name.startswith("events/2023-11-14/22/1320-greenhouse-")
    assert record | {"latency_ms": 0, "written_at": ""} == {
        "received_at": "2023-11-14T22:13:20.000Z", "source": "greenhouse", "event": "candidate_hired",
        "delivery_id": "d-1", "door": "webhook", "outcome": "updated", "status_code": 200, "reason": None,
        "person_id": "p-1", "fields": ["emails", "name"], "skipped": [], "dead_letter": None, "latency_ms": 0,
        "attempts": 1, "written_at": "",
        "identities": sorted({identity_hash(HISTORY_KEY, "email", "lena.park@example.com"),
                              identity_hash(HISTORY_KEY, "linkedin", "https://www.linkedin.com/in/lena-park")}),
    }
    text = json.dumps(record).lower()
    assert "lena" not in text and "park" not in text and "910" not in text and "@" not in text


def test_an_address_hashes_the_same_in_any_case_and_spacing_and_not_without_the_key():
    assert identity_hash(HISTORY_KEY, "email", "  LENA.park@Example.COM ") == identity_hash(HISTORY_KEY, "email", "lena.park@example.com")
    assert identity_hash("another-key", "email", "lena.park@example.com") != identity_hash(HISTORY_KEY, "email", "lena.park@example.com")


def test_without_a_key_the_record_carries_no_hashes():
    events, bucket, _ = history(key=None)
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]})
    [record] = records(bucket).values()
    assert "identities" not in record and record["outcome"] == "updated"


def test_a_retry_in_a_later_hour_updates_the_same_record_and_counts_its_attempts():
    events, bucket, _ = history()
    door(events, RetryLaterError())
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, received_at=WALL_EPOCH + 7200)
    [(name, record)] = records(bucket).items()
    assert name.startswith("events/2023-11-14/22/"), "named by the first receipt"
    assert (record["outcome"], record["attempts"], record["received_at"]) == ("updated", 2, "2023-11-14T22:13:20.000Z")


@pytest.mark.parametrize("replayed", [lambda: RetryLaterError(), lambda: _unprocessable()])
def test_a_replay_that_fails_leaves_the_record_a_dead_letter_while_the_letter_waits(replayed):
    """``history list --outcome dead_letter`` (the dead-letter alert's and troubleshooting's command)
    must still find an event whose replay failed and whose letter was kept: no one retries it."""
    events, bucket, _ = history()
    letter = "dead-letters/greenhouse/20231114T221320Z-ab-cd.json"
    door(events, {"status": "dead_lettered", "reason": "person_not_found", "dead_letter": letter}, door="worker")
    door(events, replayed(), door="replay", received_at=WALL_EPOCH + 60)
    [record] = records(bucket).values()
    assert (record["outcome"], record["dead_letter"], record["door"]) == ("dead_letter", letter, "replay")
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, door="replay")
    [record] = records(bucket).values()
    assert (record["outcome"], record["dead_letter"]) == ("updated", None)


def _unprocessable():
    from stardex_webhook.errors import Unprocessable

    return Unprocessable("person_not_found", "no Stardex person matches")


def test_a_new_events_record_costs_two_bucket_calls_and_a_retrys_five():
    """What a webhook waits for after its work: the pointer and the record; a retry reads both first."""
    events, bucket, _ = history()
    door(events, RetryLaterError())
    assert bucket.calls == 2, "the pointer made, the record written: nothing to read yet"
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, received_at=WALL_EPOCH + 60)
    assert bucket.calls == 2 + 5, "the pointer taken, read; the record read (metadata, body) and written"


def test_a_delivery_id_with_a_lone_surrogate_still_leaves_its_record():
    """Valid JSON may carry "\\ud800" in a sender's event id: the record is written, not lost to an encoding error."""
    events, bucket, log = history()
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, delivery_id="01HZZ\ud800")
    assert len(records(bucket)) == 1
    assert "history_not_written" not in log.getvalue()


def RetryLaterError():
    from stardex_webhook.errors import RetryLater

    return RetryLater("stardex_unavailable", "Stardex answered 503")


@pytest.mark.parametrize("answer", [{"status": "duplicate"}, {"status": "dry_run", "body": {}}])
def test_a_duplicate_or_a_dry_run_adds_nothing(answer):
    events, bucket, _ = history()
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]})
    before = records(bucket)
    door(events, answer, received_at=WALL_EPOCH + 60)
    assert records(bucket) == before


def test_a_retry_told_another_attempt_is_at_work_adds_nothing():
    from stardex_webhook.errors import RetryLater

    events, bucket, _ = history()
    door(events, {"status": "queued"}, mapped=None)
    before = records(bucket)
    door(events, RetryLater("delivery_in_progress", "another attempt"), received_at=WALL_EPOCH + 5)
    assert records(bucket) == before


def test_queued_then_the_worker_is_one_record_and_a_late_queued_never_undoes_the_worker():
    events, bucket, _ = history()
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, door="worker", attempts=3)
    door(events, {"status": "queued"}, mapped=None)  # the public function's write arriving last
    [record] = records(bucket).values()
    assert (record["outcome"], record["attempts"], record["door"]) == ("updated", 3, "worker")


def test_a_dead_letter_is_named_until_a_replay_applies_it():
    events, bucket, _ = history()
    door(events, {"status": "dead_lettered", "reason": "person_not_found", "dead_letter": "dead-letters/greenhouse/x.json"},
         door="worker", attempts=1)
    [record] = records(bucket).values()
    assert (record["outcome"], record["dead_letter"]) == ("dead_letter", "dead-letters/greenhouse/x.json")
    door(events, RetryLaterError(), door="replay")
    [record] = records(bucket).values()
    assert (record["outcome"], record["reason"], record["dead_letter"], record["attempts"]) == \
        ("dead_letter", "stardex_unavailable", "dead-letters/greenhouse/x.json", 2), "the letter still waits"
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, door="replay")
    [record] = records(bucket).values()
    assert (record["outcome"], record["dead_letter"], record["attempts"]) == ("updated", None, 3)


def test_skipped_values_are_kept_by_their_paths_only():
    events, bucket, _ = history()
    skipped = [{"path": "/emails/1/value", "reason": "not an email address"}]
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"], "skipped": skipped})
    [record] = records(bucket).values()
    assert record["skipped"] == ["/emails/1/value"]


def test_a_failing_history_write_never_fails_the_event_and_is_logged_and_counted():
    events, bucket, log = history()
    bucket.fail_writes = True
    answer = door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]})
    assert answer[:2] == (200, {"status": "updated", "person_id": "p-1", "fields": ["name"]})
    [line] = [json.loads(text) for text in log.getvalue().splitlines()]
    assert (line["severity"], line["reason"], line["delivery_id"], line["history_failures"]) == \
        ("ERROR", "history_not_written", "d-1", 1)
    door(events, {"status": "updated", "person_id": "p-1", "fields": ["name"]}, delivery_id="d-2")
    assert events.failures == 2


def test_an_answer_before_the_event_was_authentic_leaves_no_record():
    events, bucket, _ = history()

    def work(record):
        record["source"] = "greenhouse"
        from stardex_webhook.errors import Unauthorized
        raise Unauthorized("bad_signature")

    assert answered(JsonLog(stream=io.StringIO()), work, events)[0] == 401
    assert bucket.objects == {}


def test_merged_keeps_the_first_receipt_and_every_hash():
    old = {"received_at": "A", "attempts": 1, "identities": ["a"], "dead_letter": None, "outcome": "retry_later"}
    new = {"received_at": "B", "attempts": None, "identities": ["b"], "dead_letter": None, "outcome": "updated"}
    assert merged(new, old) | {} == {**new, "received_at": "A", "attempts": 2, "identities": ["a", "b"]}


def test_the_log_line_counts_the_dead_letters_waiting_and_the_oldest_ones_age_every_five_minutes():
    import time

    events, bucket, _ = history()
    kept = time.gmtime(time.time() - 7200)
    bucket.blob(time.strftime("dead-letters/greenhouse/%Y%m%dT%H%M%SZ-ab-cd.json", kept)).upload_from_string("{}")
    bucket.blob("dead-letters/typeform/29990101T000000Z-ab-cd.json").upload_from_string("{}")
    log = io.StringIO()

    def work(record):
        record.update(source="greenhouse", event="candidate_hired", delivery_id="d-9", received_at=WALL_EPOCH)
        return 200, {"status": "ignored", "reason": "event_not_mapped"}, {}

    answered(JsonLog(stream=log), work, events)
    answered(JsonLog(stream=log), work, events)
    first, second = [json.loads(line) for line in log.getvalue().splitlines()]
    assert first["dead_letters_waiting"] == 2 and 7190 <= first["oldest_dead_letter_seconds"] <= 7300
    assert "dead_letters_waiting" not in second, "counted again only five minutes on"


def test_only_answered_writes_history_and_plan_never_calls_it():
    """One piece of code writes the record (``pipeline.answered``): the doors reach it, ``plan`` does not."""
    import ast

    from tests.conftest import ROOT

    def calls(module: str) -> set[str]:
        tree = ast.parse((ROOT / "stardex_webhook" / f"{module}.py").read_text())
        return {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))}

    assert {"answered"} <= calls("ingress") & calls("worker") & calls("replay")
    assert "answered" not in calls("plan")
    writers = [module for module in ("ingress", "worker", "replay", "plan", "delivery", "state") if "EventHistory" in
               (ROOT / "stardex_webhook" / f"{module}.py").read_text()]
    assert writers == []
