"""contacts: the union that keeps Stardex from dropping a person's existing emails and phones."""

from stardex_webhook.contacts import merge_contacts, touches_contacts


def digits_only(number: str) -> str:
    """A stand-in comparison key for phone numbers: the real one (E.164) is tested in transforms."""
    return "".join(ch for ch in number if ch.isdigit())


def email(value, kind="personal"):
    return {"contact_data_type": kind, "value": value}


def phone(value, kind="mobile"):
    return {"contact_data_type": kind, "value": value}


def test_existing_emails_come_first_and_new_ones_are_added():
    person = {"emails": [email("old@example.org", "work")]}
    merged = merge_contacts({"emails": [email("new@example.org")]}, person, digits_only)
    assert merged["emails"] == [email("old@example.org", "work"), email("new@example.org")]


def test_emails_are_compared_case_insensitively_and_the_stored_spelling_is_kept():
    person = {"emails": [email("Marta@Example.org", "work")]}
    merged = merge_contacts({"emails": [email("marta@example.org")], "name": "Marta"}, person, digits_only)
    assert "emails" not in merged, "a list that adds nothing is not sent"
    assert merged == {"name": "Marta"}


def test_phones_are_read_from_the_phones_key_and_compared_by_key():
    person = {"phones": [phone("+351 910 000 111")]}
    merged = merge_contacts({"phone_numbers": [phone("+351910000111"), phone("+14155550123")]}, person, digits_only)
    assert merged["phone_numbers"] == [phone("+351 910 000 111"), phone("+14155550123")]


def test_existing_entries_without_a_type_get_the_default_type_and_blanks_are_skipped():
    person = {"emails": ["plain@example.org", {"value": "  "}, {"value": "typed@example.org"}, 7]}
    merged = merge_contacts({"emails": [email("new@example.org", "work")]}, person, digits_only)
    assert merged["emails"] == [
        email("plain@example.org"),
        email("typed@example.org"),
        email("new@example.org", "work"),
    ]


def test_other_fields_and_the_input_are_left_untouched():
    update = {"emails": [email("new@example.org")], "current_job_title": "CTO"}
    merged = merge_contacts(update, {}, digits_only)
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
    merged = merge_contacts(update, person, digits_only)
    assert merged["emails"][:2] == [email("x@example.org", "personal"), email("w@example.org", "work")]
    assert merged["phone_numbers"][0] == phone("+14155550100", "mobile")
