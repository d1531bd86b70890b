"""Queues for coroutines: Queue (FIFO), PriorityQueue and LifoQueue.

Like :mod:`asyncio.queues`, for coroutines on one loop, not for threads. A
producer ``await``\\ s ``put`` (which waits while a bounded queue is full) and a
consumer ``await``\\ s ``get`` (which waits while it is empty); ``async for item
in queue`` gets forever. ``put``, ``get`` and ``join`` take an optional
``timeout`` (a deadline on :meth:`IOLoop.time <reactor.ioloop.IOLoop.time>` or
a :class:`datetime.timedelta`) and raise :class:`TimeoutError` when it passes;
an item is never lost or delivered twice because a wait timed out.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, _done_future, _new_future
from reactor.locks import Event, Timeout

__all__ = ["LifoQueue", "PriorityQueue", "Queue", "QueueEmpty", "QueueFull"]

_T = TypeVar("_T")


class QueueEmpty(Exception):
    """``get_nowait`` on an empty queue."""


class QueueFull(Exception):
    """``put_nowait`` on a full queue."""


def _expire_at(future: Future[Any], timeout: Timeout) -> None:
    if timeout is None:
        return
    io_loop = IOLoop.current()

    def expire() -> None:
        if not future.done():
            future.set_exception(gen.TimeoutError("queue operation timed out"))

    handle = io_loop.add_timeout(timeout, expire)
    future.add_done_callback(lambda _: io_loop.remove_timeout(handle))


class _QueueIterator(Generic[_T]):
    def __init__(self, queue: Queue[_T]) -> None:
        self.queue = queue

    def __anext__(self) -> Awaitable[_T]:
        return self.queue.get()


class Queue(Generic[_T]):
    """A FIFO queue; ``maxsize`` 0 (the default) means unbounded.

    ``task_done()`` after processing each item lets ``join()`` wait until
    every item put so far has been processed.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize is None:
            raise TypeError("maxsize can't be None")
        if maxsize < 0:
            raise ValueError("maxsize can't be negative")
        self._maxsize = maxsize
        self._init()
        self._getters: collections.deque[Future[_T]] = collections.deque()
        self._putters: collections.deque[tuple[_T, Future[None]]] = collections.deque()
        self._unfinished_tasks = 0
        self._finished = Event()
        self._finished.set()

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def qsize(self) -> int:
        return len(self._queue)

    def empty(self) -> bool:
        return not self._queue

    def full(self) -> bool:
        return 0 < self._maxsize <= self.qsize()

    def put(self, item: _T, timeout: Timeout = None) -> Future[None]:
        """Put ``item``, waiting while the queue is full."""
        try:
            self.put_nowait(item)
        except QueueFull:
            future: Future[None] = _new_future()
            self._putters.append((item, future))
            _expire_at(future, timeout)
            return future
        return _done_future()  # a put with room needs no future of its own

    def put_nowait(self, item: _T) -> None:
        """Put ``item`` or raise :class:`QueueFull` at once."""
        self._drop_expired()
        if self._getters:
            assert self.empty(), "getters wait only on an empty queue"
            getter = self._getters.popleft()
            self._put_item(item)
            getter.set_result(self._get())
        elif self.full():
            raise QueueFull
        else:
            self._put_item(item)

    def get(self, timeout: Timeout = None) -> Future[_T]:
        """Remove and return an item, waiting while the queue is empty."""
        future: Future[_T] = _new_future()
        try:
            future.set_result(self.get_nowait())
        except QueueEmpty:
            self._getters.append(future)
            _expire_at(future, timeout)
        return future

    def get_nowait(self) -> _T:
        """Remove and return an item, or raise :class:`QueueEmpty` at once."""
        self._drop_expired()
        if self._putters:
            assert self.full(), "putters wait only on a full queue"
            item, putter = self._putters.popleft()
            self._put_item(item)
            putter.set_result(None)
            return self._get()
        if self.qsize():
            return self._get()
        raise QueueEmpty

    def task_done(self) -> None:
        """Mark one item taken with ``get`` as processed (for ``join``)."""
        if self._unfinished_tasks <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished_tasks -= 1
        if self._unfinished_tasks == 0:
            self._finished.set()

    def join(self, timeout: Timeout = None) -> Future[None]:
        """Wait until every item put so far was marked with ``task_done``."""
        return self._finished.wait(timeout)

    def __aiter__(self) -> _QueueIterator[_T]:
        return _QueueIterator(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._format()}>"

    def _format(self) -> str:
        parts = [f"maxsize={self.maxsize!r}", f"queue={self._queue!r}"]
        if self._getters:
            parts.append(f"getters[{len(self._getters)}]")
        if self._putters:
            parts.append(f"putters[{len(self._putters)}]")
        if self._unfinished_tasks:
            parts.append(f"tasks={self._unfinished_tasks}")
        return " ".join(parts)

    def _drop_expired(self) -> None:
        # Waiters that timed out (or were cancelled) are done: skip them, so
        # their item or slot goes to the next live waiter.
        while self._putters and self._putters[0][1].done():
            self._putters.popleft()
        while self._getters and self._getters[0].done():
            self._getters.popleft()

    def _put_item(self, item: _T) -> None:
        self._unfinished_tasks += 1
        self._finished.clear()
        self._put(item)

    # The three methods subclasses override to change the order.

    def _init(self) -> None:
        self._queue: Any = collections.deque()

    def _get(self) -> _T:
        return self._queue.popleft()  # type: ignore[no-any-return]

    def _put(self, item: _T) -> None:
        self._queue.append(item)


class PriorityQueue(Queue[_T]):
    """Lowest first: items are usually ``(priority, data)`` tuples."""

    def _init(self) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        heapq.heappush(self._queue, item)

    def _get(self) -> _T:
        return heapq.heappop(self._queue)  # type: ignore[no-any-return]


class LifoQueue(Queue[_T]):
    """Last in, first out."""

    def _init(self) -> None:
        self._queue = []

    def _put(self, item: _T) -> None:
        self._queue.append(item)

    def _get(self) -> _T:
        return self._queue.pop()  # type: ignore[no-any-return]
