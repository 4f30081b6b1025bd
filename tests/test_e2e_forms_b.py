"""End to end for Fillout, HubSpot and Google Forms: the real functions-framework server, the fake
Stardex and the fake Secret Manager of tests/test_e2e.py. Each tool's submission ends ``updated``;
HubSpot's is signed over the URL the server is reached at, and the Google Forms one is sent by the
shipped Apps Script itself (under Node), including a send kept while Stardex was down and resent
by the retry trigger; ``send_sample`` sends each shipped sample as its sender would."""

from __future__ import annotations

import json

import pytest
import requests

from stardex_webhook.send_sample import main as send_sample, signed_request
from tests.conftest import SIGNING_KEYS, fixture_bytes
from tests.helpers.e2e import fakes, patches, server, stardex  # noqa: F401 (fixtures)
from tests.helpers.apps_script import PENDING, run_script

SAMPLE_PERSON = "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"  # whom the shipped samples name


def test_a_fillout_submission_with_its_token_in_the_url_updates_the_person(server, stardex):
    person_id = stardex.add_person(name="Ines Garcia", emails=["ines.garcia@example.es"])
    answer = requests.post(f"{server}/fillout", params={"token": SIGNING_KEYS["fillout"]},
                           data=fixture_bytes("fillout_submission.json"), headers={"Content-Type": "application/json"},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    stored = stardex.person(person_id)
    assert (stored["current_company_name"], stored["current_job_title"]) == ("Initech Iberia", "Backend Engineer")
    assert [phone["value"] for phone in stored["phones"]] == ["+34600000111"]


def test_a_fillout_submission_without_its_token_is_refused(server, stardex):
    answer = requests.post(f"{server}/fillout", params={"token": "guessed"}, data=fixture_bytes("fillout_submission.json"),
                           timeout=30)
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")
    assert stardex.requests == []


def test_a_hubspot_workflow_webhook_signed_over_the_servers_url_updates_the_person(server, stardex):
    person_id = stardex.add_person(name="Owen Price", emails=["owen.price@example.co.uk"])
    url = f"{server}/hubspot?portalId=62515"
    headers, body = signed_request("hubspot", fixture_bytes("hubspot_workflow_webhook.json"), SIGNING_KEYS["hubspot"],
                                   url=url)
    answer = requests.post(url, data=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    stored = stardex.person(person_id)
    assert (stored["current_company_name"], stored["linkedin_url"]) == (
        "Vandelay Industries", "https://linkedin.com/in/owen-price-example")


def test_a_hubspot_request_signed_for_another_url_is_refused(server, stardex):
    headers, body = signed_request("hubspot", fixture_bytes("hubspot_workflow_webhook.json"), SIGNING_KEYS["hubspot"],
                                   url="https://elsewhere.example.com/hubspot")
    answer = requests.post(f"{server}/hubspot", data=body, headers=headers, timeout=30)
    assert (answer.status_code, answer.json()["reason"]) == (401, "bad_signature")


def test_the_apps_script_sends_a_google_forms_response_that_updates_the_person(server, stardex):
    person_id = stardex.add_person(name="Nadia Haddad", emails=["nadia.haddad@example.com"])
    config = {"STARDEX_WEBHOOK_URL": f"{server}/google-forms", "STARDEX_WEBHOOK_KEY": SIGNING_KEYS["google-forms"]}
    result = run_script("sendFormResponse", properties=config)  # no planned answer: really sent
    assert result["error"] is None, result
    assert result["answers"] == [{"status": 200}]
    assert result["properties"] == config, "nothing is kept"
    (patch,) = patches(stardex)
    assert patch.path == f"/v1/persons/{person_id}"
    stored = stardex.person(person_id)
    assert (stored["current_company_name"], stored["current_job_title"]) == ("Umbrella Labs – Beyrouth", "ML Engineer")
    assert [email["value"] for email in stored["emails"]] == ["nadia.haddad@example.com", "n.haddad@example.org"]


def test_a_response_sent_while_stardex_is_down_is_kept_and_resent_by_the_retry_trigger(server, stardex):
    person_id = stardex.add_person(name="Nadia Haddad", emails=["nadia.haddad@example.com"])
    config = {"STARDEX_WEBHOOK_URL": f"{server}/google-forms", "STARDEX_WEBHOOK_KEY": SIGNING_KEYS["google-forms"]}
    stardex.down = True
    failed = run_script("sendFormResponse", properties=config)
    assert failed["answers"] == [{"status": 503}] and failed["error"] is None
    assert json.loads(failed["properties"][PENDING])["last"] == "HTTP 503 stardex_unavailable"
    assert patches(stardex) == []

    stardex.down = False
    resent = run_script("retryPendingSends", properties=failed["properties"])
    assert resent["answers"] == [{"status": 200}] and resent["error"] is None
    assert PENDING not in resent["properties"]
    assert stardex.person(person_id)["current_job_title"] == "ML Engineer"


@pytest.mark.parametrize("source", ["fillout", "hubspot", "google-forms"])
def test_send_sample_sends_the_shipped_sample_as_its_sender_would(server, stardex, capsys, source):
    person_id = stardex.add_person(id=SAMPLE_PERSON, name="Chidi Okafor", emails=["chidi.okafor@example.com"])
    assert send_sample([source, "--url", server, "--key", SIGNING_KEYS[source]]) == 0, capsys.readouterr().out
    answer = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert (answer["status"], answer["person_id"]) == ("updated", person_id)
    assert stardex.person(person_id)["current_job_title"] == "Platform Engineer"
