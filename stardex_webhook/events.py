"""The event history (docs/history.md): one record per authentic event, written by ``pipeline.answered``
whatever the door, holding no value of the person's data. A pointer under ``events/ids/`` names each
record, so retries, the worker and replay update the one record; emails and LinkedIn URLs are kept only
as HMACs keyed with ``HISTORY_KEY``. A failed write never fails the event: it is logged and counted.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any

from .deadline import Deadline
from .errors import WebhookError
from .logs import JsonLog, mask
from .records import MappedUpdate, iso_time
from .secrets import SecretProvider
from .state import call_limits, digest

EVENTS_PREFIX, IDS_PREFIX, HISTORY_KEY = "events/", "events/ids/", "HISTORY_KEY"
CALL_TIMEOUT_SECONDS = 5.0
# Nothing new happened to the event; or the bucket is down, and the event's retry records it.
NOT_RECORDED = ("duplicate", "dry_run", "delivery_in_progress", "state_unavailable")
DEAD_LETTER_COUNT_SECONDS = 300.0
_STAMP = re.compile(r"\d{8}T\d{6}Z")  # a dead letter's name carries when it was kept


def identity_hash(key: str, kind: str, value: str) -> str:
    """Normalised as the function compares them: emails ignoring case and padding, URLs also a final /."""
    value = value.strip().casefold()
    value = value.rstrip("/") if kind == "linkedin" else value
    return hmac.new(key.encode("utf-8"), f"{kind}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def named(mapped: MappedUpdate) -> list[tuple[str, str]]:
    """Every email and LinkedIn URL the event named: (kind, value)."""
    update = mapped.update
    emails = [*mapped.person.emails, update.get("work_email"), update.get("personal_email"),
              *(entry.get("value") for entry in update.get("emails") or [] if isinstance(entry, dict))]
    return [(kind, value) for kind, values in (("email", emails), ("linkedin", [mapped.person.linkedin_url,
            update.get("linkedin_url")])) for value in values if isinstance(value, str) and value.strip()]


def record_name(received_at: float, source: str, key: str) -> str:
    return time.strftime(f"{EVENTS_PREFIX}%Y-%m-%d/%H/%M%S-{source}-{key[:16]}.json", time.gmtime(received_at))


class EventHistory:
    """One per instance, over the state bucket (``StateStore``)."""

    def __init__(self, store: Any, secrets: SecretProvider, log: JsonLog) -> None:
        self.store, self.secrets, self.log = store, secrets, log
        self.failures, self.counted_at = 0, float("-inf")

    def write(self, record: dict[str, Any], status_code: int, body: dict[str, Any], latency_ms: float) -> dict[str, Any]:
        """Write the event's record; what the log line adds (``dead_letters_waiting``), once the bucket answered."""
        if body.get("status") in NOT_RECORDED or body.get("reason") in NOT_RECORDED:
            return {}
        try:
            self._write(self.document(record, status_code, body, latency_ms), record)
        except Exception as error:  # the event's answer stands; the gap is said and counted
            self.failures += 1
            self.log.write("ERROR", "an event's history record could not be written", reason="history_not_written",
                           source=record.get("source"), delivery_id=record.get("delivery_id"),
                           error=type(error).__name__, history_failures=self.failures)
            return {}
        return self.dead_letters_waiting()

    def dead_letters_waiting(self) -> dict[str, Any]:
        """Every 5 minutes, for the log line (dashboard, alert): the dead letters waiting, the oldest's age."""
        now = time.time()
        if now - self.counted_at < DEAD_LETTER_COUNT_SECONDS:
            return {}
        self.counted_at = now
        try:
            names = self.store.dead_letters()
        except Exception:  # the next count tries again
            return {}
        kept = [calendar.timegm(time.strptime(m.group(0), "%Y%m%dT%H%M%SZ")) for m in map(_STAMP.search, names) if m]
        return {"dead_letters_waiting": len(names), "oldest_dead_letter_seconds": round(now - min(kept)) if kept else 0}

    def document(self, record: dict[str, Any], status_code: int, body: dict[str, Any], latency_ms: float) -> dict[str, Any]:
        try:
            key = self.secrets.get(HISTORY_KEY, deadline=Deadline(CALL_TIMEOUT_SECONDS))
        except WebhookError:  # Secret Manager unreadable, or no version yet: the record without hashes
            key = None
        letter = body.get("dead_letter") or record.get("dead_letter")
        # Text from outside (a sender's event name and delivery id, a form's person id): masked as in the log.
        outside = {"event": record.get("event"), "delivery_id": record.get("delivery_id"),
                   "person_id": body.get("person_id") or record.get("person_id")}
        document = {
            "received_at": iso_time(record["received_at"]), "source": record.get("source"), "door": record.get("door"),
            **{name: None if value is None else mask(str(value))[:128] for name, value in outside.items()},
            "outcome": "dead_letter" if letter else str(body.get("status")), "status_code": status_code,
            "reason": body.get("reason"),
            "fields": body.get("fields") or [], "dead_letter": letter,
            # The answer's ``skipped`` (each value left out, with its path and reason): paths only.
            "skipped": [item["path"] for item in body.get("skipped") or []],
            "latency_ms": latency_ms, "attempts": record.get("attempts"), "written_at": iso_time(time.time()),
        }
        if key:
            document["identities"] = sorted({identity_hash(key, kind, value) for kind, value in record.get("named", ())})
        return document

    def _write(self, document: dict[str, Any], record: dict[str, Any]) -> None:
        from google.api_core.exceptions import PreconditionFailed

        deadline, doing = Deadline(CALL_TIMEOUT_SECONDS), "write the history"  # the whole write: a sender may wait
        bucket, delivery_id = self.store.bucket(), record.get("delivery_id")
        key = digest(delivery_id) if delivery_id else uuid.uuid4().hex
        name = record_name(record["received_at"], str(record.get("source")), key)
        first = True  # the event's first record: nothing to read, two calls in all
        if delivery_id:  # the name the event's first record took, or this one
            pointer = bucket.blob(f"{IDS_PREFIX}{key}/{record.get('source')}")
            try:
                pointer.upload_from_string(name, if_generation_match=0, **call_limits(deadline, doing))
            except PreconditionFailed:
                name, first = pointer.download_as_text(**call_limits(deadline, doing)), False
        for _ in range(3):  # another writer meanwhile (the queued door and its worker): read again
            blob = None if first else bucket.get_blob(name, **call_limits(deadline, doing))
            first = False
            new = merged(document, json.loads(blob.download_as_bytes(**call_limits(deadline, doing))) if blob else None)
            try:
                if new is not None:
                    generation = int(blob.generation) if blob else 0
                    bucket.blob(name).upload_from_string(json.dumps(new, separators=(",", ":")), "application/json",
                                                         if_generation_match=generation, **call_limits(deadline, doing))
                return
            except PreconditionFailed:
                continue
        raise RuntimeError("the record kept changing")


def merged(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
    """None to leave the record (``queued`` never undoes a later outcome). Attempts: the worker's count, else
    one more than before (``queued``: none yet). While a letter waits (a replay failed) it is a dead letter."""
    if old is not None and new["outcome"] == "queued":
        return None
    old = old or {}
    letter = new["dead_letter"] or (old.get("dead_letter") if new["outcome"] not in ("updated", "ignored") else None)
    result = {**new, "received_at": old.get("received_at", new["received_at"]), "dead_letter": letter,
              "attempts": new["attempts"] or old.get("attempts", 0) + (new["outcome"] != "queued"),
              "outcome": "dead_letter" if letter else new["outcome"]}
    if "identities" in new or "identities" in old:
        result["identities"] = sorted({*old.get("identities", ()), *new.get("identities", ())})
    return result

