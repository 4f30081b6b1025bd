"""The vendors' and their SDKs' own signature vectors (``tests/corpus/vectors.json``, named in
``tests/corpus/SOURCES.md``): each adapter's check accepts exactly the ones the vendor signed, at
the vector's own time (the end-to-end corpus then signs with the same scheme at the time of the run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stardex_webhook.errors import Unauthorized
from stardex_webhook.records import Delivery, Headers
from stardex_webhook.sources import SOURCES

VECTORS = json.loads((Path(__file__).parent / "corpus" / "vectors.json").read_text(encoding="utf-8"))
CASES = [(vector, source) for vector in VECTORS for source in vector["sources"]]


@pytest.mark.parametrize("vector, source", CASES, ids=[f"{source}: {vector['name']}" for vector, source in CASES])
def test_a_vendor_vector_is_accepted_exactly_when_the_vendor_signed_it(vector, source):
    delivery = Delivery(Headers(vector["headers"].items()), vector["body"].encode("utf-8"), float(vector["now"]),
                        url=vector.get("url", ""), method=vector.get("method", "POST"))
    try:
        SOURCES[source].verify(delivery, [vector["key"]], float(vector["now"]))
        accepted = True
    except Unauthorized:
        accepted = False
    assert accepted is vector["accepted"]


def test_a_vector_outside_its_time_is_refused():
    """The replay window is the server's clock: a vector five minutes and more old is refused."""
    vector = VECTORS[0]
    delivery = Delivery(Headers(vector["headers"].items()), vector["body"].encode(), float(vector["now"]))
    with pytest.raises(Unauthorized):
        SOURCES["generic"].verify(delivery, [vector["key"]], float(vector["now"]) + 301)
