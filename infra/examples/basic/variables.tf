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

variable "secret_replica_locations" {
  description = "Regions to keep the secret values in; null lets Google choose."
  type        = list(string)
  default     = null
}

variable "notification_channels" {
  description = "Notification channels the uptime alert notifies (projects/P/notificationChannels/ID)."
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
