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


def test_a_sender_that_documents_no_retry_says_so_on_its_page_and_points_at_queued_delivery():
    """docs/queued.md's rule 1 names the senders that do not retry or do not document it: a user
    reading only that sender's page must not be told it retries, and must learn about queued."""
    queued = (ROOT / "docs" / "queued.md").read_text(encoding="utf-8")
    rule = re.search(r"^1\. a sender you use does not retry, or does not document it: (.*?);$", queued, re.M | re.S)
    names = " ".join(re.search(r"\*\*(.*?)\*\*", rule.group(1), re.S).group(1).split()).split(", ")
    assert "Lever" in names
    for name in names:
        page = (SENDERS / f"{name.lower()}.md").read_text(encoding="utf-8")
        assert not re.search(rf"\b{name} retries\b|\b{name} does not retry a", page), name
        assert "(../queued.md" in page, f"{name}: no link to queued delivery"
