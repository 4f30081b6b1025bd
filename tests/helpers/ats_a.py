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


def random_shapes_never_500(client, sender_api, source: str, body_for, api_url: str | None = None,
                            method: str = "GET", rounds: int = 150) -> None:
    """Signed webhooks of random shapes (and, where the sender is read, random API answers) get a
    200, 400 or 422, never a 500, and reach more than one of those."""
    import random

    rng = random.Random(f"ats-a-{source}")

    def strict(document):  # NaN and Infinity are no JSON (the webhook's 400 is tested elsewhere)
        return json.loads(json.dumps(document), parse_constant=lambda constant: None)

    if api_url:
        sender_api.add_callback(method, api_url, callback=lambda request: (200, {}, json.dumps(strict(body_for(rng, api=True)))))
    seen = set()
    for _ in range(rounds):
        answer = post(client, source, strict(body_for(rng, api=False)))
        assert answer.status_code in (200, 400, 422), answer.get_json()
        assert json.loads(answer.get_data(), parse_constant=pytest.fail)["status"]
        seen.add(answer.status_code)
    assert len(seen) >= 2, "the random shapes reach more than one kind of answer"
