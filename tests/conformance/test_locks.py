"""reactor.locks on every backend."""

from __future__ import annotations

import datetime
from collections.abc import Generator
from typing import Any

import pytest

from reactor import gen
from reactor.ioloop import IOLoop
from reactor.locks import BoundedSemaphore, Condition, Event, Lock, Semaphore

SHORT = datetime.timedelta(milliseconds=10)


def test_condition_notify_wakes_the_oldest_waiters(io_loop: IOLoop) -> None:
    cond = Condition()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        assert await cond.wait() is True
        woken.append(i)

    async def main() -> None:
        tasks = gen.multi([waiter(i) for i in range(4)])
        await gen.moment
        cond.notify(2)
        await gen.sleep(0.005)
        assert woken == [0, 1]
        cond.notify_all()
        await tasks

    io_loop.run_sync(main, timeout=5)
    assert woken == [0, 1, 2, 3]


def test_condition_timeout_resolves_false_and_is_not_notified(io_loop: IOLoop) -> None:
    cond = Condition()

    async def main() -> list[Any]:
        timed_out = cond.wait(timeout=SHORT)
        assert await timed_out is False
        later = cond.wait()
        cond.notify()  # must go to the live waiter, not the expired one
        return [await later, repr(cond)]

    result = io_loop.run_sync(main, timeout=5)
    assert result[0] is True and "waiters[0]" in result[1]


def test_event(io_loop: IOLoop) -> None:
    event = Event()

    async def main() -> None:
        waiters = gen.multi([event.wait(), event.wait()])
        assert not event.is_set()
        event.set()
        await waiters
        assert event.is_set()
        await event.wait()  # already set: at once
        event.clear()
        with pytest.raises(TimeoutError):
            await event.wait(timeout=SHORT)

    io_loop.run_sync(main, timeout=5)


def test_semaphore_limits_concurrency(io_loop: IOLoop) -> None:
    sem = Semaphore(2)
    active = peak = 0

    async def worker() -> None:
        nonlocal active, peak
        async with sem:
            active += 1
            peak = max(peak, active)
            await gen.sleep(0.002)
            active -= 1

    io_loop.run_sync(lambda: gen.multi([worker() for _ in range(7)]), timeout=5)
    assert peak == 2 and active == 0


def test_semaphore_with_yield_acquire_and_timeout(io_loop: IOLoop) -> None:
    sem = Semaphore(1)

    @gen.coroutine
    def holder() -> Generator[Any, Any, None]:
        with (yield sem.acquire()), pytest.raises(TimeoutError):
            yield sem.acquire(timeout=SHORT)
        # released on leaving the with block: acquirable again
        (yield sem.acquire(timeout=SHORT)).__exit__(None, None, None)

    io_loop.run_sync(holder, timeout=5)
    assert "unlocked,value:1" in repr(sem)
    with pytest.raises(ValueError):
        Semaphore(-1)
    with pytest.raises(RuntimeError, match="async with"), sem:
        pass


def test_bounded_semaphore_refuses_extra_release(io_loop: IOLoop) -> None:
    sem = BoundedSemaphore(1)
    with pytest.raises(ValueError, match="too many"):
        sem.release()
    io_loop.run_sync(sem.acquire)
    sem.release()


def test_lock(io_loop: IOLoop) -> None:
    lock = Lock()
    order: list[str] = []

    async def critical(name: str) -> None:
        async with lock:
            order.append(f"{name} in")
            await gen.sleep(0.002)
            order.append(f"{name} out")

    async def main() -> None:
        await gen.multi([critical("a"), critical("b")])
        async with lock:
            assert lock.locked()
            with pytest.raises(TimeoutError):
                await lock.acquire(timeout=SHORT)
        assert not lock.locked()

    io_loop.run_sync(main, timeout=5)
    assert order == ["a in", "a out", "b in", "b out"]
    with pytest.raises(RuntimeError, match="unlocked"):
        lock.release()


def test_timed_out_waiters_do_not_pile_up(io_loop: IOLoop) -> None:
    cond = Condition()

    async def main() -> None:
        await gen.multi([cond.wait(timeout=SHORT) for _ in range(300)])

    io_loop.run_sync(main, timeout=5)
    assert len(cond._waiters) < 300  # swept, not kept until the next notify


async def test_cancelled_waits_do_not_pile_up(io_loop: IOLoop) -> None:
    """A long poll whose client left cancels its wait; a thousand of them
    must not grow the queue that notify walks."""
    condition = Condition()
    semaphore = Semaphore(0)
    for _ in range(1000):
        condition.wait().cancel()
        semaphore.acquire().cancel()
    await gen.moment
    assert int(repr(condition).split("waiters[")[1].rstrip("]>")) <= 101
    assert int(repr(semaphore).split("waiters[")[1].rstrip("]>")) <= 101
    live = condition.wait()
    condition.notify()
    assert await live is True
