"""The configuration (docs/configuration.md), read once from the environment into one immutable object.
Secrets are only named here (``secrets.SecretProvider`` reads them on first use): nothing slow at start.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from .errors import ConfigurationError

DEFAULT_STARDEX_API_BASE = "https://api.stardex.ai/v1"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def env_prefix(source: str) -> str:
    """A source's path as docs/contract.md spells it in variable names: ``google-forms`` → ``GOOGLE_FORMS``."""
    return source.upper().replace("-", "_")


def signing_key_name(source: str) -> str:
    """Name of the setting that holds a source's signing key, e.g. ``GREENHOUSE_SIGNING_KEY``."""
    return f"{env_prefix(source)}_SIGNING_KEY"


def api_key_name(source: str) -> str:
    """Name of the setting that holds a sender's own API key, e.g. ``LEVER_API_KEY``."""
    return f"{env_prefix(source)}_API_KEY"


def api_base_name(source: str) -> str:
    return f"{env_prefix(source)}_API_BASE"


STARDEX_API_KEY = "STARDEX_API_KEY"


@dataclass(frozen=True)
class Settings:
    """Every non-secret setting, validated; ``environ`` keeps the raw variables for secret lookups."""

    stardex_api_base: str = DEFAULT_STARDEX_API_BASE
    dry_run: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    phone_default_region: str | None = None
    mappings_dir: str | None = None
    secret_manager_endpoint: str | None = None
    allow_unsigned: bool = False
    # Tuning knobs with safe defaults, documented in docs/configuration.md.
    stardex_deadline_seconds: float = 20.0
    stardex_requests_per_minute: int = 60
    secret_ttl_seconds: float = 300.0
    person_memory_seconds: float = 300.0
    log_level: str = "INFO"
    # Queued delivery (docs/contract.md) and the worker's own knobs (docs/configuration.md).
    delivery: str = "sync"
    tasks_queue: str | None = None
    tasks_worker_url: str | None = None
    tasks_service_account: str | None = None
    cloud_tasks_endpoint: str | None = None
    state_bucket: str | None = None
    task_deadline_seconds: float = 120.0
    function_timeout_seconds: float = 60.0  # Terraform's timeout_seconds: an older pending claim is taken over
    task_max_attempts: int = 36
    stardex_rate_window_seconds: float = 60.0  # Stardex's; only tests and the bench shorten it
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def api_base(self, source: str, default: str | None) -> str | None:
        """``<SOURCE>_API_BASE`` if set (checked at start by ``check_api_bases``), else ``default``."""
        return self.environ.get(api_base_name(source), "").strip().rstrip("/") or default

    def check_api_bases(self, sources: Mapping[str, object]) -> None:
        """https (http only to loopback): the sender's API key travels in every follow-up read."""
        for name in sources:
            if base := self.environ.get(api_base_name(name), "").strip():
                _check_base(api_base_name(name), base)

    def has_setting(self, name: str) -> bool:
        """True when ``NAME`` or ``NAME_SECRET`` is set (non-empty)."""
        return bool(self.environ.get(name) or self.environ.get(f"{name}_SECRET"))


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ConfigurationError(f"{name}={raw!r}: expected 1 or 0")
    return raw in _TRUE


def _number(environ: Mapping[str, str], name: str, default: float, kind: type, minimum: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r}: expected {'a whole number' if kind is int else 'a number'}") from None
    if not math.isfinite(value):  # nan would pass every comparison below, inf switch a limit off
        raise ConfigurationError(f"{name}={raw!r}: expected a finite number")
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r}: must be at least {minimum}")
    return value


_API_VERSION_PATH = re.compile(r"/v\d+$")


def _check_base(name: str, url: str, example: str = " such as 127.0.0.1") -> None:
    """https to any host; http only to this machine, since a credential travels in every request."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        safe = bool(host) and (parts.scheme == "https" or (
            parts.scheme == "http" and (host == "localhost" or ipaddress.ip_address(host).is_loopback)))
    except ValueError:  # an unreadable URL, or a host that is no IP address
        safe = False
    if not safe:
        raise ConfigurationError(f"{name}={url!r}: expected an https URL (http only to a loopback host{example})")


_QUEUE_NAME = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/queues/[A-Za-z0-9-]{1,100}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def _queued_settings(env: Mapping[str, str]) -> dict[str, object]:
    """With ``queued`` the queue, the worker's URL, its OIDC account and ``STATE_BUCKET`` are required:
    a function that could not enqueue must not start and answer 503 to every sender."""
    delivery = env.get("DELIVERY", "").strip().lower() or "sync"
    if delivery not in ("sync", "queued"):
        raise ConfigurationError(f"DELIVERY={delivery!r}: expected sync or queued")
    values = {name: env.get(name, "").strip() or None
              for name in ("TASKS_QUEUE", "TASKS_WORKER_URL", "TASKS_SERVICE_ACCOUNT", "CLOUD_TASKS_ENDPOINT", "STATE_BUCKET")}
    missing = [name for name in ("TASKS_QUEUE", "TASKS_WORKER_URL", "TASKS_SERVICE_ACCOUNT", "STATE_BUCKET")
               if not values[name]]
    if delivery == "queued" and missing:
        raise ConfigurationError(f"DELIVERY=queued needs {', '.join(missing)}")
    queue, url, account = values["TASKS_QUEUE"], values["TASKS_WORKER_URL"], values["TASKS_SERVICE_ACCOUNT"]
    if queue and not _QUEUE_NAME.fullmatch(queue):
        raise ConfigurationError(f"TASKS_QUEUE={queue!r}: expected projects/P/locations/L/queues/Q")
    if url:  # the task carries an OIDC token to it
        _check_base("TASKS_WORKER_URL", url, example="")
    if account and "@" not in account:
        raise ConfigurationError(f"TASKS_SERVICE_ACCOUNT={account!r}: expected a service account email")
    bucket = values["STATE_BUCKET"]
    if bucket and not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigurationError(f"STATE_BUCKET={bucket!r}: expected a Cloud Storage bucket name (no gs://)")
    return {
        "delivery": delivery, "tasks_queue": queue, "tasks_worker_url": url, "tasks_service_account": account,
        "cloud_tasks_endpoint": values["CLOUD_TASKS_ENDPOINT"], "state_bucket": bucket,
        "task_deadline_seconds": _number(env, "TASK_DEADLINE_SECONDS", 120.0, float, 1),
        "function_timeout_seconds": _number(env, "FUNCTION_TIMEOUT_SECONDS", 60.0, float, 1),
        "task_max_attempts": int(_number(env, "TASK_MAX_ATTEMPTS", 36, int, 1)),
        "stardex_rate_window_seconds": _number(env, "STARDEX_RATE_WINDOW_SECONDS", 60.0, float, 1),
    }


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings (docs/contract.md); a bad value raises ``ConfigurationError``."""
    env = dict(os.environ if environ is None else environ)
    region = env.get("PHONE_DEFAULT_REGION", "").strip().upper() or None
    if region is not None:
        import phonenumbers  # only when set: its import costs a cold start 25 ms

        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigurationError(f"PHONE_DEFAULT_REGION={region!r}: not a region code phonenumbers knows, e.g. GB")
    base = env.get("STARDEX_API_BASE", "").strip().rstrip("/") or DEFAULT_STARDEX_API_BASE
    _check_base("STARDEX_API_BASE", base)
    if not _API_VERSION_PATH.search(urlsplit(base).path):
        # Without the version every call meets a route Stardex does not have: refuse it now, not per webhook.
        raise ConfigurationError(
            f"STARDEX_API_BASE={base!r}: expected the API's versioned base, ending in /v1 "
            f"(e.g. {DEFAULT_STARDEX_API_BASE})"
        )
    _number(env, "THREADS", 0, int, 1)  # functions-framework's: named here, not in its traceback
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigurationError(f"LOG_LEVEL={log_level!r}: expected DEBUG, INFO, WARNING or ERROR")
    return Settings(
        stardex_api_base=base,
        dry_run=_flag(env, "DRY_RUN"),
        max_body_bytes=int(_number(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, int, 1)),
        phone_default_region=region,
        mappings_dir=env.get("MAPPINGS_DIR", "").strip() or None,
        secret_manager_endpoint=env.get("SECRET_MANAGER_ENDPOINT", "").strip() or None,
        allow_unsigned=_flag(env, "ALLOW_UNSIGNED"),
        stardex_deadline_seconds=_number(env, "STARDEX_DEADLINE_SECONDS", 20.0, float, 1),
        stardex_requests_per_minute=int(_number(env, "STARDEX_REQUESTS_PER_MINUTE", 60, int, 1)),
        secret_ttl_seconds=_number(env, "SECRET_TTL_SECONDS", 300.0, float, 0),
        person_memory_seconds=_number(env, "PERSON_MEMORY_SECONDS", 300.0, float, 0),
        log_level=log_level,
        **_queued_settings(env),
        environ=env,
    )
