variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "The region of the function, its bucket and its image registry."
  type        = string
  default     = "europe-west1"
}

variable "sources" {
  description = "The senders you use; each gets a webhook URL and a signing-key secret."
  type        = list(string)
  default     = ["greenhouse", "typeform"]
}

variable "phone_default_region" {
  description = "Region of phone numbers written without a country code; null sends them as written."
  type        = string
  default     = null
}

variable "mappings_dir" {
  description = "A folder of your own mapping files (<sender>.json), each replacing its sender's built-in one, such as \"mappings\" beside this file; null: the built-in mappings only."
  type        = string
  default     = null
}

variable "secret_replica_locations" {
  description = "Regions to keep the secret values in; null lets Google choose."
  type        = list(string)
  default     = null
}

variable "notification_channels" {
  description = "Notification channels the alerts notify (projects/P/notificationChannels/ID); the module makes its four optional alerts only when some are named."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "dry_run" {
  description = "Map and validate every webhook but never call Stardex."
  type        = bool
  default     = false
}

variable "state_bucket" {
  description = "Make the private state bucket: de-duplication of deliveries and dead letters, which python -m stardex_webhook.replay replays. Needed by delivery_mode = \"queued\"."
  type        = bool
  default     = true
}

variable "delivery_mode" {
  description = "sync (Stardex is called inside the webhook's request) or queued (the webhook is queued in Cloud Tasks and a private worker delivers it at Stardex's pace, retrying for a day); see docs/queued.md."
  type        = string
  default     = "sync"
}
