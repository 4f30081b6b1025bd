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
from tests.helpers.schema import validate_update
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
    (a 400 or a 401; verify also a 400 where the signature lives in a body that cannot be read),
    never another exception (which the app would answer 500)."""
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
        except BadRequest:
            assert name == "lever", "only a sender that signs inside the body refuses an unreadable one as 400"
        try:
            source.parse(delivery)
        except BadRequest:
            pass


# ---- what every sender's signature check shares: rotation, and one mutation at a time ----------

def _signed_delivery(name: str, key: str):
    url = f"https://function.example/{name}"
    headers, body = signed_request(name, (SAMPLES_DIR / f"{name}.json").read_bytes(), key, NOW, url=url)
    return headers, body, url


def _delivery(headers: dict, body: bytes, url: str):
    return make_delivery(body, NOW, url=url, **{k.replace("-", "_"): v for k, v in headers.items()})


def _other_key(name: str) -> str:
    """A key of the same form as the sender's test key, but another one."""
    key = SIGNING_KEYS[name]
    return "whsec_" + "QUJD" * 8 if key.startswith("whsec_") else key + "-other"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_during_a_rotation_either_key_verifies(name):
    """Several keys configured (a rotation): a delivery signed with any one of them is authentic."""
    source, key, other = SOURCES[name], SIGNING_KEYS[name], _other_key(name)
    for signing_key in (key, other):
        headers, body, url = _signed_delivery(name, signing_key)
        source.verify(_delivery(headers, body, url), [key, other], NOW)
        source.verify(_delivery(headers, body, url), [other, key], NOW)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_delivery_signed_with_another_key_is_refused(name):
    headers, body, url = _signed_delivery(name, _other_key(name))
    with pytest.raises(Unauthorized):
        SOURCES[name].verify(_delivery(headers, body, url), [SIGNING_KEYS[name]], NOW)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_one_changed_character_of_what_proves_it_is_refused(name):
    """Each header whose value depends on the key (the signature, the token), one character changed;
    and for the senders that sign their body, one byte of the body changed."""
    source, key = SOURCES[name], SIGNING_KEYS[name]
    headers, body, url = _signed_delivery(name, key)
    other_headers, other_body, _ = _signed_delivery(name, _other_key(name))
    again, same_body, _ = _signed_delivery(name, key)
    # What depends on the key: a header or body byte that another key changes and the same key keeps.
    proofs = [header for header, value in headers.items() if other_headers.get(header) != value == again.get(header)]
    mutations = []
    for header in proofs:
        value = headers[header]
        position = len(value) // 2  # inside the digest or token, whatever its prefix and padding
        flipped = value[:position] + ("0" if value[position] != "0" else "1") + value[position + 1:]
        mutations.append(({**headers, header: flipped}, body))
    if body == same_body and body != other_body:  # signed inside the body (Lever): change that part
        index = next(i for i, (a, b) in enumerate(zip(body, other_body)) if a != b)
        mutations.append((headers, body[:index] + (b"0" if body[index:index + 1] != b"0" else b"1") + body[index + 1:]))
    elif body == same_body and name not in ("jotform", "fillout"):  # a shared token signs no body
        index = body.rindex(b"}") - 1  # the body is what is signed: change a byte near its end
        mutations.append((headers, body[:index] + bytes([body[index] ^ 1]) + body[index + 1:]))
    assert mutations, f"{name}: nothing proves its deliveries"
    for mutated_headers, mutated_body in mutations:
        with pytest.raises((Unauthorized, BadRequest)):
            source.verify(_delivery(mutated_headers, mutated_body, url), [key], NOW)
