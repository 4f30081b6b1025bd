"""Deliver one mapped update to Stardex (the only stage that calls it): resolve the person, plan the write (custom
fields resolved first, so a name Stardex lacks is refused before any write), send only what changes, keep the
submission as a note, move the stage. Calls are spared by the person memory (docs/updates.md, step 6), kept safe by
one rule: a PATCH of ``emails`` or ``phone_numbers`` (replaced whole) and any PATCH under ``fill`` is planned against
a read made within this event, never the memory, so nothing a recruiter added meanwhile is lost."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from .config import Settings
from .contacts import CONTACT_LISTS, touches_contacts
from .custom_fields import Catalog, CustomFieldValue, CustomFieldsPlan, person_with, plan_custom_fields, resolve, with_items
from .deadline import Deadline
from .errors import Unprocessable
from .logs import JsonLog
from .records import MappedUpdate, NoteRequest
from .policy import FILL, WritePlan, person_after, plan_update
from .resolver import MAX_SEARCH_EMAILS, KnownPerson, PersonMemory, Resolution, resolve_person, stardex_failure
from .stages import NOT_A_CANDIDATE, StageMemory, StagePlan, outcome_of, plan_stage, with_stage
from .stardex import OutcomeUnknown, StardexClient, StardexError

# The note's last line, which a retried delivery looks for among the last NOTE_LOOKBACK activities.
NOTE_MARKER = "stardex-webhook delivery: "
NOTE_MARKER_WITHOUT_ID = "stardex-webhook submission: "
NOTE_LOOKBACK = 100


class _RememberedPersonGone(Exception):
    """Stardex has no person under a remembered id (merged or deleted): search again."""


def note_marker(note: NoteRequest) -> str:
    """The delivery id, or a digest of the submission (a sender's retry carries the same answers)."""
    if note.delivery_id:
        return NOTE_MARKER + " ".join(str(note.delivery_id).split())
    digest = hashlib.sha256(repr((note.activity_type, note.title, note.answers)).encode("utf-8")).hexdigest()
    return NOTE_MARKER_WITHOUT_ID + digest[:32]


def note_text(note: NoteRequest) -> str:
    """The form's title, each question with its answer beneath, the marker line last."""
    blocks = [note.title.strip()] if note.title and note.title.strip() else []
    blocks += [f"{question}\n{answer}" for question, answer in note.answers]
    blocks.append(note_marker(note))
    return "\n\n".join(blocks)


class Deliverer:
    """One per instance; holds the person memory; ``deliver`` is thread-safe."""

    def __init__(self, settings: Settings, client: Callable[[], StardexClient], log: JsonLog,
                 memory: PersonMemory | None = None) -> None:
        self._settings = settings
        self._client = client
        self._log = log
        self.memory = memory if memory is not None else PersonMemory(settings.person_memory_seconds)
        self.stage_memory = StageMemory()
        self.catalog = Catalog()

    def deliver(self, mapped: MappedUpdate, record: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """The answer's body; a failure raises the pipeline's typed errors."""
        client = self._client()
        try:
            return self._deliver(client, mapped, record, deadline, self.memory)
        except _RememberedPersonGone:
            # DEBUG: at INFO the webhook's own line stays its only one.
            self._log.write("DEBUG", "a remembered Stardex person is gone: searching again",
                            person_id=record.get("person_id"))
            return self._deliver(client, mapped, record, deadline, None)

    def _deliver(self, client: StardexClient, mapped: MappedUpdate, record: dict[str, Any], deadline: Deadline,
                 memory: PersonMemory | None) -> dict[str, Any]:
        custom = self._custom_values(client, deadline, mapped)
        resolution = resolve_person(client, deadline, mapped.person, mapped.update, mapped.create,
                                    memory=memory, include=_includes(mapped))
        person_id = resolution.person_id
        record["person_id"] = person_id
        if resolution.created:
            answer = self._after_create(client, deadline, mapped, resolution, custom)
        else:
            answer = self._update(client, deadline, mapped, resolution, custom)
        if mapped.note is not None:
            # A person this event created has no activities yet: nothing to look for.
            look = not (resolution.created and resolution.person is not None)
            answer["note"] = self._note(client, deadline, resolution, mapped.note, look)
            if answer["status"] == "ignored" and answer["note"] == "written":
                answer = {"status": "updated", "person_id": person_id, "fields": [], "note": "written"}
        if mapped.stage is not None:
            answer = self._with_stage(client, deadline, mapped, resolution, answer)
        return answer

    def _update(self, client: StardexClient, deadline: Deadline, mapped: MappedUpdate,
                resolution: Resolution, custom: list[CustomFieldValue]) -> dict[str, Any]:
        person_id, policy = resolution.person_id, mapped.write_policy
        region = self._settings.phone_default_region
        if resolution.person is not None:
            known: KnownPerson | None = KnownPerson(resolution.person, read=True, fresh=True)
            self.memory.remember_person(person_id, known)
        else:
            known = self.memory.person(person_id)
        person = known.data if known else {}
        plan = plan_update(mapped.update, person, policy, region)
        extra = plan_custom_fields(custom, person, policy)
        if _needs_read(plan, extra, known, policy):
            person = self._stardex(resolution, "read the person", client.get_person, deadline, person_id)
            known = KnownPerson(person, read=True, fresh=True)
            self.memory.remember_person(person_id, known)
            plan = plan_update(mapped.update, person, policy, region)
            extra = plan_custom_fields(custom, person, policy)
        body = with_items(plan.body, extra.items)
        if not body:
            return {"status": "ignored", "reason": "no_change", "person_id": person_id}
        self._stardex(resolution, "update the person", client.update_person, deadline, person_id, body)
        after = person_after(person, plan.body)
        if extra.items:
            after = person_with(after, extra.items)
        self.memory.remember_person(person_id, KnownPerson(after, read=bool(known and known.read)))
        return {"status": "updated", "person_id": person_id, "fields": sorted(body)}

    def _after_create(self, client: StardexClient, deadline: Deadline, mapped: MappedUpdate,
                      resolution: Resolution, custom: list[CustomFieldValue]) -> dict[str, Any]:
        """What create does not take follows in one PATCH (custom fields too: a new person has none)."""
        person_id, update = resolution.person_id, mapped.update
        remaining = with_items(resolution.remaining_update or {}, (value.item for value in custom))
        if remaining:
            self._stardex(resolution, "update the person", client.update_person, deadline, person_id, remaining)
        created = resolution.person or {}
        stored = {"emails": created.get("emails") or [], "phones": created.get("phones") or []}
        self.memory.remember_person(person_id, KnownPerson(person_after(
            stored, {key: value for key, value in update.items() if key not in ("emails", "phone_numbers")})))
        for email in mapped.person.emails[:MAX_SEARCH_EMAILS]:
            self.memory.remember_id(("email", email), person_id)
        if mapped.person.linkedin_url:
            self.memory.remember_id(("linkedin_url", mapped.person.linkedin_url), person_id)
        fields = sorted(set(update) | ({"custom_fields"} if custom else set()))
        return {"status": "updated", "person_id": person_id, "fields": fields, "created": True}

    def _custom_values(self, client: StardexClient, deadline: Deadline, mapped: MappedUpdate) -> list[CustomFieldValue]:
        """422 for a name or option Stardex does not have, before any write."""
        named = mapped.named_custom_fields
        if named is None or not named.declared:
            return []

        def read() -> Any:
            try:
                return client.person_custom_fields(deadline)
            except StardexError as error:
                raise stardex_failure(error, "read the person custom fields") from None

        return resolve(named, self.catalog.definitions(read, named.declared))

    def _with_stage(self, client: StardexClient, deadline: Deadline, mapped: MappedUpdate, resolution: Resolution,
                    answer: dict[str, Any]) -> dict[str, Any]:
        """Move the candidate when the plan, from what is known now (the search's read, else the
        memory), says so; the answer names the outcome as ``stage``."""
        request, person_id, person = mapped.stage, resolution.person_id, resolution.person
        if person is None:
            known = self.memory.person(person_id)
            person = known.data if known else None
        plan = plan_stage(request, person, self.stage_memory.last(person_id, request.job_id or ""),
                          next(iter(mapped.person.emails), None))
        if plan.needs_read:  # no candidate id and no email: find the candidate in a read
            person = self._stardex(resolution, "read the person", client.get_person, deadline, person_id)
            self.memory.remember_person(person_id, KnownPerson(person, read=True, fresh=True))
            plan = plan_stage(request, person, self.stage_memory.last(person_id, request.job_id or ""))
            if plan.needs_read:  # Stardex shows the person on no such job: nothing to move
                plan = StagePlan("keep", NOT_A_CANDIDATE)
        outcome = plan.outcome
        if plan.action == "move" and plan.body:
            try:
                moved = client.update_stage(deadline, plan.body)
            except StardexError as error:
                if error.status_code in (401, 403):
                    raise stardex_failure(error, "move the candidate's stage") from None
                raise Unprocessable("stage_rejected", f"Stardex refused the stage move with HTTP {error.status_code}",
                                    stardex_code=error.code or None, person_id=person_id) from None
            outcome = outcome_of(moved)
            # What the person update left in the memory (else the search's read), with the stage.
            known = self.memory.person(person_id)
            if known is not None:
                self.memory.remember_person(person_id, KnownPerson(with_stage(known.data, request, moved), read=known.read))
            elif resolution.person is not None:
                self.memory.remember_person(person_id, KnownPerson(with_stage(resolution.person, request, moved)))
        if outcome in ("moved", "unchanged"):
            self.stage_memory.applied(person_id, request.job_id or "", request.occurred_at, request.stage or "")
        answer = {**answer, "stage": outcome}
        if answer["status"] == "ignored" and outcome == "moved":
            answer = {key: value for key, value in answer.items() if key != "reason"}
            answer.update(status="updated", fields=[])
        return answer

    def _note(self, client: StardexClient, deadline: Deadline, resolution: Resolution, note: NoteRequest,
              look: bool) -> str:
        """``written`` or ``already_written``; a sender's retry finds the marker and writes nothing."""
        person_id = resolution.person_id
        marker = note_marker(note)
        if look and self._note_exists(client, deadline, resolution, marker):
            return "already_written"
        body = {"person_id": person_id, "activity_type": note.activity_type, "activity_content": note_text(note)}
        try:
            self._stardex(resolution, "write the note", client.create_activity, deadline, body)
        except OutcomeUnknown:
            # The lost attempt may have landed: look before a second one, so one note is written.
            if not self._note_exists(client, deadline, resolution, marker):
                self._stardex(resolution, "write the note", client.create_activity, deadline, body)
        return "written"

    def _note_exists(self, client: StardexClient, deadline: Deadline, resolution: Resolution, marker: str) -> bool:
        activities = self._stardex(resolution, "read the person's activities", client.list_activities, deadline,
                                   resolution.person_id, NOTE_LOOKBACK)
        return any(isinstance(activity, dict) and isinstance(activity.get("activity_content"), str)
                   and marker in (line.strip() for line in activity["activity_content"].splitlines())
                   for activity in activities)

    def _stardex(self, resolution: Resolution, action: str, call: Callable[..., Any], *args: Any) -> Any:
        """A 404 drops what is remembered of the person; for an id the memory gave, search again."""
        try:
            return call(*args)
        except StardexError as error:
            if error.status_code == 404:
                self.memory.forget(resolution.person_id)
                if resolution.remembered:
                    raise _RememberedPersonGone() from None
            raise stardex_failure(error, action) from None


def _includes(mapped: MappedUpdate) -> tuple[str, ...]:
    """The sections a search answers along with the person, so the plan needs no GET after it."""
    include = []
    if "job_id" in mapped.update or mapped.stage is not None:
        include.append("candidates")
    if mapped.named_custom_fields is not None and mapped.named_custom_fields.values:
        include.append("custom_fields")
    return tuple(include)


def _needs_read(plan: WritePlan, extra: CustomFieldsPlan, known: KnownPerson | None, policy: str) -> bool:
    """Whether the plans (fields, custom fields) must be made again against a read of the person made now."""
    if known is not None and known.fresh:  # a list Stardex replaces whole: only from a read that shows it
        return any(key in plan.unknown for key in CONTACT_LISTS)  # (a search's base fields may not)
    if touches_contacts(plan.body):
        return True  # a list Stardex replaces whole: never from memory
    # Fill writes only what a read now shows empty (custom fields too); a field the memory cannot show may be empty.
    unshown = bool(plan.unknown) or extra.unknown
    return policy == FILL and (bool(plan.body or extra.items) or (unshown and not (known is not None and known.read)))
