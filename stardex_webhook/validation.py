"""Checks an update body against ``schemas/person_update.schema.json`` before it reaches Stardex:
a 422 lists every error with its JSON path, so all can be fixed at once. Messages never quote the
value: values are personal data and end up in answers and logs.

The schema stands on its own: each ``format`` has a ``pattern`` beside it, so a stock
``Draft202012Validator`` refuses what any does. The email pattern is a strict subset of what
email-validator accepts (the tests hold it to that); calling email-validator too could refuse
nothing more and would slow every cold start.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import TYPE_CHECKING, Any, Iterable

from .errors import ConfigurationError, Unprocessable

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
    instance = error.instance
    if keyword == "required":
        missing = [name for name in expected if isinstance(instance, dict) and name not in instance]
        return [(where + [name], "is required") for name in missing]
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in instance if name not in allowed] if isinstance(instance, dict) else []
        return [(where + [name], "is not an allowed property") for name in extra]
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        return [(where, "must be " + " or ".join(_TYPE_NAMES.get(name, name) for name in names))]
    if keyword in ("format", "pattern"):
        # A pattern stands beside each format: both refusals read as the format's one message.
        name = error.schema.get("format")
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


def schema_errors(body: Any) -> list[dict[str, str]]:
    """Every error of ``body`` as ``{"path", "message"}``, sorted by path, each reported once."""
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(body):
        for parts, message in _describe(error):
            seen.add((json_path(parts), message))
    return [{"path": path, "message": message} for path, message in sorted(seen)]


def validate_update(body: dict) -> None:
    """Raise ``Unprocessable("schema_invalid", errors=[...])`` unless ``body`` is a valid update."""
    errors = schema_errors(body)
    if not errors:
        return
    raise Unprocessable(
        "schema_invalid",
        f"the update does not match the Stardex person schema ({_plural(len(errors), 'error')})",
        errors=errors,
    )
