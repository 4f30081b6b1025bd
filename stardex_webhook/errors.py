"""The few typed errors every stage raises; ``pipeline.answered`` turns each into docs/contract.md's answer.

A stage never builds an HTTP response itself: it raises one of these with a short machine-readable
``reason`` (a snake_case code) and an optional human ``message``. Neither may contain a secret or
personal data (no emails, phone numbers or names), because both end up in the answer and the log.
"""

from __future__ import annotations

import math
from typing import Any


class WebhookError(Exception):
    """Base of the errors that map to one answer of docs/contract.md."""

    status_code, status = 500, "error"

    def __init__(self, reason: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "reason": self.reason}
        if self.message:
            body["message"] = self.message
        body.update(self.extra)
        return body

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(WebhookError):
    """The body cannot be read or parsed for that source (broken chunked encoding, bad JSON, bad
    form encoding, wrong shape)."""

    status_code, status = 400, "bad_request"


class Unauthorized(WebhookError):
    """Signature or token missing, wrong, malformed, or outside the replay window."""

    status_code, status = 401, "unauthorized"


class NotFound(WebhookError):
    """No such source."""

    status_code, status = 404, "not_found"


class MethodNotAllowed(WebhookError):
    """A method other than POST on a source."""

    status_code, status = 405, "method_not_allowed"

    def __init__(self, reason: str, message: str = "", allow: str = "POST", **extra: Any) -> None:
        super().__init__(reason, message, **extra)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


class RequestTimeout(WebhookError):
    """The body did not arrive in time: the sender may send it again."""

    status_code, status = 408, "request_timeout"


class TooLarge(WebhookError):
    """The body is over MAX_BODY_BYTES; refused before it is read."""

    status_code, status = 413, "too_large"


class Unprocessable(WebhookError):
    """Authentic and parsed, but no valid update can be made (schema errors, person not found...)."""

    status_code, status = 422, "unprocessable"


class RetryLater(WebhookError):
    """Stardex or Secret Manager is unavailable, rate limited or slow: the sender should retry."""

    status_code, status = 503, "retry_later"

    def __init__(self, reason: str, message: str = "", retry_after: float = 30, **extra: Any) -> None:
        super().__init__(reason, message, **extra)
        self.retry_after = max(1, math.ceil(retry_after))

    def body(self) -> dict[str, Any]:
        return {**super().body(), "retry_after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ConfigurationError(Exception):
    """A deployment fault found at start (a broken mapping file, a bad setting): the function
    refuses to start, with a message that names the file or variable and the fault."""
