"""The bench's smoke run in CI: ``bench/run.py --quick`` works and reports every section.

Benchmarks are not tests: nothing here looks at a time, a rate or a size. What is checked is that
the instrument works: every section is measured and reported, each target gets a verdict, every
pipeline sample and served request was answered ``updated``, and the fake Stardex saw exactly the
calls each kind of webhook must make. The quick run writes to a temporary directory, never to
bench/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stardex_webhook.sources import SOURCES

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "bench" / "RESULTS.md"

KINDS = ("patch", "merge")
CONCURRENCIES = (1, 8, 32)
CELLS = [f"{kind} c={c}, Stardex {delay}" for delay in ("after 50 ms", "at once") for kind in KINDS
         for c in CONCURRENCIES]
CALLS = ("GET /v1/persons/{id}", "PATCH /v1/persons/{id}", "POST /v1/persons/search")
EXPECTED_CALLS = {"patch": dict(zip(CALLS, (0, 1, 0))), "merge": dict(zip(CALLS, (1, 1, 0)))}
COLD_STARTS = ("patch, secrets as plain values", "merge, secrets as plain values",
               "merge, secrets from Secret Manager")
SECTIONS = ("## Machine and versions", "## Pipeline", "## Served runs", "## Cold start",
            "## Import time of `main`", "## Memory", "## Stardex calls per event")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench")
    markdown, figures = out_dir / "RESULTS.md", out_dir / "results.json"
    before = RESULTS_MD.read_bytes() if RESULTS_MD.exists() else None
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(markdown), "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    after = RESULTS_MD.read_bytes() if RESULTS_MD.exists() else None
    assert done.returncode == 0, f"bench/run.py --quick failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return {"stdout": done.stdout, "markdown": markdown.read_text(), "figures": json.loads(figures.read_text()),
            "results_md_untouched": before == after}


def table_rows(text: str) -> dict[str, list[str]]:
    """The main table's rows (the first table, headed "measure") by their first cell."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| measure"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def test_the_quick_run_leaves_bench_results_alone(quick_run):
    assert quick_run["results_md_untouched"]


def test_it_prints_one_table_with_a_verdict_for_every_target(quick_run):
    rows = table_rows(quick_run["stdout"])
    with_target = [f"pipeline {source} sample, p50 / p99 µs" for source in quick_run["figures"]["pipeline"]]
    with_target += [f"served {cell}: req/s (errors)" for cell in CELLS if "50 ms" in cell]
    with_target += [f"cold start to first 200 ({cell}), median of 1, ms" for cell in COLD_STARTS]
    with_target += ["peak RSS (VmHWM) of the serving worker, MiB"]
    with_target += ["Stardex calls per event, trace of 200 ATS and form events about 40 people"]
    for name in with_target:
        assert rows[name][-1] in ("met", "NOT MET"), rows[name]
    for cell in CELLS:
        assert f"served {cell}: p50 / p99 ms" in rows
    for cell in CELLS[len(CELLS) // 2:]:  # Stardex answering at once: reported, no target
        assert rows[f"served {cell}: req/s (errors)"][-2:] == ["", ""]
    assert "import time of the module, ms" in rows


def test_the_results_file_holds_the_table_and_every_section(quick_run):
    markdown = quick_run["markdown"]
    assert markdown.startswith("# Bench results")
    assert table_rows(markdown).keys() == table_rows(quick_run["stdout"]).keys()
    for section in SECTIONS:
        assert section in markdown, f"missing section {section!r}"
    assert "## Problems" not in markdown


def test_every_sender_s_sample_has_a_pipeline_row_and_went_the_whole_way(quick_run):
    """Each registered sender's shipped sample reaches a PATCH of the stored person; the greenhouse
    sample finds the person by a search, whose answer is then planned against."""
    pipeline = quick_run["figures"]["pipeline"]
    assert set(pipeline) == {name for name in SOURCES if (ROOT / "stardex_webhook" / "samples" / f"{name}.json").is_file()}
    assert {"greenhouse", "typeform", "generic"} <= set(pipeline)
    for sample, data in pipeline.items():
        assert (data["status"] // 100, data["answer"]["status"], data["calls"][-1]) == (2, "updated", "PATCH"), sample
        assert data["p50_us"] > 0
    assert pipeline["greenhouse"]["calls"] == ["POST", "PATCH"], "the search answers the person: no GET follows it"


def test_served_runs_answered_every_request_with_exactly_the_expected_calls(quick_run):
    figures = quick_run["figures"]
    assert figures["problems"] == []
    assert list(figures["served"]) == CELLS
    for cell_name, cell in figures["served"].items():
        kind = cell_name.split()[0]
        for server in ("ours", "floor"):
            data = cell[server]
            assert data["errors"] == 0 and data["calls"]["errors"] == 0, (cell_name, server)
            assert data["answered"] > 0 and data["cycles"] > 0, (cell_name, server)
            for call, per_webhook in EXPECTED_CALLS[kind].items():
                assert data["calls"][call] == per_webhook * data["answered"], (cell_name, server, call)


def test_cold_start_import_time_and_memory_are_reported(quick_run):
    figures = quick_run["figures"]
    assert list(figures["cold_start"]) == list(COLD_STARTS)
    for cold in figures["cold_start"].values():
        assert cold["ours"]["median_ms"] > 0 and cold["floor"]["median_ms"] > 0
    packages = [package for package, _ in figures["imports"]["ours"]["by_package_ms"]]
    assert "stardex_webhook" in packages and "functions_framework" in packages
    for server in ("ours", "floor"):
        assert figures["memory"][server]["worker_vmhwm_mib"] > 0
        assert figures["memory"][server]["workers"] == figures["framework"]["workers"]


def test_the_replayed_trace_was_answered_and_counted(quick_run):
    calls = quick_run["figures"]["calls"]
    assert (calls["events"], calls["people"]) == (200, 40)
    assert {"greenhouse", "typeform", "generic"} <= set(calls["sources"])
    for run in (calls, calls["without_memory"]):
        assert run["problems"] == []
        assert sum(run["outcomes"].values()) == 200
        assert run["calls"] == sum(run["calls_by_kind"].values()) > 0
