"""``python -m stardex_webhook.history``: list and show over an in-memory bucket (the end-to-end
tests run it on the emulator); 100,000 records to show ``--since`` lists only the hours it covers."""

from __future__ import annotations

import io
import json

import pytest

from stardex_webhook.config import load_settings
from stardex_webhook.events import EventHistory, identity_hash, record_name
from stardex_webhook.history import main, since_time
from stardex_webhook.logs import JsonLog
from stardex_webhook.secrets import SecretProvider
from tests.fakes.memory_bucket import MemoryBucket, MemoryStore
from tests.helpers.fake_time import WALL_EPOCH

HISTORY_KEY = "history-test-key-0002"
ENV = {"STATE_BUCKET": "history-test-bucket", "HISTORY_KEY": HISTORY_KEY}
NOW = WALL_EPOCH + 1800  # 2023-11-14 22:43:20 UTC


def write(bucket: MemoryBucket, delivery_id: str, received_at: float, status: str = "updated", source: str = "greenhouse",
          emails: tuple[str, ...] = (), **body) -> None:
    events = EventHistory(MemoryStore(bucket), SecretProvider(load_settings(ENV)), JsonLog(stream=io.StringIO()))
    record = {"source": source, "event": "candidate_hired", "delivery_id": delivery_id, "received_at": received_at,
              "door": "webhook", "named": [("email", email) for email in emails]}
    events.write(record, 200 if status in ("updated", "ignored") else 422, {"status": status, **body}, 12.5)


def history(bucket: MemoryBucket, *argv: str, env: dict | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, environ=env or ENV, bucket=bucket, now=NOW)
    return code, out.getvalue()


@pytest.fixture
def bucket() -> MemoryBucket:
    bucket = MemoryBucket()
    write(bucket, "gh-1", NOW - 3 * 86400, person_id="p-1", fields=["name"], emails=("lena@example.com",))
    write(bucket, "gh-2", NOW - 600, person_id="p-2", fields=["emails", "name"], emails=("ana@example.com",))
    write(bucket, "tf-1", NOW - 300, source="typeform", status="unprocessable", reason="person_not_found",
          emails=("Lena@Example.com",), dead_letter="dead-letters/typeform/20231114T223820Z-ab.json")
    return bucket


def test_list_prints_newest_first_one_line_each(bucket):
    code, out = history(bucket, "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert [line.split()[1] for line in lines] == ["typeform", "greenhouse", "greenhouse"]
    assert "delivery=tf-1" in lines[0] and "dead_letter" in lines[0] and "422 person_not_found" in lines[0]
    assert "fields=emails,name" in lines[1] and "person=p-2" in lines[1]


@pytest.mark.parametrize("argv, expected", [
    (["--source", "greenhouse"], ["gh-2", "gh-1"]),
    (["--outcome", "dead_letter"], ["tf-1"]),
    (["--outcome", "dead_lettered"], ["tf-1"]),  # the worker's answer and log line say it so
    (["--outcome", "person_not_found"], ["tf-1"]),
    (["--since", "1h"], ["tf-1", "gh-2"]),
    (["--since", "2023-11-11T00:00:00Z"], ["tf-1", "gh-2", "gh-1"]),
    (["--person", "p-1"], ["gh-1"]),
    (["--email", "  LENA@example.COM "], ["tf-1", "gh-1"]),
    (["--email", "nobody@example.com"], []),
    (["--limit", "1"], ["tf-1"]),
])
def test_list_filters(bucket, argv, expected):
    code, out = history(bucket, "list", "--json", *argv)
    assert code == 0
    assert [record["delivery_id"] for record in json.loads(out)] == expected


def test_email_needs_the_key_and_another_key_finds_nothing(bucket):
    code, _ = history(bucket, "list", "--email", "lena@example.com", env={"STATE_BUCKET": "b"})
    assert code == 2
    code, out = history(bucket, "list", "--json", "--email", "lena@example.com", env={**ENV, "HISTORY_KEY": "a-guess"})
    assert (code, json.loads(out)) == (0, [])


def test_a_record_cannot_be_read_back_to_the_address_without_the_key(bucket):
    stored = [json.loads(data) for name, (data, _) in bucket.objects.items() if not name.startswith("events/ids/")]
    hashes = {value for record in stored for value in record.get("identities", [])}
    assert identity_hash(HISTORY_KEY, "email", "lena@example.com") in hashes
    # Whoever reads the bucket but lacks the key cannot confirm a guess: a plain or unkeyed hash is not there.
    import hashlib
    guesses = {hashlib.sha256(b"lena@example.com").hexdigest()[:32], hashlib.sha256(b"email:lena@example.com").hexdigest()[:32],
               identity_hash("", "email", "lena@example.com")}
    assert not guesses & hashes
    assert "lena" not in json.dumps(stored).lower()


def test_show_names_the_dead_letter_and_the_replay_command(bucket):
    bucket.blob("dead-letters/typeform/20231114T223820Z-ab.json").upload_from_string("{}")
    code, out = history(bucket, "show", "tf-1")
    assert code == 0
    assert "dead letter: dead-letters/typeform/20231114T223820Z-ab.json" in out
    assert "STATE_BUCKET=history-test-bucket python -m stardex_webhook.replay run typeform/20231114T223820Z-ab.json" in out


def test_show_says_when_the_dead_letter_is_gone_and_when_there_is_no_record(bucket):
    code, out = history(bucket, "show", "tf-1")
    assert code == 0 and "no longer in the bucket" in out and "replay run" not in out
    assert history(bucket, "show", "nope")[0] == 1


def test_a_delivery_id_masked_in_the_list_is_shown_by_the_record_name_the_list_prints(bucket):
    """Jotform's submission ids are long numbers, masked as a phone number would be (``***78``): the
    line names the record instead, which ``show`` takes."""
    write(bucket, "6123456789012345678", NOW - 60, source="jotform", person_id="p-9", fields=["name"])
    code, out = history(bucket, "list", "--source", "jotform")
    (line,) = out.splitlines()
    assert "delivery=***78" in line and "6123456789012345678" not in line
    name = line.split("record=")[1].split()[0]
    code, shown = history(bucket, "show", name)
    assert code == 0 and "person=p-9" in shown and '"source": "jotform"' in shown
    assert history(bucket, "show", "events/2023-11-14/22/0000-jotform-none.json")[0] == 1
    assert "record=" not in history(bucket, "list", "--source", "greenhouse")[1], "an id shown whole needs no name"


def test_since_reads_times_and_refuses_nonsense():
    assert since_time("2h", NOW) == NOW - 7200
    assert since_time("3d", NOW) == NOW - 3 * 86400
    assert since_time("2023-11-14T22:00:00", NOW) == WALL_EPOCH - 800
    with pytest.raises(SystemExit):
        history(MemoryBucket(), "list", "--since", "yesterday")


def test_list_since_1h_lists_only_that_hours_prefixes_of_100000_records():
    """100,000 records over 30 days (about 139 an hour): ``--since 1h`` lists the objects of the
    hours the window touches and nothing else (objects counted, not timed)."""
    bucket = MemoryBucket()
    step = 30 * 86400 / 100_000
    for index in range(100_000):
        at = NOW - index * step
        name = record_name(at, "greenhouse", f"{index:016x}")
        bucket.objects[name] = (json.dumps({"received_at": at, "outcome": "updated", "delivery_id": str(index)}).encode(), 1)
    assert len(bucket.objects) == 100_000
    touched = {record_name(NOW, "x", "0")[:len("events/2023-11-14/22/")], record_name(NOW - 3600, "x", "0")[:len("events/2023-11-14/22/")]}
    in_touched = sum(1 for name in bucket.objects if name[:len("events/2023-11-14/22/")] in touched)
    bucket.listed = 0
    code, out = history(bucket, "list", "--since", "1h", "--limit", "100000", "--json")
    assert code == 0
    assert bucket.listed == in_touched < 300, "only the objects of the two hours 21:43-22:43 touches"
    assert len(json.loads(out)) == sum(1 for index in range(100_000) if index * step <= 3600)


@pytest.mark.parametrize("argv, said", [
    (["--limit", "0"], "argument --limit: '0': expected 1 or more"),
    (["--limit", "-1"], "argument --limit: '-1': expected 1 or more"),
    (["--limit", "many"], "argument --limit: 'many': expected a whole number"),
    (["--linkedin", "marta-quintal-example"], "--linkedin 'marta-quintal-example': not a LinkedIn profile URL"),
    (["--source", "greenhose"], "--source 'greenhose': no such sender (one of: ashby, fillout, generic,"),
])
def test_a_listing_that_could_only_print_nothing_is_refused_with_a_reason(bucket, capsys, argv, said):
    """Not an empty listing and exit 0: that would read as "no such event"."""
    with pytest.raises(SystemExit) as stopped:
        history(bucket, "list", *argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
