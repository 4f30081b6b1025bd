"""Follow-up reads from a sender's own API, for webhooks that carry only ids (the answers:
docs/contract.md). Every request goes under the sender's API base (``<SOURCE>_API_BASE``) and
nowhere else: a URL from the request (SmartRecruiters' ``Link``) is followed only under that base,
and redirects never, so a forged webhook cannot send the sender's API key elsewhere. The read
shares the webhook's ``Deadline``, with retries like the Stardex client.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Callable
from urllib.parse import urljoin, urlsplit

import requests

from .deadline import Deadline
from .errors import RetryLater, Unprocessable
from .http_transport import (
    DEFAULT_RETRY_AFTER_SECONDS,
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    Failed,
    Retries,
    retry_after_seconds,
    send_within,
    watched_session,
)
from .logs import JsonLog
from .records import FollowUp


def under_base(url: str, base: str) -> bool:
    """True when ``url`` has the base's scheme, host and port and its path lies under the base's."""
    try:
        target, root = urlsplit(url), urlsplit(base)
        same_origin = (target.scheme, target.hostname, target.port) == (root.scheme, root.hostname, root.port)
    except ValueError:  # an unreadable port or host
        return False
    prefix = root.path.rstrip("/") + "/"
    path = target.path if target.path.endswith("/") else target.path + "/"
    return same_origin and not target.username and path.startswith(prefix) and "/../" not in path


class SenderApiClient:
    """One per sender and process; safe to share across threads."""

    def __init__(self, source: str, base_url: str, api_key: Callable[[Deadline], str | None],
                 auth_headers: Callable[[str], dict[str, str]], key_setting: str, *,
                 session: requests.Session | None = None, connect_timeout: float = 3.05, read_timeout: float = 10.0,
                 max_attempts: int = 3, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, backoff_base: float = 0.5, backoff_max: float = 4.0,
                 log: JsonLog | None = None) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._auth_headers = auth_headers
        self.key_setting = key_setting
        self.session = session if session is not None else watched_session()
        self.session.headers.update({"Accept": "application/json"})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = Retries(max_attempts, backoff_base, backoff_max, sleep, rng)
        self._log = log if log is not None else JsonLog("INFO")

    def url_for(self, target: str) -> str:
        """The absolute URL of a follow-up target, or ``Unprocessable`` when it leaves the base."""
        url = target if urlsplit(target).scheme else urljoin(self.base_url + "/", target.lstrip("/"))
        if not under_base(url, self.base_url):
            raise Unprocessable(
                "follow_up_url_refused",
                f"the {self.source} webhook points at a URL outside {self.source.upper()}_API_BASE; it is not followed",
            )
        return url

    def read(self, deadline: Deadline, follow_up: FollowUp) -> Any:
        """The JSON answer of one follow-up read."""
        url = self.url_for(follow_up.target)
        key = self._api_key(deadline)
        if not key:
            raise Unprocessable(
                "sender_api_key_missing",
                f"this {self.source} event carries only ids, and reading them needs {self.key_setting}",
            )
        headers = {**self._auth_headers(key)}
        data = None
        if follow_up.json is not None:
            data = json.dumps(follow_up.json).encode("utf-8")
            headers["Content-Type"] = "application/json"
        operation = f"{self.source} API {follow_up.method}"

        def attempt(remaining: float) -> Any:
            try:
                answer = send_within(self.session, follow_up.method, url, remaining, data=data, headers=headers,
                                     connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)
            except AnswerTooLarge:  # not retried: the same read would send the same flood
                raise _unavailable(operation, f"an answer over {MAX_ANSWER_BYTES} bytes") from None
            status = answer.status_code
            if 200 <= status < 300:
                document = answer.json_or_none()
                if not isinstance(document, dict):  # every sender's API answers an object
                    raise _unavailable(operation, f"HTTP {status} without a JSON object")
                return document
            if 300 <= status < 400:
                raise _unavailable(operation, f"HTTP {status} (a redirect, not followed)")
            if status in (401, 403):
                raise RetryLater("sender_api_auth_failed",
                                 f"the {self.source} API refused {self.key_setting} (HTTP {status})", retry_after=300)
            if status == 404:
                raise Unprocessable("sender_resource_not_found", f"the {self.source} API has no such resource")
            if status not in (408, 429) and status < 500:  # 408: the request timed out, a retry can help
                raise Unprocessable("sender_api_rejected", f"the {self.source} API answered HTTP {status}")
            return Failed(f"HTTP {status}", retry_after_seconds(answer), rate_limited=status == 429)

        return self.retries.run(
            deadline, attempt, label=operation, log=self._log,
            out_of_time=lambda: _unavailable(operation, "no time left"),
            give_up=lambda failed, failures, retry_after: _unavailable(
                operation, f"failed {failures} times ({failed.what})", retry_after),
        )


def _unavailable(operation: str, what: str, retry_after: float = DEFAULT_RETRY_AFTER_SECONDS) -> RetryLater:
    return RetryLater("sender_api_unavailable", f"{operation}: {what}", retry_after=retry_after)
