"""Stardex person custom fields named in a mapping ("Notice period", not an attribute id), made
the ``custom_fields`` items of the update-person body. Types, options and write rules:
docs/mappings.md, "Custom fields by name". Names resolve against Stardex's definitions (``Catalog``,
kept per instance) before anything is written, so a name Stardex lacks fails the mapping's first
event, whether or not that event carries a value for it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Iterable

from .errors import Unprocessable
from .policy import ADD, CHANGE, FILL, FILL_KEEPS, FILL_NOT_SHOWN, KEEP, NOT_SHOWN, OVERWRITE, SAME, FieldPlan, same_text
from .records import NamedCustomFields

# A name missing from a copy older than REREAD_AFTER_SECONDS is looked up again (a new field).
CATALOG_SECONDS = 300.0
REREAD_AFTER_SECONDS = 60.0

TEXT, NUMBER, INTEGER, DATE, SINGLE, MULTI = "text", "number", "integer", "date", "single-select", "multi-select"
_KINDS = {
    "text": TEXT, "long-text": TEXT, "textarea": TEXT, "string": TEXT, "url": TEXT, "link": TEXT, "email": TEXT,
    "phone": TEXT, "number": NUMBER, "decimal": NUMBER, "float": NUMBER, "currency": NUMBER, "percent": NUMBER,
    "percentage": NUMBER, "integer": INTEGER, "date": DATE, "single-select": SINGLE, "select": SINGLE,
    "multi-select": MULTI,
}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y",
                 "%b %d %Y")


@dataclass(frozen=True)
class Definition:
    """One Stardex person custom field: its attribute id, name, kind (``TEXT``...) and options."""

    id: str
    name: str
    data_type: str
    options: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        return _KINDS.get(self.data_type.strip().lower().replace("_", "-").replace(" ", "-"))


@dataclass(frozen=True)
class CustomFieldValue:
    """A named value resolved: its definition and the update-person item it becomes."""

    name: str
    definition: Definition
    item: dict[str, Any]


@dataclass(frozen=True)
class CustomFieldsPlan:
    """One ``FieldPlan`` per named field, the items to send, and whether a read would show more."""

    fields: tuple[FieldPlan, ...]
    items: tuple[dict[str, Any], ...]
    unknown: bool = False


def _key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def definitions_from(answer: Any) -> list[Definition]:
    """Stardex's answer as ``Definition``s; entries without an id or a name are skipped."""
    found = []
    for entry in answer if isinstance(answer, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("name"), str):
            continue
        if entry.get("job_id") or entry.get("list_id"):
            continue  # a field of one job's or one list's people, not of the person
        tags = [tag.get("name") for tag in entry["tags"] if isinstance(tag, dict)] if isinstance(entry.get("tags"), list) else []
        found.append(Definition(entry["id"], entry["name"], str(entry.get("data_type") or ""),
                                tuple(tag for tag in tags if isinstance(tag, str))))
    return found


class Catalog:
    """Thread-safe: two first uses at once may both read; either answer is kept."""

    def __init__(self, seconds: float = CATALOG_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._clock = seconds, clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._definitions: list[Definition] = []

    def definitions(self, read: Callable[[], Any], names: Iterable[str] = ()) -> list[Definition]:
        with self._lock:
            read_at, definitions = self._read_at, self._definitions
        now = self._clock()
        if read_at is not None and now - read_at < self.seconds:
            known = {_key(item.name) for item in definitions}
            if all(_key(name) in known for name in names) or now - read_at < REREAD_AFTER_SECONDS:
                return definitions
        definitions = definitions_from(read())
        with self._lock:
            self._read_at, self._definitions = self._clock(), definitions
        return definitions


def find(name: str, definitions: list[Definition]) -> Definition:
    """The one definition of that name (case and spacing ignored), or 422 naming the field."""
    matches = [item for item in definitions if _key(item.name) == _key(name)]
    if not matches:
        raise Unprocessable("unknown_custom_field", f"Stardex has no person custom field named {name!r}", field=name)
    if len(matches) > 1:
        raise Unprocessable("ambiguous_custom_field", f"Stardex has {len(matches)} person custom fields named {name!r}",
                            field=name)
    definition = matches[0]
    if definition.kind is None:
        raise Unprocessable("unsupported_custom_field",
                            f"the custom field {name!r} is of type {definition.data_type!r}, which is not written",
                            field=name)
    return definition


def check(named: NamedCustomFields, definitions: list[Definition]) -> list[str]:
    """Every fault of a mapping's named fields against Stardex's definitions (empty: none)."""
    faults = []
    for name in named.declared:
        try:
            definition = find(name, definitions)
        except Unprocessable as error:
            faults.append(f"custom_fields.{name}: {error.message}")
            continue
        table = named.options.get(name) or {}
        if table and definition.kind not in (SINGLE, MULTI):
            faults.append(f"custom_fields.{name}: has options, but Stardex's field is {definition.data_type!r}")
        for answer, option in table.items():
            if _option(option, definition) is None:
                faults.append(f"custom_fields.{name}.options.{answer}: {option!r} is not an option of the field")
    return faults


def resolve(named: NamedCustomFields, definitions: list[Definition]) -> list[CustomFieldValue]:
    """The items, or 422: an unknown field first, then each value not of its type (named by the field,
    never the value)."""
    for name in named.declared:
        find(name, definitions)  # an unknown field: 422 naming it
    faults = check(named, definitions)
    if faults:
        raise Unprocessable("custom_field_option_unknown", faults[0])
    resolved, errors = [], []
    for name, raw in named.values.items():
        definition = find(name, definitions)
        try:
            item = _item(definition, raw, named.options.get(name) or {})
        except (ValueError, OverflowError) as error:  # OverflowError: a number no float or date holds
            errors.append({"path": f"custom_fields.{name}", "message": str(error)})
            continue
        if item is not None:
            resolved.append(CustomFieldValue(name, definition, item))
    if errors:
        raise Unprocessable("custom_field_invalid",
                            f"{len(errors)} custom field value(s) do not fit Stardex's field type", errors=errors)
    return resolved


def _item(definition: Definition, raw: Any, table: dict[str, str]) -> dict[str, Any] | None:
    kind = definition.kind
    if kind == MULTI:
        values = []
        for value in raw if isinstance(raw, list) else [raw]:
            text = _text(value)
            if text is None:
                continue
            option = _option(table.get(text, text), definition)
            if option is None:
                raise ValueError("an answer is not one of the field's options")
            if option not in values:
                values.append(option)
        return {"attribute_id": definition.id, "add_values": values} if values else None
    if isinstance(raw, list):
        items = [value for value in raw if _text(value) is not None]
        if len(items) > 1:
            raise ValueError("several answers for a field that holds one value")
        raw = items[0] if items else None
    if kind == SINGLE:
        text = _text(raw)
        if text is None:
            return None
        value: Any = _option(table.get(text, text), definition)
        if value is None:
            raise ValueError("the answer is not one of the field's options")
    elif kind in (NUMBER, INTEGER):
        value = _number(raw, kind == INTEGER)
    elif kind == DATE:
        value = _date(raw)
    else:
        value = _text(raw)
    return None if value is None else {"attribute_id": definition.id, "value": value}


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and value == value):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else str(value)
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _option(answer: str, definition: Definition) -> str | None:
    return next((option for option in definition.options if _key(option) == _key(answer)), None)


def _number(raw: Any, whole: bool) -> int | float | None:
    if isinstance(raw, bool):
        raise ValueError("a yes/no answer is not a number")
    if isinstance(raw, (int, float)):
        number = raw
    elif isinstance(raw, str) and raw.strip():
        text = raw.strip().lstrip("€$£¥").replace(",", "").replace("_", "").replace(" ", "")
        try:
            number = float(text)
        except ValueError:
            raise ValueError("the answer is not a number") from None
    else:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("the answer is not a number")
    if whole:
        if not float(number).is_integer():
            raise ValueError("the field holds whole numbers")
        return int(number)
    return int(number) if isinstance(number, float) and number.is_integer() and abs(number) < 1e15 else number


def _date(raw: Any) -> str | None:
    """``YYYY-MM-DD`` from a date, an ISO time, ``{year, month, day}`` or an English month name."""
    if isinstance(raw, dict):
        try:
            return date(int(raw["year"]), int(raw["month"]), int(raw["day"])).isoformat()
        except (KeyError, TypeError, ValueError):
            raise ValueError("the answer is not a date") from None
    if not isinstance(raw, str) or not raw.strip():
        if raw is None:
            return None
        raise ValueError("the answer is not a date")
    text = " ".join(raw.split())
    if len(text) > 10 and text[4:5] == "-" and text[10:11] in ("T", " "):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
        except ValueError:
            pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    raise ValueError("write dates as YYYY-MM-DD (a day and month written with slashes is ambiguous: DD/MM or MM/DD)")


def stored_value(person: dict[str, Any], attribute_id: str) -> tuple[bool, Any]:
    """(the read shows the person's custom fields, the value stored for that attribute or None)."""
    items = person.get("custom_fields") if isinstance(person, dict) else None
    if not isinstance(items, list):
        return False, None
    for item in items:
        if isinstance(item, dict) and str(item.get("attribute_id") or item.get("id")) == attribute_id:
            for key in ("value", "values", "add_values", "tags"):
                if item.get(key) not in (None, "", []):
                    value = item[key]
                    if isinstance(value, list):
                        value = [entry.get("name") if isinstance(entry, dict) else entry for entry in value]
                    return True, value
            return True, None
    return True, None


def _same(kind: str | None, before: Any, after: Any) -> bool:
    if kind in (NUMBER, INTEGER):
        try:
            return float(before) == float(after)
        except (TypeError, ValueError):
            return False
    return same_text(before, after)


def plan_custom_fields(values: list[CustomFieldValue], person: dict[str, Any], write_policy: str) -> CustomFieldsPlan:
    plans, items, unknown = [], [], False
    for value in values:
        name, kind, item = f"custom_fields.{value.name}", value.definition.kind, value.item
        after = item.get("add_values", item.get("value"))
        known, before = stored_value(person, value.definition.id)
        if not known:
            unknown = True
            if write_policy == OVERWRITE:
                plans.append(FieldPlan(name, CHANGE, None, after, NOT_SHOWN))
                items.append(item)
            else:
                plans.append(FieldPlan(name, KEEP, None, after, FILL_NOT_SHOWN))
            continue
        blank = before in (None, "", [])
        if not blank and write_policy == FILL:
            plans.append(FieldPlan(name, KEEP, before, after, FILL_KEEPS))
            continue
        if kind == MULTI:
            held = {_key(entry) for entry in (before if isinstance(before, list) else [before]) if entry is not None}
            missing = [entry for entry in after if _key(entry) not in held]
            if not missing:
                plans.append(FieldPlan(name, KEEP, before, after, SAME))
                continue
            item = {"attribute_id": value.definition.id, "add_values": missing}
        elif not blank and _same(kind, before, after):
            plans.append(FieldPlan(name, KEEP, before, after, SAME))
            continue
        plans.append(FieldPlan(name, ADD if blank else CHANGE, None if blank else before, after))
        items.append(item)
    return CustomFieldsPlan(tuple(plans), tuple(items), unknown)


def with_items(body: dict[str, Any], items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """An attribute the body already carries (a sender writing attribute ids) keeps its own item."""
    items = list(items)
    if not items:
        return body
    existing = list(body.get("custom_fields") or [])
    taken = {item.get("attribute_id") for item in existing if isinstance(item, dict)}
    return {**body, "custom_fields": existing + [item for item in items if item["attribute_id"] not in taken]}


def person_with(person: dict[str, Any], items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The person as known once ``items`` are written: values replaced, multi-select values added."""
    after = dict(person) if isinstance(person, dict) else {}
    held = after.get("custom_fields")  # a search may answer anything here: only a list's objects are kept
    stored = [dict(item) for item in (held if isinstance(held, list) else []) if isinstance(item, dict)]
    for item in items:
        entry = next((entry for entry in stored if str(entry.get("attribute_id")) == item["attribute_id"]), None)
        if entry is None:
            entry = {"attribute_id": item["attribute_id"]}
            stored.append(entry)
        if "add_values" in item:
            _, held = stored_value({"custom_fields": [entry]}, item["attribute_id"])
            held = held if isinstance(held, list) else ([] if held is None else [held])
            entry.pop("values", None)
            entry["value"] = held + [value for value in item["add_values"] if value not in held]
        else:
            entry["value"] = item["value"]
    after["custom_fields"] = stored
    return after


if __name__ == "__main__":  # the command's first name; the check itself lives with the tools
    from stardex_webhook.custom_fields_check import main

    raise SystemExit(main())
