"""reactor.queues on every backend, with a property over put/get schedules."""

from __future__ import annotations

import datetime
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor import gen
from reactor.ioloop import IOLoop
from reactor.queues import LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull

SHORT = datetime.timedelta(milliseconds=10)


def test_fifo_priority_lifo_order(io_loop: IOLoop) -> None:
    async def drain(q: Queue[int]) -> list[int]:
        for item in [3, 1, 2]:
            await q.put(item)
        return [await q.get() for _ in range(3)]

    assert io_loop.run_sync(lambda: drain(Queue())) == [3, 1, 2]
    assert io_loop.run_sync(lambda: drain(PriorityQueue())) == [1, 2, 3]
    assert io_loop.run_sync(lambda: drain(LifoQueue())) == [2, 1, 3]


def test_nowait_errors_and_sizes(io_loop: IOLoop) -> None:
    q: Queue[str] = Queue(maxsize=1)
    assert q.empty() and not q.full() and q.maxsize == 1
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    q.put_nowait("a")
    assert q.full() and q.qsize() == 1
    with pytest.raises(QueueFull):
        q.put_nowait("b")
    assert q.get_nowait() == "a"
    with pytest.raises(ValueError):
        Queue(maxsize=-1)


def test_put_and_get_timeouts(io_loop: IOLoop) -> None:
    async def main() -> None:
        q: Queue[int] = Queue(maxsize=1)
        with pytest.raises(TimeoutError):
            await q.get(timeout=SHORT)
        await q.put(1)
        with pytest.raises(TimeoutError):
            await q.put(2, timeout=SHORT)
        assert q.qsize() == 1 and await q.get() == 1  # the timed-out put left nothing
        # A timed-out getter does not swallow the next item.
        with pytest.raises(TimeoutError):
            await q.get(timeout=io_loop.time() + 0.005)
        q.put_nowait(3)
        assert await q.get() == 3

    io_loop.run_sync(main, timeout=5)


def test_bounded_put_waits_for_space(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        q: Queue[int] = Queue(maxsize=1)
        await q.put(1)
        blocked = q.put(2)
        await gen.moment
        assert not blocked.done()
        first = await q.get()
        await blocked
        return [first, await q.get()]

    assert io_loop.run_sync(main, timeout=5) == [1, 2]


def test_task_done_and_join(io_loop: IOLoop) -> None:
    async def main() -> None:
        q: Queue[int] = Queue()
        with pytest.raises(ValueError):
            q.task_done()
        await q.join()  # nothing unfinished
        for i in range(3):
            q.put_nowait(i)
        with pytest.raises(TimeoutError):
            await q.join(timeout=SHORT)
        for _ in range(3):
            await q.get()
            q.task_done()
        await q.join(timeout=SHORT)

    io_loop.run_sync(main, timeout=5)


def test_async_for(io_loop: IOLoop) -> None:
    async def main() -> list[int]:
        q: Queue[int] = Queue()
        for i in range(3):
            q.put_nowait(i)
        seen = []
        async for item in q:
            seen.append(item)
            q.task_done()
            if len(seen) == 3:
                break
        return seen

    assert io_loop.run_sync(main, timeout=5) == [0, 1, 2]


def test_producer_consumer_crawler_shape(io_loop: IOLoop) -> None:
    """The seeds' concurrent crawler: workers take URLs from a queue, may put
    more, and join() says when everything is processed."""
    links = {"/": ["/a", "/b"], "/a": ["/b", "/c"], "/b": ["/"], "/c": []}
    q: Queue[str] = Queue()
    fetching: set[str] = set()
    fetched: set[str] = set()

    @gen.coroutine
    def worker() -> Generator[Any, Any, None]:
        while True:
            url = yield q.get()
            try:
                if url in fetching:
                    continue
                fetching.add(url)
                yield gen.sleep(0.001)  # "fetch"
                fetched.add(url)
                for link in links[url]:
                    yield q.put(link)
            finally:
                q.task_done()

    @gen.coroutine
    def main() -> Generator[Any, Any, None]:
        q.put_nowait("/")
        for _ in range(3):
            worker()
        yield q.join(timeout=datetime.timedelta(seconds=5))

    io_loop.run_sync(main, timeout=10)
    assert fetched == set(links)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from([None, 0.002, 0.02])),
        st.tuples(st.just("get"), st.sampled_from([None, 0.002, 0.02])),
        st.tuples(st.just("put_nowait"), st.none()),
        st.tuples(st.just("get_nowait"), st.none()),
        st.tuples(st.just("tick"), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, maxsize=st.integers(0, 3))
def test_any_schedule_loses_and_duplicates_nothing(
    reactor_backend: Any, ops: list[tuple[str, float | None]], maxsize: int
) -> None:
    """Every item whose put succeeded is received exactly once (by a get that
    succeeded, or drained at the end), and nothing else is: timed-out puts
    deliver nothing, timed-out gets take nothing."""
    loop = IOLoop(backend=reactor_backend, make_current=True)
    try:

        async def run() -> tuple[list[int], list[int]]:
            q: Queue[int] = Queue(maxsize=maxsize)
            puts: list[tuple[int, Any]] = []
            gets: list[Any] = []
            received_nowait: list[int] = []
            accepted_nowait: list[int] = []
            for n, (op, timeout) in enumerate(ops):
                if op == "put":
                    puts.append((n, q.put(n, timeout=timeout)))
                elif op == "get":
                    gets.append(q.get(timeout=timeout))
                elif op == "put_nowait":
                    try:
                        q.put_nowait(n)
                        accepted_nowait.append(n)
                    except QueueFull:
                        pass
                elif op == "get_nowait":
                    try:
                        received_nowait.append(q.get_nowait())
                    except QueueEmpty:
                        pass
                else:
                    await gen.sleep(0.003)
            # Wait out every timeout, then drain: get_nowait also admits the
            # items of puts still waiting for room.
            await gen.sleep(0.03)
            leftover = []
            while True:
                try:
                    leftover.append(q.get_nowait())
                except QueueEmpty:
                    break
            accepted = accepted_nowait + [n for n, f in puts if f.done() and not f.exception()]
            got = [f.result() for f in gets if f.done() and not f.exception()]
            return sorted(accepted), sorted(received_nowait + got + leftover)

        accepted, delivered = loop.run_sync(run, timeout=10)
        assert delivered == accepted  # nothing lost, duplicated or invented
    finally:
        IOLoop.clear_current()
        loop.close()
