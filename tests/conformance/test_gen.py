"""reactor.gen on every backend: coroutines, the Runner, multi, timeouts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import gc
import itertools
import logging
import sys
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor import gen
from reactor.concurrent import CancelledError, Future, run_on_executor
from reactor.ioloop import IOLoop

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def _later(io_loop: IOLoop, value: Any, delay: float = 0.005) -> Future[Any]:
    f: Future[Any] = Future()
    io_loop.call_later(delay, f.set_result, value)
    return f


def _failing_later(io_loop: IOLoop, exc: BaseException, delay: float = 0.005) -> Future[Any]:
    f: Future[Any] = Future()
    io_loop.call_later(delay, f.set_exception, exc)
    return f


# -- gen.coroutine ---------------------------------------------------------------


def test_generator_coroutine_returns_its_value(io_loop: IOLoop) -> None:
    @gen.coroutine
    def add(a: int, b: int) -> Generator[Any, Any, int]:
        x = yield _later(io_loop, a)
        y = yield _later(io_loop, b)
        return x + y

    assert io_loop.run_sync(lambda: add(2, 3)) == 5


def test_gen_return_and_plain_functions(io_loop: IOLoop) -> None:
    @gen.coroutine
    def old_style() -> Generator[Any, Any, None]:
        yield gen.moment
        raise gen.Return("returned")

    @gen.coroutine
    def not_a_generator() -> str:
        return "plain"

    assert io_loop.run_sync(old_style) == "returned"
    f = not_a_generator()
    assert f.done() and f.result() == "plain"


def test_errors_before_and_after_the_first_yield(io_loop: IOLoop) -> None:
    @gen.coroutine
    def early() -> Generator[Any, Any, None]:
        raise KeyError("early")
        yield  # pragma: no cover

    @gen.coroutine
    def late() -> Generator[Any, Any, None]:
        yield _later(io_loop, None)
        raise KeyError("late")

    f = early()
    assert f.done()  # the first step ran in the caller's turn
    with pytest.raises(KeyError, match="early"):
        f.result()
    with pytest.raises(KeyError, match="late"):
        io_loop.run_sync(late)


def test_yielded_failure_is_thrown_into_the_generator(io_loop: IOLoop) -> None:
    @gen.coroutine
    def recovers() -> Generator[Any, Any, str]:
        try:
            yield _failing_later(io_loop, OSError("inner"))
        except OSError as e:
            return f"caught {e}"
        return "not reached"

    assert io_loop.run_sync(recovers) == "caught inner"


def test_ready_futures_run_inline_without_recursion(io_loop: IOLoop) -> None:
    """100,000 ready futures: no recursion limit, no loop iteration needed."""

    @gen.coroutine
    def many() -> Generator[Any, Any, int]:
        total = 0
        for i in range(100_000):
            f: Future[int] = Future()
            f.set_result(i)
            total += yield f
        return total

    f = many()
    assert f.done() and f.result() == sum(range(100_000))


def test_moment_lets_other_callbacks_run(io_loop: IOLoop) -> None:
    order: list[str] = []

    @gen.coroutine
    def polite() -> Generator[Any, Any, None]:
        order.append("coroutine starts")
        yield gen.moment
        order.append("coroutine resumes")

    def start() -> None:
        io_loop.add_callback(order.append, "other callback")
        polite()  # a ready future would resume it at once; moment waits its turn
        io_loop.call_later(0.01, io_loop.stop)

    io_loop.add_callback(start)
    io_loop.start()
    assert order == ["coroutine starts", "other callback", "coroutine resumes"]


def test_parallel_yield_list_and_dict(io_loop: IOLoop) -> None:
    """The seeds' parallel fetch, with futures standing in for fetches."""

    def fetch(url: str) -> Future[str]:
        return _later(io_loop, f"body of {url}", delay=0.001 * len(url))

    @gen.coroutine
    def parallel_fetch(url1: str, url2: str) -> Generator[Any, Any, list[str]]:
        resp1, resp2 = yield [fetch(url1), fetch(url2)]
        return [resp1, resp2]

    @gen.coroutine
    def parallel_fetch_dict(urls: list[str]) -> Generator[Any, Any, dict[str, str]]:
        responses = yield {url: fetch(url) for url in urls}
        return responses  # type: ignore[no-any-return]

    assert io_loop.run_sync(lambda: parallel_fetch("/long/url", "/a")) == [
        "body of /long/url",
        "body of /a",
    ]
    result = io_loop.run_sync(lambda: parallel_fetch_dict(["/bb", "/a", "/ccc"]))
    assert list(result) == ["/bb", "/a", "/ccc"]  # the dict keeps the input's order
    assert result["/a"] == "body of /a"


def test_minute_loop2_interleaving(io_loop: IOLoop) -> None:
    """The seeds' minute_loop2: start the clock, work while it ticks, then wait
    for it, so each round takes max(period, work), not period + work."""
    period, work, rounds = 0.05, 0.045, 4
    started: list[float] = []

    @gen.coroutine
    def do_something() -> Generator[Any, Any, None]:
        started.append(io_loop.time())
        yield gen.sleep(work)

    @gen.coroutine
    def minute_loop2() -> Generator[Any, Any, None]:
        for _ in range(rounds):
            nxt = gen.sleep(period)  # start the clock
            yield do_something()  # run while the clock is ticking
            yield nxt  # wait for the timer to run out

    begin = io_loop.time()
    io_loop.run_sync(minute_loop2, timeout=10)
    elapsed = io_loop.time() - begin
    assert len(started) == rounds
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert all(gap >= period - 0.002 for gap in gaps), gaps
    # Work and wait overlap: sequential rounds could not finish before
    # rounds * (period + work) = 0.38 s; interleaved ones need 0.2 s. The
    # bound sits between, far from both, for a noisy machine.
    assert elapsed < rounds * (period + work) - 0.05, elapsed


def test_contextvars_follow_the_coroutine(io_loop: IOLoop) -> None:
    @gen.coroutine
    def inner() -> Generator[Any, Any, tuple[str, str]]:
        seen_at_start = var.get()
        var.set("set inside")
        yield _later(io_loop, None)
        return seen_at_start, var.get()

    def start() -> Future[Any]:
        var.set("caller")
        f = inner()
        assert var.get() == "caller"  # the coroutine's set did not leak out
        return f

    assert io_loop.run_sync(start) == ("caller", "set inside")


# -- native coroutines ------------------------------------------------------------


def test_async_def_awaits_reactor_futures_and_gen_coroutines(io_loop: IOLoop) -> None:
    @gen.coroutine
    def old(x: int) -> Generator[Any, Any, int]:
        y = yield _later(io_loop, x)
        return y * 2

    async def new() -> list[Any]:
        a = await _later(io_loop, 1)
        b = await old(2)
        await gen.moment
        await gen.sleep(0.001)
        c = await gen.multi([old(3), _later(io_loop, 4)])
        return [a, b, c]

    assert io_loop.run_sync(new) == [1, 4, [6, 4]]


def test_gen_coroutine_yields_native_coroutines_and_asyncio_futures(io_loop: IOLoop) -> None:
    async def native(x: int) -> int:
        await asyncio.sleep(0.001)
        return x + 1

    @gen.coroutine
    def old() -> Generator[Any, Any, list[int]]:
        a = yield native(1)
        fut = asyncio.get_running_loop().create_future()
        io_loop.call_later(0.001, fut.set_result, 10)
        b = yield fut
        c, d = yield [native(5), asyncio.ensure_future(native(6))]
        return [a, b, c, d]

    assert io_loop.run_sync(old) == [2, 10, 6, 7]


def test_native_coroutine_is_an_asyncio_task(io_loop: IOLoop) -> None:
    async def who_am_i() -> bool:
        return asyncio.current_task() is not None

    assert io_loop.run_sync(who_am_i) is True


def test_concurrent_futures_are_yieldable(io_loop: IOLoop) -> None:
    """The seeds' call_blocking: yield thread_pool.submit(...)."""
    with concurrent.futures.ThreadPoolExecutor(2) as thread_pool:

        @gen.coroutine
        def call_blocking() -> Generator[Any, Any, int]:
            result = yield thread_pool.submit(pow, 3, 4)
            return result  # type: ignore[no-any-return]

        assert io_loop.run_sync(call_blocking) == 81


def test_bad_yield_names_the_object(io_loop: IOLoop) -> None:
    @gen.coroutine
    def bad() -> Generator[Any, Any, None]:
        yield 42

    with pytest.raises(gen.BadYieldError, match="42"):
        io_loop.run_sync(bad)
    with pytest.raises(gen.BadYieldError, match="'text'"):
        gen.convert_yielded("text")  # type: ignore[arg-type]


def test_convert_yielded_and_maybe_future(io_loop: IOLoop) -> None:
    f: Future[int] = Future()
    assert gen.convert_yielded(f) is f
    assert gen.convert_yielded(None).result() is None
    assert gen.maybe_future(f) is f
    assert gen.maybe_future(5).result() == 5


def test_run_on_executor(io_loop: IOLoop) -> None:
    """The seeds' run_on_executor pattern, with a configurable attribute."""

    class Worker:
        def __init__(self) -> None:
            self._pool = concurrent.futures.ThreadPoolExecutor(2)
            self.executor = self._pool

        @run_on_executor
        def default_attr(self, a: int) -> tuple[int, str]:
            return a * 2, threading.current_thread().name

        @run_on_executor(executor="_pool")
        def named_attr(self, a: int) -> int:
            time.sleep(0.01)  # the blocking call the executor is for
            return a + 1

        @gen.coroutine
        def both(self) -> Generator[Any, Any, tuple[Any, int]]:
            return (yield self.default_attr(4)), (yield self.named_attr(4))

    worker = Worker()
    try:
        (doubled, thread_name), plus_one = io_loop.run_sync(worker.both)
        assert doubled == 8 and plus_one == 5
        assert thread_name != threading.current_thread().name
    finally:
        worker._pool.shutdown()


# -- multi -----------------------------------------------------------------------


def test_multi_waits_for_all_and_raises_the_first_error_in_order(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    children = [
        _later(io_loop, "ok", 0.01),
        _failing_later(io_loop, ValueError("second child"), 0.02),
        _failing_later(io_loop, KeyError("third child"), 0.001),
    ]
    with (
        caplog.at_level(logging.ERROR, logger="reactor.application"),
        pytest.raises(ValueError, match="second child"),
    ):
        io_loop.run_sync(lambda: gen.multi(children))
    assert any("third child" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_multi_quiet_exceptions_are_not_logged(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    children = [_failing_later(io_loop, ValueError("a")), _failing_later(io_loop, KeyError("b"))]
    with (
        caplog.at_level(logging.ERROR, logger="reactor.application"),
        pytest.raises(ValueError),
    ):
        io_loop.run_sync(lambda: gen.multi(children, quiet_exceptions=KeyError))
    assert not [r for r in caplog.records if "Multiple exceptions" in r.getMessage()]


def test_multi_of_nothing(io_loop: IOLoop) -> None:
    assert io_loop.run_sync(lambda: gen.multi([])) == []
    assert io_loop.run_sync(lambda: gen.multi({})) == {}


_child_kinds = st.lists(st.sampled_from(["ready", "pending", "failing", "cancelled"]), max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=_child_kinds, as_dict=st.booleans())
def test_multi_property(reactor_backend: Any, kinds: list[str], as_dict: bool) -> None:
    """Any mix of ready, pending, failing and cancelled children: the result is
    the children's values in order, or the first failure in input order."""
    loop = IOLoop(backend=reactor_backend, make_current=True)
    try:

        def build() -> Future[Any]:
            children: list[Future[Any]] = []
            for i, kind in enumerate(kinds):
                f: Future[Any] = Future()
                if kind == "ready":
                    f.set_result(i)
                elif kind == "pending":
                    loop.call_later(0.001 * (len(kinds) - i), f.set_result, i)
                elif kind == "failing":
                    loop.call_later(0.001 * i, f.set_exception, IndexError(i))
                else:
                    f.cancel()
                children.append(f)
            arg: Any = {f"k{i}": f for i, f in enumerate(children)} if as_dict else children
            return gen.multi(arg, quiet_exceptions=(IndexError, CancelledError))

        expected_error = next((kind for kind in kinds if kind in ("failing", "cancelled")), None)
        if expected_error is None:
            result = loop.run_sync(build, timeout=10)
            values = list(range(len(kinds)))
            assert result == ({f"k{i}": i for i in values} if as_dict else values)
        else:
            index = next(i for i, k in enumerate(kinds) if k == expected_error)
            error = IndexError if expected_error == "failing" else CancelledError
            with pytest.raises(error) as info:
                loop.run_sync(build, timeout=10)
            if error is IndexError:
                assert info.value.args == (index,)
    finally:
        IOLoop.clear_current()
        loop.close()


# -- cancellation -------------------------------------------------------------------
# Cancelling a coroutine's future cancels the coroutine, as cancelling an asyncio
# task does: CancelledError is raised at the point where it waits, its except and
# finally blocks run, and the future completes when the coroutine has finished.


def _native_that_cleans_up(
    io_loop: IOLoop, log: list[str], waiting: Future[Any], suppress: bool = False
) -> Any:
    async def native() -> str:
        log.append("started")
        try:
            await waiting
        except CancelledError:
            log.append("except")
            if suppress:
                return "cleaned up"
            raise
        finally:
            await gen.moment  # cleanup may itself wait
            log.append("finally")
        log.append("not reached")
        return "finished"

    return native()


def _generator_that_cleans_up(
    io_loop: IOLoop, log: list[str], waiting: Future[Any], suppress: bool = False
) -> Future[Any]:
    @gen.coroutine
    def old() -> Generator[Any, Any, str]:
        log.append("started")
        try:
            yield waiting
        except CancelledError:
            log.append("except")
            if suppress:
                return "cleaned up"
            raise
        finally:
            yield gen.moment
            log.append("finally")
        log.append("not reached")
        return "finished"

    return old()  # type: ignore[no-any-return]


_KINDS = {
    "async def": lambda io_loop, log, waiting, suppress=False: gen.convert_yielded(
        _native_that_cleans_up(io_loop, log, waiting, suppress)
    ),
    "gen.coroutine": _generator_that_cleans_up,
}


@pytest.mark.parametrize("kind", list(_KINDS))
def test_cancelling_a_coroutines_future_cancels_the_coroutine(io_loop: IOLoop, kind: str) -> None:
    """issue 9 item 7: ``convert_yielded(coro).cancel()`` let the coroutine
    run on; a gen.coroutine's future was cancelled but its generator ran on."""
    log: list[str] = []
    waiting: Future[Any] = Future()

    async def main() -> Future[Any]:
        f = _KINDS[kind](io_loop, log, waiting)
        await gen.moment  # the coroutine is now waiting for ``waiting``
        assert log == ["started"]
        assert f.cancel()
        with pytest.raises(CancelledError):
            await f
        return f

    f = io_loop.run_sync(main, timeout=10)
    assert f.cancelled()
    assert log == ["started", "except", "finally"]
    assert waiting.cancelled()  # what it waited for was cancelled in turn, as in asyncio


@pytest.mark.parametrize("kind", list(_KINDS))
def test_a_coroutine_may_handle_its_cancellation(io_loop: IOLoop, kind: str) -> None:
    log: list[str] = []

    async def main() -> Any:
        f = _KINDS[kind](io_loop, log, Future(), suppress=True)
        await gen.moment
        f.cancel()
        return await f

    assert io_loop.run_sync(main, timeout=10) == "cleaned up"
    assert log == ["started", "except", "finally"]


@pytest.mark.parametrize("kind", list(_KINDS))
def test_cancelling_the_awaiting_task_reaches_the_coroutine(io_loop: IOLoop, kind: str) -> None:
    """A chain of awaits: cancelling the outer task goes down to the innermost."""
    log: list[str] = []

    async def outer() -> None:
        await _KINDS[kind](io_loop, log, Future())

    async def main() -> None:
        task = asyncio.ensure_future(outer())
        await gen.moment
        await gen.moment
        task.cancel()
        with pytest.raises(CancelledError):
            await task

    io_loop.run_sync(main, timeout=10)
    assert log == ["started", "except", "finally"]


def test_a_gen_coroutine_is_cancelled_at_a_moment_or_by_itself(io_loop: IOLoop) -> None:
    """The cases with nothing pending to cancel: waiting for ``gen.moment``,
    and a step that cancels its own coroutine (the next wait is cancelled)."""
    log: list[str] = []
    own: list[Future[Any]] = []

    @gen.coroutine
    def spins() -> Generator[Any, Any, None]:
        try:
            while True:
                yield gen.moment
        except CancelledError:
            log.append("spins cancelled")
            raise

    @gen.coroutine
    def cancels_itself() -> Generator[Any, Any, None]:
        yield gen.moment
        assert own[0].cancel()
        log.append("asked")
        try:
            yield Future()
        except CancelledError:
            log.append("itself cancelled")
            raise

    async def main() -> None:
        spinning = spins()
        own.append(cancels_itself())
        await gen.moment
        assert spinning.cancel()
        for f in (spinning, own[0]):
            with pytest.raises(CancelledError):
                await f
            assert f.cancelled()

    io_loop.run_sync(main, timeout=10)
    assert sorted(log) == ["asked", "itself cancelled", "spins cancelled"]


def test_cancel_is_false_once_done(io_loop: IOLoop) -> None:
    @gen.coroutine
    def quick() -> Generator[Any, Any, int]:
        yield gen.moment
        return 1

    async def native() -> int:
        return 2

    futures = [quick(), gen.convert_yielded(native())]
    assert io_loop.run_sync(lambda: gen.multi(futures)) == [1, 2]
    assert not any(f.cancel() for f in futures)
    assert [f.result() for f in futures] == [1, 2]


def test_a_gen_coroutine_that_raises_cancelled_error_is_cancelled(io_loop: IOLoop) -> None:
    """As Tornado 6.6 does, and as an asyncio task does."""
    cancelled: Future[None] = Future()
    cancelled.cancel()

    @gen.coroutine
    def before_yield() -> Generator[Any, Any, None]:
        raise CancelledError()
        yield  # pragma: no cover

    @gen.coroutine
    def yields_a_cancelled_future() -> Generator[Any, Any, None]:
        yield _later(io_loop, None)
        yield cancelled

    for coroutine in (before_yield, yields_a_cancelled_future):
        f = coroutine()
        with pytest.raises(CancelledError):
            io_loop.run_sync(lambda f=f: f, timeout=10)
        assert f.cancelled(), coroutine


def test_cancelling_multi_leaves_its_children_alone(io_loop: IOLoop) -> None:
    """As in Tornado (asyncio.gather differs: it cancels its children)."""

    async def child() -> str:
        await _later(io_loop, None)
        return "child done"

    async def main() -> list[Any]:
        children = [gen.convert_yielded(child()), _later(io_loop, "future done")]
        combined = gen.multi(children)
        assert combined.cancel()
        return [await c for c in children]

    assert io_loop.run_sync(main, timeout=10) == ["child done", "future done"]


def test_multi_with_a_cancelled_child_raises_cancelled_error_and_logs_no_more(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    first: Future[None] = Future()
    second: Future[None] = Future()
    first.cancel()
    second.cancel()
    with (
        caplog.at_level(logging.ERROR, logger="reactor.application"),
        pytest.raises(CancelledError),
    ):
        io_loop.run_sync(lambda: gen.multi([first, _later(io_loop, 1), second]), timeout=10)
    assert not [r for r in caplog.records if "Multiple exceptions" in r.getMessage()]


def test_with_timeout_does_not_cancel_the_coroutine(io_loop: IOLoop) -> None:
    """As in Tornado: the wrapped coroutine runs on after the timeout."""
    release: Future[str] = Future()

    async def slow() -> str:
        return await release

    async def main() -> str:
        task = gen.convert_yielded(slow())
        with pytest.raises(TimeoutError):
            await gen.with_timeout(datetime.timedelta(seconds=0.001), task)
        assert not task.done()
        release.set_result("finished anyway")
        return await task

    assert io_loop.run_sync(main, timeout=10) == "finished anyway"


# -- timeouts, sleep ---------------------------------------------------------------


def test_with_timeout_expires(io_loop: IOLoop) -> None:
    slow = _later(io_loop, "too late", delay=5)
    with pytest.raises(gen.TimeoutError):
        io_loop.run_sync(lambda: gen.with_timeout(datetime.timedelta(seconds=0.01), slow))
    assert not slow.done()  # the operation itself is not cancelled
    assert gen.TimeoutError is TimeoutError


def test_with_timeout_passes_results_and_errors_through(io_loop: IOLoop) -> None:
    deadline = io_loop.time() + 5
    assert io_loop.run_sync(lambda: gen.with_timeout(deadline, _later(io_loop, 1))) == 1
    with pytest.raises(OSError, match="fast failure"):
        io_loop.run_sync(
            lambda: gen.with_timeout(
                5 + io_loop.time(), _failing_later(io_loop, OSError("fast failure"))
            )
        )


def test_with_timeout_logs_a_late_failure_unless_quiet(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        for quiet in [(), (ConnectionError,)]:
            late = _failing_later(io_loop, ConnectionError(f"late {quiet}"), delay=0.02)
            with pytest.raises(TimeoutError):
                io_loop.run_sync(
                    lambda late=late, quiet=quiet: gen.with_timeout(
                        datetime.timedelta(seconds=0.005), late, quiet_exceptions=quiet
                    )
                )
            io_loop.run_sync(lambda: gen.sleep(0.04))
    logged = [r for r in caplog.records if "after timeout" in r.getMessage()]
    assert len(logged) == 1 and "late ()" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_sleep(io_loop: IOLoop) -> None:
    start = io_loop.time()
    io_loop.run_sync(lambda: gen.sleep(0.02))
    assert io_loop.time() - start >= 0.019


# -- WaitIterator --------------------------------------------------------------------


def test_wait_iterator_in_finishing_order(io_loop: IOLoop) -> None:
    @gen.coroutine
    def collect() -> Generator[Any, Any, list[Any]]:
        it = gen.WaitIterator(
            _later(io_loop, "slow", 0.03),
            _failing_later(io_loop, RuntimeError("mid"), 0.02),
            _later(io_loop, "fast", 0.01),
        )
        seen = []
        while not it.done():
            try:
                result = yield it.next()
            except RuntimeError as e:
                seen.append((it.current_index, f"error {e}"))
            else:
                seen.append((it.current_index, result))
        return seen

    assert io_loop.run_sync(collect) == [(2, "fast"), (1, "error mid"), (0, "slow")]


def test_wait_iterator_async_for_with_keywords(io_loop: IOLoop) -> None:
    async def collect() -> list[Any]:
        it = gen.WaitIterator(a=_later(io_loop, 1, 0.02), b=_later(io_loop, 2, 0.01))
        seen = []
        async for result in it:
            seen.append((it.current_index, result))
        return seen

    assert io_loop.run_sync(collect) == [("b", 2), ("a", 1)]


def test_wait_iterator_rejects_args_and_kwargs() -> None:
    with pytest.raises(ValueError):
        gen.WaitIterator(Future(), a=Future())


# -- gen.Task, unretrieved failures ---------------------------------------------------


def test_task_wraps_callback_style_functions(io_loop: IOLoop) -> None:
    def one(x: int, callback: Any) -> None:
        io_loop.call_later(0.001, callback, x * 10)

    def several(callback: Any) -> None:
        io_loop.add_callback(callback, 1, 2, key="v")

    def raises(callback: Any) -> None:
        raise LookupError("synchronous")

    @gen.coroutine
    def use() -> Generator[Any, Any, list[Any]]:
        a = yield gen.Task(one, 4)
        b = yield gen.Task(several)
        return [a, b]

    a, b = io_loop.run_sync(use)
    assert a == 40
    assert b == gen.Arguments((1, 2), {"key": "v"})
    with pytest.raises(LookupError):
        io_loop.run_sync(lambda: gen.Task(raises))


def test_unretrieved_coroutine_failure_is_logged_when_collected(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    @gen.coroutine
    def fails() -> Generator[Any, Any, None]:
        yield _later(io_loop, None, 0.001)
        raise ZeroDivisionError("nobody looked")

    @gen.coroutine
    def fails_but_observed() -> Generator[Any, Any, None]:
        yield _later(io_loop, None, 0.001)
        raise ZeroDivisionError("observed")

    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        io_loop.add_callback(lambda: fails() and None)  # the future is dropped
        observed = fails_but_observed()
        io_loop.run_sync(lambda: gen.sleep(0.02))
        assert isinstance(observed.exception(), ZeroDivisionError)
        del observed
        gc.collect()
    messages = [r.getMessage() for r in caplog.records if r.name == "reactor.application"]
    assert any("never retrieved" in m and "nobody looked" in m for m in messages)
    assert not any("observed" in m for r in caplog.records for m in [r.getMessage()])


def test_is_coroutine_function() -> None:
    @gen.coroutine
    def old() -> Generator[Any, Any, None]:
        yield None

    async def new() -> None:
        pass

    assert gen.is_coroutine_function(old) and gen.is_coroutine_function(new)
    assert not gen.is_coroutine_function(lambda: None)
    assert sys.version_info >= (3, 10)


def test_tornados_legacy_exceptions_exist() -> None:
    """Ported code that names them (in an except clause, say) still imports."""
    for name in (
        "KeyReuseError",
        "UnknownKeyError",
        "LeakedCallbackError",
        "ReturnValueIgnoredError",
    ):
        assert issubclass(getattr(gen, name), Exception)
