"""Recruitee: the hex HMAC of the raw body with one mutation per test, the ``{"test": true}``
request answered before any key exists (and nothing else passing that way), and the preset
mapping that splits the full name.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery
from stardex_webhook.sources.recruitee import RecruiteeSource
from tests.conftest import SIGNING_KEYS, fixture_bytes, make_delivery, refusal

source = SOURCES["recruitee"]
KEY = SIGNING_KEYS["recruitee"]
NOW = 1_773_567_667.0
BODY = fixture_bytes("recruitee_candidate_moved.json")


def sign(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def delivery(body: bytes = BODY, signature: str | None = None, key: str = KEY) -> Delivery:
    return make_delivery(body, NOW, X_Recruitee_Signature=signature if signature is not None else sign(body, key))


def refused(d: Delivery, keys=(KEY,)) -> str:
    return refusal(source, d, keys, NOW)


def body_with(**changes) -> bytes:
    return json.dumps({**json.loads(BODY), **changes}).encode()


# ---- the signature ------------------------------------------------------------------------------


def test_registered_answering_exactly_200_with_no_api_key():
    assert isinstance(source, RecruiteeSource)
    assert (source.success_status, source.needs_api_key) == (200, False)


def test_a_signed_body_verifies_and_the_sample_signer_agrees():
    source.verify(delivery(), [KEY], NOW)
    assert source.sign_sample(BODY, KEY, int(NOW))[0]["X-Recruitee-Signature"] == sign(BODY)


@pytest.mark.parametrize("form", [str.upper, lambda digest: f"  {digest} "])
def test_lenient_forms(form):
    source.verify(delivery(signature=form(sign(BODY))), [KEY], NOW)


def test_rotation_either_key():
    for key in ("old-key", "new-key"):
        source.verify(delivery(key=key), ["old-key", "new-key"], NOW)


def test_no_timestamp_so_an_old_delivery_still_verifies():
    source.verify(delivery(), [KEY], NOW + 30 * 86_400)


def test_wrong_key():
    assert refused(delivery(key="another-key")) == "bad_signature"


def test_altered_body():
    assert refused(delivery(BODY.replace(b"Phone screen", b"Offer"), signature=sign(BODY))) == "bad_signature"


def test_missing_header():
    assert refused(make_delivery(BODY, NOW)) == "missing_signature"


@pytest.mark.parametrize("header", ["sha256={hex}", "{hex}0", "zz" * 32, "{hex} {hex}", "é" * 64])
def test_malformed_header(header):
    assert refused(delivery(signature=header.format(hex=sign(BODY)))) == "malformed_signature"


def test_no_signing_key():
    assert refused(delivery(), keys=[]) == "no_signing_key"


# ---- the Test request -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"test":true}', b'{"test": true}', b' {\n "test" : true }\n'])
def test_the_test_request_is_answered_200_before_any_signature(body):
    handshake = source.handshake(make_delivery(body, NOW))
    assert (handshake.status_code, handshake.body) == (200, {"status": "ignored", "reason": "test"})


@pytest.mark.parametrize("body", [
    b'{"test": 1}', b'{"test": "true"}', b'{"test": false}', b'{"test": true, "event_type": "candidate_created"}',
    b'{"test": true, "payload": {}}', b'[{"test": true}]', b'{"Test": true}', b"", b"not json",
    b'{"test":' + b" " * 60 + b"true}",
])
def test_nothing_else_passes_as_the_test_request(body):
    assert source.handshake(make_delivery(body, NOW)) is None


def test_a_test_payload_is_verified_first_then_ignored():
    example = body_with(test=True)
    assert refused(delivery(example, signature=sign(BODY))) == "bad_signature"
    source.verify(delivery(example), [KEY], NOW)
    event = source.parse(delivery(example))
    assert event.ignore_reason == "test"


def test_the_test_request_through_the_app_needs_no_key(make_client, base_env):
    base_env.delenv("RECRUITEE_SIGNING_KEY")
    client = make_client()
    answer = client.post("/recruitee", data=b'{"test":true}', headers={"Content-Type": "application/json",
                                                                       "User-Agent": "Recruitee-Webhooks"})
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "test"}
    unsigned_event = client.post("/recruitee", data=body_with(test=True))
    assert unsigned_event.status_code == 401


# ---- parse -----------------------------------------------------------------------------------------


def test_parse_names_the_event_and_the_delivery():
    event = source.parse(delivery())
    assert (event.event_type, event.delivery_id, event.ignore_reason) == ("candidate_moved", "9100221", None)
    assert event.payload == json.loads(BODY)


def test_without_an_id_the_delivery_id_is_built_from_what_stays_across_retries():
    document = json.loads(BODY)
    del document["id"]
    first = source.parse(delivery(json.dumps({**document, "attempt_count": 1}).encode()))
    again = source.parse(delivery(json.dumps({**document, "attempt_count": 2}).encode()))
    assert first.delivery_id == again.delivery_id == "candidate_moved:stage_changed:551234:2026-03-15T09:41:07.000000Z"
    del document["created_at"]
    assert source.parse(delivery(json.dumps(document).encode())).delivery_id is None


@pytest.mark.parametrize("body", [b'{"payload": {}}', b'{"event_type": 3}', b'{"event_type": ""}'])
def test_a_body_without_an_event_type_is_invalid_payload(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(delivery(body))
    assert caught.value.reason == "invalid_payload"


# ---- the preset mapping -------------------------------------------------------------------------


EXPECTED = {
    "first_name": "Pieter", "last_name": "de Vries", "name": "Pieter de Vries",
    "emails": [{"contact_data_type": "personal", "value": "pieter.devries@example.nl"},
               {"contact_data_type": "personal", "value": "p.devries@work-example.nl"}],
    "phone_numbers": [{"contact_data_type": "mobile", "value": "+31612345678"}],
}


def mapped(body: bytes, mappings=None) -> dict:
    event = source.parse(delivery(body))
    mapping = (mappings or load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES))["recruitee"]
    assert mapping.acts_on(event.event_type)
    assert source.follow_up(event) is None, "the person is in the webhook"
    return mapping.apply(event.payload, event).update


@pytest.mark.parametrize("event_type, subtype", [
    ("candidate_moved", "stage_changed"), ("candidate_moved", "disqualified"), ("candidate_moved", "requalified"),
    ("candidate_created", None), ("candidate_assigned", None),
])
def test_each_acted_event_maps_to_the_exact_update(event_type, subtype):
    assert mapped(body_with(event_type=event_type, event_subtype=subtype)) == EXPECTED


def test_a_one_word_name_gives_a_first_name_and_the_name_only():
    document = json.loads(BODY)
    document["payload"]["candidate"].update(name="  Madonna ", emails=[], phones=[])
    assert mapped(json.dumps(document).encode()) == {"first_name": "Madonna", "name": "Madonna"}


@pytest.mark.parametrize("event_type", ["candidate_deleted", "offer_created", "offer_updated", "interview_created"])
def test_other_events_are_ignored(event_type):
    assert not load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["recruitee"].acts_on(event_type)


def test_a_job_table_in_the_mapping_sends_job_id_for_listed_offers(tmp_path):
    with open(f"{BUILTIN_MAPPINGS_DIR}/recruitee.json", encoding="utf-8") as preset:
        document = json.load(preset)
    document["job"] = {"path": "payload.offer.id", "table": {"3301": "stardex-job-3"}}
    (tmp_path / "recruitee.json").write_text(json.dumps(document))
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    assert mapped(BODY, mappings) == {**EXPECTED, "job_id": "stardex-job-3"}
    other = json.loads(BODY)
    other["payload"]["offer"]["id"] = 3302
    assert mapped(json.dumps(other).encode(), mappings) == EXPECTED


def test_a_deleted_candidate_through_the_app_is_200_ignored(make_client):
    body = body_with(event_type="candidate_deleted", event_subtype=None)
    answer = make_client().post("/recruitee", data=body, headers={"X-Recruitee-Signature": sign(body)})
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "candidate_deleted"}
