"""The one outbound transport (``send_within``) and the one retry helper (``Retries.run``).

The retry helper runs on a fake clock: ``sleep`` advances it and records each wait, ``rng`` is a
fixed draw, so no test waits for real. The transport runs against small servers on loopback
(port 0); the deadline tests use real time but assert what the server saw (that the client hung
up before the answer was complete), never how long anything took.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from stardex_webhook import http_transport
from stardex_webhook.deadline import Deadline
from stardex_webhook.http_transport import (
    DEFAULT_RETRY_AFTER_SECONDS,
    MAX_WAIT_SECONDS,
    MIN_REQUEST_SECONDS,
    Answer,
    AnswerTooLarge,
    Failed,
    Retries,
    retry_after_seconds,
    send_within,
    watched_session,
)
from stardex_webhook.logs import JsonLog
from tests.helpers.fake_time import FakeTime


class GaveUp(Exception):
    pass


class OutOfTime(Exception):
    pass


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def run(fake_time: FakeTime, outcomes: list, *, seconds: float = 20.0, rng: float = 0.5, log=None, **options):
    """Run the helper over ``outcomes`` (a value, a ``Failed``, or an exception to raise), one per
    attempt; returns (result or raised exception, the attempts' ``remaining``)."""
    retries = Retries(options.pop("max_attempts", 4), options.pop("backoff_base", 0.5), options.pop("backoff_max", 8.0),
                      sleep=fake_time.sleep, rng=lambda: rng)
    left = list(outcomes)
    seen: list[float] = []

    def attempt(remaining: float):
        seen.append(remaining)
        outcome = left.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    try:
        result = retries.run(
            Deadline(seconds, clock=fake_time.clock), attempt, label="test GET /things",
            log=log or JsonLog(stream=io.StringIO()),
            out_of_time=lambda: OutOfTime(),
            give_up=lambda failed, failures, retry_after: GaveUp(failed, failures, retry_after),
            **options,
        )
    except (GaveUp, OutOfTime) as raised:
        return raised, seen
    return result, seen


# -- the retry helper ---------------------------------------------------------------------------


def test_the_first_answer_that_is_not_a_failure_is_returned(fake_time):
    result, seen = run(fake_time, [Failed("HTTP 503"), {"ok": 1}])
    assert result == {"ok": 1} and len(seen) == 2
    assert fake_time.sleeps == [0.25]  # 0.5 (rng) * 0.5 s (the first backoff step)


def test_backoff_grows_exponentially_with_full_jitter_and_is_capped(fake_time):
    raised, seen = run(fake_time, [Failed("HTTP 500")] * 6, rng=1.0, max_attempts=6, backoff_base=1.0, backoff_max=3.0,
                       seconds=100)
    assert isinstance(raised, GaveUp) and len(seen) == 6
    assert fake_time.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_the_draw_scales_the_backoff():
    retries = Retries(4, 0.5, 8.0, rng=lambda: 0.2)
    assert [retries.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 1.6])


def test_the_servers_wait_is_honoured_up_to_a_minute_and_passed_on(fake_time):
    raised, _ = run(fake_time, [Failed("HTTP 429", server_wait=7.0), Failed("HTTP 429", server_wait=86400.0)],
                    max_attempts=2, seconds=1000)
    assert fake_time.sleeps == [7.0]
    failed, failures, retry_after = raised.args
    assert failures == 2 and failed.what == "HTTP 429" and retry_after == MAX_WAIT_SECONDS


def test_without_a_servers_wait_the_default_retry_after_is_passed_on(fake_time):
    raised, seen = run(fake_time, [Failed("HTTP 503")] * 3, max_attempts=3)
    assert raised.args[1:] == (3, DEFAULT_RETRY_AFTER_SECONDS) and len(seen) == 3


def test_a_wait_that_would_pass_the_deadline_is_not_slept(fake_time):
    raised, seen = run(fake_time, [Failed("ConnectionError")] * 10, rng=1.0, max_attempts=10, seconds=2.0)
    assert fake_time.sleeps == [0.5, 1.0]  # the third wait (2 s) would leave no time for an attempt
    assert isinstance(raised, GaveUp) and len(seen) == 3


def test_no_attempt_starts_with_less_than_the_minimum_left(fake_time):
    raised, seen = run(fake_time, [{"ok": 1}], seconds=MIN_REQUEST_SECONDS / 2)
    assert isinstance(raised, OutOfTime) and seen == []


def test_each_attempt_gets_the_time_left(fake_time):
    _, seen = run(fake_time, [Failed("HTTP 503"), "done"], rng=1.0, seconds=10.0)
    assert seen == [10.0, 9.5]


def test_an_uncounted_failure_is_tried_again_at_once(fake_time):
    result, seen = run(fake_time, [Failed("HTTP 401", counted=False), "done"], max_attempts=1)
    assert result == "done" and len(seen) == 2 and fake_time.sleeps == []


def test_a_transport_error_is_a_failure_named_by_its_type(fake_time):
    failures: list[tuple[Failed, float]] = []
    raised, _ = run(fake_time, [requests.ConnectTimeout("no route"), requests.ReadTimeout("slow")], max_attempts=2,
                    on_failure=lambda failed, wait: failures.append((failed, wait)))
    assert [(failed.what, failed.maybe_applied) for failed, _ in failures] == [
        ("ConnectTimeout", False),  # never left: safe to repeat even when not idempotent
        ("ReadTimeout", True),
    ]
    assert [wait for _, wait in failures] == [0.25, 0.5]
    assert raised.args[0].what == "ReadTimeout"


def test_an_error_that_is_not_the_transports_ends_the_call(fake_time):
    with pytest.raises(KeyError):
        run(fake_time, [KeyError("bug"), "never"])


def test_on_failure_may_end_the_call(fake_time):
    def refuse(failed: Failed, wait: float) -> None:
        raise GaveUp("not safe to repeat")

    raised, seen = run(fake_time, [Failed("HTTP 503"), "never"], on_failure=refuse)
    assert raised.args == ("not safe to repeat",) and len(seen) == 1


def test_before_runs_ahead_of_every_attempt(fake_time):
    order: list[str] = []
    run(fake_time, [Failed("HTTP 503"), "done"], before=lambda: order.append("before"))
    assert order == ["before", "before"]


def test_each_retry_is_one_json_log_line(fake_time):
    stream = io.StringIO()
    run(fake_time, [Failed("HTTP 503"), Failed("ConnectionError"), "done"], rng=1.0, log=JsonLog(stream=stream))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {"severity": "INFO", "message": "test GET /things: HTTP 503, retry 1 in 0.50s"},
        {"severity": "INFO", "message": "test GET /things: ConnectionError, retry 2 in 1.00s"},
    ]


def test_at_least_one_attempt():
    with pytest.raises(ValueError):
        Retries(0, 0.5, 8.0)


# -- reading answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("body, document", [
    (b'{"a": 1}', {"a": 1}),
    ('{"a": "\u00e9"}'.encode("utf-16"), {"a": "\u00e9"}),
    (b"<html>", None),
    (b"", None),
    (b'{"a": "\xff"}', None),
])
def test_an_answer_is_json_or_none(body, document):
    assert Answer(200, {}, body).json_or_none() == document


@pytest.mark.parametrize("headers, body, seconds", [
    ({"Retry-After": "12"}, b"", 12.0),
    ({"Retry-After": "Thu, 01 Jan 1970 00:00:30 GMT"}, b"", 20.0),  # the wall clock reads 10
    ({}, b'{"retry_after_seconds": 4}', 4.0),
    ({}, b'{"error": {"retry_after_seconds": 5}}', 5.0),
    ({"Retry-After": "-3"}, b"", None),
    ({"Retry-After": "soon"}, b"", None),
    ({}, b"<html>", None),
])
def test_retry_after_is_read_from_the_header_or_the_body(headers, body, seconds):
    headers = requests.structures.CaseInsensitiveDict(headers)
    assert retry_after_seconds(Answer(429, headers, body), wall_clock=lambda: 10.0) == seconds


# -- the transport, on loopback -------------------------------------------------------------------


class Server:
    """An HTTP server on loopback (port 0) that answers every request from ``answer(path)``:
    (status, headers, body)."""

    def __init__(self, answer) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.paths.append(self.path)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started: list[Server] = []

    def start(answer) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_the_answer_comes_back_whole(serve):
    server = serve(lambda path: (200, {"Content-Type": "application/json", "X-Thing": "1"}, b'{"data": [1, 2]}'))
    answer = send_within(watched_session(), "GET", server.url + "/v1/things", 5.0)
    assert (answer.status_code, answer.body, answer.json_or_none()) == (200, b'{"data": [1, 2]}', {"data": [1, 2]})
    assert answer.headers["x-thing"] == "1"


def test_a_redirect_comes_back_and_is_not_followed(serve):
    elsewhere = serve(lambda path: (200, {}, b"{}"))
    server = serve(lambda path: (302, {"Location": elsewhere.url + "/v1/things"}, b""))
    answer = send_within(watched_session(), "GET", server.url + "/v1/things", 5.0)
    assert answer.status_code == 302 and answer.headers["Location"] == elsewhere.url + "/v1/things"
    assert elsewhere.paths == []


@pytest.mark.parametrize("declared", [True, False])
def test_an_answer_over_the_cap_is_not_read_whole(serve, monkeypatch, declared):
    monkeypatch.setattr(http_transport, "MAX_ANSWER_BYTES", 1000)
    monkeypatch.setattr(http_transport, "_ANSWER_CHUNK", 100)
    big = b"x" * 5000
    headers = {} if declared else {"Transfer-Encoding": "chunked"}
    if not declared:
        big = b"".join(b"%x\r\n%s\r\n" % (100, big[i:i + 100]) for i in range(0, 5000, 100)) + b"0\r\n\r\n"
    server = serve(lambda path: (200, headers, big))
    with pytest.raises(AnswerTooLarge):
        send_within(watched_session(), "GET", server.url + "/", 5.0)
    small = serve(lambda path: (200, {}, b"y" * 1000))  # at the cap: read
    assert send_within(watched_session(), "GET", small.url + "/", 5.0).body == b"y" * 1000


class Dripper:
    """A raw TCP server (port 0) that answers its first connection one byte every ``drip``
    seconds, from its status line (``from_byte=0``) or from its body, and later ones at once;
    remembers, per connection, whether the client hung up before the whole answer was sent."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" + b'{"data": "' + b"z" * 28 + b'"}'

    def __init__(self, from_byte: int, drip: float = 0.05) -> None:
        self.from_byte, self.drip = from_byte, drip
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.hung_up: list[bool] = []  # one per connection: True when the client left mid-answer
        self.first_done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.listener:
            while not self.stop.is_set():
                connection, _ = self.listener.accept()
                threading.Thread(target=self._answer, args=(connection, not self.hung_up and not self.first_done.is_set()),
                                 daemon=True).start()
                self.first_done.wait()

    def _answer(self, connection: socket.socket, drip: bool) -> None:
        with connection:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += connection.recv(4096)
                if not drip:
                    connection.sendall(self.ANSWER)
                    return
                connection.sendall(self.ANSWER[:self.from_byte])
                for index in range(self.from_byte, len(self.ANSWER)):
                    if self.stop.wait(self.drip):
                        return
                    connection.sendall(self.ANSWER[index:index + 1])
            except OSError:
                self.hung_up.append(True)
            else:
                self.hung_up.append(False)
            finally:
                self.first_done.set()


@pytest.mark.parametrize("from_byte", [0, len(Dripper.ANSWER) - 40], ids=["drip-headers", "drip-body"])
def test_a_dripping_answer_is_cut_at_the_deadline_and_the_session_goes_on(from_byte):
    """Every byte comes well within the read timeout, so only the watchdog can end the answer:
    without it the client would read all of it (and the server would see no hang-up). The next
    call to the same server gets a whole connection, not the cut one."""
    dripper = Dripper(from_byte)
    session = watched_session()
    try:
        with pytest.raises(requests.ReadTimeout):
            send_within(session, "GET", dripper.url + "/", 0.3, read_timeout=10.0)
        assert dripper.first_done.wait(timeout=30)
        assert dripper.hung_up == [True]
        assert send_within(session, "GET", dripper.url + "/", 5.0).json_or_none() == {"data": "z" * 28}
    finally:
        dripper.stop.set()
