"""tests/helpers/try_queued.py, the one-command local recipe of docs/queued.md: the stack it starts
takes a sample, answers ``queued``, and the worker applies it; a person the sandbox lacks ends as a
dead letter that ``replay list`` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from stardex_webhook.fake_stardex import SAMPLE_PEOPLE
from stardex_webhook.send_sample import SAMPLES_DIR
from tests.conftest import ROOT
from tests.helpers import try_queued
from tests.helpers.try_queued import queued_stack, unknown_person_sample

RECIPE = ".venv/bin/python -m tests.helpers.try_queued"


def test_the_docs_give_the_recipe_word_for_word():
    assert RECIPE in (ROOT / "docs" / "queued.md").read_text()
    assert try_queued.__doc__ and RECIPE in try_queued.__doc__


def test_the_unknown_person_sample_names_no_sandbox_person(tmp_path):
    body = json.loads(unknown_person_sample(tmp_path).read_text())
    known = {(email["value"] if isinstance(email, dict) else email).casefold()
             for person in SAMPLE_PEOPLE for email in person.get("emails", [])}
    text = json.dumps(body).casefold()
    assert not any(email in text for email in known | {"mquintal@northwind-example.com", "marta-quintal-example"})
    assert body != json.loads((SAMPLES_DIR / "greenhouse.json").read_text()), "the email was replaced"


def outcomes(log) -> list[tuple[str, str]]:
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("source") and "outcome" in entry:
            entries.append((entry["outcome"], entry.get("reason") or ""))
    return entries


def wait_for(predicate, seconds: float = 60) -> bool:
    stop = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > stop:
            return False
        time.sleep(0.2)
    return True


def send(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stardex_webhook.send_sample", "greenhouse", "--url", url, *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_local_queued_stack_queues_applies_and_dead_letters(tmp_path):
    with queued_stack() as (public_url, replay_env, worker_log):
        sent = send(public_url)
        assert sent.returncode == 0 and '"status": "queued"' in sent.stdout, sent.stdout + sent.stderr
        assert wait_for(lambda: ("updated", "") in outcomes(worker_log)), outcomes(worker_log)

        lost = send(public_url, "--body", str(unknown_person_sample(tmp_path)))
        assert '"status": "queued"' in lost.stdout, lost.stdout + lost.stderr
        assert wait_for(lambda: ("dead_lettered", "person_not_found") in outcomes(worker_log)), outcomes(worker_log)

        listed = subprocess.run([sys.executable, "-m", "stardex_webhook.replay", "list"], cwd=ROOT, timeout=60,
                                capture_output=True, text=True, env={"PATH": os.environ["PATH"], **replay_env})
        assert listed.returncode == 0, listed.stderr
        assert [line.split("/")[0] for line in listed.stdout.splitlines()] == ["greenhouse"]


def test_the_worker_s_answer_is_echoed_once_and_not_the_dead_letter_s_own_line():
    letter = {"severity": "ERROR", "message": "dead letter dead-letters/greenhouse/x.json", "source": "greenhouse",
              "delivery_id": "d-1", "outcome": "dead_lettered", "reason": "person_not_found", "status_code": 422}
    answer = {"severity": "INFO", "message": "webhook greenhouse hire_candidate: dead_lettered", "source": "greenhouse",
              "delivery_id": "d-1", "outcome": "dead_lettered", "reason": "person_not_found", "status_code": 200,
              "latency_ms": 12.5}
    assert [try_queued.echoed(entry) for entry in (letter, answer)] == \
        [None, "worker: greenhouse d-1: 200 dead_lettered person_not_found"]
