"""Fillout, HubSpot and Google Forms: random text in their own headers and token places never
raises anything but a 401 or a 400 (signed payloads of random shapes go through the app in
tests/test_app.py)."""

from __future__ import annotations

import random

from stardex_webhook.errors import BadRequest, Unauthorized
from stardex_webhook.sources import SOURCES
from tests.conftest import make_delivery


def test_garbage_headers_and_tokens_never_raise_anything_but_unauthorized_or_bad_request():
    """The adapters' own headers and token places filled with random text (tests/test_sources_generic.py
    does the same for the headers of the senders before them)."""
    rng = random.Random("forms-b-garbage")
    alphabet = "Bearer v1,=+/ \t0123456789abcdefABCDEF%3A:é\x00\u0661\udcff\ud800"
    names = ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "Authorization", "webhook-id",
             "webhook-timestamp", "webhook-signature"]
    now = 1_773_000_000

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))

    for _ in range(2000):
        headers = {name.replace("-", "_"): text() for name in names if rng.random() < 0.8}
        body = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 30)))
        garbage = make_delivery(body, now, url=f"https://fn.example/x?{text()}", query={"token": text()}, **headers)
        for name in ("fillout", "hubspot", "google-forms"):
            try:
                SOURCES[name].verify(garbage, ["key", "whsec_a2V5", "odd \ud800"], now)
            except Unauthorized:
                pass
            try:
                SOURCES[name].parse(garbage)
            except BadRequest:
                pass
