"""Teamtailor company webhooks (https://partner.teamtailor.com/company_webhooks).

What it accepts and answers: docs/senders/teamtailor.md. Only signature v2 is accepted: v1 signs
only ``payload.data.id``, so a captured delivery could carry any attributes. The body's own
``signature`` field is never read (v2 signs it). ``job_application.*`` events carry no person,
hence one read of the candidate.
"""

from __future__ import annotations

import base64
import re
from typing import Sequence

from .. import signatures
from ..errors import BadRequest, Unauthorized
from ..records import Delivery, Event, FollowUp
from .base import Source, dig, id_text, parse_json_object, path_segment

SIGNATURE_HEADER = "TT-Signature"
API_VERSION = "20240404"
DEFAULT_API_BASE = "https://api.teamtailor.com/v1"
FOLLOW_UP_PREFIX = "job_application."

_V1_DIGEST = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(r"\s*([a-z0-9]+)=(\S*)\s*")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class TeamtailorSource(Source):
    name = "teamtailor"
    needs_api_key = True
    api_base = DEFAULT_API_BASE

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        header = delivery.headers.get(SIGNATURE_HEADER, "")
        if not header.strip():
            raise Unauthorized("missing_signature", f"the {SIGNATURE_HEADER} header is missing")
        given, v1_seen = [], False
        for entry in header.split(","):
            decoded = signatures.decode_base64(entry.strip())
            text = decoded.decode("ascii", "replace") if decoded else ""
            if _V1_DIGEST.fullmatch(text):
                v1_seen = True
                continue
            parts = [_PART.fullmatch(part) for part in text.split(",")]
            fields = dict(part.groups() for part in parts if part) if all(parts) else {}
            digest = signatures.decode_hex(fields.get("v2", ""))
            if digest and _UNIX_SECONDS.fullmatch(fields.get("t", "")):
                given.append((fields["t"], digest))
        if not given:
            if v1_seen:
                raise Unauthorized("unsupported_signature_version",
                                   "Teamtailor v1 signatures sign only the resource id; choose v2 in the webhook's settings")
            raise Unauthorized("malformed_signature", f"the {SIGNATURE_HEADER} header is not base64 of 't=<unix>,v2=<hex>'")
        fresh = [(timestamp, digest) for timestamp, digest in given if _within_window(int(timestamp), now)]
        if not fresh:
            signatures.check_timestamp(int(given[0][0]), now)  # raises stale_timestamp
        for timestamp, digest in fresh:
            signed = signatures.utf8_bytes(f"{timestamp}.") + delivery.body
            expected = (signatures.hmac_sha256(signatures.utf8_bytes(key), signed) for key in usable_keys)
            if signatures.any_signature_matches(expected, [digest]):
                return
        raise Unauthorized("bad_signature", "no v2 signature matches the body")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        data, event_name = dig(body, "payload", "data"), dig(body, "payload", "event_name")
        if not isinstance(data, dict) or not isinstance(event_name, str) or not event_name:
            raise BadRequest("invalid_payload", "a Teamtailor body must have 'payload.event_name' and a 'payload.data' object")
        attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        parts = [id_text(data.get("id")), event_name, id_text(attributes.get("updated-at")) or id_text(attributes.get("updated_at"))]
        return Event(self.name, event_name, ":".join(parts) if all(parts) else None, body)

    def follow_up(self, event: Event) -> FollowUp | None:
        if not (event.event_type or "").startswith(FOLLOW_UP_PREFIX):
            return None
        data = event.payload["payload"]["data"]
        relationship = dig(data, "relationships", "candidate")
        attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        candidate_id = (id_text(dig(relationship, "data", "id")) or id_text(attributes.get("candidate-id"))
                        or id_text(attributes.get("candidate_id")))
        if candidate_id:
            return FollowUp("GET", "candidates/" + path_segment(candidate_id))
        if related := id_text(dig(relationship, "links", "related")):
            return FollowUp("GET", related)
        if application_id := id_text(data.get("id")):
            return FollowUp("GET", f"job-applications/{path_segment(application_id)}/candidate")
        raise BadRequest("invalid_payload", "the job application names neither itself nor its candidate")

    def api_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Token token={api_key}", "X-Api-Version": API_VERSION,
                "Accept": "application/vnd.api+json"}

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        digest = signatures.hmac_sha256(signatures.utf8_bytes(key), f"{now}.".encode() + body).hex()
        signature = base64.b64encode(f"t={now},v2={digest}".encode()).decode()
        return {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}, body


def _within_window(timestamp: int, now: float) -> bool:
    try:
        signatures.check_timestamp(timestamp, now)
    except Unauthorized:
        return False
    return True
