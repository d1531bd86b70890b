"""The event loop: one interface, a native implementation, and the way to choose.

:class:`IOLoop` is the interface every backend implements; its docstrings are
the contract. :class:`PollIOLoop` is reactor's own loop, run over one of the
native pollers in :mod:`backends` (select, poll, epoll, kqueue). The asyncio
bridge (:mod:`reactor.backends.loops.asyncioloop`) implements the same interface on an
asyncio event loop.

``IOLoop()`` picks the backend: the ``backend=`` argument, else
:meth:`IOLoop.configure`, else ``REACTOR_BACKEND``, else the platform default.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import functools
import heapq
import itertools
import math
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

from reactor import backends
from reactor.asyncio_view import NativeAsyncioLoop, _DirectCallback
from reactor.backends.pollers.base import ERROR, READ, WRITE, Poller
from reactor.concurrent import FUTURES, Future, _LoopFuture, copy_future_state
from reactor.log import app_log, gen_log
from reactor.util import Configurable, TimeoutError

if TYPE_CHECKING:
    from typing import Protocol

    class _Selectable(Protocol):
        def fileno(self) -> int: ...
        def close(self) -> None: ...


_T = TypeVar("_T")
FileLike = Union[int, "_Selectable"]
_copy_context = contextvars.copy_context
_monotonic = time.monotonic

# Compact the timer heap once this many cancelled timers sit in it *and* they
# outnumber the live ones; below that, lazily skipping them is cheaper.
_COMPACT_AFTER = 512

# IOLoop.stats()'s longest_iteration is the maximum of two rotating buckets
# of this many seconds: the current one and the one before it.
_STATS_BUCKET = 5.0


class _LoopCounters:
    """The running totals behind :meth:`IOLoop.stats`.

    Updated once per loop iteration (never per callback) by the loop, or by
    what times the poll on a bridge. Slots: the loop's iteration reads and
    writes them without a dict lookup.
    """

    __slots__ = (
        "bucket_end",
        "busy_time",
        "callbacks",
        "idle_time",
        "iterations",
        "longest",
        "longest_before",
        "timer_lag",
    )

    def __init__(self) -> None:
        self.iterations = 0
        self.callbacks = 0
        self.busy_time = 0.0
        self.idle_time = 0.0
        self.timer_lag = 0.0
        self.longest = 0.0  # the longest busy stretch in the current bucket
        self.longest_before = 0.0  # ... in the bucket before it
        self.bucket_end = 0.0  # when the current bucket ends (loop clock)

    def rotate(self, now: float) -> None:
        """Start a new bucket at ``now`` (the current one has ended)."""
        recent = now < self.bucket_end + _STATS_BUCKET
        self.longest_before = self.longest if recent else 0.0
        self.longest = 0.0
        self.bucket_end = now + _STATS_BUCKET

    def recent_longest(self, now: float) -> float:
        """longest_iteration at ``now``, without rotating (any thread may ask)."""
        if now < self.bucket_end:
            return max(self.longest, self.longest_before)
        if now < self.bucket_end + _STATS_BUCKET:
            return self.longest
        return 0.0

    def as_stats(
        self, backend: str, now: float, fds: int, timers: int
    ) -> dict[str, float | int | str]:
        """The dict :meth:`IOLoop.stats` returns."""
        return {
            "backend": backend,
            "iterations": self.iterations,
            "busy_time": self.busy_time,
            "idle_time": self.idle_time,
            "longest_iteration": self.recent_longest(now),
            "callbacks": self.callbacks,
            "fds": fds,
            "timers": timers,
            "timer_lag": self.timer_lag,
        }


def _loop_class(impl: type) -> type[IOLoop]:
    """The IOLoop class a backend's class runs under."""
    return PollIOLoop if issubclass(impl, Poller) else impl  # type: ignore[return-value]


class _Current(threading.local):
    loop: IOLoop | None = None


_current = _Current()


class IOLoop(Configurable):
    """A level-triggered I/O event loop.

    ``IOLoop()`` returns a loop of the chosen backend (see the module
    docstring); ``IOLoop(backend="poll")`` chooses for this loop alone. Each
    loop reports its backend as :attr:`backend_name`.

    A loop runs in one thread. The only methods that may be called from other
    threads are :meth:`add_callback` (and :meth:`add_callback_from_signal`)
    and :meth:`stop`; everything else belongs to the loop's thread.

    ``make_current``: True (the default, as in Tornado 6.3+) makes the new
    loop the current one of this thread; False leaves the current loop
    alone; None makes it current only if the thread has none yet.

    ``IOLoop(asyncio_loop=loop)`` wraps an existing asyncio event loop in
    the asyncio bridge (the ``uvloop`` backend for a uvloop loop, else
    ``asyncio``), as Tornado's ``AsyncIOLoop`` does; the bridge does not own
    it (``close`` leaves it open).

    IOLoop is a :class:`~reactor.util.Configurable`: ``IOLoop()`` builds the
    implementation chosen with :meth:`configure` (``configured_class()``),
    and an implementation class may be named directly
    (``PollIOLoop(backend="poll")``).
    """

    # Events for add_handler / update_handler; see reactor.backends.pollers.base.
    NONE = 0
    READ = READ
    WRITE = WRITE
    ERROR = ERROR

    backend_name: str = "abstract"
    """The registry name of the backend this loop runs on."""

    asyncio_loop: asyncio.AbstractEventLoop
    """This loop's asyncio face: the asyncio event loop that its ``async def``
    tasks and reactor futures belong to, and ``asyncio.get_running_loop()``
    while it runs. On the asyncio backends the asyncio loop itself; on the
    native ones a :class:`~reactor.asyncio_view.NativeAsyncioLoop`."""

    # What configure() chose: a backend spec (name, "module:Class", class)
    # or None, and the keyword arguments for the loops built from it.
    _configured: ClassVar[str | type | None] = None
    _configured_kwargs: ClassVar[dict[str, Any]] = {}
    _instance: ClassVar[IOLoop | None] = None
    _instance_lock = threading.Lock()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not IOLoop:
            return super().__new__(cls, *args, **kwargs)
        spec = kwargs.pop("backend", None)
        explicit = spec is not None
        if not explicit:
            spec = IOLoop._configured or backends.env_choice()
            if IOLoop._configured is not None and IOLoop._configured_kwargs:
                kwargs = {**IOLoop._configured_kwargs, **kwargs}
        name, impl = backends.get(spec)
        if issubclass(impl, Poller):
            if "asyncio_loop" not in kwargs:
                kwargs["backend"] = impl
                return PollIOLoop(*args, **kwargs)
            if explicit:
                raise backends.BackendError(
                    f"backend {name!r} is a native backend and cannot wrap an asyncio loop; "
                    "leave out backend= (or give backend='asyncio') with asyncio_loop="
                )
            # A native loop cannot run on someone else's asyncio loop: the
            # bridge wraps it, whatever the default backend.
            is_uvloop = type(kwargs["asyncio_loop"]).__module__.startswith("uvloop")
            name, impl = backends.get("uvloop" if is_uvloop else "asyncio")
        if not issubclass(impl, IOLoop) or impl is IOLoop:
            raise backends.BackendError(
                f"backend {name!r} resolved to {impl!r}, which is neither "
                "a reactor.backends.pollers.base.Poller nor a reactor.ioloop.IOLoop subclass"
            )
        return impl(*args, **kwargs)

    def __init__(self, make_current: bool | None = True) -> None:
        self._executor: concurrent.futures.Executor | None = None
        self._own_executor = False
        self._watchdog: _Watchdog | None = None
        self._done: Future[None] | None = None  # see _done_future()
        if make_current or (make_current is None and _current.loop is None):
            self.make_current()
        gen_log.debug("new IOLoop on the %s backend", self.backend_name)

    # -- choosing the backend ------------------------------------------------

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return IOLoop

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        """The implementation class of the ``REACTOR_BACKEND`` or platform
        default backend: :class:`PollIOLoop` for a native poller."""
        return _loop_class(backends.get(backends.env_choice())[1])

    @classmethod
    def configure(cls, impl: str | type | None, **kwargs: Any) -> None:
        """Choose the backend of the loops ``IOLoop()`` builds from now on.

        ``impl`` is what Tornado takes (an IOLoop subclass or its dotted
        import path ``"pkg.module.Class"``) or a backend: a registry name
        (``"epoll"``, ``"uvloop"``), ``"pkg.module:Class"``, an entry point
        name, or a :class:`~reactor.backends.pollers.base.Poller` class.
        ``kwargs`` are added to the arguments of every loop ``IOLoop()``
        builds from it (``IOLoop(...)``'s own arguments win); a loop given
        ``backend=`` does not get them. ``configure(None)`` returns to
        ``REACTOR_BACKEND`` or the platform default.

        Takes precedence over ``REACTOR_BACKEND``. Checked at once: an
        unknown or unavailable backend raises :class:`backends.BackendError`,
        anything that is neither a loop nor a poller TypeError, and loops
        already made are not changed.
        """
        if isinstance(impl, str) and ":" not in impl and "." in impl:
            # Tornado's spelling of a class, "pkg.module.Class".
            module, _, name = impl.strip().rpartition(".")
            impl = f"{module}:{name}"
        if impl is not None:
            found = backends.get(impl)[1]
            if found is IOLoop:
                raise TypeError("IOLoop is the interface; configure a backend or an implementation")
            if not (issubclass(found, Poller) or issubclass(found, IOLoop)):
                raise TypeError(
                    f"IOLoop.configure needs a backend, a Poller or an IOLoop subclass; "
                    f"{impl!r} is {found!r}"
                )
        IOLoop._configured = impl
        IOLoop._configured_kwargs = dict(kwargs)

    @classmethod
    def configured_class(cls) -> type[Configurable]:
        """The IOLoop subclass ``IOLoop()`` builds now (:class:`PollIOLoop`
        for a native backend; :meth:`configured_backend` names the poller)."""
        if IOLoop._configured is None:
            return cls.configurable_default()
        return _loop_class(backends.get(IOLoop._configured)[1])

    @classmethod
    def configured_backend(cls) -> str:
        """The name of the backend the next ``IOLoop()`` would use."""
        return backends.get(cls._configured or backends.env_choice())[0]

    @classmethod
    def _save_configuration(cls) -> tuple[Any, dict[str, Any] | None]:
        return IOLoop._configured, dict(IOLoop._configured_kwargs)

    @classmethod
    def _restore_configuration(cls, saved: tuple[Any, dict[str, Any] | None]) -> None:
        IOLoop._configured = saved[0]
        IOLoop._configured_kwargs = dict(saved[1] or {})

    # -- the current loop and the global instance -----------------------------

    @staticmethod
    def current(instance: bool = True) -> IOLoop:
        """The loop of this thread.

        The loop that is running in this thread, else the one made current
        with :meth:`make_current`, else the one running inside the thread's
        asyncio event loop. If none: with ``instance=True``, the main thread
        gets :meth:`instance` and any other thread a new loop, made current;
        with ``instance=False``, None is returned.
        """
        loop = _current.loop
        if loop is not None:
            return loop
        return IOLoop._current_fallback(instance)  # type: ignore[return-value]

    @staticmethod
    def _current_fallback(instance: bool) -> IOLoop | None:
        running = asyncio._get_running_loop()
        if running is not None:
            owner = getattr(running, "_io_loop", None)  # a native loop's asyncio view
            if isinstance(owner, IOLoop):
                return owner
            from reactor.backends.loops.asyncioloop import AsyncioLoop

            return AsyncioLoop.for_asyncio_loop(running)
        if not instance:
            return None
        if threading.current_thread() is threading.main_thread():
            return IOLoop.instance()
        return IOLoop(make_current=True)

    def make_current(self) -> None:
        """Make this the current loop of the calling thread."""
        _current.loop = self

    @staticmethod
    def clear_current() -> None:
        """Forget the calling thread's current loop."""
        _current.loop = None

    @staticmethod
    def instance() -> IOLoop:
        """The process-wide loop, created on first use (Tornado 4's singleton).

        Most code wants :meth:`current`; ``instance()`` is for a loop shared
        with other threads, which may only reach it through
        :meth:`add_callback`.
        """
        if IOLoop._instance is None:
            with IOLoop._instance_lock:
                if IOLoop._instance is None:
                    IOLoop._instance = IOLoop(make_current=False)
        return IOLoop._instance

    @staticmethod
    def initialized() -> bool:
        """True if the global instance exists."""
        return IOLoop._instance is not None

    def install(self) -> None:
        """Make this loop the global :meth:`instance`; it must not exist yet."""
        if IOLoop.initialized():
            raise RuntimeError("IOLoop.instance() already exists")
        IOLoop._instance = self

    @staticmethod
    def clear_instance() -> None:
        """Forget the global instance (it is not closed)."""
        IOLoop._instance = None

    # -- running -----------------------------------------------------------

    def start(self) -> None:
        """Run until :meth:`stop` is called.

        The loop is this thread's current loop while it runs. If :meth:`stop`
        was called while the loop was not running, ``start`` returns at once.
        Raises RuntimeError if the loop is running already or closed, or if
        it was made in another process (inherited by ``fork()``: the child
        shares its poller and waker with the parent; make a new loop there).
        """
        raise NotImplementedError(f"{type(self).__name__}.start")

    def stop(self) -> None:
        """Stop the loop after the current iteration; safe from any thread.

        Callbacks already scheduled when ``stop`` is called still run;
        the loop keeps its handlers, timers and pending callbacks, and the
        next :meth:`start` resumes them.
        """
        raise NotImplementedError(f"{type(self).__name__}.stop")

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Start the loop, run ``func``, and stop when its result is ready.

        ``func`` may return a value, None, a :class:`~reactor.concurrent.Future`,
        a :class:`concurrent.futures.Future`, or anything
        :func:`reactor.gen.convert_yielded` accepts (so it may be an ``async
        def`` or a ``gen.coroutine``). Returns the result or raises its exception.
        With ``timeout`` (seconds) the operation is cancelled after that long
        and :class:`TimeoutError` is raised: a coroutine (``async def`` or
        ``gen.coroutine``) gets :class:`asyncio.CancelledError` where it
        waits, and ``run_sync`` returns once it has finished, so its
        ``except`` and ``finally`` blocks have run. If it handles the
        cancellation and returns a value, that value is returned. A future
        that cannot be cancelled (a running ``concurrent.futures.Future``) is
        left pending.
        """
        outcome: list[Future[Any]] = []
        timed_out = False

        def run() -> None:
            try:
                result = func()
                future = _as_future(result)
            except Exception as e:
                future = _new_future()
                future.set_exception(e)
            outcome.append(future)
            self.add_future(future, lambda _: self.stop())

        def on_timeout() -> None:
            nonlocal timed_out
            timed_out = True
            # Cancelling a coroutine's future cancels the coroutine; then the
            # loop runs on until it has finished (its except and finally
            # blocks). What cannot be cancelled is left pending.
            if not outcome or not outcome[0].cancel():
                self.stop()

        self.add_callback(run)
        handle = None if timeout is None else self.call_later(timeout, on_timeout)
        self.start()
        if handle is not None:
            self.remove_timeout(handle)
        if timed_out and (not outcome or not outcome[0].done() or outcome[0].cancelled()):
            raise TimeoutError(f"Operation timed out after {timeout} seconds")
        if not outcome or not outcome[0].done():
            raise RuntimeError("the loop stopped before run_sync's function finished")
        return outcome[0].result()

    def close(self, all_fds: bool = False) -> None:
        """Release the loop's resources; it cannot be used afterwards.

        Afterwards :meth:`add_callback` drops its callback (it never runs and
        is not kept), from any thread, also one racing ``close``.

        With ``all_fds``, also close every file descriptor still registered
        with :meth:`add_handler` (not those asyncio code watches through
        ``asyncio_loop.add_reader``). Raises RuntimeError if the loop is running.
        """
        if self._watchdog is not None:
            self._watchdog.shutdown()
            self._watchdog = None
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        if _current.loop is self:
            _current.loop = None
        if IOLoop._instance is self:
            IOLoop._instance = None

    # -- file descriptors ----------------------------------------------------

    def add_handler(self, fd: FileLike, handler: Callable[[Any, int], Any], events: int) -> None:
        """Call ``handler(fd, events)`` whenever ``fd`` is ready for ``events``.

        ``fd`` is an int or an object with ``fileno()`` (then the handler gets
        the object back). ``events`` is a mask of ``READ`` and ``WRITE``;
        ``ERROR`` is always reported, and a peer's hang-up arrives as ``READ``
        or ``ERROR`` depending on the backend (a read then tells which).
        Readiness is level-triggered. Adding an fd twice raises ValueError.
        Remove the handler before closing the fd.
        """
        raise NotImplementedError(f"{type(self).__name__}.add_handler")

    def update_handler(self, fd: FileLike, events: int) -> None:
        """Change the events ``fd`` is watched for."""
        raise NotImplementedError(f"{type(self).__name__}.update_handler")

    def remove_handler(self, fd: FileLike) -> None:
        """Stop watching ``fd``; unknown fds are ignored.

        Events already collected in this iteration for ``fd`` are dropped, so
        a handler may remove another fd's handler safely, and close it, even
        if a new fd with the same number is registered in the same iteration.
        """
        raise NotImplementedError(f"{type(self).__name__}.remove_handler")

    @staticmethod
    def split_fd(fd: FileLike) -> tuple[int, FileLike]:
        """Return ``(fd_number, fd_or_object)`` for an int or a file-like object."""
        if isinstance(fd, int):
            return fd, fd
        return fd.fileno(), fd

    @staticmethod
    def close_fd(fd: FileLike) -> None:
        """Close an fd number or a file-like object, ignoring errors."""
        try:
            if isinstance(fd, int):
                os.close(fd)
            else:
                fd.close()
        except OSError:
            pass

    # -- callbacks and timers ------------------------------------------------

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call ``callback(*args, **kwargs)`` on the next iteration.

        Safe from any thread (the loop is woken if it is waiting). Callbacks
        run in the order added, in the context (:mod:`contextvars`) of the
        caller. A callback added while callbacks run waits for the next
        iteration, so I/O is polled in between. A callback that raises is
        logged (:meth:`handle_callback_exception`) and the loop goes on.
        On a closed loop the callback is dropped, without an error.
        """
        raise NotImplementedError(f"{type(self).__name__}.add_callback")

    def add_callback_from_signal(
        self, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Like :meth:`add_callback`, from a signal handler."""
        self.add_callback(callback, *args, **kwargs)

    def spawn_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the next iteration, detached from the caller.

        Same as :meth:`add_callback` now that there is no stack_context: an
        error is logged, and a returned future's failure is logged too.
        """
        self.add_callback(callback, *args, **kwargs)

    def add_future(
        self,
        future: asyncio.Future[_T] | concurrent.futures.Future[_T],
        callback: Callable[[Any], Any],
    ) -> None:
        """Call ``callback(future)`` on this loop once ``future`` is done.

        ``future`` may be a reactor or asyncio future, or a
        :class:`concurrent.futures.Future` completed by another thread. A
        future of this loop that completes in one iteration has ``callback``
        run in the next, not one later; an exception it raises goes to
        :meth:`handle_callback_exception`, as for any callback.
        """
        if isinstance(future, asyncio.Future):
            # Its done-callbacks already run from a loop's queue: when that
            # loop is this one, call straight through instead of queueing
            # the callback again for one more iteration.
            def on_done(f: Any) -> None:
                if _current.loop is self:
                    try:
                        callback(f)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException:
                        self.handle_callback_exception(callback)
                else:
                    self.add_callback(callback, f)

            future.add_done_callback(_DirectCallback(on_done))
        elif isinstance(future, concurrent.futures.Future):
            # Completes on a worker thread: add_callback brings it here.
            future.add_done_callback(lambda f: self.add_callback(callback, f))
        else:
            raise TypeError(f"expected a Future, got {future!r}")

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> object:
        """Call ``callback`` at ``when`` on the :meth:`time` clock.

        Returns a handle for :meth:`remove_timeout`. Timers with the same
        deadline run in the order they were added.
        """
        raise NotImplementedError(f"{type(self).__name__}.call_at")

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> object:
        """Call ``callback`` after ``delay`` seconds; see :meth:`call_at`."""
        return self.call_at(self.time() + delay, callback, *args, **kwargs)

    def add_timeout(
        self,
        deadline: float | datetime.timedelta,
        callback: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> object:
        """Call ``callback`` at ``deadline``: a :meth:`time` value or a timedelta
        from now. Returns a handle for :meth:`remove_timeout`."""
        if isinstance(deadline, datetime.timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        if isinstance(deadline, (int, float)):
            return self.call_at(deadline, callback, *args, **kwargs)
        raise TypeError(f"Unsupported deadline {deadline!r}")

    def remove_timeout(self, timeout: object) -> None:
        """Cancel a pending timer; a timer that ran or was removed is ignored."""
        raise NotImplementedError(f"{type(self).__name__}.remove_timeout")

    def time(self) -> float:
        """The loop's clock: monotonic seconds, the base of :meth:`call_at`."""
        return _monotonic()

    def handle_callback_exception(self, callback: Any) -> None:
        """Log the exception being handled, raised by ``callback``.

        Called from inside an ``except`` block. Override to report errors
        elsewhere; the loop goes on either way.
        """
        app_log.error("Exception in callback %r", callback, exc_info=True)

    def _discard_future_result(self, future: Future[Any]) -> None:
        """Log the failure of a future a callback returned and nobody awaits."""
        if not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            assert exc is not None
            app_log.error(
                "Exception in a future returned by a callback",
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    # -- executors ----------------------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[..., _T],
        *args: Any,
    ) -> Future[_T]:
        """Run ``func(*args)`` in ``executor`` (None: the default thread pool).

        Returns a reactor future that completes on this loop's thread.
        """
        if executor is None:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=(os.cpu_count() or 1) * 5,
                    thread_name_prefix="reactor-executor",
                )
                self._own_executor = True
            executor = self._executor
        c_future = executor.submit(func, *args)
        future: Future[_T] = _LoopFuture(loop=self.asyncio_loop)
        self.add_future(c_future, lambda c: copy_future_state(c, future))
        return future

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        """Use ``executor`` for ``run_in_executor(None, ...)``. The caller owns it."""
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=False)
        self._executor = executor
        self._own_executor = False

    # -- the blocking watchdog ------------------------------------------------

    def set_blocking_log_threshold(self, seconds: float | None) -> None:
        """Log the stack of whatever blocks the loop for more than ``seconds``.

        A heartbeat timer on the loop and a watchdog thread that reads the
        loop thread's stack with :func:`sys._current_frames`: no signals, so
        none of the deadlocks and interrupted system calls of Tornado 4's
        SIGALRM design, and it works on every backend. Precision is about
        half the threshold. Each blocked stretch is logged once, as a warning
        on ``reactor.general``. ``None`` or 0 turns it off.
        """
        if self._watchdog is not None:
            self._watchdog.shutdown()
            self._watchdog = None
        if seconds:
            self._watchdog = _Watchdog(self, seconds)

    def _is_running(self) -> bool:
        """True while :meth:`start` runs (used by the watchdog thread)."""
        raise NotImplementedError(f"{type(self).__name__}._is_running")

    # -- statistics ------------------------------------------------------------

    def stats(self) -> dict[str, float | int | str]:
        """What the loop has been doing, for monitoring: a new dict each call.

        The same keys on every backend:

        - ``backend`` (str): :attr:`backend_name`.
        - ``iterations`` (int): loop iterations (polls) since the loop was made.
        - ``busy_time``, ``idle_time`` (float seconds, totals while running):
          idle is the time spent waiting in the poller for something to
          happen, busy the rest (running callbacks, timers and handlers). A
          poll with a zero timeout (work was queued) does not wait: busy.
        - ``longest_iteration`` (float seconds): the longest busy stretch
          between two polls in roughly the last 10 s (5 to 10 s), 0.0 if
          the loop has not run in that time. A callback that blocks the loop
          shows here.
        - ``callbacks`` (int): callbacks, timers and fd handler calls run.
        - ``fds`` (int): file descriptors registered now (the loop's own
          internal ones not counted).
        - ``timers`` (int): timers pending now (cancelled ones not counted).
        - ``timer_lag`` (float seconds): how late the most recently run
          timer was taken up to run: the loop's clock then, minus its
          deadline (0.0 until a timer has run).

        Counting costs a clock read or two and a few counter additions per
        iteration; on the native loop nothing per callback. The native loop
        measures all of this exactly; the asyncio bridge on asyncio's own loop times its
        selector, and the uvloop bridge, which uvloop gives no hooks into,
        estimates several numbers (see ``docs/ioloop.md``, "Loop
        statistics", for what each number means on each backend). Call it
        from the loop's thread; from another thread the values are those of
        the last completed iteration.
        """
        raise NotImplementedError(f"{type(self).__name__}.stats")


def _current_asyncio_loop() -> asyncio.AbstractEventLoop:
    """``IOLoop.current().asyncio_loop``, the loop a new Future belongs to,
    on the shortest path (a Future is made for nearly every wait)."""
    loop = _current.loop
    if loop is None:
        loop = IOLoop.current()
    return loop.asyncio_loop


def _new_future() -> Future[Any]:
    """``Future()`` by the shortest path, for reactor's own code: a future
    of the current loop (see :class:`reactor.concurrent._LoopFuture`).

    With no current loop, ``Future()``'s own rule applies: a worker thread
    gets RuntimeError (``gen.sleep`` there fails as ``Future()`` does), not
    a private loop that nobody runs."""
    loop = _current.loop
    if loop is None:
        return Future()
    future: Future[Any] = _LoopFuture(loop=loop.asyncio_loop)
    return future


def _done_future() -> Future[None]:
    """The current loop's shared done future (result None).

    What ``Queue.put`` with room, ``IOStream.write`` that the kernel took at
    once, and ``gen.convert_yielded(None)`` return: a done future cannot
    change any more, so one per loop serves every caller. It is made on
    first use, not at import (that would choose a loop).
    """
    loop = _current.loop
    if loop is None:
        loop = IOLoop.current(instance=False)
        if loop is None:
            Future()  # Future()'s rule: RuntimeError in a worker thread (see _new_future)
            loop = IOLoop.current()
    done = loop._done
    if done is None:
        done = loop._done = _LoopFuture(loop=loop.asyncio_loop)
        done.set_result(None)
    return done


def _as_future(result: Any) -> Future[Any]:
    """A future for what a callback or run_sync's function returned.

    Futures pass through; None and plain values become done futures;
    anything awaitable (coroutines, asyncio futures, lists of futures...) is
    handed to :func:`reactor.gen.convert_yielded`, imported here lazily
    because gen sits above the loop.
    """
    if isinstance(result, Future):
        return result
    if result is None or not (
        isinstance(result, (concurrent.futures.Future, list, dict)) or hasattr(result, "__await__")
    ):
        future: Future[Any] = _new_future()
        future.set_result(result)
        return future
    from reactor.gen import convert_yielded

    return convert_yielded(result)


def _forked_error(loop: IOLoop, pid: int) -> RuntimeError:
    """The error of starting, in a child of fork(), a loop made in process ``pid``.

    The child shares the parent's kernel objects (an epoll or kqueue set,
    the waker's sockets): running the loop there would take events and
    wake-ups meant for the parent. Checked once per start(), not per event.
    """
    return RuntimeError(
        f"this IOLoop ({loop.backend_name}) was made in process {pid} and inherited "
        f"by fork() into process {os.getpid()}; it shares its poller and waker with "
        "the parent and cannot run here. Make a new IOLoop in the child (and leave "
        "the inherited one alone), or fork before making the loop."
    )


# A native timer is one list, both heap entry and the handle call_at returns:
#     [deadline, sequence, callback, args, context]
# Lists compare item by item, so the heap orders by deadline, then by the
# unique sequence number (ties run in the order added; the callback is
# never compared). Cancelling sets the callback to None. One list per timer,
# instead of a tuple wrapping an object, halves what the garbage collector
# tracks for a timer-heavy program.
class PollIOLoop(IOLoop):
    """reactor's native loop, over one of the pollers in :mod:`backends`.

    ``backend`` is a :class:`~reactor.backends.pollers.base.Poller` instance, a Poller class,
    or the name/spec of a native backend (None: the default native one).
    """

    def __init__(
        self,
        backend: Poller | type[Poller] | str | None = None,
        make_current: bool | None = True,
    ) -> None:
        if isinstance(backend, Poller):
            poller = backend
        else:
            cls = backends.load(backend) if not isinstance(backend, type) else backend
            if not issubclass(cls, Poller):
                raise backends.BackendError(f"{backend!r} is not a native backend")
            poller = cls()
        self._poller = poller
        self.backend_name = poller.name
        self._handlers: dict[int, tuple[Any, Callable[[Any, int], Any]]] = {}
        self._callbacks: deque[tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...]]] = (
            deque()
        )
        self._timeouts: list[list[Any]] = []
        self._cancellations = 0
        self._sequence = itertools.count()
        self._running = False
        self._stopped = False
        self._closed = False
        self._polling = False
        self._thread_ident: int | None = None
        # The process that made the loop: a child of fork() shares its poller
        # and waker with the parent, so start() refuses to run it there.
        self._pid = os.getpid()
        # While the events of one poll are dispatched: that list, and the fds
        # removed meanwhile (see remove_handler and add_handler).
        self._pending: list[tuple[int, int]] | None = None
        self._removed: set[int] = set()
        # The waker: a socket pair whose read end is always registered. A
        # write wakes a poll() from another thread, and doubles as the
        # signal wakeup fd (see start()).
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._poller.register(self._waker_r.fileno(), READ | ERROR)
        self._handlers[self._waker_r.fileno()] = (self._waker_r, self._drain_waker)
        # The asyncio face (IOLoop.asyncio_loop): a plain attribute, since
        # every new Future reads it; closed with the loop. (Not a property
        # made on first use: a cached_property would give this object a real
        # __dict__ and slow down every attribute the loop's iteration touches.)
        self.asyncio_loop: NativeAsyncioLoop = NativeAsyncioLoop(self)  # type: ignore[abstract]
        self._counters = _LoopCounters()  # see stats() and _run()
        super().__init__(make_current=make_current)

    def _wake(self) -> None:
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass  # full (a wake is pending anyway) or closed (loop is closing)

    def _drain_waker(self, sock: socket.socket, events: int) -> None:
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass

    # -- running -----------------------------------------------------------

    def _is_running(self) -> bool:
        return self._running

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("the IOLoop is closed")
        if self._running:
            raise RuntimeError("the IOLoop is already running")
        if self._pid != os.getpid():
            raise _forked_error(self, self._pid)
        if self._stopped:
            self._stopped = False
            return
        # While the loop runs, asyncio code finds it through its asyncio view
        # (reactor.asyncio_view): the running asyncio loop, and the owner of
        # the async generators first iterated meanwhile.
        from asyncio import events as asyncio_events

        view = self.asyncio_loop
        old_current = _current.loop
        _current.loop = self
        self._thread_ident = threading.get_ident()
        self._running = True
        # In the main thread, make the waker the signal wakeup fd: a signal
        # that arrives just before poll() then still wakes it, instead of
        # waiting for the poll timeout (the classic signal race).
        old_wakeup_fd: int | None = None
        if threading.current_thread() is threading.main_thread():
            try:
                old_wakeup_fd = signal.set_wakeup_fd(
                    self._waker_w.fileno(), warn_on_full_buffer=False
                )
            except ValueError:
                old_wakeup_fd = None
        old_running_loop = asyncio_events._get_running_loop()
        old_asyncgen_hooks = sys.get_asyncgen_hooks()
        asyncio_events._set_running_loop(view)
        sys.set_asyncgen_hooks(view._asyncgen_firstiter_hook, view._asyncgen_finalizer_hook)
        if view._debug:  # asyncio's debug mode: coroutines note where they were made
            view._track_coroutine_origins(True)
        try:
            self._run()
        finally:
            view._track_coroutine_origins(False)
            self._running = False
            self._stopped = False
            self._polling = False
            self._pending = None  # left in the middle of a batch (an exception)
            self._removed.clear()
            if old_wakeup_fd is not None:
                signal.set_wakeup_fd(old_wakeup_fd)
            sys.set_asyncgen_hooks(*old_asyncgen_hooks)
            asyncio_events._set_running_loop(old_running_loop)
            _current.loop = old_current

    def _run(self) -> None:
        # The hot path: locals for everything touched per event and callback.
        callbacks = self._callbacks
        popleft = callbacks.popleft
        timeouts = self._timeouts
        handlers = self._handlers
        removed = self._removed
        poll = self._poller.poll
        heappop = heapq.heappop
        handle_exception = self.handle_callback_exception
        monotonic = _monotonic
        # What stats() counts (see _LoopCounters), once per iteration: t1 is
        # when the last poll returned (the start of this busy stretch, and
        # the "now" timers are due by, as in asyncio's loop). The current
        # bucket's longest stretch and its end are mirrored in locals; only
        # this loop writes them.
        counters = self._counters
        longest = counters.longest
        bucket_end = counters.bucket_end
        t1 = monotonic()
        context: Any
        callback: Any
        args: Any
        ret: Any
        timer: Any
        entry: Any

        while True:
            # Run only the callbacks that are queued now: ones they add wait
            # for the next iteration, so a self-rescheduling callback cannot
            # starve I/O.
            ncallbacks = len(callbacks)
            due: list[list[Any]] | None = None
            if timeouts:
                # Compact first, so a heap mostly made of cancelled timers
                # is rebuilt once instead of popped one dead entry at a time.
                if (
                    self._cancellations > _COMPACT_AFTER
                    and self._cancellations > len(timeouts) >> 2
                ):
                    self._compact_timeouts()
                while timeouts:
                    timer = timeouts[0]
                    if timer[2] is None:  # cancelled: dropped lazily, here
                        heappop(timeouts)
                        self._cancellations -= 1
                    elif timer[0] <= t1:
                        heappop(timeouts)
                        if due is None:
                            due = [timer]
                        else:
                            due.append(timer)
                    else:
                        break
                if due is not None:
                    counters.timer_lag = t1 - due[-1][0]

            try:
                for _ in range(ncallbacks):
                    context, callback, args = popleft()
                    try:
                        ret = context.run(callback, *args)
                        if ret is not None:
                            self._returned(ret)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException:
                        handle_exception(callback)
                if due is not None:
                    ncallbacks += len(due)
                    for timer in due:
                        callback = timer[2]
                        if callback is None:  # removed after it was taken off the heap
                            self._cancellations -= 1
                            continue
                        timer[2] = None
                        try:
                            ret = timer[4].run(callback, *timer[3])
                            if ret is not None:
                                self._returned(ret)
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException:
                            handle_exception(callback)
                    due = None
            except BaseException:
                # Leaving start() (KeyboardInterrupt, SystemExit) with timers
                # taken off the heap but not run: put them back, so that the
                # next start() runs them. Unrun callbacks are still queued.
                if due is not None:
                    for timer in due:
                        if timer[2] is not None:
                            heapq.heappush(timeouts, timer)
                raise
            # Drop the last callback's references before a possibly long wait.
            context = callback = args = ret = timer = entry = None

            # The iteration's statistics: busy since the last poll returned,
            # and the callbacks and timers that ran (handler calls are
            # counted below, as the events are dispatched).
            t0 = monotonic()
            busy = t0 - t1
            counters.busy_time += busy
            if t0 >= bucket_end:
                counters.rotate(t0)
                longest = 0.0
                bucket_end = counters.bucket_end
            if busy > longest:
                longest = counters.longest = busy
            counters.iterations += 1
            counters.callbacks += ncallbacks

            # Publish "polling" before the last look at the queue and the
            # stop flag: another thread sets those first and then reads
            # _polling, so either we see its change or it sees us polling
            # and wakes us.
            self._polling = True
            if self._stopped:
                self._polling = False
                break
            if callbacks:
                poll_timeout: float | None = 0.0
            elif timeouts:
                poll_timeout = timeouts[0][0] - t0
                if poll_timeout < 0.0:
                    poll_timeout = 0.0
            else:
                poll_timeout = None
            try:
                events = poll(poll_timeout)
            except InterruptedError:
                # PEP 475 retries EINTR for us unless a signal handler
                # raised; a poller that surfaces it anyway just loops.
                events = []
            if poll_timeout == 0.0:
                # A poll that may not wait is not idle: its cost stays in
                # the busy stretch, and the clock is not read again.
                t1 = t0
            else:
                t1 = monotonic()
                counters.idle_time += t1 - t0
            self._polling = False
            if not events:
                continue

            # Nothing here per event but the lookup and the call: a handler
            # that removes another fd is caught by the lookup, and one that
            # then registers a new fd under the same number has the old
            # event struck out of this list by add_handler (_drop_stale).
            counters.callbacks += len(events)
            self._pending = events
            for fd, mask in events:
                entry = handlers.get(fd)
                if entry is None:  # removed by an earlier handler this iteration
                    continue
                try:
                    entry[1](entry[0], mask)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    handle_exception(entry[1])
            self._pending = None
            if removed:
                removed.clear()

    def _returned(self, ret: Any) -> None:
        """A callback returned something: watch a returned future (or
        awaitable) so that its failure is logged rather than lost."""
        if isinstance(ret, FUTURES) or hasattr(ret, "__await__"):
            self.add_future(_as_future(ret), self._discard_future_result)

    def _compact_timeouts(self) -> None:
        self._timeouts[:] = [t for t in self._timeouts if t[2] is not None]
        heapq.heapify(self._timeouts)
        self._cancellations = 0

    def stop(self) -> None:
        self._stopped = True
        if self._polling:
            self._wake()

    def close(self, all_fds: bool = False) -> None:
        if self._running:
            raise RuntimeError("cannot close a running IOLoop")
        if self._closed:
            return
        self._closed = True
        # From now on add_callback appends to a deque that keeps nothing. A
        # thread that fetched the old deque just before this line appends to
        # it after the clear() below, into a deque nobody refers to any more.
        callbacks = self._callbacks
        self._callbacks = deque(maxlen=0)
        callbacks.clear()
        view = self.asyncio_loop
        waker_fd = self._waker_r.fileno()
        self._handlers.pop(waker_fd, None)
        if all_fds:
            # What add_handler registered, not the fds asyncio code watches
            # through the view's add_reader/add_writer: their owners close them.
            for fileobj, handler in list(self._handlers.values()):
                if getattr(handler, "__self__", None) is not view:
                    self.close_fd(fileobj)
        view._detach()
        self._handlers.clear()
        self._poller.close()
        self._waker_r.close()
        self._waker_w.close()
        self._timeouts.clear()
        super().close(all_fds)

    # -- file descriptors ----------------------------------------------------

    def add_handler(self, fd: FileLike, handler: Callable[[Any, int], Any], events: int) -> None:
        fd_number, fileobj = self.split_fd(fd)
        if fd_number in self._handlers:
            raise ValueError(f"fd {fd_number} added twice")
        self._poller.register(fd_number, events | ERROR)
        self._handlers[fd_number] = (fileobj, handler)
        if fd_number in self._removed:
            self._drop_stale(fd_number)

    def update_handler(self, fd: FileLike, events: int) -> None:
        fd_number, _ = self.split_fd(fd)
        self._poller.modify(fd_number, events | ERROR)

    def remove_handler(self, fd: FileLike) -> None:
        fd_number, _ = self.split_fd(fd)
        if self._handlers.pop(fd_number, None) is None:
            return
        if self._pending is not None:
            self._removed.add(fd_number)
        try:
            self._poller.unregister(fd_number)
        except (OSError, KeyError, ValueError):
            gen_log.debug("error unregistering fd %d", fd_number, exc_info=True)

    def _drop_stale(self, fd: int) -> None:
        """``fd`` was removed and registered again while the events of one
        poll are dispatched: strike its events out of that batch. They were
        meant for the fd the number used to name (closed since, most likely),
        and must not reach the new handler, which hears of its own fd at the
        next poll. Rare, so a scan of the batch is fine."""
        self._removed.discard(fd)
        pending = self._pending
        if pending is None:
            return
        for i, event in enumerate(pending):
            if event[0] == fd:
                pending[i] = (-1, 0)  # -1 is never registered: skipped

    # -- callbacks and timers ------------------------------------------------

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        self._callbacks.append((_copy_context(), callback, args))
        if self._polling:
            self._wake()

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> object:
        if self._closed:
            raise RuntimeError("Event loop is closed")  # as asyncio's call_at, on every backend
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        timer = [when, next(self._sequence), callback, args, _copy_context()]
        heapq.heappush(self._timeouts, timer)
        return timer

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> object:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        timer = [_monotonic() + delay, next(self._sequence), callback, args, _copy_context()]
        heapq.heappush(self._timeouts, timer)
        return timer

    def stats(self) -> dict[str, float | int | str]:
        if self._closed:
            fds = timers = 0
        else:
            fds = len(self._handlers) - 1  # not the waker
            # Timers taken off the heap to run in this iteration are not pending.
            timers = len(self._timeouts) - self._cancellations
        return self._counters.as_stats(self.backend_name, _monotonic(), fds, timers)

    def remove_timeout(self, timeout: object) -> None:
        if type(timeout) is not list or len(timeout) != 5:
            raise TypeError(f"not a timer of this loop: {timeout!r}")
        if timeout[2] is not None:
            timeout[2] = None
            timeout[3] = ()
            self._cancellations += 1

    # -- for reactor.asyncio_view ---------------------------------------------

    def _add_callback_in_context(
        self, context: contextvars.Context, callback: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        """:meth:`add_callback` run in ``context`` itself, not a copy; thread-safe.

        The loop runs ``context.run(callback, *args)``, so ``callback`` must
        not enter ``context`` again.
        """
        self._callbacks.append((context, callback, args))
        if self._polling:
            self._wake()

    def _call_at_in_context(
        self,
        when: float,
        context: contextvars.Context,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> object:
        """:meth:`call_at` run in ``context`` itself, not a copy (loop thread only)."""
        timer = [when, next(self._sequence), callback, args, context]
        heapq.heappush(self._timeouts, timer)
        return timer


class PeriodicCallback:
    """Call ``callback`` every ``callback_time`` on the current loop.

    ``callback_time`` is in milliseconds, or a :class:`datetime.timedelta`.
    ``jitter`` (0 to 1) spreads each interval randomly by up to that fraction,
    so many periodic tasks do not fire in lockstep. If a run is late (the
    callback or the loop was slow), the beats it missed are skipped: the next
    run is at the next beat still in the future, never a burst to catch up.

    A callback may return an awaitable (an ``async def`` or ``gen.coroutine``
    callback does) or a :class:`concurrent.futures.Future`: the next run is
    scheduled only once that is done, so runs never overlap; a slow one makes
    the next start at the first beat after it finished. An exception, raised
    by the callback or by what it returned, is logged and the schedule goes
    on; a cancelled awaitable is not logged.
    """

    def __init__(
        self,
        callback: Callable[[], Any],
        callback_time: float | datetime.timedelta,
        jitter: float = 0,
    ) -> None:
        self.callback = callback
        if isinstance(callback_time, datetime.timedelta):
            self.callback_time = callback_time.total_seconds() * 1000
        else:
            self.callback_time = float(callback_time)
        if self.callback_time <= 0:
            raise ValueError("Periodic callback must have a positive callback_time")
        self.jitter = jitter
        self._running = False
        self._timeout: object | None = None
        self.io_loop: IOLoop | None = None
        self._next_timeout = 0.0
        self._awaiting = False  # a run's awaitable is not done yet

    def start(self) -> None:
        """Start calling; the first call is one period from now.

        If a run's awaitable is still pending (stopped and started again
        meanwhile), the next run is scheduled when it is done, not now.
        """
        self.io_loop = IOLoop.current()
        self._running = True
        self._next_timeout = self.io_loop.time()
        if not self._awaiting:
            self._schedule_next()

    def stop(self) -> None:
        """Stop calling; a pending beat is cancelled."""
        self._running = False
        if self._timeout is not None and self.io_loop is not None:
            self.io_loop.remove_timeout(self._timeout)
            self._timeout = None

    def is_running(self) -> bool:
        return self._running

    def _run(self) -> None:
        if not self._running:
            return
        try:
            result = self.callback()
            io_loop = self.io_loop
            if io_loop is not None and (
                isinstance(result, FUTURES) or hasattr(result, "__await__")
            ):
                io_loop.add_future(_as_future(result), self._awaited)
                self._awaiting = True
                return  # _awaited schedules the next run
        except Exception:
            app_log.error("Exception in callback %r", self.callback, exc_info=True)
        self._schedule_next()

    def _awaited(self, future: Future[Any]) -> None:
        self._awaiting = False
        if not future.cancelled() and future.exception() is not None:
            app_log.error("Exception in callback %r", self.callback, exc_info=future.exception())
        self._schedule_next()

    def _schedule_next(self) -> None:
        if not self._running or self.io_loop is None:
            return
        period = self.callback_time / 1000.0
        if self.jitter:
            period *= 1 + self.jitter * (random.random() - 0.5)
        now = self.io_loop.time()
        self._next_timeout += period
        if self._next_timeout <= now:
            # Late: skip the missed beats, land on the next one ahead.
            missed = math.floor((now - self._next_timeout) / period) + 1
            self._next_timeout += missed * period
        self._timeout = self.io_loop.call_at(self._next_timeout, self._run)


class _Watchdog:
    """Logs the loop thread's stack when the loop stops beating for too long."""

    def __init__(self, loop: IOLoop, threshold: float) -> None:
        self.loop = loop
        self.threshold = threshold
        self.period = threshold / 2
        self.last_beat = _monotonic()
        self.reported_beat = -1.0
        self.loop_thread: int | None = None
        self.handle: object | None = None
        self._stop = threading.Event()
        self.loop.add_callback(self.beat)
        self._thread = threading.Thread(target=self._watch, name="reactor-watchdog", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        if self._stop.is_set():
            return
        self.last_beat = _monotonic()
        self.loop_thread = threading.get_ident()
        self.handle = self.loop.call_later(self.period, self.beat)

    def _watch(self) -> None:
        while not self._stop.wait(self.period / 2):
            now = _monotonic()
            if not self.loop._is_running():
                self.last_beat = now  # not running is not blocked
                continue
            late = now - self.last_beat - self.period
            if late < self.threshold or self.reported_beat == self.last_beat:
                continue
            self.reported_beat = self.last_beat
            frame = sys._current_frames().get(self.loop_thread or -1)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)"
            gen_log.warning(
                "IOLoop blocked for %.3f seconds (threshold %.3f) in\n%s",
                late,
                self.threshold,
                stack,
            )

    def shutdown(self) -> None:
        self._stop.set()
        if self.handle is not None:
            self.loop.remove_timeout(self.handle)
