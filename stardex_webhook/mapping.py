"""The mapping engine: turns a sender's payload into a Stardex update, driven by data files.

Each source has one JSON file in ``mappings/`` (format documented in ``schemas/mapping.schema.json``).
All the checking happens in ``load_mappings`` when the function starts: a file that is not valid
JSON, breaks the schema, holds a bad JMESPath expression or names an unknown transform stops the
start with a ``ConfigurationError`` that names the file and the fault. In exchange ``apply`` never
fails: a path that meets the wrong shape yields nothing, and the worst a payload can do is produce
an update that schema validation then refuses.
"""

from __future__ import annotations

import copy
import json
import numbers
import operator
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
# _Expression: jmespath's functions (sort_by, max_by, map...) recognise an expression argument by this class.
from jmespath.visitor import TreeInterpreter, _Expression

from . import transforms as transform_functions
from .errors import ConfigurationError
from .validation import SCHEMAS_DIR, Check, LazyValidator, compile_fast_check, json_path, read_schema

if TYPE_CHECKING:
    from jsonschema import ValidationError

BUILTIN_MAPPINGS_DIR = os.path.join(os.path.dirname(__file__), "..", "mappings")
MAPPING_SCHEMA_PATH = os.path.join(SCHEMAS_DIR, "mapping.schema.json")
ALL_EVENTS = "*"
CONTACT_LISTS = ("emails", "phone_numbers")

# jmespath's own evaluator, for what the compiler below leaves to it (exprefs, node kinds it does
# not know). It holds no per-search state, so one instance serves every thread.
_INTERPRETER = TreeInterpreter()
_FUNCTIONS = Functions()
# What a JMESPath search may raise on a payload of an unexpected shape (type errors in functions,
# deep structures in comparisons); each is "nothing found" to the engine.
_SEARCH_FAULTS = (JMESPathError, TypeError, ValueError, RecursionError)

# The mapping schema, read on first use (only at start, when files are loaded): a compiled fast
# check that passes a valid file without importing jsonschema, and jsonschema (imported only when
# a file fails that check, or when the schema uses a keyword the check does not know) for the
# messages that name each fault.
_mapping_schema: tuple[LazyValidator, Check | None] | None = None


@dataclass(frozen=True)
class PersonRef:
    """What the resolver needs to find the Stardex person: an id, or emails and a LinkedIn URL
    to search by (in that order)."""

    id: str | None
    emails: list[str]
    linkedin_url: str | None


@dataclass(frozen=True)
class MappedUpdate:
    """The Stardex PATCH body built from one payload, the person it is for, and whether that
    person may be created when not found."""

    update: dict[str, Any]
    person: PersonRef
    create: bool


class _Path:
    """A compiled JMESPath expression whose search answers None instead of raising."""

    __slots__ = ("source", "_search")

    def __init__(self, source: str, where: str) -> None:
        self.source = source
        try:
            parsed = jmespath.compile(source)
        except JMESPathError as error:
            raise ValueError(f"{where}: invalid JMESPath expression: {_jmespath_message(error)}") from None
        _check_functions(parsed.parsed, where)
        self._search = compile_expression(parsed.parsed)

    def find(self, document: Any) -> Any:
        try:
            return self._search(document)
        except _SEARCH_FAULTS:
            return None


Search = Callable[[Any], Any]
_ORDERING = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def _is_false(value: Any) -> bool:
    """JMESPath's falsiness: null, false, and empty strings, lists and objects."""
    return value is None or value is False or (isinstance(value, (str, list, dict)) and not value)


def _is_number(value: Any) -> bool:
    """A JSON number (Python's booleans are ints, JMESPath's are not)."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _equals(left: Any, right: Any) -> bool:
    """JMESPath equality: unlike Python, 0 and 1 never equal false and true."""
    if _is_number(left) and left in (0, 1) and isinstance(right, bool):
        return False
    if _is_number(right) and right in (0, 1) and isinstance(left, bool):
        return False
    return left == right


def compile_expression(ast: dict[str, Any]) -> Search:
    """Turn a parsed JMESPath expression into nested Python closures.

    jmespath's tree interpreter re-dispatches on every node of every search; a mapping like
    Typeform's (a dozen filters over the answers) then costs over 200 microseconds per payload.
    The closures follow ``jmespath.visitor.TreeInterpreter`` node for node (same results, same
    errors) at a fraction of the cost; a node kind they do not know is left to the interpreter.
    """
    try:
        return _compile_node(ast)
    except _UnknownNode:
        return lambda value: _INTERPRETER.visit(ast, value)


class _UnknownNode(Exception):
    """An AST node kind the compiler does not handle."""


def _compile_node(node: dict[str, Any]) -> Search:
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        key = node["value"]
        return lambda value: value.get(key) if isinstance(value, dict) else None
    if kind == "subexpression" and all(child["type"] == "field" for child in children):
        keys = [child["value"] for child in children]

        def fields(value: Any) -> Any:
            for key in keys:
                if not isinstance(value, dict):
                    return None
                value = value.get(key)
            return value

        return fields
    if kind in ("subexpression", "index_expression", "pipe"):
        steps = [_compile_node(child) for child in children]

        def chain(value: Any) -> Any:
            for step in steps:
                value = step(value)
            return value

        return chain
    if kind in ("current", "identity"):
        return lambda value: value
    if kind == "literal":
        constant = node["value"]
        return lambda value: constant
    if kind == "index":
        position = node["value"]

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[position]
            except IndexError:
                return None

        return index
    if kind == "slice":
        bounds = slice(*children)
        return lambda value: value[bounds] if isinstance(value, list) else None
    if kind in ("projection", "value_projection", "filter_projection"):
        return _compile_projection(kind, children)
    if kind == "flatten":
        base_of = _compile_node(children[0])

        def flatten(value: Any) -> Any:
            base = base_of(value)
            if not isinstance(base, list):
                return None
            merged: list[Any] = []
            for element in base:
                if isinstance(element, list):
                    merged.extend(element)
                else:
                    merged.append(element)
            return merged

        return flatten
    if kind == "multi_select_list":
        items = [_compile_node(child) for child in children]
        return lambda value: None if value is None else [item(value) for item in items]
    if kind == "multi_select_dict":
        pairs = [(child["value"], _compile_node(child["children"][0])) for child in children]
        return lambda value: None if value is None else {key: item(value) for key, item in pairs}
    if kind == "or_expression":
        left, right = (_compile_node(child) for child in children)

        def either(value: Any) -> Any:
            matched = left(value)
            return right(value) if _is_false(matched) else matched

        return either
    if kind == "and_expression":
        left, right = (_compile_node(child) for child in children)

        def both(value: Any) -> Any:
            matched = left(value)
            return matched if _is_false(matched) else right(value)

        return both
    if kind == "not_expression":
        operand = _compile_node(children[0])

        def negation(value: Any) -> Any:
            result = operand(value)
            if _is_number(result) and result == 0:
                return False  # !0 is false in JMESPath: 0 is not a false value
            return not result

        return negation
    if kind == "comparator":
        literal = children[1]["value"] if children[1]["type"] == "literal" else None
        return _compile_comparator(node["value"], *(_compile_node(child) for child in children), literal)
    if kind == "function_expression":
        name = node["value"]
        arguments = [_compile_node(child) for child in children]
        return lambda value: _FUNCTIONS.call_function(name, [argument(value) for argument in arguments])
    if kind == "expref":
        expression = children[0]
        return lambda value: _Expression(expression, _INTERPRETER)
    raise _UnknownNode(kind)


def _compile_projection(kind: str, children: list[dict[str, Any]]) -> Search:
    base_of = _compile_node(children[0])
    each = _compile_node(children[1])
    keep = _compile_condition(children[2]) if kind == "filter_projection" else None

    def projection(value: Any) -> Any:
        base = base_of(value)
        if kind == "value_projection":
            if not isinstance(base, dict):
                return None
            base = list(base.values())
        elif not isinstance(base, list):
            return None
        collected = []
        for element in base:
            if keep is not None and not keep(element):
                continue
            current = each(element)
            if current is not None:
                collected.append(current)
        return collected

    return projection


def _field_keys(node: dict[str, Any]) -> list[str] | None:
    """The keys of a plain field path (``a`` or ``a.b.c``); None for any other expression."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression" and all(child["type"] == "field" for child in node["children"]):
        return [child["value"] for child in node["children"]]
    return None


def _compile_condition(node: dict[str, Any]) -> Callable[[Any], bool]:
    """A filter's condition as a yes/no test of one element, i.e. ``not _is_false(condition(element))``.

    Filters run once per list element, and mappings are mostly ``answers[?field.ref == 'email']``:
    that comparison (and ``||`` / ``&&`` of such) is looked up inline here instead of through three
    nested closures per element; the answer is the same (a field path yields None as soon as it
    meets a non-object, and a string never equals a non-string).
    """
    kind = node["type"]
    if kind == "comparator" and node["value"] in ("eq", "ne"):
        left, right = node["children"]
        keys = _field_keys(left)
        if keys is not None and right["type"] == "literal" and isinstance(right["value"], str):
            literal, negate = right["value"], node["value"] == "ne"

            def compare(element: Any) -> bool:
                for key in keys:
                    element = element.get(key) if isinstance(element, dict) else None
                return (element == literal) is not negate

            return compare
    if kind in ("or_expression", "and_expression"):
        first, second = (_compile_condition(child) for child in node["children"])
        if kind == "or_expression":
            return lambda element: first(element) or second(element)
        return lambda element: first(element) and second(element)
    condition = _compile_node(node)
    return lambda element: not _is_false(condition(element))


def _compile_comparator(operation: str, left: Search, right: Search, literal: Any) -> Search:
    if operation in ("eq", "ne"):
        negate = operation == "ne"
        if isinstance(literal, str):
            # The common `field == 'text'`: jmespath's special case (0/1 against true/false)
            # cannot apply to a string, so plain equality gives the same answer.
            return lambda value: (left(value) == literal) is not negate
        return lambda value: _equals(left(value), right(value)) is not negate
    ordering = _ORDERING[operation]

    def compare(value: Any) -> Any:
        first, second = left(value), right(value)
        # Like jmespath, ordering is defined between numbers and between strings; anything else is null.
        if not all(_is_number(item) or isinstance(item, str) for item in (first, second)):
            return None
        return ordering(first, second)

    return compare


def _jmespath_message(error: JMESPathError) -> str:
    """jmespath's message on one line, with the position it points at."""
    first_line = str(error).splitlines()[0]
    for prefix in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
        first_line = first_line.removeprefix(prefix)
    position = getattr(error, "lex_position", None)
    if position is None:
        position = getattr(error, "lexer_position", None)
    return f"{first_line} at character {position}" if position is not None else first_line


def _check_functions(node: Any, where: str) -> None:
    """Catch unknown functions and wrong argument counts at load time: jmespath itself only finds
    them when a search reaches the call, i.e. at request time."""
    if not isinstance(node, dict):
        return
    children = node.get("children") or []
    if node.get("type") == "function_expression":
        name = node.get("value")
        entry = _FUNCTIONS.FUNCTION_TABLE.get(name)
        if entry is None:
            raise ValueError(f"{where}: invalid JMESPath expression: unknown function {name}()")
        signature = entry["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        count = len(children)
        if count < len(signature) or (count > len(signature) and not variadic):
            expected = f"at least {len(signature)}" if variadic else str(len(signature))
            raise ValueError(
                f"{where}: invalid JMESPath expression: {name}() takes {expected} arguments, given {count}"
            )
    for child in children:
        _check_functions(child, where)


class _Field:
    """One Stardex field: a path plus transforms, or a constant."""

    __slots__ = ("name", "path", "transforms", "constant")

    def __init__(self, name: str, spec: dict[str, Any], transforms: dict[str, Callable[[Any], Any]]) -> None:
        where = f"fields.{name}"
        self.name = name
        self.constant = spec.get("value")
        self.path = _Path(spec["path"], f"{where}.path") if "path" in spec else None
        chain = []
        for index, transform_name in enumerate(spec.get("transforms", [])):
            if transform_name not in transforms:
                raise ValueError(f"{where}.transforms[{index}]: unknown transform {transform_name!r}")
            chain.append(transforms[transform_name])
        self.transforms = tuple(chain)

    def value(self, root: Any) -> Any:
        value = self.constant if self.path is None else self.path.find(root)
        for transform in self.transforms:
            if value is None:
                break
            value = transform(value)
        if isinstance(value, (list, dict)):
            # The update must not share objects with the payload or the mapping (later stages may
            # edit it). A structure nested too deeply to copy is no Stardex value either.
            try:
                value = copy.deepcopy(value)
            except RecursionError:
                return None
        return value


class _ContactList:
    """Emails or phone numbers as Stardex's [{contact_data_type, value}], normalised and de-duplicated."""

    __slots__ = ("name", "path", "value_path", "type_path", "types", "default_type", "normalise")

    def __init__(self, name: str, spec: dict[str, Any], normalise: Callable[[Any], str | None]) -> None:
        where = f"fields.{name}"
        self.name = name
        self.path = _Path(spec["path"], f"{where}.path")
        self.value_path = _Path(spec["value"], f"{where}.value") if "value" in spec else None
        self.type_path = _Path(spec["type"], f"{where}.type") if "type" in spec else None
        self.types = {sender_type.strip().lower(): ours for sender_type, ours in spec.get("types", {}).items()}
        self.default_type = spec["default_type"]
        self.normalise = normalise

    def entries(self, root: Any) -> list[dict[str, str]]:
        found = self.path.find(root)
        items = found if isinstance(found, list) else [found]
        entries: list[dict[str, str]] = []
        seen: set[str] = set()
        for item in items:
            sender_type = None
            if isinstance(item, dict):
                raw = self.value_path.find(item) if self.value_path else None
                sender_type = self.type_path.find(item) if self.type_path else None
            elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
                raw = item
            else:
                continue
            value = self.normalise(raw)
            if not value or value in seen:
                continue
            seen.add(value)
            entries.append({"contact_data_type": self._stardex_type(sender_type), "value": value})
        return entries

    def _stardex_type(self, sender_type: Any) -> str:
        if isinstance(sender_type, str):
            return self.types.get(sender_type.strip().lower(), self.default_type)
        return self.default_type


def _unique(values: Iterable[Any]) -> list[str]:
    """Non-empty strings in first-seen order, each once."""
    result: list[str] = []
    for value in values:
        if isinstance(value, str) and value and value not in result:
            result.append(value)
    return result


class Mapping:
    """One source's mapping file, compiled: which events it acts on and how a payload becomes a
    ``MappedUpdate``."""

    def __init__(self, name: str, document: dict[str, Any], phone_default_region: str | None) -> None:
        """Compile a document already validated against the mapping schema; a fault raises
        ``ValueError`` with the location inside the document."""
        transforms = transform_functions.make_transforms(phone_default_region)
        self.name = name
        events = document["events"]
        self.all_events = events == ALL_EVENTS
        self.events = frozenset() if self.all_events else frozenset(events)
        self.root = _Path(document["root"], "root") if "root" in document else None
        person = document.get("person", {})
        self.person_id = _Path(person["id"], "person.id") if "id" in person else None
        self.person_email = _Path(person["email"], "person.email") if "email" in person else None
        self.person_linkedin_url = (
            _Path(person["linkedin_url"], "person.linkedin_url") if "linkedin_url" in person else None
        )
        self.create = bool(person.get("create", False))
        normalisers = {"emails": transforms["email"], "phone_numbers": transforms["phone"]}
        self.fields: list[_Field | _ContactList] = []
        for field_name, spec in document["fields"].items():
            if field_name in CONTACT_LISTS:
                self.fields.append(_ContactList(field_name, spec, normalisers[field_name]))
            else:
                self.fields.append(_Field(field_name, spec, transforms))

    def acts_on(self, event_type: str | None) -> bool:
        """True when this mapping handles the event; an event without a type matches only "*"."""
        return self.all_events or (event_type is not None and event_type in self.events)

    def apply(self, payload: Any) -> MappedUpdate:
        """Build the update from whatever the payload holds; never raises."""
        root = self.root.find(payload) if self.root is not None else payload
        update: dict[str, Any] = {}
        for field in self.fields:
            value = field.entries(root) if isinstance(field, _ContactList) else field.value(root)
            if not transform_functions.is_blank(value):
                update[field.name] = value
        return MappedUpdate(update=update, person=self._person(root, update), create=self.create)

    def _person(self, root: Any, update: dict[str, Any]) -> PersonRef:
        person_id = None
        if self.person_id is not None:
            person_id = transform_functions.trim(transform_functions.string(self.person_id.find(root)))
        emails: list[str] = []
        if self.person_email is not None:
            found = self.person_email.find(root)
            candidates = found if isinstance(found, list) else [found]
            emails = _unique(transform_functions.email(candidate) for candidate in candidates)
        if not emails:
            mapped = [entry["value"] for entry in update.get("emails", [])]
            emails = _unique(mapped + [update.get("work_email"), update.get("personal_email")])
        linkedin_url = None
        if self.person_linkedin_url is not None:
            linkedin_url = transform_functions.linkedin(self.person_linkedin_url.find(root))
        if linkedin_url is None and isinstance(update.get("linkedin_url"), str):
            linkedin_url = update["linkedin_url"]
        return PersonRef(id=person_id, emails=emails, linkedin_url=linkedin_url)


def _mapping_schema_checks() -> tuple[LazyValidator, Check | None]:
    global _mapping_schema
    if _mapping_schema is None:
        schema = read_schema(MAPPING_SCHEMA_PATH)
        _mapping_schema = (LazyValidator(schema), compile_fast_check(schema, {}))
    return _mapping_schema


def _schema_faults(document: Any) -> list[str]:
    """Every fault of a mapping document against the mapping schema, sorted; none when it is valid."""
    validator, fast_check = _mapping_schema_checks()
    if fast_check is not None and fast_check(document):
        return []
    return sorted(_schema_message(error) for error in validator.get().iter_errors(document))


def _schema_message(error: ValidationError) -> str:
    """One schema fault in the mapping file, located by its JSON path."""
    from jsonschema.exceptions import best_match

    where = json_path(error.absolute_path)
    if error.validator in ("oneOf", "anyOf") and "errorMessage" in error.schema:
        return f"{where}: {error.schema['errorMessage']}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        error = best_match(error.context)
        where = json_path(error.absolute_path)
    return f"{where}: {error.message}"


def load_mapping_file(name: str, file_path: str, phone_default_region: str | None) -> Mapping:
    """Read, validate and compile one mapping file; any fault raises ``ConfigurationError``
    naming the file."""
    try:
        with open(file_path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"mapping file {file_path}: cannot be read: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"mapping file {file_path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    faults = _schema_faults(document)
    if faults:
        raise ConfigurationError(f"mapping file {file_path}: does not match the mapping schema: " + "; ".join(faults))
    try:
        return Mapping(name, document, phone_default_region)
    except ValueError as error:
        raise ConfigurationError(f"mapping file {file_path}: {error}") from None


def _mapping_files(directory: str, setting: str) -> dict[str, str]:
    """Source name → path of every ``*.json`` file in ``directory``."""
    if not os.path.isdir(directory):
        raise ConfigurationError(f"{setting} {directory}: not a directory")
    return {
        entry[: -len(".json")]: os.path.join(directory, entry)
        for entry in sorted(os.listdir(directory))
        if entry.endswith(".json") and not entry.startswith(".")
    }


def load_mappings(builtin_dir: str, override_dir: str | None, phone_default_region: str | None) -> dict[str, Mapping]:
    """Every source's compiled mapping, keyed by file name without ``.json``. A file in
    ``override_dir`` (MAPPINGS_DIR) replaces the built-in file of the same name; the others stay."""
    files = _mapping_files(builtin_dir, "built-in mappings directory")
    if override_dir:
        files.update(_mapping_files(override_dir, "MAPPINGS_DIR"))
    return {name: load_mapping_file(name, path, phone_default_region) for name, path in files.items()}
