"""logs: one JSON line per webhook that Cloud Logging reads, with personal data masked."""

import io
import json

import pytest

from stardex_webhook.logs import JsonLog, mask
from tests.conftest import signed

EMAIL = "marta.quintal@example.org"


def test_mask_hides_emails_but_keeps_the_domain():
    assert mask(f"from {EMAIL} today") == "from m***@example.org today"


@pytest.mark.parametrize(
    "text, masked",
    [
        ("call +351 910 000 111 or (415) 555-0123", "call ***11 or ***23"),
        ("mobile 07700 900123", "mobile ***23"),
        ("tel 4155550123", "tel ***23"),
        ("dial +447700900123", "dial ***23"),
    ],
)
def test_mask_hides_phone_numbers_but_keeps_the_last_two_digits(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    ["the body is over the 1048576-byte limit", "HTTP 404 after 3 tries", "Retry-After: 86400 (capped at 60)",
     "delivery msg_3b37055602a6a8499fbf"],
)
def test_numbers_that_are_not_phone_numbers_stay(text):
    assert mask(text) == text


def test_a_line_is_json_and_text_from_outside_is_masked_and_cut():
    stream = io.StringIO()
    JsonLog(stream=stream).write(
        "WARNING", f"webhook greenhouse {EMAIL}", person_id="1234567890", detail=f"bad {EMAIL}",
        event="x" * 500, delivery_id=EMAIL, missing=None,
    )
    entry = json.loads(stream.getvalue())
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "webhook greenhouse m***@example.org"
    assert entry["person_id"] == "1234567890", "our identifiers are not masked"
    assert entry["detail"] == "bad m***@example.org"
    assert entry["delivery_id"] == "m***@example.org"
    assert entry["event"] == "x" * 128 + "…"
    assert "missing" not in entry


def test_lines_below_the_level_are_dropped():
    stream = io.StringIO()
    log = JsonLog(level="WARNING", stream=stream)
    log.write("INFO", "quiet")
    log.write("ERROR", "loud")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["loud"]


def test_the_webhook_line_masks_the_sender_s_event_and_delivery_id(make_client, capsys):
    body, headers = signed("greenhouse", {"action": f"{EMAIL} " + "y" * 5000, "payload": {}})
    headers["Greenhouse-Event-ID"] = EMAIL
    assert make_client().post("/greenhouse", data=body, headers=headers).status_code == 200
    line = capsys.readouterr().out.strip()
    entry = json.loads(line)
    assert EMAIL not in line and len(line) < 2000
    assert entry["delivery_id"] == "m***@example.org"
    assert entry["event"].startswith("m***@example.org y")


@pytest.mark.parametrize("text, masked", [
    ("from jürgen.klöß@example.de today", "from j***@example.de today"),
    ("to \"zoë@example.org\"", "to \"z***@example.org\""),
    ("mailto:o'brien@example.org", "mailto:o***@example.org"),
    ("山田太郎@example.jp", "山***@example.jp"),
])
def test_an_email_with_a_non_ascii_local_part_is_masked(text, masked):
    assert mask(text) == masked
