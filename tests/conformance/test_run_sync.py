"""run_sync: values, futures, errors and timeouts."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

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
