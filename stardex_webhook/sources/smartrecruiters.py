"""SmartRecruiters webhooks (https://developers.smartrecruiters.com/docs/webhooks-security).

What it accepts and answers: docs/senders/smartrecruiters.md. The activation handshake is echoed
before any signature check (it cannot carry one), and only 1 to 256 visible ASCII characters, so
the echo can never shape the answer's other headers. The body carries ids only, so each event reads
the candidate; an ``application.*`` Link names the application, which holds no person data.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Sequence
from urllib.parse import quote

from .. import signatures
from ..errors import BadRequest, Unauthorized
from ..records import Delivery, Event, FollowUp, Handshake
from .base import Source, id_text, parse_json_object, path_segment

HOOK_SECRET_HEADER = "X-Hook-Secret"
SIGNATURE_HEADER = "smartrecruiters-signature"
TIMESTAMP_HEADER = "smartrecruiters-timestamp"
# The headers signed after the body, in order.
SIGNED_HEADERS = ("event-id", "event-name", "event-version", "link")
DEFAULT_API_BASE = "https://api.smartrecruiters.com"
SAMPLE_EVENT = ("application.created", "v201910")

_HOOK_SECRET = re.compile(r"[\x21-\x7e]{1,256}")
_V1_ENTRY = re.compile(r"\s*v1\s*=\s*(\S+)\s*")
# One link-value of RFC 8288: <uri> then its parameters, up to the next link-value.
_LINK_VALUE = re.compile(r"<([^>]*)>([^,]*)")
_REL_SELF = re.compile(r";\s*rel\s*=\s*\"?([^\";]*)\"?", re.IGNORECASE)


class SmartRecruitersSource(Source):
    name = "smartrecruiters"
    success_status = 202
    needs_api_key = True
    api_base = DEFAULT_API_BASE

    def handshake(self, delivery: Delivery) -> Handshake | None:
        secret = delivery.headers.get(HOOK_SECRET_HEADER)
        if secret is None:
            return None
        if not _HOOK_SECRET.fullmatch(secret.strip()):
            raise BadRequest("invalid_handshake", "the X-Hook-Secret header must be 1 to 256 visible ASCII characters")
        return Handshake(200, {"status": "ignored", "reason": "handshake"}, {HOOK_SECRET_HEADER: secret.strip()})

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        header = delivery.headers.get(SIGNATURE_HEADER, "")
        timestamp_text = delivery.headers.get(TIMESTAMP_HEADER, "")
        if not header.strip():
            raise Unauthorized("missing_signature", f"the {SIGNATURE_HEADER} header is missing")
        if not timestamp_text.strip():
            raise Unauthorized("missing_signature", f"the {TIMESTAMP_HEADER} header is missing")
        signatures.check_timestamp(signatures.parse_unix_seconds(timestamp_text), now)
        # Entries are separated by ";"; a header sent twice arrives joined with ",".
        given = signatures.decoded_entries(_V1_ENTRY, signatures.decode_hex, re.split(r"[;,]", header))
        if not given:
            raise Unauthorized("malformed_signature", f"the {SIGNATURE_HEADER} header has no 'v1=<hex>' entry")
        signed = signed_content(timestamp_text, delivery.body, [delivery.headers.get(name, "") for name in SIGNED_HEADERS])
        expected = (signatures.hmac_sha256(signatures.utf8_bytes(key), signed) for key in usable_keys)
        if not signatures.any_signature_matches(expected, given):
            raise Unauthorized("bad_signature", "no v1 signature matches the notification")

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        event_id, name, version, link = (delivery.headers.get(header, "").strip() for header in SIGNED_HEADERS)
        return Event(source=self.name, event_type=name or None, delivery_id=event_id or None,
                     payload={"body": body,
                              "event": {"id": event_id, "name": name, "version": version, "link": self_link(link)}})

    def follow_up(self, event: Event) -> FollowUp | None:
        payload = event.payload if isinstance(event.payload, dict) else {}
        body = payload.get("body") if isinstance(payload.get("body"), dict) else {}
        link = (payload.get("event") or {}).get("link")
        candidate_id = id_text(body.get("candidateId")) or id_text(body.get("candidate_id"))
        if (event.event_type or "").startswith("candidate."):
            if link:
                return FollowUp("GET", link)
            candidate_id = candidate_id or id_text(body.get("id"))
        if candidate_id:
            return FollowUp("GET", "candidates/" + path_segment(candidate_id))
        raise BadRequest("invalid_payload", "the notification names no candidate: no candidateId in the body, no Link header")

    def api_headers(self, api_key: str) -> dict[str, str]:
        return {"X-SmartToken": api_key}

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        """Signed as an ``application.created`` notification, as SmartRecruiters sends it."""
        try:
            document: Any = parse_json_object(body)
        except BadRequest:
            document = {}
        candidate, job = (quote(text, safe="", errors="surrogatepass") for text in (
            id_text(document.get("candidateId")) or id_text(document.get("candidate_id")) or "candidate",
            id_text(document.get("jobId")) or id_text(document.get("job_id")) or "job"))
        headers = {
            "event-id": str(uuid.uuid4()), "event-name": SAMPLE_EVENT[0], "event-version": SAMPLE_EVENT[1],
            "Link": f"<{DEFAULT_API_BASE}/candidates/{candidate}/jobs/{job}>; rel=self",
            TIMESTAMP_HEADER: str(now), "Content-Type": "application/json",
        }
        return {**headers, **signature_header(key, headers, body)}, body


def signed_content(timestamp: str, body: bytes, event_headers: Sequence[str]) -> bytes:
    """``ts.body.event-id.event-name.event-version.link`` as bytes (header text as UTF-8)."""
    return b".".join([signatures.utf8_bytes(timestamp), body, *map(signatures.utf8_bytes, event_headers)])


def signature_header(key: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The ``smartrecruiters-signature`` header SmartRecruiters would add to these headers."""
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = signed_content(lowered.get(TIMESTAMP_HEADER, ""), body, [lowered.get(name, "") for name in SIGNED_HEADERS])
    return {SIGNATURE_HEADER: "v1=" + signatures.hmac_sha256(signatures.utf8_bytes(key), signed).hex()}


def self_link(header: str) -> str | None:
    """The URI of the ``rel=self`` link-value of a ``Link`` header (else its first one), or None."""
    values = _LINK_VALUE.findall(header)
    for uri, params in values:
        if any("self" in rel.lower().split() for rel in _REL_SELF.findall(params)):
            return uri.strip() or None
    return (values[0][0].strip() or None) if values else None
