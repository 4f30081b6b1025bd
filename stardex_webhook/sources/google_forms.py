"""Google Forms, which has no webhook: the project ships the sender, an Apps Script
(``apps_script/google_forms.gs``) that signs each response the Standard Webhooks way, so this
adapter verifies exactly as ``generic`` does and only reads the body differently.

What it accepts and answers: docs/senders/google-forms.md. The delivery id is ``responseId`` (the
script also sends it as ``webhook-id``), so a send the script retries is the same delivery.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import BadRequest
from ..records import Delivery, Event
from .base import parse_json_object, text_or_none
from .form_answers import add_by_title, normalise_name, numbers_as_text, transcript
from .generic import StandardWebhooksSource

EVENT_TYPE = "form_submission"
_HEADER_TOKEN = re.compile(r"[!-~]+")  # printable ASCII without blanks, as Google's response ids are


class GoogleFormsSource(StandardWebhooksSource):
    """Adapter for the Apps Script sender: Standard Webhooks, one form response per delivery."""

    default_write_policy = "fill"

    def __init__(self) -> None:
        super().__init__("google-forms")

    def sample_message_id(self, body: bytes) -> str:
        """The response's id, as the script sends it."""
        try:
            response_id = json.loads(body).get("responseId")
        except (ValueError, AttributeError):
            response_id = None
        if isinstance(response_id, str) and _HEADER_TOKEN.fullmatch(response_id):
            return response_id
        return super().sample_message_id(body)

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        answers = body.get("answers")
        if not isinstance(answers, dict):
            raise BadRequest("invalid_payload", "a Google Forms body must have an 'answers' object (question title → answer)")
        indexed: dict[str, Any] = {}
        for title, value in answers.items():
            if key := normalise_name(title):
                indexed.setdefault(key, numbers_as_text(value))
        # A title in words ("What is your first name?") is also read by what it asks for.
        questions = add_by_title(indexed, list(answers.items()), lambda pair: pair[0],
                                 lambda pair: numbers_as_text(pair[1]))
        return Event(
            source=self.name,
            event_type=EVENT_TYPE,
            delivery_id=text_or_none(body.get("responseId")) or delivery.headers.get("webhook-id", "").strip() or None,
            payload={**body, "answers": indexed, "answers_by_title": answers},
            transcript=transcript(body.get("formTitle"), answers.items()),
            questions=questions,
        )
