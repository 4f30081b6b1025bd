"""SecretProvider with its real client (``secret_manager_client``: at an endpoint, Secret Manager's
REST API through the function's one HTTP transport, anonymous) against the loopback fake.

Each failure test also checks that the secret's value appears in no exception and no log line.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import ConfigurationError, RetryLater
from stardex_webhook.logs import JsonLog
from stardex_webhook.secrets import STALE_SECONDS, SecretProvider, secret_manager_client
from tests.fakes.fake_secret_manager import FakeSecretManager

SECRET = "projects/test-project/secrets/greenhouse-key"
LATEST = f"{SECRET}/versions/latest"
NAME = "GREENHOUSE_SIGNING_KEY"
VALUE = "gh-signing-value-7f3a"
ROTATED = "gh-signing-value-rotated-91c2"
TTL = 60


@pytest.fixture
def fake():
    with FakeSecretManager() as running:
        running.set(SECRET, VALUE)
        yield running
    # A read the test gave up on runs on in its daemon thread; with the fake gone it ends at once.
    # Waited for here, so its request is never made (and recorded) during a later test.
    for thread in threading.enumerate():
        if thread.name.startswith("read-"):
            thread.join(10)


@pytest.fixture
def clock():
    """A clock that moves only when the test moves it (``clock.now += 10``)."""
    clock = lambda: clock.now  # noqa: E731
    clock.now = 1000.0
    return clock


@pytest.fixture
def log_stream():
    return io.StringIO()


def provider_for(fake, clock=None, log_stream=None, factory=secret_manager_client, **environ) -> SecretProvider:
    environ = environ or {f"{NAME}_SECRET": LATEST}
    settings = load_settings({"SECRET_MANAGER_ENDPOINT": fake.endpoint, "SECRET_TTL_SECONDS": str(TTL), **environ})
    return SecretProvider(settings, factory, clock or time.monotonic, log=JsonLog(stream=log_stream or io.StringIO()))


def assert_unavailable(provider: SecretProvider, name: str = NAME, **kwargs) -> RetryLater:
    with pytest.raises(RetryLater) as caught:
        provider.get(name, **kwargs)
    failure = caught.value
    assert failure.reason == "secret_unavailable"
    assert f"{name}_SECRET" in failure.message
    assert failure.headers()["Retry-After"]
    assert VALUE not in str(failure) and VALUE not in repr(failure.body())
    return failure


def test_value_read_with_the_real_client(fake):
    fake.set(SECRET, VALUE + "\n")  # `echo value | gcloud secrets versions add` leaves a newline
    assert provider_for(fake).get(NAME) == VALUE
    assert fake.requests[LATEST] == 1


def test_pinned_version_is_read(fake):
    fake.set(SECRET, ROTATED)
    assert provider_for(fake, **{f"{NAME}_SECRET": f"{SECRET}/versions/1"}).get(NAME) == VALUE


def test_cached_within_the_ttl_and_read_again_after_it(fake, clock):
    provider = provider_for(fake, clock)
    assert provider.get(NAME) == VALUE
    fake.set(SECRET, ROTATED)
    clock.now += TTL - 1
    assert provider.get(NAME) == VALUE
    assert fake.requests[LATEST] == 1
    clock.now += 2
    assert provider.get(NAME) == ROTATED
    assert fake.requests[LATEST] == 2


def test_refresh_bypasses_the_cache(fake, clock):
    provider = provider_for(fake, clock)
    assert provider.get(NAME) == VALUE
    fake.set(SECRET, ROTATED)
    assert provider.get(NAME, refresh=True) == ROTATED
    assert provider.get(NAME) == ROTATED
    assert fake.requests[LATEST] == 2


def test_secret_setting_wins_over_plain_value(fake):
    assert provider_for(fake, **{NAME: ROTATED, f"{NAME}_SECRET": LATEST}).get(NAME) == VALUE


def test_plain_values_need_no_client():
    def no_client(settings):
        raise AssertionError("a plain value must not build a Secret Manager client")

    settings = load_settings({NAME: f" {VALUE} ", "TYPEFORM_SIGNING_KEY": "  ", "GENERIC_SIGNING_KEY": "a\tb\n c"})
    provider = SecretProvider(settings, client_factory=no_client)
    assert provider.get(NAME) == VALUE
    assert provider.get("TYPEFORM_SIGNING_KEY") is None
    assert provider.get_keys("STARDEX_API_KEY") == []
    assert provider.get_keys("GENERIC_SIGNING_KEY") == ["a", "b", "c"]


def test_get_keys_splits_a_rotation(fake):
    fake.set(SECRET, "key-old key-new\n")
    assert provider_for(fake).get_keys(NAME) == ["key-old", "key-new"]


def test_client_is_created_once(fake):
    fake.set("projects/test-project/secrets/stardex", ROTATED)
    created = []

    def counting_factory(settings):
        created.append(1)
        return secret_manager_client(settings)

    environ = {f"{NAME}_SECRET": LATEST, "STARDEX_API_KEY_SECRET": "projects/test-project/secrets/stardex/versions/1"}
    provider = provider_for(fake, factory=counting_factory, **environ)
    assert provider.get(NAME) == VALUE
    assert provider.get("STARDEX_API_KEY", refresh=True) == ROTATED
    assert provider.get(NAME, refresh=True) == VALUE
    assert len(created) == 1


def test_checksum_mismatch_is_retry_later(fake):
    fake.corrupt_crc = True
    assert "CRC32C" in assert_unavailable(provider_for(fake)).message


def test_checksum_is_optional(fake):
    class NoChecksumClient:
        """The real client's answer with data_crc32c cleared, as older secret versions have none."""

        def __init__(self, real):
            self.real = real

        def access_secret_version(self, **kwargs):
            response = self.real.access_secret_version(**kwargs)
            del response.payload.data_crc32c
            return response

    fake.corrupt_crc = True
    assert provider_for(fake, factory=lambda s: NoChecksumClient(secret_manager_client(s))).get(NAME) == VALUE


def test_down_is_retry_later_without_a_client_side_retry_and_recovers(fake):
    fake.down = True
    provider = provider_for(fake)
    assert "ServiceUnavailable" in assert_unavailable(provider).message
    assert fake.requests[LATEST] == 1
    fake.down = False
    assert provider.get(NAME) == VALUE


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({f"{NAME}_SECRET": "projects/test-project/secrets/nope/versions/1"}, "NotFound"),
        ({f"{NAME}_SECRET": LATEST, "SECRET_MANAGER_ENDPOINT": "http://127.0.0.1:9"}, "could not be read"),
    ],
)
def test_unknown_secret_or_unreachable_endpoint_is_retry_later(fake, environ, expected):
    assert expected in assert_unavailable(provider_for(fake, **environ)).message


def test_client_that_cannot_be_built_is_retry_later(fake):
    def broken_factory(settings):
        raise RuntimeError("no default credentials")

    assert "RuntimeError" in assert_unavailable(provider_for(fake, factory=broken_factory)).message


@pytest.mark.parametrize("switch", [{"drip": 0.2}, {"delay": 3.0}])
def test_a_dripping_or_hung_answer_ends_at_the_deadline_with_one_read_in_flight(fake, switch):
    for name, value in switch.items():
        setattr(fake, name, value)
    provider = provider_for(fake)
    for _ in range(3):
        assert_unavailable(provider, deadline=Deadline(0.3))
    assert fake.access_count == 1, "a read in flight is shared, never started again per request"


def test_an_expired_deadline_reads_nothing_more(fake):
    fake.delay = 1.0
    assert "in time" in assert_unavailable(provider_for(fake), deadline=Deadline(0)).message


def test_an_outage_after_the_ttl_serves_the_last_good_value_with_a_warning(fake, clock, log_stream):
    provider = provider_for(fake, clock, log_stream)
    assert provider.get(NAME) == VALUE
    fake.down = True
    clock.now += TTL + 10
    assert provider.get(NAME) == VALUE
    warning = json.loads(log_stream.getvalue())
    assert warning["severity"] == "WARNING" and f"{NAME}_SECRET" in warning["message"]
    assert VALUE not in log_stream.getvalue()
    assert_unavailable(provider, refresh=True)  # a refused key is never answered from memory
    clock.now += STALE_SECONDS
    assert_unavailable(provider)  # stale, but not forever
    fake.down = False
    assert provider.get(NAME) == VALUE


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


@pytest.mark.parametrize("refresh", [False, True])
def test_concurrent_reads_share_one_access(fake, refresh):
    fake.delay = 0.3  # every thread arrives while the first read is in flight
    provider = provider_for(fake)
    assert run_together(8, lambda: provider.get(NAME, refresh=refresh)) == [VALUE] * 8
    assert fake.requests[LATEST] == 1


def test_concurrent_reads_during_an_outage_share_one_failure(fake):
    fake.down, fake.delay = True, 0.3
    provider = provider_for(fake)
    outcomes = run_together(8, lambda: provider.get(NAME))
    assert all(isinstance(outcome, RetryLater) and outcome.reason == "secret_unavailable" for outcome in outcomes)
    assert fake.requests[LATEST] == 1


def test_while_a_refresh_hangs_the_others_get_the_last_good_value(fake, clock):
    provider = provider_for(fake, clock)
    assert provider.get(NAME) == VALUE
    fake.delay = 3.0
    clock.now += TTL + 1
    assert run_together(8, lambda: provider.get(NAME, deadline=Deadline(0.5))) == [VALUE] * 8
    assert fake.requests[LATEST] == 2


@pytest.mark.parametrize(
    "reference",
    [
        "greenhouse-key",
        SECRET,
        f"{SECRET}/versions/",
        "projects/p/secrets/s/versions/1/extra",
        "https://secretmanager.googleapis.com/v1/projects/p/secrets/s/versions/1",
    ],
)
def test_malformed_secret_name(fake, reference):
    provider = provider_for(fake, **{f"{NAME}_SECRET": reference})
    assert_unavailable(provider)
    with pytest.raises(ConfigurationError, match=f"{NAME}_SECRET"):
        provider.check(NAME)
    assert fake.access_count == 0


def test_check_accepts_well_formed_names(fake):
    provider = provider_for(
        fake,
        GREENHOUSE_SIGNING_KEY_SECRET="projects/123456789/secrets/greenhouse-key/versions/3",
        STARDEX_API_KEY_SECRET="projects/example.com:proj/secrets/stardex_api/versions/latest",
    )
    for name in (NAME, "STARDEX_API_KEY", "TYPEFORM_SIGNING_KEY"):  # the last is not set: nothing to check
        provider.check(name)
    assert fake.access_count == 0


def test_import_does_not_load_the_client_library():
    """Cold start: google.cloud.secretmanager is imported on first use, not with the package."""
    code = "import sys, stardex_webhook.secrets; print('google.cloud.secretmanager' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parent.parent, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
