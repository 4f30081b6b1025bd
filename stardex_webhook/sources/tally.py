"""Tally webhooks (https://tally.so/help/webhooks).

What it accepts and answers: docs/senders/tally.md. Tally's field keys are its own, so besides
``data.answers`` (by key) the mapping gets the fields by type, by normalised label and by what a
label asks for (``form_answers``), a choice as its option text; ``data.fields`` stays as sent.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import signatures
from ..records import Delivery, Event
from .base import BodyHmacSource, envelope, parse_json_object, text_or_none
from .form_answers import add_by_title, normalise_name, transcript
from .typeform import index_answers

SINGLE_CHOICE = ("MULTIPLE_CHOICE", "DROPDOWN")
MANY_CHOICES = ("CHECKBOXES", "MULTI_SELECT", "RANKING")
HIDDEN = "HIDDEN_FIELDS"


class TallySource(BodyHmacSource):
    """Adapter for Tally: base64 HMAC of the raw body, one form response per delivery."""

    name = "tally"
    default_write_policy = "fill"
    signature_header = "Tally-Signature"
    decode = staticmethod(signatures.decode_base64)
    expected_form = "<base64>"
    encode = staticmethod(lambda digest: base64.b64encode(digest).decode())

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        data, event_type = envelope(body, "Tally", "data", "eventType")
        sent = data.get("fields")
        fields = [resolved(field) for field in sent if isinstance(field, dict)] if isinstance(sent, list) else []
        by_key = index_answers(fields, key_of=lambda field: field.get("key"), type_of=lambda field: field.get("type"))
        by_label = index_answers(fields, key_of=lambda field: normalise_name(field.get("label")))["answers"]
        matched = add_by_title(by_label, [field for field in fields if _is_question(field)],
                               lambda field: field.get("label"))
        hidden: dict[str, Any] = {}
        for field in fields:
            if field.get("type") == HIDDEN and isinstance(field.get("label"), str):
                hidden.setdefault(field["label"], field.get("value"))
        return Event(
            source=self.name,
            event_type=event_type,
            delivery_id=text_or_none(body.get("eventId")) or text_or_none(data.get("responseId")),
            payload={**body, "data": {**data, **by_key, "answers_by_label": by_label, "hidden": hidden}},
            transcript=transcript(
                data.get("formName"),
                ((field.get("label"), field.get("value")) for field in fields if _is_question(field)),
            ),
            questions=matched,
        )


def resolved(field: dict[str, Any]) -> dict[str, Any]:
    """A copy of the field whose choice ``value`` (a list of option ids, or for a single choice one
    bare id, as some deliveries carry it) holds the options' text; an id with no option is kept as it is."""
    kind, value = field.get("type"), field.get("value")
    if kind in SINGLE_CHOICE and isinstance(value, str):
        value = [value]
    if kind not in SINGLE_CHOICE + MANY_CHOICES or not isinstance(value, list):
        return dict(field)
    options = field.get("options")
    texts = {
        option.get("id"): option.get("text")
        for option in (options if isinstance(options, list) else ())
        if isinstance(option, dict) and isinstance(option.get("id"), str) and isinstance(option.get("text"), str)
    }
    chosen = [texts.get(item, item) if isinstance(item, str) else item for item in value]
    return {**field, "value": chosen[0] if kind in SINGLE_CHOICE and len(chosen) == 1 else chosen}


def _is_question(field: dict[str, Any]) -> bool:
    """What the respondent answered: not a hidden field, and not the per-option echo Tally adds
    after a checkboxes question (``"Skills (Python)": true``), whose answer the question holds."""
    kind = field.get("type")
    return kind != HIDDEN and not (kind == "CHECKBOXES" and isinstance(field.get("value"), bool))
