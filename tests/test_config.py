"""config: the CONTRACT's variables, read once, with clear faults for bad values."""

import pytest

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
    [("DRY_RUN", "maybe"), ("MAX_BODY_BYTES", "lots"), ("MAX_BODY_BYTES", "0"), ("PHONE_DEFAULT_REGION", "GBR"),
     ("STARDEX_API_BASE", "ftp://x"), ("LOG_LEVEL", "LOUD")],
)
def test_bad_values_name_the_variable(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})


def test_source_names_become_variable_prefixes():
    assert env_prefix("google-forms") == "GOOGLE_FORMS"
    assert signing_key_name("greenhouse") == "GREENHOUSE_SIGNING_KEY"


def test_has_setting_sees_either_form():
    settings = load_settings({"A_SECRET": "projects/p/secrets/a/versions/1", "B": "x", "C": ""})
    assert settings.has_setting("A") and settings.has_setting("B")
    assert not settings.has_setting("C")
