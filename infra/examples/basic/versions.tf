terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.50.0, < 7.0.0"
    }
  }

  # Keep the state in a bucket rather than on one laptop (see README.md here): uncomment, set the
  # bucket, and run terraform init again.
  # backend "gcs" {
  #   bucket = "my-search-firm-terraform-state"
  #   prefix = "stardex-webhook"
  # }
}
