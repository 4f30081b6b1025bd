"""What the form-tool adapters share: a question's stable name, numbers as text, and an answer as a
person reads it (for the submission's transcript).

A form's questions are named by people ("First name", "E-mail address?"), so mappings read them
by a normalised name: accents dropped, lower-case, each run of other characters than ``a-z`` and
``0-9`` turned into one ``_``, and none at either end ("E-mail address?" → ``e_mail_address``,
"Prénom" → ``prenom``). A title with nothing left ("???", "名前") has no name to read it by; its
answer still reaches the transcript.
"""

from __future__ import annotations

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
    form order. Unanswered questions are left out, and so is a ``stardex_person_id`` field: an
    id carried for the function, not an answer anyone gave."""
    lines = (
        (question.strip() or "(untitled)", text)
        for question, value in answers
        if isinstance(question, str) and normalise_name(question) != PERSON_ID_FIELD
        and not is_blank(value) and (text := answer_text(value))
    )  # worked through only when a note reads it
    return Transcript((title.strip() or None) if isinstance(title, str) else None, lines)
