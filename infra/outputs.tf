output "url" {
  description = "Base URL of the function; GET <url>/healthz reports the version and the senders that have a signing key."
  value       = google_cloudfunctions2_function.webhook.url
}

output "webhook_urls" {
  description = "The URL to paste into each enabled sender's webhook settings."
  value       = { for s in local.sources : s => "${google_cloudfunctions2_function.webhook.url}/${s}" }
}

output "service_account_email" {
  description = "The runtime service account; it can read the function's secrets and nothing else."
  value       = google_service_account.runtime.email
}

output "secrets" {
  description = "Setting name => Secret Manager secret the function reads it from (latest version)."
  value       = { for name, secret in google_secret_manager_secret.this : name => secret.id }
}

output "secret_commands" {
  description = "One command per secret that prompts for the value (not echoed, not in shell history) and stores it as a new version; run it again to rotate."
  value = {
    for name, secret in google_secret_manager_secret.this :
    name => "read -rsp '${name}: ' VALUE && printf '%s' \"$VALUE\" | gcloud secrets versions add ${secret.secret_id} --project=${var.project_id} --data-file=- && unset VALUE"
  }
}
