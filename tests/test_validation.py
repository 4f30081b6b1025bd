"""schemas/person_update.schema.json and validation: what Stardex may receive, and how a
refusal is reported (every error, located by JSON path, never quoting personal data)."""

import copy
import json
import random
import re
import string
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from stardex_webhook.errors import Unprocessable
from stardex_webhook.validation import json_path
from tests.helpers.schema import validate_update

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "person_update.schema.json"
SEED_FIELDS = {
    "linkedin_url", "emails", "phone_numbers", "name", "first_name", "last_name", "current_job_title",
    "company_name", "linkedin_location", "linkedin_headline", "address", "enrich_record", "work_email",
    "personal_email", "mobile_phone", "work_phone", "job_id",
}

# Every field of the seed's Update person body, plus custom_fields, with realistic values.
FULL_BODY = {
    "linkedin_url": "https://www.linkedin.com/in/marta-quintal-example",
    "emails": [
        {"contact_data_type": "personal", "value": "marta.quintal@example.org"},
        {"contact_data_type": "work", "value": "mquintal@northwind-example.com"},
    ],
    "phone_numbers": [
        {"contact_data_type": "mobile", "value": "+351910000111"},
        {"contact_data_type": "work", "value": "+351213000222"},
    ],
    "name": "Marta Quintal",
    "first_name": "Marta",
    "last_name": "Quintal",
    "current_job_title": "Data Engineer",
    "company_name": "Northwind Analytics",
    "linkedin_location": "Lisbon, Portugal",
    "linkedin_headline": "Data Engineer at Northwind Analytics",
    "address": "Rua Exemplo 10\n1100-001 Lisboa",
    "enrich_record": False,
    "work_email": "mquintal@northwind-example.com",
    "personal_email": "marta.quintal@example.org",
    "mobile_phone": "+351910000111",
    "work_phone": "+351213000222",
    "job_id": "6f1c2a7e-1b7d-4d8a-9a57-0c3f5e2b9d10",
    "custom_fields": [
        {"attribute_id": "0b9e3c1a-5d2f-4e8b-a6c7-1f2d3e4a5b6c", "value": "Referral"},
        {"attribute_id": "1c0f4d2b-6e3a-4f9c-b7d8-2a3e4f5b6c7d", "add_values": ["Python", "Spark"], "remove_values": ["Java"]},
        {"attribute_id": "2d1a5e3c-7f4b-4a0d-8e9f-3b4f5a6c7d8e", "add_team_member_ids": ["tm-1"], "remove_team_member_ids": ["tm-2"]},
        {"attribute_id": "3e2b6f4d-8a5c-4b1e-9fa0-4c5a6b7d8e9f", "clear_all": True},
        {"attribute_id": "4f3c7a5e-9b6d-4c2f-8ab1-5d6b7c8e9fa0", "value": 42},
    ],
}


def errors_of(body):
    with pytest.raises(Unprocessable) as caught:
        validate_update(body)
    assert caught.value.reason == "schema_invalid"
    return caught.value.extra["errors"]


def with_changes(**changes):
    body = copy.deepcopy(FULL_BODY)
    body.update(changes)
    return body


def test_schema_describes_every_seed_field_and_custom_fields():
    properties = json.loads(SCHEMA_PATH.read_text())["properties"]
    assert set(properties) == SEED_FIELDS | {"custom_fields"}
    assert all(spec.get("description") for spec in properties.values())


def test_schema_is_draft_2020_12():
    assert json.loads(SCHEMA_PATH.read_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", ["person_update.schema.json", "mapping.schema.json"])
def test_shipped_schemas_are_valid_draft_2020_12_schemas(name):
    Draft202012Validator.check_schema(json.loads((SCHEMA_PATH.parent / name).read_text()))


def test_full_seed_body_is_accepted():
    validate_update(copy.deepcopy(FULL_BODY))


def test_a_single_field_is_accepted():
    validate_update({"current_job_title": "Staff Engineer"})


def test_unknown_property_is_refused():
    assert errors_of(with_changes(nickname="Mar")) == [{"path": "$.nickname", "message": "is not an allowed property"}]


def test_empty_body_is_refused():
    assert errors_of({}) == [{"path": "$", "message": "is empty: an update needs at least one field"}]


def test_wrong_type_is_refused():
    assert errors_of(with_changes(enrich_record="yes")) == [
        {"path": "$.enrich_record", "message": "must be a boolean (true or false)"}
    ]


def test_body_that_is_not_an_object_is_refused():
    assert errors_of(["name"]) == [{"path": "$", "message": "must be an object"}]


def test_bad_email_in_a_contact_is_refused():
    body = with_changes(emails=[{"contact_data_type": "work", "value": "marta.quintal@"}])
    assert errors_of(body) == [{"path": "$.emails[0].value", "message": "is not a valid email address"}]


@pytest.mark.parametrize("field", ["work_email", "personal_email"])
def test_bad_email_field_is_refused(field):
    body = with_changes(**{field: "marta at example.org"})
    assert errors_of(body) == [{"path": f"$.{field}", "message": "is not a valid email address"}]


@pytest.mark.parametrize(
    "url",
    ["www.linkedin.com/in/marta", "ftp://www.linkedin.com/in/marta", "https://", "https:///in/marta",
     "https://www.linkedin.com/in/marta quintal", "javascript:alert(1)"],
)
def test_bad_url_is_refused(url):
    assert errors_of(with_changes(linkedin_url=url)) == [
        {"path": "$.linkedin_url", "message": "is not a valid http(s) URL with a host"}
    ]


def test_missing_contact_data_type_is_refused():
    body = with_changes(phone_numbers=[{"value": "+351910000111"}])
    assert errors_of(body) == [{"path": "$.phone_numbers[0].contact_data_type", "message": "is required"}]


def test_unknown_contact_data_type_is_refused():
    body = with_changes(phone_numbers=[{"contact_data_type": "home", "value": "+351910000111"}])
    assert errors_of(body) == [{"path": "$.phone_numbers[0].contact_data_type", "message": "must be one of: work, mobile"}]


def test_extra_property_in_a_contact_is_refused():
    body = with_changes(emails=[{"contact_data_type": "work", "value": "a@example.org", "primary": True}])
    assert errors_of(body) == [{"path": "$.emails[0].primary", "message": "is not an allowed property"}]


def test_empty_string_is_refused():
    assert errors_of(with_changes(first_name="")) == [{"path": "$.first_name", "message": "must not be empty"}]


def test_empty_list_is_refused():
    """An empty list would make Stardex drop every email the person has."""
    assert errors_of(with_changes(emails=[])) == [{"path": "$.emails", "message": "must not be an empty list"}]


def test_custom_field_without_attribute_id_is_refused():
    body = with_changes(custom_fields=[{"value": "Referral", "clear_all": False}])
    assert errors_of(body) == [{"path": "$.custom_fields[0].attribute_id", "message": "is required"}]


def test_custom_field_with_malformed_attribute_id_is_refused():
    body = with_changes(custom_fields=[{"attribute_id": "source", "value": "Referral"}])
    assert errors_of(body) == [{"path": "$.custom_fields[0].attribute_id", "message": "is not a valid UUID"}]


def test_custom_field_that_changes_nothing_is_refused():
    body = with_changes(custom_fields=[{"attribute_id": "0b9e3c1a-5d2f-4e8b-a6c7-1f2d3e4a5b6c"}])
    assert errors_of(body) == [{"path": "$.custom_fields[0]", "message": "must have at least 2 properties"}]


def test_every_error_is_listed_with_its_path():
    body = {
        "name": 7,
        "emails": [{"value": "nobody@"}, {"contact_data_type": "work", "value": ""}],
        "linkedin_url": "linkedin",
        "custom_fields": [{"attribute_id": "x", "add_values": []}],
        "favourite colour": "teal",
    }
    assert errors_of(body) == [
        {"path": "$.custom_fields[0].add_values", "message": "must not be an empty list"},
        {"path": "$.custom_fields[0].attribute_id", "message": "is not a valid UUID"},
        {"path": "$.emails[0].contact_data_type", "message": "is required"},
        {"path": "$.emails[0].value", "message": "is not a valid email address"},
        {"path": "$.emails[1].value", "message": "is not a valid email address"},
        {"path": "$.emails[1].value", "message": "must not be empty"},
        {"path": "$.linkedin_url", "message": "is not a valid http(s) URL with a host"},
        {"path": "$.name", "message": "must be a string"},
        {"path": '$["favourite colour"]', "message": "is not an allowed property"},
    ]


def test_errors_never_quote_the_values_sent():
    personal = ["secret.person@", "Secreta Pessoa", "+351 999 SECRET", "secret-linkedin", "SECRETTYPE"]
    body = {
        "emails": [{"contact_data_type": "work", "value": personal[0]}],
        "name": 1,
        "first_name": [personal[1]],
        "phone_numbers": [{"contact_data_type": personal[4], "value": personal[2]}],
        "linkedin_url": personal[3],
    }
    with pytest.raises(Unprocessable) as caught:
        validate_update(body)
    answer = json.dumps(caught.value.body())
    assert not [value for value in personal if value in answer]


def test_validator_is_built_once_and_reused(monkeypatch):
    import jsonschema

    def no_new_validators(*args, **kwargs):
        raise AssertionError("a validator was built during a request")

    validate_update({"first_name": "Marta"})  # the first use builds it
    monkeypatch.setattr(jsonschema, "Draft202012Validator", no_new_validators)
    validate_update({"first_name": "Marta"})
    with pytest.raises(Unprocessable):
        validate_update({"first_name": ""})


@pytest.mark.parametrize("field, limit", [("emails", 20), ("phone_numbers", 20), ("custom_fields", 100)])
def test_lists_beyond_their_bound_are_refused(field, limit):
    """One event must not cost without limit (each email may become a search)."""
    item = FULL_BODY[field][0]
    validate_update({field: [item] * limit})
    assert errors_of({field: [item] * (limit + 1)}) == [{"path": f"$.{field}", "message": f"must have at most {limit} items"}]


@pytest.mark.parametrize("path, body, limit, filler", [
    ("$.name", lambda text: {"name": text}, 2000, "ж"),
    ("$.address", lambda text: {"address": text}, 2000, "ж"),
    ("$.phone_numbers[0].value", lambda text: {"phone_numbers": [{"contact_data_type": "mobile", "value": text}]}, 2000, "5"),
    ("$.linkedin_url", lambda text: {"linkedin_url": "https://www.linkedin.com/in/" + text}, 2048, "ж"),
    ("$.custom_fields[0].value", lambda text: {"custom_fields": [{**FULL_BODY["custom_fields"][0], "value": text}]}, 10000, "ж"),
])
def test_a_text_no_real_person_has_is_refused_at_its_bound(path, body, limit, filler):
    """The bounds a person's text stays under (issue 21): the longest real values pass, a value
    over the bound does not (one sender's 200 KB field must not fill an instance's memory)."""
    def body_of(total):
        prefix = len(_first_text(body("")))
        return body(filler * (total - prefix))

    validate_update(body_of(limit))
    assert errors_of(body_of(limit + 1)) == [{"path": path, "message": f"must have at most {limit} characters"}]


def _first_text(document):
    """The one string the lambdas above build from their argument, with the argument empty."""
    while not isinstance(document, str):
        document = document[0] if isinstance(document, list) else next(
            value for key, value in document.items() if key not in ("contact_data_type", "attribute_id"))
    return document


def test_json_path_quotes_names_that_are_not_identifiers():
    assert json_path(["emails", 0, "value"]) == "$.emails[0].value"
    assert json_path(["a b", 2]) == '$["a b"][2]'


# The schema stands alone: a stock validator, without format checking, agrees with the function.
UUID = "0b9e3c1a-5d2f-4e8b-a6c7-1f2d3e4a5b6c"
GOOD_BODIES = [
    FULL_BODY,
    {"linkedin_url": "https://linkedin.com/in/a"},
    {"linkedin_url": "HTTP://[::1]:8080/in/a?x=1#y"},
    {"work_email": "ann.o'brien+tag@sub.example.co.uk"},
    {"work_email": "a@1.com"},
    {"emails": [{"contact_data_type": "work", "value": "A_B%C@Example.ORG"}]},
    {"custom_fields": [{"attribute_id": UUID.upper(), "value": 1.5}]},
    # Internationalised addresses (RFC 6531) are addresses, kept as written.
    {"work_email": "jürgen.klöß@beispiel.de"},
    {"personal_email": "ann@münchen.de"},
    {"emails": [{"contact_data_type": "work", "value": "用户@例子.中国"}]},
    {"emails": [{"contact_data_type": "personal", "value": "δοκιμή@παράδειγμα.ελ"}]},
    {"work_email": "иван@пример.рф"},
    {"mobile_phone": "+1 (415) 555-0123"},
    {"phone_numbers": [{"contact_data_type": "work", "value": "0049 30 1234 ext. 5"}]},
]
BAD_BODIES = [
    {"linkedin_url": "not a url"},
    {"linkedin_url": "linkedin.com/in/a"},
    {"linkedin_url": "https://"},
    {"linkedin_url": "https:///in/a"},
    {"linkedin_url": "ftp://linkedin.com/in/a"},
    {"linkedin_url": "https://linkedin.com/in/a b"},
    {"linkedin_url": "https://linkedin.com/in/a\n"},
    {"work_email": "a@"},
    {"work_email": "a@example.TEST"},
    {"work_email": "a@intranet.local"},
    {"work_email": "a..b@example.com"},
    {"work_email": ".a@example.com"},
    {"work_email": "a@-example.com"},
    {"work_email": "a@ab--cd.com"},
    {"work_email": "a@example.c0m"},
    {"work_email": "a@example.com\n"},
    {"work_email": "a" * 65 + "@example.com"},
    {"personal_email": "a@" + "b" * 64 + ".com"},
    {"emails": [{"contact_data_type": "work", "value": "a b@example.com"}]},
    {"emails": [{"contact_data_type": "work", "value": "hank.von diablo.13857579@example.com"}]},
    {"work_email": "jürgen\u200b@beispiel.de"},
    {"work_email": "ü" * 40 + "@" + "ü" * 30 + ".de"},
    {"phone_numbers": [{"contact_data_type": "mobile", "value": "test@ashbyhq.com"}]},
    {"phone_numbers": [{"contact_data_type": "mobile", "value": "911"}]},
    {"phone_numbers": [{"contact_data_type": "mobile", "value": "\u200b"}]},
    {"mobile_phone": "+1 555 0100 @ext"},
    {"work_phone": "n/a"},
    {"custom_fields": [{"attribute_id": "source", "value": "x"}]},
    {"custom_fields": [{"attribute_id": UUID + "\n", "value": "x"}]},
    {"custom_fields": [{"attribute_id": UUID, "value": ""}]},
    {"emails": [{"contact_data_type": "mobile", "value": "a@example.org"}]},
    {"emails": []},
    {"name": ""},
    {"enrich_record": 0},
    {},
    {"unknown": 1},
]


@pytest.mark.parametrize("body, valid", [(body, True) for body in GOOD_BODIES] + [(body, False) for body in BAD_BODIES])
def test_a_stock_validator_without_format_checking_agrees_with_the_function(body, valid):
    stock = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    try:
        validate_update(copy.deepcopy(body))
        accepted = True
    except Unprocessable:
        accepted = False
    assert (accepted, stock.is_valid(body)) == (valid, valid)


def test_overlong_email_is_refused():
    body = {"work_email": "a" * 400 + "@example.org"}
    assert errors_of(body) == [{"path": "$.work_email", "message": "is not a valid email address"}]


def test_json_path_cuts_overlong_names():
    assert json_path(["x" * 100]) == '$["' + "x" * 64 + '..."]'


def _generated_addresses(count: int, seed: str):
    """Addresses near the edges of the email pattern: mostly plausible, with the characters,
    lengths, hyphens, dots and top-level domains where a syntax check can go wrong."""
    rng = random.Random(seed)
    local_chars = string.ascii_letters + string.digits * 2 + "!#$%&'*+/=?^_`{|}~-." + '"(),:;<>[\\] éüßжδ用한\u200b\u0301'
    label_chars = string.ascii_letters + string.digits * 2 + "--_." + "üжδ例한\u0301Ŀ"
    tlds = ["com", "org", "io", "museum", "x", "c0m", "123", "TEST", "local", "onion", "Invalid", "arpa", "xn--p1ai",
            "рф", "中国", "ελ"]
    for _ in range(count):
        local = "".join(rng.choice(local_chars if rng.random() < 0.3 else string.ascii_lowercase)
                        for _ in range(rng.choice([1, 2, 6, 30, 64, 65])))
        labels = ["".join(rng.choice(label_chars if rng.random() < 0.3 else string.ascii_lowercase)
                          for _ in range(rng.choice([1, 2, 4, 12, 63, 64]))) for _ in range(rng.randint(1, 3))]
        yield f"{local}@{'.'.join(labels)}.{rng.choice(tlds)}"


def test_the_email_pattern_accepts_nothing_email_validator_refuses():
    """email-validator is the oracle: the schema's pattern (the function's check, portable to any
    validator) may be stricter than it, never looser."""
    from email_validator import EmailNotValidError, validate_email

    pattern = re.compile(json.loads(SCHEMA_PATH.read_text())["$defs"]["email"]["pattern"])
    accepted = [address for address in _generated_addresses(8000, "email-oracle") if pattern.search(address)]
    looser = []
    for address in accepted:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError:
            looser.append(address)
    assert looser == []
    assert len(accepted) > 500  # the corpus reaches the pattern's accepting side, not only its refusals


# ---- the validator, built at start ----------------------------------------------------------

from stardex_webhook import validation  # noqa: E402


def test_an_update_schema_that_cannot_be_read_stops_the_start(tmp_path, monkeypatch):
    from stardex_webhook.errors import ConfigurationError

    broken = tmp_path / "person_update.schema.json"
    broken.write_text('{"type": "object",')
    monkeypatch.setattr(validation, "PERSON_UPDATE_SCHEMA_PATH", str(broken))
    validation._validator.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=f"schema file {broken}: cannot be read"):
            validation.build_validator()
    finally:
        validation._validator.cache_clear()


# ---- values that fail validation are left out (docs/contract.md, "Values that fail validation") ------

from stardex_webhook.records import MappedUpdate, PersonRef  # noqa: E402
from stardex_webhook.validation import checked  # noqa: E402


def mapped_update(update: dict, person_id=None, emails=None, linkedin_url=None) -> MappedUpdate:
    emails = emails if emails is not None else [entry["value"] for entry in update.get("emails", [])]
    return MappedUpdate(update=update, person=PersonRef(person_id, emails, linkedin_url), create=False)


def test_a_bad_value_is_left_out_with_its_path_and_the_rest_kept():
    update = {"first_name": "Hank", "linkedin_url": "not a url",
              "emails": [{"contact_data_type": "personal", "value": "hank.von diablo@example.com"},
                         {"contact_data_type": "work", "value": "hank@example.com"}]}
    result = checked(mapped_update(update))
    assert result.update == {"first_name": "Hank", "emails": [{"contact_data_type": "work", "value": "hank@example.com"}]}
    assert result.skipped == ({"path": "$.emails[0].value", "reason": "is not a valid email address"},
                              {"path": "$.linkedin_url", "reason": "is not a valid http(s) URL with a host"})
    assert result.person.emails == ["hank@example.com"] and result.person.linkedin_url is None
    assert update["linkedin_url"] == "not a url", "the mapped update is not changed in place"


def test_a_list_whose_every_entry_is_bad_is_left_out_whole():
    update = {"current_job_title": "CTO", "phone_numbers": [{"contact_data_type": "mobile", "value": "911"}]}
    result = checked(mapped_update(update, person_id="p-1"))
    assert result.update == {"current_job_title": "CTO"}
    assert [item["path"] for item in result.skipped] == ["$.phone_numbers[0].value"]


def test_nothing_valid_left_is_422_listing_every_error():
    with pytest.raises(Unprocessable) as refused:
        checked(mapped_update({"linkedin_url": "ftp://x"}, person_id="p-1"))
    assert refused.value.reason == "schema_invalid"
    assert refused.value.extra["errors"] == [{"path": "$", "message": "is empty: an update needs at least one field"},
                                             {"path": "$.linkedin_url", "message": "is not a valid http(s) URL with a host"}]
    assert refused.value.status_code == 422 and "(2 errors)" in refused.value.message, "the answer counts them"


def test_every_value_that_would_find_the_person_invalid_is_422_but_an_id_still_finds_them():
    update = {"first_name": "Hank", "emails": [{"contact_data_type": "personal", "value": "a b@example.com"}]}
    with pytest.raises(Unprocessable) as refused:
        checked(mapped_update(update))
    assert refused.value.reason == "person_keys_invalid"
    assert checked(mapped_update(update, person_id="p-1")).update == {"first_name": "Hank"}


def test_a_search_email_read_beside_the_update_is_judged_too():
    result = checked(mapped_update({"first_name": "Ann"}, emails=["not an address", "ann@example.com"]))
    assert result.person.emails == ["ann@example.com"] and result.skipped == ()


def test_a_field_the_schema_does_not_know_is_the_mapping_s_fault_not_a_value_to_skip():
    with pytest.raises(Unprocessable) as refused:
        checked(mapped_update({"first_name": "Ann", "nickname": "A"}, person_id="p-1"))
    assert refused.value.extra["errors"] == [{"path": "$.nickname", "message": "is not an allowed property"}]
