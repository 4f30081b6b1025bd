"""Webflow form submissions (https://developers.webflow.com/data/docs/working-with-webhooks).

What it accepts and answers: docs/senders/webflow.md. Field names are whatever the designer typed,
so ``payload.fields`` indexes them by normalised name and by what a name asks for (``form_answers``),
numbers as text (a phone typed as digits arrives as a number).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from .. import signatures
from ..errors import Unauthorized
from ..transforms import string
from ..records import Delivery, Event
from .base import EPOCH_MILLISECONDS, Source, envelope, parse_json_object
from .form_answers import add_by_title, normalise_name, numbers_as_text, transcript

TIMESTAMP_HEADER = "x-webflow-timestamp"
SIGNATURE_HEADER = "x-webflow-signature"
_HEX_ENTRY = re.compile(r"\s*(\S+)\s*")


class WebflowSource(Source):
    """Adapter for Webflow: hex HMAC of ``timestamp:body`` with a millisecond timestamp."""

    name = "webflow"
    default_write_policy = "fill"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        timestamp = str(now * 1000)
        digest = signatures.hmac_sha256(signatures.utf8_bytes(key), timestamp.encode() + b":" + body)
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: digest.hex(), "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        timestamp = delivery.headers.get(TIMESTAMP_HEADER, "").strip()
        signature = delivery.headers.get(SIGNATURE_HEADER, "")
        if not timestamp or not signature.strip():
            raise Unauthorized("missing_signature", f"the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required")
        if not EPOCH_MILLISECONDS.fullmatch(timestamp):
            raise Unauthorized("malformed_signature", f"the {TIMESTAMP_HEADER} header is not epoch milliseconds")
        signatures.check_timestamp(int(timestamp) / 1000, now)
        given = signatures.decoded_entries(_HEX_ENTRY, signatures.decode_hex, signature.split(","))
        if not given:
            raise Unauthorized("malformed_signature", f"the {SIGNATURE_HEADER} header is not a hex digest")
        signed = signatures.utf8_bytes(timestamp + ":") + delivery.body
        expected = (signatures.hmac_sha256(signatures.utf8_bytes(key), signed) for key in usable_keys)
        if not signatures.any_signature_matches(expected, given):
            raise Unauthorized("bad_signature", "the signature does not match the timestamp and body")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        payload, trigger = envelope(body, "Webflow", "payload", "triggerType")
        data = payload.get("data")
        sent = list(data.items()) if isinstance(data, dict) else []
        fields: dict[str, Any] = {}
        for name, value in sent:
            if key := normalise_name(name):
                fields.setdefault(key, numbers_as_text(value))
        # A field named in words ("Email 2", "Your phone") is also read by what it asks for.
        questions = add_by_title(fields, sent, lambda pair: pair[0], lambda pair: numbers_as_text(pair[1]))
        return Event(
            source=self.name,
            event_type=trigger,
            delivery_id=string(payload.get("id")),
            payload={**body, "payload": {**payload, "fields": fields}},
            transcript=transcript(payload.get("name"), sent),
            questions=questions,
        )

