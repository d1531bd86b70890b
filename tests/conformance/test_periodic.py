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


def _collect(io_loop: IOLoop, pc_args: dict, count: int, first_hook=None) -> list[float]:  # type: ignore[type-arg,no-untyped-def]
    times: list[float] = []
    done: Future[None] = Future()

    def tick() -> None:
        times.append(io_loop.time())
        if first_hook is not None and len(times) == 1:
            first_hook()
        if len(times) == count:
            pc.stop()
            done.set_result(None)

    pc = PeriodicCallback(tick, **pc_args)
    io_loop.add_callback(pc.start)
    wait_for(io_loop, done)
    assert not pc.is_running()
    return times


def test_runs_every_period(io_loop: IOLoop) -> None:
    started = io_loop.time()
    times = _collect(io_loop, {"callback_time": 10}, 5)
    gaps = [b - a for a, b in zip([started, *times], times)]
    assert all(gap >= 0.009 for gap in gaps), gaps


def test_timedelta_period(io_loop: IOLoop) -> None:
    times = _collect(io_loop, {"callback_time": datetime.timedelta(milliseconds=5)}, 3)
    assert len(times) == 3


def test_late_run_skips_missed_beats_instead_of_bursting(io_loop: IOLoop) -> None:
    """The first run blocks for 3.5 periods. Without skipping, the three
    missed beats would fire back to back; with it, gaps stay near a period."""
    period = 0.02

    def block() -> None:
        end = time.monotonic() + 3.5 * period
        while time.monotonic() < end:
            pass  # deliberately hold the loop

    times = _collect(io_loop, {"callback_time": period * 1000}, 5, first_hook=block)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= period / 2, gaps


def test_jitter_spreads_within_bounds(io_loop: IOLoop) -> None:
    period, jitter = 0.01, 0.5
    times = _collect(io_loop, {"callback_time": period * 1000, "jitter": jitter}, 6)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # jitter spreads each interval by up to +-jitter/2 of the period.
    assert min(gaps) >= period * (1 - jitter / 2) - 0.002, gaps


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
