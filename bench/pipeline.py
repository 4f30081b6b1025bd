"""CPU per webhook, in-process, network excluded. Run by ``bench/run.py`` in a fresh interpreter;
prints one JSON document.

    python bench/pipeline.py --iterations 2000 --warmup 300

For each source's shipped sample, signed for real, the whole ``Ingress.handle`` (``main.handle_webhook``) on a Werkzeug
request (reading the request, signature, mapping, validation, person resolution, contact merge,
every Stardex request built and its answer read, the answer and the log line), timed with
``perf_counter_ns``; round-robin over the samples, so a slow moment of a shared machine falls on
each alike. Stardex answers from memory: the client's ``requests`` session is replaced by one
that answers at once, so no socket is touched and ``requests``' own work per call is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import sys
import time
from pathlib import Path

import requests
import urllib3
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import common  # noqa: E402
from stardex_webhook.ingress import Ingress  # noqa: E402
from stardex_webhook.contacts import phone_id  # noqa: E402
from stardex_webhook.pipeline import Pipeline  # noqa: E402
from stardex_webhook.transforms import e164  # noqa: E402

BASE_URL = "https://stardex.invalid/v1"  # never reached: the session answers


class InMemoryStardex(requests.Session):
    """Stands in for the Stardex client's session: answers each call the samples make as Stardex
    would, at once, with a genuine ``requests.Response`` over a urllib3 body (however the client
    reads it), and records its method. ``requests``' own per-call work (preparing the request,
    cookies, hooks) is left out with the network: it is the floor's as much as ours."""

    ANSWERS = {
        "GET": {"success": True, "data": common.STORED_PERSON},
        "PATCH": {"success": True, "data": {"message": "Person updated successfully"}},
        "POST": {"success": True, "data": [common.STORED_PERSON], "meta": {"total": 1, "offset": 0, "limit": 2}},
    }

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._bodies = {method: json.dumps(answer).encode() for method, answer in self.ANSWERS.items()}
        self._ready: dict[str, list[requests.Response]] = {method: [] for method in self.ANSWERS}

    def prepare(self, each: int = 2) -> None:
        """Build the next answers before a webhook is timed: making a ``requests.Response`` is
        urllib3's and ``requests``' work (the connection pool's, the adapter's), not ours."""
        for method, ready in self._ready.items():
            while len(ready) < each:
                ready.append(self._answer(method))

    def _answer(self, method: str) -> requests.Response:
        body = self._bodies[method]
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        response = requests.Response()
        response.status_code, response.reason, response.encoding = 200, "OK", "utf-8"
        response.headers.update(headers)
        response.raw = urllib3.HTTPResponse(io.BytesIO(body), headers=headers, status=200, preload_content=False)
        return response

    def request(self, method, url, *args, **kwargs):
        self.calls.append(method)
        ready = self._ready[method]
        response = ready.pop() if ready else self._answer(method)
        response.url = url
        return response


class CannedSenderApi:
    """Stands in for a sender's API client: the follow-up read is excluded from the pipeline's
    figures (it is the sender's latency), so it answers the shipped ``<source>.api.json`` at once."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def read(self, deadline, follow_up) -> object:
        return self.answer


class BenchPipeline(Pipeline):
    """The pipeline as ``main.py`` builds it, with each sender's API answering its canned sample
    (read once, before anything is timed)."""

    CANNED = {source: CannedSenderApi(answer) for source, answer in
              ((source, common.api_sample(source)) for source in common.SOURCES) if answer is not None}

    def sender_api(self, source):
        return self.CANNED.get(source.name) or super().sender_api(source)


def build_app() -> tuple[Ingress, InMemoryStardex]:
    """The webhook door as ``main.py`` builds it, its Stardex client's session answering from
    memory and each sender API answering its canned sample."""
    pipeline = BenchPipeline.from_environment(common.function_environment(BASE_URL))
    stardex = InMemoryStardex()
    pipeline.stardex().session = stardex
    return Ingress(pipeline), stardex


def forget_numbers() -> None:
    """Each event here repeats its sample's numbers, where real events bring new people: the phone
    caches start empty for every event, so only what one event repeats is found there."""
    phone_id.cache_clear()
    e164.cache_clear()


class Sample:
    """One shipped sample, signed, as a WSGI environ to rebuild a request from."""

    def __init__(self, source: str) -> None:
        self.source = source
        headers, self.body = common.signed(source, common.sample_body(source))
        self.environ = EnvironBuilder(path=f"/{source}", method="POST", data=self.body, headers=headers,
                                      base_url="http://127.0.0.1:8080").get_environ()
        self.times_ns: list[int] = []
        self.answer: dict | None = None
        self.status = 0
        self.calls: list[str] = []

    def handle(self, app: Ingress, stardex: InMemoryStardex, record: bool) -> None:
        request = Request({**self.environ, "wsgi.input": io.BytesIO(self.body)})
        stardex.calls.clear()
        stardex.prepare()
        forget_numbers()
        started = time.perf_counter_ns()
        response = app.handle(request)
        elapsed = time.perf_counter_ns() - started
        if record:
            self.times_ns.append(elapsed)
        if self.answer is None:
            self.status, self.answer, self.calls = response.status_code, response.get_json(), list(stardex.calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args(argv)

    app, stardex = build_app()
    samples = [Sample(source) for source in common.SOURCES]
    gc.collect()
    with contextlib.redirect_stdout(io.StringIO()) as log:  # the log line is written, then dropped
        for index in range(args.warmup + args.iterations):
            for sample in samples:
                sample.handle(app, stardex, record=index >= args.warmup)
            log.seek(0)
            log.truncate()
    results = {}
    for sample in samples:
        ordered = sorted(sample.times_ns)
        results[sample.source] = {"p50_us": common.percentile(ordered, 0.5) / 1000,
                                  "p99_us": common.percentile(ordered, 0.99) / 1000,
                                  "status": sample.status, "answer": sample.answer, "calls": sample.calls}
    print(json.dumps({"iterations": args.iterations, "warmup": args.warmup, "samples": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
