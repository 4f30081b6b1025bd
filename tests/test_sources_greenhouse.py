"""Greenhouse adapter: `Signature: sha256 <hex>` over the raw body, then one mutation per test.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery
from stardex_webhook.sources.greenhouse import GreenhouseSource
from tests.conftest import GREENHOUSE_KEY as KEY, fixture_bytes, make_delivery, refusal

NOW = 1_773_000_000.0
BODY = fixture_bytes("greenhouse_hire_candidate.json")
source = GreenhouseSource()


def sign(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def delivery(body: bytes = BODY, **headers: str) -> Delivery:
    return make_delivery(body, NOW, **headers)


def signed(body: bytes = BODY, key: str = KEY, event_id: str = "evt-1") -> Delivery:
    return delivery(body, **{"Signature": f"sha256 {sign(body, key)}", "Greenhouse-Event-ID": event_id})


def refused(d: Delivery, keys=(KEY,)) -> str:
    return refusal(source, d, keys, NOW)


def test_registered_without_a_handshake_and_the_signed_fixture_verifies():
    assert isinstance(SOURCES["greenhouse"], GreenhouseSource) and source.success_status == 200
    assert source.handshake(signed()) is None
    source.verify(signed(), [KEY], NOW)


@pytest.mark.parametrize(
    "header_for",
    [
        lambda hexdigest: f"sha256 {hexdigest.upper()}",
        lambda hexdigest: f"SHA256   {hexdigest}  ",
        lambda hexdigest: f"sha256={hexdigest}",
        lambda hexdigest: f"  sha256 = {hexdigest}",
    ],
)
def test_lenient_header_forms(header_for):
    source.verify(delivery(Signature=header_for(sign(BODY))), [KEY], NOW)


def test_header_name_is_case_insensitive():
    source.verify(delivery(signature=f"sha256 {sign(BODY)}"), [KEY], NOW)


def test_missing_header():
    assert refused(delivery()) == "missing_signature"


def test_blank_header():
    assert refused(delivery(Signature="  ")) == "missing_signature"


def test_no_signing_key():
    assert refused(signed(), keys=[]) == "no_signing_key"


def test_wrong_key():
    assert refused(signed(key="another-key")) == "bad_signature"


def test_one_byte_of_body_changed():
    tampered = delivery(BODY.replace(b"hire_candidate", b"hire_candidatf"), Signature=f"sha256 {sign(BODY)}")
    assert refused(tampered) == "bad_signature"


def test_reserialised_body_fails():
    """The raw bytes are signed: parsing and dumping the JSON again changes them."""
    reserialised = json.dumps(json.loads(BODY)).encode()
    assert refused(delivery(reserialised, Signature=f"sha256 {sign(BODY)}")) == "bad_signature"


def test_truncated_signature():
    assert refused(delivery(Signature=f"sha256 {sign(BODY)[:-2]}")) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "{hexdigest}",
        "sha1 {hexdigest}",
        "sha256",
        "sha256 ",
        "sha256:{hexdigest}",
        "sha256{hexdigest}",
        "sha256 {hexdigest} {hexdigest}",
        "sha256 {hexdigest}0",
        "sha256 " + "zz" * 32,
        "sha256 0x{hexdigest}",
        "sha256 " + "é" * 64,
        "sha256 \x00",
    ],
)
def test_malformed_header(header):
    assert refused(delivery(Signature=header.format(hexdigest=sign(BODY)))) == "malformed_signature"


@pytest.mark.parametrize("joiner", [",", ", "])
@pytest.mark.parametrize("other", ["sha256 " + "00" * 32, "sha256 !!!!", "garbage", ""])
def test_a_repeated_header_is_accepted_when_one_entry_matches(joiner, other):
    """A Signature header sent twice reaches the function joined with a comma (RFC 9110, 5.3)."""
    good = f"sha256 {sign(BODY)}"
    for entries in ([other, good], [good, other]):
        source.verify(delivery(Signature=joiner.join(entries)), [KEY], NOW)


def test_a_repeated_header_without_a_matching_entry_is_refused():
    stale = f"sha256 {sign(BODY, 'retired-key')}"
    assert refused(delivery(Signature=f"{stale},sha256 !!!!")) == "bad_signature"
    assert refused(delivery(Signature="sha256 !!!!, garbage")) == "malformed_signature"


def test_rotation_second_key_matches():
    source.verify(signed(key="new-key"), ["old-key", "new-key"], NOW)


def test_rotation_first_key_still_matches():
    source.verify(signed(key="old-key"), ["old-key", "new-key"], NOW)


def test_no_timestamp_so_old_deliveries_still_verify():
    source.verify(signed(), [KEY], NOW + 10 * 86_400)


def test_parse_hire_candidate():
    event = source.parse(signed())
    assert event.source == "greenhouse"
    assert event.event_type == "hire_candidate"
    assert event.delivery_id == "evt-1"
    assert event.payload == json.loads(BODY)
    assert event.ignore_reason is None


def test_parse_without_event_id_header():
    event = source.parse(delivery(Signature=f"sha256 {sign(BODY)}"))
    assert event.delivery_id is None


def test_ping_is_verified_and_ignored():
    ping = json.dumps({"action": "ping", "payload": {"web_hook_id": 12345}}).encode()
    source.verify(signed(ping), [KEY], NOW)
    event = source.parse(signed(ping))
    assert event.event_type == "ping"
    assert event.ignore_reason == "ping"


def test_unsigned_ping_is_refused():
    ping = json.dumps({"action": "ping", "payload": {}}).encode()
    assert refused(delivery(ping)) == "missing_signature"


@pytest.mark.parametrize("body", [b'{"payload": {}}', b'{"action": 7}', b'{"action": ""}', b'{"action": null}'])
def test_a_body_without_a_string_action_is_invalid_payload(body):
    """Bodies that are no JSON object are parse_json_object's (test_sources_generic)."""
    with pytest.raises(BadRequest) as caught:
        source.parse(signed(body))
    assert caught.value.reason == "invalid_payload"
