"""policy: the write plan of one update against the person as Stardex stores it, field by field."""

from __future__ import annotations

import pytest

from stardex_webhook.policy import (
    ADD, CHANGE, FILL_KEEPS, FILL_NOT_SHOWN, KEEP, NOT_SHOWN, ON_JOB, REQUEST_ALONE, REQUEST_SENT, SAME, STORED,
    EntryPlan, FieldPlan, linkedin_public_id, person_after, plan_update,
)

ATTRIBUTE = "0d7c3f5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


def email(value, kind="personal"):
    return {"contact_data_type": kind, "value": value}


def phone(value, kind="mobile"):
    return {"contact_data_type": kind, "value": value}


# The person as GET /v1/persons/{id} answers it.
STORED_PERSON = {
    "id": "p-1", "name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
    "current_job_title": "Analyst", "current_company_name": "Analytical Engines", "linkedin_public_id": "ada-lovelace",
    "emails": [email("ada@example.org", "work")], "phones": [phone("+442079460958")],
    "candidates": [{"candidate_id": "c-1", "job_id": "job-1"}],
}
EMPTY_PERSON = {
    "id": "p-2", "name": None, "first_name": None, "last_name": None, "current_job_title": None,
    "current_company_name": None, "linkedin_public_id": None, "emails": [], "phones": [], "candidates": [],
}


# (field, value, person, policy) -> (action, before, reason, sent)
SCALARS = [
    # a text field the person has not: added under both policies
    ("current_job_title", "CTO", EMPTY_PERSON, "overwrite", ADD, None, None, True),
    ("current_job_title", "CTO", EMPTY_PERSON, "fill", ADD, None, None, True),
    # the same value, whatever its case and spacing: kept under both
    ("current_job_title", "  analyst ", STORED_PERSON, "overwrite", KEEP, "Analyst", SAME, False),
    ("current_job_title", "ANALYST", STORED_PERSON, "fill", KEEP, "Analyst", SAME, False),
    # another value: replaced under overwrite, kept under fill
    ("current_job_title", "CTO", STORED_PERSON, "overwrite", CHANGE, "Analyst", None, True),
    ("current_job_title", "CTO", STORED_PERSON, "fill", KEEP, "Analyst", FILL_KEEPS, False),
    # the company is read as current_company_name
    ("company_name", "Analytical  engines", STORED_PERSON, "overwrite", KEEP, "Analytical Engines", SAME, False),
    ("company_name", "Globex", STORED_PERSON, "overwrite", CHANGE, "Analytical Engines", None, True),
    ("company_name", "Globex", STORED_PERSON, "fill", KEEP, "Analytical Engines", FILL_KEEPS, False),
    ("company_name", "Globex", EMPTY_PERSON, "fill", ADD, None, None, True),
    # names
    ("name", "ada   LOVELACE", STORED_PERSON, "fill", KEEP, "Ada Lovelace", SAME, False),
    ("name", "Mallory Evil", STORED_PERSON, "fill", KEEP, "Ada Lovelace", FILL_KEEPS, False),
    ("name", "Ada King", STORED_PERSON, "overwrite", CHANGE, "Ada Lovelace", None, True),
    ("first_name", "Ada", EMPTY_PERSON, "fill", ADD, None, None, True),
    # LinkedIn by public id: another URL form of the same profile is the same value
    ("linkedin_url", "https://linkedin.com/in/Ada-Lovelace/", STORED_PERSON, "overwrite", KEEP, "ada-lovelace", SAME, False),
    ("linkedin_url", "https://www.linkedin.com/in/someone-else", STORED_PERSON, "overwrite", CHANGE, "ada-lovelace", None, True),
    ("linkedin_url", "https://www.linkedin.com/in/someone-else", STORED_PERSON, "fill", KEEP, "ada-lovelace", FILL_KEEPS, False),
    ("linkedin_url", "https://www.linkedin.com/in/someone-else", EMPTY_PERSON, "fill", ADD, None, None, True),
    # a field the read does not show: sent under overwrite, not under fill
    ("address", "10 Downing Street", STORED_PERSON, "overwrite", CHANGE, None, NOT_SHOWN, True),
    ("address", "10 Downing Street", STORED_PERSON, "fill", KEEP, None, FILL_NOT_SHOWN, False),
    ("linkedin_headline", "Engineer", {**STORED_PERSON, "linkedin_headline": "engineer"}, "overwrite", KEEP, "engineer", SAME, False),
    # a job: joining one is an addition under both policies; kept when the person is on it
    ("job_id", "job-1", STORED_PERSON, "overwrite", KEEP, "job-1", ON_JOB, False),
    ("job_id", "job-1", STORED_PERSON, "fill", KEEP, "job-1", ON_JOB, False),
    ("job_id", "job-2", STORED_PERSON, "fill", ADD, None, None, True),
    ("job_id", "job-2", STORED_PERSON, "overwrite", ADD, None, None, True),
    ("job_id", "job-2", {"id": "p-1"}, "fill", ADD, None, NOT_SHOWN, True),
    # convenience contacts: sent when the value is not in the person's list yet
    ("work_email", "ADA@example.org", STORED_PERSON, "overwrite", KEEP, "ADA@example.org", SAME, False),
    ("work_email", "ada@engines-example.com", STORED_PERSON, "fill", ADD, None, None, True),
    ("mobile_phone", "+44 20 7946 0958", STORED_PERSON, "fill", KEEP, "+44 20 7946 0958", SAME, False),
    ("work_phone", "+14155550123", STORED_PERSON, "overwrite", ADD, None, None, True),
    ("personal_email", "ada@example.com", {"id": "p-1"}, "overwrite", ADD, None, NOT_SHOWN, True),
    ("personal_email", "ada@example.com", {"id": "p-1"}, "fill", KEEP, None, FILL_NOT_SHOWN, False),
]


@pytest.mark.parametrize("field, value, person, policy, action, before, reason, sent", SCALARS)
def test_each_field_kind_under_each_policy(field, value, person, policy, action, before, reason, sent):
    plan = plan_update({field: value}, person, policy)
    assert plan.fields == (FieldPlan(field, action, before, value, reason),)
    assert plan.body == ({field: value} if sent else {})


@pytest.mark.parametrize("policy", ["overwrite", "fill"])
def test_custom_fields_are_compared_only_with_what_was_written(policy):
    fields = [{"attribute_id": ATTRIBUTE, "value": "Yes"}]
    unread = plan_update({"custom_fields": fields}, STORED_PERSON, policy)
    if policy == "overwrite":
        assert unread.fields == (FieldPlan("custom_fields", CHANGE, None, fields, NOT_SHOWN),)
        assert unread.body == {"custom_fields": fields}
    else:
        assert unread.fields == (FieldPlan("custom_fields", KEEP, None, fields, FILL_NOT_SHOWN),)
        assert unread.body == {}
    assert unread.unknown == ("custom_fields",)
    written = person_after(STORED_PERSON, {"custom_fields": fields})
    assert plan_update({"custom_fields": fields}, written, policy).fields == (
        FieldPlan("custom_fields", KEEP, fields, fields, SAME),)


@pytest.mark.parametrize("policy", ["overwrite", "fill"])
def test_enrich_record_rides_along_with_another_change_only(policy):
    alone = plan_update({"current_job_title": "Analyst", "enrich_record": True}, STORED_PERSON, policy)
    assert alone.body == {}
    assert alone.field("enrich_record") == FieldPlan("enrich_record", KEEP, None, True, REQUEST_ALONE)
    along = plan_update({"company_name": "Globex", "enrich_record": True}, EMPTY_PERSON, policy)
    assert along.body == {"company_name": "Globex", "enrich_record": True}
    assert along.field("enrich_record") == FieldPlan("enrich_record", ADD, None, True, REQUEST_SENT)


@pytest.mark.parametrize("policy", ["overwrite", "fill"])
def test_contacts_are_merged_entry_by_entry_under_both_policies(policy):
    update = {"emails": [email("Ada@Example.org"), email("ada@engines-example.com", "work")],
              "phone_numbers": [phone("+1 415 555 0123")]}
    plan = plan_update(update, STORED_PERSON, policy)
    assert plan.field("emails") == FieldPlan(
        "emails", ADD, [email("ada@example.org", "work")],
        [email("ada@example.org", "work"), email("ada@engines-example.com", "work")], None,
        (EntryPlan(KEEP, "work", "ada@example.org", STORED), EntryPlan(ADD, "work", "ada@engines-example.com"),
         EntryPlan(KEEP, "personal", "Ada@Example.org", SAME)),
    )
    assert plan.field("phone_numbers").entries == (
        EntryPlan(KEEP, "mobile", "+442079460958", STORED), EntryPlan(ADD, "mobile", "+1 415 555 0123"))
    assert plan.body == {
        "emails": [email("ada@example.org", "work"), email("ada@engines-example.com", "work")],
        "phone_numbers": [phone("+442079460958"), phone("+1 415 555 0123")],
    }


def test_a_contact_list_that_adds_nothing_is_kept_and_not_sent():
    plan = plan_update({"emails": [email("ADA@example.org")]}, STORED_PERSON, "overwrite")
    assert plan.fields == (FieldPlan("emails", KEEP, [email("ada@example.org", "work")],
                                     [email("ada@example.org", "work")], SAME,
                                     (EntryPlan(KEEP, "work", "ada@example.org", STORED),
                                      EntryPlan(KEEP, "personal", "ADA@example.org", SAME))),)
    assert plan.body == {} and not plan.changes


def test_stored_entries_are_sent_back_as_stored_never_re_judged():
    odd = {"id": "p-1", "emails": [{"contact_data_type": "Work", "value": "not quite an address"}]}
    plan = plan_update({"emails": [email("ada@example.org")]}, odd, "fill")
    assert plan.body == {"emails": [email("not quite an address", "work"), email("ada@example.org")]}


def test_a_contact_list_the_person_does_not_show_is_unknown():
    plan = plan_update({"emails": [email("ada@example.org")]}, {"id": "p-1"}, "overwrite")
    assert plan.unknown == ("emails",)
    assert plan.field("emails").reason == NOT_SHOWN


def test_a_form_typed_with_another_persons_email_changes_nothing_of_theirs_under_fill():
    """The respondent typed Ada's email with their own name, company, title, LinkedIn and phone."""
    update = {"name": "Mallory Evil", "first_name": "Mallory", "last_name": "Evil", "company_name": "Evil Corp",
              "current_job_title": "Impostor", "linkedin_url": "https://www.linkedin.com/in/mallory",
              "emails": [email("ada@example.org")], "phone_numbers": [phone("+14155550199")]}
    plan = plan_update(update, STORED_PERSON, "fill")
    assert plan.body == {"phone_numbers": [phone("+442079460958"), phone("+14155550199")]}
    assert [(item.field, item.action) for item in plan.fields] == [
        ("name", KEEP), ("first_name", KEEP), ("last_name", KEEP), ("company_name", KEEP), ("current_job_title", KEEP),
        ("linkedin_url", KEEP), ("emails", KEEP), ("phone_numbers", ADD)]
    assert {item.reason for item in plan.fields[:6]} == {FILL_KEEPS}
    assert plan_update(update, STORED_PERSON, "overwrite").body == {
        "name": "Mallory Evil", "first_name": "Mallory", "last_name": "Evil", "company_name": "Evil Corp",
        "current_job_title": "Impostor", "linkedin_url": "https://www.linkedin.com/in/mallory",
        "phone_numbers": [phone("+442079460958"), phone("+14155550199")]}


def test_a_convenience_field_the_updates_own_list_carries_is_not_sent_again():
    """``emails: [x]`` with ``work_email: x`` (a generic sender filling both): the list is sent
    whole and Stardex adds a convenience value to it, so sending both would store x twice."""
    update = {"emails": [email("new@example.org")], "work_email": "NEW@example.org",
              "phone_numbers": [phone("+14155550123")], "mobile_phone": "+1 415 555 0123", "work_phone": "+14155550999"}
    for person in (STORED_PERSON, {}):  # read, or not shown (overwrite sends without a read)
        plan = plan_update(update, person, "overwrite")
        assert "work_email" not in plan.body and "mobile_phone" not in plan.body, plan.body
        assert plan.body["work_phone"] == "+14155550999", "a value the list does not carry is still sent"
        assert plan.field("work_email").action == KEEP and plan.field("work_email").reason == SAME


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError):
        plan_update({"name": "A"}, {}, "sometimes")


def test_the_person_after_a_write_is_what_a_read_would_show():
    body = {"company_name": "Globex", "linkedin_url": "https://www.linkedin.com/in/Ada-K",
            "phone_numbers": [phone("+442079460958"), phone("+14155550123")], "work_email": "ada@globex-example.com",
            "job_id": "job-2", "enrich_record": True}
    after = person_after(STORED_PERSON, body)
    assert after == {
        **STORED_PERSON, "current_company_name": "Globex", "linkedin_url": "https://www.linkedin.com/in/Ada-K",
        "linkedin_public_id": "ada-k", "phones": [phone("+442079460958"), phone("+14155550123")],
        "emails": [email("ada@example.org", "work"), email("ada@globex-example.com", "work")],
        "candidates": [{"candidate_id": "c-1", "job_id": "job-1"}, {"job_id": "job-2"}],
    }
    assert plan_update(body, after, "overwrite").body == {}, "the same event again changes nothing"
    assert STORED_PERSON["current_company_name"] == "Analytical Engines", "the person given is not changed"


def test_the_person_given_is_left_whole_by_every_kind_of_write():
    """person_after copies the person shallowly: each field it writes gets a new value, and no
    list or object of the person given is changed in place."""
    import copy

    given = copy.deepcopy(STORED_PERSON)
    body = {"emails": [email("new@example.org", "personal")], "phone_numbers": [phone("+14155550123")],
            "work_email": "ada@globex-example.com", "mobile_phone": "+442079460958", "job_id": "job-2",
            "name": "Ada K", "linkedin_url": "https://www.linkedin.com/in/Ada-K"}
    after = person_after(given, body)
    after = person_after(after, {"work_email": "other@globex-example.com", "job_id": "job-3"})
    assert given == STORED_PERSON
    assert after["emails"][-1] == email("other@globex-example.com", "work")
    assert [item["job_id"] for item in after["candidates"]][-2:] == ["job-2", "job-3"]


@pytest.mark.parametrize("url, public_id", [("https://www.linkedin.com/in/Ada-Lovelace/", "ada-lovelace"),
                                            ("https://linkedin.com/in/ad%C3%A1?trk=x", "adá"),
                                            ("https://www.linkedin.com/company/globex", None), (None, None)])
def test_linkedin_public_id(url, public_id):
    assert linkedin_public_id(url) == public_id


@pytest.mark.parametrize("field, value, action, reason", [
    ("first_name", "Ada", ADD, None), ("last_name", "lovelace", ADD, None),
    ("first_name", "Mallory", KEEP, "fill: the person already has a name"),
    ("last_name", "Evil", KEEP, "fill: the person already has a name"),
])
def test_under_fill_a_name_part_is_added_only_when_the_stored_name_agrees(field, value, action, reason):
    person = {**EMPTY_PERSON, "name": "Ada  Lovelace"}
    assert plan_update({field: value}, person, "fill").fields == (FieldPlan(field, action, None, value, reason),)
    assert plan_update({field: value}, person, "overwrite").fields == (FieldPlan(field, ADD, None, value),)
