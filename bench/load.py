"""A closed-loop HTTP/1.1 load generator for loopback: N keep-alive connections, each sending the
same pre-built request again as soon as the previous answer is in. Standard library only.

Why this and not a thread pool of ``requests``: on a 2-core machine the load generator competes
with the server for CPU. Here one asyncio process writes pre-encoded bytes and reads answers with
a callback per packet (a few microseconds per request, no per-request objects beyond the latency
sample), so it takes little CPU and takes the same for every server measured.

    python bench/load.py SPEC.json    # prints one JSON result on stdout

SPEC: {"port", "request_file", "concurrency", "warmup_seconds", "duration_seconds",
       "max_requests", "expect" (bytes the answer's body must contain, as text)}

Bounded twice: sending stops at warmup + duration or once ``max_requests`` answers were timed,
whichever comes first; answers still in flight are awaited (bounded too). Timed: every answer that
arrives in the measured time (its latency, and the time since its connection's previous answer or
first send).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

_now = time.perf_counter_ns


class Run:
    """State shared by every connection of one run."""

    def __init__(self, spec: dict) -> None:
        self.concurrency = int(spec["concurrency"])
        self.warmup_ns = int(float(spec["warmup_seconds"]) * 1e9)
        self.duration_ns = int(float(spec["duration_seconds"]) * 1e9)
        self.max_requests = int(spec["max_requests"])
        self.expect = spec.get("expect", "").encode()
        self.start_ns = 0
        self.measure_from_ns = 0
        self.stop_at_ns = 0
        self.stopped_at_ns = 0
        self.latencies: list[int] = []
        self.cycles = 0  # answer-to-answer intervals of a connection that ended while measuring
        self.cycle_ns = 0
        self.sent = 0
        self.answered = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.open = 0
        self.done: asyncio.Future | None = None

    def stopping(self, now: int) -> bool:
        if self.stopped_at_ns:
            return True
        if now >= self.stop_at_ns or len(self.latencies) >= self.max_requests:
            self.stopped_at_ns = min(now, self.stop_at_ns)
            return True
        return False

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)


class Client(asyncio.Protocol):
    """One keep-alive connection running the closed loop."""

    def __init__(self, run: Run, request: bytes) -> None:
        self.run = run
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent_at = 0
        self.cycle_start = 0  # the previous answer (or the first send): busy since then
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()
        self.cycle_start = self.sent_at

    def send(self) -> None:
        self.run.sent += 1
        self.sent_at = _now()
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = -1
        head = bytes(buffer[:end])
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
                break
        if length < 0:
            self.fail("answer without Content-Length")
            return
        if len(buffer) < end + 4 + length:
            return
        now = _now()
        run = self.run
        body = bytes(buffer[end + 4:end + 4 + length])
        del buffer[:end + 4 + length]
        run.answered += 1
        status = head[9:12]
        if status != b"200" or (run.expect and run.expect not in body):
            run.error(f"HTTP {status.decode(errors='replace')}: {body[:200].decode(errors='replace')}")
        elif now >= run.measure_from_ns and not run.stopped_at_ns:
            run.latencies.append(now - self.sent_at)
            run.cycles += 1
            run.cycle_ns += now - self.cycle_start
        self.cycle_start = now
        if run.stopping(now):
            self.finish()
        else:
            self.send()

    def fail(self, text: str) -> None:
        self.run.error(text)
        self.finish()

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self.finished = True
            self.run.error(f"connection lost: {exc!r}")
        self.run.closed()


async def drive(spec: dict) -> dict:
    with open(spec["request_file"], "rb") as handle:
        request = handle.read()
    run = Run(spec)
    loop = asyncio.get_running_loop()
    run.done = loop.create_future()
    run.start_ns = _now()
    run.measure_from_ns = run.start_ns + run.warmup_ns
    run.stop_at_ns = run.measure_from_ns + run.duration_ns
    for _ in range(run.concurrency):
        try:
            await loop.create_connection(lambda: Client(run, request), "127.0.0.1", int(spec["port"]))
            run.open += 1
        except OSError as error:
            run.error(f"connect: {error!r}")
    if run.open:
        drain_seconds = 30.0
        try:
            await asyncio.wait_for(asyncio.shield(run.done), timeout=(run.stop_at_ns - _now()) / 1e9 + drain_seconds)
        except asyncio.TimeoutError:
            run.error("answers still in flight after the drain time")
    # Each connection answers once per cycle (latency + the generator's turn), so the rate is the
    # concurrency over the mean cycle: no rounding error when a slice holds ten answers (one
    # connection, an API answering after 50 ms), none from connections answering in step.
    latencies = sorted(run.latencies)
    return {
        "concurrency": run.concurrency,
        "sent": run.sent,
        "answered": run.answered,
        "timed": len(latencies),
        "errors": run.errors,
        "error_samples": run.error_samples,
        "cycles": run.cycles,
        "cycle_seconds": run.cycle_ns / 1e9,
        "rps": run.concurrency * run.cycles / (run.cycle_ns / 1e9) if run.cycle_ns else 0.0,
        "samples_us": [round(value / 1000) for value in latencies],
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    with open(args[0]) as handle:
        spec = json.load(handle)
    result = asyncio.run(drive(spec))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
