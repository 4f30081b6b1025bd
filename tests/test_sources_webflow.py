"""Webflow adapter: `x-webflow-signature` (hex HMAC-SHA256 of "timestamp:body") with
`x-webflow-timestamp` in milliseconds and a 5-minute window, then one mutation per test; fields by
name, case-insensitively, numbers as text; the preset mapping.

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
from stardex_webhook.sources.webflow import WebflowSource
from tests.conftest import ROOT, as_document, fixture_bytes, make_delivery, refusal

KEY = "webflow-webhook-secret"
NOW = 1_773_906_312.0
NOW_MS = str(int(NOW * 1000))
BODY = fixture_bytes("webflow_form_submission.json")
DOCUMENT = json.loads(BODY)
PERSON_ID = "9e4a1b2c-3d5f-4e6a-8b7c-0d1e2f3a4b5c"
source = SOURCES["webflow"]


def sign(timestamp: str, body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def signed(body: bytes = BODY, key: str = KEY, timestamp: str = NOW_MS):
    return make_delivery(body, NOW, x_webflow_timestamp=timestamp, x_webflow_signature=sign(timestamp, body, key))


def body_of(document: dict) -> bytes:
    return json.dumps(document).encode()


def with_data(data: dict, **payload) -> bytes:
    return body_of({"triggerType": "form_submission", "payload": {"name": "F", "id": "s1", **payload, "data": data}})


def mapped(body: bytes = BODY, region: str | None = None, mappings=None):
    event = source.parse(signed(body))
    mapping = (mappings or load_mappings(BUILTIN_MAPPINGS_DIR, None, region, SOURCES))["webflow"]
    return mapping.apply(event.payload, event)


# ---- the signature ------------------------------------------------------------------------


def test_registered_as_a_form_tool():
    assert isinstance(source, WebflowSource)
    assert (source.success_status, source.default_write_policy, source.needs_api_key) == (200, "fill", False)
    assert source.handshake(signed()) is None


def test_known_answer_signature_is_accepted():
    source.verify(signed(), [KEY], NOW)


def test_sign_sample_signs_as_webflow_does():
    headers, body = source.sign_sample(BODY, KEY, int(NOW))
    assert body == BODY
    assert headers == {"x-webflow-timestamp": NOW_MS, "x-webflow-signature": sign(NOW_MS, BODY),
                       "Content-Type": "application/json"}


def test_wrong_key():
    assert refusal(source, signed(key="another-secret"), [KEY], NOW) == "bad_signature"


def test_one_byte_of_the_body_changed():
    tampered = make_delivery(BODY.replace(b"Hooli", b"Hoolj", 1), NOW, x_webflow_timestamp=NOW_MS,
                             x_webflow_signature=sign(NOW_MS, BODY))
    assert refusal(source, tampered, [KEY], NOW) == "bad_signature"


def test_the_timestamp_is_signed():
    later = str(int(NOW_MS) + 1000)
    moved = make_delivery(BODY, NOW, x_webflow_timestamp=later, x_webflow_signature=sign(NOW_MS, BODY))
    assert refusal(source, moved, [KEY], NOW) == "bad_signature"


@pytest.mark.parametrize("offset_seconds", [-301, 301])
def test_a_timestamp_outside_five_minutes_is_refused_even_when_signed(offset_seconds):
    timestamp = str(int((NOW + offset_seconds) * 1000))
    assert refusal(source, signed(timestamp=timestamp), [KEY], NOW) == "stale_timestamp"


def test_a_timestamp_within_five_minutes_is_accepted():
    source.verify(signed(timestamp=str(int((NOW - 299) * 1000))), [KEY], NOW)


def test_a_timestamp_in_seconds_is_not_milliseconds():
    assert refusal(source, signed(timestamp=str(int(NOW))), [KEY], NOW) == "stale_timestamp"


@pytest.mark.parametrize("timestamp", ["soon", "1.7e12", "-1773906312000", "1773906312000.5", "１７７３"])
def test_a_timestamp_that_is_not_epoch_milliseconds(timestamp):
    assert refusal(source, signed(timestamp=timestamp), [KEY], NOW) == "malformed_signature"


@pytest.mark.parametrize("missing", ["x_webflow_timestamp", "x_webflow_signature"])
def test_a_missing_header(missing):
    headers = {"x_webflow_timestamp": NOW_MS, "x_webflow_signature": sign(NOW_MS, BODY)}
    del headers[missing]
    assert refusal(source, make_delivery(BODY, NOW, **headers), [KEY], NOW) == "missing_signature"


def test_an_unsigned_dashboard_webhook_is_refused():
    assert refusal(source, make_delivery(BODY, NOW, Content_Type="application/json"), [KEY], NOW) == "missing_signature"


def test_no_signing_key_configured():
    assert refusal(source, signed(), [], NOW) == "no_signing_key"


@pytest.mark.parametrize("signature", ["not hex", "abc", "sha256={hex}", "{b64}"])
def test_a_signature_that_is_not_hex(signature):
    digest = hmac.new(KEY.encode(), f"{NOW_MS}:".encode() + BODY, hashlib.sha256)
    value = signature.format(hex=digest.hexdigest(), b64=base64.b64encode(digest.digest()).decode())
    delivery = make_delivery(BODY, NOW, x_webflow_timestamp=NOW_MS, x_webflow_signature=value)
    assert refusal(source, delivery, [KEY], NOW) == "malformed_signature"


def test_upper_case_hex_is_the_same_digest():
    delivery = make_delivery(BODY, NOW, x_webflow_timestamp=NOW_MS, x_webflow_signature=sign(NOW_MS, BODY).upper())
    source.verify(delivery, [KEY], NOW)


def test_rotation_any_configured_key_may_match():
    source.verify(signed(key="new-secret"), ["old-secret", "new-secret"], NOW)


# ---- the event ----------------------------------------------------------------------------


def test_event_type_and_delivery_id():
    event = source.parse(signed())
    assert (event.source, event.event_type, event.delivery_id, event.ignore_reason) == (
        "webflow", "form_submission", "6600aa00bb11cc22dd33ee44", None)


def test_fields_by_normalised_name_numbers_as_text_and_the_data_as_sent():
    payload = source.parse(signed()).payload["payload"]
    assert payload["data"] == DOCUMENT["payload"]["data"], "as sent"
    assert payload["fields"] == {
        "first_name": "Kai",
        "last_name": "Tanaka",
        "email": "Kai.Tanaka@example.jp",
        "phone_number": "818012345678",
        "linkedin": "https://www.linkedin.com/in/kai-tanaka-example",
        "company": "Hooli KK",
        "job_title": "Platform Engineer",
        "years_of_experience": "7",
        "open_to_relocation": True,
        "stardex_person_id": PERSON_ID,
        "phone": "818012345678",  # "Phone Number" also under what it asks for (matching by title)
    }


def test_numbers_in_a_list_or_an_object_are_text_too():
    """A multi-select of numbers or a grouped field holds numbers below the top: Stardex takes text."""
    fields = source.parse(signed(with_data({"Ratings": [4, 5.5], "Address": {"zip": 10115, "remote": False}})))
    assert fields.payload["payload"]["fields"] == {"ratings": ["4", "5.5"], "address": {"zip": "10115", "remote": False}}


def test_names_differing_only_in_case_are_one_field_the_first_winning():
    fields = source.parse(signed(with_data({"EMAIL": "a@example.org", "e-mail": "x", "email": "b@example.org"}))).payload
    assert fields["payload"]["fields"] == {"email": "a@example.org", "e_mail": "x"}


def test_the_transcript_is_the_form_as_submitted_without_the_person_id():
    assert source.parse(signed()).transcript == Transcript(
        title="Talent network",
        answers=(
            ("First Name", "Kai"), ("Last Name", "Tanaka"), ("Email", "Kai.Tanaka@example.jp"),
            ("Phone Number", "818012345678"), ("LinkedIn", "https://www.linkedin.com/in/kai-tanaka-example"),
            ("Company", "Hooli KK"), ("Job Title", "Platform Engineer"), ("Years of experience", "7"),
            ("Open to relocation", "Yes"),
        ),
    )


def test_another_trigger_is_parsed_and_not_mapped():
    event = source.parse(signed(body_of({"triggerType": "site_publish", "payload": {"siteId": "s"}})))
    assert event.event_type == "site_publish"
    assert not load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["webflow"].acts_on(event.event_type)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"triggerType": "form_submission"}', b'{"payload": []}', b'{"payload": "x"}',
     b'{"triggerType": ["form_submission"], "payload": {}}', b'{"payload": {"data": Infinity}}'],
)
def test_bodies_that_are_not_a_webflow_submission_are_400(body):
    with pytest.raises(BadRequest):
        source.parse(signed(body))


def test_signed_payloads_of_any_shape_parse_and_map_or_are_400():
    rng = random.Random("webflow-shapes")
    mapping = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["webflow"]
    values = [None, True, 0, -1.5, 10**20, "", "x", "a@b.co", "https://www.linkedin.com/in/x", [], {}, [1], {"a": 1}]
    names = ["Email", "phone", "Name", "stardex_person_id", "", "__", "LinkedIn", "Company"]
    for _ in range(300):
        data = {rng.choice(names): rng.choice(values) for _ in range(rng.randint(0, 5))}
        payload = {"data": rng.choice([data, rng.choice(values)]), "id": rng.choice(values), "name": rng.choice(values)}
        event = source.parse(signed(body_of({"triggerType": "form_submission", "payload": payload})))
        mapping.apply(event.payload, event)


# ---- the preset mapping -------------------------------------------------------------------


def test_the_preset_mapping_makes_the_exact_stardex_update():
    assert as_document(mapped()) == {
        "update": {
            "first_name": "Kai",
            "last_name": "Tanaka",
            "name": "Kai Tanaka",
            "company_name": "Hooli KK",
            "current_job_title": "Platform Engineer",
            "linkedin_url": "https://www.linkedin.com/in/kai-tanaka-example",
            "emails": [{"contact_data_type": "personal", "value": "kai.tanaka@example.jp"}],
            "phone_numbers": [{"contact_data_type": "mobile", "value": "818012345678"}],
        },
        "person": {"id": PERSON_ID, "emails": ["kai.tanaka@example.jp"],
                   "linkedin_url": "https://www.linkedin.com/in/kai-tanaka-example"},
        "create": False,
        "write_policy": "fill",
        "note": None,
    }


def test_a_number_phone_is_read_in_the_default_region():
    body = with_data({"Email": "ana@example.org", "Phone": 912345678})
    assert mapped(body, region="PT").update["phone_numbers"] == [{"contact_data_type": "mobile", "value": "+351912345678"}]


def test_without_the_person_id_field_the_person_is_found_by_email_then_linkedin():
    document = copy.deepcopy(DOCUMENT)
    del document["payload"]["data"]["stardex_person_id"]
    assert mapped(body_of(document)).person == PersonRef(
        id=None, emails=["kai.tanaka@example.jp"], linkedin_url="https://www.linkedin.com/in/kai-tanaka-example")


def test_a_numeric_person_id_is_text():
    assert mapped(with_data({"stardex_person_id": 4021})).person.id == "4021"


def test_a_full_name_field_and_a_linkedin_url_in_any_field():
    body = with_data({"Name": "  Ana   Lima ", "Your profile": "https://pt.linkedin.com/in/ana-lima-example",
                      "Website": "https://ana.example.org", "Current Company": "Globex", "Title": "CTO"})
    assert mapped(body).update == {
        "name": "Ana Lima",
        "company_name": "Globex",
        "current_job_title": "CTO",
        "linkedin_url": "https://pt.linkedin.com/in/ana-lima-example",
    }


def test_a_per_form_section_is_picked_by_the_form_id_and_can_keep_the_transcript(tmp_path):
    document = json.loads((ROOT / "mappings" / "webflow.json").read_text())
    document["form_id"] = "payload.formId"
    document["forms"] = {
        "6600aa00bb11cc22dd33ee00": {
            "fields": {"company_name": None, "linkedin_headline": {"path": "job_title"}},
            "note": {"activity_type": "secondary_note"},
        }
    }
    (tmp_path / "webflow.json").write_text(json.dumps(document))
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)

    talent = mapped(mappings=mappings)
    assert "company_name" not in talent.update and talent.update["linkedin_headline"] == "Platform Engineer"
    assert talent.note == NoteRequest("secondary_note", "Talent network", source.parse(signed()).transcript.answers,
                                      "6600aa00bb11cc22dd33ee44")

    other = copy.deepcopy(DOCUMENT)
    other["payload"]["formId"] = "another-form"
    elsewhere = mapped(body_of(other), mappings=mappings)
    assert elsewhere.update["company_name"] == "Hooli KK"
    assert "linkedin_headline" not in elsewhere.update and elsewhere.note is None
