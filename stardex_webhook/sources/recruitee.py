"""Recruitee (Tellent) webhooks (https://docs.recruitee.com/docs/webhooks).

``X-Recruitee-Signature`` is the hex HMAC-SHA256 of the raw body, keyed with the secret shown in
the webhook's dialog; there is no timestamp, so no replay window. Success is exactly 200: Recruitee
counts any other status, even another 2xx, as a failure and retries.

**The Test button.** Recruitee creates a webhook only once its endpoint answers the Test request,
``{"test": true}``, with 200, and it may send it before the secret is stored here. So a body that
is exactly that object (nothing else in it) is answered 200 ``ignored``/``test`` before any
signature check: it changes nothing and carries nothing. Any other body is verified first, the
"Test payload" requests too (an example event plus ``"test": true``); once verified they are
answered ``ignored``/``test`` as well, since their data is made up.

**Events.** ``{"id", "event_type", "event_subtype", "payload": {"candidate": {"id", "name",
"emails", "phones"}, "offer": {"id", "title"}, "details": {"from_stage", "to_stage"},
"company"}}``. The person is in the webhook itself (one full name, plain email and phone
strings), so no read from Recruitee's API is needed. The delivery id is the top-level ``id``;
without one, the event type, subtype, candidate id and ``created_at`` joined by ``:``, which stay
the same when Recruitee retries the delivery.
"""

from __future__ import annotations

import re

from .. import signatures, transforms
from ..errors import BadRequest
from ..records import Delivery, Event, Handshake
from .base import BodyHmacSource, parse_json_object

TEST_BODY = {"test": True}
_LONGEST_TEST_BODY = 64  # bytes; '{"test": true}' with room for any whitespace Recruitee adds


class RecruiteeSource(BodyHmacSource):
    """Adapter for Recruitee: hex HMAC of the raw body, the Test request answered before it."""

    name = "recruitee"
    signature_header = "X-Recruitee-Signature"
    entry = re.compile(r"\s*(\S+)\s*")
    decode = staticmethod(signatures.decode_hex)
    expected_form = "<hex>"
    encode = staticmethod(lambda digest: digest.hex())

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
    given = _text(body.get("id"))
    if given:
        return given
    payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
    candidate = payload.get("candidate") if isinstance(payload.get("candidate"), dict) else {}
    parts = [_text(body.get("event_type")), _text(body.get("event_subtype")) or "-",
             _text(candidate.get("id")), _text(body.get("created_at"))]
    return ":".join(parts) if all(parts) else None


def _text(value: object) -> str | None:
    return transforms.trim(transforms.string(value))
