"""Tornado's Configurable pattern on IOLoop, HTTPServer, AsyncHTTPClient and
the resolvers, and the constructors' defaults (issue 9, items 15 and 16)."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import backends, netutil, tcpserver
from reactor.backends.loops.asyncioloop import AsyncioLoop
from reactor.http1connection import HTTP1ConnectionParameters
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop, PollIOLoop
from reactor.netutil import (
    BlockingResolver,
    DefaultExecutorResolver,
    OverrideResolver,
    Resolver,
    ThreadedResolver,
)
from reactor.util import Configurable

# -- the pattern itself -----------------------------------------------------------


class Shape(Configurable):
    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return Shape

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        return Square


class Square(Shape):
    def __init__(self, side: int = 1, colour: str = "red") -> None:
        self.side = side
        self.colour = colour
        self.inits = getattr(self, "inits", 0) + 1


class Circle(Shape):
    """Tornado's style: set-up in initialize, no __init__."""

    def initialize(self, radius: int = 1, colour: str = "blue") -> None:
        self.radius = radius
        self.colour = colour
        self.initializations = getattr(self, "initializations", 0) + 1


class LabelledSquare(Square):
    """A Tornado-style subclass of a class that uses __init__."""

    def initialize(self, label: str = "", **kwargs: Any) -> None:
        self.label = label
        super().initialize(**kwargs)


@pytest.fixture
def restore_shape() -> Iterator[None]:
    saved = Shape._save_configuration()
    try:
        yield
    finally:
        Shape._restore_configuration(saved)


@pytest.mark.usefixtures("restore_shape")
def test_base_builds_the_configured_class_with_merged_arguments() -> None:
    assert type(Shape()) is Square
    Shape.configure(Circle, radius=5, colour="green")
    assert Shape.configured_class() is Circle
    circle = Shape(colour="black")
    assert type(circle) is Circle
    assert (circle.radius, circle.colour, circle.initializations) == (5, "black", 1)
    Shape.configure(None)
    assert Shape.configured_class() is Square


@pytest.mark.usefixtures("restore_shape")
def test_init_runs_once_with_the_configured_arguments() -> None:
    Shape.configure(Square, side=3)
    square = Shape(colour="white")
    assert (square.side, square.colour, square.inits) == (3, "white", 1)


@pytest.mark.usefixtures("restore_shape")
def test_a_subclass_named_directly_ignores_the_configuration() -> None:
    Shape.configure(Circle, radius=5)
    square = Square(side=2)
    assert (type(square), square.side) == (Square, 2)
    assert Circle().radius == 1


@pytest.mark.usefixtures("restore_shape")
def test_an_initialize_override_reaches_init_through_super() -> None:
    Shape.configure("tests.conformance.test_configurable.LabelledSquare", label="a", side=4)
    shape = Shape()
    assert isinstance(shape, LabelledSquare)
    assert (shape.label, shape.side, shape.inits) == ("a", 4, 1)


@pytest.mark.usefixtures("restore_shape")
def test_configure_refuses_what_is_not_a_subclass_and_changes_nothing() -> None:
    Shape.configure(Circle)
    with pytest.raises(TypeError, match="Shape subclass"):
        Shape.configure(int)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # Tornado's exception, too
        Shape.configure(Resolver)
    with pytest.raises(ImportError):
        Shape.configure("tests.conformance.no_such_module.Shape")
    with pytest.raises(ImportError, match="import path"):
        Shape.configure("Circle")
    assert Shape.configured_class() is Circle


@pytest.mark.usefixtures("restore_shape")
def test_save_and_restore_configuration() -> None:
    Shape.configure(Circle, radius=2)
    saved = Shape._save_configuration()
    Shape.configure(None)
    Shape._restore_configuration(saved)
    assert Shape().radius == 2  # type: ignore[attr-defined]


# -- IOLoop -----------------------------------------------------------------------


@pytest.fixture
def restore_loop_configuration() -> Iterator[None]:
    saved = IOLoop._save_configuration()
    try:
        yield
    finally:
        IOLoop._restore_configuration(saved)


def test_ioloop_is_configurable(io_loop: IOLoop) -> None:
    assert issubclass(IOLoop, Configurable)
    assert IOLoop.configurable_base() is IOLoop
    assert isinstance(io_loop, IOLoop.configured_class())


@pytest.mark.usefixtures("restore_loop_configuration")
def test_configure_kwargs_reach_every_loop_built_afterwards(
    io_loop: IOLoop, reactor_backend: Any
) -> None:
    IOLoop.configure(reactor_backend, make_current=False)
    loops = [IOLoop(), IOLoop()]
    try:
        assert IOLoop.current() is io_loop
        assert {loop.backend_name for loop in loops} == {io_loop.backend_name}
        # The call's own arguments win over configure's.
        loops.append(IOLoop(make_current=True))
        assert IOLoop.current() is loops[-1]
    finally:
        io_loop.make_current()
        for loop in loops:
            loop.close()


@pytest.mark.usefixtures("restore_loop_configuration")
def test_configure_takes_tornados_dotted_class_path(io_loop: IOLoop) -> None:
    IOLoop.configure("reactor.backends.loops.asyncioloop.AsyncioLoop")
    assert IOLoop.configured_class() is AsyncioLoop
    assert IOLoop.configured_backend() == "reactor.backends.loops.asyncioloop:AsyncioLoop"
    loop = IOLoop(make_current=False)
    try:
        assert type(loop) is AsyncioLoop
    finally:
        loop.close()


@pytest.mark.usefixtures("restore_loop_configuration")
def test_configured_class_of_a_native_backend_is_pollioloop(io_loop: IOLoop) -> None:
    IOLoop.configure("select")
    assert IOLoop.configured_class() is PollIOLoop
    assert IOLoop.configured_backend() == "select"


@pytest.mark.usefixtures("restore_loop_configuration")
def test_a_tornado_style_loop_subclass_with_initialize(io_loop: IOLoop) -> None:
    base = type(io_loop)
    calls: list[str] = []

    def initialize(self: Any, label: str = "", **kwargs: Any) -> None:
        calls.append(label)
        base.initialize(self, **kwargs)

    labelled = type("LabelledLoop", (base,), {"initialize": initialize})
    # A native loop's subclass is told its poller; a bridge needs nothing.
    extra = {"backend": type(io_loop._poller)} if isinstance(io_loop, PollIOLoop) else {}
    IOLoop.configure(labelled, label="configured", **extra)
    loop = IOLoop(make_current=False)
    try:
        assert type(loop) is labelled
        assert calls == ["configured"]
        assert loop.backend_name == io_loop.backend_name
        assert loop.run_sync(lambda: 42) == 42
    finally:
        loop.close()


@pytest.mark.usefixtures("restore_loop_configuration")
def test_configure_refuses_bad_input_and_keeps_the_old_choice(io_loop: IOLoop) -> None:
    IOLoop.configure("select")
    with pytest.raises(backends.BackendError):
        IOLoop.configure("no-such-backend")
    with pytest.raises(TypeError):
        IOLoop.configure(int)
    with pytest.raises(TypeError, match="interface"):
        IOLoop.configure(IOLoop)
    assert IOLoop.configured_backend() == "select"


def test_ioloop_wraps_a_given_asyncio_loop(io_loop: IOLoop) -> None:
    """``IOLoop(asyncio_loop=...)`` as Tornado's AsyncIOLoop: whatever the
    configured backend, the result runs on that asyncio loop."""
    aloop = asyncio.new_event_loop()
    try:
        loop = IOLoop(asyncio_loop=aloop, make_current=False)
        try:
            assert isinstance(loop, AsyncioLoop)
            assert loop.asyncio_loop is aloop

            async def which() -> asyncio.AbstractEventLoop:
                return asyncio.get_running_loop()

            assert loop.run_sync(which) is aloop
        finally:
            loop.close()
        assert not aloop.is_closed()  # the bridge does not own it
    finally:
        aloop.close()


def test_a_native_backend_named_with_an_asyncio_loop_is_refused(io_loop: IOLoop) -> None:
    aloop = asyncio.new_event_loop()
    try:
        with pytest.raises(backends.BackendError, match="cannot wrap an asyncio loop"):
            IOLoop(backend="select", asyncio_loop=aloop)
    finally:
        aloop.close()


# -- HTTPServer ----------------------------------------------------------------------


class TaggingServer(HTTPServer):
    """Tornado's way of extending HTTPServer: override initialize."""

    def initialize(self, *args: Any, tag: str = "", **kwargs: Any) -> None:
        self.tag = tag
        super().initialize(*args, **kwargs)


@pytest.fixture
def restore_server_configuration() -> Iterator[None]:
    saved = HTTPServer._save_configuration()
    try:
        yield
    finally:
        HTTPServer._restore_configuration(saved)


def _answer(request: HTTPServerRequest) -> None:
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": "0"})
    )
    request.connection.finish()


@pytest.mark.usefixtures("restore_server_configuration")
async def test_httpserver_configure_builds_the_subclass_and_it_serves(io_loop: IOLoop) -> None:
    assert HTTPServer.configurable_base() is HTTPServer
    assert HTTPServer.configured_class() is HTTPServer
    HTTPServer.configure(TaggingServer, tag="configured", no_keep_alive=True)
    server = HTTPServer(_answer)
    assert type(server) is TaggingServer
    assert (server.tag, server.conn_params.no_keep_alive) == ("configured", True)
    sock, port = _bound()
    server.add_sockets([sock])
    try:
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(f"http://127.0.0.1:{port}/")
            assert response.code == 200
        finally:
            client.close()
    finally:
        server.stop()
        await server.close_all_connections()


def _bound() -> tuple[socket.socket, int]:
    [sock] = netutil.bind_sockets(0, "127.0.0.1")
    return sock, sock.getsockname()[1]


# -- AsyncHTTPClient -------------------------------------------------------------------


class CountingClient(AsyncHTTPClient):
    def initialize(self, counter: str = "", **kwargs: Any) -> None:  # type: ignore[override]
        self.counter = counter
        super().initialize(**kwargs)


@pytest.fixture
def restore_client_configuration() -> Iterator[None]:
    saved = AsyncHTTPClient._save_configuration()
    try:
        yield
    finally:
        AsyncHTTPClient._restore_configuration(saved)


@pytest.mark.usefixtures("restore_client_configuration")
def test_asynchttpclient_configure_and_the_per_loop_instance(io_loop: IOLoop) -> None:
    assert AsyncHTTPClient.configurable_base() is AsyncHTTPClient
    assert AsyncHTTPClient.configurable_default() is AsyncHTTPClient
    AsyncHTTPClient.configure(
        "tests.conformance.test_configurable.CountingClient", counter="c", max_clients=4
    )
    shared = AsyncHTTPClient()
    try:
        assert type(shared) is CountingClient
        assert (shared.counter, shared.max_clients) == ("c", 4)
        assert AsyncHTTPClient() is shared  # one per loop
        private = AsyncHTTPClient(force_instance=True, max_clients=7)
        assert private is not shared and private.max_clients == 7
        private.close()
    finally:
        shared.close()
    with pytest.raises(ValueError):
        AsyncHTTPClient.configure(Resolver)


# -- resolvers -----------------------------------------------------------------------


@pytest.fixture
def restore_resolver() -> Iterator[None]:
    saved = Resolver._save_configuration()
    try:
        yield
    finally:
        Resolver._restore_configuration(saved)


class TableResolver(Resolver):
    """A Tornado-style resolver: initialize, not __init__."""

    def initialize(self, table: dict[str, str]) -> None:
        self.table = table


@pytest.mark.usefixtures("restore_resolver")
async def test_resolver_configure_as_in_tornado(io_loop: IOLoop) -> None:
    assert Resolver.configurable_base() is Resolver
    Resolver.configure("reactor.netutil.ThreadedResolver", num_threads=2)
    resolver = Resolver()
    assert type(resolver) is ThreadedResolver
    resolver.close()
    Resolver.configure(TableResolver, table={"a": "b"})
    table = Resolver()
    assert isinstance(table, TableResolver) and table.table == {"a": "b"}
    override = OverrideResolver(resolver=BlockingResolver(), mapping={"x.test": "127.0.0.1"})
    assert await override.resolve("x.test", 80, socket.AF_INET) == [
        (socket.AF_INET, ("127.0.0.1", 80))
    ]
    Resolver.configure(None)
    assert type(Resolver()) is DefaultExecutorResolver


def test_blocking_resolver_answers_at_once(io_loop: IOLoop) -> None:
    future = BlockingResolver().resolve("127.0.0.1", 80, socket.AF_INET)
    assert future.done()
    assert future.result() == [(socket.AF_INET, ("127.0.0.1", 80))]


# -- defaults (item 16) ----------------------------------------------------------------


def _default(func: Any, name: str) -> Any:
    return inspect.signature(func).parameters[name].default


def test_make_current_defaults_to_true_as_in_tornado() -> None:
    for cls in (IOLoop, PollIOLoop, AsyncioLoop):
        assert _default(cls.__init__, "make_current") is True, cls


def test_backlog_default_is_1024_everywhere() -> None:
    """Deliberately larger than Tornado's 128 (see docs/streams.md)."""
    assert netutil._DEFAULT_BACKLOG == 1024
    for func in (
        netutil.bind_sockets,
        netutil.bind_unix_socket,
        tcpserver.TCPServer.listen,
        tcpserver.TCPServer.bind,
    ):
        assert _default(func, "backlog") == 1024, func


def test_httpserver_defaults(io_loop: IOLoop) -> None:
    assert _default(HTTPServer.__init__, "header_timeout") == 30.0
    assert _default(HTTP1ConnectionParameters.__init__, "header_timeout") == 30.0
    params = HTTPServer(_answer).conn_params
    assert (params.chunk_size, params.max_header_size) == (65536, 65536)
    assert (params.header_timeout, params.idle_timeout, params.body_timeout) == (30.0, 3600, None)
    assert params.max_body_size == 100 * 1024 * 1024
    assert (params.no_keep_alive, params.decompress) == (False, False)


def test_a_short_idle_connection_timeout_bounds_the_header_timeout(io_loop: IOLoop) -> None:
    """Tornado waits at most ``idle_connection_timeout`` for headers."""
    assert HTTPServer(_answer, idle_connection_timeout=5).conn_params.header_timeout == 5
    assert HTTPServer(_answer, idle_connection_timeout=60).conn_params.header_timeout == 30


def test_max_body_size_follows_max_buffer_size_as_in_tornado(io_loop: IOLoop) -> None:
    assert HTTPServer(_answer, max_buffer_size=1000).conn_params.max_body_size == 1000
    both = HTTPServer(_answer, max_buffer_size=1000, max_body_size=500)
    assert both.conn_params.max_body_size == 500
