# Seeing what happened: log-based metrics read from the function's and the worker's one JSON line per
# webhook (stardex_webhook/pipeline.py answered), a dashboard drawn only from them (and the queue's
# own depth), and alerts a team can act on, made only when notification_channels names somewhere
# to send them. docs/monitoring.md describes each chart and alert; tests/test_infra.py
# checks that every chart names a metric defined here and every metric is charted.

locals {
  alerts = length(var.notification_channels) > 0
  # Every line of the function and the worker, and the webhook answer lines among them.
  service_logs   = "resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"${var.name}\" OR resource.labels.service_name=\"${var.name}-worker\")"
  answer_lines   = "${local.service_logs} AND jsonPayload.message=~\"^webhook \" AND jsonPayload.status_code>0"
  metric_type    = "logging.googleapis.com/user"
  webhooks_type  = "metric.type=\"${local.metric_type}/${google_logging_metric.webhooks.name}\""
  stardex_budget = local.queued ? var.stardex_requests_per_minute : local.requests_per_minute_per_instance * var.max_instances

  # One chart of the dashboard: a title, and its lines (a metric filter, how it is aligned and summed).
  charts = [
    {
      title = "Webhooks per minute, by sender and outcome"
      lines = [{ filter = local.webhooks_type, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", by = ["metric.label.source", "metric.label.outcome"] }]
    },
    {
      title = "Latency (ms): p50, p95, p99"
      lines = [for p in ["50", "95", "99"] : { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.latency.name}\"", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_${p}", by = [] }]
    },
    {
      title     = "Stardex calls in the last minute (against its budget) and 429s"
      threshold = local.stardex_budget
      lines = [
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.stardex_calls.name}\"", aligner = "ALIGN_PERCENTILE_99", reducer = "REDUCE_SUM", by = [] },
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.stardex_429.name}\"", aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", by = [] },
      ]
    },
    {
      title = "Queue depth (queued delivery)"
      lines = [{ filter = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\" AND resource.label.queue_id=\"${var.name}\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_SUM", by = [] }]
    },
    {
      title = "Task attempts per delivery (queued delivery): p50, p99"
      lines = [for p in ["50", "99"] : { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.task_attempts.name}\"", aligner = "ALIGN_DELTA", reducer = "REDUCE_PERCENTILE_${p}", by = [] }]
    },
    {
      title = "Dead letters waiting, and the oldest one's age (s)"
      lines = [
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.dead_letters_waiting.name}\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MAX", by = [] },
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.oldest_dead_letter.name}\"", aligner = "ALIGN_MEAN", reducer = "REDUCE_MAX", by = [] },
      ]
    },
    {
      title = "Webhooks with values left out (skipped), by sender"
      lines = [{ filter = "metric.type=\"${local.metric_type}/${google_logging_metric.skipped.name}\"", aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", by = ["metric.label.source"] }]
    },
    {
      title = "Dead letters and 503 answers; history records not written"
      lines = [
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.undelivered.name}\"", aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", by = ["metric.label.outcome"] },
        { filter = "metric.type=\"${local.metric_type}/${google_logging_metric.history_not_written.name}\"", aligner = "ALIGN_SUM", reducer = "REDUCE_SUM", by = [] },
      ]
    },
  ]
}

# ---- Log-based metrics ---------------------------------------------------------------------------

# One count per webhook answer (the function's and the worker's), by sender, outcome and status code.
resource "google_logging_metric" "webhooks" {
  project = var.project_id
  name    = "${var.name}-webhooks"
  filter  = local.answer_lines

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "source"
      value_type  = "STRING"
      description = "the sender (greenhouse, typeform...)"
    }
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "updated, queued, ignored, duplicate, unauthorized, retry_later..."
    }
    labels {
      key         = "status_code"
      value_type  = "STRING"
      description = "the HTTP status answered"
    }
  }

  label_extractors = {
    source      = "EXTRACT(jsonPayload.source)"
    outcome     = "EXTRACT(jsonPayload.outcome)"
    status_code = "EXTRACT(jsonPayload.status_code)"
  }

  depends_on = [google_project_service.apis]
}

# Each answer's latency_ms, as a distribution (the dashboard's p50, p95, p99).
resource "google_logging_metric" "latency" {
  project         = var.project_id
  name            = "${var.name}-latency"
  filter          = local.answer_lines
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "source"
      value_type = "STRING"
    }
  }

  label_extractors = {
    source = "EXTRACT(jsonPayload.source)"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 1.6
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

# The Stardex calls an instance's limiter granted in the last minute (stardex_calls_last_minute on
# each line that reached Stardex), by instance: summed, the calls against Stardex's 60 a minute.
resource "google_logging_metric" "stardex_calls" {
  project         = var.project_id
  name            = "${var.name}-stardex-calls-last-minute"
  filter          = "${local.service_logs} AND jsonPayload.stardex_calls_last_minute>=0"
  value_extractor = "EXTRACT(jsonPayload.stardex_calls_last_minute)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key         = "instance"
      value_type  = "STRING"
      description = "the instance whose limiter counted them"
    }
  }

  label_extractors = {
    instance = "EXTRACT(labels.instanceId)"
  }

  bucket_options {
    linear_buckets {
      num_finite_buckets = 35
      width              = 2
      offset             = 0
    }
  }

  depends_on = [google_project_service.apis]
}

# Stardex answering 429 (the Stardex client's line for each failed attempt, the last one too).
resource "google_logging_metric" "stardex_429" {
  project = var.project_id
  name    = "${var.name}-stardex-429"
  filter  = "${local.service_logs} AND jsonPayload.message=~\"^stardex .*: HTTP 429\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.apis]
}

# The attempt the queue's task was on when the worker answered (1 = first).
resource "google_logging_metric" "task_attempts" {
  project         = var.project_id
  name            = "${var.name}-task-attempts"
  filter          = "${local.answer_lines} AND resource.labels.service_name=\"${var.name}-worker\" AND jsonPayload.attempts>0"
  value_extractor = "EXTRACT(jsonPayload.attempts)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 8
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

# Every 5 minutes an instance that answers webhooks counts the dead letters waiting in the bucket.
resource "google_logging_metric" "dead_letters_waiting" {
  project         = var.project_id
  name            = "${var.name}-dead-letters-waiting"
  filter          = "${local.service_logs} AND jsonPayload.dead_letters_waiting>=0"
  value_extractor = "EXTRACT(jsonPayload.dead_letters_waiting)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

# ...and the oldest one's age in seconds (the alert on dead letters waiting for more than an hour).
resource "google_logging_metric" "oldest_dead_letter" {
  project         = var.project_id
  name            = "${var.name}-oldest-dead-letter-seconds"
  filter          = "${local.service_logs} AND jsonPayload.oldest_dead_letter_seconds>=0"
  value_extractor = "EXTRACT(jsonPayload.oldest_dead_letter_seconds)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 2
      scale              = 60
    }
  }

  depends_on = [google_project_service.apis]
}

# Answers that left values out (the answer's skipped list), by sender.
resource "google_logging_metric" "skipped" {
  project = var.project_id
  name    = "${var.name}-skipped"
  filter  = "${local.answer_lines} AND jsonPayload.skipped:*"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "source"
      value_type = "STRING"
    }
  }

  label_extractors = {
    source = "EXTRACT(jsonPayload.source)"
  }

  depends_on = [google_project_service.apis]
}

# An event whose history record could not be written (the event itself was answered as usual).
resource "google_logging_metric" "history_not_written" {
  project = var.project_id
  name    = "${var.name}-history-not-written"
  filter  = "${local.service_logs} AND jsonPayload.reason=\"history_not_written\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }

  depends_on = [google_project_service.apis]
}

# ---- The dashboard ---------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "webhooks" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${var.name}: webhooks"
    mosaicLayout = {
      columns = 12
      tiles = [for index, chart in local.charts : {
        xPos   = (index % 2) * 6
        yPos   = floor(index / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = chart.title
          xyChart = merge(
            {
              dataSets = [for line in chart.lines : {
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = line.filter
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = line.aligner
                      crossSeriesReducer = line.reducer
                      groupByFields      = line.by
                    }
                  }
                }
              }]
            },
            lookup(chart, "threshold", null) == null ? {} : { thresholds = [{ value = chart.threshold, label = "Stardex's budget a minute" }] },
          )
        }
      }]
    }
  })

  depends_on = [google_project_service.apis]
}

# ---- Alerts (only with notification_channels) --------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letters_waiting" {
  count = local.alerts ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: a dead letter has waited more than an hour"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "oldest dead letter older than an hour"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${google_logging_metric.oldest_dead_letter.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 3600
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    content   = "An event could not be applied and its dead letter has waited over an hour. Find it: `python -m stardex_webhook.history list --outcome dead_letter --since 1d`; `history show DELIVERY_ID` prints the reason and the exact `replay run` command. Fix the cause (docs/troubleshooting.md), then run it."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "sender_4xx_share" {
  count = local.alerts ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: one sender's webhooks are refused"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "share of 4xx answers for one sender"
    condition_threshold {
      filter             = "${local.webhooks_type} AND resource.type=\"cloud_run_revision\" AND metric.label.status_code=monitoring.regex.full_match(\"4[0-9][0-9]\")"
      denominator_filter = "${local.webhooks_type} AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.sender_4xx_share_alert
      duration           = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.source"]
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.source"]
      }
    }
  }

  documentation {
    content   = "Most of one sender's webhooks have been refused for 15 minutes. 401 unauthorized: its signing secret was rotated on one side only (set the new one with `terraform output -raw secret_commands`; both keys may be set during a rotation). 422: a mapping or the sender's payload changed; `python -m stardex_webhook.history list --source SENDER --since 1h` lists the reasons."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "server_errors" {
  count = local.alerts ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: 5xx answers"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "any 5xx answer"
    condition_threshold {
      filter          = "${local.webhooks_type} AND resource.type=\"cloud_run_revision\" AND metric.label.status_code=monitoring.regex.full_match(\"5[0-9][0-9]\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.source", "metric.label.outcome"]
      }
    }
  }

  documentation {
    content   = "The function answered 5xx. 503 retry_later: Stardex, the sender's API, Secret Manager or the bucket was unavailable, rate limited or slow; the sender (or the queue) retries, and `python -m stardex_webhook.history list --outcome retry_later --since 1h` shows which events and why. 500: a bug; the log line says where."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "stardex_budget" {
  count = local.alerts ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name}: Stardex budget over 90%"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "Stardex calls in the last minute over 90% of the budget for 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${google_logging_metric.stardex_calls.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0.9 * local.stardex_budget
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The function has used over 90% of Stardex's 60 calls a minute for 10 minutes: webhooks will soon wait or answer 503 (the queue absorbs them in queued delivery). Look for a sender replaying a backlog on the dashboard's webhooks chart."
    mime_type = "text/markdown"
  }
}
