"""Merge an update's contact lists with what the person already has.

Stardex replaces the whole list when ``emails`` or ``phone_numbers`` is sent, so sending only the
sender's values would drop every address the recruiter already had. We send the union instead:
existing entries first, as stored, then the new ones that are not already there (emails compared
case-insensitively, phone numbers compared in E.164).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

CONTACT_LISTS = ("emails", "phone_numbers")

# Stardex answers with ``phones`` on reads but takes ``phone_numbers`` on updates.
_READ_KEYS = {"emails": ("emails",), "phone_numbers": ("phones", "phone_numbers")}
_DEFAULT_TYPES = {"emails": "personal", "phone_numbers": "mobile"}
# The types Stardex documents (and our schema allows); a stored entry of any other type is sent
# back with the default one, so the merged body still validates.
_KNOWN_TYPES = {"emails": frozenset({"work", "personal"}), "phone_numbers": frozenset({"work", "mobile"})}


def touches_contacts(update: dict[str, Any]) -> bool:
    """Whether the update sends a list that Stardex would replace (and so needs a read first)."""
    return any(update.get(key) for key in CONTACT_LISTS)


def _existing_entries(person: dict[str, Any], key: str) -> list[dict[str, str]]:
    """The person's stored entries as ``{contact_data_type, value}``, skipping blanks."""
    raw: Iterable[Any] = ()
    for read_key in _READ_KEYS[key]:
        candidate = person.get(read_key)
        if isinstance(candidate, list):
            raw = candidate
            break
    entries = []
    for item in raw:
        if isinstance(item, str):
            value, kind = item, None
        elif isinstance(item, dict):
            value, kind = item.get("value"), item.get("contact_data_type")
        else:
            continue
        if not isinstance(value, str) or not value.strip():
            continue
        if not isinstance(kind, str) or kind.strip().lower() not in _KNOWN_TYPES[key]:
            kind = _DEFAULT_TYPES[key]
        else:
            kind = kind.strip().lower()
        entries.append({"contact_data_type": kind, "value": value})
    return entries


def merge_contacts(
    update: dict[str, Any],
    person: dict[str, Any],
    phone_key: Callable[[str], str],
) -> dict[str, Any]:
    """Return a copy of ``update`` whose contact lists are the union with ``person``'s.

    A list that would add nothing new is left out of the update altogether: sending it would cost
    nothing but could reorder what Stardex shows. ``phone_key`` turns a number into the form two
    numbers are compared in (E.164).
    """
    keys: dict[str, Callable[[str], str]] = {
        "emails": lambda value: value.strip().casefold(),
        "phone_numbers": phone_key,
    }
    merged = dict(update)
    for key in CONTACT_LISTS:
        new_entries = update.get(key)
        if not new_entries:
            continue
        compare = keys[key]
        union = _existing_entries(person, key)
        seen = {compare(entry["value"]) for entry in union}
        added = False
        for entry in new_entries:
            marker = compare(entry["value"])
            if marker not in seen:
                seen.add(marker)
                union.append(entry)
                added = True
        if added:
            merged[key] = union
        else:
            del merged[key]
    return merged
