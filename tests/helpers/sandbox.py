"""The sandbox Stardex (``stardex_webhook.fake_stardex``) on loopback, once per module, reset per test,
and a plain ``requests`` call to it (the fake's own tests, the stage and custom-field tests)."""

from __future__ import annotations

import pytest
import requests

from stardex_webhook.fake_stardex import FakeStardex


@pytest.fixture(scope="module")
def server():
    with FakeStardex() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    server.api_key = "fake-key"
    server.rate_limit = 60
    yield server
    server.reset()


def call(fake, method, path, json=None, key=None):
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return requests.request(method, fake.base_url + path, json=json, headers=headers, timeout=5)
