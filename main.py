"""Cloud Functions entry point: wires the package together and does nothing else.

Local run: functions-framework --source=main.py --target=handle_webhook --port=8080
The queued worker (a second, private function from the same source): --target=handle_task
"""

import functions_framework

from stardex_webhook.errors import ConfigurationError
from stardex_webhook.ingress import Ingress
from stardex_webhook.pipeline import Pipeline
from stardex_webhook.worker import TaskWorker

# Built at import so that a broken mapping file or setting stops the instance at start, with a
# message naming the fault, instead of failing requests one by one. Clients and secrets are not
# made here: they come on first use.
try:
    _pipeline = Pipeline.from_environment()
except ConfigurationError as error:
    # The fault alone on stderr, exit status 1: not buried under the framework's traceback.
    raise SystemExit(f"stardex-webhook cannot start: {error}") from None
_ingress = Ingress(_pipeline)
_worker = TaskWorker(_pipeline)


@functions_framework.http
def handle_webhook(request):
    """Answer one webhook (POST /<source>) or health check (GET /healthz)."""
    return _ingress.handle(request)


@functions_framework.http
def handle_task(request):
    """Deliver one Cloud Tasks task that handle_webhook enqueued (DELIVERY=queued)."""
    return _worker.handle(request)
