"""Lever adapter: the signature inside the body (hex HMAC of token + triggeredAt), its replay
window, the verification call, the follow-up read of the opportunity, and the preset mapping.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, FollowUp
from stardex_webhook.sources.lever import LeverSource
from tests.helpers.ats_a import (  # noqa: F401 (fixtures)
    MAPPINGS, basic_auth, dry_client, mapped, one_read, post, random_shapes_never_500, sender_api,
)
from tests.helpers.random_json import random_json
from tests.conftest import SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

KEY = SIGNING_KEYS["lever"]
API_KEY = "lever-test-api-key"
TRIGGERED_AT = 1_775_040_000_000  # the fixtures' triggeredAt, in epoch milliseconds
NOW = TRIGGERED_AT / 1000 + 30
TOKEN = "c0ffee00-1111-2222-3333-444455556666"
OPPORTUNITY = "6a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
OPPORTUNITY_URL = f"https://api.lever.co/v1/opportunities/{OPPORTUNITY}"
ACTED = ["applicationCreated", "candidateStageChange", "candidateHired", "candidateArchiveChange"]
source = LeverSource()


def lever_signature(key: str, token: str, triggered_at) -> str:
    return hmac.new(key.encode(), f"{token}{triggered_at}".encode(), hashlib.sha256).hexdigest()


def body_of(fixture: str = "candidateStageChange", key: str = KEY, **changes) -> dict:
    """A fixture with the signature Lever would put in it, then ``changes`` laid over it."""
    body = fixture_json(f"lever_{fixture}.json")
    body["signature"] = lever_signature(key, body["token"], body["triggeredAt"])
    body.update(changes)
    return body


def delivery(body: dict | bytes) -> Delivery:
    return make_delivery(body if isinstance(body, bytes) else json.dumps(body).encode(), NOW)


def refused(body: dict | bytes, keys=(KEY,), now: float = NOW) -> str:
    return refusal(source, delivery(body), keys, now)


def test_registered_with_a_follow_up_read_under_lever_s_api():
    assert isinstance(SOURCES["lever"], LeverSource)
    assert (source.success_status, source.needs_api_key, source.api_base) == (200, True, "https://api.lever.co/v1")


def test_known_answer_vector():
    """The signature of one fixed token and time, computed with hmac here."""
    body = fixture_json("lever_candidateStageChange.json")
    expected = hmac.new(KEY.encode(), f"{TOKEN}{TRIGGERED_AT}".encode(), hashlib.sha256).hexdigest()
    body["signature"] = expected
    assert source.handshake(delivery(body)) is None
    source.verify(delivery(body), [KEY], NOW)


def test_sign_sample_puts_lever_s_fields_into_the_body():
    headers, raw = source.sign_sample(fixture_bytes("lever_candidateStageChange.json"), KEY, 1_775_050_000)
    body = json.loads(raw)
    assert headers["Content-Type"] == "application/json"
    assert (body["token"], body["triggeredAt"]) == (TOKEN, 1_775_050_000_000)
    assert body["signature"] == lever_signature(KEY, TOKEN, 1_775_050_000_000)
    assert body["data"] == fixture_json("lever_candidateStageChange.json")["data"]


def test_a_signature_in_capitals_verifies():
    source.verify(delivery(body_of(signature=body_of()["signature"].upper())), [KEY], NOW)


def test_triggered_at_written_as_a_string_verifies_as_signed():
    source.verify(delivery(body_of(triggeredAt=str(TRIGGERED_AT))), [KEY], NOW)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"token": TOKEN.replace("c0ffee00", "c0ffee01")}, id="altered-token"),
        pytest.param({"triggeredAt": TRIGGERED_AT + 1}, id="altered-triggeredAt"),
        pytest.param({"signature": lever_signature("another-key", TOKEN, TRIGGERED_AT)}, id="wrong-key"),
        pytest.param({"signature": lever_signature(KEY, TOKEN, TRIGGERED_AT)[:-2]}, id="truncated"),
    ],
)
def test_a_mutation_is_a_bad_signature(changes):
    assert refused(body_of(**changes)) == "bad_signature"


def test_a_retired_key_alone_no_longer_matches():
    assert refused(body_of(key="retired-key")) == "bad_signature"


@pytest.mark.parametrize("now", [NOW + 301, TRIGGERED_AT / 1000 - 301], ids=["stale", "from-the-future"])
def test_a_triggered_at_outside_five_minutes_is_refused(now):
    assert refused(body_of(), now=now) == "stale_timestamp"


def test_the_window_holds_five_minutes():
    source.verify(delivery(body_of()), [KEY], TRIGGERED_AT / 1000 + 300)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"signature": None}, "missing_signature"),
        ({"signature": ""}, "missing_signature"),
        ({"signature": "zz" * 32}, "malformed_signature"),
        ({"signature": "abc"}, "malformed_signature"),
        ({"signature": 12345}, "malformed_signature"),
        ({"token": None}, "malformed_signature"),
        ({"token": ""}, "malformed_signature"),
        ({"triggeredAt": None}, "malformed_signature"),
        ({"triggeredAt": 1775040000000.5}, "malformed_signature"),
        ({"triggeredAt": "1775040000000ms"}, "malformed_signature"),
        ({"triggeredAt": True}, "malformed_signature"),
        ({"triggeredAt": -1}, "malformed_signature"),
    ],
)
def test_a_malformed_field_is_refused(changes, reason):
    assert refused(body_of(**changes)) == reason


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"signature": "ab"', b'{"signature": "ab", "x": NaN}'])
def test_a_body_that_is_no_json_object_is_400_invalid_json_not_a_missing_signature(raw):
    """Issue 22: Lever's printed example misses a comma; an unreadable body is 400 like any sender's."""
    with pytest.raises(BadRequest) as caught:
        source.verify(delivery(raw), [KEY], NOW)
    assert caught.value.reason == "invalid_json"


def test_no_signing_key():
    assert refused(body_of(), keys=[]) == "no_signing_key"


def test_rotation_second_key_matches():
    source.verify(delivery(body_of(key="new-key")), ["old-key", "new-key"], NOW)


def test_rotation_first_key_still_matches():
    source.verify(delivery(body_of(key="old-key")), ["old-key", "new-key"], NOW)


@pytest.mark.parametrize("first, last, reason", [("00" * 32, "good", None), ("good", "00" * 32, "bad_signature")])
def test_a_signature_field_given_twice_is_read_as_json_parsers_read_it_the_last(first, last, reason):
    """The body's counterpart of a header sent twice: JSON parsers, Lever's own included, keep the
    last of two equal keys, so that one is checked."""
    good = lever_signature(KEY, TOKEN, TRIGGERED_AT)
    unsigned = {key: value for key, value in body_of().items() if key != "signature"}
    values = [good if value == "good" else value for value in (first, last)]
    raw = json.dumps(unsigned)[:-1] + ", " + ", ".join(f'"signature": "{value}"' for value in values) + "}"
    if reason is None:
        source.verify(delivery(raw.encode()), [KEY], NOW)
    else:
        assert refused(raw.encode()) == reason


def test_lever_signs_token_and_time_only_so_the_data_is_not_covered():
    """Lever's scheme as it is: a changed data block keeps the signature valid. The replay window
    bounds how long a captured delivery can be reused; docs/senders/lever.md says so."""
    source.verify(delivery(body_of(data={"opportunityId": "another-opportunity"})), [KEY], NOW)


# ---- the verification call -------------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, None, {"opportunityId": ""}], ids=["empty-data", "no-data", "blank-id"])
def test_a_signed_verification_call_is_verified_then_ignored(data):
    body = body_of(data=data)
    assert source.handshake(delivery(body)) is None
    source.verify(delivery(body), [KEY], NOW)
    event = source.parse(delivery(body))
    assert (event.ignore_reason, event.delivery_id) == ("ping", None)


def test_a_verification_call_signed_with_another_key_is_refused():
    assert refused(body_of(key="another-key", data={})) == "bad_signature"


def test_an_unsigned_verification_call_is_answered_200_before_any_check():
    handshake = source.handshake(delivery({"event": "candidateStageChange", "data": {}}))
    assert (handshake.status_code, handshake.body) == (200, {"status": "ignored", "reason": "ping"})


def test_an_unsigned_event_with_an_opportunity_is_refused():
    unsigned = body_of(signature=None)
    assert source.handshake(delivery(unsigned)) is None
    assert refused(unsigned) == "missing_signature"


def test_the_verification_call_through_the_app(make_client, sender_api):
    client = make_client()
    signed_call = post(client, "lever", {"event": "candidateStageChange", "data": {}})
    unsigned_call = client.post("/lever", json={"event": "candidateStageChange", "data": {}})
    for answer in (signed_call, unsigned_call):
        assert (answer.status_code, answer.get_json()) == (200, {"status": "ignored", "reason": "ping"})
    assert len(sender_api.calls) == 0, "neither Lever's API nor Stardex is called"


# ---- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ACTED)
def test_parse_an_acted_event_names_its_delivery_and_the_opportunity_to_read(event_type):
    event = source.parse(delivery(body_of(event_type)))
    assert (event.source, event.event_type, event.ignore_reason) == ("lever", event_type, None)
    assert event.delivery_id == f"{TOKEN}:2026-04-01T10:40:00.000Z:{OPPORTUNITY}"
    assert source.follow_up(event) == FollowUp("GET", f"opportunities/{OPPORTUNITY}")


@pytest.mark.parametrize("event_type", ACTED)
def test_each_acted_event_maps_lever_s_opportunity_to_the_exact_update(event_type):
    event = source.parse(delivery(body_of(event_type)))
    with_opportunity = source.with_follow_up(event, fixture_json("lever_opportunity.json"))
    assert mapped("lever", with_opportunity.payload, with_opportunity) == fixture_json("lever_opportunity.update.json")


def test_a_single_word_name_gives_a_first_name_and_no_half_name_elsewhere():
    opportunity = {"data": {"name": "  Cher ", "emails": ["cher@example.com"]}}
    assert mapped("lever", {"api": opportunity}) == {
        "first_name": "Cher", "name": "Cher", "emails": [{"contact_data_type": "personal", "value": "cher@example.com"}],
    }


@pytest.mark.parametrize("event_type", ["candidateDeleted", "interviewCreated", "contactUpdated"])
def test_other_events_are_not_acted_on(event_type):
    assert not MAPPINGS["lever"].acts_on(event_type)
    assert all(MAPPINGS["lever"].acts_on(acted) for acted in ACTED)


def test_a_deleted_candidate_is_200_ignored_and_nothing_is_read_or_deleted(make_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    answer = post(make_client(), "lever", fixture_json("lever_candidateDeleted.json"))
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "candidateDeleted"}
    assert len(sender_api.calls) == 0


@pytest.mark.parametrize("opportunity", ["../../users", "a/b", "x?y", 7, ["x"]])
def test_an_opportunity_id_that_is_no_id_is_invalid_payload(opportunity):
    with pytest.raises(BadRequest) as caught:
        source.parse(delivery(body_of(data={"opportunityId": opportunity})))
    assert caught.value.reason == "invalid_payload"


@pytest.mark.parametrize("event_value", [None, "", 3])
def test_an_event_without_a_name_is_invalid_payload(event_value):
    with pytest.raises(BadRequest) as caught:
        source.parse(delivery(body_of(event=event_value)))
    assert caught.value.reason == "invalid_payload"


# ---- the follow-up read, through the app -------------------------------------------------------


def test_the_read_is_a_get_of_the_opportunity_with_the_key_as_basic_username(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    sender_api.get(OPPORTUNITY_URL, json=fixture_json("lever_opportunity.json"))
    body, call = one_read(dry_client(), sender_api, "lever", fixture_json("lever_candidateStageChange.json"))
    assert body == fixture_json("lever_opportunity.update.json")
    assert (call.request.method, call.request.url) == ("GET", OPPORTUNITY_URL)
    assert call.request.headers["Authorization"] == basic_auth(API_KEY)


def test_lever_api_base_points_the_read_at_lever_s_eu_host(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    base_env.setenv("LEVER_API_BASE", "https://api.eu.lever.co/v1")
    eu_url = f"https://api.eu.lever.co/v1/opportunities/{OPPORTUNITY}"
    sender_api.get(eu_url, json=fixture_json("lever_opportunity.json"))
    assert post(dry_client(), "lever", fixture_json("lever_candidateHired.json")).status_code == 200
    assert [call.request.url for call in sender_api.calls] == [eu_url]


def test_lever_s_api_down_is_503_after_retries_so_lever_retries(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    base_env.setenv("STARDEX_DEADLINE_SECONDS", "10")
    sender_api.get(OPPORTUNITY_URL, status=503, json={"code": "ServiceUnavailable"})
    answer = post(dry_client(), "lever", fixture_json("lever_candidateStageChange.json"))
    assert answer.status_code == 503
    assert answer.get_json()["reason"] == "sender_api_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    reads = [call for call in sender_api.calls if call.request.url == OPPORTUNITY_URL]
    assert len(reads) == 3, ("the read is retried before giving up", [call.request.url for call in sender_api.calls])


def test_an_opportunity_lever_does_not_know_is_422(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    sender_api.get(OPPORTUNITY_URL, status=404, json={"code": "ResourceNotFound", "message": "Opportunity not found"})
    answer = post(dry_client(), "lever", fixture_json("lever_candidateStageChange.json"))
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "sender_resource_not_found"


def test_a_key_lever_refuses_is_503_so_the_event_comes_back_once_the_key_is_fixed(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", "a-revoked-key")
    sender_api.get(OPPORTUNITY_URL, status=401, json={"code": "UnauthorizedError", "message": "Invalid API key"})
    answer = post(dry_client(), "lever", fixture_json("lever_candidateStageChange.json"))
    assert (answer.status_code, answer.get_json()["reason"]) == (503, "sender_api_auth_failed")
    assert "a-revoked-key" not in answer.get_data(as_text=True)


def test_without_lever_api_key_the_event_is_422_and_nothing_is_read(dry_client, sender_api):
    answer = post(dry_client(), "lever", fixture_json("lever_candidateStageChange.json"))
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "sender_api_key_missing"
    assert "LEVER_API_KEY" in answer.get_json()["message"]
    assert len(sender_api.calls) == 0


def lever_shapes(rng, api: bool) -> dict:
    """An opportunity answer, or an acted (or not) event about one, of random shape."""
    body = random_json(rng)
    body = body if isinstance(body, dict) else {"data": body}
    if not api:
        body.update(event=rng.choice(ACTED + ["candidateDeleted", 7]), data={"opportunityId": OPPORTUNITY, "x": random_json(rng)})
    return body


def test_signed_events_and_opportunities_of_any_shape_never_cause_a_500(dry_client, base_env, sender_api):
    base_env.setenv("LEVER_API_KEY", API_KEY)
    random_shapes_never_500(dry_client(), sender_api, "lever", lever_shapes, OPPORTUNITY_URL)
