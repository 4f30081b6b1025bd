"""Send a signed sample webhook to a running function, the way the real sender would sign it.

    python -m stardex_webhook.send_sample greenhouse
    python -m stardex_webhook.send_sample typeform --body my_form.json --url http://127.0.0.1:8080
    python -m stardex_webhook.send_sample generic --key whsec_...

The key comes from --key, else from <SOURCE>_SIGNING_KEY, else the local demo key that
``python -m stardex_webhook.serve`` configures when none is set.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

from .config import signing_key_name
from .sources.generic import signing_key_bytes

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _greenhouse(body: bytes, key: str, now: int) -> dict[str, str]:
    return {"Signature": "sha256 " + _hmac(key.encode(), body).hex(), "Greenhouse-Event-ID": str(uuid.uuid4())}


def _typeform(body: bytes, key: str, now: int) -> dict[str, str]:
    return {"Typeform-Signature": "sha256=" + base64.b64encode(_hmac(key.encode(), body)).decode()}


def _standard_webhooks(body: bytes, key: str, now: int) -> dict[str, str]:
    message_id = f"msg_{uuid.uuid4().hex}"
    signed = f"{message_id}.{now}.".encode() + body
    signature = base64.b64encode(_hmac(signing_key_bytes(key) or b"", signed)).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(now), "webhook-signature": f"v1,{signature}"}


SIGNERS: dict[str, Callable[[bytes, str, int], dict[str, str]]] = {
    "greenhouse": _greenhouse,
    "typeform": _typeform,
    "generic": _standard_webhooks,
}


def local_signing_key(source: str) -> str:
    """The demo key for local runs only: published here, so never for a deployed function."""
    raw = f"local-{source}-signing-key"
    if SIGNERS.get(source) is _standard_webhooks:
        return "whsec_" + base64.b64encode(raw.encode()).decode()
    return raw


def signed_request(source: str, body: bytes, key: str, now: int | None = None) -> dict[str, str]:
    """The headers the sender would send with ``body``."""
    headers = SIGNERS[source](body, key, int(time.time() if now is None else now))
    headers["Content-Type"] = "application/json"
    return headers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=sorted(SIGNERS))
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the function's base URL")
    parser.add_argument("--body", type=Path, help="a JSON body to send instead of the shipped sample")
    parser.add_argument("--key", help="the signing key (default: $<SOURCE>_SIGNING_KEY or the local demo key)")
    args = parser.parse_args(argv)

    import requests  # imported here so --help stays instant

    try:
        body = (args.body or SAMPLES_DIR / f"{args.source}.json").read_bytes()
    except OSError as error:
        parser.error(f"--body {args.body}: {error.strerror}")
    key = args.key or os.environ.get(signing_key_name(args.source)) or local_signing_key(args.source)
    url = f"{args.url.rstrip('/')}/{args.source}"
    try:
        answer = requests.post(url, data=body, headers=signed_request(args.source, body, key), timeout=30)
    except requests.RequestException as error:
        print(f"could not reach {url}: {error}", file=sys.stderr)
        return 2
    print(f"HTTP {answer.status_code}")
    try:
        print(json.dumps(answer.json(), indent=2))
    except ValueError:
        print(answer.text)
    return 0 if answer.ok else 1


if __name__ == "__main__":
    sys.exit(main())
