"""Find the Stardex person a webhook is about: by id, by search, or (opted in) by creating them.

Never a guess: several matches are refused (updating the wrong candidate is worse than none), a match without an id
is no miss. At most ``MAX_SEARCH_EMAILS`` emails, then the LinkedIn URL, are searched; a payload naming more is 422
before any call. ``PersonMemory`` spares the search of a key that found one person a moment ago (an ATS sends several
events for a candidate within seconds); only hits are remembered, so a create always follows a search."""

from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import RetryLater, Unprocessable
from .contacts import listed
from .policy import CONVENIENCE
from .deadline import Deadline
from .stardex import OutcomeUnknown, StardexClient, StardexError

MAX_SEARCH_EMAILS = 5
MEMORY_SIZE = 2000  # persons (and keys) one instance remembers at most; the oldest are dropped first
# And the bytes the remembered persons may hold in all (as ``sys.getsizeof`` counts them): a few large persons
# must not take an instance past its memory (Terraform's default is 512 MiB); one over an eighth is not remembered.
MEMORY_BYTES = 48 * 1024 * 1024

# Fields that POST /v1/persons takes; anything else the update carries goes in a PATCH after it.
CREATE_FIELDS = frozenset({
    "name", "first_name", "last_name", "linkedin_url", "current_job_title", "linkedin_location", "company_name",
    "emails", "phone_numbers", "work_email", "personal_email", "work_phone", "mobile_phone", "job_id", "enrich_record",
})


@dataclass(frozen=True)
class Resolution:
    """``person``: the search's answer (a read within this event); ``remembered``: the id came from memory."""

    person_id: str
    created: bool = False
    remaining_update: dict[str, Any] | None = None  # for a created person: what the PATCH still sends
    person: dict[str, Any] | None = None
    remembered: bool = False


@dataclass(frozen=True)
class KnownPerson:
    """``read``: a whole read (a field it lacks, Stardex lacks); ``fresh``: read in this event (a contact list's base)."""

    data: dict[str, Any]
    read: bool = False
    fresh: bool = False


Key = tuple[str, str]  # ("email", address) or ("linkedin_url", url): a search and its value


class PersonMemory:
    """Which person a search key found, each person as last read or written, for ``seconds``; never *fresh*."""

    def __init__(self, seconds: float, size: int = MEMORY_SIZE, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int = MEMORY_BYTES) -> None:
        self.seconds, self.size, self.max_bytes, self._clock = seconds, size, max_bytes, clock
        self._lock = threading.Lock()
        self._ids: collections.OrderedDict[Key, tuple[float, str]] = collections.OrderedDict()
        self._persons: collections.OrderedDict[str, tuple[float, KnownPerson]] = collections.OrderedDict()
        self._weights: dict[str, int] = {}  # each remembered person's bytes
        self.bytes = 0

    def _get(self, table: collections.OrderedDict, key: Any) -> Any:
        with self._lock:
            entry = table.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                self._drop(table, key)
                return None
            return entry[1]

    def _put(self, table: collections.OrderedDict, key: Any, value: Any, weight: int = 0) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._drop(table, key)
            if weight > self.max_bytes // 8:
                return
            table[key] = (self._clock() + self.seconds, value)
            if weight:
                self._weights[key] = weight
                self.bytes += weight
            while len(table) > self.size or (table is self._persons and self.bytes > self.max_bytes):
                self._drop(table, next(iter(table)))

    def _drop(self, table: collections.OrderedDict, key: Any) -> None:
        if table.pop(key, None) is not None and table is self._persons:
            self.bytes -= self._weights.pop(key, 0)

    def person_id(self, key: Key) -> str | None:
        return self._get(self._ids, key)

    def remember_id(self, key: Key, person_id: str) -> None:
        self._put(self._ids, key, person_id)

    def person(self, person_id: str) -> KnownPerson | None:
        return self._get(self._persons, person_id)  # stored not fresh by remember_person

    def remember_person(self, person_id: str, known: KnownPerson) -> None:
        self._put(self._persons, person_id, KnownPerson(known.data, read=known.read, fresh=False),
                  weight=size_in_bytes(known.data) if self.seconds > 0 else 0)

    def forget(self, person_id: str) -> None:
        """Drop the person and every key that led to it (Stardex answered 404 for it)."""
        with self._lock:
            self._drop(self._persons, person_id)
            for key in [key for key, (_, found) in self._ids.items() if found == person_id]:
                del self._ids[key]


def size_in_bytes(document: Any) -> int:
    """A JSON document's memory, near enough: each object's ``sys.getsizeof``, walked without recursion."""
    total, stack = 0, [document]
    while stack:
        value = stack.pop()
        total += sys.getsizeof(value)
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return total


def stardex_failure(error: StardexError, action: str) -> Exception:
    """A Stardex refusal as the pipeline's error; 401/403 (our key, which an operator can fix) is a retry."""
    if error.status_code in (401, 403):
        return RetryLater("stardex_auth_failed", f"Stardex refused the API key while trying to {action}", retry_after=300)
    if error.status_code == 404:
        return Unprocessable("person_not_found", f"Stardex has no such person ({action})")
    return Unprocessable("stardex_rejected", f"Stardex rejected the request to {action} with HTTP {error.status_code}",
                         stardex_code=error.code or None)


def _search_one(client: StardexClient, deadline: Deadline, field: str, value: str,
                include: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The one person the search finds (as it answered), None for none; several is refused."""
    try:
        matches = client.search_persons(deadline, **{field: value}, **({"include": list(include)} if include else {}))
    except StardexError as error:
        raise stardex_failure(error, "search persons") from None
    found = [match for match in matches if isinstance(match, dict) and type(match.get("id")) in (str, int)
             and str(match["id"]).strip()]  # not None, a bool, a list...
    if len(found) < len(matches):  # someone matched, but the answer does not say who: not a miss
        raise RetryLater("stardex_unexpected_answer", "Stardex's search answered a person without an id")
    if len({str(match["id"]) for match in found}) > 1:  # one person answered twice is one person
        raise Unprocessable("ambiguous_person", f"several Stardex persons match the {field.replace('_', ' ')}")
    return found[0] if found else None


def _create(client: StardexClient, deadline: Deadline, update: dict[str, Any]) -> Resolution:
    parts = (update.get("first_name"), update.get("last_name"))
    name = update.get("name") or " ".join(part for part in parts if part)
    if not name or not update.get("linkedin_url"):
        raise Unprocessable("person_not_found", "no Stardex person matches, and creating one needs a name and a LinkedIn URL")
    body = {key: value for key, value in update.items() if key in CREATE_FIELDS  # Stardex adds work_email to emails
            and not (key in CONVENIENCE and listed(update, CONVENIENCE[key], value, None))}
    remaining = {key: value for key, value in update.items() if key not in CREATE_FIELDS}
    body["name"] = name
    for key in ("emails", "phone_numbers"):  # on create Stardex takes plain strings for the contact lists
        if key in body:
            body[key] = [entry["value"] for entry in body[key]]
    try:
        try:
            created = client.create_person(deadline, body)
        except OutcomeUnknown:  # it may have been made: look before a second attempt, one event one person
            found = _find(client, deadline, body.get("emails", [])[:MAX_SEARCH_EMAILS], body["linkedin_url"])
            if found:
                return Resolution(found.person_id, created=True, remaining_update=remaining)
            created = client.create_person(deadline, body)
    except StardexError as error:
        raise stardex_failure(error, "create the person") from None
    person_id = created.get("id")
    if type(person_id) not in (str, int) or not str(person_id).strip():
        raise RetryLater("stardex_unexpected_answer", "Stardex created a person but returned no id")
    if not _shows(created, body):  # a person made meanwhile, as it was (Stardex's create deduplicates): update it
        return Resolution(str(person_id), person=created)
    return Resolution(str(person_id), created=True, remaining_update=remaining, person=created)


def _shows(created: dict[str, Any], body: dict[str, Any]) -> bool:
    shown = created.get("emails") if isinstance(created.get("emails"), list) else None  # else not shown
    same = all(created.get(key, body[key]) == body[key] for key in ("name", "current_job_title", "company_name") if key in body)
    return same and (shown is None or {value.lower() for value in body.get("emails", [])} <= {
        str(item.get("value") if isinstance(item, dict) else item).lower() for item in shown})


def _find(client: StardexClient, deadline: Deadline, emails: list[str], linkedin_url: str | None,
          memory: PersonMemory | None = None, include: tuple[str, ...] = ()) -> Resolution | None:
    """Each email, then the LinkedIn URL: a remembered key answers at once, any other is searched."""
    keys: list[Key] = [("email", email) for email in emails]
    if linkedin_url:
        keys.append(("linkedin_url", linkedin_url))
    for key in keys:
        remembered = memory.person_id(key) if memory is not None else None
        if remembered:
            return Resolution(remembered, remembered=True)
        found = _search_one(client, deadline, key[0], key[1], include)
        if found:
            person_id = str(found["id"])
            if memory is not None:
                memory.remember_id(key, person_id)
            return Resolution(person_id, person=found)
    return None


def resolve_person(client: StardexClient, deadline: Deadline, person: Any, update: dict[str, Any], create: bool,
                   memory: PersonMemory | None = None, include: tuple[str, ...] = ()) -> Resolution:
    """``person.id``, else a search by each email then the LinkedIn URL, else a create if opted in."""
    if person.id:
        return Resolution(str(person.id))
    emails = list(dict.fromkeys(email for email in person.emails if email))
    if not emails and not person.linkedin_url and not create:
        raise Unprocessable("no_person_key", "the payload names no Stardex person id, email or LinkedIn URL")
    if len(emails) > MAX_SEARCH_EMAILS:
        raise Unprocessable("too_many_person_keys",
                            f"the payload names {len(emails)} emails to find the person by; at most {MAX_SEARCH_EMAILS} are searched")
    found = _find(client, deadline, emails, person.linkedin_url, memory, include)
    if found:
        return found
    if create:
        return _create(client, deadline, update)
    raise Unprocessable("person_not_found", "no Stardex person matches the payload's email or LinkedIn URL")
