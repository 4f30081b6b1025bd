"""Stardex's v1 API as a small table of persons and activities behind ``responses`` callbacks, and a
``Deliverer`` on the real client pointed at it: the exact calls one event makes, in order (the
delivery, stage and custom-field tests)."""

from __future__ import annotations

import copy
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from stardex_webhook.config import load_settings
from stardex_webhook.deadline import Deadline
from stardex_webhook.delivery import Deliverer
from stardex_webhook.logs import JsonLog
from stardex_webhook.records import MappedUpdate
from stardex_webhook.stardex import RateLimiter, StardexClient

API = "https://stardex.test/v1"


def email(value, kind="personal"):
    return {"contact_data_type": kind, "value": value}


def phone(value, kind="mobile"):
    return {"contact_data_type": kind, "value": value}


class Stardex:
    """Persons and activities answered as Stardex's v1 API does; ``calls`` in order."""

    def __init__(self, mock: responses.RequestsMock, *persons: dict) -> None:
        self.persons = {person["id"]: copy.deepcopy(person) for person in persons}
        self.activities: dict[str, list[dict]] = {}
        self.calls: list[tuple[str, str]] = []
        self.bodies: list[dict | None] = []
        self.lose_next_activity_answer = False
        mock.add_callback(responses.POST, f"{API}/persons/search", callback=self._search)
        mock.add_callback(responses.POST, f"{API}/person-activities", callback=self._create_activity)
        mock.add_callback(responses.POST, f"{API}/persons", callback=self._create)
        person_url = re.compile(rf"{re.escape(API)}/persons/(?!search$)[^/?]+(/activities)?(\?.*)?$")
        for method in (responses.GET, responses.PATCH):
            mock.add_callback(method, person_url, callback=self._person)

    def _record(self, request) -> dict | None:
        path = urlsplit(request.url).path.removeprefix("/v1")
        self.calls.append((request.method, path))
        body = json.loads(request.body) if request.body else None
        self.bodies.append(body)
        return body

    @staticmethod
    def _ok(data, status=200):
        return status, {}, json.dumps({"success": True, "data": data})

    @staticmethod
    def _not_found():
        return 404, {}, json.dumps({"message": "Person not found", "error": "Not Found", "statusCode": 404})

    def _search(self, request):
        body = self._record(request)
        found = [person for person in self.persons.values()
                 if ("email" in body and any(e["value"].lower() == body["email"] for e in person["emails"]))
                 or ("linkedin_url" in body and person.get("linkedin_url") == body["linkedin_url"])]
        return self._ok([{key: value for key, value in person.items() if key != "candidates" or
                          "candidates" in body.get("include", [])} for person in found])

    def _person(self, request):
        body = self._record(request)
        parts = urlsplit(request.url).path.split("/")
        person = self.persons.get(parts[3])
        if person is None:
            return self._not_found()
        if parts[-1] == "activities":
            limit = int(parse_qs(urlsplit(request.url).query)["limit"][0])
            return self._ok(list(reversed(self.activities.get(person["id"], [])))[:limit])
        if request.method == "GET":
            return self._ok(copy.deepcopy(person))
        for key, value in body.items():
            person[{"company_name": "current_company_name", "phone_numbers": "phones"}.get(key, key)] = value
        return self._ok({"message": "Person updated successfully"})

    def _create(self, request):
        body = self._record(request)
        person_id = f"p-new-{len(self.persons)}"
        self.persons[person_id] = {"id": person_id, "name": body["name"], "linkedin_url": body["linkedin_url"],
                                   "emails": [email(value, "work") for value in body.get("emails", [])], "phones": []}
        return self._ok({"id": person_id, "name": body["name"], "emails": self.persons[person_id]["emails"]}, 201)

    def _create_activity(self, request):
        body = self._record(request)
        self.activities.setdefault(body["person_id"], []).append(
            {"id": f"a-{len(self.calls)}", "activity_type": body["activity_type"], "activity_content": body["activity_content"]})
        if self.lose_next_activity_answer:
            self.lose_next_activity_answer = False
            raise requests.ReadTimeout("the answer never came")
        return self._ok({"id": "a-1", "person_id": body["person_id"], "activity_type": body["activity_type"]}, 201)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def deliverer(memory_seconds: float = 300) -> Deliverer:
    settings = load_settings({"PERSON_MEMORY_SECONDS": str(memory_seconds)})
    client = StardexClient(API, lambda refresh, deadline: "key", RateLimiter(), sleep=lambda seconds: None)
    return Deliverer(settings, lambda: client, JsonLog())


def deliver(target: Deliverer, event: MappedUpdate) -> dict:
    return target.deliver(event, {}, Deadline(5))
