"""Write the inputs and outputs tables of each module's README.md from its variables.tf and outputs.tf.

The tables sit between the markers below, as terraform-docs places them, so the prose around them
is the author's and the tables are always the code's. ``--check`` changes nothing and exits 1 when a
README differs from what would be written (tests/test_infra.py runs it).

    python infra/tools/docs.py            # rewrite the tables
    python infra/tools/docs.py --check    # fail on drift
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hcl2

INFRA = Path(__file__).resolve().parents[1]
FOLDERS = [INFRA, INFRA / "examples" / "basic"]
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def _unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _unquoted_all(value):
    """python-hcl2 keeps the quotes of strings inside lists and maps too: drop them at every level,
    so a default reads ``["greenhouse"]``, as it is written, and not ``["\\"greenhouse\\""]``."""
    if isinstance(value, list):
        return [_unquoted_all(item) for item in value]
    if isinstance(value, dict):
        return {_unquote(key): _unquoted_all(item) for key, item in value.items()}
    return _unquote(value)


def _blocks(path: Path, kind: str) -> dict[str, dict]:
    with path.open() as handle:
        return {_unquote(name): body for block in hcl2.load(handle).get(kind, []) for name, body in block.items()}


def _default(body: dict) -> str:
    if "default" not in body:
        return "required"
    value = _unquote(body["default"])
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(_unquoted_all(value))}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return _unquote(text).replace("|", "\\|")


def tables(folder: Path) -> str:
    """The two Markdown tables of one module, as they belong in its README."""
    lines = ["| Input | Type | Default | Description |", "|---|---|---|---|"]
    for name, body in _blocks(folder / "variables.tf", "variable").items():
        kind = _unquote(body["type"]).replace("${", "").replace("}", "")
        lines.append(f"| `{name}` | `{kind}` | {_default(body)} | {_cell(body['description'])} |")
    lines += ["", "| Output | Description |", "|---|---|"]
    for name, body in _blocks(folder / "outputs.tf", "output").items():
        lines.append(f"| `{name}` | {_cell(body['description'])} |")
    return "\n".join(lines)


def rendered(folder: Path) -> tuple[str, str]:
    """The README as it is, and as it should be."""
    readme = (folder / "README.md").read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"{folder / 'README.md'}: no {BEGIN} ... {END} markers for the tables")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return readme, f"{head}{BEGIN}\n{tables(folder)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    stale = []
    for folder in FOLDERS:
        current, wanted = rendered(folder)
        if current != wanted:
            stale.append(folder / "README.md")
            if "--check" not in argv:
                (folder / "README.md").write_text(wanted)
    for path in stale:
        print(f"{path}: tables {'out of date (run python infra/tools/docs.py)' if '--check' in argv else 'rewritten'}", file=sys.stderr)
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
