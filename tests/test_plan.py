"""``python -m stardex_webhook.plan``: the diff as terraform prints one, the calls an apply would
make, exit codes like ``terraform plan -detailed-exitcode``, and never a write reaching Stardex.

The plan runs in-process (``plan.main``) with the function's settings from the environment,
against the loopback fake Stardex; ``--dead-letter`` reads a letter from fake-gcs-server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import time

import pytest
import requests

from stardex_webhook.fake_stardex import SAMPLE_PEOPLE, FakeStardex
from stardex_webhook.plan import NEW_CANDIDATE, READ_ONLY, diff_document, main
from stardex_webhook.policy import FILL_KEEPS, STORED, plan_update
from stardex_webhook.send_sample import SAMPLES_DIR
from stardex_webhook.sources import SOURCES
from tests.conftest import GENERIC_KEY, GREENHOUSE_KEY, ROOT, STARDEX_KEY, signed

ADA = "0b7c5e2a-9d41-4f6b-8a3e-2c1d7f9e4b60"
WRITES = {("PATCH",), ("POST", "/v1/persons"), ("POST", "/v1/person-activities")}


@pytest.fixture(scope="module")
def fake():
    with FakeStardex(api_key=STARDEX_KEY) as stardex:
        yield stardex


@pytest.fixture
def stardex(fake, base_env):
    """The fake Stardex, empty, with the function's settings pointing at it."""
    fake.reset()
    base_env.setenv("STARDEX_API_BASE", fake.base_url)
    yield fake
    assert only_reads(fake), "a plan sent a write to Stardex"
    fake.reset()


def only_reads(fake: FakeStardex) -> bool:
    return all(request.method == "GET" or (request.method, request.path) == ("POST", "/v1/persons/search")
               for request in fake.requests)


def add_ada(fake: FakeStardex, **extra) -> str:
    return fake.add_person(id=ADA, name="Ada Lovelace", emails=[{"contact_data_type": "personal", "value": "ada@example.com"}],
                           phones=["+442079460958"], current_job_title="Analyst", **extra)


ADA_UPDATE = {
    "type": "candidate.updated", "email": "ada@example.com", "name": "Ada Lovelace", "current_job_title": "Engineer",
    "company_name": "Analytical Engines",
    "emails": [{"contact_data_type": "work", "value": "ada@engines.example"},
               {"contact_data_type": "personal", "value": "ADA@example.com"}],
    "phone_numbers": [{"contact_data_type": "mobile", "value": "+44 20 7946 0958"}],
}


def standard_webhook(body: dict, message_id: str = "msg_plan_1", key: str = GENERIC_KEY,
                     timestamp: int | None = None) -> tuple[bytes, list[str]]:
    """The body and --header arguments, signed the Standard Webhooks way, computed here."""
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    secret = base64.b64decode(key.removeprefix("whsec_"))
    digest = hmac.new(secret, f"{message_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    headers = {"webhook-id": message_id, "webhook-timestamp": stamp,
               "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    return raw, [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]


def run(tmp_path, source: str, raw: bytes, *args: str) -> tuple[int, str]:
    body = tmp_path / "body.json"
    body.write_bytes(raw)
    out = io.StringIO()
    code = main([source, str(body), *args], out=out)
    return code, out.getvalue()


def override(tmp_path, source: str, **changes) -> str:
    """A MAPPINGS_DIR with the built-in mapping of ``source`` changed."""
    folder = tmp_path / "mappings"
    folder.mkdir(exist_ok=True)
    document = json.loads((ROOT / "mappings" / f"{source}.json").read_text())
    document.pop("$schema", None)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    (folder / f"{source}.json").write_text(json.dumps(document))
    return str(folder)


# ---- the diff, per write policy and for contact merges ----------------------------------------

OVERWRITE_TEXT = f"""\
{READ_ONLY}
source: generic
signature: checked
event: candidate.updated, delivery msg_plan_1: the mapping acts on it
update (write policy overwrite): valid
  name: "Ada Lovelace"
  current_job_title: "Engineer"
  company_name: "Analytical Engines"
  emails: [{{"contact_data_type": "work", "value": "ada@engines.example"}}, {{"contact_data_type": "personal", "value": "ada@example.com"}}]
  phone_numbers: [{{"contact_data_type": "mobile", "value": "+442079460958"}}]
person: {ADA} (Ada Lovelace), found by search: email ada@example.com

  ~ person {ADA} (Ada Lovelace) {{
      = name              = "Ada Lovelace"  # same value
      ~ current_job_title = "Analyst" -> "Engineer"
      + company_name      = "Analytical Engines"
      + emails            = [
          = personal "ada@example.com"  # stored
          + work "ada@engines.example"
        ]  # 1 of the update's entries already stored
      = phone_numbers     = [
          = mobile "+442079460958"  # stored
        ]  # same value; 1 of the update's entries already stored
    }}

Plan: 2 to add, 1 to change, 2 kept.

Stardex calls an apply would make, in order:
  1. POST /v1/persons/search {{"email": "ada@example.com", "limit": 2}}: read, made by this plan (1 found)
  2. PATCH /v1/persons/{ADA} (fields: company_name, current_job_title, emails): write, not made
"""

FILL_TEXT = OVERWRITE_TEXT.replace("write policy overwrite", "write policy fill").replace(
    '      ~ current_job_title = "Analyst" -> "Engineer"\n',
    '      = current_job_title = "Analyst"  # fill: the person already has a value (not sent: "Engineer")\n',
).replace("Plan: 2 to add, 1 to change, 2 kept.", "Plan: 2 to add, 0 to change, 3 kept.").replace(
    "(fields: company_name, current_job_title, emails)", "(fields: company_name, emails)")


def _entries(*entries):
    return [{"action": action, "symbol": {"add": "+", "keep": "="}[action], "contact_data_type": kind, "value": value,
             "reason": reason} for action, kind, value, reason in entries]


def expected_diff(policy: str) -> dict:
    title = ({"field": "current_job_title", "action": "change", "symbol": "~", "before": "Analyst", "after": "Engineer",
              "reason": None} if policy == "overwrite" else
             {"field": "current_job_title", "action": "keep", "symbol": "=", "before": "Analyst", "after": "Engineer",
              "reason": "fill: the person already has a value"})
    stored_email = {"contact_data_type": "personal", "value": "ada@example.com"}
    new_email = {"contact_data_type": "work", "value": "ada@engines.example"}
    stored_phone = {"contact_data_type": "mobile", "value": "+442079460958"}
    body = {"company_name": "Analytical Engines", "emails": [stored_email, new_email]}
    if policy == "overwrite":
        body = {"current_job_title": "Engineer", **body}
    return {
        "write_policy": policy,
        "body": body,
        "unknown": [],
        "fields": [
            {"field": "name", "action": "keep", "symbol": "=", "before": "Ada Lovelace", "after": "Ada Lovelace",
             "reason": "same value"},
            title,
            {"field": "company_name", "action": "add", "symbol": "+", "before": None, "after": "Analytical Engines",
             "reason": None},
            {"field": "emails", "action": "add", "symbol": "+", "before": [stored_email],
             "after": [stored_email, new_email], "reason": None,
             "entries": _entries(("keep", "personal", "ada@example.com", "stored"),
                                 ("add", "work", "ada@engines.example", None),
                                 ("keep", "personal", "ada@example.com", "same value"))},
            {"field": "phone_numbers", "action": "keep", "symbol": "=", "before": [stored_phone],
             "after": [stored_phone], "reason": "same value",
             "entries": _entries(("keep", "mobile", "+442079460958", "stored"),
                                 ("keep", "mobile", "+442079460958", "same value"))},
        ],
    }


@pytest.mark.parametrize("policy, text", [("overwrite", OVERWRITE_TEXT), ("fill", FILL_TEXT)])
def test_the_diff_of_each_write_policy_with_its_contact_merge(stardex, tmp_path, base_env, policy, text):
    add_ada(stardex)
    if policy == "fill":
        base_env.setenv("MAPPINGS_DIR", override(tmp_path, "generic", write_policy="fill"))
    raw, headers = standard_webhook(ADA_UPDATE)
    code, out = run(tmp_path, "generic", raw, *headers)
    assert (code, out) == (2, text)


@pytest.mark.parametrize("policy", ["overwrite", "fill"])
def test_the_json_plan_is_the_same_plan_as_one_document(stardex, tmp_path, base_env, policy):
    add_ada(stardex)
    if policy == "fill":
        base_env.setenv("MAPPINGS_DIR", override(tmp_path, "generic", write_policy="fill"))
    raw, headers = standard_webhook(ADA_UPDATE)
    code, out = run(tmp_path, "generic", raw, *headers, "--json")
    stored = requests.post(f"{stardex.base_url}/persons/search", json={"email": "ada@example.com", "limit": 2},
                           headers={"Authorization": f"Bearer {STARDEX_KEY}"}, timeout=5).json()["data"][0]
    diff = expected_diff(policy)
    assert code == 2
    assert json.loads(out) == {
        "plan": READ_ONLY, "read_only": True, "source": "generic", "signature": "checked", "dead_letter": None,
        "handshake": None,
        "event": {"type": "candidate.updated", "delivery_id": "msg_plan_1", "acted_on": True, "ignored": None},
        "follow_up": None, "incomplete": None,
        "update": {"name": "Ada Lovelace", "current_job_title": "Engineer", "company_name": "Analytical Engines",
                   "emails": [{"contact_data_type": "work", "value": "ada@engines.example"},
                              {"contact_data_type": "personal", "value": "ada@example.com"}],
                   "phone_numbers": [{"contact_data_type": "mobile", "value": "+442079460958"}]},
        "write_policy": policy, "schema_errors": [], "skipped": [], "field_sources": {},
        "person": {"resolution": "search", "id": ADA, "name": "Ada Lovelace",
                   "found_by": {"email": "ada@example.com", "found": "1 found"}, "stored": stored},
        "diff": diff, "note": None,
        "calls": [
            {"method": "POST", "path": "/v1/persons/search", "body": {"email": "ada@example.com", "limit": 2},
             "write": False, "made": True, "answer": "1 found"},
            {"method": "PATCH", "path": f"/v1/persons/{ADA}", "body": diff["body"], "write": True, "made": False,
             "answer": "not made"},
        ],
        "custom_fields": [], "stage": None, "extra_reads": [], "changes": True, "outcome": "changes", "error": None, "exit_code": 2,
    }


def test_nothing_to_change_exits_0(stardex, tmp_path):
    add_ada(stardex, current_company_name="Analytical Engines")
    same = {key: value for key, value in ADA_UPDATE.items() if key not in ("current_job_title", "emails")}
    raw, headers = standard_webhook(same)
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 0
    assert "No changes: the person already holds everything this update would write." in out
    assert "      = company_name  = \"Analytical Engines\"  # same value\n" in out
    assert "PATCH" not in out, "an apply sends nothing: no_change"


def test_an_overwrite_by_id_is_planned_against_a_read_the_apply_does_not_make(stardex, tmp_path):
    add_ada(stardex)
    raw, headers = standard_webhook({"stardex_person_id": ADA, "current_job_title": "Analyst", "company_name": "AE"})
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 2
    assert f"person: {ADA} (Ada Lovelace), by id, from the payload\n" in out
    assert '      = current_job_title = "Analyst"  # same value\n      + company_name      = "AE"\n' in out
    assert out.endswith(
        "Stardex calls an apply would make, in order:\n"
        f"  1. PATCH /v1/persons/{ADA} (fields: company_name, current_job_title): write, not made\n"
        f"  (and for this diff only: GET /v1/persons/{ADA}: the person; an apply under overwrite sends the PATCH "
        "without reading first)\n")
    assert [(request.method, request.path) for request in stardex.requests] == [("GET", f"/v1/persons/{ADA}")]


def test_a_person_that_would_be_created_is_planned_and_not_created(stardex, tmp_path, base_env):
    base_env.setenv("MAPPINGS_DIR", override(tmp_path, "generic", person={"create": True}))
    raw, headers = standard_webhook({"name": "Grace Hopper", "email": "grace@navy.example",
                                     "linkedin_url": "https://www.linkedin.com/in/grace-hopper-example",
                                     "linkedin_headline": "Rear admiral"})
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 2
    assert ("person: would create (no Stardex person matches: email grace@navy.example, linkedin_url "
            "https://www.linkedin.com/in/grace-hopper-example; the mapping creates one)\n\n"
            "  + person (new person) {\n"
            '      + linkedin_url      = "https://www.linkedin.com/in/grace-hopper-example"\n'
            '      + name              = "Grace Hopper"\n'
            '      + linkedin_headline = "Rear admiral"\n'
            "    }\n\n"
            "Plan: 1 person to create: 3 to add, 0 to change, 0 kept.\n") in out
    assert out.endswith(
        "  3. POST /v1/persons (fields: linkedin_url, name): write, not made\n"
        "  4. PATCH /v1/persons/(new person) (fields: linkedin_headline): write, not made\n")
    assert stardex.requests and only_reads(stardex)
    assert requests.post(f"{stardex.base_url}/persons/search", json={"email": "grace@navy.example"}, timeout=5,
                         headers={"Authorization": f"Bearer {STARDEX_KEY}"}).json()["data"] == []


def test_a_form_note_is_shown_and_then_found_already_written(stardex, tmp_path, base_env):
    person = stardex.add_person(**{**SAMPLE_PEOPLE[0]})
    base_env.setenv("MAPPINGS_DIR", override(tmp_path, "typeform", note={"activity_type": "secondary_note"}))
    raw, headers = signed("typeform", (SAMPLES_DIR / "typeform.json").read_bytes())
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, out = run(tmp_path, "typeform", raw, *args, "--json")
    planned = json.loads(out)
    assert code == 2 and planned["note"]["action"] == "write"
    text = planned["note"]["text"]
    assert text.splitlines()[-1].startswith("stardex-webhook delivery: ")
    assert planned["calls"][-1] == {"method": "POST", "path": "/v1/person-activities", "write": True, "made": False,
                                    "answer": "not made", "body": {"person_id": person, "activity_type": "secondary_note",
                                                                   "activity_content": text}}
    requests.post(f"{stardex.base_url}/person-activities", timeout=5, headers={"Authorization": f"Bearer {STARDEX_KEY}"},
                  json={"person_id": person, "activity_type": "secondary_note", "activity_content": text})
    stardex.requests.clear()  # the test's own write, above
    code, out = run(tmp_path, "typeform", raw, *args)
    assert "  = note (secondary_note): already written\n" in out
    assert "POST /v1/person-activities" not in out


# ---- what it does not act on, or refuses ---------------------------------------------------------

def test_an_event_the_mapping_does_not_act_on_is_shown_ignored_and_calls_nothing(stardex, tmp_path):
    body = json.loads((SAMPLES_DIR / "greenhouse.json").read_text())
    body["action"] = "prospect_created"
    raw = json.dumps(body).encode()
    signature = hmac.new(GREENHOUSE_KEY.encode(), raw, hashlib.sha256).hexdigest()
    code, out = run(tmp_path, "greenhouse", raw, "--header", f"Signature: sha256 {signature}")
    assert (code, out) == (0, f"{READ_ONLY}\nsource: greenhouse\nsignature: checked\n"
                              "event: prospect_created: ignored (event_not_mapped: the mapping does not act on this "
                              "event); an apply answers 200 ignored and calls nothing\n")
    assert stardex.requests == []


def test_a_handshake_is_answered_before_anything_else(stardex, tmp_path):
    code, out = run(tmp_path, "recruitee", json.dumps({"test": True}).encode())
    assert (code, out) == (0, f"{READ_ONLY}\nsource: recruitee\nsignature: not checked: the sender's handshake comes "
                              'before it\nhandshake: the function answers 200 {"status": "ignored", "reason": "test"} '
                              "before any mapping\n")
    assert stardex.requests == []


def test_a_body_over_the_limit_is_refused_as_the_function_refuses_it(stardex, tmp_path, base_env):
    base_env.setenv("MAX_BODY_BYTES", "100")
    code, out = run(tmp_path, "generic", json.dumps(ADA_UPDATE).encode(), "--unsigned")
    assert code == 1
    assert out == (f"{READ_ONLY}\nsource: generic\nsignature: skipped (--unsigned)\n\n"
                   "error: 413 too_large body_too_large: the body is over the 100-byte limit\n")


def test_schema_errors_are_all_listed_with_their_paths(stardex, tmp_path):
    raw, headers = standard_webhook({"email": "ada@example.com", "linkedin_url": "ftp://example.org/in/ada",
                                     "emails": [{"contact_data_type": "work", "value": "ada@engines.test"}],
                                     "enrich_record": "yes"})
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 1
    assert ("update (write policy overwrite): 4 schema error(s)\n"
            '  linkedin_url: "ftp://example.org/in/ada"\n'
            '  enrich_record: "yes"\n'
            '  emails: [{"contact_data_type": "work", "value": "ada@engines.test"}]\n'
            "  ! $: is empty: an update needs at least one field\n"
            "  ! $.emails[0].value: is not a valid email address\n"
            "  ! $.enrich_record: must be a boolean (true or false)\n"
            "  ! $.linkedin_url: is not a valid http(s) URL with a host\n\n"
            "error: 422 unprocessable schema_invalid: the update does not match the Stardex person schema (4 errors)\n"
            ) in out
    assert stardex.requests == [], "an update with no valid value left reaches no Stardex call"


def test_a_value_that_fails_the_schema_is_a_skipped_row_and_the_rest_is_planned(stardex, tmp_path):
    add_ada(stardex)
    raw, headers = standard_webhook({**ADA_UPDATE, "linkedin_url": "ftp://example.org/in/ada",
                                     "mobile_phone": "911"})
    code, out = run(tmp_path, "generic", raw, *headers, "--json")
    plan = json.loads(out)
    assert code == 2 and plan["outcome"] == "changes"
    assert plan["skipped"] == [{"path": "$.linkedin_url", "reason": "is not a valid http(s) URL with a host"},
                               {"path": "$.mobile_phone", "reason": "is not a phone number (it needs at least 4 digits and no @)"}]
    patch = next(call for call in plan["calls"] if call["method"] == "PATCH")
    assert "linkedin_url" not in patch["body"] and patch["body"]["current_job_title"] == "Engineer"
    code, text = run(tmp_path, "generic", raw, *headers)
    assert "valid once 2 value(s) are left out" in text
    assert "  skipped $.linkedin_url: is not a valid http(s) URL with a host (left out; the rest is written)\n" in text


def test_unsigned_skips_the_check_that_a_bad_signature_fails(stardex, tmp_path):
    add_ada(stardex)
    raw, headers = standard_webhook(ADA_UPDATE, key="whsec_" + base64.b64encode(b"another key").decode())
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 1
    assert "signature: refused\n" in out and "error: 401 unauthorized bad_signature" in out
    assert stardex.requests == []
    code, out = run(tmp_path, "generic", raw, *headers, "--unsigned")
    assert code == 2 and "signature: skipped (--unsigned)\n" in out


@pytest.mark.parametrize("case, reason", [
    ("not json", "error: 400 bad_request invalid_json"),
    ("no person", "error: 422 unprocessable person_not_found"),
    ("ambiguous", "error: 422 unprocessable ambiguous_person"),
    ("stardex down", "error: 503 retry_later stardex_unavailable"),
    ("wrong key", "error: 503 retry_later stardex_auth_failed"),
    ("stardex 400", "error: 422 unprocessable stardex_rejected"),
    ("unknown id", "error: 422 unprocessable person_not_found"),
])
def test_an_error_exits_1_and_says_why(stardex, tmp_path, base_env, case, reason):
    add_ada(stardex)
    body = dict(ADA_UPDATE)
    if case == "no person":
        body["email"] = "nobody@example.org"
        body.pop("emails")
    elif case == "ambiguous":
        stardex.add_person(name="Ada Twin", emails=["ada@example.com"])
    elif case == "stardex down":
        stardex.fail_next(500, times=20)
        base_env.setenv("STARDEX_DEADLINE_SECONDS", "1")
    elif case == "wrong key":
        base_env.setenv("STARDEX_API_KEY", "not-the-key")
    elif case == "stardex 400":
        stardex.fail_next(400)
    elif case == "unknown id":
        body = {"stardex_person_id": "no-such-person", "current_job_title": "CTO"}
    raw, headers = standard_webhook(body)
    code, out = run(tmp_path, "generic", b"{not json" if case == "not json" else raw, *headers,
                    *(["--unsigned"] if case == "not json" else []))
    assert code == 1
    assert reason in out
    assert out.startswith(READ_ONLY + "\n")


@pytest.mark.parametrize("args, message", [
    ([], "give SOURCE BODY_FILE"),
    (["generic"], "give SOURCE BODY_FILE"),
    (["generic", "missing.json"], "missing.json"),
    (["generic", "{body}", "--header", "no colon here"], "--header line 1: expected 'Name: value'"),
    (["--dead-letter", "x", "generic"], "--dead-letter NAME takes no SOURCE"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_input_exits_1_not_2(stardex, tmp_path, capsys, args, message):
    body = tmp_path / "b.json"
    body.write_text("{}")
    try:
        code = main([part.replace("{body}", str(body)) for part in args])
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    assert code == 1
    assert message in capsys.readouterr().err


def test_an_unknown_source_is_an_error(stardex, tmp_path):
    code, out = run(tmp_path, "greenhose", b"{}", "--unsigned")
    assert code == 1 and "error: 404 not_found unknown_source" in out


# ---- the sandbox -------------------------------------------------------------------------------

# Senders whose events need their own API (Ashby's read is optional: without the key it writes what
# the webhook carries).
FOLLOW_UP_SENDERS = sorted(name for name, source in SOURCES.items() if source.needs_api_key and not source.api_key_optional)


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_the_sandbox_people_are_those_each_shipped_sample_finds(stardex, make_client, source):
    """``send_sample <source>`` against the sandbox ends ``updated`` (a sender that needs its own
    API for the person is not reached here: its sample finds nobody without it)."""
    for person in SAMPLE_PEOPLE:
        stardex.add_person(**person)
    raw, headers = signed(source, (SAMPLES_DIR / f"{source}.json").read_bytes())
    answer = make_client().post(f"/{source}", data=raw, headers=headers, base_url="http://127.0.0.1:8080")
    if source in FOLLOW_UP_SENDERS and answer.get_json().get("reason") == "sender_api_key_missing":
        return
    assert answer.get_json()["status"] == "updated", answer.get_json()
    stardex.requests.clear()  # the apply's own writes


def test_the_follow_up_senders_are_the_ones_the_sandbox_cannot_serve():
    assert FOLLOW_UP_SENDERS == ["lever", "smartrecruiters", "teamtailor"]


# ---- no write, whatever the plan -----------------------------------------------------------------

@pytest.mark.parametrize("source", sorted(SOURCES))
def test_no_plan_of_any_shipped_sample_writes(stardex, tmp_path, source):
    for person in SAMPLE_PEOPLE:
        stardex.add_person(**person)
    raw, headers = signed(source, (SAMPLES_DIR / f"{source}.json").read_bytes())
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, out = run(tmp_path, source, raw, *args, "--url", f"http://127.0.0.1:8080/{source}", "--json")
    planned = json.loads(out)
    assert planned["read_only"] is True
    if source in FOLLOW_UP_SENDERS and code == 1:
        assert planned["error"]["reason"] == "sender_api_key_missing"
        return
    assert code == 2, planned["error"]
    assert any(call["write"] and not call["made"] for call in planned["calls"])
    assert only_reads(stardex) and stardex.requests


# ---- --dead-letter -------------------------------------------------------------------------------

BUCKET = "plan-dead-letters"


@pytest.fixture(scope="module")
def bucket():
    from tests.fakes.emulators import storage_emulator

    with storage_emulator(BUCKET):
        yield BUCKET


def test_a_dead_letter_is_planned_from_the_bucket_and_kept(stardex, bucket, base_env, capsys):
    from stardex_webhook.errors import Unprocessable
    from stardex_webhook.records import Delivery, Headers
    from stardex_webhook.records import Received
    from stardex_webhook.state import StateStore, dead_letter_document

    raw, headers = signed("greenhouse", (SAMPLES_DIR / "greenhouse.json").read_bytes())
    delivery = Delivery(Headers(headers.items()), raw, time.time())
    event = SOURCES["greenhouse"].parse(delivery)
    store = StateStore(bucket)
    name = store.put_dead_letter(dead_letter_document(Received.of(delivery, event),
                                                      Unprocessable("person_not_found", "no match"), attempts=3))
    base_env.setenv("STATE_BUCKET", bucket)
    marta = stardex.add_person(**SAMPLE_PEOPLE[1])  # the person the letter could not find, now there

    out = io.StringIO()
    code = main(["--dead-letter", name.removeprefix("dead-letters/")], out=out)
    text = out.getvalue()
    assert code == 2, text
    assert text.startswith(f"{READ_ONLY}\nsource: greenhouse\n"
                           "signature: not checked: a dead letter was checked when it was received\n"
                           f"dead letter: {name} (failed 422 person_not_found, 3 attempt(s))\n"
                           f"event: hire_candidate, delivery {event.delivery_id}: the mapping acts on it\n")
    assert f"person: {marta} (Marta Quintal), found by search: email marta.quintal@example.org\n" in text
    assert store.dead_letters() == [name], "a plan keeps the letter"

    assert main(["--dead-letter", "greenhouse/20260101T000000Z-missing.json"]) == 1
    assert "no dead letter greenhouse/20260101T000000Z-missing.json" in capsys.readouterr().err


def test_a_dead_letter_needs_the_state_bucket(stardex, capsys):
    assert main(["--dead-letter", "greenhouse/x.json"]) == 1
    assert "--dead-letter needs STATE_BUCKET" in capsys.readouterr().err


# ---- --check-mappings ----------------------------------------------------------------------------

def check(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--check-mappings", *args], out=out)
    return code, out.getvalue()


def test_the_mapping_check_does_not_warn_of_a_stardex_key_it_does_not_need(base_env, capsys):
    base_env.delenv("STARDEX_API_KEY", raising=False)
    base_env.delenv("DRY_RUN", raising=False)
    assert check()[0] == 0
    assert "stardex_api_key_missing" not in capsys.readouterr().err


def test_every_shipped_mapping_fills_fields_from_its_sample(base_env):
    code, out = check()
    assert code == 0, out
    lines = out.splitlines()
    assert lines[-1] == (f"check-mappings: {len(SOURCES)} mappings, {len(SOURCES)} samples: each fills fields and passes "
                         "the schema, and every path that is not optional fills something")
    for source in SOURCES:
        header = lines.index(f"{source} (mappings/{source}.json)")
        assert lines[header + 1].startswith(f"  ok   {source}.json"), lines[header + 1]
    assert ("  ok   greenhouse.json: fills first_name, last_name, name, company_name, current_job_title, linkedin_url, "
            "address, emails, phone_numbers") in lines
    assert ("  ok   lever.json + lever.api.json: fills first_name, last_name, name, linkedin_url, address, emails, "
            "phone_numbers") in lines, "a follow-up sender is mapped on its shipped API answer"


@pytest.mark.parametrize("changes, flag", [
    ({"root": "payload.applicant"}, "fills nothing from this sample"),
    ({"fields": {"linkedin_url": {"path": "first_name"}}}, "schema: $.linkedin_url is not a valid http(s) URL with a host"),
    ({"events": ["update_candidate"]}, "fills nothing: event 'hire_candidate' is ignored (event_not_mapped)"),
    ({"fields": {"emails": {"path": "emails", "default_type": "personal"}, "linkedin_url": {"path": "linkedin"}}},
     "names no Stardex person id, email or LinkedIn URL (an apply answers 422 no_person_key)"),
])
def test_a_broken_override_is_flagged_and_fails(base_env, tmp_path, changes, flag):
    folder = override(tmp_path, "greenhouse", **changes)
    code, out = check(folder)
    assert code == 1
    assert f"greenhouse ({folder}/greenhouse.json)\n  FLAG greenhouse.json: " in out
    assert flag in out.split(f"greenhouse ({folder}/greenhouse.json)\n")[1].splitlines()[0]
    assert out.splitlines()[-1].startswith(f"check-mappings: 1 of {len(SOURCES)} sample(s) flagged, ")


def test_a_path_no_sample_fills_fails_the_check_naming_the_field(base_env, tmp_path):
    """A typo (answers.curent_role.text) starts fine and each sample is fine on its own, but the
    field is never filled: the check fails and says how to mark a path the sender sends only sometimes."""
    folder = override(tmp_path, "typeform", fields={"current_job_title": {"path": "answers.curent_role.text"}})
    code, out = check(folder)
    assert code == 1, out
    section = out.split(f"typeform ({folder}/typeform.json)\n")[1]
    assert section.splitlines()[0].startswith("  ok   typeform.json: "), "the sample itself is not flagged"
    assert section.splitlines()[1] == (f"  FLAG current_job_title: no sample fills it (a typo in its path?); if the sender "
                                       f'sends it only sometimes, mark it "optional": true in {folder}/typeform.json')
    assert out.splitlines()[-1] == f"check-mappings: 0 of {len(SOURCES)} sample(s) flagged, 1 path(s) that no sample fills"


def test_a_path_marked_optional_may_find_nothing(base_env, tmp_path):
    folder = override(tmp_path, "typeform",
                      fields={"current_job_title": {"path": "answers.curent_role.text", "optional": True}})
    assert check(folder)[0] == 0


def test_a_path_one_sample_fills_is_not_flagged_when_another_lacks_it(base_env, tmp_path):
    """Filled by the user's sample, missing from the shipped one: the path is right."""
    samples = tmp_path / "samples"
    samples.mkdir()
    form = json.loads((SAMPLES_DIR / "typeform.json").read_text())
    form["form_response"]["answers"].append({"type": "text", "text": "Data Engineer",
                                             "field": {"id": "x1", "type": "short_text", "ref": "curent_role"}})
    (samples / "typeform-with-role.json").write_text(json.dumps(form))
    folder = override(tmp_path, "typeform", fields={"current_job_title": {"path": "answers.curent_role.text"}})
    code, out = check(folder, "--samples", str(samples))
    assert code == 0, out


def test_mappings_dir_from_the_environment_is_checked_too(base_env, tmp_path):
    base_env.setenv("MAPPINGS_DIR", override(tmp_path, "greenhouse", root="payload.applicant"))
    assert check()[0] == 1


def test_a_users_samples_are_checked_by_their_names(base_env, tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    form = json.loads((SAMPLES_DIR / "typeform.json").read_text())
    (samples / "typeform-contact.json").write_text(json.dumps(form))
    for answer in form["form_response"]["answers"]:  # the form changed: every question got a new ref
        answer["field"]["ref"] = "q_" + answer["field"]["ref"]
    form["form_response"]["hidden"] = {}
    for number, question in enumerate(form["form_response"]["definition"]["fields"]):
        question["ref"] = "q_" + question["ref"]
        question["title"] = f"Question {number}"  # and titles that say nothing a title match knows
    (samples / "typeform-after-the-change.json").write_text(json.dumps(form))
    form["form_response"]["answers"] = []  # and then every question was removed
    (samples / "typeform-empty.json").write_text(json.dumps(form))
    (samples / "lever-hired.json").write_bytes((SAMPLES_DIR / "lever.json").read_bytes())
    (samples / "greenhose.json").write_text("{}")
    code, out = check("--samples", str(samples))
    assert code == 1
    assert "\n  ok   typeform-contact.json: fills first_name, last_name, name, company_name, linkedin_url, " in out
    assert ("\n  ok   typeform-after-the-change.json: fills linkedin_url, emails, phone_numbers; finds nothing for "
            "first_name, last_name, name, company_name, current_job_title\n") in out, "the answers found by type only"
    assert ("\n  FLAG typeform-empty.json: finds nothing for first_name, last_name, name, company_name, current_job_title, "
            "linkedin_url, emails, phone_numbers; fills nothing from this sample; schema: $ is empty: an update needs at "
            "least one field; names no Stardex person id, email or "
            "LinkedIn URL (an apply answers 422 no_person_key)\n") in out
    assert "  FLAG lever-hired.json: needs lever-hired.api.json: the answer of lever's follow-up read\n" in out
    assert f"FLAG {samples / 'greenhose.json'}: names no source" in out
    assert out.splitlines()[-1] == f"check-mappings: 3 of {len(SOURCES) + 5} sample(s) flagged, 0 path(s) that no sample fills"


def test_a_mapping_that_cannot_load_is_an_error(base_env, tmp_path):
    (tmp_path / "greenhouse.json").write_text("{not json")
    code, out = check(str(tmp_path))
    assert code == 1 and "invalid JSON" in out


# ---- stages and custom fields: planned, never written ----------------------------------------

STAGE_JOB = "7b0c5a52-3f1e-4c8a-9d2b-1e6f0a9c4d11"


def stage_change(tmp_path, base_env, **mapping_changes) -> tuple[bytes, list[str]]:
    """Greenhouse's candidate moved to Onsite, with a mapping that moves the Stardex candidate too
    (and ``mapping_changes`` laid over it); the body and the --header arguments."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    document = json.loads((ROOT / "mappings" / "greenhouse.json").read_text())
    document.pop("$schema", None)
    document["stages"] = {"events": ["candidate_stage_change"], "job": "payload.application.jobs[0].id",
                          "jobs": {"300112": STAGE_JOB}, "stage": "payload.application.current_stage.name",
                          "table": {"Onsite": "Interview"}}
    document.update(mapping_changes)
    (folder / "greenhouse.json").write_text(json.dumps(document))
    base_env.setenv("MAPPINGS_DIR", str(folder))
    body = json.loads((ROOT / "tests" / "fixtures" / "greenhouse_hire_candidate.json").read_text())
    body["action"] = "candidate_stage_change"
    body["payload"]["application"]["current_stage"] = {"id": 71416, "name": "Onsite"}
    raw, headers = signed("greenhouse", body)
    return raw, [part for item in headers.items() for part in ("--header", f"{item[0]}: {item[1]}")]


def test_a_stage_move_and_custom_fields_are_planned_and_not_made(stardex, tmp_path, base_env):
    """The move and the custom-field definitions read show in the calls; the move is a write, not made."""
    stardex.add_job("Senior Data Engineer", id=STAGE_JOB)
    stardex.add_custom_field("Notice period", "text", id="0c0f0000-0000-4000-8000-000000000001")
    marta = stardex.add_person(name="Marta Quintal", emails=["marta.quintal@example.org"])
    raw, args = stage_change(tmp_path, base_env, custom_fields={"Notice period": {"value": "1 month"}})
    code, out = run(tmp_path, "greenhouse", raw, *args)
    assert code == 2, out
    assert "GET /v1/custom-fields/persons: read, made by this plan" in out
    assert "POST /v1/candidates/update-stage" in out and out.rstrip().splitlines()[-1].endswith("write, not made")
    assert not any(request.path == "/v1/candidates/update-stage" for request in stardex.requests)
    assert stardex.person(marta).get("candidates", []) == []


# ---- a plan counts every write: custom fields and stage moves -----------------------------------

NOTICE = "0c0f0000-0000-4000-8000-000000000002"


def test_a_custom_field_only_change_is_a_change(stardex, tmp_path, base_env):
    """The person holds every core field the update writes; only a named custom field differs: the
    apply would PATCH it, so the plan says so in its diff, its summary, --json and its exit code."""
    stardex.add_custom_field("Notice period", "text", id=NOTICE)
    add_ada(stardex, current_company_name="Analytical Engines")
    base_env.setenv("MAPPINGS_DIR", override(tmp_path, "generic", custom_fields={"Notice period": {"value": "1 month"}}))
    same = {key: value for key, value in ADA_UPDATE.items() if key not in ("current_job_title", "emails")}
    raw, headers = standard_webhook(same)
    code, out = run(tmp_path, "generic", raw, *headers)
    assert code == 2, out
    diff = out.split(" {\n", 1)[1].split("\n    }\n", 1)[0]
    assert '      + custom field "Notice period" = "1 month"' in diff.splitlines(), "inside the person's diff"
    assert "Plan: 1 to add, 0 to change, 3 kept.\n" in out, "counted with the person's fields"
    assert "No changes" not in out
    code, document = run(tmp_path, "generic", raw, *headers, "--json")
    plan = json.loads(document)
    assert (code, plan["changes"], plan["exit_code"]) == (2, True, 2)
    assert plan["custom_fields"] == [{"name": "Notice period", "attribute_id": NOTICE, "value": "1 month",
                                      "before": None, "action": "add"}]
    assert [call["method"] for call in plan["calls"] if call["write"]] == ["PATCH"]


def test_a_stage_only_change_is_a_change(stardex, tmp_path, base_env):
    """Nothing of the person's fields changes; the candidate would move: exit 2, the move named."""
    stardex.add_job("Senior Data Engineer", id=STAGE_JOB)
    stardex.add_person(**{**SAMPLE_PEOPLE[1], "emails": [
        {"contact_data_type": "personal", "value": "marta.quintal@example.org"},
        {"contact_data_type": "work", "value": "mquintal@northwind-example.com"}]}, first_name="Marta")
    fields = json.loads((ROOT / "mappings" / "greenhouse.json").read_text())["fields"]
    raw, args = stage_change(tmp_path, base_env, fields={name: fields[name] for name in ("first_name", "emails")})
    code, out = run(tmp_path, "greenhouse", raw, *args)
    assert code == 2, out
    assert f'  ~ stage on job {STAGE_JOB} -> "Interview"\n' in out
    assert "1 stage move" in out and "No changes" not in out
    code, document = run(tmp_path, "greenhouse", raw, *args, "--json")
    plan = json.loads(document)
    assert (code, plan["changes"]) == (2, True)
    assert plan["stage"]["action"] == "move" and plan["stage"]["body"]["job_id"] == STAGE_JOB


def test_the_plan_shows_which_question_each_field_came_from(stardex, tmp_path):
    """Typeform's own example: its questions have refs no mapping knows; the first name is found by
    the question's title, and the plan names that question."""
    stardex.add_person(name="Laura", emails=["laura@example.com"])
    raw, headers = signed("typeform", (ROOT / "tests" / "corpus" / "typeform" / "example_payload.json").read_bytes())
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, out = run(tmp_path, "typeform", raw, *args, "--json")
    planned = json.loads(out)
    assert planned["update"]["first_name"] == "Laura"
    assert planned["field_sources"] == {"first_name": "What is your first name?"}
    code, text = run(tmp_path, "typeform", raw, *args)
    assert "  first_name: \"Laura\"  (from the question 'What is your first name?')\n" in text


# ---- the default signing key, shared with serve -------------------------------------------------


def test_without_a_signing_key_plan_checks_with_serves_demo_key(stardex, tmp_path, base_env):
    """serve gives a source without a key the local demo key; plan does the same, and says so, so
    that a sample send_sample signs is accepted by both."""
    from stardex_webhook.send_sample import local_signing_key, signed_request

    base_env.delenv("GREENHOUSE_SIGNING_KEY")
    stardex.add_person(name="Marta Quintal", emails=["marta.quintal@example.org"])
    headers, raw = signed_request("greenhouse", (SAMPLES_DIR / "greenhouse.json").read_bytes(),
                                  local_signing_key("greenhouse"))
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, out = run(tmp_path, "greenhouse", raw, *args)
    assert code == 2, out
    assert "signature: checked with the local demo key, as serve uses (GREENHOUSE_SIGNING_KEY is not set" in out
    forged_code, forged = run(tmp_path, "greenhouse", raw, "--header", "Signature: sha256 " + "0" * 64)
    assert forged_code == 1 and "signature: refused with the local demo key" in forged


def test_a_key_that_is_set_wins_over_the_demo_key(stardex, tmp_path):
    from stardex_webhook.send_sample import local_signing_key, signed_request

    headers, raw = signed_request("greenhouse", (SAMPLES_DIR / "greenhouse.json").read_bytes(),
                                  local_signing_key("greenhouse"))
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, out = run(tmp_path, "greenhouse", raw, *args)
    assert code == 1 and "signature: refused\n" in out and "bad_signature" in out


# ---- the sandbox with custom fields and jobs (docs/plan.md, "The sandbox") ------------------------

EXAMPLES = ROOT / "docs" / "examples"


def test_the_example_mapping_is_the_builtin_one_plus_a_custom_field():
    builtin = json.loads((ROOT / "mappings" / "typeform.json").read_text())
    example = json.loads((EXAMPLES / "mappings" / "typeform.json").read_text())
    custom = example.pop("custom_fields")
    assert {key: value for key, value in example.items() if key not in ("$schema", "description")} == \
        {key: value for key, value in builtin.items() if key not in ("$schema", "description")}
    assert list(custom) == ["Source channel"]


def test_the_sandbox_example_plans_a_custom_field_in_the_diff(stardex, tmp_path, base_env):
    from stardex_webhook.fake_stardex import seed

    seed(stardex, json.loads((EXAMPLES / "sandbox.json").read_text()))
    base_env.setenv("MAPPINGS_DIR", str(EXAMPLES / "mappings"))
    code, out = run(tmp_path, "typeform", (SAMPLES_DIR / "typeform.json").read_bytes(), "--unsigned")
    assert code == 2, out
    diff = out.split(" {\n", 1)[1].split("\n    }\n", 1)[0]
    assert '      + custom field "Source channel" = "linkedin"' in diff.splitlines()
    assert "Plan: 3 to add, 0 to change, 5 kept.\n" in out
    emails = diff.split("emails", 1)[1].split("]", 1)[0]
    assert emails.count("chidi.okafor@example.com") == 1, "each email once"


# ---- a sender whose API key is optional (Ashby) -------------------------------------------------


def test_ashby_without_its_key_plans_no_follow_up_read_and_says_what_is_incomplete(stardex, tmp_path, base_env):
    """Without ASHBY_API_KEY the function writes what the webhook carries: the plan names no read
    it would not make, and says what the key would add, as the answer does."""
    base_env.delenv("ASHBY_API_KEY", raising=False)
    raw, headers = signed("ashby", (SAMPLES_DIR / "ashby.json").read_bytes())
    args = [part for name, value in headers.items() for part in ("--header", f"{name}: {value}")]
    code, text = run(tmp_path, "ashby", raw, *args)
    assert "candidate.info" not in text
    assert "follow-up read: none, ASHBY_API_KEY is not set" in text
    code, out = run(tmp_path, "ashby", raw, *args, "--json")
    planned = json.loads(out)
    assert planned["follow_up"] is None and planned["incomplete"].startswith("ASHBY_API_KEY is not set")


# ---- the diff as JSON -------------------------------------------------------------------------

def email(value, kind="personal"):
    return {"contact_data_type": kind, "value": value}


POLICY_PERSON = {"id": "p-1", "name": "Ada Lovelace", "current_company_name": "Analytical Engines",
                 "emails": [email("ada@example.org", "work")], "phones": []}


def test_the_diff_as_plain_json():
    """``plan --json``'s ``diff``: the write plan with each field's and entry's mark."""
    plan = plan_update({"company_name": "Globex", "emails": [email("new@example.org")]}, POLICY_PERSON, "fill")
    assert diff_document(plan) == {
        "write_policy": "fill",
        "body": {"emails": [email("ada@example.org", "work"), email("new@example.org")]},
        "unknown": [],
        "fields": [
            {"field": "company_name", "action": "keep", "symbol": "=", "before": "Analytical Engines",
             "after": "Globex", "reason": FILL_KEEPS},
            {"field": "emails", "action": "add", "symbol": "+", "before": [email("ada@example.org", "work")],
             "after": [email("ada@example.org", "work"), email("new@example.org")], "reason": None,
             "entries": [{"action": "keep", "symbol": "=", "contact_data_type": "work", "value": "ada@example.org",
                          "reason": STORED},
                         {"action": "add", "symbol": "+", "contact_data_type": "personal", "value": "new@example.org",
                          "reason": None}]},
        ],
    }


# ---- a plan never lies: what it plans is what an apply writes ------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

SAM = "6f1c2a9e-2b7d-4c1e-9a55-0d3b7e9c1a42"  # the generic sample's person
SKILLS = "0c0f0000-0000-4000-8000-000000000003"
SAM_EMAILS = ["sam.lee@initech-example.com", "sam@example.com", "SAM@example.com"]
SAM_PHONES = ["+44 7700 900123", "+447700900123", "+44 7700 900456"]
maybe = lambda values: st.one_of(st.none(), st.sampled_from(values))  # noqa: E731
contacts = lambda values, kinds: st.lists(  # noqa: E731
    st.tuples(st.sampled_from(kinds), st.sampled_from(values)).map(lambda item: {"contact_data_type": item[0],
                                                                               "value": item[1]}), max_size=3)
PEOPLE = st.fixed_dictionaries({
    "name": maybe(["Sam Lee", "Samuel Lee"]), "current_job_title": maybe(["Staff Engineer", "Engineer"]),
    "company_name": maybe(["Initech", "Initrode"]),
    "linkedin_url": maybe(["https://www.linkedin.com/in/sam-lee", "https://www.linkedin.com/in/other"]),
    "emails": contacts(SAM_EMAILS[:2], ["work", "personal"]), "phones": contacts(SAM_PHONES, ["mobile", "work"]),
    "notice": maybe(["1 month", "3 months"]), "skills": st.lists(st.sampled_from(["SQL", "Go"]), unique=True),
    "stage": st.one_of(st.none(), st.just("none"), st.sampled_from(["Sourced", "Screen", "Interview"]))})
UPDATES = st.fixed_dictionaries({
    "by": st.sampled_from(["id", "email"]), "name": maybe(["Sam Lee", "Samuel Lee"]),
    "current_job_title": maybe(["Staff Engineer", "Engineer"]), "company_name": maybe(["Initech", "Initrode"]),
    "linkedin_url": maybe(["https://www.linkedin.com/in/sam-lee", "https://www.linkedin.com/in/other"]),
    "emails": st.one_of(st.none(), contacts(SAM_EMAILS, ["work", "personal"])),
    "phone_numbers": st.one_of(st.none(), contacts(SAM_PHONES, ["mobile", "work"])),
    "notice_period": maybe(["1 month", "3 months"]), "skills": st.one_of(st.none(), st.lists(st.sampled_from(["SQL", "Go"]), unique=True)),
    "stage": maybe(["Screen", "Interview"]), "policy": st.sampled_from(["overwrite", "fill"])})


def store_sam(fake: FakeStardex, person: dict) -> None:
    fake.add_job("Platform", id=STAGE_JOB)
    fake.add_custom_field("Notice period", "text", id=NOTICE)
    fake.add_custom_field("Skills", "multi-select", options=("SQL", "Go"), id=SKILLS)
    fields = {key: person[key] for key in ("name", "current_job_title", "company_name", "linkedin_url") if person[key]}
    held = [{"attribute_id": NOTICE, "name": "Notice period", "data_type": "text", "value": person["notice"]}] * bool(person["notice"])
    held += [{"attribute_id": SKILLS, "name": "Skills", "data_type": "multi-select", "value": person["skills"]}] * bool(person["skills"])
    stage = fake.job(STAGE_JOB)["pipeline_stages"]
    candidates = [] if person["stage"] is None else [{
        "candidate_id": "c-sam", "job_id": STAGE_JOB, "job_name": "Platform",
        **({} if person["stage"] == "none" else {
            "current_pipeline_stage_name": person["stage"],
            "current_pipeline_stage_id": next(item["id"] for item in stage if item["name"] == person["stage"])})}]
    fake.add_person(id=SAM, emails=person["emails"], phones=person["phones"], custom_fields=held, candidates=candidates,
                    **({"name": "Sam Lee"} | fields))


def plan_mappings(tmp_path) -> dict[str, str]:
    """The generic mapping with custom fields and stage moves, one folder per write policy."""
    document = json.loads((ROOT / "mappings" / "generic.json").read_text())
    document.pop("$schema", None)
    document["custom_fields"] = {"Notice period": {"path": "notice_period", "optional": True},
                                 "Skills": {"path": "skills", "optional": True}}
    document["stages"] = {"job": "job_ref", "jobs": {"P1": STAGE_JOB}, "stage": "stage",
                          "table": {"Screen": "Screen", "Interview": "Interview"}}
    folders = {}
    for policy in ("overwrite", "fill"):
        folders[policy] = str(tmp_path / policy)
        (tmp_path / policy).mkdir()
        (tmp_path / policy / "generic.json").write_text(json.dumps({**document, "write_policy": policy}))
    return folders


def generic_update(update: dict) -> dict:
    body = json.loads((SAMPLES_DIR / "generic.json").read_text())
    if update["by"] == "email":
        body.pop("stardex_person_id")
        body["email"] = "sam.lee@initech-example.com"
    for key in ("name", "current_job_title", "company_name", "linkedin_url", "emails", "phone_numbers",
                "notice_period", "skills", "stage"):
        if update[key] is None:
            body.pop(key, None)
        else:
            body[key] = update[key]
    if update["stage"]:
        body["job_ref"] = "P1"
    return body


def planned_and_applied(fake, tmp_path, make_client, base_env, folders, person, update):
    """Plan the update against ``person``, then apply it to the same stored state: (the plan's
    --json, the plan's requests, the writes the apply sent)."""
    base_env.setenv("MAPPINGS_DIR", folders[update["policy"]])
    fake.reset()
    store_sam(fake, person)
    raw, headers = signed("generic", generic_update(update))
    code, out = run(tmp_path, "generic", raw, *[part for item in headers.items() for part in ("--header", f"{item[0]}: {item[1]}")],
                    "--json")
    planned, plan_requests = json.loads(out), list(fake.requests)
    fake.requests.clear()
    answer = make_client().post("/generic", data=raw, headers=headers)
    writes = [(request.method, request.path, request.json) for request in fake.requests
              if request.method != "GET" and request.path != "/v1/persons/search"]
    fake.requests.clear()
    return code, planned, plan_requests, writes, answer.get_json()


@settings(max_examples=int(os.environ.get("PLAN_EXAMPLES", "15")), derandomize=True, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(person=PEOPLE, update=UPDATES)
def test_a_plan_counts_exactly_the_writes_an_apply_makes(stardex, tmp_path_factory, make_client, base_env, person, update):
    tmp_path = tmp_path_factory.mktemp("plan")
    folders = plan_mappings(tmp_path)
    code, planned, plan_requests, writes, answer = planned_and_applied(
        stardex, tmp_path, make_client, base_env, folders, person, update)
    assert all(request.method == "GET" or (request.method, request.path) == ("POST", "/v1/persons/search")
               for request in plan_requests), "the plan wrote"
    if code == 1:  # an error, the same the apply answers, and nothing written
        assert (writes, answer["reason"]) == ([], planned["error"]["reason"])
        return
    assert code == (2 if writes else 0), (planned["calls"], writes, answer)
    assert planned["changes"] is bool(writes) and planned["exit_code"] == code
    # A candidate the apply's PATCH made has an id no plan can know: the plan names it NEW_CANDIDATE.
    made = [(method, path, {**body, "candidate_id": NEW_CANDIDATE} if body.get("candidate_id", "c-sam") != "c-sam" else body)
            for method, path, body in writes]
    assert [(call["method"], call["path"], call["body"]) for call in planned["calls"] if call["write"]] == made, answer


def test_a_stage_move_of_a_person_the_patch_makes_a_candidate_is_planned(stardex, tmp_path, make_client, base_env):
    """A person named by id, not yet on the job: the apply's PATCH (with job_id) makes them a
    candidate and its read then finds the candidate to move. The plan showed the PATCH only."""
    person = {"name": None, "current_job_title": None, "company_name": None, "linkedin_url": None, "emails": [],
              "phones": [], "notice": None, "skills": [], "stage": None}
    update = {"by": "id", "name": None, "current_job_title": None, "company_name": None, "linkedin_url": None,
              "emails": None, "phone_numbers": None, "notice_period": None, "skills": None, "stage": "Screen",
              "policy": "overwrite"}
    code, planned, _, writes, answer = planned_and_applied(stardex, tmp_path, make_client, base_env,
                                                           plan_mappings(tmp_path), person, update)
    assert answer["stage"] == "moved" and [path for _, path, _ in writes][-1] == "/v1/candidates/update-stage"
    assert (code, planned["stage"]["action"]) == (2, "move"), planned["stage"]
    assert planned["stage"]["body"] == {"job_id": STAGE_JOB, "candidate_id": NEW_CANDIDATE, "stage_name": "Screen"}


def test_a_candidate_already_at_the_stage_is_no_change_as_the_apply_finds(stardex, tmp_path, make_client, base_env):
    """The read the update makes shows the candidate at the stage: the apply moves nothing and
    writes nothing. The plan forgot that read (a memory of 0 s) and planned a move by email: exit 2."""
    sam = [{"contact_data_type": "work", "value": "sam.lee@initech-example.com"}]
    person = {"name": None, "current_job_title": None, "company_name": None, "linkedin_url": None, "emails": sam,
              "phones": [], "notice": None, "skills": [], "stage": "Screen"}
    update = {"by": "id", "name": None, "current_job_title": None, "company_name": None, "linkedin_url": None,
              "emails": sam, "phone_numbers": None, "notice_period": None, "skills": None, "stage": "Screen",
              "policy": "overwrite"}
    code, planned, _, writes, answer = planned_and_applied(stardex, tmp_path, make_client, base_env,
                                                           plan_mappings(tmp_path), person, update)
    assert (writes, answer["stage"]) == ([], "unchanged")
    assert (code, planned["stage"]["action"], planned["stage"]["outcome"]) == (0, "keep", "unchanged")
