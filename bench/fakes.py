"""The loopback Stardex and Secret Manager the bench's servers call, in a process of their own.

The same fakes the tests use (``stardex_webhook.fake_stardex.FakeStardex``,
``tests/fakes/fake_secret_manager.py``), started here so that their CPU is not the orchestrator's.
Prints one JSON line (``stardex``: the base URL, ``secret_manager``: the endpoint, ``secrets``: the
environment naming each secret), then answers one line per command read on stdin:

    reset SECONDS   forget every request, store the bench's person again (PATCHes are answered but
                    not applied, so every replay finds it as stored), answer after SECONDS
    stats           the calls seen since the last reset, as {"GET /v1/persons/{id}": n, ..., "errors": n}
"""

from __future__ import annotations

import json
import sys
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import common  # noqa: E402
from stardex_webhook.fake_stardex import FakeStardex  # noqa: E402
from tests.fakes.fake_secret_manager import FakeSecretManager  # noqa: E402

# socketserver's default listen backlog is 5: under load a sixth connection attempt waits a second
# for a SYN retransmission. The fake has no switch for it, so the bench raises it here.
ThreadingHTTPServer.request_queue_size = 1024


def counts(fake: FakeStardex) -> dict[str, int]:
    """Calls by route, and ``errors``: any request with the wrong key or to another route."""
    seen = dict.fromkeys(common.CALLS, 0)
    seen["errors"] = 0
    for request in list(fake.requests):
        head, _, tail = request.path.rpartition("/")
        call = f"{request.method} {head}/{{id}}" if head == "/v1/persons" and tail != "search" else \
            f"{request.method} {request.path}"
        authorized = request.headers.get("Authorization") == f"Bearer {common.STARDEX_KEY}"
        seen[call if call in seen and authorized else "errors"] += 1
    return seen


def main() -> None:
    stardex = FakeStardex(api_key=common.STARDEX_KEY, rate_limit=10**9).start()
    secret_manager = FakeSecretManager().start()
    secrets = {f"{name}_SECRET": secret_manager.set(f"projects/bench/secrets/{name.lower()}", value)
               for name, value in common.plain_secrets().items()}
    print(json.dumps({"stardex": stardex.base_url, "secret_manager": secret_manager.endpoint, "secrets": secrets}),
          flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "reset":
            stardex.reset()
            stardex.discard_writes = True  # each replay of the one webhook meets the same person
            stardex.add_person(**common.STORED_PERSON)
            stardex.delay_seconds = float(args[0])
            print("{}", flush=True)
        elif command == "stats":
            print(json.dumps(counts(stardex)), flush=True)
    stardex.stop()
    secret_manager.stop()


if __name__ == "__main__":
    main()
