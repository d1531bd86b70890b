"""run_sync: values, futures, errors and timeouts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop


def test_returns_a_plain_value(io_loop: IOLoop) -> None:
    assert io_loop.run_sync(lambda: 42) == 42
    assert io_loop.run_sync(lambda: None) is None


def test_waits_for_a_future(io_loop: IOLoop) -> None:
    def later() -> Future[str]:
        f: Future[str] = Future()
        io_loop.call_later(0.01, f.set_result, "done")
        return f

    assert io_loop.run_sync(later) == "done"


def test_waits_for_a_concurrent_future(io_loop: IOLoop) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert io_loop.run_sync(lambda: pool.submit(pow, 2, 10)) == 1024


def test_raises_the_function_error(io_loop: IOLoop) -> None:
    def fails() -> None:
        raise LookupError("sync failure")

    with pytest.raises(LookupError, match="sync failure"):
        io_loop.run_sync(fails)


def test_raises_the_future_error(io_loop: IOLoop) -> None:
    def fails_later() -> Future[None]:
        f: Future[None] = Future()
        io_loop.call_later(0.01, f.set_exception, ConnectionResetError("async failure"))
        return f

    with pytest.raises(ConnectionResetError, match="async failure"):
        io_loop.run_sync(fails_later)


def test_timeout_raises_and_cancels(io_loop: IOLoop) -> None:
    pending: Future[None] = Future()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        io_loop.run_sync(lambda: pending, timeout=0.05)
    assert time.monotonic() - started < 5  # it did not wait for ever
    assert pending.cancelled()
    # The loop is usable afterwards, and the old timeout is gone.
    assert io_loop.run_sync(lambda: "after", timeout=5) == "after"


def test_finishing_within_the_timeout_wins(io_loop: IOLoop) -> None:
    def quick() -> Future[int]:
        f: Future[int] = Future()
        io_loop.call_later(0.001, f.set_result, 1)
        return f

    assert io_loop.run_sync(quick, timeout=5) == 1


def test_run_sync_on_closed_loop_is_an_error(reactor_backend: object) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)  # type: ignore[arg-type]
    loop.close()
    with pytest.raises(RuntimeError):
        loop.run_sync(lambda: None)


def test_timeout_cancels_an_async_def_and_waits_for_its_cleanup(io_loop: IOLoop) -> None:
    """issue 9 item 7: the coroutine's except and finally never ran."""
    log: list[str] = []

    async def main() -> None:
        try:
            await Future()
        except asyncio.CancelledError:
            log.append("except")
            raise
        finally:
            await gen.moment  # cleanup that itself waits
            log.append("finally")

    with pytest.raises(TimeoutError):
        io_loop.run_sync(main, timeout=0.01)
    assert log == ["except", "finally"]


def test_timeout_cancels_a_gen_coroutine_and_waits_for_its_cleanup(io_loop: IOLoop) -> None:
    log: list[str] = []
    waiting: Future[None] = Future()

    @gen.coroutine
    def main() -> Generator[Any, Any, None]:
        try:
            yield waiting
        except asyncio.CancelledError:
            log.append("except")
            raise
        finally:
            yield gen.moment
            log.append("finally")

    with pytest.raises(TimeoutError):
        io_loop.run_sync(main, timeout=0.01)
    assert log == ["except", "finally"]
    assert waiting.cancelled()


def test_a_coroutine_that_handles_the_timeout_returns_its_value(io_loop: IOLoop) -> None:
    async def main() -> str:
        try:
            await Future()
        except asyncio.CancelledError:
            return "gave up cleanly"
        return "not reached"

    assert io_loop.run_sync(main, timeout=0.01) == "gave up cleanly"


def test_timeout_leaves_what_cannot_be_cancelled(io_loop: IOLoop) -> None:
    """A running concurrent.futures job cannot be cancelled: run_sync raises
    at the timeout without waiting for it."""
    release = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        job = pool.submit(release.wait, 10)
        try:
            with pytest.raises(TimeoutError):
                io_loop.run_sync(lambda: job, timeout=0.01)
            assert not job.done()
        finally:
            release.set()
