"""Tally adapter: `Tally-Signature` (base64 HMAC-SHA256 of the raw body), then one mutation per
test; the fields indexed by key, label and type, choices as their text; the preset mapping.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.records import NoteRequest, PersonRef
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Transcript
from stardex_webhook.sources.form_answers import normalise_name
from stardex_webhook.sources.tally import TallySource
from tests.conftest import ROOT, as_document, fixture_bytes, make_delivery, refusal

KEY = "tally-signing-secret"
NOW = 1_773_760_811.0
BODY = fixture_bytes("tally_form_response.json")
DOCUMENT = json.loads(BODY)
PERSON_ID = "3b0d7c52-8f0e-4a57-9d4e-6c1f2a9b8e70"
source = SOURCES["tally"]


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def signed(body: bytes = BODY, key: str = KEY):
    return make_delivery(body, NOW, Tally_Signature=sign(body, key))


def body_of(document: dict) -> bytes:
    return json.dumps(document).encode()


def with_fields(*fields: dict, **data) -> bytes:
    return body_of({"eventId": "e1", "eventType": "FORM_RESPONSE", "data": {"formId": "f1", **data, "fields": list(fields)}})


def mapped(body: bytes = BODY, region: str | None = None, mappings=None):
    event = source.parse(signed(body))
    mapping = (mappings or load_mappings(BUILTIN_MAPPINGS_DIR, None, region, SOURCES))["tally"]
    return mapping.apply(event.payload, event)


# ---- the signature ------------------------------------------------------------------------


def test_registered_as_a_form_tool():
    assert isinstance(source, TallySource)
    assert (source.success_status, source.default_write_policy, source.needs_api_key) == (200, "fill", False)
    assert source.handshake(signed()) is None


def test_known_answer_signature_is_accepted():
    source.verify(make_delivery(BODY, NOW, Tally_Signature=sign(BODY)), [KEY], NOW)


def test_sign_sample_signs_as_tally_does():
    headers, body = source.sign_sample(BODY, KEY, int(NOW))
    assert body == BODY
    assert headers == {"Tally-Signature": sign(BODY), "Content-Type": "application/json"}


def test_wrong_key():
    assert refusal(source, signed(key="another-secret"), [KEY], NOW) == "bad_signature"


def test_one_byte_of_the_body_changed():
    tampered = make_delivery(BODY.replace(b"Referral", b"Referrak", 1), NOW, Tally_Signature=sign(BODY))
    assert refusal(source, tampered, [KEY], NOW) == "bad_signature"


def test_missing_header():
    assert refusal(source, make_delivery(BODY, NOW), [KEY], NOW) == "missing_signature"


def test_no_signing_key_configured():
    assert refusal(source, signed(), [], NOW) == "no_signing_key"


def test_hex_digest_is_not_accepted():
    hexdigest = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert refusal(source, make_delivery(BODY, NOW, Tally_Signature=hexdigest), [KEY], NOW) == "bad_signature"


@pytest.mark.parametrize("header", ["not base64!", "{b64} {b64}", "{unpadded}", "é", "sha256 {b64}"])
def test_malformed_header(header):
    b64 = sign(BODY)
    value = header.format(b64=b64, unpadded=b64.rstrip("="))
    assert refusal(source, make_delivery(BODY, NOW, Tally_Signature=value), [KEY], NOW) == "malformed_signature"


def test_rotation_any_configured_key_may_match():
    source.verify(signed(key="new-secret"), ["old-secret", "new-secret"], NOW)


def test_a_header_sent_twice_needs_one_matching_entry():
    value = f"{sign(BODY, 'stale-secret')}, {sign(BODY)}"
    source.verify(make_delivery(BODY, NOW, Tally_Signature=value), [KEY], NOW)


# ---- the event ----------------------------------------------------------------------------


def test_event_type_and_delivery_id():
    event = source.parse(signed())
    assert (event.source, event.event_type, event.delivery_id, event.ignore_reason) == (
        "tally", "FORM_RESPONSE", DOCUMENT["eventId"], None)


def test_delivery_id_falls_back_to_the_response_id():
    document = copy.deepcopy(DOCUMENT)
    del document["eventId"]
    assert source.parse(signed(body_of(document))).delivery_id == "2wgx4n"


def test_fields_are_indexed_by_key_label_and_type_and_the_sent_list_is_kept():
    data = source.parse(signed()).payload["data"]
    fields = DOCUMENT["data"]["fields"]
    assert data["fields"] == fields, "the list as sent"
    assert data["answers"]["question_nR9kL"] == fields[1]
    assert data["answers_by_label"]["email"] == fields[1]
    assert data["answers_by_label"]["linkedin_profile"] == fields[3]
    assert data["answers_by_label"]["skills_python"]["value"] is True
    assert data["answers_by_type"]["INPUT_EMAIL"] == [fields[1]]
    assert data["answers_by_type"]["INPUT_PHONE_NUMBER"] == [fields[2]]
    assert data["answers_by_type"]["INPUT_LINK"] == [fields[3]]
    assert data["hidden"] == {"stardex_person_id": PERSON_ID, "utm_source": "newsletter"}


def test_choices_are_resolved_to_their_text_and_checkboxes_are_lists():
    data = source.parse(signed()).payload["data"]
    assert data["answers_by_label"]["seniority"]["value"] == "Senior"
    assert data["answers_by_label"]["preferred_location"]["value"] == "Remote"
    assert data["answers_by_label"]["skills"]["value"] == ["Python", "SQL"]
    assert data["answers_by_type"]["CHECKBOXES"][0]["value"] == ["Python", "SQL"]


@pytest.mark.parametrize(
    "kind, chosen, expected",
    [
        ("CHECKBOXES", ["o1"], ["One"]),  # one box ticked is still a list
        ("MULTIPLE_CHOICE", ["o1", "o2"], ["One", "Two"]),  # "allow several": then a list
        ("DROPDOWN", ["o2"], "Two"),
        ("MULTI_SELECT", ["o2", "o1"], ["Two", "One"]),
        ("MULTIPLE_CHOICE", ["o9"], "o9"),  # an id with no option is kept as sent
        ("DROPDOWN", ["o3"], "o3"),  # and one whose option has no text
        ("MULTIPLE_CHOICE", "o1", "One"),  # one bare id, not a list (a captured delivery has it)
        ("DROPDOWN", "o9", "o9"),
    ],
)
def test_choice_shapes(kind, chosen, expected):
    field = {"key": "q", "label": "Pick", "type": kind, "value": chosen,
             "options": [{"id": "o1", "text": "One"}, {"id": "o2", "text": "Two"}, {"id": "o3", "text": None}]}
    assert source.parse(signed(with_fields(field))).payload["data"]["answers"]["q"]["value"] == expected


@pytest.mark.parametrize(
    "label, key",
    [("Email", "email"), ("Phone Number", "phone_number"), ("phone-number", "phone_number"),
     ("  LinkedIn URL? ", "linkedin_url"), ("What's your job title?", "what_s_your_job_title"),
     ("E-mail", "e_mail"), ("Prénom", "prenom"), ("stardex_person_id", "stardex_person_id"), ("???", None), (7, None)],
)
def test_the_label_rule(label, key):
    assert normalise_name(label) == key


def test_the_first_field_wins_a_shared_label():
    first = {"key": "a", "label": "Email", "type": "INPUT_EMAIL", "value": "first@example.org"}
    second = {"key": "b", "label": "email ", "type": "INPUT_EMAIL", "value": "second@example.org"}
    data = source.parse(signed(with_fields(first, second))).payload["data"]
    assert data["answers_by_label"]["email"] == first
    assert data["answers_by_type"]["INPUT_EMAIL"] == [first, second]


def test_the_transcript_is_the_form_as_the_respondent_answered_it():
    assert source.parse(signed()).transcript == Transcript(
        title="Referral form",
        answers=(
            ("Full name", "Sofia  Marino"),
            ("Email", "Sofia.Marino@example.it"),
            ("Phone number", "+39 333 000 0000"),
            ("LinkedIn profile", "https://www.linkedin.com/in/sofia-marino-example"),
            ("Current company", "Umbrella S.p.A."),
            ("Job title", "Head of Data"),
            ("Seniority", "Senior"),
            ("Preferred location", "Remote"),
            ("Skills", "Python, SQL"),
        ),
    ), "no hidden fields, no per-option checkbox echoes, no unanswered question"


def test_a_captured_single_choice_sent_as_one_bare_id_reads_as_its_text():
    """tests/corpus/tally/immersion_facile_nps_capture.json: the choice's value is one option id, not a
    list; the transcript shows the option's text, and the score of a scale with no label (its title
    is a text block above it) is kept as "(untitled)": the note must not lose the answer."""
    body = (ROOT / "tests" / "corpus" / "tally" / "immersion_facile_nps_capture.json").read_bytes()
    transcript = source.parse(signed(body)).transcript
    assert transcript == Transcript(title="[NPS] NPS Convention validée", answers=(
        ("(untitled)", "5"),
        ("Auriez-vous fait cette immersion sans le site Immersion Facilitée (facultatif) ?", "Oui")))


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"eventType": "FORM_RESPONSE"}', b'{"data": []}', b'{"data": null}',
     b'{"eventType": 3, "data": {}}', b'{"data": {}, "x": NaN}'],
)
def test_bodies_that_are_not_a_tally_response_are_400(body):
    with pytest.raises(BadRequest):
        source.parse(signed(body))


def test_odd_fields_are_left_out_and_never_fail():
    """What is not a field is left out; a value under no label is still an answer, shown untitled
    (what a malformed choice shows of itself is not asserted: only that nothing is lost or fails)."""
    odd = [None, "x", 3, {"key": 5, "label": None, "type": ["x"]}, {"type": "CHECKBOXES", "value": "o1", "options": 3},
           {"type": "DROPDOWN", "value": [None, {"id": "o1"}], "options": [None, {"id": 1, "text": "x"}]}]
    event = source.parse(signed(body_of({"data": {"fields": odd}})))
    assert event.payload["data"]["answers"] == {} and event.payload["data"]["hidden"] == {}
    assert [question for question, _ in event.transcript.answers] == ["(untitled)", "(untitled)"]
    assert event.transcript.answers[0][1] == "o1" and "o1" in event.transcript.answers[1][1]
    assert source.parse(signed(body_of({"data": {"fields": {"a": 1}}}))).payload["data"]["answers_by_type"] == {}


def test_signed_payloads_of_any_shape_parse_and_map_or_are_400():
    rng = random.Random("tally-shapes")
    mapping = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["tally"]
    values = [None, True, 0, 1.5, "", "x", "a@b.co", [], {}, ["o1"], {"id": "o1"}]
    for _ in range(300):
        field = {name: rng.choice(values) for name in rng.sample(["key", "label", "type", "value", "options"], 3)}
        field["type"] = rng.choice(["INPUT_EMAIL", "CHECKBOXES", "DROPDOWN", "HIDDEN_FIELDS", None, 3])
        data = {"fields": rng.choice([[field, rng.choice(values)], field, None]), "formName": rng.choice(values)}
        event = source.parse(signed(body_of({"eventId": rng.choice(values), "data": data})))
        mapping.apply(event.payload, event)


# ---- the preset mapping -------------------------------------------------------------------


def test_the_preset_mapping_makes_the_exact_stardex_update():
    assert as_document(mapped(region="IT")) == {
        "update": {
            "name": "Sofia Marino",
            "company_name": "Umbrella S.p.A.",
            "current_job_title": "Head of Data",
            "linkedin_url": "https://www.linkedin.com/in/sofia-marino-example",
            "emails": [{"contact_data_type": "personal", "value": "sofia.marino@example.it"}],
            "phone_numbers": [{"contact_data_type": "mobile", "value": "+393330000000"}],
        },
        "person": {"id": PERSON_ID, "emails": ["sofia.marino@example.it"],
                   "linkedin_url": "https://www.linkedin.com/in/sofia-marino-example"},
        "create": False,
        "write_policy": "fill",
        "note": None,
    }


def test_the_mapping_acts_on_form_responses_only():
    mapping = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["tally"]
    assert mapping.acts_on("FORM_RESPONSE") and not mapping.acts_on("FORM_DELETED") and not mapping.acts_on(None)


def test_without_the_hidden_field_the_person_is_found_by_email_then_linkedin():
    document = copy.deepcopy(DOCUMENT)
    document["data"]["fields"] = [field for field in document["data"]["fields"] if field["label"] != "stardex_person_id"]
    assert mapped(body_of(document)).person == PersonRef(
        id=None, emails=["sofia.marino@example.it"], linkedin_url="https://www.linkedin.com/in/sofia-marino-example")


def test_a_visible_question_named_stardex_person_id_names_no_one():
    field = {"key": "q", "label": "stardex_person_id", "type": "INPUT_TEXT", "value": "someone-else"}
    assert mapped(with_fields(field)).person.id is None


def test_first_and_last_name_questions_and_fields_found_by_type():
    body = with_fields(
        {"key": "a", "label": "First name", "type": "INPUT_TEXT", "value": " Ana "},
        {"key": "b", "label": "Last name", "type": "INPUT_TEXT", "value": "Lima"},
        {"key": "c", "label": "Where can we write to you?", "type": "INPUT_EMAIL", "value": "Ana@Example.org"},
        {"key": "d", "label": "A number to call", "type": "INPUT_PHONE_NUMBER", "value": "+351 912 345 678"},
        {"key": "e", "label": "Website", "type": "INPUT_LINK", "value": "https://ana.example.org"},
        {"key": "f", "label": "Profile", "type": "INPUT_LINK", "value": "linkedin.com/in/ana-lima-example"},
        {"key": "g", "label": "Title", "type": "INPUT_TEXT", "value": "CTO"},
    )
    assert mapped(body).update == {
        "first_name": "Ana",
        "last_name": "Lima",
        "name": "Ana Lima",
        "current_job_title": "CTO",
        "linkedin_url": "https://linkedin.com/in/ana-lima-example",
        "emails": [{"contact_data_type": "personal", "value": "ana@example.org"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+351912345678"}],
    }


def test_a_first_name_alone_sends_no_name():
    body = with_fields({"key": "a", "label": "First name", "type": "INPUT_TEXT", "value": "Ana"})
    assert mapped(body).update == {"first_name": "Ana"}


def test_a_per_form_section_is_picked_by_the_form_id_and_can_keep_the_transcript(tmp_path):
    document = json.loads((ROOT / "mappings" / "tally.json").read_text())
    document["form_id"] = "data.formId"
    document["forms"] = {
        "VwbNEw": {
            "fields": {"current_job_title": None, "linkedin_headline": {"path": "answers_by_label.seniority.value"}},
            "note": {"activity_type": "secondary_note"},
        }
    }
    (tmp_path / "tally.json").write_text(json.dumps(document))
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)

    referral = mapped(mappings=mappings)
    assert "current_job_title" not in referral.update
    assert referral.update["linkedin_headline"] == "Senior"
    assert referral.write_policy == "fill"
    assert referral.note == NoteRequest("secondary_note", "Referral form", source.parse(signed()).transcript.answers,
                                        DOCUMENT["eventId"])

    other = copy.deepcopy(DOCUMENT)
    other["data"]["formId"] = "another"
    elsewhere = mapped(body_of(other), mappings=mappings)
    assert elsewhere.update["current_job_title"] == "Head of Data"
    assert "linkedin_headline" not in elsewhere.update and elsewhere.note is None
