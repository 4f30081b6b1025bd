"""Jotform webhooks (https://www.jotform.com/help/245-how-to-setup-a-webhook-with-jotform/).

What it accepts and answers: docs/senders/jotform.md. Jotform signs nothing: the URL carries a
shared token (``SharedTokenSource``). Answers are keyed by unique name, the ``q<N>_`` cut off, so a
mapping survives questions being added or moved; the transcript is built from ``rawRequest``, since
``pretty`` cannot be split back when an answer holds a comma.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from urllib.parse import parse_qsl
from typing import Any

from .. import signatures
from ..errors import BadRequest
from ..records import Delivery, Event
from .base import MAX_JSON_VALUES, SharedTokenSource, parse_json_object
from .form_answers import transcript

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
_ANSWER_KEY = re.compile(r"q[0-9]+_(.+)", re.DOTALL)
_NAME_PARTS = ("prefix", "first", "middle", "last", "suffix")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class JotformSource(SharedTokenSource):
    """Adapter for Jotform: a shared token, a multipart body with the answers in ``rawRequest``."""

    name = "jotform"
    default_write_policy = "fill"

    def sign_sample(self, body: bytes, key: str, now: int) -> tuple[dict[str, str], bytes]:
        """A JSON object of the form's fields goes as the multipart body Jotform would post; another
        body goes as it is."""
        headers, _ = super().sign_sample(body, key, now)
        try:
            fields = json.loads(body)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return headers, body
        boundary = uuid.uuid4().hex
        return {**headers, "Content-Type": f"{MULTIPART}; boundary={boundary}"}, multipart_body(fields, boundary)

    def parse(self, delivery: Delivery) -> Event:
        fields = form_fields(delivery.headers.get("Content-Type", ""), delivery.body)
        if "rawRequest" not in fields:
            raise BadRequest("invalid_payload", "a Jotform body must have a 'rawRequest' field")
        try:
            request = parse_json_object(fields["rawRequest"].encode("utf-8", "surrogateescape"))
        except BadRequest as error:
            if error.reason != "invalid_json":  # too_deep, too_many_fields: the limit's own reason
                raise
            raise BadRequest("invalid_json", "the Jotform 'rawRequest' field is not a JSON object") from None
        answers: dict[str, Any] = {}
        for key, value in request.items():
            if match := _ANSWER_KEY.fullmatch(key):
                answers.setdefault(match.group(1), value)
        return Event(
            source=self.name,
            event_type=None,
            delivery_id=fields.get("submissionID") or None,
            payload={**fields, "rawRequest": request, "answers": answers},
            transcript=transcript(fields.get("formTitle"),
                                  ((_question(name), _shown(value)) for name, value in answers.items())),
        )


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The first value of each text field (a file part is not one), else ``BadRequest("invalid_form")``.
    A multipart body is read by ``multipart``, which does it in a quarter of werkzeug's time; an
    URL-encoded one by the standard library. Both are held to the JSON bodies' limit on values."""
    import multipart

    mimetype, options = multipart.parse_options_header(content_type)
    if mimetype not in (MULTIPART, URLENCODED):
        raise BadRequest("invalid_form", f"a Jotform body is {MULTIPART} or {URLENCODED}, not {mimetype or 'untyped'}")
    too_many = BadRequest("too_many_fields", f"the form holds more than {MAX_JSON_VALUES} fields")
    if mimetype == URLENCODED and body.count(b"&") >= MAX_JSON_VALUES:
        raise too_many
    fields: dict[str, str] = {}
    try:
        if mimetype == URLENCODED:
            for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="replace"):
                fields.setdefault(name, value)
            return fields
        parts = multipart.MultipartParser(io.BytesIO(body), options.get("boundary", ""), len(body),
                                          part_limit=MAX_JSON_VALUES, spool_limit=len(body) + 1,
                                          memory_limit=len(body) + 1)
        for part in parts:
            if part.filename is None:
                fields.setdefault(part.name, part.raw.decode("utf-8", "replace"))
    except multipart.ParserLimitReached:
        raise too_many from None
    except ValueError:  # a bad boundary, a part cut short, lines not ended by CRLF, bad UTF-8
        raise BadRequest("invalid_form", f"the body is not valid {mimetype}") from None
    return fields


def multipart_body(fields: dict[str, Any], boundary: str) -> bytes:
    """``fields`` as a ``multipart/form-data`` body (RFC 7578): text as it is, other values as JSON;
    a ``"`` or line break in a name is percent-encoded, as browsers do."""
    parts = []
    for name, value in fields.items():
        quoted = str(name).replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        text = value if isinstance(value, str) else json.dumps(value)
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"\r\n\r\n{text}\r\n')
    return signatures.utf8_bytes("".join(parts) + f"--{boundary}--\r\n")


def _question(unique_name: str) -> str:
    """A unique name as a question a person reads: ``phoneNumber`` → "Phone number"."""
    words = _CAMEL_HUMP.sub(" ", unique_name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def _shown(value: Any) -> Any:
    """Jotform's compound answers as written by hand: a name's parts with spaces, a phone's area
    code before its number (others, such as an address, are joined with commas by the transcript)."""
    if not isinstance(value, dict):
        return value
    if isinstance(value.get("full"), str) and value["full"].strip():
        return value["full"]
    if value and set(value) <= set(_NAME_PARTS):
        return " ".join(_texts(value, _NAME_PARTS))
    if set(value) == {"area", "phone"}:
        return " ".join(_texts(value, ("area", "phone")))
    return value


def _texts(value: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [text.strip() for key in keys if isinstance(text := value.get(key), str) and text.strip()]
