"""The contract's promise (docs/contract.md) under chaos: every authentic event ends applied once, deliberately
ignored, or kept as a dead letter, whatever breaks meanwhile.

The real public function (``DELIVERY=queued``) and worker, fake-gcs-server and gcloud-tasks-emulator
behind fault proxies, the loopback fake Stardex. Senders (threads) send events of three sources,
each signed once and sent again with the same delivery id whenever the answer is not final: they
time out early (1.5 s, under the webhook's 4 s deadline) and retry, as impatient senders do. Meanwhile
the harness SIGKILLs the worker's and the public function's processes (their gunicorn masters start
them again), makes the bucket and the queue hang or refuse connections for a while, makes Stardex
slow, 5xx and 429 at random; the events carry odd bytes (a lone surrogate in a delivery id, a
Latin-1 header byte, emoji and Cyrillic text) and a few are too large for a task.

At the end, everything healthy and ``replay run --all`` done: each event built to apply is applied
(its field written, its Typeform note written exactly once: a note is the one write that is not
idempotent, so "applied twice" is seen there), each built to be ignored was answered ``ignored``,
each built not to apply (a person Stardex does not have) is a dead letter; no answer and no log
line is a 500. The counts are printed (``-s`` shows them). ``CHAOS_SCALE=10`` (or
``HYPOTHESIS_PROFILE=long``) sends ten times the events for ten times as long.
"""

from __future__ import annotations

import collections
import concurrent.futures
import copy
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from stardex_webhook.send_sample import signed_request
from tests.conftest import SIGNING_KEYS, fixture_json
from tests.fakes.fault_proxy import HANG, PASS, REFUSE
from tests.helpers.faulty_stack import faulty_stack, kill_worker
from tests.helpers.queued import dead_letters

SCALE = int(os.environ.get("CHAOS_SCALE") or (10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1))
EVENTS = 160 * SCALE
SENDERS = 6
SENDER_TIMEOUT_SECONDS = 1.5
# A sender that never got a final answer in this long keeps the event (it was never accepted).
SENDER_PATIENCE_SECONDS = 60.0 + 10 * SCALE
FINAL = {"queued", "duplicate", "ignored"}
SEED = int(os.environ.get("CHAOS_SEED") or time.time())
# Faults are injected while the events go out, spread over this long; then all is healthy.
CHAOS_SECONDS = 10.0 * SCALE
FAULT_KINDS = ["kill_worker", "kill_public", "bucket_hang", "bucket_refuse", "queue_hang", "queue_refuse",
               "stardex_slow", "stardex_5xx", "stardex_429"]


@dataclass
class Planned:
    """One event the harness sends: what it is built to end as, and how to see that it did."""

    kind: str  # "typeform", "generic" (applied), "ignored", "unknown_person" (a dead letter)
    delivery_id: str
    source: str
    body: bytes
    headers: dict[str, str]
    person_id: str | None = None
    expected: str = ""  # the value written when applied
    answers: list = field(default_factory=list)  # each answer's status code, or the exception's name


def typeform_event(index: int, person_id: str, rng: random.Random, large: bool) -> tuple[str, bytes]:
    body = copy.deepcopy(fixture_json("typeform_form_response.json"))
    odd = rng.random() < 0.15 and not large  # the large body goes out as UTF-8, which has no lone surrogate
    body["event_id"] = f"01HZZCHAOS{index:06d}" + ("\ud800" if odd else "")
    response = body["form_response"]
    response["hidden"]["stardex_person_id"] = person_id
    if large:  # ~680 KB as sent, ~2 MB as a task's JSON: kept in the bucket, the task names it
        response["hidden"]["notes"] = "Ж" * 340_000
    for answer in response["answers"]:
        if answer["field"]["ref"] == "company":
            answer["text"] = f"Company {index} 🙂 Ёлка"
        if answer["field"]["ref"] == "first_name":
            answer["text"] = "Zoë"
    return body["event_id"], json.dumps(body, ensure_ascii=not large).encode()


def plan(stack, rng: random.Random) -> list[Planned]:
    """The events, mixed: 45% Typeform (a note and a company), 35% generic (a job title), 10%
    ignored (a Greenhouse ping, a Typeform event no mapping takes), 10% for a person Stardex lacks."""
    events = []
    large_left = 3 * SCALE
    for index in range(EVENTS):
        roll = rng.random()
        extra = {"X-Sender-Note": "caf\xe9"} if rng.random() < 0.2 else {}  # a Latin-1 byte, as sent
        if roll < 0.45:
            person = stack.stardex.add_person(name=f"Typeform Person {index}")
            large = large_left > 0 and rng.random() < 0.1
            large_left -= large
            event_id, body = typeform_event(index, person, rng, large)
            headers, body = signed_request("typeform", body, SIGNING_KEYS["typeform"])
            events.append(Planned("typeform", event_id, "typeform", body, {**headers, **extra}, person,
                                  f"Company {index} 🙂 Ёлка"))
        elif roll < 0.80:
            person = stack.stardex.add_person(name=f"Generic Person {index}")
            events.append(generic_event("generic", person, index, extra))
        elif roll < 0.90:
            events.append(generic_event("unknown_person", f"3f2b7c1e-0000-4000-8000-{index:012d}", index, extra))
        elif index % 2:
            body = json.dumps({"action": "ping", "payload": {"web_hook_id": index}}).encode()
            headers, body = signed_request("greenhouse", body, SIGNING_KEYS["greenhouse"])
            events.append(Planned("ignored", f"ping-{index}", "greenhouse", body, headers))
        else:  # an event type the Typeform mapping does not take
            event_id, body = typeform_event(index, "3f2b7c1e-0000-4000-8000-000000000000", rng, False)
            document = json.loads(body)
            document["event_type"] = "form_partial_response"
            headers, body = signed_request("typeform", json.dumps(document).encode(), SIGNING_KEYS["typeform"])
            events.append(Planned("ignored", event_id, "typeform", body, headers))
    return events


def generic_event(kind: str, person: str, index: int, extra: dict[str, str]) -> Planned:
    title = f"Title {index} — Ñandú"
    body = json.dumps({"stardex_person_id": person, "current_job_title": title}, ensure_ascii=False).encode()
    headers, body = signed_request("generic", body, SIGNING_KEYS["generic"])
    return Planned(kind, headers["webhook-id"], "generic", body, {**headers, **extra}, person, title)


def deliver(url: str, event: Planned, stop: threading.Event, rng: random.Random, at: float) -> None:
    """From ``at`` on, send until the answer is final (queued, duplicate, ignored, or a 4xx), as a
    sender retries."""
    stop.wait(max(0.0, at - time.monotonic()))
    give_up = time.monotonic() + SENDER_PATIENCE_SECONDS
    while not stop.is_set() and time.monotonic() < give_up:
        try:
            answer = requests.post(f"{url}/{event.source}", data=event.body, headers=event.headers,
                                   timeout=SENDER_TIMEOUT_SECONDS)
        except requests.RequestException as error:
            event.answers.append(type(error).__name__)
        else:
            event.answers.append(answer.status_code)
            status = answer.json().get("status") if answer.headers.get("Content-Type", "").startswith("application/json") else None
            if answer.status_code < 500 and (status in FINAL or 400 <= answer.status_code < 500):
                return
        time.sleep(rng.uniform(0.1, 0.5))


def chaos(world, stop: threading.Event, rng: random.Random, counts: collections.Counter) -> None:
    """One fault at a time, at random, until ``stop``; each lasts a moment, then all is healthy again."""
    stack = world.stack
    kinds: list[str] = []
    while not stop.wait(rng.uniform(0.1, 0.4)):
        if not kinds:  # every kind once a round, in a random order
            kinds = rng.sample(FAULT_KINDS, len(FAULT_KINDS))
        kind = kinds.pop()
        if kind.startswith("kill_"):
            url = stack.worker_url if kind == "kill_worker" else stack.public_url
            if kill_worker(url):
                counts[kind] += 1
            stop.wait(1.0)  # the master starts another; the next fault waits for it
            continue
        counts[kind] += 1
        if kind.startswith(("bucket_", "queue_")):
            proxy = world.bucket if kind.startswith("bucket_") else world.queue
            proxy.set(HANG if kind.endswith("hang") else REFUSE)
            stop.wait(rng.uniform(0.5, 1.5))
            proxy.set(PASS)
        elif kind == "stardex_slow":
            stack.stardex.delay_seconds = 0.4
            stop.wait(rng.uniform(0.5, 1.5))
            stack.stardex.delay_seconds = 0.0
        else:
            status = 503 if kind == "stardex_5xx" else 429
            stack.stardex.fail_next(status, times=rng.randint(2, 14), retry_after=1 if status == 429 else None)


def applied(stack, event: Planned) -> bool:
    person = stack.stardex.person(event.person_id)
    if event.kind == "typeform":
        return person.get("current_company_name") == event.expected and bool(notes_of(stack, event))
    return person.get("current_job_title") == event.expected


def notes_of(stack, event: Planned) -> list:
    return [activity for activity in stack.stardex.activities(event.person_id)
            if event.delivery_id in activity.get("activity_content", "")]


def settled(stack, event: Planned, kept: set) -> bool:
    """Applied, or in a dead letter (which replay applies once all is healthy); ignored at once."""
    if event.kind == "unknown_person":
        return event.delivery_id in kept
    if event.kind in ("typeform", "generic"):
        return event.delivery_id in kept or applied(stack, event)
    return True


def lettered(letters: list[dict]) -> set:
    return {letter.get("delivery_id") for letter in letters}


def server_errors(*logs) -> list[dict]:
    found = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and (entry.get("status_code") == 500 or entry.get("reason") == "internal_error"):
                found.append(entry)
    return found


def test_every_event_is_applied_once_ignored_or_dead_lettered_whatever_breaks():
    rng = random.Random(SEED)
    counts: collections.Counter = collections.Counter()
    with faulty_stack() as world:
        stack = world.stack
        events = plan(stack, rng)
        stop_chaos, stop_senders = threading.Event(), threading.Event()
        fault_thread = threading.Thread(target=chaos, args=(world, stop_chaos, random.Random(SEED + 1), counts))
        fault_thread.start()
        try:
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(SENDERS) as pool:
                sent = [pool.submit(deliver, stack.public_url, event, stop_senders, random.Random(SEED + 2 + n),
                                    started + n * CHAOS_SECONDS / len(events))
                        for n, event in enumerate(events)]
                # Chaos while the events go out; then everything healthy while the senders finish.
                stop_chaos.wait(CHAOS_SECONDS)
                stop_chaos.set()
                fault_thread.join()
                for future in sent:
                    future.result()
        finally:
            stop_chaos.set()
            stop_senders.set()
            fault_thread.join()
            world.bucket.set(PASS)
            world.queue.set(PASS)
            stack.stardex.delay_seconds = 0.0

        seconds = {"sending": round(time.monotonic() - started, 1)}
        accepted = [event for event in events if event.answers and event.answers[-1] in (200, 202)]
        # Wait (bounded) for the queue to settle every accepted event: applied, or in a dead letter.
        settle_by = time.monotonic() + 60 * SCALE
        while time.monotonic() < settle_by:
            kept = lettered(dead_letters())
            if all(settled(stack, event, kept) for event in accepted):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # a task retried after a kill may still be on its way: let it land
        seconds["queue_settling"] = round(time.monotonic() - started - seconds["sending"], 1)
        letters_before_replay = len(dead_letters())
        replay = stack.replay("run", "--all")
        letters = dead_letters()

        kept = lettered(letters)
        to_apply = [event for event in events if event.kind in ("typeform", "generic")]
        lost = [event for event in to_apply if not applied(stack, event)] + \
               [event for event in events if event.kind == "unknown_person" and event.delivery_id not in kept] + \
               [event for event in events if event.kind == "ignored" and not event.answers[-1:] == [200]]
        twice = [event for event in to_apply if event.kind == "typeform" and len(notes_of(stack, event)) > 1]
        unaccepted = [event for event in events if not event.answers or event.answers[-1] not in (200, 202)]
        answers_500 = sum(answer == 500 for event in events for answer in event.answers)
        logged_500 = server_errors(world.public_log, stack.worker_log)
        by_kind = collections.Counter(event.kind for event in events)
        sends = sum(len(event.answers) for event in events)
        faults = {kind: count for kind, count in sorted(counts.items()) if not kind.startswith("kill_")}
        faults.update({f"bucket_connections_{k}": v for k, v in world.bucket.faults.items()})
        faults.update({f"queue_connections_{k}": v for k, v in world.queue.faults.items()})
        report = {
            "seed": SEED, "scale": SCALE, "events": len(events), "by_kind": dict(by_kind), "sends": sends,
            "sender_retries": sends - len(events),
            "sender_timeouts": sum(isinstance(answer, str) for event in events for answer in event.answers),
            "answers_503": sum(answer == 503 for event in events for answer in event.answers),
            "large_bodies": sum(len(event.body) > 600_000 for event in events),
            "odd_bytes": sum("\ud800" in event.delivery_id or "X-Sender-Note" in event.headers for event in events),
            "faults": faults, "kills": {kind: count for kind, count in counts.items() if kind.startswith("kill_")},
            "dead_letters_before_replay": letters_before_replay, "dead_letters_after_replay": len(letters),
            # An event enqueued twice (its claim taken over after a kill, or a task created as its
            # create timed out) is applied once but, when it cannot be applied, kept twice.
            "dead_letter_copies": len(letters) - len(lettered(letters)),
            "not_accepted": len(unaccepted), "answers_500": answers_500, "logged_500": len(logged_500),
            "lost": len(lost), "applied_twice": len(twice), "seconds": seconds,
        }
        print("\nCHAOS " + json.dumps(report, ensure_ascii=False))
        assert unaccepted == [], f"never accepted (the sender still holds them): {[e.delivery_id for e in unaccepted][:5]}"
        assert (answers_500, logged_500) == (0, []), logged_500[:3]
        assert lost == [], f"lost: {[(e.kind, e.delivery_id) for e in lost][:5]}; replay: {replay.stdout[-800:]} {replay.stderr[-800:]}"
        assert twice == [], f"applied twice: {[e.delivery_id for e in twice][:5]}"
        built_to_fail = {event.delivery_id for event in events if event.kind == "unknown_person"}
        assert kept == built_to_fail, "only the events built not to apply are left as dead letters"
        assert sum(counts.values()) >= 5, "faults were injected"
