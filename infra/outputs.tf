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
