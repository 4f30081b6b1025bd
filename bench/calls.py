"""Stardex calls per event, on a replayed trace. Run by ``bench/run.py`` in a fresh interpreter;
prints one JSON document.

    python bench/calls.py [--events 200] [--people 40]

Stardex's 60 calls a minute are the function's real ceiling, so this part counts calls, not time.
The trace: ``--events`` ATS and form events about ``--people`` people, built from the shipped
samples of every sender that has one (and needs no follow-up read from its own API): each event is
a sample with its person's values put in place of the sample's own (name, emails, phone, LinkedIn
URL, company, title, Stardex person id, event id), the senders taken in turn per person, a
person's events interleaved with the others' as an ATS sends them (created, stage moved, updated),
and every fourth event of a person a promotion (a new title, which the ATS then keeps sending).
The ATS events are stage events (Greenhouse ``candidate_stage_change``, Workable and Recruitee
``candidate_moved``) of one Stardex job, through stage tables in a ``MAPPINGS_DIR`` of the bench's
own: a person's first ATS event moves them to Screen (and attaches them to the job), and every
second one after it moves them on, the others repeat the stage they are at (as an ATS sends an
update beside a move). The Typeform events answer two custom fields (Notice period, text; Skills,
multi-select) that its mapping there writes. Each person is stored in the fake Stardex beforehand
with a name and an email only; the job and the custom fields exist there too.

The trace is replayed against the real function (``functions-framework`` serving ``main.py``, with
its default settings, the person memory included) and the loopback fake Stardex; the figure is the
number of requests the fake received divided by the number of events. Every event must be
answered 200 (``updated`` or ``ignored``), or the run is not sound.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import common  # noqa: E402
from stardex_webhook.config import signing_key_name  # noqa: E402
from stardex_webhook.fake_stardex import FakeStardex  # noqa: E402
from stardex_webhook.mapping import BUILTIN_MAPPINGS_DIR, load_mappings  # noqa: E402
from stardex_webhook.send_sample import signed_request  # noqa: E402
from stardex_webhook.sources import SOURCES  # noqa: E402
from stardex_webhook.records import Delivery, Headers  # noqa: E402

TARGET_CALLS_PER_EVENT = 1.3
FIRST_PERSON_ID = "0b5e0000-0000-4000-8000-"
# The Stardex job every ATS event of the trace is about, its pipeline, and the stage tables and
# custom fields of the bench's mapping files.
BENCH_JOB = "0b5e0000-0000-4000-9000-0000000a0b01"
PIPELINE = ("Sourced", "Screen", "Interview", "Offer", "Hired")
STAGE_EVENTS = {"greenhouse": "candidate_stage_change", "workable": "candidate_moved", "recruitee": "candidate_moved"}
MAPPING_SECTIONS = {
    "greenhouse": {"stages": {
        "events": ["candidate_stage_change"], "job": "payload.application.jobs[0].id", "jobs": {"300112": BENCH_JOB},
        "stage": "payload.application.current_stage.name", "occurred_at": "payload.application.last_activity_at",
        "table": {stage: stage for stage in PIPELINE}}},
    "workable": {"stages": {
        "events": ["candidate_moved"], "job": "data.job.shortcode", "jobs": {"7A1B2C3D4E": BENCH_JOB},
        "stage": "data.stage", "occurred_at": "data.updated_at", "table": {stage: stage for stage in PIPELINE}}},
    "recruitee": {"stages": {
        "events": ["candidate_moved"], "job": "payload.offer.id", "jobs": {"3301": BENCH_JOB},
        "stage": "payload.details.to_stage.name", "occurred_at": "created_at",
        "table": {stage: stage for stage in PIPELINE}}},
    "typeform": {"custom_fields": {
        "Notice period": {"path": "answers.notice_period.text", "transforms": ["trim"]},
        "Skills": {"path": "answers.skills.choices.labels"}}},
}
CUSTOM_FIELDS = (("Notice period", "text", ()), ("Skills", "multi-select", ("Python", "Go", "SQL")))


def trace_sources() -> list[str]:
    """Every registered sender with a shipped sample and no follow-up read of its own API."""
    return [name for name, source in SOURCES.items()
            if (common.SAMPLES / f"{name}.json").exists() and not source.needs_api_key]


def signing_key(source: str) -> str:
    return common.SIGNING_KEYS.get(source) or SOURCES[source].sample_key()


class Person:
    """One person of the trace, with the values every sender's form of them carries."""

    def __init__(self, index: int) -> None:
        self.id = f"{FIRST_PERSON_ID}{index:012d}"
        self.first, self.last = f"Bench{index:02d}", f"Person{index:02d}"
        self.email = f"bench.person{index:02d}@bench-example.com"
        self.work_email = f"bp{index:02d}@work-bench-example.com"
        self.phone = f"+44207183{index:04d}"
        self.linkedin = f"https://www.linkedin.com/in/bench-person-{index:02d}"
        self.company = f"Company {index:02d}"
        self.titles = ["Engineer", "Senior Engineer", "Staff Engineer", "Principal Engineer"]

    def stored(self) -> dict:
        return {"id": self.id, "name": f"{self.first} {self.last}", "emails": [self.email]}


class Template:
    """A sender's sample and the values in it that stand for its person (found by mapping it)."""

    def __init__(self, source: str, mappings: dict) -> None:
        self.source = source
        self.document = json.loads(common.sample_body(source))
        adapter = SOURCES[source]
        headers, wire_body = signed_request(source, common.sample_body(source), signing_key(source))
        event = adapter.parse(Delivery(Headers(headers.items()), wire_body, time.time()))
        mapped = mappings[source].apply(event.payload, event)
        update = mapped.update
        self.values: dict[str, str] = {}  # a sample value -> the name of the person's value
        for field, role in (("first_name", "first"), ("last_name", "last"), ("company_name", "company"),
                            ("current_job_title", "title"), ("linkedin_url", "linkedin")):
            if isinstance(update.get(field), str):
                self.values[update[field]] = role
        if isinstance(update.get("name"), str):
            self.values[update["name"]] = "name"
        emails = [entry["value"] for entry in update.get("emails", [])] + list(mapped.person.emails)
        for position, address in enumerate(dict.fromkeys(emails)):
            self.values[address] = "email" if position == 0 else "work_email"
        if mapped.person.id:
            self.values[mapped.person.id] = "id"
        self.phone_digits = [_digits(entry["value"])[-9:] for entry in update.get("phone_numbers", [])]

    def event(self, person: Person, title: str, number: int) -> bytes:
        values = {"first": person.first, "last": person.last, "name": f"{person.first} {person.last}",
                  "company": person.company, "title": title, "linkedin": person.linkedin, "email": person.email,
                  "work_email": person.work_email, "id": person.id}

        lowered = {key.casefold(): role for key, role in self.values.items()}

        def rewrite(node):
            if isinstance(node, dict):
                return {key: rewrite(value) for key, value in node.items()}
            if isinstance(node, list):
                return [rewrite(item) for item in node]
            if isinstance(node, str) and node.lstrip().startswith("{"):  # JSON in a string (Jotform's rawRequest)
                try:
                    inner = json.loads(node)
                except ValueError:
                    inner = None
                if isinstance(inner, dict):
                    return json.dumps(rewrite(inner))
            if isinstance(node, str):
                role = self.values.get(node) or lowered.get(node.strip().casefold())
                if role:
                    return values[role]
                if self.phone_digits and len(_digits(node)) >= 9 and _digits(node)[-9:] in self.phone_digits:
                    return person.phone
            return node

        document = rewrite(self.document)
        if isinstance(document, dict) and "event_id" in document:
            document["event_id"] = f"bench-event-{number}"
        return json.dumps(document).encode()


def with_stage(source: str, body: bytes, moves: int, number: int) -> bytes:
    """A stage event of ``source`` naming the stage a person's ``moves``-th ATS event reaches,
    or (Typeform) the submission with its two custom-field answers."""
    document = json.loads(body)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1775000000 + number * 60))
    stage = PIPELINE[min(1 + moves // 2, len(PIPELINE) - 1)]
    if source == "greenhouse":
        document["action"] = STAGE_EVENTS[source]
        document["payload"]["application"].update(current_stage={"id": 7, "name": stage}, last_activity_at=when)
    elif source == "workable":
        document["event_type"] = STAGE_EVENTS[source]
        document["data"].update(stage=stage, updated_at=when)
    elif source == "recruitee":
        document["payload"]["details"]["to_stage"]["name"], document["created_at"] = stage, when
    elif source == "typeform":
        for ref, kind, value in (("notice_period", "text", "3 months"), ("skills", "choices", {"labels": ["Python"]})):
            document["form_response"]["answers"].append(
                {"type": kind, kind: value, "field": {"id": f"bench-{ref}", "type": "short_text", "ref": ref}})
    return json.dumps(document).encode()


def mapping_overrides(folder: Path) -> None:
    """The built-in mapping files of the senders with a section above, with it, in ``folder``."""
    for source, sections in MAPPING_SECTIONS.items():
        document = json.loads((Path(BUILTIN_MAPPINGS_DIR) / f"{source}.json").read_text())
        (folder / f"{source}.json").write_text(json.dumps({**document, **sections}))


def _digits(text: str) -> str:
    return "".join(character for character in text if character.isdigit())


def build_trace(events: int, people: int, seed: int = 8) -> tuple[list[Person], list[tuple[str, bytes]]]:
    """``events`` (source, body) about ``people`` people; see the module's docstring."""
    sources = trace_sources()
    mappings = load_mappings(BUILTIN_MAPPINGS_DIR, None, None, SOURCES)
    templates = {source: Template(source, mappings) for source in sources}
    persons = [Person(index) for index in range(people)]
    rng = random.Random(seed)
    per_person: list[list[tuple[str, bytes]]] = []
    count = 0
    for index, person in enumerate(persons):
        mine, moves = [], 0
        for turn in range(events // people + (1 if index < events % people else 0)):
            source = sources[(index + turn) % len(sources)]
            title = person.titles[min(turn // 4, len(person.titles) - 1)]
            body = templates[source].event(person, title, count)
            if source in MAPPING_SECTIONS:
                body = with_stage(source, body, moves, count)
                moves += source in STAGE_EVENTS
            mine.append((source, body))
            count += 1
        per_person.append(mine)
    # A person's events in their order, interleaved with the others' (several candidates move at once).
    trace = []
    while any(per_person):
        queue = rng.choice([items for items in per_person if items])
        trace.append(queue.pop(0))
    return persons, trace


def post(port: int, source: str, body: bytes) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{port}/{source}"
    headers, body = signed_request(source, body, signing_key(source), url=url)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def replay(persons: list[Person], trace: list[tuple[str, bytes]], memory_seconds: str | None) -> dict:
    """Replay ``trace`` against a fresh fake Stardex and a fresh function; what the fake saw."""
    stardex = FakeStardex(api_key=common.STARDEX_KEY, rate_limit=10**9).start()
    for person in persons:
        stardex.add_person(**person.stored())
    stardex.add_job("Bench job", PIPELINE, id=BENCH_JOB)
    for name, data_type, options in CUSTOM_FIELDS:
        stardex.add_custom_field(name, data_type, options)
    env = common.function_environment(stardex.base_url)
    env.pop("PERSON_MEMORY_SECONDS", None)  # the function's own default, unless told otherwise
    if memory_seconds is not None:
        env["PERSON_MEMORY_SECONDS"] = memory_seconds
    for source in trace_sources():
        env[signing_key_name(source)] = signing_key(source)
    port = common.free_port()
    outcomes: collections.Counter = collections.Counter()
    written: collections.Counter = collections.Counter()  # the fields each PATCH sent, by sender
    stage_outcomes: collections.Counter = collections.Counter()  # the answers' stage: moved, unchanged...
    by_source: collections.Counter = collections.Counter()  # the calls each sender's events made
    problems = []
    with tempfile.TemporaryDirectory(prefix="stardex-calls-") as scratch:
        mapping_overrides(Path(scratch))
        env["MAPPINGS_DIR"] = scratch
        process = common.start_server(common.MAIN_PY, port, env, Path(scratch) / "server.log")
        try:
            probe = common.raw_request("/healthz", b"", {}, port).replace(b"POST", b"GET", 1)
            common.wait_for_200(port, probe, process)
            stardex.requests.clear()
            for source, body in trace:
                before = len(stardex.requests)
                status, answer = post(port, source, body)
                by_source[source] += len(stardex.requests) - before
                outcome = f"{status} {answer.get('status')}" + (f" {answer['reason']}" if answer.get("reason") else "")
                outcomes[outcome] += 1
                if answer.get("stage"):
                    stage_outcomes[answer["stage"]] += 1
                if answer.get("fields"):
                    written[f"{source}: {', '.join(answer['fields'])}"] += 1
                if status != 200 or answer.get("status") not in ("updated", "ignored"):
                    problems.append(f"{source}: {outcome}")
        finally:
            common.stop_process(process)
            stardex.stop()
    calls: collections.Counter = collections.Counter()
    for request in stardex.requests:
        path = request.path.removeprefix("/v1")
        head, _, tail = path.rpartition("/")
        calls[f"{request.method} {head}/{{id}}" if head == "/persons" and tail != "search" else
              f"{request.method} {path}"] += 1
    total = sum(calls.values())
    return {"calls": total, "calls_per_event": total / len(trace), "calls_by_kind": dict(calls),
            "outcomes": dict(outcomes), "stages": dict(stage_outcomes), "calls_by_source": dict(by_source), "written": dict(written.most_common()), "problems": problems[:10]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--people", type=int, default=40)
    args = parser.parse_args(argv)
    persons, trace = build_trace(args.events, args.people)
    result = {"events": len(trace), "people": len(persons), "sources": trace_sources(),
              "events_by_source": dict(collections.Counter(source for source, _ in trace)),
              "target": TARGET_CALLS_PER_EVENT}
    result.update(replay(persons, trace, None))
    # The same trace with the person memory off: what the memory saves, for the report.
    result["without_memory"] = replay(persons, trace, "0")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
