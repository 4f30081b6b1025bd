"""Find the Stardex person a webhook is about: by id, by search, or (opted in) by creating them.

Never a guess: one match is used, none is "person not found" (or a create when the mapping opts in),
several is refused, because updating the wrong candidate is worse than updating none.

One event may cost only a few of Stardex's 60 requests a minute: at most ``MAX_SEARCH_EMAILS``
emails are searched, then the one LinkedIn URL; a payload naming more emails is refused (422)
before any call, since an authentic sender could otherwise spend the whole budget on one event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import RetryLater, Unprocessable
from .deadline import Deadline
from .stardex import OutcomeUnknown, StardexClient, StardexError

MAX_SEARCH_EMAILS = 5

# Fields that POST /v1/persons takes; anything else the update carries goes in a PATCH after it.
CREATE_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "linkedin_url",
        "current_job_title",
        "linkedin_location",
        "company_name",
        "emails",
        "phone_numbers",
        "work_email",
        "personal_email",
        "work_phone",
        "mobile_phone",
        "job_id",
        "enrich_record",
    }
)


@dataclass(frozen=True)
class Resolution:
    person_id: str
    created: bool = False
    remaining_update: dict[str, Any] | None = None  # for a created person: what the PATCH still sends


def stardex_failure(error: StardexError, action: str) -> Exception:
    """Turn a non-retryable Stardex answer into the pipeline's error.

    401/403 mean our key is wrong or lacks rights: a fix by the operator makes a retry succeed, so
    the sender is told to retry rather than to drop the event.
    """
    if error.status_code in (401, 403):
        return RetryLater("stardex_auth_failed", f"Stardex refused the API key while trying to {action}", retry_after=300)
    if error.status_code == 404:
        return Unprocessable("person_not_found", f"Stardex has no such person ({action})")
    return Unprocessable(
        "stardex_rejected",
        f"Stardex rejected the request to {action} with HTTP {error.status_code}",
        stardex_code=error.code or None,
    )


def _search_one(client: StardexClient, deadline: Deadline, field: str, value: str) -> str | None:
    try:
        matches = client.search_persons(deadline, **{field: value})
    except StardexError as error:
        raise stardex_failure(error, "search persons") from None
    ids = [match.get("id") for match in matches if isinstance(match, dict) and match.get("id")]
    if len(ids) > 1:
        raise Unprocessable("ambiguous_person", f"several Stardex persons match the {field.replace('_', ' ')}")
    return str(ids[0]) if ids else None


def _full_name(update: dict[str, Any]) -> str | None:
    if update.get("name"):
        return update["name"]
    parts = [update.get("first_name"), update.get("last_name")]
    name = " ".join(part for part in parts if part)
    return name or None


def _create(client: StardexClient, deadline: Deadline, update: dict[str, Any]) -> Resolution:
    name = _full_name(update)
    if not name or not update.get("linkedin_url"):
        raise Unprocessable(
            "person_not_found",
            "no Stardex person matches, and creating one needs a name and a LinkedIn URL",
        )
    body = {key: value for key, value in update.items() if key in CREATE_FIELDS}
    body["name"] = name
    # On create Stardex takes plain strings for the contact lists.
    for key in ("emails", "phone_numbers"):
        if key in body:
            body[key] = [entry["value"] for entry in body[key]]
    try:
        try:
            created = client.create_person(deadline, body)
        except OutcomeUnknown:
            # It may have been created: look before a second attempt, so one event makes one person.
            found = _find(client, deadline, body.get("emails", [])[:MAX_SEARCH_EMAILS], body["linkedin_url"])
            if found:
                return Resolution(found, created=True, remaining_update=_not_for_create(update))
            created = client.create_person(deadline, body)
    except StardexError as error:
        raise stardex_failure(error, "create the person") from None
    person_id = created.get("id")
    if not person_id:
        raise RetryLater("stardex_unexpected_answer", "Stardex created a person but returned no id")
    return Resolution(str(person_id), created=True, remaining_update=_not_for_create(update))


def _not_for_create(update: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in update.items() if key not in CREATE_FIELDS}


def _find(client: StardexClient, deadline: Deadline, emails: list[str], linkedin_url: str | None) -> str | None:
    for email in emails:
        found = _search_one(client, deadline, "email", email)
        if found:
            return found
    return _search_one(client, deadline, "linkedin_url", linkedin_url) if linkedin_url else None


def resolve_person(
    client: StardexClient,
    deadline: Deadline,
    person: Any,
    update: dict[str, Any],
    create: bool,
) -> Resolution:
    """The person to update: ``person.id`` when the payload names one; otherwise a search by each
    email (at most ``MAX_SEARCH_EMAILS``), then by the LinkedIn URL; otherwise a create when
    ``create`` is set."""
    if person.id:
        return Resolution(str(person.id))
    emails = list(dict.fromkeys(email for email in person.emails if email))
    if not emails and not person.linkedin_url and not create:
        raise Unprocessable("no_person_key", "the payload names no Stardex person id, email or LinkedIn URL")
    if len(emails) > MAX_SEARCH_EMAILS:
        raise Unprocessable("too_many_person_keys",
                            f"the payload names {len(emails)} emails to find the person by; at most {MAX_SEARCH_EMAILS} are searched")
    found = _find(client, deadline, emails, person.linkedin_url)
    if found:
        return Resolution(found)
    if create:
        return _create(client, deadline, update)
    raise Unprocessable("person_not_found", "no Stardex person matches the payload's email or LinkedIn URL")
