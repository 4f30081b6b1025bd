"""Merge an update's contact lists with what the person already has. Stardex replaces a sent list whole, so we
send the union: stored entries first, as stored (never re-judged: one odd stored address must not block every
later update), then the new ones."""

from __future__ import annotations

import functools
from typing import Any, Iterable

CONTACT_LISTS = ("emails", "phone_numbers")

_READ_KEYS = {"emails": ("emails",), "phone_numbers": ("phones", "phone_numbers")}  # reads: phones; updates: phone_numbers
_DEFAULT_TYPES = {"emails": "personal", "phone_numbers": "mobile"}
# The types Stardex documents (and our schema allows); a stored entry of another type gets the default one.
_KNOWN_TYPES = {"emails": frozenset({"work", "personal"}), "phone_numbers": frozenset({"work", "mobile"})}

PhoneId = tuple[str | None, str]


def touches_contacts(update: dict[str, Any]) -> bool:
    """Whether the update sends a list that Stardex would replace (and so needs a read first)."""
    return any(update.get(key) for key in CONTACT_LISTS)


def listed(update: dict[str, Any], key: str, value: str, region: str | None) -> bool:
    """Whether the update's own ``key`` list holds ``value``: a convenience field would add it twice."""
    return not SeenContacts(key, region, update.get(key) or ()).add(value)


def contacts_known(person: dict[str, Any], key: str) -> bool:
    """Whether ``person`` shows its ``key`` list at all (a remembered person may not)."""
    return any(read_key in person for read_key in _READ_KEYS[key])


@functools.lru_cache(maxsize=1024)
def phone_id(number: str, region: str | None) -> PhoneId:
    """(country code, national number) when known, else (None, digits without leading zeros); valid
    or not, only the digits count. Remembered: an update's numbers are compared in the mapping and
    again with the stored ones. phonenumbers is imported here: slow, and often not needed."""
    import phonenumbers

    digits = "".join(character for character in number if character.isdigit())
    if not digits:
        return None, number.strip().casefold()
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None, digits.lstrip("0")
    return str(parsed.country_code), phonenumbers.national_significant_number(parsed)


class SeenContacts:
    """One list's values seen so far (``stored`` entries first), answering in constant time (the mapping
    meets a list before the schema's bound does): emails ignoring case, phone numbers by ``phone_id``."""

    def __init__(self, key: str, phone_region: str | None, stored: Iterable[dict[str, str]] = ()) -> None:
        self._phones = key == "phone_numbers"
        self._region = phone_region
        self._exact: set[PhoneId | str] = set()
        self._national_forms: set[str] = set()  # what a number without a country code may equal
        self._bare: set[str] = set()  # numbers without a country code
        for entry in stored:
            self.add(entry["value"])

    def add(self, value: str) -> bool:
        """Remember ``value``; True when it is none of the values seen before."""
        if not self._phones:
            return self._add_exact(value.strip().casefold())
        country, national = phone_id(value, self._region)
        if country is None:
            new = national not in self._bare and national not in self._national_forms
            self._bare.add(national)
            return new
        forms = (national, country + national)
        new = self._add_exact((country, national)) and not any(form in self._bare for form in forms)
        self._national_forms.update(forms)
        return new

    def _add_exact(self, marker: PhoneId | str) -> bool:
        new = marker not in self._exact
        self._exact.add(marker)
        return new


def stored_entries(person: dict[str, Any], key: str) -> list[dict[str, str]]:
    """The person's stored entries of ``key`` as ``{contact_data_type, value}``, skipping blanks."""
    raw = next((person[read_key] for read_key in _READ_KEYS[key] if isinstance(person.get(read_key), list)), [])
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
        kind = kind.strip().lower() if isinstance(kind, str) else None
        if kind not in _KNOWN_TYPES[key]:
            kind = _DEFAULT_TYPES[key]
        entries.append({"contact_data_type": kind, "value": value})
    return entries


def sort_entries(key: str, new_entries: list[dict[str, str]], person: dict[str, Any],
                 phone_region: str | None) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """(stored entries, the sender's new ones, the sender's already there or repeated)."""
    stored = stored_entries(person, key)
    seen = SeenContacts(key, phone_region, stored)
    added, repeated = [], []
    for entry in new_entries:
        (added if seen.add(entry["value"]) else repeated).append(entry)
    return stored, added, repeated

