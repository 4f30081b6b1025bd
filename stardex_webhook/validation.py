"""Checks an update body against ``schemas/person_update.schema.json`` before it reaches Stardex (what is
left out, and when it is a 422: docs/contract.md, "Values that fail validation"). Messages never quote
the value: values are personal data and end up in answers and logs. Each ``format`` has a ``pattern``
beside it, so a stock ``Draft202012Validator`` is the whole check; email-validator is the tests'
oracle only: calling it too could refuse nothing more and would slow every cold start.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from typing import TYPE_CHECKING, Any, Iterable

from .errors import ConfigurationError, Unprocessable
from .records import MappedUpdate

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schemas")
PERSON_UPDATE_SCHEMA_PATH = os.path.join(SCHEMAS_DIR, "person_update.schema.json")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LONGEST_NAME = 64
_FORMAT_MESSAGES = {
    "email": "is not a valid email address",
    "uri": "is not a valid http(s) URL with a host",
    "uuid": "is not a valid UUID",
    "phone": "is not a phone number (it needs at least 4 digits and no @)",
}
_TYPE_NAMES = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
               "integer": "an integer", "boolean": "a boolean (true or false)", "null": "null"}


def read_schema(path: str) -> dict[str, Any]:
    """Read a JSON schema file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def _validator() -> Draft202012Validator:
    """jsonschema's validator for the update schema, built on first use and reused."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(read_schema(PERSON_UPDATE_SCHEMA_PATH))


def build_validator() -> None:
    """Built at start, not on the first webhook: imports are cheapest there, and a schema file that
    cannot be read then stops the start."""
    try:
        _validator()
    except (OSError, ValueError) as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigurationError(f"schema file {PERSON_UPDATE_SCHEMA_PATH}: cannot be read: {error}") from None


def json_path(parts: Iterable[Any]) -> str:
    """``$.emails[0].value``; long names are cut (a sender controls them; the path is logged)."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        part = str(part)
        if len(part) > _LONGEST_NAME:
            part = part[:_LONGEST_NAME] + "..."
        if _IDENTIFIER.match(part):
            path += f".{part}"
        else:
            path += "[" + json.dumps(part) + "]"
    return path


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular}" if count == 1 else f"{count} {plural or singular + 's'}"


def _describe(error: ValidationError) -> list[tuple[list[Any], str]]:
    """(path, message) pairs for one jsonschema error, worded without the instance's value."""
    where = list(error.absolute_path)
    keyword = error.validator
    expected = error.validator_value
    # jsonschema applies "required" and "additionalProperties" to objects only: the instance is a dict.
    if keyword == "required":
        return [(where + [name], "is required") for name in expected if name not in error.instance]
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        return [(where + [name], "is not an allowed property") for name in error.instance if name not in allowed]
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return [(where, "must be " + " or ".join(_TYPE_NAMES.get(name, name) for name in names))]
    if keyword in ("format", "pattern"):
        # A pattern stands beside each format: both refusals read as the format's one message.
        name = error.schema.get("format") or error.schema.get("title")
        return [(where, _FORMAT_MESSAGES.get(name, "does not have the expected form"))]
    if keyword == "maxItems":
        return [(where, f"must have at most {_plural(expected, 'item')}")]
    if keyword == "maxLength":
        return [(where, f"must have at most {expected} characters")]
    if keyword == "minLength":
        return [(where, "must not be empty" if expected == 1 else f"must have at least {expected} characters")]
    if keyword == "minItems":
        return [(where, "must not be an empty list" if expected == 1 else f"must have at least {_plural(expected, 'item')}")]
    if keyword == "minProperties":
        if not where:
            return [(where, "is empty: an update needs at least one field")]
        return [(where, f"must have at least {_plural(expected, 'property', 'properties')}")]
    if keyword == "enum":
        return [(where, "must be one of: " + ", ".join(str(option) for option in expected))]
    return [(where, f"does not satisfy the schema's '{keyword}' rule")]


def _located_errors(body: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Every error of ``body`` as (path parts, message), each once, in path order."""
    seen: dict[tuple[str, str], tuple[Any, ...]] = {}
    for error in _validator().iter_errors(body):
        for parts, message in _describe(error):
            seen.setdefault((json_path(parts), message), tuple(parts))
    return [(seen[key], key[1]) for key in sorted(seen)]


def schema_errors(body: Any) -> list[dict[str, str]]:
    """Every error of ``body`` as ``{"path", "message"}``, sorted by path, each reported once."""
    return [{"path": json_path(parts), "message": message} for parts, message in _located_errors(body)]


def _value_of(parts: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The value an error's path lies in, as the part of the update that can be left out: one entry
    of a list (an email, a phone number, a custom field) or one top-level field. None for an error
    no value causes (an empty update, a field the schema does not know: the mapping's fault)."""
    if not parts or parts[0] not in _validator().schema["properties"]:
        return None
    if parts[0] in _LISTS_OF_ENTRIES and len(parts) >= 2 and isinstance(parts[1], int):
        return parts[:2]
    return parts[:1]


_LISTS_OF_ENTRIES = ("emails", "phone_numbers", "custom_fields")


def without_invalid_values(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, str]]]:
    """``body`` without the values that fail the schema, those values' paths and reasons
    (``skipped``, never the values), and the errors that remain: what no value caused, or an
    update left empty. The body itself is not changed."""
    located = _located_errors(body)
    if not located:
        return body, [], []
    drop: set[tuple[Any, ...]] = set()
    skipped: list[dict[str, str]] = []
    kept_errors: list[dict[str, str]] = []
    for parts, message in located:
        value = _value_of(parts)
        if value is None:
            kept_errors.append({"path": json_path(parts), "message": message})
        else:
            drop.add(value)
            skipped.append({"path": json_path(parts), "reason": message})
    clean: dict[str, Any] = {}
    for name, value in body.items():
        if (name,) in drop:
            continue
        if name in _LISTS_OF_ENTRIES and isinstance(value, list):
            value = [entry for index, entry in enumerate(value) if (name, index) not in drop]
            if not value:
                continue
        clean[name] = value
    if not kept_errors:
        kept_errors = schema_errors(clean)  # what leaving the values out leaves wrong: nothing left
    return clean, skipped, kept_errors


def is_valid(definition: str, value: Any) -> bool:
    """Whether ``value`` satisfies the update schema's ``$defs`` entry (``email``, ``url``): for
    the values that find the person, which need not be in the update itself."""
    return _definition_validator(definition).is_valid(value)


@functools.cache
def _definition_validator(definition: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$defs": _validator().schema["$defs"], "$ref": f"#/$defs/{definition}"})


def checked(mapped: MappedUpdate) -> MappedUpdate:
    """The update without its invalid values, each listed in ``skipped`` (docs/contract.md, "Values that
    fail validation"). ``Unprocessable`` when no valid value remains, or when every value that
    could find the person (its emails, its LinkedIn URL) is invalid and no id is given."""
    clean, skipped, errors = without_invalid_values(mapped.update)
    if errors:
        every = sorted([{"path": item["path"], "message": item["reason"]} for item in skipped] + errors,
                       key=lambda item: (item["path"], item["message"]))
        raise Unprocessable("schema_invalid",
                            f"the update does not match the Stardex person schema ({_plural(len(every), 'error')})",
                            errors=every)
    person = mapped.person
    written = {entry["value"] for entry in clean.get("emails", ())}  # valid already: the schema passed them
    emails = [address for address in person.emails if address in written or is_valid("email", address)]
    linkedin_url = person.linkedin_url if person.linkedin_url in (None, clean.get("linkedin_url")) \
        or is_valid("url", person.linkedin_url) else None
    if not person.id and (person.emails or person.linkedin_url) and not (emails or linkedin_url):
        raise Unprocessable("person_keys_invalid",
                            "every email address and LinkedIn URL that could find the person is invalid",
                            errors=[{"path": item["path"], "message": item["reason"]} for item in skipped])
    if not skipped and emails == person.emails and linkedin_url == person.linkedin_url:
        return mapped
    return dataclasses.replace(mapped, update=clean, skipped=tuple(skipped),
                               person=dataclasses.replace(person, emails=emails, linkedin_url=linkedin_url))
