"""resolver: id, then search by email, then by LinkedIn URL, then an opted-in create; never a guess."""

import json
from dataclasses import dataclass, field

import pytest
import requests
import responses

from stardex_webhook.errors import RetryLater, Unprocessable
from stardex_webhook.deadline import Deadline
from stardex_webhook.resolver import MAX_SEARCH_EMAILS, KnownPerson, PersonMemory, resolve_person, size_in_bytes
from stardex_webhook.stardex import RateLimiter, StardexClient, StardexError

DEADLINE = object()  # the resolver only hands it on to the client


@dataclass
class Ref:
    id: str | None = None
    emails: list = field(default_factory=list)
    linkedin_url: str | None = None


class RecordingClient:
    """Answers searches from a table and records every call, like Stardex would be asked."""

    def __init__(self, by_email=None, by_linkedin=None, create_answer=None, error=None):
        self.by_email = by_email or {}
        self.by_linkedin = by_linkedin or {}
        self.create_answer = create_answer
        self.error = error
        self.calls = []

    def search_persons(self, deadline, *, email=None, linkedin_url=None, limit=2):
        assert deadline is DEADLINE
        self.calls.append(("search", email or linkedin_url))
        if self.error:
            raise self.error
        ids = self.by_email.get(email) if email else self.by_linkedin.get(linkedin_url)
        return [{"id": person_id} for person_id in ids or []]

    def create_person(self, deadline, body):
        self.calls.append(("create", body))
        return self.create_answer


def test_an_id_in_the_payload_is_used_without_any_call():
    client = RecordingClient()
    assert resolve_person(client, DEADLINE, Ref(id="p-1", emails=["a@example.org"]), {}, False).person_id == "p-1"
    assert client.calls == []


def test_search_by_each_email_in_turn_then_stop_at_the_first_match():
    client = RecordingClient(by_email={"second@example.org": ["p-2"]})
    ref = Ref(emails=["first@example.org", "second@example.org", "third@example.org"], linkedin_url="https://linkedin.com/in/x")
    assert resolve_person(client, DEADLINE, ref, {}, False).person_id == "p-2"
    assert client.calls == [("search", "first@example.org"), ("search", "second@example.org")]


def test_more_emails_than_the_bound_are_refused_before_any_search():
    emails = [f"e{index}@example.org" for index in range(MAX_SEARCH_EMAILS + 1)]
    client = RecordingClient()
    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(emails=emails), {}, False)
    assert caught.value.reason == "too_many_person_keys"
    assert client.calls == []

    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(emails=emails[:-1]), {}, False)
    assert caught.value.reason == "person_not_found"
    assert len(client.calls) == MAX_SEARCH_EMAILS  # up to the bound, each is searched


def test_linkedin_is_searched_when_no_email_matches():
    client = RecordingClient(by_linkedin={"https://linkedin.com/in/x": ["p-3"]})
    ref = Ref(emails=["a@example.org"], linkedin_url="https://linkedin.com/in/x")
    assert resolve_person(client, DEADLINE, ref, {}, False).person_id == "p-3"
    assert client.calls == [("search", "a@example.org"), ("search", "https://linkedin.com/in/x")]


def test_several_matches_are_refused_not_guessed():
    client = RecordingClient(by_email={"a@example.org": ["p-1", "p-2"]})
    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False)
    assert caught.value.reason == "ambiguous_person"
    assert "a@example.org" not in str(caught.value.body()), "no personal data in the answer"


def test_no_match_is_person_not_found():
    with pytest.raises(Unprocessable) as caught:
        resolve_person(RecordingClient(), DEADLINE, Ref(emails=["a@example.org"]), {}, False)
    assert caught.value.reason == "person_not_found"


def test_nothing_to_search_by_is_its_own_reason():
    client = RecordingClient()
    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(), {"current_job_title": "CTO"}, False)
    assert caught.value.reason == "no_person_key"
    assert client.calls == []


def test_create_when_opted_in_sends_plain_contact_strings_and_keeps_the_rest_for_a_patch():
    client = RecordingClient(create_answer={"id": "new-1"})
    update = {
        "first_name": "Chidi",
        "last_name": "Okafor",
        "linkedin_url": "https://www.linkedin.com/in/chidi",
        "emails": [{"contact_data_type": "personal", "value": "chidi@example.com"}],
        "linkedin_headline": "Engineer",
    }
    resolution = resolve_person(client, DEADLINE, Ref(emails=["chidi@example.com"]), update, True)
    assert resolution.person_id == "new-1" and resolution.created
    assert resolution.remaining_update == {"linkedin_headline": "Engineer"}
    kind, body = client.calls[-1]
    assert kind == "create"
    assert body == {
        "name": "Chidi Okafor",
        "first_name": "Chidi",
        "last_name": "Okafor",
        "linkedin_url": "https://www.linkedin.com/in/chidi",
        "emails": ["chidi@example.com"],
    }


def test_create_does_not_send_a_convenience_value_its_own_list_carries():
    """Stardex adds ``work_email`` to the ``emails`` it is given: the same address must go once."""
    client = RecordingClient(create_answer={"id": "new-1"})
    update = {"name": "Chidi Okafor", "linkedin_url": "https://www.linkedin.com/in/chidi",
              "emails": [{"contact_data_type": "personal", "value": "chidi@example.com"}], "work_email": "Chidi@Example.com",
              "phone_numbers": [{"contact_data_type": "mobile", "value": "+14155550123"}], "mobile_phone": "+14155550123",
              "personal_email": "chidi@home.example"}
    resolve_person(client, DEADLINE, Ref(emails=["chidi@example.com"]), update, True)
    body = client.calls[-1][1]
    assert "work_email" not in body and "mobile_phone" not in body, body
    assert body["personal_email"] == "chidi@home.example" and body["emails"] == ["chidi@example.com"]


def test_create_needs_a_name_and_a_linkedin_url():
    client = RecordingClient(create_answer={"id": "new-1"})
    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {"first_name": "A"}, True)
    assert caught.value.reason == "person_not_found"
    assert not any(kind == "create" for kind, _ in client.calls)


@pytest.mark.parametrize("status, expected", [(401, RetryLater), (403, RetryLater), (400, Unprocessable)])
def test_stardex_refusals_become_pipeline_errors(status, expected):
    client = RecordingClient(error=StardexError(status, "SOME_CODE"))
    with pytest.raises(expected):
        resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False)


@pytest.mark.parametrize("lost", ["answer", "request"])
def test_a_create_whose_answer_is_lost_is_looked_for_before_a_second_attempt(lost):
    """Through the real client: the first POST /persons times out, having created the person
    (its answer was lost) or not (the request was lost). Either way one event makes one person."""
    base, stored = "https://stardex.test/v1", []

    def create(request):
        stored.append(json.loads(request.body)["linkedin_url"])
        if lost == "answer" and len(stored) == 1:
            raise requests.ReadTimeout("the answer never came")
        return 201, {}, json.dumps({"success": True, "data": {"id": f"new-{len(stored)}"}})

    def search(request):
        url = json.loads(request.body).get("linkedin_url")
        found = [{"id": f"new-{stored.index(url) + 1}"}] if url in stored else []
        return 200, {}, json.dumps({"success": True, "data": found})

    update = {"name": "Chidi Okafor", "linkedin_url": "https://www.linkedin.com/in/chidi", "linkedin_headline": "Engineer"}
    client = StardexClient(base, lambda refresh, deadline: "key", RateLimiter(), sleep=lambda seconds: None)
    with responses.RequestsMock() as mock:
        if lost == "request":  # answered first: responses takes matches in order, the last one repeats
            mock.add(responses.POST, f"{base}/persons", body=requests.ReadTimeout("lost on the way"))
        mock.add_callback(responses.POST, f"{base}/persons", callback=create)
        mock.add_callback(responses.POST, f"{base}/persons/search", callback=search)
        resolution = resolve_person(client, Deadline(5), Ref(linkedin_url=update["linkedin_url"]), update, True)
        creates = [call for call in mock.calls if call.request.url.endswith("/persons")]
    assert len(creates) == (2 if lost == "request" else 1)
    assert stored == [update["linkedin_url"]]
    assert (resolution.person_id, resolution.created) == ("new-1", True)
    assert resolution.remaining_update == {"linkedin_headline": "Engineer"}


# ---- the person memory ------------------------------------------------------------------------


def test_a_search_answer_comes_back_with_the_resolution():
    client = RecordingClient(by_email={"a@example.org": ["p-1"]})
    resolution = resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False)
    assert resolution.person == {"id": "p-1"} and not resolution.remembered


def test_a_remembered_key_needs_no_search_and_keys_keep_their_order():
    memory = PersonMemory(300)
    client = RecordingClient(by_email={"second@example.org": ["p-2"]})
    ref = Ref(emails=["first@example.org", "second@example.org"])
    assert resolve_person(client, DEADLINE, ref, {}, False, memory=memory).person_id == "p-2"
    assert client.calls == [("search", "first@example.org"), ("search", "second@example.org")]
    again = resolve_person(client, DEADLINE, ref, {}, False, memory=memory)
    assert (again.person_id, again.remembered, again.person) == ("p-2", True, None)
    # The first email matched nothing, and a miss is not remembered: it is searched again, first.
    assert client.calls[2:] == [("search", "first@example.org")]


def test_a_miss_is_never_remembered_so_a_create_always_follows_a_search():
    memory = PersonMemory(300)
    client = RecordingClient(create_answer={"id": "new-1"})
    update = {"name": "Ada Lovelace", "linkedin_url": "https://www.linkedin.com/in/ada"}
    ref = Ref(linkedin_url=update["linkedin_url"])
    assert resolve_person(client, DEADLINE, ref, update, True, memory=memory).created
    assert [kind for kind, _ in client.calls] == ["search", "create"]
    assert memory.person_id(("linkedin_url", update["linkedin_url"])) is None


def test_several_matches_are_refused_and_not_remembered():
    memory = PersonMemory(300)
    client = RecordingClient(by_email={"a@example.org": ["p-1", "p-2"]})
    for _ in range(2):
        with pytest.raises(Unprocessable):
            resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False, memory=memory)
    assert len(client.calls) == 2


def test_the_memory_expires_is_bounded_and_forgets_a_person_with_its_keys():
    clock = [0.0]
    memory = PersonMemory(300, size=2, clock=lambda: clock[0])
    memory.remember_id(("email", "a@example.org"), "p-1")
    memory.remember_id(("linkedin_url", "https://www.linkedin.com/in/a"), "p-1")
    memory.remember_person("p-1", KnownPerson({"id": "p-1"}, read=True, fresh=True))
    assert memory.person("p-1") == KnownPerson({"id": "p-1"}, read=True, fresh=False), "never fresh"
    memory.forget("p-1")
    assert (memory.person_id(("email", "a@example.org")), memory.person("p-1")) == (None, None)
    for index in range(3):
        memory.remember_id(("email", f"{index}@example.org"), f"p-{index}")
    assert memory.person_id(("email", "0@example.org")) is None, "the oldest is dropped"
    assert memory.person_id(("email", "2@example.org")) == "p-2"
    clock[0] = 300.0
    assert memory.person_id(("email", "2@example.org")) is None, "expired"


def test_a_memory_of_zero_seconds_remembers_nothing():
    memory = PersonMemory(0)
    memory.remember_id(("email", "a@example.org"), "p-1")
    assert memory.person_id(("email", "a@example.org")) is None


def large_person(index: int, field_bytes: int = 200_000) -> dict:
    """A person with four large text fields (the issue's 200 KB each): sizes in memory, not counts, matter."""
    return {"id": f"p-{index}", "name": f"Person {index}",
            **{f"field_{n}": chr(0x0416) * (field_bytes // 2) + str(index) for n in range(4)}}


def test_the_memory_is_bounded_in_bytes_not_only_in_persons():
    """2,000 persons of ~800 KB would be 1.6 GB under a bound by count: the byte bound drops the
    oldest first, so what is held stays under ``max_bytes``, and the newest are still known."""
    memory = PersonMemory(300, max_bytes=8 * 1024 * 1024)
    for index in range(60):
        memory.remember_person(f"p-{index}", KnownPerson(large_person(index)))
        assert memory.bytes <= memory.max_bytes
    assert memory.person("p-59") is not None
    assert memory.person("p-0") is None, "the oldest were dropped for the bytes"
    memory.forget("p-59")
    assert memory.bytes == sum(size_in_bytes(large_person(index)) for index in range(60)
                               if memory.person(f"p-{index}") is not None)


def test_a_person_too_large_for_the_memory_is_not_remembered():
    memory = PersonMemory(300, max_bytes=1024 * 1024)
    memory.remember_person("p-1", KnownPerson({"id": "p-1"}))
    memory.remember_person("p-huge", KnownPerson(large_person(2)))
    assert memory.person("p-huge") is None
    assert memory.person("p-1") is not None, "nothing else was pushed out for it"


def test_a_read_nested_as_deep_as_json_allows_is_measured():
    document: list = []
    for _ in range(50_000):
        document = [document]
    assert size_in_bytes({"id": "p-1", "deep": document}) > 50_000


@pytest.mark.parametrize("match", [{"name": "Ada Lovelace"}, {"id": None}, {"id": ""}, {"id": ["p-1"]}, "p-1", None])
@pytest.mark.parametrize("create", [False, True])
def test_a_search_answering_a_person_without_a_usable_id_is_retry_later_not_a_miss(match, create):
    """Stardex found someone but its answer does not say who: not "no match" (a 422 the sender drops,
    or, opted in, a create of a second person), but an odd answer a retry may get right."""
    base = "https://stardex.test/v1"
    client = StardexClient(base, lambda refresh, deadline: "key", RateLimiter(), sleep=lambda seconds: None)
    update = {"name": "Ada Lovelace", "linkedin_url": "https://www.linkedin.com/in/ada"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, f"{base}/persons/search", json={"success": True, "data": [match]})
        mock.add(responses.POST, f"{base}/persons", json={"success": True, "data": {"id": "new-1"}})
        with pytest.raises(RetryLater) as caught:
            resolve_person(client, Deadline(5), Ref(emails=["ada@example.org"], linkedin_url=update["linkedin_url"]),
                           update, create)
        assert not any(call.request.url.endswith("/persons") for call in mock.calls)
    assert caught.value.reason == "stardex_unexpected_answer"


@pytest.mark.parametrize("emails", [5, None, "ada@example.org", [None, 7]])
def test_a_create_answer_whose_emails_are_odd_is_no_crash(emails):
    client = RecordingClient(create_answer={"id": "new-1", "name": "Ada Lovelace", "emails": emails})
    update = {"name": "Ada Lovelace", "linkedin_url": "https://www.linkedin.com/in/ada",
              "emails": [{"contact_data_type": "work", "value": "ada@example.org"}]}
    resolution = resolve_person(client, DEADLINE, Ref(emails=["ada@example.org"]), update, True)
    assert resolution.person_id == "new-1"


def test_one_person_answered_twice_by_a_search_is_that_person_not_several():
    """A search answering the same person twice (a row per section joined in, say) names one person:
    422 ambiguous_person ("several persons match") would have the sender drop an event for no one else."""
    client = RecordingClient(by_email={"a@example.org": ["p-1", "p-1"]})
    assert resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False).person_id == "p-1"
