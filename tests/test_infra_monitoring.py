"""infra/monitoring.tf cross-checked: the dashboard charts only metrics the module defines (and the
queue's own depth), every metric is charted, every field a metric reads is one the code logs, and
the alerts exist only with notification channels, each watching what the issue names."""

from __future__ import annotations

import io
import json
import re

import pytest

from stardex_webhook.logs import JsonLog
from stardex_webhook.pipeline import answered
from tests.fakes.memory_bucket import MemoryBucket, MemoryStore
from tests.test_infra import evaluated

# The one chart not drawn from a log: Cloud Tasks' own count of the tasks waiting in the queue.
BUILT_IN = {"cloudtasks.googleapis.com/queue/depth"}
# Read from the log line by a metric, but written there by issue 22 (the answer's skipped list).
LOGGED_ONCE_ISSUE_22_LANDS = {"skipped"}
NEW_ALERTS = ("dead letter has waited", "sender's webhooks are refused", "5xx answers", "Stardex budget")


def dashboard(case: str = "queued") -> dict:
    (board,) = evaluated(case)["google_monitoring_dashboard"]
    return json.loads(board["dashboard_json"])


def metrics(case: str = "queued") -> dict[str, dict]:
    return {metric["name"]: metric for metric in evaluated(case)["google_logging_metric"]}


def chart_filters(case: str = "queued") -> list[str]:
    return [data["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
            for tile in dashboard(case)["mosaicLayout"]["tiles"] for data in tile["widget"]["xyChart"]["dataSets"]]


def charted_metric(filter_text: str) -> str:
    (metric_type,) = re.findall(r'metric\.type="([^"]+)"', filter_text)
    return metric_type


@pytest.mark.parametrize("case", ["defaults", "queued"])
def test_every_chart_names_a_metric_the_module_defines_and_every_metric_is_charted(case):
    defined = {f"logging.googleapis.com/user/{name}" for name in metrics(case)}
    charted = [charted_metric(text) for text in chart_filters(case)]
    assert set(charted) - defined <= BUILT_IN, "a chart of a metric nobody defines draws nothing"
    assert defined <= set(charted), f"metrics never charted: {sorted(defined - set(charted))}"


def test_the_dashboard_shows_what_the_issue_asks_for():
    titles = [tile["widget"]["title"] for tile in dashboard()["mosaicLayout"]["tiles"]]
    for wanted in ("by sender and outcome", "p50, p95, p99", "Stardex calls", "429", "Queue depth", "Task attempts",
                   "Dead letters waiting", "left out (skipped), by sender"):
        assert any(wanted in title for title in titles), wanted
    (budget,) = [tile["widget"]["xyChart"] for tile in dashboard()["mosaicLayout"]["tiles"] if "Stardex calls" in tile["widget"]["title"]]
    assert budget["thresholds"][0]["value"] == 60, "the calls are drawn against Stardex's 60 a minute"


def logged_fields() -> set[str]:
    """Every field the function's lines carry: a worker's answer that reached Stardex (with the
    dead-letter count), a history write that failed, the Stardex client's 429 retry line."""
    bucket, stream = MemoryBucket(), io.StringIO()
    from stardex_webhook.config import load_settings
    from stardex_webhook.events import EventHistory
    from stardex_webhook.secrets import SecretProvider

    history = EventHistory(MemoryStore(bucket), SecretProvider(load_settings({})), JsonLog(stream=stream))

    def work(record):
        record.update(source="greenhouse", event="hire", delivery_id="d", received_at=0.0, attempts=2,
                      stardex_calls_last_minute=3)
        return 200, {"status": "updated", "person_id": "p", "fields": ["name"]}, {}

    bucket.blob("dead-letters/greenhouse/20260101T000000Z-a-b.json").upload_from_string("{}")
    bucket.fail_writes = True
    answered(JsonLog(stream=stream), work, history)
    return {key for line in stream.getvalue().splitlines() for key in json.loads(line)}


def test_every_field_a_metric_reads_is_one_the_code_logs():
    read = set()
    for metric in metrics().values():
        text = " ".join([metric["filter"], metric.get("value_extractor") or "", *(metric.get("label_extractors") or {}).values()])
        read |= set(re.findall(r"jsonPayload\.(\w+)", text))
    assert {"source", "outcome", "status_code", "latency_ms", "attempts", "stardex_calls_last_minute",
            "dead_letters_waiting", "oldest_dead_letter_seconds", "reason", "message"} <= read
    assert read - LOGGED_ONCE_ISSUE_22_LANDS <= logged_fields()


def test_the_429_metric_matches_the_stardex_clients_retry_line():
    (metric,) = [m for m in metrics().values() if m["name"].endswith("-stardex-429")]
    pattern = re.search(r'jsonPayload\.message=~"([^"]+)"', metric["filter"]).group(1)
    assert re.search(pattern, "stardex GET /persons/{id}: HTTP 429, retry 1 in 0.25s")
    assert not re.search(pattern, "stardex GET /persons/{id}: HTTP 503, retry 1 in 0.25s")


def test_without_notification_channels_no_new_alert_is_made():
    names = [policy["display_name"] for policy in evaluated("defaults").get("google_monitoring_alert_policy", [])]
    assert not [name for name in names if any(alert in name for alert in NEW_ALERTS)]


def test_with_channels_the_four_alerts_watch_what_a_team_acts_on():
    policies = {alert: policy for policy in evaluated("queued")["google_monitoring_alert_policy"]
                for alert in NEW_ALERTS if alert in policy["display_name"]}
    assert set(policies) == set(NEW_ALERTS)
    for policy in policies.values():
        assert policy["notification_channels"] == ["projects/my-search-firm-prod/notificationChannels/123"]
        assert "python -m stardex_webhook.history" in policy["documentation"]["content"] or "Stardex" in policy["display_name"]
    waiting = policies["dead letter has waited"]["conditions"]["condition_threshold"]
    assert "oldest-dead-letter-seconds" in waiting["filter"] and waiting["threshold_value"] == 3600
    share = policies["sender's webhooks are refused"]["conditions"]["condition_threshold"]
    assert 'status_code=monitoring.regex.full_match("4[0-9][0-9]")' in share["filter"] and "-webhooks" in share["denominator_filter"]
    assert share["duration"] == "900s" and share["threshold_value"] == 0.5
    assert share["aggregations"]["group_by_fields"] == ["metric.label.source"] == share["denominator_aggregations"]["group_by_fields"]
    errors = policies["5xx answers"]["conditions"]["condition_threshold"]
    assert 'full_match("5[0-9][0-9]")' in errors["filter"] and errors["threshold_value"] == 0
    budget = policies["Stardex budget"]["conditions"]["condition_threshold"]
    assert budget["threshold_value"] == 54 and budget["duration"] == "600s"
