"""What the Lever, Ashby and Workable tests share: a webhook posted to the real app in-process,
signed as its sender signs it, with the sender's API mocked by ``responses``."""

from __future__ import annotations

import json

import pytest
import responses

from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from stardex_webhook.sources import SOURCES
from tests.conftest import signed

MAPPINGS = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)


def mapped(source: str, payload: dict, event=None) -> dict:
    """The Stardex body the shipped mapping makes of ``payload``."""
    return MAPPINGS[source].apply(payload, event).update


def post(client, source: str, body: bytes | dict, **kwargs):
    raw, headers = signed(source, body, **kwargs)
    return client.post(f"/{source}", data=raw, headers=headers)


@pytest.fixture
def sender_api():
    """The sender's API (and anything else the app calls over HTTP), mocked; every call recorded."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def dry_client(make_client, base_env):
    """The app in dry run, so an answer shows the body the follow-up read made possible."""
    base_env.setenv("DRY_RUN", "1")
    return make_client


def request_json(call) -> dict:
    return json.loads(call.request.body)
