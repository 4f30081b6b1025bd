"""Time bounds. ``Deadline``: the time one webhook may take, shared by every slow step it makes
(reading a secret, calling Stardex, waiting for a rate-limit slot): no step may run past it, so
the sender always gets an answer in time. ``WATCHDOG``: the one thread that holds a read to its
time however slowly the peer sends."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

DEFAULT_DEADLINE_SECONDS = 20.0
# The end of a webhook's (or a task's) deadline kept from its work for the bucket calls that must
# follow it: releasing or settling the claim, keeping a dead letter. A Stardex or a queue that
# takes all the time it is given still leaves the claim released, so the sender's retry is applied.
SETTLE_RESERVE_SECONDS = 0.5


class Deadline:
    """The time left for one webhook, shared by all the slow steps it makes."""

    def __init__(self, seconds: float = DEFAULT_DEADLINE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.expires_at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self._clock())

    def shortened(self, seconds: float = SETTLE_RESERVE_SECONDS) -> "Deadline":
        """The same deadline ``seconds`` earlier: the work's, the rest left to what follows it."""
        work = Deadline(0.0, self._clock)
        work.expires_at = self.expires_at - seconds
        return work


@dataclass(eq=False, slots=True)
class Watch:
    """One call under watch: when it must end, and how to cut what it is reading from."""

    expires_at: float
    cuts: list[Callable[[], Any]] = field(default_factory=list)  # each shuts down what the call is reading from
    fired: bool = False


class Watchdog:
    """One thread per process that shuts a watched read's socket down when its time is up: the only
    bound that holds however slowly a peer sends (a socket timeout restarts with every byte). Reads
    register for their duration (``ingress.read_body``, outbound requests); ``current``: this thread's."""

    current = threading.local()

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._wake_at = math.inf  # when the thread next looks at the watches (inf: when told to)
        self._thread: threading.Thread | None = None
        # gunicorn loads the app in its master and forks the worker: the thread does not come along.
        os.register_at_fork(after_in_child=self.__init__)

    @contextlib.contextmanager
    def watch(self, seconds: float) -> Iterator[Watch]:
        watch = Watch(time.monotonic() + seconds)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            if watch.expires_at < self._wake_at:  # else the thread looks before it expires anyway
                self._wake_at = watch.expires_at
                self._cond.notify()
            self._watches.add(watch)
        self.current.watch = watch
        try:
            yield watch
        finally:
            self.current.watch = None
            with self._cond:
                self._watches.discard(watch)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for watch in [watch for watch in self._watches if watch.expires_at <= now]:
                    self._watches.discard(watch)
                    watch.fired = True
                    for shutdown in watch.cuts:
                        cut(shutdown)
                self._wake_at = min((watch.expires_at for watch in self._watches), default=math.inf)
                self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)


WATCHDOG = Watchdog()


def cut(shutdown: Callable[[], Any]) -> None:
    """Shut a socket down under the thread reading it, which then sees the end of the stream."""
    with contextlib.suppress(Exception):  # already closed, or released to the pool
        shutdown()
