"""End to end for Lever, Ashby and Workable: the real functions-framework server as a process, the
fake Stardex holding the person, the fake Secret Manager holding every key (the senders' API keys
too), and a loopback fake of Lever's and Ashby's APIs that the follow-up reads call over HTTP.
"""

from __future__ import annotations

import pytest
import requests

from tests.helpers.ats_a import basic_auth
from tests.conftest import fixture_json
from tests.fakes.fake_ats_a_api import FakeAtsApi
from tests.helpers.e2e import PROJECT, fakes, function_server, send  # noqa: F401 (fakes is a fixture)

LEVER_API_KEY = "e2e-lever-api-key"
ASHBY_API_KEY = "e2e-ashby-api-key"


@pytest.fixture(scope="module")
def ats_api():
    with FakeAtsApi(LEVER_API_KEY, ASHBY_API_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(fakes, ats_api):
    stardex, secret_manager = fakes
    overrides = {"LEVER_API_BASE": ats_api.lever_base, "ASHBY_API_BASE": ats_api.ashby_base}
    for name, key in (("lever", LEVER_API_KEY), ("ashby", ASHBY_API_KEY)):
        secret = f"{PROJECT}/secrets/{name}-api-key"
        secret_manager.set(secret, key)
        overrides[f"{name.upper()}_API_KEY_SECRET"] = f"{secret}/versions/latest"
    with function_server(stardex, secret_manager, **overrides) as (base_url, _log):
        yield base_url


@pytest.fixture
def world(fakes, ats_api):
    stardex = fakes[0]
    stardex.reset()
    ats_api.reset()
    yield stardex, ats_api
    stardex.reset()
    ats_api.reset()


def test_a_lever_stage_change_reads_the_opportunity_and_updates_the_person(server, world):
    stardex, ats_api = world
    ats_api.add_opportunity(fixture_json("lever_opportunity.json")["data"])
    person_id = stardex.add_person(name="Priya R.", emails=[{"contact_data_type": "personal", "value": "priya.raman@example.net"}])
    answer = send(server, "lever", fixture_json("lever_candidateStageChange.json"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    (read,) = ats_api.requests
    assert (read.method, read.path) == ("GET", "/lever/v1/opportunities/6a1b2c3d-aaaa-bbbb-cccc-0123456789ab")
    assert read.headers["Authorization"] == basic_auth(LEVER_API_KEY)
    stored = stardex.person(person_id)
    assert (stored["name"], stored["first_name"], stored["last_name"]) == ("Priya Raman", "Priya", "Raman")
    assert stored["address"] == "Manchester, UK"
    assert [email["value"] for email in stored["emails"]] == ["priya.raman@example.net", "praman@initech-example.com"]
    assert [phone["value"] for phone in stored["phones"]] == ["+447911123456", "+442079460018"]


def test_an_ashby_application_reads_candidate_info_and_updates_the_person(server, world):
    stardex, ats_api = world
    ats_api.add_candidate(fixture_json("ashby_candidate_info.json")["results"])
    person_id = stardex.add_person(name="Jonas Weber", emails=["jonas.weber@example.net"])
    answer = send(server, "ashby", fixture_json("ashby_applicationSubmit.json"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    (read,) = ats_api.requests
    assert (read.method, read.path, read.json) == ("POST", "/ashby/candidate.info", {"id": "0d8f2c1e-5b6a-4c3d-9e8f-7a6b5c4d3e2f"})
    assert read.headers["Authorization"] == basic_auth(ASHBY_API_KEY)
    stored = stardex.person(person_id)
    assert (stored["current_company_name"], stored["current_job_title"]) == ("Fabrikam GmbH", "Senior Product Designer")
    assert stored["linkedin_url"] == "https://www.linkedin.com/in/jonas-weber-example"
    assert {email["value"] for email in stored["emails"]} >= {"j.weber@fabrikam-example.de", "jonas.weber@example.net"}


def test_a_workable_hire_updates_the_person_without_any_read(server, world):
    stardex, ats_api = world
    person_id = stardex.add_person(name="Aisha Bello", emails=["aisha.bello@example.com"], current_job_title="Engineer")
    answer = send(server, "workable", fixture_json("workable_candidate_moved.json"))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    assert ats_api.requests == []
    stored = stardex.person(person_id)
    assert (stored["current_job_title"], stored["current_company_name"]) == ("Backend Engineer", "Contoso Pay")
    assert stored["linkedin_headline"] == "Backend Engineer at Contoso Pay"


def test_lever_s_api_down_is_503_and_stardex_is_not_touched(server, world):
    stardex, ats_api = world
    ats_api.down = True
    answer = send(server, "lever", fixture_json("lever_candidateHired.json"))
    assert (answer.status_code, answer.json()["reason"]) == (503, "sender_api_unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
    assert len(ats_api.requests) >= 2, "the read is retried within the deadline"
    assert stardex.requests == []


def test_an_ashby_candidate_unknown_to_ashby_is_422(server, world):
    stardex, _ = world
    answer = send(server, "ashby", fixture_json("ashby_candidateHire.json"))
    assert (answer.status_code, answer.json()["reason"]) == (422, "sender_resource_not_found")
    assert stardex.requests == []


def test_lever_s_unsigned_verification_call_is_200_through_the_server(server, world):
    answer = requests.post(f"{server}/lever", json={"event": "candidateStageChange", "data": {}}, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ignored", "reason": "ping"})
