"""Pipeline stages: when an ATS says a candidate moved, the same candidate moves in the Stardex job
(the tables, the answers, each sender's paths: docs/mappings.md, "Pipeline stages"). Nothing is
guessed: a job or stage not in its table carries an ``ignore_reason`` and makes no call.
``plan_stage`` is pure, so ``plan`` can show the one update-stage call or why none. Stardex's stage
dates are the times of its writes, not of the ATS's events, so event times are compared only with
event times."""

from __future__ import annotations

import collections
import math
import re
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any, Callable

from .records import StageRequest

# Answers of a stage request (the webhook answer's ``stage``).
MOVED, UNCHANGED, OLDER_EVENT = "moved", "unchanged", "older_event"
NOT_IN_TABLE, JOB_NOT_IN_TABLE, SUPERSEDED = "not_in_table", "job_not_in_table", "superseded"
NOT_A_CANDIDATE = "not_a_candidate"  # no read shows the person on the job, and no email names them
ANY_JOB = "*"
# Event times remembered per (person, job): long enough for senders' retries (Ashby's ten tries
# span hours, Greenhouse's and Recruitee's a day or two), bounded in size.
STAGE_MEMORY_SECONDS = 48 * 3600
STAGE_MEMORY_SIZE = 5000

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class StagePlan:
    """``move`` (``needs_read``: find the candidate in a read first), or ``keep`` with the outcome."""

    action: str
    outcome: str
    body: dict[str, str] | None = None
    needs_read: bool = False


def is_uuid(value: str) -> bool:
    return bool(_UUID.fullmatch(value))


def stage_key(stage: str) -> str:
    """How two stage names are compared: case and runs of whitespace ignored."""
    return " ".join(str(stage).split()).casefold()


def event_time(value: Any) -> float | None:
    """Epoch seconds from epoch seconds or milliseconds, or ISO 8601 (no offset: UTC); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        try:
            value = int(value.strip())
        except ValueError:  # "²" is a digit to str.isdigit, not to int; so is a number past the digit limit
            return None
    if isinstance(value, (int, float)):
        try:
            seconds = value / 1000 if value > 1e11 else float(value)
        except OverflowError:  # an int no float holds
            return None
        return seconds if math.isfinite(seconds) and seconds > 0 else None  # NaN, infinity, or no time
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def candidate_on(person: dict[str, Any] | None, job_id: str) -> dict[str, Any] | None:
    candidates = person.get("candidates") if isinstance(person, dict) else None
    if not isinstance(candidates, list):
        return None
    return next((item for item in candidates if isinstance(item, dict) and str(item.get("job_id")) == job_id), None)


def at_stage(candidate: dict[str, Any] | None, stage: str) -> bool:
    """Whether the candidate entry shows ``stage`` (an id, or a name compared loosely)."""
    if not candidate:
        return False
    if is_uuid(stage):
        return str(candidate.get("current_pipeline_stage_id") or "").lower() == stage.lower()
    name = candidate.get("current_pipeline_stage_name")
    return isinstance(name, str) and stage_key(name) == stage_key(stage)


class StageMemory:
    """Per instance, person and job: the latest applied event's time and stage. Thread-safe, bounded."""

    def __init__(self, seconds: float = STAGE_MEMORY_SECONDS, size: int = STAGE_MEMORY_SIZE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.size, self._clock = seconds, size, clock
        self._lock = threading.Lock()
        self._moves: collections.OrderedDict[tuple[str, str], tuple[float, float, str]] = collections.OrderedDict()

    def last(self, person_id: str, job_id: str) -> tuple[float, str] | None:
        """(event time, stage) of the latest applied event, or None."""
        with self._lock:
            entry = self._moves.get((person_id, job_id))
            if entry is None or entry[0] <= self._clock():
                self._moves.pop((person_id, job_id), None)
                return None
            return entry[1], entry[2]

    def applied(self, person_id: str, job_id: str, occurred_at: float | None, stage: str) -> None:
        """Remember an applied event; an older one never replaces a later one."""
        if occurred_at is None or self.seconds <= 0:
            return
        with self._lock:
            key = (person_id, job_id)
            entry = self._moves.get(key)
            if entry is not None and entry[0] > self._clock() and entry[1] > occurred_at:
                return
            self._moves.pop(key, None)
            self._moves[key] = (self._clock() + self.seconds, occurred_at, stage)
            while len(self._moves) > self.size:
                self._moves.popitem(last=False)


def plan_stage(request: StageRequest, person: dict[str, Any] | None, last: tuple[float, str] | None = None,
               email: str | None = None) -> StagePlan:
    """``email``, one the person was found by, names the candidate when no read shows its id."""
    if request.ignore_reason or not request.job_id or not request.stage:
        return StagePlan("keep", request.ignore_reason or NOT_IN_TABLE)
    if last is not None and request.occurred_at is not None and request.occurred_at < last[0] \
            and stage_key(last[1]) != stage_key(request.stage):
        return StagePlan("keep", OLDER_EVENT)
    candidate = candidate_on(person, request.job_id)
    if at_stage(candidate, request.stage):
        return StagePlan("keep", UNCHANGED)
    body = {"job_id": request.job_id}
    if candidate and candidate.get("candidate_id"):
        body["candidate_id"] = str(candidate["candidate_id"])
    elif email:
        body["candidate_email"] = email
    body["stage_id" if is_uuid(request.stage) else "stage_name"] = request.stage
    return StagePlan("move", MOVED, body, needs_read="candidate_id" not in body and "candidate_email" not in body)


def outcome_of(answer: Any) -> str:
    """``unchanged`` when Stardex's answer names the same previous and new stage, else ``moved``."""
    if isinstance(answer, dict) and answer.get("previous_stage_id") and \
            answer.get("previous_stage_id") == answer.get("new_stage_id"):
        return UNCHANGED
    return MOVED


def with_stage(person: dict[str, Any] | None, request: StageRequest, answer: Any) -> dict[str, Any]:
    """The person as known after a move: its candidate on the job shows the new stage."""
    after = dict(person) if isinstance(person, dict) else {}
    held = after.get("candidates")  # a search may answer anything here: only a list's objects are kept
    candidates = [dict(item) for item in (held if isinstance(held, list) else []) if isinstance(item, dict)]
    entry = next((item for item in candidates if str(item.get("job_id")) == request.job_id), None)
    if entry is None:
        entry = {"job_id": request.job_id}
        candidates.append(entry)
    stage = str(request.stage)
    known, other = ("current_pipeline_stage_id", "current_pipeline_stage_name") if is_uuid(stage) else \
        ("current_pipeline_stage_name", "current_pipeline_stage_id")
    entry[known] = stage
    entry.pop(other, None)  # the stage's other form is not known any more
    if isinstance(answer, dict) and answer.get("candidate_id"):
        entry["candidate_id"] = answer["candidate_id"]
    after["candidates"] = candidates
    return after
