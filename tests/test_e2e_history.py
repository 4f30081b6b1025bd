"""The event history end to end, on the queued stack (real functions-framework servers,
gcloud-tasks-emulator, fake-gcs-server, the fake Stardex): every door (the webhook synchronously
and queued, the worker, replay) leaves exactly one record per event, retries count attempts on
it, duplicates add none, no name, email or phone number is in any record, and
``python -m stardex_webhook.history`` finds an event by its address only with the key."""

from __future__ import annotations

import json
import shlex
import time

from tests.conftest import log_leaks
from tests.fakes.emulators import bucket_names
from tests.helpers.e2e import patches
from tests.helpers.queued import (  # noqa: F401  (stack and fresh are fixtures)
    BUCKET, MAX_ATTEMPTS, dead_letters, fresh, hire, post, stack,
)

PHONE = "+351 910 000 111"


def applicant(index: int) -> dict:
    """A hire naming the person's email, LinkedIn URL and phone number: none may reach the history."""
    body = hire(index)
    body["payload"]["application"]["candidate"]["phone_numbers"] = [{"value": PHONE, "type": "mobile"}]
    return body


def records() -> list[dict]:
    """Every history record in the bucket (the pointers under events/ids/ are not records)."""
    from google.cloud import storage

    bucket = storage.Client().bucket(BUCKET)
    found = []
    for name in bucket_names(BUCKET, "events/"):
        if not name.startswith("events/ids/"):
            text = bucket.blob(name).download_as_text()
            assert log_leaks(text) == [], f"personal data in {name}"
            assert "Cand" not in text and "Burst" not in text and "example.org" not in text
            found.append(json.loads(text))
    return found


def settled_record(delivery_id: str, outcome: str, timeout: float = 30) -> dict:
    """The one record of ``delivery_id`` once it shows ``outcome`` (the worker writes it before its
    log line; a bounded wait covers the public function's own write)."""
    stop = time.monotonic() + timeout
    while True:
        found = [record for record in records() if record["delivery_id"] == delivery_id]
        if (found and found[0]["outcome"] == outcome) or time.monotonic() > stop:
            assert len(found) == 1, f"one record per event: {found}"
            return found[0]
        time.sleep(0.2)


def test_sync_leaves_one_record_and_a_duplicate_adds_none(fresh):
    person_id = fresh.stardex.add_person(name="Cand9 Burst", emails=["cand9@example.org"])
    with fresh.public(DELIVERY="sync") as public:
        first = post(public, applicant(9), "hist-sync-9")
        again = post(public, applicant(9), "hist-sync-9")
    assert (first.json()["status"], again.json()["status"]) == ("updated", "duplicate")
    [record] = records()
    assert (record["door"], record["outcome"], record["person_id"], record["attempts"]) == ("webhook", "updated", person_id, 1)
    assert "phone_numbers" in record["fields"] and record["source"] == "greenhouse" and record["latency_ms"] > 0
    assert len(record["identities"]) == 2, "the email and the LinkedIn URL, as keyed hashes"


def test_queued_and_a_retried_worker_leave_one_record_counting_the_attempts(fresh):
    fresh.stardex.add_person(name="Cand10 Burst", emails=["cand10@example.org"])
    fresh.stardex.down = True
    assert post(fresh.public_url, applicant(10), "hist-q-10").json()["status"] == "queued"
    stop = time.monotonic() + 60
    while not any(entry["status_code"] == 503 for entry in fresh.worker_lines()) and time.monotonic() < stop:
        time.sleep(0.2)
    fresh.stardex.down = False
    assert fresh.settle(["hist-q-10"]) == {"hist-q-10": "updated"}
    record = settled_record("hist-q-10", "updated")
    tries = [entry for entry in fresh.worker_lines() if entry.get("delivery_id") == "hist-q-10"]
    assert len(tries) >= 2, "the worker was retried"
    assert (record["door"], record["attempts"]) == ("worker", len(tries))
    assert post(fresh.public_url, applicant(10), "hist-q-10").json()["status"] == "duplicate"
    assert settled_record("hist-q-10", "updated") == record, "a duplicate adds nothing"


def test_a_dead_letter_is_shown_with_its_replay_command_and_replay_settles_the_same_record(fresh):
    person_id = fresh.stardex.add_person(name="Cand11 Burst", emails=["cand11@example.org"])
    fresh.stardex.down = True
    assert post(fresh.public_url, applicant(11), "hist-dl-11").json()["status"] == "queued"
    assert fresh.settle(["hist-dl-11"]) == {"hist-dl-11": "dead_lettered"}
    fresh.stardex.down = False
    [letter_name] = bucket_names(BUCKET, "dead-letters/")
    record = settled_record("hist-dl-11", "dead_letter")
    assert (record["dead_letter"], record["attempts"], record["reason"]) == (letter_name, MAX_ATTEMPTS, "stardex_unavailable")

    shown = fresh.tool("history", "show", "hist-dl-11")
    assert shown.returncode == 0, shown.stderr
    assert f"dead letter: {letter_name}" in shown.stdout
    [command] = [line.split("replay it:", 1)[1].strip() for line in shown.stdout.splitlines() if line.startswith("replay it:")]
    words = shlex.split(command)
    assert words[0] == f"STATE_BUCKET={BUCKET}" and words[1:5] == ["python", "-m", "stardex_webhook.replay", "run"]
    replayed = fresh.replay(*words[4:])  # exactly the command show printed
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert dead_letters() == []
    record = settled_record("hist-dl-11", "updated")
    assert (record["door"], record["person_id"], record["attempts"], record["dead_letter"]) == \
        ("replay", person_id, MAX_ATTEMPTS + 1, None)
    assert len(patches(fresh.stardex)) == 1


def test_history_finds_an_event_by_its_address_in_any_case_and_only_with_the_key(fresh):
    for index in (12, 13):
        fresh.stardex.add_person(name=f"Cand{index} Burst", emails=[f"cand{index}@example.org"])
    with fresh.public(DELIVERY="sync") as public:
        assert post(public, applicant(12), "hist-mail-12").json()["status"] == "updated"
        assert post(public, applicant(13), "hist-mail-13").json()["status"] == "updated"
    found = fresh.tool("history", "list", "--json", "--email", "  CAND12@Example.ORG ")
    assert found.returncode == 0, found.stderr
    assert [record["delivery_id"] for record in json.loads(found.stdout)] == ["hist-mail-12"]
    listed = fresh.tool("history", "list", "--since", "1h")
    assert [line.split()[1] for line in listed.stdout.splitlines()] == ["greenhouse", "greenhouse"]
    wrong_key = fresh.tool("history", "list", "--json", "--email", "cand12@example.org", HISTORY_KEY="not-the-key")
    assert json.loads(wrong_key.stdout) == [], "without the key no record leads back to the address"
    no_key = fresh.tool("history", "list", "--email", "cand12@example.org", HISTORY_KEY="")
    assert no_key.returncode == 2 and "HISTORY_KEY" in no_key.stderr
