"""Lever webhooks (help.lever.co "Configuring webhooks"; the scheme as public implementations agree).

What it accepts and answers: docs/senders/lever.md. Lever signs ``token`` + ``triggeredAt`` inside
the body, not the body: only those are trusted, so the person is read from Lever's API. A body that
is not JSON is 400 before a signature is looked for (it lives in the body); an unsigned
verification call is answered ``ping``, since a 401 would keep the webhook from being saved.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import quote

from .. import signatures
from ..errors import BadRequest, Unauthorized
from ..records import Delivery, Event, FollowUp, Handshake
from .base import EPOCH_MILLISECONDS, Source, basic_auth_headers, dig, parse_json_object, text_or_none

# Lever's ids are UUIDs; anything of another shape is refused before it goes into a URL path.
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")


def lever_signature(key: str, token: str, triggered_at: str) -> bytes:
    """The raw digest Lever's ``signature`` field holds, in hex."""
    return signatures.hmac_sha256(signatures.utf8_bytes(key), signatures.utf8_bytes(token + triggered_at))


def _opportunity_id(body: dict[str, Any]) -> Any:
    return dig(body, "data", "opportunityId")


def _triggered_at_text(value: Any) -> str:
    """``triggeredAt`` as Lever signed it (the decimal digits of the integer), or a 401."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
        return str(value)
    if isinstance(value, str) and EPOCH_MILLISECONDS.fullmatch(value):
        return value
    raise Unauthorized("malformed_signature", "Lever's triggeredAt is not whole epoch milliseconds")


def _utc_text(triggered_at: Any) -> str:
    """The delivery id's middle part, written so the log's masking (ten digits look like a phone
    number) leaves it whole."""
    try:
        moment = datetime.fromtimestamp(int(triggered_at) / 1000, timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(triggered_at)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LeverSource(Source):
    """Adapter for Lever: the signature in the body, the person read from Lever's API."""

    name = "lever"
    needs_api_key = True
    api_base = "https://api.lever.co/v1"

    def handshake(self, delivery: Delivery) -> Handshake | None:
        """An unsigned verification call (no signature, no opportunity) asks for nothing: 200."""
        try:
            body = parse_json_object(delivery.body)
        except BadRequest as error:
            if error.reason != "invalid_json":  # past the JSON limits: 400 before any check of the signature inside
                raise
            return None
        if not body.get("signature") and not _opportunity_id(body):
            return Handshake(200, {"status": "ignored", "reason": "ping"})
        return None

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        # The signature lives in the body: one that cannot be read is a 400 (invalid_json), as for
        # every sender, not a missing signature.
        body = parse_json_object(delivery.body)
        signature, token = body.get("signature"), body.get("token")
        if signature is None or signature == "":
            raise Unauthorized("missing_signature", "the body has no Lever signature field")
        if not isinstance(signature, str) or not isinstance(token, str) or not token:
            raise Unauthorized("malformed_signature", "Lever's signature and token must be non-empty strings")
        triggered_at = _triggered_at_text(body.get("triggeredAt"))
        given = signatures.decode_hex(signature.strip())
        if given is None:
            raise Unauthorized("malformed_signature", "Lever's signature is not hex")
        signatures.check_timestamp(int(triggered_at) / 1000, now)
        expected = (lever_signature(key, token, triggered_at) for key in usable_keys)
        if not signatures.any_signature_matches(expected, [given]):
            raise Unauthorized("bad_signature", "the signature does not match token and triggeredAt")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        event_type = text_or_none(body.get("event"))
        opportunity = _opportunity_id(body)
        if not opportunity:  # Lever's verification call
            return Event(self.name, event_type, None, body, ignore_reason="ping")
        if not isinstance(opportunity, str) or not _ID.fullmatch(opportunity):
            raise BadRequest("invalid_payload", "Lever's data.opportunityId must be an id")
        if event_type is None:
            raise BadRequest("invalid_payload", "a Lever body must have a string 'event'")
        delivery_id = f"{body.get('token')}:{_utc_text(body.get('triggeredAt'))}:{opportunity}"
        return Event(self.name, event_type, delivery_id, body)

    def follow_up(self, event: Event) -> FollowUp | None:
        return FollowUp("GET", "opportunities/" + quote(_opportunity_id(event.payload), safe=""))

    def api_headers(self, api_key: str) -> dict[str, str]:
        return basic_auth_headers(api_key)

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        """The token (kept when the sample has one), the time and the signature go into the body."""
        document = json.loads(body)
        token = text_or_none(document.get("token")) or str(uuid.uuid4())
        triggered_at = now * 1000
        signature = lever_signature(key, token, str(triggered_at)).hex()
        signed = {**document, "token": token, "triggeredAt": triggered_at, "signature": signature}
        return {"Content-Type": "application/json"}, json.dumps(signed).encode()
