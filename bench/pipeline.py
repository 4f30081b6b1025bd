"""Pipeline cost per webhook, in-process, network excluded. Run by ``bench/run.py`` in a fresh
interpreter per variant; prints one JSON document.

    python bench/pipeline.py --variant shipped --iterations 3000

Each iteration runs, for each signed body in turn (round-robin, so that a slow moment of a shared
machine falls on every body alike), the stages ``WebhookApp`` runs, in its order and on the objects
it built at start, each timed with ``perf_counter_ns``:

* verify   — read the source's signing keys (cached settings) and check the signature;
* parse    — decode the JSON body into the source's event;
* map      — the JMESPath mapping file applied to the payload (transforms included);
* validate — the update body against ``schemas/person_update.schema.json``;
* build    — find the person, merge contact lists, build each Stardex request (URL, headers, JSON
             body) and read its answer: ``WebhookApp._deliver`` with the client's HTTP session
             replaced by one that answers at once from memory, so no socket is touched.

``total`` is their sum for the iteration. ``handle`` is measured separately: the whole
``WebhookApp.handle`` on a Werkzeug request built from a WSGI environ, i.e. the above plus reading
the request, the answer object and the JSON log line (written to a null stream).

Variants replace the two hand-built speed-ups with the plain libraries, to show whether they are
needed: ``plain-jmespath`` (mapping paths searched by ``jmespath``'s own interpreter),
``plain-jsonschema`` (every body validated by ``jsonschema`` alone), ``plain-both``.

With ``--uncached`` the per-process caches of phone-number parsing and email syntax checks are
cleared before every iteration: the cost of a webhook whose addresses this instance never saw.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

STAGES = ("verify", "parse", "map", "validate", "build")
VARIANTS = ("shipped", "plain-jmespath", "plain-jsonschema", "plain-both")


class _Answer:
    """Just enough of ``requests.Response`` for ``StardexClient``."""

    def __init__(self, body: object) -> None:
        self.status_code = 200
        self.headers: dict[str, str] = {}
        self.reason = "OK"
        self._text = json.dumps(body)

    def json(self) -> object:
        return json.loads(self._text)


class InMemorySession:
    """Stands in for ``requests.Session``: answers the way the bench's fake Stardex does, at once.
    It records each call, so the bench can check the calls made."""

    def __init__(self) -> None:
        from fake_stardex import STORED_PERSON

        self.headers: dict[str, str] = {}
        self.calls: list[str] = []
        self._get = _Answer({"success": True, "data": STORED_PERSON})
        self._patch = _Answer({"success": True, "data": {"id": STORED_PERSON["id"]}})
        self._search = _Answer({"success": True, "data": [{"id": STORED_PERSON["id"]}]})

    def request(self, method, url, data=None, headers=None, timeout=None, **_):
        self.calls.append(method)
        if method == "GET":
            return self._get
        if method == "PATCH":
            return self._patch
        return self._search


class NullStream(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def apply_variant(variant: str) -> None:
    """Swap a hand-built speed-up for the plain library, before the app compiles its mappings."""
    if variant in ("plain-jmespath", "plain-both"):
        from stardex_webhook import mapping

        mapping.compile_expression = lambda ast: (lambda value: mapping._INTERPRETER.visit(ast, value))
    if variant in ("plain-jsonschema", "plain-both"):
        from stardex_webhook import validation

        validation._FAST_CHECK = None


def build_app():
    from stardex_webhook.app import WebhookApp
    from stardex_webhook.logs import JsonLog
    from stardex_webhook.stardex import RateLimiter, StardexClient

    env = common.function_environment("https://stardex.invalid/v1")
    app = WebhookApp.from_environment(env)
    session = InMemorySession()
    limiter = RateLimiter(int(common.BENCH_REQUESTS_PER_MINUTE))
    app._client = StardexClient(app._settings.stardex_api_base, app._api_key, limiter, session=session)
    app._log = JsonLog(app._settings.log_level, stream=NullStream())
    return app, session


def clear_caches() -> None:
    from stardex_webhook import transforms, validation

    transforms._e164.cache_clear()
    validation._is_email_text.cache_clear()


class Body:
    """One signed body and what the stages need for it, prepared once."""

    def __init__(self, app, name: str) -> None:
        from stardex_webhook.config import signing_key_name
        from werkzeug.test import EnvironBuilder

        if name.startswith("kind:"):
            kind = name.split(":", 1)[1]
            self.source_name, self.body = common.KIND_SOURCE[kind], common.kind_body(kind)
        else:
            self.source_name, self.body = name, common.sample_body(name)
        self.name = name
        headers = common.signed_headers(self.source_name, self.body)
        self.header_items = list(headers.items()) + [("Host", "127.0.0.1"), ("Content-Length", str(len(self.body)))]
        self.source = app._sources[self.source_name]
        self.mapping = app._mappings[self.source_name]
        self.key_name = signing_key_name(self.source_name)
        self.environ = EnvironBuilder(path=f"/{self.source_name}", method="POST", data=self.body, headers=headers,
                                      base_url="http://127.0.0.1:8080").get_environ()
        self.samples: dict[str, list[int]] = {stage: [] for stage in (*STAGES, "total", "handle")}
        self.first: dict | None = None
        self.handle_status: int | None = None


def measure_stages(app, session, body: Body, record: bool, uncached: bool) -> None:
    from stardex_webhook.deadline import Deadline
    from stardex_webhook.sources.base import Delivery, Headers
    from stardex_webhook.validation import validate_update

    now = time.perf_counter_ns
    if uncached:
        clear_caches()
    session.calls.clear()
    delivery = Delivery(headers=Headers(body.header_items), body=body.body, received_at=time.time())
    t0 = now()
    body.source.verify(delivery, app._secrets.get_keys(body.key_name), delivery.received_at)
    t1 = now()
    event = body.source.parse(delivery)
    t2 = now()
    mapped = body.mapping.apply(event.payload)
    t3 = now()
    validate_update(mapped.update)
    t4 = now()
    answer = app._deliver(mapped, {}, Deadline(app._settings.stardex_deadline_seconds))
    t5 = now()
    if record:
        for stage, start, end in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
            body.samples[stage].append(end - start)
        body.samples["total"].append(t5 - t0)
    if body.first is None:
        body.first = {"answer": answer, "calls": list(session.calls)}


def measure_handle(app, body: Body, record: bool, uncached: bool) -> None:
    from flask import Request

    if uncached:
        clear_caches()
    environ = dict(body.environ)
    environ["wsgi.input"] = io.BytesIO(body.body)
    request = Request(environ)
    t0 = time.perf_counter_ns()
    response = app.handle(request)
    t1 = time.perf_counter_ns()
    if record:
        body.samples["handle"].append(t1 - t0)
    body.handle_status = response.status_code


def summary(values: list[int]) -> dict:
    ordered = sorted(values)

    def pick(fraction: float) -> float:
        rank = max(1, int(round(fraction * len(ordered) + 0.4999)))
        return ordered[min(rank, len(ordered)) - 1] / 1000.0

    return {"p50_us": pick(0.50), "p99_us": pick(0.99), "mean_us": sum(ordered) / len(ordered) / 1000.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=VARIANTS, default="shipped")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--uncached", action="store_true")
    parser.add_argument("--bodies", default=",".join(common.SOURCES),
                        help="comma-separated: source names (their shipped sample) and/or kind:patch, kind:merge")
    args = parser.parse_args(argv)

    os.environ.pop("LOG_LEVEL", None)
    apply_variant(args.variant)
    app, session = build_app()
    bodies = [Body(app, name) for name in args.bodies.split(",")]
    # Round-robin over the bodies, stages then handle(), so that a slow moment of a shared machine
    # falls on every body alike instead of on whichever was being measured.
    gc.collect()
    for index in range(args.warmup + args.iterations):
        record = index >= args.warmup
        for body in bodies:
            measure_stages(app, session, body, record, args.uncached)
            measure_handle(app, body, record, args.uncached)
    results = {}
    for body in bodies:
        results[body.name] = {
            "source": body.source_name,
            "stages": {stage: summary(body.samples[stage]) for stage in (*STAGES, "total")},
            "handle": summary(body.samples["handle"]),
            "handle_status": body.handle_status,
            "answer": body.first["answer"],
            "calls": body.first["calls"],
        }
    print(json.dumps({"variant": args.variant, "uncached": args.uncached, "iterations": args.iterations,
                      "bodies": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
