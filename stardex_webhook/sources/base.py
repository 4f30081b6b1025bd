"""What every sender adapter receives and returns: plain values, no Flask objects. An adapter knows
one sender (handshakes, signature, envelope, event name, delivery id, follow-up read, how to sign a
sample), nothing of Stardex or of mappings.
"""

from __future__ import annotations

import abc
import base64
import json
import math
import re
from dataclasses import replace
from typing import Any, Sequence

from .. import signatures, transforms
from ..errors import BadRequest, Unauthorized
from ..http_transport import url_segment
from ..records import Delivery, Event, FollowUp, Handshake

EPOCH_MILLISECONDS = re.compile(r"[0-9]{1,15}")  # a timestamp in whole milliseconds (Lever, Webflow, HubSpot)


class Source(abc.ABC):
    """One sender: subclass it and register an instance in ``sources/__init__.py``. The defaults
    suit the many senders that have no handshake and no follow-up read."""

    name: str  # the path segment, e.g. "greenhouse"
    success_status = 200  # the 2xx the sender counts as delivered
    default_write_policy = "overwrite"  # "overwrite" (an ATS, a system of record) or "fill" (a form)
    needs_api_key = False  # its webhooks carry only ids: follow-up reads need <SOURCE>_API_KEY
    # Its webhooks carry the person's main fields; without <SOURCE>_API_KEY the follow-up read
    # (the richer fields) is left out and the answer says so, instead of refusing the event.
    api_key_optional = False
    api_base: str | None = None  # the sender's public API base (https), when it has follow-up reads
    signs_url = False  # the sender signs the URL it posts to (HubSpot): sign_sample takes ``url=``

    def handshake(self, delivery: Delivery) -> Handshake | None:
        """An answer to give before verification, or None (most senders have none)."""
        return None

    @abc.abstractmethod
    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        """``Unauthorized`` unless signed by one of ``keys`` (rotation) within the replay window."""

    @abc.abstractmethod
    def parse(self, delivery: Delivery) -> Event:
        """The verified body as an ``Event``, else ``BadRequest``."""

    def follow_up(self, event: Event) -> FollowUp | None:
        """The read from the sender's API this event needs before mapping, or None."""
        return None

    def with_follow_up(self, event: Event, answer: Any) -> Event:
        """The event with the follow-up answer where its mapping reads it (default: under ``api``)."""
        payload = {**event.payload, "api": answer} if isinstance(event.payload, dict) else {"api": answer}
        return replace(event, payload=payload)

    def api_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    @abc.abstractmethod
    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        """The headers (and body) the sender would send; with ``signs_url``, also takes ``url``."""

    def sample_key(self) -> str:
        """A demo key for local runs: published here, so never for a deployed function."""
        return f"local-{self.name}-signing-key"


def basic_auth_headers(api_key: str) -> dict[str, str]:
    """Basic auth, the key as the username (how Lever's and Ashby's APIs take it)."""
    token = base64.b64encode(signatures.utf8_bytes(api_key) + b":").decode("ascii")
    return {"Authorization": f"Basic {token}"}


def text_or_none(value: Any) -> str | None:
    """A non-empty string as sent, else None."""
    return value if isinstance(value, str) and value else None


def id_text(value: Any) -> str | None:
    """An id or a time as trimmed text: most senders write strings, some numbers."""
    return transforms.trim(transforms.string(value))


def path_segment(value: str) -> str:
    """An id from a payload as one URL path segment (``http_transport.url_segment``); one no URL can
    carry is a 400."""
    segment = url_segment(value)
    if segment is None:
        raise BadRequest("invalid_payload", "an id in the payload is not text a URL can carry")
    return segment


def dig(document: Any, *keys: str) -> Any:
    """The value down nested objects, None where a key is missing or a level is not an object."""
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def action_event(source: Source, body: dict[str, Any], sender: str, delivery_id: str | None) -> Event:
    """The event named by the body's ``action`` (required); a ``ping`` is answered 200 ``ignored``."""
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("invalid_payload", f"{sender} body must have a string 'action'")
    return Event(source.name, action, delivery_id, body, ignore_reason="ping" if action == "ping" else None)


def _finite(text: str) -> float:
    """Not ``NaN``, ``Infinity`` (Python's decoder takes them) or an infinite ``1e999``."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


# A 1 MiB body can nest half a million deep or hold 100k members (duplicate keys included, which a
# dict collapses); every later stage walks what is parsed, so the parse refuses such bodies.
MAX_JSON_DEPTH = 64
MAX_JSON_VALUES = 10_000


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Every adapter's JSON parse; each failure is a ``BadRequest``. ``NaN`` and ``Infinity`` (not
    JSON) are refused so they never reach an answer or a PATCH."""
    members = 0

    def counted(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal members
        members += len(pairs)
        if members > MAX_JSON_VALUES:
            raise _too_many()  # stops the decoder at once
        return dict(pairs)

    try:
        document = json.loads(body.decode("utf-8"), parse_float=_finite, parse_constant=_finite,
                              object_pairs_hook=counted)
    except RecursionError:  # nesting deeper than the decoder's own stack: far past the limit
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    _check_size(document)
    return document


def envelope(body: dict[str, Any], sender: str, data_key: str, type_key: str) -> tuple[dict[str, Any], str | None]:
    """The object under ``data_key`` (required) and the event name under ``type_key`` (optional)."""
    data = body.get(data_key)
    if not isinstance(data, dict):
        raise BadRequest("invalid_payload", f"a {sender} body must have a '{data_key}' object")
    event_type = body.get(type_key)
    if event_type is not None and not isinstance(event_type, str):
        raise BadRequest("invalid_payload", f"a {sender} '{type_key}' must be a string")
    return data, event_type


def _check_size(document: Any) -> None:
    """Walk the parsed document without recursion, stopping at the first limit passed."""
    stack, values = [(document, 1)], 0
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            values += 1
            if values > MAX_JSON_VALUES:
                raise _too_many()
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def _too_deep() -> BadRequest:
    return BadRequest("too_deep", f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")


def _too_many() -> BadRequest:
    return BadRequest("too_many_fields", f"the JSON body holds more than {MAX_JSON_VALUES} values")


class BodyHmacSource(Source):
    """The raw body's HMAC-SHA256 in one header, no handshake (Greenhouse, Typeform). ``entry``
    captures the encoded digest in group 1; the defaults read a bare hex digest."""

    signature_header: str
    entry = re.compile(r"\s*(\S+)\s*")
    decode = staticmethod(signatures.decode_hex)
    expected_form = "<hex>"
    encode = staticmethod(lambda digest: digest.hex())

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        digest = signatures.hmac_sha256(signatures.utf8_bytes(key), body)
        return {self.signature_header: self.encode(digest), "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        """A header sent twice arrives comma-joined: any parsable entry may match any key."""
        usable_keys = signatures.require_keys(keys)
        value = delivery.headers.get(self.signature_header, "")
        if not value.strip():
            raise Unauthorized("missing_signature", f"the {self.signature_header} header is missing")
        given = signatures.decoded_entries(self.entry, self.decode, value.split(","))
        if not given:
            raise Unauthorized("malformed_signature", f"the {self.signature_header} header is not '{self.expected_form}'")
        expected = (signatures.hmac_sha256(signatures.utf8_bytes(key), delivery.body) for key in usable_keys)
        if not signatures.any_signature_matches(expected, given):
            raise Unauthorized("bad_signature", "the signature does not match the body")


class SharedTokenSource(Source):
    """A shared secret in ``?token=`` or ``Authorization: Bearer``, for a sender that cannot sign
    (Jotform). Weaker than a signature: it travels in every request, can leak through logs (Google's
    request log keeps the query), and proves nothing about the body."""

    token_parameter = "token"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        scheme, _, credentials = delivery.headers.get("Authorization", "").strip().partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else ""
        given = [token for token in (delivery.query.get(self.token_parameter, "").strip(), bearer) if token]
        if not given:
            raise Unauthorized("missing_signature",
                               f"no token in ?{self.token_parameter}= or an 'Authorization: Bearer' header")
        expected = (_token_digest(key) for key in usable_keys)
        if not signatures.any_signature_matches(expected, [_token_digest(token) for token in given]):
            raise Unauthorized("bad_signature", "the token matches no configured key")


def _token_digest(token: str) -> bytes:
    """A fixed-length digest: a comparison's time says nothing of the key's length either."""
    return signatures.hmac_sha256(b"stardex-webhook-shared-token", signatures.utf8_bytes(token))
