"""The time one webhook may take, shared by every slow step it makes (reading a secret, calling
Stardex, waiting for a rate-limit slot): no step may run past it, so the sender always gets an
answer in time."""

from __future__ import annotations

import time
from typing import Callable

DEFAULT_DEADLINE_SECONDS = 20.0


class Deadline:
    """The time left for one webhook, shared by all the slow steps it makes."""

    def __init__(self, seconds: float = DEFAULT_DEADLINE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.expires_at = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0
