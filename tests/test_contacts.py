"""contacts: the union that keeps Stardex from dropping a person's existing emails and phones, and
when two entries are one."""

import json

import pytest
import responses

from stardex_webhook.contacts import touches_contacts
from stardex_webhook.policy import plan_update
from tests.conftest import PERSON_ID, signed


def merge_contacts(update, person, region):
    """What an overwrite sends of ``update`` to ``person``: contact lists merged with what is stored."""
    return plan_update(update, person, "overwrite", region).body


def email(value, kind="personal"):
    return {"contact_data_type": kind, "value": value}


def phone(value, kind="mobile"):
    return {"contact_data_type": kind, "value": value}


def test_existing_emails_come_first_and_new_ones_are_added():
    person = {"emails": [email("old@example.org", "work")]}
    merged = merge_contacts({"emails": [email("new@example.org")]}, person, None)
    assert merged["emails"] == [email("old@example.org", "work"), email("new@example.org")]


def test_emails_are_compared_case_insensitively_and_the_stored_spelling_is_kept():
    person = {"emails": [email("Marta@Example.org", "work")]}
    merged = merge_contacts({"emails": [email("marta@example.org")], "name": "Marta"}, person, None)
    assert "emails" not in merged, "a list that adds nothing is not sent"
    assert merged == {"name": "Marta"}


@pytest.mark.parametrize(
    "stored, sent, region",
    [
        ("+14155550199", "(415) 555-0199", None),  # national and international forms, no region set
        ("(415) 555-0199", "+1 415 555 0199", None),
        ("1 (415) 555-0199", "+14155550199", None),  # the country code written without its +
        ("+44 7700 900123", "+447700900123", None),  # phonenumbers calls it invalid: the digits decide
        ("0044 7700 900123", "+447700900123", None),
        ("07700 900123", "+447700900123", "GB"),  # the trunk prefix, in the region set
        ("+351 910 000 111", "+351910000111", "GB"),
        ("live:marta.q", " LIVE:marta.q", None),  # no digits: the text decides
    ],
)
def test_one_number_in_two_forms_is_stored_once(stored, sent, region):
    merged = merge_contacts({"phone_numbers": [phone(sent)]}, {"phones": [phone(stored)]}, region)
    assert "phone_numbers" not in merged


@pytest.mark.parametrize(
    "stored, sent, region",
    [
        ("+14155550199", "+14155550198", None),
        ("+14155550199", "+444155550199", None),  # same national digits, another country
        ("(415) 555-0199", "+1 415 555 0199", "GB"),  # the region places the national one in GB
        ("07700 900123", "7700 900124", None),
    ],
)
def test_different_numbers_are_both_kept(stored, sent, region):
    merged = merge_contacts({"phone_numbers": [phone(sent)]}, {"phones": [phone(stored)]}, region)
    assert merged["phone_numbers"] == [phone(stored), phone(sent)]


def test_existing_entries_without_a_type_get_the_default_type_and_blanks_are_skipped():
    person = {"emails": ["plain@example.org", {"value": "  "}, {"value": "typed@example.org"}, 7]}
    merged = merge_contacts({"emails": [email("new@example.org", "work")]}, person, None)
    assert merged["emails"] == [
        email("plain@example.org"),
        email("typed@example.org"),
        email("new@example.org", "work"),
    ]


def test_other_fields_and_the_input_are_left_untouched():
    update = {"emails": [email("new@example.org")], "current_job_title": "CTO"}
    merged = merge_contacts(update, {}, None)
    assert merged == update
    assert merged is not update


def test_touches_contacts_only_for_non_empty_lists():
    assert touches_contacts({"emails": [email("a@example.org")]})
    assert touches_contacts({"phone_numbers": [phone("+14155550123")]})
    assert not touches_contacts({"name": "A", "emails": []})


def test_stored_types_stardex_does_not_document_become_the_default_type():
    person = {"emails": [{"contact_data_type": "Other", "value": "x@example.org"}, {"contact_data_type": "WORK", "value": "w@example.org"}],
              "phones": [{"contact_data_type": "home", "value": "+14155550100"}]}
    update = {"emails": [email("new@example.org")], "phone_numbers": [phone("+14155550123")]}
    merged = merge_contacts(update, person, None)
    assert merged["emails"][:2] == [email("x@example.org", "personal"), email("w@example.org", "work")]
    assert merged["phone_numbers"][0] == phone("+14155550100", "mobile")


def test_a_stored_address_the_schema_would_refuse_is_sent_back_as_stored(make_client):
    """The sender's entries are judged; the person's own are not, or one odd stored address would
    make every later email update for that person a 422."""
    api = "https://stardex.test/v1"
    stored = [email("legacy@intranet.local", "work"), email("Old.Name@Example.org")]
    body = {"stardex_person_id": PERSON_ID, "emails": [email("new@example.org")]}
    with responses.RequestsMock() as stardex:
        stardex.get(f"{api}/persons/{PERSON_ID}", json={"success": True, "data": {"id": PERSON_ID, "emails": stored}})
        stardex.patch(f"{api}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
        raw, headers = signed("generic", body)
        answer = make_client().post("/generic", data=raw, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        assert json.loads(stardex.calls[1].request.body) == {"emails": [*stored, email("new@example.org")]}
