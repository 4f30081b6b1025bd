"""config: docs/contract.md's variables, read once, with clear faults for bad values."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

from stardex_webhook.config import env_prefix, load_settings, signing_key_name
from stardex_webhook.errors import ConfigurationError


def test_defaults_follow_the_contract():
    settings = load_settings({})
    assert settings.stardex_api_base == "https://api.stardex.ai/v1"
    assert settings.max_body_bytes == 1048576
    assert settings.dry_run is False
    assert settings.allow_unsigned is False
    assert settings.phone_default_region is None
    assert settings.mappings_dir is None
    assert settings.stardex_deadline_seconds == 20.0


def test_values_are_read_and_normalised():
    settings = load_settings(
        {"DRY_RUN": "1", "MAX_BODY_BYTES": "2048", "PHONE_DEFAULT_REGION": "gb", "STARDEX_API_BASE": "http://127.0.0.1:9/v1/"}
    )
    assert settings.dry_run is True
    assert settings.max_body_bytes == 2048
    assert settings.phone_default_region == "GB"
    assert settings.stardex_api_base == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    "variable, value",
    [("DRY_RUN", "maybe"), ("MAX_BODY_BYTES", "0"), ("PHONE_DEFAULT_REGION", "GBR"), ("PHONE_DEFAULT_REGION", "XX"),
     ("STARDEX_API_BASE", "ftp://x"), ("STARDEX_API_BASE", "http://api.stardex.ai/v1"), ("STARDEX_API_BASE", "https://"),
     ("STARDEX_API_BASE", "http://127.0.0.1.example.com/v1"), ("LOG_LEVEL", "LOUD"),
     ("STARDEX_DEADLINE_SECONDS", "nan"), ("STARDEX_DEADLINE_SECONDS", "inf"), ("FUNCTION_TIMEOUT_SECONDS", "NaN"),
     ("SECRET_TTL_SECONDS", "-inf"), ("PERSON_MEMORY_SECONDS", "nan"), ("TASK_DEADLINE_SECONDS", "infinity"),
     ("STARDEX_RATE_WINDOW_SECONDS", "nan"), ("THREADS", "abc"), ("THREADS", "0")],
)
def test_bad_values_name_the_variable(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})


@pytest.mark.parametrize("variable, expected", [("MAX_BODY_BYTES", "expected a whole number"),
                                                ("SECRET_TTL_SECONDS", "expected a number")])
def test_a_number_that_is_not_one_says_what_is_expected(variable, expected):
    with pytest.raises(ConfigurationError, match=f"{variable}='lots': {expected}$"):
        load_settings({variable: "lots"})


@pytest.mark.parametrize("base", ["http://localhost:9/v1", "http://[::1]:9/v1", "http://127.0.0.2:9/v1", "https://stardex.test/v1"])
def test_clear_http_only_to_this_machine(base):
    assert load_settings({"STARDEX_API_BASE": base}).stardex_api_base == base


@pytest.mark.parametrize(
    "command",
    [["-m", "functions_framework", f"--source={ROOT / 'main.py'}", "--target=handle_webhook"], ["-m", "stardex_webhook.serve"]],
    ids=["functions-framework", "serve"],
)
@pytest.mark.parametrize("variable, value", [("PHONE_DEFAULT_REGION", "XX"), ("STARDEX_API_BASE", "http://stardex.example"),
                                             ("STARDEX_API_BASE", "https://api.stardex.ai"), ("THREADS", "abc")])
def test_a_bad_setting_is_named_first_and_nothing_starts(command, variable, value):
    result = subprocess.run([sys.executable, *command, "--port=0"], cwd=ROOT, env={**os.environ, variable: value},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert variable in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr and "webhooks at" not in result.stderr


@pytest.mark.parametrize("base", ["https://api.stardex.ai", "https://api.stardex.ai/", "https://api.stardex.ai/api",
                                  "http://127.0.0.1:8090", "https://api.stardex.ai/v1/persons"])
def test_a_stardex_base_without_the_api_version_stops_the_start(base):
    """Without /v1 every call meets a route Stardex does not have: said at start, not per webhook."""
    with pytest.raises(ConfigurationError, match=r"STARDEX_API_BASE=.*expected the API's versioned base, ending in /v1"):
        load_settings({"STARDEX_API_BASE": base})


@pytest.mark.parametrize("environment, warned", [
    ({}, True),
    ({"DRY_RUN": "0"}, True),
    ({"DRY_RUN": "1"}, False),
    ({"STARDEX_API_KEY": "k"}, False),
    ({"STARDEX_API_KEY_SECRET": "projects/p/secrets/s/versions/latest"}, False),
])
def test_no_stardex_key_outside_a_dry_run_is_warned_at_start(environment, warned):
    result = subprocess.run([sys.executable, "-c", "import main"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"], **environment})
    assert result.returncode == 0, result.stderr
    warnings = [json.loads(line) for line in result.stdout.splitlines() if '"stardex_api_key_missing"' in line]
    if warned:
        assert [line["severity"] for line in warnings] == ["WARNING"]
        assert "no STARDEX_API_KEY" in warnings[0]["message"] and "DRY_RUN is off" in warnings[0]["message"]
    else:
        assert warnings == []


def test_source_names_become_variable_prefixes():
    assert env_prefix("google-forms") == "GOOGLE_FORMS"
    assert signing_key_name("greenhouse") == "GREENHOUSE_SIGNING_KEY"


def test_has_setting_sees_either_form():
    settings = load_settings({"A_SECRET": "projects/p/secrets/a/versions/1", "B": "x", "C": ""})
    assert settings.has_setting("A") and settings.has_setting("B")
    assert not settings.has_setting("C")


@pytest.mark.parametrize("base, accepted", [
    ("https://api.eu.sender.example/v1/", True),
    ("http://127.0.0.1:9000/v1", True),
    ("http://api.sender.example/v1", False),  # the sender's API key would travel in clear
    ("ftp://api.sender.example", False),
])
def test_a_sender_api_base_must_be_https_or_loopback(base, accepted):
    settings = load_settings({"GREENHOUSE_API_BASE": base})
    if accepted:
        settings.check_api_bases(["greenhouse"])
        assert settings.api_base("greenhouse", "https://default.example") == base.rstrip("/")
    else:
        with pytest.raises(ConfigurationError, match="GREENHOUSE_API_BASE"):
            settings.check_api_bases(["greenhouse"])


def test_without_a_sender_api_base_the_sender_s_public_host_is_used():
    assert load_settings({}).api_base("greenhouse", "https://api.sender.example") == "https://api.sender.example"

