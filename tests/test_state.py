"""Claims and dead letters against fake-gcs-server through the real google-cloud-storage client."""

from __future__ import annotations

import json
import threading
import time

import pytest

from stardex_webhook.errors import RetryLater
from stardex_webhook.records import Claim
from stardex_webhook.state import DONE, PENDING, STALE_CLAIM_SECONDS, StateStore
from tests.fakes.emulators import bucket_names, free_port, storage_emulator

BUCKET = "state-test"


@pytest.fixture(scope="module")
def emulator():
    with storage_emulator(BUCKET) as url:
        yield url


@pytest.fixture
def store(emulator):
    from google.cloud import storage

    bucket = storage.Client().bucket(BUCKET)
    for blob in bucket.list_blobs():
        blob.delete()
    return StateStore(BUCKET)


def test_a_delivery_id_is_claimed_once(store):
    first = store.claim("greenhouse", "evt-1")
    assert isinstance(first, Claim)
    assert store.claim("greenhouse", "evt-1") == PENDING, "the second delivery waits for the first"
    assert store.claim("typeform", "evt-1") is not None, "claims are per source"
    names = bucket_names(BUCKET, "deliveries/")
    assert len(names) == 2
    assert all("evt-1" not in name for name in names), "the delivery id is hashed in the object name"


def claims_at_once(store, delivery_id: str, count: int = 20) -> list:
    """``count`` claims of one delivery id, released together from threads."""
    barrier = threading.Barrier(count)
    results = []

    def claim():
        barrier.wait()
        results.append(store.claim("greenhouse", delivery_id))

    threads = [threading.Thread(target=claim) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_of_twenty_claims_at_the_same_moment_exactly_one_wins(store):
    assert sum(isinstance(result, Claim) for result in claims_at_once(store, "evt-race")) == 1


def test_a_released_claim_can_be_claimed_again(store):
    claim = store.claim("greenhouse", "evt-2")
    store.release(claim)
    assert store.claim("greenhouse", "evt-2") is not None


def test_a_dead_letter_is_stored_listed_read_and_deleted(store):
    letter = {"source": "greenhouse", "delivery_id": "evt-4", "body": "{}", "error": {"reason": "stardex_rejected"}}
    name = store.put_dead_letter(letter)
    assert name.startswith("dead-letters/greenhouse/") and name.endswith(".json")
    assert store.dead_letters() == [name]
    assert store.dead_letters("greenhouse/") == [name]
    assert store.dead_letters("typeform/") == []
    short = name.removeprefix("dead-letters/")
    assert store.dead_letter(short) == letter, "a name is taken with or without its prefix"
    store.delete_dead_letter(short)
    assert store.dead_letters() == []
    assert store.dead_letter(short) is None


def test_an_unreachable_bucket_is_retry_later(monkeypatch, emulator):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryLater) as caught:
        StateStore(BUCKET).claim("greenhouse", "evt-5")
    assert caught.value.reason == "state_unavailable"


def test_a_missing_bucket_is_retry_later(emulator):
    with pytest.raises(RetryLater) as caught:
        StateStore("no-such-bucket").put_dead_letter({"source": "greenhouse"})
    assert caught.value.reason == "state_unavailable"


# ---- settled and abandoned claims ---------------------------------------------------------------

def claim_document(name: str) -> dict:
    from google.cloud import storage

    return json.loads(storage.Client().bucket(BUCKET).blob(name).download_as_bytes())


def leave_claim(name: str, document: dict) -> None:
    """A claim as another instance left it."""
    from google.cloud import storage

    storage.Client().bucket(BUCKET).blob(name).upload_from_string(json.dumps(document), if_generation_match=0)


def claim_name(source: str, delivery_id: str) -> str:
    import hashlib

    return f"deliveries/{source}/{hashlib.sha256(delivery_id.encode()).hexdigest()}"


def test_a_claim_is_pending_until_settled_then_done(store):
    claim = store.claim("greenhouse", "evt-s")
    assert claim_document(claim.name)["state"] == "pending"
    store.settle(claim)
    assert claim_document(claim.name)["state"] == "done"
    assert store.claim("greenhouse", "evt-s") == DONE


def test_a_claim_left_pending_by_a_stopped_instance_is_taken_over_by_the_retry(store):
    name = claim_name("greenhouse", "evt-crash")
    leave_claim(name, {"source": "greenhouse", "claimed_at": time.time() - 2 * STALE_CLAIM_SECONDS,
                       "token": "theirs", "state": "pending"})
    taken = store.claim("greenhouse", "evt-crash")
    assert taken is not None and taken.name == name
    assert claim_document(name)["token"] != "theirs"
    assert store.claim("greenhouse", "evt-crash") == PENDING, "now held (freshly) by the retry"


@pytest.mark.parametrize("document, state", [
    (lambda now: {"source": "greenhouse", "claimed_at": now - STALE_CLAIM_SECONDS / 2, "token": "theirs",
                  "state": "pending"}, PENDING),  # still at work: come back shortly
    (lambda now: {"state": "done", "settled_at": now - 10 * STALE_CLAIM_SECONDS}, DONE),  # settled long ago
    (lambda now: {"source": "greenhouse", "claimed_at": now - 10 * STALE_CLAIM_SECONDS, "token": "theirs"}, DONE),
], ids=["pending and fresh", "done and old", "without a state (an older shape)"])
def test_other_claims_are_pending_or_done(store, document, state):
    leave_claim(claim_name("greenhouse", "evt-held"), document(time.time()))
    assert store.claim("greenhouse", "evt-held") == state


def test_a_claim_is_stale_after_the_timeout_given(store):
    """The function's timeout (FUNCTION_TIMEOUT_SECONDS) says when a pending claim has no live attempt."""
    leave_claim(claim_name("greenhouse", "evt-timeout"), {"claimed_at": time.time() - 100, "token": "theirs",
                                                          "state": "pending"})
    assert store.claim("greenhouse", "evt-timeout", stale_seconds=300) == PENDING
    assert isinstance(store.claim("greenhouse", "evt-timeout", stale_seconds=90), Claim)


def test_of_twenty_retries_of_an_abandoned_claim_exactly_one_takes_it(store):
    leave_claim(claim_name("greenhouse", "evt-race-2"), {"claimed_at": time.time() - 2 * STALE_CLAIM_SECONDS,
                                                         "token": "theirs", "state": "pending"})
    assert sum(isinstance(result, Claim) for result in claims_at_once(store, "evt-race-2")) == 1


def test_settling_a_claim_taken_over_meanwhile_leaves_the_new_holder_alone(store):
    old = store.claim("greenhouse", "evt-slow")
    name = old.name
    from google.cloud import storage

    blob = storage.Client().bucket(BUCKET).blob(name)
    blob.upload_from_string(json.dumps({"token": "new", "state": "pending", "claimed_at": time.time()}),
                            if_generation_match=old.generation)
    store.settle(old)
    assert claim_document(name) == {"token": "new", "state": "pending", "claimed_at": claim_document(name)["claimed_at"]}


# ---- odd bytes, payloads and the deadline (issue 21) ---------------------------------------------

def test_a_delivery_id_with_a_lone_surrogate_is_claimed(store):
    """``"01HZZ\\ud800"`` is valid JSON: its claim is made, and is the same claim the next time."""
    claim = store.claim("typeform", "01HZZ\ud800")
    assert isinstance(claim, Claim)
    assert store.claim("typeform", "01HZZ\ud800") == PENDING


def test_a_dead_letter_with_an_undecodable_header_byte_is_kept_and_read_back(store):
    """A Latin-1 byte in a kept header reaches the app as a lone surrogate (``ingress._header_text``):
    the letter is written all the same, and reads back as it was."""
    letter = {"source": "typeform", "delivery_id": "evt-odd", "headers": [["X-Sender-Note", "caf\udce9"]],
              "body": "{\"name\": \"Zoë 山田 🙂\"}", "error": {"reason": "person_not_found"}}
    name = store.put_dead_letter(letter)
    assert store.dead_letter(name) == letter


def test_a_payload_is_kept_read_and_deleted(store):
    document = {"kind": "stardex-webhook/task", "delivery_id": "evt-big", "body": "Ж" * 1000}
    name = store.put_payload("typeform", document)
    assert name.startswith("payloads/typeform/")
    assert store.payload(name) == {**document, "source": "typeform"}
    assert store.payload("dead-letters/typeform/x.json") is None, "only a payload's name is read"
    store.delete_payload(name)
    assert store.payload(name) is None


def test_a_payload_name_with_a_dot_segment_deletes_nothing(store):
    """A task names its payload; a name that climbs out of ``payloads/`` (where a proxy or the
    emulator resolves ``..``) must never reach a claim."""
    claim = store.claim("greenhouse", "evt-dots")
    (claimed,) = bucket_names(BUCKET, "deliveries/")
    store.delete_payload("payloads/../" + claimed)
    store.delete_payload("payloads/./../" + claimed)
    assert bucket_names(BUCKET, "deliveries/") == [claimed]
    assert store.claim("greenhouse", "evt-dots") == PENDING, f"{claim} is still held"


@pytest.mark.parametrize("call", ["release", "put_dead_letter", "settle", "payload", "delete_payload"])
def test_a_bucket_call_with_no_time_left_is_retry_later_at_once(store, call):
    """Every bucket call runs within the webhook's deadline: with none left, none is made."""
    from stardex_webhook.deadline import Deadline

    claim = store.claim("greenhouse", f"evt-deadline-{call}")
    spent = Deadline(0)
    with pytest.raises(RetryLater) as caught:
        if call == "put_dead_letter":
            store.put_dead_letter({"source": "greenhouse", "delivery_id": "evt"}, spent)
        elif call in ("payload", "delete_payload"):
            getattr(store, call)("payloads/greenhouse/evt.json", spent)
        else:
            getattr(store, call)(claim, spent)
    assert caught.value.reason == "state_unavailable"
    assert "no time left" in caught.value.message, "the cause, not an unreachable bucket"
    assert claim_document(claim.name)["state"] == "pending", "nothing was changed"
    assert bucket_names(BUCKET, "dead-letters/") == []


@pytest.mark.parametrize("put", ["put_dead_letter", "put_payload"])
def test_a_new_object_whose_retried_upload_meets_its_own_first_write_is_kept_once(put):
    """The client retries an upload that timed out or was reset (``if_generation_match=0`` makes it
    safe to), and the first try may have landed: the retry then gets 412. The name is this call's
    own (a random suffix), so the object is ours: kept once, not a 503 that keeps it again on retry."""
    from google.api_core.exceptions import PreconditionFailed

    from tests.fakes.memory_bucket import MemoryBlob, MemoryBucket

    class LandedThenLost(MemoryBlob):
        def upload_from_string(self, data, **kwargs):
            super().upload_from_string(data, **kwargs)  # the first try lands; its answer is lost
            raise PreconditionFailed("the retry finds the object its first try wrote")

    bucket = MemoryBucket()
    bucket.blob = lambda name: LandedThenLost(bucket, name)
    store = StateStore(BUCKET)
    store._bucket = bucket
    document = {"source": "greenhouse", "delivery_id": "evt-412", "body": "{}"}
    name = store.put_dead_letter(document) if put == "put_dead_letter" else store.put_payload("greenhouse", document)
    assert list(bucket.objects) == [name]
