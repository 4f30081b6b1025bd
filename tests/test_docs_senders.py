"""docs/senders: one page per registered sender, each linked from the index, each saying what a user
must set for names and contacts to arrive (the design's "one page under docs/senders/" per sender)."""

from __future__ import annotations

import re

import pytest

from stardex_webhook.sources import SOURCES
from tests.conftest import ROOT

SENDERS = ROOT / "docs" / "senders"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_sender_has_its_page_linked_from_the_index(source):
    page = (SENDERS / f"{source}.md").read_text(encoding="utf-8")
    assert page.startswith("# ") and f"(`/{source}`)" in page.splitlines()[0]
    assert "## What you must set for names and contacts to arrive" in page
    assert f"]({source}.md)" in (SENDERS / "README.md").read_text(encoding="utf-8")


def test_the_index_names_no_page_that_is_missing():
    index = (SENDERS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([a-z-]+)\.md\)", index))
    assert linked == set(SOURCES)
