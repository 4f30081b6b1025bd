"""A TCP proxy on loopback in front of a real emulator (fake-gcs-server's HTTP, the tasks emulator's
gRPC), that a test turns into a broken network for a while: ``hang`` (connections are accepted and
nothing more comes through, either way, so a client waits for its own timeout), ``refuse`` (every
connection is reset, new ones at once) or ``pass``. ``hang_when(chunk)`` hangs only the connection
whose request bytes match (a ``DELETE``, an upload naming ``dead-letters/``): a fault of one kind of
call. Standard library only; ``faults`` counts what was done, by kind."""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import threading
from typing import Callable

PASS, HANG, REFUSE = "pass", "hang", "refuse"


class _Link:
    """One client connection and its upstream: forwarded until hung or closed."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.hung = False

    def reset(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()


class FaultProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = PASS
        self.hang_when: Callable[[bytes], bool] | None = None
        self.faults: collections.Counter[str] = collections.Counter()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> "FaultProxy":
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links, self._links = list(self._links), set()
        for link in links:
            link.reset()

    def set(self, mode: str) -> None:
        """``pass``, ``hang`` or ``refuse`` from now on. ``refuse`` resets every open connection; a
        hung one is reset when the mode changes (a black-holed connection does not come back: the
        client must see it end, as it would once the network's own timeouts fire)."""
        self.mode = mode
        with self._lock:
            ending = [link for link in self._links if mode == REFUSE or link.hung]
            self._links.difference_update(ending)
        for link in ending:
            link.reset()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == REFUSE:
                self.faults["refused"] += 1
                _Link(client, socket.socket()).reset()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _Link(client, socket.socket()).reset()
                continue
            link = _Link(client, upstream)
            link.hung = self.mode == HANG
            if link.hung:
                self.faults["hung"] += 1
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._pump, args=(link, client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(link, upstream, client, False), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket, request: bool) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if request and not link.hung and (self.mode == HANG or (self.hang_when and self.hang_when(chunk))):
                    link.hung = True
                    self.faults["hung"] += 1
                if not link.hung:
                    target.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            with self._lock:
                self._links.discard(link)
