"""Greenhouse Recruiting webhooks (https://developers.greenhouse.io/webhooks.html).

``Signature: sha256 <hex>`` is the HMAC-SHA256 of the entire raw body, keyed with the webhook's
"Secret key"; there is no timestamp, so no replay window. The envelope is
``{"action": ..., "payload": {...}}`` and each delivery carries a unique ``Greenhouse-Event-ID``.
The ping Greenhouse sends when a webhook is saved is verified like any delivery and answered 200
(``ignored``): if it failed, Greenhouse would create the webhook disabled.
"""

from __future__ import annotations

import re
from typing import Sequence

from .. import signatures
from ..errors import BadRequest
from .base import Delivery, Event, Handshake, parse_json_object, verify_body_hmac

SIGNATURE_HEADER = "Signature"
EVENT_ID_HEADER = "Greenhouse-Event-ID"

# "sha256 <hex>" as documented; also tolerated: any case, extra blanks, "sha256=<hex>".
_SIGNATURE = re.compile(r"\s*sha256(?:\s*=\s*|\s+)(\S+)\s*", re.IGNORECASE)


class GreenhouseSource:
    """Adapter for Greenhouse: hex HMAC of the raw body, ``action`` as the event type."""

    name = "greenhouse"
    success_status = 200

    def handshake(self, delivery: Delivery) -> Handshake | None:
        return None

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        verify_body_hmac(delivery, keys, SIGNATURE_HEADER, _SIGNATURE, signatures.decode_hex, "sha256 <hex>")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise BadRequest("invalid_payload", "a Greenhouse body must have a string 'action'")
        delivery_id = delivery.headers.get(EVENT_ID_HEADER, "").strip() or None
        return Event(
            source=self.name,
            event_type=action,
            delivery_id=delivery_id,
            payload=body,
            ignore_reason="ping" if action == "ping" else None,
        )
