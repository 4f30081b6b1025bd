"""One structured log line per webhook, in the JSON shape Cloud Logging reads from stdout.
Every field whose text may come from outside is scrubbed of email addresses and phone numbers and
cut to a length, so a sender can neither put personal data in the log nor fill it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any, TextIO

# The local part starts where a run of local-part characters starts (the look-behind), so a long
# run without an "@" is scanned once, not once per character. Any character but space and the
# delimiters around an address: a UTF-8 local part (``jürgen.klöß@``) is masked like an ASCII one.
_LOCAL = r"[^\s@<>()\[\],;:\"]"
_EMAIL = re.compile(rf"(?<!{_LOCAL})({_LOCAL}){_LOCAL}*@")
# A run of digits, spaces, dots, dashes and brackets, from a digit (or "+" or "(") to a digit, not
# inside a word: the digits of an id such as "msg_3b37055602a6" are no phone number.
_DIGITS = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d\s().-]*\d(?![A-Za-z0-9])")
_SEPARATOR = re.compile(r"\d[\s().-]+\d")

# A UUID standing alone (Stardex's person ids, many senders' delivery ids): kept whole, since its
# all-digit groups ("12345678-1234-…") would otherwise read as a phone number.
_UUID = re.compile(r"((?<![\w.%+-])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?![\w@.%+-]))")

# Fields that may carry text from outside, and the length each is cut to.
OUTSIDE_TEXT = {"message": 1024, "detail": 1024, "error": 1024, "event": 128, "delivery_id": 128}
# The person id is Stardex's, or read by a mapping from the payload (a form's hidden field), which
# can hold anything: cut, and an email in it masked (no id is an email); its digits are kept.
IDENTIFIERS = {"person_id": 128}

_SEVERITIES = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_WRITE_LOCK = threading.Lock()  # one for every JsonLog: lines from concurrent requests stay whole


def _phone(match: re.Match) -> str:
    """A phone number keeps its last two digits. One is seven or more digits written with a
    leading "+" or a separator between digits ("+351 910 000 111", "(415) 555-0123"), or ten or
    more digits in a row ("4155550123"); other numbers ("1048576-byte", "HTTP 404") stay."""
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    phone_like = text.startswith("+") or _SEPARATOR.search(text) or len(digits) >= 10
    return "***" + digits[-2:] if len(digits) >= 7 and phone_like else text


def mask(text: str) -> str:
    """Emails keep the first letter and the domain, phone numbers the last two digits (the line
    still says what was there); UUIDs stay whole."""
    # ``_UUID`` is one group, so ``split`` keeps the UUIDs: every second part.
    return "".join(part if index % 2 else _masked(part) for index, part in enumerate(_UUID.split(text)))


def _masked(text: str) -> str:
    return _DIGITS.sub(_phone, _EMAIL.sub(r"\1***@", text))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class JsonLog:
    """Writes one JSON object per line, at or above ``level``."""

    def __init__(self, level: str = "INFO", stream: TextIO | None = None) -> None:
        self._threshold = _SEVERITIES.get(level, 20)
        self._stream = stream

    def write(self, severity: str, message: str, **fields: Any) -> None:
        if _SEVERITIES.get(severity, 20) < self._threshold:
            return
        entry = {"severity": severity}
        for key, value in {"message": message, **fields}.items():
            if value is not None:
                if key in OUTSIDE_TEXT:
                    value = _cut(mask(str(value)), OUTSIDE_TEXT[key])
                elif key in IDENTIFIERS:
                    value = _cut(_EMAIL.sub(r"\1***@", str(value)), IDENTIFIERS[key])
                entry[key] = value
        line = json.dumps(entry, separators=(",", ":"), default=str)
        stream = self._stream or sys.stdout
        with _WRITE_LOCK:
            stream.write(line + "\n")
            stream.flush()
