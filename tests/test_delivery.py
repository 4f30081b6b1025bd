"""delivery: the exact Stardex calls one event makes, in order, through the real client (``responses``).

Stardex is a small table of persons and activities behind ``responses`` callbacks, so a test can
change a person between two events (a recruiter's edit) and see what the next event sends.
"""

from __future__ import annotations

import json

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.deadline import Deadline
from stardex_webhook.delivery import Deliverer, note_marker, note_text
from stardex_webhook.errors import Unprocessable
from stardex_webhook.fake_stardex import FakeStardex
from stardex_webhook.logs import JsonLog
from stardex_webhook.records import MappedUpdate, NoteRequest, PersonRef
from stardex_webhook.resolver import PersonMemory
from stardex_webhook.stardex import RateLimiter, StardexClient
from tests.helpers.stardex_mock import Stardex, deliver, deliverer, email, mock, phone  # noqa: F401  (mock is a fixture)


ADA = {"id": "p-ada", "name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
       "current_job_title": "Analyst", "current_company_name": "Analytical Engines",
       "linkedin_public_id": "ada-lovelace", "emails": [email("ada@example.org", "work")],
       "phones": [phone("+442079460958")]}


def mapped(update, *, person_id=None, emails=(), linkedin_url=None, policy="overwrite", note=None, create=False):
    return MappedUpdate(update=update, person=PersonRef(person_id, list(emails), linkedin_url), create=create,
                        write_policy=policy, note=note)


# ---- how the person is found and read -------------------------------------------------------


def test_an_id_and_no_list_is_one_patch_and_the_same_event_again_no_call(mock):
    stardex, target = Stardex(mock, ADA), deliverer()
    event = mapped({"current_job_title": "CTO"}, person_id="p-ada")
    assert deliver(target, event) == {"status": "updated", "person_id": "p-ada", "fields": ["current_job_title"]}
    assert stardex.calls == [("PATCH", "/persons/p-ada")]
    assert deliver(target, event) == {"status": "ignored", "reason": "no_change", "person_id": "p-ada"}
    assert stardex.calls == [("PATCH", "/persons/p-ada")], "the repeated event costs no call"


def test_a_search_answer_is_the_read_no_get_follows(mock):
    stardex = Stardex(mock, ADA)
    event = mapped({"current_job_title": "CTO", "emails": [email("ada@engines-example.com")]}, emails=["ada@example.org"])
    assert deliver(deliverer(), event)["fields"] == ["current_job_title", "emails"]
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada")]
    assert stardex.bodies[1] == {"current_job_title": "CTO",
                                 "emails": [email("ada@example.org", "work"), email("ada@engines-example.com")]}


def test_a_remembered_person_is_not_searched_again(mock):
    stardex, target = Stardex(mock, ADA), deliverer()
    deliver(target, mapped({"current_job_title": "CTO"}, emails=["ada@example.org"]))
    deliver(target, mapped({"current_job_title": "CTO", "company_name": "Globex"}, emails=["ada@example.org"]))
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]
    assert stardex.bodies[2] == {"company_name": "Globex"}, "the title is known to be sent already"


def test_the_memory_lasts_person_memory_seconds(mock):
    clock = [0.0]
    stardex, target = Stardex(mock, ADA), deliverer()
    target.memory = PersonMemory(300, clock=lambda: clock[0])
    event = mapped({"current_job_title": "CTO"}, emails=["ada@example.org"])
    deliver(target, event)
    clock[0] = 301.0
    assert deliver(target, event)["reason"] == "no_change"
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada"), ("POST", "/persons/search")]


def test_without_memory_every_event_searches(mock):
    stardex, target = Stardex(mock, ADA), deliverer(memory_seconds=0)
    event = mapped({"current_job_title": "CTO"}, emails=["ada@example.org"])
    deliver(target, event)
    deliver(target, event)
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada"), ("POST", "/persons/search")]


def test_a_404_on_a_remembered_id_forgets_it_and_searches_again(mock):
    stardex, target = Stardex(mock, ADA), deliverer()
    deliver(target, mapped({"current_job_title": "CTO"}, emails=["ada@example.org"]))
    # The recruiter merged Ada into another record: the old id is gone.
    stardex.persons["p-ada2"] = {**stardex.persons.pop("p-ada"), "id": "p-ada2", "current_job_title": "Analyst"}
    answer = deliver(target, mapped({"current_job_title": "CTO", "company_name": "Globex"}, emails=["ada@example.org"]))
    assert answer == {"status": "updated", "person_id": "p-ada2", "fields": ["company_name", "current_job_title"]}
    assert stardex.calls[2:] == [("PATCH", "/persons/p-ada"), ("POST", "/persons/search"), ("PATCH", "/persons/p-ada2")]


def test_a_404_on_a_given_id_is_person_not_found(mock):
    stardex, target = Stardex(mock), deliverer()
    with pytest.raises(Unprocessable) as caught:
        deliver(target, mapped({"current_job_title": "CTO"}, person_id="p-gone"))
    assert caught.value.reason == "person_not_found"
    assert stardex.calls == [("PATCH", "/persons/p-gone")]


def test_a_contact_list_patch_is_always_made_from_a_read_of_this_event(mock):
    """The memory knows Ada's emails; a recruiter adds one meanwhile; the next event's PATCH keeps it."""
    stardex, target = Stardex(mock, ADA), deliverer()
    deliver(target, mapped({"emails": [email("ada@engines-example.com")]}, emails=["ada@example.org"]))
    stardex.persons["p-ada"]["emails"].append(email("ada.private@example.net"))
    deliver(target, mapped({"phone_numbers": [phone("+14155550123")]}, emails=["ada@example.org"]))
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada"),
                             ("GET", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]
    assert stardex.bodies[3] == {"phone_numbers": [phone("+442079460958"), phone("+14155550123")]}
    deliver(target, mapped({"emails": [email("ada.work@engines-example.com")]}, emails=["ada@example.org"]))
    assert stardex.calls[4:] == [("GET", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]
    assert [entry["value"] for entry in stardex.bodies[5]["emails"]] == [
        "ada@example.org", "ada@engines-example.com", "ada.private@example.net", "ada.work@engines-example.com"]


def test_a_search_answer_that_does_not_show_a_list_is_no_base_for_replacing_it(mock):
    """Stardex's search answers base fields unless ``include`` asks for more, and which those are
    is not documented: an answer without ``phones`` says nothing of Ada's numbers. Sending the new
    number alone would replace hers, so the PATCH is planned from a GET, which shows them."""

    class SearchWithoutPhones(Stardex):
        def _search(self, request):
            status, headers, body = super()._search(request)
            answer = json.loads(body)
            answer["data"] = [{key: value for key, value in person.items() if key != "phones"} for person in answer["data"]]
            return status, headers, json.dumps(answer)

    stardex = SearchWithoutPhones(mock, ADA)
    deliver(deliverer(), mapped({"phone_numbers": [phone("+14155550123")]}, emails=["ada@example.org"]))
    assert stardex.calls == [("POST", "/persons/search"), ("GET", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]
    assert stardex.bodies[2] == {"phone_numbers": [phone("+442079460958"), phone("+14155550123")]}


def test_a_list_with_nothing_new_for_a_remembered_person_costs_no_call(mock):
    stardex, target = Stardex(mock, ADA), deliverer()
    event = mapped({"emails": [email("ADA@example.org")]}, emails=["ada@example.org"])
    assert deliver(target, event)["reason"] == "no_change"
    assert deliver(target, event)["reason"] == "no_change"
    assert stardex.calls == [("POST", "/persons/search")]


def test_an_event_that_changes_nothing_sends_no_patch(mock):
    stardex = Stardex(mock, ADA)
    event = mapped({"name": "ada lovelace", "current_job_title": "Analyst", "linkedin_url": "https://linkedin.com/in/ada-lovelace",
                    "emails": [email("ada@example.org")]}, emails=["ada@example.org"])
    assert deliver(deliverer(), event) == {"status": "ignored", "reason": "no_change", "person_id": "p-ada"}
    assert stardex.calls == [("POST", "/persons/search")]


def test_a_job_is_searched_with_the_persons_candidates_and_not_sent_twice(mock):
    stardex = Stardex(mock, {**ADA, "candidates": [{"candidate_id": "c-1", "job_id": "job-1"}]})
    target = deliverer()
    assert deliver(target, mapped({"job_id": "job-1"}, emails=["ada@example.org"]))["reason"] == "no_change"
    assert stardex.bodies[0]["include"] == ["candidates"]
    assert deliver(target, mapped({"job_id": "job-2"}, emails=["ada@example.org"]))["fields"] == ["job_id"]
    assert deliver(target, mapped({"job_id": "job-2"}, emails=["ada@example.org"]))["reason"] == "no_change"
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada")]


# ---- write policies ----------------------------------------------------------------------------

MALLORY = {"name": "Mallory Evil", "first_name": "Mallory", "last_name": "Evil", "company_name": "Evil Corp",
           "current_job_title": "Impostor", "linkedin_url": "https://www.linkedin.com/in/mallory",
           "emails": [email("ada@example.org")], "phone_numbers": [phone("+14155550199")]}


def test_fill_a_submission_with_another_persons_email_adds_only_the_new_contact(mock):
    stardex = Stardex(mock, ADA)
    answer = deliver(deliverer(), mapped(MALLORY, emails=["ada@example.org"], policy="fill"))
    assert answer == {"status": "updated", "person_id": "p-ada", "fields": ["phone_numbers"]}
    assert stardex.calls == [("POST", "/persons/search"), ("PATCH", "/persons/p-ada")]
    assert stardex.bodies[1] == {"phone_numbers": [phone("+442079460958"), phone("+14155550199")]}
    stored = stardex.persons["p-ada"]
    assert {key: stored[key] for key in ADA if key != "phones"} == {key: ADA[key] for key in ADA if key != "phones"}


def test_overwrite_does_what_it_says(mock):
    stardex = Stardex(mock, ADA)
    answer = deliver(deliverer(), mapped(MALLORY, emails=["ada@example.org"], policy="overwrite"))
    assert answer["fields"] == ["company_name", "current_job_title", "first_name", "last_name", "linkedin_url", "name",
                                "phone_numbers"]
    assert stardex.persons["p-ada"]["name"] == "Mallory Evil"
    assert stardex.persons["p-ada"]["current_company_name"] == "Evil Corp"


def test_fill_with_an_id_reads_the_person_before_writing(mock):
    stardex = Stardex(mock, {**ADA, "current_company_name": None})
    answer = deliver(deliverer(), mapped({"company_name": "Globex", "name": "Someone Else"}, person_id="p-ada", policy="fill"))
    assert answer == {"status": "updated", "person_id": "p-ada", "fields": ["company_name"]}
    assert stardex.calls == [("GET", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]


def test_fill_reads_the_person_for_a_linkedin_url_alone(mock):
    """A LinkedIn URL the event's person does not show is unknown, as every other field is: the
    person is read, and the URL added where Stardex shows none (kept where it shows one)."""
    stardex = Stardex(mock, {**ADA, "linkedin_public_id": None})
    event = mapped({"linkedin_url": "https://www.linkedin.com/in/ada"}, person_id="p-ada", policy="fill")
    assert deliver(deliverer(), event) == {"status": "updated", "person_id": "p-ada", "fields": ["linkedin_url"]}
    assert stardex.calls == [("GET", "/persons/p-ada"), ("PATCH", "/persons/p-ada")]
    stardex.persons["p-ada"]["linkedin_public_id"] = "set-by-a-recruiter"
    assert deliver(deliverer(), event)["reason"] == "no_change"


def test_fill_never_writes_from_memory(mock):
    """The memory says Ada has no company; a recruiter sets one; the next form event must not replace it."""
    stardex, target = Stardex(mock, {**ADA, "current_company_name": None}), deliverer()
    deliver(target, mapped({"current_job_title": "Analyst"}, person_id="p-ada", policy="fill"))
    stardex.persons["p-ada"]["current_company_name"] = "Set By A Recruiter"
    answer = deliver(target, mapped({"company_name": "Typed By A Respondent"}, person_id="p-ada", policy="fill"))
    assert answer["reason"] == "no_change"
    assert stardex.calls == [("GET", "/persons/p-ada"), ("GET", "/persons/p-ada")]
    assert stardex.persons["p-ada"]["current_company_name"] == "Set By A Recruiter"


# ---- notes -----------------------------------------------------------------------------------------

NOTE = NoteRequest("secondary_note", "Talent community sign-up",
                   (("First name", "Ada"), ("Why do you want to join?", "Engines,\nmostly.")), "evt-42")
NOTE_BODY = ("Talent community sign-up\n\nFirst name\nAda\n\nWhy do you want to join?\nEngines,\nmostly.\n\n"
             "stardex-webhook delivery: evt-42")


def test_the_note_is_written_with_its_exact_body_after_looking_for_it(mock):
    stardex = Stardex(mock, ADA)
    answer = deliver(deliverer(), mapped({"company_name": "Globex"}, emails=["ada@example.org"], policy="fill", note=NOTE))
    assert answer == {"status": "updated", "person_id": "p-ada", "fields": [], "note": "written"}
    assert stardex.calls == [("POST", "/persons/search"), ("GET", "/persons/p-ada/activities"),
                             ("POST", "/person-activities")]
    assert stardex.bodies[2] == {"person_id": "p-ada", "activity_type": "secondary_note", "activity_content": NOTE_BODY}
    assert note_text(NOTE) == NOTE_BODY


def test_a_retried_delivery_never_writes_the_note_twice(mock):
    """The sender retries (say our answer was lost): another instance, with no memory, gets it."""
    stardex = Stardex(mock, ADA)
    event = mapped({"phone_numbers": [phone("+14155550123")]}, emails=["ada@example.org"], policy="fill", note=NOTE)
    first = deliver(deliverer(), event)
    stardex.persons["p-ada"]["phones"] = [phone("+442079460958")]  # as if the first PATCH never happened
    second = deliver(deliverer(), event)
    assert (first["note"], second["note"]) == ("written", "already_written")
    assert second["fields"] == ["phone_numbers"]
    assert len(stardex.activities["p-ada"]) == 1
    assert stardex.calls.count(("POST", "/person-activities")) == 1


def test_a_note_whose_answer_is_lost_is_looked_for_before_a_second_attempt(mock):
    stardex = Stardex(mock, ADA)
    stardex.lose_next_activity_answer = True
    answer = deliver(deliverer(), mapped({"current_job_title": "Analyst"}, person_id="p-ada", note=NOTE))
    assert answer["note"] == "written"
    assert stardex.calls == [("PATCH", "/persons/p-ada"), ("GET", "/persons/p-ada/activities"),
                             ("POST", "/person-activities"), ("GET", "/persons/p-ada/activities")]
    assert len(stardex.activities["p-ada"]) == 1


def test_no_note_when_the_person_is_not_found(mock):
    stardex = Stardex(mock)
    with pytest.raises(Unprocessable) as caught:
        deliver(deliverer(), mapped({"company_name": "Globex"}, emails=["nobody@example.org"], policy="fill", note=NOTE))
    assert caught.value.reason == "person_not_found"
    assert stardex.calls == [("POST", "/persons/search")]


def test_a_note_without_a_delivery_id_is_marked_by_its_content():
    anonymous = NoteRequest("secondary_note", "Form", (("Q", "A"),), None)
    assert note_marker(anonymous).startswith("stardex-webhook submission: ")
    assert note_marker(anonymous) == note_marker(NoteRequest("secondary_note", "Form", (("Q", "A"),), None))
    assert note_marker(anonymous) != note_marker(NoteRequest("secondary_note", "Form", (("Q", "B"),), None))
    assert note_text(anonymous).endswith("\n\n" + note_marker(anonymous))


def test_a_created_person_gets_the_note_without_a_look(mock):
    stardex, target = Stardex(mock), deliverer()
    event = mapped({"name": "Ada Lovelace", "linkedin_url": "https://www.linkedin.com/in/ada"},
                   linkedin_url="https://www.linkedin.com/in/ada", create=True, note=NOTE)
    answer = deliver(target, event)
    assert answer == {"status": "updated", "person_id": "p-new-0", "fields": ["linkedin_url", "name"], "created": True,
                      "note": "written"}
    assert stardex.calls == [("POST", "/persons/search"), ("POST", "/persons"), ("POST", "/person-activities")]
    assert deliver(target, event) == {"status": "ignored", "reason": "no_change", "person_id": "p-new-0",
                                      "note": "already_written"}
    assert stardex.calls[3:] == [("GET", "/persons/p-new-0/activities")], "remembered: no search, no second create"


def test_a_create_stardex_answers_with_a_person_made_meanwhile_writes_this_events_values_to_it():
    """Two events for one new person, near-simultaneous: both search and miss, the other creates first,
    and Stardex's create of this one (deduplicated on the LinkedIn URL, as the fake does) answers the
    person the other made, unchanged. This event's values must then reach that person, not be
    reported written (``created``, ``fields``) and dropped."""
    url = "https://www.linkedin.com/in/ada"
    with FakeStardex() as fake:
        client = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter())
        target = Deliverer(load_settings({}), lambda: client, JsonLog())
        search, made = client.search_persons, []

        def search_then_the_other_event_creates(deadline, **query):
            found = search(deadline, **query)
            if "linkedin_url" in query:  # the last search of this event has missed
                made.append(fake.add_person(name="Ada Lovelace", linkedin_url=url, emails=["ada@work.example"],
                                            current_job_title="Analyst"))
            return found

        client.search_persons = search_then_the_other_event_creates
        event = mapped({"name": "Ada Lovelace", "linkedin_url": url, "current_job_title": "Engineer",
                        "emails": [email("ada@home.example")]}, emails=["ada@home.example"], linkedin_url=url, create=True)
        answer = target.deliver(event, {}, Deadline(5))
        stored = fake.person(made[0])
    assert answer["person_id"] == made[0] and answer["status"] == "updated" and "created" not in answer
    assert stored["current_job_title"] == "Engineer"
    assert [item["value"] for item in stored["emails"]] == ["ada@work.example", "ada@home.example"]
