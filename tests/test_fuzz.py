"""Fuzzing the two entries anyone (or the queue) can reach: ``POST /<source>`` for every registered
source, and the worker's ``handle_task``, through the real function built in-process from main.py.

Property-based (hypothesis): random bodies (JSON of any shape, raw bytes, deep, wide, huge),
content types, header sets (each sender's signature headers absent, garbled, duplicated,
non-ASCII) and mutations of valid signed requests. The invariants a user relies on:

* never a 500, always a JSON answer whose ``status`` is one of docs/contract.md's, with the status
  code that goes with it;
* an inauthentic request never reaches Stardex nor a sender's API (every outbound request is
  counted by a catch-all ``responses`` mock);
* no answer carries a key;
* with a state bucket (fake-gcs-server), any delivery id and any header byte is claimed and kept.

The default profile (``ci``) is derandomised and bounded; a longer run:
``HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest -q tests/test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid

import functions_framework
import pytest
import responses
from hypothesis import HealthCheck, given, settings, strategies as st

from stardex_webhook.config import api_key_name
from stardex_webhook.send_sample import SAMPLES_DIR, signed_request
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, Headers
from stardex_webhook.ingress import task_body
from tests.conftest import ROOT, SENDER_API_KEYS, SIGNING_KEYS, STARDEX_KEY
from tests.helpers.random_json import places, with_value

# ---- profiles ---------------------------------------------------------------------------------

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.large_base_example])
# ci: the same examples on every run (reproducible CI), a few seconds per source. 50 a property:
# generating them is most of the suite's fuzzing cost (100 took twice the CPU, a fifth of the
# suite's); the long profile below is the deep run.
settings.register_profile("ci", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")), derandomize=True, **_COMMON)
# long: new random examples each run, thousands per test.
settings.register_profile("long", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")), **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---- what docs/contract.md allows -------------------------------------------------------------------

# status code → the `status` values it may carry (SmartRecruiters' success is 202).
ANSWERS = {
    200: {"updated", "queued", "ignored", "duplicate", "dry_run"},
    202: {"updated", "queued", "ignored", "duplicate", "dry_run"},
    400: {"bad_request"}, 401: {"unauthorized"}, 404: {"not_found"}, 405: {"method_not_allowed"},
    408: {"request_timeout"}, 413: {"too_large"}, 422: {"unprocessable"}, 503: {"retry_later"},
}
ACTED = {"updated", "queued", "duplicate", "dry_run"}
# Where each sender puts what proves a request (docs/senders/: each sender's page): changing any of
# these headers makes a request inauthentic. Lever signs inside its body, with no header.
SIGNATURE_HEADERS = {
    "greenhouse": ["Signature"], "lever": [], "ashby": ["Ashby-Signature"], "workable": ["X-Workable-Signature"],
    "smartrecruiters": ["smartrecruiters-signature", "smartrecruiters-timestamp"],
    "teamtailor": ["TT-Signature"], "recruitee": ["X-Recruitee-Signature"], "typeform": ["Typeform-Signature"],
    "tally": ["Tally-Signature"], "jotform": ["Authorization"], "fillout": ["Authorization"],
    "webflow": ["x-webflow-signature", "x-webflow-timestamp"],
    "hubspot": ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
    "google-forms": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "generic": ["webhook-id", "webhook-timestamp", "webhook-signature"],
}
# Senders whose signature does not cover the raw body: Lever signs two of its fields, Jotform and
# Fillout send a shared token. For every other sender, any change to the body is a forgery.
BODY_UNSIGNED = {"lever", "jotform", "fillout"}
TOKEN_SENDERS = {"jotform", "fillout"}
KEYS = [STARDEX_KEY, *SIGNING_KEYS.values(), *SENDER_API_KEYS.values()]
# Headers through which a request could try to steer the function elsewhere or to a file.
STEERING_HEADERS = ["Host", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Link", "Location",
                    "X-Original-URL", "X-Rewrite-URL", "Referer", "Origin", "Content-Location"]


def test_every_registered_source_is_fuzzed():
    """A sender added later is fuzzed too, and its signature headers are named here."""
    assert set(SIGNATURE_HEADERS) == set(SOURCES)


# ---- the app and what it calls ----------------------------------------------------------------


@pytest.fixture
def outbound():
    """Every request the function makes, to any host: counted, and refused with a 404 (so an
    authentic webhook ends quickly, in a 422) rather than retried."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(r".*"),
                              callback=lambda request: (404, {}, json.dumps({"error": {"code": "NOT_FOUND"}})))
        yield mock


@pytest.fixture
def client(make_client, base_env, outbound):
    """The public function, not in dry run, every sender's API key set."""
    for name, key in SENDER_API_KEYS.items():
        base_env.setenv(api_key_name(name), key)
    # The mock is no rate-limited Stardex: a limiter's 503 would hide what each example does.
    base_env.setenv("STARDEX_REQUESTS_PER_MINUTE", "1000000")
    base_env.setenv("PERSON_MEMORY_SECONDS", "0")
    # The function's own deadline (20 s), not base_env's 2 s: on a loaded machine an authentic
    # example could reach its deadline before the mock's 404, and answer 503 once in a while.
    base_env.delenv("STARDEX_DEADLINE_SECONDS")
    return make_client()


def reached(outbound) -> list:
    """The calls the function under test made. The in-process apps here have no ``STATE_BUCKET``, so
    a Cloud Storage call is another test's, on this xdist worker, ending late in a thread of its own
    (``responses`` counts every thread's calls): seen once in a full run, a bucket read during a
    forgery's example."""
    return [call for call in outbound.calls if "/storage/v1/" not in call.request.url]


def sample(source: str) -> bytes:
    return (SAMPLES_DIR / f"{source}.json").read_bytes()


def sign(source: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """Signed now, as the sender would, for the test client's address (HubSpot signs the URL)."""
    return signed_request(source, body, SIGNING_KEYS[source], int(time.time()), url=f"http://localhost/{source}")


def send(client, path: str, headers, body: bytes, method: str = "POST"):
    return client.open(f"/{path}", method=method, data=body, headers=headers)


def checked(answer) -> dict:
    """The answer's JSON, after the invariants every answer keeps."""
    assert answer.status_code in ANSWERS, (answer.status_code, answer.get_data()[:300])
    text = answer.get_data(as_text=True)
    assert answer.mimetype == "application/json"
    document = json.loads(text, parse_constant=pytest.fail)
    assert document["status"] in ANSWERS[answer.status_code], document
    for key in KEYS:
        assert key not in text, "an answer never carries a key"
    return document


# ---- strategies -------------------------------------------------------------------------------

# Header text as a WSGI server hands it over: Latin-1 characters, no line breaks.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
# Non-ASCII as a sender's UTF-8 bytes reach the app through WSGI (decoded as Latin-1). Not
# whitespace: a token or timestamp is read stripped (of U+00A0 too), which keeps it what it was.
NON_ASCII = st.text(st.characters(min_codepoint=0x80, max_codepoint=0x2FFF, exclude_categories=("Cs",)).filter(
    lambda char: not char.isspace()), min_size=1, max_size=8).map(lambda text: text.encode("utf-8").decode("latin-1"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["a@b.co", "+1 415 555 0123", "https://www.linkedin.com/in/x",
                                             "../../etc/passwd", "http://169.254.169.254/", ""]),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)
CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
                     "multipart/form-data", "multipart/form-data; boundary=xyz", "multipart/form-data; boundary=",
                     "application/x-www-form-urlencoded", "text/plain", "application/xml", ";;;", "*/*",
                     "application/json; boundary=\"", "multipart/mixed; boundary=a"]),
    HEADER_TEXT,
)


@st.composite
def bodies(draw, source: str) -> bytes:
    """Any body: random bytes, any JSON in any encoding, the sender's own sample with random parts,
    nested deep, wide, or large."""
    kind = draw(st.sampled_from(["bytes", "json", "encoded", "sample", "deep", "wide", "large", "form"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "encoded":
        return json.dumps(draw(JSON), ensure_ascii=False).encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1"])),
                                                                   "replace")
    if kind == "sample":
        document = json.loads(sample(source))
        for key in draw(st.lists(st.sampled_from(sorted(document)), max_size=4)):
            document[key] = draw(JSON)
        return json.dumps(document).encode()
    if kind == "deep":
        depth = draw(st.integers(1, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return ('{"x":' + opener * depth + "1" + closer * depth * draw(st.booleans()) + "}").encode()
    if kind == "wide":
        count, modulus = draw(st.integers(1, 30_000)), draw(st.sampled_from([1, 7, 30_000]))  # 1, 7: duplicate keys
        return ("{" + ",".join(f'"k{index % modulus}":{index}' for index in range(count)) + "}").encode()
    if kind == "large":
        return b'{"x":"' + b"y" * draw(st.integers(900_000, 1_200_000)) + b'"}'
    return "&".join(f"{name}={value}" for name, value in
                    draw(st.dictionaries(st.sampled_from(["rawRequest", "formID", "submissionID", "token"]),
                                         HEADER_TEXT, max_size=4)).items()).encode("latin-1")


@st.composite
def header_sets(draw, source: str) -> list[tuple[str, str]]:
    """The sender's own headers, each absent, random, garbled from a real signature, duplicated or
    non-ASCII; plus headers that name other hosts and paths. The real signature is of a body no
    example can be (a fresh nonce), and a shared token (which signs no body) is another key's."""
    key = SIGNING_KEYS[source] if source not in TOKEN_SENDERS else SOURCES[source].sample_key() + "-other"
    real, _ = signed_request(source, json.dumps({"nonce": uuid.uuid4().hex}).encode(), key, int(time.time()),
                             url=f"http://localhost/{source}")
    headers: list[tuple[str, str]] = []
    for name in list(real) + SIGNATURE_HEADERS[source]:
        value = real.get(name, "sha256=00")
        choice = draw(st.sampled_from(["absent", "random", "garbled", "duplicated", "non_ascii", "real"]))
        if choice == "random":
            headers.append((name, draw(HEADER_TEXT)))
        elif choice == "garbled":
            position = draw(st.integers(0, max(0, len(value) - 1)))
            headers.append((name, value[:position] + draw(HEADER_TEXT) + value[position + 1:]))
        elif choice == "duplicated":
            headers += [(name, value), (name, draw(HEADER_TEXT))]
        elif choice == "non_ascii":
            headers.append((name, value + draw(NON_ASCII)))
        elif choice == "real":  # a real signature, of another body
            headers.append((name, value))
    for name in draw(st.lists(st.sampled_from(STEERING_HEADERS + ["X-Hook-Secret"]), max_size=3)):
        headers.append((name, draw(st.sampled_from(["http://attacker.example/x", "../../etc/passwd", "localhost:1",
                                                    "<https://evil.example/v1/x>; rel=self"]) | HEADER_TEXT)))
    return headers


# ---- the HTTP entry ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_anything_unsigned_is_answered_by_the_contract_and_reaches_no_one(client, outbound, source):
    @given(body=bodies(source), content_type=CONTENT_TYPES, headers=header_sets(source))
    def check(body, content_type, headers):
        if content_type is not None:
            headers = [*headers, ("Content-Type", content_type)]
        before = len(reached(outbound))
        document = checked(send(client, source, headers, body))
        assert len(reached(outbound)) == before, f"an unsigned request reached {reached(outbound)[-1].request.url}"
        assert document["status"] not in ACTED

    check()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_signed_sample_reaches_stardex_or_its_senders_api(client, outbound, source):
    """The known answer the mutations below are judged against: the sample, signed, is authentic
    and makes at least one outbound call (here answered 404)."""
    headers, body = sign(source, sample(source))
    document = checked(send(client, source, headers, body))
    assert document["status"] not in ("unauthorized", "bad_request"), document
    assert outbound.calls, "the authentic sample made a call"


@st.composite
def forgeries(draw, source: str):
    """A mutation of the signed sample that must make it inauthentic, with its name."""
    body_signed = source not in BODY_UNSIGNED
    kinds = ["drop", "garble", "replace", "non_ascii"] if SIGNATURE_HEADERS[source] else []
    kind = draw(st.sampled_from(kinds + ["flip", "insert", "delete"] * body_signed
                                + ["lever_field"] * (source == "lever")))
    name = draw(st.sampled_from(SIGNATURE_HEADERS[source])) if kind in kinds else None
    return kind, name, draw(st.integers(0, 10**6)), draw(st.integers(0, 255)), draw(HEADER_TEXT), draw(NON_ASCII)


def forge(source, headers: dict[str, str], body: bytes, mutation) -> tuple[dict[str, str], bytes]:
    kind, name, where, byte, text, non_ascii = mutation
    headers = dict(headers)
    if kind == "drop":
        del headers[name]
    elif kind == "garble":  # one character of a short value (a timestamp), or of a digest's end
        # TT-Signature is the base64 of "t=…,v2=<hex>": garbled inside, since a changed base64
        # character may only change the case of a hex digit, which is the same signature.
        wrapped = source == "teamtailor"
        value = base64.b64decode(headers[name]).decode() if wrapped else headers[name]
        # In a digest, not its last three characters: base64's last ones carry unused bits and
        # padding, so another character there may decode to the same digest.
        at = where % len(value) if len(value) < 20 else len(value) - 16 + where % 13
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/=_-"
        choices = [c for c in alphabet if c.lower() != value[at].lower()]  # hex is read in either case
        value = value[:at] + choices[byte % len(choices)] + value[at + 1:]
        headers[name] = base64.b64encode(value.encode()).decode() if wrapped else value
    elif kind == "replace":
        headers[name] = text if text.strip() != headers[name].strip() else text + "x"
    elif kind == "non_ascii":
        headers[name] = headers[name] + non_ascii
    elif kind == "flip":
        at = where % len(body)
        body = body[:at] + bytes([body[at] ^ (1 + byte % 255)]) + body[at + 1:]
    elif kind == "insert":
        at = where % (len(body) + 1)
        body = body[:at] + bytes([byte]) + body[at:]
    elif kind == "delete":
        at = where % len(body)
        body = body[:at] + body[at + 1:]
    elif kind == "lever_field":  # Lever signs token + triggeredAt: change one of them, or its signature
        document = json.loads(body)
        field = ["token", "triggeredAt", "signature"][byte % 3]
        document[field] = f"{document[field]}{where % 9 + 1}"
        body = json.dumps(document).encode()
    return headers, body


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_forged_signed_request_never_reaches_stardex_nor_the_senders_api(client, outbound, source):
    @given(mutation=forgeries(source))
    def check(mutation):
        headers, body = forge(source, *sign(source, sample(source)), mutation)
        before = len(reached(outbound))
        document = checked(send(client, source, headers, body))
        assert len(reached(outbound)) == before, f"a forgery ({mutation[0]}) reached {reached(outbound)[-1].request.url}"
        assert document["status"] in ("unauthorized", "ignored"), document  # ignored: a sender's unsigned ping

    check()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_reordered_recased_or_extra_headers_change_nothing_for_an_authentic_request(client, outbound, source):
    """Header order and the case of names mean nothing in HTTP: the answer is the sample's own."""
    headers, body = sign(source, sample(source))
    expected = checked(send(client, source, headers, body))

    @given(order=st.permutations(sorted(headers)), cases=st.lists(st.booleans(), min_size=16, max_size=16))
    def check(order, cases):
        fresh, raw = sign(source, sample(source))
        names = [name.upper() if cases[index % 16] else name.lower() for index, name in enumerate(order)]
        answer = checked(send(client, source, [(shown, fresh[name]) for shown, name in zip(names, order)], raw))
        assert (answer["status"], answer.get("reason")) == (expected["status"], expected.get("reason"))

    check()


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_any_mutation_of_a_signed_request_keeps_the_contract(client, outbound, source):
    """Mutations that may or may not keep a request authentic (a duplicated header, a changed body
    where the body is not signed, new headers): whatever the answer, it is one docs/contract.md allows."""

    @given(body_edit=st.tuples(st.integers(0, 10**6), st.binary(max_size=8), st.integers(0, 8)),
           extra=st.lists(st.tuples(st.sampled_from(STEERING_HEADERS + ["Content-Type", "Content-Encoding",
                                                                       "Transfer-Encoding", "X-Hook-Secret"]),
                                    HEADER_TEXT), max_size=3),
           duplicate=st.sampled_from([None, *SIGNATURE_HEADERS[source]]), second=HEADER_TEXT)
    def check(body_edit, extra, duplicate, second):
        headers, body = sign(source, sample(source))
        at, inserted, removed = body_edit
        at %= len(body) + 1
        body = body[:at] + inserted + body[at + removed:]
        pairs = list(headers.items()) + extra + ([(duplicate, second)] if duplicate else [])
        checked(send(client, source, pairs, body))

    check()


# What a sender's bug or an attacker with the key could put anywhere: any JSON, and values that break
# naive number and text handling (no float holds them, a digit int() refuses, past int's digit limit).
HOSTILE = JSON | st.sampled_from([10 ** 400, -10 ** 400, 1e308, "\u00b2", "\u0663\u0664", "9" * 5000, "\ud800",
                                  {"year": 10 ** 400, "month": 1, "day": 1}, [[[[[]]]]], {"": None}])


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_any_value_anywhere_in_an_authentic_sample_keeps_the_contract(client, outbound, source):
    """Authentic, so every stage runs on it (parse, follow-up read, mapping, validation, delivery):
    one place of the signed sample, at any depth, holds any value; the answer is one docs/contract.md
    allows, never a 500."""
    document = json.loads(sample(source))
    where = list(places(document))

    @given(index=st.integers(0, len(where) - 1), value=HOSTILE)
    def check(index, value):
        changed = with_value(document, where[index], value)
        checked(send(client, source, *sign(source, json.dumps(changed).encode())))

    check()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_and_paths_keep_the_contract(client, outbound, method):
    @given(path=st.one_of(st.sampled_from(sorted(SOURCES)), HEADER_TEXT.map(lambda text: text.replace("?", "%3F"))),
           body=st.binary(max_size=200))
    def check(path, body):
        answer = send(client, path.lstrip("/"), {}, body, method=method)
        if method == "HEAD":  # no body by definition
            assert answer.status_code in ANSWERS
        else:
            checked(answer)
        assert not outbound.calls

    check()


# ---- the worker's entry -----------------------------------------------------------------------


@pytest.fixture
def worker(make_client, base_env, outbound):
    """The queued worker (``handle_task``) built in-process from main.py. It waits for its rate
    limiter's slot within its long deadline: the mock is no rate-limited Stardex, so no limit."""
    base_env.setenv("STARDEX_REQUESTS_PER_MINUTE", "1000000")
    base_env.setenv("PERSON_MEMORY_SECONDS", "0")
    app = functions_framework.create_app(target="handle_task", source=str(ROOT / "main.py"))
    return app.test_client()


def valid_task(source: str = "generic") -> dict:
    """A task as the public function enqueues it, for the source's signed sample."""
    headers, body = sign(source, sample(source))
    delivery = Delivery(Headers(headers.items()), body, time.time())
    event = SOURCES[source].parse(delivery)
    return json.loads(json.dumps(task_body(delivery, event)))


WORKER_STATUSES = {"dead_lettered", "failed"}  # the worker's own answers to the queue, beside the contract's
QUEUE = [("X-CloudTasks-QueueName", "stardex-webhook"), ("X-CloudTasks-TaskRetryCount", "0")]


def worker_checked(answer) -> dict:
    assert answer.status_code in (200, 400, 405, 413, 429, 503), (answer.status_code, answer.get_data()[:300])
    document = json.loads(answer.get_data(as_text=True), parse_constant=pytest.fail)
    assert document["status"] in set().union(*ANSWERS.values()) | WORKER_STATUSES, document
    text = answer.get_data(as_text=True)
    assert all(key not in text for key in KEYS)
    return document


def test_a_valid_task_reaches_stardex(worker, outbound):
    """The known answer for the worker's fuzzing: the task as enqueued is delivered."""
    document = worker_checked(worker.post("/", data=json.dumps(valid_task()), headers=QUEUE))
    assert outbound.calls and document["status"] in WORKER_STATUSES | {"updated"}


@given(body=st.one_of(st.binary(max_size=2000), JSON.map(lambda value: json.dumps(value).encode())),
       queue=st.sampled_from([[], QUEUE, [("X-CloudTasks-QueueName", "")]]))
def test_anything_but_a_task_is_refused_by_the_worker_and_reaches_no_one(worker, outbound, body, queue):
    before = len(reached(outbound))
    document = worker_checked(worker.post("/", data=body, headers=queue))
    assert document["status"] in ("bad_request", "too_large")
    assert len(reached(outbound)) == before


# Where a task may be changed: any key of the task, of its mapped update, of its person reference.
TASK_PLACES = st.sampled_from([(), ("mapped",), ("mapped", "person"), ("mapped", "update"), ("mapped", "note")])


@given(place=TASK_PLACES, key=st.text(max_size=12) | st.sampled_from(
    ["kind", "version", "source", "body", "body_encoding", "headers", "query", "received_at_unix", "mapped", "update",
     "person", "create", "write_policy", "note", "id", "emails", "linkedin_url", "activity_type", "answers"]),
       value=JSON, remove=st.booleans())
def test_a_changed_task_is_answered_and_never_a_500(worker, outbound, place, key, value, remove):
    task = valid_task()
    target = task
    for step in place:
        if not isinstance(target.get(step), dict):
            target[step] = {}
        target = target[step]
    if remove:
        target.pop(key, None)
    else:
        target[key] = value
    before = len(reached(outbound))
    document = worker_checked(worker.post("/", data=json.dumps(task), headers=QUEUE))
    if document["status"] == "bad_request":
        assert len(reached(outbound)) == before, "a refused task reached no one"


# ---- with a state bucket: claims and dead letters for any delivery id and header (issue 21) -----

FUZZ_BUCKET = "fuzz-state"


@pytest.fixture(scope="module")
def bucket_url():
    from tests.fakes.emulators import storage_emulator

    with storage_emulator(FUZZ_BUCKET) as url:
        yield url


@pytest.fixture
def client_with_bucket(make_client, base_env, bucket_url):
    """The public function with ``STATE_BUCKET`` at fake-gcs-server; every other request refused
    with a 404 (Stardex has no such person), so each authentic event is claimed, then kept as a
    dead letter: the bucket's whole path, for whatever bytes the delivery holds."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(rf"^(?!{re.escape(bucket_url)}).*"),
                              callback=lambda request: (404, {}, json.dumps({"error": {"code": "NOT_FOUND"}})))
        mock.add_passthru(bucket_url)
        base_env.setenv("STATE_BUCKET", FUZZ_BUCKET)
        base_env.setenv("STORAGE_EMULATOR_HOST", bucket_url)
        base_env.setenv("STARDEX_REQUESTS_PER_MINUTE", "1000000")
        base_env.setenv("PERSON_MEMORY_SECONDS", "0")
        base_env.delenv("STARDEX_DEADLINE_SECONDS")  # the function's own 20 s, as for ``client``
        yield make_client()


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(event_id=st.text(max_size=40), note=HEADER_TEXT, name=st.text(max_size=30))
def test_any_delivery_id_or_header_byte_is_claimed_and_kept_with_a_bucket(client_with_bucket, event_id, note, name):
    """A Typeform event whose ``event_id`` is any text (a lone surrogate is valid JSON) with any
    Latin-1 header beside it: its claim is made and, Stardex having no such person, its dead letter
    written: a 422, then ``duplicate`` for the same delivery; never a 500, never a 503 for ever."""
    from google.cloud import storage

    document = json.loads(sample("typeform"))
    document["event_id"] = event_id + uuid.uuid4().hex  # a new delivery each example
    document["form_response"]["answers"][0]["text"] = name or "Ada"
    headers, body = sign("typeform", json.dumps(document).encode())
    first = checked(send(client_with_bucket, "typeform", {**headers, "X-Sender-Note": note}, body))
    assert first["status"] in ("unprocessable", "ignored"), first
    again = checked(send(client_with_bucket, "typeform", {**headers, "X-Sender-Note": note}, body))
    assert again["status"] == ("duplicate" if first["status"] == "unprocessable" else "ignored"), again
    if first["status"] == "unprocessable":
        names = [blob.name for blob in storage.Client().list_blobs(FUZZ_BUCKET, prefix="dead-letters/typeform/")]
        letters = [json.loads(storage.Client().bucket(FUZZ_BUCKET).blob(name).download_as_bytes()) for name in names]
        assert document["event_id"] in [letter["delivery_id"] for letter in letters]
