"""Load held against Stardex's limit: signed webhooks at a steady rate, then a spike of ten times
that, then the steady rate again, sent open-loop (each at its time, whatever the answers do) to
the real function (``functions-framework``, ``DELIVERY=sync``) in front of the loopback fake
Stardex enforcing 60 requests per window.

Stardex's window is scaled from 60 s (``--window``, default 10 s: the fake's ``window_seconds``
and the function's ``STARDEX_RATE_WINDOW_SECONDS``) so that a run takes about a minute, not an
hour; 60 per window stays the limit. Each webhook is a ``generic`` event naming its own stored
person (one PATCH), so what Stardex applied can be read back from the fake person by person.

What is counted (and checked by ``problems``): no 500; every request answered (none lost, none
timed out); every 503 with a ``Retry-After``; the persons Stardex changed = the answers
``updated`` (+ ``no_change``; + at most the 503s ``stardex_unavailable``, whose PATCH may have
landed before the deadline cut its answer), and those + the 503s = the events sent. The RSS of the gunicorn
worker is sampled every ``--sample`` seconds; its slope (least squares, after the first sixth of
the run, and from the moment the spike's last webhook was answered) says whether memory stays flat. The time each answer
took is reported, never judged: during the spike, webhooks wait in gunicorn's queue and in the
limiter (each within its own deadline, which starts once its body is read).

``--delivery queued``: the public function only verifies and enqueues (gcloud-tasks-emulator,
fake-gcs-server, the worker ``--target=handle_task``, as in ``bench/queued.py``), so the spike is
answered ``queued`` and the worker applies it at the limit's pace. Checked then: the ``queued``
answers + the 503s = the events sent, the worker settled every queued event, and Stardex applied
each once. The RSS sampled is the public function's worker's.

    python bench/soak.py [--rate 3] [--spike 10] [--steady 60] [--spike-seconds 10] [--window 10]
                         [--deadline 4] [--limit 60] [--delivery sync|queued]   # one JSON result on stdout
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from queued import TimedStardex  # noqa: E402  (the fake Stardex, counting what its limit refused)

LIMIT = 60  # Stardex's requests per window, per key
TARGET_SLOPE_MIB_PER_MINUTE = 1.0


def event(index: int) -> tuple[bytes, dict[str, str]]:
    """A signed ``generic`` event for person ``soak-<index>``: one PATCH of its job title."""
    body = json.dumps({"type": "candidate.updated", "stardex_person_id": f"soak-{index:05d}",
                       "current_job_title": f"Soak title {index}"}).encode()
    return body, common.signed_headers("generic", body)


def post(port: int, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, dict, str | None, float]:
    """One POST on its own connection: status, JSON answer, Retry-After, seconds until answered.
    Status 0: no answer (refused, reset or timed out)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", "/generic", body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read()
        try:
            document = json.loads(text)
        except ValueError:
            document = {"status": "not_json"}
        return answer.status, document, answer.getheader("Retry-After"), time.monotonic() - started
    except OSError as error:
        return 0, {"status": "no_answer", "error": type(error).__name__}, None, time.monotonic() - started
    finally:
        connection.close()


def schedule(rate: float, spike: float, steady_seconds: float, spike_seconds: float) -> list[float]:
    """Send times (seconds from the start): steady, spike (``spike`` × rate), steady again."""
    times: list[float] = []
    for start, seconds, per_second in ((0.0, steady_seconds / 2, rate),
                                       (steady_seconds / 2, spike_seconds, rate * spike),
                                       (steady_seconds / 2 + spike_seconds, steady_seconds / 2, rate)):
        count = int(round(seconds * per_second))
        times += [start + index / per_second for index in range(count)]
    return times


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per minute; 0 with fewer than two samples."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_v = sum(v for _, v in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread if spread else 0.0


@contextlib.contextmanager
def function(env: dict[str, str], log: Path):
    """The function as Cloud Functions runs it; yields (port, gunicorn's master process)."""
    port = common.free_port()
    process = common.start_server(common.MAIN_PY, port, env, log)
    try:
        stop = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if common.exchange(port, b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n", timeout=1)[0] == 200:
                    break
            if process.poll() is not None or time.monotonic() > stop:
                raise RuntimeError(f"the function did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield port, process
    finally:
        common.stop_process(process)


@contextlib.contextmanager
def queued_function(env: dict[str, str], scratch: Path):
    """``DELIVERY=queued``: the emulators (``tests/fakes/emulators.py``), the worker
    (``--target=handle_task``) and the public function; yields (port, master, the worker's log)."""
    from queued import BUCKET, QUEUE, server
    from tests.fakes.emulators import storage_emulator, tasks_emulator

    with contextlib.ExitStack() as exits:
        env = {**env, "STATE_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": exits.enter_context(storage_emulator(BUCKET)),
               "TASKS_QUEUE": QUEUE, "CLOUD_TASKS_ENDPOINT": exits.enter_context(tasks_emulator(QUEUE)),
               "TASK_DEADLINE_SECONDS": "30"}
        worker_log = scratch / "worker.log"
        worker_url = exits.enter_context(server("handle_task", env, worker_log))
        port, master = exits.enter_context(function(
            {**env, "DELIVERY": "queued", "TASKS_WORKER_URL": worker_url + "/",
             "TASKS_SERVICE_ACCOUNT": "tasks@bench.iam.gserviceaccount.com"}, scratch / "public.log"))
        yield port, master, worker_log


def run(rate: float = 3.0, spike: float = 10.0, steady_seconds: float = 60.0, spike_seconds: float = 10.0,
        window_seconds: float = 10.0, deadline_seconds: float = 4.0, sample_seconds: float = 1.0,
        limit: int = LIMIT, delivery: str = "sync") -> dict:
    times = schedule(rate, spike, steady_seconds, spike_seconds)
    worker_outcomes: dict[str, int] = {}
    with contextlib.ExitStack() as exits:
        scratch = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
        stardex = exits.enter_context(TimedStardex(api_key=common.STARDEX_KEY, rate_limit=limit,
                                                   window_seconds=window_seconds))
        for index in range(len(times)):
            stardex.add_person(id=f"soak-{index:05d}", name=f"Soak Person{index}", current_job_title="Before")
        env = {**common.function_environment(stardex.base_url), "STARDEX_REQUESTS_PER_MINUTE": str(limit),
               "STARDEX_RATE_WINDOW_SECONDS": str(window_seconds), "STARDEX_DEADLINE_SECONDS": str(deadline_seconds)}
        if delivery == "queued":
            port, master, worker_log = exits.enter_context(queued_function(env, scratch))
        else:
            (port, master), worker_log = exits.enter_context(function(env, scratch / "function.log")), None
        [worker] = common.worker_pids(master.pid)

        rss: list[tuple[float, float]] = []
        stop_sampling = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not stop_sampling.is_set():
                with contextlib.suppress(OSError, KeyError):
                    rss.append((time.monotonic() - started, common.status_kib(worker, "VmRSS") / 1024))
                stop_sampling.wait(sample_seconds)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        answer_timeout = deadline_seconds + 60  # a late answer is still an answer; none is a lost one
        with concurrent.futures.ThreadPoolExecutor(max(16, int(rate * spike * (deadline_seconds + 2)))) as pool:
            futures, sent = [], []
            for index, at in enumerate(times):
                delay = started + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent.append(event(index))  # signed as it is sent: a signed timestamp is valid for five minutes
                futures.append(pool.submit(post, port, *sent[-1], answer_timeout))
            answers = [future.result() for future in futures]
        seconds = time.monotonic() - started
        if worker_log is not None:  # the queue owns the queued events now: wait (bounded) until each is settled
            from tests.fakes.emulators import final_outcomes

            wanted = {headers["webhook-id"] for (_, headers), (status, document, _, _) in zip(sent, answers)
                      if status == 200 and document.get("status") == "queued"}
            stop = time.monotonic() + len(wanted) / limit * window_seconds * 2 + 60
            while True:
                settled = final_outcomes(worker_log.read_text(errors="replace"), wanted)
                if set(settled) == wanted or time.monotonic() > stop:
                    break
                time.sleep(0.5)
            for outcome in settled.values():
                worker_outcomes[outcome] = worker_outcomes.get(outcome, 0) + 1
            worker_outcomes["unsettled"] = len(wanted) - len(settled)
        drained_seconds = time.monotonic() - started
        stop_sampling.set()
        sampler.join()
        applied = sum(1 for index in range(len(times))
                      if stardex.person(f"soak-{index:05d}")["current_job_title"] == f"Soak title {index}")
        refused = stardex.refused

    statuses: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    for status, document, _, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        key = document.get("reason") or document.get("status") if status != 200 else document.get("status")
        outcomes[f"{status} {key}"] = outcomes.get(f"{status} {key}", 0) + 1
    if delivery == "queued":  # what the sender was told is "queued"; what became of it, the worker says
        updated, no_change = worker_outcomes.get("updated", 0), 0
    else:
        updated = outcomes.get("200 updated", 0)
        no_change = sum(1 for status, document, _, _ in answers if status == 200 and document.get("reason") == "no_change")
    retry_later = [retry for status, _, retry, _ in answers if status == 503]
    latencies = sorted(latency for *_, latency in answers)
    warm = [point for point in rss if point[0] >= seconds / 6]
    # Memory after the spike: from the moment its last webhook was answered (its backlog drained).
    spike_end = steady_seconds / 2 + spike_seconds
    drained_at = max((at + latency for at, (*_, latency) in zip(times, answers) if at < spike_end), default=spike_end)
    after_spike = [point for point in rss if point[0] >= drained_at]
    result = {
        "mode": delivery,
        "limit": f"{limit} per {window_seconds:g} s",
        "steady_rate": rate,
        "spike_rate": rate * spike,
        "spike_seconds": spike_seconds,
        "seconds": round(seconds, 1),
        "drained_seconds": round(drained_seconds, 1),
        "sent": len(times),
        "statuses": dict(sorted(statuses.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "worker_outcomes": worker_outcomes,
        "updated": updated,
        "no_change": no_change,
        "applied_in_stardex": applied,
        "retry_later": len(retry_later),
        "retry_later_without_retry_after": sum(1 for retry in retry_later if not retry),
        "unanswered": statuses.get("0", 0),
        "refused_by_stardex_limit": refused,
        "answer_seconds": {"p50": round(common.percentile(latencies, 0.5), 2),
                           "p99": round(common.percentile(latencies, 0.99), 2),
                           "max": round(latencies[-1], 2) if latencies else 0.0},
        "rss_mib": {"first": round(rss[0][1], 1) if rss else 0.0, "last": round(rss[-1][1], 1) if rss else 0.0,
                    "peak": round(max(v for _, v in rss), 1) if rss else 0.0, "samples": len(rss)},
        "rss_slope_mib_per_minute": round(slope_per_minute(warm), 3),
        "rss_slope_after_spike_mib_per_minute": round(slope_per_minute(after_spike), 3),
        "spike_drained_at_seconds": round(drained_at, 1),
        "rss_samples": [[round(t, 1), round(v, 2)] for t, v in rss],
        "target_slope_mib_per_minute": TARGET_SLOPE_MIB_PER_MINUTE,
    }
    result["problems"] = problems(result)
    return result


def problems(result: dict) -> list[str]:
    """What makes the run unsound: an answer docs/contract.md does not allow, or an event unaccounted for."""
    found = []
    if result["unanswered"]:
        found.append(f"{result['unanswered']} requests got no answer")
    other = {status: n for status, n in result["statuses"].items() if status not in ("200", "503")}
    if other:
        found.append(f"answers other than 200 or 503: {other}")
    if result["mode"] == "queued":
        queued = result["outcomes"].get("200 queued", 0)
        if queued + result["retry_later"] != result["sent"]:
            found.append(f"{result['sent']} sent, {queued} queued + {result['retry_later']} answered 503")
        if result["worker_outcomes"].get("unsettled") or result["applied_in_stardex"] != result["updated"] \
                or result["updated"] != queued:
            found.append(f"{queued} queued, the worker settled {result['worker_outcomes']}, "
                         f"Stardex applied {result['applied_in_stardex']}")
        return found
    if result["retry_later_without_retry_after"]:
        found.append(f"{result['retry_later_without_retry_after']} answers 503 without Retry-After")
    told = result["updated"] + result["no_change"]
    # A PATCH whose answer the deadline cut may have landed (answered 503 stardex_unavailable): the
    # sender's retry applies it again, harmlessly. Nothing else may differ.
    unsure = result["outcomes"].get("503 stardex_unavailable", 0)
    if not told <= result["applied_in_stardex"] <= told + unsure:
        found.append(f"Stardex applied {result['applied_in_stardex']} events, the senders were told "
                     f"{result['updated']} updated + {result['no_change']} no_change ({unsure} unsure)")
    if result["updated"] + result["no_change"] + result["retry_later"] != result["sent"]:
        found.append(f"{result['sent']} sent, {result['updated'] + result['no_change']} applied + "
                     f"{result['retry_later']} answered 503")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=3.0, help="steady webhooks per second")
    parser.add_argument("--spike", type=float, default=10.0, help="the spike, as a multiple of the steady rate")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds at the steady rate (half before the spike)")
    parser.add_argument("--spike-seconds", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=10.0, help="Stardex's window, seconds (60 requests in it)")
    parser.add_argument("--deadline", type=float, default=4.0, help="STARDEX_DEADLINE_SECONDS")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between RSS samples")
    parser.add_argument("--limit", type=int, default=LIMIT, help="Stardex's requests per window (60, as Stardex)")
    parser.add_argument("--delivery", choices=("sync", "queued"), default="sync")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rate, args.spike, args.steady, args.spike_seconds, args.window, args.deadline,
                         args.sample, args.limit, args.delivery)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
