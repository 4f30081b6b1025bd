"""Shared test helpers: the real app built in-process from main.py, and signed requests."""

from __future__ import annotations

import json
from pathlib import Path

import functions_framework
import pytest

from stardex_webhook.errors import Unauthorized
from stardex_webhook.send_sample import signed_request
from stardex_webhook.config import signing_key_name
from stardex_webhook.sources import SOURCES
from stardex_webhook.sources.base import Delivery, Headers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

GREENHOUSE_KEY = "gh-test-signing-key"
TYPEFORM_KEY = "tf-test-signing-key"
GENERIC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STARDEX_KEY = "stardex-test-key"
PERSON_ID = "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"

# Every sender has a test key: the three above, and for each later sender its adapter's demo key
# with "test" in it (in the form the sender's keys take), so adding a sender needs no line here.
SIGNING_KEYS = {
    **{name: source.sample_key().replace("local", "test") for name, source in SOURCES.items()},
    "greenhouse": GREENHOUSE_KEY, "typeform": TYPEFORM_KEY, "generic": GENERIC_KEY,
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def signed(source: str, body: bytes | dict, key: str | None = None, now: int | None = None) -> tuple[bytes, dict]:
    """The body and the headers its sender would send, signed with the test key."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers, raw = signed_request(source, raw, key or SIGNING_KEYS[source], now)
    return raw, headers


def make_delivery(body: bytes, received_at: float, url: str = "", query: dict | None = None, **headers: str) -> Delivery:
    """A delivery as the app hands it to an adapter; header names use ``_`` for ``-``."""
    return Delivery(Headers((name.replace("_", "-"), value) for name, value in headers.items()), body, received_at,
                    url=url, query=query or {})


def refusal(source, delivery: Delivery, keys, now: float) -> str:
    """The reason ``source`` refuses ``delivery`` (the test fails if it accepts it)."""
    with pytest.raises(Unauthorized) as caught:
        source.verify(delivery, list(keys), now)
    return caught.value.reason


@pytest.fixture
def base_env(monkeypatch):
    """A clean environment with every source's signing key and a Stardex key set as plain values."""
    import os

    for name in list(os.environ):
        if name.endswith(("_SIGNING_KEY", "_SIGNING_KEY_SECRET", "_API_KEY", "_API_KEY_SECRET")) or name in (
            "DRY_RUN", "ALLOW_UNSIGNED", "MAPPINGS_DIR", "PHONE_DEFAULT_REGION", "MAX_BODY_BYTES",
            "STARDEX_API_BASE", "SECRET_MANAGER_ENDPOINT", "STARDEX_DEADLINE_SECONDS",
        ):
            monkeypatch.delenv(name, raising=False)
    for source, key in SIGNING_KEYS.items():
        monkeypatch.setenv(signing_key_name(source), key)
    monkeypatch.setenv("STARDEX_API_KEY", STARDEX_KEY)
    monkeypatch.setenv("STARDEX_API_BASE", "https://stardex.test/v1")
    monkeypatch.setenv("STARDEX_DEADLINE_SECONDS", "2")
    return monkeypatch


@pytest.fixture
def make_client(base_env):
    """Build the real function in-process from main.py (as functions-framework does) and return a
    Flask test client; call it after adjusting the environment."""

    def build():
        app = functions_framework.create_app(target="handle_webhook", source=str(ROOT / "main.py"))
        return app.test_client()

    return build
