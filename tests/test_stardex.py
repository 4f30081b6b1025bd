"""The Stardex client: envelopes, retries, backoff, deadline, limiter, key rotation, redirects, error codes.

Time is faked (one clock shared by the deadline and the limiter; ``sleep`` advances
it and records each wait), so no test sleeps for real except the few that run real threads or a
real socket against the loopback fake, for about a second.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from email.utils import formatdate

import pytest
import requests
import responses
import urllib3

from stardex_webhook import __version__
from stardex_webhook.errors import RetryLater
from stardex_webhook.deadline import Deadline
from stardex_webhook.stardex import DEFAULT_RETRY_AFTER_SECONDS, OutcomeUnknown, RateLimiter, StardexClient, StardexError
from stardex_webhook.fake_stardex import FakeStardex
from tests.helpers.fake_time import WALL_EPOCH, FakeTime

BASE = "https://stardex.test/v1"
KEY = "ats-SECRET-key-0123456789"




@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_client(fake_time: FakeTime, *, api_key=lambda refresh, deadline: KEY, rng=lambda: 0.5, rpm=60, **options):
    limiter = RateLimiter(rpm, clock=fake_time.clock, sleep=fake_time.sleep)
    return StardexClient(
        BASE, api_key, limiter,
        sleep=fake_time.sleep, rng=rng, wall_clock=fake_time.wall, **options,
    )


def deadline(fake_time: FakeTime, seconds: float = 20.0) -> Deadline:
    return Deadline(seconds, clock=fake_time.clock)


def ok(data, **extra):
    return {"success": True, "data": data, **extra}


PERSON = {"id": "3f2b7c1e-0000-4000-8000-000000000001", "name": "Ada Lovelace", "emails": [], "phones": []}


# -- envelopes and requests ---------------------------------------------------------------------


def test_search_by_email_posts_email_and_limit_and_returns_the_data_list(fake_time, mocked):
    mocked.post(f"{BASE}/persons/search", json=ok([PERSON], meta={"total": 1, "offset": 0, "limit": 2}))
    client = make_client(fake_time)

    found = client.search_persons(deadline(fake_time), email="ada@example.com")

    assert found == [PERSON]
    request = mocked.calls[0].request
    assert json.loads(request.body) == {"email": "ada@example.com", "limit": 2}
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"stardex-webhook/{__version__}"


def test_search_by_linkedin_url_posts_linkedin_url(fake_time, mocked):
    mocked.post(f"{BASE}/persons/search", json=ok([], meta={"total": 0, "offset": 0, "limit": 2}))
    client = make_client(fake_time)

    assert client.search_persons(deadline(fake_time), linkedin_url="https://www.linkedin.com/in/ada") == []
    assert json.loads(mocked.calls[0].request.body) == {"linkedin_url": "https://www.linkedin.com/in/ada", "limit": 2}


def test_search_needs_exactly_one_key(fake_time):
    client = make_client(fake_time)
    with pytest.raises(ValueError):
        client.search_persons(deadline(fake_time))
    with pytest.raises(ValueError):
        client.search_persons(deadline(fake_time), email="a@b.c", linkedin_url="https://x.test/in/a")


@pytest.mark.parametrize("method, path, call, data", [
    ("GET", f"/persons/{PERSON['id']}", lambda client, budget: client.get_person(budget, PERSON["id"]), PERSON),
    ("POST", "/persons", lambda client, budget: client.create_person(budget, {"name": "Ada"}), {"id": PERSON["id"]}),
    ("PATCH", f"/persons/{PERSON['id']}", lambda client, budget: client.update_person(budget, PERSON["id"], {"name": "Ada"}),
     {"message": "Person updated successfully"}),
], ids=["get", "create", "update"])
def test_each_call_sends_its_body_and_unwraps_the_data(fake_time, mocked, method, path, call, data):
    mocked.add(method, BASE + path, json=ok(data))
    assert call(make_client(fake_time), deadline(fake_time)) == data
    assert mocked.calls[0].request.method == method
    assert json.loads(mocked.calls[0].request.body or "null") == (None if method == "GET" else {"name": "Ada"})


def test_non_ascii_body_is_sent_as_json(fake_time, mocked):
    mocked.patch(f"{BASE}/persons/{PERSON['id']}", json=ok({"message": "ok"}))
    make_client(fake_time).update_person(deadline(fake_time), PERSON["id"], {"name": "Zoë Ñúñez 山田"})
    assert json.loads(mocked.calls[0].request.body) == {"name": "Zoë Ñúñez 山田"}


def test_person_id_stays_one_path_segment(fake_time, mocked):
    mocked.get(f"{BASE}/persons/..%2Fjobs", json=ok({**PERSON, "id": "../jobs"}))
    make_client(fake_time).get_person(deadline(fake_time), "../jobs")
    assert mocked.calls[0].request.url == f"{BASE}/persons/..%2Fjobs"

    with pytest.raises(StardexError) as raised:
        make_client(fake_time).get_person(deadline(fake_time), "..")
    assert raised.value.status_code == 400
    assert len(mocked.calls) == 1


def test_success_status_without_the_envelope_asks_for_a_retry_later(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", body="<html>proxy</html>", status=200)
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.reason == "stardex_unexpected_answer"


@pytest.mark.parametrize("error", [
    requests.exceptions.ContentDecodingError("bad gzip"), requests.TooManyRedirects("loop"),
    requests.exceptions.InvalidHeader("bad header"), requests.exceptions.InvalidURL("bad url"),
    requests.exceptions.ChunkedEncodingError("bad chunk"), requests.exceptions.SSLError("tls"),
    urllib3.exceptions.ProtocolError("aborted"), http.client.IncompleteRead(b"par"), ConnectionResetError(),
], ids=lambda error: type(error).__name__)
def test_any_failure_to_talk_to_stardex_is_retry_later(fake_time, mocked, error):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", body=error)
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.reason == "stardex_unavailable"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed(fake_time, mocked, status):
    elsewhere = "https://elsewhere.test/v1/persons/x"
    mocked.patch(f"{BASE}/persons/{PERSON['id']}", status=status, headers={"Location": elsewhere})
    for method in (responses.GET, responses.PATCH):
        mocked.add(method, elsewhere, json=ok({"message": "Person updated successfully"}))

    with pytest.raises(RetryLater) as raised:
        make_client(fake_time).update_person(deadline(fake_time), PERSON["id"], {"name": "Ada"})

    assert raised.value.reason == "stardex_unexpected_answer"
    assert [call.request.url for call in mocked.calls] == [f"{BASE}/persons/{PERSON['id']}"]


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [
    {"body": requests.ConnectionError("connection refused")}, {"body": requests.ReadTimeout("slow")},
    {"json": {"success": False, "error": {"code": "SERVICE_UNAVAILABLE", "message": "down"}}, "status": 503},
    {"body": "request timeout", "status": 408},  # a front end that timed out reading the request: Stardex never saw it
], ids=["connection-error", "read-timeout", "503", "408"])
def test_a_transient_failure_is_retried_after_a_jittered_backoff(fake_time, mocked, failure):
    url = f"{BASE}/persons/{PERSON['id']}"
    mocked.get(url, **failure)
    mocked.get(url, json=ok(PERSON))

    assert make_client(fake_time, rng=lambda: 0.5).get_person(deadline(fake_time), PERSON["id"]) == PERSON
    assert len(mocked.calls) == 2
    assert fake_time.sleeps == [0.25]  # 0.5 (rng) * 0.5 s (first backoff step)


def test_429_retry_after_header_is_honoured(fake_time, mocked):
    url = f"{BASE}/persons/search"
    mocked.post(url, json={"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}},
                status=429, headers={"Retry-After": "7"})
    mocked.post(url, json=ok([]))

    assert make_client(fake_time, rng=lambda: 0.0).search_persons(deadline(fake_time), email="a@b.test") == []
    assert fake_time.sleeps == [7.0]


def test_retry_after_as_http_date_is_honoured(fake_time, mocked):
    url = f"{BASE}/persons/search"
    from email.utils import formatdate

    retry_at = formatdate(fake_time.wall() + 9, usegmt=True)
    mocked.post(url, json={"success": False, "error": {"code": "X", "message": "later"}},
                status=503, headers={"Retry-After": retry_at})
    mocked.post(url, json=ok([]))

    make_client(fake_time).search_persons(deadline(fake_time), email="a@b.test")
    assert fake_time.sleeps == [pytest.approx(9.0, abs=1.0)]


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "m", "retry_after_seconds": 4}},
        {"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "m"}, "retry_after_seconds": 4},
    ],
    ids=["inside-error", "top-level"],
)
def test_retry_after_seconds_in_the_429_body_is_honoured(fake_time, mocked, body):
    url = f"{BASE}/persons/search"
    mocked.post(url, json=body, status=429)
    mocked.post(url, json=ok([]))

    make_client(fake_time, rng=lambda: 0.0).search_persons(deadline(fake_time), email="a@b.test")
    assert fake_time.sleeps == [4.0]


@pytest.mark.parametrize("retry_after", ["86400", formatdate(WALL_EPOCH + 1000 + 86400, usegmt=True)])
def test_a_huge_retry_after_pauses_for_one_window_only(fake_time, mocked, retry_after):
    mocked.post(f"{BASE}/persons/search", status=429, headers={"Retry-After": retry_after},
                json={"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}})
    client = make_client(fake_time)
    with pytest.raises(RetryLater) as raised:
        client.search_persons(deadline(fake_time, 2), email="a@b.test")
    assert (raised.value.reason, raised.value.retry_after) == ("stardex_rate_limited", 60)

    fake_time.now += 60
    client.limiter.acquire(deadline(fake_time, 1))  # a minute later the instance works again
    assert fake_time.sleeps == []


def test_backoff_grows_exponentially_and_is_jittered(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    mocked.get(url, json={"message": "boom", "error": "Internal Server Error", "statusCode": 500}, status=500)
    draws = iter([0.5, 0.5, 0.5, 0.5, 0.1, 0.9, 0.3, 0.3])

    client = make_client(fake_time, rng=lambda: next(draws), max_attempts=4)
    with pytest.raises(RetryLater) as raised:
        client.get_person(deadline(fake_time), PERSON["id"])
    assert fake_time.sleeps == [0.25, 0.5, 1.0]  # half of 0.5, 1, 2: doubles each time
    assert raised.value.reason == "stardex_unavailable"
    assert raised.value.retry_after == DEFAULT_RETRY_AFTER_SECONDS
    assert len(mocked.calls) == 4

    fake_time.sleeps.clear()
    with pytest.raises(RetryLater):
        client.get_person(deadline(fake_time), PERSON["id"])
    assert fake_time.sleeps == pytest.approx([0.05, 0.9, 0.6])  # the same caps, other draws


def test_backoff_is_capped(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", status=502, body="bad gateway")
    client = make_client(fake_time, rng=lambda: 1.0, max_attempts=6, backoff_base=1.0, backoff_max=3.0)
    with pytest.raises(RetryLater):
        client.get_person(deadline(fake_time, 100), PERSON["id"])
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_exhausted_retries_pass_on_the_servers_retry_after(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", status=503, body="", headers={"Retry-After": "2"})
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time, max_attempts=2).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.reason == "stardex_unavailable"
    assert raised.value.retry_after == 2
    assert fake_time.sleeps == [2.0]


# -- errors that are not retried ----------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, code",
    [
        (400, {"success": False, "error": {"code": "VALIDATION_ERROR", "message": "name is required"}}, "VALIDATION_ERROR"),
        (400, {"success": False, "error": {"code": f"bad ada@example.com {KEY}", "message": "m"}}, "HTTP_400"),
        (403, {"error": "Insufficient permissions"}, "HTTP_403"),
        (404, {"message": "Person not found", "error": "Not Found", "statusCode": 404}, "HTTP_404"),
        (409, "<html>conflict</html>", "HTTP_409"),
    ],
    ids=["envelope", "unsafe-code", "string-error", "fastify", "not-json"],
)
def test_refusals_keep_only_a_safe_error_code_and_are_not_retried(fake_time, mocked, status, body, code):
    url = f"{BASE}/persons/{PERSON['id']}"
    if isinstance(body, dict):
        mocked.patch(url, json=body, status=status)
    else:
        mocked.patch(url, body=body, status=status)

    with pytest.raises(StardexError) as raised:
        make_client(fake_time).update_person(deadline(fake_time), PERSON["id"], {"name": "Ada"})

    assert (raised.value.status_code, raised.value.code) == (status, code)
    assert len(mocked.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Route PATCH:/persons/x not found", "error": "Not Found", "statusCode": 404},
        "<html><body>404 Not Found</body></html>",
        "",
    ],
    ids=["fastify-no-route", "html", "empty"],
)
def test_a_404_for_the_route_itself_is_a_setting_to_fix_not_a_missing_person(fake_time, mocked, body):
    """A base URL without /v1 (or another server) 404s every route: retry later, say why, try once."""
    url = f"{BASE}/persons/{PERSON['id']}"
    if isinstance(body, dict):
        mocked.patch(url, json=body, status=404)
    else:
        mocked.patch(url, body=body, status=404)

    with pytest.raises(RetryLater) as raised:
        make_client(fake_time).update_person(deadline(fake_time), PERSON["id"], {"name": "Ada"})

    assert raised.value.reason == "stardex_route_not_found"
    assert "STARDEX_API_BASE" in raised.value.message and "not a missing person" in raised.value.message
    assert raised.value.headers()["Retry-After"] == "300"
    assert len(mocked.calls) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "error": {"code": "NOT_FOUND", "message": "Person not found"}},
        {"message": "Person not found", "error": "Not Found", "statusCode": 404},
    ],
    ids=["envelope", "fastify-record"],
)
def test_a_404_for_a_person_stays_a_refusal_for_that_person(fake_time, mocked, body):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", json=body, status=404)
    with pytest.raises(StardexError) as raised:
        make_client(fake_time).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.status_code == 404


def test_a_base_without_its_route_against_the_fake_is_route_not_found():
    """The fake answers a path it has no route for as Fastify does; a person it lacks, as a record."""
    with FakeStardex() as fake:
        wrong = StardexClient(fake.base_url.removesuffix("/v1") + "/v2", lambda refresh, deadline: fake.api_key,
                              RateLimiter())
        with pytest.raises(RetryLater) as raised:
            wrong.search_persons(Deadline(5), email="ada@example.com")
        assert raised.value.reason == "stardex_route_not_found"
        right = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter())
        with pytest.raises(StardexError):
            right.get_person(Deadline(5), "00000000-0000-4000-8000-000000000000")


# -- the deadline -------------------------------------------------------------------------------


def test_retries_stop_when_the_next_wait_would_pass_the_deadline(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    mocked.get(url, json={"success": False, "error": {"code": "X", "message": "busy"}}, status=503,
               headers={"Retry-After": "15"})

    with pytest.raises(RetryLater) as raised:
        make_client(fake_time, max_attempts=10).get_person(deadline(fake_time, 20), PERSON["id"])

    assert fake_time.sleeps == [15.0]  # the second 15 s wait would end past the deadline
    assert len(mocked.calls) == 2
    assert raised.value.reason == "stardex_unavailable"
    assert raised.value.retry_after == 15


def test_backoff_that_would_pass_the_deadline_is_not_slept(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", body=requests.ConnectionError("refused"))
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time, rng=lambda: 1.0, max_attempts=10).get_person(deadline(fake_time, 2.0), PERSON["id"])
    # waits of 0.5 and 1 fit in 2 s; the third (2 s) would not, so it is never slept
    assert fake_time.sleeps == [0.5, 1.0]
    assert len(mocked.calls) == 3
    assert raised.value.reason == "stardex_unavailable"


def test_read_timeout_is_capped_to_the_time_left(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    mocked.get(url, json=ok(PERSON))
    client = make_client(fake_time, connect_timeout=3.05, read_timeout=10.0)

    client.get_person(deadline(fake_time, 20), PERSON["id"])
    client.get_person(deadline(fake_time, 4), PERSON["id"])
    client.get_person(deadline(fake_time, 2), PERSON["id"])

    timeouts = [call.request.req_kwargs["timeout"] for call in mocked.calls]
    assert timeouts == [(3.05, 10.0), (3.05, 4.0), (2.0, 2.0)]


def test_a_create_is_not_repeated_after_a_failure_that_may_have_reached_stardex(fake_time, mocked):
    mocked.post(f"{BASE}/persons", body=requests.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknown):
        make_client(fake_time).create_person(deadline(fake_time), {"name": "A", "linkedin_url": "https://x.test/in/a"})
    assert len(mocked.calls) == 1


def test_a_create_that_never_left_is_retried(fake_time, mocked):
    mocked.post(f"{BASE}/persons", body=requests.ConnectTimeout("no route"))
    mocked.post(f"{BASE}/persons", json=ok({"id": "new-1"}), status=201)
    assert make_client(fake_time).create_person(deadline(fake_time), {"name": "A"}) == {"id": "new-1"}
    assert len(mocked.calls) == 2


def test_no_request_is_sent_once_the_deadline_has_passed(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", json=ok(PERSON))
    spent = deadline(fake_time, 1)
    fake_time.now += 5
    with pytest.raises(RetryLater):
        make_client(fake_time).get_person(spent, PERSON["id"])
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("misbehave", [None, "drip-headers", "drip-body"])
def test_the_deadline_holds_against_a_slow_or_dripping_server(misbehave):
    """Real time and sockets: a server that answers late, or one byte at a time (each byte would
    restart a read timeout), is cut off at the deadline."""
    with FakeStardex() as fake:
        fake.delay_seconds = 30.0 if misbehave is None else 0.0
        fake.misbehave, fake.drip_seconds = misbehave, 0.2
        client = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter())
        with pytest.raises(RetryLater) as raised:
            client.search_persons(Deadline(1.0), email="a@b.test")
    assert raised.value.reason == "stardex_unavailable"
    assert len(fake.requests) == 1


# -- the API key --------------------------------------------------------------------------------


def test_401_reads_the_key_again_once_then_succeeds(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    invalid = {"success": False, "error": {"code": "INVALID_API_KEY", "message": "The provided API key is invalid"}}
    mocked.get(url, json=invalid, status=401)
    mocked.get(url, json=ok(PERSON))
    asked: list[bool] = []

    def api_key(refresh: bool, deadline) -> str:
        asked.append(refresh)
        return "rotated-key" if refresh else "old-key"

    assert make_client(fake_time, api_key=api_key).get_person(deadline(fake_time), PERSON["id"]) == PERSON
    assert asked == [False, True]
    assert [call.request.headers["Authorization"] for call in mocked.calls] == ["Bearer old-key", "Bearer rotated-key"]
    assert fake_time.sleeps == []


def test_401_twice_raises_without_the_key_in_the_message(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    echoing = {"success": False, "error": {"code": "INVALID_API_KEY", "message": f"key {KEY} is invalid"}}
    mocked.get(url, json=echoing, status=401)

    with pytest.raises(StardexError) as raised:
        make_client(fake_time).get_person(deadline(fake_time), PERSON["id"])

    assert raised.value.status_code == 401
    assert raised.value.code == "INVALID_API_KEY"
    assert len(mocked.calls) == 2
    assert KEY not in repr(raised.value)


def test_missing_key_raises_without_a_request(fake_time, mocked):
    with pytest.raises(StardexError) as raised:
        make_client(fake_time, api_key=lambda refresh, deadline: None).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.status_code == 401
    assert len(mocked.calls) == 0


# -- the limiter --------------------------------------------------------------------------------


def test_limiter_lets_60_through_and_the_61st_waits_for_the_window(fake_time):
    limiter = RateLimiter(60, clock=fake_time.clock, sleep=fake_time.sleep)
    limiter.acquire(deadline(fake_time, 100))  # t = 1000
    fake_time.now += 10
    for _ in range(59):  # t = 1010
        limiter.acquire(deadline(fake_time, 100))
    assert fake_time.sleeps == []

    limiter.acquire(deadline(fake_time, 100))

    assert fake_time.sleeps == [50.0]  # until the first slot (t = 1000) leaves the 60 s window



def test_limiter_says_how_many_calls_its_window_holds_for_the_log_line(fake_time):
    limiter = RateLimiter(60, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(3):
        limiter.acquire(deadline(fake_time, 100))
    fake_time.now += 30
    limiter.acquire(deadline(fake_time, 100))
    assert limiter.used() == 4
    fake_time.now += 31  # the first three leave the window
    assert limiter.used() == 1

def test_limiter_raises_retry_later_when_the_wait_passes_the_deadline(fake_time):
    limiter = RateLimiter(60, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(60):
        limiter.acquire(deadline(fake_time))
    fake_time.now += 12.5

    with pytest.raises(RetryLater) as raised:
        limiter.acquire(deadline(fake_time, 20))

    assert raised.value.reason == "stardex_rate_limited"
    assert raised.value.retry_after == 48  # ceil(47.5)
    assert fake_time.sleeps == []


def test_limiter_pause_holds_every_caller_back(fake_time):
    limiter = RateLimiter(60, clock=fake_time.clock, sleep=fake_time.sleep)
    limiter.pause_for(30)
    limiter.pause_for(5)  # a shorter pause does not shorten the one set

    with pytest.raises(RetryLater) as raised:
        limiter.acquire(deadline(fake_time, 10))
    assert raised.value.retry_after == 30

    limiter.acquire(deadline(fake_time, 40))
    assert fake_time.sleeps == [30.0]


def test_limiter_is_safe_under_threads():
    """Real threads, real clock, a short window: never more than N grants in any window."""
    per_window, window = 5, 0.1
    local = threading.local()

    def recording_clock() -> float:
        local.last = time.monotonic()
        return local.last

    limiter = RateLimiter(per_window, clock=recording_clock, window_seconds=window)
    granted: list[float] = []
    granted_lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                limiter.acquire(Deadline(5))
                with granted_lock:
                    granted.append(local.last)  # the clock reading the grant was made at
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert errors == []
    assert len(granted) == 18
    granted.sort()
    for first, later in zip(granted, granted[per_window:]):
        assert later - first >= window
    assert time.monotonic() - started >= 3 * window  # 18 grants need at least 4 windows


def test_a_429_pauses_the_limiter_for_other_calls(fake_time, mocked):
    mocked.post(f"{BASE}/persons/search", status=429, headers={"Retry-After": "30"},
                json={"success": False, "error": {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}})
    client = make_client(fake_time)

    with pytest.raises(RetryLater) as first:
        client.search_persons(deadline(fake_time, 10), email="a@b.test")
    assert first.value.retry_after == 30

    with pytest.raises(RetryLater) as other:  # another webhook, before the pause ends
        client.limiter.acquire(deadline(fake_time, 10))
    assert other.value.reason == "stardex_rate_limited"
    assert other.value.retry_after == 30
    assert len(mocked.calls) == 1


def test_an_exhausted_quota_pauses_until_its_reset(fake_time, mocked):
    url = f"{BASE}/persons/{PERSON['id']}"
    mocked.get(url, json=ok(PERSON), headers={
        "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(fake_time.wall() + 12)),
    })
    client = make_client(fake_time)

    client.get_person(deadline(fake_time), PERSON["id"])
    assert fake_time.sleeps == []
    client.get_person(deadline(fake_time), PERSON["id"])
    assert fake_time.sleeps == [12.0]


def test_client_requests_go_through_the_limiter(fake_time, mocked):
    mocked.get(f"{BASE}/persons/{PERSON['id']}", json=ok(PERSON))
    client = make_client(fake_time, rpm=2)
    client.get_person(deadline(fake_time), PERSON["id"])
    client.get_person(deadline(fake_time), PERSON["id"])
    with pytest.raises(RetryLater) as raised:
        client.get_person(deadline(fake_time, 20), PERSON["id"])
    assert raised.value.reason == "stardex_rate_limited"
    assert len(mocked.calls) == 2


# -- against the loopback fake ------------------------------------------------------------------


def test_round_trip_against_the_fake():
    with FakeStardex() as fake:
        person_id = fake.add_person(name="Ada Lovelace", emails=["Ada@Example.com"],
                                    linkedin_url="https://www.linkedin.com/in/ada")
        client = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter())
        budget = Deadline(5)

        assert [p["id"] for p in client.search_persons(budget, email="ada@example.com")] == [person_id]
        stored = client.get_person(budget, person_id)
        emails = stored["emails"] + [{"contact_data_type": "personal", "value": "ada@home.test"}]
        client.update_person(budget, person_id, {"emails": emails, "current_job_title": "Analyst"})

        assert [e["value"] for e in fake.person(person_id)["emails"]] == ["Ada@Example.com", "ada@home.test"]
        with pytest.raises(StardexError) as raised:
            client.get_person(budget, "00000000-0000-4000-8000-000000000000")
        assert (raised.value.status_code, raised.value.code) == (404, "HTTP_404")


def test_the_fakes_rate_limit_is_respected_and_its_429_becomes_retry_later():
    """Two instances share one key: the first stops itself when the quota is used up (good
    citizen, from X-RateLimit-Remaining), the second, not knowing, gets Stardex's 429."""
    with FakeStardex(rate_limit=2) as fake:
        first = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter(1000))
        second = StardexClient(fake.base_url, lambda refresh, deadline: fake.api_key, RateLimiter(1000))
        first.search_persons(Deadline(5), email="a@b.test")
        first.search_persons(Deadline(5), email="a@b.test")

        with pytest.raises(RetryLater) as held_back:
            first.search_persons(Deadline(5), email="a@b.test")
        with pytest.raises(RetryLater) as refused:
            second.search_persons(Deadline(5), email="a@b.test")

    assert held_back.value.reason == "stardex_rate_limited"
    assert 55 <= held_back.value.retry_after <= 61
    assert refused.value.reason == "stardex_rate_limited"
    assert refused.value.retry_after == 60
    assert len(fake.requests) == 3


def test_search_asks_for_the_include_sections_it_is_given(fake_time, mocked):
    mocked.post(f"{BASE}/persons/search", json=ok([PERSON], meta={"total": 1, "offset": 0, "limit": 2}))
    make_client(fake_time).search_persons(deadline(fake_time), email="ada@example.com", include=["candidates"])
    assert json.loads(mocked.calls[0].request.body) == {"email": "ada@example.com", "limit": 2, "include": ["candidates"]}


def test_activities_are_listed_from_the_first_page(fake_time, mocked):
    activity = {"id": "a-1", "activity_type": "secondary_note", "activity_content": "hello"}
    mocked.get(f"{BASE}/persons/p%2F1/activities", json=ok([activity], meta={"total": 1, "offset": 0, "limit": 100}))
    assert make_client(fake_time).list_activities(deadline(fake_time), "p/1") == [activity]
    assert mocked.calls[0].request.url == f"{BASE}/persons/p%2F1/activities?offset=0&limit=100"


@pytest.mark.parametrize("failure", [503, requests.ReadTimeout("the answer never came")])
def test_an_activity_write_that_may_have_landed_is_not_retried(fake_time, mocked, failure):
    if isinstance(failure, int):
        mocked.post(f"{BASE}/person-activities", status=failure, json={"message": "down"})
    else:
        mocked.post(f"{BASE}/person-activities", body=failure)
    with pytest.raises(OutcomeUnknown):
        make_client(fake_time).create_activity(deadline(fake_time), {"person_id": "p-1", "activity_type": "secondary_note",
                                                                     "activity_content": "x"})
    assert len(mocked.calls) == 1


def test_an_activity_write_returns_the_created_activity(fake_time, mocked):
    created = {"id": "a-1", "person_id": "p-1", "activity_type": "secondary_note"}
    mocked.post(f"{BASE}/person-activities", status=201, json=ok(created))
    body = {"person_id": "p-1", "activity_type": "secondary_note", "activity_content": "x"}
    assert make_client(fake_time).create_activity(deadline(fake_time), body) == created
    assert json.loads(mocked.calls[0].request.body) == body


# -- what Stardex answers is checked before it is used (issue 21) --------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [200, 400, 503])
def test_json_nested_too_deep_is_no_crash(fake_time, mocked, status):
    """``[[[…]]]`` 100,000 deep, whatever the status: never a RecursionError (a 500)."""
    mocked.get(f"{BASE}/persons/{PERSON['id']}", body=DEEP, status=status)
    with pytest.raises((RetryLater, StardexError)) as raised:
        make_client(fake_time, max_attempts=1).get_person(deadline(fake_time), PERSON["id"])
    if status == 400:
        assert raised.value.code == "HTTP_400"
    else:
        assert isinstance(raised.value, RetryLater)


def test_a_read_answered_with_another_persons_data_is_retry_later(fake_time, mocked):
    """``GET /persons/A`` answering person B: B's data is never used for a write to A."""
    mocked.get(f"{BASE}/persons/{PERSON['id']}", json=ok({**PERSON, "id": "someone-else"}))
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time).get_person(deadline(fake_time), PERSON["id"])
    assert raised.value.reason == "stardex_unexpected_answer"


@pytest.mark.parametrize("envelope", [{"success": "false", "data": {}}, {"success": 0, "data": {}},
                                      {"success": None, "data": {}}])
def test_success_is_only_true(fake_time, mocked, envelope):
    mocked.patch(f"{BASE}/persons/{PERSON['id']}", json=envelope)
    with pytest.raises(RetryLater) as raised:
        make_client(fake_time, max_attempts=1).update_person(deadline(fake_time), PERSON["id"], {"name": "Ada"})
    assert raised.value.reason == "stardex_unexpected_answer"


@pytest.mark.parametrize("code", ["ATSSECRETKEY", "BEARER_ATS", "A1B2C3D4", "X"])
def test_an_error_code_that_is_not_a_word_code_or_echoes_the_key_is_not_copied(fake_time, mocked, code):
    """An upstream echoing our ``Authorization`` (or anything of the key) in its error code: not copied."""
    mocked.patch(f"{BASE}/persons/{PERSON['id']}", status=400, json={"success": False, "error": {"code": code}})
    with pytest.raises(StardexError) as raised:
        make_client(fake_time, api_key=lambda refresh, deadline: "ATSSECRETKEY-BEARER_ATS").update_person(
            deadline(fake_time), PERSON["id"], {"name": "Ada"})
    assert raised.value.code == "HTTP_400"


def test_a_read_of_an_id_given_in_upper_case_answered_in_lower_case_is_that_person(fake_time, mocked):
    """A payload's person id written in capitals (UUIDs are case-insensitive on input, RFC 9562) comes
    back as Stardex stores it: the same person, not "another person's data", a 503 no retry could end."""
    asked = PERSON["id"].upper()
    mocked.get(f"{BASE}/persons/{asked}", json=ok(PERSON))
    assert make_client(fake_time).get_person(deadline(fake_time), asked) == PERSON
