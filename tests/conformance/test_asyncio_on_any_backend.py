"""Unchanged asyncio code on every backend.

On the asyncio and uvloop backends ``asyncio.get_running_loop()`` is the real
asyncio loop; on select, poll, epoll and kqueue it is the native loop's
:class:`reactor.asyncio_view.NativeAsyncioLoop`. These tests do not care which:
each starts a coroutine as a task from a loop callback and checks what asyncio
promises. The only backend-specific look is into the native timer heap, and
its test asserts the same behaviour on every backend too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from reactor.concurrent import Future
from reactor.ioloop import IOLoop, PollIOLoop
from tests.util import WAIT, socketpair

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def run_coroutine(
    io_loop: IOLoop, make_coro: Callable[[], Coroutine[Any, Any, Any]], timeout: float = WAIT
) -> Any:
    """Run ``make_coro()`` as a task of the running loop's asyncio face.

    The task is created from a loop callback with
    ``asyncio.get_running_loop().create_task``; ``run_sync`` waits for a reactor
    future completed by the task's done callback. Returns the coroutine's
    result or raises its exception (CancelledError if it was cancelled).
    """

    def start() -> Future[Any]:
        outcome: Future[Any] = Future()

        def done(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                outcome.set_exception(asyncio.CancelledError())
            elif task.exception() is not None:
                outcome.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                outcome.set_result(task.result())

        asyncio.get_running_loop().create_task(make_coro()).add_done_callback(done)
        return outcome

    return io_loop.run_sync(start, timeout=timeout)


# -- the acceptance example -----------------------------------------------


def test_sleep_queue_and_wait_for(io_loop: IOLoop) -> None:
    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def producer() -> None:
            for i in range(3):
                await asyncio.sleep(0.01)
                await queue.put(i)

        started = loop.time()
        task = asyncio.create_task(producer())
        got = [await asyncio.wait_for(queue.get(), timeout=WAIT) for _ in range(3)]
        await task
        return got, loop.time() - started

    got, elapsed = run_coroutine(io_loop, main)
    assert got == [0, 1, 2]
    assert elapsed >= 0.025  # three sleeps of 10 ms really waited


def test_sleep_returns_its_result_and_zero_yields(io_loop: IOLoop) -> None:
    async def main() -> list[str]:
        order: list[str] = []

        async def other() -> None:
            order.append("other ran")

        asyncio.get_running_loop().create_task(other())
        order.append("before sleep(0)")
        order.append(await asyncio.sleep(0, result="after sleep(0)"))
        order.append(await asyncio.sleep(0.001, result="after sleep(0.001)"))
        return order

    assert run_coroutine(io_loop, main) == [
        "before sleep(0)",
        "other ran",  # sleep(0) let the other task run
        "after sleep(0)",
        "after sleep(0.001)",
    ]


# -- timeouts, cancellation, gather ------------------------------------------------


def test_wait_for_times_out_and_cancels_the_awaited(io_loop: IOLoop) -> None:
    inner: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            inner.append("cancelled")
            raise
        return "finished"

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow(), timeout=0.02)
        return loop.time() - started

    elapsed = run_coroutine(io_loop, main)
    assert inner == ["cancelled"]
    assert 0.015 <= elapsed < WAIT / 2


def test_wait_for_success_returns_the_result(io_loop: IOLoop) -> None:
    async def quick() -> str:
        await asyncio.sleep(0.001)
        return "in time"

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_later(0.001, future.set_result, "future in time")
        return [
            await asyncio.wait_for(quick(), timeout=WAIT),
            await asyncio.wait_for(future, timeout=WAIT),
        ]

    assert run_coroutine(io_loop, main) == ["in time", "future in time"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in Python 3.11")
def test_asyncio_timeout(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01) as expiring:
                await asyncio.sleep(WAIT)
        seen.append(expiring.expired())
        async with asyncio.timeout(WAIT) as relaxed:
            await asyncio.sleep(0.001)
            relaxed.reschedule(loop.time() + WAIT)
        seen.append(relaxed.expired())
        async with asyncio.timeout_at(loop.time() + WAIT):
            seen.append(await asyncio.sleep(0, result="inside timeout_at"))
        return seen

    assert run_coroutine(io_loop, main) == [True, False, "inside timeout_at"]


def test_task_cancellation(io_loop: IOLoop) -> None:
    cleanups: list[str] = []

    async def worker(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.sleep(WAIT)
        finally:
            cleanups.append("finally ran")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        task = loop.create_task(worker(started), name="worker")
        assert task.get_name() == "worker" and task in asyncio.all_tasks()
        await started.wait()
        assert task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled() and cleanups == ["finally ran"]

        # Cancelled before its first step: the body never runs.
        never = asyncio.ensure_future(worker(started))
        assert isinstance(never, asyncio.Task)
        never.cancel()
        with pytest.raises(asyncio.CancelledError):
            await never
        assert never.cancelled() and cleanups == ["finally ran"]

        # ensure_future passes futures through; current_task is the running task.
        future = loop.create_future()
        assert asyncio.ensure_future(future) is future
        future.cancel()
        assert asyncio.current_task() is not None

    run_coroutine(io_loop, main)


def test_cancelling_the_outer_task_is_reported(io_loop: IOLoop) -> None:
    async def main() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        run_coroutine(io_loop, main)


def test_gather_with_an_exception(io_loop: IOLoop) -> None:
    async def value(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def fails() -> int:
        await asyncio.sleep(0)
        raise KeyError("failed child")

    async def main() -> list[Any]:
        with pytest.raises(KeyError, match="failed child"):
            await asyncio.gather(value(1), fails())
        return await asyncio.gather(value(1), fails(), value(3), return_exceptions=True)

    results = run_coroutine(io_loop, main)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], KeyError)


# -- synchronization primitives ----------------------------------------------------


def test_lock_event_and_condition(io_loop: IOLoop) -> None:
    async def main() -> tuple[list[str], str, int]:
        loop = asyncio.get_running_loop()
        lock = asyncio.Lock()
        order: list[str] = []

        async def critical(name: str) -> None:
            async with lock:
                order.append(f"{name} in")
                await asyncio.sleep(0.001)
                order.append(f"{name} out")

        await asyncio.gather(critical("a"), critical("b"))

        event = asyncio.Event()

        async def waiter() -> str:
            await event.wait()
            return "woken"

        waiting = loop.create_task(waiter())
        await asyncio.sleep(0)
        assert not waiting.done()
        event.set()
        woken = await waiting

        condition = asyncio.Condition()
        items: list[int] = []

        async def consumer() -> int:
            async with condition:
                await condition.wait_for(lambda: bool(items))
                return items.pop()

        consuming = loop.create_task(consumer())
        await asyncio.sleep(0)
        async with condition:
            items.append(42)
            condition.notify()
        return order, woken, await consuming

    order, woken, item = run_coroutine(io_loop, main)
    assert order == ["a in", "a out", "b in", "b out"]
    assert woken == "woken" and item == 42


def test_queue_ping_pong_between_two_tasks(io_loop: IOLoop) -> None:
    async def main() -> list[int]:
        pings: asyncio.Queue[int] = asyncio.Queue()
        pongs: asyncio.Queue[int] = asyncio.Queue(maxsize=1)

        async def ponger() -> None:
            while (n := await pings.get()) >= 0:
                await pongs.put(n * 10)

        task = asyncio.create_task(ponger())
        seen = []
        for n in range(50):
            await pings.put(n)
            seen.append(await pongs.get())
        await pings.put(-1)
        await task
        return seen

    assert run_coroutine(io_loop, main) == [n * 10 for n in range(50)]


# -- contextvars ------------------------------------------------------------------


def test_contextvar_set_before_create_task_is_seen_inside(io_loop: IOLoop) -> None:
    async def child() -> str:
        seen = request_id.get()
        request_id.set("set inside the task")  # does not leak out
        return seen

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        request_id.set("before create_task")
        task = loop.create_task(child())
        request_id.set("after create_task")
        seen = [await task, request_id.get()]
        if sys.version_info >= (3, 11):
            explicit = contextvars.copy_context()
            explicit.run(request_id.set, "explicit context")
            seen.append(await loop.create_task(child(), context=explicit))
            seen.append(explicit[request_id])
        return seen

    expected = ["before create_task", "after create_task"]
    if sys.version_info >= (3, 11):
        expected += ["explicit context", "set inside the task"]
    assert run_coroutine(io_loop, main) == expected


def test_call_soon_later_and_at_run_in_the_given_context(io_loop: IOLoop) -> None:
    async def main() -> list[tuple[str, str]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, str]] = []
        all_ran = loop.create_future()

        def record(label: str) -> None:
            seen.append((label, request_id.get()))
            if len(seen) == 6 and not all_ran.done():
                all_ran.set_result(None)

        given = contextvars.copy_context()
        given.run(request_id.set, "given")
        request_id.set("caller")
        loop.call_soon(record, "soon", context=given)
        loop.call_later(0.001, record, "later", context=given)
        loop.call_at(loop.time(), record, "at", context=given)
        # The same context may be given to several pending handles at once.
        loop.call_soon(record, "soon again", context=given)
        loop.call_soon(record, "soon, caller's")
        loop.call_later(0, record, "later, caller's")
        request_id.set("changed after scheduling")
        await asyncio.wait_for(all_ran, WAIT)
        return sorted(seen)

    assert run_coroutine(io_loop, main) == [
        ("at", "given"),
        ("later", "given"),
        ("later, caller's", "caller"),
        ("soon", "given"),
        ("soon again", "given"),
        ("soon, caller's", "caller"),
    ]


# -- callbacks and timers ---------------------------------------------------------


def test_call_soon_order_and_cancelled_handles(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        done = loop.create_future()
        loop.call_soon(seen.append, 1)
        skipped = loop.call_soon(seen.append, 2)
        loop.call_soon(seen.append, 3)
        skipped.cancel()
        assert skipped.cancelled()
        loop.call_soon(done.set_result, None)
        await done
        return seen

    assert run_coroutine(io_loop, main) == [1, 3]


def test_call_soon_with_a_future_and_a_context_still_gives_a_real_handle(
    io_loop: IOLoop,
) -> None:
    """A call shaped like a future scheduling its done-callback (one future
    argument, an explicit context) returns a handle that cancels it: only
    asyncio's own task callbacks are queued without a handle."""

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        arg = loop.create_future()
        handle = loop.call_soon(seen.append, arg, context=contextvars.copy_context())
        handle.cancel()
        assert handle.cancelled()
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
        return seen

    assert run_coroutine(io_loop, main) == []


def test_call_later_and_call_at_order_and_timing(io_loop: IOLoop) -> None:
    async def main() -> tuple[list[tuple[str, float]], float]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[str, float]] = []
        done = loop.create_future()
        start = loop.time()

        def record(label: str) -> None:
            seen.append((label, loop.time() - start))
            if len(seen) == 3:
                done.set_result(None)

        late = loop.call_at(start + 0.03, record, "at +30ms")
        early = loop.call_later(0.01, record, "later +10ms")
        loop.call_at(start + 0.02, record, "at +20ms")
        # (uvloop keeps deadlines in whole milliseconds)
        assert late.when() == pytest.approx(start + 0.03, abs=0.002)
        assert early.when() == pytest.approx(start + 0.01, abs=0.002)
        await asyncio.wait_for(done, WAIT)
        return seen, late.when() - start

    seen, when = run_coroutine(io_loop, main)
    assert [label for label, _ in seen] == ["later +10ms", "at +20ms", "at +30ms"]
    for (_, elapsed), due in zip(seen, (0.01, 0.02, 0.03), strict=True):
        assert elapsed >= due - 0.002  # never (noticeably) early
    assert when == pytest.approx(0.03, abs=0.002)


def test_cancelled_timers_never_run_nor_pile_up(io_loop: IOLoop) -> None:
    """Cancelling an asyncio timer handle removes the timer from the loop.

    On the native loops that means from the timer heap: a live timer due
    before the cancelled ones keeps them from being skipped lazily at the
    head, so only real removal (PollIOLoop.remove_timeout, then compaction)
    can empty it. On every backend, no cancelled callback ever runs.
    """
    count = 2000

    async def main() -> tuple[list[Any], int | None]:
        loop = asyncio.get_running_loop()
        ran: list[Any] = []
        guard = loop.call_later(WAIT * 10, ran.append, "guard")
        handles = [loop.call_later(3600 + i, ran.append, i) for i in range(count)]
        handles += [loop.call_later(0.001, ran.append, "soon") for _ in range(10)]
        handles.append(loop.call_at(loop.time(), ran.append, "now"))
        for handle in handles:
            handle.cancel()
        assert all(handle.cancelled() for handle in handles)
        await asyncio.sleep(0.02)  # past the short timers' deadlines
        heap = len(io_loop._timeouts) if isinstance(io_loop, PollIOLoop) else None
        guard.cancel()
        return ran, heap

    ran, heap = run_coroutine(io_loop, main)
    assert ran == []
    if isinstance(io_loop, PollIOLoop):
        assert heap is not None and heap < count // 10


def test_time_is_the_loops_clock(io_loop: IOLoop) -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        return io_loop.time(), loop.time(), io_loop.time()

    before, during, after = run_coroutine(io_loop, main)
    assert before <= during <= after


def test_call_soon_threadsafe_wakes_an_idle_loop(io_loop: IOLoop) -> None:
    """A thread schedules 20 callbacks one after the other, each only once the
    previous one ran and the loop has nothing left to do but wait in poll.
    Nothing else would wake the loop before run_sync's timeout."""
    rounds = 20

    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        seen: list[int] = []
        finished = loop.create_future()
        proceed = threading.Event()

        def on_loop(i: int, thread: int) -> None:
            assert threading.get_ident() == loop_thread != thread
            seen.append(i)
            if i == rounds - 1:
                finished.set_result(None)
            else:
                proceed.set()

        def from_thread() -> None:
            for i in range(rounds):
                if not proceed.wait(WAIT):
                    return
                proceed.clear()
                loop.call_soon_threadsafe(on_loop, i, threading.get_ident())

        worker = threading.Thread(target=from_thread)
        worker.start()
        started = loop.time()
        proceed.set()
        await finished
        elapsed = loop.time() - started
        worker.join(WAIT)
        return seen, elapsed

    seen, elapsed = run_coroutine(io_loop, main)
    assert seen == list(range(rounds))
    assert elapsed < WAIT / 2


def test_create_future_debug_and_running_state(io_loop: IOLoop) -> None:
    assert asyncio._get_running_loop() is None

    async def main() -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        assert future.get_loop() is loop and not future.done()
        future.set_result("done")
        assert loop.is_running() and not loop.is_closed()
        debug = loop.get_debug()
        loop.set_debug(not debug)
        assert loop.get_debug() is (not debug)
        loop.set_debug(debug)
        return loop

    loop = run_coroutine(io_loop, main)
    assert asyncio._get_running_loop() is None  # uninstalled after the run
    assert not loop.is_running() and not loop.is_closed()
    io_loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        loop.call_soon(print)


def test_run_until_complete_and_run_forever_on_the_asyncio_face(io_loop: IOLoop) -> None:
    """``io_loop.asyncio_loop`` (the bridged asyncio loop, or the native
    loop's view) runs asyncio's way too."""
    loop: asyncio.AbstractEventLoop = io_loop.asyncio_loop  # type: ignore[attr-defined]

    async def main() -> bool:
        await asyncio.sleep(0.001)
        return asyncio.get_running_loop() is loop

    assert loop.run_until_complete(main()) is True
    seen: list[str] = []
    loop.call_soon(seen.append, "ran")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["ran"] and not loop.is_running()


def test_task_factory(io_loop: IOLoop) -> None:
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro.__name__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def child() -> str:
        return "from the factory's task"

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        try:
            assert loop.get_task_factory() is factory
            task = loop.create_task(child(), name="named")
            return [await task, task.get_name()]
        finally:
            loop.set_task_factory(None)

    assert run_coroutine(io_loop, main) == ["from the factory's task", "named"]
    assert made == ["child"]


# -- errors -----------------------------------------------------------------------


def test_exception_in_a_callback_is_logged_and_the_loop_goes_on(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio's default handler logs to ``asyncio``, the native loops' view
    to ``reactor.application``; either way once per failure, with the
    exception, and later callbacks still run."""

    def soon_fails() -> None:
        raise ZeroDivisionError("call_soon callback failed")

    def later_fails() -> None:
        raise LookupError("call_later callback failed")

    async def main() -> str:
        loop = asyncio.get_running_loop()
        after = loop.create_future()
        loop.call_soon(soon_fails)
        loop.call_later(0.001, later_fails)
        loop.call_later(0.005, after.set_result, "the loop went on")
        return await after

    with caplog.at_level(logging.ERROR):
        assert run_coroutine(io_loop, main) == "the loop went on"
    failures = [
        r
        for r in caplog.records
        if r.exc_info and isinstance(r.exc_info[1], (ZeroDivisionError, LookupError))
    ]
    assert sorted(type(r.exc_info[1]).__name__ for r in failures) == [  # type: ignore[index]
        "LookupError",
        "ZeroDivisionError",
    ]
    for record in failures:
        assert record.name in ("asyncio", "reactor.application")
        assert "Exception in callback" in record.getMessage()


def test_custom_exception_handler(io_loop: IOLoop, caplog: pytest.LogCaptureFixture) -> None:
    contexts: list[dict[str, Any]] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        contexts.append(context)

    def fails() -> None:
        raise OSError("reported to the handler")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert loop.get_exception_handler() is None
        loop.set_exception_handler(handler)
        try:
            assert loop.get_exception_handler() is handler
            done = loop.create_future()
            loop.call_soon(fails)
            loop.call_soon(done.set_result, None)
            await done
            loop.call_exception_handler({"message": "by hand"})
        finally:
            loop.set_exception_handler(None)
        with pytest.raises(TypeError):
            loop.set_exception_handler("not callable")  # type: ignore[arg-type]
        loop.default_exception_handler({"message": "logged by the default handler"})

    with caplog.at_level(logging.ERROR):
        run_coroutine(io_loop, main)
    assert len(contexts) == 2
    assert isinstance(contexts[0]["exception"], OSError)
    assert contexts[0]["handle"].cancelled() is False  # the failed callback's handle
    assert contexts[1] == {"message": "by hand"}
    # (In debug mode asyncio adds lines about where the handle was made.)
    logged = [r.getMessage().splitlines()[0] for r in caplog.records]
    assert logged == ["logged by the default handler"]


# -- file descriptors -------------------------------------------------------------


def test_add_and_remove_reader_and_writer_on_a_socketpair(io_loop: IOLoop) -> None:
    a, b = socketpair()

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        calls: list[str] = []
        got: asyncio.Future[bytes] = loop.create_future()

        def first_reader() -> None:
            calls.append("first reader")

        def on_readable(label: str) -> None:
            calls.append(label)
            data = a.recv(100)
            if not got.done():
                got.set_result(data)

        loop.add_reader(a, first_reader)
        loop.add_reader(a, on_readable, "second reader")  # replaces the first
        b.send(b"ping")
        data = await asyncio.wait_for(got, WAIT)
        # True: it was registered (uvloop returns None either way).
        assert loop.remove_reader(a) in (True, None)
        assert not loop.remove_reader(a.fileno())

        # A reader and a writer on the same fd; removing one keeps the other.
        writable: asyncio.Future[str] = loop.create_future()
        readable: asyncio.Future[bytes] = loop.create_future()
        loop.add_writer(b.fileno(), lambda: writable.done() or writable.set_result("writable"))
        loop.add_reader(b, lambda: readable.done() or readable.set_result(b.recv(100)))
        assert await asyncio.wait_for(writable, WAIT) == "writable"
        assert loop.remove_writer(b) in (True, None)
        assert not loop.remove_writer(b)
        a.send(b"pong")
        pong = await asyncio.wait_for(readable, WAIT)
        assert loop.remove_reader(b) in (True, None)

        # Removed readers are not called: readable data, a few iterations.
        calls_before = len(calls)
        b.send(b"unread")
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(calls) == calls_before
        return [data, pong, calls]

    with a, b:
        assert run_coroutine(io_loop, main) == [b"ping", b"pong", ["second reader"]]


def test_sock_calls_over_tcp(io_loop: IOLoop) -> None:
    """sock_accept, sock_connect, sock_sendall, sock_recv and sock_recv_into
    over 127.0.0.1. Small socket buffers and a 1 MiB payload nobody reads yet
    make sock_sendall send in parts."""
    payload = os.urandom(1 << 20)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    client.setblocking(False)

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        server, address = await asyncio.wait_for(accepting, WAIT)
        with server:
            assert address == client.getsockname()
            assert server.gettimeout() == 0  # accepted sockets are non-blocking

            sending = loop.create_task(loop.sock_sendall(client, payload))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            blocked = not sending.done()  # far more than the buffers hold
            received = bytearray()
            buf = bytearray(64 * 1024)
            while len(received) < len(payload):
                if len(received) % 2:
                    received += await loop.sock_recv(server, 64 * 1024)
                else:
                    n = await loop.sock_recv_into(server, buf)
                    received += buf[:n]
            await asyncio.wait_for(sending, WAIT)

            await loop.sock_sendall(server, b"reply")
            reply = await loop.sock_recv(client, 100)
            client.shutdown(socket.SHUT_WR)
            eof = await loop.sock_recv(server, 100)
        return [blocked, bytes(received) == payload, reply, eof]

    with listener, client:
        assert run_coroutine(io_loop, main) == [True, True, b"reply", b""]


def test_sock_connect_resolves_names_and_reports_refusal(io_loop: IOLoop) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    # A port with nobody listening: bound, never listened on, kept bound.
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    by_name = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    by_name.setblocking(False)
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.setblocking(False)

    async def main() -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(by_name, ("localhost", port))
        server, _ = await asyncio.wait_for(loop.sock_accept(listener), WAIT)
        server.close()
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(refused, closed.getsockname())
        host, peer_port = by_name.getpeername()
        return host, peer_port

    with listener, closed, by_name, refused:
        assert run_coroutine(io_loop, main) == ("127.0.0.1", port)


# -- threads ----------------------------------------------------------------------


def test_run_in_executor_getaddrinfo_and_getnameinfo(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(None, threading.get_ident)
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(None, divmod, 1, 0)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as pool:
            name = await loop.run_in_executor(pool, lambda: threading.current_thread().name)
        infos = await loop.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_STREAM)
        names = await loop.getnameinfo(
            ("127.0.0.1", 8080), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        )
        return [worker != threading.get_ident(), name, [info[4] for info in infos], names]

    on_other_thread, name, addresses, names = run_coroutine(io_loop, main)
    assert on_other_thread and name.startswith("mine")
    assert addresses == [("127.0.0.1", 8080)]
    assert names == ("127.0.0.1", "8080")


def test_shutdown_default_executor(io_loop: IOLoop) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        result: int = await loop.run_in_executor(None, sum, [1, 2, 3])
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError):
            loop.run_in_executor(None, sum, [4])
        return result

    assert run_coroutine(io_loop, main) == 6


# -- async generators -------------------------------------------------------------


def test_async_generators_are_finalized_and_shut_down(io_loop: IOLoop) -> None:
    closed: list[str] = []

    async def numbers(label: str) -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # closing needs the loop: aclose(), not close()
            closed.append(label)

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        abandoned = numbers("abandoned")
        assert await abandoned.__anext__() == 1
        del abandoned  # the finalizer hook schedules aclose() on the loop
        gc.collect()
        for _ in range(20):
            if closed:
                break
            await asyncio.sleep(0)
        kept = numbers("kept")
        assert await kept.__anext__() == 1
        await loop.shutdown_asyncgens()
        return closed

    assert run_coroutine(io_loop, main) == ["abandoned", "kept"]
