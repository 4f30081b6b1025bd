"""Ashby adapter: `Ashby-Signature: sha256=<hex>` over the raw body, the ping, the candidate.info
read that completes every acted event, and the preset mapping.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest, Unprocessable
from stardex_webhook.mapping import SourceMapping
from stardex_webhook.sources import SOURCES
from stardex_webhook.sources.ashby import AshbySource
from stardex_webhook.records import Delivery, FollowUp
from tests.helpers.ats_a import (  # noqa: F401 (fixtures)
    MAPPINGS, basic_auth, dry_client, mapped, one_read, post, random_shapes_never_500, request_json, sender_api,
)
from tests.helpers.random_json import random_json
from tests.conftest import ROOT, SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

KEY = SIGNING_KEYS["ashby"]
API_KEY = "ashby-test-api-key"
NOW = 1_773_000_000.0
BODY = fixture_bytes("ashby_applicationSubmit.json")
CANDIDATE = "0d8f2c1e-5b6a-4c3d-9e8f-7a6b5c4d3e2f"
INFO_URL = "https://api.ashbyhq.com/candidate.info"
ACTED = ["applicationSubmit", "applicationUpdate", "candidateStageChange", "candidateHire"]
source = AshbySource()


def sign(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def delivery(body: bytes = BODY, **headers: str) -> Delivery:
    return make_delivery(body, NOW, **headers)


def signed(body: bytes = BODY, key: str = KEY) -> Delivery:
    return delivery(body, **{"Ashby-Signature": f"sha256={sign(body, key)}"})


def refused(d: Delivery, keys=(KEY,)) -> str:
    return refusal(source, d, keys, NOW)


def test_registered_with_a_follow_up_read_under_ashby_s_api():
    assert isinstance(SOURCES["ashby"], AshbySource)
    assert (source.success_status, source.needs_api_key, source.api_base) == (200, True, "https://api.ashbyhq.com")


def test_known_answer_vector():
    expected = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    source.verify(delivery(**{"Ashby-Signature": "sha256=" + expected}), [KEY], NOW)
    headers, body = source.sign_sample(BODY, KEY, int(NOW))
    assert (headers["Ashby-Signature"], body) == ("sha256=" + expected, BODY)


@pytest.mark.parametrize("form", ["SHA256={}", " sha256 = {} ", "sha256={upper}"])
def test_lenient_header_forms(form):
    digest = sign(BODY)
    source.verify(delivery(**{"Ashby-Signature": form.format(digest, upper=digest.upper())}), [KEY], NOW)


@pytest.mark.parametrize(
    "make, keys, reason",
    [
        pytest.param(lambda: delivery(), [KEY], "missing_signature", id="missing-header"),
        pytest.param(lambda: signed(), [], "no_signing_key", id="no-signing-key"),
        pytest.param(lambda: signed(key="another-key"), [KEY], "bad_signature", id="wrong-key"),
        pytest.param(lambda: delivery(BODY.replace(b"Jonas", b"Jonaz", 1), **{"Ashby-Signature": f"sha256={sign(BODY)}"}),
                     [KEY], "bad_signature", id="one-byte-of-body-changed"),
    ],
)
def test_a_mutation_is_refused(make, keys, reason):
    assert refused(make(), keys=keys) == reason


def test_reserialised_body_fails():
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert refused(delivery(reserialised, **{"Ashby-Signature": f"sha256={sign(BODY)}"})) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    ["{hexdigest}", "sha256 {hexdigest}", "sha1={hexdigest}", "sha256=", "sha256={b64}", "sha256=" + "zz" * 32,
     "sha256={hexdigest}0"],
)
def test_malformed_header(header):
    digest = hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()
    value = header.format(hexdigest=digest.hex(), b64=base64.b64encode(digest).decode())
    assert refused(delivery(**{"Ashby-Signature": value})) == "malformed_signature"


@pytest.mark.parametrize("other", ["sha256=" + "00" * 32, "garbage"])
def test_a_header_sent_twice_is_accepted_when_one_entry_matches(other):
    good = f"sha256={sign(BODY)}"
    for entries in ([other, good], [good, other]):
        source.verify(delivery(**{"Ashby-Signature": ", ".join(entries)}), [KEY], NOW)


def test_rotation_second_key_matches():
    source.verify(signed(key="new-key"), ["old-key", "new-key"], NOW)


def test_no_timestamp_so_old_deliveries_still_verify():
    source.verify(signed(), [KEY], NOW + 30 * 86_400)


# ---- the ping ----------------------------------------------------------------------------------


def test_the_ping_is_verified_then_ignored():
    ping = fixture_bytes("ashby_ping.json")
    source.verify(signed(ping), [KEY], NOW)
    event = source.parse(signed(ping))
    assert (event.event_type, event.ignore_reason) == ("ping", "ping")


def test_an_unsigned_ping_is_refused():
    assert refused(delivery(fixture_bytes("ashby_ping.json"))) == "missing_signature"


def test_the_ping_through_the_app_needs_no_api_key(make_client, sender_api):
    answer = post(make_client(), "ashby", fixture_json("ashby_ping.json"))
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ignored", "reason": "ping"})
    assert len(sender_api.calls) == 0


# ---- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ACTED)
def test_parse_an_acted_event_names_its_delivery_and_the_candidate_to_read(event_type):
    body = fixture_json(f"ashby_{event_type}.json")
    event = source.parse(signed(json.dumps(body).encode()))
    assert (event.event_type, event.ignore_reason, event.delivery_id) == (event_type, None, body["webhookActionId"])
    assert source.follow_up(event) == FollowUp("POST", "candidate.info", json={"id": CANDIDATE})


@pytest.mark.parametrize("event_type", ACTED)
def test_each_acted_event_maps_with_candidate_info_to_the_exact_update(event_type):
    event = source.parse(signed(fixture_bytes(f"ashby_{event_type}.json")))
    completed = source.with_follow_up(event, fixture_json("ashby_candidate_info.json"))
    assert mapped("ashby", completed.payload, completed) == fixture_json("ashby_candidate_info.update.json")


def test_the_webhook_s_own_candidate_maps_on_its_own():
    """What the webhook carries, split into names, with Ashby's contact types."""
    assert mapped("ashby", fixture_json("ashby_applicationSubmit.json")) == {
        "first_name": "Jonas", "last_name": "Weber", "name": "Jonas Weber",
        "emails": [{"contact_data_type": "personal", "value": "jonas.weber@example.net"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+4915123456789"}],
    }


@pytest.mark.parametrize("event_type", ["candidateDelete", "candidateMerge"])
def test_delete_and_merge_are_200_ignored_and_nothing_is_read(make_client, base_env, sender_api, event_type):
    base_env.setenv("ASHBY_API_KEY", API_KEY)
    answer = post(make_client(), "ashby", fixture_json(f"ashby_{event_type}.json"))
    assert (answer.status_code, answer.get_json()["reason"]) == (200, "event_not_mapped")
    assert len(sender_api.calls) == 0


@pytest.mark.parametrize("event_type", ["offerCreate", "jobCreate", "interviewScheduleCreate"])
def test_other_events_are_not_acted_on(event_type):
    assert not MAPPINGS["ashby"].acts_on(event_type)
    assert all(MAPPINGS["ashby"].acts_on(acted) for acted in ACTED)


@pytest.mark.parametrize("body", [b'{"data": {}}', b'{"action": 7}', b'{"action": ""}'])
def test_a_body_without_a_string_action_is_invalid_payload(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(signed(body))
    assert caught.value.reason == "invalid_payload"


def test_an_event_without_a_candidate_id_maps_what_it_carries_without_a_read():
    body = fixture_json("ashby_applicationUpdate.json")
    del body["data"]["application"]["candidate"]["id"]
    assert source.follow_up(source.parse(signed(json.dumps(body).encode()))) is None


def test_a_job_table_in_the_mapping_sends_job_id_for_listed_jobs_only():
    document = json.loads((ROOT / "mappings" / "ashby.json").read_text())
    document["job"] = {"path": "data.application.job.id", "table": {"8e7f6051-0000-1111-2222-333344445555": "stardex-job-7"}}
    mapping = SourceMapping("ashby", document, None)
    listed = fixture_json("ashby_applicationSubmit.json")
    assert mapping.apply(listed).update["job_id"] == "stardex-job-7"
    listed["data"]["application"]["job"]["id"] = "another-ashby-job"
    assert "job_id" not in mapping.apply(listed).update
    assert "job_id" not in mapped("ashby", fixture_json("ashby_applicationSubmit.json")), "the preset has no table"


# ---- the follow-up read ------------------------------------------------------------------------


def test_the_read_posts_the_candidate_id_with_the_key_as_basic_username(dry_client, base_env, sender_api):
    base_env.setenv("ASHBY_API_KEY", API_KEY)
    sender_api.post(INFO_URL, json=fixture_json("ashby_candidate_info.json"))
    body, call = one_read(dry_client(), sender_api, "ashby", fixture_json("ashby_candidateStageChange.json"))
    assert body == fixture_json("ashby_candidate_info.update.json")
    assert (call.request.method, call.request.url, request_json(call)) == ("POST", INFO_URL, {"id": CANDIDATE})
    assert call.request.headers["Authorization"] == basic_auth(API_KEY)
    assert call.request.headers["Content-Type"] == "application/json"


def test_ashby_s_api_down_is_503_after_retries_so_ashby_retries(dry_client, base_env, sender_api):
    base_env.setenv("ASHBY_API_KEY", API_KEY)
    base_env.setenv("STARDEX_DEADLINE_SECONDS", "10")
    sender_api.post(INFO_URL, status=503, body="upstream unavailable")
    answer = post(dry_client(), "ashby", fixture_json("ashby_applicationSubmit.json"))
    assert (answer.status_code, answer.get_json()["reason"]) == (503, "sender_api_unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
    reads = [call.request.url for call in sender_api.calls if call.request.url == INFO_URL]
    assert len(reads) == 3, [call.request.url for call in sender_api.calls]


@pytest.mark.parametrize(
    "status, answer_body",
    [
        (404, {"message": "Not Found"}),
        (200, {"success": False, "errorInfo": {"code": "candidate_not_found", "message": "Candidate not found"}}),
    ],
    ids=["http-404", "success-false"],
)
def test_a_candidate_ashby_does_not_know_is_422(dry_client, base_env, sender_api, status, answer_body):
    base_env.setenv("ASHBY_API_KEY", API_KEY)
    sender_api.post(INFO_URL, status=status, json=answer_body)
    answer = post(dry_client(), "ashby", fixture_json("ashby_applicationSubmit.json"))
    assert (answer.status_code, answer.get_json()["reason"]) == (422, "sender_resource_not_found")


@pytest.mark.parametrize(
    "answer_body",
    [{"success": False, "errorInfo": {"code": "invalid_input", "message": "bad id"}}, {"success": False}, ["odd"], {}],
)
def test_another_refusal_in_ashby_s_answer_is_422_sender_api_rejected(answer_body):
    event = source.parse(signed())
    with pytest.raises(Unprocessable) as caught:
        source.with_follow_up(event, answer_body)
    assert caught.value.reason == "sender_api_rejected"


def test_without_ashby_api_key_an_acted_event_is_422_and_nothing_is_read(dry_client, sender_api):
    """The simplest behaviour docs/contract.md allows: every acted event reads candidate.info, so
    without a key it is 422 (the reason names the setting), even when the webhook has an email."""
    answer = post(dry_client(), "ashby", fixture_json("ashby_applicationSubmit.json"))
    assert (answer.status_code, answer.get_json()["reason"]) == (422, "sender_api_key_missing")
    assert "ASHBY_API_KEY" in answer.get_json()["message"]
    assert len(sender_api.calls) == 0


def ashby_shapes(rng, api: bool) -> dict:
    """A candidate.info answer, or an event about the candidate, of random shape."""
    shape = random_json(rng)
    if api:
        return {"success": rng.random() < 0.8, "results": shape, "errorInfo": shape}
    candidate = {"id": CANDIDATE, **(shape if isinstance(shape, dict) else {"name": shape})}
    return {"action": rng.choice(ACTED + ["candidateDelete", 7]), "webhookActionId": random_json(rng),
            "data": {"application": {"candidate": candidate, "job": random_json(rng)}}}


def test_signed_events_and_candidates_of_any_shape_never_cause_a_500(dry_client, base_env, sender_api):
    base_env.setenv("ASHBY_API_KEY", API_KEY)
    random_shapes_never_500(dry_client(), sender_api, "ashby", ashby_shapes, INFO_URL, method="POST")
