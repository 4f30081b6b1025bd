"""End to end for Tally, Jotform and Webflow: the real functions-framework server as a process, the
loopback fake Stardex and the loopback Secret Manager (every key read from it), as in test_e2e.

Jotform goes as real multipart, built by `requests`, with the token in the query string.
"""

from __future__ import annotations

import json

import pytest
import requests

from stardex_webhook.send_sample import SAMPLES_DIR
from tests.conftest import PERSON_ID as SAMPLE_PERSON_ID, SIGNING_KEYS, fixture_json
# The end-to-end fixtures, for this module's own server: the fake Stardex and Secret Manager, reset per test.
from tests.helpers.e2e import fakes, function_server, send, stardex  # noqa: F401  (fakes and stardex are fixtures)

JOTFORM_TOKEN = SIGNING_KEYS["jotform"]


@pytest.fixture(scope="module")
def served(fakes):
    with function_server(*fakes) as (base_url, log):
        yield base_url, log


@pytest.fixture
def server(served):
    return served[0]


def tally_body(person_id: str) -> dict:
    body = fixture_json("tally_form_response.json")
    for field in body["data"]["fields"]:
        if field["label"] == "stardex_person_id":
            field["value"] = person_id
    return body


def jotform_fields_without_person_id() -> dict:
    fields = fixture_json("jotform_submission.json")
    answers = json.loads(fields["rawRequest"])
    answers.pop("q11_stardex_person_id")
    return {**fields, "rawRequest": json.dumps(answers)}


def post_jotform(server: str, fields: dict, **where) -> requests.Response:
    """As Jotform posts: multipart/form-data (``files`` of parts without a file name)."""
    return requests.post(f"{server}/jotform", files={name: (None, value) for name, value in fields.items()},
                         timeout=30, **where)


def test_a_tally_response_with_the_hidden_person_id_fills_that_person(server, stardex):
    person_id = stardex.add_person(name="Sofia Marino")
    answer = send(server, "tally", tally_body(person_id))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    assert not any(request.path.endswith("/search") for request in stardex.requests), "the id needs no search"
    stored = stardex.person(person_id)
    assert stored["emails"] == [{"contact_data_type": "personal", "value": "sofia.marino@example.it"}]
    assert stored["phones"] == [{"contact_data_type": "mobile", "value": "+393330000000"}]
    assert (stored["current_company_name"], stored["current_job_title"]) == ("Umbrella S.p.A.", "Head of Data")
    assert stored["linkedin_url"] == "https://www.linkedin.com/in/sofia-marino-example"


def test_a_jotform_multipart_submission_with_the_token_in_the_url_updates_the_person_found_by_email(served, stardex):
    server, log = served
    person_id = stardex.add_person(name="Tomas Novak", emails=["tomas.novak@example.cz"])
    answer = post_jotform(server, jotform_fields_without_person_id(), params={"token": JOTFORM_TOKEN})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    assert stardex.requests[0].json["email"] == "tomas.novak@example.cz"
    stored = stardex.person(person_id)
    assert stored["emails"] == [{"contact_data_type": "work", "value": "tomas.novak@example.cz"}], "kept as stored"
    assert stored["phones"] == [{"contact_data_type": "mobile", "value": "+420601123456"}]
    assert stored["current_company_name"] == "Initech s.r.o."
    assert stored.get("address") is None, "under fill an address is not written: a read cannot show a stored one"
    assert JOTFORM_TOKEN not in log.read_text(), "the token in the URL is never logged"


def test_the_jotform_sample_as_send_sample_sends_it_multipart_with_a_bearer_token(server, stardex):
    person_id = stardex.add_person(name="Tomas Novak")
    sample = (SAMPLES_DIR / "jotform.json").read_bytes().replace(SAMPLE_PERSON_ID.encode(), person_id.encode())
    answer = send(server, "jotform", sample)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    assert [email["value"] for email in stardex.person(person_id)["emails"]] == ["tomas.novak@example.cz"]


@pytest.mark.parametrize(
    "where, reason",
    [
        ({"params": {"token": "not-the-token"}}, "bad_signature"),
        ({}, "missing_signature"),
        ({"params": {"key": JOTFORM_TOKEN}}, "missing_signature"),
        ({"headers": {"X-Token": JOTFORM_TOKEN}}, "missing_signature"),
    ],
)
def test_a_jotform_submission_without_the_right_token_is_401_and_never_reaches_stardex(server, stardex, where, reason):
    stardex.add_person(name="Tomas Novak", emails=["tomas.novak@example.cz"])
    answer = post_jotform(server, jotform_fields_without_person_id(), **where)
    assert (answer.status_code, answer.json()["reason"]) == (401, reason)
    assert stardex.requests == []


def test_a_jotform_body_that_is_not_multipart_is_400(server, stardex):
    answer = requests.post(f"{server}/jotform", params={"token": JOTFORM_TOKEN}, json={"rawRequest": "{}"}, timeout=30)
    assert (answer.status_code, answer.json()["reason"]) == (400, "invalid_form")
    assert stardex.requests == []


def test_a_webflow_submission_with_the_person_id_field_fills_that_person(server, stardex):
    person_id = stardex.add_person(name="Kai Tanaka", emails=["kai@hooli-example.jp"])
    body = fixture_json("webflow_form_submission.json")
    body["payload"]["data"]["stardex_person_id"] = person_id
    answer = send(server, "webflow", body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["person_id"]) == ("updated", person_id)
    stored = stardex.person(person_id)
    assert stored["emails"] == [{"contact_data_type": "work", "value": "kai@hooli-example.jp"},
                                {"contact_data_type": "personal", "value": "kai.tanaka@example.jp"}]
    assert stored["phones"] == [{"contact_data_type": "mobile", "value": "818012345678"}], "a number, sent as text"
    assert stored["current_company_name"] == "Hooli KK"


def test_an_unsigned_webflow_submission_is_401(server, stardex):
    answer = requests.post(f"{server}/webflow", json=fixture_json("webflow_form_submission.json"), timeout=30)
    assert (answer.status_code, answer.json()["reason"]) == (401, "missing_signature")
    assert stardex.requests == []
