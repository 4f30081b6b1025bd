"""Memory of one instance after many distinct large persons: the person memory is bounded in bytes.

The real function (``functions-framework``, ``DELIVERY=sync``, the person memory on as deployed:
``PERSON_MEMORY_SECONDS`` unset) in front of the loopback fake Stardex holding ``--persons``
distinct persons, each with four text fields of ``--field-chars`` characters that GET returns. One signed Typeform webhook per person (its hidden
``stardex_person_id``; it carries an email and a phone, so the function reads the person, merges
and PATCHes), sent from ``--threads`` threads. The serving worker's RSS is read after a warm-up of
20 persons and at the end, with its peak (``VmHWM``); a bound by count alone (2,000 persons) would
hold persons × the size of one in memory.

    python bench/large_persons.py [--persons 2000] [--field-chars 50000] [--threads 8]   # one JSON result on stdout
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from stardex_webhook.fake_stardex import FakeStardex  # noqa: E402
from stardex_webhook.resolver import MEMORY_BYTES, size_in_bytes  # noqa: E402

LARGE_FIELDS = ("linkedin_headline", "address", "linkedin_location", "current_job_title")
WARM_UP = 20


def large_person(index: int, chars: int) -> dict:
    return {"name": f"Large Person {index}", **{field: f"{field} {index} " + "x" * chars for field in LARGE_FIELDS}}


def webhook(person_id: str) -> tuple[bytes, dict[str, str]]:
    document = json.loads(common.sample_body("typeform"))
    document["form_response"]["hidden"]["stardex_person_id"] = person_id
    body = json.dumps(document).encode()
    return body, common.signed_headers("typeform", body)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    return round(common.status_kib(pid, field) / 1024, 1)


def run(persons: int, field_chars: int, threads: int) -> dict:
    with FakeStardex(api_key=common.STARDEX_KEY, rate_limit=10 ** 8) as stardex, \
            tempfile.TemporaryDirectory(prefix="stardex-large-persons-") as scratch:
        ids = [stardex.add_person(**large_person(index, field_chars)) for index in range(WARM_UP + persons)]
        env = common.function_environment(stardex.base_url)
        env.pop("PERSON_MEMORY_SECONDS", None)  # the memory on, as deployed
        port = common.free_port()
        process = common.start_server(common.MAIN_PY, port, env, Path(scratch) / "function.log")
        try:
            health = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
            common.wait_for_200(port, health, process)
            [worker] = common.worker_pids(process.pid)
            answers: dict[str, int] = {}

            def send(person_id: str) -> None:
                body, headers = webhook(person_id)
                with contextlib.suppress(OSError):
                    status, answer = common.exchange(port, common.raw_request("/typeform", body, headers, port), timeout=60)
                    outcome = json.loads(answer).get("status") if status == 200 else f"HTTP {status}"
                    answers[outcome] = answers.get(outcome, 0) + 1
                    return
                answers["no_answer"] = answers.get("no_answer", 0) + 1

            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                list(pool.map(send, ids[:WARM_UP]))
                before = rss_mib(worker)
                started = time.monotonic()
                list(pool.map(send, ids[WARM_UP:]))
                seconds = time.monotonic() - started
            after, peak = rss_mib(worker), rss_mib(worker, "VmHWM")
        finally:
            common.stop_process(process)
    one = size_in_bytes(stardex.person(ids[0]))
    return {
        "persons": persons, "field_chars": field_chars, "fields": len(LARGE_FIELDS), "threads": threads,
        "person_in_memory_mib": round(one / 2 ** 20, 2),
        "held_by_a_count_bound_mib": round(min(persons, 2000) * one / 2 ** 20),
        "memory_bound_mib": MEMORY_BYTES // 2 ** 20,
        "rss_after_warm_up_mib": before, "rss_after_mib": after, "rss_peak_mib": peak,
        "rss_growth_mib": round(after - before, 1), "seconds": round(seconds, 1),
        "answers": answers, "problems": [] if answers == {"updated": persons + WARM_UP} else [f"answers: {answers}"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--field-chars", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.persons, args.field_chars, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
