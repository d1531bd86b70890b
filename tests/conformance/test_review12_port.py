"""Issue 12 review, as a porting Tornado user: shutdown and test-teardown
recipes written for Tornado 6.6 behave the same with reactor's imports.

Each scenario is written once against a module prefix and run with
``tornado`` (what is asserted is Tornado's behaviour) and with ``reactor``
on the backend under test.
"""

from __future__ import annotations

import importlib
import socket
import unittest
from types import ModuleType
from typing import Any

import pytest

from reactor.ioloop import IOLoop

pytestmark = pytest.mark.usefixtures("reactor_log")


def _modules(lib: str) -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"{lib}.{name}") for name in ("web", "testing", "locks")}


def _teardown_case(lib: str, events: list[str], after_teardown: list[str]) -> type:
    """An AsyncHTTPTestCase whose test leaves a request in progress: a
    handler awaiting an event nobody sets, its client still connected."""
    mods = _modules(lib)

    class Slow(mods["web"].RequestHandler):  # type: ignore[misc]
        async def get(self) -> None:
            events.append("started")
            try:
                await mods["locks"].Event().wait()
            finally:
                events.append("finally")

        def on_connection_close(self) -> None:
            events.append("on_connection_close")

    class Case(mods["testing"].AsyncHTTPTestCase):  # type: ignore[misc]
        def get_app(self) -> Any:
            return mods["web"].Application([("/slow", Slow)])

        def test_leaves_a_request_pending(self) -> None:
            client = socket.create_connection(("127.0.0.1", self.get_http_port()))
            self.addCleanup(client.close)
            # Cleanups run after tearDown: this one sees what tearDown did.
            self.addCleanup(lambda: after_teardown.extend(events))
            client.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")

            async def started() -> None:
                while "started" not in events:
                    await mods["testing"].gen.sleep(0.005)

            self.io_loop.run_sync(started, timeout=5)

    return Case


def _run_teardown_case(lib: str) -> tuple[unittest.TestResult, list[str]]:
    events: list[str] = []
    after_teardown: list[str] = []
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(
        _teardown_case(lib, events, after_teardown)
    ).run(result)
    return result, after_teardown


def test_async_http_test_case_teardown_cancels_what_the_test_left(reactor_backend: Any) -> None:
    # Tornado's AsyncTestCase.tearDown cancels the tasks still pending on the
    # test's loop and lets them finish: a handler's ``finally`` runs inside the
    # test, not later at garbage collection ("Task was destroyed but it is
    # pending!", logged at ERROR in whatever test runs then).
    tornado_result, tornado_seen = _run_teardown_case("tornado")
    assert tornado_result.wasSuccessful(), tornado_result.errors + tornado_result.failures
    assert tornado_seen == ["started", "on_connection_close", "finally"]

    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
    try:
        result, seen = _run_teardown_case("reactor")
    finally:
        IOLoop.configure(previous)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen == tornado_seen
