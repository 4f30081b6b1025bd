"""``python -m stardex_webhook.custom_fields_check`` (also ``python -m stardex_webhook.custom_fields``):
the custom fields the mapping files name, checked against the Stardex account before a deploy.
A tool: not deployed, and it uses only the runtime's public names."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .config import STARDEX_API_KEY, load_settings
from .custom_fields import Definition, check, definitions_from
from .deadline import Deadline
from .errors import ConfigurationError, WebhookError
from .logs import JsonLog
from .mapping import BUILTIN_MAPPINGS_DIR, load_mappings
from .secrets import SecretProvider
from .sources import SOURCES
from .stardex import RateLimiter, StardexClient, StardexError


def check_mappings(mappings: dict[str, Any], definitions: list[Definition]) -> list[str]:
    """Every fault of every mapping's named custom fields (``check``), each line naming the
    mapping file and the place in it (``mapping typeform: forms.w4Ld2x.custom_fields.Notice...``)."""
    faults = []
    for name, mapping in sorted(mappings.items()):
        for where, named in mapping.named_custom_fields():
            prefix = f"mapping {name}: " + (f"{where}." if where else "")
            faults += [prefix + fault for fault in check(named, definitions)]
    return faults


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Check the custom fields that the mapping files name (built-in, or ``MAPPINGS_DIR``) against
    the person custom fields of the Stardex account that ``STARDEX_API_KEY`` opens: exit 0 when
    every field and option exists, 1 with one line per fault otherwise. Reads only."""
    argparse.ArgumentParser(prog="python -m stardex_webhook.custom_fields_check", description=main.__doc__).parse_args(argv)
    try:
        settings = load_settings(environ)
        mappings = load_mappings(BUILTIN_MAPPINGS_DIR, settings.mappings_dir, settings.phone_default_region, SOURCES)
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 1
    named = sum(len(mapping.named_custom_fields()) for mapping in mappings.values())
    if not named:
        print("no mapping names a custom field")
        return 0
    log = JsonLog(settings.log_level, stream=sys.stderr)  # stdout is the report
    secrets = SecretProvider(settings, log=log)
    client = StardexClient(settings.stardex_api_base, lambda refresh, deadline: secrets.get(
        STARDEX_API_KEY, refresh=refresh, deadline=deadline), RateLimiter(settings.stardex_requests_per_minute),
        log=log)
    try:
        definitions = definitions_from(client.person_custom_fields(Deadline(settings.stardex_deadline_seconds)))
    except (WebhookError, StardexError) as error:
        print(f"cannot read GET /v1/custom-fields/persons: {error}", file=sys.stderr)
        return 1
    faults = check_mappings(mappings, definitions)
    for fault in faults:
        print(fault)
    if not faults:
        print(f"ok: every custom field {named} mapping section(s) name exists in Stardex ({len(definitions)} defined)")
    return 1 if faults else 0


if __name__ == "__main__":
    raise SystemExit(main())
