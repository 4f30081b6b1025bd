"""resolver: id, then search by email, then by LinkedIn URL, then an opted-in create; never a guess."""

from dataclasses import dataclass, field

import pytest

from stardex_webhook.errors import RetryLater, Unprocessable
from stardex_webhook.resolver import resolve_person
from stardex_webhook.stardex import StardexError

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


def test_create_needs_a_name_and_a_linkedin_url():
    client = RecordingClient(create_answer={"id": "new-1"})
    with pytest.raises(Unprocessable) as caught:
        resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {"first_name": "A"}, True)
    assert caught.value.reason == "person_not_found"
    assert not any(kind == "create" for kind, _ in client.calls)


@pytest.mark.parametrize("status, expected", [(401, RetryLater), (403, RetryLater), (400, Unprocessable)])
def test_stardex_refusals_become_pipeline_errors(status, expected):
    client = RecordingClient(error=StardexError(status, "SOME_CODE", "message"))
    with pytest.raises(expected):
        resolve_person(client, DEADLINE, Ref(emails=["a@example.org"]), {}, False)
