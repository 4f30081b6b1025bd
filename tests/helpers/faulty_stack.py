"""The queued stack (``tests/helpers/queued.py``) with its bucket and its queue behind fault proxies
(``tests/fakes/fault_proxy.py``), sized as deployed: 1 MiB bodies, a queue that keeps retrying
past the worker's last attempt (the worker dead-letters then), and a Typeform mapping that keeps
each submission as a note, the one write that is not idempotent (exactly once is seen there).
Shared by the nothing-lost tests and the chaos test; ``kill_worker`` SIGKILLs a server's gunicorn
worker process, which its master then starts again, as a platform restarts a crashed instance."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import requests

from stardex_webhook.config import signing_key_name
from stardex_webhook.send_sample import signed_request
from tests.conftest import ROOT, SIGNING_KEYS
from tests.fakes.emulators import storage_emulator, tasks_emulator
from tests.fakes.fake_secret_manager import FakeSecretManager
from tests.fakes.fault_proxy import FaultProxy
from tests.helpers.e2e import SECRET_NAMES, STARDEX_KEY, function_server
from tests.helpers.queued import ACCOUNT, BUCKET, QUEUE, CountingStardex, Stack

MAX_ATTEMPTS = 3
MAX_BODY_BYTES = 1024 * 1024
# A pending claim this old was left by an attempt that died (a killed instance): taken over.
FUNCTION_TIMEOUT_SECONDS = 5


@dataclass
class FaultyStack:
    stack: Stack
    bucket: FaultProxy
    queue: FaultProxy
    mappings_dir: Path
    public_log: Path


def typeform_mapping_with_note(folder: Path) -> Path:
    mapping = json.loads((ROOT / "mappings" / "typeform.json").read_text())
    mapping.pop("$schema", None)
    mapping["note"] = {}
    (folder / "typeform.json").write_text(json.dumps(mapping))
    return folder


@contextlib.contextmanager
def faulty_stack(**overrides: str) -> Iterator[FaultyStack]:
    with contextlib.ExitStack() as exits:
        gcs_url = exits.enter_context(storage_emulator(BUCKET))
        gcs = urlsplit(gcs_url)
        bucket = exits.enter_context(FaultProxy((gcs.hostname, gcs.port)))
        tasks_endpoint = exits.enter_context(tasks_emulator(QUEUE))  # retries for ever, as deployed
        host, _, port = tasks_endpoint.rpartition(":")
        queue = exits.enter_context(FaultProxy((host, int(port))))
        stardex = exits.enter_context(CountingStardex(api_key=STARDEX_KEY, rate_limit=600, window_seconds=2.0))
        secret_manager = exits.enter_context(FakeSecretManager())
        secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        for source, key in SIGNING_KEYS.items():
            secret_manager.set(SECRET_NAMES[signing_key_name(source)], key)
        mappings = typeform_mapping_with_note(Path(exits.enter_context(tempfile.TemporaryDirectory())))
        env = {"STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": f"http://{bucket.address}", "TASKS_QUEUE": QUEUE,
               "CLOUD_TASKS_ENDPOINT": queue.address, "TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
               "TASK_DEADLINE_SECONDS": "3", "STARDEX_REQUESTS_PER_MINUTE": "590", "STARDEX_RATE_WINDOW_SECONDS": "2",
               "MAX_BODY_BYTES": str(MAX_BODY_BYTES), "FUNCTION_TIMEOUT_SECONDS": str(FUNCTION_TIMEOUT_SECONDS),
               "MAPPINGS_DIR": str(mappings), **overrides}
        worker_url, worker_log = exits.enter_context(function_server(stardex, secret_manager, target="handle_task", **env))
        stack = Stack(stardex, secret_manager, "", worker_url, worker_log, env)
        stack.public_url, public_log = exits.enter_context(function_server(
            stardex, secret_manager, **{**env, "DELIVERY": "queued", "TASKS_WORKER_URL": worker_url + "/",
                                        "TASKS_SERVICE_ACCOUNT": ACCOUNT}))
        yield FaultyStack(stack, bucket, queue, mappings, public_log)


def send(url: str, source: str, body: bytes, extra_headers: dict[str, str] | None = None,
         timeout: float = 30) -> requests.Response:
    """One signed delivery, with headers the sender adds (a Latin-1 byte passes as it is sent)."""
    headers, body = signed_request(source, body, SIGNING_KEYS[source])
    return requests.post(f"{url}/{source}", data=body, headers={**headers, **(extra_headers or {})}, timeout=timeout)


def server_pid(url: str) -> int:
    """The gunicorn master serving ``url`` (``function_server`` starts it with ``--port=PORT``)."""
    wanted = f"--port={urlsplit(url).port}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
                if wanted in arguments and b"functions_framework" in arguments:
                    return int(entry.name)
    raise LookupError(f"no functions-framework process serves {url}")


def kill_worker(url: str) -> bool:
    """SIGKILL the gunicorn worker process behind ``url`` (its master starts another); False when
    there was none to kill (one is starting)."""
    master = server_pid(url)
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
            return True
    return False
