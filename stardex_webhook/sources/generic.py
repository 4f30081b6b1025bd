"""Standard Webhooks (https://www.standardwebhooks.com/): any sender that signs the standard way,
including the Apps Script the project ships for Google Forms, and senders that deliver through Svix.

What it accepts and answers: docs/senders/generic.md. Svix's ``svix-*`` headers win over
``webhook-*`` and a key without ``whsec_`` is base64 when it decodes, as in the standard's libraries:
what they accept, this accepts.
"""

from __future__ import annotations

import base64
import uuid
from typing import Sequence

from .. import signatures
from ..errors import Unauthorized
from ..records import Delivery, Event
from .base import Source, parse_json_object, text_or_none

HEADER_PREFIXES = ("svix-", "webhook-")  # the first one present wins, header by header
KEY_PREFIX = "whsec_"


def signing_key_bytes(key: str) -> bytes | None:
    """The HMAC key a configured secret stands for, or None when a ``whsec_`` key is not base64."""
    text = key.strip()
    if text.startswith(KEY_PREFIX):
        return signatures.decode_base64(text[len(KEY_PREFIX):])
    return signatures.decode_base64(text) or signatures.utf8_bytes(text)


class StandardWebhooksSource(Source):
    """Adapter for Standard Webhooks senders; one instance per path that speaks it."""

    def __init__(self, name: str = "generic") -> None:
        self.name = name

    def sample_key(self) -> str:
        return KEY_PREFIX + base64.b64encode(super().sample_key().encode()).decode()

    def sample_message_id(self, body: bytes) -> str:
        """The ``webhook-id`` a sample is sent with: a fresh one, as Svix makes them."""
        return f"msg_{uuid.uuid4().hex}"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        message_id = self.sample_message_id(body)
        signed = f"{message_id}.{now}.".encode() + body
        signature = base64.b64encode(signatures.hmac_sha256(signing_key_bytes(key) or b"", signed)).decode()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(now),
            "webhook-signature": f"v1,{signature}",
            "Content-Type": "application/json",
        }, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        parts = {name: _header(delivery, name) for name in ("id", "timestamp", "signature")}
        for name, value in parts.items():
            if not value:
                raise Unauthorized("missing_signature", f"the webhook-{name} (or svix-{name}) header is missing")
        message_id, timestamp_text, signature_header = parts.values()

        signatures.check_timestamp(signatures.parse_unix_seconds(timestamp_text), now)
        given = _v1_signatures(signature_header)

        key_bytes = [key for key in map(signing_key_bytes, usable_keys) if key is not None]
        if not key_bytes:
            raise Unauthorized("invalid_signing_key", "the configured signing key is not in whsec_<base64> form")
        signed_content = signatures.utf8_bytes(f"{message_id}.{timestamp_text}.") + delivery.body
        expected = (signatures.hmac_sha256(key, signed_content) for key in key_bytes)
        if not signatures.any_signature_matches(expected, given):
            raise Unauthorized("bad_signature", "no v1 signature matches the body")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        return Event(self.name, text_or_none(body.get("type")), _header(delivery, "id") or None, body)


def _header(delivery: Delivery, name: str) -> str:
    """``svix-<name>`` if sent, else ``webhook-<name>``, stripped ("" when neither is)."""
    for prefix in HEADER_PREFIXES:
        if value := delivery.headers.get(prefix + name, "").strip():
            return value
    return ""


def _v1_signatures(header: str) -> list[bytes]:
    """Every ``v1,<base64>`` of the header that decodes; ``malformed_signature`` when no entry at
    all is ``version,signature`` with a readable signature."""
    tokens = [token.partition(",") for token in header.split()]
    versioned = [(version, signature) for version, comma, signature in tokens if version and comma and signature]
    v1 = [digest for version, sig in versioned if version == "v1" and (digest := signatures.decode_base64(sig))]
    if not v1 and not any(version != "v1" for version, _ in versioned):
        raise Unauthorized("malformed_signature", "the webhook-signature header has no 'v1,<base64>' entry")
    return v1
