"""Cloud Functions entry point: wires the package together and does nothing else.

Local run: functions-framework --source=main.py --target=handle_webhook --port=8080
The queued worker (a second, private function from the same source): --target=handle_task
"""

import gc

# The collector is off while the instance starts and the start's objects are then frozen out of it
# (Python's documented pattern for a server that forks its workers, as gunicorn does): the start
# makes a few hundred thousand long-lived objects, and collecting them over and over cost every
# cold start about 25 ms (bench/RESULTS.md). It is on again before the first request.
gc.disable()

import functions_framework  # noqa: E402

from stardex_webhook.app import WebhookApp  # noqa: E402
from stardex_webhook.errors import ConfigurationError  # noqa: E402
from stardex_webhook.worker import TaskWorker  # noqa: E402

# Built at import so that a broken mapping file or setting stops the instance at start, with a
# message naming the fault, instead of failing requests one by one. Clients and secrets are not
# made here: they come on first use, so a cold start stays fast.
try:
    _app = WebhookApp.from_environment()
except ConfigurationError as error:
    # The fault alone on stderr, exit status 1: not buried under the framework's traceback.
    raise SystemExit(f"stardex-webhook cannot start: {error}") from None
finally:
    gc.enable()
_worker = TaskWorker(_app)
gc.freeze()


@functions_framework.http
def handle_webhook(request):
    """Answer one webhook (POST /<source>) or health check (GET /healthz)."""
    return _app.handle(request)


@functions_framework.http
def handle_task(request):
    """Deliver one Cloud Tasks task that handle_webhook enqueued (DELIVERY=queued)."""
    return _worker.handle(request)
