"""The one list of senders: every registered sender is whole (an adapter that signs its own sample,
a mapping file, a shipped sample that maps to an update) and every part of the project reads it."""

from __future__ import annotations

import json

import pytest

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
