"""``python -m stardex_webhook.sources > infra/sources.tf``: the sender list for Terraform (a tool)."""

import sys

from stardex_webhook.sources import SOURCES


def terraform_locals() -> str:
    """``infra/sources.tf``: every sender and whether it needs an API key of its own, as HCL's
    formatter writes it (keys aligned), so the formatting check passes on the generated file."""
    keys = {name: f'"{name}"' if "-" in name else name for name in sorted(SOURCES)}
    width = max(map(len, keys.values()))
    rows = "".join(
        f"    {keys[name].ljust(width)} = {{ api_key = {str(SOURCES[name].needs_api_key).lower()} }}\n"
        for name in sorted(SOURCES)
    )
    return (
        "# Generated from stardex_webhook/sources (ADAPTERS) by `python -m stardex_webhook.sources >\n"
        "# infra/sources.tf`; tests/test_infra.py checks that it is current. Do not edit by hand.\n"
        "locals {\n  known_sources = {\n" + rows + "  }\n}\n"
    )


if __name__ == "__main__":
    sys.stdout.write(terraform_locals())
