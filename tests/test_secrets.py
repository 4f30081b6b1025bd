"""SecretProvider with the REAL Secret Manager client against the loopback fake.

Each failure test also checks that the secret's value appears in no exception and no log line.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.errors import ConfigurationError, RetryLater
from stardex_webhook.secrets import SecretProvider, secret_manager_client
from tests.fakes.fake_secret_manager import FakeSecretManager

SECRET = "projects/test-project/secrets/greenhouse-key"
VALUE = "gh-signing-value-7f3a"
ROTATED = "gh-signing-value-rotated-91c2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake():
    with FakeSecretManager() as running:
        yield running


@pytest.fixture
def clock():
    return FakeClock()


def provider_for(fake: FakeSecretManager, clock=time.monotonic, **environ: str) -> SecretProvider:
    settings = load_settings({"SECRET_MANAGER_ENDPOINT": fake.endpoint, "SECRET_TTL_SECONDS": "60", **environ})
    return SecretProvider(settings, clock=clock)


def latest(secret: str = SECRET) -> str:
    return f"{secret}/versions/latest"


def assert_unavailable(provider: SecretProvider, name: str, *secret_values: str) -> RetryLater:
    with pytest.raises(RetryLater) as caught:
        provider.get(name)
    failure = caught.value
    assert failure.reason == "secret_unavailable"
    assert f"{name}_SECRET" in failure.message
    assert failure.headers()["Retry-After"]
    for value in secret_values:
        assert value not in str(failure)
        assert value not in repr(failure.body())
    return failure


def test_value_read_with_the_real_client(fake):
    fake.set(SECRET, VALUE + "\n")  # `echo value | gcloud secrets versions add` leaves a newline
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
    assert fake.requests[latest()] == 1


def test_pinned_version_is_read(fake):
    first = fake.set(SECRET, VALUE)
    fake.set(SECRET, ROTATED)
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=first)
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE


def test_cached_within_ttl(fake, clock):
    fake.set(SECRET, VALUE)
    provider = provider_for(fake, clock, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    for _ in range(5):
        assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
        clock.now += 10
    assert fake.requests[latest()] == 1


def test_refetched_after_ttl(fake, clock):
    fake.set(SECRET, VALUE)
    provider = provider_for(fake, clock, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
    fake.set(SECRET, ROTATED)
    clock.now += 59
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
    clock.now += 2
    assert provider.get("GREENHOUSE_SIGNING_KEY") == ROTATED
    assert fake.requests[latest()] == 2


def test_refresh_bypasses_the_cache(fake, clock):
    fake.set(SECRET, VALUE)
    provider = provider_for(fake, clock, STARDEX_API_KEY_SECRET=latest())
    assert provider.get("STARDEX_API_KEY") == VALUE
    fake.set(SECRET, ROTATED)
    assert provider.get("STARDEX_API_KEY", refresh=True) == ROTATED
    assert provider.get("STARDEX_API_KEY") == ROTATED
    assert fake.requests[latest()] == 2


def test_secret_setting_wins_over_plain_value(fake):
    fake.set(SECRET, VALUE)
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY=ROTATED, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE


def test_plain_value_needs_no_client():
    def no_client(settings):
        raise AssertionError("a plain value must not build a Secret Manager client")

    settings = load_settings({"GREENHOUSE_SIGNING_KEY": f" {VALUE} ", "TYPEFORM_SIGNING_KEY": "  "})
    provider = SecretProvider(settings, client_factory=no_client)
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
    assert provider.get("TYPEFORM_SIGNING_KEY") is None
    assert provider.get("STARDEX_API_KEY") is None
    assert provider.get_keys("STARDEX_API_KEY") == []


def test_get_keys_splits_on_whitespace(fake):
    fake.set(SECRET, "key-old key-new\n")
    provider = provider_for(fake, GENERIC_SIGNING_KEY_SECRET=latest(), TYPEFORM_SIGNING_KEY="a\tb\n c")
    assert provider.get_keys("GENERIC_SIGNING_KEY") == ["key-old", "key-new"]
    assert provider.get_keys("TYPEFORM_SIGNING_KEY") == ["a", "b", "c"]


def test_client_is_created_once(fake):
    fake.set(SECRET, VALUE)
    fake.set("projects/test-project/secrets/stardex", ROTATED)
    created = []

    def counting_factory(settings):
        created.append(1)
        return secret_manager_client(settings)

    settings = load_settings(
        {
            "SECRET_MANAGER_ENDPOINT": fake.endpoint,
            "GREENHOUSE_SIGNING_KEY_SECRET": latest(),
            "STARDEX_API_KEY_SECRET": latest("projects/test-project/secrets/stardex"),
        }
    )
    provider = SecretProvider(settings, client_factory=counting_factory)
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE
    assert provider.get("STARDEX_API_KEY", refresh=True) == ROTATED
    assert provider.get("GREENHOUSE_SIGNING_KEY", refresh=True) == VALUE
    assert len(created) == 1


def test_crc_mismatch_is_retry_later(fake, caplog):
    fake.set(SECRET, VALUE)
    fake.corrupt_crc = True
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    with caplog.at_level(logging.DEBUG):
        failure = assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY", VALUE)
    assert "CRC32C" in failure.message
    assert VALUE not in caplog.text


def test_checksum_is_optional(fake):
    class NoChecksumClient:
        """The real client's answer with data_crc32c cleared, as older secret versions have none."""

        def __init__(self, real):
            self.real = real

        def access_secret_version(self, **kwargs):
            response = self.real.access_secret_version(**kwargs)
            del response.payload.data_crc32c
            return response

    fake.set(SECRET, VALUE)
    fake.corrupt_crc = True
    settings = load_settings({"SECRET_MANAGER_ENDPOINT": fake.endpoint, "GREENHOUSE_SIGNING_KEY_SECRET": latest()})
    provider = SecretProvider(settings, client_factory=lambda s: NoChecksumClient(secret_manager_client(s)))
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE


def test_down_is_retry_later_quickly(fake, caplog):
    fake.set(SECRET, VALUE)
    fake.down = True
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY", VALUE)
    assert time.monotonic() - started < 2
    assert fake.requests[latest()] == 1  # no client-side retry loop eating the request's deadline
    assert VALUE not in caplog.text


def test_recovers_after_an_outage(fake):
    fake.set(SECRET, VALUE)
    fake.down = True
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY", VALUE)
    fake.down = False
    assert provider.get("GREENHOUSE_SIGNING_KEY") == VALUE


def test_hung_endpoint_times_out(fake):
    fake.set(SECRET, VALUE)
    fake.delay = 3
    settings = load_settings({"SECRET_MANAGER_ENDPOINT": fake.endpoint, "GREENHOUSE_SIGNING_KEY_SECRET": latest()})
    provider = SecretProvider(settings, access_timeout=0.3)
    started = time.monotonic()
    assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY", VALUE)
    assert time.monotonic() - started < 2


def test_unknown_secret_is_retry_later(fake):
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest("projects/test-project/secrets/nope"))
    failure = assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY")
    assert "NotFound" in failure.message


def test_unreachable_endpoint_is_retry_later():
    settings = load_settings(
        {"SECRET_MANAGER_ENDPOINT": "http://127.0.0.1:9", "GREENHOUSE_SIGNING_KEY_SECRET": latest()}
    )
    assert_unavailable(SecretProvider(settings), "GREENHOUSE_SIGNING_KEY")


def test_client_that_cannot_be_built_is_retry_later():
    def broken_factory(settings):
        raise RuntimeError("no default credentials")

    settings = load_settings({"GREENHOUSE_SIGNING_KEY_SECRET": latest()})
    assert_unavailable(SecretProvider(settings, client_factory=broken_factory), "GREENHOUSE_SIGNING_KEY")


@pytest.mark.parametrize(
    "reference",
    [
        "greenhouse-key",
        "projects/test-project/secrets/greenhouse-key",
        "projects/test-project/secrets/greenhouse-key/versions/",
        "projects/p/secrets/s/versions/1/extra",
        "https://secretmanager.googleapis.com/v1/projects/p/secrets/s/versions/1",
    ],
)
def test_malformed_secret_name(fake, reference):
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=reference)
    assert_unavailable(provider, "GREENHOUSE_SIGNING_KEY")
    with pytest.raises(ConfigurationError, match="GREENHOUSE_SIGNING_KEY_SECRET"):
        provider.check("GREENHOUSE_SIGNING_KEY")
    assert fake.access_count == 0


def test_check_accepts_well_formed_names(fake):
    provider = provider_for(
        fake,
        GREENHOUSE_SIGNING_KEY_SECRET="projects/123456789/secrets/greenhouse-key/versions/3",
        STARDEX_API_KEY_SECRET="projects/example.com:proj/secrets/stardex_api/versions/latest",
    )
    provider.check("GREENHOUSE_SIGNING_KEY")
    provider.check("STARDEX_API_KEY")
    provider.check("TYPEFORM_SIGNING_KEY")  # not set at all: nothing to check
    assert fake.access_count == 0


def run_together(count: int, work) -> list:
    """Start ``count`` threads on ``work`` at the same instant; return what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = work()
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_concurrent_gets_share_one_access(fake):
    fake.set(SECRET, VALUE)
    fake.delay = 0.3  # every thread arrives while the first fetch is in flight
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    outcomes = run_together(8, lambda: provider.get("GREENHOUSE_SIGNING_KEY"))
    assert outcomes == [VALUE] * 8
    assert fake.requests[latest()] == 1


def test_concurrent_refreshes_share_one_access(fake):
    fake.set(SECRET, VALUE)
    provider = provider_for(fake, STARDEX_API_KEY_SECRET=latest())
    assert provider.get("STARDEX_API_KEY") == VALUE
    fake.set(SECRET, ROTATED)
    fake.delay = 0.3
    outcomes = run_together(8, lambda: provider.get("STARDEX_API_KEY", refresh=True))
    assert outcomes == [ROTATED] * 8
    assert fake.requests[latest()] == 2


def test_concurrent_gets_during_an_outage_share_one_failure(fake):
    fake.set(SECRET, VALUE)
    fake.down = True
    fake.delay = 0.3
    provider = provider_for(fake, GREENHOUSE_SIGNING_KEY_SECRET=latest())
    started = time.monotonic()
    outcomes = run_together(8, lambda: provider.get("GREENHOUSE_SIGNING_KEY"))
    assert all(isinstance(outcome, RetryLater) and outcome.reason == "secret_unavailable" for outcome in outcomes)
    assert fake.requests[latest()] == 1
    assert time.monotonic() - started < 2
    assert not any(VALUE in str(outcome) for outcome in outcomes)


def test_import_does_not_load_the_client_library():
    """Cold start: google.cloud.secretmanager is imported on first use, not with the package."""
    code = "import sys, stardex_webhook.secrets; print('google.cloud.secretmanager' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent.parent, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
