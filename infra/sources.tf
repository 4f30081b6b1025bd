# Generated from stardex_webhook/sources (ADAPTERS) by `python -m stardex_webhook.sources >
# infra/sources.tf`; tests/test_infra.py checks that it is current. Do not edit by hand.
locals {
  known_sources = {
    generic    = { api_key = false }
    greenhouse = { api_key = false }
    jotform    = { api_key = false }
    tally      = { api_key = false }
    typeform   = { api_key = false }
    webflow    = { api_key = false }
  }
}
