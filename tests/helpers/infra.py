"""Where the Terraform module is, and its scripts (infra/tools/) imported as modules (the infra tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def tool(name: str):
    """A script of infra/tools/, imported as a module (infra/ is not a package: it is not deployed)."""
    spec = importlib.util.spec_from_file_location(name, INFRA / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
