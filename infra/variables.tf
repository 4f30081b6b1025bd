variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits or hyphens, starting with a letter), not a project name or number."
  }
}

variable "region" {
  description = "The region of the function and its source bucket, e.g. europe-west1."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Cloud region such as us-central1 or europe-west1, not a zone."
  }
}

variable "name" {
  description = "Name of the function; also the prefix of its service accounts, secrets and bucket."
  type        = string
  default     = "stardex-webhook"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,22}[a-z0-9]$", var.name))
    error_message = "name must be 6 to 24 lowercase letters, digits or hyphens, starting with a letter (it prefixes service account IDs, which allow 30)."
  }
}

variable "sources" {
  description = "Senders to enable (path segments such as greenhouse or typeform). Each gets a webhook URL and a signing-key secret. null enables every sender the code knows."
  type        = list(string)
  default     = null

  validation {
    condition     = var.sources == null || alltrue([for s in coalesce(var.sources, []) : contains(keys(local.known_sources), s)])
    error_message = "Every entry of sources must be a sender the function knows: see known_sources in main.tf."
  }

  validation {
    condition     = var.sources == null || length(coalesce(var.sources, [])) > 0
    error_message = "sources must name at least one sender, or be null for all of them."
  }
}

variable "memory" {
  description = "Memory of each instance."
  type        = string
  default     = "512Mi"

  validation {
    condition     = contains(["512Mi", "1Gi", "2Gi", "4Gi"], var.memory)
    error_message = "memory must be one of 512Mi, 1Gi, 2Gi, 4Gi (at least 512Mi, since more than one request per instance needs a whole CPU)."
  }
}

variable "cpu" {
  description = "vCPUs of each instance. Serving more than one request at a time needs at least 1."
  type        = string
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4"], var.cpu)
    error_message = "cpu must be 1, 2 or 4."
  }
}

variable "timeout_seconds" {
  description = "Longest a webhook may take. The function's Stardex deadline is kept 10 seconds shorter, so a slow Stardex gets a 503 (retry) instead of a cut connection."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 3600 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 30 to 3600."
  }
}

variable "min_instances" {
  description = "Instances kept warm. 0 costs nothing when idle; 1 removes cold starts."
  type        = number
  default     = 0

  validation {
    condition     = var.min_instances >= 0 && var.min_instances <= 10 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number from 0 to 10."
  }

  validation {
    condition     = var.min_instances <= var.max_instances
    error_message = "min_instances cannot be more than max_instances."
  }
}

variable "max_instances" {
  description = "Upper bound on instances. Webhooks are delivered synchronously and Stardex allows 60 requests a minute per key; each instance paces itself at floor(stardex_requests_per_minute / max_instances). 1 (the default) gives the one instance the whole rate, and concurrency lets it serve many webhooks at once; more instances add CPU and availability during a burst, but each then runs at its share only (3 => 20 a minute each) even when it is the only one awake."
  type        = number
  default     = 1

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 20 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number from 1 to 20: more instances cannot go faster than Stardex's rate limit."
  }

  validation {
    condition     = var.max_instances <= var.stardex_requests_per_minute
    error_message = "max_instances cannot be more than stardex_requests_per_minute: each instance needs at least one request a minute."
  }
}

variable "concurrency" {
  description = "Requests one instance serves at once (more than 1: webhooks mostly wait on Stardex)."
  type        = number
  default     = 16

  validation {
    condition     = var.concurrency >= 2 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number from 2 to 1000."
  }
}

variable "log_level" {
  description = "Lowest severity logged: DEBUG, INFO, WARNING or ERROR."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "dry_run" {
  description = "Map and validate every webhook but never call Stardex (answers show the body that would have been sent)."
  type        = bool
  default     = false
}

variable "stardex_api_base" {
  description = "Stardex API base URL, ending in the API version (/v1): the function does not start without it."
  type        = string
  default     = "https://api.stardex.ai/v1"

  validation {
    condition     = can(regex("^https://[^/]+(/.*)?/v[0-9]+/*$", var.stardex_api_base))
    error_message = "stardex_api_base must be an https:// URL ending in the API version, such as https://api.stardex.ai/v1."
  }
}

variable "stardex_requests_per_minute" {
  description = "Stardex requests per minute this deployment may make in all, shared out evenly between max_instances."
  type        = number
  default     = 60

  validation {
    condition     = var.stardex_requests_per_minute >= 1 && floor(var.stardex_requests_per_minute) == var.stardex_requests_per_minute
    error_message = "stardex_requests_per_minute must be a whole number of at least 1."
  }
}

variable "max_body_bytes" {
  description = "Largest webhook body accepted, in bytes; larger ones get 413."
  type        = number
  default     = 1048576

  validation {
    condition     = var.max_body_bytes >= 1024 && var.max_body_bytes <= 33554432 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be a whole number from 1024 to 33554432 (Cloud Run's 32 MiB request limit)."
  }
}

variable "phone_default_region" {
  description = "ISO 3166 alpha-2 region (e.g. GB, not UK) for phone numbers written without a country code; null sends them as written."
  type        = string
  default     = null

  validation {
    # The regions the function's phonenumbers knows (it refuses any other at start): tests/test_infra.py keeps them equal.
    condition     = var.phone_default_region == null || contains(split(" ", "AC AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GT GU GW GY HK HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TA TC TD TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW"), coalesce(var.phone_default_region, "-"))
    error_message = "phone_default_region must be a region code the phonenumbers library knows, in capitals, such as GB (not UK) or US, or null."
  }
}

variable "mappings_dir" {
  description = "A folder of your own mapping files (<sender>.json, docs/mappings.md), each replacing the built-in mapping of its sender: deployed with the code, and named by MAPPINGS_DIR. A path from where terraform runs, such as \"$${path.root}/mappings\"; null: the built-in mappings only."
  type        = string
  default     = null

  validation {
    condition     = var.mappings_dir == null || length(fileset(coalesce(var.mappings_dir, "."), "*.[jJ][sS][oO][nN]")) > 0
    error_message = "mappings_dir must be a folder holding at least one <sender>.json mapping file."
  }
}

variable "secret_ttl_seconds" {
  description = "How long an instance keeps a secret value before reading it again, so a new version is picked up without a redeploy."
  type        = number
  default     = 300

  validation {
    condition     = var.secret_ttl_seconds >= 0 && var.secret_ttl_seconds <= 86400
    error_message = "secret_ttl_seconds must be from 0 to 86400."
  }
}

variable "secret_values" {
  description = "Opt-in: secret values to store from Terraform, keyed by setting name (STARDEX_API_KEY, GREENHOUSE_SIGNING_KEY, ...). They end up in the Terraform state; leave empty and use the printed gcloud commands to keep them out."
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition     = alltrue([for k in keys(var.secret_values) : contains(keys(local.secrets), k)])
    error_message = "secret_values keys must be settings this deployment has a secret for: STARDEX_API_KEY, or <SOURCE>_SIGNING_KEY of an enabled source."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes them (with app = stardex-webhook)."
  type        = map(string)
  default     = {}
}

variable "runtime_service_account_email" {
  description = "An existing service account for the function to run as; null creates one. The module grants it read access to the function's secrets, and nothing else."
  type        = string
  default     = null

  validation {
    condition     = var.runtime_service_account_email == null || can(regex("^[^@\\s]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", coalesce(var.runtime_service_account_email, "-")))
    error_message = "runtime_service_account_email must be a service account's email (NAME@PROJECT.iam.gserviceaccount.com), or null."
  }
}

variable "secret_replica_locations" {
  description = "Regions to keep the secret values in (user-managed replication, e.g. [\"europe-west1\", \"europe-west4\"] for EU data residency); null lets Google choose (automatic replication). Changing it replaces the secrets: store their values again."
  type        = list(string)
  default     = null

  validation {
    condition     = var.secret_replica_locations == null || length(coalesce(var.secret_replica_locations, [])) > 0
    error_message = "secret_replica_locations must name at least one region, or be null."
  }
}

variable "uptime_check" {
  description = "Create an uptime check on GET <url>/healthz (every 5 minutes from 3 regions) and an alert policy that fires when it fails."
  type        = bool
  default     = true
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) the alerts notify (the uptime check, dead letters and 503s); only when some are named are the four more alerts made (a dead letter waiting over an hour, one sender refused, 5xx answers, Stardex budget over 90%). None by default: incidents show in the console and on the dashboard only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Every notification channel must be a full name: projects/P/notificationChannels/ID."
  }
}

# ---- Queued delivery and what is never lost ----------------------------------------------------

variable "delivery_mode" {
  description = "sync: the function calls Stardex inside the webhook's request (the default). queued: the function verifies the webhook, claims its delivery id and hands the raw delivery to a Cloud Tasks queue, answering 200 queued; a second, private function (the worker) reads the sender's API where needed, maps, validates and calls Stardex at the pace Stardex allows, with retries for a day. queued needs state_bucket."
  type        = string
  default     = "sync"

  validation {
    condition     = contains(["sync", "queued"], var.delivery_mode)
    error_message = "delivery_mode must be sync or queued."
  }

  validation {
    condition     = var.delivery_mode != "queued" || var.state_bucket
    error_message = "delivery_mode = \"queued\" needs state_bucket = true: a queued delivery is claimed there, and kept there when it cannot be applied."
  }
}

variable "state_bucket" {
  description = "Make the private state bucket (STATE_BUCKET): de-duplication of deliveries by their delivery id, and dead letters for events that cannot be applied, which python -m stardex_webhook.replay replays. false: no de-duplication, and failures are only logged."
  type        = bool
  default     = true
}

variable "claim_retention_days" {
  description = "Days a delivery's de-duplication marker (deliveries/) is kept: a sender's repeat of the same delivery within this time answers 200 duplicate. A bucket lifecycle rule deletes older markers."
  type        = number
  default     = 7

  validation {
    condition     = var.claim_retention_days >= 1 && var.claim_retention_days <= 365 && floor(var.claim_retention_days) == var.claim_retention_days
    error_message = "claim_retention_days must be a whole number of days from 1 to 365."
  }
}

variable "dead_letter_retention_days" {
  description = "Days a dead letter (dead-letters/: the event's headers without signatures, its body, which holds personal data, and the error) is kept before a bucket lifecycle rule deletes it. Replay within that time. A queued delivery too large for a task (payloads/) left behind is deleted after as long."
  type        = number
  default     = 30

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 3650 && floor(var.dead_letter_retention_days) == var.dead_letter_retention_days
    error_message = "dead_letter_retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "state_kms_key_name" {
  description = "A Cloud KMS key, by its resource name (projects/.../locations/.../keyRings/.../cryptoKeys/..., in the bucket's region), to encrypt the state bucket with (CMEK); the module grants Cloud Storage's service agent the use of it. null: Google-managed encryption, which encrypts every object at rest too."
  type        = string
  default     = null

  validation {
    condition     = var.state_kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", coalesce(var.state_kms_key_name, "-")))
    error_message = "state_kms_key_name must be a key resource name (projects/.../keyRings/.../cryptoKeys/...), or null."
  }
}

variable "queue_max_dispatches_per_second" {
  description = "queued: the most tasks the queue hands the worker per second. Kept under Stardex's 60 requests a minute (0.9 a second, the default, is 54 tasks a minute); the worker's own limiter paces the Stardex calls exactly, since one event may cost more than one call."
  type        = number
  default     = 0.9

  validation {
    condition     = var.queue_max_dispatches_per_second > 0 && var.queue_max_dispatches_per_second <= 1
    error_message = "queue_max_dispatches_per_second must be above 0 and at most 1 (Stardex allows 60 requests a minute)."
  }
}

variable "worker_concurrency" {
  description = "queued: tasks the worker serves at once (the queue's max_concurrent_dispatches, and the worker's threads). The worker runs as one instance, so its limiter holds all of Stardex's rate."
  type        = number
  default     = 4

  validation {
    condition     = var.worker_concurrency >= 1 && var.worker_concurrency <= 50 && floor(var.worker_concurrency) == var.worker_concurrency
    error_message = "worker_concurrency must be a whole number from 1 to 50."
  }
}

variable "task_deadline_seconds" {
  description = "queued: the time one task may spend on Stardex, waits for the rate limiter included (TASK_DEADLINE_SECONDS); no sender waits, so it is longer than a webhook's. The worker's timeout is 30 s more."
  type        = number
  default     = 120

  validation {
    condition     = var.task_deadline_seconds >= 30 && var.task_deadline_seconds <= 540
    error_message = "task_deadline_seconds must be from 30 to 540 (the worker's timeout, 30 s more, stays under Cloud Tasks' 10-minute dispatch deadline)."
  }
}

variable "task_max_attempts" {
  description = "queued: attempts per task before it is dead-lettered (TASK_MAX_ATTEMPTS for the worker, which dead-letters on that attempt instead of failing; the queue's max_attempts is 12 more, so that a bucket that is down then does not drop the event). With the backoff of 10 s doubling 9 times to 3600 s, 36 attempts span about 27 hours, past task_max_retry_seconds."
  type        = number
  default     = 36

  validation {
    condition     = var.task_max_attempts >= 2 && var.task_max_attempts <= 100 && floor(var.task_max_attempts) == var.task_max_attempts
    error_message = "task_max_attempts must be a whole number from 2 to 100."
  }
}

variable "task_max_retry_seconds" {
  description = "queued: how long the queue retries a task that Stardex cannot take (its max_retry_duration); at least a day."
  type        = number
  default     = 86400

  validation {
    condition     = var.task_max_retry_seconds >= 86400 && floor(var.task_max_retry_seconds) == var.task_max_retry_seconds
    error_message = "task_max_retry_seconds must be a whole number of seconds, at least 86400 (a day)."
  }
}

variable "undelivered_alert_threshold" {
  description = "The alert on dead letters and 503 answers fires when more than this many are logged in 5 minutes, and notifies notification_channels. 0: any one."
  type        = number
  default     = 0

  validation {
    condition     = var.undelivered_alert_threshold >= 0
    error_message = "undelivered_alert_threshold must be 0 or more."
  }
}

# ---- Seeing what happened ---------------------------------------------------------------------------

variable "history_retention_days" {
  description = "Days an event's history record (events/ in the state bucket: ids, outcome, fields written, keyed hashes, no personal data) is kept before a bucket lifecycle rule deletes it; python -m stardex_webhook.history reads them."
  type        = number
  default     = 30

  validation {
    condition     = var.history_retention_days >= 1 && var.history_retention_days <= 365 && floor(var.history_retention_days) == var.history_retention_days
    error_message = "history_retention_days must be a whole number of days from 1 to 365."
  }
}

variable "sender_4xx_share_alert" {
  description = "The alert on one sender's refused webhooks fires when more than this share of its answers are 4xx for 15 minutes (a signing secret rotated on one side only looks exactly like this). Made only with notification_channels."
  type        = number
  default     = 0.5

  validation {
    condition     = var.sender_4xx_share_alert > 0 && var.sender_4xx_share_alert <= 1
    error_message = "sender_4xx_share_alert must be a share above 0 and at most 1."
  }
}
