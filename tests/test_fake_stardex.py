"""The loopback fake keeps to the documented Stardex API, so end-to-end tests can trust it.

Plain ``requests`` calls, not our client: the fake is checked on its own terms.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from stardex_webhook.fake_stardex import FakeStardex
from tests.helpers.sandbox import call, fake, server  # noqa: F401  (fake and server are fixtures)


def test_base_url_is_loopback_v1(fake):
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.base_url.endswith("/v1")


def test_wrong_key_is_401_invalid_api_key_envelope(fake):
    answer = call(fake, "GET", "/persons/x", key="wrong")
    assert answer.status_code == 401
    assert answer.json() == {"success": False, "error": {
        "code": "INVALID_API_KEY", "message": "The provided API key is invalid or expired"}}


def test_rate_limit_answers_429_with_headers_and_body(fake):
    fake.rate_limit = 3
    remaining = [call(fake, "POST", "/persons/search", {}).headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]

    refused = call(fake, "POST", "/persons/search", {})

    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert abs(int(refused.headers["X-RateLimit-Reset"]) - (time.time() + wait)) <= 2
    body = refused.json()
    assert body["success"] is False
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"]["retry_after_seconds"] == wait
    assert body["error"]["limit"] == 3
    assert body["error"]["reset_at"] == int(refused.headers["X-RateLimit-Reset"])


def test_rate_limit_window_slides():
    now = [1000.0]
    with FakeStardex(api_key="k", rate_limit=2, window_seconds=60, clock=lambda: now[0]) as fake:
        assert [call(fake, "POST", "/persons/search", {}).status_code for _ in range(3)] == [200, 200, 429]
        now[0] += 59.9
        assert call(fake, "POST", "/persons/search", {}).status_code == 429
        now[0] += 0.2
        assert call(fake, "POST", "/persons/search", {}).status_code == 200


def test_the_reset_header_is_whole_seconds_unless_its_step_is_scaled_with_the_window():
    now = [1000.0]
    with FakeStardex(api_key="k", rate_limit=5, window_seconds=5, clock=lambda: now[0]) as fake:
        whole = call(fake, "POST", "/persons/search", {}).headers["X-RateLimit-Reset"]
        fake.reset_step_seconds = 5 / 60
        raw = call(fake, "POST", "/persons/search", {}).headers["X-RateLimit-Reset"]
        scaled = float(raw)

    assert whole == str(int(whole)) and 0 < int(whole) - time.time() <= 6
    # A multiple of the scaled step (1/12 s), written with its fraction: one such multiple in twelve
    # is a whole second too, so "not a whole number" failed one run in twelve.
    assert 0 < scaled - time.time() <= 5 + 5 / 60 and "." in raw and abs(scaled * 12 - round(scaled * 12)) < 0.02


def test_get_returns_the_documented_person_shape(fake):
    person_id = fake.add_person(name="Ada Lovelace", emails=["ada@example.com"], phones=["+442079460958"],
                                linkedin_url="https://www.linkedin.com/in/ada-l", current_job_title="Analyst")

    answer = call(fake, "GET", f"/persons/{person_id}")

    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True
    person = body["data"]
    assert person["id"] == person_id
    assert (person["first_name"], person["last_name"]) == ("Ada", "Lovelace")
    assert person["linkedin_public_id"] == "ada-l"
    assert "linkedin_url" not in person  # reads give only the public id
    assert person["emails"] == [{"contact_data_type": "work", "value": "ada@example.com"}]
    assert person["phones"] == [{"contact_data_type": "mobile", "value": "+442079460958"}]


def test_unknown_person_is_a_fastify_404(fake):
    answer = call(fake, "GET", "/persons/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404
    assert answer.json() == {"message": "Person not found", "error": "Not Found", "statusCode": 404}


def test_patch_replaces_contact_lists_and_sets_fields(fake):
    person_id = fake.add_person(
        name="Ada Lovelace",
        emails=["ada@example.com", {"contact_data_type": "personal", "value": "ada@home.test"}],
        phones=["+442079460958"],
        current_job_title="Analyst",
    )

    answer = call(fake, "PATCH", f"/persons/{person_id}", {
        "emails": [{"contact_data_type": "work", "value": "ada@new.test"}],
        "phone_numbers": [{"contact_data_type": "work", "value": "+15555550100"}],
        "company_name": "Analytical Engines",
    })

    assert answer.status_code == 200
    assert answer.json() == {"success": True, "data": {"message": "Person updated successfully"}}
    stored = fake.person(person_id)
    assert stored["emails"] == [{"contact_data_type": "work", "value": "ada@new.test"}]  # the others are gone
    assert stored["phones"] == [{"contact_data_type": "work", "value": "+15555550100"}]
    assert stored["current_company_name"] == "Analytical Engines"
    assert stored["current_job_title"] == "Analyst"  # not sent, so kept


@pytest.mark.parametrize("body", [
    {"favourite_colour": "blue"},
    {"emails": [{"contact_data_type": "work"}]},
    {"emails": ["ada@example.com"]},
    {"phone_numbers": [{"contact_data_type": "work", "value": ""}]},
    {"name": 42},
])
def test_patch_refuses_invalid_bodies_with_400(fake, body):
    person_id = fake.add_person(name="Ada Lovelace", emails=["ada@example.com"])
    answer = call(fake, "PATCH", f"/persons/{person_id}", body)
    assert answer.status_code == 400
    assert answer.json()["success"] is False
    assert answer.json()["error"]["code"] == "VALIDATION_ERROR"
    assert fake.person(person_id)["emails"] == [{"contact_data_type": "work", "value": "ada@example.com"}]


def test_search_matches_any_email_case_insensitively_and_linkedin_exactly(fake):
    ada = fake.add_person(name="Ada", emails=["ada@work.test", "Ada@Home.test"],
                          linkedin_url="https://www.linkedin.com/in/ada")
    fake.add_person(name="Bob", emails=["bob@work.test"])

    by_email = call(fake, "POST", "/persons/search", {"email": "ADA@home.TEST", "limit": 2}).json()
    by_url = call(fake, "POST", "/persons/search", {"linkedin_url": "https://www.linkedin.com/in/ada"}).json()
    near_url = call(fake, "POST", "/persons/search", {"linkedin_url": "https://www.linkedin.com/in/ad"}).json()

    assert [p["id"] for p in by_email["data"]] == [ada]
    assert by_email["meta"] == {"total": 1, "offset": 0, "limit": 2}
    assert [p["id"] for p in by_url["data"]] == [ada]
    assert near_url["data"] == [] and near_url["meta"]["total"] == 0


def test_search_limit_caps_the_page_but_not_the_total(fake):
    for name in ("A", "B", "C"):
        fake.add_person(name=name, emails=["shared@example.com"])
    answer = call(fake, "POST", "/persons/search", {"email": "shared@example.com", "limit": 2}).json()
    assert len(answer["data"]) == 2
    assert answer["meta"]["total"] == 3


def test_create_needs_name_and_linkedin_url_and_returns_the_id(fake):
    assert call(fake, "POST", "/persons", {"linkedin_url": "https://www.linkedin.com/in/x"}).status_code == 400
    assert call(fake, "POST", "/persons", {"name": "X"}).status_code == 400

    answer = call(fake, "POST", "/persons", {
        "name": "Grace Hopper", "linkedin_url": "https://www.linkedin.com/in/grace",
        "emails": ["grace@navy.test"], "phone_numbers": ["+15555550101"],
    })

    assert answer.status_code == 201
    created = answer.json()["data"]
    stored = fake.person(created["id"])
    assert stored["name"] == "Grace Hopper"
    assert [e["value"] for e in stored["emails"]] == ["grace@navy.test"]
    assert [p["value"] for p in stored["phones"]] == ["+15555550101"]
    again = call(fake, "POST", "/persons", {"name": "Grace", "linkedin_url": "https://www.linkedin.com/in/grace"})
    assert again.json()["data"]["id"] == created["id"]  # de-duplicated by LinkedIn URL


def test_down_fail_next_and_the_request_log(fake):
    fake.down = True
    assert call(fake, "GET", "/persons/x").status_code == 503
    fake.down = False
    fake.fail_next(500, times=2, retry_after=3)
    failed = [call(fake, "POST", "/persons/search", {"email": "a@b.test"}) for _ in range(2)]
    assert [(a.status_code, a.headers["Retry-After"]) for a in failed] == [(500, "3"), (500, "3")]
    assert failed[0].json()["statusCode"] == 500
    assert call(fake, "POST", "/persons/search", {"email": "a@b.test"}).status_code == 200

    method, path, body, headers = fake.requests[-1]
    assert (method, path, body) == ("POST", "/v1/persons/search", {"email": "a@b.test"})
    assert headers["Authorization"] == "Bearer fake-key"
    assert len(fake.requests) == 4


def test_unknown_route_is_a_fastify_404(fake):
    answer = call(fake, "GET", "/jobs")
    assert answer.status_code == 404
    assert answer.json()["statusCode"] == 404


@pytest.mark.parametrize("misbehave, status, header", [
    ("redirect-302", 302, ("Location", "http://elsewhere.test/v1/persons/search")),
    ("redirect-307", 307, ("Location", "http://elsewhere.test/v1/persons/search")),
    ("redirect-loop", 301, ("Location", "{base}/persons/search")),
    ("retry-after-day", 429, ("Retry-After", "86400")),
    ("retry-after-negative", 429, ("Retry-After", "-30")),
    ("html", 200, ("Content-Type", "text/html")),
])
def test_misbehaviours_answer_as_broken_servers_do(fake, misbehave, status, header):
    fake.misbehave, fake.redirect_to = misbehave, "http://elsewhere.test"
    answer = requests.post(fake.base_url + "/persons/search", json={}, allow_redirects=False, timeout=5,
                           headers={"Authorization": f"Bearer {fake.api_key}"})
    assert answer.status_code == status
    assert answer.headers[header[0]] == header[1].format(base=fake.base_url)


def test_broken_bodies_fail_as_they_would_from_a_real_server(fake):
    for misbehave, error in (("bad-json", ValueError), ("bad-gzip", requests.exceptions.ContentDecodingError),
                             ("reset", requests.exceptions.ChunkedEncodingError)):
        fake.misbehave = misbehave
        with pytest.raises(error):
            call(fake, "POST", "/persons/search", {}).json()
    fake.misbehave = "retry-after-date"
    date = call(fake, "POST", "/persons/search", {}).headers["Retry-After"]
    assert parsedate_to_datetime(date).timestamp() > time.time() + 86000


def test_the_command_serves_the_sample_people_and_says_how_to_use_it(tmp_path):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([{"name": "Grace Hopper", "emails": ["grace@navy.test"]}]))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "stardex_webhook.fake_stardex", "--port", str(port), "--api-key", "k"]
    for extra, email in (([], "marta.quintal@example.org"), (["--people", str(people)], "grace@navy.test")):
        process = subprocess.Popen(command + extra, stdout=subprocess.PIPE, text=True)
        try:
            process.stdout.readline()
            variables = dict(item.split("=", 1) for item in process.stdout.readline().split())
            found = requests.post(variables["STARDEX_API_BASE"] + "/persons/search", json={"email": email}, timeout=5,
                                  headers={"Authorization": f"Bearer {variables['STARDEX_API_KEY']}"}).json()
        finally:
            process.terminate()
            process.wait(timeout=10)
        assert variables == {"STARDEX_API_BASE": f"http://127.0.0.1:{port}/v1", "STARDEX_API_KEY": "k"}
        assert len(found["data"]) == 1


def test_a_people_file_may_hold_custom_fields_and_jobs_with_their_stages(fake):
    from stardex_webhook.fake_stardex import seed

    count = seed(fake, {
        "custom_fields": [{"name": "Notice period", "data_type": "text"},
                          {"name": "Open to relocation", "data_type": "single-select", "options": ["Yes", "No"]}],
        "jobs": [{"id": "job-1", "name": "Data Engineer", "stages": ["Screen", "Onsite"]}],
        "people": [{"name": "Grace Hopper", "emails": ["grace@navy.test"],
                    "candidates": [{"candidate_id": "c-1", "job_id": "job-1"}]}],
    })
    assert count == 1
    fields = call(fake, "GET", "/custom-fields/persons").json()["data"]
    assert [(f["name"], [tag["name"] for tag in f["tags"]]) for f in fields] == [
        ("Notice period", []), ("Open to relocation", ["Yes", "No"])]
    assert [stage["name"] for stage in fake.job("job-1")["pipeline_stages"]] == ["Screen", "Onsite"]
    moved = call(fake, "POST", "/candidates/update-stage",
                 {"job_id": "job-1", "candidate_email": "grace@navy.test", "stage_name": "Onsite"})
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize("document, message", [
    ({"persons": []}, "unknown keys persons"),
    ({"custom_fields": [{"name": "Notice period"}]}, "custom_fields[0]: expected an object with a name and a data_type"),
    ({"jobs": [{"stages": ["Screen"]}]}, "jobs[0]: expected an object with a name"),
    ("people", "expected a JSON list of persons, or an object"),
])
def test_a_people_file_that_cannot_be_read_says_what_is_wrong(tmp_path, document, message):
    people = tmp_path / "people.json"
    people.write_text(json.dumps(document))
    result = subprocess.run([sys.executable, "-m", "stardex_webhook.fake_stardex", "--port", "0", "--people", str(people)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_search_answers_base_fields_and_the_sections_include_asks_for(fake):
    ada = fake.add_person(name="Ada", emails=["ada@work.test"], phones=["+442079460958"],
                          candidates=[{"candidate_id": "c-1", "job_id": "job-1"}])
    plain = call(fake, "POST", "/persons/search", {"email": "ada@work.test"}).json()["data"][0]
    assert plain["emails"] == [{"contact_data_type": "work", "value": "ada@work.test"}]
    assert plain["phones"] == [{"contact_data_type": "mobile", "value": "+442079460958"}]
    assert "candidates" not in plain and "work_experience" not in plain
    included = call(fake, "POST", "/persons/search", {"email": "ada@work.test", "include": ["candidates"]}).json()
    assert included["data"][0]["candidates"] == [{"candidate_id": "c-1", "job_id": "job-1"}]
    assert call(fake, "GET", f"/persons/{ada}").json()["data"]["candidates"] == [{"candidate_id": "c-1", "job_id": "job-1"}]
    refused = call(fake, "POST", "/persons/search", {"email": "ada@work.test", "include": ["everything"]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_a_patch_with_a_job_id_makes_the_person_a_candidate_once(fake):
    ada = fake.add_person(name="Ada")
    for _ in range(2):
        assert call(fake, "PATCH", f"/persons/{ada}", {"job_id": "job-7"}).status_code == 200
    assert [candidate["job_id"] for candidate in fake.person(ada)["candidates"]] == ["job-7"]


def test_activities_are_written_and_listed_newest_first(fake):
    ada = fake.add_person(name="Ada", emails=["ada@work.test"])
    first = call(fake, "POST", "/person-activities",
                 {"person_id": ada, "activity_type": "secondary_note", "activity_content": "one"})
    assert first.status_code == 201
    assert first.json() == {"success": True, "data": {"id": first.json()["data"]["id"], "person_id": ada,
                                                      "activity_type": "secondary_note"}}
    by_email = call(fake, "POST", "/person-activities",
                    {"email": "ADA@work.test", "activity_type": "secondary_note", "activity_content": "two"})
    assert by_email.json()["data"]["person_id"] == ada
    listed = call(fake, "GET", f"/persons/{ada}/activities?offset=0&limit=1").json()
    assert [item["activity_content"] for item in listed["data"]] == ["two"]
    assert listed["meta"] == {"total": 2, "offset": 0, "limit": 1}
    assert [item["activity_content"] for item in fake.activities(ada)] == ["one", "two"]


@pytest.mark.parametrize("body, status", [
    ({"activity_type": "secondary_note", "activity_content": "x"}, 400),  # no person
    ({"person_id": "{ada}", "activity_content": "x"}, 400),  # no type
    ({"person_id": "{ada}", "activity_type": "secondary_note", "activity_content": " "}, 400),  # empty content
    ({"person_id": "{ada}", "activity_type": "secondary_note", "activity_content": "x", "color": "red"}, 400),
    ({"person_id": "nobody", "activity_type": "secondary_note", "activity_content": "x"}, 404),
])
def test_a_malformed_activity_is_refused(fake, body, status):
    ada = fake.add_person(name="Ada")
    body = {key: value.replace("{ada}", ada) for key, value in body.items()}
    assert call(fake, "POST", "/person-activities", body).status_code == status
    assert fake.activities(ada) == []


def test_activities_of_an_unknown_person_are_404_and_the_limit_is_checked(fake):
    assert call(fake, "GET", "/persons/nobody/activities").status_code == 404
    ada = fake.add_person(name="Ada")
    assert call(fake, "GET", f"/persons/{ada}/activities?limit=101").status_code == 400


def test_discard_writes_checks_and_answers_a_patch_but_keeps_the_person(fake):
    ada = fake.add_person(name="Ada")
    fake.discard_writes = True
    assert call(fake, "PATCH", f"/persons/{ada}", {"current_job_title": "CTO"}).status_code == 200
    assert call(fake, "PATCH", f"/persons/{ada}", {"colour": "red"}).status_code == 400
    assert fake.person(ada)["current_job_title"] is None
