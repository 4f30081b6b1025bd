"""The limiter under load, on a fake clock. The load itself (``bench/soak.py``, short, both delivery
modes, its invariants asserted) is run once, by the bench's quick run: ``tests/test_bench.py``.
"""

from __future__ import annotations

import pytest

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater
from stardex_webhook.stardex import MIN_REQUEST_SECONDS, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("left, waits", [(1.0 + MIN_REQUEST_SECONDS + 0.01, True), (1.0 + MIN_REQUEST_SECONDS / 2, False)])
def test_the_limiter_waits_only_when_the_call_can_still_be_made_after(left, waits):
    """A full window frees its first slot in 1 s. With time for the wait and a call after it, the
    limiter waits; with time for the wait alone it answers ``stardex_rate_limited`` at once (it
    used to wait, then fail as ``stardex_unavailable`` with no time left)."""
    clock = Clock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep, window_seconds=2.0)
    limiter.acquire(Deadline(10, clock=clock))
    clock.now = 1.0
    limiter.acquire(Deadline(10, clock=clock))
    deadline = Deadline(left, clock=clock)
    if waits:
        limiter.acquire(deadline)
        assert clock.now == pytest.approx(2.0)
    else:
        with pytest.raises(RetryLater) as caught:
            limiter.acquire(deadline)
        assert (caught.value.reason, caught.value.retry_after, clock.now) == ("stardex_rate_limited", 1, 1.0)
