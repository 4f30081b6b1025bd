"""CI's verdict on a ``pip-audit --format json`` report (the path is the one argument).

A known vulnerability in an installed package fails the run: every package is pinned, so the fix is
a pin raised to a version the report names, and an unpatched advisory should be seen before it
ships. An advisory database that cannot be reached is only a warning: pip-audit then writes no
report (it stopped) or marks packages it could not look up as skipped, and a CI run must not fail
because a third-party service was down. The venv's own installer (pip, setuptools, wheel: what
``python3 -m venv`` put there, from the machine's Python, and no dependency of the function, which
Cloud Functions builds with its own pip) is reported as a warning only. Standard library only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

INSTALLER = {"pip", "setuptools", "wheel"}


def main(path: str) -> int:
    try:
        report = json.loads(Path(path).read_text())
        dependencies = report["dependencies"]
    except (OSError, ValueError, KeyError, TypeError):
        print("CI warning: pip-audit wrote no report (its advisory database could not be reached?); not audited")
        return 0
    every = [(dep, vuln) for dep in dependencies for vuln in dep.get("vulns") or []]
    found = [(dep, vuln) for dep, vuln in every if dep["name"].lower() not in INSTALLER]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    for dep, vuln in every:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
        kind = "vulnerable" if (dep, vuln) in found else "warning: the venv's installer is vulnerable"
        print(f"CI: {kind}: {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
    if skipped:
        print(f"CI warning: pip-audit could not audit {len(skipped)} of {len(dependencies)} packages "
              f"(e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']})")
    if found:
        print(f"CI: {len(found)} known vulnerabilities: raise the pins named above")
        return 1
    print(f"CI: pip-audit: no known vulnerability in {len(dependencies) - len(skipped)} audited packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
