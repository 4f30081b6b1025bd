"""logs: one JSON line per webhook that Cloud Logging reads, with personal data masked."""

import io
import json

from stardex_webhook.logs import JsonLog, mask


def test_mask_hides_emails_but_keeps_the_domain():
    assert mask("from marta.quintal@example.org today") == "from m***@example.org today"


def test_mask_hides_phone_numbers_but_keeps_the_last_two_digits():
    masked = mask("call +351 910 000 111 or (415) 555-0123")
    assert "910" not in masked and "555" not in masked
    assert masked == "call ***11 or ***23"


def test_short_numbers_are_not_phone_numbers():
    assert mask("HTTP 404 after 3 tries") == "HTTP 404 after 3 tries"


def test_a_line_is_json_with_severity_and_message_and_masks_free_text_only():
    stream = io.StringIO()
    JsonLog(stream=stream).write(
        "WARNING", "webhook greenhouse x", person_id="1234567890", detail="bad a.b@example.org", missing=None
    )
    entry = json.loads(stream.getvalue())
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "webhook greenhouse x"
    assert entry["person_id"] == "1234567890", "identifiers are not masked"
    assert entry["detail"] == "bad a***@example.org"
    assert "missing" not in entry


def test_lines_below_the_level_are_dropped():
    stream = io.StringIO()
    log = JsonLog(level="WARNING", stream=stream)
    log.write("INFO", "quiet")
    log.write("ERROR", "loud")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["loud"]
