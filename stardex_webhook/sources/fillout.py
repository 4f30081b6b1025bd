"""Fillout form submissions (https://www.fillout.com/help/webhook).

Fillout signs nothing, so the webhook URL carries a shared token: ``?token=<token>`` in the URL,
or ``Authorization: Bearer <token>`` as a custom header (Advanced mode). A token is weaker than a
signature: whoever sees the URL or the header can send anything, at any time, again and again.

The body is a submission, bare or wrapped as ``{formId, formName, submission: {...}}``; both are
read. The mapping gets the submission with its answers indexed (``index_answers``): ``answers``
by question name normalised (see ``form_answers``), ``answers_by_type`` by Fillout question type
(``EmailInput``, ``PhoneNumber``, ``URLInput``...), and ``parameters`` the URL parameters and
hidden fields by normalised name (``parameters.stardex_person_id``). Numbers become text;
choices are already their text, checkboxes a list. The delivery id is ``submissionId``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from .. import signatures
from ..errors import BadRequest, Unauthorized
from .base import Delivery, Event, SourceBase, parse_json_object
from .form_answers import normalise_name, numbers_as_text, transcript
from .typeform import index_answers

EVENT_TYPE = "form_submission"


class SharedTokenSource(SourceBase):
    """A sender that cannot sign: one token, in the query (``?token=``) or as
    ``Authorization: Bearer <token>``, equal to one of the configured keys (several during a
    rotation). Both sides are hashed before the constant-time compare, so not even a token's
    length shows in the time an answer takes."""

    token_parameter = "token"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        given = self._tokens(delivery)
        if not given:
            raise Unauthorized(
                "missing_signature", f"no token: send it as ?{self.token_parameter}=<token> or 'Authorization: Bearer <token>'"
            )
        expected = (_digest(key) for key in usable_keys)
        if not signatures.any_signature_matches(expected, [_digest(token) for token in given]):
            raise Unauthorized("bad_signature", "the token does not match")

    def _tokens(self, delivery: Delivery) -> list[str]:
        tokens = []
        in_query = delivery.query.get(self.token_parameter, "").strip()
        if in_query:
            tokens.append(in_query)
        scheme, _, credentials = delivery.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            tokens.append(credentials.strip())
        return tokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(signatures.utf8_bytes(token)).digest()


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
        parameters: dict[str, Any] = {}
        for parameter in _list(submission.get("urlParameters")):
            if isinstance(parameter, dict) and (key := normalise_name(parameter.get("name"))):
                parameters.setdefault(key, numbers_as_text(parameter.get("value")))
        scheduling = [entry for entry in _list(submission.get("scheduling")) if isinstance(entry, dict)]
        submission_id = submission.get("submissionId")
        form_name = body.get("formName")
        return Event(
            source=self.name,
            event_type=EVENT_TYPE,
            delivery_id=submission_id if isinstance(submission_id, str) and submission_id else None,
            payload={
                **(body if wrapped else {}),
                "submission": {**submission, "questions": questions, **indexed, "parameters": parameters},
            },
            transcript=transcript(
                form_name,
                [(entry.get("name"), entry.get("value")) for entry in questions + scheduling],
            ),
        )
