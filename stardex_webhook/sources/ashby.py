"""Ashby webhooks (https://developers.ashbyhq.com/docs/authenticating-webhooks, …/setting-up-webhooks).

What it accepts and answers: docs/senders/ashby.md. The webhook's candidate has only a name and a
primary email and phone, so each acted event reads ``POST candidate.info`` when ``ASHBY_API_KEY`` is
set, and writes what the webhook carries otherwise. Ashby answers its API's errors with HTTP 200 and
``success: false``: that body, not the status, says a candidate is unknown.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import Unprocessable
from ..records import Delivery, Event, FollowUp
from .base import BodyHmacSource, action_event, basic_auth_headers, dig, parse_json_object, text_or_none

_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _candidate_id(payload: Any) -> str | None:
    candidate = dig(payload, "data", "application", "candidate")
    if not isinstance(candidate, dict):
        candidate = dig(payload, "data", "candidate")  # events about a candidate without an application
    candidate_id = dig(candidate, "id")
    return candidate_id if isinstance(candidate_id, str) and candidate_id.strip() else None


class AshbySource(BodyHmacSource):
    """Adapter for Ashby: hex HMAC of the raw body, the candidate completed from ``candidate.info``."""

    name = "ashby"
    signature_header = "Ashby-Signature"
    expected_form = "sha256=<hex>"
    # One entry as documented; blanks around the parts and the case of "sha256" are tolerated.
    entry = re.compile(r"\s*sha256\s*=\s*(\S+)\s*", re.IGNORECASE)
    encode = staticmethod(lambda digest: "sha256=" + digest.hex())
    needs_api_key = True
    api_key_optional = True  # applicationSubmit carries the name, email and phone
    api_base = "https://api.ashbyhq.com"

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        return action_event(self, body, "an Ashby", text_or_none(body.get("webhookActionId")))

    def follow_up(self, event: Event) -> FollowUp | None:
        candidate_id = _candidate_id(event.payload)
        return FollowUp("POST", "candidate.info", json={"id": candidate_id}) if candidate_id else None

    def with_follow_up(self, event: Event, answer: Any) -> Event:
        """Ashby's candidate (``results``) under ``api``; ``success: false`` is Ashby's 4xx."""
        if not isinstance(answer, dict) or answer.get("success") is not True:
            info = answer.get("errorInfo") if isinstance(answer, dict) else None
            code = info.get("code") if isinstance(info, dict) else None
            code = code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None
            if code and code.endswith("_not_found"):
                raise Unprocessable("sender_resource_not_found", f"the ashby API has no such candidate ({code})")
            raise Unprocessable("sender_api_rejected", f"the ashby API refused candidate.info ({code or 'no error code'})")
        results = answer.get("results")
        return super().with_follow_up(event, results if isinstance(results, dict) else {})

    def api_headers(self, api_key: str) -> dict[str, str]:
        return basic_auth_headers(api_key)
