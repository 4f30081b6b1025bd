"""records: what a task and a dead letter keep of a delivery (never what proved it), read back
only in their own shape; the typed errors' answers."""

from __future__ import annotations

import base64
import json

import pytest

from stardex_webhook.errors import MethodNotAllowed, RetryLater, Unprocessable
from stardex_webhook.records import (Delivery, Event, Headers, Received, Transcript, decode_body, encode_body,
                                     without_credentials)

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


def test_a_kept_delivery_parses_again_as_it_arrived_without_its_proof():
    delivery = Delivery(Headers([("Signature", "sha256 ab"), ("Greenhouse-Event-ID", "e1")]), b'{"a": 1}', 1_780_000_000.5,
                        query={"token": "t0k3n", "form": "f1"})
    kept = Received.of(delivery, Event("greenhouse", "hire_candidate", "e1", {}))
    again = Received.from_dict(json.loads(json.dumps(kept.to_dict()))).delivery()
    assert (again.body, again.received_at, dict(again.query)) == (b'{"a": 1}', 1_780_000_000.5, {"form": "f1"})
    assert dict(again.headers) == {"greenhouse-event-id": "e1"}
    assert kept.to_dict()["received_at"] == "2026-05-28T20:26:40.500Z"


@pytest.mark.parametrize("change", [
    {"source": 7}, {"received_at_unix": "soon"}, {"received_at_unix": True}, {"headers": [["a"]]},
    {"query": {"a": "b"}}, {"body": None}, {"body_encoding": "rot13"}, {"body": "@@", "body_encoding": "base64"},
], ids=["source", "time as text", "time as bool", "short pair", "query as object", "no body", "encoding", "bad base64"])
def test_only_a_kept_delivery_s_own_shape_is_read_back(change):
    document = Received.of(Delivery(Headers(), b"{}", 1.0), Event("generic", None, None, {})).to_dict()
    with pytest.raises(ValueError):
        Received.from_dict({**document, **change})


def test_a_transcript_holds_its_answers_as_given():
    answers = (("Employer", "Initech"), ("Role", "Engineer"))
    assert Transcript("Referral", iter(answers)) == Transcript("Referral", answers)


def test_each_error_answers_with_its_status_reason_and_headers():
    assert (Unprocessable("person_not_found", "no such person").body()
            == {"status": "unprocessable", "reason": "person_not_found", "message": "no such person"})
    later = RetryLater("stardex_unavailable", retry_after=2.1)
    assert (later.status_code, later.body()["retry_after"], later.headers()) == (503, 3, {"Retry-After": "3"})
    assert MethodNotAllowed("method_not_allowed", allow="GET").headers() == {"Allow": "GET"}
