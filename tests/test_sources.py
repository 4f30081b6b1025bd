"""The one list of senders: every registered sender is whole (an adapter that signs its own sample,
a mapping file, a shipped sample that maps to an update) and every part of the project reads it."""

from __future__ import annotations

import json
import random

import pytest

from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.send_sample import SAMPLES_DIR, signed_request
from stardex_webhook.sources import ADAPTERS, SOURCES
from stardex_webhook.validation import validate_update
from tests.conftest import SIGNING_KEYS, make_delivery

NOW = 1_780_000_000
MAPPINGS = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)


def test_names_are_unique_paths():
    assert len(SOURCES) == len(ADAPTERS)
    assert all(name and name == name.lower() and "/" not in name for name in SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_sender_s_signed_sample_verifies_and_maps_to_a_valid_update(name):
    source = SOURCES[name]
    url = f"https://function.example/{name}"
    headers, body = signed_request(name, (SAMPLES_DIR / f"{name}.json").read_bytes(), SIGNING_KEYS[name], NOW, url=url)
    delivery = make_delivery(body, NOW, url=url, **{k.replace("-", "_"): v for k, v in headers.items()})
    assert source.handshake(delivery) is None
    source.verify(delivery, [SIGNING_KEYS[name]], NOW)
    event = source.parse(delivery)
    assert event.ignore_reason is None and MAPPINGS[name].acts_on(event.event_type)
    follow_up = source.follow_up(event)
    if follow_up is not None:
        assert source.needs_api_key, f"{name} reads its API but does not say it needs {name.upper()}_API_KEY"
        api_sample = SAMPLES_DIR / f"{name}.api.json"
        assert api_sample.is_file(), f"{name}'s sample needs a follow-up read: ship its answer as {api_sample.name}"
        event = source.with_follow_up(event, json.loads(api_sample.read_text()))
    mapped = MAPPINGS[name].apply(event.payload, event)
    assert mapped.update, f"{name}'s sample maps to nothing"
    validate_update(mapped.update)
    assert mapped.write_policy == source.default_write_policy


# Every sender's own header names, and text no HTTP client sends (lone surrogates, NUL, other
# scripts' digits): an adapter meets such values from a WSGI server that decodes bytes leniently.
HEADER_NAMES = [
    "Signature", "Typeform-Signature", "Tally-Signature", "X-Workable-Signature", "X-Recruitee-Signature",
    "Ashby-Signature", "TT-Signature", "smartrecruiters-signature", "smartrecruiters-timestamp", "event-id",
    "event-name", "event-version", "Link", "X-Hook-Secret", "x-webflow-timestamp", "x-webflow-signature",
    "X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "Authorization", "Content-Type",
    "webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp", "svix-signature",
]
GARBAGE = "Bearer sha256=v1,;=+/ \t-_.:%3A0123456789abcdefABCDEF\"xyzé\x00\u0661\udcff\ud800"
BODIES = [b"", b"{}", b"[]", b"--x\r\n", b'{"data": {"fields": [{}]}}', b'{"payload": {"data": {"a": 1}}}',
          b'{"test": true}', b'--b\r\nContent-Disposition: form-data; name="rawRequest"\r\n\r\n{"q1_a": 1}\r\n--b--\r\n']


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_garbage_in_any_header_token_or_body_is_a_clean_refusal(name):
    """Each adapter's handshake, verify and parse either pass or raise the one error of their stage
    (a 400 or a 401), never another exception (which the app would answer 500)."""
    rng = random.Random(f"garbage-{name}")
    source = SOURCES[name]

    def text(most: int = 50) -> str:
        return "".join(rng.choice(GARBAGE) for _ in range(rng.randint(0, most)))

    for _ in range(300):
        headers = {header.replace("-", "_"): text() for header in HEADER_NAMES if rng.random() < 0.3}
        if rng.random() < 0.3:
            headers["Content_Type"] = rng.choice(["multipart/form-data; boundary=b", "application/json",
                                                  "application/x-www-form-urlencoded", "multipart/form-data; boundary=" + text(10)])
        body = rng.choice(BODIES) if rng.random() < 0.5 else bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 40)))
        delivery = make_delivery(body, NOW, url=f"https://fn.example/{name}?{text()}", query={"token": text()}, **headers)
        try:
            source.handshake(delivery)
        except BadRequest:
            pass
        try:
            source.verify(delivery, ["a key", "whsec_a2V5", "env key \udcff", "odd \ud800"], NOW)
        except Unauthorized:
            pass
        try:
            source.parse(delivery)
        except BadRequest:
            pass
