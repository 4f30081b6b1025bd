"""A Stardex that misbehaves the way real servers and proxies do: every webhook still gets one of
the answers of docs/contract.md (a 503 ``retry_later`` when Stardex cannot be trusted), never a 500, and
within its deadline.

In-process first (``responses`` answering each call in a random broken way), then the real
``functions-framework`` server against the loopback fake's misbehaviour switches.
"""

from __future__ import annotations

import http.client
import json
import random
import re
from email.utils import formatdate

import pytest
import requests
import responses
import urllib3

from stardex_webhook.fake_stardex import FakeStardex
from stardex_webhook.http_transport import Retries
from tests.conftest import PERSON_ID, fixture_bytes, signed
from tests.helpers.e2e import fakes, function_server, send, server, stardex, typeform_body  # noqa: F401  (fixtures)

_ERRORS = [
    requests.exceptions.ContentDecodingError, requests.TooManyRedirects, requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL, requests.exceptions.ChunkedEncodingError, requests.ConnectionError,
    requests.ReadTimeout, requests.ConnectTimeout, requests.exceptions.SSLError, urllib3.exceptions.ProtocolError,
    http.client.RemoteDisconnected, ConnectionResetError, lambda text: http.client.IncompleteRead(b"", 10),
]
_ODD_RETRY_AFTER = ["86400", "-5", "soon", "nan", "1e400", "", formatdate(4e9, usegmt=True), formatdate(1, usegmt=True)]


def _good(request) -> dict:
    if request.url.endswith("/search"):
        return {"success": True, "data": [{"id": PERSON_ID}]}
    if request.method == "GET":
        return {"success": True, "data": {"id": PERSON_ID, "emails": [], "phones": []}}
    return {"success": True, "data": {"message": "Person updated successfully"}}


def _misbehaving(rng: random.Random):
    def answer(request):
        kind = rng.choice(["good", "good", "error", "error", "error", "redirect", "not-json", "odd-envelope", "429", "5xx", "4xx"])
        if kind == "error":
            raise rng.choice(_ERRORS)("Stardex misbehaved")
        if kind == "redirect":
            return rng.choice([301, 302, 303, 307, 308]), {"Location": "https://elsewhere.test/v1/persons"}, ""
        if kind == "not-json":
            return 200, {"Content-Type": rng.choice(["text/html", "application/json"])}, rng.choice(["<html>", "{", ""])
        if kind == "odd-envelope":
            return 200, {}, json.dumps(rng.choice([{"success": False}, {"success": True, "data": 7}, [1], "ok"]))
        if kind == "429":
            return 429, {"Retry-After": rng.choice(_ODD_RETRY_AFTER)}, json.dumps({"success": False})
        if kind == "5xx":
            return rng.choice([500, 502, 503, 504]), {}, "<html>gateway</html>"
        if kind == "4xx":
            body = {"success": False, "error": {"code": rng.choice(["VALIDATION_ERROR", "ada@example.com", 7])}}
            return rng.choice([400, 401, 403, 404, 409, 422]), {}, json.dumps(body)
        return 200, {}, json.dumps(_good(request))

    return answer


@pytest.mark.parametrize("source", ["greenhouse", "generic"])
def test_a_misbehaving_stardex_never_causes_a_500(make_client, base_env, monkeypatch, source):
    monkeypatch.setattr(Retries, "backoff", lambda self, failures: 0.0)  # no real waits
    body = fixture_bytes("greenhouse_hire_candidate.json") if source == "greenhouse" else {
        "stardex_person_id": PERSON_ID, "current_job_title": "CTO",
        "emails": [{"contact_data_type": "work", "value": "ada@example.com"}]}
    rng = random.Random(f"hostile-{source}")
    seen = set()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST, responses.PATCH):
            mock.add_callback(method, re.compile(r"https://stardex\.test/.*"), callback=_misbehaving(rng))
        for _ in range(120):
            raw, headers = signed(source, body)
            answer = make_client().post(f"/{source}", data=raw, headers=headers)  # a fresh instance each time
            result = answer.get_json()
            assert (answer.status_code, result["status"]) in {
                (200, "updated"), (200, "ignored"), (422, "unprocessable"), (503, "retry_later")}, result
            if answer.status_code == 503:
                assert 1 <= int(answer.headers["Retry-After"]) <= 300
            assert not any("elsewhere.test" in call.request.url for call in mock.calls)
            seen.add(result.get("reason", result["status"]))
    assert {"updated", "stardex_unavailable", "stardex_rate_limited", "stardex_unexpected_answer"} <= seen


# ---- the real server, the misbehaving fake -----------------------------------------------------


def _webhook(server, stardex) -> requests.Response:
    """A Typeform answer for a stored person: GET (contacts to merge), then PATCH."""
    person_id = stardex.add_person(id=PERSON_ID, name="Chidi Okafor")
    return send(server, "typeform", typeform_body(person_id))


@pytest.mark.parametrize("misbehave", ["redirect-302", "redirect-303", "redirect-307"])
def test_a_redirect_to_another_origin_is_not_followed(server, stardex, misbehave):
    with FakeStardex(api_key=stardex.api_key) as elsewhere:
        stardex.misbehave, stardex.redirect_to = misbehave, elsewhere.base_url.removesuffix("/v1")
        answer = _webhook(server, stardex)
    assert (answer.status_code, answer.json()["reason"]) == (503, "stardex_unexpected_answer")
    assert elsewhere.requests == []  # neither the key nor the person's data went there
    assert [request.method for request in stardex.requests] == ["GET"]


def test_a_redirect_loop_costs_one_request(server, stardex):
    stardex.misbehave = "redirect-loop"
    answer = _webhook(server, stardex)
    assert (answer.status_code, answer.json()["reason"]) == (503, "stardex_unexpected_answer")
    assert len(stardex.requests) == 1


@pytest.mark.parametrize("misbehave, reason", [
    ("drip-headers", "stardex_unavailable"), ("drip-body", "stardex_unavailable"),
    ("reset", "stardex_unavailable"), ("bad-gzip", "stardex_unavailable"),
    ("html", "stardex_unexpected_answer"), ("bad-json", "stardex_unexpected_answer"),
])
def test_a_broken_answer_is_503_within_the_deadline(server, stardex, misbehave, reason):
    """The server's deadline is 4 s; a drip of one byte every 2 s would take minutes, and the
    client's own 30 s timeout (in ``send``) fails the test if the webhook hangs."""
    stardex.misbehave = misbehave
    answer = _webhook(server, stardex)
    assert (answer.status_code, answer.json()["reason"]) == (503, reason)
    assert not any(request.method == "PATCH" for request in stardex.requests)


@pytest.mark.parametrize("misbehave", ["retry-after-day", "retry-after-date"])
def test_an_absurd_retry_after_is_capped_at_a_minute(fakes, stardex, misbehave):  # noqa: F811
    """Each on a fresh instance: a 429 rightly pauses the instance's limiter (for a minute)."""
    stardex.misbehave = misbehave
    with function_server(*fakes) as (base_url, _log):
        answer = _webhook(base_url, stardex)
        assert (answer.status_code, answer.json()["reason"]) == (503, "stardex_rate_limited")
        assert int(answer.headers["Retry-After"]) == 60


@pytest.mark.parametrize("count, reason", [(1_000, "too_many_person_keys"), (6, "too_many_person_keys")])
def test_one_event_cannot_spend_the_budget_on_searches(server, stardex, count, reason):
    """Issue 8's hostile case: an authentic webhook naming no person but a flood of unmatched
    emails made one search each, on every retry. Now it is refused before any call to Stardex."""
    emails = [{"contact_data_type": "work", "value": f"nobody{n}@example.org"} for n in range(count)]
    answer = send(server, "generic", {"type": "candidate.updated", "current_job_title": "CTO", "emails": emails})
    assert (answer.status_code, answer.json()["reason"]) == (422, reason)
    assert stardex.requests == []
