"""ingress: docs/contract.md's routes and answers, through the real function built in-process from main.py.

Stardex is mocked with ``responses``; every answer is checked for its status code, its ``status``
field and what reached (or did not reach) Stardex.
"""

from __future__ import annotations

import json
from unittest.mock import ANY

import pytest
import responses
from responses import matchers

from stardex_webhook.deadline import SETTLE_RESERVE_SECONDS, Deadline
from stardex_webhook.sources import SOURCES
from tests.conftest import PERSON_ID, ROOT, STARDEX_KEY, fixture_json, signed
from tests.helpers.random_json import random_json as _random_json

API = "https://stardex.test/v1"


@pytest.fixture
def stardex():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def post(client, source, body, **kwargs):
    raw, headers = signed(source, body, **kwargs)
    return client.post(f"/{source}", data=raw, headers=headers)


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def generic_update(**fields):
    return {"stardex_person_id": PERSON_ID, **fields}


# ---- routes -------------------------------------------------------------------------------


def test_healthz_names_the_version_and_enabled_sources_and_no_secret(make_client):
    answer = make_client().get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["sources"] == sorted(SOURCES)
    assert STARDEX_KEY not in answer.get_data(as_text=True)


def test_healthz_lists_only_sources_with_a_signing_key(make_client, base_env):
    base_env.delenv("TYPEFORM_SIGNING_KEY")
    assert make_client().get("/healthz").get_json()["sources"] == sorted(set(SOURCES) - {"typeform"})


def test_healthz_reads_no_secret_so_a_source_whose_key_is_a_secret_name_is_listed(make_client, base_env):
    """What README and docs/deployment.md say of it: Terraform sets <SOURCE>_SIGNING_KEY_SECRET from the
    first apply, and /healthz lists that sender whether or not a version was stored (it reads none)."""
    base_env.delenv("TYPEFORM_SIGNING_KEY")
    base_env.setenv("TYPEFORM_SIGNING_KEY_SECRET", "projects/p/secrets/typeform-signing-key/versions/latest")
    assert "typeform" in make_client().get("/healthz").get_json()["sources"]


def test_unknown_source_is_404_and_lists_the_valid_ones(make_client):
    answer = make_client().post("/greenhose", data=b"{}")
    assert answer.status_code == 404
    assert answer.get_json()["status"] == "not_found"
    assert answer.get_json()["reason"] == "unknown_source"
    assert answer.get_json()["sources"] == sorted(SOURCES), "a typo in the URL shows its fix"


@pytest.mark.parametrize("path", ["/generic/", "/generic%2F", "/generic%2f", "/%2Fgeneric"])
def test_only_the_exact_path_reaches_a_source(make_client, stardex, path):
    """A source is served at ``/<source>`` and nowhere near it: a signed body sent elsewhere is 404
    (``/%2Fgeneric`` is how ``//generic`` reaches the app; the test client takes ``//`` for a host)."""
    raw, headers = signed("generic", generic_update(current_job_title="CTO"))
    answer = make_client().post(path, data=raw, headers=headers)
    assert (answer.status_code, answer.get_json()["status"]) == (404, "not_found"), (answer.status_code, answer.data)
    assert len(stardex.calls) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_a_source_are_405(make_client, method):
    answer = make_client().open("/greenhouse", method=method)
    assert answer.status_code == 405
    assert answer.get_json()["status"] == "method_not_allowed"
    assert answer.headers["Allow"] == "POST"


# ---- refusals before any work ---------------------------------------------------------------


def test_oversized_body_is_413_before_verification(make_client, base_env, stardex):
    base_env.setenv("MAX_BODY_BYTES", "100")
    answer = make_client().post("/greenhouse", data=b"x" * 101, headers={"Signature": "sha256 00"})
    assert answer.status_code == 413
    assert answer.get_json()["status"] == "too_large"
    assert len(stardex.calls) == 0


def test_body_at_the_limit_is_read(make_client, base_env):
    body = json.dumps(generic_update(current_job_title="CTO")).encode()
    base_env.setenv("MAX_BODY_BYTES", str(len(body)))
    base_env.setenv("DRY_RUN", "1")
    assert post(make_client(), "generic", body).status_code == 200


def test_bad_signature_is_401_and_stardex_is_not_called(make_client, stardex):
    raw, headers = signed("greenhouse", fixture_json("greenhouse_hire_candidate.json"), key="not-the-key")
    answer = make_client().post("/greenhouse", data=raw, headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["status"] == "unauthorized"
    assert len(stardex.calls) == 0


def test_a_source_without_a_signing_key_refuses_everything(make_client, base_env):
    base_env.delenv("GREENHOUSE_SIGNING_KEY")
    answer = post(make_client(), "greenhouse", fixture_json("greenhouse_hire_candidate.json"))
    assert answer.status_code == 401
    assert answer.get_json()["reason"] == "no_signing_key"


def test_allow_unsigned_lets_a_source_without_a_key_through(make_client, base_env):
    base_env.delenv("GENERIC_SIGNING_KEY")
    base_env.setenv("ALLOW_UNSIGNED", "1")
    base_env.setenv("DRY_RUN", "1")
    answer = make_client().post("/generic", json=generic_update(current_job_title="CTO"))
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "dry_run"


@pytest.mark.parametrize("body", [b"{not json", b'{"current_job_title": NaN}', b'{"custom_fields": [Infinity]}', b'{"x": 1e999}'])
def test_signed_but_unparseable_body_is_400(make_client, base_env, body):
    """NaN and Infinity are not JSON: taken, they would reach the answer and the PATCH."""
    base_env.setenv("DRY_RUN", "1")
    answer = post(make_client(), "generic", b'{"stardex_person_id": "p-1", ' + body[1:])
    assert answer.status_code == 400
    assert answer.get_json() == {"status": "bad_request", "reason": "invalid_json", "message": ANY}
    json.loads(answer.get_data(), parse_constant=pytest.fail)


@pytest.fixture
def secret_reads(base_env):
    """Every (method, name, deadline) the app asks of its SecretProvider."""
    from stardex_webhook.secrets import SecretProvider

    seen = []
    for method in ("get", "get_keys"):
        def recording(provider, name, refresh=False, deadline=None, _real=getattr(SecretProvider, method), _method=method):
            seen.append((_method, name, deadline))
            return _real(provider, name, refresh=refresh, deadline=deadline)

        base_env.setattr(SecretProvider, method, recording)
    return seen


def test_the_webhooks_deadline_starts_with_its_body_and_bounds_the_signing_key_read(make_client, base_env, secret_reads):
    base_env.setenv("DRY_RUN", "1")
    assert post(make_client(), "generic", generic_update(current_job_title="CTO")).status_code == 200
    method, name, deadline = secret_reads[0]
    assert (method, name) == ("get_keys", "GENERIC_SIGNING_KEY")
    assert isinstance(deadline, Deadline) and 0 < deadline.remaining() <= 2  # STARDEX_DEADLINE_SECONDS in base_env


def test_the_stardex_key_read_shares_the_webhooks_deadline(make_client, secret_reads, stardex):
    stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    assert post(make_client(), "generic", generic_update(current_job_title="CTO")).status_code == 200
    deadlines = {(method, name): deadline for method, name, deadline in secret_reads}
    assert isinstance(deadlines["get", "STARDEX_API_KEY"], Deadline)
    # The same deadline, the work's share of it: it ends before the webhook's, leaving the rest for
    # the claim's release or a dead letter.
    webhook, work = deadlines["get_keys", "GENERIC_SIGNING_KEY"], deadlines["get", "STARDEX_API_KEY"]
    assert work.expires_at == pytest.approx(webhook.expires_at - SETTLE_RESERVE_SECONDS)


# ---- answers that need no Stardex ------------------------------------------------------------


def test_greenhouse_ping_is_200_ignored(make_client, stardex):
    answer = post(make_client(), "greenhouse", {"action": "ping", "payload": {"web_hook_id": 1}})
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "ping"}
    assert len(stardex.calls) == 0


def test_an_event_no_mapping_acts_on_is_200_ignored(make_client, stardex):
    answer = post(make_client(), "greenhouse", {"action": "delete_candidate", "payload": {"person": {"id": 1}}})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "ignored" and body["reason"] == "event_not_mapped"
    assert len(stardex.calls) == 0


def test_dry_run_answers_the_body_that_would_be_sent(make_client, base_env, stardex):
    base_env.setenv("DRY_RUN", "1")
    base_env.delenv("STARDEX_API_KEY")
    answer = post(make_client(), "generic", generic_update(current_job_title="CTO", company_name="Initech"))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "status": "dry_run",
        "body": {"current_job_title": "CTO", "company_name": "Initech"},
        "person_id": PERSON_ID,
    }
    assert len(stardex.calls) == 0


def test_schema_errors_are_422_listing_each_with_its_path(make_client):
    update = generic_update(
        linkedin_url="not a url",
        emails=[{"contact_data_type": "work", "value": "not-an-email"}],
    )
    answer = post(make_client(), "generic", update)
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["status"] == "unprocessable"
    paths = {error["path"] for error in body["errors"]}
    assert {"$.linkedin_url", "$.emails[0].value"} <= paths
    assert "not-an-email" not in json.dumps(body), "the answer does not echo personal data"


def test_one_bad_value_is_left_out_and_listed_the_rest_is_written(make_client, stardex, capsys):
    """docs/contract.md, "Values that fail validation": Greenhouse's own example has an address with a space."""
    stardex.get(f"{API}/persons/{PERSON_ID}",
                json={"success": True, "data": {"id": PERSON_ID, "emails": [], "phones": []}})
    stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    client = make_client()
    capsys.readouterr()
    update = generic_update(first_name="Hank", last_name="Von Diablo",
                            emails=[{"contact_data_type": "personal", "value": "hank.von diablo.13857579@example.com"},
                                    {"contact_data_type": "work", "value": "hank@example.com"}],
                            phone_numbers=[{"contact_data_type": "mobile", "value": "test@ashbyhq.com"},
                                           {"contact_data_type": "work", "value": "911"}])
    answer = post(client, "generic", update)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["status"] == "updated"
    assert body["skipped"] == [
        {"path": "$.emails[0].value", "reason": "is not a valid email address"},
        {"path": "$.phone_numbers[0].value", "reason": "is not a phone number (it needs at least 4 digits and no @)"},
        {"path": "$.phone_numbers[1].value", "reason": "is not a phone number (it needs at least 4 digits and no @)"},
    ]
    patch = sent_json(stardex.calls[-1])
    assert patch["first_name"] == "Hank" and patch["last_name"] == "Von Diablo"
    assert patch["emails"] == [{"contact_data_type": "work", "value": "hank@example.com"}]
    assert "phone_numbers" not in patch
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert lines[-1]["skipped"] == body["skipped"]
    text = answer.get_data(as_text=True) + json.dumps(lines)
    for value in ("diablo.13857579", "ashbyhq"):
        assert value not in text, "a value left out is never quoted"


def test_a_text_over_the_schemas_bound_is_left_out_and_the_rest_written(make_client, stardex):
    """A person's text is bounded (no real title nears 2,000 characters); one over it costs only itself."""
    stardex.get(f"{API}/persons/{PERSON_ID}",
                json={"success": True, "data": {"id": PERSON_ID, "emails": [], "phones": []}})
    stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    answer = post(make_client(), "generic", generic_update(current_job_title="x" * 2001, company_name="Acme"))
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["status"], body["fields"]) == ("updated", ["company_name"])
    assert body["skipped"] == [{"path": "$.current_job_title", "reason": "must have at most 2000 characters"}]
    assert sent_json(stardex.calls[-1]) == {"company_name": "Acme"}


def test_when_every_email_that_finds_the_person_is_invalid_it_is_422(make_client, stardex):
    answer = post(make_client(), "generic", {"current_job_title": "CTO",
                                             "emails": [{"contact_data_type": "work", "value": "a b@example.com"}]})
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "person_keys_invalid"
    assert answer.get_json()["errors"] == [{"path": "$.emails[0].value", "message": "is not a valid email address"}]
    assert len(stardex.calls) == 0


def test_no_stardex_key_and_no_dry_run_is_503_so_the_sender_retries(make_client, base_env, stardex):
    base_env.delenv("STARDEX_API_KEY")
    answer = post(make_client(), "generic", generic_update(current_job_title="CTO"))
    assert answer.status_code == 503
    assert answer.get_json()["reason"] == "stardex_api_key_missing"
    assert int(answer.headers["Retry-After"]) > 0
    assert len(stardex.calls) == 0


# ---- answers from Stardex ----------------------------------------------------------------


def test_an_update_with_a_person_id_and_no_list_is_one_patch(make_client, stardex):
    stardex.patch(
        f"{API}/persons/{PERSON_ID}",
        json={"success": True, "data": {"message": "Person updated successfully"}},
        match=[matchers.header_matcher({"Authorization": f"Bearer {STARDEX_KEY}"})],
    )
    answer = post(make_client(), "generic", generic_update(current_job_title="CTO"))
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "updated", "person_id": PERSON_ID, "fields": ["current_job_title"]}
    assert [call.request.method for call in stardex.calls] == ["PATCH"]
    assert sent_json(stardex.calls[0]) == {"current_job_title": "CTO"}


def test_a_list_update_reads_the_person_and_sends_the_union(make_client, stardex):
    stardex.get(
        f"{API}/persons/{PERSON_ID}",
        json={"success": True, "data": {"id": PERSON_ID, "emails": [{"contact_data_type": "work", "value": "old@example.org"}], "phones": []}},
    )
    stardex.patch(f"{API}/persons/{PERSON_ID}", json={"success": True, "data": {"message": "ok"}})
    update = generic_update(emails=[{"contact_data_type": "personal", "value": "New@Example.org"}])
    answer = post(make_client(), "generic", update)
    assert answer.status_code == 200
    assert sent_json(stardex.calls[1]) == {
        "emails": [
            {"contact_data_type": "work", "value": "old@example.org"},
            {"contact_data_type": "personal", "value": "new@example.org"},
        ]
    }


def test_a_list_that_adds_nothing_new_sends_nothing(make_client, stardex):
    stardex.get(
        f"{API}/persons/{PERSON_ID}",
        json={"success": True, "data": {"id": PERSON_ID, "emails": [{"contact_data_type": "work", "value": "same@example.org"}]}},
    )
    answer = post(make_client(), "generic", generic_update(emails=[{"contact_data_type": "work", "value": "same@example.org"}]))
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored" and answer.get_json()["reason"] == "no_change"
    assert [call.request.method for call in stardex.calls] == ["GET"]


def test_stardex_404_is_422_person_not_found(make_client, stardex):
    stardex.patch(f"{API}/persons/{PERSON_ID}", status=404, json={"message": "Person not found", "error": "Not Found", "statusCode": 404})
    answer = post(make_client(), "generic", generic_update(current_job_title="CTO"))
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "person_not_found"


def test_stardex_400_is_422_rejected(make_client, stardex):
    stardex.patch(
        f"{API}/persons/{PERSON_ID}", status=400,
        json={"success": False, "error": {"code": "VALIDATION_ERROR", "message": "bad job_id"}},
    )
    answer = post(make_client(), "generic", generic_update(job_id="nope"))
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "stardex_rejected"


def test_stardex_unavailable_is_503_with_retry_after(make_client, stardex):
    stardex.patch(f"{API}/persons/{PERSON_ID}", status=503, json={"message": "down"})
    answer = post(make_client(), "generic", generic_update(current_job_title="CTO"))
    assert answer.status_code == 503
    assert answer.get_json()["status"] == "retry_later"
    assert int(answer.headers["Retry-After"]) >= 1
    assert len(stardex.calls) >= 2, "server errors are retried before giving up"


def test_a_person_found_by_email(make_client, stardex):
    stardex.post(f"{API}/persons/search", json={"success": True, "data": [{"id": "p-9"}], "meta": {"total": 1, "offset": 0, "limit": 2}})
    stardex.patch(f"{API}/persons/p-9", json={"success": True, "data": {"message": "ok"}})
    answer = post(make_client(), "generic", {"email": "Sam@Example.org", "current_job_title": "CTO"})
    assert answer.status_code == 200
    assert answer.get_json()["person_id"] == "p-9"
    assert sent_json(stardex.calls[0])["email"] == "sam@example.org"


# ---- the log line --------------------------------------------------------------------------


def test_one_json_log_line_per_webhook_without_personal_data(make_client, base_env, capsys):
    base_env.setenv("DRY_RUN", "1")
    client = make_client()
    capsys.readouterr()
    raw, headers = signed("greenhouse", fixture_json("greenhouse_hire_candidate.json"))
    headers["Greenhouse-Event-ID"] = "evt-123"
    assert client.post("/greenhouse", data=raw, headers=headers).status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["severity"] == "INFO"
    assert entry["source"] == "greenhouse"
    assert entry["event"] == "hire_candidate"
    assert entry["outcome"] == "dry_run"
    assert entry["delivery_id"] == "evt-123"
    assert isinstance(entry["latency_ms"], float)
    text = json.dumps(entry)
    for personal in ("marta", "910 000", "Quintal", "gh-test-signing-key"):
        assert personal not in text


def test_a_mapping_that_opts_in_creates_a_person_not_found(make_client, base_env, stardex, tmp_path):
    mapping = json.loads((ROOT / "mappings" / "generic.json").read_text())
    mapping["person"]["create"] = True
    (tmp_path / "generic.json").write_text(json.dumps(mapping))
    base_env.setenv("MAPPINGS_DIR", str(tmp_path))
    empty = {"success": True, "data": [], "meta": {"total": 0, "offset": 0, "limit": 2}}
    stardex.post(f"{API}/persons/search", json=empty)
    stardex.post(f"{API}/persons", status=201, json={"success": True, "data": {"id": "new-1", "name": "Ada Lovelace"}})
    stardex.patch(f"{API}/persons/new-1", json={"success": True, "data": {"message": "ok"}})
    update = {
        "email": "ada@example.org",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "linkedin_url": "https://www.linkedin.com/in/ada-example",
        "linkedin_headline": "Analyst",
        "emails": [{"contact_data_type": "personal", "value": "ada@example.org"}],
    }
    answer = post(make_client(), "generic", update)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "updated" and body["created"] is True and body["person_id"] == "new-1"
    methods = [(call.request.method, call.request.url.removeprefix(API)) for call in stardex.calls]
    assert methods == [
        ("POST", "/persons/search"), ("POST", "/persons/search"), ("POST", "/persons"), ("PATCH", "/persons/new-1"),
    ]
    created = sent_json(stardex.calls[2])
    assert created["name"] == "Ada Lovelace"
    assert created["linkedin_url"] == "https://www.linkedin.com/in/ada-example"
    assert created["emails"] == ["ada@example.org"], "create takes plain strings"
    assert sent_json(stardex.calls[3]) == {"linkedin_headline": "Analyst"}, "what create does not take follows in a PATCH"


def test_without_the_opt_in_a_person_not_found_is_422_and_nothing_is_created(make_client, stardex):
    empty = {"success": True, "data": [], "meta": {"total": 0, "offset": 0, "limit": 2}}
    stardex.post(f"{API}/persons/search", json=empty)
    answer = post(make_client(), "generic", {"email": "ada@example.org", "linkedin_url": "https://www.linkedin.com/in/ada-example"})
    assert answer.status_code == 422
    assert answer.get_json()["reason"] == "person_not_found"
    assert all(call.request.url.endswith("/persons/search") for call in stardex.calls)


def test_a_bug_is_an_honest_json_500_logged_without_the_payload(capsys):
    """No input may cause this; if code breaks anyway, the sender gets JSON and the log says where."""
    import flask

    from stardex_webhook.config import load_settings
    from stardex_webhook.ingress import Ingress
    from stardex_webhook.logs import JsonLog
    from stardex_webhook.secrets import SecretProvider

    class BrokenSource:
        name = "broken"
        success_status = 200

        def handshake(self, delivery):
            raise KeyError("secret-looking payload value")

    settings = load_settings({"ALLOW_UNSIGNED": "1"})
    from stardex_webhook.pipeline import Pipeline

    app = Ingress(Pipeline(settings, {"broken": BrokenSource()}, {"broken": object()}, SecretProvider(settings), JsonLog()))
    with flask.Flask(__name__).test_request_context("/broken", method="POST", data=b"{}"):
        answer = app.handle(flask.request)
    assert answer.status_code == 500
    assert answer.get_json() == {"status": "error", "reason": "internal_error"}
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry["severity"] == "ERROR"
    assert entry["error"].startswith("KeyError at test_ingress.py:")
    assert "secret-looking" not in json.dumps(entry)


# The envelope of a form sender, put into most random payloads so that their paths meet odd shapes.
_FORM_ENVELOPES = {
    "typeform": lambda rng: {"form_response": {"answers": _random_json(rng), "hidden": _random_json(rng)}},
    "fillout": lambda rng: {"submission": {"questions": _random_json(rng), "urlParameters": _random_json(rng),
                                           "scheduling": _random_json(rng)}},
    "hubspot": lambda rng: {"properties": _random_json(rng)} if rng.random() < 0.5 else {"email": _random_json(rng)},
    "google-forms": lambda rng: {"answers": _random_json(rng), "responseId": _random_json(rng)},
}


@pytest.mark.parametrize("source", ["greenhouse", "typeform", "generic", "fillout", "hubspot", "google-forms"])
def test_signed_payloads_of_any_shape_never_cause_a_500(make_client, base_env, source):
    import random

    base_env.setenv("DRY_RUN", "1")
    client = make_client()
    rng = random.Random(f"shapes-{source}")
    seen = set()
    for _ in range(300):
        body = {"action": rng.choice(["hire_candidate", "update_candidate", "ping", 7])} if source == "greenhouse" else {}
        extra = _random_json(rng)
        body.update(extra if isinstance(extra, dict) else {"payload": extra})
        if source in _FORM_ENVELOPES and rng.random() < 0.7:
            body.update(_FORM_ENVELOPES[source](rng))
        raw, headers = signed(source, body)
        # At the local run's address: HubSpot signs the URL, and its sample signer signs that one.
        answer = client.post(f"/{source}", data=raw, headers=headers, base_url="http://127.0.0.1:8080")
        assert answer.status_code in (200, 400, 422), answer.get_json()
        assert json.loads(answer.get_data(), parse_constant=pytest.fail)["status"], "an answer is strict JSON"
        seen.add(answer.status_code)
    assert len(seen) >= 2, "the random shapes reach more than one kind of answer"


def test_a_form_keeps_the_stored_name_and_the_same_answer_again_costs_no_call(make_client, stardex):
    """Typeform's mapping defaults to fill; the search answers the person, and the instance remembers it."""
    stored = {"id": "p-7", "name": "Chidi Stored", "first_name": "Chidi", "last_name": "Stored",
              "current_company_name": "Initech", "linkedin_public_id": None,
              "emails": [{"contact_data_type": "work", "value": "chidi.okafor@example.com"}], "phones": []}
    stardex.post(f"{API}/persons/search", json={"success": True, "data": [stored], "meta": {"total": 1, "offset": 0, "limit": 2}})
    stardex.patch(f"{API}/persons/p-7", json={"success": True, "data": {"message": "ok"}})
    client = make_client()
    body = fixture_json("typeform_form_response.json")
    first = post(client, "typeform", body)
    assert first.get_json() == {"status": "updated", "person_id": "p-7", "fields": ["linkedin_url", "phone_numbers"]}
    assert sent_json(stardex.calls[1]) == {
        "linkedin_url": "https://www.linkedin.com/in/chidi-okafor-example",
        "phone_numbers": [{"contact_data_type": "mobile", "value": "+14155550123"}],
    }
    second = post(client, "typeform", body)
    assert second.get_json() == {"status": "ignored", "reason": "no_change", "person_id": "p-7"}
    assert [call.request.method for call in stardex.calls] == ["POST", "PATCH"]


# ---- what senders really send (issue 22) ------------------------------------------------------


def test_workable_s_documented_body_names_its_event_in_the_subscribed_url(make_client, base_env):
    base_env.setenv("DRY_RUN", "1")
    body = {"data": fixture_json("workable_candidate_created.json")["data"]}
    raw, headers = signed("workable", body)
    answer = make_client().post("/workable?event=candidate_created", data=raw, headers=headers)
    assert answer.status_code == 200 and answer.get_json()["status"] == "dry_run"
    without = make_client().post("/workable", data=raw, headers=headers)
    assert (without.status_code, without.get_json()["reason"]) == (400, "invalid_payload")
    assert "?event=" in without.get_json()["message"]


def test_a_lever_body_that_is_not_json_is_400_invalid_json(make_client):
    raw = b'{"triggeredAt": 1, "event": "candidateStageChange" "signature": "ab"}'  # a comma missing
    answer = make_client().post("/lever", data=raw, headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.get_json()["status"], answer.get_json()["reason"]) == (400, "bad_request", "invalid_json")
