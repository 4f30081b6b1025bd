"""Google Forms: the shipped Apps Script (apps_script/google_forms.gs), run under Node with stand-ins
for the Apps Script services (tests/apps_script_harness.js), builds and signs each request; the
function must accept exactly what it sends, map it to the exact Stardex body, and refuse it once
altered. The script's retry path keeps a failed send and sends it again, signed afresh.

Expected signatures are computed here with hmac, independently of the script and the function.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Transcript
from stardex_webhook.sources.generic import StandardWebhooksSource
from stardex_webhook.sources.google_forms import GoogleFormsSource
from stardex_webhook.send_sample import SAMPLES_DIR
from tests.conftest import fixture_json, make_delivery
from tests.helpers.apps_script import CONFIG, FIXTURE, FUNCTION_URL, KEY, PENDING, run_script

KEY_BYTES = base64.b64decode(KEY.removeprefix("whsec_"))
source = GoogleFormsSource()


def sign(message_id: str, timestamp: str, body: bytes, key_bytes: bytes = KEY_BYTES) -> str:
    digest = hmac.new(key_bytes, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def payload(request: dict) -> bytes:
    return base64.b64decode(request["payload_base64"])


def post(client, request: dict, body: bytes | None = None, **header_changes: str):
    headers = {**request["headers"], "Content-Type": request["contentType"], **header_changes}
    return client.post("/google-forms", data=payload(request) if body is None else body, headers=headers)


@pytest.fixture
def client(make_client, base_env):
    base_env.setenv("DRY_RUN", "1")
    return make_client()


# ---- what the script sends -------------------------------------------------------------------


EXPECTED_BODY = {
    "provider": "google_forms",
    "formId": "1FAIpQLSexampleFormId000000000000000000000000",
    "formTitle": "Talent community sign-up",
    "responseId": "ACYDBNexampleResponseId0000",
    "submittedAt": "2026-03-18T09:15:00.000Z",
    "respondentEmail": "nadia.haddad@example.com",
    "answers": {
        "First name": "Nadia", "Last name": "Haddad", "Email": "N.Haddad@example.org", "Phone": "+961 3 000 000",
        "LinkedIn URL": "https://www.linkedin.com/in/nadia-haddad-example", "Current company": "Umbrella Labs – Beyrouth",
        "Job title": "ML Engineer", "City": "Beirut", "Interests": ["Full-time", "Remote"], "Seniority": "Senior",
        "Availability": {"Weekdays": "Mornings"}, "Skills": {"Python": ["Expert"], "Go": ["Learning", "Curious"]},
    },
}


def test_the_script_sends_the_response_signed_the_standard_webhooks_way():
    result = run_script("sendFormResponse", fetch=[{"status": 200}], now=1_773_000_000)
    assert result["error"] is None and result["properties"] == CONFIG, "an accepted send is not kept"
    (request,) = result["requests"]
    body = payload(request)
    assert json.loads(body) == EXPECTED_BODY, "unanswered questions are left out; grids are row -> answer"
    assert (request["url"], request["method"], request["contentType"]) == (FUNCTION_URL, "post", "application/json")
    assert (request["muteHttpExceptions"], request["followRedirects"]) == (True, False)
    assert request["headers"] == {
        "webhook-id": "ACYDBNexampleResponseId0000",
        "webhook-timestamp": "1773000000",
        "webhook-signature": sign("ACYDBNexampleResponseId0000", "1773000000", body),
    }
    assert "Umbrella Labs – Beyrouth".encode() in body, "the body is UTF-8, signed as sent"


def test_what_the_script_sends_is_accepted_and_mapped_to_the_exact_stardex_body(client):
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}])["requests"]
    answer = post(client, request)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"status": "dry_run", "body": fixture_json("google_forms_response.update.json")}


def test_a_person_id_question_names_the_person():
    submission = copy.deepcopy(FIXTURE)
    submission["response"]["answers"][-1] = " 6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42 "
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}], submission=submission)["requests"]
    event = source.parse(make_delivery(payload(request), time.time()))
    result = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["google-forms"].apply(event.payload, event)
    assert result.person.id == "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"
    assert "stardex_person_id" not in dict(event.transcript.answers)


@pytest.mark.parametrize("change, reason", [
    (lambda request, body: {"body": body.replace(b"Nadia", b"Nadja")}, "bad_signature"),
    (lambda request, body: {"webhook_id": "ACYDBNotherResponse"}, "bad_signature"),
    (lambda request, body: {"webhook_timestamp": str(int(request["headers"]["webhook-timestamp"]) + 1)}, "bad_signature"),
    (lambda request, body: {"webhook_signature": sign(request["headers"]["webhook-id"],
                                                      request["headers"]["webhook-timestamp"], body, b"another key")},
     "bad_signature"),
    (lambda request, body: {"webhook_signature": ""}, "missing_signature"),
], ids=["body", "id", "timestamp", "key", "no-signature"])
def test_what_the_script_sends_is_refused_once_altered(client, change, reason):
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}])["requests"]
    changes = change(request, payload(request))
    body = changes.pop("body", None)
    answer = post(client, request, body, **{name.replace("_", "-"): value for name, value in changes.items()})
    assert (answer.status_code, answer.get_json()["reason"]) == (401, reason)


def test_a_send_signed_more_than_five_minutes_ago_is_refused(client):
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}], now=time.time() - 301)["requests"]
    answer = post(client, request)
    assert (answer.status_code, answer.get_json()["reason"]) == (401, "stale_timestamp")


def test_the_shipped_sample_has_the_shape_the_script_sends():
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}])["requests"]
    sample = json.loads((SAMPLES_DIR / "google-forms.json").read_text())
    assert list(sample) == list(json.loads(payload(request)))


def test_two_questions_with_one_title_are_both_sent():
    submission = {"form": {"id": "f", "title": "t", "items": [{"title": "Email", "type": "TEXT"},
                                                            {"title": "Email", "type": "TEXT"},
                                                            {"title": " ", "type": "SCALE"}]},
                  "response": {"id": "r1", "timestamp": "2026-03-18T09:15:00.000Z", "answers": ["a@x.example", "b@y.example", "4"]}}
    (request,) = run_script("sendFormResponse", fetch=[{"status": 200}], submission=submission)["requests"]
    body = json.loads(payload(request))
    assert body["answers"] == {"Email": "a@x.example", "Email (2)": "b@y.example", "Question 3": "4"}
    assert body["respondentEmail"] is None, "a form that does not collect emails sends null"


# ---- keeping a failed send and sending it again ---------------------------------------------


def test_a_failed_send_is_kept_and_sent_again_signed_afresh_and_accepted(client):
    first_try = time.time() - 120
    failed = run_script("sendFormResponse", fetch=[{"error": "Address unavailable: " + FUNCTION_URL}], now=first_try)
    assert failed["error"] is None, "a send that may succeed later is no error"
    kept = json.loads(failed["properties"][PENDING])
    assert (kept["attempts"], kept["body"]) == (1, EXPECTED_BODY)

    still_down = run_script("retryPendingSends", properties=failed["properties"],
                            fetch=[{"status": 503, "body": '{"status": "retry_later", "reason": "stardex_unavailable"}'}],
                            now=first_try + 60)
    assert json.loads(still_down["properties"][PENDING])["attempts"] == 2
    assert json.loads(still_down["properties"][PENDING])["last"] == "HTTP 503 stardex_unavailable"

    resent = run_script("retryPendingSends", properties=still_down["properties"], fetch=[{"status": 200}])
    assert resent["error"] is None and PENDING not in resent["properties"], "an accepted resend is forgotten"
    (request,) = resent["requests"]
    timestamps = [run["requests"][0]["headers"]["webhook-timestamp"] for run in (failed, still_down, resent)]
    assert len(set(timestamps)) == 3, "each try is signed with its own time"
    assert json.loads(payload(request)) == EXPECTED_BODY
    answer = post(client, request)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["body"] == fixture_json("google_forms_response.update.json")


@pytest.mark.parametrize("status, kept", [
    (500, True), (502, True), (503, True), (504, True), (408, True), (429, True), (302, True),
    (400, False), (401, False), (404, False), (413, False), (422, False),
])
def test_only_a_send_that_may_succeed_later_is_kept(status, kept):
    result = run_script("sendFormResponse", fetch=[{"status": status, "body": '{"reason": "x"}'}])
    assert (PENDING in result["properties"]) is kept
    assert (result["error"] is None) is kept, "a refusal no retry can change is the run's error, so Google mails it"
    if not kept:
        assert result["error"] == f"stardex-webhook refused response ACYDBNexampleResponseId0000: HTTP {status} x"


def entry(attempts: int, hours_ago: float) -> dict:
    return {**CONFIG, PENDING: json.dumps({"body": EXPECTED_BODY, "attempts": attempts,
                                           "firstTriedAt": int((time.time() - hours_ago * 3600) * 1000)})}


@pytest.mark.parametrize("properties", [entry(attempts=11, hours_ago=1), entry(attempts=1, hours_ago=73)],
                         ids=["attempts", "age"])
def test_retries_are_bounded_in_attempts_and_age(properties):
    result = run_script("retryPendingSends", properties=properties, fetch=[{"status": 503}])
    assert len(result["requests"]) == 1, "one last try"
    assert PENDING not in result["properties"]
    assert result["error"].startswith("stardex-webhook gave up on response(s) ACYDBNexampleResponseId0000 (HTTP 503")


def test_a_kept_send_refused_on_retry_is_dropped_and_reported():
    result = run_script("retryPendingSends", properties=entry(attempts=1, hours_ago=1), fetch=[{"status": 401}])
    assert PENDING not in result["properties"] and "gave up" in result["error"]


def test_a_response_too_large_to_keep_is_reported_not_lost_silently():
    submission = copy.deepcopy(FIXTURE)
    submission["response"]["answers"][-2] = "long answer " * 1000  # "Anything else?": 12 kB
    result = run_script("sendFormResponse", fetch=[{"status": 503}], submission=submission)
    assert PENDING not in result["properties"]
    assert result["error"] == "stardex-webhook could neither send nor keep response ACYDBNexampleResponseId0000: HTTP 503"
    assert {"level": "error", "message": "stardex-webhook: response ACYDBNexampleResponseId0000 could not be kept: "
            "Argument too large: value"} in result["logs"]


def test_an_unreadable_kept_entry_is_dropped_without_stopping_the_others():
    properties = {**entry(attempts=1, hours_ago=1), "stardex_pending:broken": "{not json"}
    result = run_script("retryPendingSends", properties=properties, fetch=[{"status": 200}])
    assert len(result["requests"]) == 1 and result["properties"] == CONFIG
    assert result["error"] == "stardex-webhook gave up on response(s) broken (unreadable)"


def test_a_response_submitted_before_the_settings_is_kept_until_they_are_set():
    unset = run_script("sendFormResponse", properties={}, fetch=[{"status": 200}])
    assert unset["requests"] == [] and "STARDEX_WEBHOOK_URL" in unset["error"]
    kept = unset["properties"][PENDING]
    not_yet = run_script("retryPendingSends", properties={PENDING: kept})
    assert not_yet["requests"] == [] and not_yet["properties"] == {PENDING: kept}
    sent = run_script("retryPendingSends", properties={**CONFIG, PENDING: kept}, fetch=[{"status": 200}])
    assert len(sent["requests"]) == 1 and PENDING not in sent["properties"]


@pytest.mark.parametrize("properties, named", [
    ({"STARDEX_WEBHOOK_URL": "http://fn.example.com/google-forms", "STARDEX_WEBHOOK_KEY": KEY}, "STARDEX_WEBHOOK_URL"),
    ({"STARDEX_WEBHOOK_URL": FUNCTION_URL, "STARDEX_WEBHOOK_KEY": "a plain secret"}, "STARDEX_WEBHOOK_KEY"),
    ({"STARDEX_WEBHOOK_URL": FUNCTION_URL}, "STARDEX_WEBHOOK_KEY"),
])
def test_install_checks_the_settings(properties, named):
    result = run_script("install", properties=properties)
    assert named in result["error"] and result["triggers"] == []


def test_install_creates_the_two_triggers_once():
    first = run_script("install")
    assert first["error"] is None
    again = run_script("install", triggers=first["triggers"] + [{"handler": "somethingElse", "kind": "timeBased"}])
    assert sorted(again["triggers"], key=lambda t: t["handler"]) == [
        {"handler": "retryPendingSends", "kind": "timeBased", "everyMinutes": 10},
        {"handler": "sendFormResponse", "kind": "onFormSubmit", "form": FIXTURE["form"]["id"]},
        {"handler": "somethingElse", "kind": "timeBased"},
    ]


# ---- the adapter -----------------------------------------------------------------------------


def event_of(body: dict, **headers: str):
    return source.parse(make_delivery(json.dumps(body).encode(), 0, **headers))


def test_registered_as_a_standard_webhooks_form_tool():
    assert isinstance(SOURCES["google-forms"], GoogleFormsSource)
    assert isinstance(source, StandardWebhooksSource) and source.name == "google-forms"
    assert source.default_write_policy == "fill"


def test_answers_are_indexed_by_normalised_title_with_numbers_as_text():
    event = event_of({**EXPECTED_BODY, "answers": {**EXPECTED_BODY["answers"], "Rating (1-5)": 4, "rating_1_5": "x"}})
    assert event.payload["answers"]["linkedin_url"] == "https://www.linkedin.com/in/nadia-haddad-example"
    assert event.payload["answers"]["rating_1_5"] == "4", "the first title wins"
    assert event.payload["answers_by_title"]["Rating (1-5)"] == 4
    assert (event.event_type, event.delivery_id) == ("form_submission", "ACYDBNexampleResponseId0000")


def test_the_delivery_id_falls_back_to_the_webhook_id():
    assert event_of({"answers": {}}, webhook_id="msg_1").delivery_id == "msg_1"


def test_the_transcript_is_the_title_and_each_answer():
    assert event_of(EXPECTED_BODY).transcript == Transcript("Talent community sign-up", (
        ("First name", "Nadia"), ("Last name", "Haddad"), ("Email", "N.Haddad@example.org"), ("Phone", "+961 3 000 000"),
        ("LinkedIn URL", "https://www.linkedin.com/in/nadia-haddad-example"),
        ("Current company", "Umbrella Labs – Beyrouth"), ("Job title", "ML Engineer"), ("City", "Beirut"),
        ("Interests", "Full-time, Remote"), ("Seniority", "Senior"), ("Availability", "Weekdays: Mornings"),
        ("Skills", "Python: Expert; Go: Learning, Curious"),
    ))


@pytest.mark.parametrize("body", [b'{"responseId": "r"}', b'{"answers": ["a"]}'])
def test_a_body_without_an_answers_object_is_a_bad_request(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(make_delivery(body, 0))
    assert caught.value.reason == "invalid_payload"


def test_a_sample_is_sent_with_its_response_id_as_the_webhook_id():
    body = (SAMPLES_DIR / "google-forms.json").read_bytes()
    headers, _ = source.sign_sample(body, KEY, 1_773_000_000)
    assert headers["webhook-id"] == json.loads(body)["responseId"]
    assert headers["webhook-signature"] == sign(headers["webhook-id"], "1773000000", body)


def test_a_question_titled_in_words_is_read_by_what_it_asks_for():
    """Issue 22: real forms title questions "What is your first name?"; a title the mapping does
    not list is matched by its meaning, and the event names the question for ``plan``."""
    from stardex_webhook.sources import SOURCES as _SOURCES
    from tests.conftest import make_delivery as _make_delivery

    body = json.dumps({"responseId": "r-1", "answers": {"What is your first name?": "Ada",
                                                         "Ihre E-Mail-Adresse": "ada@example.org"}}).encode()
    event = _SOURCES["google-forms"].parse(_make_delivery(body, 0))
    assert event.payload["answers"]["first_name"] == "Ada"
    assert event.payload["answers"]["email"] == "ada@example.org"
    assert dict(event.questions) == {"first_name": "What is your first name?", "email": "Ihre E-Mail-Adresse"}
