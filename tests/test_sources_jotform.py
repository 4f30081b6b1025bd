"""Jotform adapter: a shared token (`?token=` or `Authorization: Bearer`) compared against the
configured keys, one mutation per test; the multipart body with `rawRequest`, answers by unique
name; the preset mapping.

The multipart bodies are made by urllib3's encoder (what `requests` sends) or written out by hand,
independently of the code under test.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from urllib.parse import urlencode

import pytest
from urllib3.filepost import encode_multipart_formdata

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.records import NoteRequest, PersonRef
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Transcript
from stardex_webhook.sources.jotform import JotformSource, form_fields
from tests.conftest import ROOT, as_document, fixture_json, make_delivery, refusal

TOKEN = "jf-3q9ZpXb7RkLw2cVn"
NOW = 1_773_000_000.0
FIELDS = fixture_json("jotform_submission.json")
ANSWERS = json.loads(FIELDS["rawRequest"])
PERSON_ID = "c4d2e1f0-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
source = SOURCES["jotform"]


def multipart(fields: dict = FIELDS) -> tuple[bytes, str]:
    return encode_multipart_formdata(fields)


def delivery(fields: dict = FIELDS, query: dict | None = None, **headers: str):
    body, content_type = multipart(fields)
    return make_delivery(body, NOW, query=query, Content_Type=content_type, **headers)


def with_answers(answers: dict, **fields: str) -> dict:
    return {"formID": "1", "submissionID": "s1", "formTitle": "Form", **fields, "rawRequest": json.dumps(answers)}


def mobile(number: str) -> dict:
    return {"contact_data_type": "mobile", "value": number}


def mapped(fields: dict = FIELDS, region: str | None = None, mappings=None):
    event = source.parse(delivery(fields))
    mapping = (mappings or load_mappings(BUILTIN_MAPPINGS_DIR, None, region, SOURCES))["jotform"]
    return mapping.apply(event.payload, event)


# ---- the token ----------------------------------------------------------------------------


def test_registered_as_a_form_tool():
    assert isinstance(source, JotformSource)
    assert (source.success_status, source.default_write_policy, source.needs_api_key) == (200, "fill", False)
    assert source.handshake(delivery()) is None


def test_the_token_in_the_query_string_is_accepted():
    source.verify(delivery(query={"token": TOKEN}), [TOKEN], NOW)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_token_as_a_bearer_header_is_accepted(scheme):
    source.verify(delivery(Authorization=f"{scheme} {TOKEN}"), [TOKEN], NOW)


def test_a_wrong_token_in_the_query_string():
    assert refusal(source, delivery(query={"token": TOKEN + "x"}), [TOKEN], NOW) == "bad_signature"


def test_a_wrong_bearer_token():
    assert refusal(source, delivery(Authorization=f"Bearer {TOKEN.upper()}"), [TOKEN], NOW) == "bad_signature"


def test_a_prefix_of_the_token_is_wrong():
    assert refusal(source, delivery(query={"token": TOKEN[:-1]}), [TOKEN], NOW) == "bad_signature"


def test_the_token_missing():
    assert refusal(source, delivery(), [TOKEN], NOW) == "missing_signature"


def test_an_empty_token_is_missing():
    assert refusal(source, delivery(query={"token": ""}, Authorization="Bearer "), [TOKEN], NOW) == "missing_signature"


@pytest.mark.parametrize(
    "where",
    [
        {"query": {"key": TOKEN}},
        {"query": {"Token": TOKEN}},
        {"Authorization": f"Token {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()},
        {"X_Jotform_Token": TOKEN},
        {"fields": {**FIELDS, "token": TOKEN}},
    ],
)
def test_the_token_in_the_wrong_place(where):
    where = dict(where)
    d = delivery(where.pop("fields", FIELDS), query=where.pop("query", None), **where)
    assert refusal(source, d, [TOKEN], NOW) == "missing_signature"


def test_no_key_configured():
    assert refusal(source, delivery(query={"token": TOKEN}), [], NOW) == "no_signing_key"


def test_rotation_any_configured_key_may_match():
    source.verify(delivery(query={"token": "new-token"}), ["old-token", "new-token"], NOW)
    source.verify(delivery(Authorization="Bearer old-token"), ["old-token", "new-token"], NOW)


def test_one_matching_place_is_enough():
    source.verify(delivery(query={"token": "stale"}, Authorization=f"Bearer {TOKEN}"), [TOKEN], NOW)


def test_sign_sample_sends_the_fields_as_multipart_with_a_bearer_token():
    sample = json.dumps(FIELDS).encode()
    headers, body = source.sign_sample(sample, TOKEN, int(NOW))
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert form_fields(headers["Content-Type"], body) == FIELDS
    source.verify(make_delivery(body, NOW, **{k.replace("-", "_"): v for k, v in headers.items()}), [TOKEN], NOW)


def test_sign_sample_writes_a_value_that_is_not_text_as_json():
    headers, body = source.sign_sample(json.dumps({"formID": 7, "rawRequest": {"q1_email": "a@example.org"}}).encode(),
                                       TOKEN, int(NOW))
    assert form_fields(headers["Content-Type"], body) == {"formID": "7", "rawRequest": '{"q1_email": "a@example.org"}'}


# ---- the body -----------------------------------------------------------------------------


def test_delivery_id_and_no_event_type():
    event = source.parse(delivery())
    assert (event.source, event.event_type, event.delivery_id, event.ignore_reason) == (
        "jotform", None, "6123456789012345678", None)
    assert load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["jotform"].acts_on(None)


def test_the_form_fields_raw_request_parsed_and_answers_by_unique_name():
    payload = source.parse(delivery()).payload
    assert payload == {**FIELDS, "rawRequest": ANSWERS, "answers": {
        "name": {"first": "Tomas", "last": "Novak"},
        "email": "Tomas.Novak@example.cz",
        "phoneNumber": {"full": "+420 601 123 456"},
        "linkedinProfile": "https://www.linkedin.com/in/tomas-novak-example",
        "currentCompany": "Initech s.r.o.",
        "jobTitle": "Backend Developer",
        "address": {"addr_line1": "Vodickova 1", "addr_line2": "", "city": "Praha", "state": "", "postal": "11000",
                    "country": "Czech Republic"},
        "languages": ["Czech", "English", "German"],
        "stardex_person_id": PERSON_ID,
    }}, "checkboxes stay lists; slug, event_id and the like are no answers"


def test_an_url_encoded_body_is_read_the_same():
    body = urlencode(FIELDS).encode()
    event = source.parse(make_delivery(body, NOW, Content_Type="application/x-www-form-urlencoded"))
    assert event.payload == source.parse(delivery()).payload


def test_a_file_part_is_left_out():
    body, content_type = encode_multipart_formdata({**FIELDS, "upload": ("cv.pdf", b"%PDF-1.7", "application/pdf")})
    assert "upload" not in source.parse(make_delivery(body, NOW, Content_Type=content_type)).payload


def test_the_transcript_is_the_answers_in_form_order_without_the_person_id():
    assert source.parse(delivery()).transcript == Transcript(
        title="Job application",
        answers=(
            ("Name", "Tomas Novak"),
            ("Email", "Tomas.Novak@example.cz"),
            ("Phone number", "+420 601 123 456"),
            ("Linkedin profile", "https://www.linkedin.com/in/tomas-novak-example"),
            ("Current company", "Initech s.r.o."),
            ("Job title", "Backend Developer"),
            ("Address", "addr_line1: Vodickova 1; city: Praha; postal: 11000; country: Czech Republic"),
            ("Languages", "Czech, English, German"),
        ),
    )


def test_an_area_code_and_number_read_as_one_in_the_transcript():
    event = source.parse(delivery(with_answers({"q5_phone": {"area": "415", "phone": "5550123"}})))
    assert event.transcript.answers == (("Phone", "415 5550123"),)


WHOLE, WHOLE_TYPE = multipart()


def multipart_of(fields: dict) -> dict:
    body, content_type = multipart(fields)
    return {"body": body, "content_type": content_type}


@pytest.mark.parametrize(
    "sent, reason",
    [
        ({"body": b"garbage", "content_type": "multipart/form-data; boundary=zzz"}, "invalid_form"),
        ({"body": WHOLE[:-20], "content_type": WHOLE_TYPE}, "invalid_form"),  # cut short
        ({"body": WHOLE, "content_type": "multipart/form-data"}, "invalid_form"),  # no boundary
        ({"body": WHOLE, "content_type": "multipart/form-data; boundary=another"}, "invalid_form"),
        ({"body": json.dumps(FIELDS).encode(), "content_type": "application/json"}, "invalid_form"),
        ({"body": WHOLE, "content_type": ""}, "invalid_form"),
        ({"body": b"rawRequest=\xff\xfe", "content_type": "application/x-www-form-urlencoded"}, "invalid_form"),
        (multipart_of({"formID": "1"}), "invalid_payload"),
        (multipart_of({"rawRequest": "{not json"}), "invalid_json"),
        (multipart_of({"rawRequest": "[1, 2]"}), "invalid_json"),
        (multipart_of({"rawRequest": '{"q1_a": NaN}'}), "invalid_json"),
    ],
)
def test_bodies_that_are_not_a_jotform_submission_are_400_with_the_reason(sent, reason):
    with pytest.raises(BadRequest) as caught:
        source.parse(make_delivery(sent["body"], NOW, Content_Type=sent["content_type"]))
    assert caught.value.reason == reason


def test_bodies_of_any_shape_parse_and_map_or_are_400():
    rng = random.Random("jotform-shapes")
    mapping = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["jotform"]
    values = [None, True, 0, 1.5, "", "x", "a@b.co", [], {}, ["a", 1], {"first": 1}, {"full": None},
              {"area": "1", "phone": None}, {"addr_line1": 3, "city": "X"}, "https://www.linkedin.com/in/x"]
    names = ["q1_name", "q2_email", "q3_phoneNumber", "q4_address", "q5_stardex_person_id", "q6_", "slug", "q_x"]
    for _ in range(300):
        answers = {rng.choice(names): rng.choice(values) for _ in range(rng.randint(0, 5))}
        fields = {"rawRequest": json.dumps(answers), "submissionID": rng.choice(["", "1", "é"])}
        try:
            event = source.parse(delivery(fields))
        except BadRequest:
            continue
        mapping.apply(event.payload, event)


# ---- the preset mapping -------------------------------------------------------------------


def test_the_preset_mapping_makes_the_exact_stardex_update():
    assert as_document(mapped()) == {
        "update": {
            "first_name": "Tomas",
            "last_name": "Novak",
            "name": "Tomas Novak",
            "company_name": "Initech s.r.o.",
            "current_job_title": "Backend Developer",
            "linkedin_url": "https://www.linkedin.com/in/tomas-novak-example",
            "address": "Vodickova 1, Praha, 11000, Czech Republic",
            "emails": [{"contact_data_type": "personal", "value": "tomas.novak@example.cz"}],
            "phone_numbers": [{"contact_data_type": "mobile", "value": "+420601123456"}],
        },
        "person": {"id": PERSON_ID, "emails": ["tomas.novak@example.cz"],
                   "linkedin_url": "https://www.linkedin.com/in/tomas-novak-example"},
        "create": False,
        "write_policy": "fill",
        "note": None,
    }


def test_without_the_person_id_field_the_person_is_found_by_email_then_linkedin():
    answers = {key: value for key, value in ANSWERS.items() if not key.endswith("stardex_person_id")}
    assert mapped({**FIELDS, "rawRequest": json.dumps(answers)}).person == PersonRef(
        id=None, emails=["tomas.novak@example.cz"], linkedin_url="https://www.linkedin.com/in/tomas-novak-example")


@pytest.mark.parametrize(
    "answers, expected",
    [
        ({"q3_fullName": {"first": "Ana", "last": "Lima"}}, {"first_name": "Ana", "last_name": "Lima", "name": "Ana Lima"}),
        ({"q3_name": {"first": "Ana", "last": ""}}, {"first_name": "Ana"}),  # half a name sends no name
        # Full Name with its Middle Name box (https://support.ipaas.com/en/articles/9424450: control_fullname's
        # sublabels prefix, first, middle, last, suffix): the middle name was cut from the name sent
        ({"q3_name": {"first": "Ana", "middle": "Maria", "last": "Lima"}},
         {"first_name": "Ana", "last_name": "Lima", "name": "Ana Maria Lima"}),
        ({"q3_name": {"first": "Ana", "middle": "", "last": "Lima"}}, {"first_name": "Ana", "last_name": "Lima", "name": "Ana Lima"}),
        ({"q3_name": {"first": "Ana", "middle": "Maria", "last": ""}}, {"first_name": "Ana"}),
        ({"q3_name": {"first": "", "middle": "Maria", "last": "Lima"}}, {"last_name": "Lima"}),
        ({"q3_name": "  Ana  Lima "}, {"name": "Ana Lima"}),
        ({"q3_firstName": "Ana", "q4_lastName": "Lima"}, {"first_name": "Ana", "last_name": "Lima", "name": "Ana Lima"}),
        ({"q5_phone": {"area": "21", "phone": "000 0000"}}, {"phone_numbers": [mobile("21 000 0000")]}),
        ({"q5_phoneNumber": "+351 912 345 678"}, {"phone_numbers": [mobile("+351912345678")]}),
        ({"q8_address": "Rua Augusta 1, Lisboa"}, {"address": "Rua Augusta 1, Lisboa"}),
        ({"q8_address": {"addr_line1": "", "city": ""}}, {}),
        ({"q9_website": "https://ana.example.org", "q10_profiles": ["x", "linkedin.com/in/ana-example"]},
         {"linkedin_url": "https://linkedin.com/in/ana-example"}),
    ],
)
def test_answer_shapes(answers, expected):
    assert mapped(with_answers(answers)).update == expected


def test_a_per_form_section_is_picked_by_the_form_id_and_can_keep_the_transcript(tmp_path):
    document = json.loads((ROOT / "mappings" / "jotform.json").read_text())
    document["form_id"] = "formID"
    document["forms"] = {
        "251234567890123": {
            "fields": {"address": None, "linkedin_headline": {"path": "jobTitle"}},
            "note": {"activity_type": "secondary_note"},
        }
    }
    (tmp_path / "jotform.json").write_text(json.dumps(document))
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)

    application = mapped(mappings=mappings)
    assert "address" not in application.update and application.update["linkedin_headline"] == "Backend Developer"
    assert application.note == NoteRequest("secondary_note", "Job application",
                                           source.parse(delivery()).transcript.answers, "6123456789012345678")

    elsewhere = mapped({**copy.deepcopy(FIELDS), "formID": "999"}, mappings=mappings)
    assert elsewhere.update["address"] == "Vodickova 1, Praha, 11000, Czech Republic"
    assert "linkedin_headline" not in elsewhere.update and elsewhere.note is None


# ---- multipart bodies as senders write them: read by the multipart library -------------------------

from stardex_webhook.sources.base import MAX_JSON_VALUES  # noqa: E402


def part(name: str, value: str, boundary: str = "B", crlf: str = "\r\n") -> str:
    return f'--{boundary}{crlf}Content-Disposition: form-data; name="{name}"{crlf}{crlf}{value}{crlf}'


@pytest.mark.parametrize(
    "body, expected",
    [
        (part("a", "x") + part("a", "y") + "--B--\r\n", {"a": "x"}),  # a repeated field: its first value
        (part("a", "line one\r\nline two") + part("b", "see --B here") + "--B--\r\n",
         {"a": "line one\r\nline two", "b": "see --B here"}),  # line breaks and the delimiter's text in a value
        ("preamble\r\n" + part("a", "x") + "--B--\r\nepilogue", {"a": "x"}),
        (part("a", "Tomáš") + "--B--", {"a": "Tomáš"}),  # no final line break
    ],
)
def test_multipart_bodies_of_other_shapes_read_as_their_fields(body, expected):
    assert form_fields('multipart/form-data; boundary="B"', body.encode()) == expected


def test_a_multipart_body_with_bare_line_feeds_is_an_invalid_form():
    """RFC 2046 ends each line with CRLF, as Jotform and every browser send it; bare LFs are a
    400 with the reason, never a form read half."""
    with pytest.raises(BadRequest) as caught:
        form_fields("multipart/form-data; boundary=B", (part("a", "x", crlf="\n") + "--B--\n").encode())
    assert caught.value.reason == "invalid_form"


def test_a_multipart_value_that_is_not_utf8_is_read_with_replacement_characters():
    body = part("a", "x").encode().replace(b"x", b"x\xff") + b"--B--\r\n"
    assert form_fields("multipart/form-data; boundary=B", body) == {"a": "x\ufffd"}


def test_more_parts_than_the_limit_are_too_many_fields():
    body = "".join(part(f"f{index}", "x") for index in range(MAX_JSON_VALUES + 1)) + "--B--\r\n"
    with pytest.raises(BadRequest) as caught:
        form_fields("multipart/form-data; boundary=B", body.encode())
    assert caught.value.reason == "too_many_fields"
    assert form_fields("multipart/form-data; boundary=B",
                       ("".join(part(f"f{index}", "x") for index in range(MAX_JSON_VALUES)) + "--B--\r\n").encode())
