"""What every sender adapter receives and returns: plain values, no Flask objects.

An adapter knows one sender: its handshakes, its signature scheme, its envelope, its event name,
its delivery id, what to read from its own API when a webhook carries only ids (``follow_up``),
and how to sign a sample the way the sender would (``sign_sample``, for ``send_sample`` and the
tests). It knows nothing of Stardex or of mappings. Adding a sender = one adapter (a subclass of
``Source``), one mapping file, one sample, and one line in ``sources/__init__.py``.
"""

from __future__ import annotations

import abc
import base64
import json
import math
import re
from dataclasses import replace
from typing import Any, Callable, Sequence

from .. import signatures
from ..errors import BadRequest, Unauthorized
from ..records import Delivery, Event, FollowUp, Handshake


class Source(abc.ABC):
    """One sender: subclass it and register an instance in ``sources/__init__.py``. The defaults
    suit the many senders that have no handshake and no follow-up read."""

    name: str  # the path segment, e.g. "greenhouse"
    success_status = 200  # the 2xx the sender counts as delivered
    default_write_policy = "overwrite"  # "overwrite" (an ATS, a system of record) or "fill" (a form)
    needs_api_key = False  # its webhooks carry only ids: follow-up reads need <SOURCE>_API_KEY
    api_base: str | None = None  # the sender's public API base (https), when it has follow-up reads
    signs_url = False  # the sender signs the URL it posts to (HubSpot): sign_sample takes ``url=``

    def handshake(self, delivery: Delivery) -> Handshake | None:
        """An answer to give before verification, or None (most senders have none)."""
        return None

    @abc.abstractmethod
    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        """Raise ``Unauthorized`` unless the delivery is signed by one of ``keys`` (rotation) and,
        where the sender signs a timestamp, lies within the replay window of ``now``."""

    @abc.abstractmethod
    def parse(self, delivery: Delivery) -> Event:
        """Parse the verified body into an ``Event``; raise ``BadRequest`` if it cannot be parsed."""

    def follow_up(self, event: Event) -> FollowUp | None:
        """The read from the sender's API this event needs before mapping, or None."""
        return None

    def with_follow_up(self, event: Event, answer: Any) -> Event:
        """The event with the follow-up read's answer where its mapping reads it: by default under
        ``api`` beside the webhook's own body."""
        payload = {**event.payload, "api": answer} if isinstance(event.payload, dict) else {"api": answer}
        return replace(event, payload=payload)

    def api_headers(self, api_key: str) -> dict[str, str]:
        """The headers that authenticate a follow-up read with the sender's API key."""
        return {"Authorization": f"Bearer {api_key}"}

    @abc.abstractmethod
    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        """The headers (and body, for senders that sign inside it) the sender would send; a
        sender that ``signs_url`` also takes the ``url`` it is posted to."""

    def sample_key(self) -> str:
        """A demo signing key for local runs, in the form this sender's keys take: published here,
        so never for a deployed function."""
        return f"local-{self.name}-signing-key"


def basic_auth_headers(api_key: str) -> dict[str, str]:
    """HTTP Basic auth with the API key as the username and an empty password: how Lever's and
    Ashby's APIs take their keys (an ``api_headers`` for such senders)."""
    token = base64.b64encode(signatures.utf8_bytes(api_key) + b":").decode("ascii")
    return {"Authorization": f"Basic {token}"}


def _finite(text: str) -> float:
    """A number JSON can write: not ``NaN`` or ``Infinity`` (which Python's decoder takes), nor a
    ``1e999`` that is infinite as a float."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


# What one webhook body may hold. A 1 MiB body can nest ``[`` half a million deep or carry a
# hundred thousand members (duplicate keys among them, which a dict would silently collapse); every
# later stage (mapping searches, answer indexing, the transcript) walks what is parsed, so the parse
# refuses such bodies rather than leave the cost to them. Real webhooks nest a dozen levels at most
# and carry a few hundred values.
MAX_JSON_DEPTH = 64
MAX_JSON_VALUES = 10_000


class _TooManyValues(Exception):
    """Raised from inside the decoder as soon as the member count passes ``MAX_JSON_VALUES``."""


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a UTF-8 JSON object body, turning every failure into one ``BadRequest``.

    Python's decoder takes ``NaN`` and ``Infinity``, which are not JSON: refused here, so they never
    reach an answer or a PATCH. A document nested deeper than ``MAX_JSON_DEPTH`` is ``too_deep``;
    one with more than ``MAX_JSON_VALUES`` values (object members, duplicates included, and list
    items) is ``too_many_fields``. Every adapter parses its JSON here."""
    members = 0

    def counted(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal members
        members += len(pairs)
        if members > MAX_JSON_VALUES:
            raise _TooManyValues
        return dict(pairs)

    try:
        document = json.loads(body.decode("utf-8"), parse_float=_finite, parse_constant=_finite,
                              object_pairs_hook=counted)
    except RecursionError:  # nesting deeper than the decoder's own stack: far past the limit
        raise _too_deep() from None
    except _TooManyValues:
        raise _too_many() from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    _check_size(document)
    return document


def envelope(body: dict[str, Any], sender: str, data_key: str, type_key: str) -> tuple[dict[str, Any], str | None]:
    """A form tool's envelope: the object under ``data_key`` (required) and the event name under
    ``type_key`` (optional, a string when given)."""
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
    """The most common scheme: a sender that signs its raw body with HMAC-SHA256 in one header and
    needs no handshake (Greenhouse, Typeform). A subclass sets the header, the pattern of one entry
    (capturing the encoded digest in group 1), how that digest is decoded (hex or base64), and
    writes ``parse``."""

    signature_header: str
    entry: re.Pattern[str]
    decode: Callable[[str], bytes | None]
    expected_form: str
    # How one signature is written in the header, given the raw digest (for ``sign_sample``).
    encode: Callable[[bytes], str]

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        digest = signatures.hmac_sha256(signatures.utf8_bytes(key), body)
        return {self.signature_header: self.encode(digest), "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        """A header sent twice arrives joined with commas: each entry is tried, one that cannot be
        parsed is skipped, and any entry may match any key (rotation)."""
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
    """For a sender that cannot sign its webhooks (Jotform): the URL it calls carries a shared
    secret, as ``?token=<token>`` or an ``Authorization: Bearer <token>`` header, and any configured
    key (several during a rotation) may match. Weaker than a signature: the token travels in every
    request, can leak through logs (Google's request log keeps the URL with its query) and browser
    history, and proves nothing about the body."""

    token_parameter = "token"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, body

    def verify(self, delivery: Delivery, keys: Sequence[str], now: float) -> None:
        usable_keys = signatures.require_keys(keys)
        scheme, _, credentials = delivery.headers.get("Authorization", "").strip().partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else ""
        given = [token for token in (delivery.query.get(self.token_parameter, "").strip(), bearer) if token]
        if not given:
            raise Unauthorized(
                "missing_signature", f"no token in ?{self.token_parameter}= or an 'Authorization: Bearer' header"
            )
        expected = (_token_digest(key) for key in usable_keys)
        if not signatures.any_signature_matches(expected, [_token_digest(token) for token in given]):
            raise Unauthorized("bad_signature", "the token matches no configured key")


def _token_digest(token: str) -> bytes:
    """Tokens are compared by a digest of fixed length, so the time a comparison takes says
    nothing about the key's length either."""
    return signatures.hmac_sha256(b"stardex-webhook-shared-token", signatures.utf8_bytes(token))
