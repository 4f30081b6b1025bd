"""HubSpot workflow webhooks: the "Send a webhook" action of a workflow triggered by a form
submission (https://knowledge.hubspot.com/workflows/how-do-i-use-webhooks-with-hubspot-workflows).

What it accepts and answers: docs/senders/hubspot.md. Signature v3
(https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests) signs the
full URL called, so it is rebuilt as HubSpot addressed it (scheme from ``X-Forwarded-Proto``, its
table of characters decoded). Only v3 is checked: v1/v2 sign no timestamp (a capture replays for ever).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Sequence

from .. import signatures
from ..errors import Unauthorized
from ..records import Delivery, Event
from .base import EPOCH_MILLISECONDS, Source, parse_json_object, text_or_none
from .form_answers import numbers_as_text, transcript

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
EVENT_TYPE = "workflow_webhook"
# The URL a sample is signed for when none is given (``serve``'s default address).
SAMPLE_URL = "http://127.0.0.1:8080/hubspot"

_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_ENCODED = re.compile("|".join(_DECODED), re.IGNORECASE)
# Ids of the record and the delivery: not what anyone submitted, so left out of the transcript.
_RECORD_IDS = frozenset({"hs_object_id", "eventId"})
# One signature: base64, which some proxies hand over with its "+" turned into spaces.
_ENTRY = re.compile(r"\s*([A-Za-z0-9+/= ]+?)\s*")


def signed_uri(url: str) -> str:
    """The URI as HubSpot signs it: its table of URL-encoded characters decoded, nothing else."""
    return _ENCODED.sub(lambda match: _DECODED[match.group(0).upper()], url)


def _signature(key: str, method: str, url: str, body: bytes, timestamp: str) -> bytes:
    message = signatures.utf8_bytes(method + signed_uri(url)) + body + signatures.utf8_bytes(timestamp)
    return signatures.hmac_sha256(signatures.utf8_bytes(key), message)


class HubSpotSource(Source):
    """Adapter for HubSpot workflow webhooks, signature v3."""

    name = "hubspot"
    default_write_policy = "fill"
    signs_url = True

    def sign_sample(self, body: bytes, key: str, now: int, url: str = SAMPLE_URL) -> tuple[dict[str, str], bytes]:
        timestamp = str(now * 1000)
        signature = base64.b64encode(_signature(key, "POST", url, body, timestamp)).decode()
        return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: timestamp, "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        header = delivery.headers.get(SIGNATURE_HEADER, "")
        timestamp = delivery.headers.get(TIMESTAMP_HEADER, "").strip()
        if not header.strip() or not timestamp:
            raise Unauthorized("missing_signature", f"the {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header is missing")
        if not EPOCH_MILLISECONDS.fullmatch(timestamp):
            raise Unauthorized("malformed_signature", f"{TIMESTAMP_HEADER} is not unix milliseconds")
        signatures.check_timestamp(int(timestamp) / 1000, now)
        given = signatures.decoded_entries(
            _ENTRY, lambda text: signatures.decode_base64(text.replace(" ", "+")), header.split(",")
        )
        if not given:
            raise Unauthorized("malformed_signature", f"the {SIGNATURE_HEADER} header is not base64")
        expected = (_signature(key, delivery.method, delivery.url, delivery.body, timestamp) for key in usable_keys)
        if not signatures.any_signature_matches(expected, given):
            raise Unauthorized("bad_signature", "the signature does not match the method, URL, body and timestamp")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        properties = body.get("properties")
        if isinstance(properties, dict):  # the legacy contact: {"vid": 1, "properties": {"email": {"value": ...}}}
            submitted = {name: item.get("value") if isinstance(item, dict) else item for name, item in properties.items()}
            flat = {**{key: value for key, value in body.items() if key != "properties"}, **submitted}
            flat.setdefault("hs_object_id", body.get("vid", body.get("objectId")))
        else:
            submitted = flat = body
        flat = numbers_as_text(flat)
        return Event(
            source=self.name,
            event_type=EVENT_TYPE,
            delivery_id=_delivery_id(flat, delivery.headers.get(TIMESTAMP_HEADER, "").strip()),
            payload=flat,
            transcript=transcript(
                flat.get("recent_conversion_event_name") or "HubSpot workflow webhook",
                [(name, numbers_as_text(value)) for name, value in submitted.items() if name not in _RECORD_IDS],
            ),
        )


def _delivery_id(flat: dict[str, Any], timestamp: str) -> str | None:
    """``eventId``; else the contact and the request's time (HubSpot's retries carry a new one)."""
    if event_id := text_or_none(flat.get("eventId")):
        return event_id
    object_id = text_or_none(flat.get("hs_object_id"))
    return f"{object_id}:{timestamp}" if object_id and timestamp else object_id
