"""Callbacks: order, fairness with I/O, threads, context, errors, futures."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
import threading
from typing import Any

import pytest

from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from tests.util import WAIT, socketpair, wait_for

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_callbacks_run_in_order_with_args_and_kwargs(io_loop: IOLoop) -> None:
    seen: list[Any] = []
    io_loop.add_callback(seen.append, 1)
    io_loop.add_callback(lambda *, x: seen.append(x), x=2)
    io_loop.spawn_callback(seen.append, 3)
    io_loop.add_callback(io_loop.stop)
    io_loop.start()
    assert seen == [1, 2, 3]


def test_callback_added_by_a_callback_waits_for_the_next_iteration(io_loop: IOLoop) -> None:
    """A callback that reschedules itself forever must not starve I/O: the
    readable fd's handler runs within a couple of iterations."""
    a, b = socketpair()
    spins = 0

    def spin() -> None:
        nonlocal spins
        spins += 1
        io_loop.add_callback(spin)

    def on_readable(fileobj: Any, mask: int) -> None:
        io_loop.remove_handler(a)
        io_loop.stop()

    with a, b:
        b.send(b"x")
        io_loop.add_handler(a, on_readable, IOLoop.READ)
        io_loop.add_callback(spin)
        io_loop.start()
        assert 1 <= spins <= 3


def test_add_callback_from_eight_threads(io_loop: IOLoop) -> None:
    """8 threads x 1,000 callbacks while the loop runs: each runs exactly
    once, and each thread's callbacks run in the order that thread added them."""
    threads, per_thread = 8, 1000
    seen: dict[int, list[int]] = {t: [] for t in range(threads)}
    total = 0
    done: Future[None] = Future()
    start = threading.Barrier(threads + 1)

    def record(t: int, i: int) -> None:
        nonlocal total
        seen[t].append(i)
        total += 1
        if total == threads * per_thread:
            done.set_result(None)

    def producer(t: int) -> None:
        start.wait(WAIT)
        for i in range(per_thread):
            io_loop.add_callback(record, t, i)

    workers = [threading.Thread(target=producer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    # Release the producers only once the loop is running (and mostly idle
    # in poll), so that cross-thread wake-ups are what is being tested.
    io_loop.add_callback(lambda: threading.Thread(target=start.wait, args=(WAIT,)).start())
    wait_for(io_loop, done)
    for w in workers:
        w.join(WAIT)
    assert all(seen[t] == list(range(per_thread)) for t in range(threads))


def test_add_callback_from_a_thread_wakes_a_blocked_poll(io_loop: IOLoop) -> None:
    """The loop has no timers and no ready fds, so it blocks in poll with no
    timeout; only the waker can end this test before its timeout."""
    ran = threading.Event()

    def from_thread() -> None:
        io_loop.add_callback(io_loop.stop)
        ran.set()

    started = threading.Event()
    io_loop.add_callback(started.set)
    t = threading.Thread(target=lambda: started.wait(WAIT) and from_thread())
    t.start()
    io_loop.start()
    t.join(WAIT)
    assert ran.is_set()


def test_stop_from_another_thread_wakes_the_loop(io_loop: IOLoop) -> None:
    started = threading.Event()
    io_loop.add_callback(started.set)
    t = threading.Thread(target=lambda: started.wait(WAIT) and io_loop.stop())
    t.start()
    io_loop.start()
    t.join(WAIT)
    assert not t.is_alive()


def test_stop_before_start_makes_start_return(io_loop: IOLoop) -> None:
    io_loop.stop()
    io_loop.start()  # returns at once instead of running forever
    assert io_loop.run_sync(lambda: "usable") == "usable"


def test_callbacks_survive_stop_and_run_on_restart(io_loop: IOLoop) -> None:
    """A callback added after stop() is kept, and runs exactly once: before
    start() returns (uvloop drains its queue) or on the next start()."""
    seen: list[int] = []

    def first() -> None:
        io_loop.stop()
        io_loop.add_callback(seen.append, 2)
        io_loop.call_later(0.02, seen.append, 3)  # certainly after the stop

    io_loop.add_callback(first)
    io_loop.start()
    assert 3 not in seen
    io_loop.call_later(0.05, io_loop.stop)
    io_loop.start()
    assert seen == [2, 3]


def test_starting_a_running_loop_is_an_error(io_loop: IOLoop) -> None:
    errors: list[BaseException] = []

    def nested() -> None:
        try:
            io_loop.start()
        except RuntimeError as e:
            errors.append(e)
        io_loop.stop()

    io_loop.add_callback(nested)
    io_loop.start()
    assert len(errors) == 1 and "running" in str(errors[0])


def test_exception_in_callback_is_logged_and_loop_goes_on(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def boom() -> None:
        raise ValueError("callback failed")

    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.add_callback(boom)
        io_loop.add_callback(seen.append, "after")
        io_loop.call_later(0, boom)
        io_loop.call_later(0.01, io_loop.stop)
        io_loop.start()
    assert seen == ["after"]
    failures = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ValueError)]
    assert len(failures) == 2


def test_failed_future_returned_by_callback_is_logged(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def returns_failed_future() -> Future[None]:
        f: Future[None] = Future()
        f.set_exception(KeyError("lost"))
        return f

    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.add_callback(returns_failed_future)
        io_loop.call_later(0.02, io_loop.stop)
        io_loop.start()
    assert any(r.exc_info and isinstance(r.exc_info[1], KeyError) for r in caplog.records)


def test_context_flows_into_callbacks_and_timers(io_loop: IOLoop) -> None:
    seen: list[tuple[str, str]] = []

    def capture(label: str) -> None:
        seen.append((label, request_id.get()))

    def in_request() -> None:
        request_id.set("req-1")
        io_loop.add_callback(capture, "callback")
        io_loop.call_later(0, capture, "timer")
        io_loop.spawn_callback(capture, "spawned")
        request_id.set("changed-later")  # each callback saw the value at scheduling

    def outside() -> None:
        capture("outside")
        io_loop.stop()

    token = request_id.set("outer")
    try:
        io_loop.add_callback(in_request)
        io_loop.call_later(0.02, outside)
        io_loop.start()
    finally:
        request_id.reset(token)
    assert sorted(seen) == [
        ("callback", "req-1"),
        ("outside", "outer"),
        ("spawned", "req-1"),
        ("timer", "req-1"),
    ]


def test_context_flows_from_another_thread(io_loop: IOLoop) -> None:
    seen: Future[str] = Future()

    def worker() -> None:
        request_id.set("from-thread")
        io_loop.add_callback(lambda: seen.set_result(request_id.get()))

    io_loop.add_callback(lambda: threading.Thread(target=worker).start())
    assert wait_for(io_loop, seen) == "from-thread"


def test_add_future_with_reactor_future(io_loop: IOLoop) -> None:
    future: Future[int] = Future()
    got: Future[int] = Future()
    io_loop.add_future(future, lambda f: got.set_result(f.result() * 2))
    io_loop.call_later(0.01, future.set_result, 21)
    assert wait_for(io_loop, got) == 42


def test_add_future_callback_runs_in_the_iteration_after_completion(io_loop: IOLoop) -> None:
    """A future of this loop completed in one iteration has the add_future
    callback run in the next, before a callback added after the completion:
    not queued once more for a later iteration."""
    future: Future[int] = Future()
    order: list[str] = []
    done: Future[None] = Future()
    io_loop.add_future(future, lambda f: order.append(f"callback {f.result()}"))

    def complete() -> None:
        future.set_result(1)
        io_loop.add_callback(order.append, "added after set_result")
        io_loop.add_callback(io_loop.add_callback, done.set_result, None)

    io_loop.add_callback(complete)
    wait_for(io_loop, done)
    assert order == ["callback 1", "added after set_result"]


def test_add_future_with_concurrent_future_completed_by_a_thread(io_loop: IOLoop) -> None:
    got: Future[tuple[int, bool]] = Future()
    loop_thread = threading.get_ident()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        c_future = pool.submit(threading.get_ident)
        io_loop.add_future(
            c_future,
            lambda f: got.set_result((f.result(), threading.get_ident() == loop_thread)),
        )
        worker_thread, on_loop_thread = wait_for(io_loop, got)
    assert worker_thread != loop_thread
    assert on_loop_thread  # the callback ran on the loop's thread


def test_run_in_executor(io_loop: IOLoop) -> None:
    result = wait_for(io_loop, io_loop.run_in_executor(None, sum, [1, 2, 3]))
    assert result == 6

    def fails() -> None:
        raise OSError("in a thread")

    with pytest.raises(OSError, match="in a thread"):
        wait_for(io_loop, io_loop.run_in_executor(None, fails))


def test_set_default_executor(io_loop: IOLoop) -> None:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as pool:
        io_loop.set_default_executor(pool)
        name = wait_for(
            io_loop, io_loop.run_in_executor(None, lambda: threading.current_thread().name)
        )
    assert name.startswith("mine")


def test_base_exceptions_from_callbacks_are_logged_except_exit_and_interrupt(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio.CancelledError is a BaseException: logged like any error. Only
    KeyboardInterrupt and SystemExit leave start(), and nothing queued is lost."""
    import asyncio

    seen: list[str] = []

    def cancelled() -> None:
        raise asyncio.CancelledError()

    def interrupt() -> None:
        raise KeyboardInterrupt

    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.add_callback(cancelled)
        io_loop.add_callback(interrupt)
        io_loop.add_callback(seen.append, "queued after the interrupt")
        io_loop.call_later(0, seen.append, "timer due at the interrupt")
        with pytest.raises(KeyboardInterrupt):
            io_loop.start()
        io_loop.call_later(0.02, io_loop.stop)
        io_loop.start()
    assert sorted(seen) == ["queued after the interrupt", "timer due at the interrupt"]
    assert any(
        r.exc_info and isinstance(r.exc_info[1], asyncio.CancelledError) for r in caplog.records
    )


def test_interrupt_from_a_timer_keeps_the_other_due_timers(io_loop: IOLoop) -> None:
    seen: list[int] = []
    now = io_loop.time()

    def interrupt() -> None:
        raise KeyboardInterrupt

    io_loop.call_at(now, seen.append, 1)
    io_loop.call_at(now + 0.0001, interrupt)
    io_loop.call_at(now + 0.0002, seen.append, 2)
    io_loop.call_at(now + 0.0003, seen.append, 3)
    with pytest.raises(KeyboardInterrupt):
        io_loop.call_later(0.01, io_loop.stop)
        io_loop.start()
    io_loop.call_later(0.02, io_loop.stop)
    io_loop.start()
    assert seen == [1, 2, 3]


def test_failed_future_returned_by_a_timer_is_logged(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    def returns_failed_future() -> Future[None]:
        f: Future[None] = Future()
        f.set_exception(KeyError("lost in a timer"))
        return f

    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.call_later(0, returns_failed_future)
        io_loop.call_later(0.02, io_loop.stop)
        io_loop.start()
    assert any(r.exc_info and "lost in a timer" in str(r.exc_info[1]) for r in caplog.records)
