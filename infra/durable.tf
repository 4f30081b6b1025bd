# Queued delivery and what is never lost: the state bucket (de-duplication markers and dead
# letters), and with delivery_mode = "queued" the Cloud Tasks queue, its service account and the
# private worker function. The log-based metric and its alert watch both modes.

locals {
  queued = var.delivery_mode == "queued"
  # Attempts the queue keeps past the worker's dead-letter attempt (TASK_MAX_ATTEMPTS), for a bucket
  # that cannot take the dead letter then: 12 more hours of hourly tries.
  dead_letter_attempts = 12

  # Names known before apply (the resources below make exactly these), so that the function's
  # settings never wait on another resource's attributes; main.tf's depends_on orders the apply.
  tasks_queue_id      = "projects/${var.project_id}/locations/${var.region}/queues/${var.name}"
  tasks_account_email = "${var.name}-tasks@${var.project_id}.iam.gserviceaccount.com"
  worker_url          = "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.name}-worker"
  state_bucket_name   = "${var.project_id}-${var.name}-state"

  # Both functions: the bucket, the queue (the worker checks the task came from it), the task's
  # limits (the public function reads them too, as replay does), the limiter's window.
  durable_common = merge(
    var.state_bucket ? { STATE_BUCKET = local.state_bucket_name } : {},
    local.queued ? { TASKS_QUEUE = local.tasks_queue_id } : {},
    {
      TASK_DEADLINE_SECONDS       = tostring(var.task_deadline_seconds)
      TASK_MAX_ATTEMPTS           = tostring(var.task_max_attempts)
      STARDEX_RATE_WINDOW_SECONDS = "60"
    },
  )

  # What the public function adds to local.environment (main.tf).
  durable_environment = merge(
    local.durable_common,
    { DELIVERY = var.delivery_mode },
    local.queued ? {
      TASKS_WORKER_URL      = local.worker_url
      TASKS_SERVICE_ACCOUNT = local.tasks_account_email
    } : {},
  )

  # The worker delivers (DELIVERY stays sync there); one instance holds all of Stardex's rate.
  worker_environment = merge(
    local.environment,
    local.durable_common,
    {
      STARDEX_REQUESTS_PER_MINUTE = tostring(var.stardex_requests_per_minute)
      THREADS                     = tostring(var.worker_concurrency)
      FUNCTION_TIMEOUT_SECONDS    = tostring(var.task_deadline_seconds + 30)
    },
  )
}

# ---- The state bucket ----------------------------------------------------------------------

resource "google_storage_bucket" "state" {
  # checkov:skip=CKV_GCP_62: Access logs would copy who read which dead letter into a second bucket; Cloud Audit Logs (Data Access, if enabled) record it without another store of names.
  # checkov:skip=CKV_GCP_78: Versioning is off on purpose: a released claim must be gone, and a replayed dead letter (personal data) must be deleted, not kept as a noncurrent version.
  count = var.state_bucket ? 1 : 0

  project                     = var.project_id
  name                        = local.state_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  versioning {
    enabled = false
  }

  # Markers only need to outlive a sender's retries of the same delivery.
  lifecycle_rule {
    condition {
      age            = var.claim_retention_days
      matches_prefix = ["deliveries/"]
    }
    action {
      type = "Delete"
    }
  }

  # Dead letters hold personal data: kept for the replay window, then deleted.
  lifecycle_rule {
    condition {
      age            = var.dead_letter_retention_days
      matches_prefix = ["dead-letters/"]
    }
    action {
      type = "Delete"
    }
  }

  # The event history (no personal data): what python -m stardex_webhook.history reads.
  lifecycle_rule {
    condition {
      age            = var.history_retention_days
      matches_prefix = ["events/"]
    }
    action {
      type = "Delete"
    }
  }

  # A queued delivery too large for a task (payloads/) is deleted by the worker once settled;
  # one left behind (the bucket failed then) holds personal data like a dead letter.
  lifecycle_rule {
    condition {
      age            = var.dead_letter_retention_days
      matches_prefix = ["payloads/"]
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.state_kms_key_name == null ? [] : [1]
    content {
      default_kms_key_name = var.state_kms_key_name
    }
  }

  depends_on = [google_project_service.apis, google_kms_crypto_key_iam_member.state]
}

# With a key of the user's, Cloud Storage's service agent must be allowed to use it.
data "google_storage_project_service_account" "this" {
  count = var.state_kms_key_name == null ? 0 : 1

  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "state" {
  count = var.state_kms_key_name == null ? 0 : 1

  crypto_key_id = var.state_kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.this[0].email_address}"
}

# Claims are created, rewritten (marked done, or taken over when abandoned) and deleted, dead letters
# written (and, by replay, listed, read and deleted):
# object access on this bucket only.
resource "google_storage_bucket_iam_member" "runtime_state" {
  count = var.state_bucket ? 1 : 0

  bucket = google_storage_bucket.state[0].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${local.runtime_email}"
}

# ---- The queue -------------------------------------------------------------------------------

resource "google_cloud_tasks_queue" "deliveries" {
  count = local.queued ? 1 : 0

  project  = var.project_id
  name     = var.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.queue_max_dispatches_per_second
    max_concurrent_dispatches = var.worker_concurrency
  }

  # Exponential backoff from 10 s, doubling 9 times, then every hour: with 36 attempts about
  # 27 hours. The worker dead-letters on attempt TASK_MAX_ATTEMPTS; the queue keeps
  # local.dead_letter_attempts more (hourly), so that a bucket that is down at that moment does not
  # drop the event: the worker answers 503 and tries to dead-letter it again on each of them.
  retry_config {
    max_attempts       = var.task_max_attempts + local.dead_letter_attempts
    max_retry_duration = "${var.task_max_retry_seconds}s"
    min_backoff        = "10s"
    max_backoff        = "3600s"
    max_doublings      = 9
  }

  depends_on = [google_project_service.apis]
}

# The identity whose OIDC token each task carries: the only one that may invoke the worker.
resource "google_service_account" "tasks" {
  count = local.queued ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-tasks"
  display_name = "${var.name} tasks: the queue's identity, may invoke the worker only"

  depends_on = [google_project_service.apis]
}

# The public function enqueues to this queue only...
resource "google_cloud_tasks_queue_iam_member" "runtime_enqueues" {
  count = local.queued ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.deliveries[0].name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${local.runtime_email}"
}

# ...and may name the tasks account on a task (Cloud Tasks requires actAs for an OIDC token).
resource "google_service_account_iam_member" "runtime_acts_as_tasks" {
  count = local.queued ? 1 : 0

  service_account_id = google_service_account.tasks[0].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${local.runtime_email}"
}

# ---- The worker ------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "worker" {
  # checkov:skip=CKV_GCP_124: Cloud Tasks reaches the worker over its public URL; only the tasks account holds roles/run.invoker (no allUsers), so Google's front end refuses every other caller before the code runs.
  count = local.queued ? 1 : 0

  project     = var.project_id
  name        = "${var.name}-worker"
  location    = var.region
  description = "Delivers the queued webhooks to Stardex; invoked by its Cloud Tasks queue only."
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "handle_task"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.images.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    timeout_seconds                  = var.task_deadline_seconds + 30
    min_instance_count               = 0
    max_instance_count               = 1
    max_instance_request_concurrency = var.worker_concurrency
    service_account_email            = local.runtime_email
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.worker_environment
  }

  depends_on = [
    google_project_service.apis,
    google_storage_bucket_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_image,
    google_project_iam_member.build_writes_logs,
    google_secret_manager_secret_iam_member.runtime,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "worker_invoker" {
  count = local.queued ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.worker[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks[0].email}"
}

# ---- Someone hears about it ------------------------------------------------------------------

# One count for both: a dead letter (an event that could not be applied: its ERROR line; the
# worker's answer line says dead_lettered too, at INFO) and a 503 (an event the sender or the
# queue must try again), from the function and the worker.
resource "google_logging_metric" "undelivered" {
  project = var.project_id
  name    = "${var.name}-undelivered"
  filter  = "resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"${var.name}\" OR resource.labels.service_name=\"${var.name}-worker\") AND ((severity=ERROR AND jsonPayload.outcome=\"dead_lettered\") OR jsonPayload.status_code=503)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "dead_lettered, or retry_later for a 503"
    }
  }

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "undelivered" {
  project               = var.project_id
  display_name          = "${var.name}: dead letters or 503s"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "dead letters and 503 answers"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.undelivered.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.undelivered_alert_threshold
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "${var.name} logged dead letters or 503 answers. A dead letter is an event that could not be applied (a broken mapping, a person Stardex does not have): see the ERROR lines with outcome dead_lettered, fix the cause, then replay with `STATE_BUCKET=${local.state_bucket_name} python -m stardex_webhook.replay run --all`. 503s mean Stardex or Secret Manager was unavailable; the sender or the queue retries."
    mime_type = "text/markdown"
  }
}
