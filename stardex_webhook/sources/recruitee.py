"""Recruitee (Tellent) webhooks (https://docs.recruitee.com/docs/webhooks).

What it accepts and answers: docs/senders/recruitee.md. Exactly ``{"test": true}`` is answered
before any check: Recruitee creates a webhook only once its Test gets a 200, possibly before the
secret is stored here, and that body changes and carries nothing. Success is exactly 200: another
2xx is a failure to Recruitee.
"""

from __future__ import annotations

from ..errors import BadRequest
from ..records import Delivery, Event, Handshake
from .base import BodyHmacSource, dig, id_text, parse_json_object

TEST_BODY = {"test": True}
_LONGEST_TEST_BODY = 64  # bytes; '{"test": true}' with room for any whitespace Recruitee adds


class RecruiteeSource(BodyHmacSource):
    """Adapter for Recruitee: hex HMAC of the raw body, the Test request answered before it."""

    name = "recruitee"
    signature_header = "X-Recruitee-Signature"

    def handshake(self, delivery: Delivery) -> Handshake | None:
        if len(delivery.body) > _LONGEST_TEST_BODY:
            return None  # every event is far longer: no JSON parse before its signature check
        try:
            body = parse_json_object(delivery.body)
        except BadRequest:
            return None  # verification and parsing give the answer
        if body == TEST_BODY and body["test"] is True:  # 1 == True in Python: the value must be true itself
            return Handshake(200, {"status": "ignored", "reason": "test"})
        return None

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        if body.get("test") is True:
            return Event(self.name, None, None, body, ignore_reason="test")
        event_type = body.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise BadRequest("invalid_payload", "a Recruitee body must have a string 'event_type'")
        return Event(self.name, event_type, _delivery_id(body), body)


def _delivery_id(body: dict) -> str | None:
    if given := id_text(body.get("id")):
        return given
    parts = [id_text(body.get("event_type")), id_text(body.get("event_subtype")) or "-",
             id_text(dig(body, "payload", "candidate", "id")), id_text(body.get("created_at"))]
    return ":".join(parts) if all(parts) else None
