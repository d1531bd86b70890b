"""reactor.concurrent.Future on every backend: states, callbacks, helpers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import sys
from collections.abc import Generator
from typing import Any

import pytest

from reactor import gen
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
from reactor.queues import Queue
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


# -- an asyncio.Future of the current loop --------------------------------------


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_a_future_is_an_asyncio_future_of_the_current_loop(io_loop: IOLoop) -> None:
    made_outside = Future()
    assert isinstance(made_outside, asyncio.Future)
    assert made_outside.get_loop() is io_loop.asyncio_loop

    async def inside() -> bool:
        made_inside: Future[int] = Future()
        io_loop.add_callback(made_inside.set_result, 1)
        assert await made_inside == 1
        return made_inside.get_loop() is asyncio.get_running_loop() is io_loop.asyncio_loop

    assert io_loop.run_sync(inside)
    other = IOLoop(make_current=False)
    try:
        assert Future(loop=other.asyncio_loop).get_loop() is other.asyncio_loop
    finally:
        other.close()


def test_invalid_state_error_is_asyncios_and_the_extras(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    assert not f.running()
    f.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        f.set_result(2)
    assert InvalidStateError is asyncio.InvalidStateError
    assert f.exc_info() is None
    failed: Future[int] = Future()
    try:
        raise LookupError("as a triple")
    except LookupError:
        failed.set_exc_info(sys.exc_info())
    info = failed.exc_info()
    assert info is not None and info[0] is LookupError and info[2] is not None
    with pytest.raises(ValueError):
        Future().set_exc_info((None, None, None))


def test_done_callbacks_run_in_the_context_they_were_added_in(io_loop: IOLoop) -> None:
    f: Future[None] = Future()
    seen: list[str] = []
    token = request_id.set("when added")
    try:
        f.add_done_callback(lambda _: seen.append(request_id.get()))
    finally:
        request_id.reset(token)
    given = contextvars.copy_context()
    given.run(request_id.set, "given")
    f.add_done_callback(lambda _: seen.append(request_id.get()), context=given)
    f.set_result(None)
    io_loop.run_sync(lambda: gen.moment)
    assert seen == ["when added", "given"]


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_unretrieved_exception_is_logged_once_on_reactor_application(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """On every backend, asyncio's included, and for both ways reactor makes
    futures (``Future()`` and the loop's own, here a coroutine's result)."""

    @gen.coroutine
    def fails() -> Generator[Any, Any, None]:
        yield gen.moment
        raise KeyError("from a coroutine")

    with caplog.at_level(logging.ERROR):
        lost: Future[None] = Future()
        lost.set_exception(ValueError("nobody asked"))
        del lost
        seen: Future[None] = Future()
        seen.set_exception(ValueError("retrieved"))
        assert isinstance(seen.exception(), ValueError)
        del seen
        io_loop.add_callback(lambda: fails() and None)
        io_loop.run_sync(lambda: gen.sleep(0.01))
        gc.collect()
    for text, exc_type in (("nobody asked", ValueError), ("from a coroutine", KeyError)):
        records = _records(caplog, text)
        assert len(records) == 1, [r.getMessage() for r in caplog.records]
        record = records[0]
        assert record.name == "reactor.application"
        assert "exception was never retrieved" in record.getMessage()
        assert record.exc_info is not None and record.exc_info[0] is exc_type
    assert not _records(caplog, "retrieved'")


def test_unretrieved_exception_goes_to_the_loops_own_handler(io_loop: IOLoop) -> None:
    contexts: list[dict[str, Any]] = []
    loop = io_loop.asyncio_loop
    loop.set_exception_handler(lambda _, context: contexts.append(context))
    try:
        f: Future[None] = Future()
        f.set_exception(OSError("handled"))
        del f
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Future exception was never retrieved"
    assert isinstance(contexts[0]["exception"], OSError)


def test_a_subclass_keeps_its_class_when_it_fails(io_loop: IOLoop) -> None:
    class Mine(Future[int]):
        pass

    f = Mine()
    f.set_exception(ValueError("x"))
    assert type(f) is Mine
    assert isinstance(f.exception(), ValueError)
    plain: Future[int] = Future()
    plain.set_exception(ValueError("y"))
    assert isinstance(plain, Future) and repr(plain).startswith("<Future finished")
    plain.exception()


def test_add_future_sends_a_failing_callback_to_handle_callback_exception(
    io_loop: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed: list[Any] = []

    def handle_callback_exception(callback: Any) -> None:
        failed.append((callback, sys.exc_info()[1]))

    monkeypatch.setattr(io_loop, "handle_callback_exception", handle_callback_exception)

    def fails(f: Future[int]) -> None:
        raise ZeroDivisionError(f.result())

    f: Future[int] = Future()
    io_loop.add_future(f, fails)
    io_loop.add_callback(f.set_result, 7)
    io_loop.run_sync(lambda: gen.sleep(0.01))
    assert len(failed) == 1
    assert failed[0][0] is fails and isinstance(failed[0][1], ZeroDivisionError)


def test_shared_done_futures_belong_to_the_current_loop(io_loop: IOLoop) -> None:
    """``convert_yielded(None)``, ``Queue.put`` with room: one done future per
    loop, made on first use (none at import)."""
    ready = gen.convert_yielded(None)
    assert ready.done() and ready.result() is None
    assert ready.get_loop() is io_loop.asyncio_loop
    assert Queue().put(1) is ready
    other = IOLoop(make_current=True)
    try:
        other_ready = gen.convert_yielded(None)
        assert other_ready is not ready and other_ready.get_loop() is other.asyncio_loop
    finally:
        other.close()
        io_loop.make_current()


def test_is_future_and_maybe_future_take_asyncio_and_concurrent_futures(io_loop: IOLoop) -> None:
    """issue 9 item 14: an asyncio future was not a future to is_future, and
    maybe_future wrapped it (and a concurrent one) as a result."""
    from reactor.concurrent import is_future

    native = io_loop.asyncio_loop.create_future()
    c_future: concurrent.futures.Future[int] = concurrent.futures.Future()
    mine: Future[int] = Future()
    assert is_future(native) and is_future(c_future) and is_future(mine)
    assert not is_future(None) and not is_future(gen.moment)
    assert gen.maybe_future(native) is native
    assert gen.maybe_future(c_future) is c_future
    assert gen.maybe_future(mine) is mine
    assert gen.maybe_future("value").result() == "value"


def test_future_in_a_thread_without_a_loop_is_an_error(io_loop: IOLoop) -> None:
    """As asyncio.Future() there: no private loop made behind the caller's back."""

    def in_worker() -> tuple[str, bool, bool]:
        try:
            Future()
        except RuntimeError as e:
            message = str(e)
        else:  # pragma: no cover - the failure this test is about
            message = "no error"
        no_loop_made = IOLoop.current(instance=False) is None
        given = Future(loop=io_loop.asyncio_loop)  # an explicit loop is fine
        return message, no_loop_made, given.get_loop() is io_loop.asyncio_loop

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        message, no_loop_made, explicit_ok = pool.submit(in_worker).result(timeout=10)
    assert "no current event loop" in message
    assert no_loop_made and explicit_ok

    def with_its_own_loop() -> bool:
        loop = IOLoop(make_current=True)
        try:
            return Future().get_loop() is loop.asyncio_loop
        finally:
            IOLoop.clear_current()
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(with_its_own_loop).result(timeout=10)


def test_reactors_own_futures_in_a_thread_without_a_loop_are_an_error(io_loop: IOLoop) -> None:
    """gen.sleep, Queue.put and the like follow Future()'s rule: no loop made."""

    def in_worker() -> list[str]:
        outcomes = []

        @gen.coroutine
        def generator() -> Generator[Any, Any, None]:
            yield gen.moment

        for make in (
            lambda: gen.sleep(0),
            lambda: gen.convert_yielded(None),
            generator,
        ):
            try:
                make()
            except RuntimeError as e:
                outcomes.append(str(e))
            else:  # pragma: no cover - the failure this test is about
                outcomes.append("no error")
        outcomes.append(f"loop made: {IOLoop.current(instance=False) is not None}")
        return outcomes

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outcomes = pool.submit(in_worker).result(timeout=10)
    assert all("no current event loop" in o for o in outcomes[:3]), outcomes
    assert outcomes[3] == "loop made: False"
