"""Futures: reactor's own, and the bridges to :mod:`concurrent.futures`.

:class:`Future` is a single-threaded placeholder for a result, with
asyncio's semantics: done-callbacks never run inside ``set_result``; they are
scheduled on the current :class:`~reactor.ioloop.IOLoop` when the future
completes (or at once, through the loop, when added to a done future). A
future belongs to the thread of the loop that completes it; other threads
hand results over with :meth:`IOLoop.add_future
<reactor.ioloop.IOLoop.add_future>` or :meth:`IOLoop.add_callback
<reactor.ioloop.IOLoop.add_callback>`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import types
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

if TYPE_CHECKING:
    from reactor.ioloop import IOLoop

_T = TypeVar("_T")

_PENDING = 0
_CANCELLED = 1
_FINISHED = 2


CancelledError = asyncio.CancelledError
"""Raised by ``result()`` and ``exception()`` of a cancelled future: asyncio's
own (a BaseException), so that an asyncio task awaiting a cancelled reactor
future is cancelled too, and ``asyncio.wait_for`` sees its own exception."""


class InvalidStateError(concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
    """The future is not in a state that allows the call (e.g. set twice)."""


_copy_context = contextvars.copy_context
_current_loop: Callable[[], IOLoop] | None = None


def _loop() -> IOLoop:
    global _current_loop
    if _current_loop is None:
        from reactor.ioloop import IOLoop

        _current_loop = IOLoop.current
    return _current_loop()


class Future(Generic[_T]):
    """The result of an asynchronous operation, available later.

    ``await future`` (or ``yield future`` in a ``gen.coroutine``) waits for it.
    Not thread-safe: complete it on its loop's thread.
    """

    __slots__ = (
        "__weakref__",
        "_asyncio_future_blocking",
        "_callbacks",
        "_exception",
        "_result",
        "_state",
        "_tb_logger",
    )

    def __init__(self) -> None:
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        # (callback, context) pairs; None once the future is done.
        self._callbacks: list[tuple[Callable[[Future[_T]], Any], contextvars.Context]] | None = []
        # asyncio's duck-typing protocol: a Task that awaits an object with
        # this attribute (and get_loop / add_done_callback) suspends on it,
        # so reactor futures are awaitable from asyncio tasks.
        self._asyncio_future_blocking = False
        self._tb_logger: _TracebackLogger | None = None

    def __repr__(self) -> str:
        if self._state == _PENDING:
            state = "pending"
        elif self._state == _CANCELLED:
            state = "cancelled"
        elif self._exception is not None:
            state = f"exception={self._exception!r}"
        else:
            state = f"result={self._result!r}"
        return f"<{type(self).__name__} {state}>"

    def done(self) -> bool:
        """True once a result, an exception or a cancellation was set."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def running(self) -> bool:
        """False: reactor futures have no running state (concurrent.futures' API)."""
        return False

    def result(self, timeout: None = None) -> _T:
        """The result; raises the exception, :class:`CancelledError`, or
        :class:`InvalidStateError` if the future is not done yet.

        ``timeout`` exists for :mod:`concurrent.futures` compatibility and must
        be None: a reactor future cannot be waited on by blocking.
        """
        if self._state == _FINISHED:
            if self._exception is not None:
                self._retrieved()
                raise self._exception.with_traceback(self._exception.__traceback__)
            return self._result  # type: ignore[no-any-return]
        if self._state == _CANCELLED:
            raise CancelledError()
        raise InvalidStateError("the result is not ready yet")

    def exception(self, timeout: None = None) -> BaseException | None:
        """The exception the future failed with, or None if it succeeded."""
        if self._state == _FINISHED:
            self._retrieved()
            return self._exception
        if self._state == _CANCELLED:
            raise CancelledError()
        raise InvalidStateError("the exception is not set yet")

    def exc_info(
        self,
    ) -> tuple[type[BaseException], BaseException, types.TracebackType | None] | None:
        exc = self.exception()
        return None if exc is None else (type(exc), exc, exc.__traceback__)

    def add_done_callback(
        self, fn: Callable[[Future[_T]], Any], *, context: contextvars.Context | None = None
    ) -> None:
        """Call ``fn(future)`` on the current loop once the future is done.

        ``fn`` runs in ``context`` (a :mod:`contextvars` context), by default
        a copy of the caller's, as asyncio does.
        """
        if context is None:
            context = _copy_context()
        if self._callbacks is None:
            _loop()._add_callback_in_context(context, fn, (self,))
        else:
            self._callbacks.append((fn, context))

    def get_loop(self) -> Any:
        """The running asyncio loop, for asyncio tasks awaiting this future."""
        return asyncio.get_running_loop()

    def remove_done_callback(self, fn: Callable[[Future[_T]], Any]) -> int:
        """Remove every registration of ``fn``; return how many there were."""
        if not self._callbacks:
            return 0
        kept = [entry for entry in self._callbacks if entry[0] != fn]
        removed = len(self._callbacks) - len(kept)
        self._callbacks[:] = kept
        return removed

    def set_result(self, result: _T) -> None:
        if self._state != _PENDING:
            raise InvalidStateError(f"{self!r} is already done")
        self._result = result
        self._state = _FINISHED
        self._schedule_callbacks()

    def set_exception(self, exception: BaseException | type[BaseException]) -> None:
        if self._state != _PENDING:
            raise InvalidStateError(f"{self!r} is already done")
        if isinstance(exception, type):
            exception = exception()
        if isinstance(exception, StopIteration):
            raise TypeError("StopIteration cannot be raised into a Future")
        self._exception = exception
        self._state = _FINISHED
        self._tb_logger = _TracebackLogger(self, exception)
        self._schedule_callbacks()

    def set_exc_info(
        self,
        exc_info: tuple[Any, BaseException | None, types.TracebackType | None],
    ) -> None:
        """Fail with the exception of a ``sys.exc_info()`` triple."""
        exc = exc_info[1]
        if exc is None:
            raise ValueError("exc_info has no exception")
        self.set_exception(exc)

    def cancel(self, msg: Any = None) -> bool:
        """Cancel a pending future; returns False if it was already done."""
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._schedule_callbacks()
        return True

    def _retrieved(self) -> None:
        if self._tb_logger is not None:
            self._tb_logger.exception = None
            self._tb_logger = None

    def _schedule_callbacks(self) -> None:
        callbacks = self._callbacks
        self._callbacks = None
        if callbacks:
            schedule = _loop()._add_callback_in_context
            args = (self,)
            for fn, context in callbacks:
                schedule(context, fn, args)

    def __await__(self) -> Generator[Any, None, _T]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
        if self._exception is None and self._state == _FINISHED:
            return self._result  # type: ignore[no-any-return]
        return self.result()

    __iter__ = __await__


class _TracebackLogger:
    """Logs a failed future's exception if the future dies unretrieved.

    A separate little object, made only when a future fails, so that
    successful futures pay nothing for it (no ``__del__`` on Future itself).
    Calling ``result()`` or ``exception()`` disarms it.
    """

    __slots__ = ("description", "exception")

    def __init__(self, future: Future[Any], exception: BaseException) -> None:
        self.exception: BaseException | None = exception
        self.description = type(future).__name__

    def __del__(self) -> None:
        exc = self.exception
        if exc is not None:
            from reactor.log import app_log

            app_log.error(
                "%s exception was never retrieved: %r",
                self.description,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )


FUTURES = (Future, concurrent.futures.Future)
"""The future types reactor's loop accepts (``isinstance(x, FUTURES)``)."""

AnyFuture = Union[Future[_T], "concurrent.futures.Future[_T]", "asyncio.Future[_T]"]


def is_future(x: Any) -> bool:
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
