"""Standard Webhooks adapter: the standard's published known-answer vector, then one mutation per test.

Apart from that vector, expected signatures are computed here with hmac, independently of the code
under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from datetime import datetime, timezone

import pytest
import standardwebhooks

from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery
from stardex_webhook.sources.generic import StandardWebhooksSource
from tests.conftest import make_delivery, refusal

# The vector of the standard-webhooks libraries' test suites ("sign function works").
VECTOR_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY_BYTES = b"\x01\x02generic-test-key\xfe\xff"
KEY = "whsec_" + base64.b64encode(KEY_BYTES).decode()
NOW = 1_773_000_000
BODY = json.dumps({"type": "person.updated", "data": {"email": "a@example.test"}}).encode()
MESSAGE_ID = "msg_2hGq1"

source = StandardWebhooksSource()


def sign(message_id: str, timestamp: int | str, body: bytes, key_bytes: bytes = KEY_BYTES) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key_bytes, content, hashlib.sha256).digest()).decode()


def delivery(body: bytes = BODY, **headers: str) -> Delivery:
    return make_delivery(body, NOW, **headers)


def signed(body: bytes = BODY, timestamp: int = NOW, key_bytes: bytes = KEY_BYTES, message_id: str = MESSAGE_ID):
    return delivery(
        body,
        webhook_id=message_id,
        webhook_timestamp=str(timestamp),
        webhook_signature=sign(message_id, timestamp, body, key_bytes),
    )


def refused(d: Delivery, keys=(KEY,), now: float = NOW) -> str:
    return refusal(source, d, keys, now)


def vector_delivery(signature: str = VECTOR_SIGNATURE) -> Delivery:
    return delivery(
        VECTOR_BODY,
        webhook_id=VECTOR_ID,
        webhook_timestamp=str(VECTOR_TIMESTAMP),
        webhook_signature=signature,
    )


@pytest.mark.parametrize("key", [VECTOR_KEY, VECTOR_KEY.removeprefix("whsec_")])
def test_known_answer_vector(key):
    source.verify(vector_delivery(), [key], VECTOR_TIMESTAMP)


def test_registered_without_a_handshake_and_a_signed_delivery_verifies():
    assert isinstance(SOURCES["generic"], StandardWebhooksSource) and SOURCES["generic"].name == "generic"
    assert source.success_status == 200 and source.handshake(signed()) is None
    source.verify(signed(), [KEY], NOW)


def test_plain_key_that_is_not_base64_is_used_as_utf8_bytes():
    plain = "not base64: a shared secret!"
    source.verify(signed(key_bytes=plain.encode()), [plain], NOW)


@pytest.mark.parametrize("missing", ["webhook_id", "webhook_timestamp", "webhook_signature"])
def test_missing_header(missing):
    headers = {
        "webhook_id": MESSAGE_ID,
        "webhook_timestamp": str(NOW),
        "webhook_signature": sign(MESSAGE_ID, NOW, BODY),
    }
    del headers[missing]
    assert refused(delivery(**headers)) == "missing_signature"


def test_no_signing_key():
    assert refused(signed(), keys=[]) == "no_signing_key"


def test_only_key_is_a_broken_whsec_key():
    assert refused(signed(), keys=["whsec_not*base64"]) == "invalid_signing_key"


def test_wrong_key():
    assert refused(signed(key_bytes=b"another key")) == "bad_signature"


@pytest.mark.parametrize(
    "body, message_id, timestamp",
    [(BODY.replace(b"person.updated", b"person.updatee"), MESSAGE_ID, NOW), (BODY, "msg_other", NOW), (BODY, MESSAGE_ID, NOW + 1)],
)
def test_a_signed_part_changed(body, message_id, timestamp):
    signature = sign(MESSAGE_ID, NOW, BODY)
    d = delivery(body, webhook_id=message_id, webhook_timestamp=str(timestamp), webhook_signature=signature)
    assert refused(d) == "bad_signature"


def test_stale_timestamp():
    assert refused(signed(timestamp=NOW - 301)) == "stale_timestamp"


def test_future_timestamp():
    assert refused(signed(timestamp=NOW + 301)) == "stale_timestamp"


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamp_at_the_edge_of_the_window(offset):
    source.verify(signed(timestamp=NOW + offset), [KEY], NOW)


def test_known_answer_vector_is_stale_today():
    assert refused(vector_delivery(), keys=[VECTOR_KEY], now=NOW) == "stale_timestamp"


@pytest.mark.parametrize("timestamp", ["soon", "1773000000.5", "-1773000000", "1e9", "0x69a0"])
def test_malformed_timestamp(timestamp):
    d = delivery(webhook_id=MESSAGE_ID, webhook_timestamp=timestamp, webhook_signature=sign(MESSAGE_ID, NOW, BODY))
    assert refused(d) == "malformed_signature"


@pytest.mark.parametrize(
    "signature_for",
    [
        lambda good: good.removeprefix("v1,"),  # no version
        lambda good: "v1,",
        lambda good: ",abc=",
        lambda good: "v1," + good.removeprefix("v1,").rstrip("="),  # padding dropped
        lambda good: "v1,not base64!",
        lambda good: "v1,é",
        lambda good: good.replace(",", ";"),
        lambda good: "v1,!!!! garbage",
    ],
)
def test_malformed_signature_header(signature_for):
    good = sign(MESSAGE_ID, NOW, BODY)
    d = delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=signature_for(good))
    assert refused(d) == "malformed_signature"


@pytest.mark.parametrize("unparseable", ["v1,!!!!", "garbage", "v1,", ",abc=", "v1;abc=", "v1,YWJj\u00e9"])
@pytest.mark.parametrize("good_first", [True, False])
def test_an_unparseable_entry_beside_a_valid_one_is_skipped(unparseable, good_first):
    good = sign(MESSAGE_ID, NOW, BODY)
    header = f"{good} {unparseable}" if good_first else f"{unparseable} {good}"
    source.verify(delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=header), [KEY], NOW)


def svix_headers(message_id: str = MESSAGE_ID, timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {"svix_id": message_id, "svix_timestamp": str(timestamp), "svix_signature": sign(message_id, timestamp, body)}


def test_svix_header_names_are_accepted():
    d = delivery(**svix_headers())
    source.verify(d, [KEY], NOW)
    assert source.parse(d).delivery_id == MESSAGE_ID


def test_svix_names_win_over_webhook_names_as_in_the_svix_library():
    stale = {"webhook_id": "msg_other", "webhook_timestamp": str(NOW - 10), "webhook_signature": "v1,c3RhbGU="}
    source.verify(delivery(**svix_headers(), **stale), [KEY], NOW)


@pytest.mark.parametrize("names", ["webhook", "svix"])
@pytest.mark.parametrize("message_id", [MESSAGE_ID, "msg_\u00e9\u00e8\u4e2d"])
def test_what_the_standard_libraries_sign_we_accept_and_they_accept(names, message_id):
    """Signed by the standardwebhooks library's own code; both real clients accept the same headers."""
    import svix.webhooks  # here, not at the top: 0.7 s to import, paid by every xdist worker's collection

    now = int(time.time())
    signature = standardwebhooks.Webhook(KEY).sign(message_id, datetime.fromtimestamp(now, tz=timezone.utc), BODY.decode())
    headers = {f"{names}-id": message_id, f"{names}-timestamp": str(now), f"{names}-signature": f"v1,!!!! {signature}"}
    source.verify(make_delivery(BODY, now, **headers), [KEY], now)
    svix.webhooks.Webhook(KEY).verify(BODY, headers)
    if names == "webhook":
        standardwebhooks.Webhook(KEY).verify(BODY, headers)


def test_rotation_second_key_matches():
    old_key, new_key = ("whsec_" + base64.b64encode(raw).decode() for raw in (b"old key", b"new key"))
    source.verify(signed(key_bytes=b"new key"), [old_key, new_key], NOW)


def test_rotation_two_signatures_in_one_header_second_matches():
    stale = sign(MESSAGE_ID, NOW, BODY, key_bytes=b"retired key")
    good = sign(MESSAGE_ID, NOW, BODY)
    d = delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=f"{stale} {good}")
    source.verify(d, [KEY], NOW)


def test_rotation_two_signatures_in_one_header_none_matches():
    first = sign(MESSAGE_ID, NOW, BODY, key_bytes=b"retired key")
    second = sign(MESSAGE_ID, NOW, BODY, key_bytes=b"other key")
    d = delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=f"{first}  {second}")
    assert refused(d) == "bad_signature"


def test_other_signature_versions_are_skipped():
    good = sign(MESSAGE_ID, NOW, BODY)
    header = f"v1a,c29tZSBlZDI1NTE5IHNpZ25hdHVyZQ== {good}"
    source.verify(delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=header), [KEY], NOW)


def test_only_other_versions_is_refused():
    good = sign(MESSAGE_ID, NOW, BODY)
    d = delivery(webhook_id=MESSAGE_ID, webhook_timestamp=str(NOW), webhook_signature=good.replace("v1,", "v2,"))
    assert refused(d) == "bad_signature"


def test_parse_event():
    event = source.parse(signed())
    assert event.source == "generic"
    assert event.event_type == "person.updated"
    assert event.delivery_id == MESSAGE_ID
    assert event.payload == json.loads(BODY)
    assert event.ignore_reason is None


@pytest.mark.parametrize("body", [b'{"data": {}}', b'{"type": 5}', b'{"type": ""}', b'{"type": null}'])
def test_parse_without_a_string_type(body):
    assert source.parse(signed(body)).event_type is None


def test_another_path_can_speak_the_standard():
    event = StandardWebhooksSource("google-forms").parse(signed())
    assert event.source == "google-forms"


@pytest.mark.parametrize(
    "body", [b"", b"nope", b"[]", b"\xc3\x28", b'{"a": NaN}', b'{"a": [Infinity]}', b'{"a": -Infinity}', b'{"a": 1e999}']
)
def test_parse_errors(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(signed(body))
    assert caught.value.reason == "invalid_json"


def test_garbage_never_raises_anything_but_unauthorized_or_bad_request():
    """A 500 is a bug: random headers and bodies give every registered source a clean 401 or 400."""
    rng = random.Random(20260316)
    alphabet = "v1,sha256= \t=+/-_.:0123456789abcdefABCDEFxyzé\x00\u0661\udcff\ud800"
    header_names = ["Signature", "Typeform-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"]
    for _ in range(2000):
        headers = {
            name: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
            for name in header_names
            if rng.random() < 0.8
        }
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 40)))
        garbage = make_delivery(body, NOW, **headers)
        for candidate in SOURCES.values():
            try:
                candidate.verify(garbage, [KEY, "plain key", "env key \udcff", "odd \ud800"], NOW)
            except Unauthorized:
                pass
            except BadRequest:  # a signature inside a body that cannot be read
                assert candidate.name == "lever"
            try:
                candidate.parse(garbage)
            except BadRequest:
                pass
