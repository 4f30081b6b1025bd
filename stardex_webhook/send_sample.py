"""Send a signed sample webhook to a running function, the way the real sender would sign it.

    python -m stardex_webhook.send_sample greenhouse
    python -m stardex_webhook.send_sample typeform --body my_form.json --url http://127.0.0.1:8080
    python -m stardex_webhook.send_sample generic --key whsec_...

The key comes from --key, else from <SOURCE>_SIGNING_KEY, else the local demo key that
``python -m stardex_webhook.serve`` configures when none is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .config import signing_key_name
from .sources import SOURCES

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def local_signing_key(source: str) -> str:
    """The demo key for local runs only: published here, so never for a deployed function."""
    return SOURCES[source].sample_key()


def with_local_signing_keys(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``environ`` with the demo key for every source that has no signing key of its own, and the
    sources given one: the one default ``serve``, ``plan`` and ``send_sample`` share, so that what
    one signs the others accept. A key set in the environment (or its ``_SECRET``) always wins."""
    env = dict(environ)
    filled = []
    for source in SOURCES:
        name = signing_key_name(source)
        if not (env.get(name) or env.get(f"{name}_SECRET")):
            env[name] = local_signing_key(source)
            filled.append(source)
    return env, filled


def signed_request(source: str, body: bytes, key: str, now: int | None = None,
                   url: str | None = None) -> tuple[dict[str, str], bytes]:
    """The headers the sender would send with ``body``, and the body itself (which a sender that
    signs inside it, such as Lever, changes). ``url``, the full URL it is posted to, is signed by
    senders that sign it (HubSpot); without it they sign for the local run's address."""
    adapter, at = SOURCES[source], int(time.time() if now is None else now)
    if url and adapter.signs_url:
        return adapter.sign_sample(body, key, at, url=url)
    return adapter.sign_sample(body, key, at)


def webhook_url(base: str, source: str) -> str:
    """The source's webhook URL under the function's base URL; a base that is already the source's
    webhook URL (pasted from ``terraform output webhook_urls``) is taken as it is, not doubled."""
    base = base.rstrip("/")
    return base if base.endswith(f"/{source}") else f"{base}/{source}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=sorted(SOURCES))
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the function's base URL (default: %(default)s); its source's full webhook URL works too")
    parser.add_argument("--body", type=Path, help="a JSON body to send instead of the shipped sample")
    parser.add_argument("--key", help="the signing key (default: $<SOURCE>_SIGNING_KEY or the local demo key)")
    args = parser.parse_args(argv)

    import requests  # imported here so --help stays instant

    try:
        body = (args.body or SAMPLES_DIR / f"{args.source}.json").read_bytes()
    except OSError as error:
        parser.error(f"--body {args.body}: {error.strerror}")
    keys = (args.key or os.environ.get(signing_key_name(args.source)) or "").split()
    key = keys[0] if keys else local_signing_key(args.source)  # during a rotation the setting lists several
    url = webhook_url(args.url, args.source)
    if url != f"{args.url.rstrip('/')}/{args.source}":
        print(f"send_sample: --url already ends in /{args.source}: posting to {url}", file=sys.stderr)
    try:
        headers, body = signed_request(args.source, body, key, url=url)
        answer = requests.post(url, data=body, headers=headers, timeout=30)
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
