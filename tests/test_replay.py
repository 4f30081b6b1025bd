"""Dead letters and ``python -m stardex_webhook.replay``, run as an operator runs it, against the
same real stack as the queued end-to-end tests (servers, emulators, fakes)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.queued import dead_letters, fresh, hire, post, stack  # noqa: F401  (fixtures)
from tests.conftest import ROOT
from tests.helpers.e2e import patches

# The mistake a person makes: the person is searched by the work email, which Stardex lacks.
BROKEN_GREENHOUSE = {"person": {"email": "email_addresses[?type=='work'].value"}}


@pytest.fixture
def broken_mappings(tmp_path):
    document = json.loads((ROOT / "mappings" / "greenhouse.json").read_text())
    document.update(BROKEN_GREENHOUSE)
    (tmp_path / "greenhouse.json").write_text(json.dumps(document))
    return str(tmp_path)


def hire_with_work_email(index: int) -> dict:
    body = hire(index)
    body["payload"]["application"]["candidate"]["email_addresses"].append(
        {"value": f"cand{index}@work-example.com", "type": "work"})
    return body


def test_a_rejected_event_is_dead_lettered_then_replayed_after_the_mapping_is_fixed(fresh, broken_mappings):
    person_id = fresh.stardex.add_person(name="Cand5 Burst", emails=["cand5@example.org"])
    with fresh.public(MAPPINGS_DIR=broken_mappings, DELIVERY="sync") as public:
        answer = post(public, hire_with_work_email(5), "fix-0005")
    assert (answer.status_code, answer.json()["reason"]) == (422, "person_not_found")
    [letter] = dead_letters()
    assert letter["error"]["reason"] == "person_not_found"

    listed = fresh.replay("list")
    assert listed.returncode == 0, listed.stderr
    [name] = listed.stdout.split()
    assert name.startswith("greenhouse/")
    shown = fresh.replay("show", name)
    assert json.loads(shown.stdout) == letter

    still_broken = fresh.replay("run", name, MAPPINGS_DIR=broken_mappings)
    assert still_broken.returncode == 1, "a letter left is a failure"
    assert "person_not_found" in still_broken.stdout and "(kept)" in still_broken.stdout
    assert [letter["delivery_id"] for letter in dead_letters()] == ["fix-0005"]

    fixed = fresh.replay("run", "--prefix", "greenhouse/")  # the built-in mapping: the fix
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"{name}: updated {person_id} (deleted)" in fixed.stdout
    assert dead_letters() == []
    assert fresh.stardex.person(person_id)["current_job_title"] == "Data Engineer"
    assert len(patches(fresh.stardex)) == 1


def test_a_letter_whose_event_is_now_deliberately_ignored_is_deleted(fresh, tmp_path):
    fresh.stardex.down = True
    assert post(fresh.public_url, hire(6), "ign-0006").json()["status"] == "queued"
    assert fresh.settle(["ign-0006"]) == {"ign-0006": "dead_lettered"}
    fresh.stardex.down = False
    document = json.loads((ROOT / "mappings" / "greenhouse.json").read_text())
    document["events"] = ["update_candidate"]  # hires are no longer mapped
    (tmp_path / "greenhouse.json").write_text(json.dumps(document))
    result = fresh.replay("run", "--all", MAPPINGS_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ignored event_not_mapped (deleted)" in result.stdout
    assert dead_letters() == []
    assert patches(fresh.stardex) == []


def test_sync_a_rejection_is_422_and_a_dead_letter_kept_once(fresh):
    with fresh.public(DELIVERY="sync") as public:
        first = post(public, hire(8, "nobody8@example.org"), "sync-0008")
        again = post(public, hire(8, "nobody8@example.org"), "sync-0008")
    assert (first.status_code, first.json()["reason"]) == (422, "person_not_found")
    assert again.json()["status"] == "duplicate", "the event is kept: a resend is not a second letter"
    [letter] = dead_letters()
    assert (letter["delivery_id"], letter["attempts"], letter["error"]["status_code"]) == ("sync-0008", 1, 422)


def test_sync_a_503_is_no_dead_letter_and_the_senders_retry_succeeds(fresh):
    fresh.stardex.add_person(name="Cand9 Burst", emails=["cand9@example.org"])
    with fresh.public(DELIVERY="sync") as public:
        fresh.stardex.down = True
        refused = post(public, hire(9), "sync-0009")
        fresh.stardex.down = False
        retried = post(public, hire(9), "sync-0009")
    assert refused.status_code == 503
    assert dead_letters() == [], "the sender still holds it"
    assert (retried.status_code, retried.json()["status"]) == (200, "updated"), "the claim was released"


@pytest.mark.parametrize("args", [("run",), ("run", "a", "--all"), ("run", "--prefix", "x", "--all"), ("show",)])
def test_replay_refuses_an_incomplete_command(fresh, args):
    result = fresh.replay(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_replay_run_help_describes_every_option(capsys):
    from stardex_webhook.replay import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--help"])
    shown = capsys.readouterr().out
    assert exited.value.code == 0
    for option, described in (("NAME", "as `list` prints them"), ("--prefix", "starts so"), ("--all", "every dead letter"),
                              ("Exit", "1 when any is")):
        assert option in shown and described in " ".join(shown.split()), (option, shown)


def test_replaying_a_letter_that_is_not_there_is_a_failure(fresh):
    result = fresh.replay("run", "greenhouse/20260101T000000Z-missing.json")
    assert result.returncode == 1
    assert "missing" in result.stdout
