"""The README and the pages under docs/: every relative link leads somewhere.

A moved or renamed page, or a heading reworded, breaks the links to it silently: this check finds
them. Links are Markdown's inline ``[text](target)``; fenced code blocks are skipped, and so are
links with a scheme (``https:``, ``mailto:``). An anchor (``page.md#a-heading``) must be a heading
of that page, as GitHub makes its anchors (lower case, punctuation dropped, spaces as ``-``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def tracked_markdown() -> list[Path]:
    """The Markdown files of the clone that a reader opens: the README, docs/, and the READMEs beside code."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return sorted(ROOT / name for name in listed if (ROOT / name).is_file())


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines()
            if re.match(r"#{1,6} ", line)}


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif not destination.resolve().is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor in {destination.relative_to(ROOT)}")
    return broken


def test_the_readme_and_docs_are_found():
    names = {str(page.relative_to(ROOT)) for page in tracked_markdown()}
    assert {"README.md", "docs/contract.md", "docs/configuration.md", "docs/senders/README.md"} <= names


@pytest.mark.parametrize("page", tracked_markdown(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_the_check_sees_a_broken_link_and_a_broken_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "plan.md").write_text("# Plan\n\n## The sandbox\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/plan.md#the-sandbox) [gone](docs/gone.md) [bad anchor](docs/plan.md#sandbox)\n"
                    "[web](https://example.org/x.md) ![img](nope.png)\n```\n[in code](nowhere.md)\n```\n")
    assert broken_links(page) == ["docs/gone.md: no such file",
                                  "docs/plan.md#sandbox: no heading with that anchor in docs/plan.md"]


def test_no_page_cites_a_file_the_repository_does_not_have():
    """The contract is docs/contract.md; nothing points at a CONTRACT file outside the clone."""
    offenders = [str(page.relative_to(ROOT)) for page in tracked_markdown()
                 if re.search(r"\bthe CONTRACT\b|shared/CONTRACT", page.read_text(encoding="utf-8"))]
    assert offenders == []


def test_every_plan_command_troubleshooting_gives_passes_plans_usage_check(monkeypatch):
    """Step 4 says how to check a fixed mapping on a dead letter: the command it quotes must run
    (a bare ``python -m stardex_webhook.plan`` is a usage error, exit 1)."""
    import shlex

    from stardex_webhook import plan
    from stardex_webhook.errors import ConfigurationError

    def no_start(*args, **kwargs):
        raise ConfigurationError("not started by this test")

    monkeypatch.setattr(plan.Pipeline, "from_environment", no_start)
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    commands = re.findall(r"python -m stardex_webhook\.plan\b([^`\n]*)", text)
    assert commands
    for arguments in commands:
        try:
            plan.main(shlex.split(arguments.replace("…", "")))  # the start is refused: the usage passed
        except SystemExit as refused:
            pytest.fail(f"python -m stardex_webhook.plan{arguments}: a usage error ({refused.code})")
