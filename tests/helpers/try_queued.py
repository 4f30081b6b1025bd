"""Queued delivery on your laptop, with the emulators the tests use, in one command:

    .venv/bin/python -m tests.helpers.try_queued

It starts fake-gcs-server (the state bucket), the Cloud Tasks emulator (the queue), the sandbox
Stardex seeded with the people the shipped samples find, the worker (``handle_task``) and the
public function with ``DELIVERY=queued``, each on a free port of 127.0.0.1, the signing keys being
the published local demo keys (as ``serve`` uses). It prints how to send a sample and how to list
dead letters, then echoes each outcome the worker logs until Ctrl-C, which stops everything.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

from stardex_webhook.config import signing_key_name
from stardex_webhook.fake_stardex import SAMPLE_PEOPLE, FakeStardex
from stardex_webhook.send_sample import SAMPLES_DIR, local_signing_key
from stardex_webhook.sources import SOURCES
from tests.fakes.emulators import storage_emulator, tasks_emulator
from tests.fakes.fake_secret_manager import FakeSecretManager
from tests.helpers.e2e import SECRET_NAMES, STARDEX_KEY, function_server

BUCKET = "stardex-webhook-state"
QUEUE = "projects/local/locations/here/queues/stardex-webhook"
ACCOUNT = "stardex-tasks@local.iam.gserviceaccount.com"


@contextlib.contextmanager
def queued_stack():
    """The whole queued stack; yields the public function's URL, the settings replay needs, and the
    worker's log file."""
    with contextlib.ExitStack() as exits:
        gcs_url = exits.enter_context(storage_emulator(BUCKET))
        tasks_endpoint = exits.enter_context(tasks_emulator(QUEUE))
        stardex = exits.enter_context(FakeStardex(api_key=STARDEX_KEY))
        for person in SAMPLE_PEOPLE:
            stardex.add_person(**person)
        secrets = exits.enter_context(FakeSecretManager())
        secrets.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        for source in SOURCES:
            secrets.set(SECRET_NAMES[signing_key_name(source)], local_signing_key(source))
        env = {"STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": gcs_url, "TASKS_QUEUE": QUEUE,
               "CLOUD_TASKS_ENDPOINT": tasks_endpoint, "TASK_MAX_ATTEMPTS": "3"}
        worker_url, worker_log = exits.enter_context(function_server(stardex, secrets, target="handle_task", **env))
        public_url, _log = exits.enter_context(function_server(
            stardex, secrets, DELIVERY="queued", TASKS_WORKER_URL=worker_url + "/", TASKS_SERVICE_ACCOUNT=ACCOUNT, **env))
        replay_env = {"STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": gcs_url,
                      "STARDEX_API_BASE": stardex.base_url, "STARDEX_API_KEY": STARDEX_KEY}
        yield public_url, replay_env, worker_log


def unknown_person_sample(folder: Path) -> Path:
    """The Greenhouse sample with every email and the LinkedIn URL changed, so that no sandbox person
    has them (not even after the sample itself added its work email to Marta): an apply answers 422
    person_not_found, which the worker keeps as a dead letter."""
    text = re.sub("(?i)quintal", "nobodyhere", (SAMPLES_DIR / "greenhouse.json").read_text())
    path = folder / "greenhouse-unknown-person.json"
    path.write_text(text)
    return path


def main() -> int:
    print("starting the bucket and queue emulators, the sandbox Stardex, the worker and the function…", flush=True)
    with queued_stack() as (public_url, replay_env, worker_log), tempfile.TemporaryDirectory() as folder:
        unknown = unknown_person_sample(Path(folder))
        settings = " ".join(f"{name}={shlex.quote(value)}" for name, value in replay_env.items())
        print(f"""
queued delivery is running; the public function is at {public_url}/<source>

  send a sample (answered `queued` at once; the worker applies it a moment later):
    .venv/bin/python -m stardex_webhook.send_sample greenhouse --url {public_url}
  a person the sandbox does not have: queued too, then kept as a dead letter (422 person_not_found):
    .venv/bin/python -m stardex_webhook.send_sample greenhouse --url {public_url} --body {unknown}
  list the dead letters (then `replay show NAME`, `replay run NAME`):
    {settings} .venv/bin/python -m stardex_webhook.replay list

the worker's outcomes follow (its whole log: {worker_log}); Ctrl-C stops everything.
""", flush=True)
        seen = 0
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                lines = worker_log.read_text(errors="replace").splitlines()
                for line in lines[seen:]:
                    with contextlib.suppress(ValueError):
                        entry = json.loads(line)
                        if echoed(entry):
                            print(echoed(entry), flush=True)
                seen = len(lines)
                time.sleep(0.5)
    return 0


def echoed(entry: object) -> str | None:
    """The line echoed for one line of the worker's log: its answers to the queue only (they carry
    their latency), not the line a dead letter is logged with just before its answer."""
    if not (isinstance(entry, dict) and "outcome" in entry and entry.get("source") and "latency_ms" in entry):
        return None
    return (f"worker: {entry.get('source')} {entry.get('delivery_id')}: "
            f"{entry.get('status_code')} {entry['outcome']} {entry.get('reason') or ''}").rstrip()


if __name__ == "__main__":
    sys.exit(main())
