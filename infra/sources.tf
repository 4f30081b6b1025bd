# Generated from stardex_webhook/sources (ADAPTERS) by `python -m stardex_webhook.sources >
# infra/sources.tf`; tests/test_infra.py checks that it is current. Do not edit by hand.
locals {
  known_sources = {
    fillout        = { api_key = false }
    generic        = { api_key = false }
    "google-forms" = { api_key = false }
    greenhouse     = { api_key = false }
    hubspot        = { api_key = false }
    typeform       = { api_key = false }
  }
}
