"""The bench's smoke run in CI: ``bench/run.py --quick`` works and reports every section.

Benchmarks are not tests: nothing here looks at a time, a rate or a size. What is checked is that
the instrument works: every section is measured and reported, each target gets a verdict, every
pipeline sample and served request was answered ``updated``, and the fake Stardex saw exactly the
calls each kind of webhook must make. The quick run writes to a temporary directory, never to
bench/RESULTS.md.

The quick run's load held against Stardex's limit (``bench/soak.py``, scaled to seconds: 10 requests
in any 2 s, a spike of 20 a second) is also the suite's load test, in both delivery modes: its
invariants are asserted here (no 500, no lost answer, every event applied or answered 503 with
``Retry-After``, as many applied in Stardex as the senders were told; queued: each applied once).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stardex_webhook.sources import SOURCES

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
sys.path.insert(0, str(ROOT / "bench"))

import queued  # noqa: E402
import soak  # noqa: E402


def _bench_run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The quick run's soak settings (bench/run.py), as soak.run's arguments.
_SOAK_ARGS = _bench_run().Settings(quick=True).soak
SHORT = {"rate": 3.0, "spike": 10.0, "steady_seconds": 60.0, "spike_seconds": 10.0, "window_seconds": 10.0,
         "deadline_seconds": 4.0, "limit": 60,  # soak.py's defaults, then the quick run's flags
         **{{"--steady": "steady_seconds", "--spike-seconds": "spike_seconds", "--window": "window_seconds",
             "--deadline": "deadline_seconds", "--rate": "rate", "--limit": "limit", "--spike": "spike"}[flag]: float(value)
            for flag, value in zip(_SOAK_ARGS[::2], _SOAK_ARGS[1::2])}}

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
    [large] = [row for name, row in rows.items() if name.startswith("RSS of the serving worker after 100 distinct persons")]
    assert large[-1] in ("met", "NOT MET"), large


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


# ---- the load held against Stardex's limit (the quick run's soak, both delivery modes) -----------


@pytest.fixture(scope="module")
def sync_run(quick_run):
    return quick_run["figures"]["soak"]["sync"]


@pytest.fixture(scope="module")
def queued_run(quick_run):
    return quick_run["figures"]["soak"]["queued"]


def test_the_budget_used_is_full_for_a_full_window_whatever_the_drain_s_alignment():
    every_tenth_second = [index / 10 for index in range(200)]  # 50 in any 5 s, for 20 s
    assert queued.budget_used(every_tenth_second, limit=50, window_seconds=5) == pytest.approx(1.0, abs=0.01)
    for shift in (0.0, 1.3, 2.7):
        bursts = [shift + cycle * 5.5 + index / 100 for cycle in range(8) for index in range(50)]
        assert queued.budget_used(bursts, limit=50, window_seconds=5) == pytest.approx(5 / 5.5, abs=0.02)


def test_the_soak_is_scaled_so_the_spike_is_twice_the_limit():
    """10 in any 2 s: the spike (20 a second) is twice what Stardex allows, the steady rate (2 a
    second) well under it."""
    assert (SHORT["limit"], SHORT["window_seconds"], SHORT["rate"], SHORT["rate"] * SHORT["spike"]) == (10, 2, 2, 20)


def test_every_request_is_answered_200_or_503_and_never_500(sync_run):
    assert sync_run["unanswered"] == 0
    assert set(sync_run["statuses"]) <= {"200", "503"}, sync_run["statuses"]
    assert sum(sync_run["statuses"].values()) == sync_run["sent"] == len(soak.schedule(
        SHORT["rate"], SHORT["spike"], SHORT["steady_seconds"], SHORT["spike_seconds"]))


def test_every_event_is_applied_or_answered_503_with_retry_after(sync_run):
    told = sync_run["updated"] + sync_run["no_change"]
    unsure = sync_run["outcomes"].get("503 stardex_unavailable", 0)  # a PATCH whose answer the deadline cut
    assert told <= sync_run["applied_in_stardex"] <= told + unsure
    assert told + sync_run["retry_later"] == sync_run["sent"]
    assert sync_run["retry_later_without_retry_after"] == 0
    assert set(sync_run["outcomes"]) <= {"200 updated", "200 no_change", "503 stardex_rate_limited",
                                         "503 stardex_unavailable"}, sync_run["outcomes"]
    assert sync_run["problems"] == []


def test_the_spike_met_the_limit(sync_run):
    """The run tested something: some events were applied and the spike was refused in part.
    (Stardex's own limit may refuse a few too, when calls reach it closer together than the
    function's limiter granted them: those are retried within the deadline, and counted above.)"""
    assert sync_run["updated"] > 0 and sync_run["retry_later"] > 0, sync_run["outcomes"]


def test_the_memory_was_sampled(sync_run):
    assert sync_run["rss_mib"]["samples"] >= 2
    assert isinstance(sync_run["rss_slope_mib_per_minute"], float)


def test_queued_the_spike_is_all_queued_and_the_worker_applies_each_once(queued_run):
    """``DELIVERY=queued``: the senders are answered ``queued`` (no 500, none lost; a 503 only if
    the queue could not take one), and the worker settles every queued event: applied once each."""
    queued = queued_run["outcomes"].get("200 queued", 0)
    assert queued_run["unanswered"] == 0
    assert set(queued_run["outcomes"]) <= {"200 queued", "503 queue_unavailable"}, queued_run["outcomes"]
    assert queued + queued_run["retry_later"] == queued_run["sent"]
    assert queued_run["retry_later_without_retry_after"] == 0
    assert queued_run["worker_outcomes"] == {"updated": queued, "unsettled": 0}
    assert queued_run["applied_in_stardex"] == queued
    assert queued_run["problems"] == []
