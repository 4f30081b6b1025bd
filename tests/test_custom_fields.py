"""Custom fields named by their Stardex names: resolved against ``GET /v1/custom-fields/persons``,
written as each field's type asks, under the write policy, and refused by name when Stardex lacks
the field.

A Typeform submission with five extra questions goes through the Typeform adapter and the built-in
Typeform mapping with a ``custom_fields`` section (loaded from a file, so the schema checks it), then
the delivery, against Stardex answered by ``responses``.
"""

from __future__ import annotations

import copy
import json

import pytest
import responses

from stardex_webhook.custom_fields import Definition, check, definitions_from, person_with, resolve
from stardex_webhook.records import NamedCustomFields
from stardex_webhook.custom_fields_check import main as custom_fields_main
from stardex_webhook.errors import ConfigurationError, Unprocessable
from stardex_webhook.fake_stardex import FakeStardex
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mapping_file
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, Headers
from tests.conftest import fixture_json
from tests.helpers.stardex_mock import API, Stardex, deliver, deliverer, mock  # noqa: F401  (mock is a fixture)
from tests.helpers.sandbox import call, fake, server  # noqa: F401  (fake and server are fixtures)

NOTICE, SALARY, START, RELOCATE, SKILLS, HEADCOUNT = (f"0c0f0000-0000-4000-8000-00000000000{n}" for n in range(1, 7))
DEFINITIONS = [
    {"id": NOTICE, "name": "Notice period", "description": None, "data_type": "text", "job_id": None, "list_id": None, "tags": []},
    {"id": SALARY, "name": "Expected salary", "description": None, "data_type": "number", "job_id": None, "list_id": None, "tags": []},
    {"id": START, "name": "Start date", "description": None, "data_type": "date", "job_id": None, "list_id": None, "tags": []},
    {"id": RELOCATE, "name": "Open to relocation", "description": None, "data_type": "single-select", "job_id": None,
     "list_id": None, "tags": [{"id": "t-1", "name": "Yes", "color": None, "description": None},
                               {"id": "t-2", "name": "No", "color": None, "description": None}]},
    {"id": SKILLS, "name": "Skills", "description": None, "data_type": "multi-select", "job_id": None, "list_id": None,
     "tags": [{"id": f"t-{name}", "name": name, "color": None, "description": None} for name in ("Python", "Go", "SQL")]},
    {"id": HEADCOUNT, "name": "Team size", "description": None, "data_type": "integer", "job_id": None, "list_id": None, "tags": []},
]
CUSTOM_FIELDS = {
    "Notice period": {"path": "answers.notice_period.text", "transforms": ["trim"]},
    "Expected salary": {"path": "answers.expected_salary.number || answers.expected_salary.text"},
    "Start date": {"path": "answers.start_date.date || answers.start_date.text"},
    "open to RELOCATION": {"path": "answers.relocation.boolean", "options": {"true": "Yes", "false": "No"}},
    "Skills": {"path": "answers.skills.choices.labels"},
    "Team size": {"path": "answers.team_size.number || answers.team_size.text"},
}
ANSWERS = {"notice_period": ("text", "3 months"), "expected_salary": ("number", 85000),
           "start_date": ("date", "2026-05-01"), "relocation": ("boolean", True),
           "skills": ("choices", {"labels": ["Python", "sql"]}), "team_size": ("number", 12)}
EXPECTED_ITEMS = [
    {"attribute_id": NOTICE, "value": "3 months"}, {"attribute_id": SALARY, "value": 85000},
    {"attribute_id": START, "value": "2026-05-01"}, {"attribute_id": RELOCATE, "value": "Yes"},
    {"attribute_id": SKILLS, "add_values": ["Python", "SQL"]}, {"attribute_id": HEADCOUNT, "value": 12},
]
CHIDI = {"id": "p-chidi", "name": "Chidi Okafor", "first_name": "Chidi", "last_name": "Okafor",
         "current_company_name": "Globex", "linkedin_public_id": "chidi-okafor-example", "current_job_title": "Engineer",
         "emails": [{"contact_data_type": "work", "value": "chidi.okafor@example.com"}],
         "phones": [{"contact_data_type": "mobile", "value": "+14155550123"}], "custom_fields": []}


class CatalogStardex(Stardex):
    """The delivery tests' Stardex plus ``GET /v1/custom-fields/persons``."""

    def __init__(self, mock_, *persons, definitions=DEFINITIONS):
        super().__init__(mock_, *persons)
        self.definitions = definitions
        mock_.add_callback(responses.GET, f"{API}/custom-fields/persons",
                           callback=lambda request: (self._record(request), self._ok(self.definitions))[1])

    def patches(self):
        return [body for call, body in zip(self.calls, self.bodies) if call[0] == "PATCH"]


def write_mapping(tmp_path, custom_fields=CUSTOM_FIELDS, **extra):
    with open(f"{BUILTIN_MAPPINGS_DIR}/typeform.json", encoding="utf-8") as handle:
        document = {**json.load(handle), "custom_fields": custom_fields, **extra}
    (tmp_path / "typeform.json").write_text(json.dumps(document))
    return load_mapping_file("typeform", str(tmp_path / "typeform.json"), None, "fill")


def submission(mapping, answers=ANSWERS, person_id=None):
    body = fixture_json("typeform_form_response.json")
    for ref, (kind, value) in answers.items():
        body["form_response"]["answers"].append({"type": kind, kind: copy.deepcopy(value),
                                                 "field": {"id": f"fld-{ref}", "type": "short_text", "ref": ref}})
    if person_id:
        body["form_response"]["hidden"]["stardex_person_id"] = person_id
    event = SOURCES["typeform"].parse(Delivery(Headers([]), json.dumps(body).encode(), 0.0))
    return mapping.apply(event.payload, event)


def sent_items(stardex):
    (patch,) = stardex.patches()
    return patch["custom_fields"]


def test_named_fields_are_resolved_to_attribute_ids_and_written_as_their_types_ask(mock, tmp_path):
    stardex = CatalogStardex(mock, CHIDI)
    answer = deliver(deliverer(), submission(write_mapping(tmp_path)))
    assert answer["status"] == "updated" and "custom_fields" in answer["fields"]
    assert sent_items(stardex) == EXPECTED_ITEMS
    assert stardex.calls[0] == ("GET", "/custom-fields/persons"), "names are resolved before anything is written"
    search = stardex.bodies[stardex.calls.index(("POST", "/persons/search"))]
    assert search["include"] == ["custom_fields"], "the search shows the person's values: fill needs no GET"


@pytest.mark.parametrize("ref, kind, value, item", [
    ("expected_salary", "text", "€85,000", {"attribute_id": SALARY, "value": 85000}),
    ("expected_salary", "number", 85000.5, {"attribute_id": SALARY, "value": 85000.5}),
    ("start_date", "text", "2026-05-01T09:30:00Z", {"attribute_id": START, "value": "2026-05-01"}),
    ("start_date", "text", "5 March 2026", {"attribute_id": START, "value": "2026-03-05"}),
    ("start_date", "text", "2026/03/05", {"attribute_id": START, "value": "2026-03-05"}),
    ("relocation", "boolean", False, {"attribute_id": RELOCATE, "value": "No"}),
    ("skills", "choices", {"labels": ["go", "Go", "SQL"]}, {"attribute_id": SKILLS, "add_values": ["Go", "SQL"]}),
    ("team_size", "text", "12", {"attribute_id": HEADCOUNT, "value": 12}),
    ("notice_period", "text", "  one   month ", {"attribute_id": NOTICE, "value": "one month"}),
])
def test_each_type_takes_common_inputs(mock, tmp_path, ref, kind, value, item):
    stardex = CatalogStardex(mock, CHIDI)
    deliver(deliverer(), submission(write_mapping(tmp_path), {ref: (kind, value)}))
    assert sent_items(stardex) == [item]


@pytest.mark.parametrize("ref, kind, value, field", [
    ("start_date", "text", "05/03/2026", "Start date"),
    ("start_date", "text", "next spring", "Start date"),
    ("expected_salary", "text", "lots", "Expected salary"),
    ("team_size", "number", 12.5, "Team size"),
    ("skills", "choices", {"labels": ["Python", "Cobol"]}, "Skills"),
    ("relocation", "boolean", None, None),  # no answer: nothing to refuse
    # Numbers no float or string holds: refused by name like any other misfit, never an error.
    pytest.param("team_size", "number", 10 ** 400, "Team size", id="huge-integer"),
    pytest.param("start_date", "date", {"year": 10 ** 400, "month": 1, "day": 1}, "Start date", id="huge-year"),
])
def test_a_value_that_does_not_fit_its_field_is_refused_with_the_fields_name(mock, tmp_path, ref, kind, value, field):
    stardex = CatalogStardex(mock, CHIDI)
    event = submission(write_mapping(tmp_path), {ref: (kind, value), "notice_period": ("text", "3 months")})
    if field is None:
        assert sent_items_after(stardex, event) == [{"attribute_id": NOTICE, "value": "3 months"}]
        return
    with pytest.raises(Unprocessable) as caught:
        deliver(deliverer(), event)
    assert caught.value.reason == "custom_field_invalid"
    assert [error["path"] for error in caught.value.extra["errors"]] == [f"custom_fields.{field}"]
    assert all(error["message"] for error in caught.value.extra["errors"])
    assert str(value) not in json.dumps(caught.value.body()), "the answer names the field, never the value"
    assert stardex.calls == [("GET", "/custom-fields/persons")], "refused before the person is looked up"


@pytest.mark.parametrize("name, value", [
    ("Notice period", 10 ** 400), ("Notice period", 10 ** 5000), ("Team size", 10 ** 400), ("Team size", "9" * 400),
    ("Start date", {"year": 10 ** 400, "month": 1, "day": 1}),
], ids=["text-1e400", "text-past-digit-limit", "integer-1e400", "integer-text-400-digits", "date-year-1e400"])
def test_a_number_no_float_holds_is_refused_by_the_fields_name(name, value):
    with pytest.raises(Unprocessable) as caught:
        resolve(NamedCustomFields({name: value}, (name,)), definitions_from(DEFINITIONS))
    assert caught.value.reason == "custom_field_invalid"
    assert [error["path"] for error in caught.value.extra["errors"]] == [f"custom_fields.{name}"]


def sent_items_after(stardex, event):
    deliver(deliverer(), event)
    return sent_items(stardex)


@pytest.mark.parametrize("name", ["Notice periodd", "Salary"])
def test_a_mapping_naming_a_field_stardex_lacks_is_refused_with_its_name(mock, tmp_path, name):
    stardex = CatalogStardex(mock, CHIDI)
    mapping = write_mapping(tmp_path, {**CUSTOM_FIELDS, name: {"path": "answers.nothing.text"}})
    with pytest.raises(Unprocessable) as caught:
        deliver(deliverer(), submission(mapping))
    assert (caught.value.reason, caught.value.extra["field"]) == ("unknown_custom_field", name)
    assert name in caught.value.message
    assert stardex.patches() == []


def test_an_options_table_naming_an_option_stardex_lacks_is_refused(mock, tmp_path):
    stardex = CatalogStardex(mock, CHIDI)
    fields = {**CUSTOM_FIELDS, "open to RELOCATION": {"path": "answers.relocation.boolean", "options": {"true": "Sure"}}}
    with pytest.raises(Unprocessable) as caught:
        deliver(deliverer(), submission(write_mapping(tmp_path, fields)))
    assert caught.value.reason == "custom_field_option_unknown" and "open to RELOCATION" in caught.value.message
    assert stardex.patches() == []


def test_the_definitions_are_read_once_per_instance(mock, tmp_path):
    stardex = CatalogStardex(mock, CHIDI)
    target, mapping = deliverer(memory_seconds=0), write_mapping(tmp_path)
    deliver(target, submission(mapping))
    deliver(target, submission(mapping, {"notice_period": ("text", "2 months")}))
    assert stardex.calls.count(("GET", "/custom-fields/persons")) == 1


def test_fill_writes_only_fields_the_person_has_no_value_in(mock, tmp_path):
    stored = {**CHIDI, "custom_fields": [{"attribute_id": NOTICE, "name": "Notice period", "value": "1 month"},
                                         {"attribute_id": SKILLS, "name": "Skills", "value": ["Go"]},
                                         {"attribute_id": SALARY, "name": "Expected salary", "value": None}]}
    stardex = CatalogStardex(mock, stored)
    deliver(deliverer(), submission(write_mapping(tmp_path)))
    assert sent_items(stardex) == [item for item in EXPECTED_ITEMS if item["attribute_id"] not in (NOTICE, SKILLS)]


def test_overwrite_sends_only_what_differs_and_only_the_missing_options(mock, tmp_path):
    stored = {**CHIDI, "custom_fields": [{"attribute_id": NOTICE, "value": "3 MONTHS"},
                                         {"attribute_id": SALARY, "value": 80000},
                                         {"attribute_id": SKILLS, "value": ["Python"]}]}
    stardex = CatalogStardex(mock, stored)
    deliver(deliverer(), submission(write_mapping(tmp_path, write_policy="overwrite")))
    items = {item["attribute_id"]: item for item in sent_items(stardex)}
    assert NOTICE not in items, "the same value (ignoring case) is not sent"
    assert items[SALARY] == {"attribute_id": SALARY, "value": 85000}
    assert items[SKILLS] == {"attribute_id": SKILLS, "add_values": ["SQL"]}, "add_values, never clear_all"


def test_a_repeated_submission_makes_no_patch(mock, tmp_path):
    stardex = CatalogStardex(mock, CHIDI)
    target, mapping = deliverer(memory_seconds=0), write_mapping(tmp_path)
    deliver(target, submission(mapping))
    assert deliver(target, submission(mapping))["reason"] == "no_change"
    assert len(stardex.patches()) == 1


def test_fill_with_a_person_id_reads_the_person_first(mock, tmp_path):
    stardex = CatalogStardex(mock, {**CHIDI, "custom_fields": [{"attribute_id": NOTICE, "value": "1 month"}]})
    deliver(deliverer(), submission(write_mapping(tmp_path), {"notice_period": ("text", "3 months"),
                                                              "team_size": ("number", 4)}, person_id="p-chidi"))
    assert stardex.calls[:2] == [("GET", "/custom-fields/persons"), ("GET", "/persons/p-chidi")]
    assert sent_items(stardex) == [{"attribute_id": HEADCOUNT, "value": 4}]


def test_fill_writes_nothing_a_read_cannot_show_empty(mock, tmp_path):
    unshown = {key: value for key, value in CHIDI.items() if key != "custom_fields"}
    stardex = CatalogStardex(mock, unshown)
    answer = deliver(deliverer(), submission(write_mapping(tmp_path), {"notice_period": ("text", "3 months")},
                                             person_id="p-chidi"))
    assert answer["reason"] == "no_change"
    assert stardex.patches() == []


def test_a_created_person_gets_its_custom_fields_in_the_patch_after_the_create(mock, tmp_path):
    stardex = CatalogStardex(mock)
    mapping = write_mapping(tmp_path, {"Notice period": CUSTOM_FIELDS["Notice period"]}, person={"create": True})
    answer = deliver(deliverer(), submission(mapping, {"notice_period": ("text", "3 months")}))
    assert answer["created"] is True and "custom_fields" in answer["fields"]
    assert stardex.patches() == [{"custom_fields": [{"attribute_id": NOTICE, "value": "3 months"}]}]


def test_the_check_finds_every_fault_a_mapping_has_against_the_definitions(tmp_path):
    fields = {**CUSTOM_FIELDS, "Salary": {"path": "a"}, "Notice period": {"path": "b", "options": {"x": "y"}},
              "Skills": {"path": "c", "options": {"py": "Python", "c": "C++"}}}
    (variant,) = write_mapping(tmp_path, fields).named_custom_fields()
    assert variant[0] == ""
    assert check(variant[1], definitions_from(DEFINITIONS)) == [
        "custom_fields.Notice period: has options, but Stardex's field is 'text'",
        "custom_fields.Notice period.options.x: 'y' is not an option of the field",
        "custom_fields.Skills.options.c: 'C++' is not an option of the field",
        "custom_fields.Salary: Stardex has no person custom field named 'Salary'",
    ]


def test_fields_of_one_job_or_list_and_unsupported_types_are_not_resolved():
    definitions = definitions_from([*DEFINITIONS, {"id": "x", "name": "Owner", "data_type": "team-member", "tags": []},
                                    {"id": "y", "name": "Job fit", "data_type": "text", "job_id": "j-1", "tags": []}])
    assert [item.name for item in definitions][-1] == "Owner"
    named = NamedCustomFields({}, ("Owner", "Job fit"))
    assert check(named, definitions) == [
        "custom_fields.Owner: the custom field 'Owner' is of type 'team-member', which is not written",
        "custom_fields.Job fit: Stardex has no person custom field named 'Job fit'",
    ]
    assert Definition("a", "b", "Single Select").kind == "single-select"


@pytest.mark.parametrize("spec", [{"path": "a", "value": 1}, {"transforms": ["trim"]}, {"path": "a", "options": {}}])
def test_a_malformed_custom_field_spec_stops_the_start(tmp_path, spec):
    with pytest.raises(ConfigurationError, match="custom_fields"):
        write_mapping(tmp_path, {"Notice period": spec})




@pytest.mark.parametrize("extra, code, lines", [
    ({}, 0, ["ok: every custom field 1 mapping section(s) name exists in Stardex (6 defined)"]),
    ({"Salary band": {"path": "a"}, "Skills": {"path": "b", "options": {"c": "C++"}}}, 1, [
        "mapping typeform: custom_fields.Skills.options.c: 'C++' is not an option of the field",
        "mapping typeform: custom_fields.Salary band: Stardex has no person custom field named 'Salary band'"]),
])
def test_the_check_command_reads_the_definitions_and_names_each_fault(tmp_path, capsys, extra, code, lines):
    write_mapping(tmp_path, {**CUSTOM_FIELDS, **extra})
    with FakeStardex(api_key="check-key") as fake:
        for definition in DEFINITIONS:
            fake.add_custom_field(definition["name"], definition["data_type"],
                                  tuple(tag["name"] for tag in definition["tags"]), id=definition["id"])
        environ = {"STARDEX_API_BASE": fake.base_url, "STARDEX_API_KEY": "check-key", "MAPPINGS_DIR": str(tmp_path)}
        assert custom_fields_main([], environ) == code
        assert [(request.method, request.path) for request in fake.requests] == [("GET", "/v1/custom-fields/persons")]
    assert capsys.readouterr().out.splitlines() == lines


def test_the_check_commands_report_stays_alone_on_stdout_when_stardex_needs_a_retry(tmp_path, capsys):
    write_mapping(tmp_path, CUSTOM_FIELDS)
    with FakeStardex(api_key="check-key") as fake:
        for definition in DEFINITIONS:
            fake.add_custom_field(definition["name"], definition["data_type"],
                                  tuple(tag["name"] for tag in definition["tags"]), id=definition["id"])
        fake.fail_next(503, times=1, retry_after=0)
        environ = {"STARDEX_API_BASE": fake.base_url, "STARDEX_API_KEY": "check-key", "MAPPINGS_DIR": str(tmp_path)}
        assert custom_fields_main([], environ) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == ["ok: every custom field 1 mapping section(s) name exists in Stardex (6 defined)"]
    [retry] = [json.loads(line) for line in printed.err.splitlines()]
    assert retry == {"severity": "INFO", "message": "stardex GET /custom-fields/persons: HTTP 503, retry 1 in 0.00s"}


# ---- the fake Stardex's custom fields, as the end-to-end tests meet them -------------------------

def test_the_fake_merges_custom_fields_attribute_by_attribute_and_shows_them_in_reads(fake):
    notice = fake.add_custom_field("Notice period", "text")
    skills = fake.add_custom_field("Skills", "multi-select", ("Python", "Go"))
    ada = fake.add_person(name="Ada", emails=["ada@example.org"])
    assert call(fake, "GET", "/custom-fields/persons").json()["data"][1]["tags"][0]["name"] == "Python"
    for body in ({"custom_fields": [{"attribute_id": notice, "value": "1 month"}, {"attribute_id": skills, "add_values": ["Go"]}]},
                 {"custom_fields": [{"attribute_id": skills, "add_values": ["Python", "Go"]}]}):
        assert call(fake, "PATCH", f"/persons/{ada}", body).status_code == 200
    shown = call(fake, "POST", "/persons/search", {"email": "ada@example.org", "include": ["custom_fields"]}).json()
    assert [(item["name"], item["value"]) for item in shown["data"][0]["custom_fields"]] == [
        ("Notice period", "1 month"), ("Skills", ["Go", "Python"])]
    assert call(fake, "GET", f"/persons/{ada}").json()["data"]["custom_fields"] == shown["data"][0]["custom_fields"]


@pytest.mark.parametrize("item", [
    {"attribute_id": "0c0f0000-0000-4000-8000-0000000000ff", "value": "x"},
    {"attribute_id": "SKILLS", "add_values": ["Cobol"]},
    {"attribute_id": "SKILLS", "value": "Go"},
    {"attribute_id": "START", "value": "05/03/2026"},
    {"attribute_id": "SIZE", "value": "twelve"},
    {"attribute_id": "SIZE", "value": 12, "colour": "red"},
])
def test_the_fake_refuses_a_custom_field_item_stardex_would_not_take(fake, item):
    ids = {"SKILLS": fake.add_custom_field("Skills", "multi-select", ("Go",)),
           "START": fake.add_custom_field("Start date", "date"), "SIZE": fake.add_custom_field("Team size", "integer")}
    ada = fake.add_person(name="Ada")
    item = {**item, "attribute_id": ids.get(item["attribute_id"], item["attribute_id"])}
    assert call(fake, "PATCH", f"/persons/{ada}", {"custom_fields": [item]}).status_code == 400
    assert fake.person(ada)["custom_fields"] == []


@pytest.mark.parametrize("odd", [5, 1.5, True])
def test_the_person_after_a_write_ignores_a_custom_fields_section_that_is_not_a_list(odd):
    """A search answering ``"custom_fields": 5`` is Stardex's oddity: once the PATCH is made it must not
    turn the answer into a 500 (the sender would retry a write already made, and 500 again)."""
    after = person_with({"id": "p-1", "custom_fields": odd}, [{"attribute_id": "cf-1", "value": "Senior"}])
    assert after["custom_fields"] == [{"attribute_id": "cf-1", "value": "Senior"}]


@pytest.mark.parametrize("tags", [5, True, 1.5])
def test_a_definition_whose_tags_are_not_a_list_has_no_options_and_is_no_500(tags):
    """``GET /v1/custom-fields/persons`` answering ``"tags": 5`` made every event of a mapping with named
    custom fields a 500 (each retry read the catalog again); now the field simply shows no options."""
    definitions = definitions_from([{"id": "cf-1", "name": "Level", "data_type": "single-select", "tags": tags}])
    assert definitions == [Definition("cf-1", "Level", "single-select", ())]
