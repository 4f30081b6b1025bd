"""End to end for stages and custom fields: the real functions-framework server, the loopback fake
Stardex (its jobs, pipelines and custom-field definitions) and the loopback Secret Manager, with
mapping files of one's own in ``MAPPINGS_DIR``: a Greenhouse stage table and Typeform custom fields.
"""

from __future__ import annotations

import json

import pytest

from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR
from tests.conftest import fixture_json
from tests.helpers.e2e import fakes, function_server, send, typeform_body  # noqa: F401  (fakes is a fixture)

JOB = "7b0c5a52-3f1e-4c8a-9d2b-1e6f0a9c4d11"
NOTICE, SKILLS, START = "0c0f0000-0000-4000-8000-000000000001", "0c0f0000-0000-4000-8000-000000000005", \
    "0c0f0000-0000-4000-8000-000000000003"
GREENHOUSE_STAGES = {
    "events": ["candidate_stage_change"], "job": "payload.application.jobs[0].id", "jobs": {"300112": JOB},
    "stage": "payload.application.current_stage.name", "occurred_at": "payload.application.last_activity_at",
    "table": {"Application Review": "Screen", "Onsite": "Interview", "Offer": "Offer"},
}
TYPEFORM_CUSTOM_FIELDS = {
    "Notice period": {"path": "answers.notice_period.text", "transforms": ["trim"]},
    "Skills": {"path": "answers.skills.choices.labels"},
    "Start date": {"path": "answers.start_date.date"},
}


@pytest.fixture(scope="module")
def server(fakes, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("mappings")
    for source, section, value in (("greenhouse", "stages", GREENHOUSE_STAGES),
                                   ("typeform", "custom_fields", TYPEFORM_CUSTOM_FIELDS)):
        with open(f"{BUILTIN_MAPPINGS_DIR}/{source}.json", encoding="utf-8") as handle:
            document = {**json.load(handle), section: value}
        (folder / f"{source}.json").write_text(json.dumps(document))
    with function_server(*fakes, MAPPINGS_DIR=str(folder)) as (base_url, _log):
        yield base_url


@pytest.fixture
def stardex(fakes):  # noqa: F811
    fake = fakes[0]
    fake.reset()
    fake.add_job("Senior Data Engineer", id=JOB)
    fake.add_custom_field("Notice period", "text", id=NOTICE)
    fake.add_custom_field("Skills", "multi-select", ("Python", "Go", "SQL"), id=SKILLS)
    fake.add_custom_field("Start date", "date", id=START)
    yield fake
    fake.reset()


def stage_change(stage: str, when: str) -> dict:
    body = fixture_json("greenhouse_hire_candidate.json")
    body["action"] = "candidate_stage_change"
    body["payload"]["application"].update(current_stage={"id": 71416, "name": stage}, last_activity_at=when)
    return body


def moves(fake) -> list:
    return [request.json for request in fake.requests if request.path == "/v1/candidates/update-stage"]


def test_a_greenhouse_stage_change_moves_the_candidate_once_and_never_back(server, stardex):
    person_id = stardex.add_person(name="Marta Quintal", emails=["marta.quintal@example.org"])
    answer = send(server, "greenhouse", stage_change("Onsite", "2026-04-01T10:00:00Z"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["stage"]) == ("updated", "moved")
    assert "job_id" in answer.json()["fields"], "the person is made a candidate on the job first"
    assert moves(stardex) == [{"job_id": JOB, "candidate_email": "marta.quintal@example.org", "stage_name": "Interview"}]
    (candidate,) = stardex.person(person_id)["candidates"]
    assert (candidate["job_id"], candidate["current_pipeline_stage_name"]) == (JOB, "Interview")

    again = send(server, "greenhouse", stage_change("Onsite", "2026-04-01T10:00:00Z"))
    assert (again.json()["status"], again.json()["stage"]) == ("ignored", "unchanged")
    assert len(moves(stardex)) == 1, "Greenhouse's retry changes nothing twice"

    late = send(server, "greenhouse", stage_change("Application Review", "2026-03-30T09:00:00Z"))
    assert late.json()["stage"] == "older_event"
    assert len(moves(stardex)) == 1
    assert stardex.person(person_id)["candidates"][0]["current_pipeline_stage_name"] == "Interview"

    onward = send(server, "greenhouse", stage_change("Offer", "2026-04-03T10:00:00Z"))
    assert onward.json()["stage"] == "moved"
    assert moves(stardex)[-1] == {"job_id": JOB, "candidate_id": candidate["candidate_id"], "stage_name": "Offer"}
    assert stardex.person(person_id)["candidates"][0]["current_pipeline_stage_name"] == "Offer"


def test_a_typeform_submission_fills_the_custom_fields_named_in_the_mapping(server, stardex):
    person_id = stardex.add_person(name="Chidi Okafor")
    body = typeform_body(person_id)
    for ref, kind, value in (("notice_period", "text", " 3 months "), ("skills", "choices", {"labels": ["python", "SQL"]}),
                             ("start_date", "date", "2026-05-01")):
        body["form_response"]["answers"].append({"type": kind, kind: value,
                                                 "field": {"id": f"fld-{ref}", "type": "short_text", "ref": ref}})
    answer = send(server, "typeform", body)
    assert answer.status_code == 200, answer.text
    assert "custom_fields" in answer.json()["fields"]
    stored = {item["name"]: item["value"] for item in stardex.person(person_id)["custom_fields"]}
    assert stored == {"Notice period": "3 months", "Skills": ["Python", "SQL"], "Start date": "2026-05-01"}
    paths = [request.path for request in stardex.requests]
    assert paths[:2] == ["/v1/custom-fields/persons", f"/v1/persons/{person_id}"], "definitions, then the read fill needs"

    again = send(server, "typeform", body)
    assert again.json()["reason"] == "no_change", "fill: the fields now hold values"


def test_a_form_mapping_naming_a_field_stardex_lacks_is_refused_with_its_name(fakes, stardex, tmp_path):  # noqa: F811
    with open(f"{BUILTIN_MAPPINGS_DIR}/typeform.json", encoding="utf-8") as handle:
        document = {**json.load(handle), "custom_fields": {**TYPEFORM_CUSTOM_FIELDS, "Salary band": {"path": "answers.band.text"}}}
    (tmp_path / "typeform.json").write_text(json.dumps(document))
    person_id = stardex.add_person(name="Chidi Okafor")
    with function_server(*fakes, MAPPINGS_DIR=str(tmp_path)) as (base_url, _log):
        answer = send(base_url, "typeform", typeform_body(person_id))
    assert answer.status_code == 422, answer.text
    assert (answer.json()["reason"], answer.json()["field"]) == ("unknown_custom_field", "Salary band")
    assert "Salary band" in answer.json()["message"]
    assert [request.path for request in stardex.requests] == ["/v1/custom-fields/persons"], "nothing written"
