"""form_answers: a question matched by what its title asks for, in several languages (issue 22)."""

from __future__ import annotations

import json

import pytest

from stardex_webhook.sources.form_answers import PHRASINGS, field_sources, meaning_of


@pytest.mark.parametrize("title, meaning", [
    ("What is your first name?", "first_name"),
    ("Prénom", "first_name"),
    ("Vorname", "first_name"),
    ("Voornaam", "first_name"),
    ("What is your last name?", "last_name"),
    ("Nachname", "last_name"),
    ("Apellidos", "last_name"),
    ("Cognome", "last_name"),
    ("First and last name", "name"),
    ("Full Name", "name"),
    ("Nome completo", "name"),
    ("E-mail", "email"),
    ("What's your email address?", "email"),
    ("Adresse e-mail", "email"),
    ("Correo electrónico", "email"),
    ("Numéro de téléphone", "phone"),
    ("Telefonnummer", "phone"),
    ("Your phone number", "phone"),
    ("What's your company's name?", "company"),
    ("Arbeitgeber", "company"),
    ("Current job title", "job_title"),
    ("Puesto", "job_title"),
    ("Your LinkedIn profile URL", "linkedin"),
    ("Where are you based?", "address"),
    ("Wohnort", "address"),
])
def test_a_title_is_matched_after_case_punctuation_and_accents_are_normalised(title, meaning):
    assert meaning_of(title) == meaning


@pytest.mark.parametrize("title", [
    "Phone or email",  # two meanings: neither
    "Company website",  # about the company, not the person
    "Company size",
    "Tell us about the last company you worked at and why you left",  # a long question about something else
    "How did you hear about us?",
    "",
    None,
    42,
])
def test_a_title_that_asks_for_none_or_several_person_fields_matches_nothing(title):
    assert meaning_of(title) is None


@pytest.mark.parametrize("title", [
    "Referrer's email", "Email of the person who referred you", "Your manager's email", "Emergency contact phone",
    "Reference's phone number", "Hiring manager name", "Name of your recruiter", "Referrer's LinkedIn profile",
    "Previous company", "Former employer", "Desired job title", "Which role are you applying for?", "Position applied for",
])
def test_a_title_about_someone_else_or_another_time_is_not_the_respondents_field(title):
    """These matched the respondent's own email, phone, name, LinkedIn, company or title: a referrer's
    email found (and wrote to) the referrer's Stardex record, a previous employer became the company."""
    assert meaning_of(title) is None


def test_a_referrers_email_asked_first_does_not_find_the_referrer():
    """A Tally referral form asking "Referrer's email" before "Your email": the referrer's address was
    taken as the respondent's, so the respondent's name and phone went to the referrer's record."""
    from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
    from stardex_webhook.sources import SOURCES
    from tests.conftest import make_delivery

    fields = [{"key": "q1", "label": "Referrer's email", "type": "INPUT_EMAIL", "value": "referrer@example.com"},
              {"key": "q2", "label": "Your full name", "type": "INPUT_TEXT", "value": "Lian Chen"},
              {"key": "q3", "label": "Your email", "type": "INPUT_EMAIL", "value": "lian@example.com"}]
    body = json.dumps({"eventType": "FORM_RESPONSE", "data": {"fields": fields}}).encode()
    event = SOURCES["tally"].parse(make_delivery(body, 0))
    mapped = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["tally"].apply(event.payload, event)
    assert mapped.person.emails == ["lian@example.com"]
    assert mapped.update["emails"] == [{"contact_data_type": "personal", "value": "lian@example.com"}]


def test_every_phrasing_matches_its_own_meaning():
    """No phrasing is shadowed by a longer one of another meaning, or tied with one."""
    for meaning, phrasings in PHRASINGS.items():
        for phrasing in phrasings:
            assert meaning_of(phrasing) == meaning, phrasing


def test_field_sources_name_the_question_each_field_came_from():
    update = {"first_name": "Lian", "emails": [{"contact_data_type": "personal", "value": "lian@example.com"}]}
    questions = (("first_name", "What is your first name?"), ("email", "Your email"), ("company", "Company"))
    assert field_sources(update, questions) == (("first_name", "What is your first name?"), ("emails", "Your email"))
