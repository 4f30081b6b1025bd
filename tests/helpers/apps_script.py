"""The shipped Google Forms Apps Script (apps_script/google_forms.gs) run under Node with stand-ins for
the Apps Script services (tests/apps_script_harness.js): one function of the script, as its trigger
would run it (the Google Forms source tests and the end-to-end form tests)."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.conftest import ROOT, SIGNING_KEYS, fixture_json

HARNESS = ROOT / "tests" / "apps_script_harness.js"
NODE = shutil.which("node")
FIXTURE = fixture_json("google_forms_response.json")
KEY = SIGNING_KEYS["google-forms"]
FUNCTION_URL = "https://europe-west1-acme.cloudfunctions.net/stardex-webhook/google-forms"
CONFIG = {"STARDEX_WEBHOOK_URL": FUNCTION_URL, "STARDEX_WEBHOOK_KEY": KEY}
PENDING = "stardex_pending:ACYDBNexampleResponseId0000"


def run_script(run: str, properties: dict | None = None, fetch: list | None = None, now: float | None = None,
               submission: dict = FIXTURE, triggers: list | None = None) -> dict:
    """Run one function of the script as its trigger would; ``fetch`` plans UrlFetchApp's answers."""
    assert NODE, "node is needed to run the Apps Script (apt-get install -y nodejs)"
    given = {"run": run, **submission, "properties": CONFIG if properties is None else properties,
             "fetch": fetch or [], "triggers": triggers or []}
    if now is not None:
        given["now"] = int(now * 1000)
    done = subprocess.run([NODE, str(HARNESS)], input=json.dumps(given), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
