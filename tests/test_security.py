"""The security pass: what a hostile sender cannot do, each point with its test.

* every signature and token is compared in constant time, and that comparison alone decides;
* no key or unmasked email or phone number in any log line (the session-wide scan in
  ``tests/conftest.py``; its scanner is tested here) or answer (here and in ``test_fuzz``);
* nothing in a request decides which host the function connects to;
* no path in a request reaches the file system;
* JSON bodies are bounded in depth and in number of values;
* ``pip-audit`` in CI: a known vulnerability fails the run, an advisory database out of reach is a
  warning (``.ci/pip_audit_gate.py``, tested here on pip-audit's own report format).
"""

from __future__ import annotations

import builtins
import hmac
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses

from stardex_webhook.config import api_key_name
from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.send_sample import SAMPLES_DIR, signed_request
from stardex_webhook.sources import SOURCES, smartrecruiters
from stardex_webhook.sources.base import MAX_JSON_DEPTH, MAX_JSON_VALUES, parse_json_object
from stardex_webhook.records import Delivery, Headers
from tests import conftest
from tests.conftest import ROOT, SENDER_API_KEYS, SIGNING_KEYS, STARDEX_KEY

API_HOST = "stardex.test"  # conftest's STARDEX_API_BASE
URL = "http://localhost/{}"


def sample(source: str) -> bytes:
    return (SAMPLES_DIR / f"{source}.json").read_bytes()


def sign(source: str, body: bytes, key: str | None = None) -> tuple[dict[str, str], bytes]:
    return signed_request(source, body, key or SIGNING_KEYS[source], int(time.time()), url=URL.format(source))


def delivery(source: str, headers: dict[str, str], body: bytes) -> Delivery:
    return Delivery(Headers(headers.items()), body, time.time(), url=URL.format(source))


# ---- constant-time comparison -----------------------------------------------------------------


@pytest.fixture
def compare_digest(monkeypatch):
    """``hmac.compare_digest`` replaced by one that counts its calls and answers what the test says."""
    state = {"calls": 0, "answer": None}
    real = hmac.compare_digest

    def counted(a, b):
        state["calls"] += 1
        return real(a, b) if state["answer"] is None else state["answer"]

    monkeypatch.setattr(hmac, "compare_digest", counted)
    return state


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_constant_time_comparison_alone_decides_every_verification(compare_digest, source):
    """A genuine request is accepted only through ``hmac.compare_digest``: answering False refuses
    it; and a request signed with another key (well formed, in the window) is accepted when it
    answers True, so no other comparison of a signature or token takes part."""
    adapter, key = SOURCES[source], SIGNING_KEYS[source]
    genuine = delivery(source, *sign(source, sample(source)))
    adapter.verify(genuine, [key], time.time())
    assert compare_digest["calls"] >= 1

    compare_digest["answer"] = False
    with pytest.raises(Unauthorized):
        adapter.verify(genuine, [key], time.time())

    forged = delivery(source, *sign(source, sample(source), key=adapter.sample_key() + "-other"))
    compare_digest["answer"] = None
    with pytest.raises(Unauthorized):
        adapter.verify(forged, [key], time.time())
    compare_digest["answer"] = True
    adapter.verify(forged, [key], time.time())


SECRET_WORDS = re.compile(r"signature|digest|token|secret|hmac|(^|_)sig($|_)|expected|given", re.IGNORECASE)


def _names(node) -> set[str]:
    import ast

    return {sub.id if isinstance(sub, ast.Name) else sub.attr for sub in ast.walk(node)
            if isinstance(sub, (ast.Name, ast.Attribute))}


def operator_comparisons(text: str, filename: str) -> list[str]:
    """Each ``==``, ``!=``, ``in`` or ``not in`` of ``text`` with an operand named like a signature,
    digest, token or secret (a test against None, "", True or False is a presence test: left out)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(text, filename)):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            operands = [node.left, *node.comparators]
            if any(isinstance(operand, ast.Constant) and operand.value in (None, "", True, False) for operand in operands):
                continue
            if any(SECRET_WORDS.search(name) for operand in operands for name in _names(operand)):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_signature_token_or_digest_is_compared_with_an_operator():
    """The source scan behind the test above: in the signature module and every adapter, no
    signature, digest, token or secret is compared with an operator (those go through
    ``signatures.any_signature_matches``)."""
    files = [ROOT / "stardex_webhook" / "signatures.py", *sorted((ROOT / "stardex_webhook" / "sources").glob("*.py"))]
    assert [found for path in files for found in operator_comparisons(path.read_text(), path.name)] == []


@pytest.mark.parametrize("code", ["ok = expected_signature == given", "if token != self.key: pass",
                                  "bad = digest not in allowed", "same = header.signature == computed"])
def test_the_scan_finds_an_operator_comparison_of_a_signature(code):
    assert operator_comparisons(code, "x.py")


@pytest.mark.parametrize("code", ["ok = hmac.compare_digest(expected, given)", "if not token: pass",
                                  "if signature is None: pass", "if value == '': pass", "same = a == b"])
def test_the_scan_lets_constant_time_and_presence_tests_pass(code):
    assert operator_comparisons(code, "x.py") == []


# ---- no key, email or phone number in a log line or an answer ---------------------------------------


@pytest.mark.parametrize("line", [
    '{"message":"key stardex-test-key"}', '{"detail":"from aisha.bello@example.org"}',
    '{"detail":"call +351 910 000 111"}', '{"detail":"call (415) 555-0123"}', f'{{"x":"{SIGNING_KEYS["tally"]}"}}',
])
def test_the_session_log_scan_finds_a_leak(line):
    assert conftest.log_leaks(line)


@pytest.mark.parametrize("line", [
    '{"detail":"a***@example.org"}', '{"detail":"***11"}', '{"latency_ms":4.35,"status_code":503}',
    '{"delivery_id":"6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42","detail":"the 1048576-byte limit"}',
])
def test_the_session_log_scan_lets_masked_and_plain_lines_pass(line):
    assert conftest.log_leaks(line) == []


def test_an_end_to_end_servers_log_file_is_scanned(tmp_path):
    path = tmp_path / "function.log"
    path.write_text('{"severity":"INFO","detail":"stardex-test-key"}\n')
    before = len(conftest.LOG_SCAN["leaks"])
    conftest.scan_log_file(path)
    planted = conftest.LOG_SCAN["leaks"][before:]
    del conftest.LOG_SCAN["leaks"][before:]  # planted here, not logged by the function
    assert len(planted) == 1 and "key star" in planted[0]


def test_the_session_log_scan_sees_what_the_function_logs(make_client, base_env):
    """The hook taps ``JsonLog``'s writes to stdout: a webhook's line is scanned."""
    before = conftest.LOG_SCAN["lines"]
    make_client().post("/greenhouse", data=b"{}", headers={"Signature": "sha256 00"})
    assert conftest.LOG_SCAN["lines"] > before


def test_a_person_id_the_sender_wrote_as_an_email_is_masked_in_the_log(make_client, base_env, capsys):
    """The mapping reads the person id from the payload (a form's hidden field): it is the sender's
    text, and an email there is masked like any other (the dry-run answer shows it: that is its use)."""
    base_env.setenv("DRY_RUN", "1")
    body = json.dumps({"stardex_person_id": "jane.doe@example.org", "current_job_title": "CTO"}).encode()
    headers, body = sign("generic", body)
    assert make_client().post("/generic", data=body, headers=headers).get_json()["status"] == "dry_run"
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]
    assert line["person_id"] == "j***@example.org"


def test_a_uuid_is_logged_whole_though_its_digit_groups_look_like_a_phone_number():
    from stardex_webhook.logs import JsonLog

    stream = io.StringIO()
    uuid = "12345678-1234-5602-8d3c-b2e2bbf5a5e9"
    JsonLog(stream=stream).write("INFO", f"webhook {uuid}", delivery_id=uuid, detail=f"{uuid}@example.org +351 910 000 111")
    entry = json.loads(stream.getvalue())
    assert (entry["message"], entry["delivery_id"]) == (f"webhook {uuid}", uuid)
    assert entry["detail"] == "1***@example.org ***11", "a UUID as an email's local part is still masked"


# ---- where the function connects ----------------------------------------------------------------

HOSTILE = "https://evil.example/v1/steal"
HOSTILE_HEADERS = {
    "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example;proto=https",
    "X-Original-URL": HOSTILE, "X-Rewrite-URL": HOSTILE, "Referer": HOSTILE, "Origin": "https://evil.example",
    "Location": HOSTILE, "Content-Location": HOSTILE, "X-Callback-URL": HOSTILE, "X-Webhook-Url": HOSTILE,
}
URL_KEYS = ["url", "callback_url", "callbackUrl", "webhook_url", "href", "self", "link", "links", "api_url",
            "base_url", "baseUrl", "host", "resource_url", "resourceUrl", "redirect", "location"]


def with_urls(value):
    """Every object of the document given every key a URL is usually found under, pointing away."""
    if isinstance(value, dict):
        return {**{key: with_urls(item) for key, item in value.items()}, **{key: HOSTILE for key in URL_KEYS}}
    if isinstance(value, list):
        return [with_urls(item) for item in value]
    return value


def ids_as_urls(value, key=""):
    """Every id and link of the document replaced by a URL elsewhere."""
    if isinstance(value, dict):
        return {name: ids_as_urls(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [ids_as_urls(item, key) for item in value]
    if isinstance(value, str) and re.search(r"(^|_)id$|Id$|^id|url|link|href", key, re.IGNORECASE):
        return HOSTILE if len(value) % 2 else "//evil.example/../../v1/x"
    return value


@pytest.fixture
def contacted():
    """Every URL the function requests, answered 404; none reaches a network."""
    urls: list[str] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(r".*"),
                              callback=lambda request: (urls.append(request.url), (404, {}, "{}"))[1])
        yield urls


@pytest.fixture
def steered_client(make_client, base_env):
    for name, key in SENDER_API_KEYS.items():
        base_env.setenv(api_key_name(name), key)
    base_env.setenv("PERSON_MEMORY_SECONDS", "0")
    return make_client()


def hostile_request(source: str, document) -> tuple[dict[str, str], bytes]:
    # HubSpot signs the URL, whose scheme the (hostile) X-Forwarded-Proto sets.
    body = json.dumps(document).encode()
    headers, body = signed_request(source, body, SIGNING_KEYS[source], int(time.time()), url=f"https://localhost/{source}")
    headers = {**headers, **HOSTILE_HEADERS}
    if source == "smartrecruiters":  # its Link header names what to read, and is signed
        headers["Link"] = f"<{HOSTILE}>; rel=self"
        headers.update(smartrecruiters.signature_header(SIGNING_KEYS[source], headers, body))
    return headers, body


def allowed_hosts(source: str) -> set[str]:
    api_base = SOURCES[source].api_base
    return {API_HOST} | ({urlsplit(api_base).hostname} if api_base else set())


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_urls_in_every_header_and_field_never_choose_the_host(steered_client, contacted, source):
    """Signed, so the request gets past verification; URLs everywhere: only Stardex's host and the
    sender's own API host are contacted, and something is (the test is not vacuous)."""
    headers, body = hostile_request(source, with_urls(json.loads(sample(source))))
    answer = steered_client.post(f"/{source}", data=body, headers=headers)
    assert answer.status_code in (200, 202, 400, 422, 503), answer.get_json()
    assert {urlsplit(url).hostname for url in contacted} <= allowed_hosts(source), contacted
    assert contacted, answer.get_json()


def test_a_smartrecruiters_link_elsewhere_is_refused_before_any_call(steered_client, contacted):
    """The one sender whose request names what to read (its signed ``Link``, for candidate
    events): a link off its API base is refused, and nothing is contacted."""
    headers, body = hostile_request("smartrecruiters", json.loads(sample("smartrecruiters")))
    headers["event-name"] = "candidate.updated"
    headers.update(smartrecruiters.signature_header(SIGNING_KEYS["smartrecruiters"], headers, body))
    answer = steered_client.post("/smartrecruiters", data=body, headers=headers)
    assert (answer.status_code, answer.get_json()["reason"]) == (422, "follow_up_url_refused")
    assert contacted == []


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_ids_and_links_written_as_urls_never_choose_the_host(steered_client, contacted, source):
    headers, body = hostile_request(source, ids_as_urls(json.loads(sample(source))))
    answer = steered_client.post(f"/{source}", data=body, headers=headers)
    assert answer.status_code != 500
    assert {urlsplit(url).hostname for url in contacted} <= allowed_hosts(source), contacted


# ---- no path reaches the file system -----------------------------------------------------------------

ALLOWED_DIRS = [ROOT / "mappings", ROOT / "schemas", ROOT / "stardex_webhook"]


@pytest.fixture
def opened(monkeypatch):
    """Every file opened (``open``, ``io.open``, ``os.open``) while the test's requests run."""
    paths: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def recording_open(file, *args, **kwargs):
        paths.append(os.fsdecode(file) if not isinstance(file, int) else f"fd {file}")
        return real_open(file, *args, **kwargs)

    def recording_os_open(path, *args, **kwargs):
        paths.append(os.fsdecode(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    monkeypatch.setattr(os, "open", recording_os_open)
    return paths


def test_the_recorder_sees_every_way_of_opening_a_file(opened):
    """The fixture the two tests below rely on can fail: each way of opening is recorded."""
    path = ROOT / "main.py"
    with open(path, "rb"), io.open(path, "rb"), path.open("rb"):
        pass
    os.close(os.open(path, os.O_RDONLY))
    assert opened == [str(path)] * 4


TRAVERSALS = ["..", "../..", "../../etc/passwd", "%2e%2e", "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fmain.py",
              "%252e%252e%252f", "greenhouse/../../etc/passwd", "greenhouse/..", "mappings/greenhouse.json",
              "greenhouse.json", "schemas/person_update.schema.json", "..%5c..%5cmain.py", "%00greenhouse",
              "greenhouse%00.json", "healthz/../greenhouse", "./greenhouse", "stardex_webhook/samples/generic.json",
              "/etc/passwd", "dead-letters/../deliveries/x", "~/.ssh/id_rsa", "C:%5cWindows"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_a_path_in_the_url_is_a_404_and_opens_nothing(make_client, opened, path):
    client = make_client()
    opened.clear()  # building the app reads the mapping and schema files: that is not the request
    for method in ("POST", "GET"):
        answer = client.open(f"/{path}", method=method, data=b"{}")
        assert answer.status_code == 404 and answer.get_json()["reason"] == "unknown_source", (path, method)
    assert opened == []


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_paths_in_a_signed_request_open_nothing_outside_the_package(make_client, base_env, opened, source):
    """Mapping names, file names and traversals in every field and header of a genuine request:
    whatever it answers, no file outside the package's mappings, schemas and code is opened."""
    base_env.setenv("DRY_RUN", "1")
    client = make_client()
    opened.clear()

    def with_paths(value):
        if isinstance(value, dict):
            return {key: with_paths(item) for key, item in value.items()} | {
                "file": "../../etc/passwd", "mapping": "../mappings/greenhouse", "template": "/etc/passwd"}
        if isinstance(value, list):
            return [with_paths(item) for item in value]
        return "../../../etc/passwd" if isinstance(value, str) and len(value) % 3 == 0 else value

    headers, body = sign(source, json.dumps(with_paths(json.loads(sample(source)))).encode())
    headers = {**headers, "X-File": "../../etc/passwd", "X-Mapping": "../../main", "X-Original-URL": "/etc/passwd"}
    answer = client.post(f"/{source}?mapping=../../etc/passwd&file=%2e%2e%2fmain.py", data=body, headers=headers)
    assert answer.status_code != 500
    outside = [path for path in opened if not any(Path(path).resolve().is_relative_to(d) for d in ALLOWED_DIRS)]
    assert outside == []


# ---- JSON limits -----------------------------------------------------------------------------------

MIB = 1024 * 1024


def deep_body(size: int) -> bytes:
    """A JSON object whose one member nests ``[`` to fill ``size`` bytes."""
    return b'{"a":' + b"[" * (size - 6) + b"}"


def wide_body(count: int) -> bytes:
    return b"{" + b",".join([b'"a":1'] * count) + b"}"


@pytest.mark.parametrize("body, reason", [
    (deep_body(MIB), "too_deep"),
    (b'{"a":' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}", "too_deep"),  # one level past the limit
    (wide_body(100_000), "too_many_fields"),  # duplicate keys count: a dict would keep one
    (wide_body(MAX_JSON_VALUES + 1), "too_many_fields"),
    (b'{"a":[' + b",".join([b"0"] * MAX_JSON_VALUES) + b"]}", "too_many_fields"),  # the list's items and the member
])
def test_json_past_the_limits_is_refused_with_its_reason(body, reason):
    with pytest.raises(BadRequest) as refused:
        parse_json_object(body)
    assert refused.value.reason == reason


@pytest.mark.parametrize("body", [
    b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}",
    wide_body(1) .replace(b'"a":1', b",".join(b'"k%d":1' % i for i in range(MAX_JSON_VALUES))),
])
def test_json_at_the_limits_is_read(body):
    assert isinstance(parse_json_object(body), dict)


def jotform_deep(raw_request: bytes) -> tuple[dict[str, str], bytes]:
    """Jotform's multipart body, its ``rawRequest`` field the given JSON (built by hand: the sample
    signer would parse it); the token as a Bearer header."""
    boundary = "fuzzboundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="rawRequest"\r\n\r\n').encode() + raw_request \
        + f"\r\n--{boundary}--\r\n".encode()
    return {"Authorization": f"Bearer {SIGNING_KEYS['jotform']}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def lever_signed(rest: bytes) -> tuple[dict[str, str], bytes]:
    """Lever's signature is over ``token + triggeredAt`` in the body: computed here, the rest of
    the body (which would defeat the sample signer's own parse) appended by hand."""
    token, triggered_at = "fuzz-token", str(int(time.time() * 1000))
    signature = hmac.new(SIGNING_KEYS["lever"].encode(), (token + triggered_at).encode(), "sha256").hexdigest()
    head = f'{{"token":"{token}","triggeredAt":{triggered_at},"signature":"{signature}",'.encode()
    return {"Content-Type": "application/json"}, head + rest


def standard_webhooks_signed(source: str, body: bytes) -> tuple[dict[str, str], bytes]:
    import base64

    key = base64.b64decode(SIGNING_KEYS[source].removeprefix("whsec_"))
    msg_id, now = "msg_fuzz", str(int(time.time()))
    digest = hmac.new(key, f"{msg_id}.{now}.".encode() + body, "sha256").digest()
    return {"webhook-id": msg_id, "webhook-timestamp": now, "webhook-signature": "v1," + base64.b64encode(digest).decode(),
            "Content-Type": "application/json"}, body


def signed_huge(source: str, member: bytes) -> tuple[dict[str, str], bytes]:
    """A signed body of about 1 MiB whose one member is ``member`` (a JSON value)."""
    if source == "lever":
        return lever_signed(b'"a":' + member + b"}")
    if source == "jotform":
        return jotform_deep(b'{"a":' + member + b"}")
    if source in ("generic", "google-forms"):
        return standard_webhooks_signed(source, b'{"a":' + member + b"}")
    return sign(source, b'{"a":' + member + b"}")


@pytest.mark.parametrize("shape, reason", [("deep", "too_deep"), ("wide", "too_many_fields")])
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_signed_megabyte_of_nesting_or_of_fields_is_a_400_with_its_reason(make_client, base_env, source, shape, reason):
    base_env.setenv("DRY_RUN", "1")
    member = b"[" * (MIB - 200) if shape == "deep" else b"{" + b",".join([b'"a":1'] * 100_000) + b"}"
    headers, body = signed_huge(source, member)
    assert len(body) <= MIB
    answer = make_client().post(f"/{source}", data=body, headers=headers, base_url="http://localhost")
    assert (answer.status_code, answer.get_json()["reason"]) == (400, reason), answer.get_json()


def test_a_form_with_more_fields_than_the_limit_is_a_400(make_client, base_env):
    body = b"&".join(b"f%d=x" % index for index in range(MAX_JSON_VALUES + 1))
    answer = make_client().post("/jotform", data=body, headers={
        "Authorization": f"Bearer {SIGNING_KEYS['jotform']}", "Content-Type": "application/x-www-form-urlencoded"})
    assert (answer.status_code, answer.get_json()["reason"]) == (400, "too_many_fields")


# ---- pip-audit's gate --------------------------------------------------------------------------

GATE = ROOT / ".ci" / "pip_audit_gate.py"


def gate(tmp_path: Path, report: dict | None) -> subprocess.CompletedProcess:
    path = tmp_path / "audit.json"
    if report is not None:
        path.write_text(json.dumps(report))
    return subprocess.run([sys.executable, str(GATE), str(path)], capture_output=True, text=True, timeout=30)


def test_a_known_vulnerability_fails_ci(tmp_path):
    result = gate(tmp_path, {"dependencies": [
        {"name": "requests", "version": "2.0.0", "vulns": [{"id": "PYSEC-0000-1", "fix_versions": ["2.32.0"],
                                                           "aliases": ["CVE-0000-1"], "description": "x"}]},
        {"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []})
    assert result.returncode == 1
    assert "requests 2.0.0: PYSEC-0000-1" in result.stdout and "2.32.0" in result.stdout


def test_the_venvs_own_installer_is_a_warning_not_a_failure(tmp_path):
    result = gate(tmp_path, {"dependencies": [
        {"name": "pip", "version": "23.2.1", "vulns": [{"id": "PYSEC-0000-2", "fix_versions": ["23.3"]}]},
        {"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []})
    assert result.returncode == 0 and "warning" in result.stdout and "pip 23.2.1: PYSEC-0000-2" in result.stdout


def test_a_clean_audit_passes(tmp_path):
    result = gate(tmp_path, {"dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []})
    assert result.returncode == 0 and "warning" not in result.stdout.lower()


@pytest.mark.parametrize("report", [
    None,  # pip-audit could not run to its end (the database out of reach): no report
    {"dependencies": [{"name": "flask", "version": "3.1.3",
                       "skip_reason": "Dependency not found on PyPI and could not be audited"}], "fixes": []},
])
def test_an_advisory_database_out_of_reach_is_a_warning(tmp_path, report):
    result = gate(tmp_path, report)
    assert result.returncode == 0
    assert "warning" in result.stdout.lower()


# ---- dead-letter names in replay ------------------------------------------------------------------


@pytest.fixture
def bucket(base_env):
    from tests.fakes.emulators import storage_emulator

    with storage_emulator("security-bucket"):
        base_env.setenv("STATE_BUCKET", "security-bucket")
        yield "security-bucket"


@pytest.mark.parametrize("name", ["../../etc/passwd", "../deliveries/greenhouse/claimed", "/etc/passwd",
                                  "%2e%2e/deliveries/greenhouse/claimed", "dead-letters/../deliveries/greenhouse/claimed"])
def test_a_dead_letter_name_reaches_neither_the_file_system_nor_the_rest_of_the_bucket(bucket, opened, name, capsys):
    """``replay show`` and ``replay run`` take a name from the operator: it names an object under
    ``dead-letters/`` and nothing else (object names are literal, ``..`` included), and no file."""
    from google.cloud import storage

    from stardex_webhook import replay

    claim = storage.Client().bucket(bucket).blob("deliveries/greenhouse/claimed")
    claim.upload_from_string(json.dumps({"source": "greenhouse", "body": "{}", "received_at_unix": 1}))
    opened.clear()
    printed = io.StringIO()
    assert replay.main(["show", name], out=printed) == 1
    assert replay.main(["run", name], out=printed) == 1
    assert "no dead letter" in capsys.readouterr().err and "missing" in printed.getvalue()
    assert claim.exists(), "the claim outside dead-letters/ was neither read as a letter nor deleted"
    assert not [path for path in opened if "passwd" in path or "deliveries" in path], opened
