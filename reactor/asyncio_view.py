"""asyncio's face of a native loop: unchanged asyncio code on select/poll/epoll/kqueue.

While a :class:`~reactor.ioloop.PollIOLoop` runs, ``asyncio.get_running_loop()``
returns its :class:`NativeAsyncioLoop`: an :class:`asyncio.AbstractEventLoop`
whose callbacks, timers and fd watches are the native loop's own. Tasks,
futures, ``asyncio.sleep``, ``wait_for``, ``timeout``, queues and locks then
run on the native loop, interleaved with reactor callbacks in one queue.

How it maps onto the native loop (see ``reactor/ioloop.py``):

- A handle is an :class:`asyncio.Handle` subclass that is itself the callable
  the native loop runs: ``call_soon`` appends ``(handle's context, handle,
  ())`` straight onto the loop's callback deque, and the loop runs it as
  ``context.run(handle)``. The handle does not enter its context again (a
  :class:`contextvars.Context` cannot be entered twice at once); it skips
  itself if cancelled and reports an exception to
  :meth:`~NativeAsyncioLoop.call_exception_handler`.
- Callbacks nobody can hold a handle to are queued as they are, with no
  handle: a C :class:`asyncio.Task`'s own step and wake-up, and reactor's
  own future callbacks (:class:`_DirectCallback`). asyncio's C code
  schedules these with ``call_soon`` and drops what it returns. This is the
  path of every ``await`` of a pending future and every task step, so it
  is kept short.
- A timer is an :class:`asyncio.TimerHandle` subclass pushed onto the native
  timer heap in its context; ``cancel()`` removes it there with
  :meth:`PollIOLoop.remove_timeout <reactor.ioloop.PollIOLoop.remove_timeout>`
  (lazy deletion with compaction: cancelled timers do not pile up).
- Readers and writers share one native fd handler per fd; the handler runs
  the reader on ``READ``, the writer on ``WRITE``, and both on ``ERROR``.
- Transports, servers, TLS, pipes and subprocesses are the standard
  library's own (asyncio's selector transports, ``sslproto``, the unix pipe
  and subprocess transports, :class:`asyncio.Server`), driven through those
  readers and writers; the methods that make them are borrowed from
  :class:`asyncio.SelectorEventLoop` (:mod:`reactor._asyncio_transports`).
- A signal handler is a Python-level handler that queues its handle on the
  native loop, which the loop's waker (the signal wakeup fd) wakes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import errno
import functools
import inspect
import os
import signal
import socket
import sys
import threading
import traceback
import types
import warnings
import weakref
from asyncio import constants as asyncio_constants
from asyncio.log import logger as asyncio_logger
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from reactor._asyncio_transports import SelectorView, StdlibTransports
from reactor.backends.pollers.base import ERROR, READ, WRITE
from reactor.log import app_log

if TYPE_CHECKING:
    from typing import TypeAlias

    from _typeshed import FileDescriptorLike, ReadableBuffer, WriteableBuffer
    from typing_extensions import TypeVarTuple, Unpack

    from reactor.ioloop import PollIOLoop

    _Ts = TypeVarTuple("_Ts")
    _Address: TypeAlias = tuple[Any, ...] | str | ReadableBuffer
    _ExceptionHandler: TypeAlias = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]

_T = TypeVar("_T")

_copy_context = contextvars.copy_context


def _debug_from_environment() -> bool:
    """asyncio's default for debug mode: ``-X dev`` or ``PYTHONASYNCIODEBUG``."""
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _task_step_type() -> type | None:
    """The type of the callable a C :class:`asyncio.Task` schedules for its
    next step (``TaskStepMethWrapper`` on CPython 3.11), or None if unknown.

    Found by letting a task schedule its first step on a stand-in loop that
    only records what it is given; the task never runs.
    """

    class StandIn:
        step: Any = None

        def get_debug(self) -> bool:
            return False

        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> None:
            self.step = callback

    async def nothing() -> None:
        pass

    stand_in = StandIn()
    coro = nothing()
    try:
        task = asyncio.Task(coro, loop=stand_in)  # type: ignore[arg-type]
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - not CPython's C tasks
        return None
    finally:
        coro.close()
    kind = type(stand_in.step)
    stand_in.step = None
    # Only a type that is not also a plain function, method or builtin can
    # tell a task's step from any other callback.
    if kind in (types.FunctionType, types.MethodType, types.BuiltinMethodType):
        return None  # pragma: no cover
    return kind


_TASK_STEP = _task_step_type()
_BUILTIN = types.BuiltinMethodType


class _DirectCallback(functools.partial):  # type: ignore[type-arg]
    """``fn`` as a future's done-callback that a native loop's asyncio face
    queues without an asyncio handle (on any other loop, just ``fn``).

    For reactor's own callbacks on futures (the ``gen.coroutine`` Runner,
    :meth:`IOLoop.add_future <reactor.ioloop.IOLoop.add_future>`): a future
    schedules its callbacks with ``loop.call_soon(fn, future, context=...)``
    and drops the handle, so nobody can cancel one, and queueing ``fn``
    itself saves making and running a handle. The one difference: if ``fn``
    raises, the error goes to :meth:`IOLoop.handle_callback_exception
    <reactor.ioloop.IOLoop.handle_callback_exception>`, as for any loop
    callback, not to the asyncio exception handler.
    """

    __slots__ = ()


class _Handle(asyncio.Handle):
    """A handle the native loop calls directly, as ``context.run(handle)``."""

    __slots__ = ()

    # Declared for the type checker; the slots are asyncio.Handle's.
    _callback: Callable[..., object]
    _context: contextvars.Context
    _loop: NativeAsyncioLoop
    _source_traceback: Any
    _repr: str | None

    def __call__(self) -> None:
        if self._cancelled:
            return
        try:
            self._callback(*self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop._callback_failed(self, exc)


class _TimerHandle(asyncio.TimerHandle):
    """A timer handle that is its own callback on the native timer heap.

    ``_timeout`` is the native heap entry, for ``cancel()``.
    """

    __slots__ = ("_timeout",)

    _callback: Callable[..., object]
    _context: contextvars.Context
    _loop: NativeAsyncioLoop
    _source_traceback: Any
    _scheduled: bool
    _timeout: object

    def __call__(self) -> None:
        self._scheduled = False
        if self._cancelled:
            return
        try:
            self._callback(*self._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop._callback_failed(self, exc)


def _run_timed(handle: _Handle | _TimerHandle) -> None:
    """Run ``handle``'s callback and warn on asyncio's logger if it took at
    least the loop's ``slow_callback_duration`` (debug mode, as asyncio)."""
    loop = handle._loop
    started = loop.time()
    try:
        handle._callback(*handle._args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop._callback_failed(handle, exc)
    took = loop.time() - started
    if took >= loop.slow_callback_duration:
        asyncio_logger.warning("Executing %s took %.3f seconds", _format_handle(handle), took)


def _format_handle(handle: asyncio.Handle) -> str:
    """A task's repr for a task's step, else the handle's."""
    owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    if isinstance(owner, asyncio.Task):
        return repr(owner)
    return str(handle)


class _DebugHandle(_Handle):
    """A :class:`_Handle` of debug mode: it times its callback."""

    __slots__ = ()

    def __call__(self) -> None:
        if not self._cancelled:
            _run_timed(self)


class _DebugTimerHandle(_TimerHandle):
    """A :class:`_TimerHandle` of debug mode: it times its callback."""

    __slots__ = ()

    def __call__(self) -> None:
        self._scheduled = False
        if not self._cancelled:
            _run_timed(self)


_new_handle = object.__new__


def _noop() -> None:
    pass


def _fd_number(fileobj: FileDescriptorLike) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"invalid file descriptor: {fd}")
    return fd


class NativeAsyncioLoop(StdlibTransports, asyncio.AbstractEventLoop):
    """The asyncio event loop interface over a running :class:`~reactor.ioloop.PollIOLoop`.

    There is one per native loop, made with it (``PollIOLoop.asyncio_loop``,
    the loop that reactor futures made for the native loop belong to), and
    it is the running asyncio loop for as long as :meth:`PollIOLoop.start
    <reactor.ioloop.PollIOLoop.start>` runs; asyncio code finds it with
    ``asyncio.get_running_loop()`` and never needs to know it is not
    asyncio's own loop.

    It is the whole :class:`asyncio.AbstractEventLoop`, with asyncio's
    semantics:

    - callbacks and timers: ``call_soon`` (loop thread only, as in asyncio),
      ``call_soon_threadsafe`` (wakes a loop blocked in poll), ``call_later``,
      ``call_at``, all with ``context=``; handles' ``cancel()``; ``time()``,
      the native loop's clock;
    - futures and tasks: ``create_future``, ``create_task`` (``name=``,
      ``context=``), ``set_task_factory``/``get_task_factory``, and so
      everything built on them (``sleep``, ``gather``, ``wait_for``,
      ``timeout``, ``Queue``, ``Event``, ``Lock``, ``Condition``...);
    - file descriptors: ``add_reader``/``remove_reader``,
      ``add_writer``/``remove_writer`` (RuntimeError for an fd a transport
      owns), and on non-blocking sockets ``sock_recv``, ``sock_recv_into``,
      ``sock_sendall``, ``sock_connect`` (resolving host names),
      ``sock_accept``, ``sock_recvfrom``, ``sock_recvfrom_into``,
      ``sock_sendto`` and ``sock_sendfile``;
    - transports and servers, borrowed from :class:`asyncio.SelectorEventLoop`
      with the standard library's own transports (see
      :mod:`reactor._asyncio_transports` for what is borrowed and why):
      ``create_connection`` (``ssl``, ``server_hostname``, happy eyeballs,
      ``sock=``, ``local_addr``), ``create_server`` and
      :class:`asyncio.Server`, so ``asyncio.start_server`` /
      ``open_connection`` streams, ``create_unix_connection`` /
      ``create_unix_server``, ``create_datagram_endpoint``,
      ``connect_accepted_socket``, ``connect_read_pipe`` /
      ``connect_write_pipe``, ``start_tls``, ``sendfile``, and
      ``subprocess_exec`` / ``subprocess_shell`` (so
      ``asyncio.create_subprocess_exec`` works, with the event loop
      policy's child watcher);
    - signals: ``add_signal_handler`` / ``remove_signal_handler`` (main
      thread only, as in asyncio), on the native loop's own signal
      machinery: its waker is the signal wakeup fd, shared with
      :meth:`IOLoop.add_callback_from_signal
      <reactor.ioloop.IOLoop.add_callback_from_signal>`;
    - threads: ``run_in_executor`` (the view's own default thread pool, not
      the IOLoop's), ``set_default_executor``, ``shutdown_default_executor``,
      ``getaddrinfo``, ``getnameinfo``;
    - errors: ``call_exception_handler``, ``set_exception_handler``,
      ``get_exception_handler``, ``default_exception_handler`` (which logs
      to ``reactor.application``, not to the ``asyncio`` logger);
    - debug mode (``set_debug``, ``PYTHONASYNCIODEBUG``, ``-X dev``): as in
      asyncio, ``call_soon``/``call_at`` from another thread raise
      RuntimeError, coroutines given as callbacks raise TypeError, handles
      record where they were made, coroutines record where they were
      created while the loop runs (so "was never awaited" says where), and
      a callback that runs for ``slow_callback_duration`` (0.1 s) or more
      is logged as a warning on the ``asyncio`` logger ("Executing ...
      took ... seconds");
    - the rest of the loop's life: ``is_running``, ``is_closed``,
      ``shutdown_asyncgens`` (async generators are tracked while the loop
      runs), and ``run_forever``, ``run_until_complete``, ``stop`` and
      ``close``, which run, stop and close the native loop itself (closing
      also puts back the default handler of each signal it handled).

    The differences: the native loop runs a ready fd's reader or writer as
    soon as its poll reports it, not at the next turn of a ready queue (the
    order among callbacks, timers and I/O of one iteration is the native
    loop's, see :class:`~reactor.ioloop.PollIOLoop`); ``_selector`` is only
    what a transport's ``repr()`` reads (:class:`SelectorView
    <reactor._asyncio_transports.SelectorView>`), not a selector.
    """

    def __init__(self, io_loop: PollIOLoop) -> None:
        self._io_loop = io_loop
        # The hot path of call_soon: the native loop's callback deque.
        self._append = io_loop._callbacks.append
        self._closed = False
        self._debug = _debug_from_environment()
        self._exception_handler: _ExceptionHandler | None = None
        self._task_factory: Any = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._readers: dict[int, _Handle] = {}
        self._writers: dict[int, _Handle] = {}
        self._fd_events: dict[int, int] = {}  # the events registered with the native loop
        # What call_soon returns for the callbacks it queues without a handle.
        self._unused_handle = _Handle(_noop, (), self, None)
        # For the borrowed stdlib code (reactor._asyncio_transports): the
        # transports by fd, a selector's get_key for their repr, and 3.13's
        # unix server socket files.
        self._transports: weakref.WeakValueDictionary[int, asyncio.BaseTransport] = (
            weakref.WeakValueDictionary()
        )
        self._selector = SelectorView(self)
        self._unix_server_sockets: dict[Any, Any] = {}
        self._signal_handlers: dict[int, _Handle] = {}
        # Debug mode: callbacks that take longer are logged (as asyncio does).
        self.slow_callback_duration = 0.1
        self._origin_tracking_depth: int | None = None  # saved while tracking

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} on {self._io_loop.backend_name} "
            f"running={self.is_running()} closed={self._closed} debug={self._debug}>"
        )

    # -- running and closing -------------------------------------------------

    def is_running(self) -> bool:
        return self._io_loop._running

    def is_closed(self) -> bool:
        return self._closed

    def run_forever(self) -> None:
        """Run the native loop until :meth:`stop`."""
        self._check_closed()
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio.events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")
        self._io_loop.start()

    def run_until_complete(self, future: Generator[Any, None, _T] | Awaitable[_T]) -> _T:
        """Run the native loop until ``future`` (or coroutine) is done."""
        self._check_closed()
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        # (A plain generator is refused by ensure_future, as in asyncio.)
        waited = asyncio.ensure_future(cast("Awaitable[_T]", future), loop=self)

        def stop(_: object) -> None:
            self.stop()

        waited.add_done_callback(stop)
        try:
            self.run_forever()
        finally:
            waited.remove_done_callback(stop)
        if not waited.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return waited.result()

    def stop(self) -> None:
        self._io_loop.stop()

    def close(self) -> None:
        """Close the native loop (and with it this view)."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        self._io_loop.close()

    def _detach(self) -> None:
        """Called by the native loop's close(): the view is closed for good."""
        self._closed = True
        self._remove_signal_handlers()
        # Let go of the native loop's old callback deque (close() replaced it
        # with one that keeps nothing), so what a racing thread appends to
        # the old one is freed with it.
        self._append = self._io_loop._callbacks.append
        self._readers.clear()
        self._writers.clear()
        self._fd_events.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        self._default_executor = None
        if executor is not None:
            executor.shutdown(wait=False)

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_call(self, callback: Callable[..., object], method: str) -> None:
        """The checks of call_soon & co.: closed always, the rest in debug mode."""
        self._check_closed()
        if not self._debug:
            return
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")
        if method in ("call_soon", "call_at"):
            owner = self._io_loop._thread_ident
            if self.is_running() and owner is not None and owner != threading.get_ident():
                raise RuntimeError(
                    "Non-thread-safe operation invoked on an event loop other than the current one"
                )

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*(agen.aclose() for agen in closing), return_exceptions=True)
        for agen, result in zip(closing, results, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"error while closing asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        """Installed by PollIOLoop.start() with :func:`sys.set_asyncgen_hooks`."""
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} started after shutdown_asyncgens()",
                ResourceWarning,
                source=self,
                stacklevel=2,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        # May run in any thread (garbage collection): close it on the loop.
        self._asyncgens.discard(agen)
        if not self._closed:
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    # -- callbacks and timers ------------------------------------------------

    def time(self) -> float:
        return self._io_loop.time()

    def call_soon(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        if self._closed or self._debug:
            self._check_call(callback, "call_soon")
            # In debug mode: notes its origin, and times its callback.
            handle: _Handle = _DebugHandle(callback, args, self, context)
        elif context is not None and (
            type(callback) is _TASK_STEP
            or (type(callback) is _BUILTIN and callback.__name__ == "task_wakeup")
            or type(callback) is _DirectCallback
        ):
            # The hot path (every task step, every wake-up of a task or a
            # gen.coroutine from a future): a C task's own step or wake-up,
            # or one of reactor's own future callbacks. asyncio's C code
            # schedules these and drops the handle, so nobody can cancel
            # them; the first two never raise into the loop, and a
            # _DirectCallback's error goes to the native loop's handler.
            self._append((context, callback, args))
            return self._unused_handle  # (an asyncio.Handle, as promised)
        else:
            # What asyncio.Handle.__init__ does, without its frame and its
            # get_debug() call.
            if context is None:
                context = _copy_context()
            handle = _new_handle(_Handle)
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._loop = self
            handle._source_traceback = None
            handle._repr = None
            handle._context = context
        self._append((handle._context, handle, ()))
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._check_call(callback, "call_soon_threadsafe")
        handle = (_DebugHandle if self._debug else _Handle)(callback, args, self, context)
        self._io_loop._add_callback_in_context(handle._context, handle, ())
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: Unpack[_Ts],
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when must not be None")
        self._check_call(callback, "call_at")
        kind = _DebugTimerHandle if self._debug else _TimerHandle
        handle = kind(when, callback, args, self, context)
        handle._timeout = self._io_loop._call_at_in_context(when, handle._context, handle, ())
        handle._scheduled = True
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Called by ``TimerHandle.cancel()``: drop the timer from the native heap."""
        timeout = getattr(handle, "_timeout", None)
        if timeout is not None:
            self._io_loop.remove_timeout(timeout)

    # -- futures and tasks ---------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Generator[Any, None, _T] | Coroutine[Any, Any, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        self._check_closed()
        if self._task_factory is not None:
            if context is None:
                task = self._task_factory(self, coro)
            else:
                task = self._task_factory(self, coro, context=context)
            if name is not None:
                task.set_name(name)
            return task  # type: ignore[no-any-return]
        if context is None:
            return asyncio.Task(coro, loop=self, name=name)
        if sys.version_info >= (3, 11):
            return asyncio.Task(coro, loop=self, name=name, context=context)
        raise TypeError("create_task(context=...) needs Python 3.11")  # pragma: no cover

    def set_task_factory(self, factory: Any) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # -- errors --------------------------------------------------------------

    def get_exception_handler(self) -> _ExceptionHandler | None:
        return self._exception_handler

    def set_exception_handler(self, handler: _ExceptionHandler | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"a callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log ``context`` as an error on ``reactor.application``."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key in ("source_traceback", "handle_traceback"):
                where = "Object created at" if key == "source_traceback" else "Handle created at"
                stack = "".join(traceback.format_list(value)).rstrip()
                lines.append(f"{where} (most recent call last):\n{stack}")
            else:
                lines.append(f"{key}: {value!r}")
        if exception is not None:
            exc_info: Any = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        app_log.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # Logging itself failed (a broken handler or formatter).
                app_log.error("Exception in the default exception handler", exc_info=True)
            return
        try:
            handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in the exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                app_log.error(
                    "Exception in the default exception handler while handling an "
                    "error in the custom exception handler",
                    exc_info=True,
                )

    def _callback_failed(self, handle: asyncio.Handle, exc: BaseException) -> None:
        context: dict[str, Any] = {
            "message": f"Exception in callback {handle!r}",
            "exception": exc,
            "handle": handle,
        }
        source = getattr(handle, "_source_traceback", None)
        if source:
            context["source_traceback"] = source
        self.call_exception_handler(context)

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self.is_running():
            # Tracking is per thread: the loop's thread turns it on or off.
            if self._io_loop._thread_ident == threading.get_ident():
                self._track_coroutine_origins(enabled)
            else:
                self.call_soon_threadsafe(self._track_coroutine_origins, enabled)

    def _track_coroutine_origins(self, enabled: bool) -> None:
        """What asyncio's debug mode does while the loop runs: coroutines
        record where they were made, so that "coroutine ... was never
        awaited" says where. Called by PollIOLoop.start (True in debug mode,
        then False when it returns) and by set_debug while running."""
        if enabled == (self._origin_tracking_depth is not None):
            return
        if enabled:
            self._origin_tracking_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(asyncio_constants.DEBUG_STACK_DEPTH)
        else:
            assert self._origin_tracking_depth is not None
            sys.set_coroutine_origin_tracking_depth(self._origin_tracking_depth)
            self._origin_tracking_depth = None

    # -- file descriptors ----------------------------------------------------

    # The public four refuse an fd a transport owns (RuntimeError, as in
    # asyncio); the private four are what the stdlib transports call.

    def add_reader(
        self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], Any], *args: Unpack[_Ts]
    ) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_watch(self._readers, fd, callback, args)

    def add_writer(
        self, fd: FileDescriptorLike, callback: Callable[[Unpack[_Ts]], Any], *args: Unpack[_Ts]
    ) -> None:
        self._ensure_fd_no_transport(fd)
        self._add_watch(self._writers, fd, callback, args)

    def remove_reader(self, fd: FileDescriptorLike) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_watch(self._readers, _fd_number(fd))

    def remove_writer(self, fd: FileDescriptorLike) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_watch(self._writers, _fd_number(fd))

    def _add_reader(
        self, fd: FileDescriptorLike, callback: Callable[..., Any], *args: Any
    ) -> _Handle:
        return self._add_watch(self._readers, fd, callback, args)

    def _add_writer(
        self, fd: FileDescriptorLike, callback: Callable[..., Any], *args: Any
    ) -> _Handle:
        return self._add_watch(self._writers, fd, callback, args)

    def _remove_reader(self, fd: FileDescriptorLike) -> bool:
        return self._remove_watch(self._readers, _fd_number(fd))

    def _remove_writer(self, fd: FileDescriptorLike) -> bool:
        return self._remove_watch(self._writers, _fd_number(fd))

    def _add_watch(
        self,
        watches: dict[int, _Handle],
        fileobj: FileDescriptorLike,
        callback: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> _Handle:
        self._check_call(callback, "add_reader" if watches is self._readers else "add_writer")
        fd = _fd_number(fileobj)
        handle = (_DebugHandle if self._debug else _Handle)(callback, args, self, None)
        old = watches.get(fd)
        watches[fd] = handle
        if old is not None:
            old.cancel()
            return handle
        try:
            self._update_fd(fd)
        except BaseException:
            del watches[fd]  # e.g. the fd has a reactor handler already
            raise
        return handle

    def _remove_watch(self, watches: dict[int, _Handle], fd: int) -> bool:
        if self._closed:
            return False
        handle = watches.pop(fd, None)
        if handle is None:
            return False
        handle.cancel()
        self._update_fd(fd)
        return True

    def _update_fd(self, fd: int) -> None:
        """Make the native registration of ``fd`` match its reader and writer."""
        events = (READ if fd in self._readers else 0) | (WRITE if fd in self._writers else 0)
        registered = self._fd_events.get(fd)
        if events == registered:
            return
        io_loop = self._io_loop
        if not events:
            del self._fd_events[fd]
            io_loop.remove_handler(fd)
            return
        if registered is None:
            io_loop.add_handler(fd, self._on_fd_events, events)
        else:
            io_loop.update_handler(fd, events)
        self._fd_events[fd] = events

    def _on_fd_events(self, fd: int, events: int) -> None:
        # Called by the native loop outside any context, so each handle can
        # enter its own. ERROR (a failure or hang-up) wakes both sides: the
        # read or write they do then reports what happened.
        if events & (READ | ERROR):
            handle = self._readers.get(fd)
            if handle is not None:
                handle._context.run(handle)
        if events & (WRITE | ERROR):
            handle = self._writers.get(fd)
            if handle is not None:
                handle._context.run(handle)

    # -- sockets -------------------------------------------------------------

    def _check_socket(self, sock: socket.socket) -> None:
        try:
            import ssl
        except ImportError:  # pragma: no cover - Python built without ssl
            pass
        else:
            if isinstance(sock, ssl.SSLSocket):
                raise TypeError("Socket cannot be of type SSLSocket")
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def _when_ready(
        self, sock: socket.socket, writing: bool, attempt: Callable[[], _T]
    ) -> _T:
        """Call ``attempt()`` each time ``sock`` is readable (or writable) and
        return its result; while it raises :exc:`BlockingIOError` (or
        :exc:`InterruptedError`) it is tried again at the next readiness."""
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        watches = self._writers if writing else self._readers
        future: asyncio.Future[_T] = self.create_future()
        handle = self._add_watch(watches, fd, self._attempt, (future, attempt))
        try:
            return await future
        finally:
            # Also on cancellation, before the caller can close the socket.
            if watches.get(fd) is handle:
                self._remove_watch(watches, fd)

    @staticmethod
    def _attempt(future: asyncio.Future[_T], attempt: Callable[[], _T]) -> None:
        if future.done():
            return
        try:
            result = attempt()
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        self._check_socket(sock)
        try:
            return sock.recv(nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, False, lambda: sock.recv(nbytes))

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        self._check_socket(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, False, lambda: sock.recv_into(buf))

    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        self._check_socket(sock)
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            try:
                sent = sock.send(octets)
            except (BlockingIOError, InterruptedError):
                pass
            if sent == len(octets):
                return

            def send_more() -> None:
                nonlocal sent
                sent += sock.send(octets[sent:])
                if sent < len(octets):
                    raise BlockingIOError  # not finished: wait to be writable again

            await self._when_ready(sock, True, send_more)

    async def sock_connect(self, sock: socket.socket, address: _Address) -> None:
        self._check_socket(sock)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            address = await self._resolve(sock, address)
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass

        def connected() -> None:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                raise BlockingIOError
            if err:
                raise OSError(err, f"Connect call failed {address!r}: {os.strerror(err)}")

        await self._when_ready(sock, True, connected)

    async def _resolve(self, sock: socket.socket, address: tuple[Any, ...]) -> tuple[Any, ...]:
        """``address`` with its host resolved for ``sock``, unless it is numeric."""
        host, port = address[0], address[1]
        try:
            socket.inet_pton(sock.family, host)
            return address  # numeric already: no lookup
        except (OSError, TypeError, ValueError):
            pass
        infos = await self.getaddrinfo(
            host, port, family=sock.family, type=sock.type, proto=sock.proto
        )
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned an empty list")
        return tuple(infos[0][4])

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        self._check_socket(sock)

        def accept() -> tuple[socket.socket, Any]:
            conn, address = sock.accept()
            conn.setblocking(False)
            return conn, address

        try:
            return accept()
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, False, accept)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        self._check_socket(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, False, lambda: sock.recvfrom(bufsize))

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: WriteableBuffer, nbytes: int = 0
    ) -> tuple[int, Any]:
        self._check_socket(sock)
        if not nbytes:
            nbytes = memoryview(buf).nbytes
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, False, lambda: sock.recvfrom_into(buf, nbytes))

    async def sock_sendto(
        self, sock: socket.socket, data: ReadableBuffer, address: _Address
    ) -> int:
        self._check_socket(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._when_ready(sock, True, lambda: sock.sendto(data, address))

    # -- signals -------------------------------------------------------------

    # The native loop's own signal machinery: while it runs in the main
    # thread its waker is the signal wakeup fd (PollIOLoop.start), so a
    # signal wakes its poll whatever thread the kernel delivered it to.
    # Python then runs the signal's Python-level handler in the main thread;
    # for an asyncio handler that handler only queues the callback's handle
    # on the native loop, as add_callback_from_signal queues a callback. So
    # both kinds work side by side, on one wakeup fd, and an asyncio handler
    # runs from the loop, never inside the interrupted code.

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts]
    ) -> None:
        """Run ``callback(*args)`` on the loop each time signal ``sig`` arrives.

        As in asyncio: main thread only (RuntimeError elsewhere), one handler
        per signal (a new one replaces the old), TypeError for a coroutine,
        ValueError for an invalid signal number, RuntimeError for one that
        cannot be caught (SIGKILL, SIGSTOP). Interrupted system calls are
        restarted (``siginterrupt(sig, False)``).
        """
        if asyncio.iscoroutine(callback) or inspect.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("add_signal_handler() only works in the main thread")
        handle = (_DebugHandle if self._debug else _Handle)(callback, args, self, None)
        old = self._signal_handlers.get(sig)
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, self._signal_received)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            if old is None:
                del self._signal_handlers[sig]
            else:
                self._signal_handlers[sig] = old
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        if old is not None:
            old.cancel()

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of ``sig``, restoring the default disposition
        (for SIGINT, :func:`signal.default_int_handler`); False if it had none."""
        self._check_signal(sig)
        handle = self._signal_handlers.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        return True

    @staticmethod
    def _check_signal(sig: int) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _signal_received(self, sig: int, frame: types.FrameType | None) -> None:
        # The Python-level handler: runs in the main thread between two
        # bytecodes of whatever runs there, so it only queues.
        handle = self._signal_handlers.get(sig)
        if handle is not None and not self._closed:
            self._io_loop._add_callback_in_context(handle._context, handle, ())

    def _remove_signal_handlers(self) -> None:
        """At close: every signal back to its default (main thread only)."""
        if not self._signal_handlers:
            return
        if threading.current_thread() is not threading.main_thread() or sys.is_finalizing():
            self._signal_handlers.clear()
            return
        for sig in list(self._signal_handlers):
            self.remove_signal_handler(sig)

    # -- threads -------------------------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[_Ts]], _T],
        *args: Unpack[_Ts],
    ) -> asyncio.Future[_T]:
        self._check_call(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if self._default_executor is None:
                self._default_executor = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="reactor-asyncio"
                )
            executor = self._default_executor
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be a ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down, waiting for its threads (at most
        ``timeout`` seconds, as on Python 3.12+) in another thread."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
            finally:
                try:
                    self.call_soon_threadsafe(_set_result_unless_done, done)
                except RuntimeError:
                    pass  # the loop closed meanwhile

        thread = threading.Thread(target=shut_down, name="reactor-asyncio-shutdown")
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            warnings.warn(
                f"the default executor did not finish joining its threads within {timeout} seconds",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    async def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, Any, int, str, Any]]:
        return await self.run_in_executor(
            None, socket.getaddrinfo, host, port, family, type, proto, flags
        )

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)


def _set_result_unless_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
