"""The event history (CONTRACT "Event history"): one record per authentic event in the state bucket,
written by ``pipeline.answered`` whatever the door, with no value of the person's data in it.

events/<YYYY-MM-DD>/<HH>/<MMSS>-<source>-<key>.json  the record, named by when the event was first
                                                      received: ``history --since`` lists only its hours
events/ids/<sha256 of the delivery id>/<source>       that name: a retry, the worker and replay find
                                                      the same record (one per event, attempts counted)

Emails and LinkedIn URLs are kept only as HMACs keyed with ``HISTORY_KEY`` (a secret like the
others): ``history --email`` hashes an address the same way; without the key nothing can be read
back. Without a key the records carry no hashes. A failed write never fails the event: it is
logged (``history_not_written``) and counted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from typing import Any

from .deadline import Deadline
from .logs import JsonLog, mask
from .records import MappedUpdate, iso_time
from .secrets import SecretProvider

EVENTS_PREFIX = "events/"
IDS_PREFIX = "events/ids/"
HISTORY_KEY = "HISTORY_KEY"
CALL_TIMEOUT_SECONDS = 5.0
# Answers that say nothing new about the event: a settled delivery again, another attempt at
# work on it, a dry run (nothing written).
NOT_RECORDED = ("duplicate", "dry_run")
IN_PROGRESS_REASON = "delivery_in_progress"
SETTLED = ("updated", "ignored")


def normalised(kind: str, value: str) -> str:
    """As the function compares them: emails ignoring case and padding; URLs also without a trailing /."""
    value = value.strip().casefold()
    return value.rstrip("/") if kind == "linkedin" else value


def identity_hash(key: str, kind: str, value: str) -> str:
    digest = hmac.new(key.encode("utf-8"), f"{kind}:{normalised(kind, value)}".encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:32]


def named(mapped: MappedUpdate) -> list[tuple[str, str]]:
    """Every email and LinkedIn URL the event named: (kind, value)."""
    update = mapped.update
    emails = [*mapped.person.emails, update.get("work_email"), update.get("personal_email"),
              *(entry.get("value") for entry in update.get("emails") or [] if isinstance(entry, dict))]
    urls = [mapped.person.linkedin_url, update.get("linkedin_url")]
    return [("email", value) for value in emails if isinstance(value, str) and value.strip()] \
        + [("linkedin", value) for value in urls if isinstance(value, str) and value.strip()]


def id_digest(delivery_id: str) -> str:
    return hashlib.sha256(delivery_id.encode("utf-8", "surrogateescape")).hexdigest()


def record_name(received_at: float, source: str, key: str) -> str:
    return time.strftime(f"{EVENTS_PREFIX}%Y-%m-%d/%H/%M%S-{source}-{key[:16]}.json", time.gmtime(received_at))


def skipped_paths(body: dict[str, Any]) -> list[str]:
    """Issue 22's ``skipped`` (values left out: each with its path and reason): the paths only."""
    return [str(entry.get("path") if isinstance(entry, dict) else entry) for entry in body.get("skipped") or []]


def outcome_of(body: dict[str, Any], dead_letter: str | None) -> str:
    return "dead_letter" if dead_letter else str(body.get("status"))


class EventHistory:
    """One per instance, over the state bucket (``StateStore``)."""

    def __init__(self, store: Any, secrets: SecretProvider, log: JsonLog) -> None:
        self.store = store
        self.secrets = secrets
        self.log = log
        self.failures = 0
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any], status_code: int, body: dict[str, Any], latency_ms: float) -> None:
        if body.get("status") in NOT_RECORDED or body.get("reason") == IN_PROGRESS_REASON:
            return
        try:
            self._write(self.document(record, status_code, body, latency_ms), record)
        except Exception as error:  # the event's answer stands; the gap is said and counted
            with self._lock:
                self.failures += 1
            self.log.write("ERROR", "an event's history record could not be written", reason="history_not_written",
                           source=record.get("source"), delivery_id=record.get("delivery_id"),
                           error=type(error).__name__, history_failures=self.failures)

    def document(self, record: dict[str, Any], status_code: int, body: dict[str, Any], latency_ms: float) -> dict[str, Any]:
        key = self.secrets.get(HISTORY_KEY, deadline=Deadline(CALL_TIMEOUT_SECONDS))
        dead_letter = body.get("dead_letter") or record.get("dead_letter")
        person_id = body.get("person_id") or record.get("person_id")
        document = {
            "received_at": iso_time(record["received_at"]), "source": record.get("source"),
            "event": _text(record.get("event")), "delivery_id": _text(record.get("delivery_id")),
            "door": record.get("door"), "outcome": outcome_of(body, dead_letter), "status_code": status_code,
            "reason": body.get("reason"), "person_id": _text(person_id), "fields": body.get("fields") or [],
            "skipped": skipped_paths(body), "dead_letter": dead_letter, "latency_ms": latency_ms,
            "attempts": record.get("attempts"), "written_at": iso_time(time.time()),
        }
        if key:
            document["identities"] = sorted({identity_hash(key, kind, value) for kind, value in record.get("named", ())})
        return document

    def _write(self, document: dict[str, Any], record: dict[str, Any]) -> None:
        from google.api_core.exceptions import PreconditionFailed
        from google.cloud.storage.retry import DEFAULT_RETRY

        retry, bucket = DEFAULT_RETRY.with_timeout(CALL_TIMEOUT_SECONDS), self.store.bucket()
        delivery_id = record.get("delivery_id")
        name = record_name(record["received_at"], str(record.get("source")),
                           id_digest(delivery_id) if delivery_id else uuid.uuid4().hex)
        if delivery_id:  # the name the event's first record took, or this one
            pointer = bucket.blob(f"{IDS_PREFIX}{id_digest(delivery_id)}/{record.get('source')}")
            try:
                pointer.upload_from_string(name, if_generation_match=0, timeout=CALL_TIMEOUT_SECONDS, retry=retry)
            except PreconditionFailed:
                name = pointer.download_as_text(timeout=CALL_TIMEOUT_SECONDS, retry=retry)
        for _ in range(3):  # a concurrent writer (the queued door and its worker) means: read again
            blob = bucket.get_blob(name, timeout=CALL_TIMEOUT_SECONDS, retry=retry)
            old = json.loads(blob.download_as_bytes(timeout=CALL_TIMEOUT_SECONDS, retry=retry)) if blob else None
            new = merged(document, old)
            if new is None:
                return
            try:
                bucket.blob(name).upload_from_string(
                    json.dumps(new, separators=(",", ":")), content_type="application/json",
                    if_generation_match=int(blob.generation) if blob else 0, timeout=CALL_TIMEOUT_SECONDS, retry=retry)
                return
            except PreconditionFailed:
                continue
        raise RuntimeError("the record kept changing")


def merged(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record after this answer; None to leave it (``queued`` never undoes a later outcome).
    Attempts: the worker's count when it gives one, else one more than before (``queued``: none yet)."""
    if old is not None and new["outcome"] == "queued":
        return None
    old = old or {}
    attempts = new["attempts"] or old.get("attempts", 0) + (new["outcome"] != "queued")
    dead_letter = new["dead_letter"] or (old.get("dead_letter") if new["outcome"] not in SETTLED else None)
    result = {**new, "received_at": old.get("received_at", new["received_at"]), "attempts": attempts,
              "dead_letter": dead_letter}
    if "identities" in new or "identities" in old:
        result["identities"] = sorted({*old.get("identities", ()), *new.get("identities", ())})
    return result


def _text(value: Any) -> str | None:
    """Text from outside (a sender's event name and delivery id, a form's person id): masked as in the log."""
    return None if value is None else mask(str(value))[:128]
