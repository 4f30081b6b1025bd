"""Pipeline stages: per sender, a realistic stage event becomes one exact ``update-stage`` call, an
unknown stage none, a repeated delivery no second move, and an older event no move back.

Each event goes through its sender's adapter (``parse``, and ``with_follow_up`` with the API
answer its tests ship), the sender's built-in mapping with a stage table added (loaded from a file,
so the mapping schema checks it), and the delivery, against Stardex answered by ``responses``.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone

import pytest
import responses

from stardex_webhook.errors import ConfigurationError, Unprocessable
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mapping_file
from stardex_webhook.records import MappedUpdate, PersonRef
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, Headers
from stardex_webhook.stages import StageMemory, event_time, plan_stage, with_stage
from stardex_webhook.records import StageRequest
from tests.conftest import fixture_json
from tests.helpers.stardex_mock import API, Stardex, deliver, deliverer, mock  # noqa: F401  (mock is a fixture)
from tests.helpers.sandbox import call, fake, server  # noqa: F401  (fake and server are fixtures)

JOB = "7b0c5a52-3f1e-4c8a-9d2b-1e6f0a9c4d11"
OTHER_JOB = "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
INTERVIEW_ID = "c3d4e5f6-0718-4a9b-8c0d-1e2f3a4b5c6d"
STAGES = {"Sourced": "a1a1a1a1-0000-4000-8000-000000000001", "Screen": "a1a1a1a1-0000-4000-8000-000000000002",
          "Interview": INTERVIEW_ID, "Offer": "a1a1a1a1-0000-4000-8000-000000000004"}
LEVER_STAGE = "2f3e4d5c-1234-5678-9abc-def012345678"


class PipelineStardex(Stardex):
    """The delivery tests' Stardex plus ``POST /v1/candidates/update-stage`` over the persons'
    ``candidates[]`` (stages named in ``STAGES``), answering the previous and new stage ids."""

    def __init__(self, mock_, *persons):
        super().__init__(mock_, *persons)
        mock_.add_callback(responses.POST, f"{API}/candidates/update-stage", callback=self._update_stage)

    def _update_stage(self, request):
        body = self._record(request)
        for person in self.persons.values():
            for candidate in person.get("candidates", []):
                if candidate["job_id"] != body["job_id"]:
                    continue
                if candidate.get("candidate_id") == body.get("candidate_id") or any(
                        entry["value"] == body.get("candidate_email") for entry in person["emails"]):
                    previous = candidate["current_pipeline_stage_id"]
                    new = body.get("stage_id") or STAGES[body["stage_name"]]
                    name = next(key for key, value in STAGES.items() if value == new)
                    candidate.update(current_pipeline_stage_id=new, current_pipeline_stage_name=name)
                    return self._ok({"candidate_id": candidate["candidate_id"], "person_id": person["id"],
                                     "job_id": body["job_id"], "previous_stage_id": previous, "new_stage_id": new})
        return 404, {}, json.dumps({"message": "Candidate not found", "error": "Not Found", "statusCode": 404})

    def _person(self, request):
        answer = super()._person(request)
        body = json.loads(request.body) if request.body else {}
        person = self.persons.get(request.url.rsplit("/", 1)[-1])
        if request.method == "PATCH" and person is not None and "job_id" in body:
            person.pop("job_id")  # Stardex makes the person a candidate at the job's first stage
            if not any(item["job_id"] == body["job_id"] for item in person.setdefault("candidates", [])):
                person["candidates"].append({**candidate(job=body["job_id"]), "candidate_id": "c-new"})
        return answer

    def moves(self):
        return [body for call, body in zip(self.calls, self.bodies) if call[1] == "/candidates/update-stage"]


# ---- each sender's stage event, its stage table, and what it moves to ----------------------------

def greenhouse(stage="Onsite", when="2026-04-01T10:00:00Z"):
    body = fixture_json("greenhouse_hire_candidate.json")
    body["action"] = "candidate_stage_change"
    body["payload"]["application"].update(current_stage={"id": 71416, "name": stage}, last_activity_at=when)
    return body, None, {"Greenhouse-Event-ID": f"gh-{stage}-{when}"}


def lever(stage=LEVER_STAGE, when=1775040000000):
    body = fixture_json("lever_candidateStageChange.json")
    body["data"]["toStageId"], body["triggeredAt"] = stage, when
    return body, fixture_json("lever_opportunity.json"), {}


def ashby(stage="Technical Interview", when="2026-03-11T09:12:40.000Z"):
    body = fixture_json("ashby_candidateStageChange.json")
    body["data"]["application"]["currentInterviewStage"]["title"] = stage
    body["data"]["application"]["updatedAt"] = when
    body["webhookActionId"] += stage
    return body, fixture_json("ashby_candidate_info.json"), {}


def workable(stage="Interview", when="2026-03-20T11:01:58Z"):
    body = fixture_json("workable_candidate_moved.json")
    body["data"].update(stage=stage, updated_at=when)
    return body, None, {}


def teamtailor(stage="Interview", when="2026-03-14T11:05:10.000+01:00"):
    body = fixture_json("teamtailor_job_application.create.json")
    body["payload"]["event_name"] = "job_application.update"
    body["payload"]["data"]["attributes"].update(stage_name=stage, updated_at=when)
    return body, fixture_json("teamtailor_candidate_api.json"), {}


def recruitee(stage="Phone screen", when="2026-03-15T09:41:07.000000Z"):
    body = fixture_json("recruitee_candidate_moved.json")
    body["payload"]["details"]["to_stage"]["name"], body["created_at"] = stage, when
    return body, None, {}


def smartrecruiters(stage="INTERVIEW", when=None):
    """SmartRecruiters' notification carries ids only; the status is the candidate's, as read now."""
    body = {"jobId": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "candidateId": "9c1b7e2a-1d2e-4f3a-8b9c-0d1e2f3a4b5c"}
    api = fixture_json("smartrecruiters_candidate.json")
    api["primaryAssignment"]["status"] = stage
    return body, api, {"event-name": "application.status.updated", "event-id": f"sr-{stage}", "event-version": "v201910"}


SENDERS = {
    "greenhouse": (greenhouse, {
        "events": ["candidate_stage_change"], "job": "payload.application.jobs[0].id", "jobs": {"300112": JOB},
        "stage": "payload.application.current_stage.name", "occurred_at": "payload.application.last_activity_at",
        "table": {"Application Review": "Screen", "Onsite": "Interview", "Offer": "Offer"}},
        {"stage_name": "Interview"}, ("Offer", "2026-04-02T09:00:00Z"), ("Application Review", "2026-03-30T09:00:00Z")),
    "lever": (lever, {
        "events": ["candidateStageChange"], "jobs": {"*": JOB}, "stage": "data.toStageId", "current": "api.data.stage",
        "occurred_at": "triggeredAt", "table": {"lead-new": "Sourced", LEVER_STAGE: INTERVIEW_ID}},
        {"stage_id": INTERVIEW_ID}, None, ("lead-new", 1774950000000)),
    "ashby": (ashby, {
        "events": ["candidateStageChange"], "job": "data.application.job.id",
        "jobs": {"8e7f6051-0000-1111-2222-333344445555": JOB}, "stage": "data.application.currentInterviewStage.title",
        "occurred_at": "data.application.updatedAt",
        "table": {"Application Review": "Screen", "Technical Interview": "Interview", "Offer": "Offer"}},
        {"stage_name": "Interview"}, ("Offer", "2026-03-12T09:00:00.000Z"), ("Application Review", "2026-03-10T15:00:00.000Z")),
    "workable": (workable, {
        "events": ["candidate_moved"], "job": "data.job.shortcode", "jobs": {"7A1B2C3D4E": JOB}, "stage": "data.stage",
        "occurred_at": "data.updated_at", "table": {"Phone Screen": "Screen", "Interview": "Interview", "Offer": "Offer"}},
        {"stage_name": "Interview"}, ("Offer", "2026-03-21T08:00:00Z"), ("Phone Screen", "2026-03-19T08:00:00Z")),
    "teamtailor": (teamtailor, {
        "events": ["job_application.create", "job_application.update"],
        "job": "payload.data.attributes.job_id || payload.data.attributes.\"job-id\"", "jobs": {"902": JOB},
        "stage": "payload.data.attributes.stage_name || payload.data.attributes.\"stage-name\"",
        "occurred_at": "payload.data.attributes.updated_at || payload.data.attributes.\"updated-at\"",
        "table": {"Inbox": "Sourced", "Screening": "Screen", "Interview": "Interview", "Offer": "Offer"}},
        {"stage_name": "Interview"}, ("Offer", "2026-03-15T11:00:00.000+01:00"), ("Screening", "2026-03-13T11:00:00.000+01:00")),
    "recruitee": (recruitee, {
        "events": ["candidate_moved"], "job": "payload.offer.id", "jobs": {"3301": JOB},
        "stage": "payload.details.to_stage.name", "occurred_at": "created_at",
        "table": {"Applied": "Sourced", "Phone screen": "Screen", "Interview": "Interview", "Offer": "Offer"}},
        {"stage_name": "Screen"}, ("Offer", "2026-03-16T09:00:00.000000Z"), ("Applied", "2026-03-14T09:00:00.000000Z")),
    "smartrecruiters": (smartrecruiters, {
        "events": ["application.status.updated"], "job": "api.primaryAssignment.job.id",
        "jobs": {"3fa85f64-5717-4562-b3fc-2c963f66afa6": JOB}, "stage": "api.primaryAssignment.status",
        "table": {"NEW": "Sourced", "IN_REVIEW": "Screen", "INTERVIEW": "Interview", "OFFER": "Offer"}},
        {"stage_name": "Interview"}, ("OFFER", None), None),
}


@pytest.fixture
def mappings(tmp_path):
    """Each sender's built-in mapping with its stage table, loaded (and schema-checked) from a file."""
    loaded = {}
    for source, (_, stages, *_rest) in SENDERS.items():
        with open(f"{BUILTIN_MAPPINGS_DIR}/{source}.json", encoding="utf-8") as handle:
            document = json.load(handle)
        document["stages"] = stages
        path = tmp_path / f"{source}.json"
        path.write_text(json.dumps(document))
        loaded[source] = load_mapping_file(source, str(path), None)
    return loaded


def mapped_event(mappings, source, *event_args):
    body, api, headers = SENDERS[source][0](*event_args)
    adapter = SOURCES[source]
    event = adapter.parse(Delivery(Headers(headers.items()), json.dumps(body).encode(), 0.0))
    if api is not None:
        event = adapter.with_follow_up(event, copy.deepcopy(api))
    return mappings[source].apply(event.payload, event)


def candidate(stage="Sourced", job=JOB):
    return {"candidate_id": "c-7", "job_id": job, "current_pipeline_stage_name": stage,
            "current_pipeline_stage_id": STAGES[stage], "is_archived": False, "created_at": "2026-03-01T00:00:00Z"}


def person_for(event, stage="Sourced"):
    """The Stardex person the event's first email finds, a candidate on the job at ``stage``."""
    return {"id": "p-7", "name": "Someone Stored", "emails": [{"contact_data_type": "personal", "value": event.person.emails[0]}],
            "phones": [], "candidates": [candidate(stage)]}


@pytest.mark.parametrize("source", SENDERS)
def test_a_stage_event_moves_the_candidate_with_the_exact_update_stage_body(mock, mappings, source):
    event = mapped_event(mappings, source)
    stardex = PipelineStardex(mock, person_for(event))
    answer = deliver(deliverer(memory_seconds=0), event)
    assert answer["stage"] == "moved"
    assert stardex.moves() == [{"job_id": JOB, "candidate_id": "c-7", **SENDERS[source][2]}]
    assert stardex.calls[0] == ("POST", "/persons/search") and "candidates" in stardex.bodies[0]["include"]
    assert stardex.calls[-1] == ("POST", "/candidates/update-stage"), "the move comes after the person update"


@pytest.mark.parametrize("source", SENDERS)
def test_a_stage_not_in_the_table_is_ignored_and_makes_no_call(mock, mappings, source):
    event = mapped_event(mappings, source, "Some Stage Nobody Mapped")
    stardex = PipelineStardex(mock, person_for(event))
    answer = deliver(deliverer(memory_seconds=0), event)
    assert answer["stage"] == "not_in_table"
    assert stardex.moves() == []
    assert event.stage.sender_stage == "Some Stage Nobody Mapped" and "job_id" not in event.update


@pytest.mark.parametrize("source", SENDERS)
def test_a_repeated_delivery_makes_no_second_move(mock, mappings, source):
    event = mapped_event(mappings, source)
    stardex = PipelineStardex(mock, person_for(event))
    target = deliverer(memory_seconds=0)
    assert deliver(target, event)["stage"] == "moved"
    again = deliver(target, event)
    assert again["stage"] == "unchanged"
    assert len(stardex.moves()) == 1, "the search's candidates[] shows the stage: no call"


@pytest.mark.parametrize("source", [source for source, spec in SENDERS.items() if spec[4] is not None])
def test_an_older_event_arriving_late_does_not_move_the_candidate_back(mock, mappings, source):
    _, _, _, newer, older = SENDERS[source]
    first = mapped_event(mappings, source, *newer) if newer else mapped_event(mappings, source)
    stardex = PipelineStardex(mock, person_for(first))
    target = deliverer(memory_seconds=0)
    assert deliver(target, first)["stage"] == "moved"
    where = stardex.persons["p-7"]["candidates"][0]["current_pipeline_stage_name"]
    late = mapped_event(mappings, source, *older)
    answer = deliver(target, late)
    assert answer["stage"] in ("older_event", "superseded")
    assert len(stardex.moves()) == 1
    assert stardex.persons["p-7"]["candidates"][0]["current_pipeline_stage_name"] == where


def test_lever_a_stage_its_api_no_longer_shows_is_superseded_even_on_a_fresh_instance(mock, mappings):
    """Lever's read is made now: an event naming another stage than the read is outdated, whatever
    this instance remembers (a retry may reach another instance)."""
    late = mapped_event(mappings, "lever", "lead-new", 1774950000000)
    stardex = PipelineStardex(mock, person_for(late, "Interview"))
    assert deliver(deliverer(memory_seconds=0), late)["stage"] == "superseded"
    assert stardex.moves() == []


def test_smartrecruiters_a_late_status_event_moves_only_to_the_status_read_now(mock, mappings):
    """SmartRecruiters' status comes from the candidate as read now, so a late retry of an earlier
    status event carries the current status: the candidate already there, nothing moves."""
    current = mapped_event(mappings, "smartrecruiters", "OFFER")
    stardex = PipelineStardex(mock, person_for(current, "Offer"))
    assert deliver(deliverer(memory_seconds=0), current)["stage"] == "unchanged"
    assert stardex.moves() == []


def test_a_job_not_in_the_table_is_ignored(mock, tmp_path):
    stages = {**SENDERS["recruitee"][1], "jobs": {"9999": JOB}}
    with open(f"{BUILTIN_MAPPINGS_DIR}/recruitee.json", encoding="utf-8") as handle:
        document = {**json.load(handle), "stages": stages}
    (tmp_path / "recruitee.json").write_text(json.dumps(document))
    event = mapped_event({"recruitee": load_mapping_file("recruitee", str(tmp_path / "recruitee.json"), None)},
                         "recruitee")
    stardex = PipelineStardex(mock, person_for(event))
    assert event.stage.ignore_reason == "job_not_in_table" and "job_id" not in event.update
    assert deliver(deliverer(memory_seconds=0), event)["stage"] == "job_not_in_table"
    assert stardex.moves() == []


def test_a_person_not_on_the_job_is_attached_by_the_patch_then_moved_by_email(mock, mappings):
    event = mapped_event(mappings, "workable")
    stardex = PipelineStardex(mock, {**person_for(event), "candidates": [candidate(job=OTHER_JOB)]})
    answer = deliver(deliverer(memory_seconds=0), event)
    assert answer["stage"] == "moved" and "job_id" in answer["fields"]
    patch = stardex.bodies[stardex.calls.index(("PATCH", "/persons/p-7"))]
    assert patch["job_id"] == JOB
    assert stardex.moves() == [{"job_id": JOB, "candidate_email": event.person.emails[0], "stage_name": "Interview"}]


def test_stardex_answering_the_same_previous_and_new_stage_is_unchanged_not_an_error(mock):
    """A person named by id, no read made: the move is asked for, and Stardex says it was there."""
    stardex = PipelineStardex(mock, {"id": "p-7", "name": "Someone", "phones": [], "candidates": [candidate("Interview")],
                                     "emails": [{"contact_data_type": "work", "value": "someone@example.com"}]})
    event = MappedUpdate(update={}, person=PersonRef("p-7", ["someone@example.com"], None), create=False,
                         stage=StageRequest(JOB, "Interview", "job-1", "Onsite", None))
    answer = deliver(deliverer(memory_seconds=0), event)
    assert answer == {"status": "ignored", "reason": "no_change", "person_id": "p-7", "stage": "unchanged"}
    assert stardex.moves() == [{"job_id": JOB, "candidate_email": "someone@example.com", "stage_name": "Interview"}]


def test_a_move_alone_answers_updated(mock):
    stardex = PipelineStardex(mock, {"id": "p-7", "name": "Someone", "phones": [], "candidates": [candidate()],
                                     "emails": [{"contact_data_type": "work", "value": "someone@example.com"}]})
    event = MappedUpdate(update={}, person=PersonRef("p-7", ["someone@example.com"], None), create=False,
                         stage=StageRequest(JOB, "Offer", "job-1", "Offer", None))
    assert deliver(deliverer(memory_seconds=0), event) == {"status": "updated", "person_id": "p-7", "fields": [],
                                                            "stage": "moved"}
    assert stardex.persons["p-7"]["candidates"][0]["current_pipeline_stage_name"] == "Offer"


@pytest.mark.parametrize("value, expected", [
    ("2026-03-14T11:05:10.000+01:00", datetime(2026, 3, 14, 10, 5, 10, tzinfo=timezone.utc)),
    ("2026-03-15T09:41:07.000000Z", datetime(2026, 3, 15, 9, 41, 7, tzinfo=timezone.utc)),
    ("2026-03-15T09:41:07", datetime(2026, 3, 15, 9, 41, 7, tzinfo=timezone.utc)),
    (1775040000000, datetime.fromtimestamp(1775040000, timezone.utc)),
    ("1775040000", datetime.fromtimestamp(1775040000, timezone.utc)),
    ("yesterday", None), (True, None), (None, None), (-5, None),
    # A sender's nonsense is no time, never an error: a digit int() refuses, numbers no float holds.
    ("²", None), pytest.param("9" * 5000, None, id="5000-digits"), pytest.param(10 ** 400, None, id="10**400"),
    (float("inf"), None), (float("nan"), None),
])
def test_event_times_are_read_as_senders_write_them(value, expected):
    assert event_time(value) == (expected.timestamp() if expected else None)


def test_the_stage_memory_keeps_the_latest_event_and_forgets_after_its_time():
    clock = [0.0]
    memory = StageMemory(seconds=100, clock=lambda: clock[0])
    memory.applied("p", JOB, 200.0, "Offer")
    memory.applied("p", JOB, 100.0, "Screen")  # older: does not replace
    assert memory.last("p", JOB) == (200.0, "Offer")
    request = StageRequest(JOB, "Screen", "j", "s", 100.0)
    assert plan_stage(request, None, memory.last("p", JOB), "a@example.com").outcome == "older_event"
    clock[0] = 101.0
    assert memory.last("p", JOB) is None
    assert plan_stage(request, None, memory.last("p", JOB), "a@example.com").action == "move"


def test_with_the_person_memory_a_repeated_stage_event_costs_no_call(mock, mappings):
    event = mapped_event(mappings, "greenhouse")
    stardex = PipelineStardex(mock, person_for(event))
    target = deliverer(memory_seconds=300)
    assert deliver(target, event)["stage"] == "moved"
    calls = len(stardex.calls)
    assert deliver(target, event)["stage"] == "unchanged"
    assert len(stardex.calls) == calls, "the memory knows the person and the stage this instance set"


def test_a_stage_move_stardex_refuses_is_a_422_naming_stardexs_code(mock):
    PipelineStardex(mock, {"id": "p-7", "name": "Someone", "phones": [], "candidates": [],
                           "emails": [{"contact_data_type": "work", "value": "someone@example.com"}]})
    event = MappedUpdate(update={}, person=PersonRef("p-7", ["other@example.com"], None), create=False,
                         stage=StageRequest(JOB, "Interview", "job-1", "Onsite", None))
    with pytest.raises(Unprocessable) as caught:
        deliver(deliverer(memory_seconds=0), event)
    assert (caught.value.reason, caught.value.extra["stardex_code"]) == ("stage_rejected", "HTTP_404")


def test_a_person_found_by_id_without_an_email_is_read_to_find_the_candidate(mock):
    stardex = PipelineStardex(mock, {"id": "p-7", "name": "Someone", "phones": [], "emails": [],
                                     "candidates": [candidate()]})
    event = MappedUpdate(update={}, person=PersonRef("p-7", [], None), create=False,
                         stage=StageRequest(JOB, "Offer", "job-1", "Offer", None))
    assert deliver(deliverer(memory_seconds=0), event)["stage"] == "moved"
    assert stardex.calls == [("GET", "/persons/p-7"), ("POST", "/candidates/update-stage")]
    assert stardex.moves() == [{"job_id": JOB, "candidate_id": "c-7", "stage_name": "Offer"}]


def test_a_person_on_no_such_job_and_without_an_email_is_not_a_candidate(mock):
    stardex = PipelineStardex(mock, {"id": "p-7", "name": "Someone", "phones": [], "emails": [], "candidates": []})
    event = MappedUpdate(update={}, person=PersonRef("p-7", [], None), create=False,
                         stage=StageRequest(JOB, "Offer", "job-1", "Offer", None))
    assert deliver(deliverer(memory_seconds=0), event)["stage"] == "not_a_candidate"
    assert stardex.moves() == []




# ---- the fake Stardex's update-stage, as the end-to-end tests meet it ----------------------------

def test_the_fake_moves_a_candidate_by_id_email_or_name_and_names_both_stages(fake):
    job = fake.add_job("Data Engineer", ("Sourced", "Screen", "Offer"))
    stages = {stage["name"]: stage["id"] for stage in fake.job(job)["pipeline_stages"]}
    ada = fake.add_person(name="Ada Lovelace", emails=["ada@example.org"])
    assert call(fake, "PATCH", f"/persons/{ada}", {"job_id": job}).status_code == 200
    (candidate,) = fake.person(ada)["candidates"]
    assert (candidate["current_pipeline_stage_name"], candidate["current_pipeline_stage_id"]) == ("Sourced", stages["Sourced"])
    moved = call(fake, "POST", "/candidates/update-stage", {"job_id": job, "candidate_email": "ADA@example.org",
                                                           "stage_name": "screen"}).json()["data"]
    assert moved == {"candidate_id": candidate["candidate_id"], "person_id": ada, "job_id": job,
                     "previous_stage_id": stages["Sourced"], "new_stage_id": stages["Screen"]}
    again = call(fake, "POST", "/candidates/update-stage", {"job_name": "Data Engineer", "candidate_name": "ada lovelace",
                                                           "stage_id": stages["Screen"]}).json()["data"]
    assert again["previous_stage_id"] == again["new_stage_id"] == stages["Screen"]
    by_id = call(fake, "POST", "/candidates/update-stage", {"job_id": job, "candidate_id": candidate["candidate_id"],
                                                           "stage_name": "Offer"})
    assert by_id.json()["data"]["new_stage_id"] == stages["Offer"]
    stored = fake.person(ada)["candidates"][0]
    assert stored["current_pipeline_stage_name"] == "Offer" and stored["current_pipeline_stage_date"]


@pytest.mark.parametrize("body, status", [
    ({"job_id": "nope", "candidate_email": "ada@example.org", "stage_name": "Screen"}, 404),
    ({"job_id": "JOB", "candidate_email": "someone@example.org", "stage_name": "Screen"}, 404),
    ({"job_id": "JOB", "candidate_email": "ada@example.org", "stage_name": "Onsite"}, 400),
    ({"job_id": "JOB", "stage_name": "Screen"}, 400),
    ({"job_id": "JOB", "candidate_email": "ada@example.org", "stage_name": "Screen", "note": "x"}, 400),
])
def test_the_fake_refuses_a_move_it_cannot_make(fake, body, status):
    job = fake.add_job("Data Engineer")
    ada = fake.add_person(name="Ada Lovelace", emails=["ada@example.org"])
    call(fake, "PATCH", f"/persons/{ada}", {"job_id": job})
    body = {key: job if value == "JOB" else value for key, value in body.items()}
    assert call(fake, "POST", "/candidates/update-stage", body).status_code == status
    assert fake.person(ada)["candidates"][0]["current_pipeline_stage_name"] == "Sourced"


# ---- the stage table in a mapping file ------------------------------------------------------------

def write_workable(tmp_path, **sections):
    with open(f"{BUILTIN_MAPPINGS_DIR}/workable.json", encoding="utf-8") as handle:
        document = {**json.load(handle), **sections}
    (tmp_path / "workable.json").write_text(json.dumps(document))
    return load_mapping_file("workable", str(tmp_path / "workable.json"), None)


def workable_event(mapping, **changes):
    body = fixture_json("workable_candidate_moved.json")
    body.update(changes)
    event = SOURCES["workable"].parse(Delivery(Headers([]), json.dumps(body).encode(), 0.0))
    return mapping.apply(event.payload, event)


def test_a_stage_table_may_reuse_the_job_sections_path_and_table(tmp_path):
    mapping = write_workable(tmp_path, job={"path": "data.job.shortcode", "table": {"7A1B2C3D4E": JOB}},
                             stages={"stage": "data.stage", "table": {"hired": "Hired"}})
    event = workable_event(mapping)
    assert event.stage == StageRequest(JOB, "Hired", "7A1B2C3D4E", "Hired", None)
    assert event.update["job_id"] == JOB


def test_a_stage_table_acts_only_on_its_events(tmp_path):
    mapping = write_workable(tmp_path, stages={"events": ["candidate_moved"], "job": "data.job.shortcode",
                                               "jobs": {"7A1B2C3D4E": JOB}, "stage": "data.stage",
                                               "table": {"Hired": "Hired"}})
    assert workable_event(mapping).stage is not None
    created = workable_event(mapping, event_type="candidate_created")
    assert created.stage is None and "job_id" not in created.update


@pytest.mark.parametrize("stages, message", [
    ({"stage": "data.stage", "table": {"Hired": "Hired"}}, "needs `job`"),
    ({"job": "data.job.shortcode", "stage": "data.stage", "table": {"Hired": "Hired"}}, "needs a `jobs` table"),
    ({"job": "data.job.shortcode", "jobs": {"7A1B2C3D4E": "not-a-stardex-id"}, "stage": "data.stage",
      "table": {"Hired": "Hired"}}, "does not match"),
    ({"job": "data.job.shortcode", "jobs": {"x": JOB}, "stage": "data.[", "table": {"Hired": "Hired"}},
     "stages.stage: invalid JMESPath"),
    ({"jobs": {"*": JOB}, "stage": "data.stage", "table": {}}, "does not match"),
])
def test_a_broken_stage_table_stops_the_start_naming_the_fault(tmp_path, stages, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        write_workable(tmp_path, stages=stages)


@pytest.mark.parametrize("odd", [5, 1.5, True])
def test_the_person_after_a_move_ignores_a_candidates_section_that_is_not_a_list(odd):
    """A search answering ``"candidates": 5`` is Stardex's oddity: once the move is made it must not
    turn the answer into a 500 (the sender would retry a move already made, and 500 again)."""
    after = with_stage({"id": "p-1", "candidates": odd}, StageRequest(JOB, "Screen"), {"candidate_id": "c-1"})
    assert after["candidates"] == [{"job_id": JOB, "current_pipeline_stage_name": "Screen", "candidate_id": "c-1"}]
