"""The bench: our function against the floor, on this machine. See bench/README.md for the method.

    python bench/run.py                  # full run (a few minutes), writes bench/RESULTS.md
    python bench/run.py --quick --out /tmp/r.md --json /tmp/r.json    # the CI smoke run (seconds)

Prints one table (each target met or not) and writes it, with the machine, the versions and the
details behind every figure, to ``--out``. Exits 0 when the measurement itself is sound, whether or
not the targets are met; 2 when it is not (a served request failed, or the fake Stardex did not see
exactly the calls each webhook should make), so a broken bench can never pass for a slow function.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

TARGETS = {
    "pipeline_p50_us": 300.0,
    "pipeline_p99_us": 1000.0,
    "served_rps_ratio": 0.85,
    "cold_start_ratio": 1.3,
    "rss_ratio": 1.3,
}
SERVERS = {"ours": common.MAIN_PY, "floor": common.FLOOR_PY}
PACKAGES = ("functions-framework", "gunicorn", "Flask", "Werkzeug", "requests", "urllib3", "jsonschema",
            "jmespath", "phonenumbers", "email-validator")


class Settings:
    """How much to measure: the full run, or the CI smoke run (same code, far fewer samples)."""

    def __init__(self, quick: bool, floor_settled_session: bool = False) -> None:
        self.quick = quick
        self.floor_settled_session = floor_settled_session
        self.pipeline_iterations = 60 if quick else 2000
        self.pipeline_warmup = 10 if quick else 300
        self.concurrencies = (1, 8, 32)
        # Short slices, ours and the floor alternating, many times: on a shared 2-core VM the speed
        # drifts by tens of percent over seconds (steal time), and alternation makes the drift
        # fall on both alike.
        self.served_slices = 1 if quick else 8
        self.served_warmup = 0.1 if quick else 0.3
        self.served_seconds = 0.3 if quick else 1.0
        self.served_max_requests = 200 if quick else 20_000
        self.cold_starts = 1 if quick else 7
        self.import_runs = 1 if quick else 5


# ---- environment ---------------------------------------------------------------------------------

FLOOR_EXTRA_ENV: dict[str, str] = {}


def server_environment(name: str, stardex_base: str) -> dict[str, str]:
    return {**serving_environment(stardex_base), **(FLOOR_EXTRA_ENV if name == "floor" else {})}


def serving_environment(stardex_base: str) -> dict[str, str]:
    """A small environment, close to what Cloud Run gives a function, identical for ours and the
    floor. A small one matters: ``requests`` scans every variable for proxy settings on every call."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({"K_SERVICE": "stardex-webhook", "K_REVISION": "stardex-webhook-00001-bench",
                "K_CONFIGURATION": "stardex-webhook", "FUNCTION_TARGET": "handle_webhook",
                "FUNCTION_SIGNATURE_TYPE": "http"})
    function_env = common.function_environment(stardex_base)
    for name, value in function_env.items():
        if name.startswith(("STARDEX_", "DRY_RUN")) or name.endswith("_SIGNING_KEY"):
            env[name] = value
    return env


_FRAMEWORK_PROBE = """
import json
from functions_framework._http.gunicorn import GunicornApplication
application = GunicornApplication(None, "127.0.0.1", 0, False)
options = dict(application.options)
options.pop("bind", None)
options["worker_class"] = application.cfg.worker_class_str
options["keepalive"] = application.cfg.keepalive
print(json.dumps(options))
"""


def framework_settings() -> dict:
    """The gunicorn options functions-framework uses in production, read from the framework itself
    in the environment the servers get (WORKERS and THREADS unset: its defaults)."""
    done = subprocess.run([sys.executable, "-c", _FRAMEWORK_PROBE], env=serving_environment("http://127.0.0.1:9/v1"),
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    commit = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--", "stardex_webhook",
                                "main.py", "mappings", "schemas", "bench"], cwd=common.ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        if dirty:
            commit += " + uncommitted changes"
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "commit": commit,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def compile_bytecode() -> None:
    """Write the bytecode of the function and the floor once, as a deployed image would hold it,
    so that no cold start pays for compiling (even when PYTHONDONTWRITEBYTECODE is set)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(common.MAIN_PY), str(common.FLOOR_PY),
                    str(common.ROOT / "stardex_webhook")], cwd=common.ROOT, check=True,
                   stdout=subprocess.DEVNULL)


# ---- pipeline ------------------------------------------------------------------------------------

PIPELINE_BODIES = ("greenhouse", "typeform", "generic", "kind:patch")
PIPELINE_RUNS = (("shipped", False), ("shipped", True), ("plain-jmespath", False), ("plain-jsonschema", False),
                 ("plain-both", False))


def run_pipeline(settings: Settings) -> dict:
    results = {}
    env = serving_environment("https://stardex.invalid/v1")
    for variant, uncached in PIPELINE_RUNS:
        command = [sys.executable, str(common.BENCH / "pipeline.py"), "--variant", variant,
                   "--iterations", str(settings.pipeline_iterations), "--warmup", str(settings.pipeline_warmup),
                   "--bodies", ",".join(PIPELINE_BODIES)]
        if uncached:
            command.append("--uncached")
        done = subprocess.run(command, cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"pipeline {variant} failed:\n{done.stderr}")
        results[variant + (" uncached" if uncached else "")] = json.loads(done.stdout)
    return results


# ---- import time ---------------------------------------------------------------------------------

def parse_importtime(text: str, module: str) -> list[tuple[int, str, int, int]]:
    """(depth, name, self_us, cumulative_us) of ``module`` and everything it imported, in order."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:"):].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((depth, name.strip(), int(self_us), int(cumulative)))
    for index, (depth, name, _, _) in enumerate(rows):
        if depth == 0 and name == module:
            start = index
            while start > 0 and rows[start - 1][0] > 0:
                start -= 1
            return rows[start:index + 1]
    raise ValueError(f"{module} not in the import-time output")


def is_stdlib(name: str) -> bool:
    top = name.split(".")[0]
    return top in getattr(sys, "stdlib_module_names", ()) or top.startswith("_")


def by_package(rows: list[tuple[int, str, int, int]]) -> dict[str, int]:
    """Self time per top-level package, a standard-library module counted under the package that
    imported it (``http.server`` under werkzeug): what importing each package costs."""
    totals: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for depth, name, self_us, _ in reversed(rows):  # reversed importtime output: parents first
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if name == "main":
            owner = "main (module body: builds the app)"
        elif not is_stdlib(name):
            owner = name.split(".")[0]
        else:
            owner = stack[-1][1] if stack else "standard library"
        totals[owner] = totals.get(owner, 0) + self_us
        stack.append((depth, owner))
    return totals


def run_imports(settings: Settings) -> dict:
    env = serving_environment("http://127.0.0.1:9/v1")
    result = {}
    for name, source in (("ours", "main"), ("floor", "floor")):
        runs = []
        for _ in range(settings.import_runs):
            command = [sys.executable, "-X", "importtime", "-c", f"import {source}"]
            cwd = common.ROOT if source == "main" else common.BENCH
            done = subprocess.run(command, cwd=cwd, env={**env, "PYTHONPATH": str(common.ROOT)},
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"import {source} failed:\n{done.stderr[-2000:]}")
            runs.append(parse_importtime(done.stderr, source))
        runs.sort(key=lambda rows: rows[-1][3])
        rows = runs[len(runs) // 2]  # the run with the median total
        groups = by_package(rows)
        children = [(module, cumulative) for depth, module, _, cumulative in rows if depth == 1]
        own = [(module, self_us, cumulative) for depth, module, self_us, cumulative in rows
               if module.startswith("stardex_webhook")]
        result[name] = {
            "total_ms": rows[-1][3] / 1000,
            "totals_ms": sorted(run[-1][3] / 1000 for run in runs),
            "by_package_ms": sorted(((package, us / 1000) for package, us in groups.items()),
                                    key=lambda item: -item[1]),
            "direct_imports_ms": [(module, us / 1000) for module, us in children],
            "own_modules_ms": [(module, s / 1000, c / 1000) for module, s, c in own],
        }
    return result


# ---- fake Stardex, servers -----------------------------------------------------------------------

class Fake:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(common.BENCH / "fake_stardex.py"),
                                         "--api-key", common.STARDEX_KEY], stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError("the fake Stardex did not start")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        return common.get_json(self.port, "/__stats")

    def reset(self) -> None:
        common.get_json(self.port, "/__reset")

    def stop(self) -> None:
        common.stop_process(self.process)


def kind_request(kind: str, port: int) -> bytes:
    source = common.KIND_SOURCE[kind]
    body = common.kind_body(kind)
    return common.raw_request(f"/{source}", body, common.signed_headers(source, body), port)


# ---- cold start ----------------------------------------------------------------------------------

def run_cold_starts(settings: Settings, fake: Fake, workdir: Path) -> dict:
    """Process start to the first 200, for each kind of webhook (the merging one is the first
    request that needs the most: the Stardex client, phone and email checks), several starts, ours
    and the floor alternating."""
    result = {}
    for kind in common.KINDS:
        times: dict[str, list[float]] = {"ours": [], "floor": []}
        for attempt in range(settings.cold_starts + 1):  # the first round warms the page cache, unrecorded
            order = list(SERVERS) if attempt % 2 == 0 else list(reversed(SERVERS))
            for name in order:
                port = common.free_port()
                request = kind_request(kind, port)
                started = time.perf_counter()
                process = common.start_server(SERVERS[name], port, server_environment(name, fake.base_url),
                                              workdir / f"cold-{name}.log")
                try:
                    answered = common.wait_for_200(port, request, process, timeout=60, poll_seconds=0.002)
                finally:
                    common.stop_process(process)
                if attempt > 0:
                    times[name].append((answered - started) * 1000)
        result[kind] = {name: {"median_ms": statistics.median(values), "all_ms": [round(v, 1) for v in values]}
                        for name, values in times.items()}
    return result


# ---- served --------------------------------------------------------------------------------------

def run_load(port: int, request: bytes, concurrency: int, settings: Settings, workdir: Path) -> dict:
    request_file = workdir / "request.bin"
    request_file.write_bytes(request)
    spec_file = workdir / "spec.json"
    spec_file.write_text(json.dumps({
        "port": port, "request_file": str(request_file), "concurrency": concurrency,
        "warmup_seconds": settings.served_warmup, "duration_seconds": settings.served_seconds,
        "max_requests": settings.served_max_requests, "expect": '"status":"updated"',
        "samples": True,
    }))
    done = subprocess.run([sys.executable, str(common.BENCH / "load.py"), str(spec_file)], capture_output=True,
                          text=True, timeout=settings.served_warmup + settings.served_seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr}")
    return json.loads(done.stdout)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(round(fraction * len(ordered) + 0.4999)))
    return ordered[min(rank, len(ordered)) - 1]


def run_served(settings: Settings, fake: Fake, workdir: Path) -> tuple[dict, dict, list[str]]:
    processes, ports = {}, {}
    problems: list[str] = []
    try:
        for name, source in SERVERS.items():
            ports[name] = common.free_port()
            processes[name] = common.start_server(source, ports[name], server_environment(name, fake.base_url),
                                                  workdir / f"served-{name}.log")
        for name in SERVERS:
            for kind in common.KINDS:
                common.wait_for_200(ports[name], kind_request(kind, ports[name]), processes[name])
        cells = {}
        for kind in common.KINDS:
            for concurrency in settings.concurrencies:
                pooled: dict[str, dict] = {name: {"timed": 0, "seconds": 0.0, "latencies": [], "errors": 0,
                                                  "answered": 0, "slices_rps": []} for name in SERVERS}
                for index in range(settings.served_slices):
                    order = list(SERVERS) if index % 2 == 0 else list(reversed(SERVERS))
                    for name in order:
                        fake.reset()
                        result = run_load(ports[name], kind_request(kind, ports[name]), concurrency, settings,
                                          workdir)
                        seen = fake.stats()
                        ok = result["answered"] - result["errors"]
                        for call, per_webhook in common.EXPECTED_CALLS[kind].items():
                            if seen.get(call, 0) != per_webhook * ok:
                                problems.append(f"{name} {kind} c={concurrency}: fake saw {seen.get(call, 0)} "
                                                f"{call}, expected {per_webhook * ok}")
                        if seen.get("errors"):
                            problems.append(f"{name} {kind} c={concurrency}: fake answered {seen['errors']} errors")
                        if result["errors"]:
                            problems.append(f"{name} {kind} c={concurrency}: {result['errors']} failed requests, "
                                            f"e.g. {result['error_samples'][:2]}")
                        cell = pooled[name]
                        cell["timed"] += result["timed"]
                        cell["seconds"] += result["measured_seconds"]
                        cell["latencies"] += result["samples_us"]
                        cell["errors"] += result["errors"]
                        cell["answered"] += result["answered"]
                        cell["slices_rps"].append(round(result["rps"], 1))
                        cell.setdefault("calls", {})
                        for call, count in seen.items():
                            cell["calls"][call] = cell["calls"].get(call, 0) + count
                summary = {}
                for name, cell in pooled.items():
                    latencies = cell.pop("latencies")
                    summary[name] = {
                        **cell,
                        "rps": cell["timed"] / cell["seconds"] if cell["seconds"] else 0.0,
                        "p50_ms": percentile(latencies, 0.50) / 1000,
                        "p99_ms": percentile(latencies, 0.99) / 1000,
                    }
                # Each slice of ours against the floor's slice next to it in time; the median of those
                # ratios is the figure compared with the target (robust to a slow moment on either side).
                pairs = [o / f for o, f in zip(summary["ours"]["slices_rps"], summary["floor"]["slices_rps"]) if f]
                summary["rps_ratio"] = statistics.median(pairs) if pairs else 0.0
                summary["rps_ratio_pooled"] = (summary["ours"]["rps"] / summary["floor"]["rps"]
                                               if summary["floor"]["rps"] else 0.0)
                cells[f"{kind} c={concurrency}"] = summary
        memory = {}
        for name, process in processes.items():
            if process.poll() is not None:
                problems.append(f"{name} exited during the served runs")
                continue
            workers = common.worker_pids(process.pid)
            memory[name] = {
                "worker_vmhwm_mib": sum(common.status_kib(pid, "VmHWM") for pid in workers) / 1024,
                "worker_vmrss_mib": sum(common.status_kib(pid, "VmRSS") for pid in workers) / 1024,
                "master_vmhwm_mib": common.status_kib(process.pid, "VmHWM") / 1024,
                "workers": len(workers),
            }
    finally:
        for process in processes.values():
            common.stop_process(process)
    return cells, memory, problems


# ---- the table -----------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def build_rows(results: dict, settings: Settings) -> list[list[str]]:
    rows = []
    shipped = results["pipeline"]["shipped"]["bodies"]
    for source in common.SOURCES:
        total = shipped[source]["stages"]["total"]
        ok = total["p50_us"] <= TARGETS["pipeline_p50_us"] and total["p99_us"] <= TARGETS["pipeline_p99_us"]
        rows.append([f"pipeline {source} sample, p50 / p99 µs", f"{total['p50_us']:.0f} / {total['p99_us']:.0f}",
                     "", "", "≤ 300 / ≤ 1000", verdict(ok)])
    for cell_name, cell in results["served"].items():
        ours, floor = cell["ours"], cell["floor"]
        ratio = cell["rps_ratio"]
        rows.append([f"served {cell_name}: req/s (errors)", f"{ours['rps']:.0f} ({ours['errors']})",
                     f"{floor['rps']:.0f} ({floor['errors']})", f"{ratio:.2f}",
                     "≥ 0.85", verdict(ratio >= TARGETS["served_rps_ratio"])])
        rows.append([f"served {cell_name}: p50 / p99 ms", f"{ours['p50_ms']:.2f} / {ours['p99_ms']:.2f}",
                     f"{floor['p50_ms']:.2f} / {floor['p99_ms']:.2f}",
                     f"{_ratio(ours['p50_ms'], floor['p50_ms'])} / {_ratio(ours['p99_ms'], floor['p99_ms'])}",
                     "", ""])
    for kind, cold in results["cold_start"].items():
        ratio = cold["ours"]["median_ms"] / cold["floor"]["median_ms"]
        rows.append([f"cold start to first 200 ({kind}), median of {settings.cold_starts}, ms",
                     f"{cold['ours']['median_ms']:.0f}", f"{cold['floor']['median_ms']:.0f}", f"{ratio:.2f}",
                     "≤ 1.3", verdict(ratio <= TARGETS["cold_start_ratio"])])
    imports = results["imports"]
    rows.append(["import time of the module, ms", f"{imports['ours']['total_ms']:.0f}",
                 f"{imports['floor']['total_ms']:.0f}",
                 _ratio(imports["ours"]["total_ms"], imports["floor"]["total_ms"]), "", ""])
    memory = results["memory"]
    if "ours" in memory and "floor" in memory:
        ours, floor = memory["ours"], memory["floor"]
        ratio = ours["worker_vmhwm_mib"] / floor["worker_vmhwm_mib"]
        rows.append(["peak RSS (VmHWM) of the serving worker, MiB", f"{ours['worker_vmhwm_mib']:.1f}",
                     f"{floor['worker_vmhwm_mib']:.1f}", f"{ratio:.2f}", "≤ 1.3",
                     verdict(ratio <= TARGETS["rss_ratio"])])
        rows.append(["peak RSS (VmHWM) of gunicorn's master, MiB", f"{ours['master_vmhwm_mib']:.1f}",
                     f"{floor['master_vmhwm_mib']:.1f}",
                     _ratio(ours["master_vmhwm_mib"], floor["master_vmhwm_mib"]), "", ""])
    return rows


def _ratio(ours: float, floor: float) -> str:
    return f"{ours / floor:.2f}" if floor else "-"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[index])) for row in [header, *rows]) for index in range(len(header))]
    lines = ["| " + " | ".join(str(cell).ljust(width) for cell, width in zip(header, widths)) + " |",
             "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines += ["| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


MAIN_HEADER = ["measure", "ours", "floor", "ours / floor", "target", "verdict"]


def details(results: dict, settings: Settings) -> str:
    info = results["machine"]
    parts = []
    variant = ("; floor variant: session with environment settings read once (--floor-settled-session)"
               if settings.floor_settled_session else "")
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    load = info["load_average_at_start"]
    parts.append("## Machine and versions\n\n"
                 f"- {info['date']}, commit {info['commit']}\n"
                 f"- CPU: {info['cpu']}, {info['cores']} cores; {info['memory_gib']} GiB; {info['os']}\n"
                 f"- {info['python']}; {packages}\n"
                 f"- load average when the run started: {', '.join(f'{v:.2f}' for v in load) if load else 'n/a'}\n"
                 f"- server: functions-framework's production server, the same for ours and the floor: "
                 f"{json.dumps(results['framework'])}\n"
                 f"- mode: {'quick (smoke run: too few samples to mean anything)' if settings.quick else 'full'}"
                 f"{variant}; "
                 f"STARDEX_REQUESTS_PER_MINUTE={common.BENCH_REQUESTS_PER_MINUTE} for ours (the per-instance "
                 f"limiter, 60 in production, lifted so it does not cap the load)\n")

    rows = []
    for label, run in results["pipeline"].items():
        for body, data in run["bodies"].items():
            stages = data["stages"]
            rows.append([label, body] + [f"{stages[stage]['p50_us']:.0f}" for stage in
                                         ("verify", "parse", "map", "validate", "build")]
                        + [f"{stages['total']['p50_us']:.0f} / {stages['total']['p99_us']:.0f}",
                           f"{data['handle']['p50_us']:.0f} / {data['handle']['p99_us']:.0f}",
                           "+".join(data["calls"])])
    parts.append("## Pipeline, per stage (µs, p50)\n\n"
                 f"{settings.pipeline_iterations} iterations per body after {settings.pipeline_warmup} warm-up. "
                 "`total` = verify + parse + map + validate + build (the target); `handle()` = the whole "
                 "`WebhookApp.handle` on a Werkzeug request (adds reading the request, the answer and the log line). "
                 "`shipped` is the code as it is; `uncached` clears the phone and email caches before each "
                 "iteration (addresses this instance never saw); `plain-*` swap the hand-built JMESPath "
                 "compiler and the fast schema pre-check for the plain libraries.\n\n"
                 + markdown_table(["variant", "body", "verify", "parse", "map", "validate", "build",
                                   "total p50 / p99", "handle() p50 / p99", "calls"], rows) + "\n")

    rows = []
    for cell_name, cell in results["served"].items():
        for name in SERVERS:
            data = cell[name]
            calls = ", ".join(f"{call.split(' ')[0]} {count}" for call, count in data["calls"].items()
                              if count and call != "errors")
            rows.append([cell_name, name, f"{data['rps']:.0f}", " ".join(f"{v:.0f}" for v in data["slices_rps"]),
                         f"{data['p50_ms']:.2f}", f"{data['p99_ms']:.2f}", str(data["answered"]),
                         str(data["errors"]), calls or "-"])
    parts.append("## Served runs\n\n"
                 + "".join(f"- `{kind}`: {common.KIND_DESCRIPTION[kind]}\n" for kind in common.KINDS)
                 + f"- {settings.served_slices} slice(s) per cell and server, ours and the floor alternating, each "
                 f"{settings.served_warmup}s warm-up + {settings.served_seconds}s measured (at most "
                 f"{settings.served_max_requests} timed answers). req/s, p50 and p99 pool every slice; the ratio in "
                 "the main table is the median of the ratios of neighbouring slices (pooled ratio: "
                 + ", ".join(f"{name} {cell['rps_ratio_pooled']:.2f}" for name, cell in results["served"].items())
                 + "). `calls` is what the fake Stardex counted, warm-up included: it must be exactly the calls of "
                 "each answered webhook.\n\n"
                 + markdown_table(["cell", "server", "req/s", "req/s per slice", "p50 ms", "p99 ms", "answered",
                                   "errors", "calls seen by the fake"], rows) + "\n")

    parts.append("## Cold start\n\n"
                 "Process start (`functions-framework --source ... --target handle_webhook`, bytecode already "
                 "compiled) to the first 200 answer to the webhook, sent every 2 ms until the server answers; "
                 "for each kind one unrecorded start of each server first, then ours and the floor alternating.\n\n"
                 + markdown_table(["webhook", "server", "median ms", "each start ms"],
                                  [[kind, name, f"{data['median_ms']:.0f}", ", ".join(str(v) for v in data["all_ms"])]
                                   for kind, cold in results["cold_start"].items() for name, data in cold.items()])
                 + "\n")

    imports = results["imports"]
    rows = [[package, f"{ms:.1f}"] for package, ms in imports["ours"]["by_package_ms"][:14]]
    parts.append("## Import time of `main` (python -X importtime), by package\n\n"
                 f"Median of {settings.import_runs} run(s): ours {imports['ours']['total_ms']:.0f} ms "
                 f"(runs: {', '.join(f'{v:.0f}' for v in imports['ours']['totals_ms'])}), floor "
                 f"{imports['floor']['total_ms']:.0f} ms. Self time summed per top-level package; a "
                 "standard-library module counts under the package that imported it, a third-party dependency "
                 "under its own name:\n\n"
                 + markdown_table(["package", "ms"], rows) + "\n\n"
                 "What `main` imports directly (cumulative), and our own modules (self / cumulative):\n\n"
                 + markdown_table(["module", "cumulative ms"],
                                  [[module, f"{ms:.1f}"] for module, ms in imports["ours"]["direct_imports_ms"]])
                 + "\n\n"
                 + markdown_table(["module", "self ms", "cumulative ms"],
                                  [[module, f"{s:.1f}", f"{c:.1f}"] for module, s, c in
                                   imports["ours"]["own_modules_ms"]]) + "\n")

    memory = results["memory"]
    parts.append("## Memory\n\n"
                 "`/proc/<pid>/status` of each server after all its served runs: the gunicorn worker that "
                 "serves (the target) and the master (the arbiter; it imported the function before forking).\n\n"
                 + markdown_table(["server", "worker VmHWM MiB", "worker VmRSS MiB", "master VmHWM MiB"],
                                  [[name, f"{data['worker_vmhwm_mib']:.1f}", f"{data['worker_vmrss_mib']:.1f}",
                                    f"{data['master_vmhwm_mib']:.1f}"] for name, data in memory.items()]) + "\n")
    if results["problems"]:
        parts.append("## Problems\n\n" + "".join(f"- {problem}\n" for problem in results["problems"]))
    return "\n".join(parts)


# ---- main ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the CI smoke run: few samples, no meaning")
    parser.add_argument("--out", type=Path, default=common.BENCH / "RESULTS.md")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--floor-settled-session", action="store_true",
                        help="a variant floor whose session reads requests' environment settings once, as our "
                             "client does (not the floor the targets are defined against; for comparison)")
    args = parser.parse_args(argv)
    settings = Settings(args.quick, args.floor_settled_session)
    if settings.floor_settled_session:
        FLOOR_EXTRA_ENV["BENCH_FLOOR_SETTLED_SESSION"] = "1"

    def step(text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    results: dict = {"machine": machine(), "framework": framework_settings(), "targets": TARGETS,
                     "quick": settings.quick}
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="stardex-bench-") as scratch:
        workdir = Path(scratch)
        step("pipeline cost, in-process")
        results["pipeline"] = run_pipeline(settings)
        step("import time")
        results["imports"] = run_imports(settings)
        fake = Fake()
        try:
            step("cold starts")
            results["cold_start"] = run_cold_starts(settings, fake, workdir)
            step("served runs")
            results["served"], results["memory"], results["problems"] = run_served(settings, fake, workdir)
        finally:
            fake.stop()

    rows = build_rows(results, settings)
    table = markdown_table(MAIN_HEADER, rows)
    results["table"] = rows
    print(table)
    document = ("# Bench results\n\nProduced by `python bench/run.py"
                + (" --quick" if settings.quick else "")
                + (" --floor-settled-session" if settings.floor_settled_session else "")
                + "` (method: bench/README.md).\n\n"
                + table + "\n\n" + details(results, settings))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    step(f"wrote {args.out}")
    if results["problems"]:
        print("\nthe measurement is not sound:\n" + "\n".join(results["problems"]), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
