"""The test suite's own rules: modules that stand alone (shared code lives in ``tests/helpers/`` or
``conftest.py``), no fixed port bound, no nested pytest run, and one test command, the README's,
that CI runs word for word."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

TESTS = ROOT / "tests"
TEST_CODE = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" if node.module else f"{base}{alias.name}" for alias in node.names)
    return names


def test_no_test_code_imports_a_test_module():
    """A test module imported by another runs its module-scoped fixtures and tests twice, and ties the
    two together: what is shared is in tests/helpers/ or conftest.py."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in imported_modules(path)
                                            if re.search(r"(^|\.)test_\w+$", name) and "helpers" not in name)
        for path in TEST_CODE
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_no_test_binds_a_fixed_port():
    """Servers the tests start take a free port (0), so that two workers (pytest -n) never collide.
    The quick-start test alone runs the README's commands, which name the README's ports: in a
    network namespace of its own where the machine allows one, so that they collide with nothing."""
    fixed = re.compile(r"""\.bind\(\(\s*["'][^"']*["']\s*,\s*[1-9]\d*\s*\)\)|--port[= ]["']?[1-9]\d{3,}""")
    offenders = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in TEST_CODE if path.name != "test_quickstart.py"
                 for match in fixed.finditer(path.read_text())]
    assert offenders == []


def test_no_test_runs_pytest_in_a_subprocess():
    """A nested pytest run doubles the suite's cost and hides its tests from the runner's report."""
    nested = re.compile(r"""["']-m["']\s*,\s*["']pytest["']|\bpytest\.main\(""")
    offenders = [str(path.relative_to(ROOT)) for path in TEST_CODE
                 if path.name != "test_suite.py" and nested.search(path.read_text())]
    assert offenders == []


def test_ci_runs_the_readme_test_command_word_for_word():
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^python3 -m venv \.venv && .*-m pytest.*$", readme, re.M)
    assert " -n " in command, "the suite runs on every core (pytest-xdist)"
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()
    assert re.search(r"^pytest-xdist==[\d.]+$", (TESTS / "requirements.txt").read_text(), re.M)
