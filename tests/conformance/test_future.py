"""reactor.concurrent.Future on every backend: states, callbacks, helpers."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest

from reactor.concurrent import (
    CancelledError,
    Future,
    InvalidStateError,
    chain_future,
    future_add_done_callback,
    future_set_exc_info,
    future_set_result_unless_cancelled,
)
from reactor.ioloop import IOLoop
from tests.util import wait_for


def test_result_exception_and_states(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    assert not f.done() and not f.cancelled() and not f.running()
    with pytest.raises(InvalidStateError):
        f.result()
    f.set_result(3)
    assert f.done() and f.result() == 3 and f.exception() is None
    with pytest.raises(InvalidStateError):
        f.set_result(4)
    failed: Future[int] = Future()
    failed.set_exception(ValueError)  # a class is instantiated
    assert isinstance(failed.exception(), ValueError)
    with pytest.raises(ValueError):
        failed.result()


def test_cancel(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    assert f.cancel() and f.cancelled() and f.done()
    assert not f.cancel()
    with pytest.raises(CancelledError):
        f.result()
    done: Future[int] = Future()
    done.set_result(1)
    assert not done.cancel()


def test_done_callbacks_run_on_the_loop_not_inside_set_result(io_loop: IOLoop) -> None:
    f: Future[str] = Future()
    seen: list[str] = []
    f.add_done_callback(lambda fut: seen.append(fut.result()))
    f.set_result("value")
    assert seen == []  # scheduled, not called from inside set_result
    late: Future[None] = Future()
    f.add_done_callback(lambda fut: late.set_result(None))  # already done
    wait_for(io_loop, late)
    assert seen == ["value"]


def test_remove_done_callback(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    seen: list[int] = []
    f.add_done_callback(seen.append)
    f.add_done_callback(seen.append)
    assert f.remove_done_callback(seen.append) == 2
    f.set_result(1)
    io_loop.run_sync(lambda: None)
    assert seen == []


def test_set_exc_info_and_unless_cancelled_helpers(io_loop: IOLoop) -> None:
    f: Future[Any] = Future()
    try:
        raise KeyError("k")
    except KeyError as e:
        future_set_exc_info(f, (type(e), e, e.__traceback__))
    assert isinstance(f.exception(), KeyError)
    cancelled: Future[int] = Future()
    cancelled.cancel()
    future_set_result_unless_cancelled(cancelled, 1)  # dropped, no error
    assert cancelled.cancelled()


def test_future_add_done_callback_is_immediate_when_done(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    f.set_result(1)
    seen: list[int] = []
    future_add_done_callback(f, lambda fut: seen.append(fut.result()))
    assert seen == [1]


def test_chain_future_copies_outcomes(io_loop: IOLoop) -> None:
    a: Future[int] = Future()
    b: Future[int] = Future()
    chain_future(a, b)
    a.set_exception(OSError("copied"))
    with pytest.raises(OSError, match="copied"):
        wait_for(io_loop, b)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        c = pool.submit(lambda: "from a thread")
        d: Future[str] = Future()
        chain_future(c, d)
        assert wait_for(io_loop, d) == "from a thread"


def test_await_a_future_inside_a_callback_driven_generator(io_loop: IOLoop) -> None:
    """__await__ yields the pending future itself and then returns its result:
    the protocol the coroutine runner (and asyncio's Task) builds on."""
    f: Future[str] = Future()
    steps = f.__await__()
    assert next(steps) is f
    f.set_result("resumed")
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert stop.value.value == "resumed"
