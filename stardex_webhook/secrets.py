"""Secret settings: ``NAME_SECRET`` from Secret Manager (cached per instance) or ``NAME`` as a plain
value; the cache, the last good value and rotation: docs/configuration.md (``SECRET_TTL_SECONDS``).
A read runs in a daemon thread, one per secret at a time: a caller waits at most what its webhook
has left, and a hung read holds one thread, not one per request. A forced refresh (the key Stardex
refused) never serves the last good value. Every failure is ``RetryLater``: the operator can fix
the setting, then the sender's retry succeeds. No value ever reaches a log line or an exception.
"""

from __future__ import annotations

import math
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

from .config import Settings
from .deadline import Deadline
from .errors import ConfigurationError, RetryLater
from .logs import JsonLog

SECRET_SUFFIX = "_SECRET"
ACCESS_TIMEOUT_SECONDS = 5.0
STALE_SECONDS = 3600.0

# projects/P/secrets/S/versions/V; P may be a project id, a number or domain-scoped
# ("example.com:proj"); V is a number, "latest" or a version alias.
_VERSION_NAME = re.compile(r"projects/[A-Za-z0-9.:_-]+/secrets/[A-Za-z0-9_-]+/versions/[A-Za-z0-9_-]+")
_FORM = "projects/PROJECT/secrets/SECRET/versions/VERSION"


def secret_manager_client(settings: Settings) -> Any:
    """Imported here so a cold start does not pay for it. At ``SECRET_MANAGER_ENDPOINT`` (an emulator)
    REST with anonymous credentials, so no credential goes there; else gRPC (it follows no redirects)."""
    from google.cloud import secretmanager

    if not settings.secret_manager_endpoint:
        return secretmanager.SecretManagerServiceClient()
    from google.auth.credentials import AnonymousCredentials

    return secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(),
        client_options={"api_endpoint": settings.secret_manager_endpoint})


def check_version_name(setting: str, value: str) -> str:
    """``value`` stripped if it is a secret version name, else ``ConfigurationError``."""
    name = value.strip()
    if not _VERSION_NAME.fullmatch(name):
        raise ConfigurationError(f"{setting}: expected a secret version name {_FORM}")
    return name


@dataclass
class _Entry:
    value: str | None = None
    read_at: float = -math.inf
    pending: Future | None = None


class SecretProvider:
    """One per instance; safe to share between request threads."""

    def __init__(self, settings: Settings, client_factory: Callable[[Settings], Any] = secret_manager_client,
                 clock: Callable[[], float] = time.monotonic, log: JsonLog | None = None) -> None:
        self._settings = settings
        self._client_factory = client_factory
        self._clock = clock
        self._log = log or JsonLog(settings.log_level)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        """Start-time check of ``NAME_SECRET``'s form (no network)."""
        reference = self._settings.environ.get(name + SECRET_SUFFIX, "").strip()
        if reference:
            check_version_name(name + SECRET_SUFFIX, reference)

    def get(self, name: str, refresh: bool = False, deadline: Deadline | None = None) -> str | None:
        """None when neither ``NAME_SECRET`` nor ``NAME`` is set; waits at most the deadline's remainder."""
        setting = name + SECRET_SUFFIX
        environ = self._settings.environ
        reference = environ.get(setting, "").strip()
        if not reference:
            return environ.get(name, "").strip() or None
        if not _VERSION_NAME.fullmatch(reference):
            raise RetryLater("secret_unavailable", f"{setting} is not a secret version name {_FORM}")
        with self._lock:
            entry = self._entries.setdefault(name, _Entry())
            age = self._clock() - entry.read_at
            if not refresh and age < self._settings.secret_ttl_seconds:
                return entry.value
            stale = entry.value if not refresh and age < self._settings.secret_ttl_seconds + STALE_SECONDS else None
            leader = entry.pending is None
            if leader:
                entry.pending = self._start_read(entry, setting, reference)
            pending = entry.pending
        if stale is not None and not leader:
            return stale  # someone else is refreshing it
        wait = ACCESS_TIMEOUT_SECONDS if deadline is None else min(ACCESS_TIMEOUT_SECONDS, deadline.remaining())
        try:
            return pending.result(timeout=wait)
        except TimeoutError:
            failure = RetryLater("secret_unavailable", f"{setting}: Secret Manager did not answer in time")
        except RetryLater as error:
            failure = error
        if stale is None:
            raise failure
        self._log.write("WARNING", f"{failure.message}; serving its last good value, read {age:.0f} s ago",
                        reason="secret_stale")
        return stale

    def get_keys(self, name: str, refresh: bool = False, deadline: Deadline | None = None) -> list[str]:
        """The setting split on whitespace: during a rotation several keys are valid at once."""
        value = self.get(name, refresh=refresh, deadline=deadline)
        return value.split() if value else []

    def _start_read(self, entry: _Entry, setting: str, version_name: str) -> Future:
        """A daemon thread: a hung read stops nothing, not even the interpreter's exit."""
        future: Future = Future()

        def read() -> None:
            try:
                value, failure = self._read(setting, version_name), None
            except RetryLater as error:
                value, failure = None, error
            except Exception as error:  # _read turns every failure into RetryLater; a bug must not hang waiters
                value, failure = None, RetryLater("secret_unavailable", f"{setting} could not be read ({type(error).__name__})")
            with self._lock:  # settled before anyone is woken: the next caller starts a new read
                entry.pending = None
                if failure is None:
                    entry.value, entry.read_at = value, self._clock()
            if failure is None:
                future.set_result(value)
            else:
                future.set_exception(failure)

        threading.Thread(target=read, name=f"read-{setting}", daemon=True).start()
        return future

    def _read(self, setting: str, version_name: str) -> str | None:
        try:
            with self._client_lock:  # built once, on first use
                if self._client is None:
                    self._client = self._client_factory(self._settings)
            response = self._client.access_secret_version(request={"name": version_name},
                                                          timeout=ACCESS_TIMEOUT_SECONDS, retry=None)
            payload = response.payload
            data = bytes(payload.data)
            declared_crc = payload.data_crc32c if "data_crc32c" in payload else None
        except Exception as exc:
            # The exception text may quote the request or the server's words; only its type is kept.
            raise RetryLater("secret_unavailable",
                             f"{setting} could not be read from Secret Manager ({type(exc).__name__})") from None
        if declared_crc is not None:
            import google_crc32c

            if google_crc32c.value(data) != declared_crc:
                raise RetryLater("secret_unavailable", f"{setting}: the payload read failed its CRC32C check")
        try:
            return data.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            raise RetryLater("secret_unavailable", f"{setting}: the secret is not UTF-8 text") from None
