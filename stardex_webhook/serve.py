"""Run the function locally with safe defaults: ``python -m stardex_webhook.serve``.

- No Stardex key configured → ``DRY_RUN=1``: webhooks are verified, mapped and validated, and the
  answer shows the body that would have been sent; Stardex is never called.
- A source without a signing key gets the published local demo key, so
  ``python -m stardex_webhook.send_sample <source>`` works at once. Real keys in the environment win.

Then it starts the same server Cloud Functions runs:
``functions-framework --source=main.py --target=handle_webhook --port=$PORT`` (PORT defaults to 8080).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .config import signing_key_name
from .send_sample import local_signing_key
from .sources import SOURCES

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"


def local_environment(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment for a local run and a note for each default it filled in."""
    env = dict(environ)
    notes = []
    if not (env.get("STARDEX_API_KEY") or env.get("STARDEX_API_KEY_SECRET")) and not env.get("DRY_RUN"):
        env["DRY_RUN"] = "1"
        notes.append("no STARDEX_API_KEY: running with DRY_RUN=1 (nothing is sent to Stardex)")
    for source in SOURCES:
        name = signing_key_name(source)
        if not (env.get(name) or env.get(f"{name}_SECRET")):
            env[name] = local_signing_key(source)
            notes.append(f"no {name}: using the local demo key (never use it in production)")
    return env, notes


def main() -> None:
    env, notes = local_environment(dict(os.environ))
    port = env.get("PORT", "8080")
    for note in notes:
        print(f"serve: {note}", file=sys.stderr)
    print(f"serve: webhooks at http://127.0.0.1:{port}/<source>, health at /healthz", file=sys.stderr)
    command = [
        sys.executable, "-m", "functions_framework",
        f"--source={MAIN_PY}", "--target=handle_webhook", f"--port={port}",
    ]
    os.execvpe(sys.executable, command, env)


if __name__ == "__main__":
    main()
