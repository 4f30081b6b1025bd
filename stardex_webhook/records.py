"""The records that cross the pipeline's stages: plain, frozen values and nothing else.

accept ─► ``Delivery`` (the request as received) ─► ``Event`` (authentic and parsed)
prepare ─► ``MappedUpdate`` (the Stardex update, validated, with its person, note, stage, custom fields)
queued delivery and dead letters keep a ``Received`` (what is needed to parse the event again);
the bucket's de-duplication hands out ``Claim``s.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

# Header and query names that may carry a credential: never kept in a task or a dead letter.
CREDENTIAL_WORDS = ("signature", "token", "authorization", "secret", "cookie", "api-key", "apikey")


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers. A header sent twice reaches the app joined into
    one value by the server (with a comma); given twice here, the first value is kept."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = {}
        for key, value in pairs:
            self._items.setdefault(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as received, body already read within the size limit."""

    headers: Headers
    body: bytes
    received_at: float  # unix seconds, when the request arrived
    # The URL as the sender addressed it (scheme and host as forwarded by the load balancer) and
    # its query parameters (first value of each): for senders that sign the URL (HubSpot) or can
    # only carry a shared token in it (Jotform, Fillout).
    url: str = ""
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True)
class Transcript:
    """A form submission as a person reads it: the form's title and each question with its answer
    as text, in form order. Adapters of form tools fill it; a mapping with a ``note`` section
    keeps it on the person's timeline."""

    title: str | None
    answers: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", tuple(self.answers))


@dataclass(frozen=True)
class FollowUp:
    """A read from the sender's own API that an event needs before it can be mapped (the webhook
    carried only ids). ``target`` is a path under the sender's API base, or an absolute URL taken
    from the request, which is followed only when it lies under that base."""

    method: str  # "GET" or "POST"
    target: str
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    """An authentic, parsed webhook, ready for its mapping."""

    source: str
    event_type: str | None
    delivery_id: str | None
    payload: Any  # the parsed document the mapping reads (usually the whole JSON body)
    ignore_reason: str | None = None  # set for pings/tests: answer 200 ignored with this reason
    transcript: Transcript | None = None  # form tools: the submission, for an opt-in note
    # Why the sender's API was not read (an optional read without its key); said in the answer.
    incomplete: str | None = None
    # Form tools: (meaning, question title) for each question matched by its title, for ``plan``.
    questions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Handshake:
    """An answer the sender demands before any verification or mapping (e.g. an echo)."""

    status_code: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonRef:
    """How the resolver finds the Stardex person: by its id, else by emails, else by LinkedIn URL."""

    id: str | None
    emails: list[str]
    linkedin_url: str | None


@dataclass(frozen=True)
class NoteRequest:
    """A form submission to keep on the person's timeline as a Stardex activity, once the person
    is known; ``delivery_id`` lets a retried delivery find the note it already wrote."""

    activity_type: str
    title: str | None
    answers: tuple[tuple[str, str], ...]
    delivery_id: str | None


@dataclass(frozen=True)
class StageRequest:
    """What one event asks of a Stardex pipeline, and the sender's values it came from."""

    job_id: str | None
    stage: str | None  # a Stardex stage id when it is a UUID, else a stage name
    sender_job: str | None = None
    sender_stage: str | None = None
    occurred_at: float | None = None  # the event's time, epoch seconds; None when the sender gives none
    ignore_reason: str | None = None  # set when the mapping already knows no move can be made


@dataclass(frozen=True)
class NamedCustomFields:
    """What a mapping found for its named custom fields."""

    values: dict[str, Any]  # by field name, only those the payload filled
    declared: tuple[str, ...]  # every name the mapping declared
    options: Mapping[str, dict[str, str]] = field(default_factory=dict)  # the sender's answer → the Stardex option


@dataclass(frozen=True)
class MappedUpdate:
    """The Stardex PATCH body built from one payload, with the person it is for and what else to write."""

    update: dict[str, Any]
    person: PersonRef
    create: bool  # the person may be created when not found
    write_policy: str = "overwrite"  # who may change what: "overwrite" or "fill"
    note: NoteRequest | None = None
    stage: StageRequest | None = None  # a pipeline move
    # Custom fields by their Stardex names, resolved to attribute ids on delivery.
    named_custom_fields: NamedCustomFields | None = None
    # Values left out because they fail the update schema: ``{"path", "reason"}``, never the value.
    skipped: tuple[dict[str, str], ...] = ()
    # Where a form's fields were found (field → the question), for ``plan``; not sent anywhere.
    sources: tuple[tuple[str, str], ...] = ()
    incomplete: str | None = None  # the event's ``incomplete``: fields that could not be read


@dataclass(frozen=True)
class Claim:
    """A held de-duplication claim: its object's name and the generation this attempt wrote."""

    name: str
    generation: int


def without_credentials(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Headers (or query parameters) without any whose name says it holds a credential
    (``Signature``, ``X-Hook-Secret``, ``Authorization``, ``?token=``...)."""
    return [[name, value] for name, value in pairs
            if not any(word in name.lower().replace("_", "-") for word in CREDENTIAL_WORDS)]


def encode_body(body: bytes) -> dict[str, str]:
    """A body as JSON can hold it: its text when it is UTF-8, else base64."""
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def decode_body(document: Mapping[str, Any]) -> bytes:
    """The inverse of ``encode_body``; a document of another shape raises ``ValueError``."""
    body, encoding = document.get("body"), document.get("body_encoding", "utf-8")
    if not isinstance(body, str) or encoding not in ("utf-8", "base64"):
        raise ValueError("no body")
    return base64.b64decode(body, validate=True) if encoding == "base64" else body.encode("utf-8")


def iso_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Received:
    """What is kept of an authentic delivery, in a task and in a dead letter: enough to parse it
    again, never what proved it (signatures and tokens are dropped)."""

    source: str
    event: str | None
    delivery_id: str | None
    received_at: float
    headers: list[list[str]]
    query: list[list[str]]
    body: dict[str, str]  # {"body", "body_encoding"}

    @classmethod
    def of(cls, delivery: Delivery, event: Event) -> "Received":
        return cls(event.source, event.event_type, event.delivery_id, delivery.received_at,
                   without_credentials(delivery.headers.items()), without_credentials(delivery.query.items()),
                   encode_body(delivery.body))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "event": self.event, "delivery_id": self.delivery_id,
                "received_at": iso_time(self.received_at), "received_at_unix": self.received_at,
                "headers": self.headers, "query": self.query, **self.body}

    @classmethod
    def from_dict(cls, document: Any) -> "Received":
        """Read one back from a task or a dead letter; any other shape raises ``ValueError``."""
        if not isinstance(document, dict):
            raise ValueError("not an object")
        source, event, delivery_id = document.get("source"), document.get("event"), document.get("delivery_id")
        received_at = document.get("received_at_unix")
        if not isinstance(source, str) or not all(v is None or isinstance(v, str) for v in (event, delivery_id)):
            raise ValueError("source, event and delivery_id must be strings")
        if not isinstance(received_at, (int, float)) or isinstance(received_at, bool):
            raise ValueError("received_at_unix must be a number")
        headers, query = document.get("headers", []), document.get("query", [])
        for key, value in (("headers", headers), ("query", query)):
            if not isinstance(value, list) or not all(
                    isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
                    for pair in value):
                raise ValueError(f"{key} must be a list of [name, value]")
        decode_body(document)  # raises ValueError when the body is missing or not decodable
        body = {"body": document["body"], "body_encoding": document.get("body_encoding", "utf-8")}
        return cls(source, event, delivery_id, float(received_at), headers, query, body)

    def delivery(self) -> Delivery:
        """The delivery again, for replay and the worker: its signature was checked when it was received."""
        return Delivery(Headers(self.headers), decode_body(self.body), self.received_at, query=dict(self.query))
