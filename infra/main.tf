locals {
  # Every sender the function knows comes from the code (local.known_sources in sources.tf, written by
  # `python -m stardex_webhook.sources`), with whether its own API key is needed to read the person
  # behind an id-only webhook. A test keeps that file in step with the code.
  sources = var.sources == null ? sort(keys(local.known_sources)) : distinct(var.sources)

  # Setting name => Secret Manager secret ID. The function reads each as NAME_SECRET (docs/contract.md).
  secrets = merge(
    { STARDEX_API_KEY = "${var.name}-stardex-api-key" },
    { for s in local.sources : "${upper(replace(s, "-", "_"))}_SIGNING_KEY" => "${var.name}-${s}-signing-key" },
    { for s in local.sources : "${upper(replace(s, "-", "_"))}_API_KEY" => "${var.name}-${s}-api-key" if local.known_sources[s].api_key },
    # The event history's key for the hashes of emails and LinkedIn URLs (docs/history.md).
    var.state_bucket ? { HISTORY_KEY = "${var.name}-history-key" } : {},
  )

  # What the deployed function runs, and nothing else: no tests, infra, bench, CI or VCS files, and
  # none of the package's local tools. The tools stay in the package, so that
  # `python -m stardex_webhook.plan` (and the others) work from a clone; they are listed here, once:
  # the commands a person runs (serve, send_sample, plan, replay, history, custom_fields_check, `python -m
  # stardex_webhook.sources`), the sandbox Stardex (fake_stardex) and the samples send_sample signs.
  # A test (tests/test_infra.py) holds the archive to exactly the modules `import main` loads.
  repo_root = "${path.module}/.."
  tool_files = setunion(
    fileset(local.repo_root, "stardex_webhook/{serve,send_sample,plan,replay,history,fake_stardex,custom_fields_check}.py"),
    fileset(local.repo_root, "stardex_webhook/sources/__main__.py"),
    fileset(local.repo_root, "stardex_webhook/samples/**"),
  )
  source_files = sort([
    for f in setunion(
      fileset(local.repo_root, "main.py"),
      fileset(local.repo_root, "requirements.txt"),
      setsubtract(fileset(local.repo_root, "stardex_webhook/**/*.py"), local.tool_files),
      fileset(local.repo_root, "schemas/*.json"),
      fileset(local.repo_root, "mappings/*.json"),
    ) : f if length(regexall("(^|/)__pycache__/", f)) == 0
  ])
  # The user's own mapping files (var.mappings_dir), shipped as custom_mappings/ and named by
  # MAPPINGS_DIR: each replaces the built-in file of its sender (docs/mappings.md).
  custom_mappings = var.mappings_dir == null ? [] : sort(fileset(var.mappings_dir, "*.[jJ][sS][oO][nN]"))
  # Named by the hash of what it holds, so any code or mapping change uploads a new object and redeploys.
  source_hash = sha256(join("\n", concat(
    [for f in local.source_files : "${f} ${filesha256("${local.repo_root}/${f}")}"],
    [for f in local.custom_mappings : "custom_mappings/${f} ${filesha256("${var.mappings_dir}/${f}")}"],
  )))

  # Stardex's limit is per API key; every instance paces itself, so each gets an equal share
  # (max_instances may not exceed stardex_requests_per_minute, so the share is at least 1).
  requests_per_minute_per_instance = floor(var.stardex_requests_per_minute / var.max_instances)

  # The runtime identity: the account the user names, or one this module creates.
  runtime_email = var.runtime_service_account_email != null ? var.runtime_service_account_email : google_service_account.runtime[0].email

  environment = merge(
    {
      STARDEX_API_BASE         = var.stardex_api_base
      DRY_RUN                  = var.dry_run ? "1" : "0"
      ALLOW_UNSIGNED           = "0"
      MAX_BODY_BYTES           = tostring(var.max_body_bytes)
      LOG_LEVEL                = var.log_level
      STARDEX_DEADLINE_SECONDS = tostring(min(20, var.timeout_seconds - 10))
      # A de-duplication claim pending longer than this has no live attempt: the next one takes it over.
      FUNCTION_TIMEOUT_SECONDS    = tostring(var.timeout_seconds)
      STARDEX_REQUESTS_PER_MINUTE = tostring(local.requests_per_minute_per_instance)
      SECRET_TTL_SECONDS          = tostring(var.secret_ttl_seconds)
      # functions-framework's gunicorn runs one worker with THREADS threads: one per concurrent request.
      THREADS = tostring(var.concurrency)
    },
    var.phone_default_region == null ? {} : { PHONE_DEFAULT_REGION = var.phone_default_region },
    # Relative to the function's working directory, the archive's root.
    var.mappings_dir == null ? {} : { MAPPINGS_DIR = "custom_mappings" },
    { for name, secret in google_secret_manager_secret.this : "${name}_SECRET" => "${secret.id}/versions/latest" },
  )

  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudtasks.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]

  labels = merge(var.labels, { app = "stardex-webhook" })

  # The uptime check calls <url>/healthz: the function's URL is https://HOST/NAME.
  function_host = split("/", trimprefix(google_cloudfunctions2_function.webhook.url, "https://"))[0]
  function_path = trimprefix(google_cloudfunctions2_function.webhook.url, "https://${local.function_host}")
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---- The code ------------------------------------------------------------------------------

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/.build/${var.name}-${substr(local.source_hash, 0, 16)}.zip"

  dynamic "source" {
    for_each = toset(local.source_files)
    content {
      filename = source.value
      content  = file("${local.repo_root}/${source.value}")
    }
  }
  dynamic "source" {
    for_each = toset(local.custom_mappings)
    content {
      filename = "custom_mappings/${source.value}"
      content  = file("${var.mappings_dir}/${source.value}")
    }
  }
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: Holds only the source archives Terraform itself uploads; Cloud Audit Logs already record who changed it, and an access-log bucket would log Cloud Build's reads alone.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  versioning {
    enabled = true
  }

  # Objects are named by content hash, so an old one is never overwritten: keep a few days of them.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "${var.name}-${local.source_hash}.zip"
  source = data.archive_file.source.output_path
}

# ---- Identities ----------------------------------------------------------------------------

resource "google_service_account" "runtime" {
  count = var.runtime_service_account_email == null ? 1 : 0

  project      = var.project_id
  account_id   = var.name
  display_name = "${var.name} runtime: reads its own secrets, nothing else"

  depends_on = [google_project_service.apis]
}

# Deployments made before runtime_service_account_email existed keep their account.
moved {
  from = google_service_account.runtime
  to   = google_service_account.runtime[0]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "${var.name} build: Cloud Build for the function's image"

  depends_on = [google_project_service.apis]
}

# What Cloud Build needs to turn the source into the function's image, each on the one resource
# it is used on: read the source archive, push the image to this function's registry, write the
# build's log (Cloud Logging grants that per project only; it lets the account write, not read).
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_image" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_project_iam_member" "build_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# The function's images, apart from any other function's, so the build account can push here only.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: Holds only images built from this public code, no data; Google-managed encryption is enough and a KMS key would cost more than the rest of the deployment.
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  format        = "DOCKER"
  description   = "Images of the ${var.name} function, built by Cloud Build."
  labels        = local.labels

  # Every deploy builds an image: keep the last few (for a rollback) and delete the rest after a week.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.apis]
}

# ---- Secrets: the resources only; values go in with the gcloud commands the outputs print -----

resource "google_secret_manager_secret" "this" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  # Google chooses where the value is kept, unless secret_replica_locations names the regions.
  replication {
    dynamic "auto" {
      for_each = var.secret_replica_locations == null ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = var.secret_replica_locations == null ? [] : [1]
      content {
        dynamic "replicas" {
          for_each = toset(coalesce(var.secret_replica_locations, []))
          content {
            location = replicas.value
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = google_secret_manager_secret.this

  project   = var.project_id
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${local.runtime_email}"
}

# Only when the user opts in through secret_values (values then live in the Terraform state).
resource "google_secret_manager_secret_version" "opt_in" {
  for_each = nonsensitive(toset(keys(var.secret_values)))

  secret      = google_secret_manager_secret.this[each.value].id
  secret_data = var.secret_values[each.value]
}

# ---- The function --------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "webhook" {
  # checkov:skip=CKV_GCP_124: Webhook senders call from the public internet and cannot authenticate to Google; every request's signature is verified in the code before any work.
  project     = var.project_id
  name        = var.name
  location    = var.region
  description = "Verifies ATS and form webhooks and updates people in Stardex."
  labels      = local.labels

  build_config {
    runtime           = "python312"
    entry_point       = "handle_webhook"
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
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    service_account_email            = local.runtime_email
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.environment, local.durable_environment)
  }

  depends_on = [
    google_project_service.apis,
    google_storage_bucket_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_image,
    google_project_iam_member.build_writes_logs,
    google_secret_manager_secret_iam_member.runtime,
    # queued: what its settings name (durable.tf) exists first.
    google_cloud_tasks_queue.deliveries,
    google_cloud_tasks_queue_iam_member.runtime_enqueues,
    google_service_account_iam_member.runtime_acts_as_tasks,
    google_cloudfunctions2_function.worker,
    google_storage_bucket.state,
    google_storage_bucket_iam_member.runtime_state,
  ]
}

# Senders cannot authenticate to Google: anyone may call the URL, and each sender's signature
# (checked in the code, constant-time) is the guard.
resource "google_cloud_run_v2_service_iam_member" "public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.webhook.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ---- Is it up? -----------------------------------------------------------------------------

# GET /healthz from three regions every five minutes; the alert fires when the check has failed
# for ten minutes and notifies the channels in notification_channels (none by default: the
# incident then shows in the console only).
resource "google_monitoring_uptime_check_config" "healthz" {
  count = var.uptime_check ? 1 : 0

  project          = var.project_id
  display_name     = "${var.name} /healthz"
  timeout          = "10s"
  period           = "300s"
  selected_regions = ["EUROPE", "USA", "ASIA_PACIFIC"]
  user_labels      = local.labels

  http_check {
    path         = "${local.function_path}/healthz"
    port         = 443
    use_ssl      = true
    validate_ssl = true
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = local.function_host
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "healthz" {
  count = var.uptime_check ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name} is down"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "GET /healthz fails"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.label.check_id=\"${google_monitoring_uptime_check_config.healthz[0].uptime_check_id}\" AND resource.type=\"uptime_url\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "600s"
      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
    }
  }

  documentation {
    content   = "GET ${google_cloudfunctions2_function.webhook.url}/healthz has failed from more than one region for ten minutes: webhooks are not being received. Senders retry, but Greenhouse disables a webhook after repeated failures."
    mime_type = "text/markdown"
  }
}
