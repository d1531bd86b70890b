"""PeriodicCallback: cadence, stop/start, jitter, and skipping missed beats.

Timing here is behaviour, not speed: bounds are one-sided (noise can only
make things later), and no test depends on the machine being fast.
"""

from __future__ import annotations

import datetime
import logging
import time

import pytest

from reactor import gen
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


def test_an_awaitable_callback_never_overlaps_and_the_schedule_goes_on(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 9 item 9: a callback's awaitable is waited for before the next
    run is scheduled (it ran a new one every period, on top of the others).
    Runs 1-3 each return a future the test completes: with success, with a
    failure (logged, the schedule goes on), cancelled (not logged). Each run
    is only allowed to start once the previous one's future is done."""
    period_ms = 1
    gates: list[Future[None]] = []
    active = 0
    max_active = 0
    started: list[Future[None]] = [Future() for _ in range(4)]

    def job() -> Future[None]:
        nonlocal active, max_active
        active += 1
        max_active = max(max_active, active)
        gate: Future[None] = Future()

        def finished(_: Future[None]) -> None:
            nonlocal active
            active -= 1

        gate.add_done_callback(finished)
        gates.append(gate)
        started[len(gates) - 1].set_result(None)
        return gate

    async def main() -> None:
        pc.start()
        await started[0]
        # Many periods pass while the first run's future is pending: no new run.
        await gen.sleep(20 * period_ms / 1000)
        assert len(gates) == 1
        gates[0].set_result(None)
        await started[1]
        await gen.sleep(5 * period_ms / 1000)
        assert len(gates) == 2
        gates[1].set_exception(RuntimeError("awaited failure"))
        await started[2]
        gates[2].cancel()
        await started[3]
        pc.stop()
        gates[3].set_result(None)

    pc = PeriodicCallback(job, period_ms)
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.run_sync(main, timeout=10)
    assert max_active == 1
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and "awaited failure" in str(failures[0].exc_info[1])  # type: ignore[index]


def test_a_coroutine_callback_is_waited_for(io_loop: IOLoop) -> None:
    """The same with ``async def`` callbacks: each run finishes before the
    next starts. A run waits five periods; timers fire in deadline order, so
    the next beat (one period on) comes before it ends."""
    log: list[str] = []
    third_started: Future[None] = Future()

    async def job() -> None:
        n = sum(entry.startswith("start") for entry in log)
        log.append(f"start {n}")
        if n == 2:
            third_started.set_result(None)
        await gen.sleep(0.005)
        log.append(f"end {n}")

    async def main() -> None:
        pc.start()
        await third_started
        pc.stop()

    pc = PeriodicCallback(job, 1)
    io_loop.run_sync(main, timeout=10)
    assert log[:5] == ["start 0", "end 0", "start 1", "end 1", "start 2"]


def test_restart_while_a_run_is_awaited_does_not_double_the_schedule(io_loop: IOLoop) -> None:
    gates: list[Future[None]] = []
    second: Future[None] = Future()

    def job() -> Future[None]:
        gates.append(Future())
        if len(gates) == 2:
            second.set_result(None)
        return gates[-1]

    async def main() -> None:
        pc.start()
        while not gates:
            await gen.sleep(0.001)
        pc.stop()
        pc.start()  # the first run is still awaited
        await gen.sleep(0.01)
        assert len(gates) == 1
        gates[0].set_result(None)
        await second
        await gen.sleep(0.01)
        assert len(gates) == 2  # one chain of runs, not two
        pc.stop()
        gates[1].set_result(None)

    pc = PeriodicCallback(job, 1)
    io_loop.run_sync(main, timeout=10)
