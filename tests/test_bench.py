"""The bench's smoke run in CI: ``bench/run.py --quick`` works and reports every section.

Benchmarks are not tests: nothing here looks at a time, a rate or a size. What is checked is that
the instrument works: every section is measured and reported, each target gets a verdict, the
served runs answered without a single error, and the fake Stardex saw exactly the calls each kind
of webhook must make. The quick run writes to a temporary directory, never to bench/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "bench" / "RESULTS.md"

SOURCES = ("greenhouse", "typeform", "generic")
KINDS = ("patch", "merge")
CONCURRENCIES = (1, 8, 32)
EXPECTED_CALLS = {
    "patch": {"GET /v1/persons/{id}": 0, "PATCH /v1/persons/{id}": 1, "POST /v1/persons/search": 0},
    "merge": {"GET /v1/persons/{id}": 1, "PATCH /v1/persons/{id}": 1, "POST /v1/persons/search": 0},
}
SECTIONS = ("## Machine and versions", "## Pipeline, per stage", "## Served runs", "## Cold start",
            "## Import time of `main`", "## Memory")


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
    expected = [f"pipeline {source} sample, p50 / p99 µs" for source in SOURCES]
    expected += [f"served {kind} c={c}: req/s (errors)" for kind in KINDS for c in CONCURRENCIES]
    expected += [name for name in rows if name.startswith("cold start to first 200")]
    expected += ["peak RSS (VmHWM) of the serving worker, MiB"]
    assert len([name for name in rows if name.startswith("cold start to first 200")]) == len(KINDS)
    for name in expected:
        assert name in rows, f"missing row {name!r}"
        assert rows[name][-1] in ("met", "NOT MET"), rows[name]
    for kind in KINDS:
        for c in CONCURRENCIES:
            assert f"served {kind} c={c}: p50 / p99 ms" in rows
    assert "import time of the module, ms" in rows


def test_the_results_file_holds_the_table_and_every_section(quick_run):
    markdown = quick_run["markdown"]
    assert markdown.startswith("# Bench results")
    assert table_rows(markdown).keys() == table_rows(quick_run["stdout"]).keys()
    for section in SECTIONS:
        assert section in markdown, f"missing section {section!r}"
    assert "## Problems" not in markdown


def test_every_pipeline_variant_measured_every_stage(quick_run):
    pipeline = quick_run["figures"]["pipeline"]
    assert set(pipeline) == {"shipped", "shipped uncached", "plain-jmespath", "plain-jsonschema", "plain-both"}
    for variant in pipeline.values():
        for body in (*SOURCES, "kind:patch"):
            data = variant["bodies"][body]
            assert data["handle_status"] == 200
            assert data["answer"]["status"] == "updated"
            for stage in ("verify", "parse", "map", "validate", "build", "total"):
                assert data["stages"][stage]["p50_us"] > 0
    shipped = pipeline["shipped"]["bodies"]
    assert shipped["kind:patch"]["calls"] == ["PATCH"]
    assert shipped["typeform"]["calls"] == ["GET", "PATCH"]
    assert shipped["greenhouse"]["calls"] == ["POST", "GET", "PATCH"]


def test_served_runs_answered_every_request_with_exactly_the_expected_calls(quick_run):
    figures = quick_run["figures"]
    assert figures["problems"] == []
    assert set(figures["served"]) == {f"{kind} c={c}" for kind in KINDS for c in CONCURRENCIES}
    for cell_name, cell in figures["served"].items():
        kind = cell_name.split()[0]
        for server in ("ours", "floor"):
            data = cell[server]
            assert data["errors"] == 0, (cell_name, server)
            assert data["answered"] > 0 and data["timed"] > 0, (cell_name, server)
            for call, per_webhook in EXPECTED_CALLS[kind].items():
                assert data["calls"].get(call, 0) == per_webhook * data["answered"], (cell_name, server, call)
            assert data["calls"].get("errors", 0) == 0


def test_cold_start_import_time_and_memory_are_reported(quick_run):
    figures = quick_run["figures"]
    for kind in KINDS:
        for server in ("ours", "floor"):
            assert figures["cold_start"][kind][server]["median_ms"] > 0
    imports = figures["imports"]
    assert imports["ours"]["total_ms"] > 0 and imports["floor"]["total_ms"] > 0
    packages = [package for package, _ in imports["ours"]["by_package_ms"]]
    assert "stardex_webhook" in packages and "functions_framework" in packages
    for server in ("ours", "floor"):
        assert figures["memory"][server]["worker_vmhwm_mib"] > 0
        assert figures["memory"][server]["workers"] == figures["framework"]["workers"]
