"""Follow-up reads from a sender's own API: the base-URL guard, the key, retries within the
deadline, and each failure mapped to the answer that helps the sender."""

from __future__ import annotations

import pytest
import requests
import responses

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater, Unprocessable
from stardex_webhook.sender_api import SenderApiClient, under_base
from stardex_webhook.records import FollowUp
from tests.helpers.fake_time import FakeTime

BASE = "https://api.sender.test/v1"
KEY = "sender-SECRET-api-key"


@pytest.fixture
def clock():
    return FakeTime()


def client(clock: FakeTime, key: str | None = KEY, **options) -> SenderApiClient:
    return SenderApiClient("sender", BASE, lambda deadline: key, lambda k: {"X-Token": k}, "SENDER_API_KEY",
                           sleep=clock.sleep, rng=lambda: 1.0, **options)


def deadline(clock: FakeTime, seconds: float = 10) -> Deadline:
    return Deadline(seconds, clock=clock.clock)


@pytest.mark.parametrize("url, inside", [
    (f"{BASE}/candidates/1", True),
    (BASE, True),
    ("https://api.sender.test/v1x/candidates", False),  # a sibling path, not under the base
    ("https://api.sender.test/v2/candidates", False),
    ("http://api.sender.test/v1/candidates", False),  # the scheme counts
    ("https://api.sender.test:8443/v1/candidates", False),
    ("https://api.sender.test.evil.example/v1/candidates", False),
    ("https://evil.example/v1/candidates", False),
    ("https://user@api.sender.test/v1/candidates", False),
    ("https://api.sender.test/v1/../admin", False),
    ("https://api.sender.test:bad/v1/candidates", False),
])
def test_only_urls_under_the_base_are_inside(url, inside):
    assert under_base(url, BASE) is inside


@responses.activate
def test_a_path_is_read_under_the_base_with_the_key(clock):
    responses.get(f"{BASE}/candidates/7", json={"data": {"id": 7}})
    assert client(clock).read(deadline(clock), FollowUp("GET", "candidates/7")) == {"data": {"id": 7}}
    (call,) = responses.calls
    assert call.request.headers["X-Token"] == KEY


@responses.activate
def test_a_post_sends_its_json(clock):
    responses.post(f"{BASE}/candidate.info", json={"results": {"id": "c"}},
                   match=[responses.matchers.json_params_matcher({"id": "c"})])
    assert client(clock).read(deadline(clock), FollowUp("POST", "/candidate.info", {"id": "c"})) == {"results": {"id": "c"}}


@responses.activate
def test_a_foreign_url_from_the_request_is_refused_without_a_request(clock):
    with pytest.raises(Unprocessable) as refused:
        client(clock).read(deadline(clock), FollowUp("GET", "https://evil.example/v1/candidates/7"))
    assert refused.value.reason == "follow_up_url_refused"
    assert len(responses.calls) == 0


@responses.activate
def test_without_a_key_the_event_is_unprocessable_and_names_the_setting(clock):
    with pytest.raises(Unprocessable) as refused:
        client(clock, key=None).read(deadline(clock), FollowUp("GET", "candidates/7"))
    assert refused.value.reason == "sender_api_key_missing" and "SENDER_API_KEY" in refused.value.message
    assert len(responses.calls) == 0


@responses.activate
def test_a_failing_api_is_retried_then_succeeds(clock):
    responses.get(f"{BASE}/candidates/7", status=502)
    responses.get(f"{BASE}/candidates/7", json={"id": 7})
    assert client(clock).read(deadline(clock), FollowUp("GET", "candidates/7")) == {"id": 7}
    assert clock.sleeps == [0.5]


@pytest.mark.parametrize("answer", [
    {"status": 503}, {"status": 429, "headers": {"Retry-After": "1"}}, {"body": requests.ConnectionError("down")},
    {"status": 408},  # the API (or its front end) timing out on the request: a retry can help, unlike a 4xx
    {"status": 200, "body": "<html>"}, {"status": 302, "headers": {"Location": "https://evil.example/"}},
])
@responses.activate
def test_an_api_that_stays_down_is_a_503_so_the_sender_retries(clock, answer):
    responses.get(f"{BASE}/candidates/7", **answer)
    with pytest.raises(RetryLater) as unavailable:
        client(clock).read(deadline(clock), FollowUp("GET", "candidates/7"))
    assert unavailable.value.reason == "sender_api_unavailable"
    assert all(call.request.url.startswith(BASE) for call in responses.calls)


@responses.activate
def test_retries_stop_at_the_deadline(clock):
    responses.get(f"{BASE}/candidates/7", status=429, headers={"Retry-After": "86400"})
    with pytest.raises(RetryLater) as unavailable:
        client(clock).read(deadline(clock, 5), FollowUp("GET", "candidates/7"))
    assert len(responses.calls) == 1 and clock.sleeps == []
    assert unavailable.value.retry_after == 60  # the absurd wait is capped, and passed on


@pytest.mark.parametrize("status, error, reason", [
    (401, RetryLater, "sender_api_auth_failed"),
    (403, RetryLater, "sender_api_auth_failed"),
    (404, Unprocessable, "sender_resource_not_found"),
    (400, Unprocessable, "sender_api_rejected"),
])
@responses.activate
def test_refusals_are_not_retried(clock, status, error, reason):
    responses.get(f"{BASE}/candidates/7", status=status, json={"error": f"{KEY} ada@example.com"})
    with pytest.raises(error) as refused:
        client(clock).read(deadline(clock), FollowUp("GET", "candidates/7"))
    assert refused.value.reason == reason and len(responses.calls) == 1
    assert KEY not in str(refused.value.body()) and "ada@" not in str(refused.value.body())


@pytest.mark.parametrize("body", ['"a string"', "[1, 2]", "null", "[" * 100_000 + "]" * 100_000],
                         ids=["string", "list", "null", "too-deep"])
def test_an_answer_that_is_not_a_json_object_is_503_like_html(clock, body):
    """Every sender's API answers an object: anything else is a failure to read it (503, the
    sender retries), never a 422 that dead-letters the event, and never a 500."""
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/candidates/1", body=body, content_type="application/json")
        with pytest.raises(RetryLater) as caught:
            client(clock, max_attempts=1).read(deadline(clock), FollowUp("GET", "candidates/1"))
    assert caught.value.reason == "sender_api_unavailable"
