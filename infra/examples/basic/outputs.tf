output "url" {
  description = "Base URL of the function; GET <url>/healthz lists the senders that have a signing key."
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
