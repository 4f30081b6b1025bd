"""Signature primitives shared by every sender adapter; they know nothing of any sender.

- Digests are compared in constant time against every active key and every signature sent, so a
  key rotation on either side never drops a delivery.
- Any one valid signature is enough: an entry that cannot be parsed is skipped (as the Standard
  Webhooks libraries do); only a header with none parseable is ``malformed_signature``.
- Every other parse error is that same 401: a forged header never gets another exception or a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Callable, Iterable

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
    """Never raises: a key from the environment with undecodable bytes gets its original bytes back."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of ``message``."""
    return hmac.new(key, message, hashlib.sha256).digest()


def any_signature_matches(expected: Iterable[bytes], given: Iterable[bytes]) -> bool:
    """True when any given signature equals any expected one (one per active key)."""
    expected = list(expected)
    return any(hmac.compare_digest(want, got) for got in given for want in expected)


def decoded_entries(pattern: re.Pattern[str], decode: Callable[[str], bytes | None], entries: Iterable[str]) -> list[bytes]:
    """The digests (group 1 of ``pattern``) ``decode`` can read; the others are skipped."""
    digests = []
    for entry in entries:
        match = pattern.fullmatch(entry)
        digest = decode(match.group(1)) if match else None
        if digest:
            digests.append(digest)
    return digests


def check_timestamp(timestamp: float, now: float, tolerance: float = REPLAY_TOLERANCE_SECONDS) -> None:
    """Refused past ``tolerance`` either way: a replay, or a forged future time stretching the window."""
    if abs(now - timestamp) > tolerance:
        raise Unauthorized(
            "stale_timestamp", f"the signed timestamp is more than {int(tolerance)} seconds from the server's time"
        )


def decode_hex(text: str) -> bytes | None:
    """Strict hex (either case, even length, nothing else), or None."""
    return bytes.fromhex(text) if _HEX.fullmatch(text) and not len(text) % 2 else None


def decode_base64(text: str) -> bytes | None:
    """Strict standard base64 (padded, no stray characters) of at least one byte, or None."""
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None


def parse_unix_seconds(text: str) -> int:
    """A timestamp header in whole unix seconds, or ``Unauthorized("malformed_signature")``."""
    stripped = text.strip()
    if not _UNIX_SECONDS.fullmatch(stripped):
        raise Unauthorized("malformed_signature", "the timestamp is not whole unix seconds")
    return int(stripped)
