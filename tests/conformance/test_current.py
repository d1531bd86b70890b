"""current(), make_current(), instance() and friends, across threads."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.util import WAIT


def _in_thread(fn: Any) -> Any:
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(fn()))
    t.start()
    t.join(WAIT)
    return result[0]


def test_current_is_per_thread(io_loop: IOLoop) -> None:
    assert IOLoop.current() is io_loop

    def other_thread() -> tuple[bool, bool, str]:
        assert IOLoop.current(instance=False) is None
        mine = IOLoop.current()
        try:
            return mine is not io_loop, IOLoop.current() is mine, mine.backend_name
        finally:
            IOLoop.clear_current()
            mine.close()

    distinct, stable, backend_name = _in_thread(other_thread)
    assert distinct and stable
    assert backend_name == io_loop.backend_name  # the configured backend
    assert IOLoop.current() is io_loop  # untouched by the other thread


def test_running_loop_is_current_and_restores_the_previous(reactor_backend: Any) -> None:
    outer = IOLoop(backend=reactor_backend, make_current=True)
    inner = IOLoop(backend=reactor_backend, make_current=False)
    try:
        assert IOLoop.current() is outer
        assert inner.run_sync(IOLoop.current) is inner
        assert IOLoop.current() is outer
    finally:
        IOLoop.clear_current()
        inner.close()
        outer.close()


def test_make_current_and_clear_current(reactor_backend: Any) -> None:
    a = IOLoop(backend=reactor_backend, make_current=False)
    b = IOLoop(backend=reactor_backend, make_current=False)
    try:
        a.make_current()
        assert IOLoop.current() is a
        b.make_current()
        assert IOLoop.current() is b
        IOLoop.clear_current()
        assert IOLoop.current(instance=False) is None
    finally:
        a.close()
        b.close()


def test_new_loop_becomes_current_by_default(reactor_backend: Any) -> None:
    """Tornado 6.3+: ``make_current=True`` is the default, so the newest loop
    is current even when another one was."""
    IOLoop.clear_current()
    first = IOLoop(backend=reactor_backend)
    second = IOLoop(backend=reactor_backend)
    try:
        assert IOLoop.current() is second
    finally:
        IOLoop.clear_current()
        first.close()
        second.close()


def test_make_current_none_makes_current_only_if_none_is(reactor_backend: Any) -> None:
    IOLoop.clear_current()
    first = IOLoop(backend=reactor_backend, make_current=None)
    second = IOLoop(backend=reactor_backend, make_current=None)
    try:
        assert IOLoop.current() is first
    finally:
        IOLoop.clear_current()
        first.close()
        second.close()


def test_close_forgets_the_current_loop(reactor_backend: Any) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=True)
    loop.close()
    assert IOLoop.current(instance=False) is None


def test_instance_install_and_clear(io_loop: IOLoop) -> None:
    IOLoop.clear_instance()
    assert not IOLoop.initialized()
    io_loop.install()
    assert IOLoop.initialized() and IOLoop.instance() is io_loop
    with pytest.raises(RuntimeError, match="already"):
        io_loop.install()
    # Another thread reaches the shared instance only through add_callback.
    seen: list[bool] = []
    _in_thread(lambda: IOLoop.instance().add_callback(lambda: (seen.append(True), io_loop.stop())))
    io_loop.start()
    assert seen == [True]
    IOLoop.clear_instance()
    assert not IOLoop.initialized()


def test_instance_is_created_on_demand(io_loop: IOLoop) -> None:
    IOLoop.clear_instance()
    shared = IOLoop.instance()
    try:
        assert shared is not io_loop
        assert IOLoop.instance() is shared
        assert shared.backend_name == io_loop.backend_name
        assert IOLoop.current() is io_loop  # current() prefers the thread's own
    finally:
        shared.close()
    assert not IOLoop.initialized()


def test_backend_name_is_reported(io_loop: IOLoop, request: pytest.FixtureRequest) -> None:
    assert io_loop.backend_name == request.node.callspec.id


def test_current_inside_a_running_loop_without_a_current_loop(io_loop: IOLoop) -> None:
    """Even after clear_current() inside a running loop, current() finds the
    running loop (through its asyncio face), not a new bridge or loop."""
    seen: list[IOLoop] = []

    def inside() -> None:
        IOLoop.clear_current()
        seen.append(IOLoop.current())
        io_loop.make_current()
        io_loop.stop()

    io_loop.add_callback(inside)
    io_loop.start()
    assert seen == [io_loop]
