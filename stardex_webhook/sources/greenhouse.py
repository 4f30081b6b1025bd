"""Greenhouse Recruiting webhooks (https://developers.greenhouse.io/webhooks.html).

What it accepts and answers: docs/senders/greenhouse.md. The ping sent when a webhook is saved is
verified like any delivery and answered 200: if it failed, Greenhouse would create the webhook
disabled. A header sent twice arrives joined with a comma, so one matching entry is enough.
"""

from __future__ import annotations

import re
import uuid

from ..records import Delivery, Event
from .base import BodyHmacSource, action_event, parse_json_object

EVENT_ID_HEADER = "Greenhouse-Event-ID"


class GreenhouseSource(BodyHmacSource):
    """Adapter for Greenhouse: hex HMAC of the raw body, ``action`` as the event type."""

    name = "greenhouse"
    signature_header = "Signature"
    # One entry, "sha256 <hex>" as documented; also tolerated: any case, extra blanks, "sha256=<hex>".
    entry = re.compile(r"\s*sha256(?:\s*=\s*|\s+)(\S+)\s*", re.IGNORECASE)
    expected_form = "sha256 <hex>"
    encode = staticmethod(lambda digest: "sha256 " + digest.hex())

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        headers, body = super().sign_sample(body, key, now)
        return {**headers, EVENT_ID_HEADER: str(uuid.uuid4())}, body

    def parse(self, delivery: Delivery) -> Event:
        delivery_id = delivery.headers.get(EVENT_ID_HEADER, "").strip() or None
        return action_event(self, parse_json_object(delivery.body), "a Greenhouse", delivery_id)
