"""HubSpot adapter: signature v3 over method + URI + body + timestamp (ms), a 5-minute window,
HubSpot's table of URL-decoded characters; flat and legacy bodies mapped to the exact Stardex body.

Expected signatures are computed here with hmac, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from stardex_webhook.errors import BadRequest
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.send_sample import signed_request
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Transcript
from stardex_webhook.sources.hubspot import HubSpotSource
from tests.conftest import SIGNING_KEYS, fixture_bytes, fixture_json, make_delivery, refusal

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # the form of an app's client secret in HubSpot's docs
NOW = 1_773_000_000
TIMESTAMP = str(NOW * 1000)
URL = "https://europe-west1-acme.cloudfunctions.net/stardex-webhook/hubspot"
BODY = fixture_bytes("hubspot_workflow_webhook.json")
source = HubSpotSource()

# HubSpot's table: these are decoded in the URI before signing, and nothing else is.
DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
           "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def sign(method: str = "POST", uri: str = URL, body: bytes = BODY, timestamp: str = TIMESTAMP, secret: str = SECRET) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def delivery(body: bytes = BODY, url: str = URL, signature: str | None = None, timestamp: str | None = TIMESTAMP,
             method: str = "POST"):
    headers = {}
    if signature is not None:
        headers["X-HubSpot-Signature-v3"] = signature
    if timestamp is not None:
        headers["X-HubSpot-Request-Timestamp"] = timestamp
    made = make_delivery(body, NOW, url=url, **{name.replace("-", "_"): value for name, value in headers.items()})
    return type(made)(made.headers, made.body, made.received_at, url=made.url, query=made.query, method=method)


def signed(**changes) -> "object":
    return delivery(signature=sign(), **changes)


def refused(d, keys=(SECRET,), now: float = NOW) -> str:
    return refusal(source, d, keys, now)


def mapped(body: bytes):
    event = source.parse(make_delivery(body, NOW))
    return load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)["hubspot"].apply(event.payload, event)


# ---- signature v3 ----------------------------------------------------------------------------


def test_registered_as_a_form_tool_that_signs_its_url():
    assert isinstance(SOURCES["hubspot"], HubSpotSource)
    assert (source.success_status, source.default_write_policy, source.signs_url) == (200, "fill", True)
    assert source.handshake(signed()) is None


def test_a_request_signed_over_method_uri_body_and_timestamp_verifies():
    source.verify(signed(), [SECRET], NOW)


@pytest.mark.parametrize("d", [
    delivery(body=BODY.replace(b"Owen", b"Evan"), signature=sign()),
    delivery(body=BODY + b" ", signature=sign()),
    delivery(url=URL.replace("https:", "http:"), signature=sign()),
    delivery(url=URL.replace("acme", "acne"), signature=sign()),
    delivery(url=URL + "?portal=62515", signature=sign()),
    delivery(method="PUT", signature=sign()),
    delivery(signature=sign(method="GET")),
    delivery(timestamp=str(NOW * 1000 + 1), signature=sign()),
    delivery(signature=sign(secret="another-client-secret")),
    delivery(signature=sign(body=b"")),
], ids=["body", "body-whitespace", "scheme", "host", "query-added", "method-received", "method-signed",
        "timestamp", "key", "body-not-signed"])
def test_any_change_to_what_is_signed_is_refused(d):
    assert refused(d) == "bad_signature"


@pytest.mark.parametrize("offset, accepted", [(-299, True), (299, True), (-301, False), (301, False), (-86_400, False)])
def test_the_timestamp_must_be_within_five_minutes(offset, accepted):
    stamp = str((NOW + offset) * 1000)
    d = delivery(timestamp=stamp, signature=sign(timestamp=stamp))
    if accepted:
        source.verify(d, [SECRET], NOW)
    else:
        assert refused(d) == "stale_timestamp"


def test_a_timestamp_in_seconds_is_read_as_milliseconds_and_is_stale():
    stamp = str(NOW)
    assert refused(delivery(timestamp=stamp, signature=sign(timestamp=stamp))) == "stale_timestamp"


@pytest.mark.parametrize("d, reason", [
    (delivery(), "missing_signature"),
    (delivery(signature=sign(), timestamp=None), "missing_signature"),
    (delivery(signature="  "), "missing_signature"),
    (delivery(signature=sign(), timestamp="17730000000.5"), "malformed_signature"),
    (delivery(signature=sign(), timestamp="-1773000000000"), "malformed_signature"),
    (delivery(signature="not*base64!"), "malformed_signature"),
    (delivery(signature=hashlib.sha256(SECRET.encode() + BODY).hexdigest()), "bad_signature"),
], ids=["no-signature", "no-timestamp", "blank-signature", "fractional-timestamp", "negative-timestamp",
        "not-base64", "a-v1-signature-in-the-v3-header"])
def test_missing_and_malformed_headers_are_refused(d, reason):
    assert refused(d) == reason


def test_the_v1_header_alone_is_not_enough():
    legacy = make_delivery(BODY, NOW, url=URL, X_HubSpot_Signature=hashlib.sha256(SECRET.encode() + BODY).hexdigest(),
                           X_HubSpot_Signature_Version="v1")
    assert refused(legacy) == "missing_signature"


def test_no_configured_secret_refuses_everything():
    assert refused(signed(), keys=[]) == "no_signing_key"


@pytest.mark.parametrize("secret", ["old-client-secret", "new-client-secret"])
def test_during_a_rotation_either_client_secret_verifies(secret):
    source.verify(delivery(signature=sign(secret=secret)), ["old-client-secret", "new-client-secret"], NOW)


def test_a_header_sent_twice_verifies_when_one_entry_matches():
    source.verify(delivery(signature=f"{sign(secret='other')},{sign()}"), [SECRET], NOW)


@pytest.mark.parametrize("encoded", sorted(DECODED) + [code.lower() for code in sorted(DECODED)])
def test_the_characters_of_hubspots_table_are_decoded_in_the_uri(encoded):
    received = f"{URL}?next=a{encoded}b"
    as_signed = f"{URL}?next=a{DECODED[encoded.upper()]}b"
    source.verify(delivery(url=received, signature=sign(uri=as_signed)), [SECRET], NOW)
    assert refused(delivery(url=received, signature=sign(uri=received))) == "bad_signature"


@pytest.mark.parametrize("encoded", ["%20", "%26", "%3D", "%2B", "%23", "%25"])
def test_other_encoded_characters_stay_encoded(encoded):
    received = f"{URL}?next=a{encoded}b"
    source.verify(delivery(url=received, signature=sign(uri=received)), [SECRET], NOW)


def test_a_signature_whose_plus_signs_arrive_as_spaces_still_verifies():
    body = next(candidate for n in range(1000) if "+" in sign(body=(candidate := BODY + b" " * n)))
    assert refused(delivery(body=body, signature=sign(body=body).replace("+", "-"))) == "malformed_signature"
    source.verify(delivery(body=body, signature=sign(body=body).replace("+", " ")), [SECRET], NOW)


def test_the_sample_signer_signs_the_url_it_is_given():
    headers, body = signed_request("hubspot", BODY, SECRET, NOW, url=URL)
    assert headers == {"X-HubSpot-Signature-v3": sign(), "X-HubSpot-Request-Timestamp": TIMESTAMP,
                       "Content-Type": "application/json"}
    assert body == BODY


def test_the_app_checks_the_url_the_load_balancer_was_reached_at(make_client, base_env):
    base_env.setenv("DRY_RUN", "1")
    client = make_client()
    forwarded = "https://fn.example.com/hubspot"
    headers, body = signed_request("hubspot", BODY, SIGNING_KEYS["hubspot"], url=forwarded)
    behind_the_balancer = {"base_url": "http://fn.example.com", "headers": {**headers, "X-Forwarded-Proto": "https"}}
    answer = client.post("/hubspot", data=body, **behind_the_balancer)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["body"] == fixture_json("hubspot_workflow_webhook.update.json")
    plain = client.post("/hubspot", data=body, base_url="http://fn.example.com", headers=headers)
    assert (plain.status_code, plain.get_json()["reason"]) == (401, "bad_signature"), "http:// is another URI"


def test_at_the_cloudfunctions_url_the_function_name_cut_from_the_path_is_signed(make_client, base_env):
    """Cloud Functions strips the function's name from the path before the code sees it; HubSpot
    signed the URL with it (https://REGION-PROJECT.cloudfunctions.net/NAME/hubspot)."""
    base_env.setenv("DRY_RUN", "1")
    base_env.setenv("K_SERVICE", "stardex-webhook")
    client = make_client()
    headers, body = signed_request("hubspot", BODY, SIGNING_KEYS["hubspot"], url=URL)  # URL has the name
    seen_at = {"base_url": "http://europe-west1-acme.cloudfunctions.net", "headers": {**headers, "X-Forwarded-Proto": "https"}}
    answer = client.post("/hubspot", data=body, **seen_at)
    assert answer.status_code == 200, answer.get_json()
    without_name = URL.replace("/stardex-webhook/", "/")
    headers, body = signed_request("hubspot", BODY, SIGNING_KEYS["hubspot"], url=without_name)
    answer = client.post("/hubspot", data=body, **{**seen_at, "headers": {**headers, "X-Forwarded-Proto": "https"}})
    assert (answer.status_code, answer.get_json()["reason"]) == (401, "bad_signature")


# ---- the body --------------------------------------------------------------------------------


def test_a_flat_workflow_body_maps_to_the_exact_stardex_body():
    result = mapped(BODY)
    assert result.update == fixture_json("hubspot_workflow_webhook.update.json")
    assert result.write_policy == "fill"
    assert result.person.id is None and result.person.emails == ["owen.price@example.co.uk"]


def test_the_legacy_properties_shape_is_flattened():
    result = mapped(fixture_bytes("hubspot_legacy_contact.json"))
    assert result.update == {
        "first_name": "Amara", "last_name": "Nwosu", "name": "Amara Nwosu",
        "company_name": "Hooli Lagos", "current_job_title": "Product Designer",
        "emails": [{"contact_data_type": "personal", "value": "amara.nwosu@example.ng"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+2348030000000"}],
    }
    event = source.parse(make_delivery(fixture_bytes("hubspot_legacy_contact.json"), NOW))
    assert event.payload["hs_object_id"] == "51234567891"


def test_a_work_email_a_mobile_and_a_person_id_property():
    body = {"email": "lee@example.com", "work_email": "LEE@initech-example.com", "mobilephone": "+1 415 555 0199",
            "phone": "(415) 555-0199", "stardex_person_id": " 6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42 "}
    result = mapped(json.dumps(body).encode())
    assert result.person.id == "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"
    assert result.update == {
        "emails": [{"contact_data_type": "personal", "value": "lee@example.com"},
                   {"contact_data_type": "work", "value": "lee@initech-example.com"}],
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+14155550199"}],
    }


@pytest.mark.parametrize("body, timestamp, delivery_id", [
    ({"eventId": 42, "hs_object_id": 7}, TIMESTAMP, "42"),
    ({"hs_object_id": 7}, TIMESTAMP, f"7:{TIMESTAMP}"),
    ({"hs_object_id": "7"}, None, "7"),
    ({"email": "x@example.com"}, TIMESTAMP, None),
])
def test_the_delivery_id_is_the_event_id_else_the_record_and_time(body, timestamp, delivery_id):
    event = source.parse(delivery(body=json.dumps(body).encode(), timestamp=timestamp))
    assert (event.event_type, event.delivery_id) == ("workflow_webhook", delivery_id)


def test_the_transcript_is_the_submitted_properties():
    event = source.parse(delivery())
    assert event.transcript == Transcript("Careers – talent network form", (
        ("email", "Owen.Price@example.co.uk"), ("firstname", "Owen"), ("lastname", "Price"),
        ("phone", "+44 7911 123456"), ("company", "Vandelay Industries"), ("jobtitle", "Head of Sales"),
        ("city", "Leeds"), ("country", "United Kingdom"), ("linkedin_url", "linkedin.com/in/owen-price-example"),
        ("recent_conversion_event_name", "Careers – talent network form"),
    ))


@pytest.mark.parametrize("body", [b"", b"[1]", b"{", b'{"n": NaN}'])
def test_a_body_that_is_not_a_json_object_is_a_bad_request(body):
    with pytest.raises(BadRequest) as caught:
        source.parse(delivery(body=body))
    assert caught.value.reason == "invalid_json"
