"""End to end: the real functions-framework server as a process, a loopback fake Stardex, and a
loopback Secret Manager reached through the real google-cloud-secret-manager client.

Every secret (the Stardex key and each signing key) comes from the fake Secret Manager, so these
tests also prove the ``*_SECRET`` path the deployed function uses.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from datetime import datetime, timezone

import pytest
import requests

from stardex_webhook.send_sample import signed_request
from stardex_webhook.sources import SOURCES
from tests.conftest import ROOT, SIGNING_KEYS, fixture_bytes, fixture_json
from tests.helpers.e2e import (  # noqa: F401  (fakes, server and stardex are fixtures)
    MAX_BODY_BYTES, SECRET_NAMES, STARDEX_KEY, fakes, function_server, patches, send, server, stardex, typeform_body,
)

# ---- the happy paths ------------------------------------------------------------------------


def test_a_greenhouse_hire_updates_the_person_found_by_email(server, stardex):
    person_id = stardex.add_person(
        name="Marta Q.", emails=[{"contact_data_type": "personal", "value": "marta.quintal@example.org"}]
    )
    answer = send(server, "greenhouse", fixture_bytes("greenhouse_hire_candidate.json"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "updated"
    assert answer.json()["person_id"] == person_id

    search, patch = stardex.requests  # the search answered the person: no GET before the PATCH
    assert (search.method, search.path, search.json["email"]) == ("POST", "/v1/persons/search", "marta.quintal@example.org")
    assert (patch.method, patch.path) == ("PATCH", f"/v1/persons/{person_id}")
    assert patch.headers.get("Authorization") == f"Bearer {STARDEX_KEY}"
    expected = fixture_json("greenhouse_hire_candidate.update.json")
    del expected["first_name"]  # "Marta", as stored: an unchanged value is not sent
    assert patch.json == expected
    stored = stardex.person(person_id)
    assert stored["current_job_title"] == "Data Engineer"
    assert sorted(answer.json()["fields"]) == sorted(patch.json)


def test_a_typeform_answer_with_a_hidden_person_id_updates_that_person(server, stardex):
    person_id = stardex.add_person(name="Chidi Okafor")
    other_id = stardex.add_person(name="Someone Else", emails=["chidi.okafor@example.com"])
    answer = send(server, "typeform", typeform_body(person_id))
    assert answer.status_code == 200, answer.text
    assert answer.json()["person_id"] == person_id
    assert not any(request.path.endswith("/search") for request in stardex.requests), "the id needs no search"
    stored = stardex.person(person_id)
    assert [email["value"] for email in stored["emails"]] == ["chidi.okafor@example.com"]
    assert [phone["value"] for phone in stored["phones"]] == ["+14155550123"]
    assert stored["current_company_name"] == "Globex"
    assert stardex.person(other_id)["emails"] == [{"contact_data_type": "work", "value": "chidi.okafor@example.com"}]


def test_a_typeform_answer_without_an_id_is_matched_by_email(server, stardex):
    person_id = stardex.add_person(name="Chidi Okafor", emails=["Chidi.Okafor@example.com"])
    answer = send(server, "typeform", typeform_body())
    assert answer.status_code == 200, answer.text
    assert answer.json()["person_id"] == person_id
    assert stardex.requests[0].json["email"] == "chidi.okafor@example.com"


def test_existing_emails_and_phones_survive_an_update(server, stardex):
    existing_emails = [
        {"contact_data_type": "work", "value": "c.okafor@globex-example.com"},
        {"contact_data_type": "personal", "value": "CHIDI.OKAFOR@example.com"},
    ]
    existing_phones = [{"contact_data_type": "work", "value": "+351 21 000 0000"}]
    person_id = stardex.add_person(name="Chidi Okafor", emails=existing_emails, phones=existing_phones)
    assert send(server, "typeform", typeform_body(person_id)).status_code == 200
    stored = stardex.person(person_id)
    assert stored["emails"] == existing_emails, "nothing new: the same address differs only in case"
    assert stored["phones"] == existing_phones + [{"contact_data_type": "mobile", "value": "+14155550123"}]


# ---- answers without Stardex -----------------------------------------------------------------


def test_a_greenhouse_ping_answers_200(server, stardex):
    answer = send(server, "greenhouse", {"action": "ping", "payload": {"web_hook_id": 42}})
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert stardex.requests == []


def test_a_bad_signature_is_401_and_stardex_is_never_called(server, stardex):
    stardex.add_person(name="Marta", emails=["marta.quintal@example.org"])
    answer = send(server, "greenhouse", fixture_bytes("greenhouse_hire_candidate.json"), key="wrong-key")
    assert answer.status_code == 401
    assert answer.json()["status"] == "unauthorized"
    assert stardex.requests == []


def test_an_oversized_body_is_413(server, stardex):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    answer = send(server, "greenhouse", body)
    assert answer.status_code == 413
    assert answer.json()["status"] == "too_large"
    assert stardex.requests == []


def test_an_oversized_chunked_body_is_413(server, stardex):
    def chunks():
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    answer = requests.post(f"{server}/greenhouse", data=chunks(), headers={"Signature": "sha256 00"}, timeout=30)
    assert answer.status_code == 413
    assert stardex.requests == []


def test_healthz_names_the_sources_and_never_a_secret(server):
    answer = requests.get(f"{server}/healthz", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["sources"] == sorted(SOURCES)
    for secret in (STARDEX_KEY, *SIGNING_KEYS.values()):
        assert secret not in answer.text


# ---- when Stardex fails ------------------------------------------------------------------------


def test_stardex_down_is_503_with_retry_after(server, stardex):
    person_id = stardex.add_person(name="Chidi Okafor")
    stardex.down = True
    answer = send(server, "typeform", typeform_body(person_id))
    assert answer.status_code == 503
    assert answer.json()["status"] == "retry_later"
    assert int(answer.headers["Retry-After"]) >= 1
    assert len(stardex.requests) >= 2, "a 503 is retried within the deadline before giving up"


def test_stardex_404_is_422(server, stardex):
    answer = send(server, "typeform", typeform_body("00000000-0000-4000-8000-000000000000"))
    assert answer.status_code == 422
    assert answer.json()["reason"] == "person_not_found"


def test_a_429_is_waited_out_and_the_update_lands(server, stardex):
    person_id = stardex.add_person(name="Chidi Okafor")
    stardex.fail_next(429, retry_after=1)
    answer = send(server, "typeform", typeform_body(person_id))
    assert answer.status_code == 200, answer.text
    assert len(patches(stardex)) == 1


def test_a_rotated_stardex_key_is_read_again_after_a_401(server, fakes, stardex):
    _, secret_manager = fakes
    person_id = stardex.add_person(name="Chidi Okafor")
    assert send(server, "typeform", typeform_body(person_id)).status_code == 200  # the old key is cached
    rotated = "e2e-stardex-key-rotated"
    secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], rotated)
    stardex.api_key = rotated
    try:
        # Another person: the same event again would change nothing and make no call at all.
        answer = send(server, "typeform", typeform_body(stardex.add_person(name="Chidi Okafor")))
        assert answer.status_code == 200, answer.text
        assert patches(stardex)[-1].headers.get("Authorization") == f"Bearer {rotated}"
    finally:
        secret_manager.set(SECRET_NAMES["STARDEX_API_KEY"], STARDEX_KEY)
        stardex.api_key = STARDEX_KEY


# ---- Secret Manager and start-up ---------------------------------------------------------------


def test_secret_manager_down_is_503_not_500(fakes, stardex):
    stardex_fake, secret_manager = fakes
    with function_server(stardex_fake, secret_manager, SECRET_TTL_SECONDS="0") as (base_url, _log):
        secret_manager.down = True
        try:
            answer = send(base_url, "greenhouse", fixture_bytes("greenhouse_hire_candidate.json"))
        finally:
            secret_manager.down = False
    assert answer.status_code == 503
    assert answer.json()["reason"] == "secret_unavailable"
    assert stardex_fake.requests == []


def test_a_stardex_base_that_has_no_such_route_is_a_503_naming_the_setting_not_a_missing_person(fakes, stardex):
    """The base is shaped right (it ends in a version) but Stardex has no such route: every call
    404s as Fastify does. The sender hears 503 (retry later), never 422 person_not_found (give up)."""
    stardex_fake, secret_manager = fakes
    stardex_fake.add_person(name="Marta", emails=["marta.quintal@example.org"])
    wrong_base = stardex_fake.base_url.removesuffix("/v1") + "/v2"
    with function_server(stardex_fake, secret_manager, STARDEX_API_BASE=wrong_base) as (base_url, _log):
        answer = send(base_url, "greenhouse", fixture_bytes("greenhouse_hire_candidate.json"))
    assert answer.status_code == 503, answer.text
    assert answer.json()["status"] == "retry_later"
    assert answer.json()["reason"] == "stardex_route_not_found"
    assert "STARDEX_API_BASE" in answer.json()["message"]
    assert answer.headers["Retry-After"] == "300"
    assert len(stardex_fake.requests) == 1, "one call: a wrong route is not retried"


def test_a_broken_mapping_stops_the_function_at_start_naming_the_file(fakes, tmp_path):
    (tmp_path / "greenhouse.json").write_text('{"events": ["hire_candidate"], "fields": {')
    with pytest.raises(RuntimeError, match="greenhouse.json"):
        with function_server(*fakes, MAPPINGS_DIR=str(tmp_path)):
            pass


def test_the_log_has_one_line_per_webhook_and_no_personal_data(fakes, stardex):
    stardex_fake, secret_manager = fakes
    stardex_fake.add_person(name="Marta", emails=["marta.quintal@example.org"])
    with function_server(stardex_fake, secret_manager) as (base_url, log_path):
        assert send(base_url, "greenhouse", fixture_bytes("greenhouse_hire_candidate.json")).status_code == 200
        assert send(base_url, "greenhouse", b"{}", key="wrong").status_code == 401
        time.sleep(0.2)
        text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    webhook_lines = [line for line in lines if line.get("source") == "greenhouse"]
    assert [line["outcome"] for line in webhook_lines] == ["updated", "unauthorized"]
    for personal in ("marta.quintal@example.org", "910 000 111", "+351910000111", STARDEX_KEY, SIGNING_KEYS["greenhouse"]):
        assert personal not in text


# ---- hostile senders, against the real server ----------------------------------------------------


def raw_post(base_url: str, head: str, body: bytes = b"", half_close: bool = False, path: str = "/greenhouse"):
    """Send ``head`` (the headers after the request line, in UTF-8) and ``body`` byte for byte;
    answer the status code and the JSON answer."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode() + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, json.loads(answer.read())


@pytest.mark.parametrize(
    "head, body",
    [
        ("Transfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n"),  # a chunk size that is not hex
        ("Transfer-Encoding: chunked", b"2\r\n{}XX\r\n0\r\n\r\n"),  # a chunk without its CRLF
        ("Transfer-Encoding: chunked", b"10\r\n{}"),  # the connection ends inside a chunk
        ("Content-Length: 100", b"{}"),  # ... or before Content-Length
    ],
)
def test_a_body_that_cannot_be_read_is_400_without_a_signature(server, stardex, head, body):
    status, answer = raw_post(server, f"{head}\r\nSignature: sha256 00\r\n", body, half_close=True)
    assert (status, answer["status"], answer["reason"]) == (400, "bad_request", "unreadable_body")
    assert stardex.requests == []


def test_slow_uploads_get_408_and_do_not_starve_a_valid_webhook(fakes):
    """More slow senders than the server has threads, each declaring 1,000 bytes and sending one."""
    with function_server(*fakes, THREADS="4") as (base_url, _log):
        host, port = base_url.removeprefix("http://").split(":")
        slow = [socket.create_connection((host, int(port)), timeout=60) for _ in range(6)]
        try:
            for sock in slow:
                sock.sendall(f"POST /greenhouse HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{{".encode())
            answer = send(base_url, "greenhouse", {"action": "ping", "payload": {"web_hook_id": 1}})
            assert answer.status_code == 200, answer.text
            for sock in slow:
                reply = http.client.HTTPResponse(sock)
                reply.begin()
                assert (reply.status, json.loads(reply.read())["reason"]) == (408, "body_timeout")
        finally:
            for sock in slow:
                sock.close()


def test_a_body_declared_and_never_sent_to_a_request_answered_early_holds_no_thread(fakes):
    """Requests answered before their body is read (/healthz, an unknown source, a wrong method),
    each declaring 1,000 bytes and sending one, twice as many as the server has threads: each is
    answered, and while they all stay open a webhook and /healthz still are (gunicorn reads a body
    left unread before the connection's next request, and would wait on it for as long as the
    sender keeps the connection open)."""
    with function_server(*fakes, THREADS="4") as (base_url, _log):
        host, port = base_url.removeprefix("http://").split(":")
        early = {("POST", "healthz"): 405, ("GET", "healthz"): 200, ("POST", "nosuchsource"): 404,
                 ("GET", "greenhouse"): 405}
        slow = [(expected, socket.create_connection((host, int(port)), timeout=60))
                for expected in early.items() for _ in range(2)]
        try:
            for ((method, path), _), sock in slow:
                sock.sendall(f"{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n{{".encode())
            for ((method, path), status), sock in slow:
                reply = http.client.HTTPResponse(sock)
                reply.begin()
                assert (reply.status, reply.getheader("Content-Type")) == (status, "application/json"), (method, path)
                json.loads(reply.read())
            answer = send(base_url, "greenhouse", {"action": "ping", "payload": {"web_hook_id": 1}})
            assert answer.status_code == 200, answer.text
            assert requests.get(f"{base_url}/healthz", timeout=30).status_code == 200
        finally:
            for _, sock in slow:
                sock.close()


@pytest.mark.parametrize("values", [["sha256 " + "00" * 32, "{good}"], ["sha256 !!!!, {good}"]])
def test_a_signature_header_sent_twice_is_accepted_when_one_matches(server, values):
    body = json.dumps({"action": "ping", "payload": {"web_hook_id": 1}}).encode()
    good = signed_request("greenhouse", body, SIGNING_KEYS["greenhouse"])[0]["Signature"]
    head = "".join(f"Signature: {value.format(good=good)}\r\n" for value in values) + f"Content-Length: {len(body)}\r\n"
    assert raw_post(server, head, body) == (200, {"status": "ignored", "reason": "ping"})


@pytest.mark.parametrize("names", ["webhook", "svix"])
def test_a_utf8_id_signed_by_the_svix_client_is_accepted(server, stardex, names):
    """The svix client signs the id's UTF-8 bytes, beside an entry no library can read."""
    import svix.webhooks  # here, not at the top: 0.7 s to import, paid by every xdist worker's collection

    person_id = stardex.add_person(name="Ada Lovelace")
    body = json.dumps({"stardex_person_id": person_id, "current_job_title": "CTO"}).encode()
    message_id, now, key = "msg_\u00e9\u4e2d", int(time.time()), SIGNING_KEYS["generic"]
    signature = svix.webhooks.Webhook(key).sign(message_id, datetime.fromtimestamp(now, tz=timezone.utc), body.decode())
    headers = {f"{names}-id": message_id, f"{names}-timestamp": str(now), f"{names}-signature": f"v1,!!!! {signature}"}
    svix.webhooks.Webhook(key).verify(body, headers)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + f"Content-Length: {len(body)}\r\n"
    status, answer = raw_post(server, head, body, path="/generic")
    assert (status, answer["status"]) == (200, "updated"), answer
    assert stardex.person(person_id)["current_job_title"] == "CTO"


def test_a_slow_signing_key_read_counts_against_the_deadline(fakes, stardex):
    """The answer comes within STARDEX_DEADLINE_SECONDS, not after Secret Manager's own 5 s timeout."""
    stardex_fake, secret_manager = fakes
    with function_server(stardex_fake, secret_manager, SECRET_TTL_SECONDS="0", STARDEX_DEADLINE_SECONDS="1") as (base_url, _log):
        secret_manager.delay = 8
        try:
            raw = fixture_bytes("greenhouse_hire_candidate.json")
            answer = requests.post(f"{base_url}/greenhouse", data=raw, timeout=4,
                                   headers=signed_request("greenhouse", raw, SIGNING_KEYS["greenhouse"])[0])
        finally:
            secret_manager.delay = 0
    assert answer.status_code == 503
    assert answer.json()["reason"] == "secret_unavailable"
    assert stardex_fake.requests == []


def test_a_form_under_fill_with_a_note_writes_it_once_and_keeps_the_stored_name(fakes, stardex, tmp_path):
    """Two identical deliveries of a Typeform answer (the sender's retry) through a mapping that
    keeps the submission as a note: one note, carrying the delivery id; the stored name and company
    untouched, only what the person lacked added."""
    mapping = json.loads((ROOT / "mappings" / "typeform.json").read_text())
    mapping.update(write_policy="fill", note={"activity_type": "secondary_note"})
    (tmp_path / "typeform.json").write_text(json.dumps(mapping))
    person_id = stardex.add_person(name="Chidi Okafor-Stored", first_name="Chidi", last_name="Okafor-Stored",
                                   company_name="Initech", emails=["chidi.okafor@example.com"])
    with function_server(*fakes, MAPPINGS_DIR=str(tmp_path), PERSON_MEMORY_SECONDS="300") as (base_url, _log):
        first = send(base_url, "typeform", typeform_body())
        second = send(base_url, "typeform", typeform_body())
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "updated", "person_id": person_id, "fields": ["linkedin_url", "phone_numbers"],
                            "note": "written"}
    assert second.json() == {"status": "ignored", "reason": "no_change", "person_id": person_id,
                             "note": "already_written"}
    stored = stardex.person(person_id)
    assert (stored["name"], stored["last_name"], stored["current_company_name"]) == (
        "Chidi Okafor-Stored", "Okafor-Stored", "Initech")
    assert [phone["value"] for phone in stored["phones"]] == ["+14155550123"]
    notes = stardex.activities(person_id)
    assert len(notes) == 1
    assert notes[0]["activity_type"] == "secondary_note"
    content = notes[0]["activity_content"].splitlines()
    assert content[0] == "Talent community sign-up"
    assert content[-1] == "stardex-webhook delivery: 01HZX3EXAMPLE0001"
    assert "Current company" in content and "Globex" in content
    assert [(request.method, request.path) for request in stardex.requests] == [
        ("POST", "/v1/persons/search"), ("PATCH", f"/v1/persons/{person_id}"),
        ("GET", f"/v1/persons/{person_id}/activities"), ("POST", "/v1/person-activities"),
        ("GET", f"/v1/persons/{person_id}/activities"),
    ], "the retry costs one look: the person is remembered and nothing changed"
