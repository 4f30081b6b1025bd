# Copy to infra/terraform.tfvars and fill in your project. Everything else has a working default.
project_id = "my-search-firm-prod"
region     = "europe-west1"

# The senders you use. Each gets a webhook URL and a signing-key secret; leave out the rest.
sources = ["greenhouse", "typeform"]

# Numbers without a country code ("020 7946 0018") are read as this region's.
phone_default_region = "GB"

# At most 3 instances share Stardex's 60 requests a minute (20 each); 16 webhooks at once each.
max_instances = 3
concurrency   = 16

# Map and validate, but do not write to Stardex yet: answers show the body that would be sent.
dry_run = false
