"""Tally, Jotform and Webflow together: garbage headers, query tokens and bodies give each a clean
401 or 400, never another exception (which the app would answer 500)."""

from __future__ import annotations

import random

from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.sources import SOURCES
from tests.conftest import make_delivery

NOW = 1_773_000_000.0
KEYS = ["a key", "env key \udcff", "odd \ud800"]
ALPHABET = "Bearer sha256=,; \t=+/-_.:0123456789abcdefABCDEF\"xyzé\x00\u0661\udcff\ud800"
HEADERS = ["Tally-Signature", "x-webflow-timestamp", "x-webflow-signature", "Authorization", "Content-Type"]
BODIES = [b"", b"{}", b"--x\r\n", b'{"data": {"fields": [{}]}}', b'{"payload": {"data": {"a": 1}}}',
          b'--b\r\nContent-Disposition: form-data; name="rawRequest"\r\n\r\n{"q1_a": 1}\r\n--b--\r\n']


def text(rng: random.Random, most: int = 60) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, most)))


def test_garbage_never_raises_anything_but_unauthorized_or_bad_request():
    rng = random.Random("forms-a-garbage")
    for _ in range(1500):
        headers = {name.replace("-", "_"): text(rng) for name in HEADERS if rng.random() < 0.7}
        if rng.random() < 0.3:
            headers["Content_Type"] = rng.choice(["multipart/form-data; boundary=b", "application/x-www-form-urlencoded",
                                                  "multipart/form-data; boundary=" + text(rng, 10)])
        body = rng.choice(BODIES) if rng.random() < 0.5 else bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 40)))
        query = {"token": text(rng, 20)} if rng.random() < 0.5 else {}
        garbage = make_delivery(body, NOW, query=query, **headers)
        for name in ("tally", "jotform", "webflow"):
            try:
                SOURCES[name].verify(garbage, KEYS, NOW)
            except Unauthorized:
                pass
            try:
                SOURCES[name].parse(garbage)
            except BadRequest:
                pass
