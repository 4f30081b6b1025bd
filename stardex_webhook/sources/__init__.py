"""The senders this function accepts, by path segment. Adding a sender = one line here."""

from __future__ import annotations

from .base import Source
from .generic import StandardWebhooksSource
from .greenhouse import GreenhouseSource
from .typeform import TypeformSource

SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        GreenhouseSource(),
        TypeformSource(),
        StandardWebhooksSource("generic"),
    )
}
