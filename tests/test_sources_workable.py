"""Workable adapter: `X-Workable-Signature`, the HMAC-SHA256 of the raw body in hex or base64,
the event from `event_type` or `type`, and the preset mapping (no follow-up read).

Expected signatures are computed here with hmac and base64, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery
from stardex_webhook.sources.workable import WorkableSource
from tests.helpers.ats_a import MAPPINGS, mapped, post, random_shapes_never_500, sender_api  # noqa: F401
from tests.helpers.random_json import random_json
from tests.conftest import ROOT, SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

KEY = SIGNING_KEYS["workable"]
NOW = 1_773_000_000.0
BODY = fixture_bytes("workable_candidate_created.json")
source = WorkableSource()


def digest(body: bytes = BODY, key: str = KEY) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def delivery(body: bytes = BODY, **headers: str) -> Delivery:
    return make_delivery(body, NOW, **headers)


def signed(body: bytes = BODY, key: str = KEY) -> Delivery:
    return delivery(body, **{"X-Workable-Signature": digest(body, key).hex()})


def refused(d: Delivery, keys=(KEY,)) -> str:
    return refusal(source, d, keys, NOW)


def test_registered_without_a_follow_up_read():
    assert isinstance(SOURCES["workable"], WorkableSource)
    assert (source.success_status, source.needs_api_key, source.handshake(signed())) == (200, False, None)


def test_known_answer_vector_in_hex():
    expected = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    source.verify(delivery(**{"X-Workable-Signature": expected}), [KEY], NOW)
    headers, body = source.sign_sample(BODY, KEY, int(NOW))
    assert (headers["X-Workable-Signature"], body) == (expected, BODY)


def test_known_answer_vector_in_base64():
    expected = base64.b64encode(hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()).decode()
    source.verify(delivery(**{"X-Workable-Signature": expected}), [KEY], NOW)


@pytest.mark.parametrize(
    "encode",
    [lambda d: d.hex().upper(), lambda d: f"sha256={d.hex()}", lambda d: f"  {base64.b64encode(d).decode()} "],
    ids=["hex-capitals", "sha256-prefix", "base64-blanks"],
)
def test_lenient_header_forms(encode):
    source.verify(delivery(**{"X-Workable-Signature": encode(digest())}), [KEY], NOW)


def test_missing_header():
    assert refused(delivery()) == "missing_signature"


def test_no_signing_key():
    assert refused(signed(), keys=[]) == "no_signing_key"


@pytest.mark.parametrize("encode", [bytes.hex, lambda d: base64.b64encode(d).decode()], ids=["hex", "base64"])
def test_wrong_key(encode):
    assert refused(delivery(**{"X-Workable-Signature": encode(digest(key="another-key"))})) == "bad_signature"


@pytest.mark.parametrize("encode", [bytes.hex, lambda d: base64.b64encode(d).decode()], ids=["hex", "base64"])
def test_one_byte_of_body_changed(encode):
    tampered = BODY.replace(b"Aisha", b"Aishb", 1)
    assert refused(delivery(tampered, **{"X-Workable-Signature": encode(digest())})) == "bad_signature"


def test_a_truncated_digest_is_a_bad_signature():
    assert refused(delivery(**{"X-Workable-Signature": digest().hex()[:-2]})) == "bad_signature"


@pytest.mark.parametrize("header", ["zz=z", "!!!!", "abc", "sha256=", "a b", "0x" + "ab" * 32])
def test_malformed_header(header):
    assert refused(delivery(**{"X-Workable-Signature": header})) == "malformed_signature"


@pytest.mark.parametrize("other", ["00" * 32, "!!!!"])
def test_a_header_sent_twice_is_accepted_when_one_entry_matches(other):
    for entries in ([other, digest().hex()], [base64.b64encode(digest()).decode(), other]):
        source.verify(delivery(**{"X-Workable-Signature": ",".join(entries)}), [KEY], NOW)


def test_rotation_second_key_matches():
    source.verify(signed(key="new-key"), ["old-key", "new-key"], NOW)


def test_no_timestamp_so_old_deliveries_still_verify():
    source.verify(signed(), [KEY], NOW + 30 * 86_400)


# ---- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, event_type, delivery_id",
    [
        ("workable_candidate_created.json", "candidate_created", "ce1a2b3c:candidate_created:2026-03-12T08:29:55Z"),
        ("workable_candidate_moved.json", "candidate_moved", "ce1a2b3c:candidate_moved:2026-03-20T11:01:58Z"),
        ("workable_candidate_moved_disqualified.json", "candidate_moved", "ce1a2b3c:candidate_moved:2026-03-21T07:59:40Z"),
    ],
)
def test_parse_reads_the_event_and_makes_a_delivery_id(fixture, event_type, delivery_id):
    event = source.parse(signed(fixture_bytes(fixture)))
    assert (event.source, event.event_type, event.delivery_id, event.ignore_reason) == (
        "workable", event_type, delivery_id, None)
    assert source.follow_up(event) is None


def test_event_type_wins_over_type_when_both_are_there():
    body = {"event_type": "candidate_created", "type": "candidate_deleted", "data": {"id": "c1"}}
    assert source.parse(signed(json.dumps(body).encode())).event_type == "candidate_created"


@pytest.mark.parametrize(
    "fixture",
    ["workable_candidate_created.json", "workable_candidate_moved.json", "workable_candidate_moved_disqualified.json"],
)
def test_each_acted_event_maps_to_the_exact_update(fixture):
    event = source.parse(signed(fixture_bytes(fixture)))
    assert mapped("workable", event.payload, event) == fixture_json("workable_candidate.update.json")


def test_without_current_experience_or_address_the_location_text_and_no_company_are_sent():
    body = fixture_json("workable_candidate_created.json")
    data = body["data"]
    del data["address"], data["name"]
    data["experience_entries"] = [{**entry, "current": False} for entry in data["experience_entries"]]
    update = mapped("workable", body)
    assert "company_name" not in update and "current_job_title" not in update
    assert (update["address"], update["name"]) == ("Lagos, Nigeria", "Aisha Bello")


def test_a_deleted_candidate_is_200_ignored_and_stardex_is_not_called(make_client, sender_api):
    answer = post(make_client(), "workable", fixture_json("workable_candidate_deleted.json"))
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "candidate_deleted"}
    assert len(sender_api.calls) == 0


@pytest.mark.parametrize("event_type", ["candidate_deleted", "employee_created", "employee_updated"])
def test_other_events_are_not_acted_on(event_type):
    assert not MAPPINGS["workable"].acts_on(event_type)
    assert MAPPINGS["workable"].acts_on("candidate_created") and MAPPINGS["workable"].acts_on("candidate_moved")


@pytest.mark.parametrize("body", [b'{"data": {}}', b'{"event_type": 7}', b'{"type": ""}', b'{"event_type": null}'])
def test_a_body_without_an_event_is_invalid_payload(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(signed(body))
    assert caught.value.reason == "invalid_payload"


def test_the_documented_body_without_an_event_takes_it_from_the_subscription_url():
    """Issue 22: Workable documents the body as ``data`` only; the URL subscribed names the event."""
    body = json.dumps({"data": json.loads(BODY)["data"]}).encode()
    d = make_delivery(body, NOW, query={"event": "candidate_created"},
                      **{"X_Workable_Signature": digest(body).hex()})
    event = source.parse(d)
    assert event.event_type == "candidate_created" and MAPPINGS["workable"].acts_on(event.event_type)


def test_the_body_s_own_event_wins_over_the_url_s():
    d = make_delivery(BODY, NOW, query={"event": "candidate_moved"}, **{"X_Workable_Signature": digest(BODY).hex()})
    assert source.parse(d).event_type == json.loads(BODY).get("event_type", json.loads(BODY).get("type"))


def test_a_job_table_sends_job_id_only_for_listed_jobs(make_client, base_env, tmp_path):
    """Opt-in through MAPPINGS_DIR: the shipped preset has no table."""
    document = json.loads((ROOT / "mappings" / "workable.json").read_text())
    document["job"] = {"path": "data.job.shortcode", "table": {"7A1B2C3D4E": "stardex-job-42"}}
    (tmp_path / "workable.json").write_text(json.dumps(document))
    base_env.setenv("MAPPINGS_DIR", str(tmp_path))
    base_env.setenv("DRY_RUN", "1")
    client = make_client()
    listed = post(client, "workable", fixture_json("workable_candidate_moved.json")).get_json()
    assert listed["body"]["job_id"] == "stardex-job-42"
    other = fixture_json("workable_candidate_moved.json")
    other["data"]["job"]["shortcode"] = "9Z9Z9Z9Z9Z"
    assert "job_id" not in post(client, "workable", other).get_json()["body"]
    assert "job_id" not in mapped("workable", fixture_json("workable_candidate_moved.json"))


def test_signed_candidates_of_any_shape_never_cause_a_500(make_client, base_env, sender_api):
    base_env.setenv("DRY_RUN", "1")

    def body_for(rng, api):
        shape = random_json(rng)
        return {rng.choice(["event_type", "type"]): rng.choice(["candidate_created", "candidate_moved", "candidate_deleted", 7]),
                "data": shape if rng.random() < 0.5 else {"email": "a@b.co", "social_profiles": shape, "experience_entries": shape}}

    random_shapes_never_500(make_client(), sender_api, "workable", body_for)
