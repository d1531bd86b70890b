"""The Poller interface itself, on each native poller, and its selectors view.

These test the contract the native loop relies on; kqueue runs through the
kevent emulation where the platform lacks it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from reactor import backends
from reactor.backends.pollers.base import ERROR, READ, WRITE, Poller, PollerSelector
from reactor.ioloop import IOLoop, PollIOLoop
from reactor.testing.kqueue_emulation import EmulatedKqueuePoller


def _native_pollers() -> list[type[Poller]]:
    pollers: list[type[Poller]] = []
    for name in ("select", "poll", "epoll", "kqueue"):
        if backends.BACKENDS[name].unavailable_reason() is None:
            pollers.append(backends.BACKENDS[name].load())
        elif name == "kqueue":
            pollers.append(EmulatedKqueuePoller)
    return pollers


@pytest.fixture(params=_native_pollers(), ids=lambda cls: cls.name)
def poller(request: pytest.FixtureRequest) -> Iterator[Poller]:
    instance = request.param()
    yield instance
    instance.close()


def test_register_modify_unregister_contract(poller: Poller) -> None:
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), READ)
        with pytest.raises(FileExistsError):
            poller.register(a.fileno(), WRITE)
        assert poller.poll(0) == []
        b.send(b"x")
        assert poller.poll(0) == [(a.fileno(), READ)]
        poller.modify(a.fileno(), READ | WRITE)
        assert poller.poll(0) == [(a.fileno(), READ | WRITE)]
        poller.unregister(a.fileno())
        assert poller.poll(0) == []
        with pytest.raises(KeyError):
            poller.modify(a.fileno(), READ)
        with pytest.raises(KeyError):
            poller.unregister(a.fileno())


def test_poll_timeout_expires_empty(poller: Poller) -> None:
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), READ)
        assert poller.poll(0.01) == []


def test_errors_are_reported_unasked(poller: Poller) -> None:
    """Registered for WRITE only, a socket whose peer reset reports WRITE
    and/or ERROR: it never goes silent."""
    a, b = socket.socketpair()
    with a:
        poller.register(a.fileno(), WRITE)
        b.close()
        ((fd, events),) = poller.poll(1)
        assert fd == a.fileno() and events & (WRITE | ERROR)
        poller.unregister(a.fileno())


def test_native_loop_compacts_a_heap_of_cancelled_timers(poller: Poller) -> None:
    loop = PollIOLoop(backend=poller, make_current=False)
    try:
        handles = [loop.call_later(60 + i, lambda: None) for i in range(2000)]
        for handle in handles[:1900]:
            loop.remove_timeout(handle)
        loop.run_sync(lambda: None)
        assert len(loop._timeouts) == 100  # compacted, not 2000 lazily kept
    finally:
        loop.close()


def test_selector_view_runs_stdlib_asyncio(poller: Poller) -> None:
    """asyncio.SelectorEventLoop over our poller: a socket round trip."""
    selector = PollerSelector(type(poller)())
    loop = asyncio.SelectorEventLoop(selector)
    try:

        async def echo_once() -> bytes:
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            with a, b:
                await loop.sock_sendall(a, b"through our poller")
                return await loop.sock_recv(b, 100)

        assert loop.run_until_complete(echo_once()) == b"through our poller"
        assert loop.run_until_complete(asyncio.sleep(0.01, "slept")) == "slept"
    finally:
        loop.close()


def test_select_refuses_fds_beyond_fd_setsize() -> None:
    from reactor.backends.pollers.selectpoller import FD_SETSIZE, SelectPoller

    poller = SelectPoller()
    with pytest.raises(ValueError, match="FD_SETSIZE") as info:
        poller.register(FD_SETSIZE + 5, READ)
    assert "poll or epoll" in str(info.value)
    # The same refusal through the loop's add_handler.
    loop = IOLoop(backend="select", make_current=False)
    try:
        with pytest.raises(ValueError, match="FD_SETSIZE"):
            loop.add_handler(FD_SETSIZE, lambda fd, events: None, IOLoop.READ)
    finally:
        loop.close()
