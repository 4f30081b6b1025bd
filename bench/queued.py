"""A burst drained through the queue: how much of Stardex's budget queued delivery uses.

200 Greenhouse hires (each a search and a PATCH: 2 Stardex calls) are sent at once to the public
function in ``DELIVERY=queued`` while the queue is paused, as an outage or a burst faster than any
budget leaves them; the queue is then resumed, and gcloud-tasks-emulator dispatches them to the
worker (``--target=handle_task``), which delivers them through the loopback fake Stardex at its
limit. That limit is scaled (50 requests in any 5 s, the worker's limiter at 49 in the same window)
so the backlog drains in under a minute, not in seven.

Two things of this one machine are kept out of the measure, because neither exists in Google's
cloud (bench/README.md shows what each did to the row). Cloud Tasks sends a queue's tasks many at
a time; the emulator sends one and waits for its answer, so each task's own time caps its rate: the
scale leaves that cap well ahead of the budget (``--limit 100000 --worker-limit 99999`` shows the cap). And the emulator
is one Python process that takes new tasks and dispatches old ones in turn, on the same cores as
the sending threads and the public function: the pause keeps the sending out of the drain.

Budget used while the backlog lasts: the calls in a window of Stardex's length over its limit,
averaged over every window from the first accepted call to the last (bench/README.md says why an
average, and why the fake's ``X-RateLimit-Reset`` steps by 1/60 of the window here).
Every event must be accounted for: the senders' answers (no 503) and the worker's final outcome of
each (applied, ignored or dead-lettered) add up to the events sent.

    python bench/queued.py [--events 200] [--limit 50 --window 5 --worker-limit 49]    # one JSON result
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from stardex_webhook.fake_stardex import FakeStardex  # noqa: E402
from tests.fakes.emulators import final_outcomes, storage_emulator, tasks_emulator  # noqa: E402

BUCKET = "bench-state"
QUEUE = "projects/bench/locations/here/queues/stardex-webhook"
LIMIT, WINDOW_SECONDS, WORKER_LIMIT = 50, 5.0, 49
TARGET_BUDGET_USED = 0.95


class TimedStardex(FakeStardex):
    """The fake Stardex, noting when it accepted each request and how many its limit refused."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.accepted_at: list[float] = []
        self.refused = 0
        self._times = threading.Lock()

    def _count_request(self, key: str) -> dict[str, str]:
        try:
            headers = super()._count_request(key)
        except Exception:
            self.refused += 1
            raise
        with self._times:
            self.accepted_at.append(time.monotonic())
        return headers


def hire(index: int) -> bytes:
    body = json.loads(common.sample_body("greenhouse"))
    candidate = copy.deepcopy(body["payload"]["application"]["candidate"])
    candidate.update(first_name=f"Burst{index}", last_name="Candidate", phone_numbers=[],
                     email_addresses=[{"value": f"burst{index}@bench-example.org", "type": "personal"}],
                     social_media_addresses=[{"value": f"https://www.linkedin.com/in/burst-{index}"}])
    body["payload"]["application"]["candidate"] = candidate
    return json.dumps(body).encode()


@contextlib.contextmanager
def paused(endpoint: str, queue: str):
    """The queue paused, then resumed: through Cloud Tasks' own API, as an operator would."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(endpoint)))
    client.pause_queue(name=queue)
    try:
        yield
    finally:
        client.resume_queue(name=queue)
        client.transport.close()


@contextlib.contextmanager
def server(target: str, env: dict[str, str], log: Path):
    """functions-framework's gunicorn server (``common.server_command``) for ``target``."""
    port = common.free_port()
    command = [arg if arg != "--target=handle_webhook" else f"--target={target}"
               for arg in common.server_command(common.MAIN_PY, port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=common.ROOT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        stop = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            if process.poll() is not None or time.monotonic() > stop:
                raise RuntimeError(f"{target} did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        common.stop_process(process)


def send(url: str, index: int) -> int:
    body = hire(index)
    headers = {**common.signed_headers("greenhouse", body), "Greenhouse-Event-ID": f"burst-{index:04d}"}
    request = urllib.request.Request(f"{url}/greenhouse", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["status"]
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"


def run(events: int, limit: int = LIMIT, window_seconds: float = WINDOW_SECONDS,
        worker_limit: int = WORKER_LIMIT) -> dict:
    with contextlib.ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-queued-")))
        gcs_url = exits.enter_context(storage_emulator(BUCKET))
        tasks_endpoint = exits.enter_context(tasks_emulator(QUEUE))
        stardex = exits.enter_context(TimedStardex(api_key=common.STARDEX_KEY, rate_limit=limit,
                                                   window_seconds=window_seconds))
        stardex.reset_step_seconds = window_seconds / 60  # whole seconds against 60 s, scaled
        for index in range(events):
            stardex.add_person(name=f"Burst{index} Candidate", emails=[f"burst{index}@bench-example.org"])
        env = {**common.function_environment(stardex.base_url), "STATE_BUCKET": BUCKET,
               "STORAGE_EMULATOR_HOST": gcs_url, "TASKS_QUEUE": QUEUE, "CLOUD_TASKS_ENDPOINT": tasks_endpoint,
               "STARDEX_REQUESTS_PER_MINUTE": str(worker_limit), "STARDEX_RATE_WINDOW_SECONDS": str(window_seconds),
               "TASK_DEADLINE_SECONDS": "30"}
        worker_log = scratch / "worker.log"
        worker_url = exits.enter_context(server("handle_task", env, worker_log))
        public_url = exits.enter_context(server("handle_webhook", {
            **env, "DELIVERY": "queued", "TASKS_WORKER_URL": worker_url + "/",
            "TASKS_SERVICE_ACCOUNT": "tasks@bench.iam.gserviceaccount.com"}, scratch / "public.log"))

        started = time.monotonic()
        with paused(tasks_endpoint, QUEUE), concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda index: send(public_url, index), range(events)))
        sent_seconds = time.monotonic() - started
        wanted = {f"burst-{index:04d}" for index in range(events)}
        stop = time.monotonic() + 300
        while True:
            outcomes = final_outcomes(worker_log.read_text(errors="replace"), wanted)
            if set(outcomes) == wanted or time.monotonic() > stop:
                break
            time.sleep(0.2)
        drained_seconds = time.monotonic() - started
        accepted = sorted(stardex.accepted_at)
        refused = stardex.refused
    span = accepted[-1] - accepted[0] if accepted else 0.0
    counts = {outcome: list(outcomes.values()).count(outcome) for outcome in ("updated", "ignored", "dead_lettered")}
    return {
        "events": events,
        "answers": {status: answers.count(status) for status in sorted(set(answers), key=str)},
        "outcomes": counts,
        "accounted": sum(counts.values()),
        "stardex_calls": len(accepted),
        "refused_by_stardex_limit": refused,
        "drain_seconds": round(span, 2),
        "sent_seconds": round(sent_seconds, 2),
        "drained_seconds": round(drained_seconds, 2),
        "limit": f"{limit} per {window_seconds:g} s (worker {worker_limit})",
        "budget_used": round(budget_used(accepted, limit, window_seconds), 4),
        "target_budget_used": TARGET_BUDGET_USED,
    }


def budget_used(accepted: list[float], limit: int, window_seconds: float) -> float:
    """The calls in a window of Stardex's length, over ``limit``, averaged over every such window
    that starts at or after the first call and ends by the last (the backlog waited all through
    each). An average over every start, so no alignment of windows with the bursts can flatter or
    spoil it: each call counts for the starts whose window holds it."""
    first, last_start = accepted[0], accepted[-1] - window_seconds
    if last_start <= first:
        return 0.0
    held = sum(max(0.0, min(at, last_start) - max(at - window_seconds, first)) for at in accepted)
    return held / (last_start - first) / limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--limit", type=int, default=LIMIT, help="Stardex's requests per window")
    parser.add_argument("--window", type=float, default=WINDOW_SECONDS, help="the window, in seconds")
    parser.add_argument("--worker-limit", type=int, default=WORKER_LIMIT, help="the worker's limiter per window")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.events, args.limit, args.window, args.worker_limit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
