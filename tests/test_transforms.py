"""The named transforms of mapping files: one behaviour per test, including the wrong-type cases
that must yield None instead of raising (a request must never fail in a transform)."""

import subprocess
import sys
from pathlib import Path

import pytest

from stardex_webhook import transforms
from stardex_webhook.transforms import (
    email,
    first,
    first_name,
    full_name,
    last_name,
    linkedin,
    lower,
    make_transforms,
    phone,
    string,
    trim,
)

REPO = Path(__file__).resolve().parent.parent


def test_trim_strips_surrounding_whitespace():
    assert trim("  Marta \n") == "Marta"


def test_trim_keeps_inner_whitespace():
    assert trim(" Rua Exemplo 10\n1100-001 Lisboa ") == "Rua Exemplo 10\n1100-001 Lisboa"


def test_trim_of_blank_string_is_none():
    assert trim(" \t ") is None


def test_lower_lower_cases():
    assert lower("GitHub") == "github"


def test_string_turns_an_integer_into_text():
    assert string(48211907) == "48211907"


def test_string_writes_a_whole_float_without_decimals():
    assert string(300112.0) == "300112"


def test_string_keeps_a_fraction():
    assert string(2.5) == "2.5"


def test_string_spells_booleans_as_json():
    assert (string(True), string(False)) == ("true", "false")


def test_string_leaves_text_alone():
    assert string(" abc ") == " abc "


def test_string_refuses_non_finite_numbers():
    assert string(float("nan")) is None


def test_email_trims_and_lower_cases():
    assert email("  Marta.Quintal@Example.ORG ") == "marta.quintal@example.org"


def test_phone_formats_an_international_number_as_e164():
    assert phone("+351 910 000 111") == "+351910000111"


def test_phone_reads_a_national_number_in_the_default_region():
    assert phone("020 7946 0018", default_region="GB") == "+442079460018"


def test_phone_without_region_keeps_a_national_number_as_written():
    assert phone(" 020 7946 0018 ") == "020 7946 0018"


@pytest.mark.parametrize("written, region, expected", [
    ("+44 20 7946 0018 ext. 12", None, "+442079460018 ext. 12"), ("(415) 555-0123 x4", "US", "+14155550123 ext. 4"),
])
def test_phone_keeps_an_extension(written, region, expected):
    """E.164 has no extension: the number was sent without it, and the recruiter calling it reached the switchboard."""
    assert phone(written, region) == expected


def test_phone_keeps_an_invalid_number_as_written():
    assert phone(" 12345 ", default_region="GB") == "12345"


def test_phone_keeps_text_that_is_not_a_number_as_written():
    assert phone("call me maybe", default_region="GB") == "call me maybe"


def test_phone_accepts_a_number_sent_as_json_number():
    assert phone(2079460018, default_region="GB") == "+442079460018"


def test_phone_keeps_a_json_number_it_cannot_place_as_text():
    assert phone(14155550123) == "14155550123"


def test_phone_of_boolean_is_none():
    assert phone(True) is None


def test_first_name_is_the_first_word():
    assert first_name("  Marta  Sofia Quintal ") == "Marta"


def test_last_name_is_the_rest():
    assert last_name("  Marta  Sofia Quintal ") == "Sofia Quintal"


def test_single_word_name_is_a_first_name_only():
    assert (first_name("Cher"), last_name("Cher")) == ("Cher", None)


@pytest.mark.parametrize("value, expected", [
    ("  Aisha   Bello ", "Aisha Bello"),
    (["  Aisha ", "Bello"], "Aisha Bello"),
    (["Aisha", None], None),  # a partial name never stands for the whole one
    (["Aisha", "  "], None),
    (["Aisha", 3], None),
])
def test_full_name_is_whole_trimmed_and_single_spaced(value, expected):
    assert full_name(value) == expected


def test_linkedin_accepts_a_profile_url():
    assert linkedin("https://www.linkedin.com/in/marta") == "https://www.linkedin.com/in/marta"


def test_linkedin_adds_https_when_the_scheme_is_missing():
    assert linkedin(" linkedin.com/in/marta ") == "https://linkedin.com/in/marta"


def test_linkedin_accepts_a_country_subdomain():
    assert linkedin("https://pt.linkedin.com/in/marta") == "https://pt.linkedin.com/in/marta"


def test_linkedin_picks_the_first_linkedin_url_of_a_list():
    urls = ["https://marta.example.org", "https://www.linkedin.com/in/marta", "https://linkedin.com/in/other"]
    assert linkedin(urls) == "https://www.linkedin.com/in/marta"


def test_linkedin_reads_value_of_objects_in_a_list():
    addresses = [{"value": "https://github.com/marta", "type": "personal"}, {"value": "www.linkedin.com/in/marta"}]
    assert linkedin(addresses) == "https://www.linkedin.com/in/marta"


def test_linkedin_reads_url_of_objects_in_a_list():
    assert linkedin([{"url": "https://www.linkedin.com/in/marta"}]) == "https://www.linkedin.com/in/marta"


@pytest.mark.parametrize(
    "lookalike",
    [
        "https://notlinkedin.com/in/marta",
        "https://linkedin.com.evil.example/in/marta",
        "https://linkedin.com@evil.example/in/marta",
        "ftp://www.linkedin.com/in/marta",
        "https://[linkedin.com/in/marta",
    ],
)
def test_linkedin_refuses_other_hosts_and_schemes(lookalike):
    assert linkedin(lookalike) is None


@pytest.mark.parametrize("page", [
    "https://www.linkedin.com/company/globex", "linkedin.com/company/globex/", "https://www.linkedin.com/school/mit",
    "https://www.linkedin.com/jobs/view/3712345678", "https://www.linkedin.com/", "https://www.linkedin.com/in/",
])
def test_linkedin_a_company_school_or_job_page_is_not_the_persons_profile(page):
    """A form's "Company LinkedIn" field (read by the forms' any-field fallback) or an employer's page
    among Greenhouse's websites was written as the person's profile, replacing the real one (an ATS
    overwrites), and searched for as the person: LinkedIn profiles live under /in/ (/pub/ before 2012)."""
    assert linkedin(page) is None
    assert linkedin([page, "https://www.linkedin.com/in/marta/"]) == "https://www.linkedin.com/in/marta/"
    assert linkedin("https://www.linkedin.com/pub/marta-q/1/2a/3b") == "https://www.linkedin.com/pub/marta-q/1/2a/3b"


def test_linkedin_without_any_linkedin_url_is_none():
    assert linkedin(["https://marta.example.org", {"value": 3}, None]) is None


def test_first_skips_empty_items():
    assert first([None, "", "  ", [], "Rua Exemplo 10"]) == "Rua Exemplo 10"


def test_first_of_empty_list_is_none():
    assert first([]) is None


def test_first_treats_a_scalar_as_a_list_of_one():
    assert first("Lisboa") == "Lisboa"


@pytest.mark.parametrize("name", ["trim", "lower", "email", "first_name", "last_name", "full_name", "linkedin"])
@pytest.mark.parametrize("value", [None, 3, 2.5, True, [], {}, {"a": "b"}])
def test_text_transforms_yield_none_for_wrong_types(name, value):
    assert make_transforms(None)[name](value) is None


@pytest.mark.parametrize("value", [None, [], ["a"], {}, {"a": "b"}])
def test_string_and_phone_yield_none_for_containers_and_null(value):
    assert (string(value), phone(value)) == (None, None)


def test_make_transforms_binds_the_phone_region():
    assert make_transforms("GB")["phone"]("020 7946 0018") == "+442079460018"


def test_make_transforms_offers_every_advertised_name():
    assert set(make_transforms(None)) == transforms.TRANSFORM_NAMES


def test_importing_transforms_does_not_import_phonenumbers():
    """phonenumbers takes tens of milliseconds to import: only the phone transform may pay it."""
    probe = "import sys, stardex_webhook.transforms; print('phonenumbers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_phone_keeps_overlong_text_as_written():
    assert phone(" " + "1" * 300 + " ") == "1" * 300
