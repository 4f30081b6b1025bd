"""SmartRecruiters: the X-Hook-Secret handshake, the v1 signature over the body and the event
headers (the vendor's known-answer vector, then one mutation per test), the follow-up read of the
candidate, and the preset mapping.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

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
from stardex_webhook.sources.smartrecruiters import SmartRecruitersSource
from tests.conftest import SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

source = SOURCES["smartrecruiters"]
KEY = SIGNING_KEYS["smartrecruiters"]
NOW = 1_773_000_000
BODY = fixture_bytes("smartrecruiters_application.created.json")
CANDIDATE = fixture_json("smartrecruiters_candidate.json")
CANDIDATE_ID = "9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
JOB_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
API = "https://api.smartrecruiters.com"
API_KEY = "sr-test-api-token"
APP_LINK = f"<{API}/candidates/{CANDIDATE_ID}/jobs/{JOB_ID}>; rel=self"
CANDIDATE_LINK = f"<{API}/candidates/{CANDIDATE_ID}>; rel=self"

# The vendor's example (developers.smartrecruiters.com, "Webhooks security").
VENDOR = {
    "key": "HeBVky2bccvvkcXPimH8c", "ts": "1574080897", "body": b'{"job_id":"jid","candidate_id":"cid"}',
    "event-id": "123", "event-name": "application.created", "event-version": "v201910",
    "link": "<http://smartrecruiters.com/endpoint>; rel=self",
}


def v1(key: str, ts: str, body: bytes, event_id: str, name: str, version: str, link: str) -> str:
    message = ts.encode() + b"." + body + b"." + ".".join([event_id, name, version, link]).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def headers_for(body: bytes = BODY, key: str = KEY, ts: int | str = NOW, event_id: str = "evt-1",
                name: str = "application.created", version: str = "v201910", link: str = APP_LINK,
                signature: str | None = None) -> dict[str, str]:
    return {
        "smartrecruiters-signature": signature or f"v1={v1(key, str(ts), body, event_id, name, version, link)}",
        "smartrecruiters-timestamp": str(ts), "event-id": event_id, "event-name": name,
        "event-version": version, "Link": link, "Content-Type": "application/json",
    }


def delivery(body: bytes = BODY, headers: dict[str, str] | None = None, **changes) -> Delivery:
    return make_delivery(body, NOW, **{name.replace("-", "_"): value
                                       for name, value in (headers or headers_for(body, **changes)).items()})


def refused(d: Delivery, keys=(KEY,), now: float = NOW) -> str:
    return refusal(source, d, keys, now)


# ---- the known-answer vector and what it accepts ----------------------------------------------


def test_the_vendors_known_answer_vector():
    digest = v1(VENDOR["key"], VENDOR["ts"], VENDOR["body"], VENDOR["event-id"], VENDOR["event-name"],
                VENDOR["event-version"], VENDOR["link"])
    assert digest.startswith("2e9291f1") and digest.endswith("98ce1f")
    vendor = delivery(VENDOR["body"], headers={
        "smartrecruiters-signature": f"v1={digest}", "smartrecruiters-timestamp": VENDOR["ts"],
        "event-id": VENDOR["event-id"], "event-name": VENDOR["event-name"],
        "event-version": VENDOR["event-version"], "link": VENDOR["link"]})
    source.verify(vendor, [VENDOR["key"]], int(VENDOR["ts"]))


def test_registered_with_202_and_its_own_api_key():
    assert isinstance(source, SmartRecruitersSource)
    assert (source.success_status, source.needs_api_key, source.api_base) == (202, True, API)
    assert source.api_headers(API_KEY) == {"X-SmartToken": API_KEY}


def test_the_sample_is_signed_as_a_real_notification():
    sample = (SOURCES["smartrecruiters"].sign_sample(BODY, KEY, NOW))[0]
    assert {"event-id", "event-name", "event-version", "Link", "smartrecruiters-timestamp"} <= set(sample)
    assert sample["Link"] == APP_LINK, "under the default API base"
    expected = v1(KEY, str(NOW), BODY, sample["event-id"], "application.created", "v201910", APP_LINK)
    assert sample["smartrecruiters-signature"] == f"v1={expected}"


@pytest.mark.parametrize("signature", ["v1={good};v1={other}", "v1={other};v1={good}", "v1={other}; v1={good}",
                                       "v1={good}", " v1={good} ", "v1={upper}", "v1={other},v1={good}"])
def test_any_listed_signature_may_match(signature):
    good = v1(KEY, str(NOW), BODY, "evt-1", "application.created", "v201910", APP_LINK)
    other = v1("retired-key", str(NOW), BODY, "evt-1", "application.created", "v201910", APP_LINK)
    source.verify(delivery(signature=signature.format(good=good, other=other, upper=good.upper())), [KEY], NOW)


@pytest.mark.parametrize("signing_key", ["key-one", "key-two", "key-sixteen"])
def test_rotation_any_active_key_matches(signing_key):
    active = ["key-one", "key-two", *(f"key-{n}" for n in range(3, 16)), "key-sixteen"]
    source.verify(delivery(key=signing_key), active, NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamps_within_five_minutes_either_way(offset):
    source.verify(delivery(), [KEY], NOW + offset)


# ---- one mutation per test --------------------------------------------------------------------


def test_wrong_key():
    assert refused(delivery(key="another-key")) == "bad_signature"


def test_altered_body():
    signed = headers_for()
    assert refused(delivery(BODY.replace(b"9c1b", b"9c1c"), headers=signed)) == "bad_signature"


@pytest.mark.parametrize("header, value", [
    ("event-id", "evt-2"), ("event-name", "candidate.updated"), ("event-version", "v202001"),
    ("Link", f"<{API}/candidates/someone-else>; rel=self"), ("smartrecruiters-timestamp", str(NOW + 1)),
])
def test_each_signed_header_altered(header, value):
    assert refused(delivery(headers={**headers_for(), header: value})) == "bad_signature"


@pytest.mark.parametrize("header", ["event-id", "event-name", "event-version", "Link"])
def test_a_signed_header_left_out_is_signed_as_empty(header):
    """A missing header counts as "": dropping one breaks the signature, and a sender that never
    sent it is still verified."""
    without = {name: value for name, value in headers_for().items() if name != header}
    assert refused(delivery(headers=without)) == "bad_signature"
    empty = {"event-id": "evt-1", "event-name": "application.created", "event-version": "v201910", "Link": APP_LINK}
    empty[header] = ""
    signed = headers_for(event_id=empty["event-id"], name=empty["event-name"], version=empty["event-version"],
                         link=empty["Link"])
    source.verify(delivery(headers={name: value for name, value in signed.items() if name != header}), [KEY], NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_or_future_timestamp(offset):
    assert refused(delivery(ts=NOW + offset)) == "stale_timestamp"


@pytest.mark.parametrize("missing", ["smartrecruiters-signature", "smartrecruiters-timestamp"])
def test_missing_signature_or_timestamp(missing):
    assert refused(delivery(headers={k: v for k, v in headers_for().items() if k != missing})) == "missing_signature"


@pytest.mark.parametrize("timestamp", ["soon", "1773000000.5", "-1773000000", "0x69"])
def test_malformed_timestamp(timestamp):
    assert refused(delivery(headers={**headers_for(), "smartrecruiters-timestamp": timestamp})) == "malformed_signature"


@pytest.mark.parametrize("signature", ["{good}", "v2={good}", "v1:{good}", "v1=", "v1=zz", "v1={good}0", "sha256={good}",
                                       "v1=" + "é" * 64, ";;"])
def test_malformed_signature_header(signature):
    good = v1(KEY, str(NOW), BODY, "evt-1", "application.created", "v201910", APP_LINK)
    assert refused(delivery(signature=signature.format(good=good))) == "malformed_signature"


def test_no_signing_key():
    assert refused(delivery(), keys=[]) == "no_signing_key"


def test_garbage_headers_give_a_clean_401_or_400():
    rng = random.Random(20261201)
    alphabet = "v1=;,<> rel=self0123456789abcdef.é\x00\udcff"
    names = ["smartrecruiters-signature", "smartrecruiters-timestamp", "event-id", "event-name", "Link", "X-Hook-Secret"]
    for _ in range(500):
        headers = {name: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for name in names
                   if rng.random() < 0.8}
        garbage = delivery(bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 30))), headers=headers)
        for step in (source.handshake, lambda d: source.verify(d, [KEY], NOW), source.parse):
            try:
                step(garbage)
            except (Unauthorized, BadRequest):
                pass


# ---- the handshake ----------------------------------------------------------------------------


def test_the_handshake_echoes_x_hook_secret_with_200():
    handshake = source.handshake(make_delivery(b"", NOW, X_Hook_Secret="0c1d2e3f-temporary"))
    assert (handshake.status_code, handshake.body) == (200, {"status": "ignored", "reason": "handshake"})
    assert handshake.headers == {"X-Hook-Secret": "0c1d2e3f-temporary"}


def test_a_notification_is_no_handshake():
    assert source.handshake(delivery()) is None


@pytest.mark.parametrize("secret", ["", "two words", "x" * 257, "é"])
def test_an_unusable_hook_secret_is_400(secret):
    with pytest.raises(BadRequest) as caught:
        source.handshake(make_delivery(b"", NOW, X_Hook_Secret=secret))
    assert caught.value.reason == "invalid_handshake"


@pytest.fixture
def sender_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_the_handshake_through_the_app_needs_no_key_and_calls_nothing(make_client, base_env, sender_api):
    base_env.delenv("SMARTRECRUITERS_SIGNING_KEY")
    answer = make_client().post("/smartrecruiters", data=b"", headers={"X-Hook-Secret": "activation-7f3a"})
    assert answer.status_code == 200
    assert answer.headers["X-Hook-Secret"] == "activation-7f3a"
    assert answer.get_json() == {"status": "ignored", "reason": "handshake"}
    assert len(sender_api.calls) == 0


# ---- parse and the follow-up read ----------------------------------------------------------------


def test_parse_keeps_the_ids_and_the_event_headers():
    event = source.parse(delivery())
    assert (event.event_type, event.delivery_id, event.ignore_reason) == ("application.created", "evt-1", None)
    assert event.payload == {"body": json.loads(BODY), "event": {
        "id": "evt-1", "name": "application.created", "version": "v201910",
        "link": f"{API}/candidates/{CANDIDATE_ID}/jobs/{JOB_ID}"}}


@pytest.mark.parametrize("name, body, link, target", [
    ("application.created", {"candidateId": CANDIDATE_ID, "jobId": JOB_ID}, APP_LINK, f"candidates/{CANDIDATE_ID}"),
    ("application.status.updated", {"candidate_id": "c 1/2", "job_id": "j"}, APP_LINK, "candidates/c%201%2F2"),
    ("candidate.updated", {"id": CANDIDATE_ID}, CANDIDATE_LINK, f"{API}/candidates/{CANDIDATE_ID}"),
    ("candidate.created", {"id": CANDIDATE_ID}, f'<{API}/x>; rel="alternate", <{API}/candidates/c2>; rel="self"',
     f"{API}/candidates/c2"),
    ("candidate.created", {"id": CANDIDATE_ID}, "", f"candidates/{CANDIDATE_ID}"),
])
def test_one_read_of_the_candidate(name, body, link, target):
    raw = json.dumps(body).encode()
    assert source.follow_up(source.parse(delivery(raw, name=name, link=link))) == FollowUp("GET", target)


def test_a_notification_naming_no_candidate_is_400():
    with pytest.raises(BadRequest) as caught:
        source.follow_up(source.parse(delivery(b'{"jobId": "j"}', link="")))
    assert caught.value.reason == "invalid_payload"


def client(base: str = API, key: str | None = API_KEY) -> SenderApiClient:
    return SenderApiClient("smartrecruiters", base, lambda deadline: key, source.api_headers,
                           "SMARTRECRUITERS_API_KEY", sleep=lambda seconds: None)


@pytest.mark.parametrize("link", ["<https://evil.example/candidates/c1>; rel=self",
                                  "<http://api.smartrecruiters.com/candidates/c1>; rel=self",
                                  "<https://api.smartrecruiters.com.evil.example/candidates/c1>; rel=self",
                                  "<https://user@api.smartrecruiters.com/candidates/c1>; rel=self"])
def test_a_link_outside_the_api_base_is_refused_with_no_request(sender_api, link):
    follow_up = source.follow_up(source.parse(delivery(b'{"id": "c1"}', name="candidate.updated", link=link)))
    with pytest.raises(Unprocessable) as caught:
        client().read(Deadline(2), follow_up)
    assert caught.value.reason == "follow_up_url_refused"
    assert len(sender_api.calls) == 0


def test_a_link_under_a_configured_base_is_read_with_the_smart_token(sender_api):
    base = "https://api.eu.smartrecruiters.example/v1"
    sender_api.get(f"{base}/candidates/c1", json=CANDIDATE,
                   match=[matchers.header_matcher({"X-SmartToken": API_KEY})])
    follow_up = source.follow_up(source.parse(delivery(b'{"id": "c1"}', name="candidate.updated",
                                                       link=f"<{base}/candidates/c1>; rel=self")))
    assert client(base).read(Deadline(2), follow_up) == CANDIDATE


# ---- the preset mapping -------------------------------------------------------------------------


EXPECTED = {
    "first_name": "Amara", "last_name": "Nwosu", "name": "Amara Nwosu",
    "company_name": "Globex Example Ltd", "current_job_title": "Data Engineer",
    "linkedin_url": "https://www.linkedin.com/in/amara-nwosu-example",
    "address": "Leeds, England, United Kingdom",
    "emails": [{"contact_data_type": "personal", "value": "amara.nwosu@example.com"}],
    "phone_numbers": [{"contact_data_type": "mobile", "value": "+447911123456"}],
}


def mapped(name: str, body: bytes, answer: dict, mappings=None) -> dict:
    event = source.parse(delivery(body, name=name))
    mapping = (mappings or load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES))["smartrecruiters"]
    assert mapping.acts_on(name)
    event = source.with_follow_up(event, answer)
    return mapping.apply(event.payload, event).update


@pytest.mark.parametrize("name, body", [
    ("application.created", BODY), ("application.status.updated", BODY),
    ("candidate.created", b'{"id": "9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"}'),
    ("candidate.updated", b'{"id": "9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"}'),
])
def test_each_acted_event_maps_the_candidate_to_the_exact_update(name, body):
    assert mapped(name, body, CANDIDATE) == EXPECTED


def test_a_sparse_candidate_sends_only_what_it_has():
    sparse = {"id": "c1", "firstName": "Amara", "email": "amara@example.com", "location": {"city": "Leeds"},
              "experience": [{"title": "Analyst", "company": "Initech", "current": False}], "web": {"linkedin": ""}}
    assert mapped("candidate.updated", b'{"id": "c1"}', sparse) == {
        "first_name": "Amara", "address": "Leeds",
        "emails": [{"contact_data_type": "personal", "value": "amara@example.com"}],
    }


@pytest.mark.parametrize("name", ["candidate.deleted", "job.created", "job.updated", "offer.created",
                                  "interview.created", "application.attachment.created", "position.created"])
def test_other_events_are_ignored(name):
    assert not load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["smartrecruiters"].acts_on(name)


def test_a_job_table_in_the_mapping_sends_job_id_for_listed_jobs_only(tmp_path):
    with open(f"{BUILTIN_MAPPINGS_DIR}/smartrecruiters.json", encoding="utf-8") as preset:
        document = json.load(preset)
    document["job"] = {"path": "body.jobId || body.job_id", "table": {JOB_ID: "stardex-job-42"}}
    (tmp_path / "smartrecruiters.json").write_text(json.dumps(document))
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    assert mapped("application.created", BODY, CANDIDATE, mappings) == {**EXPECTED, "job_id": "stardex-job-42"}
    other = json.dumps({"candidateId": CANDIDATE_ID, "jobId": "unlisted"}).encode()
    assert mapped("application.created", other, CANDIDATE, mappings) == EXPECTED


# ---- through the app: the read, its failures, 202 ----------------------------------------------------


def post(client, body: bytes = BODY, **changes):
    headers = headers_for(body, ts=int(time.time()), **changes)
    return client.post("/smartrecruiters", data=body, headers=headers)


def test_an_application_event_reads_the_candidate_and_answers_202(make_client, base_env, sender_api):
    base_env.setenv("DRY_RUN", "1")
    base_env.setenv("SMARTRECRUITERS_API_KEY", API_KEY)
    sender_api.get(f"{API}/candidates/{CANDIDATE_ID}", json=CANDIDATE,
                   match=[matchers.header_matcher({"X-SmartToken": API_KEY})])
    answer = post(make_client())
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json() == {"status": "dry_run", "body": EXPECTED}
    assert [call.request.url for call in sender_api.calls] == [f"{API}/candidates/{CANDIDATE_ID}"]


def test_without_the_api_key_it_is_422_and_nothing_is_read(make_client, base_env, sender_api):
    answer = post(make_client())
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "sender_api_key_missing"
    assert len(sender_api.calls) == 0


def test_the_api_down_is_503_so_smartrecruiters_retries(make_client, base_env, sender_api):
    base_env.setenv("SMARTRECRUITERS_API_KEY", API_KEY)
    sender_api.get(f"{API}/candidates/{CANDIDATE_ID}", status=503)
    answer = post(make_client())
    assert answer.status_code == 503
    assert answer.get_json()["reason"] == "sender_api_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
    assert len(sender_api.calls) >= 2, "retried before giving up"


def test_a_foreign_link_through_the_app_is_422_with_no_request(make_client, base_env, sender_api):
    base_env.setenv("SMARTRECRUITERS_API_KEY", API_KEY)
    answer = post(make_client(), b'{"id": "c1"}', name="candidate.updated",
                  link="<https://collector.example/steal>; rel=self")
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "follow_up_url_refused"
    assert len(sender_api.calls) == 0


def test_an_ignored_event_answers_202_without_a_read(make_client, base_env, sender_api):
    base_env.setenv("SMARTRECRUITERS_API_KEY", API_KEY)
    answer = post(make_client(), b'{"id": "j1"}', name="job.created", link=f"<{API}/jobs/j1>; rel=self")
    assert answer.status_code == 202
    assert answer.get_json() == {"status": "ignored", "reason": "event_not_mapped", "event": "job.created"}
    assert len(sender_api.calls) == 0
