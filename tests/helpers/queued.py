"""The queued stack end to end: the public function (``DELIVERY=queued``) and the worker as real
functions-framework servers, gcloud-tasks-emulator, fake-gcs-server, the loopback fake Stardex and
Secret Manager (``stack``, once per module; ``fresh`` cleans it per test); shared by the queued,
replay and fault tests."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from stardex_webhook.config import signing_key_name
from stardex_webhook.fake_stardex import FakeStardex
from tests.conftest import ROOT, SIGNING_KEYS, fixture_json, signed
from tests.fakes.emulators import bucket_names, final_outcomes, storage_emulator, tasks_emulator
from tests.fakes.fake_secret_manager import FakeSecretManager
from tests.helpers.e2e import SECRET_NAMES, STARDEX_KEY, function_server

BUCKET = "stardex-webhook-state"
QUEUE = "projects/e2e/locations/here/queues/stardex-webhook"
ACCOUNT = "stardex-tasks@e2e.iam.gserviceaccount.com"
MAX_ATTEMPTS = 3
RATE_LIMIT, WINDOW_SECONDS, WORKER_LIMIT = 100, 2.0, 98
HISTORY_TEST_KEY = "history-e2e-key-0003"  # the event history's hashing key (HISTORY_KEY)


class CountingStardex(FakeStardex):
    """The fake Stardex, counting the requests its rate limit refused."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refused = 0

    def _rate_limited(self, wait):
        self.refused += 1
        return super()._rate_limited(wait)


@dataclass
class Stack:
    stardex: CountingStardex
    secret_manager: FakeSecretManager
    public_url: str
    worker_url: str
    worker_log: Path
    env: dict[str, str]
    log_mark: int = 0

    def mark(self) -> None:
        """Read only what the worker logs from now on."""
        self.log_mark = self.worker_log.stat().st_size

    def worker_text(self) -> str:
        with self.worker_log.open("rb") as log:
            log.seek(self.log_mark)
            return log.read().decode("utf-8", "replace")

    def worker_lines(self) -> list[dict]:
        lines = []
        for line in self.worker_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and "outcome" in entry:
                    lines.append(entry)
        return lines

    def settle(self, delivery_ids, timeout: float = 120) -> dict[str, str]:
        """Wait (bounded) until the worker gave each delivery a final answer; its outcome by id."""
        wanted = set(delivery_ids)
        stop = time.monotonic() + timeout
        while True:
            outcomes = final_outcomes(self.worker_text(), wanted)
            if set(outcomes) == wanted or time.monotonic() > stop:
                return outcomes
            time.sleep(0.2)

    @contextlib.contextmanager
    def public(self, **overrides: str):
        """Another public function on the same queue and bucket, with other settings."""
        settings = {**self.env, "DELIVERY": "queued", "TASKS_WORKER_URL": self.worker_url + "/",
                    "TASKS_SERVICE_ACCOUNT": ACCOUNT, **overrides}
        with function_server(self.stardex, self.secret_manager, **settings) as (url, _log):
            yield url

    def replay(self, *args: str, **overrides: str) -> subprocess.CompletedProcess:
        """``python -m stardex_webhook.replay ARGS`` as an operator runs it, with the function's settings."""
        return self.tool("replay", *args, **overrides)

    def tool(self, module: str, *args: str, **overrides: str) -> subprocess.CompletedProcess:
        """``python -m stardex_webhook.MODULE ARGS`` (replay, history) with the function's settings."""
        env = {key: value for key, value in os.environ.items() if not key.endswith(("_SIGNING_KEY", "_SECRET"))}
        env.pop("MAPPINGS_DIR", None)
        env.update(self.env, STARDEX_API_BASE=self.stardex.base_url, STARDEX_API_KEY=STARDEX_KEY, **overrides)
        return subprocess.run([sys.executable, "-m", f"stardex_webhook.{module}", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def stack():
    with contextlib.ExitStack() as exits:
        gcs_url = exits.enter_context(storage_emulator(BUCKET))
        tasks_endpoint = exits.enter_context(tasks_emulator(QUEUE, max_retries=MAX_ATTEMPTS - 1))
        stardex = exits.enter_context(CountingStardex(api_key=STARDEX_KEY, rate_limit=RATE_LIMIT,
                                                      window_seconds=WINDOW_SECONDS))
        secret_manager = exits.enter_context(FakeSecretManager())
        secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        for source, key in SIGNING_KEYS.items():
            secret_manager.set(SECRET_NAMES[signing_key_name(source)], key)
        env = {"STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": gcs_url, "TASKS_QUEUE": QUEUE,
               "CLOUD_TASKS_ENDPOINT": tasks_endpoint, "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
               "TASK_DEADLINE_SECONDS": "3", "STARDEX_REQUESTS_PER_MINUTE": str(WORKER_LIMIT),
               "STARDEX_RATE_WINDOW_SECONDS": str(WINDOW_SECONDS), "HISTORY_KEY": HISTORY_TEST_KEY}
        worker_url, worker_log = exits.enter_context(
            function_server(stardex, secret_manager, target="handle_task", **env))
        stack = Stack(stardex, secret_manager, "", worker_url, worker_log, env)
        stack.public_url = exits.enter_context(stack.public())
        yield stack


@pytest.fixture
def fresh(stack):
    """A clean fake Stardex, an empty bucket, and the worker's log from here on."""
    from google.cloud import storage

    stack.stardex.reset()
    stack.stardex.refused = 0
    for blob in storage.Client().list_blobs(BUCKET):
        blob.delete()
    stack.mark()
    yield stack
    stack.stardex.reset()


def hire(index: int, email: str | None = None) -> dict:
    """A Greenhouse hire of candidate ``index``, found in Stardex by its one email."""
    body = copy.deepcopy(fixture_json("greenhouse_hire_candidate.json"))
    candidate = body["payload"]["application"]["candidate"]
    candidate.update(first_name=f"Cand{index}", last_name="Burst", phone_numbers=[],
                     email_addresses=[{"value": email or f"cand{index}@example.org", "type": "personal"}],
                     social_media_addresses=[{"value": f"https://www.linkedin.com/in/cand-burst-{index}"}])
    return body


def post(url: str, body: dict, event_id: str) -> requests.Response:
    raw, headers = signed("greenhouse", body)
    headers["Greenhouse-Event-ID"] = event_id
    return requests.post(f"{url}/greenhouse", data=raw, headers=headers, timeout=30)


def dead_letters() -> list[dict]:
    from google.cloud import storage

    bucket = storage.Client().bucket(BUCKET)
    return [json.loads(bucket.blob(name).download_as_bytes()) for name in bucket_names(BUCKET, "dead-letters/")]
