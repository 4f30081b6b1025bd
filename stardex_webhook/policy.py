"""Who may change what: the write plan of one update against the person as Stardex stores it. The rules (add,
change or keep, contacts, fields a read cannot show) are docs/updates.md, steps 2 to 5. Pure functions, so
``plan`` shows the very body an apply would send, and that body carries only what changes. A field the person
dict does not show is *unknown*: sent under ``overwrite`` only, and listed in ``WritePlan.unknown`` (read first).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .contacts import CONTACT_LISTS, SeenContacts, contacts_known, listed, sort_entries, stored_entries

OVERWRITE, FILL = "overwrite", "fill"
ADD, CHANGE, KEEP = "add", "change", "keep"

SAME = "same value"
FILL_KEEPS = "fill: the person already has a value"
FILL_HAS_NAME = "fill: the person already has a name"
NOT_SHOWN = "not shown by Stardex's read"
FILL_NOT_SHOWN = "fill: Stardex's read does not show whether the person has a value"
STORED = "stored"
ON_JOB = "same value: already a candidate on that job"
REQUEST_SENT = "a request: sent with the other changes"
REQUEST_ALONE = "a request: sent only with another change"

# Update field -> where the person read holds it.
TEXT_FIELDS = {
    "name": "name", "first_name": "first_name", "last_name": "last_name",
    "current_job_title": "current_job_title", "company_name": "current_company_name",
    "linkedin_location": "linkedin_location", "linkedin_headline": "linkedin_headline", "address": "address",
}
# Convenience contact fields -> the list Stardex adds them to.
CONVENIENCE = {"work_email": "emails", "personal_email": "emails", "mobile_phone": "phone_numbers",
               "work_phone": "phone_numbers"}
_READ_LIST = {"emails": "emails", "phone_numbers": "phones"}
_CONVENIENCE_TYPES = {"work_email": "work", "personal_email": "personal", "mobile_phone": "mobile",
                      "work_phone": "work"}


@dataclass(frozen=True)
class EntryPlan:
    """One entry of a merged contact list: ``add``, or ``keep`` (``stored`` or ``same value``)."""

    action: str
    contact_data_type: str
    value: str
    reason: str | None = None


@dataclass(frozen=True)
class FieldPlan:
    """One field: ``before`` the person's value (None when none or not shown), ``after`` the sender's;
    contact lists also carry their ``entries``, stored ones first."""

    field: str
    action: str
    before: Any
    after: Any
    reason: str | None = None
    entries: tuple[EntryPlan, ...] = ()

    @property
    def sent(self) -> bool:
        return self.action != KEEP


@dataclass(frozen=True)
class WritePlan:
    """Every field in the update's order, the PATCH body (empty: none) and the fields not shown."""

    write_policy: str
    fields: tuple[FieldPlan, ...]
    body: dict[str, Any]
    unknown: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.body)

    def field(self, name: str) -> FieldPlan:
        return next(plan for plan in self.fields if plan.field == name)


def same_text(a: Any, b: Any) -> bool:
    """Equal ignoring case and runs of whitespace (how a person reads two names)."""
    return _text_key(a) == _text_key(b)


def _text_key(value: Any) -> str:
    return " ".join(str(value).split()).casefold()


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, str) and not value.strip())


def linkedin_public_id(url: Any) -> str | None:
    """``ada-lovelace`` for ``https://www.linkedin.com/in/Ada-Lovelace/``; None without ``/in/<id>``."""
    if not isinstance(url, str):
        return None
    parts = [part for part in urlsplit(url.strip()).path.split("/") if part]
    return unquote(parts[1]).casefold() if len(parts) >= 2 and parts[0].lower() == "in" else None


def _stored_linkedin(person: dict[str, Any]) -> tuple[bool, str | None]:
    """(known, the stored public id, or the stored URL when it has none)."""
    if "linkedin_public_id" not in person and "linkedin_url" not in person:
        return False, None
    stored = person.get("linkedin_public_id")
    if _blank(stored):
        stored = linkedin_public_id(person.get("linkedin_url")) or person.get("linkedin_url")
    return True, None if _blank(stored) else str(stored)


def _replaceable(field: str, after: Any, known: bool, before: Any, same: bool, policy: str) -> FieldPlan:
    """Added when empty, kept when the same, replaced (or sent unknown) under overwrite only."""
    if not known:
        return FieldPlan(field, CHANGE, None, after, NOT_SHOWN) if policy == OVERWRITE else \
            FieldPlan(field, KEEP, None, after, FILL_NOT_SHOWN)
    if _blank(before):
        return FieldPlan(field, ADD, None, after)
    if same:
        return FieldPlan(field, KEEP, before, after, SAME)
    if policy == OVERWRITE:
        return FieldPlan(field, CHANGE, before, after)
    return FieldPlan(field, KEEP, before, after, FILL_KEEPS)


def _contact_list(key: str, entries: list[dict[str, str]], person: dict[str, Any],
                  region: str | None) -> tuple[FieldPlan, list[dict[str, str]] | None]:
    stored, added, repeated = sort_entries(key, entries, person, region)
    plan_entries = [EntryPlan(KEEP, entry["contact_data_type"], entry["value"], STORED) for entry in stored]
    plan_entries += [EntryPlan(ADD, entry["contact_data_type"], entry["value"]) for entry in added]
    plan_entries += [EntryPlan(KEEP, entry["contact_data_type"], entry["value"], SAME) for entry in repeated]
    union = stored + added
    reason = None if added else SAME
    if not contacts_known(person, key):
        reason = NOT_SHOWN
    plan = FieldPlan(key, ADD if added else KEEP, stored, union, reason, tuple(plan_entries))
    return plan, (union if added else None)


def _convenience(field: str, value: str, person: dict, policy: str, region: str | None, update: dict) -> FieldPlan:
    key = CONVENIENCE[field]
    if listed(update, key, value, region):  # the list carries it: stored, or sent with this PATCH
        return FieldPlan(field, KEEP, value, value, SAME)
    if not contacts_known(person, key):
        return FieldPlan(field, ADD, None, value, NOT_SHOWN) if policy == OVERWRITE else \
            FieldPlan(field, KEEP, None, value, FILL_NOT_SHOWN)
    seen = SeenContacts(key, region, stored_entries(person, key))
    return FieldPlan(field, ADD, None, value) if seen.add(value) else FieldPlan(field, KEEP, value, value, SAME)


def _job(value: Any, person: dict[str, Any]) -> FieldPlan:
    candidates = person.get("candidates")
    if not isinstance(candidates, list):
        return FieldPlan("job_id", ADD, None, value, NOT_SHOWN)
    jobs = [str(item.get("job_id")) for item in candidates if isinstance(item, dict) and item.get("job_id")]
    if str(value) in jobs:
        return FieldPlan("job_id", KEEP, value, value, ON_JOB)
    return FieldPlan("job_id", ADD, None, value)


_NAME_PARTS = {"first_name": 0, "last_name": 1}


def _name_part(plan: FieldPlan, person: dict[str, Any]) -> FieldPlan:
    """Under fill, a missing first or last name is added only when the stored full name agrees."""
    name = person.get("name")
    if _blank(name):
        return plan
    first, _, rest = " ".join(str(name).split()).partition(" ")
    if same_text((first, rest)[_NAME_PARTS[plan.field]], plan.after):
        return plan
    return FieldPlan(plan.field, KEEP, None, plan.after, FILL_HAS_NAME)


def plan_update(update: dict[str, Any], person: dict[str, Any], write_policy: str,
                phone_region: str | None = None) -> WritePlan:
    if write_policy not in (OVERWRITE, FILL):
        raise ValueError(f"unknown write policy {write_policy!r}")
    person = person if isinstance(person, dict) else {}
    plans: list[FieldPlan] = []
    body: dict[str, Any] = {}
    unknown: list[str] = []
    rider = None
    for field, after in update.items():
        if field == "enrich_record":
            rider = after
            plans.append(FieldPlan(field, KEEP, None, after, REQUEST_ALONE))  # settled below
            continue
        if field in CONTACT_LISTS:
            plan, union = _contact_list(field, after, person, phone_region)
            if union is not None:
                body[field] = union
            known = contacts_known(person, field)
        elif field == "linkedin_url":
            known, stored = _stored_linkedin(person)
            wanted = linkedin_public_id(after)
            same = stored is not None and (stored.casefold() == wanted if wanted else same_text(stored, after))
            plan = _replaceable(field, after, known, stored, same, write_policy)
        elif field in CONVENIENCE:
            plan = _convenience(field, after, person, write_policy, phone_region, update)
            known = contacts_known(person, CONVENIENCE[field])
        elif field == "job_id":
            plan = _job(after, person)
            known = isinstance(person.get("candidates"), list)
        else:  # a text field, or custom_fields (compared as canonical JSON)
            stored_key = TEXT_FIELDS.get(field, field)
            known = stored_key in person
            before = person.get(stored_key)
            if field == "custom_fields":
                same = known and json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
            else:
                same = known and not _blank(before) and same_text(before, after)
            plan = _replaceable(field, after, known, before, same, write_policy)
            if write_policy == FILL and plan.action == ADD and field in _NAME_PARTS:
                plan = _name_part(plan, person)
        if not known:  # what the person dict does not show: the caller may read the person first
            unknown.append(field)
        if plan.sent and field not in CONTACT_LISTS:
            body[field] = copy.deepcopy(after)
        plans.append(plan)
    if rider is not None and body:
        body["enrich_record"] = rider
        plans = [FieldPlan("enrich_record", ADD, None, rider, REQUEST_SENT) if plan.field == "enrich_record" else plan
                 for plan in plans]
    return WritePlan(write_policy, tuple(plans), body, tuple(unknown))


def person_after(person: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The person as Stardex stores it once ``body`` is applied. A new dict over the untouched values
    (no deep copy of the whole person): person data is never changed in place, here or by readers."""
    after = dict(person) if isinstance(person, dict) else {}
    for field, value in body.items():
        if field in CONTACT_LISTS:
            after[_READ_LIST[field]] = copy.deepcopy(value)
        elif field == "linkedin_url":
            after["linkedin_url"] = value
            after["linkedin_public_id"] = linkedin_public_id(value)
        elif field in CONVENIENCE:
            read_key = _READ_LIST[CONVENIENCE[field]]
            entries = after.get(read_key) if isinstance(after.get(read_key), list) else []
            seen = SeenContacts(CONVENIENCE[field], None, stored_entries({read_key: entries}, CONVENIENCE[field]))
            if seen.add(value):
                entries = [*entries, {"contact_data_type": _CONVENIENCE_TYPES[field], "value": value}]
            after[read_key] = entries
        elif field == "job_id":
            candidates = after.get("candidates") if isinstance(after.get("candidates"), list) else []
            if not any(isinstance(item, dict) and str(item.get("job_id")) == str(value) for item in candidates):
                candidates = [*candidates, {"job_id": value}]
            after["candidates"] = candidates
        elif field == "enrich_record":
            continue
        else:
            after[TEXT_FIELDS.get(field, field)] = copy.deepcopy(value)
    return after
