"""The signature primitives: published HMAC vector, constant-time matching, the replay window, and
strict decoding where an unreadable signature is skipped (None)."""

from __future__ import annotations

import base64
import re

import pytest

from stardex_webhook import signatures
from stardex_webhook.errors import Unauthorized


def test_hmac_sha256_matches_rfc_4231_test_case_2():
    digest = signatures.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


@pytest.mark.parametrize(
    "expected, given, matches",
    [
        ([b"old", b"new"], [b"new"], True),  # the second key (a rotation here)
        ([b"new"], [b"stale", b"new"], True),  # the second signature sent (a rotation there)
        ((d for d in [b"x", b"y"]), (d for d in [b"q", b"y"]), True),  # generators, read once
        ([b"a", b"b"], [b"c", b"d"], False),
        ([b"a"], [], False),
        ([], [b"a"], False),
    ],
)
def test_any_signature_matches(expected, given, matches):
    assert signatures.any_signature_matches(expected, given) is matches


@pytest.mark.parametrize("offset", [0, 1, -1, 300, -300])
def test_timestamp_inside_window(offset):
    signatures.check_timestamp(1_700_000_000 + offset, now=1_700_000_000)


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_timestamp_outside_window_both_directions(offset):
    with pytest.raises(Unauthorized) as caught:
        signatures.check_timestamp(1_700_000_000 + offset, now=1_700_000_000)
    assert caught.value.reason == "stale_timestamp"


def test_timestamp_custom_tolerance():
    with pytest.raises(Unauthorized):
        signatures.check_timestamp(100, now=161, tolerance=60)


@pytest.mark.parametrize("text", ["00ff", "00FF", "aBcD"])
def test_decode_hex(text):
    assert signatures.decode_hex(text) == bytes.fromhex(text)


@pytest.mark.parametrize("text", ["", "abc", "zz", "0x00", "00 ff", " 00ff", "00ff\n", "ab\u0660\u0661", "é1"])
def test_decode_hex_malformed(text):
    assert signatures.decode_hex(text) is None


def test_decode_base64():
    raw = bytes(range(256))
    assert signatures.decode_base64(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize(
    "text",
    ["", "abc", "ab=c", "not base64!", "-_-_", "YWJj\n", "YW Jj", "é", "===="],
)
def test_decode_base64_malformed(text):
    assert signatures.decode_base64(text) is None


def test_decoded_entries_skips_what_cannot_be_read():
    entry = re.compile(r"\s*sha256=(\S+)\s*")
    entries = ["sha256=00ff", "sha256=zz", "md5=00", "", " sha256=ABCD "]
    assert signatures.decoded_entries(entry, signatures.decode_hex, entries) == [b"\x00\xff", b"\xab\xcd"]


@pytest.mark.parametrize("text, expected", [("1614265330", 1614265330), (" 0 ", 0)])
def test_parse_unix_seconds(text, expected):
    assert signatures.parse_unix_seconds(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "1.5", "1e9", "abc", "\u0661\u0662", "1_000", "9" * 20])
def test_parse_unix_seconds_malformed(text):
    with pytest.raises(Unauthorized) as caught:
        signatures.parse_unix_seconds(text)
    assert caught.value.reason == "malformed_signature"


def test_require_keys():
    assert signatures.require_keys(["", "k1", "k2"]) == ["k1", "k2"]


@pytest.mark.parametrize("keys", [[], [""]])
def test_require_keys_refuses_without_a_key(keys):
    with pytest.raises(Unauthorized) as caught:
        signatures.require_keys(keys)
    assert caught.value.reason == "no_signing_key"


def test_utf8_bytes():
    assert signatures.utf8_bytes("clé") == "clé".encode()
    assert signatures.utf8_bytes("key\udcff") == b"key\xff"  # os.environ's escape for an undecodable byte
    assert signatures.utf8_bytes("\ud800") == b"\xed\xa0\x80"
