"""Checks an update body against ``schemas/person_update.schema.json`` before it reaches Stardex.

A body that fails is answered 422 with every error and its JSON path, so the sender (or whoever
wrote the mapping) can fix all of them at once. Messages are written here per schema keyword and
never quote the offending value: values are personal data (emails, phones, names) and end up in
answers and logs.

jsonschema is the authority, but it is imported only when a document fails the fast check below
(to list its errors), or at start when a schema uses a keyword the fast check does not know:
importing it and checking a schema costs a cold start about 60 milliseconds, and a valid body
never needs it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlsplit

from .errors import Unprocessable

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError

SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schemas")
PERSON_UPDATE_SCHEMA_PATH = os.path.join(SCHEMAS_DIR, "person_update.schema.json")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WHITESPACE = re.compile(r"\s")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")

_LONGEST_CACHED_EMAIL = 320
_LONGEST_NAME = 64
_FORMAT_MESSAGES = {
    "email": "is not a valid email address",
    "uri": "is not a valid http(s) URL with a host",
    "uuid": "is not a valid UUID",
}
_TYPE_NAMES = {"object": "an object", "array": "a list", "string": "a string", "number": "a number",
               "integer": "an integer", "boolean": "a boolean (true or false)", "null": "null"}


# An everyday address: ASCII dot-atom local part, hostname labels, an alphabetic top-level domain
# that is not a special-use name. Every address this accepts, email-validator accepts too (a test
# checks that on thousands of generated addresses); anything else goes to email-validator, which
# decides. It exists because importing email-validator costs a cold start ~45 ms (its regexes).
_EVERYDAY_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:(?!..--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?!(?:arpa|invalid|local|localhost|onion|test)$)[A-Za-z]{2,63}"
)
_LONGEST_EVERYDAY_EMAIL = 254


def is_everyday_email(text: str) -> bool:
    """True only for an address email-validator is certain to accept; False means "ask it"."""
    return len(text) <= _LONGEST_EVERYDAY_EMAIL and _EVERYDAY_EMAIL.fullmatch(text) is not None


def is_email(text: Any) -> bool:
    """Syntax check with email-validator (no DNS); a non-string is left to the ``type`` rule."""
    if not isinstance(text, str):
        return True
    if is_everyday_email(text):
        return True
    if len(text) > _LONGEST_CACHED_EMAIL:  # not remembered, so a sender cannot fill memory
        return _is_email_text.__wrapped__(text)
    return _is_email_text(text)


@functools.lru_cache(maxsize=4096)
def _is_email_text(text: str) -> bool:
    """Cached because one check costs tens of microseconds and the same addresses come back
    webhook after webhook."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def is_http_url(text: Any) -> bool:
    """An absolute http or https URL with a host: what Stardex can use as a LinkedIn URL."""
    if not isinstance(text, str):
        return True
    if _WHITESPACE.search(text):
        return False
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def is_uuid(text: Any) -> bool:
    """A UUID in its canonical 8-4-4-4-12 hexadecimal form, as Stardex's ids are written."""
    return not isinstance(text, str) or bool(_UUID.match(text))


Check = Callable[[Any], bool]
FORMAT_CHECKS: dict[str, Check] = {"email": is_email, "uri": is_http_url, "uuid": is_uuid}


def format_checker() -> FormatChecker:
    """A checker that asserts only our formats, each with a real check (jsonschema's defaults
    either accept almost anything or depend on optional packages)."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMAT_CHECKS.items():
        checker.checks(name)(check)
    return checker


def read_schema(path: str) -> dict[str, Any]:
    """Read a JSON schema file. It is checked against the Draft 2020-12 metaschema when jsonschema
    first needs it (``LazyValidator``), not here: that check alone would import jsonschema."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# Keywords that only annotate; they never make a document invalid. ``errorMessage`` is not a JSON
# Schema keyword (validators ignore it): the mapping schema keeps its messages there.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default",
                          "errorMessage"})
_TYPE_CHECKS: dict[str, Check] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "number": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "integer": lambda value: (isinstance(value, int) and not isinstance(value, bool))
    or (isinstance(value, float) and value.is_integer()),
}


class _Unsupported(Exception):
    """The schema uses a keyword the fast checker does not implement."""


def compile_fast_check(schema: dict[str, Any], formats: dict[str, Check]) -> Check | None:
    """A plain-Python yes/no check equivalent to jsonschema's for the keywords this schema uses.

    jsonschema takes about 100 microseconds per update body, a third of the pipeline's budget; the
    compiled closures take a few. jsonschema stays the authority: it builds the error list when this
    check fails. A schema that uses any keyword not handled here gets ``None`` (jsonschema alone),
    so editing the schema can never make the fast check silently more lenient. The same check
    passes valid mapping files at start, so that a cold start never imports jsonschema.
    """
    definitions = schema.get("$defs", {})
    compiled_definitions: dict[str, Check] = {}

    def reference(target: str) -> Check:
        prefix = "#/$defs/"
        name = target[len(prefix):]
        if not target.startswith(prefix) or name not in definitions:
            raise _Unsupported(target)
        if name in compiled_definitions:  # already compiled: no lookup per call
            return compiled_definitions[name]
        return lambda value: compiled_definitions[name](value)  # defined later (or recursive)

    def build(node: Any) -> Check:
        if node is True:
            return lambda value: True
        if node is False:
            return lambda value: False
        if not isinstance(node, dict):
            raise _Unsupported(node)
        checks = [build_keyword(node, keyword, argument)
                  for keyword, argument in node.items() if keyword not in _ANNOTATIONS]
        if len(checks) == 1:
            return checks[0]

        def check_all(value: Any) -> bool:
            for check in checks:
                if not check(value):
                    return False
            return True

        return check_all

    def build_keyword(node: dict[str, Any], keyword: str, argument: Any) -> Check:
        if keyword == "$ref":
            return reference(argument)
        if keyword == "type":
            names = [argument] if isinstance(argument, str) else list(argument)
            type_checks = [_TYPE_CHECKS[name] for name in names]
            if len(type_checks) == 1:
                return type_checks[0]
            return lambda value: any(check(value) for check in type_checks)
        if keyword == "properties":
            property_checks = {name: build(subschema) for name, subschema in argument.items()}

            def check_properties(value: Any) -> bool:
                if isinstance(value, dict):
                    for name, item in value.items():
                        check = property_checks.get(name)
                        if check is not None and not check(item):
                            return False
                return True

            return check_properties
        if keyword == "additionalProperties":
            known = frozenset(node.get("properties", {}))
            if "patternProperties" in node:
                raise _Unsupported(keyword)
            if argument is False:
                return lambda value: not isinstance(value, dict) or known.issuperset(value)
            extra_check = build(argument)
            return lambda value: not isinstance(value, dict) or all(
                extra_check(item) for name, item in value.items() if name not in known
            )
        if keyword == "required":
            names = tuple(argument)

            def check_required(value: Any) -> bool:
                if isinstance(value, dict):
                    for name in names:
                        if name not in value:
                            return False
                return True

            return check_required
        if keyword == "minProperties":
            return lambda value: not isinstance(value, dict) or len(value) >= argument
        if keyword == "minLength":
            return lambda value: not isinstance(value, str) or len(value) >= argument
        if keyword == "minItems":
            return lambda value: not isinstance(value, list) or len(value) >= argument
        if keyword == "items":
            item_check = build(argument)

            def check_items(value: Any) -> bool:
                if isinstance(value, list):
                    for item in value:
                        if not item_check(item):
                            return False
                return True

            return check_items
        if keyword == "enum":
            if not all(isinstance(option, str) for option in argument):
                raise _Unsupported(keyword)
            options = frozenset(argument)
            return lambda value: isinstance(value, str) and value in options
        if keyword == "format":
            # Like jsonschema, a format with no registered check asserts nothing.
            return formats.get(argument, lambda value: True)
        if keyword == "const":
            if not isinstance(argument, str):
                raise _Unsupported(keyword)
            return lambda value: isinstance(value, str) and value == argument
        if keyword == "uniqueItems":
            if argument is False:
                return lambda value: True
            # Only beside "items" of type string: then a list holding anything but strings fails
            # "items" anyway, so answering False for it is exact, and strings compare as in JSON.
            items = node.get("items")
            if argument is not True or not isinstance(items, dict) or items.get("type") != "string":
                raise _Unsupported(keyword)
            return lambda value: not isinstance(value, list) or (
                all(isinstance(item, str) for item in value) and len(set(value)) == len(value)
            )
        if keyword in ("oneOf", "anyOf"):
            branches = [build(subschema) for subschema in argument]
            if keyword == "anyOf":
                return lambda value: any(branch(value) for branch in branches)
            return lambda value: sum(1 for branch in branches if branch(value)) == 1
        if keyword == "not":
            negated = build(argument)
            return lambda value: not negated(value)
        raise _Unsupported(keyword)

    try:
        for name, subschema in definitions.items():
            compiled_definitions[name] = build(subschema)
        return build(schema)
    except (_Unsupported, KeyError, TypeError):
        return None


class LazyValidator:
    """jsonschema's validator for one schema, made on first use (importing jsonschema, checking the
    schema against the metaschema), once per process even when threads ask at the same time."""

    def __init__(self, schema: dict[str, Any], make_format_checker: Callable[[], FormatChecker] | None = None) -> None:
        self.schema = schema
        self._make_format_checker = make_format_checker
        self._validator: Draft202012Validator | None = None
        self._lock = threading.Lock()

    def get(self) -> Draft202012Validator:
        if self._validator is None:
            with self._lock:
                if self._validator is None:
                    from jsonschema import Draft202012Validator

                    Draft202012Validator.check_schema(self.schema)
                    checker = self._make_format_checker() if self._make_format_checker else None
                    self._validator = Draft202012Validator(self.schema, format_checker=checker)
        return self._validator


# Read and compiled once at import: no request pays for reading or compiling the schema. jsonschema
# is needed at start only when the fast check cannot be built (then a broken schema still stops
# the start); otherwise on the first body that fails the fast check.
_SCHEMA = read_schema(PERSON_UPDATE_SCHEMA_PATH)
_FAST_CHECK = compile_fast_check(_SCHEMA, FORMAT_CHECKS)
_VALIDATOR = LazyValidator(_SCHEMA, format_checker)
if _FAST_CHECK is None:
    _VALIDATOR.get()


def json_path(parts: Iterable[Any]) -> str:
    """``$.emails[0].value`` style path of a location in the document. Overlong property names
    are cut, since a sender controls them and the path goes into answers and logs."""
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
    if keyword == "format":
        return [(where, _FORMAT_MESSAGES.get(expected, f"is not a valid {expected}"))]
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
    for error in _VALIDATOR.get().iter_errors(body):
        for parts, message in _describe(error):
            seen.add((json_path(parts), message))
    return [{"path": path, "message": message} for path, message in sorted(seen)]


def validate_update(body: dict) -> None:
    """Raise ``Unprocessable("schema_invalid", errors=[...])`` unless ``body`` is a valid update."""
    if _FAST_CHECK is not None and _FAST_CHECK(body):
        return
    errors = schema_errors(body)
    if not errors:
        return
    raise Unprocessable(
        "schema_invalid",
        f"the update does not match the Stardex person schema ({_plural(len(errors), 'error')})",
        errors=errors,
    )
