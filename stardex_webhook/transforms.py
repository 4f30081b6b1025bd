"""Named value transforms that mapping files chain after a path: pure functions, total on any input.
Each returns ``None`` (never raises) for a type it cannot handle or when nothing is left, so a
mapping meets any payload shape at request time: a field whose chain yields ``None`` is not sent.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable
from urllib.parse import urlsplit

Transform = Callable[[Any], Any]

LINKEDIN_HOST = "linkedin.com"
# Keys of an object (e.g. Greenhouse's {"value": ...}) that may hold a URL, in order of preference.
_URL_KEYS = ("value", "url")


def trim(value: Any) -> str | None:
    """Senders often pad form answers."""
    return (value.strip() or None) if isinstance(value, str) else None


def lower(value: Any) -> str | None:
    return (value.lower() or None) if isinstance(value, str) else None


def string(value: Any) -> str | None:
    """Text from a number or boolean (JSON spelling): senders send ids and phones as numbers."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def email(value: Any) -> str | None:
    """Lower-cased, so lookups and de-duplication ignore case."""
    text = trim(value)
    return text.lower() if text else None


def phone(value: Any, default_region: str | None = None) -> str | None:
    """E.164, so a number is stored and de-duplicated once; one not valid is kept as written (nothing
    the sender supplied is lost)."""
    if isinstance(value, bool):
        return None
    text = string(value) if isinstance(value, (int, float)) else trim(value)
    return e164(text, default_region) if text else None


@functools.lru_cache(maxsize=1024)
def e164(text: str, default_region: str | None) -> str:
    """``text`` in E.164 when it is a valid number, else as written. Remembered: one event meets the
    same number in several places. ``phonenumbers`` is imported here: slow, and often not needed."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_valid_number(number):
        return text
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)  # has no extension: kept after it
    return f"{formatted} ext. {number.extension}" if number.extension else formatted


def first_name(value: Any) -> str | None:
    """Senders with one name field still fill Stardex's first name."""
    if not isinstance(value, str):
        return None
    words = value.split()
    return words[0] if words else None


def last_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    words = value.split()
    return " ".join(words[1:]) or None


def full_name(value: Any) -> str | None:
    """From a string, or from parts only when every part is there: a partial name never replaces a whole one."""
    parts = value if isinstance(value, list) else [value]
    words = [part.split() if isinstance(part, str) else [] for part in parts]
    if not parts or not all(words):
        return None
    return " ".join(word for part in words for word in part)


def _linkedin_url(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if "://" not in text:
        text = "https://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    segments = parts.path.split("/")  # a person's profile: /in/<id> (/pub/<id>/… before 2012), not a company's
    if parts.scheme.lower() in ("http", "https") and (host == LINKEDIN_HOST or host.endswith("." + LINKEDIN_HOST)) \
            and len(segments) > 2 and segments[1].lower() in ("in", "pub") and segments[2]:
        return text
    return None


def linkedin(value: Any) -> str | None:
    """The LinkedIn profile URL among a sender's links (Greenhouse mixes it with websites)."""
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        if isinstance(candidate, dict):
            candidate = next((candidate[key] for key in _URL_KEYS if isinstance(candidate.get(key), str)), None)
        if isinstance(candidate, str):
            url = _linkedin_url(candidate)
            if url:
                return url
    return None


def is_blank(value: Any) -> bool:
    """Values never sent to Stardex: null, blank strings, empty lists and objects."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, dict)) and not value)


def first(value: Any) -> Any:
    """The first non-blank item; a scalar is a list of one (a path sometimes yields one)."""
    if isinstance(value, list):
        return next((item for item in value if not is_blank(item)), None)
    return None if is_blank(value) else value


_REGIONLESS: dict[str, Transform] = {
    "trim": trim, "lower": lower, "string": string, "email": email, "first_name": first_name,
    "last_name": last_name, "full_name": full_name, "linkedin": linkedin, "first": first,
}

TRANSFORM_NAMES: frozenset[str] = frozenset(_REGIONLESS) | {"phone"}


def make_transforms(phone_default_region: str | None) -> dict[str, Transform]:
    """``phone`` bound to PHONE_DEFAULT_REGION."""
    return {**_REGIONLESS, "phone": functools.partial(phone, default_region=phone_default_region)}
