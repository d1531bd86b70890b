"""PeriodicCallback: cadence, stop/start, jitter, and skipping missed beats.

Timing here is behaviour, not speed: bounds are one-sided (noise can only
make things later), and no test depends on the machine being fast.
"""

from __future__ import annotations

import datetime
import logging
import time

import pytest

from reactor.concurrent import Future
from reactor.ioloop import IOLoop, PeriodicCallback
from tests.util import wait_for

# uvloop's clock counts whole milliseconds, so a timer may appear to run up
# to a millisecond before its deadline; lateness is always allowed.
CLOCK_SLACK = 0.002


def _collect(
    io_loop: IOLoop, pc_args: dict, count: int, first_hook=None
) -> tuple[float, list[float]]:  # type: ignore[type-arg,no-untyped-def]
    """Run a PeriodicCallback for ``count`` calls; return (start time, call times)."""
    times: list[float] = []
    started: list[float] = []
    done: Future[None] = Future()

    def tick() -> None:
        times.append(io_loop.time())
        if first_hook is not None and len(times) == 1:
            first_hook()
        if len(times) == count:
            pc.stop()
            done.set_result(None)

    def start() -> None:
        started.append(io_loop.time())
        pc.start()

    pc = PeriodicCallback(tick, **pc_args)
    io_loop.add_callback(start)
    wait_for(io_loop, done)
    assert not pc.is_running()
    return started[0], times


def test_runs_every_period(io_loop: IOLoop) -> None:
    """Fixed-rate: the k-th call is at or after the k-th beat, never before."""
    period = 0.01
    start, times = _collect(io_loop, {"callback_time": period * 1000}, 5)
    for k, t in enumerate(times):
        assert t >= start + (k + 1) * period - CLOCK_SLACK, (k, t - start)


def test_timedelta_period(io_loop: IOLoop) -> None:
    start, times = _collect(io_loop, {"callback_time": datetime.timedelta(milliseconds=5)}, 3)
    assert times[-1] >= start + 3 * 0.005 - CLOCK_SLACK


def test_late_run_skips_missed_beats_instead_of_bursting(io_loop: IOLoop) -> None:
    """The first call (at beat 1 or later) blocks for 3.5 periods, so beats
    2-4 are missed. Bursting would run them at once, right after the block;
    skipping runs the next call at beat 5 at the earliest, then 6, 7..."""
    period = 0.02

    def block() -> None:
        end = time.monotonic() + 3.5 * period
        while time.monotonic() < end:
            pass  # deliberately hold the loop

    start, times = _collect(io_loop, {"callback_time": period * 1000}, 4, first_hook=block)
    for k, t in enumerate(times[1:], start=1):
        assert t >= start + (k + 4) * period - CLOCK_SLACK, (k, (t - start) / period)


def test_jitter_spreads_within_bounds(io_loop: IOLoop) -> None:
    period, jitter = 0.01, 0.5
    start, times = _collect(io_loop, {"callback_time": period * 1000, "jitter": jitter}, 6)
    # jitter shortens or stretches each interval by up to jitter/2 of it.
    for k, t in enumerate(times):
        assert t >= start + (k + 1) * period * (1 - jitter / 2) - CLOCK_SLACK, (k, t - start)


def test_stop_and_restart(io_loop: IOLoop) -> None:
    calls: list[float] = []
    pc = PeriodicCallback(lambda: calls.append(io_loop.time()), 5)
    io_loop.add_callback(pc.start)
    io_loop.call_later(0.03, pc.stop)
    io_loop.call_later(0.08, io_loop.stop)
    io_loop.start()
    stopped_at = len(calls)
    assert stopped_at >= 1
    assert not pc.is_running()
    io_loop.call_later(0.03, io_loop.stop)
    io_loop.start()
    assert len(calls) == stopped_at  # nothing ran while stopped
    io_loop.add_callback(pc.start)
    io_loop.call_later(0.03, io_loop.stop)
    io_loop.start()
    assert pc.is_running() and len(calls) > stopped_at
    pc.stop()


def test_exception_is_logged_and_it_keeps_running(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    done: Future[None] = Future()

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            pc.stop()
            done.set_result(None)
        raise RuntimeError("periodic failure")

    pc = PeriodicCallback(flaky, 2)
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.add_callback(pc.start)
        wait_for(io_loop, done)
    assert calls == 3
    assert sum("periodic failure" in str(r.exc_info[1]) for r in caplog.records if r.exc_info) == 3


def test_non_positive_period_is_an_error() -> None:
    with pytest.raises(ValueError):
        PeriodicCallback(lambda: None, 0)
