"""The mapping engine: a sender's payload to a Stardex update, driven by ``mappings/<source>.json``.
All checking happens in ``load_mappings`` at start (a fault is a ``ConfigurationError`` naming the
file); in exchange ``apply`` never fails: a path that meets the wrong shape yields nothing.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions

from . import transforms as transform_functions
from .contacts import CONTACT_LISTS, SeenContacts
from .errors import ConfigurationError
from .records import MappedUpdate, NamedCustomFields, NoteRequest, PersonRef, StageRequest
from .stages import ANY_JOB, JOB_NOT_IN_TABLE, NOT_IN_TABLE, SUPERSEDED, event_time, stage_key
from .validation import SCHEMAS_DIR, json_path, read_schema, schema_errors

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

BUILTIN_MAPPINGS_DIR = os.path.join(os.path.dirname(__file__), "..", "mappings")
MAPPING_SCHEMA_PATH = os.path.join(SCHEMAS_DIR, "mapping.schema.json")
ALL_EVENTS = "*"

_MOST_CONTACTS = 1000  # per list: far beyond the schema's maxItems (still a 422), short of normalising thousands
_FUNCTIONS = Functions()  # jmespath's function table, to check names and argument counts at load
# What a search may raise on a payload of an unexpected shape: "nothing found" to the engine.
_SEARCH_FAULTS = (JMESPathError, TypeError, ValueError, RecursionError)


class _Path:
    """A JMESPath expression compiled once at load; its search answers None instead of raising."""

    def __init__(self, source: str, where: str) -> None:
        try:
            self._expression = jmespath.compile(source)
        except JMESPathError as error:
            raise ValueError(f"{where}: invalid JMESPath expression: {_jmespath_message(error)}") from None
        _check_functions(self._expression.parsed, where)

    def find(self, document: Any) -> Any:
        try:
            return self._expression.search(document)
        except _SEARCH_FAULTS:
            return None


def _jmespath_message(error: JMESPathError) -> str:
    """jmespath's message on one line, with the position it points at."""
    first_line = str(error).splitlines()[0]
    for prefix in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
        first_line = first_line.removeprefix(prefix)
    position = getattr(error, "lex_position", getattr(error, "lexer_position", None))
    return f"{first_line} at character {position}" if position is not None else first_line


def _check_functions(node: Any, where: str) -> None:
    """Unknown functions and wrong argument counts at load: jmespath finds them only at request time."""
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

    def __init__(self, name: str, spec: dict[str, Any], transforms: dict[str, Callable[[Any], Any]],
                 where: str) -> None:
        self.name = name
        self.optional = bool(spec.get("optional"))  # only plan --check-mappings reads it
        self.constant = spec.get("value")
        self.path = _Path(spec["path"], f"{where}.path") if "path" in spec else None
        # The mapping schema's enum of transform names has refused any other name already.
        self.transforms = tuple(transforms[transform_name] for transform_name in spec.get("transforms", []))

    def value(self, root: Any) -> Any:
        value = self.constant if self.path is None else self.path.find(root)
        for transform in self.transforms:
            if value is None:
                break
            value = transform(value)
        if isinstance(value, (list, dict)):  # not shared with the payload or the mapping; too deep: no value
            try:
                value = copy.deepcopy(value)
            except RecursionError:
                return None
        return value


class _ContactList:
    """Emails or phone numbers as Stardex's [{contact_data_type, value}], normalised, each once
    (compared as the contact merge compares them)."""

    def __init__(self, name: str, spec: dict[str, Any], normalise: Callable[[Any], str | None],
                 phone_region: str | None) -> None:
        where = f"fields.{name}"
        self.name = name
        self.optional = bool(spec.get("optional"))
        self.path = _Path(spec["path"], f"{where}.path")
        self.value_path = _Path(spec["value"], f"{where}.value") if "value" in spec else None
        self.type_path = _Path(spec["type"], f"{where}.type") if "type" in spec else None
        self.types = {sender_type.strip().lower(): ours for sender_type, ours in spec.get("types", {}).items()}
        self.default_type = spec["default_type"]
        self.normalise = normalise
        self.phone_region = phone_region

    def entries(self, root: Any) -> list[dict[str, str]]:
        found = self.path.find(root)
        items = found if isinstance(found, list) else [found]
        entries: list[dict[str, str]] = []
        seen = SeenContacts(self.name, self.phone_region)
        for item in items:
            contact_type = self.default_type
            if isinstance(item, dict):
                raw = self.value_path.find(item) if self.value_path else None
                sender_type = self.type_path.find(item) if self.type_path else None
                if isinstance(sender_type, str):
                    contact_type = self.types.get(sender_type.strip().lower(), contact_type)
            elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
                raw = item
            else:
                continue
            value = self.normalise(raw)
            if value and seen.add(value):
                entries.append({"contact_data_type": contact_type, "value": value})
                if len(entries) > _MOST_CONTACTS:
                    break
        return entries


def _unique(values: Iterable[Any]) -> list[str]:
    """Non-empty strings in first-seen order, each once."""
    return list(dict.fromkeys(value for value in values if isinstance(value, str) and value))


class SourceMapping:
    """One source's mapping, compiled; a ``forms`` section compiles one variant per form."""

    def __init__(self, name: str, document: dict[str, Any], phone_region: str | None,
                 default_write_policy: str = "overwrite") -> None:
        self.name = name
        events = document["events"]
        self.all_events = events == ALL_EVENTS
        self.events = frozenset() if self.all_events else frozenset(events)
        self._base = _CompiledFields(document, phone_region, default_write_policy, "")
        self.form_id = _Path(document["form_id"], "form_id") if "form_id" in document else None
        self.forms = {}
        for form, section in document.get("forms", {}).items():
            variant = _overlay(document, section)
            faults = _schema_faults(variant)
            if faults:
                raise ValueError(f"forms.{form}: " + "; ".join(faults))
            self.forms[form] = _CompiledFields(variant, phone_region, default_write_policy, f"forms.{form}.")

    @property
    def write_policy(self) -> str:
        return self._base.write_policy

    def named_custom_fields(self) -> list[tuple[str, NamedCustomFields]]:
        """Each variant's named custom fields (``""``: the base), for a check against Stardex's."""
        variants = [("", self._base), *((f"forms.{form}", compiled) for form, compiled in self.forms.items())]
        return [(where, NamedCustomFields({}, tuple(field.name for field in compiled.custom_fields),
                                          compiled.custom_field_options))
                for where, compiled in variants if compiled.custom_fields]

    def acts_on(self, event_type: str | None) -> bool:
        """True when this mapping handles the event; an event without a type matches only "*"."""
        return self.all_events or (event_type is not None and event_type in self.events)

    def apply(self, payload: Any, event: Any = None) -> MappedUpdate:
        """Never raises; ``event`` supplies a note's transcript and delivery id."""
        return self.variant(payload).apply(payload, event)

    def variant(self, payload: Any) -> "_CompiledFields":
        """The part of the mapping a payload selects: its form's section, else the base."""
        if self.forms and self.form_id is not None:
            form = transform_functions.string(self.form_id.find(payload))
            if isinstance(form, str) and form in self.forms:
                return self.forms[form]
        return self._base


def _overlay(document: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """A form's section over the base: fields and person keys one by one (null drops one)."""
    merged = {key: value for key, value in document.items() if key not in ("forms", "form_id")}
    for key in ("fields", "person", "custom_fields"):
        if key in section:
            combined = {**merged.get(key, {}), **section[key]}
            merged[key] = {name: spec for name, spec in combined.items() if spec is not None}
    for key in ("write_policy", "note", "job", "stages"):
        if key in section:
            merged[key] = section[key]
    return merged


class _CompiledFields:
    """The part of a mapping that turns a payload into a ``MappedUpdate``."""

    def __init__(self, document: dict[str, Any], phone_region: str | None, default_write_policy: str,
                 where: str) -> None:
        transforms = transform_functions.make_transforms(phone_region)
        self.write_policy = document.get("write_policy", default_write_policy)
        self.root = _Path(document["root"], "root") if "root" in document else None
        person = document.get("person", {})
        self.person_id = _Path(person["id"], f"{where}person.id") if "id" in person else None
        self.person_email = _Path(person["email"], f"{where}person.email") if "email" in person else None
        self.person_linkedin_url = (
            _Path(person["linkedin_url"], f"{where}person.linkedin_url") if "linkedin_url" in person else None
        )
        self.create = bool(person.get("create", False))
        job = document.get("job")
        # The sender's job id (read from the whole payload) → the Stardex job id; only listed jobs.
        self.job_path = _Path(job["path"], f"{where}job.path") if job else None
        self.job_table = {str(key): value for key, value in job["table"].items()} if job else {}
        stages = document.get("stages")
        self.stages = _Stages(stages, job, where) if stages else None
        self.custom_fields = [
            _Field(name, spec, transforms, f"{where}custom_fields.{name}")
            for name, spec in document.get("custom_fields", {}).items()
        ]
        self.custom_field_options = {name: dict(spec["options"]) for name, spec in document.get("custom_fields", {}).items()
                                     if spec.get("options")}
        note = document.get("note")
        self.note_type = note.get("activity_type", "secondary_note") if note is not None else None
        normalisers = {"emails": transforms["email"], "phone_numbers": transforms["phone"]}
        self.fields: list[_Field | _ContactList] = [
            _ContactList(field_name, spec, normalisers[field_name], phone_region) if field_name in CONTACT_LISTS
            else _Field(field_name, spec, transforms, f"fields.{field_name}")
            for field_name, spec in document["fields"].items()
        ]
        # A constant (``"value"``) is the same in every update: one the update schema refuses stops the start.
        constants = {field.name: field.value(None) for field in self.fields if isinstance(field, _Field)
                     and field.path is None and not transform_functions.is_blank(field.constant)}
        faults = [f"{where}fields.{error['path'][2:]}: {error['message']}"
                  for error in (schema_errors(constants) if constants else ())]
        if faults:
            raise ValueError("a constant no update could send: " + "; ".join(faults))

    def apply(self, payload: Any, event: Any) -> MappedUpdate:
        root = self.root.find(payload) if self.root is not None else payload
        update: dict[str, Any] = {}
        for field in self.fields:
            value = field.entries(root) if isinstance(field, _ContactList) else field.value(root)
            if not transform_functions.is_blank(value):
                update[field.name] = value
        if self.job_path is not None:
            sender_job = transform_functions.string(self.job_path.find(payload))
            if isinstance(sender_job, str) and sender_job in self.job_table:
                update["job_id"] = self.job_table[sender_job]
        note = None
        transcript = getattr(event, "transcript", None)
        if self.note_type and transcript is not None:
            note = NoteRequest(self.note_type, transcript.title, tuple(transcript.answers),
                               getattr(event, "delivery_id", None))
        stage = self.stages.request(payload, getattr(event, "event_type", None)) if self.stages else None
        if stage is not None and stage.ignore_reason is None and "job_id" not in update:
            update["job_id"] = stage.job_id  # a candidate on the job first: the PATCH attaches them
        return MappedUpdate(update=update, person=self._person(root, update), create=self.create,
                            write_policy=self.write_policy, note=note, stage=stage,
                            named_custom_fields=self._named_custom_fields(root))

    def _named_custom_fields(self, root: Any) -> NamedCustomFields | None:
        if not self.custom_fields:
            return None
        values = {field.name: field.value(root) for field in self.custom_fields}
        found = {name: value for name, value in values.items() if not transform_functions.is_blank(value)}
        return NamedCustomFields(found, tuple(values), self.custom_field_options)

    def _person(self, root: Any, update: dict[str, Any]) -> PersonRef:
        person_id = _text(self.person_id.find(root)) if self.person_id is not None else None
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


class _Stages:
    """A mapping's stage table: the sender's job and stage (read from the whole payload) to a
    Stardex job and stage; a job or stage not in its table makes a request that is ignored."""

    def __init__(self, spec: dict[str, Any], job: dict[str, Any] | None, where: str) -> None:
        where = f"{where}stages"
        job_path = spec.get("job") or (job or {}).get("path")
        jobs = spec.get("jobs") or (job or {}).get("table")
        if not job_path and ANY_JOB not in (jobs or {}):
            raise ValueError(f"{where}: needs `job` (or a `job` section), or a `jobs` table with \"*\"")
        if not jobs:
            raise ValueError(f"{where}: needs a `jobs` table (or a `job` section's table)")
        self.events = frozenset(spec["events"]) if "events" in spec else None
        self.job = _Path(job_path, f"{where}.job") if job_path else None
        self.jobs = {str(key): value for key, value in jobs.items()}
        self.stage = _Path(spec["stage"], f"{where}.stage")
        self.current = _Path(spec["current"], f"{where}.current") if "current" in spec else None
        self.occurred_at = _Path(spec["occurred_at"], f"{where}.occurred_at") if "occurred_at" in spec else None
        self.table = {str(key): value for key, value in spec["table"].items()}
        self._loose = {stage_key(key): value for key, value in reversed(list(self.table.items()))}

    def request(self, payload: Any, event_type: str | None) -> StageRequest | None:
        """None when the event names no stage (or is not one of ``events``)."""
        if self.events is not None and event_type not in self.events:
            return None
        sender_stage = _text(self.stage.find(payload))
        if sender_stage is None:
            return None
        sender_job = _text(self.job.find(payload)) if self.job else None
        occurred_at = event_time(self.occurred_at.find(payload)) if self.occurred_at else None
        job_id = self.jobs.get(sender_job) if sender_job is not None else None
        job_id = job_id or self.jobs.get(ANY_JOB)
        stage = self.table.get(sender_stage) or self._loose.get(stage_key(sender_stage))
        reason = None
        if job_id is None:
            reason = JOB_NOT_IN_TABLE
        elif stage is None:
            reason = NOT_IN_TABLE
        elif self.current is not None:
            current = _text(self.current.find(payload))
            if current is not None and stage_key(current) != stage_key(sender_stage):
                reason = SUPERSEDED  # the sender's read, made now, shows another stage
        return StageRequest(job_id, stage, sender_job, sender_stage, occurred_at, reason)


def _text(value: Any) -> str | None:
    """A sender's id or name as text (numbers as their digits), or None."""
    return transform_functions.trim(transform_functions.string(value))


@functools.cache
def _mapping_validator() -> Draft202012Validator:
    """jsonschema's validator for mapping files, built on first use (at start) and kept."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(read_schema(MAPPING_SCHEMA_PATH))


def _schema_faults(document: Any) -> list[str]:
    """Every fault of a mapping document against the mapping schema, sorted; none when it is valid."""
    return sorted(_schema_message(error) for error in _mapping_validator().iter_errors(document))


def _schema_message(error: ValidationError) -> str:
    """One schema fault in the mapping file, located by its JSON path."""
    from jsonschema.exceptions import best_match

    if error.validator in ("oneOf", "anyOf"):
        if "errorMessage" in error.schema:
            return f"{json_path(error.absolute_path)}: {error.schema['errorMessage']}"
        if error.context:
            error = best_match(error.context)
    return f"{json_path(error.absolute_path)}: {error.message}"


def load_mapping_file(name: str, file_path: str, phone_region: str | None,
                      default_write_policy: str = "overwrite") -> SourceMapping:
    """Any fault raises ``ConfigurationError`` naming the file."""
    try:
        with open(file_path, encoding="utf-8-sig") as handle:  # with or without a BOM (Windows' Notepad)
            document = json.load(handle)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"mapping file {file_path}: cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"mapping file {file_path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    faults = _schema_faults(document)
    if faults:
        raise ConfigurationError(f"mapping file {file_path}: does not match the mapping schema: " + "; ".join(faults))
    try:
        return SourceMapping(name, document, phone_region, default_write_policy)
    except ValueError as error:
        raise ConfigurationError(f"mapping file {file_path}: {error}") from None


def _mapping_files(directory: str, setting: str) -> dict[str, str]:
    """Source name → path of every ``*.json`` file in ``directory`` (``.JSON`` too: never ignored unsaid)."""
    if not os.path.isdir(directory):
        raise ConfigurationError(f"{setting} {directory}: not a directory")
    return {
        entry[: -len(".json")]: os.path.join(directory, entry)
        for entry in sorted(os.listdir(directory))
        if entry.lower().endswith(".json") and not entry.startswith(".")
    }


def load_mappings(builtin_dir: str, override_dir: str | None, phone_region: str | None,
                  source_names: Iterable[str]) -> dict[str, SourceMapping]:
    """A file in ``override_dir`` replaces the built-in one; one naming no source (a typo) stops the
    start. Given the sources (name → adapter), a file without ``write_policy`` takes its sender's."""
    policies = {
        name: getattr(source, "default_write_policy", "overwrite")
        for name, source in (source_names.items() if isinstance(source_names, dict) else ())
    }
    files = _mapping_files(builtin_dir, "built-in mappings directory")
    if override_dir:
        overrides = _mapping_files(override_dir, "MAPPINGS_DIR")
        known = sorted(source_names)
        for name, path in overrides.items():
            if name not in known:
                raise ConfigurationError(
                    f"mapping file {path}: names no source (a mapping file is named <source>.json, "
                    f"one of: {', '.join(known)})"
                )
        files.update(overrides)
    return {
        name: load_mapping_file(name, path, phone_region, policies.get(name, "overwrite"))
        for name, path in files.items()
    }

