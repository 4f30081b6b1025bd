"""The mapping engine and the three built-in mappings.

Expected updates are written out by hand from the fixtures, so a test fails when the engine or a
mapping file changes what Stardex would receive.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stardex_webhook import transforms
from stardex_webhook.errors import ConfigurationError, Unprocessable
from stardex_webhook import mapping as mapping_module
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.records import MappedUpdate, NoteRequest, PersonRef
from stardex_webhook.records import Event, Transcript
from stardex_webhook.sources import SOURCES
from tests.helpers.random_json import places, with_value
from tests.helpers.schema import validate_update
from tests.conftest import make_delivery

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def typeform(document):
    """The payload as the Typeform adapter hands it to the mapping (answers indexed)."""
    return SOURCES["typeform"].parse(make_delivery(json.dumps(document).encode(), 0)).payload


@pytest.fixture(scope="module")
def mappings():
    return load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)


# --- Greenhouse -------------------------------------------------------------------------------

GREENHOUSE_UPDATE = {
    "first_name": "Marta",
    "last_name": "Quintal",
    "name": "Marta Quintal",
    "company_name": "Northwind Analytics",
    "current_job_title": "Data Engineer",
    "linkedin_url": "https://www.linkedin.com/in/marta-quintal-example",
    "address": "Rua Exemplo 10\n1100-001 Lisboa",
    "emails": [
        {"contact_data_type": "personal", "value": "marta.quintal@example.org"},
        {"contact_data_type": "work", "value": "mquintal@northwind-example.com"},
    ],
    "phone_numbers": [{"contact_data_type": "mobile", "value": "+351910000111"}],
}
GREENHOUSE_PERSON = PersonRef(
    id=None,
    emails=["marta.quintal@example.org", "mquintal@northwind-example.com"],
    linkedin_url="https://www.linkedin.com/in/marta-quintal-example",
)


def greenhouse_candidate():
    return fixture("greenhouse_hire_candidate.json")["payload"]["application"]["candidate"]


def greenhouse_with_candidate(candidate, action="hire_candidate"):
    document = fixture("greenhouse_hire_candidate.json")
    document["action"] = action
    document["payload"]["application"]["candidate"] = candidate
    return document


def test_greenhouse_hire_candidate(mappings):
    result = mappings["greenhouse"].apply(fixture("greenhouse_hire_candidate.json"))
    assert result == MappedUpdate(update=GREENHOUSE_UPDATE, person=GREENHOUSE_PERSON, create=False)


def test_greenhouse_update_is_valid_for_stardex(mappings):
    validate_update(mappings["greenhouse"].apply(fixture("greenhouse_hire_candidate.json")).update)


def test_greenhouse_update_candidate_shape(mappings):
    """update_candidate carries the person at payload.candidate, without an application."""
    payload = {"action": "update_candidate", "payload": {"candidate": greenhouse_candidate()}}
    result = mappings["greenhouse"].apply(payload)
    assert (result.update, result.person) == (GREENHOUSE_UPDATE, GREENHOUSE_PERSON)


@pytest.mark.parametrize(
    "action",
    ["hire_candidate", "candidate_stage_change", "application_updated", "new_candidate_application",
     "new_prospect_application", "update_candidate", "reject_candidate", "unreject_candidate", "unhire_candidate"],
)
def test_greenhouse_acts_on_every_event_that_carries_a_person(mappings, action):
    assert mappings["greenhouse"].acts_on(action)


@pytest.mark.parametrize("action", ["ping", "delete_candidate", "merge_candidate", "candidate_anonymized", None])
def test_greenhouse_ignores_events_without_a_person(mappings, action):
    assert not mappings["greenhouse"].acts_on(action)


def test_greenhouse_falls_back_to_the_current_employment(mappings):
    candidate = greenhouse_candidate()
    del candidate["company"], candidate["title"]
    candidate["employments"] = [
        {"company_name": "Initech", "title": "Intern", "start_date": "01/01/2018", "end_date": "12/31/2020"},
        {"company_name": "Northwind Analytics", "title": "Data Engineer", "start_date": "01/01/2021", "end_date": None},
    ]
    update = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate)).update
    assert (update["company_name"], update["current_job_title"]) == ("Northwind Analytics", "Data Engineer")


def test_greenhouse_finds_linkedin_among_website_addresses(mappings):
    candidate = greenhouse_candidate()
    candidate["social_media_addresses"] = [{"value": "https://twitter.com/marta"}]
    candidate["website_addresses"] = [
        {"value": "https://marta.example.org", "type": "personal"},
        {"value": "pt.linkedin.com/in/marta-q", "type": "other"},
    ]
    result = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate))
    assert result.update["linkedin_url"] == "https://pt.linkedin.com/in/marta-q"
    assert result.person.linkedin_url == "https://pt.linkedin.com/in/marta-q"


def test_greenhouse_contact_types_become_stardex_types(mappings):
    candidate = greenhouse_candidate()
    candidate["email_addresses"] = [
        {"value": "marta@example.org", "type": "other"},
        {"value": "MARTA@example.org ", "type": "work"},
        {"value": "m.q@northwind-example.com", "type": "work"},
    ]
    candidate["phone_numbers"] = [
        {"value": "+351 910 000 111", "type": "home"},
        {"value": "+351910000111", "type": "mobile"},
        {"value": "+351 213 000 222", "type": "work"},
        {"value": "live:marta.q", "type": "skype"},
        {"value": "+351 910 000 333", "type": "other"},
    ]
    update = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate)).update
    assert update["emails"] == [
        {"contact_data_type": "personal", "value": "marta@example.org"},
        {"contact_data_type": "work", "value": "m.q@northwind-example.com"},
    ]
    assert update["phone_numbers"] == [
        {"contact_data_type": "mobile", "value": "+351910000111"},
        {"contact_data_type": "work", "value": "+351213000222"},
        {"contact_data_type": "mobile", "value": "live:marta.q"},
        {"contact_data_type": "mobile", "value": "+351910000333"},
    ]


def test_greenhouse_sends_nothing_the_candidate_lacks(mappings):
    candidate = {"first_name": "Marta", "last_name": "", "company": None, "email_addresses": [], "addresses": [{"value": " "}]}
    result = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate))
    assert result.update == {"first_name": "Marta"}
    assert result.person == PersonRef(id=None, emails=[], linkedin_url=None)


def test_one_phone_number_written_twice_is_sent_once(mappings):
    """phonenumbers calls +44 7700 900123 invalid, so it stays as written; the digits still make it one number."""
    candidate = greenhouse_candidate()
    candidate["phone_numbers"] = [{"value": "+44 7700 900123", "type": "mobile"}, {"value": "+447700900123", "type": "work"},
                                  {"value": "(415) 555-0199", "type": "work"}, {"value": "+1 415 555 0199", "type": "mobile"}]
    update = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate)).update
    assert update["phone_numbers"] == [{"contact_data_type": "mobile", "value": "+44 7700 900123"},
                                       {"contact_data_type": "work", "value": "(415) 555-0199"}]


# --- names: a partial name never replaces a whole one -------------------------------------------

NAME_CASES = {  # source: (payload with first and last name, the same with the first name only)
    "greenhouse": lambda first, last: greenhouse_with_candidate({"first_name": first, **({"last_name": last} if last else {})}),
    "typeform": lambda first, last: typeform({"event_type": "form_response", "form_response": {"answers": [
        {"type": "text", "text": text, "field": {"ref": ref}} for ref, text in (("first_name", first), ("last_name", last)) if text]}}),
    "generic": lambda first, last: {"first_name": first, **({"last_name": last} if last else {})},
}


@pytest.mark.parametrize("source", sorted(NAME_CASES))
def test_a_first_name_alone_sends_no_name(mappings, source):
    assert "name" not in mappings[source].apply(NAME_CASES[source]("Aisha", None)).update


@pytest.mark.parametrize("source", ["greenhouse", "typeform"])
def test_a_name_from_both_parts_is_trimmed_with_single_spaces(mappings, source):
    update = mappings[source].apply(NAME_CASES[source]("  Aisha ", " Bello")).update
    assert (update["name"], update["first_name"], update["last_name"]) == ("Aisha Bello", "Aisha", "Bello")


@pytest.mark.parametrize("source, payload", [
    ("generic", {"name": "  Aisha   Bello "}),
    ("typeform", typeform({"form_response": {"answers": [{"type": "text", "text": " Aisha  Bello", "field": {"ref": "name"}}]}})),
])
def test_a_full_name_from_the_sender_is_trimmed_with_single_spaces(mappings, source, payload):
    assert mappings[source].apply(payload).update["name"] == "Aisha Bello"


def test_phone_default_region_reaches_the_mappings():
    candidate = greenhouse_candidate()
    candidate["phone_numbers"] = [{"value": "910 000 111", "type": "mobile"}]
    regional = load_mappings(BUILTIN_MAPPINGS_DIR, None, "PT", SOURCES)
    update = regional["greenhouse"].apply(greenhouse_with_candidate(candidate)).update
    assert update["phone_numbers"] == [{"contact_data_type": "mobile", "value": "+351910000111"}]


def test_without_region_a_national_number_is_sent_as_written(mappings):
    candidate = greenhouse_candidate()
    candidate["phone_numbers"] = [{"value": " 910 000 111 ", "type": "mobile"}]
    update = mappings["greenhouse"].apply(greenhouse_with_candidate(candidate)).update
    assert update["phone_numbers"] == [{"contact_data_type": "mobile", "value": "910 000 111"}]


# --- Typeform ---------------------------------------------------------------------------------

TYPEFORM_UPDATE = {
    "first_name": "Chidi",
    "last_name": "Okafor",
    "name": "Chidi Okafor",
    "company_name": "Globex",
    "linkedin_url": "https://www.linkedin.com/in/chidi-okafor-example",
    "emails": [{"contact_data_type": "personal", "value": "chidi.okafor@example.com"}],
    "phone_numbers": [{"contact_data_type": "mobile", "value": "+14155550123"}],
}


def test_typeform_form_response_without_person_id(mappings):
    """The fixture's hidden fields hold crm_person_id (empty), not stardex_person_id."""
    result = mappings["typeform"].apply(typeform(fixture("typeform_form_response.json")))
    assert result == MappedUpdate(
        update=TYPEFORM_UPDATE,
        person=PersonRef(
            id=None,
            emails=["chidi.okafor@example.com"],
            linkedin_url="https://www.linkedin.com/in/chidi-okafor-example",
        ),
        create=False,
        write_policy="fill",  # a form tool's default: anyone with the link can answer
    )


def test_typeform_form_response_with_person_id(mappings):
    document = fixture("typeform_form_response.json")
    document["form_response"]["hidden"]["stardex_person_id"] = " 9d0c6b3e-2f4a-4e1b-8c7d-5a6b7c8d9e0f "
    result = mappings["typeform"].apply(typeform(document))
    assert result.person.id == "9d0c6b3e-2f4a-4e1b-8c7d-5a6b7c8d9e0f"
    assert result.update == TYPEFORM_UPDATE


@pytest.mark.parametrize("answer, expected", [
    ({"type": "choice", "choice": {"id": "c1", "label": "Staff Engineer", "ref": "r1"}}, "Staff Engineer"),
    ({"type": "choice", "choice": {"other": " Founder "}}, "Founder"),
    ({"type": "text", "text": "Staff Engineer"}, "Staff Engineer"),
])
def test_typeform_a_job_title_or_company_chosen_from_a_list_is_read(mappings, answer, expected):
    """A dropdown or multiple-choice question ("What's your current role?") answers with its option's
    label, or with the text typed for "Other" (https://www.typeform.com/developers/webhooks/example-payload/:
    ``{"type": "choice", "choice": {"label": "London"}}``): it was read as ``text`` only, so the
    answer was left out with nothing in ``skipped``, where Tally, Fillout and Jotform send it."""
    for ref, field in (("job_title", "current_job_title"), ("title", "current_job_title"),
                       ("company", "company_name"), ("company_name", "company_name")):
        document = {"event_type": "form_response", "form_response": {"answers": [
            {"type": "email", "email": "ada@example.com", "field": {"id": "e", "ref": "email"}},
            {**answer, "field": {"id": "q", "type": "dropdown", "ref": ref}}]}}
        assert mappings["typeform"].apply(typeform(document)).update[field] == expected


def test_typeform_empty_person_id_is_no_id(mappings):
    document = fixture("typeform_form_response.json")
    document["form_response"]["hidden"]["stardex_person_id"] = ""
    assert mappings["typeform"].apply(typeform(document)).person.id is None


def test_typeform_update_is_valid_for_stardex(mappings):
    validate_update(mappings["typeform"].apply(typeform(fixture("typeform_form_response.json"))).update)


def test_typeform_acts_on_form_responses_only(mappings):
    assert [mappings["typeform"].acts_on(event) for event in ("form_response", "form_response_partial", None)] == [
        True, False, False,
    ]


def answer(kind, ref, **value):
    return {"type": kind, **value, "field": {"id": f"id-{ref}", "ref": ref}}


@pytest.mark.parametrize("answers, expected", [
    (  # refs the mapping does not know: the answer types decide
        [answer("text", "q1", text="Chidi"), answer("url", "q2", url="https://chidi.example.com"),
         answer("url", "q3", url="linkedin.com/in/chidi"), answer("email", "q4", email="Chidi@Example.com"),
         answer("email", "q5", email="referrer@example.com"), answer("phone_number", "q6", phone_number="+44 20 7946 0018")],
        {"linkedin_url": "https://linkedin.com/in/chidi",
         "emails": [{"contact_data_type": "personal", "value": "chidi@example.com"}],
         "phone_numbers": [{"contact_data_type": "mobile", "value": "+442079460018"}]},
    ),
    (  # a known ref wins over an answer of the type
        [answer("email", "referrer", email="referrer@example.com"), answer("text", "email", text="chidi@example.com"),
         answer("text", "name", text="Chidi Okafor"), answer("text", "job_title", text="Staff Engineer")],
        {"name": "Chidi Okafor", "current_job_title": "Staff Engineer",
         "emails": [{"contact_data_type": "personal", "value": "chidi@example.com"}]},
    ),
])
def test_typeform_answers_by_ref_then_by_type(mappings, answers, expected):
    document = fixture("typeform_form_response.json")
    document["form_response"]["answers"] = answers
    assert mappings["typeform"].apply(typeform(document)).update == expected


# --- generic ----------------------------------------------------------------------------------

GENERIC_BODY = {
    "type": "person.updated",
    "stardex_person_id": "9d0c6b3e-2f4a-4e1b-8c7d-5a6b7c8d9e0f",
    "email": " Ada@Example.com ",
    "name": " Ada Lovelace ",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "linkedin_url": "https://www.linkedin.com/in/ada-example",
    "current_job_title": "Analyst",
    "company_name": "Analytical Engines Ltd",
    "linkedin_location": "London",
    "linkedin_headline": "Poet of numbers",
    "address": "12 St James's Square, London",
    "enrich_record": False,
    "work_email": "ADA@engines.example.com",
    "personal_email": "ada@example.com",
    "mobile_phone": "+44 7911 123456",
    "work_phone": "+44 20 7946 0018",
    "job_id": 4711,
    "custom_fields": [{"attribute_id": "0b9e3c1a-5d2f-4e8b-a6c7-1f2d3e4a5b6c", "value": "Referral"}],
    "emails": ["Ada@Example.com", {"contact_data_type": "work", "value": "ada@engines.example.com"}, {"value": "a@ex.example"}],
    "phone_numbers": [{"contact_data_type": "work", "value": "+44 20 7946 0018"}, "+44 7911 123456", {"contact_data_type": "home", "value": "+44 7911 123457"}],
    "favourite_colour": "not a Stardex field",
}
PASSED_AS_SENT = ("first_name", "last_name", "linkedin_url", "current_job_title", "company_name", "linkedin_location",
                  "linkedin_headline", "address", "enrich_record", "personal_email", "custom_fields")
GENERIC_UPDATE = {
    **{field: GENERIC_BODY[field] for field in PASSED_AS_SENT},
    "name": "Ada Lovelace",
    "work_email": "ada@engines.example.com",
    "mobile_phone": "+447911123456",
    "work_phone": "+442079460018",
    "job_id": "4711",
    "emails": [
        {"contact_data_type": "personal", "value": "ada@example.com"},
        {"contact_data_type": "work", "value": "ada@engines.example.com"},
        {"contact_data_type": "personal", "value": "a@ex.example"},
    ],
    "phone_numbers": [
        {"contact_data_type": "work", "value": "+442079460018"},
        {"contact_data_type": "mobile", "value": "+447911123456"},
        {"contact_data_type": "mobile", "value": "+447911123457"},
    ],
}


def test_generic_body_with_every_field(mappings):
    result = mappings["generic"].apply(copy.deepcopy(GENERIC_BODY))
    assert result == MappedUpdate(
        update=GENERIC_UPDATE,
        person=PersonRef(
            id="9d0c6b3e-2f4a-4e1b-8c7d-5a6b7c8d9e0f",
            emails=["ada@example.com"],
            linkedin_url="https://www.linkedin.com/in/ada-example",
        ),
        create=False,
    )
    validate_update(result.update)


def test_generic_reads_the_standard_webhooks_data_object(mappings):
    body = {"type": "person.updated", "timestamp": "2026-03-16T12:00:00Z", "data": copy.deepcopy(GENERIC_BODY)}
    assert mappings["generic"].apply(body).update == GENERIC_UPDATE


def test_generic_email_is_a_lookup_key_only(mappings):
    result = mappings["generic"].apply({"email": "Ada@Example.com", "current_job_title": "Analyst"})
    assert result.update == {"current_job_title": "Analyst"}
    assert result.person == PersonRef(id=None, emails=["ada@example.com"], linkedin_url=None)


def test_generic_without_email_looks_up_by_the_emails_sent(mappings):
    result = mappings["generic"].apply({"emails": ["b@example.com", "a@example.com"], "work_email": "w@example.com"})
    assert result.person.emails == ["b@example.com", "a@example.com", "w@example.com"]


def test_generic_numeric_person_id_becomes_text(mappings):
    assert mappings["generic"].apply({"stardex_person_id": 1234, "name": "Ada"}).person.id == "1234"


def test_generic_passes_wrong_types_on_to_schema_validation(mappings):
    """Fields mapped without transforms are sent as found, so the sender hears what was wrong."""
    update = mappings["generic"].apply({"enrich_record": "yes", "custom_fields": {"a": 1}}).update
    assert update == {"enrich_record": "yes", "custom_fields": {"a": 1}}


def test_generic_update_does_not_share_objects_with_the_payload(mappings):
    body = {"custom_fields": [{"attribute_id": "0b9e3c1a-5d2f-4e8b-a6c7-1f2d3e4a5b6c", "value": "x"}]}
    update = mappings["generic"].apply(body).update
    update["custom_fields"][0]["value"] = "changed"
    assert body["custom_fields"][0]["value"] == "x"


@pytest.mark.parametrize("event_type", [None, "person.updated", "anything"])
def test_generic_acts_on_every_event(mappings, event_type):
    assert mappings["generic"].acts_on(event_type)


# --- loading ----------------------------------------------------------------------------------

MINIMAL = {"events": ["hire_candidate"], "fields": {"first_name": {"path": "payload.application.candidate.first_name"}}}


def write(directory, name, content):
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_builtin_mappings_are_named_after_their_files(mappings):
    assert sorted(mappings) == sorted(SOURCES)
    assert Path(BUILTIN_MAPPINGS_DIR).resolve() == REPO / "mappings"


def test_every_start_checks_every_mapping_file_against_the_schema(tmp_path, monkeypatch):
    checked = []
    real = mapping_module._schema_faults
    monkeypatch.setattr(mapping_module, "_schema_faults", lambda document: checked.append(document) or real(document))
    write(tmp_path, "greenhouse.json", MINIMAL)
    load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    assert len(checked) == len(SOURCES) and MINIMAL in checked  # the shipped files and the MAPPINGS_DIR one


def test_override_dir_replaces_one_file_only(tmp_path, mappings):
    write(tmp_path, "greenhouse.json", MINIMAL)
    loaded = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    assert loaded["greenhouse"].apply(fixture("greenhouse_hire_candidate.json")).update == {"first_name": "Marta"}
    assert not loaded["greenhouse"].acts_on("update_candidate")
    assert loaded["typeform"].apply(typeform(fixture("typeform_form_response.json"))).update == TYPEFORM_UPDATE


def test_an_override_saved_as_json_in_capitals_or_with_a_bom_is_used(tmp_path, mappings):
    """Windows' habits: ``greenhouse.JSON``, and Notepad's byte-order mark at the start."""
    (tmp_path / "greenhouse.JSON").write_text("\ufeff" + json.dumps(MINIMAL), encoding="utf-8")
    loaded = load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    assert loaded["greenhouse"].apply(fixture("greenhouse_hire_candidate.json")).update == {"first_name": "Marta"}


def test_an_override_named_in_other_capitals_than_its_source_stops_the_start(tmp_path):
    path = write(tmp_path, "Greenhouse.json", MINIMAL)
    with pytest.raises(ConfigurationError, match=f"{path}: names no source"):
        load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)


def test_an_override_file_that_names_no_source_stops_the_start(tmp_path):
    """A typo would otherwise leave the built-in mapping in force without a word."""
    write(tmp_path, "notes.txt", "not a mapping")
    path = write(tmp_path, "greenhose.json", MINIMAL)
    with pytest.raises(ConfigurationError, match=f"{path}: names no source .*one of: {', '.join(sorted(SOURCES))}\\)"):
        load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)


def test_constant_field_is_sent_on_every_event(tmp_path):
    write(tmp_path, "x.json", {"events": "*", "fields": {"enrich_record": {"value": True}, "name": {"path": "n"}}})
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply({}).update == {"enrich_record": True}


@pytest.mark.parametrize("constants, named", [
    ({"enrich_record": {"value": "yes"}}, ["fields.enrich_record: must be a boolean (true or false)"]),
    ({"first_name": {"value": 123}, "current_job_title": {"value": "x" * 2001}},
     ["fields.current_job_title: must have at most 2000 characters", "fields.first_name: must be a string"]),
])
def test_a_constant_the_update_schema_refuses_stops_the_start(tmp_path, constants, named):
    """A constant is in every update: left for the first event, every event would skip it."""
    write(tmp_path, "x.json", {"events": "*", "fields": {"name": {"path": "n"}, **constants}})
    with pytest.raises(ConfigurationError, match="a constant no update could send: ") as refused:
        load_mappings(str(tmp_path), None, None, SOURCES)
    assert str(refused.value).endswith("; ".join(named))


def test_person_create_and_custom_lookup_paths(tmp_path):
    write(tmp_path, "x.json", {
        "events": "*",
        "root": "candidate",
        "person": {"email": "lookup.emails", "linkedin_url": "links", "create": True},
        "fields": {"name": {"path": "name"}, "emails": {"path": "mails", "default_type": "work"}},
    })
    payload = {"candidate": {"name": "Ada", "mails": ["ada@x.example"], "lookup": {"emails": ["L@x.example", " "]},
                             "links": [{"value": "https://github.com/ada"}, {"url": "linkedin.com/in/ada"}]}}
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply(payload) == MappedUpdate(
        update={"name": "Ada", "emails": [{"contact_data_type": "work", "value": "ada@x.example"}]},
        person=PersonRef(id=None, emails=["l@x.example"], linkedin_url="https://linkedin.com/in/ada"),
        create=True,
    )


def test_contact_types_match_ignoring_case(tmp_path):
    write(tmp_path, "x.json", {"events": "*", "fields": {"phone_numbers": {
        "path": "phones", "value": "number", "type": "kind", "types": {"Office": "work"}, "default_type": "mobile"}}})
    payload = {"phones": [{"number": "+442079460018", "kind": " OFFICE "}, {"number": "+447911123456", "kind": 3}]}
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply(payload).update["phone_numbers"] == [
        {"contact_data_type": "work", "value": "+442079460018"},
        {"contact_data_type": "mobile", "value": "+447911123456"},
    ]


def test_contact_path_may_yield_a_single_string(tmp_path):
    write(tmp_path, "x.json", {"events": "*", "fields": {"emails": {"path": "email", "default_type": "personal"}}})
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply({"email": "A@x.example"}).update == {
        "emails": [{"contact_data_type": "personal", "value": "a@x.example"}]
    }


def test_event_without_type_matches_only_a_wildcard(tmp_path):
    write(tmp_path, "x.json", MINIMAL)
    assert not load_mappings(str(tmp_path), None, None, SOURCES)["x"].acts_on(None)


def test_loading_mappings_does_not_import_phonenumbers():
    probe = (
        "import sys\n"
        "from stardex_webhook.mapping import load_mappings, BUILTIN_MAPPINGS_DIR\n"
        "load_mappings(BUILTIN_MAPPINGS_DIR, None, 'GB', ())\n"
        "print('phonenumbers' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_mapping_schema_lists_every_update_field():
    mapping_schema = json.loads((REPO / "schemas" / "mapping.schema.json").read_text())
    update_schema = json.loads((REPO / "schemas" / "person_update.schema.json").read_text())
    assert set(mapping_schema["properties"]["fields"]["properties"]) == set(update_schema["properties"])


def test_mapping_schema_lists_every_transform():
    mapping_schema = json.loads((REPO / "schemas" / "mapping.schema.json").read_text())
    names = mapping_schema["$defs"]["field"]["properties"]["transforms"]["items"]["enum"]
    assert set(names) == transforms.TRANSFORM_NAMES


# --- broken mapping files: each stops the start, naming the file and the fault ----------------

def load_broken(tmp_path, content, name="generic.json"):
    path = write(tmp_path, name, content)
    with pytest.raises(ConfigurationError) as caught:
        load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path), None, SOURCES)
    message = str(caught.value)
    assert str(path) in message
    return message


_NAME = {"name": {"path": "n"}}


@pytest.mark.parametrize("document, expected", [
    ('{\n  "events": "*",\n  "fields": {,}\n}', ["invalid JSON at line 3"]),
    ({"events": "*", "fields": {"nickname": {"path": "nick"}}}, ["$.fields", "nickname"]),
    ({"fields": _NAME}, ["'events' is a required property"]),
    ({"events": [], "fields": _NAME}, ['$.events: must be "*" or a non-empty list']),
    ({"events": "*", "fields": {"name": {"path": "n", "value": "Ada"}}}, ["$.fields.name: must have either `path`"]),
    ({"events": "*", "fields": {"emails": {"path": "e", "types": {"home": "home"}, "default_type": "personal"}}},
     ["$.fields.emails.types.home"]),
    ({"events": "*", "fields": {"first_name": {"path": "candidate.first_name["}}},
     ["fields.first_name.path: invalid JMESPath expression"]),
    ({"events": "*", "root": "payload.||", "fields": _NAME}, ["root: invalid JMESPath expression"]),
    ({"events": "*", "person": {"id": "hidden.'x"}, "fields": _NAME}, ["person.id: invalid JMESPath expression"]),
    ({"events": "*", "fields": {"name": {"path": "trim(name)"}}},
     ["fields.name.path: invalid JMESPath expression: unknown function trim()"]),
    ({"events": "*", "fields": {"name": {"path": "a || join(' ')"}}}, ["join() takes 2 arguments, given 1"]),
    ({"events": "*", "fields": {"name": {"path": "n", "transforms": ["trim", "titlecase"]}}},
     ["$.fields.name.transforms[1]", "titlecase"]),
])
def test_a_broken_mapping_file_stops_the_start_naming_the_fault(tmp_path, document, expected):
    message = load_broken(tmp_path, document)
    assert all(part in message for part in expected), message


def test_broken_builtin_file_is_refused(tmp_path):
    path = write(tmp_path, "greenhouse.json", "[")
    with pytest.raises(ConfigurationError, match="greenhouse.json: invalid JSON at line 1"):
        load_mappings(str(tmp_path), None, None, SOURCES)
    assert path.exists()


def test_missing_override_dir_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="MAPPINGS_DIR .*missing.*: not a directory"):
        load_mappings(BUILTIN_MAPPINGS_DIR, str(tmp_path / "missing"), None, SOURCES)


# --- any payload shape: apply() never raises ----------------------------------------------------

ODD_VALUES = [None, 0, 1, -2.5, True, False, "", "text", [], [None], [1, "a"], {}, {"value": None}, [[{}]]]


def replacements(document):
    """Every copy of ``document`` with one node (at any depth) replaced by one odd value."""
    yield from (value for value in ODD_VALUES)
    for path in places(document):
        for value in ODD_VALUES:
            yield with_value(document, path, value)


@pytest.mark.parametrize(
    "source, document",
    [
        ("greenhouse", fixture("greenhouse_hire_candidate.json")),
        ("greenhouse", {"action": "update_candidate", "payload": {"candidate": greenhouse_candidate()}}),
        ("typeform", typeform(fixture("typeform_form_response.json"))),
        ("generic", GENERIC_BODY),
    ],
)
def test_no_payload_shape_makes_apply_raise(mappings, source, document):
    mapping = mappings[source]
    for variant in replacements(document):
        result = mapping.apply(variant)
        assert isinstance(result.update, dict) and isinstance(result.person.emails, list)


@pytest.mark.parametrize("payload", [None, 7, "x", [], [{}], {"payload": []}, {"payload": {"application": [1]}},
                                     {"form_response": {"answers": {"a": 1}, "hidden": []}}])
@pytest.mark.parametrize("source", ["generic", "greenhouse", "typeform"])
def test_malformed_top_level_shapes_yield_an_empty_update(mappings, source, payload):
    assert mappings[source].apply(payload).update == {}


def test_search_faults_at_request_time_yield_nothing(tmp_path):
    """A function given the wrong types raises in jmespath; the engine turns that into nothing."""
    write(tmp_path, "x.json", {"events": "*", "fields": {"name": {"path": "join(', ', names)"}, "address": {"path": "a"}}})
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply({"names": [1, 2], "a": "Lisboa"}).update == {"address": "Lisboa"}


def test_deeply_nested_values_yield_nothing(mappings):
    deep = []
    for _ in range(5000):
        deep = [deep]
    result = mappings["generic"].apply({"custom_fields": deep, "emails": deep, "name": "Ada"})
    assert result.update == {"name": "Ada"}


def test_a_contact_list_far_beyond_the_schema_bound_is_still_refused(mappings):
    """The mapping stops collecting long before thousands of numbers are normalised, yet keeps
    enough for the update schema to refuse the event (422) rather than sending part of it."""
    update = mappings["generic"].apply({"phone_numbers": [f"+1415555{n:04d}" for n in range(5000)]}).update
    with pytest.raises(Unprocessable) as caught:
        validate_update(update)
    assert caught.value.extra["errors"] == [{"path": "$.phone_numbers", "message": "must have at most 20 items"}]


# ---- write policy, job table, note, per-form sections, queue round trip -------------------------

FORM_DOCUMENT = {
    "events": "*",
    "form_id": "form",
    "person": {"id": "hidden.person"},
    "note": {},
    "fields": {"company_name": {"path": "answers.company"}, "current_job_title": {"path": "answers.title"}},
    "forms": {
        "F-referral": {
            "fields": {"company_name": {"path": "answers.employer"}, "current_job_title": None},
            "person": {"id": "hidden.referee"},
            "write_policy": "overwrite",
            "note": {"activity_type": "call_note"},
        }
    },
}
FORM_PAYLOAD = {"answers": {"company": "Acme", "employer": "Initech", "title": "CTO"},
                "hidden": {"person": "p-1", "referee": "p-2"}}


class _Sender:
    default_write_policy = "fill"


def test_a_mapping_without_write_policy_takes_its_sender_s_default(tmp_path):
    write(tmp_path, "form.json", MINIMAL)
    write(tmp_path, "ats.json", {**MINIMAL, "write_policy": "fill"})
    loaded = load_mappings(str(tmp_path), None, None, {"form": _Sender(), "ats": object()})
    assert loaded["form"].apply({}).write_policy == "fill"
    assert loaded["ats"].apply({}).write_policy == "fill"
    assert load_mappings(str(tmp_path), None, None, ["form", "ats"])["form"].write_policy == "overwrite"


@pytest.mark.parametrize("form, expected", [
    ("F-referral", ({"company_name": "Initech"}, "p-2", "overwrite", "call_note")),
    ("F-other", ({"company_name": "Acme", "current_job_title": "CTO"}, "p-1", "fill", "secondary_note")),
    (None, ({"company_name": "Acme", "current_job_title": "CTO"}, "p-1", "fill", "secondary_note")),
])
def test_a_form_s_section_replaces_fields_person_policy_and_note(tmp_path, form, expected):
    write(tmp_path, "form.json", FORM_DOCUMENT)
    mapping = load_mappings(str(tmp_path), None, None, {"form": _Sender()})["form"]
    event = Event("form", "submitted", "d-7", {}, transcript=Transcript("Referral", (("Employer", "Initech"),)))
    mapped = mapping.apply({**FORM_PAYLOAD, "form": form}, event)
    assert (mapped.update, mapped.person.id, mapped.write_policy, mapped.note.activity_type) == expected
    assert mapped.note == NoteRequest(expected[3], "Referral", (("Employer", "Initech"),), "d-7")


def test_a_broken_form_section_stops_the_start_naming_the_form(tmp_path):
    path = write(tmp_path, "form.json", {**FORM_DOCUMENT, "forms": {"F-1": {"fields": {"name": {"transforms": ["trim"]}}}}})
    with pytest.raises(ConfigurationError, match=f"{path}: forms.F-1: .*fields.name"):
        load_mappings(str(tmp_path), None, None, {"form": _Sender()})


def test_no_note_without_a_note_section_or_without_a_transcript(tmp_path):
    write(tmp_path, "form.json", {key: value for key, value in FORM_DOCUMENT.items() if key != "note"})
    mapping = load_mappings(str(tmp_path), None, None, {"form": _Sender()})["form"]
    event = Event("form", "submitted", "d-7", {}, transcript=Transcript("Referral", ()))
    assert mapping.apply(FORM_PAYLOAD, event).note is None
    write(tmp_path, "form.json", FORM_DOCUMENT)
    assert load_mappings(str(tmp_path), None, None, {"form": _Sender()})["form"].apply(FORM_PAYLOAD).note is None


@pytest.mark.parametrize("job, sent", [(101, "sx-job-1"), ("101", "sx-job-1"), ("999", None), (None, None)])
def test_job_id_is_sent_only_for_a_job_in_the_table(tmp_path, job, sent):
    write(tmp_path, "x.json", {**MINIMAL, "root": "candidate", "job": {"path": "job.id", "table": {"101": "sx-job-1"}}})
    payload = {"candidate": {"first_name": "Ada"}, "job": {"id": job}}
    assert load_mappings(str(tmp_path), None, None, SOURCES)["x"].apply(payload).update.get("job_id") == sent

