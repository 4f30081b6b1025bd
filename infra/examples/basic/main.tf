# A root module that deploys stardex-webhook with the module in ../.. (infra/). Copy this folder
# into your own infrastructure repository and point source at this repository instead, e.g.
# source = "git::https://github.com/OWNER/stardex-webhook.git//infra?ref=v1.0.0".

provider "google" {
  project = var.project_id
  region  = var.region
}

module "stardex_webhook" {
  source = "../.."

  project_id               = var.project_id
  region                   = var.region
  sources                  = var.sources
  phone_default_region     = var.phone_default_region
  secret_replica_locations = var.secret_replica_locations
  notification_channels    = var.notification_channels
  labels                   = var.labels
  dry_run                  = var.dry_run
}
