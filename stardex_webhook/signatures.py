"""Signature primitives shared by every sender adapter; they know nothing of any sender.

Two habits keep verification safe and the answers clean:
- digests are compared in constant time (``hmac.compare_digest``), against every active key and
  every signature sent, so a key rotation on either side never drops a delivery;
- every parse error (bad hex, bad base64, a timestamp that is not a number) becomes one
  ``Unauthorized("malformed_signature")``, as stripe-python's webhook module does: a forged or
  garbled header gets a 401, never another exception (and never a 500).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Iterable

from .errors import Unauthorized

REPLAY_TOLERANCE_SECONDS = 300

_HEX = re.compile(r"[0-9A-Fa-f]+")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def require_keys(keys: Iterable[str]) -> list[str]:
    """The non-empty keys, or ``Unauthorized("no_signing_key")``: a source without a key refuses
    every request rather than accepting unsigned ones."""
    usable = [key for key in keys if key]
    if not usable:
        raise Unauthorized("no_signing_key", "no signing key is configured for this source")
    return usable


def utf8_bytes(text: str) -> bytes:
    """UTF-8 bytes of a key or header that never raises: a key read from the environment with
    undecodable bytes (held as surrogate escapes) gets its original bytes back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of ``message``."""
    return hmac.new(key, message, hashlib.sha256).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare without leaking, through timing, how many leading bytes match."""
    return hmac.compare_digest(a, b)


def any_signature_matches(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    """True when any given signature equals any expected one (one per active key)."""
    expected = list(expected)
    return any(constant_time_equal(want, got) for got in given for want in expected)


def check_timestamp(timestamp: float, now: float, tolerance: float = REPLAY_TOLERANCE_SECONDS) -> None:
    """Refuse a signed timestamp more than ``tolerance`` seconds from ``now``, in the past (a replay)
    or in the future (a sender clock far off, or a forged time to stretch the window)."""
    if abs(now - timestamp) > tolerance:
        raise Unauthorized(
            "stale_timestamp", f"the signed timestamp is more than {int(tolerance)} seconds from the server's time"
        )


def decode_hex(text: str) -> bytes:
    """Strict hex (either case, even length, nothing else) or ``Unauthorized("malformed_signature")``."""
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise Unauthorized("malformed_signature", "the signature is not hexadecimal")
    return bytes.fromhex(text)


def decode_base64(text: str) -> bytes:
    """Strict standard base64 (padded, no stray characters) or ``Unauthorized("malformed_signature")``."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("malformed_signature", "the signature is not base64") from None
    if not decoded:
        raise Unauthorized("malformed_signature", "the signature is empty")
    return decoded


def parse_unix_seconds(text: str) -> int:
    """A timestamp header in whole unix seconds, or ``Unauthorized("malformed_signature")``."""
    stripped = text.strip()
    if not _UNIX_SECONDS.fullmatch(stripped):
        raise Unauthorized("malformed_signature", "the timestamp is not whole unix seconds")
    return int(stripped)
