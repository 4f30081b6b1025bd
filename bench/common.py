"""What every part of the bench shares: the webhook bodies, their signatures, the environment the
function runs with, and starting / stopping / probing a functions-framework server.

Imports only the standard library and ``stardex_webhook.send_sample`` (the senders' adapters sign
the samples; they import only the standard library at module level), so that the orchestrator never imports the function it measures.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MAIN_PY = ROOT / "main.py"
FLOOR_PY = BENCH / "floor.py"
SAMPLES = ROOT / "stardex_webhook" / "samples"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stardex_webhook.config import api_key_name, signing_key_name  # noqa: E402  (standard library only)
from stardex_webhook.send_sample import signed_request  # noqa: E402
from stardex_webhook.sources import SOURCES as ADAPTERS  # noqa: E402

# Keys for the bench only: each sender's demo key, in the form that sender's keys take.
STARDEX_KEY = "bench-stardex-key"
SIGNING_KEYS = {name: adapter.sample_key() for name, adapter in ADAPTERS.items()}
SENDER_API_KEY = "bench-sender-api-key"
# The per-instance client-side limiter would hold the load at 60 requests a minute (its job in
# production); for a throughput measurement it is lifted far out of the way, and the report says so.
BENCH_REQUESTS_PER_MINUTE = "100000000"

# Every registered sender with a shipped sample, in the registry's order.
SOURCES = tuple(name for name in ADAPTERS if (SAMPLES / f"{name}.json").is_file())
# The person every sample names (or finds by email), as Stardex's GET returns it: it holds an email
# and a phone no body carries, so a merging webhook always adds something and ends in a PATCH.
STORED_PERSON = {"id": "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42", "name": "Stored Person", "first_name": "Stored",
                 "last_name": "Person",
                 "emails": [{"contact_data_type": "work", "value": "stored.person@bench-example.com"}],
                 "phones": [{"contact_data_type": "mobile", "value": "+442071838750"}]}

# The two kinds of webhook the served runs send.
#   patch: names the Stardex person and touches no contact list -> one PATCH.
#   merge: names the person and carries an email (and a phone) -> GET the person, then PATCH the union.
KINDS = ("patch", "merge")
KIND_SOURCE = {"patch": "generic", "merge": "typeform"}
CALLS = ("GET /v1/persons/{id}", "PATCH /v1/persons/{id}", "POST /v1/persons/search")
EXPECTED_CALLS = {"patch": dict(zip(CALLS, (0, 1, 0))), "merge": dict(zip(CALLS, (1, 1, 0)))}
KIND_DESCRIPTION = {
    "patch": "generic sample without emails/phone_numbers: person id, no list -> PATCH",
    "merge": "typeform sample as shipped: person id (hidden field), email + phone -> GET + PATCH",
}


def sample_body(source: str) -> bytes:
    """A source's example body exactly as shipped."""
    return (SAMPLES / f"{source}.json").read_bytes()


def kind_body(kind: str) -> bytes:
    """The body sent for a kind of webhook (see KINDS)."""
    if kind == "merge":
        return sample_body("typeform")
    document = json.loads(sample_body("generic"))
    document.pop("emails", None)
    document.pop("phone_numbers", None)
    return json.dumps(document, indent=2).encode()


def signed(source: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """The headers and body the sender would send, signed now (a signed timestamp is then valid
    for five minutes: sign again for each run). Lever signs inside its body."""
    return signed_request(source, body, SIGNING_KEYS[source])


def signed_headers(source: str, body: bytes) -> dict[str, str]:
    """The headers alone, for a sender that signs in headers."""
    headers, signed_body = signed(source, body)
    assert signed_body == body, f"{source} signs inside its body: use signed()"
    return headers


def api_sample(source: str) -> object | None:
    """The shipped answer of the sender's own API to its sample's follow-up read, if it has one."""
    path = SAMPLES / f"{source}.api.json"
    return json.loads(path.read_text()) if path.is_file() else None


def raw_request(path: str, body: bytes, headers: dict[str, str], port: int) -> bytes:
    """One HTTP/1.1 keep-alive POST, as bytes ready to write to a socket."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
             "Connection: keep-alive", "User-Agent: bench"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def plain_secrets() -> dict[str, str]:
    """Every secret setting the function reads, by name, with its value."""
    return {"STARDEX_API_KEY": STARDEX_KEY,
            **{signing_key_name(source): key for source, key in SIGNING_KEYS.items()},
            **{api_key_name(name): SENDER_API_KEY for name, adapter in ADAPTERS.items() if adapter.needs_api_key}}


def function_environment(stardex_base: str, fakes: dict | None = None) -> dict[str, str]:
    """The environment ours and the floor run with, identical for both and small, as Cloud Run gives
    a function (``requests`` scans every variable for proxy settings on every call): the loopback
    fake as Stardex, DRY_RUN off, the limiter lifted, the person memory off, functions-framework's own settings (WORKERS,
    THREADS, ...) unset so its production defaults apply. Secrets as plain values, or, given the
    fakes' description (``bench/fakes.py``), as ``*_SECRET`` names read from the fake Secret Manager
    through the real client: the production path."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "K_SERVICE": "stardex-webhook", "K_REVISION": "stardex-webhook-00001-bench",
        "K_CONFIGURATION": "stardex-webhook", "FUNCTION_TARGET": "handle_webhook",
        "FUNCTION_SIGNATURE_TYPE": "http", "PYTHONDONTWRITEBYTECODE": "1",
        "STARDEX_API_BASE": stardex_base,
        "STARDEX_REQUESTS_PER_MINUTE": BENCH_REQUESTS_PER_MINUTE,
        "STARDEX_DEADLINE_SECONDS": "20",
        "DRY_RUN": "0",
        # The served runs and the pipeline replay one webhook many times: remembered, it would cost
        # no call after the first. They measure the whole path, so the memory is off; bench/calls.py
        # measures the calls it saves, with the function's default.
        "PERSON_MEMORY_SECONDS": "0",
    })
    if fakes is None:
        env.update(plain_secrets())
    else:
        env.update({"SECRET_MANAGER_ENDPOINT": fakes["secret_manager"], **fakes["secrets"]})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(source: Path, port: int) -> list[str]:
    """functions-framework's CLI without --debug: the gunicorn server Cloud Functions runs."""
    return [sys.executable, "-m", "functions_framework", f"--source={source}", "--target=handle_webhook",
            "--host=127.0.0.1", f"--port={port}"]


def start_server(source: Path, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(server_command(source, port), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it has not exited within 10 s."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    process.kill()  # nothing when it has exited
    process.wait()


def exchange(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send one raw request on a new connection; the status code and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer's headers")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer's body")
            body += chunk
        return status, body


def wait_for_200(port: int, request: bytes, process: subprocess.Popen, timeout: float = 60.0,
                 poll_seconds: float = 0.005) -> float:
    """Send ``request`` until it is answered 200; the perf_counter time of that answer."""
    deadline = time.perf_counter() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering")
        try:
            status, body = exchange(port, request, timeout=timeout)
        except OSError:
            status, body = 0, b""
        if status == 200:
            return time.perf_counter()
        if status:
            raise RuntimeError(f"the server answered {status}: {body[:300]!r}")
        if time.perf_counter() > deadline:
            raise RuntimeError("the server did not answer in time")
        time.sleep(poll_seconds)


def worker_pids(master_pid: int) -> list[int]:
    """gunicorn's worker processes: the children of the master."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            children.append(int(entry))
    return sorted(children)


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` size field (VmHWM, VmRSS...) in KiB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def percentile(ordered: list, fraction: float):
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0
    rank = max(1, int(round(fraction * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]
