"""What the Lever, Ashby and Workable tests share: a webhook posted to the real app in-process,
signed as its sender signs it, with the sender's API mocked by ``responses``."""

from __future__ import annotations

import base64
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


def basic_auth(api_key: str) -> str:
    """The Authorization header Lever and Ashby expect: Basic, the key as username, no password."""
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()


def one_read(client, sender_api, source: str, webhook: dict):
    """Post ``webhook`` to the app in dry run: the body it would send and the one API call made."""
    answer = post(client, source, webhook)
    assert answer.status_code == 200, answer.get_json()
    (call,) = sender_api.calls
    return answer.get_json()["body"], call
