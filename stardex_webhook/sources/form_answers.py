"""What the form-tool adapters share: a question's stable name, numbers as text, and an answer as a
person reads it (for the submission's transcript).

A form's questions are named by people ("First name", "E-mail address?"), so mappings read them
by a normalised name; the rule, as users meet it: docs/senders/README.md, "A question's name".
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any, Iterable

from ..transforms import is_blank, string
from ..records import Transcript

_NOT_NAME = re.compile(r"[^a-z0-9]+")
# The hidden or URL field that carries the Stardex person id by default (docs/contract.md).
PERSON_ID_FIELD = "stardex_person_id"


def normalise_name(title: object) -> str | None:
    """The key a mapping reads a question by, or None when the title leaves nothing."""
    if not isinstance(title, str):
        return None
    folded = "".join(char for char in unicodedata.normalize("NFKD", title) if not unicodedata.combining(char))
    return _NOT_NAME.sub("_", folded.lower()).strip("_") or None


def numbers_as_text(value: Any) -> Any:
    """The value with every number (in lists and objects too) written as text: Stardex fields are
    strings, and form tools send phones, ids and ratings as numbers. Booleans stay booleans."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return string(value)
    if isinstance(value, list):
        return [numbers_as_text(item) for item in value]
    if isinstance(value, dict):
        return {key: numbers_as_text(item) for key, item in value.items()}
    return value


def answer_text(value: Any) -> str:
    """An answer as one line of plain text: a list (checkboxes) joined with commas, an object
    (an address, a grid) as its parts, a yes/no as Yes/No; "" for an empty answer."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, (int, float)):
        return string(value) or ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return ", ".join(text for text in map(answer_text, value) if text)
    if isinstance(value, dict):
        url = value.get("url")
        if isinstance(url, str) and url.strip():  # a file upload or a link: its URL says it
            return url.strip()
        parts = ((str(key), answer_text(item)) for key, item in value.items())
        return "; ".join(f"{key}: {text}" for key, text in parts if text)
    return ""


def transcript(title: object, answers: Iterable[tuple[object, Any]]) -> Transcript:
    """The submission as a person reads it: each answered question with its answer as text, in
    form order, a question with no title as "(untitled)". Unanswered questions are left out, and so is
    a ``stardex_person_id`` field: an id carried for the function, not an answer anyone gave."""
    lines = (
        ((question.strip() if isinstance(question, str) else "") or "(untitled)", text)
        for question, value in answers
        if normalise_name(question) != PERSON_ID_FIELD and not is_blank(value) and (text := answer_text(value))
    )  # worked through only when a note reads it
    return Transcript((title.strip() or None) if isinstance(title, str) else None, lines)


# ---- questions matched by their title ----------------------------------------------------------
# Real forms name their questions in words ("What is your first name?") and give them generated
# refs, so a question no ref or name claims is matched by its title: normalised as above, it must
# contain one of these phrasings as whole words. The longest phrasing found wins; a title whose
# longest phrasings belong to two meanings ("Phone or email") matches none, and so does a long
# title (a question about something else that mentions a company). English, German, French,
# Spanish, Portuguese, Italian and Dutch. "Nombre"/"Nome" alone are read as first names (forms in
# those languages pair them with "Apellido"/"Cognome"). A mapping that names refs still wins.
PHRASINGS: dict[str, tuple[str, ...]] = {
    "first_name": ("first name", "firstname", "given name", "forename", "vorname", "prenom", "nombre",
                   "primer nombre", "nome", "primeiro nome", "nome proprio", "voornaam"),
    "last_name": ("last name", "lastname", "surname", "family name", "nachname", "familienname", "nom",
                  "nom de famille", "apellido", "apellidos", "cognome", "sobrenome", "apelido", "achternaam"),
    "name": ("name", "full name", "fullname", "your name", "first and last name", "vollstandiger name",
             "vor und nachname", "nom complet", "nom et prenom", "prenom et nom", "nombre completo",
             "nombre y apellido", "nombre y apellidos", "nome completo", "nome e cognome", "naam",
             "volledige naam"),
    "email": ("email", "e mail", "mail", "email address", "e mail address", "e mail adresse", "email adresse",
              "adresse e mail", "adresse email", "courriel", "correo", "correo electronico", "email de contacto",
              "indirizzo email", "indirizzo e mail", "endereco de email", "endereco de e mail", "e mailadres"),
    "phone": ("phone", "phone number", "telephone", "telephone number", "mobile", "mobile number", "cell",
              "cell phone", "telefon", "telefonnummer", "handy", "handynummer", "mobilnummer",
              "numero de telephone", "portable", "telefono", "numero de telefono", "movil", "celular",
              "cellulare", "numero di telefono", "telefone", "telemovel", "telefoonnummer", "mobiel"),
    "company": ("company", "company name", "company s name", "employer", "current company", "current employer",
                "organization", "organisation", "firma", "unternehmen", "arbeitgeber", "entreprise", "societe",
                "employeur", "empresa", "azienda", "societa", "bedrijf", "werkgever"),
    "job_title": ("job title", "title", "position", "role", "current role", "current position", "occupation",
                  "jobtitel", "berufsbezeichnung", "poste", "fonction", "intitule du poste", "cargo", "puesto",
                  "ruolo", "posizione", "qualifica", "funcao", "functie", "functietitel"),
    "linkedin": ("linkedin", "linkedin url", "linkedin profile", "linkedin profil", "profil linkedin",
                 "perfil de linkedin", "profilo linkedin", "linkedin profiel"),
    "address": ("location", "address", "city", "where are you based", "adresse", "ort", "wohnort", "standort",
                "stadt", "ville", "localisation", "ubicacion", "direccion", "ciudad", "localizacao", "endereco",
                "cidade", "citta", "indirizzo", "localita", "woonplaats", "locatie", "adres", "plaats"),
}
_LONGEST_TITLE_WORDS = 8
# Words that say a question is about something else ("Company website", "Company size"), or about someone
# else or another time ("Referrer's email", "Previous company", "Desired job title"): never the respondent's.
_OTHER_THAN_A_PERSON_FIELD = frozenset({"website", "site", "web", "url", "size", "industry", "sector", "logo", "branche"})
_NOT_THE_RESPONDENT = frozenset("referrer referred referee referral reference emergency recruiter manager supervisor "
                                "partner spouse parent guardian previous former past desired applying applied".split())
# Each update field and the meaning its question has (for ``plan``: where a field came from).
FIELD_MEANINGS = (("first_name", "first_name"), ("last_name", "last_name"), ("name", "name"),
                  ("emails", "email"), ("phone_numbers", "phone"), ("company_name", "company"),
                  ("current_job_title", "job_title"), ("linkedin_url", "linkedin"), ("address", "address"))
# Each phrasing's words, under its first word: a title is matched word by word, not phrasing by phrasing.
_PHRASES_BY_FIRST_WORD: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
for _meaning, _phrases in PHRASINGS.items():
    for _phrase in _phrases:
        _PHRASES_BY_FIRST_WORD.setdefault(_phrase.split()[0], []).append((_meaning, tuple(_phrase.split())))


def meaning_of(title: object) -> str | None:
    """The person field a question's title asks for (a key of ``PHRASINGS``), or None."""
    name = normalise_name(title)
    return _meaning_of_name(name) if name else None


@functools.lru_cache(maxsize=1024)
def _meaning_of_name(name: str) -> str | None:
    """Remembered: every submission of a form asks the same questions."""
    words = tuple(name.split("_"))
    if len(words) > _LONGEST_TITLE_WORDS:
        return None
    if _OTHER_THAN_A_PERSON_FIELD.intersection(words) and "linkedin" not in words or _NOT_THE_RESPONDENT.intersection(words):
        return None
    best, meanings = 0, set()
    for start, word in enumerate(words):
        for meaning, phrase in _PHRASES_BY_FIRST_WORD.get(word, ()):
            size = len(phrase)
            if size < best or words[start:start + size] != phrase:
                continue
            if size > best:
                best, meanings = size, set()
            meanings.add(meaning)
    return meanings.pop() if len(meanings) == 1 else None


def add_by_title(answers: dict[str, Any], items: Any, title_of, value_of=lambda item: item) -> tuple[tuple[str, str], ...]:
    """Put each item of the list ``items`` (its ``value_of``) under the meaning of its title
    (``first_name``, ``email``...) where no ref or name already claims that key, first one
    winning; the (meaning, title) pairs matched."""
    matched = []
    for item in items if isinstance(items, list) else ():
        title = title_of(item) if isinstance(item, (dict, tuple)) else None
        meaning = meaning_of(title)
        if meaning is not None and meaning not in answers:
            answers[meaning] = value_of(item)
            matched.append((meaning, title.strip()))
    return tuple(matched)


def field_sources(update: dict[str, Any], questions: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """(field, question title) for each field of ``update`` a question matched by title fills."""
    titles = dict(questions)
    return tuple((field, titles[meaning]) for field, meaning in FIELD_MEANINGS if field in update and meaning in titles)
