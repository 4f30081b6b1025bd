"""Typeform webhooks (https://www.typeform.com/developers/webhooks/).

What it accepts and answers: docs/senders/typeform.md. The answers reach the mapping indexed
(``index_answers``) so that a mapping never filters a list: by ref, else (real forms have generated
refs) by what the question's title asks for (``form_answers.meaning_of``).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Callable

from .. import signatures
from ..records import Delivery, Event, Transcript
from .base import BodyHmacSource, dig, envelope, parse_json_object, text_or_none
from .form_answers import add_by_title


class TypeformSource(BodyHmacSource):
    """Adapter for Typeform: base64 HMAC of the raw body, one form response per delivery."""

    name = "typeform"
    default_write_policy = "fill"  # anyone with the form's link can answer it (docs/contract.md's write policy)
    signature_header = "Typeform-Signature"
    # "sha256=<base64>"; blanks around the parts and the case of "sha256" are tolerated.
    entry = re.compile(r"\s*sha256\s*=\s*(\S+)\s*", re.IGNORECASE)
    decode = staticmethod(signatures.decode_base64)
    expected_form = "sha256=<base64>"
    encode = staticmethod(lambda digest: "sha256=" + base64.b64encode(digest).decode())

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        form_response, event_type = envelope(body, "Typeform", "form_response", "event_type")
        indexed = index_answers(form_response.get("answers"))
        titles = _titles(form_response)
        questions = add_by_title(indexed["answers"], form_response.get("answers"),
                                 lambda answer: titles.get(text_or_none(_field(answer).get("id"))))
        return Event(
            source=self.name,
            event_type=event_type,
            delivery_id=text_or_none(body.get("event_id")) or text_or_none(form_response.get("token")),
            payload={**body, "form_response": {**form_response, **indexed}},
            transcript=transcript(form_response, titles),
            questions=questions,
        )


def transcript(form_response: dict[str, Any], titles: dict[Any, Any]) -> Transcript:
    """The response as a person reads it: the form's title, then each answered question (its title
    from the form's definition) with the answer as text, for an opt-in note."""
    answers = []
    for answer in form_response.get("answers") if isinstance(form_response.get("answers"), list) else ():
        if not isinstance(answer, dict):
            continue
        field = _field(answer)
        question = (text_or_none(titles.get(text_or_none(field.get("id")))) or text_or_none(field.get("ref"))
                    or text_or_none(field.get("id")))
        text = _answer_text(answer.get(answer.get("type")) if isinstance(answer.get("type"), str) else None)
        if question and text:
            answers.append((question, text))
    return Transcript(text_or_none(dig(form_response, "definition", "title")), tuple(answers))


def _titles(form_response: dict[str, Any]) -> dict[Any, Any]:
    """Each question's title by its id, from the form's definition."""
    fields = dig(form_response, "definition", "fields")
    return {item["id"]: item.get("title") for item in (fields if isinstance(fields, list) else ())
            if isinstance(item, dict) and isinstance(item.get("id"), str)}


def _answer_text(value: Any) -> str | None:
    """As text: a choice by its label, several choices' labels joined."""
    if isinstance(value, bool):
        return "Yes" if value else "No"  # as every form sender writes a yes/no in the note
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    if isinstance(value, dict):
        labels = value.get("labels") if isinstance(value.get("labels"), list) else [value.get("label"), value.get("other")]
        return ", ".join(label for label in labels if isinstance(label, str) and label) or None
    return None


def index_answers(
    answers: Any,
    key_of: Callable[[dict[str, Any]], Any] = lambda answer: _field(answer).get("ref"),
    type_of: Callable[[dict[str, Any]], Any] = lambda answer: answer.get("type"),
) -> dict[str, dict[str, Any]]:
    """``answers`` (by the question's stable key, the first winning) and ``answers_by_type`` (in form
    order), so mappings name what they read instead of filtering; for any form sender."""
    by_key: dict[str, Any] = {}
    by_type: dict[str, list[Any]] = {}
    for answer in answers if isinstance(answers, list) else ():
        if not isinstance(answer, dict):
            continue
        key, kind = text_or_none(key_of(answer)), text_or_none(type_of(answer))
        if key is not None:
            by_key.setdefault(key, answer)
        if kind is not None:
            by_type.setdefault(kind, []).append(answer)
    return {"answers": by_key, "answers_by_type": by_type}


def _field(answer: dict[str, Any]) -> dict[str, Any]:
    field = answer.get("field")
    return field if isinstance(field, dict) else {}
