"""Coroutines: ``gen.coroutine`` generators, ``async def``, and their tools.

Two kinds of coroutine run on every backend:

- **Generator coroutines** (``@gen.coroutine`` with ``yield``) are driven by
  :class:`Runner`: it resumes the generator in a loop, without recursion,
  for as long as each yielded future is already done, and only registers
  with the loop when one is not.
- **Native coroutines** (``async def``) run as asyncio tasks on the loop's
  asyncio face: the real asyncio loop on the ``asyncio``/``uvloop``
  backends, and :mod:`reactor.asyncio_view` on the native ones. That is
  what makes ``asyncio.sleep``, ``asyncio.wait_for``, ``asyncio.Queue`` and
  ``asyncio.current_task()`` work inside them on any backend.

Either kind can wait for the other, for reactor and asyncio futures,
:class:`concurrent.futures.Future`, and lists and dicts of any of those
(:func:`convert_yielded` says exactly what). Context variables follow the
coroutine: each one runs in a copy of the context it was called in.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import concurrent.futures
import contextvars
import datetime
import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple, TypeVar, Union

from reactor.asyncio_view import _DirectCallback
from reactor.concurrent import (
    AnyFuture,
    Future,
    _future_cancel,
    _OperationFuture,
    copy_future_state,
    future_add_done_callback,
    future_set_exception_unless_cancelled,
    future_set_result_unless_cancelled,
    is_future,
)
from reactor.ioloop import IOLoop, _current, _done_future, _new_future
from reactor.log import app_log

__all__ = [
    "Arguments",
    "BadYieldError",
    "KeyReuseError",
    "LeakedCallbackError",
    "Return",
    "ReturnValueIgnoredError",
    "Runner",
    "Task",
    "TimeoutError",
    "UnknownKeyError",
    "WaitIterator",
    "convert_yielded",
    "coroutine",
    "is_coroutine_function",
    "maybe_future",
    "moment",
    "multi",
    "multi_future",
    "sleep",
    "with_timeout",
]

_T = TypeVar("_T")

TimeoutError = builtins.TimeoutError
"""Raised by :func:`with_timeout` and ``IOLoop.run_sync``: the builtin one,
which is also what asyncio raises since Python 3.11."""


class KeyReuseError(Exception):
    """Kept for Tornado's API: raised by nothing since callback-style ``gen.Task`` keys went."""


class UnknownKeyError(Exception):
    """Kept for Tornado's API: raised by nothing since callback-style ``gen.Task`` keys went."""


class LeakedCallbackError(Exception):
    """Kept for Tornado's API: raised by nothing since callback-style ``gen.Task`` keys went."""


class ReturnValueIgnoredError(Exception):
    """Kept for Tornado's API: raised by nothing in Tornado 6 or reactor."""


class BadYieldError(Exception):
    """A coroutine yielded (or awaited) something that cannot be waited for."""


class Return(Exception):
    """``raise gen.Return(value)``: a generator coroutine's return value.

    Only needed where ``return value`` cannot be used (Python 2-era code);
    in Python 3 generators ``return value`` does the same.
    """

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.value = value


class _Moment:
    """``yield gen.moment`` / ``await gen.moment``: let the loop run once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield None  # a bare yield: asyncio tasks and the Runner both resume next iteration

    def __repr__(self) -> str:
        return "gen.moment"


moment = _Moment()
"""Yield or await this to let the loop run one iteration (other callbacks,
I/O) before the coroutine continues; ``await asyncio.sleep(0)`` does the same."""

_YieldType = Union[
    None, Awaitable[Any], list[Any], dict[Any, Any], "concurrent.futures.Future[Any]"
]


def _return_value(e: BaseException) -> Any:
    return e.value if isinstance(e, (StopIteration, Return)) else None


# -- gen.coroutine and its Runner ----------------------------------------------


def coroutine(func: Callable[..., Any]) -> Callable[..., Future[Any]]:
    """Decorate a generator function into a coroutine that returns a Future.

    The first step runs at once, in the caller's turn (so an error before the
    first ``yield`` is already in the returned future); later steps run when
    what was yielded is done. A plain (non-generator) function's result or
    exception goes straight into the future. The function and all its steps
    run in a copy of the caller's :mod:`contextvars` context.

    Cancelling the returned future cancels the coroutine, as cancelling an
    asyncio task does: what it waits for is cancelled, so
    :class:`asyncio.CancelledError` is raised at its ``yield``, and the
    future is cancelled once the generator has let it propagate (it may
    catch it and return a value instead). A coroutine that raises
    ``CancelledError`` ends cancelled.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = _new_operation_future()
        ctx_run = contextvars.copy_context().run
        try:
            result = ctx_run(func, *args, **kwargs)
        except (Return, StopIteration) as e:
            future.set_result(_return_value(e))
            return future
        except Exception as e:
            future.set_exception(e)
            return future
        except asyncio.CancelledError:
            _future_cancel(future)
            return future
        if isinstance(result, types.GeneratorType):
            try:
                yielded = ctx_run(next, result)
            except (Return, StopIteration) as e:
                future.set_result(_return_value(e))
            except Exception as e:
                future.set_exception(e)
            except asyncio.CancelledError:
                _future_cancel(future)
            else:
                Runner(ctx_run, result, future, yielded)
            return future
        if inspect.iscoroutine(result):
            return convert_yielded(result)
        future.set_result(result)
        return future

    wrapper.__reactor_coroutine__ = True  # type: ignore[attr-defined]
    return wrapper


def _new_operation_future() -> Future[Any]:
    """A future of the current loop that stands for an operation (see
    :class:`reactor.concurrent._OperationFuture`); ``_new_future()``'s path."""
    loop = _current.loop
    # No current loop: Future()'s rule (RuntimeError in a worker thread).
    aloop = Future().get_loop() if loop is None else loop.asyncio_loop
    future: Future[Any] = _OperationFuture(loop=aloop)
    return future


def is_coroutine_function(func: Any) -> bool:
    """True for ``gen.coroutine`` functions and ``async def`` functions."""
    return bool(getattr(func, "__reactor_coroutine__", False)) or inspect.iscoroutinefunction(func)


class Runner:
    """Drives a generator coroutine to completion (see the module docstring).

    The generator is resumed in a loop while the futures it yields are
    already done, so a long run of ready futures costs no loop iterations
    and no stack depth; a pending future gets one done-callback that calls
    :meth:`run` again. Everything the Runner does runs inside the
    coroutine's context (``ctx_run``): the generator's steps, and the
    conversion of what it yields, so a native coroutine it yields starts as
    a task in a copy of that context and sees the variables set before the
    ``yield``.

    :meth:`cancel` is what cancelling the coroutine's future does.
    """

    __slots__ = ("ctx", "ctx_run", "future", "gen", "result_future", "running", "wake")

    def __init__(
        self,
        ctx_run: Callable[..., Any],
        gen: Generator[Any, Any, Any],
        result_future: Future[Any],
        first_yielded: Any,
    ) -> None:
        self.ctx_run = ctx_run
        # The context itself, so that a done-callback runs straight in it.
        ctx = getattr(ctx_run, "__self__", None)
        self.ctx: contextvars.Context | None = ctx if isinstance(ctx, contextvars.Context) else None
        self.gen = gen
        self.result_future: Future[Any] | None = result_future
        self.future: Any = None
        self.running = False
        self.wake: Callable[[Any], None] | None = None  # self.run, as a future's callback
        if isinstance(result_future, _OperationFuture):
            # Its cancel() comes here; and the Runner lives as long as its future.
            result_future._operation = self
        ctx_run(self._start, first_yielded)

    def _start(self, first_yielded: Any) -> None:
        if self.handle_yield(first_yielded):
            self.run()

    def _wake_in_context(self, _: Any = None) -> None:
        self.ctx_run(self.run)

    def run(self, _: Any = None) -> None:
        """Resume the generator until it yields a pending future or ends.

        Called in the coroutine's context.
        """
        if self.running or self.result_future is None:
            return
        self.running = True
        try:
            while True:
                future = self.future
                if future is not moment and not future.done():
                    return
                self.future = None
                try:
                    try:
                        # (moment: resumed after ``yield gen.moment`` or ``yield None``)
                        value = None if future is moment else future.result()
                    except BaseException as e:
                        yielded = self.gen.throw(e)
                    else:
                        yielded = self.gen.send(value)
                except (StopIteration, Return) as e:
                    future_set_result_unless_cancelled(self.result_future, _return_value(e))
                    self.result_future = None
                    return
                except Exception as e:
                    future_set_exception_unless_cancelled(self.result_future, e)
                    self.result_future = None
                    return
                except asyncio.CancelledError:
                    _future_cancel(self.result_future)
                    self.result_future = None
                    return
                if not self.handle_yield(yielded):
                    return
        finally:
            self.running = False

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the coroutine, as ``asyncio.Task.cancel`` does.

        What it waits for is cancelled, so it resumes with
        :class:`asyncio.CancelledError`; if that cannot be cancelled (done
        already, or it refuses), the coroutine resumes with the
        ``CancelledError`` all the same, at once. False if it has finished.
        """
        if self.result_future is None or self.result_future.done():
            return False
        if self.running:
            # Cancelled by its own step: cancel what it waits for next.
            IOLoop.current().add_callback(self.ctx_run, self.cancel, msg)
            return True
        waiting = self.future
        if waiting is not moment and not waiting.done() and waiting.cancel(msg):
            return True  # it wakes up with CancelledError
        cancelled: Future[Any] = _new_future()
        _future_cancel(cancelled, msg)
        self.future = cancelled
        if waiting is not moment and not waiting.done():
            IOLoop.current().add_callback(self.ctx_run, self.run)
        # else: a wake-up is already on its way, and will find ``cancelled``
        return True

    def handle_exception(
        self, typ: type[BaseException], value: BaseException, tb: types.TracebackType | None
    ) -> bool:
        """Throw ``value`` into the generator at its ``yield``, as if what it
        waits for had failed; True if done, False if the coroutine is running
        or has finished (then nothing happens). Tornado's hook, kept for code
        that drives a Runner by hand.
        """
        if self.running or self.result_future is None:
            return False
        failed: Future[Any] = _new_future()
        failed.set_exception(value.with_traceback(tb) if tb is not None else value)
        self.future = failed
        self.ctx_run(self.run)
        return True

    def handle_yield(self, yielded: Any) -> bool:
        """Adopt what the generator yielded; True if it is ready now.

        Called in the coroutine's context.
        """
        if yielded is None or yielded is moment:
            # Resume on the next iteration, letting everything else run first.
            self.future = moment
            IOLoop.current().add_callback(self.ctx_run, self.run)
            return False
        try:
            self.future = convert_yielded(yielded)
        except BadYieldError as e:
            self.future = _new_future()
            self.future.set_exception(e)
            return True
        if self.future.done():
            return True
        if self.wake is None:
            if self.ctx is not None:
                self.wake = _DirectCallback(self.run)
            else:
                self.wake = _DirectCallback(self._wake_in_context)
        self.future.add_done_callback(self.wake, context=self.ctx)
        return False


# -- converting what coroutines wait for ---------------------------------------


def convert_yielded(yielded: _YieldType) -> Future[Any]:
    """A reactor :class:`~reactor.concurrent.Future` for anything waitable.

    - reactor futures: returned as they are;
    - None and :data:`moment`: a done future;
    - lists and dicts: :func:`multi` of their items;
    - :class:`concurrent.futures.Future`: completed on the loop's thread;
    - asyncio futures and tasks: followed;
    - coroutines and other awaitables: started as an asyncio task on the
      current loop's asyncio face (in a copy of the current context).

    Cancelling the future made for an asyncio future or task, or for a
    coroutine, cancels that (``task.cancel()``): the coroutine gets
    :class:`asyncio.CancelledError` where it waits, and the future is
    cancelled when the task is (it takes the task's result if the
    coroutine handled the cancellation and returned).

    Anything else raises :class:`BadYieldError` naming the object.
    """
    if isinstance(yielded, Future):
        return yielded
    if yielded is None or yielded is moment:
        return _done_future()
    if isinstance(yielded, (list, dict)):
        return multi_future(yielded)
    if isinstance(yielded, concurrent.futures.Future):
        future: Future[Any] = _new_future()
        IOLoop.current().add_future(yielded, lambda c: copy_future_state(c, future))
        return future
    if asyncio.isfuture(yielded):
        return _follow(yielded)
    if inspect.isawaitable(yielded):
        return _follow(_asyncio_loop().create_task(_as_coroutine(yielded)))
    raise BadYieldError(f"yielded unknown object {yielded!r}")


def _follow(operation: asyncio.Future[Any]) -> Future[Any]:
    """A reactor future for an asyncio future or task: it takes the outcome,
    and cancelling it cancels ``operation``."""
    future = _new_operation_future()
    future._operation = operation  # type: ignore[attr-defined]
    operation.add_done_callback(_DirectCallback(copy_future_state, dest=future))
    return future


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    """The asyncio face of the current loop (see the module docstring)."""
    return IOLoop.current().asyncio_loop


def _as_coroutine(awaitable: Awaitable[_T]) -> Any:
    if inspect.iscoroutine(awaitable):
        return awaitable

    async def wrapped() -> _T:
        return await awaitable

    return wrapped()


def maybe_future(x: Any) -> AnyFuture[Any]:
    """``x`` if it is a future (:func:`~reactor.concurrent.is_future`: a
    reactor, asyncio or :mod:`concurrent.futures` one), else a future
    already resolved to ``x``.

    Prefer :func:`convert_yielded`, which also handles awaitables.
    """
    if is_future(x):
        return x  # type: ignore[no-any-return]
    future: Future[Any] = _new_future()
    future.set_result(x)
    return future


# -- waiting for several things -------------------------------------------------


def multi(
    children: list[Any] | dict[Any, Any],
    quiet_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> Future[Any]:
    """Wait for every child; the result is a list (or dict) in the same order.

    ``yield [a, b]`` and ``yield {"x": a}`` in a coroutine do this. When all
    children are done: if any failed, the result fails with the error of the
    first failed child in the input's order, and the other children's errors
    are logged unless they are instances of ``quiet_exceptions``. A cancelled
    child counts as failed with :class:`asyncio.CancelledError` (never
    logged). Cancelling the returned future does not cancel the children
    (``asyncio.gather`` would).
    """
    return multi_future(children, quiet_exceptions=quiet_exceptions)


Multi = multi
"""Tornado's old name for :func:`multi`."""


def multi_future(
    children: list[Any] | dict[Any, Any],
    quiet_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> Future[Any]:
    """:func:`multi`, for children that are futures or convertible to them."""
    keys: list[Any] | None
    if isinstance(children, dict):
        keys = list(children.keys())
        futures = [convert_yielded(v) for v in children.values()]
    else:
        keys = None
        futures = [convert_yielded(v) for v in children]
    result: Future[Any] = _new_future()
    unfinished = {id(f) for f in futures if not f.done()}

    def finish() -> None:
        values = []
        for f in futures:
            try:
                values.append(f.result())
            except BaseException as e:
                if result.done():
                    # (a cancelled child is an error like any other, as in
                    # asyncio.gather, but only the first one is reported)
                    if not isinstance(e, (asyncio.CancelledError, quiet_exceptions)):
                        app_log.error("Multiple exceptions in yield list", exc_info=e)
                else:
                    future_set_exception_unless_cancelled(result, e)
        if not result.done():
            result.set_result(dict(zip(keys, values, strict=True)) if keys is not None else values)

    def on_child_done(f: Future[Any]) -> None:
        unfinished.discard(id(f))
        if not unfinished:
            finish()

    if not unfinished:
        finish()
    else:
        for f in futures:
            if not f.done():
                f.add_done_callback(on_child_done)
    return result


def with_timeout(
    timeout: float | datetime.timedelta,
    future: _YieldType,
    quiet_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
    *,
    message: str | Callable[[], str] | None = None,
) -> Future[Any]:
    """Wrap ``future`` so it fails with :class:`TimeoutError` at ``timeout``.

    ``timeout`` is a deadline on :meth:`IOLoop.time` or a timedelta from now.
    The wrapped operation is not cancelled; if it fails after the timeout,
    its error is logged unless it is an instance of ``quiet_exceptions`` (or
    a cancellation). ``message`` is the TimeoutError's text (default
    ``"Timeout"``), or a function returning it, called only at the timeout.
    """
    inner = convert_yielded(future)
    result: Future[Any] = _new_future()
    io_loop = IOLoop.current()

    def log_late_failure(f: Future[Any]) -> None:
        if f.cancelled():
            return
        exc = f.exception()
        if exc is not None and not isinstance(exc, quiet_exceptions):
            app_log.error("Exception in Future %r after timeout", f, exc_info=exc)

    def on_timeout() -> None:
        if not result.done():
            text = message() if callable(message) else message
            result.set_exception(TimeoutError("Timeout" if text is None else text))
        future_add_done_callback(inner, log_late_failure)

    handle = io_loop.add_timeout(timeout, on_timeout)

    def on_inner_done(f: Future[Any]) -> None:
        io_loop.remove_timeout(handle)
        if not result.done():
            copy_future_state(f, result)

    future_add_done_callback(inner, on_inner_done)
    return result


def sleep(duration: float) -> Future[None]:
    """A future that resolves after ``duration`` seconds (``yield``/``await`` it)."""
    future: Future[None] = _new_future()
    IOLoop.current().call_later(duration, future_set_result_unless_cancelled, future, None)
    return future


class WaitIterator:
    """Iterate over futures in the order they finish.

    ``WaitIterator(f1, f2)`` or ``WaitIterator(name1=f1, name2=f2)``::

        it = gen.WaitIterator(a, b)
        while not it.done():
            try:
                result = yield it.next()
            except Exception as e:
                print("failed", it.current_index, e)
            else:
                print("finished", it.current_index, result)

    or ``async for result in gen.WaitIterator(a, b):`` (an error ends the
    ``async for`` by raising it). :attr:`current_index` is the position (or
    keyword) of the future just returned, :attr:`current_future` the future.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("You must provide args or kwargs, not both")
        if kwargs:
            self._keys: dict[int, Any] = {}
            children = []
            for key, value in kwargs.items():
                future = convert_yielded(value)
                self._keys[id(future)] = key
                children.append(future)
        else:
            children = [convert_yielded(a) for a in args]
            self._keys = {id(f): i for i, f in enumerate(children)}
        self._unfinished = len(children)
        self._finished: collections.deque[Future[Any]] = collections.deque()
        self._running_future: Future[Any] | None = None
        self.current_index: Any = None
        self.current_future: Future[Any] | None = None
        for future in children:
            future_add_done_callback(future, self._done_callback)

    def done(self) -> bool:
        """True once every future has been returned by :meth:`next`."""
        if self._finished or self._unfinished:
            return False
        self.current_index = self.current_future = None
        return True

    def next(self) -> Future[Any]:
        """A future for the next input future to finish (its outcome)."""
        self._running_future = _new_future()
        if self._finished:
            self._return_result(self._finished.popleft())
        return self._running_future

    def _done_callback(self, done: Future[Any]) -> None:
        self._unfinished -= 1
        if self._running_future is not None and not self._running_future.done():
            self._return_result(done)
        else:
            self._finished.append(done)

    def _return_result(self, done: Future[Any]) -> None:
        assert self._running_future is not None
        copy_future_state(done, self._running_future)
        self.current_future = done
        self.current_index = self._keys[id(done)]

    def __aiter__(self) -> WaitIterator:
        return self

    def __anext__(self) -> Future[Any]:
        if self.done():
            raise StopAsyncIteration
        return self.next()


# -- old callback-style code ----------------------------------------------------


class Arguments(NamedTuple):
    """What a callback got when it was called with more than one argument."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def Task(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    """Call ``func(*args, callback=..., **kwargs)`` and return a future for
    what it passes to the callback -- the bridge from callback-style APIs.

    One positional argument becomes the result; none becomes None; anything
    else an :class:`Arguments` tuple. A synchronous exception fails the future.
    """
    future: Future[Any] = _new_future()

    def callback(*cb_args: Any, **cb_kwargs: Any) -> None:
        if future.done():
            return
        if cb_kwargs or len(cb_args) > 1:
            future.set_result(Arguments(cb_args, cb_kwargs))
        elif cb_args:
            future.set_result(cb_args[0])
        else:
            future.set_result(None)

    try:
        func(*args, callback=callback, **kwargs)
    except Exception as e:
        future_set_exception_unless_cancelled(future, e)
    return future
