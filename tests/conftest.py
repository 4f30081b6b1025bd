"""Shared test helpers: the real app built in-process from main.py, and signed requests."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from stardex_webhook import logs
from stardex_webhook.errors import Unauthorized
from stardex_webhook.send_sample import signed_request
from stardex_webhook.config import signing_key_name
from stardex_webhook.sources import SOURCES
from stardex_webhook.records import Delivery, Headers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

GREENHOUSE_KEY = "gh-test-signing-key"
TYPEFORM_KEY = "tf-test-signing-key"
GENERIC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STARDEX_KEY = "stardex-test-key"
PERSON_ID = "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"

# Every sender has a test key: the three above, and for each later sender its adapter's demo key
# with "test" in it (in the form the sender's keys take), so adding a sender needs no line here.
SIGNING_KEYS = {
    **{name: source.sample_key().replace("local", "test") for name, source in SOURCES.items()},
    "greenhouse": GREENHOUSE_KEY, "typeform": TYPEFORM_KEY, "generic": GENERIC_KEY,
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def signed(source: str, body: bytes | dict, key: str | None = None, now: int | None = None) -> tuple[bytes, dict]:
    """The body and the headers its sender would send, signed with the test key."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers, raw = signed_request(source, raw, key or SIGNING_KEYS[source], now)
    return raw, headers


def make_delivery(body: bytes, received_at: float, url: str = "", query: dict | None = None, **headers: str) -> Delivery:
    """A delivery as the app hands it to an adapter; header names use ``_`` for ``-``."""
    return Delivery(Headers((name.replace("_", "-"), value) for name, value in headers.items()), body, received_at,
                    url=url, query=query or {})


def as_document(mapped) -> dict:
    """A mapped update as plain data, without the sections it does not have (stage, custom fields)."""
    document = dataclasses.asdict(mapped)
    return {key: value for key, value in document.items()
            if value is not None or key not in ("stage", "named_custom_fields", "incomplete")
            if value != () or key not in ("skipped", "sources")}


def refusal(source, delivery: Delivery, keys, now: float) -> str:
    """The reason ``source`` refuses ``delivery`` (the test fails if it accepts it)."""
    with pytest.raises(Unauthorized) as caught:
        source.verify(delivery, list(keys), now)
    return caught.value.reason


@pytest.fixture
def base_env(monkeypatch):
    """A clean environment with every source's signing key and a Stardex key set as plain values."""
    import os

    for name in list(os.environ):
        if name.endswith(("_SIGNING_KEY", "_SIGNING_KEY_SECRET", "_API_KEY", "_API_KEY_SECRET")) or name in (
            "DRY_RUN", "ALLOW_UNSIGNED", "MAPPINGS_DIR", "PHONE_DEFAULT_REGION", "MAX_BODY_BYTES",
            "STARDEX_API_BASE", "SECRET_MANAGER_ENDPOINT", "STARDEX_DEADLINE_SECONDS",
        ):
            monkeypatch.delenv(name, raising=False)
    for source, key in SIGNING_KEYS.items():
        monkeypatch.setenv(signing_key_name(source), key)
    monkeypatch.setenv("STARDEX_API_KEY", STARDEX_KEY)
    monkeypatch.setenv("STARDEX_API_BASE", "https://stardex.test/v1")
    monkeypatch.setenv("STARDEX_DEADLINE_SECONDS", "2")
    return monkeypatch


# The built-in mappings as the in-process apps load them, compiled once a session: checking them
# against the mapping schema was most of each create_app (35 ms, some 300 apps a run). Compiled
# mappings are read-only, so sharing them changes nothing an app does; a MAPPINGS_DIR of a test's
# own, another phone region or another set of sources is loaded afresh.
_BUILTIN_MAPPINGS: dict = {}


def _builtin_mappings_once(builtin_dir, override_dir, phone_region, sources):
    from stardex_webhook import mapping

    if override_dir:
        return mapping.load_mappings(builtin_dir, override_dir, phone_region, sources)
    named = sources.items() if isinstance(sources, dict) else ((name, None) for name in sources)
    key = (builtin_dir, phone_region, tuple((name, getattr(source, "default_write_policy", None)) for name, source in named))
    if key not in _BUILTIN_MAPPINGS:
        _BUILTIN_MAPPINGS[key] = mapping.load_mappings(builtin_dir, override_dir, phone_region, sources)
    return _BUILTIN_MAPPINGS[key]


@pytest.fixture
def make_client(base_env):
    """Build the real function in-process from main.py (as functions-framework does) and return a
    Flask test client; call it after adjusting the environment."""
    from stardex_webhook import pipeline

    base_env.setattr(pipeline, "load_mappings", _builtin_mappings_once)

    def build():
        app = functions_framework.create_app(target="handle_webhook", source=str(ROOT / "main.py"))
        return app.test_client()

    return build


# ---- markers: e2e and slow (registered in pytest.ini) -------------------------------------------
# ``-m "not e2e"`` leaves out every test that starts something real: the function as a server
# process, an emulator, the sandbox as a process, a fresh clone. A test is e2e when its module is all
# end to end, or when it or a fixture it uses (however indirectly) calls one of the starters below,
# so a new test is marked without a line here. ``slow``: the modules whose tests take seconds each.

E2E_MODULES = {"test_e2e", "test_e2e_ats_a", "test_e2e_ats_b", "test_e2e_forms_a", "test_e2e_forms_b",
               "test_e2e_queued", "test_e2e_stages", "test_e2e_history", "test_faults", "test_hostile_stardex", "test_replay",
               "test_quickstart", "test_bench", "test_try_queued", "test_chaos", "test_e2e_nothing_lost"}
E2E_STARTERS = re.compile(r"\b(function_server|storage_emulator|tasks_emulator|subprocess\.Popen)\(")
SLOW_MODULES = {"test_e2e_queued", "test_e2e_history", "test_replay", "test_faults", "test_hostile_stardex", "test_quickstart",
                "test_bench", "test_fuzz", "test_try_queued", "test_chaos", "test_e2e_nothing_lost"}


def _starts_something(function, seen: dict) -> bool:
    if function not in seen:
        try:
            seen[function] = bool(E2E_STARTERS.search(inspect.getsource(function)))
        except (OSError, TypeError):
            seen[function] = False
    return seen[function]


def pytest_collection_modifyitems(config, items):
    seen: dict = {}
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        fixtures = [definition.func for name in getattr(item, "fixturenames", ())
                    for definition in getattr(item, "_fixtureinfo").name2fixturedefs.get(name, ())]
        if module in E2E_MODULES or any(_starts_something(f, seen) for f in [getattr(item, "function", None), *fixtures] if f):
            item.add_marker(pytest.mark.e2e)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=run_order)


# ---- pytest-xdist: how the tests are shared out between the workers ---------------------------------
# A module's tests run on one worker, in order (as ``--dist loadscope``), so that its costly
# module-scoped stack (the queued emulators, a function server, the bench's quick run) starts once a
# run. The modules named here are long, and waiting (deadlines, timeouts) more than computing:
# their tests go one by one to whichever worker is free, so that no single module holds the run's
# end; except the tests that share a module-scoped stack (by name prefix), which stay together on
# one worker so that the stack starts once (a function server costs a second of CPU to start).
SHARED_OUT_MODULES = {"tests/test_faults.py", "tests/test_fuzz.py"}
KEPT_TOGETHER = {
    "tests/test_faults.py": {
        "queued stack": ("test_the_queue_or_the_bucket_failing_", "test_the_bucket_down_on_dead_letter_"),
        "server": ("test_a_stardex_fault_is_503_", "test_a_50_mb_answer_", "test_a_sender_api_fault_",
                   "test_a_sender_api_redirect_"),
        "refused_server": ("test_connection_refused_",),
        "unmemoised_server": ("test_a_secret_manager_fault_",),
    },
}


# The order xdist hands the units out (pytest.ini: --no-loadscope-reorder): the modules that take
# longest go first, longest first (they mostly wait, on servers, deadlines and the queue), so that
# none starts late and holds the run's end; then the rest as collected; fuzzing last, its many short
# tests filling the workers at the end. (Each worker takes one more unit while its last two tests
# run, so the unit after test_chaos, one long test, waits for it: with this order that unit is one
# of test_faults' single short tests.)
RUN_FIRST = ["tests/test_bench.py", "tests/test_chaos.py", "tests/test_e2e_queued.py", "tests/test_faults.py",
             "tests/test_e2e.py", "tests/test_hostile_stardex.py", "tests/test_replay.py", "tests/test_e2e_history.py",
             "tests/test_e2e_nothing_lost.py", "tests/test_secrets.py", "tests/test_quickstart.py"]
RUN_LAST = ["tests/test_fuzz.py"]


def run_order(item) -> tuple[int, int]:
    module = item.nodeid.partition("::")[0]
    if module in RUN_FIRST:
        return 0, RUN_FIRST.index(module)
    return (2, 0) if module in RUN_LAST else (1, 0)


def scheduling_scope(nodeid: str) -> str:
    """The unit xdist gives one worker: the test's module, or in a shared-out module the test
    itself or the group it is kept together with."""
    module, _, name = nodeid.partition("::")
    if module not in SHARED_OUT_MODULES:
        return module
    group = next((group for group, prefixes in KEPT_TOGETHER.get(module, {}).items() if name.startswith(prefixes)), None)
    return f"{module}::({group})" if group else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrTestScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scheduling_scope(nodeid)

    return ModuleOrTestScheduling(config, log)


# ---- the session-wide log scan: no key, email or phone number in any line the function logs -------
# Every line ``JsonLog`` writes to stdout (in-process apps) and every end-to-end server's log file
# (``scan_log_file``, called by ``tests/test_e2e.py`` before it removes one) is scanned as it comes;
# a leak fails the session. ``tests/test_security.py`` tests the scanner.

# Sender API keys the in-process tests set (test_fuzz, test_security).
SENDER_API_KEYS = {name: f"{name}-test-api-key" for name, source in SOURCES.items() if source.needs_api_key}
# Every other key or token a test module or a helper defines as a constant (``..._KEY = "..."``, ``TOKEN``,
# ``SECRET``), read from the test files, so a key added later is scanned for too. Lever's ``TOKEN``
# is its event's own token, which Lever signs and the delivery id carries: not a secret.
_KEY_CONSTANT = re.compile(r'^\s*([A-Z_]*(?:KEY|TOKEN|SECRET)|rotated)\s*=\s*"([^"]{8,})"', re.MULTILINE)
_TEST_KEYS = {STARDEX_KEY, *SIGNING_KEYS.values(), *SENDER_API_KEYS.values()} | {
    value for path in sorted([*Path(__file__).parent.glob("*.py"), *Path(__file__).parent.glob("helpers/*.py")])
    for name, value in _KEY_CONSTANT.findall(path.read_text())
    if not value.startswith("projects/") and (path.name, name) != ("test_sources_lever.py", "TOKEN")}
# An unmasked email: a local-part character right before the "@" (the masked form is "a***@...").
_UNMASKED_EMAIL = re.compile(r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A phone number as people write one: "+351 910 000 111", "(415) 555-0123", "415-555-0123".
_UNMASKED_PHONE = re.compile(r"(?<![\w*.])(?:\+\d[\d ().-]{6,}\d|\(\d{2,4}\) ?\d{3}[ .-]?\d{3,4}|\d{3}[ .-]\d{3}[ .-]\d{4})(?![\w.])")
LOG_SCAN: dict[str, Any] = {"lines": 0, "leaks": []}


def log_leaks(text: str) -> list[str]:
    """What in ``text`` is a test key, an unmasked email address or an unmasked phone number."""
    found = [f"key {key[:4]}…" for key in _TEST_KEYS if key in text]
    found += [f"email {match.group(0)}" for match in _UNMASKED_EMAIL.finditer(text)]
    found += [f"phone {match.group(0)}" for match in _UNMASKED_PHONE.finditer(text)]
    return found


def _scan(text: str, where: str) -> None:
    LOG_SCAN["lines"] += text.count("\n") or 1
    leaks = log_leaks(text)
    if leaks and len(LOG_SCAN["leaks"]) < 50:
        LOG_SCAN["leaks"].append(f"{where}: {', '.join(leaks)}")


def scan_log_file(path: Path) -> None:
    _scan(path.read_text(errors="replace"), f"server log of {os.environ.get('PYTEST_CURRENT_TEST', '?')}")


class _StdoutTap:
    """Stands in for ``sys`` inside ``stardex_webhook.logs`` (whose ``JsonLog`` writes each line to
    ``sys.stdout`` unless given a stream): each write is scanned, then goes to the real stdout."""

    def __getattr__(self, name: str) -> Any:
        return getattr(sys, name)

    @property
    def stdout(self) -> Any:
        return _Tee(sys.stdout)


class _Tee:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        _scan(text, os.environ.get("PYTEST_CURRENT_TEST", "?"))
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


logs.sys = _StdoutTap()


def pytest_sessionfinish(session, exitstatus):
    """A leak anywhere fails the run, naming the tests that logged it."""
    if LOG_SCAN["leaks"]:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "\n".join(["log scan: a key, email or phone number was logged:", *LOG_SCAN["leaks"]])
        if reporter is not None:
            reporter.write_line(text, red=True)
        else:
            print(text, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
