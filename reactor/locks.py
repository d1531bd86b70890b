"""Coroutine synchronisation: Condition, Event, Semaphore, BoundedSemaphore, Lock.

Like :mod:`asyncio`'s, these are for coroutines on one loop, not for threads.
Every wait takes an optional ``timeout``: a deadline on :meth:`IOLoop.time
<reactor.ioloop.IOLoop.time>` or a :class:`datetime.timedelta` from now. A wait
that times out is removed from the queue of waiters, so it cannot steal a
later notification or release.
"""

from __future__ import annotations

import collections
import datetime
import types
from typing import TYPE_CHECKING, Any

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, _new_future

__all__ = ["BoundedSemaphore", "Condition", "Event", "Lock", "Semaphore"]

Timeout = float | datetime.timedelta | None


class _Waiters:
    """A FIFO of waiter futures that forgets the ones that were given up on.

    Timed-out and cancelled (done) waiters are skipped when popped, and swept
    out in bulk once enough of them pile up, so that many timeouts or
    cancellations (clients that leave a long poll) cannot grow the queue.
    """

    def __init__(self) -> None:
        self._waiters: collections.deque[Future[Any]] = collections.deque()
        self._abandoned = 0

    def __len__(self) -> int:
        return len(self._waiters)

    def append(self, waiter: Future[Any]) -> None:
        self._waiters.append(waiter)
        waiter.add_done_callback(self._on_done)

    def _on_done(self, waiter: Future[Any]) -> None:
        if waiter.cancelled():
            self.abandon()

    def abandon(self) -> None:
        self._abandoned += 1
        if self._abandoned > 100:
            self._abandoned = 0
            self._waiters = collections.deque(w for w in self._waiters if not w.done())

    def pop_live(self) -> Future[Any] | None:
        """The oldest waiter still waiting, or None."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None


def _wait_with_timeout(
    waiter: Future[Any], timeout: Timeout, on_timeout: Any, waiters: _Waiters | None = None
) -> None:
    """Complete ``waiter`` via ``on_timeout(waiter)`` at ``timeout``, if any."""
    if timeout is None:
        return
    io_loop = IOLoop.current()

    def expire() -> None:
        if not waiter.done():
            on_timeout(waiter)
        if waiters is not None:
            waiters.abandon()

    handle = io_loop.add_timeout(timeout, expire)
    waiter.add_done_callback(lambda _: io_loop.remove_timeout(handle))


class Condition:
    """Coroutines wait until another one notifies them.

    ``await condition.wait()`` resolves to True when notified, or to False if
    ``timeout`` passed first. ``notify(n)`` wakes the ``n`` oldest waiters;
    ``notify_all()`` wakes them all.
    """

    def __init__(self) -> None:
        self._waiters = _Waiters()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} waiters[{len(self._waiters)}]>"

    def wait(self, timeout: Timeout = None) -> Future[bool]:
        waiter: Future[bool] = _new_future()
        self._waiters.append(waiter)
        _wait_with_timeout(waiter, timeout, lambda w: w.set_result(False), self._waiters)
        return waiter

    def notify(self, n: int = 1) -> None:
        woken = 0
        while woken < n:
            waiter = self._waiters.pop_live()
            if waiter is None:
                break
            waiter.set_result(True)
            woken += 1

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


class Event:
    """A flag coroutines can wait for; ``set()`` wakes every waiter.

    ``wait()`` raises :class:`TimeoutError` if ``timeout`` passes first.
    """

    def __init__(self) -> None:
        self._value = False
        self._waiters: set[Future[None]] = set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'set' if self._value else 'clear'}>"

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        for waiter in self._waiters:
            if not waiter.done():  # a timed-out one may not be discarded yet
                waiter.set_result(None)
        self._waiters.clear()

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: Timeout = None) -> Future[None]:
        if self._value:
            done: Future[None] = _new_future()
            done.set_result(None)
            return done
        waiter: Future[None] = _new_future()
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)

        def expire(w: Future[Any]) -> None:
            w.set_exception(gen.TimeoutError("timed out waiting for the event"))

        _wait_with_timeout(waiter, timeout, expire)
        return waiter


class _ReleasingContextManager:
    """``with (yield semaphore.acquire()):`` releases on exit."""

    def __init__(self, obj: Semaphore | Lock) -> None:
        self._obj = obj

    def __enter__(self) -> None:
        pass

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._obj.release()


class _AcquireContext:
    """``async with x:`` acquires and releases; plain ``with x:`` is a mistake."""

    if TYPE_CHECKING:  # provided by the classes that use it

        def acquire(self, timeout: Timeout = None) -> Future[_ReleasingContextManager]: ...

        def release(self) -> None: ...

    def __enter__(self) -> None:
        raise RuntimeError(
            f"Use 'async with' (or 'with (yield x.acquire())') on a {type(self).__name__}, "
            "not 'with'"
        )

    def __exit__(self, *args: Any) -> None:
        pass

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *args: Any) -> None:
        self.release()


class Semaphore(_AcquireContext):
    """A counter coroutines decrement with ``acquire`` and increment with ``release``.

    ``acquire`` waits while the counter is zero and raises
    :class:`TimeoutError` if ``timeout`` passes first. ``async with sem:``
    acquires and releases.
    """

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._waiters = _Waiters()

    def __repr__(self) -> str:
        state = "locked" if self._value == 0 else f"unlocked,value:{self._value}"
        return f"<{type(self).__name__} [{state}] waiters[{len(self._waiters)}]>"

    def release(self) -> None:
        """Increment the counter, or hand it straight to the oldest waiter."""
        waiter = self._waiters.pop_live()
        if waiter is not None:
            waiter.set_result(_ReleasingContextManager(self))
        else:
            self._value += 1

    def acquire(self, timeout: Timeout = None) -> Future[_ReleasingContextManager]:
        waiter: Future[_ReleasingContextManager] = _new_future()
        if self._value > 0:
            self._value -= 1
            waiter.set_result(_ReleasingContextManager(self))
            return waiter
        self._waiters.append(waiter)

        def expire(w: Future[Any]) -> None:
            w.set_exception(gen.TimeoutError("timed out acquiring the semaphore"))

        _wait_with_timeout(waiter, timeout, expire, self._waiters)
        return waiter


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore` whose ``release`` beyond the initial value is an error."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value=value)
        self._initial_value = value

    def release(self) -> None:
        if self._value >= self._initial_value:
            raise ValueError("Semaphore released too many times")
        super().release()


class Lock(_AcquireContext):
    """A mutex for coroutines: ``async with lock:``.

    ``acquire`` raises :class:`TimeoutError` if ``timeout`` passes first;
    releasing an unlocked lock raises RuntimeError.
    """

    def __init__(self) -> None:
        self._block = BoundedSemaphore(value=1)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} _block={self._block}>"

    def acquire(self, timeout: Timeout = None) -> Future[_ReleasingContextManager]:
        return self._block.acquire(timeout)

    def release(self) -> None:
        try:
            self._block.release()
        except ValueError:
            raise RuntimeError("release unlocked lock") from None

    def locked(self) -> bool:
        return self._block._value == 0
