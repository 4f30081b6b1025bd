"""Secret settings: ``NAME_SECRET`` from Secret Manager (cached with a TTL) or ``NAME`` as a plain value.

Why a provider instead of reading secrets at start: a cold start must stay fast and must not fail
because Secret Manager blinked, and a rotated key must be picked up without a redeploy. So values
are read on first use, kept per instance for ``settings.secret_ttl_seconds``, and re-read on demand
(``refresh=True``, e.g. after Stardex answers 401 to a rotated key).

Every failure at request time (malformed resource name, Secret Manager down, secret missing, no
permission, checksum mismatch, client cannot be built) becomes ``RetryLater("secret_unavailable")``
naming the setting: the operator can fix each of them, and the sender's retry then succeeds.
No value ever reaches a log line or an exception.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import Settings
from .errors import ConfigurationError, RetryLater

# Detail for debugging only (INFO, no handler by default): the webhook's one JSON log line carries
# the outcome, so nothing here may add a second line per request.
log = logging.getLogger(__name__)

SECRET_SUFFIX = "_SECRET"
ACCESS_TIMEOUT_SECONDS = 5.0

# projects/P/secrets/S/versions/V; P may be a project id, a number or domain-scoped
# ("example.com:proj"); V is a number, "latest" or a version alias.
_VERSION_NAME = re.compile(r"projects/[A-Za-z0-9.:_-]+/secrets/[A-Za-z0-9_-]+/versions/[A-Za-z0-9_-]+")

ClientFactory = Callable[[Settings], Any]


def secret_manager_client(settings: Settings) -> Any:
    """The real ``SecretManagerServiceClient``; imported here so a cold start does not pay for it.

    With ``SECRET_MANAGER_ENDPOINT`` set the client talks REST to that endpoint with anonymous
    credentials (an emulator or a loopback fake); otherwise Google's endpoint and the runtime's
    default credentials.
    """
    from google.cloud import secretmanager

    if not settings.secret_manager_endpoint:
        return secretmanager.SecretManagerServiceClient()
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=settings.secret_manager_endpoint),
    )


def check_version_name(setting: str, value: str) -> str:
    """Return ``value`` stripped if it is a secret version resource name, else ``ConfigurationError``."""
    name = value.strip()
    if not _VERSION_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{setting}: expected a secret version name projects/PROJECT/secrets/SECRET/versions/VERSION"
        )
    return name


@dataclass
class _Cached:
    """One setting's cached value; ``lock`` makes concurrent readers share one fetch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    value: str | None = None
    fetched_at: float | None = None
    attempts: int = 0  # bumped when a fetch ends, so waiters can tell one finished while they waited
    failure: RetryLater | None = None  # the outcome of the last fetch when it failed


class SecretProvider:
    """Reads secret settings for the whole instance; safe to share between request threads."""

    def __init__(
        self,
        settings: Settings,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        access_timeout: float = ACCESS_TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self._environ = settings.environ
        self._client_factory = client_factory or secret_manager_client
        self._clock = clock
        self._access_timeout = access_timeout
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._cache_lock = threading.Lock()

    def check(self, name: str) -> None:
        """Start-time check of ``NAME_SECRET``'s form (no network); raises ``ConfigurationError``."""
        reference = self._environ.get(name + SECRET_SUFFIX, "").strip()
        if reference:
            check_version_name(name + SECRET_SUFFIX, reference)

    def get(self, name: str, refresh: bool = False) -> str | None:
        """The value of setting ``name``, or None when neither ``NAME_SECRET`` nor ``NAME`` is set.

        ``refresh=True`` skips the cache (a key was just refused, it may have been rotated); callers
        that arrive while a fetch is running wait for it and share its outcome.
        """
        reference = self._environ.get(name + SECRET_SUFFIX, "").strip()
        if not reference:
            return self._environ.get(name, "").strip() or None
        setting = name + SECRET_SUFFIX
        try:
            version_name = check_version_name(setting, reference)
        except ConfigurationError:
            raise RetryLater(
                "secret_unavailable",
                f"{setting} is not a secret version name projects/PROJECT/secrets/SECRET/versions/VERSION",
            ) from None

        cached = self._cached(name)
        attempts_seen = cached.attempts
        if not refresh and self._fresh(cached):
            return cached.value
        with cached.lock:
            if cached.attempts != attempts_seen:
                # Another thread fetched while this one waited: share its outcome, no second call.
                if cached.failure is not None:
                    raise RetryLater(cached.failure.reason, cached.failure.message, cached.failure.retry_after)
                return cached.value
            if not refresh and self._fresh(cached):
                return cached.value
            try:
                value = self._fetch(setting, version_name)
            except RetryLater as failure:
                cached.failure = failure
                raise
            else:
                cached.value, cached.fetched_at, cached.failure = value, self._clock(), None
                return value
            finally:
                cached.attempts += 1

    def get_keys(self, name: str, refresh: bool = False) -> list[str]:
        """The setting split on whitespace: during a rotation several keys are valid at once."""
        value = self.get(name, refresh=refresh)
        return value.split() if value else []

    def _cached(self, name: str) -> _Cached:
        with self._cache_lock:
            return self._cache.setdefault(name, _Cached())

    def _fresh(self, cached: _Cached) -> bool:
        return cached.fetched_at is not None and self._clock() - cached.fetched_at < self._settings.secret_ttl_seconds

    def _client_instance(self, setting: str) -> Any:
        """Build the client once, on first use, even when several threads need it at the same time."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        self._client = self._client_factory(self._settings)
                    except Exception as exc:
                        log.info("secret manager client could not be created: %s", type(exc).__name__)
                        raise RetryLater(
                            "secret_unavailable",
                            f"Secret Manager client could not be created to read {setting} ({type(exc).__name__})",
                        ) from None
        return self._client

    def _fetch(self, setting: str, version_name: str) -> str | None:
        client = self._client_instance(setting)
        try:
            response = client.access_secret_version(
                request={"name": version_name}, timeout=self._access_timeout, retry=None
            )
            payload = response.payload
            data = bytes(payload.data)
            declared_crc = payload.data_crc32c if "data_crc32c" in payload else None
        except Exception as exc:
            # The exception text may quote the request or the server's words; only its type is kept.
            log.info("secret %s could not be read: %s", setting, type(exc).__name__)
            raise RetryLater(
                "secret_unavailable", f"{setting} could not be read from Secret Manager ({type(exc).__name__})"
            ) from None
        if declared_crc is not None:
            import google_crc32c

            if google_crc32c.value(data) != declared_crc:
                log.info("secret %s failed its CRC32C check", setting)
                raise RetryLater("secret_unavailable", f"{setting}: the payload read failed its CRC32C check")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RetryLater("secret_unavailable", f"{setting}: the secret is not UTF-8 text") from None
        return text.strip() or None
