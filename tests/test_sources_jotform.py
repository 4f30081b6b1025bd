"""Jotform adapter: a shared token (`?token=` or `Authorization: Bearer`) compared against the
configured keys, one mutation per test; the multipart body with `rawRequest`, answers by unique
name; the preset mapping.

The multipart bodies are made by urllib3's encoder (what `requests` sends), independently of the
code under test.
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
from tests.conftest import ROOT, fixture_json, make_delivery, refusal

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
    assert mapped().to_dict() == {
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


# ---- the plain multipart path: werkzeug's answer, or werkzeug reads it ----------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from stardex_webhook.sources.base import MAX_JSON_VALUES  # noqa: E402
from stardex_webhook.sources.jotform import plain_multipart_fields  # noqa: E402

PLAIN_NAME = st.text("abcXYZ019_.:[]-", min_size=1, max_size=12)
ANY_NAME = st.one_of(PLAIN_NAME, st.text(min_size=0, max_size=8))
VALUE = st.one_of(st.text(max_size=30), st.sampled_from(["", "\r\n", "\r\n\r\n", "--", "a\rb\nc", "é", "{\"q3_name\": 1}"]))


def werkzeug_fields(body: bytes, boundary: str) -> dict[str, str] | None:
    """The reference: werkzeug's parser alone; None when it refuses the body."""
    import io

    from werkzeug.exceptions import HTTPException
    from werkzeug.formparser import FormDataParser

    try:
        _, form, _ = FormDataParser(silent=False, max_form_parts=MAX_JSON_VALUES).parse(
            io.BytesIO(body), "multipart/form-data", len(body), {"boundary": boundary})
    except (ValueError, HTTPException):
        return None
    return {name: form[name] for name in form}


def test_urllib3_and_sample_bodies_take_the_plain_path_with_werkzeugs_answer():
    body, content_type = multipart()
    boundary = content_type.split("boundary=", 1)[1]
    assert plain_multipart_fields(body, boundary) == werkzeug_fields(body, boundary) == FIELDS
    sample = (ROOT / "stardex_webhook" / "samples" / "jotform.json").read_bytes()
    headers, body = source.sign_sample(sample, TOKEN, int(NOW))
    boundary = headers["Content-Type"].split("boundary=", 1)[1]
    assert plain_multipart_fields(body, boundary) is not None
    assert plain_multipart_fields(body, boundary) == werkzeug_fields(body, boundary)


DEVIATIONS = ("boundary with a space", "non-ASCII boundary", "LF line ends", "lower-case header", "a file part",
              "unquoted name", "a second header", "bad UTF-8", "transport padding", "preamble", "no final CRLF",
              "epilogue", "padded close", "delimiter quoted in a value", "name outside the plain set")


@st.composite
def multipart_bodies(draw):
    """Bodies of the plain shape, half of them with one of the ways a real one may differ."""
    deviation = draw(st.one_of(st.none(), st.sampled_from(DEVIATIONS)))
    boundary = {"boundary with a space": "with space", "non-ASCII boundary": "é"}.get(
        deviation, draw(st.sampled_from(["b0undary", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a'()+_,./:=?-z"])))
    crlf = "\n" if deviation == "LF line ends" else "\r\n"
    fields = draw(st.lists(st.tuples(ANY_NAME if deviation == "name outside the plain set" else PLAIN_NAME, VALUE),
                           min_size=1, max_size=6))
    odd = draw(st.integers(0, len(fields) - 1))  # the part that deviates
    parts = []
    for index, (name, value) in enumerate(fields):
        here = deviation if index == odd else None
        head = {
            "lower-case header": f'content-disposition: form-data; name="{name}"',
            "a file part": f'Content-Disposition: form-data; name="{name}"; filename="cv.txt"',
            "unquoted name": f"Content-Disposition: form-data; name={name}",
            "a second header": f'Content-Disposition: form-data; name="{name}"{crlf}Content-Type: text/plain; charset=iso-8859-1',
        }.get(here, f'Content-Disposition: form-data; name="{name}"')
        raw = value.encode("utf-8") + (b"\xff\xfe" if here == "bad UTF-8" else b"")
        padding = " " if here == "transport padding" else ""
        parts.append(f"--{boundary}{padding}{crlf}{head}{crlf}{crlf}".encode("utf-8") + raw + crlf.encode())
    body = (b"preamble\r\n" if deviation == "preamble" else b"") + b"".join(parts) + f"--{boundary}--".encode("utf-8")
    body += {"no final CRLF": b"", "epilogue": b"\r\nepilogue", "padded close": b"  \r\n"}.get(deviation, crlf.encode())
    if deviation == "delimiter quoted in a value":
        body = body.replace(b"\r\n\r\n", f"\r\n\r\nsee --{boundary}\r\n".encode("utf-8"), 1)
    return body, boundary


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(multipart_bodies())
def test_the_plain_path_answers_as_werkzeug_or_leaves_the_body_to_it(case):
    body, boundary = case
    plain = plain_multipart_fields(body, boundary)
    if plain is not None:
        assert plain == werkzeug_fields(body, boundary)
    content_type = f'multipart/form-data; boundary="{boundary}"'
    expected = werkzeug_fields(body, boundary)
    if expected is None:
        with pytest.raises(BadRequest):
            form_fields(content_type, body)
    else:
        assert form_fields(content_type, body) == expected


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(st.lists(st.tuples(PLAIN_NAME, st.text(max_size=30)), min_size=1, max_size=8))
def test_every_body_of_the_plain_shape_takes_the_plain_path(fields):
    body = b"".join(f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
                    for name, value in fields) + b"--B--\r\n"
    if b"--B" in b"".join(value.encode() for _, value in fields):
        return  # a value quoting the delimiter is werkzeug's to read
    first_values = {}
    for name, value in fields:
        first_values.setdefault(name, value)
    assert plain_multipart_fields(body, "B") == werkzeug_fields(body, "B") == first_values


def test_more_parts_than_the_limit_are_left_to_werkzeug_which_refuses_them():
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % index
                    for index in range(MAX_JSON_VALUES + 1)) + b"--B--\r\n"
    assert plain_multipart_fields(body, "B") is None
    with pytest.raises(BadRequest) as caught:
        form_fields("multipart/form-data; boundary=B", body)
    assert caught.value.reason == "too_many_fields"
