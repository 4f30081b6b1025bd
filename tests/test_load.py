"""Load against Stardex's limit, short: ``bench/soak.py`` (the real function, the loopback fake
Stardex enforcing its limit, a steady rate, a spike of ten times it, the steady rate again) scaled
to seconds, with its invariants asserted: no 500, no lost answer, every event either applied or
answered 503 with ``Retry-After``, and as many applied in Stardex as the senders were told.
Nothing here looks at a time, a rate or a memory figure: the bench reports those.
"""

from __future__ import annotations

import sys

import pytest

from stardex_webhook.deadline import Deadline
from stardex_webhook.errors import RetryLater
from stardex_webhook.stardex import MIN_REQUEST_SECONDS, RateLimiter
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import soak  # noqa: E402

# Stardex's limit scaled down with its window (10 in any 2 s), so the spike (20 a second) is
# twice what it allows and the steady rate (2 a second) well under it.
SHORT = {"rate": 2.0, "spike": 10.0, "steady_seconds": 6.0, "spike_seconds": 2.0, "window_seconds": 2.0,
         "deadline_seconds": 1.0, "limit": 10}


@pytest.fixture(scope="module")
def sync_run():
    return soak.run(**SHORT)


def test_every_request_is_answered_200_or_503_and_never_500(sync_run):
    assert sync_run["unanswered"] == 0
    assert set(sync_run["statuses"]) <= {"200", "503"}, sync_run["statuses"]
    assert sum(sync_run["statuses"].values()) == sync_run["sent"] == len(soak.schedule(
        SHORT["rate"], SHORT["spike"], SHORT["steady_seconds"], SHORT["spike_seconds"]))


def test_every_event_is_applied_or_answered_503_with_retry_after(sync_run):
    told = sync_run["updated"] + sync_run["no_change"]
    unsure = sync_run["outcomes"].get("503 stardex_unavailable", 0)  # a PATCH whose answer the deadline cut
    assert told <= sync_run["applied_in_stardex"] <= told + unsure
    assert told + sync_run["retry_later"] == sync_run["sent"]
    assert sync_run["retry_later_without_retry_after"] == 0
    assert set(sync_run["outcomes"]) <= {"200 updated", "200 no_change", "503 stardex_rate_limited",
                                         "503 stardex_unavailable"}, sync_run["outcomes"]
    assert sync_run["problems"] == []


def test_the_spike_met_the_limit(sync_run):
    """The run tested something: some events were applied and the spike was refused in part.
    (Stardex's own limit may refuse a few too, when calls reach it closer together than the
    function's limiter granted them: those are retried within the deadline, and counted above.)"""
    assert sync_run["updated"] > 0 and sync_run["retry_later"] > 0, sync_run["outcomes"]


def test_the_memory_was_sampled(sync_run):
    assert sync_run["rss_mib"]["samples"] >= 2
    assert isinstance(sync_run["rss_slope_mib_per_minute"], float)


@pytest.fixture(scope="module")
def queued_run():
    return soak.run(**SHORT, delivery="queued")


def test_queued_the_spike_is_all_queued_and_the_worker_applies_each_once(queued_run):
    """``DELIVERY=queued``: the senders are answered ``queued`` (no 500, none lost; a 503 only if
    the queue could not take one), and the worker settles every queued event: applied once each."""
    queued = queued_run["outcomes"].get("200 queued", 0)
    assert queued_run["unanswered"] == 0
    assert set(queued_run["outcomes"]) <= {"200 queued", "503 queue_unavailable"}, queued_run["outcomes"]
    assert queued + queued_run["retry_later"] == queued_run["sent"]
    assert queued_run["retry_later_without_retry_after"] == 0
    assert queued_run["worker_outcomes"] == {"updated": queued, "unsettled": 0}
    assert queued_run["applied_in_stardex"] == queued
    assert queued_run["problems"] == []


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
