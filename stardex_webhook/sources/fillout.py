"""Fillout form submissions (https://www.fillout.com/help/webhook).

What it accepts and answers: docs/senders/fillout.md. Fillout signs nothing, so the URL (or an
``Authorization: Bearer`` header) carries a shared token (``SharedTokenSource``). The body is a
submission, bare or wrapped as ``{formId, formName, submission}``: both are read, and its questions
are indexed by name and type (``index_answers``) so that a mapping never filters a list.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from ..records import Delivery, Event
from .base import SharedTokenSource, parse_json_object, text_or_none
from .form_answers import add_by_title, normalise_name, numbers_as_text, transcript
from .typeform import index_answers

EVENT_TYPE = "form_submission"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class FilloutSource(SharedTokenSource):
    """Adapter for Fillout: a shared token, one submission per delivery."""

    name = "fillout"
    default_write_policy = "fill"

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        wrapped = "submission" in body
        submission = body.get("submission") if wrapped else body
        if not isinstance(submission, dict) or not isinstance(submission.get("questions"), list):
            raise BadRequest(
                "invalid_payload", "a Fillout body must be a submission with a 'questions' list, bare or under 'submission'"
            )
        questions = [numbers_as_text(question) for question in submission["questions"] if isinstance(question, dict)]
        indexed = index_answers(questions, key_of=lambda question: normalise_name(question.get("name")),
                                type_of=lambda question: question.get("type"))
        matched = add_by_title(indexed["answers"], questions, lambda question: question.get("name"))
        parameters: dict[str, Any] = {}
        for parameter in _list(submission.get("urlParameters")):
            if isinstance(parameter, dict) and (key := normalise_name(parameter.get("name"))):
                parameters.setdefault(key, numbers_as_text(parameter.get("value")))
        scheduling = [entry for entry in _list(submission.get("scheduling")) if isinstance(entry, dict)]
        return Event(
            source=self.name,
            event_type=EVENT_TYPE,
            delivery_id=text_or_none(submission.get("submissionId")),
            payload={
                **(body if wrapped else {}),
                "submission": {**submission, "questions": questions, **indexed, "parameters": parameters},
            },
            transcript=transcript(body.get("formName"),
                                  [(entry.get("name"), entry.get("value")) for entry in questions + scheduling]),
            questions=matched,
        )
