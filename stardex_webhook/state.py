"""Cloud Storage (``STATE_BUCKET``): de-duplication claims, dead letters and payloads too large for a task; what
each holds and when it goes: docs/queued.md, "How it works", and docs/reliability.md. A claim is created
``pending`` with ``if_generation_match=0``: only if absent, atomically across instances, so one of two deliveries
wins (the protocol is ``pipeline.once``); one ``pending`` past the function's timeout was left by an attempt that
died and is taken over, so the event is not lost. Every failure to reach the bucket is ``RetryLater``
(``state_unavailable``): without it, de-duplication and dead letters cannot be promised, so the sender retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from typing import Any, Mapping

from .deadline import Deadline
from .errors import RetryLater, WebhookError
from .records import Claim, Received, iso_time
from .signatures import utf8_bytes

CLAIMS_PREFIX = "deliveries/"
DEAD_LETTERS_PREFIX = "dead-letters/"
PAYLOADS_PREFIX = "payloads/"
CALL_TIMEOUT_SECONDS = 10.0
# A pending claim older than this (or ``FUNCTION_TIMEOUT_SECONDS``) has no live holder: an attempt ends in time.
STALE_CLAIM_SECONDS = 60.0
PENDING, DONE = "pending", "done"


def _abandoned(held: Any, stale_seconds: float) -> bool:
    """Still pending ``stale_seconds`` on. A claim of the older shape (no ``state``) may be done: never."""
    if not isinstance(held, dict) or held.get("state") != PENDING:
        return False
    claimed_at = held.get("claimed_at")
    return isinstance(claimed_at, (int, float)) and time.time() - claimed_at > stale_seconds


def call_limits(deadline: Deadline | None, doing: str) -> dict[str, Any]:
    """One Cloud Storage call's ``timeout`` and ``retry`` (Google's, of transient errors): at most
    ``CALL_TIMEOUT_SECONDS``, within the webhook's deadline (a sender is waiting for the answer)."""
    seconds = CALL_TIMEOUT_SECONDS if deadline is None else min(CALL_TIMEOUT_SECONDS, deadline.remaining())
    if seconds <= 0:
        raise RetryLater("state_unavailable", f"no time left to {doing}")
    from google.cloud.storage.retry import DEFAULT_RETRY

    return {"timeout": seconds, "retry": DEFAULT_RETRY.with_timeout(seconds)}


def digest(text: str) -> str:
    """A delivery id's name in the bucket (claims, history). Never raises: an id may hold a lone
    surrogate (``"\\ud800"`` is valid JSON)."""
    return hashlib.sha256(utf8_bytes(text)).hexdigest()


class StateStore:
    def __init__(self, bucket_name: str) -> None:
        self.bucket_name = bucket_name
        self._bucket: Any = None
        self._lock = threading.Lock()

    def bucket(self) -> Any:
        with self._lock:
            if self._bucket is None:
                from google.cloud import storage

                self._bucket = storage.Client().bucket(self.bucket_name)
            return self._bucket

    def claim(self, source: str, delivery_id: str, deadline: Deadline | None = None,
              stale_seconds: float = STALE_CLAIM_SECONDS) -> Claim | str:
        """The ``Claim``, or another attempt's claim's state (``PENDING``/``DONE``). With a ``deadline``
        every call ends within it: a hung bucket is a 503 in time."""
        from google.api_core.exceptions import PreconditionFailed

        doing = "claim the delivery id"
        name = f"{CLAIMS_PREFIX}{source}/{digest(delivery_id)}"
        token = uuid.uuid4().hex
        blob = self._call(lambda: self.bucket().blob(name))
        data = json.dumps({"source": source, "claimed_at": time.time(), "token": token, "state": PENDING})

        def write(generation: int) -> None:
            self._call(lambda: blob.upload_from_string(data, content_type="application/json",
                                                       if_generation_match=generation, **call_limits(deadline, doing)),
                       PreconditionFailed)

        def read() -> tuple[Any, Any]:
            existing = self._call(lambda: self.bucket().get_blob(name, **call_limits(deadline, doing)))
            if existing is None:
                return None, None
            return existing, self._call(lambda: json.loads(existing.download_as_bytes(**call_limits(deadline, doing))))

        try:
            write(0)
        except PreconditionFailed:
            existing, held = read()
            if _abandoned(held, stale_seconds):
                try:  # taken over only if nobody changed it since it was read
                    write(int(existing.generation))
                    return Claim(name, int(blob.generation or 0))
                except PreconditionFailed:
                    existing, held = read()
            if not isinstance(held, dict) or held.get("token") != token:
                # Gone meanwhile (released) or unreadable: never a duplicate, the sender tries again.
                settled = isinstance(held, dict) and held.get("state") != PENDING
                return DONE if settled else PENDING
            blob = existing  # ours after all: a retried upload met the object its first try wrote
        return Claim(name, int(blob.generation or 0))

    def settle(self, claim: Claim, deadline: Deadline | None = None) -> None:
        """Every later delivery is a duplicate, however late. Only the generation this delivery wrote
        is replaced (a claim taken over meanwhile is left alone)."""
        from google.api_core.exceptions import PreconditionFailed

        limits = call_limits(deadline, "mark the claim done")
        data = json.dumps({"state": DONE, "settled_at": time.time()})
        blob = self._call(lambda: self.bucket().blob(claim.name))
        with contextlib.suppress(PreconditionFailed):
            self._call(lambda: blob.upload_from_string(data, content_type="application/json",
                                                       if_generation_match=claim.generation or None, **limits),
                       PreconditionFailed)

    def taken_over(self, claim: Claim, deadline: Deadline | None = None) -> bool:  # by a later delivery, or settled
        try:  # not known (the bucket fails): no, as before this check; the task's own attempt must not fail for it
            held = self._call(lambda: self.bucket().get_blob(claim.name, **call_limits(deadline, "read the claim")))
        except RetryLater:
            return False
        return held is not None and bool(claim.generation) and int(held.generation or 0) != claim.generation

    def release(self, claim: Claim, deadline: Deadline | None = None) -> None:
        """Delete the claim (only the generation we wrote), so the sender's retry is not a duplicate."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        limits = call_limits(deadline, "release the claim")
        with contextlib.suppress(NotFound, PreconditionFailed):
            self._call(lambda: self.bucket().delete_blob(claim.name, if_generation_match=claim.generation or None,
                                                         **limits), NotFound, PreconditionFailed)

    def put_dead_letter(self, letter: Mapping[str, Any], deadline: Deadline | None = None) -> str:  # its name
        return self._put_new(DEAD_LETTERS_PREFIX, letter, deadline, "keep the dead letter")

    def put_payload(self, source: str, document: Mapping[str, Any], deadline: Deadline | None = None) -> str:
        """Keep a delivery too large for a task; its name (``payloads/<source>/<time>-<id>.json``)."""
        return self._put_new(PAYLOADS_PREFIX, {**document, "source": source}, deadline, "keep the payload")

    def payload(self, name: str, deadline: Deadline | None = None) -> dict[str, Any] | None:  # None if there is none
        return self._read(name, deadline) if name.startswith(PAYLOADS_PREFIX) else None

    def delete_payload(self, name: str, deadline: Deadline | None = None) -> None:
        if name.startswith(PAYLOADS_PREFIX):
            self._delete(name, deadline)

    def _put_new(self, prefix: str, document: Mapping[str, Any], deadline: Deadline | None, doing: str) -> str:
        """A new object, as ASCII JSON (a lone surrogate is written and read back). A 412 is a retried
        upload meeting its first try's write (the name is ours alone): kept once, not a 503."""
        from google.api_core.exceptions import PreconditionFailed
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        key = digest(str(document.get("delivery_id") or uuid.uuid4()))[:16]
        name = f"{prefix}{document['source']}/{stamp}-{key}-{uuid.uuid4().hex[:8]}.json"
        data = json.dumps(document, separators=(",", ":"), allow_nan=False)
        limits, blob = call_limits(deadline, doing), self._call(lambda: self.bucket().blob(name))
        with contextlib.suppress(PreconditionFailed):
            self._call(lambda: blob.upload_from_string(data.encode("ascii"), content_type="application/json",
                                                       if_generation_match=0, **limits), PreconditionFailed)
        return name

    def dead_letters(self, prefix: str = "") -> list[str]:
        """Names of the dead letters under ``dead-letters/<prefix>``, oldest first by name."""
        full = dead_letter_name(prefix) if prefix else DEAD_LETTERS_PREFIX
        limits = call_limits(None, "list dead letters")
        blobs = self._call(lambda: list(self.bucket().list_blobs(prefix=full, **limits)))
        return sorted(blob.name for blob in blobs)

    def dead_letter(self, name: str) -> dict[str, Any] | None:  # None when there is none, or for a "." or ".." segment
        return self._read(dead_letter_name(name))

    def delete_dead_letter(self, name: str) -> None:
        self._delete(dead_letter_name(name))

    def _read(self, name: str, deadline: Deadline | None = None) -> dict[str, Any] | None:
        if not _plain(name):
            return None
        blob = self._call(lambda: self.bucket().get_blob(name, **call_limits(deadline, "read")))
        if blob is None:
            return None
        return json.loads(self._call(lambda: blob.download_as_bytes(**call_limits(deadline, "read"))))

    def _delete(self, name: str, deadline: Deadline | None = None) -> None:
        from google.api_core.exceptions import NotFound

        if not _plain(name):
            return
        with contextlib.suppress(NotFound):
            self._call(lambda: self.bucket().delete_blob(name, **call_limits(deadline, "delete")), NotFound)

    @staticmethod
    def _call(action, *handled: type[Exception]):
        """Any failure but those ``handled`` is ``RetryLater`` (a missing bucket too: the operator must
        see a deployment fault, and no event is lost)."""
        try:
            return action()
        except (RetryLater, *handled):  # RetryLater: no time left for the call (``call_limits``)
            raise
        except Exception as error:  # transport, auth, 5xx: the bucket cannot be reached now
            raise RetryLater("state_unavailable", f"the state bucket could not be reached ({type(error).__name__})") from None


def _plain(name: str) -> bool:
    """No ``.`` or ``..`` segment: a proxy may resolve them, and a letter's name must never reach a claim."""
    return not any(part in (".", "..") for part in name.split("/"))


def dead_letter_document(received: Received, error: WebhookError, attempts: int) -> dict[str, Any]:
    """A dead letter: the delivery as kept, why it failed, after how many attempts."""
    return {**received.to_dict(), "error": {"status_code": error.status_code, **error.body()},
            "attempts": attempts, "dead_lettered_at": iso_time(time.time())}


def dead_letter_name(name: str) -> str:
    """A dead letter's object name, given with or without its ``dead-letters/`` prefix."""
    return name if name.startswith(DEAD_LETTERS_PREFIX) else DEAD_LETTERS_PREFIX + name
