"""Tornado's ``tornado.platform.asyncio`` names, on reactor's asyncio bridge.

In Tornado 6 every IOLoop is an asyncio loop, and this module names the two
ways of making one. In reactor the asyncio bridge is one backend among
others (:mod:`reactor.backends.loops.asyncioloop`); these names map onto it:

- :class:`BaseAsyncIOLoop` is the bridge's class itself, so any IOLoop on an
  asyncio event loop (the ``asyncio`` or the ``uvloop`` backend) is one.
- :class:`AsyncIOLoop` is a bridge over a new asyncio loop it owns (or over
  ``asyncio_loop=``): ``IOLoop.configure("reactor.platform.asyncio.AsyncIOLoop")``
  makes every later ``IOLoop()`` one, like ``backend="asyncio"``.
- :class:`AsyncIOMainLoop` is a bridge over ``asyncio.get_event_loop()``;
  closing it closes that loop, as in Tornado.
- :func:`to_tornado_future` and :func:`to_asyncio_future` convert nothing
  that needs converting: reactor's futures are asyncio futures.
- ``AnyThreadEventLoopPolicy`` (deprecated, as in Tornado) is made on first
  access, so that importing this module touches no event loop policy.
- :class:`SelectorThread` and :class:`AddThreadSelectorEventLoop` give the
  ``add_reader`` family to an asyncio loop that lacks it (Windows' proactor
  loop) with a ``select()`` in a thread of their own; on Linux and macOS
  every asyncio loop has them, but the classes work here too.

The native backends (select, poll, epoll, kqueue) are none of these classes:
``isinstance(IOLoop.current(), BaseAsyncIOLoop)`` tells whether the loop runs
on an asyncio event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import select
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any, Protocol

from reactor.backends.loops.asyncioloop import AsyncioLoop
from reactor.concurrent import Future
from reactor.gen import convert_yielded

__all__ = [
    "AddThreadSelectorEventLoop",
    "AsyncIOLoop",
    "AsyncIOMainLoop",
    "BaseAsyncIOLoop",
    "SelectorThread",
    "to_asyncio_future",
    "to_tornado_future",
]

BaseAsyncIOLoop = AsyncioLoop
"""Any IOLoop that runs on an asyncio event loop (reactor's asyncio bridge)."""


class AsyncIOLoop(AsyncioLoop):
    """An IOLoop on a new asyncio event loop of its own (``asyncio_loop``:
    on that one instead, which ``close`` then leaves open).

    The loop's asyncio event loop is :attr:`asyncio_loop`. Equivalent to
    ``IOLoop(backend="asyncio")``.
    """


class AsyncIOMainLoop(AsyncioLoop):
    """An IOLoop on the current asyncio event loop (``asyncio.get_event_loop()``),
    which closing this IOLoop closes too.

    Tornado's way of running its code inside an asyncio program before
    Tornado 5; today ``IOLoop.current()`` inside a running asyncio loop finds
    (or makes) the same bridge without it.
    """

    def initialize(self, **kwargs: Any) -> None:
        if "asyncio_loop" in kwargs:
            raise TypeError("AsyncIOMainLoop wraps the current asyncio loop: use AsyncIOLoop")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        super().initialize(asyncio_loop=loop, **kwargs)
        self._owns_loop = True  # Tornado 5+: closing it closes the asyncio loop


def to_tornado_future(asyncio_future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Returns its argument: reactor futures are asyncio futures.

    .. deprecated:: Tornado 5.0
    """
    return asyncio_future


def to_asyncio_future(tornado_future: Any) -> asyncio.Future[Any]:
    """An asyncio future for anything ``await``-able or yieldable in a
    coroutine (:func:`reactor.gen.convert_yielded`).

    .. deprecated:: Tornado 5.0
    """
    future: Future[Any] = convert_yielded(tornado_future)
    return future


_any_thread_policy: type | None = None


def __getattr__(name: str) -> Any:
    # AnyThreadEventLoopPolicy is built on first access: asyncio's policy
    # classes are deprecated from Python 3.14 on, and merely naming
    # asyncio.DefaultEventLoopPolicy there warns.
    if name != "AnyThreadEventLoopPolicy":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global _any_thread_policy
    if _any_thread_policy is None:
        _any_thread_policy = _make_any_thread_policy()
    return _any_thread_policy


def _make_any_thread_policy() -> type:
    if sys.platform == "win32" and hasattr(asyncio, "WindowsSelectorEventLoopPolicy"):
        base: type = asyncio.WindowsSelectorEventLoopPolicy
    else:
        base = asyncio.DefaultEventLoopPolicy

    class AnyThreadEventLoopPolicy(base):  # type: ignore[misc, valid-type]
        """An event loop policy whose ``get_event_loop`` makes a loop in any
        thread that has none (asyncio's makes one only in the main thread).

        Install with ``asyncio.set_event_loop_policy(AnyThreadEventLoopPolicy())``.

        .. deprecated:: Tornado 6.2
           Implicit event loop creation is deprecated in Python; call
           ``asyncio.new_event_loop()`` or ``asyncio.run()`` in the thread.
        """

        def __init__(self) -> None:
            super().__init__()
            warnings.warn(
                "AnyThreadEventLoopPolicy is deprecated, use asyncio.run "
                "or asyncio.new_event_loop instead",
                DeprecationWarning,
                stacklevel=2,
            )

        def get_event_loop(self) -> asyncio.AbstractEventLoop:
            try:
                loop: asyncio.AbstractEventLoop = super().get_event_loop()
            except RuntimeError:
                # No loop in this (non-main) thread yet: make it one.
                loop = self.new_event_loop()
                self.set_event_loop(loop)
            return loop

    AnyThreadEventLoopPolicy.__module__ = __name__
    return AnyThreadEventLoopPolicy


# -- add_reader for an asyncio loop that lacks it --------------------------------------
#
# Some facts about select() in a second thread (each is a test in
# tests/conformance/test_platform_asyncio.py):
#
# - Readiness is level-triggered: a readable fd stays readable until the
#   loop's callback reads it. So after reporting a batch, the selector thread
#   waits until the loop thread has run its callbacks before it selects
#   again; otherwise it would report the same fd over and over.
# - A change of the fd sets (add_reader, remove_writer...) happens on the
#   loop thread while the selector thread may be blocked in select() on the
#   old sets: a byte on a socketpair (the waker) makes it start over.
# - An fd closed while the selector thread selects on it makes select()
#   fail (EBADF) for the whole set: each fd is then tried alone, and the bad
#   ones are reported ready, so that their callbacks meet the error and
#   remove them, as they would under a native loop.
# - The thread is a daemon, closed (and joined) at exit: a non-daemon thread
#   blocked in select() would keep the interpreter from exiting.


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


_FileLike = int | _HasFileno
_selector_threads: set[SelectorThread] = set()


@atexit.register
def _close_selector_threads() -> None:
    for thread in list(_selector_threads):
        thread.close()


def _fd_of(fd: _FileLike) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


class SelectorThread:
    """``add_reader`` and friends for ``real_loop``, with ``select()`` run in
    a thread of this object's own; the callbacks run on ``real_loop``'s
    thread (through ``call_soon_threadsafe``). Close it when done.
    """

    _closed = False

    def __init__(self, real_loop: asyncio.AbstractEventLoop) -> None:
        self._real_loop = real_loop
        self._readers: dict[int, Callable[[], Any]] = {}
        self._writers: dict[int, Callable[[], Any]] = {}
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        # Set by the loop thread when it has handled a batch of events.
        self._handled = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reactor-selector", daemon=True)
        _selector_threads.add(self)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (joining it) and release its sockets."""
        if self._closed:
            return
        self._closed = True
        _selector_threads.discard(self)
        self._handled.set()
        self._wake_selector()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._waker_r.close()
        self._waker_w.close()
        self._readers.clear()
        self._writers.clear()

    def _wake_selector(self) -> None:
        with contextlib.suppress(OSError):  # full (it is awake anyway) or closed
            self._waker_w.send(b"x")

    # -- the selector thread ---------------------------------------------------------

    def _run(self) -> None:
        waker = self._waker_r.fileno()
        while not self._closed:
            readers = [*self._readers, waker]
            writers = list(self._writers)
            try:
                readable, writable, _ = select.select(readers, writers, writers)
            except (OSError, ValueError):
                readable, writable = self._bad_fds(readers, writers)
            if self._closed:
                return
            if waker in readable:
                with contextlib.suppress(OSError):
                    while self._waker_r.recv(4096):
                        pass
                readable = [fd for fd in readable if fd != waker]
            if not readable and not writable:
                continue
            self._handled.clear()
            try:
                self._real_loop.call_soon_threadsafe(self._dispatch, readable, writable)
            except RuntimeError:
                return  # the loop is closed: nobody is left to call
            self._handled.wait()

    def _bad_fds(self, readers: list[int], writers: list[int]) -> tuple[list[int], list[int]]:
        bad_readers: list[int] = []
        bad_writers: list[int] = []
        for fds, bad in ((readers, bad_readers), (writers, bad_writers)):
            for fd in fds:
                try:
                    select.select([fd], [], [], 0)
                except (OSError, ValueError):
                    bad.append(fd)
        return bad_readers, bad_writers

    # -- the loop thread -----------------------------------------------------------------

    def _dispatch(self, readable: list[int], writable: list[int]) -> None:
        try:
            for fd in readable:
                self._call(self._readers.get(fd))
            for fd in writable:
                self._call(self._writers.get(fd))
        finally:
            self._handled.set()

    def _call(self, callback: Callable[[], Any] | None) -> None:
        if callback is None:
            return  # removed after the thread saw the fd ready
        try:
            callback()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as e:
            self._real_loop.call_exception_handler(
                {"message": f"exception in callback {callback!r}", "exception": e}
            )

    def add_reader(self, fd: _FileLike, callback: Callable[..., Any], *args: Any) -> None:
        self._readers[_fd_of(fd)] = functools.partial(callback, *args)
        self._wake_selector()

    def add_writer(self, fd: _FileLike, callback: Callable[..., Any], *args: Any) -> None:
        self._writers[_fd_of(fd)] = functools.partial(callback, *args)
        self._wake_selector()

    def remove_reader(self, fd: _FileLike) -> bool:
        found = self._readers.pop(_fd_of(fd), None) is not None
        self._wake_selector()
        return found

    def remove_writer(self, fd: _FileLike) -> bool:
        found = self._writers.pop(_fd_of(fd), None) is not None
        self._wake_selector()
        return found


class AddThreadSelectorEventLoop(asyncio.AbstractEventLoop):
    """``real_loop`` with ``add_reader`` and friends from a
    :class:`SelectorThread`; everything else is ``real_loop``'s own.
    Closing it closes both.
    """

    MY_ATTRIBUTES = frozenset(
        [
            "_real_loop",
            "_selector",
            "add_reader",
            "add_writer",
            "remove_reader",
            "remove_writer",
            "close",
        ]
    )

    def __getattribute__(self, name: str) -> Any:
        if name in AddThreadSelectorEventLoop.MY_ATTRIBUTES or name.startswith("__"):
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "_real_loop"), name)

    def __init__(self, real_loop: asyncio.AbstractEventLoop) -> None:
        self._real_loop = real_loop
        self._selector = SelectorThread(real_loop)

    def close(self) -> None:
        self._selector.close()
        self._real_loop.close()

    def add_reader(  # type: ignore[override]
        self, fd: _FileLike, callback: Callable[..., Any], *args: Any
    ) -> None:
        self._selector.add_reader(fd, callback, *args)

    def add_writer(  # type: ignore[override]
        self, fd: _FileLike, callback: Callable[..., Any], *args: Any
    ) -> None:
        self._selector.add_writer(fd, callback, *args)

    def remove_reader(self, fd: _FileLike) -> bool:
        return self._selector.remove_reader(fd)

    def remove_writer(self, fd: _FileLike) -> bool:
        return self._selector.remove_writer(fd)
