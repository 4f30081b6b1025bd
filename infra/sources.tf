# Generated from stardex_webhook/sources (ADAPTERS) by `python -m stardex_webhook.sources >
# infra/sources.tf`; tests/test_infra.py checks that it is current. Do not edit by hand.
locals {
  known_sources = {
    ashby           = { api_key = true }
    fillout         = { api_key = false }
    generic         = { api_key = false }
    "google-forms"  = { api_key = false }
    greenhouse      = { api_key = false }
    hubspot         = { api_key = false }
    jotform         = { api_key = false }
    lever           = { api_key = true }
    recruitee       = { api_key = false }
    smartrecruiters = { api_key = true }
    tally           = { api_key = false }
    teamtailor      = { api_key = true }
    typeform        = { api_key = false }
    webflow         = { api_key = false }
    workable        = { api_key = false }
  }
}
