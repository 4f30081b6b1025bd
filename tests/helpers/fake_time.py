"""A clock for the HTTP clients' tests: time moves only when someone sleeps."""

WALL_EPOCH = 1_700_000_000.0


class FakeTime:
    """A clock that only moves when someone sleeps; remembers every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_EPOCH + self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
