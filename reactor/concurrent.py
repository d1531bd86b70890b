"""Futures: reactor's :class:`Future`, and the bridges to :mod:`concurrent.futures`.

:class:`Future` is :class:`asyncio.Future` (the C implementation), bound to
a loop's asyncio face: the real asyncio loop on the ``asyncio``/``uvloop``
backends, the :class:`~reactor.asyncio_view.NativeAsyncioLoop` of a native
loop otherwise. So awaiting one, and an asyncio task's wake-up when it
completes, run in C. Done-callbacks never run inside ``set_result``; the
future's loop schedules them (``loop.call_soon(callback, future,
context=...)``), or at once, through the loop, when added to a done future.
A future belongs to its loop's thread; other threads hand results over with
:meth:`IOLoop.add_future <reactor.ioloop.IOLoop.add_future>` or
:meth:`IOLoop.add_callback <reactor.ioloop.IOLoop.add_callback>`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Union

from reactor.log import app_log

if TYPE_CHECKING:
    from reactor.ioloop import IOLoop

_T = TypeVar("_T")


CancelledError = asyncio.CancelledError
"""Raised by ``result()`` and ``exception()`` of a cancelled future: asyncio's
own (a BaseException), so that an asyncio task awaiting a cancelled reactor
future is cancelled too, and ``asyncio.wait_for`` sees its own exception."""

InvalidStateError = asyncio.InvalidStateError
"""The future is not in a state that allows the call (e.g. set twice):
asyncio's, which is what :class:`Future`'s C methods raise."""

_future_init = asyncio.Future.__init__
_future_set_exception = asyncio.Future.set_exception
_future_cancel = asyncio.Future.cancel


# reactor.ioloop imports this module, so what this module needs of it is
# bound at first use: ``_loop`` is IOLoop.current, ``_current_asyncio_loop``
# is IOLoop.current().asyncio_loop, each on its shortest path.


def _bind_ioloop() -> None:
    global _loop, _current_asyncio_loop, _future_asyncio_loop
    from reactor.ioloop import IOLoop, _current
    from reactor.ioloop import _current_asyncio_loop as current_asyncio_loop

    _loop = IOLoop.current
    _current_asyncio_loop = current_asyncio_loop
    main_thread = threading.main_thread()

    def future_asyncio_loop() -> asyncio.AbstractEventLoop:
        loop = _current.loop
        if loop is None:
            loop = IOLoop.current(instance=False)  # the thread's running asyncio loop's
            if loop is None:
                if threading.current_thread() is not main_thread:
                    raise RuntimeError(
                        "There is no current event loop in thread "
                        f"{threading.current_thread().name!r}: make the Future on "
                        "its loop's thread, or pass loop="
                    )
                loop = IOLoop.current()
        return loop.asyncio_loop

    _future_asyncio_loop = future_asyncio_loop


def _first_loop() -> IOLoop:
    _bind_ioloop()
    return _loop()


def _first_asyncio_loop() -> asyncio.AbstractEventLoop:
    _bind_ioloop()
    return _current_asyncio_loop()


def _first_future_asyncio_loop() -> asyncio.AbstractEventLoop:
    _bind_ioloop()
    return _future_asyncio_loop()


_loop: Callable[[], IOLoop] = _first_loop
_current_asyncio_loop: Callable[[], asyncio.AbstractEventLoop] = _first_asyncio_loop
_future_asyncio_loop: Callable[[], asyncio.AbstractEventLoop] = _first_future_asyncio_loop


class Future(asyncio.Future[_T]):
    """The result of an asynchronous operation, available later.

    ``await future`` (or ``yield future`` in a ``gen.coroutine``) waits for it.
    An :class:`asyncio.Future` in every respect (``done``, ``result``,
    ``exception``, ``add_done_callback`` with ``context=``,
    ``remove_done_callback``, ``set_result``, ``set_exception``, ``cancel``,
    ``get_loop``), plus :meth:`exc_info`, :meth:`set_exc_info` and
    :meth:`running`. Not thread-safe: complete it on its loop's thread.

    Without ``loop`` it belongs to the current loop's asyncio face,
    ``IOLoop.current().asyncio_loop`` (the running loop's, while one runs),
    and that is where its done-callbacks run and which asyncio tasks may
    await it. In the main thread with no current loop it belongs to
    :meth:`IOLoop.instance <reactor.ioloop.IOLoop.instance>`; in another
    thread with no current loop, ``Future()`` raises :class:`RuntimeError`
    (as ``asyncio.Future()`` does there) rather than make a loop nobody
    runs. So make futures on the loop's thread, as reactor's own code does;
    a worker thread hands its result over with :meth:`IOLoop.add_callback
    <reactor.ioloop.IOLoop.add_callback>`, or returns a
    :class:`concurrent.futures.Future`.

    A failed future whose exception nobody retrieved is logged when it is
    garbage-collected: through its loop's exception handler if one was set
    (``loop.set_exception_handler``), else as an error on
    ``reactor.application``, on every backend.
    """

    __slots__ = ()

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is None:
            loop = _future_asyncio_loop()
        _future_init(self, loop=loop)

    def running(self) -> bool:
        """False: reactor futures have no running state (concurrent.futures' API)."""
        return False

    def exc_info(
        self,
    ) -> tuple[type[BaseException], BaseException, types.TracebackType | None] | None:
        """The exception as a ``sys.exc_info()`` triple, or None if it succeeded."""
        exc = self.exception()
        return None if exc is None else (type(exc), exc, exc.__traceback__)

    def set_exception(self, exception: type | BaseException) -> None:
        _future_set_exception(self, exception)
        failed = _FAILED_CLASS.get(type(self))
        if failed is not None:
            # Only a failed future can log on garbage collection, so only a
            # failed one pays for a __del__ (see _FailedFuture).
            self.__class__ = failed

    def set_exc_info(
        self,
        exc_info: tuple[Any, BaseException | None, types.TracebackType | None],
    ) -> None:
        """Fail with the exception of a ``sys.exc_info()`` triple."""
        exc = exc_info[1]
        if exc is None:
            raise ValueError("exc_info has no exception")
        self.set_exception(exc)


class _FailedFuture(Future[Any]):
    """What a :class:`Future` becomes when ``set_exception`` fails it.

    The same object, only with a ``__del__`` that reports the exception if
    nobody retrieved it (``result()`` or ``exception()`` disarm it, as in
    asyncio). asyncio's C future would report it to its loop's exception
    handler, whose default on a real asyncio loop logs to the ``asyncio``
    logger; this one uses reactor's logging unless the loop has a handler of
    its own. Successful futures have no ``__del__`` at all, so they pay
    nothing for this. It also replaces asyncio's finalizer, so the exception
    is reported once.
    """

    __slots__ = ()

    def __del__(self) -> None:
        if not self._log_traceback:
            return
        self._log_traceback = False
        exc = self._exception
        context: dict[str, Any] = {
            "message": "Future exception was never retrieved",
            "exception": exc,
            "future": self,
        }
        source = getattr(self, "_source_traceback", None)  # made in asyncio's debug mode
        if source:
            context["source_traceback"] = source
        loop = self._loop
        if loop.get_exception_handler() is not None:
            loop.call_exception_handler(context)
            return
        assert exc is not None
        app_log.error(
            "Future exception was never retrieved\nfuture: %r",
            self,
            exc_info=(type(exc), exc, exc.__traceback__),
        )


_FailedFuture.__name__ = "Future"  # asyncio's repr names the class: still a Future


class _LoopFuture(Future[_T]):
    """A :class:`Future` made by asyncio's own C ``__init__``: ``loop`` is required.

    ``Future()`` finds its loop in Python, and that frame and its keyword
    call cost about as much again as the C future itself. reactor's own
    code makes its futures with :func:`reactor.ioloop._new_future`, which
    passes the current loop to this class. It is the same kind of future in
    every other respect (``isinstance(f, Future)``, its repr, its failure).
    """

    __slots__ = ()
    __init__ = asyncio.Future.__init__  # so tp_init is asyncio's C function


_LoopFuture.__name__ = "Future"


class _OperationFuture(_LoopFuture[_T]):
    """The :class:`Future` of an operation that can be cancelled: a
    ``gen.coroutine``'s, or what :func:`reactor.gen.convert_yielded` makes
    for a native coroutine or an asyncio future or task.

    ``cancel()`` cancels the operation, as ``asyncio.Task.cancel`` does: it
    asks the operation (``_operation``, anything with ``cancel(msg)``) to
    cancel and returns what that says; the future is cancelled when the
    operation ends cancelled (and takes its result if the operation handled
    the cancellation and returned). Without an operation it is a plain
    future. Whoever completes it on the operation's behalf cancels it with
    ``asyncio.Future.cancel`` (``copy_future_state`` does).
    """

    __slots__ = ("_operation",)

    _operation: Any

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        try:
            operation = self._operation
        except AttributeError:
            return _future_cancel(self, msg)
        return bool(operation.cancel(msg))


_OperationFuture.__name__ = "Future"


class _FailedOperationFuture(_OperationFuture[Any]):
    """What an :class:`_OperationFuture` becomes when it fails (see _FailedFuture)."""

    __slots__ = ()
    __del__ = _FailedFuture.__del__


_FailedOperationFuture.__name__ = "Future"

_FAILED_CLASS: dict[type, type] = {
    Future: _FailedFuture,
    _LoopFuture: _FailedFuture,
    _OperationFuture: _FailedOperationFuture,
}


FUTURES = (asyncio.Future, concurrent.futures.Future)
"""The future types reactor's loop accepts (``isinstance(x, FUTURES)``): any
asyncio future (reactor's :class:`Future` is one) and
:class:`concurrent.futures.Future`, as in Tornado."""

AnyFuture = Union[Future[_T], "concurrent.futures.Future[_T]", "asyncio.Future[_T]"]


def is_future(x: Any) -> bool:
    """True for reactor, asyncio and :mod:`concurrent.futures` futures."""
    return isinstance(x, FUTURES)


def future_set_result_unless_cancelled(future: AnyFuture[_T], value: _T) -> None:
    """Set the result unless the future was cancelled (then drop the value)."""
    if not future.cancelled():
        future.set_result(value)


def future_set_exception_unless_cancelled(future: AnyFuture[Any], exc: BaseException) -> None:
    """Set the exception unless the future was cancelled (then drop it)."""
    if not future.cancelled():
        future.set_exception(exc)


def future_set_exc_info(
    future: AnyFuture[Any],
    exc_info: tuple[Any, BaseException | None, types.TracebackType | None],
) -> None:
    """Fail ``future`` with a ``sys.exc_info()`` triple, unless cancelled."""
    if exc_info[1] is None:
        raise ValueError("exc_info has no exception")
    future_set_exception_unless_cancelled(future, exc_info[1])


def future_add_done_callback(future: AnyFuture[_T], callback: Callable[[Any], Any]) -> None:
    """Call ``callback(future)`` when done: *immediately* if it is done already.

    Unlike ``add_done_callback`` this does not go through the loop for a done
    future, which saves a loop iteration where the caller knows it is safe.
    """
    if future.done():
        callback(future)
    else:
        future.add_done_callback(callback)


def copy_future_state(source: AnyFuture[_T], dest: AnyFuture[_T]) -> None:
    """Give ``dest`` the outcome of the done future ``source``, unless ``dest``
    is done already (cancelled, typically)."""
    if dest.done():
        return
    if source.cancelled():
        if isinstance(dest, Future):
            _future_cancel(dest)  # itself, not the operation it may stand for
        else:
            dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(exc)
    else:
        dest.set_result(source.result())


def chain_future(a: AnyFuture[_T], b: AnyFuture[_T]) -> None:
    """When ``a`` completes, copy its outcome to ``b`` (unless ``b`` is done).

    ``a`` may be a :class:`concurrent.futures.Future` completing on another
    thread; the copy then happens on the current loop's thread.
    """
    if isinstance(a, Future):
        future_add_done_callback(a, lambda a: copy_future_state(a, b))
    elif isinstance(a, concurrent.futures.Future):
        _loop().add_future(a, lambda a: copy_future_state(a, b))
    else:  # an asyncio future: its callbacks run on its own loop
        a.add_done_callback(lambda a: copy_future_state(a, b))


class ReturnValueIgnoredError(Exception):
    """Kept for Tornado compatibility: nothing in reactor raises it (as in Tornado 6)."""


class DummyExecutor(concurrent.futures.Executor):
    """An executor that runs each job at once, in the caller's thread.

    ``submit`` calls the function before it returns and gives a finished
    :class:`concurrent.futures.Future` with its result or its error. Useful
    where an API wants an executor but the work is cheap (Tornado's
    ``ExecutorResolver`` default); it blocks the loop for as long as the
    job runs.
    """

    def submit(
        self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            future.set_exception(e)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass  # nothing runs in the background


dummy_executor = DummyExecutor()
"""The shared :class:`DummyExecutor`."""


def run_on_executor(*args: Any, **kwargs: Any) -> Any:
    """Run a method in an executor and return a reactor future for its result.

    ``@run_on_executor`` uses ``self.executor``; ``@run_on_executor(executor=
    "_pool")`` names another attribute. The future completes on the loop of
    the thread that called the method (its current loop at call time)::

        class Worker:
            executor = ThreadPoolExecutor(4)

            @run_on_executor
            def checksum(self, path): ...  # runs in the pool

            async def handle(self, path):
                return await self.checksum(path)
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Future[Any]]:
        executor_name = kwargs.get("executor", "executor")

        @functools.wraps(fn)
        def wrapper(self: Any, *call_args: Any, **call_kwargs: Any) -> Future[Any]:
            c_future = getattr(self, executor_name).submit(fn, self, *call_args, **call_kwargs)
            future: Future[Any] = Future()
            _loop().add_future(c_future, lambda c: copy_future_state(c, future))
            return future

        return wrapper

    if args and kwargs:
        raise ValueError("run_on_executor takes a function or keyword arguments, not both")
    if len(args) == 1:
        return decorate(args[0])
    if args:
        raise ValueError(f"run_on_executor takes one function, got {len(args)} arguments")
    return decorate
