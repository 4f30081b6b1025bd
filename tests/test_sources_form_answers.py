"""form_answers: a question matched by what its title asks for, in several languages (issue 22)."""

from __future__ import annotations

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


def test_every_phrasing_matches_its_own_meaning():
    """No phrasing is shadowed by a longer one of another meaning, or tied with one."""
    for meaning, phrasings in PHRASINGS.items():
        for phrasing in phrasings:
            assert meaning_of(phrasing) == meaning, phrasing


def test_field_sources_name_the_question_each_field_came_from():
    update = {"first_name": "Lian", "emails": [{"contact_data_type": "personal", "value": "lian@example.com"}]}
    questions = (("first_name", "What is your first name?"), ("email", "Your email"), ("company", "Company"))
    assert field_sources(update, questions) == (("first_name", "What is your first name?"), ("emails", "Your email"))
