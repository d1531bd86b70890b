"""IOLoop.stats(): the same keys on every backend, and numbers that follow what
the loop did.

Each test causes something (a callback that holds the loop, a wait in the
poller, callbacks, fds, timers) and asserts a lower bound on what it caused;
no upper timing bound. A callback that holds the loop spins for the time on
the wall clock *and* on the thread's CPU clock: the uvloop bridge, which
uvloop gives no hook around its poll, counts the loop thread's CPU time as
busy (docs/ioloop.md, "Loop statistics"), and on a loaded machine 50 ms of
wall time may be far less CPU time.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from reactor.concurrent import Future
from reactor.ioloop import _STATS_BUCKET, IOLoop, _LoopCounters
from tests.util import WAIT, socketpair, wait_for

pytestmark = pytest.mark.usefixtures("reactor_log")

KEYS = {
    "backend": str,
    "iterations": int,
    "busy_time": float,
    "idle_time": float,
    "longest_iteration": float,
    "callbacks": int,
    "fds": int,
    "timers": int,
    "timer_lag": float,
}


def hold(seconds: float) -> None:
    """Keep the loop's thread busy for ``seconds`` of wall and of CPU time
    (bounded: a starved machine fails the assertions, not the timeout)."""
    wall_end = time.monotonic() + seconds
    cpu_end = time.thread_time() + seconds
    limit = time.monotonic() + WAIT
    while time.monotonic() < limit and (
        time.monotonic() < wall_end or time.thread_time() < cpu_end
    ):
        pass


def run_until(io_loop: IOLoop, future: Future[Any]) -> None:
    """Run the loop until ``future`` is done, then one more iteration."""
    wait_for(io_loop, future)


def test_stats_has_every_key_with_its_type(io_loop: IOLoop) -> None:
    before = io_loop.stats()
    assert set(before) == set(KEYS)
    for key, kind in KEYS.items():
        assert type(before[key]) is kind, (key, before[key])
    assert before["backend"] == io_loop.backend_name
    done: Future[None] = Future()
    io_loop.call_later(0.001, done.set_result, None)
    run_until(io_loop, done)
    after = io_loop.stats()
    assert set(after) == set(KEYS)
    for key, kind in KEYS.items():
        assert type(after[key]) is kind, (key, after[key])
    for key in ("iterations", "busy_time", "idle_time", "callbacks"):
        assert after[key] >= before[key], key
    assert after["timer_lag"] >= 0.0
    assert after["longest_iteration"] >= 0.0
    assert io_loop.stats() is not io_loop.stats()  # a new dict each call


def test_iterations_grow_while_the_loop_runs(io_loop: IOLoop) -> None:
    """Ten timers, each set by the one before for 2 ms later: ten iterations
    at least, on every backend (on uvloop, ten distinct millisecond ticks)."""
    before = io_loop.stats()["iterations"]
    done: Future[None] = Future()
    left = [10]

    def step() -> None:
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)
        else:
            io_loop.call_later(0.002, step)

    io_loop.call_later(0.002, step)
    run_until(io_loop, done)
    assert io_loop.stats()["iterations"] >= before + 10


def test_a_callback_that_holds_the_loop_is_busy_time(io_loop: IOLoop) -> None:
    before = io_loop.stats()
    done: Future[None] = Future()

    def blocker() -> None:
        hold(0.05)
        io_loop.add_callback(done.set_result, None)

    io_loop.add_callback(blocker)
    run_until(io_loop, done)
    after = io_loop.stats()
    assert after["busy_time"] - before["busy_time"] >= 0.04
    assert after["longest_iteration"] >= 0.04


def test_a_wait_in_the_poller_is_idle_time(io_loop: IOLoop) -> None:
    """Nothing to do for 100 ms but wait for a timer. (It is set once the
    loop runs: uvloop's clock, read before, may be stale.)"""
    before = io_loop.stats()
    io_loop.add_callback(io_loop.call_later, 0.1, io_loop.stop)
    io_loop.start()
    after = io_loop.stats()
    assert after["idle_time"] - before["idle_time"] >= 0.08


def test_time_while_stopped_is_neither_busy_nor_idle(io_loop: IOLoop) -> None:
    """What a run counts fits inside the run: the 0.2 s the loop stood
    still between two runs is in neither total."""
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    before = io_loop.stats()
    time.sleep(0.2)  # the loop is stopped: nothing to wait for
    started = time.monotonic()
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    run_time = time.monotonic() - started
    after = io_loop.stats()
    counted = (after["busy_time"] - before["busy_time"]) + (
        after["idle_time"] - before["idle_time"]
    )
    assert counted <= run_time + 0.001  # and not the 0.2 s before it


def test_callbacks_counts_callbacks_timers_and_handler_calls(io_loop: IOLoop) -> None:
    a, b = socketpair()
    try:
        before = io_loop.stats()["callbacks"]
        ran: list[str] = []
        done: Future[None] = Future()

        def check() -> None:
            if len(ran) == 14 and not done.done():
                done.set_result(None)

        def on_readable(sock: socket.socket, events: int) -> None:
            sock.recv(10)
            io_loop.remove_handler(sock)
            ran.append("handler")
            check()

        def note(what: str) -> None:
            ran.append(what)
            check()

        for _ in range(10):
            io_loop.add_callback(note, "callback")
        for delay in (0.001, 0.002, 0.003):
            io_loop.call_later(delay, note, "timer")
        io_loop.add_handler(a, on_readable, IOLoop.READ)
        b.send(b"x")
        run_until(io_loop, done)
        assert sorted(set(ran)) == ["callback", "handler", "timer"]
        assert io_loop.stats()["callbacks"] >= before + 14
    finally:
        a.close()
        b.close()


def test_fds_counts_registered_handlers(io_loop: IOLoop) -> None:
    pairs = [socketpair() for _ in range(2)]
    try:
        base = io_loop.stats()["fds"]
        socks = [s for pair in pairs for s in pair[:1]] + [pairs[0][1]]
        for sock in socks:
            io_loop.add_handler(sock, lambda s, e: None, IOLoop.READ)
        assert io_loop.stats()["fds"] == base + 3
        io_loop.update_handler(socks[0], IOLoop.READ | IOLoop.WRITE)
        assert io_loop.stats()["fds"] == base + 3
        io_loop.remove_handler(socks[0])
        assert io_loop.stats()["fds"] == base + 2
        # The numbers hold while the loop runs too.
        seen: Future[Any] = Future()
        io_loop.add_callback(lambda: seen.set_result(io_loop.stats()["fds"]))
        assert wait_for(io_loop, seen) == base + 2
        for sock in socks[1:]:
            io_loop.remove_handler(sock)
        assert io_loop.stats()["fds"] == base
    finally:
        for x, y in pairs:
            x.close()
            y.close()


def test_timers_counts_pending_timers(io_loop: IOLoop) -> None:
    base = io_loop.stats()["timers"]
    handles = [io_loop.call_later(30, lambda: None) for _ in range(3)]
    handles.append(io_loop.add_timeout(io_loop.time() + 30, lambda: None))
    assert io_loop.stats()["timers"] == base + 4
    io_loop.remove_timeout(handles.pop())
    io_loop.remove_timeout(handles[0])
    io_loop.remove_timeout(handles[0])  # twice: counted once
    assert io_loop.stats()["timers"] == base + 2
    # A timer that runs is pending no more; removing it afterwards changes nothing.
    fired: Future[None] = Future()
    short = io_loop.call_later(0.005, fired.set_result, None)
    assert io_loop.stats()["timers"] == base + 3
    wait_for(io_loop, fired)
    io_loop.remove_timeout(short)
    assert io_loop.stats()["timers"] == base + 2
    for handle in handles[1:]:
        io_loop.remove_timeout(handle)
    assert io_loop.stats()["timers"] == base


def test_timer_lag_shows_a_timer_held_back(io_loop: IOLoop) -> None:
    """A timer due in 10 ms, set by a callback that then holds the loop for
    100 ms, runs at least 90 ms late."""
    fired: Future[None] = Future()

    def blocker() -> None:
        io_loop.call_later(0.01, fired.set_result, None)
        hold(0.1)

    io_loop.add_callback(blocker)
    wait_for(io_loop, fired)
    assert io_loop.stats()["timer_lag"] >= 0.05
    # An on-time timer afterwards: the lag is that of the latest timer.
    again: Future[None] = Future()
    io_loop.call_later(0.01, again.set_result, None)
    wait_for(io_loop, again)
    assert io_loop.stats()["timer_lag"] >= 0.0


def test_stats_of_a_closed_loop(reactor_backend: Any) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)
    loop.call_later(30, lambda: None)
    loop.close(all_fds=True)
    stats = loop.stats()
    assert set(stats) == set(KEYS)
    assert stats["fds"] == 0
    assert stats["timers"] >= 0


def test_longest_iteration_covers_the_last_five_to_ten_seconds() -> None:
    """The two rotating buckets, on a clock of our own (no loop, no wait)."""
    counters = _LoopCounters()
    start = 1000.0
    counters.rotate(start)
    counters.longest = 0.3  # a stretch in the first bucket
    assert counters.recent_longest(start + 1) == 0.3
    counters.rotate(start + _STATS_BUCKET)  # the loop moves on to a new bucket
    counters.longest = 0.1
    assert counters.recent_longest(start + _STATS_BUCKET + 1) == 0.3
    counters.rotate(start + 2 * _STATS_BUCKET)
    assert counters.recent_longest(start + 2 * _STATS_BUCKET + 1) == 0.1
    # A loop that stopped iterating: the stretches age out all the same.
    assert counters.recent_longest(start + 3 * _STATS_BUCKET + 1) == 0.0
    assert counters.recent_longest(start + 4 * _STATS_BUCKET + 1) == 0.0
    # A long gap before the next rotation forgets the old bucket too.
    counters.longest = 0.2
    counters.rotate(start + 10 * _STATS_BUCKET)
    assert counters.recent_longest(start + 10 * _STATS_BUCKET + 1) == 0.0


def test_the_asyncio_bridge_gives_back_a_selector_it_timed() -> None:
    """A bridge over someone else's asyncio loop times that loop's selector
    while it lives, and puts the selector back when it closes."""
    asyncio_loop = asyncio.new_event_loop()
    try:
        original = asyncio_loop._selector  # type: ignore[attr-defined]
        bridge = IOLoop(asyncio_loop=asyncio_loop, make_current=False)
        assert bridge.backend_name == "asyncio"
        bridge.add_callback(bridge.stop)
        bridge.start()
        assert bridge.stats()["iterations"] >= 1
        bridge.close()
        assert asyncio_loop._selector is original  # type: ignore[attr-defined]
        assert asyncio_loop.run_until_complete(asyncio.sleep(0.001, "still runs")) == "still runs"
    finally:
        asyncio_loop.close()
