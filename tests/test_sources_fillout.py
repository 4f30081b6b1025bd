"""Fillout adapter: a shared token (no signature exists), the submission with or without its
wrapper, answers by normalised name and by type, mapped to the exact Stardex body."""

from __future__ import annotations

import copy
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Transcript
from stardex_webhook.sources.fillout import FilloutSource
from stardex_webhook.sources.form_answers import normalise_name
from tests.conftest import fixture_bytes, fixture_json, make_delivery, refusal

TOKEN = "fo-3f9c2b7e1d5a4c8e9f0a1b2c3d4e5f60"
NOW = 1_773_000_000.0
WRAPPED = fixture_json("fillout_submission.json")
BARE = WRAPPED["submission"]
source = FilloutSource()


def mapped(body: dict, region: str | None = None):
    event = source.parse(make_delivery(json.dumps(body).encode(), NOW))
    return load_mappings(BUILTIN_MAPPINGS_DIR, None, region, SOURCES)["fillout"].apply(event.payload, event)


def with_token(query: dict | None = None, **headers: str):
    return make_delivery(fixture_bytes("fillout_submission.json"), NOW, query=query, **headers)


def refused(delivery, keys=(TOKEN,)) -> str:
    return refusal(source, delivery, keys, NOW)


# ---- the token -------------------------------------------------------------------------------


def test_registered_as_a_form_tool_without_a_handshake():
    assert isinstance(SOURCES["fillout"], FilloutSource)
    assert (source.success_status, source.default_write_policy, source.needs_api_key) == (200, "fill", False)
    assert source.handshake(with_token({"token": TOKEN})) is None


@pytest.mark.parametrize("delivery", [
    with_token({"token": TOKEN}),
    with_token(Authorization=f"Bearer {TOKEN}"),
    with_token(Authorization=f"bearer   {TOKEN} "),  # the scheme is case-insensitive (RFC 9110)
], ids=["query", "bearer", "bearer-any-case"])
def test_the_token_is_accepted_in_the_query_or_as_a_bearer_token(delivery):
    source.verify(delivery, [TOKEN], NOW)


@pytest.mark.parametrize("delivery, reason", [
    (with_token({"token": TOKEN + "x"}), "bad_signature"),
    (with_token({"token": TOKEN[:-1]}), "bad_signature"),
    (with_token({"token": TOKEN.upper()}), "bad_signature"),
    (with_token(Authorization=f"Bearer {TOKEN[:-1]}1"), "bad_signature"),
    (with_token(), "missing_signature"),
    (with_token({"key": TOKEN}), "missing_signature"),
    (with_token({"token": "  "}), "missing_signature"),
    (with_token(X_Fillout_Token=TOKEN), "missing_signature"),
    (with_token(Authorization=f"Basic {TOKEN}"), "missing_signature"),
    (with_token(Authorization=TOKEN), "missing_signature"),
    (with_token(Authorization="Bearer "), "missing_signature"),
], ids=["longer", "shorter", "other-case", "one-character", "none", "other-parameter", "blank", "other-header",
        "basic-scheme", "no-scheme", "empty-bearer"])
def test_a_wrong_missing_or_misplaced_token_is_refused(delivery, reason):
    assert refused(delivery) == reason


def test_a_token_in_the_body_is_no_token():
    body = json.dumps({**WRAPPED, "token": TOKEN}).encode()
    assert refused(make_delivery(body, NOW)) == "missing_signature"


def test_no_configured_key_refuses_everything():
    assert refused(with_token({"token": TOKEN}), keys=[]) == "no_signing_key"


@pytest.mark.parametrize("given", ["old-token-1111", "new-token-2222"])
def test_during_a_rotation_both_tokens_are_accepted(given):
    source.verify(with_token({"token": given}), ["old-token-1111", "new-token-2222"], NOW)


def test_a_wrong_token_in_one_place_does_not_hide_the_right_one_in_the_other():
    source.verify(with_token({"token": "stale"}, Authorization=f"Bearer {TOKEN}"), [TOKEN], NOW)


def test_the_sample_signer_sends_a_bearer_token_the_adapter_accepts():
    headers, body = source.sign_sample(b"{}", TOKEN, int(NOW))
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    source.verify(make_delivery(body, NOW, **{name.replace("-", "_"): value for name, value in headers.items()}),
                  [TOKEN], NOW)


# ---- the body --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [WRAPPED, BARE], ids=["wrapped", "bare"])
def test_a_submission_with_or_without_its_wrapper_maps_to_the_exact_stardex_body(body):
    result = mapped(body)
    assert result.update == fixture_json("fillout_submission.update.json")
    assert result.write_policy == "fill"
    assert result.person.id is None, "an empty stardex_person_id parameter names nobody"
    assert result.person.emails == ["ines.garcia@example.es"]


@pytest.mark.parametrize("body", [WRAPPED, BARE], ids=["wrapped", "bare"])
def test_the_event_names_the_submission(body):
    event = source.parse(make_delivery(json.dumps(body).encode(), NOW))
    assert (event.source, event.event_type, event.delivery_id) == (
        "fillout", "form_submission", "a1b2c3d4-0000-4000-8000-00000000f111")
    assert event.ignore_reason is None


def test_answers_are_indexed_by_normalised_name_and_by_type_with_numbers_as_text():
    submission = source.parse(make_delivery(json.dumps(WRAPPED).encode(), NOW)).payload["submission"]
    assert submission["answers"]["your_e_mail"]["value"] == "Ines.Garcia@example.es"
    assert submission["answers"]["where_do_you_live"]["type"] == "Address"
    assert submission["answers"]["years_of_experience"]["value"] == "7"
    assert submission["answers"]["open_to"]["value"] == ["Full-time", "Remote"]
    assert [answer["name"] for answer in submission["answers_by_type"]["ShortAnswer"]] == [
        "First name", "Last name", "Current company", "Job title"]
    assert submission["parameters"] == {"utm_source": "newsletter", "stardex_person_id": ""}


def test_the_stardex_person_id_url_parameter_names_the_person():
    body = copy.deepcopy(WRAPPED)
    body["submission"]["urlParameters"][1]["value"] = "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"
    assert mapped(body).person.id == "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"


def test_a_scheduling_block_supplies_the_name_email_and_phone_a_form_lacks():
    body = {"submissionId": "s-2", "questions": [{"id": "q", "name": "Why us?", "type": "LongAnswer", "value": "Scale"}],
            "scheduling": [{"id": "cal", "name": "Intro call",
                            "value": {"fullName": "Rui  Alves", "email": "RUI@example.pt", "phone": "+351 912 345 678",
                                      "eventStartTime": "2026-03-21T10:00:00.000Z"}}]}
    assert mapped(body).update == {
        "name": "Rui Alves",
        "emails": [{"contact_data_type": "personal", "value": "rui@example.pt"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+351912345678"}],
    }


def test_questions_named_otherwise_are_found_by_type():
    body = {"submissionId": "s-3", "questions": [
        {"id": "a", "name": "Where can we reach you?", "type": "EmailInput", "value": "kim@example.kr"},
        {"id": "b", "name": "Portfolio", "type": "URLInput", "value": "https://kim.example.kr"},
        {"id": "c", "name": "Profile", "type": "URLInput", "value": "https://kr.linkedin.com/in/kim-example"},
        {"id": "d", "name": "Cell", "type": "PhoneNumber", "value": 821012345678},
    ]}
    assert mapped(body, region="KR").update == {
        "linkedin_url": "https://kr.linkedin.com/in/kim-example",
        "emails": [{"contact_data_type": "personal", "value": "kim@example.kr"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+821012345678"}],
    }


def test_the_transcript_is_the_form_name_and_each_answered_question():
    event = source.parse(make_delivery(json.dumps(WRAPPED).encode(), NOW))
    assert event.transcript == Transcript("Candidate intake", (
        ("First name", "Ines"), ("Last name", "Garcia"), ("Your e-mail", "Ines.Garcia@example.es"),
        ("Mobile", "+34 600 000 111"), ("Profile link", "https://www.linkedin.com/in/ines-garcia-example"),
        ("Current company", "Initech Iberia"), ("Job title", "Backend Engineer"),
        ("Where do you live?", "address: Calle Mayor 1; city: Madrid; zipCode: 28013; country: Spain"),
        ("Seniority", "Senior"), ("Open to", "Full-time, Remote"), ("Years of experience", "7"),
    ))


def test_a_bare_submission_has_no_form_name_in_its_transcript():
    assert source.parse(make_delivery(json.dumps(BARE).encode(), NOW)).transcript.title is None


@pytest.mark.parametrize("body, reason", [
    (b"not json", "invalid_json"),
    (b"[]", "invalid_json"),
    (b'{"formId": "f", "formName": "n"}', "invalid_payload"),
    (b'{"submission": "s"}', "invalid_payload"),
    (b'{"submission": {"submissionId": "s", "questions": {}}}', "invalid_payload"),
], ids=["not-json", "not-an-object", "no-submission", "submission-not-an-object", "questions-not-a-list"])
def test_a_body_that_is_no_submission_is_a_bad_request(body, reason):
    with pytest.raises(BadRequest) as caught:
        source.parse(make_delivery(body, NOW))
    assert caught.value.reason == reason


def test_odd_shapes_inside_a_submission_are_skipped_not_fatal():
    body = {"submissionId": 7, "questions": ["x", {"name": 3, "type": None, "value": 1}],
            "urlParameters": 5, "scheduling": "s"}
    event = source.parse(make_delivery(json.dumps(body).encode(), NOW))
    assert event.delivery_id is None
    assert event.payload["submission"]["parameters"] == {}


@pytest.mark.parametrize("title, name", [
    ("First name", "first_name"), ("  E-mail address? ", "e_mail_address"), ("Prénom", "prenom"),
    ("LinkedIn URL", "linkedin_url"), ("stardex_person_id", "stardex_person_id"), ("1. Phone", "1_phone"),
    ("???", None), ("名前", None), (None, None),
])
def test_names_are_normalised_as_the_readme_says(title, name):
    assert normalise_name(title) == name
