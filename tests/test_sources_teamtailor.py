"""Teamtailor: the v2 signature (base64 of ``t=<unix>,v2=<hex>``) with one mutation per test, v1
refused, both attribute casings, and the read of a job application's candidate.

Expected signatures are computed here with hmac and base64, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time

import pytest
import responses
from responses import matchers

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import BadRequest, Unauthorized, Unprocessable
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.sender_api import SenderApiClient
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, FollowUp
from stardex_webhook.sources.teamtailor import TeamtailorSource
from tests.conftest import SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

source = SOURCES["teamtailor"]
KEY = SIGNING_KEYS["teamtailor"]
NOW = 1_773_482_953
BODY = fixture_bytes("teamtailor_candidate.create.json")
SNAKE = fixture_bytes("teamtailor_candidate.update.json")
APPLICATION = fixture_bytes("teamtailor_job_application.create.json")
CANDIDATE_API = fixture_json("teamtailor_candidate_api.json")
API = "https://api.teamtailor.com/v1"
API_KEY = "tt-test-api-token"


def v2_hex(body: bytes, key: str = KEY, t: int | str = NOW) -> str:
    return hmac.new(key.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def tt_signature(body: bytes = BODY, key: str = KEY, t: int | str = NOW) -> str:
    return base64.b64encode(f"t={t},v2={v2_hex(body, key, t)}".encode()).decode()


def delivery(body: bytes = BODY, signature: str | None = None, **changes) -> Delivery:
    return make_delivery(body, NOW, TT_Signature=signature if signature is not None else tt_signature(body, **changes))


def refused(d: Delivery, keys=(KEY,), now: float = NOW) -> str:
    return refusal(source, d, keys, now)


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


# ---- what it accepts ----------------------------------------------------------------------------


def test_registered_with_a_follow_up_key_and_json_api_headers():
    assert isinstance(source, TeamtailorSource)
    assert (source.success_status, source.needs_api_key, source.api_base) == (200, True, API)
    assert source.api_headers(API_KEY) == {
        "Authorization": f"Token token={API_KEY}", "X-Api-Version": "20240404", "Accept": "application/vnd.api+json"}


def test_a_v2_signature_verifies():
    source.verify(delivery(), [KEY], NOW)


def test_the_sample_signer_signs_as_teamtailor():
    headers, body = source.sign_sample(BODY, KEY, NOW)
    assert (headers["TT-Signature"], body) == (tt_signature(), BODY)


@pytest.mark.parametrize("offset", [-300, 300])
def test_the_window_is_five_minutes_either_way(offset):
    source.verify(delivery(), [KEY], NOW + offset)


def test_rotation_either_key():
    for key in ("old-key", "new-key"):
        source.verify(delivery(key=key), ["old-key", "new-key"], NOW)


def test_a_header_sent_twice_matches_on_either_entry():
    other = tt_signature(key="retired-key")
    for entries in ([other, tt_signature()], [tt_signature(), other], ["!!!!", tt_signature()]):
        source.verify(delivery(signature=",".join(entries)), [KEY], NOW)


# ---- one mutation per test ------------------------------------------------------------------------


def test_wrong_key():
    assert refused(delivery(key="another-key")) == "bad_signature"


def test_altered_body():
    assert refused(delivery(BODY.replace(b"Svensson", b"Svenssen"), signature=tt_signature())) == "bad_signature"


def test_altered_timestamp():
    forged = b64(f"t={NOW + 1},v2={v2_hex(BODY)}")
    assert refused(delivery(signature=forged)) == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_or_future_timestamp(offset):
    assert refused(delivery(t=NOW + offset)) == "stale_timestamp"


def test_missing_header():
    assert refused(make_delivery(BODY, NOW)) == "missing_signature"


def test_the_body_signature_field_does_not_stand_in_for_the_header():
    body = json.dumps({**json.loads(BODY), "signature": tt_signature()}).encode()
    assert refused(make_delivery(body, NOW)) == "missing_signature"


def test_v1_is_refused_with_its_own_reason():
    """v1 signs only payload.data.id: base64 of the hex HMAC of "48213"."""
    v1 = base64.b64encode(hmac.new(KEY.encode(), b"48213", hashlib.sha256).hexdigest().encode()).decode()
    assert refused(delivery(signature=v1)) == "unsupported_signature_version"


@pytest.mark.parametrize("decoded", ["t={t}", "v2={hex}", "t={t};v2={hex}", "t={t},v2={hex}0", "t=soon,v2={hex}",
                                     "t={t},v2=zz", "t= ,v2={hex}", "{short}", " ", "t={t},v2={hex},x"])
def test_malformed_decoded_header(decoded):
    text = decoded.format(t=NOW, hex=v2_hex(BODY), short=v2_hex(BODY)[:-2])
    assert refused(delivery(signature=b64(text))) == "malformed_signature"


@pytest.mark.parametrize("header", ["not base64!", "t=1,v2=ab", "dD0x", "===="])
def test_header_that_is_no_base64_of_the_format(header):
    assert refused(delivery(signature=header)) == "malformed_signature"


def test_no_signing_key():
    assert refused(delivery(), keys=[]) == "no_signing_key"


def test_garbage_headers_give_a_clean_401_or_400():
    rng = random.Random(20261202)
    alphabet = "t=v2,.0123456789abcdefABCDEF+/=é\x00\udcff"
    for _ in range(500):
        header = rng.choice([b64, lambda text: text])("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        garbage = delivery(bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 30))), signature=header)
        for step in (lambda d: source.verify(d, [KEY], NOW), source.parse):
            try:
                step(garbage)
            except (Unauthorized, BadRequest):
                pass


# ---- parse ----------------------------------------------------------------------------------------


def test_parse_names_the_event_and_the_delivery():
    event = source.parse(delivery())
    assert (event.event_type, event.delivery_id) == ("candidate.create", "48213:candidate.create:2026-03-14T11:02:33.000+01:00")
    assert event.payload == json.loads(BODY)


def test_the_delivery_id_reads_the_snake_case_time_too():
    assert source.parse(delivery(SNAKE)).delivery_id == "48213:candidate.update:2026-03-20T09:30:00.000+01:00"


@pytest.mark.parametrize("body", [b'{"payload": {}}', b'{"payload": {"event_name": "candidate.create"}}',
                                  b'{"payload": {"event_name": 7, "data": {}}}', b'{"data": {}}'])
def test_a_body_without_the_envelope_is_invalid_payload(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(delivery(body))
    assert caught.value.reason == "invalid_payload"


# ---- the preset mapping ------------------------------------------------------------------------------


def mapping():
    return load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["teamtailor"]


def test_candidate_create_in_kebab_case_maps_to_the_exact_update():
    event = source.parse(delivery())
    assert source.follow_up(event) is None, "the person is in the webhook"
    assert mapping().apply(event.payload, event).update == {
        "first_name": "Lena", "last_name": "Svensson", "name": "Lena Svensson",
        "linkedin_url": "https://www.linkedin.com/in/lena-svensson-example",
        "emails": [{"contact_data_type": "personal", "value": "lena.svensson@example.se"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+46701234567"}],
    }


def test_candidate_update_in_snake_case_maps_to_the_exact_update():
    event = source.parse(delivery(SNAKE))
    assert mapping().apply(event.payload, event).update == {
        "first_name": "Lena", "last_name": "Svensson Berg", "name": "Lena Svensson Berg",
        "linkedin_url": "https://linkedin.com/in/lena-svensson-example",
        "emails": [{"contact_data_type": "personal", "value": "lena.berg@example.se"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "070-123 45 67"}],
    }


@pytest.mark.parametrize("event_name", ["job_application.create", "job_application.update"])
def test_a_job_application_maps_the_candidate_read_from_the_api(event_name):
    body = APPLICATION.replace(b"job_application.create", event_name.encode())
    event = source.parse(delivery(body))
    assert mapping().acts_on(event_name)
    assert source.follow_up(event) == FollowUp("GET", "candidates/48213")
    event = source.with_follow_up(event, CANDIDATE_API)
    assert mapping().apply(event.payload, event).update == {
        "first_name": "Lena", "last_name": "Svensson", "name": "Lena Svensson",
        "linkedin_url": "https://www.linkedin.com/in/lena-svensson-example",
        "emails": [{"contact_data_type": "personal", "value": "lena.svensson@example.se"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+46701234567"}],
    }


@pytest.mark.parametrize("event_name", ["candidate.destroy", "job_application.destroy", "job.create", "job.update",
                                        "job.destroy"])
def test_other_events_are_ignored(event_name):
    assert not mapping().acts_on(event_name)


def application(**data) -> bytes:
    document = json.loads(APPLICATION)
    document["payload"]["data"] = {"id": "7730051", "type": "job-applications", "attributes": {"job_id": 902}, **data}
    return json.dumps(document).encode()


@pytest.mark.parametrize("body, target", [
    (application(attributes={"candidate-id": 51}), "candidates/51"),
    (application(attributes={"candidate_id": "52"}), "candidates/52"),
    (application(relationships={"candidate": {"links": {"related": f"{API}/job-applications/7730051/candidate"}}}),
     f"{API}/job-applications/7730051/candidate"),
    (application(), "job-applications/7730051/candidate"),
])
def test_the_candidate_is_found_from_what_the_application_carries(body, target):
    assert source.follow_up(source.parse(delivery(body))) == FollowUp("GET", target)


def test_a_job_table_in_the_mapping_sends_job_id_for_listed_jobs(tmp_path):
    with open(f"{BUILTIN_MAPPINGS_DIR}/teamtailor.json", encoding="utf-8") as preset:
        document = json.load(preset)
    document["job"] = {"path": "payload.data.attributes.job_id || payload.data.attributes.\"job-id\"",
                       "table": {"902": "stardex-job-7"}}
    (tmp_path / "teamtailor.json").write_text(json.dumps(document))
    custom = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)["teamtailor"]
    event = source.with_follow_up(source.parse(delivery(APPLICATION)), CANDIDATE_API)
    assert custom.apply(event.payload, event).update["job_id"] == "stardex-job-7"
    event = source.with_follow_up(source.parse(delivery(application(attributes={"job_id": 903}))), CANDIDATE_API)
    assert "job_id" not in custom.apply(event.payload, event).update


# ---- the read, through the client and the app -----------------------------------------------------------


@pytest.fixture
def sender_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_a_related_link_outside_the_base_is_refused_with_no_request(sender_api):
    body = application(relationships={"candidate": {"links": {"related": "https://evil.example/v1/candidates/1"}}})
    client = SenderApiClient("teamtailor", API, lambda deadline: API_KEY, source.api_headers, "TEAMTAILOR_API_KEY")
    with pytest.raises(Unprocessable) as caught:
        client.read(Deadline(2), source.follow_up(source.parse(delivery(body))))
    assert caught.value.reason == "follow_up_url_refused"
    assert len(sender_api.calls) == 0


def post(client, body: bytes):
    now = int(time.time())
    return client.post("/teamtailor", data=body, headers={"TT-Signature": tt_signature(body, t=now)})


def test_a_job_application_through_the_app_reads_the_candidate(make_client, base_env, sender_api):
    base_env.setenv("DRY_RUN", "1")
    base_env.setenv("TEAMTAILOR_API_KEY", API_KEY)
    sender_api.get(f"{API}/candidates/48213", json=CANDIDATE_API, match=[matchers.header_matcher(
        {"Authorization": f"Token token={API_KEY}", "X-Api-Version": "20240404"})])
    answer = post(make_client(), APPLICATION)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["body"]["name"] == "Lena Svensson"
    assert [call.request.url for call in sender_api.calls] == [f"{API}/candidates/48213"]


def test_a_candidate_event_needs_no_api_key(make_client, base_env, sender_api):
    base_env.setenv("DRY_RUN", "1")
    answer = post(make_client(), BODY)
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "dry_run"
    assert len(sender_api.calls) == 0


def test_a_job_application_without_the_api_key_is_422(make_client, sender_api):
    answer = post(make_client(), APPLICATION)
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "sender_api_key_missing"
    assert len(sender_api.calls) == 0


def test_the_api_down_is_503(make_client, base_env, sender_api):
    base_env.setenv("TEAMTAILOR_API_KEY", API_KEY)
    sender_api.get(f"{API}/candidates/48213", body=ConnectionError("down"))
    answer = post(make_client(), APPLICATION)
    assert answer.status_code == 503
    assert answer.get_json()["reason"] == "sender_api_unavailable"


def test_a_destroyed_candidate_is_200_ignored(make_client, sender_api):
    body = json.dumps({"payload": {"event_name": "candidate.destroy", "data": {"id": "48213", "type": "candidates"}}})
    answer = post(make_client(), body.encode())
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "candidate.destroy"}
