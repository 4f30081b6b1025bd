"""``python -m stardex_webhook.plan``: what a webhook would change in Stardex, before anything writes.

    plan SOURCE BODY_FILE [--header "Name: value"]... [--headers-file F] [--url URL] [--unsigned] [--json]
    plan --dead-letter NAME [--json]          a dead letter from STATE_BUCKET
    plan --check-mappings [MAPPINGS_DIR] [--samples DIR]

The plan door: the pipeline's own stages with the same settings and mapping files
(``pipeline.Pipeline``): ``accept`` (body limit, handshake, signature, skipped only with
``--unsigned``, parse), ignored?, ``prepare`` (follow-up read, mapping, schema), then ``process``
with a Stardex client whose reads go to Stardex and whose writes are recorded and never sent. So
the calls listed are exactly those an apply by an instance that knows nothing of the person yet
would make, in order, and the diff, the summary, ``--json`` and the exit code all come from the
recorded writes (the person's fields, custom fields, a stage move, a note). Exit codes follow
``terraform plan -detailed-exitcode``: 0 nothing would be written, 2 something would, 1 error. Personal data is printed (it
is the operator's own terminal, as with a dry run); secrets never are.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO
from urllib.parse import parse_qsl, urlsplit

from .deadline import Deadline
from .errors import ConfigurationError, Unauthorized, Unprocessable, WebhookError
from .pipeline import Pipeline
from .policy import ADD, CHANGE, KEEP, SAME, WritePlan, plan_update
from .records import Handshake, MappedUpdate, Received
from .resolver import stardex_failure
from .stardex import StardexError
from .validation import schema_errors
from .records import Delivery, Headers
from .config import signing_key_name
from .contacts import CONTACT_LISTS
from .custom_fields import stored_value
from .send_sample import with_local_signing_keys

READ_ONLY = "plan: read-only — nothing is written to Stardex"
EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
# The id a person an apply would create is shown under (Stardex gives the real one).
NEW_PERSON = "(new person)"
NEW_CANDIDATE = "(the candidate the PATCH makes)"
# A person that does not exist yet, as a read shows one: every field empty. A create is planned
# against it, so each field it would write reads as an addition.
EMPTY_PERSON: dict[str, Any] = {
    "name": None, "first_name": None, "last_name": None, "current_job_title": None, "current_company_name": None,
    "linkedin_location": None, "linkedin_headline": None, "address": None, "linkedin_public_id": None,
    "emails": [], "phones": [], "candidates": [], "custom_fields": None,
}


# ---- the Stardex client of a plan -------------------------------------------------------------

@dataclass
class Call:
    """One Stardex call of the apply: ``made`` for a read this plan made, never for a write."""

    method: str
    path: str
    body: Any = None
    write: bool = False
    made: bool = False
    answer: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body, "write": self.write,
                "made": self.made, "answer": self.answer}


class PlanningClient:
    """The Stardex client as the Deliverer uses it, with writes replaced by a record. Reads (GET a
    person, POST persons/search, GET activities, GET custom-fields/persons) go to Stardex; PATCH,
    POST persons, POST person-activities and POST candidates/update-stage are recorded and
    answered as Stardex answers them, and never sent. Any
    other method is missing on purpose: a new kind of call fails the plan rather than reaching
    Stardex unseen."""

    def __init__(self, client: Any, api_path: str) -> None:
        self._client = client
        self._prefix = api_path.rstrip("/")
        self.calls: list[Call] = []
        self.extra_reads: list[Call] = []
        self.person: dict[str, Any] | None = None  # the person as last read within this plan
        self.custom_field_definitions: list[Any] = []
        self.joined: dict[str, str] = {}  # person id → the job a planned PATCH's job_id makes them a candidate on

    def _read(self, call: Call, action: Callable[[], Any]) -> Any:
        self.calls.append(call)
        call.made = True
        try:
            answer = action()
        except Exception as error:
            call.answer = f"failed: {getattr(error, 'status_code', '') or type(error).__name__}"
            raise
        return answer

    def search_persons(self, deadline: Any, **query: Any) -> list[dict[str, Any]]:
        body = {key: value for key, value in query.items() if value is not None}
        body.setdefault("limit", 2)
        call = Call("POST", f"{self._prefix}/persons/search", body)
        found = self._read(call, lambda: self._client.search_persons(deadline, **query))
        call.answer = f"{len(found)} found"
        if len(found) == 1 and isinstance(found[0], dict):
            self.person = found[0]
        return found

    def get_person(self, deadline: Any, person_id: str) -> dict[str, Any]:
        call = Call("GET", f"{self._prefix}/persons/{person_id}")
        self.person = self._read(call, lambda: self._client.get_person(deadline, person_id))
        call.answer = "the person"
        job_id, candidates = self.joined.get(person_id), self.person.get("candidates") or []
        if job_id and not any(str(item.get("job_id")) == job_id for item in candidates if isinstance(item, dict)):
            # After the PATCH an apply makes, its read shows the person on the job: a candidate the plan cannot name.
            return {**self.person, "candidates": [*candidates, {"job_id": job_id, "candidate_id": NEW_CANDIDATE}]}
        return self.person

    def list_activities(self, deadline: Any, person_id: str, limit: int = 100) -> list[dict[str, Any]]:
        call = Call("GET", f"{self._prefix}/persons/{person_id}/activities?offset=0&limit={limit}")
        found = self._read(call, lambda: self._client.list_activities(deadline, person_id, limit))
        call.answer = f"{len(found)} activities"
        return found

    def read_for_diff(self, deadline: Any, person_id: str) -> None:
        """A read the apply would not make (``extra_reads``): the person, for the diff only."""
        call = Call("GET", f"{self._prefix}/persons/{person_id}", made=True, answer="the person")
        self.extra_reads.append(call)
        try:
            self.person = self._client.get_person(deadline, person_id)
        except StardexError as error:
            call.answer = f"failed: {error.status_code}"
            raise stardex_failure(error, "read the person") from None

    def update_person(self, deadline: Any, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(Call("PATCH", f"{self._prefix}/persons/{person_id}", body, write=True, answer="not made"))
        if body.get("job_id"):
            self.joined[person_id] = str(body["job_id"])
        return {"message": "Person updated successfully"}

    def create_person(self, deadline: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(Call("POST", f"{self._prefix}/persons", body, write=True, answer="not made"))
        return {"id": NEW_PERSON, "name": body.get("name"), "emails": [], "phones": []}

    def create_activity(self, deadline: Any, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(Call("POST", f"{self._prefix}/person-activities", body, write=True, answer="not made"))
        return {"id": "(new activity)", "person_id": body.get("person_id"), "activity_type": body.get("activity_type")}

    def person_custom_fields(self, deadline: Any) -> list[dict[str, Any]]:
        call = Call("GET", f"{self._prefix}/custom-fields/persons")
        found = self._read(call, lambda: self._client.person_custom_fields(deadline))
        call.answer = f"{len(found)} custom fields"
        self.custom_field_definitions = list(found)
        return found

    def update_stage(self, deadline: Any, body: dict[str, Any]) -> dict[str, Any]:
        """A stage move is a write: recorded, answered as a move Stardex made, never sent."""
        self.calls.append(Call("POST", f"{self._prefix}/candidates/update-stage", body, write=True, answer="not made"))
        return {"job_id": body.get("job_id"), "previous_stage_id": None,
                "new_stage_id": body.get("stage_id") or body.get("stage_name")}


# ---- the plan ---------------------------------------------------------------------------------

@dataclass
class Plan:
    """Everything a plan found, in pipeline order; ``to_dict`` is what ``--json`` prints."""

    source: str
    signature: str
    dead_letter: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    handshake: dict[str, Any] | None = None
    follow_up: dict[str, Any] | None = None
    incomplete: str | None = None  # what the webhook alone could not give (the read needs a key)
    update: dict[str, Any] | None = None
    write_policy: str | None = None
    schema_errors: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # values an apply leaves out, by path
    field_sources: dict[str, str] = field(default_factory=dict)  # field → the question it came from
    person: dict[str, Any] | None = None
    write_plan: Any = None  # policy.WritePlan
    note: dict[str, Any] | None = None
    custom_fields: list[dict[str, Any]] = field(default_factory=list)  # each written value, by name
    stage: dict[str, Any] | None = None  # the move an apply would make, or why none
    calls: list[Call] = field(default_factory=list)
    extra_reads: list[Call] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def writes(self) -> list[Call]:
        """The writes an apply would make, as recorded: what every other answer here counts."""
        return [call for call in self.calls if call.write]

    @property
    def changes(self) -> bool:
        return self.error is None and bool(self.writes)

    @property
    def outcome(self) -> str:
        if self.error is not None:
            return "error"
        if self.person is None:
            return "ignored"
        return "changes" if self.changes else "no_change"

    @property
    def exit_code(self) -> int:
        return {"error": EXIT_ERROR, "changes": EXIT_CHANGES}.get(self.outcome, EXIT_NO_CHANGES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": READ_ONLY, "read_only": True, "source": self.source, "signature": self.signature,
            "dead_letter": self.dead_letter, "handshake": self.handshake, "event": self.event,
            "follow_up": self.follow_up, "incomplete": self.incomplete, "update": self.update, "write_policy": self.write_policy,
            "schema_errors": self.schema_errors, "skipped": self.skipped, "field_sources": self.field_sources,
            "person": self.person,
            "diff": diff_document(self.write_plan) if self.write_plan is not None else None, "note": self.note,
            "custom_fields": self.custom_fields, "stage": self.stage,
            "calls": [call.to_dict() for call in self.calls],
            "extra_reads": [call.to_dict() for call in self.extra_reads],
            "changes": self.changes, "outcome": self.outcome, "error": self.error, "exit_code": self.exit_code,
        }


def _error(error: WebhookError) -> dict[str, Any]:
    return {"status_code": error.status_code, **{key: value for key, value in error.body().items() if key != "status"},
            "status": error.status}


def plan_delivery(pipeline: Pipeline, source_name: str, delivery: Any, verify: bool = True,
                  signature: str | None = None) -> Plan:
    """The pipeline's stages on ``delivery`` up to the write; every read is real, no write is made."""
    plan = Plan(source_name, "not checked" if verify else (signature or "skipped (--unsigned)"))
    if source_name not in pipeline.sources:
        plan.error = {"status_code": 404, "status": "not_found", "reason": "unknown_source",
                      "message": f"no source {source_name!r}; one of: {', '.join(sorted(pipeline.sources))}"}
        return plan
    deadline = Deadline(pipeline.settings.stardex_deadline_seconds)
    client: PlanningClient | None = None
    try:
        accepted = pipeline.accept(pipeline.source(source_name), delivery, deadline, verify=verify)
        if isinstance(accepted, Handshake):
            plan.handshake = {"status_code": accepted.status_code, "body": accepted.body}
            if verify:
                plan.signature = "not checked: the sender's handshake comes before it"
            return plan
        if verify:
            plan.signature = "checked"
        event = accepted
        ignored = pipeline.ignored(event)
        plan.event = {"type": event.event_type, "delivery_id": event.delivery_id, "acted_on": ignored is None,
                      "ignored": ignored.get("reason") if ignored else None}
        if ignored is not None:
            return plan
        follow_up = pipeline.sources[source_name].follow_up(event)
        event = pipeline.follow_up(event, deadline)
        if follow_up is not None and not event.incomplete:
            plan.follow_up = {"method": follow_up.method, "target": follow_up.target}
        plan.incomplete = event.incomplete
        mapped = pipeline.mapped(event)
        plan.update, plan.write_policy = mapped.update, mapped.write_policy
        plan.field_sources = dict(mapped.sources)
        try:
            mapped = pipeline.validated(mapped)
        except Unprocessable as error:
            plan.schema_errors = error.extra.get("errors") or schema_errors(mapped.update)
            raise
        plan.skipped = list(mapped.skipped)
        client = PlanningClient(pipeline.stardex(), urlsplit(pipeline.settings.stardex_api_base).path)
        _process(pipeline, client, mapped, plan, deadline)
    except WebhookError as error:
        plan.error = _error(error)
        if isinstance(error, Unauthorized):
            plan.signature = "refused"
    finally:
        if client is not None:
            plan.calls, plan.extra_reads = client.calls, client.extra_reads
    return plan


def _process(pipeline: Pipeline, client: PlanningClient, mapped: MappedUpdate, plan: Plan, deadline: Deadline) -> None:
    """The process stage on a client that records its writes; then the diff of what it recorded."""
    record: dict[str, Any] = {}
    try:
        answer = pipeline.process(mapped, deadline, record, client=client)
    except Unprocessable as error:
        if error.reason == "person_not_found":
            plan.person = {"resolution": "not_found", "id": mapped.person.id, "searched": _searched(client)}
        raise
    person_id = record.get("person_id")
    searched = _searched(client)
    if answer.get("created"):
        plan.person = {"resolution": "create", "id": None, "searched": searched, "stored": None}
        stored = EMPTY_PERSON
    else:
        if client.person is None:
            # An overwrite by id with no list to merge goes out without a read (it would cost as
            # much as the write): the plan reads the person for the diff, and says so.
            client.read_for_diff(deadline, person_id)
        stored = client.person
        found_by = None if mapped.person.id else (searched[-1] if searched else None)
        plan.person = {"resolution": "id" if mapped.person.id else "search", "id": person_id,
                       "name": stored.get("name"), "found_by": found_by, "stored": stored}
    plan.write_plan = plan_update(mapped.update, stored, mapped.write_policy, pipeline.settings.phone_default_region)
    plan.custom_fields = _custom_fields_written(client)
    if mapped.stage is not None:
        move = next((call for call in client.calls if call.write and call.path.endswith("/candidates/update-stage")), None)
        plan.stage = {"action": "move" if move else "keep", "outcome": answer.get("stage"),
                      "body": move.body if move else None}
    note = answer.get("note")
    if note == "written":
        written = next(call for call in client.calls if call.path.endswith("/person-activities"))
        plan.note = {"action": "write", "activity_type": written.body["activity_type"],
                     "text": written.body["activity_content"]}
    elif note == "already_written":
        plan.note = {"action": "already_written", "activity_type": mapped.note.activity_type, "text": None}


def _custom_fields_written(client: PlanningClient) -> list[dict[str, Any]]:
    """Each custom-field value a recorded write carries, named as Stardex names it."""
    names = {definition.get("id"): definition.get("name") for definition in client.custom_field_definitions
             if isinstance(definition, dict)}
    person = client.person or {}
    written = []
    for call in client.calls:
        for item in (call.body.get("custom_fields") or () if call.write and isinstance(call.body, dict) else ()):
            if isinstance(item, dict):
                _shown, before = stored_value(person, str(item.get("attribute_id")))
                after = item.get("value", item.get("add_values"))
                written.append({"name": names.get(item.get("attribute_id"), item.get("attribute_id")),
                                "attribute_id": item.get("attribute_id"), "value": after, "before": before,
                                "action": "add" if before in (None, "", []) else "change"})
    return written


def _searched(client: PlanningClient) -> list[dict[str, Any]]:
    """The searches made, each as its key and how many it found."""
    return [{**{key: value for key, value in call.body.items() if key in ("email", "linkedin_url")},
             "found": call.answer} for call in client.calls if call.path.endswith("/persons/search")]


# ---- reading what to plan ---------------------------------------------------------------------

def parse_headers(lines: Sequence[str], where: str) -> list[tuple[str, str]]:
    """``Name: value`` lines (blank lines and ``#`` comments skipped); anything else is refused."""
    pairs = []
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        name, colon, value = text.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise ValueError(f"{where} line {number}: expected 'Name: value'")
        pairs.append((name, value.strip()))
    return pairs


def delivery_from_dead_letter(letter: dict[str, Any]) -> tuple[str, Delivery]:
    """The source and delivery kept in a dead letter (``ValueError`` for another document)."""
    received = Received.from_dict(letter)
    return received.source, received.delivery()


# ---- printing ---------------------------------------------------------------------------------

SYMBOLS = {ADD: "+", CHANGE: "~", KEEP: "="}  # as ``terraform plan`` marks them


def diff_document(plan: WritePlan) -> dict[str, Any]:
    """The write plan as plain JSON: ``plan --json``'s ``diff``."""
    return {
        "write_policy": plan.write_policy,
        "body": copy.deepcopy(plan.body),
        "unknown": list(plan.unknown),
        "fields": [
            {"field": item.field, "action": item.action, "symbol": SYMBOLS[item.action], "before": item.before,
             "after": item.after, "reason": item.reason,
             **({"entries": [{"action": entry.action, "symbol": SYMBOLS[entry.action],
                              "contact_data_type": entry.contact_data_type, "value": entry.value,
                              "reason": entry.reason} for entry in item.entries]}
                if item.field in CONTACT_LISTS else {})}
            for item in plan.fields
        ],
    }


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _field_line(item: Any, width: int) -> list[str]:
    """One field as ``terraform plan`` prints one: ``+`` added, ``~`` changed, ``=`` kept, with why."""
    name = item.field.ljust(width)
    if item.entries or item.field in ("emails", "phone_numbers"):
        lines = [f"      {SYMBOLS[item.action]} {name} = ["]
        # A sender's entry the person already has (policy's "same value") is a stored entry listed
        # above it: shown once, as stored, and counted on the closing line.
        repeated = sum(1 for entry in item.entries if entry.reason == SAME)
        for entry in item.entries:
            if entry.reason == SAME:
                continue
            reason = f"  # {entry.reason}" if entry.reason else ""
            lines.append(f"          {SYMBOLS[entry.action]} {entry.contact_data_type} {_value(entry.value)}{reason}")
        notes = [item.reason or "", f"{repeated} of the update's entries already stored" if repeated else ""]
        lines.append("        ]" + ("  # " + "; ".join(note for note in notes if note) if any(notes) else ""))
        return lines
    if item.action == "add":
        text = f"{name} = {_value(item.after)}"
    elif item.action == "change":
        before = "(not shown)" if item.before is None else _value(item.before)
        text = f"{name} = {before} -> {_value(item.after)}"
    elif item.before is None:
        return [f"      = {name}  # {item.reason} (not sent: {_value(item.after)})"]
    elif item.reason == "same value" or str(item.reason).startswith("same value"):
        text = f"{name} = {_value(item.before)}"
    else:
        return [f"      = {name} = {_value(item.before)}  # {item.reason} (not sent: {_value(item.after)})"]
    reason = f"  # {item.reason}" if item.reason else ""
    return [f"      {SYMBOLS[item.action]} {text}{reason}"]


def render(plan: Plan) -> str:
    """The plan as text: the read-only line first, then each stage in pipeline order."""
    out = [READ_ONLY, f"source: {plan.source}", f"signature: {plan.signature}"]
    if plan.dead_letter:
        letter = plan.dead_letter
        out.append(f"dead letter: {letter['name']} (failed {letter.get('status_code')} {letter.get('reason')}, "
                   f"{letter.get('attempts')} attempt(s))")
    if plan.handshake:
        out.append(f"handshake: the function answers {plan.handshake['status_code']} {_value(plan.handshake['body'])}"
                   " before any mapping")
    if plan.event:
        event = plan.event
        what = f"event: {event['type'] or '(no type)'}" + (f", delivery {event['delivery_id']}" if event["delivery_id"] else "")
        if event["acted_on"]:
            out.append(f"{what}: the mapping acts on it")
        else:
            reason = event["ignored"]
            why = "the mapping does not act on this event" if reason == "event_not_mapped" else "the sender's own"
            out.append(f"{what}: ignored ({reason}: {why}); an apply answers 200 ignored and calls nothing")
    if plan.follow_up:
        out.append(f"follow-up read: {plan.follow_up['method']} {plan.follow_up['target']} (the sender's API)")
    if plan.incomplete:
        out.append(f"follow-up read: none, {plan.incomplete}")
    if plan.update is not None:
        verdict = "valid" if not plan.schema_errors else f"{len(plan.schema_errors)} schema error(s)"
        if plan.skipped and not plan.schema_errors:
            verdict = f"valid once {len(plan.skipped)} value(s) are left out"
        out.append(f"update (write policy {plan.write_policy}): {verdict}")
        out += [f"  {name}: {_value(value)}" + (f"  (from the question {plan.field_sources[name]!r})"
                                                if name in plan.field_sources else "")
                for name, value in plan.update.items()]
        out += [f"  skipped {item['path']}: {item['reason']} (left out; the rest is written)" for item in plan.skipped]
        out += [f"  ! {error['path']}: {error['message']}" for error in plan.schema_errors]
    out += _render_person(plan)
    if plan.calls or plan.extra_reads:
        out += ["", "Stardex calls an apply would make, in order:"]
        for number, call in enumerate(plan.calls, 1):
            out.append(f"  {number}. {_call_text(call)}")
        for call in plan.extra_reads:
            out.append(f"  (and for this diff only: {call.method} {call.path}: {call.answer}; an apply under "
                       "overwrite sends the PATCH without reading first)")
    if plan.error:
        error = plan.error
        message = f": {error['message']}" if error.get("message") else ""
        out += ["", f"error: {error['status_code']} {error['status']} {error['reason']}{message}"]
    return "\n".join(out) + "\n"


def _render_person(plan: Plan) -> list[str]:
    person = plan.person
    if person is None:
        return []
    keys = ", ".join(f"{key} {search[key]}" for search in person.get("searched") or [] for key in search if key != "found")
    if person["resolution"] == "not_found":
        if person.get("id"):
            return [f"person: not found: Stardex has no person {person['id']}"]
        return [f"person: not found: no Stardex person matches ({keys or 'no email or LinkedIn URL'})"]
    if person["resolution"] == "create":
        lines = [f"person: would create (no Stardex person matches: {keys}; the mapping creates one)", "",
                 f"  + person {NEW_PERSON} {{"]
    else:
        how = "by id, from the payload" if person["resolution"] == "id" else (
            "found by search: " + ", ".join(f"{key} {value}" for key, value in (person["found_by"] or {}).items()
                                            if key != "found"))
        name = f" ({person['name']})" if person.get("name") else ""
        lines = [f"person: {person['id']}{name}, {how}", "",
                 f"  {'~' if plan.changes else '='} person {person['id']}{name} {{"]
    write_plan = plan.write_plan
    width = max((len(item.field) for item in write_plan.fields), default=0)
    for item in write_plan.fields:
        lines += _field_line(item, width)
    for value in plan.custom_fields:  # a custom field is one of the person's fields: in the diff and its counts
        if value["action"] == "add":
            lines.append(f"      + custom field {_value(value['name'])} = {_value(value['value'])}")
        else:
            lines.append(f"      ~ custom field {_value(value['name'])} = {_value(value['before'])} -> {_value(value['value'])}")
    lines.append("    }")
    counts = {action: sum(1 for item in write_plan.fields if item.action == action) for action in ("add", "change", "keep")}
    for value in plan.custom_fields:
        counts[value["action"]] += 1
    if plan.stage is not None:
        stage = plan.stage
        if stage["action"] == "move":
            target = stage["body"].get("stage_id") or stage["body"].get("stage_name")
            lines.append(f"  ~ stage on job {stage['body'].get('job_id')} -> {_value(target)}")
        else:
            lines.append(f"  = stage: no move ({stage['outcome']})")
    if plan.note:
        if plan.note["action"] == "write":
            lines.append(f"  + note ({plan.note['activity_type']}):")
            lines += [f"      | {line}" for line in plan.note["text"].splitlines()]
        else:
            lines.append(f"  = note ({plan.note['activity_type']}): already written")
    lines.append("")
    if plan.changes:
        extras = ["1 stage move" if plan.stage and plan.stage["action"] == "move" else "",
                  "1 note to write" if plan.note and plan.note["action"] == "write" else ""]
        create = "1 person to create: " if person["resolution"] == "create" else ""
        lines.append(f"Plan: {create}{counts['add']} to add, {counts['change']} to change, {counts['keep']} kept"
                     + "".join(f", {extra}" for extra in extras if extra) + ".")
    else:
        lines.append("No changes: the person already holds everything this update would write.")
    return lines


def _call_text(call: Call) -> str:
    if call.write:
        if call.path.endswith("/person-activities"):
            what = f"activity_type {call.body.get('activity_type')}"
        else:
            what = "fields: " + ", ".join(sorted(call.body))
        return f"{call.method} {call.path} ({what}): write, not made"
    body = f" {_value(call.body)}" if call.body is not None else ""
    return f"{call.method} {call.path}{body}: read, made by this plan ({call.answer})"


# ---- --check-mappings -------------------------------------------------------------------------

API_SUFFIX = ".api.json"


def sample_files(folder: Path, source_names: Sequence[str]) -> tuple[dict[str, list[Path]], list[Path]]:
    """A user's sample bodies: ``<source>.json`` or ``<source>-<anything>.json`` (also ``_`` or ``.``
    after the name), each with an optional ``<same name>.api.json`` beside it (the answer of a
    follow-up read); the longest source name that fits wins (``google-forms-2.json``). Files that
    name no source are returned apart, so a typo is seen, not skipped."""
    found: dict[str, list[Path]] = {}
    strays = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(API_SUFFIX):
            continue
        stem = path.name[: -len(".json")]
        fits = [name for name in source_names if stem == name or (stem.startswith(name) and stem[len(name)] in "-_.")]
        if fits:
            found.setdefault(max(fits, key=len), []).append(path)
        else:
            strays.append(path)
    return found, strays


def check_sample(pipeline: Pipeline, source_name: str, body_path: Path) -> dict[str, Any]:
    """One sample body through the pipeline's accept and prepare stages, as the sender would send
    it (signed by ``send_sample``), with ``<sample>.api.json`` as the follow-up read's answer."""
    from .send_sample import signed_request

    source, mapping = pipeline.source(source_name), pipeline.mappings[source_name]
    result: dict[str, Any] = {"sample": body_path.name, "fills": [], "finds_nothing_for": [], "faults": []}
    url = f"http://127.0.0.1:8080/{source.name}"
    try:
        headers, body = signed_request(source.name, body_path.read_bytes(), source.sample_key(), url=url)
        event = pipeline.accept(source, Delivery(Headers(headers.items()), body, time.time(), url=url),
                                Deadline(pipeline.settings.stardex_deadline_seconds), verify=False)
    except WebhookError as error:
        result["faults"].append(f"the {source.name} adapter cannot parse it ({error.reason})")
        return result
    if isinstance(event, Handshake):
        result["faults"].append("fills nothing: it is the sender's handshake")
        return result
    result["event"] = event.event_type
    ignored = pipeline.ignored(event)
    if ignored is not None:
        result["faults"].append(f"fills nothing: event {event.event_type!r} is ignored ({ignored['reason']})")
        return result
    if source.follow_up(event) is not None:
        answer = body_path.with_name(body_path.name[: -len(".json")] + API_SUFFIX)
        if not answer.is_file():
            result["faults"].append(f"needs {answer.name}: the answer of {source.name}'s follow-up read")
            return result
        result["follow_up"] = answer.name
        event = source.with_follow_up(event, json.loads(answer.read_text(encoding="utf-8")))
    mapped = pipeline.mapped(event)
    read = [item for item in mapping.variant(event.payload).fields if item.path is not None]
    paths = [item.name for item in read]
    result["fills"] = [name for name in paths if name in mapped.update] + (["job_id"] if "job_id" in mapped.update else [])
    result["finds_nothing_for"] = [name for name in paths if name not in mapped.update]
    result["paths"] = {item.name: item.optional for item in read}  # every field read from a path: optional?
    if not result["fills"]:
        result["faults"].append("fills nothing from this sample")
    result["faults"] += [f"schema: {error['path']} {error['message']}" for error in schema_errors(mapped.update)]
    person = mapped.person
    if not (person.id or person.emails or person.linkedin_url or mapped.create):
        result["faults"].append("names no Stardex person id, email or LinkedIn URL (an apply answers 422 no_person_key)")
    return result


def check_mappings(mappings_dir: str | None, samples_dir: Path | None, out: TextIO) -> int:
    """Every mapping the function would load (built-ins, with ``MAPPINGS_DIR`` or the folder given
    laid over them) on its sender's shipped sample and on the user's samples; 1 when any is flagged."""
    from .send_sample import SAMPLES_DIR
    from .sources import SOURCES

    try:
        environ = dict(os.environ)
        if mappings_dir is not None:
            environ["MAPPINGS_DIR"] = mappings_dir
        # Mapping samples calls no one: unless DRY_RUN is set (and so checked), no warning of a missing key.
        if not environ.get("DRY_RUN", "").strip():
            environ["DRY_RUN"] = "1"
        pipeline = Pipeline.from_environment(environ, log_stream=sys.stderr)
        directory = pipeline.settings.mappings_dir
        if samples_dir is not None and not samples_dir.is_dir():
            raise ConfigurationError(f"--samples {samples_dir}: not a directory")
    except ConfigurationError as error:
        print(f"check-mappings: {error}", file=out)
        return EXIT_ERROR
    extra, strays = sample_files(samples_dir, list(SOURCES)) if samples_dir is not None else ({}, [])
    flagged = checked = unfilled_paths = 0
    for name in sorted(SOURCES):
        override = Path(directory) / f"{name}.json" if directory else None
        where = str(override) if override is not None and override.is_file() else f"mappings/{name}.json"
        print(f"{name} ({where})", file=out)
        paths: dict[str, bool] = {}  # each field read from a path, in any sample: marked optional?
        filled: set[str] = set()
        for sample in [SAMPLES_DIR / f"{name}.json", *extra.get(name, [])]:
            result = check_sample(pipeline, name, sample)
            checked += 1
            flagged += bool(result["faults"])
            paths.update(result.get("paths", {}))
            filled.update(result["fills"])
            label = result["sample"] + (f" + {result['follow_up']}" if result.get("follow_up") else "")
            status = "FLAG" if result["faults"] else "ok  "
            text = f"fills {', '.join(result['fills'])}" if result["fills"] else ""
            if result["finds_nothing_for"]:
                text += f"; finds nothing for {', '.join(result['finds_nothing_for'])}"
            print(f"  {status} {label}: " + "; ".join(part for part in [text.lstrip('; '), *result["faults"]] if part),
                  file=out)
        # A path no sample fills is most often a typo (answers.curent_role.text): it fails the
        # check unless the mapping marks the field "optional": true (docs/mappings.md).
        for field_name in [field_name for field_name, optional in paths.items() if not optional and field_name not in filled]:
            unfilled_paths += 1
            print(f"  FLAG {field_name}: no sample fills it (a typo in its path?); if the sender sends it only "
                  f'sometimes, mark it "optional": true in {where}', file=out)
    for stray in strays:
        flagged += 1
        print(f"FLAG {stray}: names no source (a sample is named <source>.json or <source>-<name>.json)", file=out)
    if flagged or unfilled_paths:
        print(f"check-mappings: {flagged} of {checked + len(strays)} sample(s) flagged, "
              f"{unfilled_paths} path(s) that no sample fills", file=out)
        return EXIT_ERROR
    print(f"check-mappings: {len(SOURCES)} mappings, {checked} samples: each fills fields and passes the schema, "
          "and every path that is not optional fills something", file=out)
    return EXIT_NO_CHANGES


# ---- the command ------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Exit 1 on a usage error: 2 means "changes" here, as in terraform plan -detailed-exitcode."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> _Parser:
    parser = _Parser(prog="python -m stardex_webhook.plan", description=__doc__.split("\n\n")[0],
                     epilog="exit codes: 0 nothing would change, 2 changes, 1 error")
    parser.add_argument("source", nargs="?", help="the sender (the function's path), e.g. greenhouse")
    parser.add_argument("body_file", nargs="?", type=Path, help="the webhook's body as the sender sent it")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="a request header (repeatable)")
    parser.add_argument("--headers-file", type=Path, help="a file of 'Name: value' lines")
    parser.add_argument("--url", help="the URL the sender posted to (default http://127.0.0.1:8080/SOURCE): "
                                      "its query and, for senders that sign it, the URL itself")
    parser.add_argument("--unsigned", action="store_true", help="skip the signature check")
    parser.add_argument("--dead-letter", metavar="NAME", help="plan a dead letter from STATE_BUCKET")
    parser.add_argument("--check-mappings", nargs="?", const="", metavar="MAPPINGS_DIR",
                        help="run every mapping on the shipped samples (and --samples) and say what each fills")
    parser.add_argument("--samples", type=Path, help="with --check-mappings: a folder of <source>*.json bodies")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON document")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    if args.check_mappings is not None:
        if args.source or args.dead_letter:
            parser.error("--check-mappings takes no SOURCE, BODY_FILE or --dead-letter")
        return check_mappings(args.check_mappings or None, args.samples, out)
    if args.samples:
        parser.error("--samples goes with --check-mappings")
    if args.dead_letter and (args.source or args.unsigned or args.header or args.headers_file or args.url):
        parser.error("--dead-letter NAME takes no SOURCE, BODY_FILE, headers, --url or --unsigned")
    if not args.dead_letter and not (args.source and args.body_file):
        parser.error("give SOURCE BODY_FILE, --dead-letter NAME or --check-mappings")

    environment, demo_keyed = with_local_signing_keys(dict(os.environ))  # serve's default, so that they agree
    try:
        pipeline = Pipeline.from_environment(environment, log_stream=sys.stderr)
    except ConfigurationError as error:
        print(f"plan: cannot start: {error}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if args.dead_letter:
            plan = _plan_dead_letter(pipeline, args.dead_letter)
        else:
            pairs = parse_headers(args.header, "--header")
            if args.headers_file:
                pairs += parse_headers(args.headers_file.read_text(encoding="utf-8").splitlines(), str(args.headers_file))
            url = args.url or f"http://127.0.0.1:8080/{args.source}"
            delivery = Delivery(Headers(pairs), args.body_file.read_bytes(), time.time(), url=url,
                                query=dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))
            plan = plan_delivery(pipeline, args.source, delivery, verify=not args.unsigned)
            if not args.unsigned and args.source in demo_keyed and plan.signature in ("checked", "refused"):
                plan.signature += (f" with the local demo key, as serve uses ({signing_key_name(args.source)} is not "
                                   "set: set it to check a webhook your sender signed)")
    except (OSError, ValueError) as error:
        print(f"plan: {getattr(error, 'strerror', None) and f'{error.filename}: {error.strerror}' or error}",
              file=sys.stderr)
        return EXIT_ERROR
    except WebhookError as error:  # the state bucket could not be read
        print(f"plan: {error.reason}: {error.message}", file=sys.stderr)
        return EXIT_ERROR
    out.write(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n" if args.json else render(plan))
    return plan.exit_code


def _plan_dead_letter(pipeline: Pipeline, name: str) -> Plan:
    from .state import dead_letter_name

    if pipeline.state is None:
        raise ValueError("--dead-letter needs STATE_BUCKET: the bucket that holds the dead letters")
    letter = pipeline.state.dead_letter(name)
    if letter is None:
        raise ValueError(f"no dead letter {name}")
    source, delivery = delivery_from_dead_letter(letter)
    plan = plan_delivery(pipeline, source, delivery, verify=False,
                         signature="not checked: a dead letter was checked when it was received")
    error = letter.get("error") if isinstance(letter.get("error"), dict) else {}
    plan.dead_letter = {"name": dead_letter_name(name), "status_code": error.get("status_code"),
                        "reason": error.get("reason"), "attempts": letter.get("attempts")}
    return plan


if __name__ == "__main__":
    sys.exit(main())
