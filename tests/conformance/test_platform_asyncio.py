"""reactor.platform.asyncio: Tornado's asyncio names on reactor's asyncio bridge.

``AsyncIOLoop`` and ``AsyncIOMainLoop`` *are* the asyncio backend, so their
tests make their own loops and do not depend on the parametrised backend
(they run once). ``to_asyncio_future`` and ``SelectorThread`` work over any
loop's asyncio face, so their tests take ``io_loop`` and run on every backend.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen
from reactor.backends.loops.asyncioloop import AsyncioLoop
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.platform import asyncio as platform_asyncio
from reactor.platform.asyncio import (
    AddThreadSelectorEventLoop,
    AsyncIOLoop,
    AsyncIOMainLoop,
    BaseAsyncIOLoop,
    SelectorThread,
    to_asyncio_future,
    to_tornado_future,
)
from reactor.testing import bind_unused_port

WAIT = 4.0


def hello(request: HTTPServerRequest) -> None:
    body = b"hello from " + IOLoop.current().backend_name.encode()
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


async def fetch_from_own_server() -> bytes:
    """Serve on 127.0.0.1 and fetch from it, on the current loop."""
    sock, port = bind_unused_port()
    server = HTTPServer(hello)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(f"http://127.0.0.1:{port}/")
        return response.body
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
        sock.close()


@pytest.fixture
def restore_loop_config() -> Iterator[None]:
    saved = IOLoop._save_configuration()
    try:
        yield
    finally:
        IOLoop._restore_configuration(saved)
        IOLoop.clear_current()


# -- AsyncIOLoop / AsyncIOMainLoop: the asyncio backend by definition --------------------


def test_asyncio_loop_is_the_asyncio_bridge(restore_loop_config: None) -> None:
    loop = AsyncIOLoop()
    try:
        assert isinstance(loop, BaseAsyncIOLoop)
        assert isinstance(loop, AsyncioLoop)
        assert loop.backend_name == "asyncio"
        assert IOLoop.current() is loop  # made current, as in Tornado
        assert isinstance(loop.asyncio_loop, asyncio.AbstractEventLoop)
        assert loop.run_sync(fetch_from_own_server, timeout=WAIT) == b"hello from asyncio"
    finally:
        loop.close()
    assert loop.asyncio_loop.is_closed()  # it owned its asyncio loop


def test_asyncio_loop_over_a_given_loop(restore_loop_config: None) -> None:
    aloop = asyncio.new_event_loop()
    try:
        loop = AsyncIOLoop(asyncio_loop=aloop, make_current=False)
        assert loop.asyncio_loop is aloop
        with pytest.raises(RuntimeError, match="already wraps"):
            AsyncIOLoop(asyncio_loop=aloop, make_current=False)
        assert loop.run_sync(fetch_from_own_server, timeout=WAIT) == b"hello from asyncio"
        loop.close()
        assert not aloop.is_closed()  # not its own: left open (docs/migration.md)
    finally:
        aloop.close()


def test_configure_by_tornado_path(restore_loop_config: None) -> None:
    IOLoop.configure("reactor.platform.asyncio.AsyncIOLoop")
    loop = IOLoop()
    try:
        assert type(loop) is AsyncIOLoop
        assert IOLoop.configured_class() is AsyncIOLoop
        assert loop.run_sync(fetch_from_own_server, timeout=WAIT) == b"hello from asyncio"
    finally:
        loop.close()


def test_asyncio_main_loop_wraps_the_current_asyncio_loop(restore_loop_config: None) -> None:
    aloop = asyncio.new_event_loop()
    asyncio.set_event_loop(aloop)
    try:
        loop = AsyncIOMainLoop()
        assert loop.asyncio_loop is aloop
        assert IOLoop.current() is loop
        assert isinstance(loop, BaseAsyncIOLoop)
        body = aloop.run_until_complete(fetch_from_own_server())
        assert body == b"hello from asyncio"
        loop.close()
        assert aloop.is_closed()  # Tornado 5+: closing it closes the asyncio loop
    finally:
        asyncio.set_event_loop(None)
        aloop.close()


def test_asyncio_main_loop_inside_asyncio_run(restore_loop_config: None) -> None:
    async def main() -> tuple[bool, bytes]:
        loop = AsyncIOMainLoop(make_current=False)
        same = loop.asyncio_loop is asyncio.get_running_loop()
        # found again as the running asyncio loop's IOLoop
        same = same and IOLoop.current() is loop
        body = await fetch_from_own_server()
        return same, body  # asyncio.run closes the asyncio loop

    same, body = asyncio.run(main())
    assert same
    assert body == b"hello from asyncio"


def test_asyncio_main_loop_refuses_another_loop() -> None:
    aloop = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match="use AsyncIOLoop"):
            AsyncIOMainLoop(asyncio_loop=aloop)
    finally:
        aloop.close()


# -- the futures: on every backend -----------------------------------------------------


async def test_future_conversions(io_loop: IOLoop) -> None:
    @gen.coroutine
    def legacy() -> Any:
        yield gen.moment
        return "legacy"

    async def native() -> str:
        await asyncio.sleep(0)
        return "native"

    future = io_loop.asyncio_loop.create_future()
    assert to_tornado_future(future) is future
    converted = to_asyncio_future(native())
    assert isinstance(converted, asyncio.Future)
    assert await converted == "native"
    assert await to_asyncio_future(legacy()) == "legacy"
    assert await to_asyncio_future([native(), legacy()]) == ["native", "legacy"]


# -- AnyThreadEventLoopPolicy ---------------------------------------------------------------


def test_any_thread_policy_is_lazy_deprecated_and_works() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        platform_asyncio.NoSuchName  # noqa: B018
    policy_class = platform_asyncio.AnyThreadEventLoopPolicy
    assert platform_asyncio.AnyThreadEventLoopPolicy is policy_class  # made once
    with pytest.warns(DeprecationWarning, match="AnyThreadEventLoopPolicy is deprecated"):
        policy = policy_class()
    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    try:
        found: list[Any] = []

        def in_thread() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                loop = asyncio.get_event_loop()  # no loop here yet: made one
                found.append(loop)
                found.append(loop.run_until_complete(asyncio.sleep(0, "ran")))
                loop.close()

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join(WAIT)
        assert isinstance(found[0], asyncio.AbstractEventLoop)
        assert found[1] == "ran"
    finally:
        asyncio.set_event_loop_policy(old)


# -- SelectorThread: add_reader through a select() thread, on every backend ----------------


@pytest.fixture
def selector(io_loop: IOLoop) -> Iterator[SelectorThread]:
    thread = SelectorThread(io_loop.asyncio_loop)
    yield thread
    thread.close()


async def test_selector_thread_reader_and_writer(io_loop: IOLoop, selector: SelectorThread) -> None:
    r, w = socket.socketpair()
    r.setblocking(False)
    try:
        got: asyncio.Future[bytes] = io_loop.asyncio_loop.create_future()
        loop_thread = threading.get_ident()
        calls: list[int] = []

        def on_readable(sock: socket.socket) -> None:
            assert threading.get_ident() == loop_thread  # callbacks run on the loop
            calls.append(1)
            if len(calls) == 1:
                return  # not read: level-triggered, so it is reported again
            got.set_result(sock.recv(100))
            assert selector.remove_reader(sock) is True

        selector.add_reader(r, on_readable, r)
        w.send(b"ping")
        assert await asyncio.wait_for(got, WAIT) == b"ping"
        assert len(calls) == 2
        assert selector.remove_reader(r) is False

        writable: asyncio.Future[None] = io_loop.asyncio_loop.create_future()

        def on_writable() -> None:
            selector.remove_writer(w.fileno())
            writable.set_result(None)

        selector.add_writer(w.fileno(), on_writable)
        await asyncio.wait_for(writable, WAIT)
        assert selector.remove_writer(w) is False
    finally:
        r.close()
        w.close()


async def test_selector_thread_survives_a_closed_fd(
    io_loop: IOLoop, selector: SelectorThread
) -> None:
    r, w = socket.socketpair()
    fd = r.fileno()
    seen: asyncio.Future[str] = io_loop.asyncio_loop.create_future()

    def on_readable() -> None:
        # The fd was closed behind the selector's back: the callback meets
        # the error, as it would under a native loop, and removes itself.
        selector.remove_reader(fd)
        if not seen.done():
            seen.set_result("reported")

    selector.add_reader(fd, on_readable)
    r.close()
    selector.add_writer(w, lambda: None)  # wakes the selector on the stale set
    assert await asyncio.wait_for(seen, WAIT) == "reported"
    selector.remove_writer(w)
    # ... and the thread goes on serving the others
    r2, w2 = socket.socketpair()
    try:
        again: asyncio.Future[bytes] = io_loop.asyncio_loop.create_future()
        selector.add_reader(r2, lambda: again.set_result(r2.recv(10)) or selector.remove_reader(r2))
        w2.send(b"ok")
        assert await asyncio.wait_for(again, WAIT) == b"ok"
    finally:
        w.close()
        r2.close()
        w2.close()


async def test_selector_thread_callback_error_goes_to_the_handler(
    io_loop: IOLoop, selector: SelectorThread
) -> None:
    r, w = socket.socketpair()
    try:
        handled: asyncio.Future[BaseException] = io_loop.asyncio_loop.create_future()
        old = io_loop.asyncio_loop.get_exception_handler()
        io_loop.asyncio_loop.set_exception_handler(
            lambda loop, context: handled.done() or handled.set_result(context["exception"])
        )
        try:

            def fails() -> None:
                selector.remove_reader(r)
                raise ValueError("reader failed")

            selector.add_reader(r, fails)
            w.send(b"x")
            error = await asyncio.wait_for(handled, WAIT)
            assert isinstance(error, ValueError)
        finally:
            io_loop.asyncio_loop.set_exception_handler(old)
    finally:
        r.close()
        w.close()


def test_add_thread_selector_event_loop() -> None:
    real = asyncio.new_event_loop()
    loop = AddThreadSelectorEventLoop(real)
    r, w = socket.socketpair()
    try:
        assert loop.time() == pytest.approx(real.time(), abs=1.0)  # delegated
        assert not loop.is_closed()

        async def main() -> bytes:
            got: asyncio.Future[bytes] = real.create_future()

            def on_readable() -> None:
                loop.remove_reader(r)
                got.set_result(r.recv(10))

            loop.add_reader(r, on_readable)
            w.send(b"via thread")
            return await asyncio.wait_for(got, WAIT)

        assert loop.run_until_complete(main()) == b"via thread"
        assert loop._selector._thread.is_alive()
    finally:
        loop.close()
        r.close()
        w.close()
    assert real.is_closed()
    assert not loop._selector._thread.is_alive()
