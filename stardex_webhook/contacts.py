"""Merge an update's contact lists with what the person already has, and say when two entries are one.

Stardex replaces the whole list when ``emails`` or ``phone_numbers`` is sent, so sending only the
sender's values would drop every address the recruiter already had. We send the union instead:
existing entries first, exactly as stored (never re-judged: one odd stored address must not block
every later update), then the new ones that are not already there.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

CONTACT_LISTS = ("emails", "phone_numbers")

# Stardex answers with ``phones`` on reads but takes ``phone_numbers`` on updates.
_READ_KEYS = {"emails": ("emails",), "phone_numbers": ("phones", "phone_numbers")}
_DEFAULT_TYPES = {"emails": "personal", "phone_numbers": "mobile"}
# The types Stardex documents (and our schema allows); a stored entry of any other type is sent
# back with the default one, so the merged body still validates.
_KNOWN_TYPES = {"emails": frozenset({"work", "personal"}), "phone_numbers": frozenset({"work", "mobile"})}
# Longer inputs are not remembered, so that a sender cannot fill memory through the cache.
_LONGEST_CACHED = 100

PhoneId = tuple[str | None, str]


def touches_contacts(update: dict[str, Any]) -> bool:
    """Whether the update sends a list that Stardex would replace (and so needs a read first)."""
    return any(update.get(key) for key in CONTACT_LISTS)


def phone_id(number: str, region: str | None) -> PhoneId:
    """What identifies a number: (country code, national significant number) when the number is
    written with a country code or ``region`` places it, else (None, its digits without leading
    zeros); text without digits is its own identity. Valid or not: only the digits count."""
    if len(number) > _LONGEST_CACHED:
        return _phone_id.__wrapped__(number, region)
    return _phone_id(number, region)


@functools.lru_cache(maxsize=4096)
def _phone_id(number: str, region: str | None) -> PhoneId:
    """Cached: parsing costs tens of microseconds and the same numbers come back event after event.
    phonenumbers is imported here because its import is slow and many cold starts never need it."""
    import phonenumbers

    digits = "".join(character for character in number if character.isdigit())
    if not digits:
        return None, number.strip().casefold()
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None, digits.lstrip("0")
    return str(parsed.country_code), phonenumbers.national_significant_number(parsed)


def same_phone(first: PhoneId, second: PhoneId) -> bool:
    """One number written twice: the same country code and national number, or a number without a
    country code whose digits are the other's national number (or its code and national number)."""
    if first[0] is not None and second[0] is not None:
        return first == second
    if first[0] is not None:
        first, second = second, first
    country, national = second
    return first[1] in (national, f"{country}{national}") if country else first[1] == national


def _email_key(value: str) -> str:
    return value.strip().casefold()


def contact_matcher(key: str, phone_region: str | None) -> Callable[[str, str], bool]:
    """Whether two values of the ``key`` list (``emails`` or ``phone_numbers``) are one: emails
    ignoring case, phone numbers by their digits (``same_phone``)."""
    if key == "emails":
        return lambda first, second: _email_key(first) == _email_key(second)
    return lambda first, second: same_phone(phone_id(first, phone_region), phone_id(second, phone_region))


def add_new(union: list[dict[str, str]], entries: Iterable[dict[str, str]], same: Callable[[str, str], bool]) -> bool:
    """Append to ``union`` each entry that matches none already there; True when one was added.
    Lists are bounded by the update schema, so comparing pairwise stays cheap."""
    added = False
    for entry in entries:
        if not any(same(entry["value"], kept["value"]) for kept in union):
            union.append(entry)
            added = True
    return added


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


def merge_contacts(update: dict[str, Any], person: dict[str, Any], phone_region: str | None) -> dict[str, Any]:
    """Return a copy of ``update`` whose contact lists are the union with ``person``'s.

    A list that would add nothing new is left out of the update altogether: sending it would cost
    nothing but could reorder what Stardex shows. ``phone_region`` is PHONE_DEFAULT_REGION, the
    region of numbers written without a country code.
    """
    merged = dict(update)
    for key in CONTACT_LISTS:
        new_entries = update.get(key)
        if not new_entries:
            continue
        union = _existing_entries(person, key)
        if add_new(union, new_entries, contact_matcher(key, phone_region)):
            merged[key] = union
        else:
            del merged[key]
    return merged
