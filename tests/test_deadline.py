"""The watchdog holds a read to its time however slowly the peer sends, also in a forked worker
(gunicorn loads the app in its master, then forks)."""

from __future__ import annotations

import multiprocessing
import socket

import pytest

from stardex_webhook.deadline import WATCHDOG


def _read_until_cut(seconds: float) -> bytes:
    """Read from a peer that never sends: returns only once the watchdog shuts the socket."""
    ours, peer = socket.socketpair()
    with ours, peer, WATCHDOG.watch(seconds) as watch:
        watch.cuts.append(lambda: ours.shutdown(socket.SHUT_RD))
        data = ours.recv(1)
    assert watch.fired
    return data


def _in_child(queue) -> None:
    queue.put(_read_until_cut(0.05))


def test_a_read_from_a_silent_peer_ends_when_its_time_is_up():
    assert _read_until_cut(0.05) == b""


def test_a_watch_is_cut_at_its_time_whatever_the_watchdog_planned_before_it():
    """The watchdog thread is woken only for a watch that ends before it next looks: a short watch
    opened inside a long one, and a watch opened after a shorter one has ended, are each cut."""
    with WATCHDOG.watch(30):
        assert _read_until_cut(0.05) == b""
    with WATCHDOG.watch(0.2):
        pass  # ended: the watchdog still plans to look when it would have expired
    assert _read_until_cut(0.5) == b""


def test_the_watchdog_works_in_a_forked_worker():
    _read_until_cut(0.05)  # the parent's watchdog thread is running: a fork does not carry it over
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,), daemon=True)
    child.start()
    child.join(timeout=20)
    assert child.exitcode == 0 and queue.get(timeout=1) == b""


def test_a_shortened_deadline_ends_earlier_on_the_same_clock():
    """The work's deadline ends ``SETTLE_RESERVE_SECONDS`` before the webhook's: what must follow
    the work (releasing the claim, keeping a dead letter) always has that much left."""
    from stardex_webhook.deadline import SETTLE_RESERVE_SECONDS, Deadline

    now = [100.0]
    deadline = Deadline(4.0, clock=lambda: now[0])
    work = deadline.shortened()
    assert work.remaining() == pytest.approx(4.0 - SETTLE_RESERVE_SECONDS)
    now[0] += 4.0 - SETTLE_RESERVE_SECONDS
    assert work.remaining() == 0.0 and deadline.remaining() == pytest.approx(SETTLE_RESERVE_SECONDS)
