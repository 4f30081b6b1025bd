"""One structured log line per webhook, in the JSON shape Cloud Logging reads from stdout.

Cloud Logging turns a JSON line on stdout into a structured entry: ``severity`` and ``message``
are recognised, every other key lands in ``jsonPayload``. Nothing personal leaves here unmasked:
the free-text fields (the message, an error's detail) are scrubbed of email addresses and
phone-number-like digit runs; identifiers (person id, delivery id) are written as they are.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import Any, TextIO

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Seven or more digits, possibly split by spaces, dots, dashes or brackets, possibly with a leading +.
_PHONE = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}")

# Fields that may carry text from outside (an upstream error message): always masked.
FREE_TEXT_FIELDS = frozenset({"detail", "error"})

_SEVERITIES = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def mask(text: str) -> str:
    """Hide email addresses (keep the first letter and the domain) and phone numbers (keep the
    last two digits), so a log line still says what kind of value was there."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: "***" + re.sub(r"\D", "", m.group(0))[-2:], text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value


class JsonLog:
    """Writes one JSON object per line; a lock keeps lines from concurrent requests whole."""

    def __init__(self, level: str = "INFO", stream: TextIO | None = None) -> None:
        self._threshold = _SEVERITIES.get(level, 20)
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, severity: str, message: str, **fields: Any) -> None:
        if _SEVERITIES.get(severity, 20) < self._threshold:
            return
        entry = {"severity": severity, "message": mask(message)}
        for key, value in fields.items():
            if value is not None:
                entry[key] = _masked(value) if key in FREE_TEXT_FIELDS else value
        line = json.dumps(entry, separators=(",", ":"), default=str)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
