"""Typeform webhooks (https://www.typeform.com/developers/webhooks/).

``Typeform-Signature: sha256=<base64>`` is the HMAC-SHA256 of the raw body keyed with the
webhook's secret; base64, not hex, and no timestamp. The envelope is
``{"event_id", "event_type", "form_response": {...}}``; ``event_id`` (else the response's
``token``) identifies the delivery.
"""

from __future__ import annotations

import re
from typing import Sequence

from .. import signatures
from ..errors import BadRequest
from .base import Delivery, Event, Handshake, parse_json_object, verify_body_hmac

SIGNATURE_HEADER = "Typeform-Signature"

# "sha256=<base64>"; blanks around the parts and the case of "sha256" are tolerated.
_SIGNATURE = re.compile(r"\s*sha256\s*=\s*(\S+)\s*", re.IGNORECASE)


class TypeformSource:
    """Adapter for Typeform: base64 HMAC of the raw body, one form response per delivery."""

    name = "typeform"
    success_status = 200

    def handshake(self, delivery: Delivery) -> Handshake | None:
        return None

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        verify_body_hmac(delivery, keys, SIGNATURE_HEADER, _SIGNATURE, signatures.decode_base64, "sha256=<base64>")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        form_response = body.get("form_response")
        if not isinstance(form_response, dict):
            raise BadRequest("invalid_payload", "a Typeform body must have a 'form_response' object")
        event_type = body.get("event_type")
        if event_type is not None and not isinstance(event_type, str):
            raise BadRequest("invalid_payload", "a Typeform 'event_type' must be a string")
        return Event(
            source=self.name,
            event_type=event_type,
            delivery_id=_text(body.get("event_id")) or _text(form_response.get("token")),
            payload=body,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
