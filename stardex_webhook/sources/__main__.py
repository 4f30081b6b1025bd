"""``python -m stardex_webhook.sources > infra/sources.tf``: the sender list for Terraform."""

import sys

from . import terraform_locals

sys.stdout.write(terraform_locals())
