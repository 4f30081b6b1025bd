"""Typeform adapter: `Typeform-Signature: sha256=<base64>` over the raw body, then one mutation per test.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery
from tests.conftest import make_delivery
from stardex_webhook.sources.typeform import TypeformSource, index_answers

KEY = "typeform-webhook-secret"
NOW = 1_773_000_000.0
BODY = (Path(__file__).parent / "fixtures" / "typeform_form_response.json").read_bytes()
source = TypeformSource()


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def delivery(body: bytes = BODY, **headers: str) -> Delivery:
    return make_delivery(body, NOW, **headers)


def signed(body: bytes = BODY, key: str = KEY) -> Delivery:
    return delivery(body, Typeform_Signature=f"sha256={sign(body, key)}")


def refused(d: Delivery, keys=(KEY,)) -> str:
    with pytest.raises(Unauthorized) as caught:
        source.verify(d, list(keys), NOW)
    return caught.value.reason


def test_registered():
    assert isinstance(SOURCES["typeform"], TypeformSource)
    assert SOURCES["typeform"].success_status == 200


def test_no_handshake():
    assert source.handshake(signed()) is None


def test_valid_signature():
    source.verify(signed(), [KEY], NOW)


@pytest.mark.parametrize(
    "header_for",
    [
        lambda b64: f"SHA256={b64}",
        lambda b64: f"  sha256 = {b64}  ",
    ],
)
def test_lenient_header_forms(header_for):
    source.verify(delivery(Typeform_Signature=header_for(sign(BODY))), [KEY], NOW)


def test_missing_header():
    assert refused(delivery()) == "missing_signature"


def test_no_signing_key():
    assert refused(signed(), keys=[]) == "no_signing_key"


def test_wrong_key():
    assert refused(signed(key="another-secret")) == "bad_signature"


def test_one_byte_of_body_changed():
    tampered = delivery(BODY.replace(b"form_response", b"form_responsf", 1), Typeform_Signature=f"sha256={sign(BODY)}")
    assert refused(tampered) == "bad_signature"


def test_hex_digest_is_not_accepted():
    hexdigest = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert refused(delivery(Typeform_Signature=f"sha256={hexdigest}")) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "{b64}",
        "sha256 {b64}",
        "sha1={b64}",
        "sha256=",
        "sha256={b64} {b64}",
        "sha256=not base64!",
        "sha256={b64_unpadded}",
        "sha256=" + "ab-_" * 11,  # URL-safe alphabet: Typeform sends standard base64
        "sha256=é",
    ],
)
def test_malformed_header(header):
    b64 = sign(BODY)
    value = header.format(b64=b64, b64_unpadded=b64.rstrip("="))
    assert refused(delivery(Typeform_Signature=value)) == "malformed_signature"


def test_rotation_second_key_matches():
    source.verify(signed(key="new-secret"), ["old-secret", "new-secret"], NOW)


def test_parse_form_response():
    event = source.parse(signed())
    document = json.loads(BODY)
    assert event.source == "typeform"
    assert event.event_type == "form_response"
    assert event.delivery_id == document["event_id"]
    assert event.ignore_reason is None
    answers = document["form_response"]["answers"]
    assert event.payload == {**document, "form_response": {
        **document["form_response"],
        "answers": {answer["field"]["ref"]: answer for answer in answers},
        "answers_by_type": {"text": [answers[0], answers[1], answers[5]], "email": [answers[2]],
                            "phone_number": [answers[3]], "url": [answers[4]]},
    }}


def test_answers_are_indexed_by_ref_and_type_the_first_winning_and_odd_items_left_out():
    first = {"type": "email", "email": "a@example.org", "field": {"ref": "email"}}
    second = {"type": "email", "email": "b@example.org", "field": {"ref": "email"}}
    odd = [None, "x", {"type": 3, "field": "email"}, {"field": {"ref": ""}}]
    assert index_answers([first, *odd, second]) == {"answers": {"email": first}, "answers_by_type": {"email": [first, second]}}
    assert index_answers({"email": first}) == {"answers": {}, "answers_by_type": {}}


def test_delivery_id_falls_back_to_response_token():
    document = json.loads(BODY)
    del document["event_id"]
    event = source.parse(signed(json.dumps(document).encode()))
    assert event.delivery_id == document["form_response"]["token"]


def test_missing_event_type_is_none():
    event = source.parse(signed(b'{"form_response": {}}'))
    assert event.event_type is None
    assert event.delivery_id is None


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'{"event_type": "form_response"}', "invalid_payload"),
        (b'{"form_response": []}', "invalid_payload"),
        (b'{"form_response": null}', "invalid_payload"),
        (b'{"event_type": 3, "form_response": {}}', "invalid_payload"),
    ],
)
def test_parse_errors(body, reason):
    with pytest.raises(BadRequest) as caught:
        source.parse(signed(body))
    assert caught.value.reason == reason


def test_the_transcript_is_the_form_title_and_each_question_with_its_answer():
    body = {"event_id": "e-1", "event_type": "form_response", "form_response": {
        "definition": {"title": "Referral", "fields": [{"id": "f1", "title": "Your name"}, {"id": "f2", "title": "Roles"},
                                                        {"id": "f3", "title": "Open to move?"}]},
        "answers": [{"type": "text", "text": "Ada", "field": {"id": "f1", "ref": "name"}},
                    {"type": "choices", "choices": {"labels": ["Data", "ML"]}, "field": {"id": "f2"}},
                    {"type": "boolean", "boolean": False, "field": {"id": "f3"}},
                    {"type": "number", "number": 3, "field": {"id": "f4", "ref": "years"}},
                    {"type": "text", "text": "  ", "field": {"id": "f5"}}, "not an answer"]}}
    event = TypeformSource().parse(delivery(json.dumps(body).encode()))
    assert event.transcript.title == "Referral"
    assert event.transcript.answers == (("Your name", "Ada"), ("Roles", "Data, ML"), ("Open to move?", "No"),
                                        ("years", "3"))
