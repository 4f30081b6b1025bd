"""End to end for SmartRecruiters, Teamtailor and Recruitee: the real functions-framework server as
a process, the loopback fake Stardex, the loopback Secret Manager (signing keys and the senders'
API keys come from it), and a loopback fake of SmartRecruiters' and Teamtailor's APIs that the
follow-up reads reach through ``<SOURCE>_API_BASE``.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from stardex_webhook.sources.smartrecruiters import signature_header
from tests.conftest import SIGNING_KEYS, fixture_bytes, fixture_json
from tests.fakes.fake_ats_b_api import FakeAtsApi
from tests.helpers.e2e import PROJECT, fakes, function_server, send  # noqa: F401  (fakes is a fixture)

SMARTRECRUITERS_API_KEY = "e2e-smartrecruiters-token"
TEAMTAILOR_API_KEY = "e2e-teamtailor-token"
API_KEY_SECRETS = {
    "SMARTRECRUITERS_API_KEY": (f"{PROJECT}/secrets/smartrecruiters-api-key", SMARTRECRUITERS_API_KEY),
    "TEAMTAILOR_API_KEY": (f"{PROJECT}/secrets/teamtailor-api-key", TEAMTAILOR_API_KEY),
}


@pytest.fixture(scope="module")
def ats_api():
    with FakeAtsApi(SMARTRECRUITERS_API_KEY, TEAMTAILOR_API_KEY) as fake:
        candidate = fixture_json("smartrecruiters_candidate.json")
        fake.smartrecruiters_candidates[candidate["id"]] = candidate
        fake.teamtailor_candidates["48213"] = fixture_json("teamtailor_candidate_api.json")["data"]["attributes"]
        yield fake


@pytest.fixture(scope="module")
def server(fakes, ats_api):  # noqa: F811
    stardex, secret_manager = fakes
    for secret, value in API_KEY_SECRETS.values():
        secret_manager.set(secret, value)
    settings = {f"{name}_SECRET": f"{secret}/versions/latest" for name, (secret, _) in API_KEY_SECRETS.items()}
    # Each test resets the fake Stardex, which the server's person memory would not know of.
    with function_server(stardex, secret_manager, SMARTRECRUITERS_API_BASE=ats_api.smartrecruiters_base,
                         TEAMTAILOR_API_BASE=ats_api.teamtailor_base, PERSON_MEMORY_SECONDS="0",
                         **settings) as (base_url, _log):
        yield base_url


@pytest.fixture
def stardex(fakes, ats_api):  # noqa: F811
    fake = fakes[0]
    fake.reset()
    ats_api.reset()
    yield fake
    fake.reset()


def test_a_smartrecruiters_application_reads_the_candidate_and_updates_the_person_with_202(server, stardex, ats_api):
    person_id = stardex.add_person(name="Amara N.", emails=[{"contact_data_type": "work", "value": "amara.nwosu@example.com"}])
    answer = send(server, "smartrecruiters", fixture_bytes("smartrecruiters_application.created.json"))
    assert answer.status_code == 202, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)

    (read,) = ats_api.requests
    assert read.path == "/smartrecruiters/candidates/9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
    assert read.headers["x-smarttoken"] == SMARTRECRUITERS_API_KEY
    stored = stardex.person(person_id)
    assert (stored["current_job_title"], stored["current_company_name"]) == ("Data Engineer", "Globex Example Ltd")
    assert stored["emails"] == [{"contact_data_type": "work", "value": "amara.nwosu@example.com"}], "kept as stored"
    assert [phone["value"] for phone in stored["phones"]] == ["+447911123456"]


def test_a_smartrecruiters_candidate_event_follows_its_link_under_the_configured_base(server, stardex, ats_api):
    person_id = stardex.add_person(name="Amara Nwosu", emails=["amara.nwosu@example.com"])
    body = b'{"id":"9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"}'
    headers = {"event-id": "e2e-1", "event-name": "candidate.updated", "event-version": "v201910",
               "Link": f"<{ats_api.smartrecruiters_base}/candidates/9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c>; rel=self",
               "smartrecruiters-timestamp": str(int(time.time())), "Content-Type": "application/json"}
    headers.update(signature_header(SIGNING_KEYS["smartrecruiters"], headers, body))
    answer = requests.post(f"{server}/smartrecruiters", data=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    assert stardex.person(person_id)["current_job_title"] == "Data Engineer"


def test_the_smartrecruiters_handshake_echoes_its_secret_through_the_server(server, stardex, ats_api):
    answer = requests.post(f"{server}/smartrecruiters", headers={"X-Hook-Secret": "activation-0c1d2e3f"}, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["X-Hook-Secret"] == "activation-0c1d2e3f"
    assert answer.json() == {"status": "ignored", "reason": "handshake"}
    assert stardex.requests == [] and ats_api.requests == []


def test_a_teamtailor_job_application_reads_its_candidate_and_updates_the_person(server, stardex, ats_api):
    person_id = stardex.add_person(name="Lena S.", emails=["lena.svensson@example.se"])
    answer = send(server, "teamtailor", fixture_bytes("teamtailor_job_application.create.json"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["person_id"] == person_id
    (read,) = ats_api.requests
    assert read.path == "/teamtailor/v1/candidates/48213"
    assert (read.headers["authorization"], read.headers["x-api-version"]) == (f"Token token={TEAMTAILOR_API_KEY}", "20240404")
    stored = stardex.person(person_id)
    assert stored["name"] == "Lena Svensson"
    assert stored["linkedin_url"] == "https://www.linkedin.com/in/lena-svensson-example"


def test_a_teamtailor_candidate_event_needs_no_read(server, stardex, ats_api):
    person_id = stardex.add_person(name="Lena S.", emails=["lena.svensson@example.se"])
    answer = send(server, "teamtailor", fixture_bytes("teamtailor_candidate.create.json"))
    assert answer.status_code == 200, answer.text
    assert stardex.person(person_id)["name"] == "Lena Svensson"
    assert ats_api.requests == []


def test_a_recruitee_move_updates_the_person_and_its_test_request_answers_200(server, stardex):
    person_id = stardex.add_person(name="Pieter", emails=["pieter.devries@example.nl"])
    answer = send(server, "recruitee", fixture_bytes("recruitee_candidate_moved.json"))
    assert answer.status_code == 200, answer.text
    stored = stardex.person(person_id)
    assert stored["name"] == "Pieter de Vries"
    assert [email["value"] for email in stored["emails"]] == ["pieter.devries@example.nl", "p.devries@work-example.nl"]
    test = requests.post(f"{server}/recruitee", data=json.dumps({"test": True}), timeout=30,
                         headers={"Content-Type": "application/json", "User-Agent": "Recruitee-Webhooks"})
    assert (test.status_code, test.json()) == (200, {"status": "ignored", "reason": "test"})
