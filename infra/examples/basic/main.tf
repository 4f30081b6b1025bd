# A root module that deploys stardex-webhook with the module in ../.. (infra/). Copy this folder
# into your own infrastructure repository and point source at your copy of this repository,
# pinned to a commit (or a tag you made): see README.md here, "Use it from your own repository".

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
  mappings_dir             = var.mappings_dir
  secret_replica_locations = var.secret_replica_locations
  notification_channels    = var.notification_channels
  labels                   = var.labels
  dry_run                  = var.dry_run
  state_bucket             = var.state_bucket
  delivery_mode            = var.delivery_mode
}
