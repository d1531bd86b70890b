"""Timers: ordering, cancellation, deadlines, and a property over schedules."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from tests.util import wait_for


def test_timers_fire_in_deadline_order(io_loop: IOLoop) -> None:
    seen: list[int] = []
    now = io_loop.time()
    for i, delay in enumerate([0.03, 0.01, 0.02, 0.0]):
        io_loop.call_at(now + delay, seen.append, i)
    io_loop.call_at(now + 0.05, io_loop.stop)
    io_loop.start()
    assert seen == [3, 1, 2, 0]


def test_timer_does_not_fire_early(io_loop: IOLoop) -> None:
    fired: Future[float] = Future()
    deadline = io_loop.time() + 0.03
    io_loop.call_at(deadline, lambda: fired.set_result(io_loop.time()))
    # The loop's clock may round (uvloop counts milliseconds), hence 1 ms.
    assert wait_for(io_loop, fired) >= deadline - 0.001


def test_remove_timeout_cancels(io_loop: IOLoop) -> None:
    seen: list[str] = []
    keep = io_loop.call_later(0.01, seen.append, "kept")
    drop = io_loop.call_later(0.01, seen.append, "dropped")
    io_loop.remove_timeout(drop)
    io_loop.remove_timeout(drop)  # twice is harmless
    io_loop.call_later(0.03, io_loop.stop)
    io_loop.start()
    io_loop.remove_timeout(keep)  # after it ran: harmless
    assert seen == ["kept"]


def test_timer_removed_by_an_earlier_timer_in_the_same_iteration(io_loop: IOLoop) -> None:
    seen: list[str] = []
    now = io_loop.time()
    second = io_loop.call_at(now + 0.01, seen.append, "second")
    io_loop.call_at(now + 0.005, lambda: (seen.append("first"), io_loop.remove_timeout(second)))
    io_loop.call_at(now + 0.03, io_loop.stop)
    io_loop.start()
    assert seen == ["first"]


def test_add_timeout_takes_a_deadline_or_a_timedelta(io_loop: IOLoop) -> None:
    seen: list[str] = []
    io_loop.add_timeout(datetime.timedelta(milliseconds=10), seen.append, "delta")
    io_loop.add_timeout(io_loop.time() + 0.005, seen.append, "deadline")
    io_loop.add_timeout(io_loop.time() + 0.02, io_loop.stop)
    io_loop.start()
    assert seen == ["deadline", "delta"]


def test_past_deadline_runs_on_the_next_iteration(io_loop: IOLoop) -> None:
    seen: list[str] = []
    io_loop.call_at(io_loop.time() - 10, seen.append, "late")
    io_loop.call_later(-1, seen.append, "negative")
    io_loop.call_later(0.02, io_loop.stop)
    io_loop.start()
    assert sorted(seen) == ["late", "negative"]


def test_timer_kwargs(io_loop: IOLoop) -> None:
    got: Future[int] = Future()
    io_loop.call_later(0, lambda *, value: got.set_result(value), value=5)
    assert wait_for(io_loop, got) == 5


def test_many_cancelled_timers_leave_live_ones_working(io_loop: IOLoop) -> None:
    """Far more cancellations than live timers (the heap-compaction case)."""
    seen: list[int] = []
    now = io_loop.time()
    handles = [io_loop.call_at(now + 0.001 * (i % 20), seen.append, i) for i in range(3000)]
    for i, handle in enumerate(handles):
        if i % 100:
            io_loop.remove_timeout(handle)
    io_loop.call_at(now + 0.05, io_loop.stop)
    io_loop.start()
    live = [i for i in range(3000) if i % 100 == 0]
    assert sorted(seen) == live
    deadlines = [i % 20 for i in seen]
    assert deadlines == sorted(deadlines)


# Each step: ("add", slot in ms) or ("remove", index of an earlier add).
_schedule = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40)),
        st.tuples(st.just("remove"), st.integers(0, 50)),
    ),
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_schedule)
def test_any_schedule_fires_exactly_the_live_timers_in_deadline_order(
    reactor_backend: Any, steps: list[tuple[str, int]]
) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)
    try:
        base = loop.time() + 0.005
        fired: list[int] = []
        handles: list[tuple[int, int, object]] = []  # (id, slot, handle)
        removed: set[int] = set()
        for op, value in steps:
            if op == "add":
                timer_id = len(handles)
                # Distinct deadlines: 1 ms slots, plus a sub-slot step per id,
                # so order is fully determined (ties are backend-specific).
                deadline = base + value * 0.001 + timer_id * 0.00001
                handles.append((timer_id, value, loop.call_at(deadline, fired.append, timer_id)))
            elif handles:
                timer_id, _, handle = handles[value % len(handles)]
                loop.remove_timeout(handle)
                removed.add(timer_id)
        loop.call_at(base + 0.06, loop.stop)
        loop.start()
        live = sorted((slot, timer_id) for timer_id, slot, _ in handles if timer_id not in removed)
        assert fired == [timer_id for _, timer_id in live]
    finally:
        loop.close()
