"""Claims and dead letters against fake-gcs-server through the real google-cloud-storage client."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from stardex_webhook.errors import RetryLater
from stardex_webhook.state import StateStore, decode_body, encode_body, without_credentials
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
    assert first is not None
    assert store.claim("greenhouse", "evt-1") is None, "the second delivery is a duplicate"
    assert store.claim("typeform", "evt-1") is not None, "claims are per source"
    names = bucket_names(BUCKET, "deliveries/")
    assert len(names) == 2
    assert all("evt-1" not in name for name in names), "the delivery id is hashed in the object name"


def test_of_twenty_claims_at_the_same_moment_exactly_one_wins(store):
    barrier = threading.Barrier(20)
    results = []

    def claim():
        barrier.wait()
        results.append(store.claim("greenhouse", "evt-race"))

    threads = [threading.Thread(target=claim) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1


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


@pytest.mark.parametrize("name", ["Signature", "Typeform-Signature", "X-Hook-Secret", "Authorization",
                                  "X-Api-Token", "webhook-signature", "Cookie", "X-Api-Key", "token"])
def test_headers_that_carry_a_credential_are_not_kept(name):
    kept = without_credentials([("Content-Type", "application/json"), ("Greenhouse-Event-ID", "e1"), (name, "s3cret")])
    assert kept == [["Content-Type", "application/json"], ["Greenhouse-Event-ID", "e1"]]


@pytest.mark.parametrize("body", [b'{"a": "\xc3\xa9"}', b"\xff\xfe not utf-8"])
def test_a_body_round_trips_through_json(body):
    encoded = json.loads(json.dumps(encode_body(body)))
    assert decode_body(encoded) == body
    if encoded["body_encoding"] == "base64":
        assert base64.b64decode(encoded["body"]) == body


def test_an_unreachable_bucket_is_retry_later(monkeypatch, emulator):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryLater) as caught:
        StateStore(BUCKET).claim("greenhouse", "evt-5")
    assert caught.value.reason == "state_unavailable"


def test_a_missing_bucket_is_retry_later(emulator):
    with pytest.raises(RetryLater) as caught:
        StateStore("no-such-bucket").put_dead_letter({"source": "greenhouse"})
    assert caught.value.reason == "state_unavailable"
