"""A body held to the update schema, as the tests check what a mapping builds (the function itself
leaves invalid values out instead: ``validation.checked``)."""

from __future__ import annotations

from stardex_webhook.errors import Unprocessable
from stardex_webhook.validation import schema_errors


def validate_update(body) -> None:
    """Raise ``Unprocessable("schema_invalid", errors=[...])`` unless ``body`` is a valid update."""
    errors = schema_errors(body)
    if errors:
        raise Unprocessable("schema_invalid", f"{len(errors)} schema error(s)", errors=errors)
