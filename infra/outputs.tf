output "url" {
  description = "Base URL of the function; GET <url>/healthz reports the version and the senders whose signing key is set up (it reads no secret: one with no version stored yet is listed too)."
  value       = google_cloudfunctions2_function.webhook.url
}

output "webhook_urls" {
  description = "The URL to paste into each enabled sender's webhook settings."
  value       = { for s in local.sources : s => "${google_cloudfunctions2_function.webhook.url}/${s}" }
}

output "service_account_email" {
  description = "The runtime service account; it can read the function's secrets and nothing else."
  value       = local.runtime_email
}

output "secrets" {
  description = "Setting name => Secret Manager secret the function reads it from (latest version)."
  value       = { for name, secret in google_secret_manager_secret.this : name => secret.id }
}

output "secret_commands" {
  description = "Print with terraform output -raw secret_commands and paste into bash: it asks for each secret in turn (not echoed, not in shell history; Enter skips one) and stores it as a new version. Paste it again to rotate."
  # One brace group, so that bash reads all of it before the first prompt reads a value.
  value = join("\n", concat(
    ["{"],
    [
      for name, secret_id in local.secrets :
      "  read -rsp '${name} (Enter skips): ' VALUE && echo && { [ -z \"$VALUE\" ] || printf '%s' \"$VALUE\" | gcloud secrets versions add ${secret_id} --project=${var.project_id} --data-file=- ; }"
    ],
    ["  unset VALUE", "}", ""],
  ))
}

output "state_bucket" {
  description = "The private bucket of de-duplication markers and dead letters (STATE_BUCKET), or null when state_bucket is false. Replay with STATE_BUCKET=<it> python -m stardex_webhook.replay list."
  value       = var.state_bucket ? google_storage_bucket.state[0].name : null
}

output "tasks_queue" {
  description = "queued: the Cloud Tasks queue the function enqueues to (TASKS_QUEUE); null in sync mode."
  value       = local.queued ? google_cloud_tasks_queue.deliveries[0].id : null
}

output "worker_url" {
  description = "queued: the private worker's URL (only the queue's service account may invoke it); null in sync mode."
  value       = local.queued ? google_cloudfunctions2_function.worker[0].url : null
}
