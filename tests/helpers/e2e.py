"""The end-to-end stack: the real functions-framework server as a process (``function_server``), the
loopback fake Stardex and the loopback Secret Manager holding every key (``fakes``), and the signed
sends; shared by the end-to-end, fault and hostile-Stardex tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from stardex_webhook.config import signing_key_name
from stardex_webhook.fake_stardex import FakeStardex
from stardex_webhook.send_sample import signed_request
from stardex_webhook.sources import SOURCES
from tests.conftest import ROOT, SIGNING_KEYS, fixture_json, scan_log_file
from tests.fakes.fake_secret_manager import FakeSecretManager

PROJECT = "projects/e2e"
STARDEX_KEY = "e2e-stardex-key"
SECRET_NAMES = {
    "STARDEX_API_KEY": f"{PROJECT}/secrets/stardex-api-key",
    **{signing_key_name(source): f"{PROJECT}/secrets/{source}-signing-key" for source in SOURCES},
}
MAX_BODY_BYTES = 64 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def function_server(stardex: FakeStardex, secret_manager: FakeSecretManager, target: str = "handle_webhook",
                    **overrides: str):
    """Start ``functions-framework --source=main.py --target=handle_webhook`` (gunicorn, as Cloud
    Functions runs it; ``target="handle_task"``: the queued worker) and wait until /healthz answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_SIGNING_KEY", "_API_KEY"))}
    env.update(
        {
            "STARDEX_API_BASE": stardex.base_url,
            "SECRET_MANAGER_ENDPOINT": secret_manager.endpoint,
            "STARDEX_DEADLINE_SECONDS": "4",
            "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "PHONE_DEFAULT_REGION": "PT",
            "DRY_RUN": "0",
            # The tests reset the fake Stardex between them, which a remembered person would not
            # know of: the memory is on only where a test asks for it.
            "PERSON_MEMORY_SECONDS": "0",
            **{f"{name}_SECRET": f"{secret}/versions/latest" for name, secret in SECRET_NAMES.items()},
            **overrides,
        }
    )
    log = tempfile.NamedTemporaryFile(prefix="function-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "functions_framework", f"--source={ROOT / 'main.py'}",
               f"--target={target}", f"--port={port}"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the function exited at start:\n{Path(log.name).read_text()}")
            try:
                if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to answer on a busy machine
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the function did not start:\n{Path(log.name).read_text()}")
            time.sleep(0.1)
        yield base_url, Path(log.name)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        process.kill()  # nothing when it has exited
        process.wait()
        scan_log_file(Path(log.name))  # the session-wide log scan (conftest)
        os.unlink(log.name)


@pytest.fixture(scope="module")
def fakes():
    with FakeStardex(api_key=STARDEX_KEY) as stardex, FakeSecretManager() as secret_manager:
        secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        for source, key in SIGNING_KEYS.items():
            secret_manager.set(SECRET_NAMES[signing_key_name(source)], key)
        yield stardex, secret_manager


@pytest.fixture(scope="module")
def server(fakes):
    with function_server(*fakes) as (base_url, _log):
        yield base_url


@pytest.fixture
def stardex(fakes):
    fake = fakes[0]
    fake.reset()
    yield fake
    fake.reset()


def send(base_url: str, source: str, body: bytes | dict, key: str | None = None) -> requests.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers, raw = signed_request(source, raw, key or SIGNING_KEYS[source])
    return requests.post(f"{base_url}/{source}", data=raw, headers=headers, timeout=30)


def typeform_body(person_id: str | None = None) -> dict:
    body = fixture_json("typeform_form_response.json")
    if person_id:
        body["form_response"]["hidden"]["stardex_person_id"] = person_id
    return body


def patches(fake: FakeStardex) -> list:
    return [request for request in fake.requests if request.method == "PATCH"]
