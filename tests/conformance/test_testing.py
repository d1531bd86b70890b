"""reactor.testing on every backend: AsyncTestCase, gen_test, ExpectLog, the plugin."""

from __future__ import annotations

import logging
import socket
import unittest
from collections.abc import Generator
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.testing import AsyncTestCase, ExpectLog, bind_unused_port, gen_test


class _Cases(AsyncTestCase):
    """Run by test_async_test_case below, once per backend; a few must fail."""

    __test__ = False  # not for pytest to collect on its own

    def test_stop_and_wait(self) -> None:
        self.io_loop.call_later(0.001, self.stop, "value")
        assert self.wait() == "value"

    def test_wait_condition(self) -> None:
        calls = []

        def tick() -> None:
            calls.append(1)
            self.stop()

        for delay in (0.001, 0.002, 0.003):
            self.io_loop.call_later(delay, tick)
        self.wait(condition=lambda: len(calls) == 3)
        assert len(calls) == 3

    @gen_test
    def test_generator(self) -> Generator[Any, Any, None]:
        value = yield gen.sleep(0.001)
        assert value is None

    @gen_test(timeout=2)
    async def test_native(self) -> None:
        assert IOLoop.current() is self.io_loop
        await gen.sleep(0.001)

    def test_fails_by_wait_timeout(self) -> None:
        self.wait(timeout=0.01)  # nobody calls stop

    def test_fails_by_callback_exception(self) -> None:
        def boom() -> None:
            raise ArithmeticError("from a callback")

        self.io_loop.add_callback(boom)
        self.wait()

    @gen_test(timeout=0.05)
    async def test_fails_by_gen_test_timeout(self) -> None:
        await Future()

    # As in Tornado: a coroutine or generator test without gen_test would
    # pass without running, and a value a test returns is a mistake.
    async def test_fails_undecorated_coroutine(self) -> None:
        raise AssertionError("never runs")

    def test_fails_undecorated_generator(self) -> Generator[Any, Any, None]:
        yield gen.moment

    @gen_test
    async def test_fails_by_returning_a_value(self) -> int:
        return 5


def test_async_test_case(reactor_backend: Any) -> None:
    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
    try:
        result = unittest.TestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(_Cases).run(result)
    finally:
        IOLoop.configure(previous)
    failed = {test.id().rsplit(".", 1)[1]: text for test, text in result.failures + result.errors}
    assert result.testsRun == 10
    assert set(failed) == {
        "test_fails_by_wait_timeout",
        "test_fails_by_callback_exception",
        "test_fails_by_gen_test_timeout",
        "test_fails_undecorated_coroutine",
        "test_fails_undecorated_generator",
        "test_fails_by_returning_a_value",
    }, failed
    assert "timed out after 0.01 seconds" in failed["test_fails_by_wait_timeout"]
    assert "ArithmeticError: from a callback" in failed["test_fails_by_callback_exception"]
    assert "timed out after 0.05 seconds" in failed["test_fails_by_gen_test_timeout"]
    for name in ("test_fails_undecorated_coroutine", "test_fails_undecorated_generator"):
        assert "TypeError: Generator and coroutine test methods should be decorated" in failed[name]
    assert "Return value from test method ignored: 5" in failed["test_fails_by_returning_a_value"]


async def test_plugin_runs_async_tests_on_io_loop(io_loop: IOLoop) -> None:
    assert IOLoop.current() is io_loop
    assert await gen.sleep(0.001) is None


@gen_test
def test_gen_test_with_the_fixture(io_loop: IOLoop) -> Generator[Any, Any, None]:
    yield gen.sleep(0.001)
    assert IOLoop.current() is io_loop


def test_expect_log(io_loop: IOLoop) -> None:
    log = logging.getLogger("reactor.general")
    with ExpectLog(log, "expected .* here") as expectation:
        log.warning("expected message here")
        log.warning("expected again here")
    assert expectation.logged == 2
    with (
        pytest.raises(AssertionError, match="did not get expected log"),
        ExpectLog("reactor.general", "never written"),
    ):
        pass
    with ExpectLog("reactor.general", "optional", required=False) as optional:
        pass
    assert optional.logged == 0
    with ExpectLog("reactor.general", "debug detail", level=logging.DEBUG) as debug:
        log.debug("debug detail")
    assert debug.logged == 1


def test_expect_log_has_tornados_attributes_and_exact_level(io_loop: IOLoop) -> None:
    """A Tornado test reads ``matched`` and ``logged_stack``; ``level`` is the
    one level that matches: the same message at another level is let through
    (and a warning says so), so the block below still needs its INFO record."""
    log = logging.getLogger("reactor.general")
    with ExpectLog(log, "boom") as plain:
        log.warning("boom once")
    assert (plain.matched, plain.logged_stack) == (1, False)
    with ExpectLog(log, "boom") as stacked:
        try:
            raise ValueError("x")
        except ValueError:
            log.exception("boom with a traceback")
    assert (stacked.matched, stacked.logged_stack) == (1, True)
    with (
        ExpectLog(
            "reactor.application", "Got expected log message 'detail' at unexpected level"
        ) as warned,
        ExpectLog(log, "detail", level=logging.INFO, required=False) as info_only,
    ):
        log.warning("detail")
    assert (info_only.matched, warned.matched) == (0, 1)
    with (
        pytest.raises(AssertionError, match="did not get expected log"),
        ExpectLog("reactor.application", "Got expected", required=False),
        ExpectLog(log, "detail", level=logging.INFO),
    ):
        log.error("detail")


def test_bind_unused_port(io_loop: IOLoop) -> None:
    sock, port = bind_unused_port()
    accepted: Future[bytes] = Future()

    def on_accept(listener: socket.socket, events: int) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setblocking(True)
            accepted.set_result(conn.recv(10))
        io_loop.remove_handler(listener)

    with sock:
        assert port > 0 and sock.getsockname()[0] == "127.0.0.1"
        io_loop.add_handler(sock, on_accept, IOLoop.READ)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"hi")
            assert io_loop.run_sync(lambda: accepted, timeout=5) == b"hi"
