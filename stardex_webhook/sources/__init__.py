"""The senders this function accepts, by path segment: the one list every other part reads.

Adding a sender (one line in ``ADAPTERS``, then ``python -m stardex_webhook.sources > infra/sources.tf``,
which a test checks is current): docs/layout.md.
"""

from __future__ import annotations

from .ashby import AshbySource
from .base import Source
from .fillout import FilloutSource
from .generic import StandardWebhooksSource
from .google_forms import GoogleFormsSource
from .greenhouse import GreenhouseSource
from .hubspot import HubSpotSource
from .jotform import JotformSource
from .lever import LeverSource
from .recruitee import RecruiteeSource
from .smartrecruiters import SmartRecruitersSource
from .tally import TallySource
from .teamtailor import TeamtailorSource
from .typeform import TypeformSource
from .webflow import WebflowSource
from .workable import WorkableSource

ADAPTERS: tuple[Source, ...] = (
    # ATS: systems of record
    GreenhouseSource(),
    LeverSource(),
    AshbySource(),
    WorkableSource(),
    SmartRecruitersSource(),
    TeamtailorSource(),
    RecruiteeSource(),
    # form tools: anyone with the link may fill them in
    TypeformSource(),
    TallySource(),
    JotformSource(),
    WebflowSource(),
    FilloutSource(),
    HubSpotSource(),
    GoogleFormsSource(),
    # anything that signs the Standard Webhooks way
    StandardWebhooksSource("generic"),
)

SOURCES: dict[str, Source] = {source.name: source for source in ADAPTERS}
