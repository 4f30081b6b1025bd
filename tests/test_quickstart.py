"""The README's "Quick start", run word for word on a fresh clone against the sandbox Stardex.

The commands are read from README.md's ``## Quick start`` section (its first ``sh`` block, one
command a line, each in its own shell as a person runs them): the sandbox, the function served
against it, then a plan and the real update. ``QUICK_START`` is the text that section holds.

The clone is ``git clone`` of this checkout into an empty temporary folder. Its ``.venv`` is made
by the README's own ``python3 -m venv .venv``; for speed, it is made a moment before (a plain venv)
plus one ``.pth`` line that adds this test run's installed packages (the project's venv, pip
included, run by the venv's ``bin/pip``), so the README's ``python3 -m venv .venv`` finds pip there
and its ``pip install -r requirements.txt`` finds every pin satisfied, and neither installs
anything. The code, the mappings and the samples the commands run are the clone's. The sandbox and the function
listen on the README's ports, 8090 and 8080: in a network namespace of the test's own (``unshare``,
loopback only), where those ports are free whatever else runs on the machine (a developer's own
quick start, another test run); where no namespace can be made, on the machine's own loopback, and
then they must be free.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

QUICK_START = """\
python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && .venv/bin/python -m stardex_webhook.fake_stardex
STARDEX_API_BASE=http://127.0.0.1:8090/v1 STARDEX_API_KEY=test-stardex-key .venv/bin/python -m stardex_webhook.serve
STARDEX_API_BASE=http://127.0.0.1:8090/v1 STARDEX_API_KEY=test-stardex-key .venv/bin/python -m stardex_webhook.plan greenhouse stardex_webhook/samples/greenhouse.json --unsigned; .venv/bin/python -m stardex_webhook.send_sample greenhouse
"""
SANDBOX, FUNCTION = 8090, 8080
MARTA = "3b8e1f52-7c4d-4a9e-b1f0-52d6c8a7e913"  # the sandbox's person the greenhouse sample finds
# What a fresh shell has: nothing of the project's settings, and none of this test run's venv.
PASSED_THROUGH = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TERM")


def readme_commands(readme: Path) -> list[str]:
    """The commands of README.md's ``## Quick start`` section (its first ``sh`` block)."""
    text = readme.read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    block = re.search(r"^```sh\n(.*?)^```", section.group(1), re.M | re.S) if section else None
    if block is None:
        pytest.fail("README.md has no '## Quick start' section with a ```sh block; it should hold, word for word:\n"
                    + QUICK_START)
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def shell_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name in PASSED_THROUGH or name.startswith(("PYENV", "PIP_", "SSL_CERT"))}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep)
                                  if not part.startswith(sys.prefix))
    return env


# Run inside the namespace by ``probe``: the status and body of a GET (0 when nothing answers).
_PROBE = """
import sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=dict(arg.split(": ", 1) for arg in sys.argv[2:]))
try:
    with urllib.request.urlopen(request, timeout=2) as answer:
        status, body = answer.status, answer.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
except OSError:
    status, body = 0, b""
sys.stdout.write(str(status) + "\\n" + body.decode("utf-8", "replace"))
"""


@contextlib.contextmanager
def own_network():
    """A network namespace with only its loopback, up: yields the command prefix that runs a
    command inside it, or None where none can be made here (no ``unshare``/``nsenter``/``ip``, or
    namespaces not allowed), and the commands then run on the machine's own loopback."""
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip")):
        yield None
        return
    as_root = os.geteuid() == 0
    holder = subprocess.Popen(["unshare", "--net", *([] if as_root else ["--map-root-user"]), "sh", "-c",
                               "ip link set lo up && echo up && exec sleep 3600"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        prefix = ["nsenter", f"--target={holder.pid}", "--net",
                  *([] if as_root else ["--user", "--preserve-credentials"])]
        up = holder.stdout.readline() == b"up\n" and subprocess.run(
            [*prefix, "true"], stderr=subprocess.DEVNULL, timeout=30).returncode == 0
        yield prefix if up else None
    finally:
        holder.kill()
        holder.wait()


def probe(network: list[str] | None, url: str, **headers: str) -> tuple[int, str]:
    """GET ``url`` from inside ``network`` (the machine's own where None): (status, body), status 0
    when nothing answers."""
    if network is None:
        try:
            answer = requests.get(url, headers=headers, timeout=2)
        except requests.RequestException:
            return 0, ""
        return answer.status_code, answer.text
    done = subprocess.run([*network, sys.executable, "-I", "-c", _PROBE, url,
                           *(f"{name}: {value}" for name, value in headers.items())],
                          capture_output=True, text=True, timeout=60)
    status, _, body = done.stdout.partition("\n")
    return int(status or 0), body


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_until(ready, process: subprocess.Popen, log: Path, what: str, seconds: float = 180) -> None:
    stop = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log.read_text()}")
        if time.monotonic() > stop:
            pytest.fail(f"{what} did not start within {seconds:g} s:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.fixture
def clone(tmp_path):
    """A fresh clone, with nothing beside it, and the folder its .venv will be made in."""
    folder = tmp_path / "stardex-webhook"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True, timeout=120)
    python3 = shutil.which("python3", path=shell_environment()["PATH"])
    version = subprocess.run([python3, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if version != str(tuple(sys.version_info[:2])):
        pytest.fail(f"python3 on PATH is {version}, this venv's Python {sys.version_info[:2]}: the quick start's "
                    "venv cannot reuse its packages")
    # Without installing pip (ensurepip: 5 s of CPU, the README's own venv command then finding it
    # there): the project venv's pip, through the .pth below, run by a bin/pip as pip writes one.
    subprocess.run([python3, "-m", "venv", "--without-pip", str(folder / ".venv")], check=True, timeout=120)
    site = sysconfig.get_paths(vars={"base": str(folder / ".venv"), "platbase": str(folder / ".venv")})["purelib"]
    Path(site, "_project_venv.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    pip = folder / ".venv" / "bin" / "pip"
    pip.write_text(f"#!{folder / '.venv' / 'bin' / 'python'}\nimport sys\nfrom pip._internal.cli.main import main\n"
                   "sys.exit(main())\n")
    pip.chmod(0o755)
    return folder


@pytest.fixture
def network():
    with own_network() as prefix:
        if prefix is None:
            for port in (SANDBOX, FUNCTION):
                assert port_is_free(port), f"127.0.0.1:{port} is taken: the quick start's commands listen there"
        yield prefix


def test_the_readme_quick_start_word_for_word_on_a_fresh_clone(clone, network, tmp_path):
    commands = readme_commands(clone / "README.md")
    assert len(commands) == 3, f"the quick start is three commands, not {len(commands)}: {commands}"
    env = shell_environment()
    shell = [*(network or []), "bash", "-c"]
    started = []
    try:
        for index, (command, ready, what) in enumerate([
            (commands[0], lambda: probe(network, f"http://127.0.0.1:{SANDBOX}/")[0] != 0, "the sandbox (command 1)"),
            (commands[1], lambda: probe(network, f"http://127.0.0.1:{FUNCTION}/healthz")[0] == 200,
             "the function (command 2)"),
        ]):
            log = tmp_path / f"command-{index + 1}.log"
            with log.open("wb") as out:
                process = subprocess.Popen([*shell, command], cwd=clone, env=env, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            started.append(process)
            wait_until(ready, process, log, what)
        third = subprocess.run([*shell, commands[2]], cwd=clone, env=env, capture_output=True, text=True,
                               timeout=180)
        output = third.stdout
        assert third.returncode == 0, third.stdout + third.stderr

        plan, _, sent = output.partition("HTTP ")
        assert plan.startswith("plan: read-only — nothing is written to Stardex\n"), plan
        assert f"person: {MARTA} (Marta Quintal), found by search: email marta.quintal@example.org\n" in plan
        assert f"  ~ person {MARTA} (Marta Quintal) {{\n" in plan
        assert '      + current_job_title = "Data Engineer"\n' in plan
        assert '          + work "mquintal@northwind-example.com"\n' in plan
        assert "Plan: 5 to add, 1 to change, 3 kept.\n" in plan
        assert f"  2. PATCH /v1/persons/{MARTA} " in plan and "write, not made" in plan
        assert sent.startswith("200\n") and '"status": "updated"' in sent, sent

        status, text = probe(network, f"http://127.0.0.1:{SANDBOX}/v1/persons/{MARTA}",
                             Authorization="Bearer test-stardex-key")
        assert status == 200, text
        stored = json.loads(text)["data"]
        assert stored["current_job_title"] == "Data Engineer", "the update landed"
        assert {"contact_data_type": "work", "value": "mquintal@northwind-example.com"} in stored["emails"]
        assert stored["phones"] == [{"contact_data_type": "mobile", "value": "+351910000111"}]

        again = subprocess.run([*shell, commands[2].split(";")[0]], cwd=clone, env=env, capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes: the person already holds everything this update would write.\n" in again.stdout
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
