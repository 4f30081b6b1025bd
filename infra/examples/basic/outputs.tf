output "url" {
  description = "Base URL of the function; GET <url>/healthz reports the version and the senders whose signing key is set up (it reads no secret: one with no version stored yet is listed too)."
  value       = module.stardex_webhook.url
}

output "webhook_urls" {
  description = "The URL to paste into each sender's webhook settings."
  value       = module.stardex_webhook.webhook_urls
}

output "secret_commands" {
  description = "Print with terraform output -raw secret_commands and paste into bash to store each secret's value."
  value       = module.stardex_webhook.secret_commands
}
