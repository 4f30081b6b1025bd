"""Workable webhooks (https://workable.readme.io/reference/webhook-subscriptions-candidates-employees).

What it accepts and answers: docs/senders/workable.md. Workable does not say how the digest is
written: public code reads hex, one implementation also base64, so both are accepted (hex when the
value is hex; a 32-byte digest in base64 is never hex). Its documented body has no event name,
hence ``event_type``, else ``type``, else the URL's ``?event=``.
"""

from __future__ import annotations

import re

from .. import signatures
from ..errors import BadRequest
from ..records import Delivery, Event
from .base import BodyHmacSource, dig, parse_json_object, text_or_none


# Workable's documented body is ``data`` only: a subscription's URL names its event instead
# (``/workable?event=candidate_created``), one URL per event (Workable wants each target unique).
EVENT_QUERY_PARAMETER = "event"


class WorkableSource(BodyHmacSource):
    """Adapter for Workable: HMAC of the raw body in hex or base64, the candidate in ``data``."""

    name = "workable"
    signature_header = "X-Workable-Signature"
    # The bare digest; a "sha256=" before it and blanks around it are tolerated.
    entry = re.compile(r"\s*(?:sha256\s*=\s*)?(\S+)\s*", re.IGNORECASE)
    decode = staticmethod(lambda text: signatures.decode_hex(text) or signatures.decode_base64(text))
    expected_form = "<hex or base64 digest>"

    def parse(self, delivery: Delivery) -> Event:
        body = parse_json_object(delivery.body)
        event_type = (text_or_none(body.get("event_type")) or text_or_none(body.get("type"))
                      or text_or_none(delivery.query.get(EVENT_QUERY_PARAMETER)))
        if event_type is None:
            raise BadRequest("invalid_payload", "a Workable body must have a string 'event_type' (or 'type'), "
                             f"or the subscription's URL must name it (?{EVENT_QUERY_PARAMETER}=candidate_created)")
        candidate_id = dig(body, "data", "id")
        delivery_id = None
        if isinstance(candidate_id, (str, int)) and not isinstance(candidate_id, bool) and str(candidate_id):
            updated_at = text_or_none(dig(body, "data", "updated_at"))
            delivery_id = ":".join(part for part in (str(candidate_id), event_type, updated_at) if part)
        return Event(source=self.name, event_type=event_type, delivery_id=delivery_id, payload=body)
