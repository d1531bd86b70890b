"""Server counters, on every backend: ``TCPServer.stats()``,
``HTTPServer.stats()`` and ``TCPServer.instances()``.

Each counter is driven by real clients over real sockets: connections
opened and closed, requests answered, refused by the server (400, 413,
431), failed (a handler that raises: the application's 500, and a request
callback that raises: the server's own), WebSockets open, and the totals
that outlive the connections they were counted on.
"""

from __future__ import annotations

import datetime
import gc
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen, locks
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer
from reactor.testing import ExpectLog
from reactor.web import Application, RequestHandler
from reactor.websocket import WebSocketHandler, websocket_connect

pytestmark = pytest.mark.usefixtures("reactor_log")

WAIT = 5.0


async def bounded(awaitable: Any, timeout: float = WAIT) -> Any:
    return await gen.with_timeout(datetime.timedelta(seconds=timeout), awaitable)


async def until(condition: Any, timeout: float = WAIT) -> None:
    """Wait for ``condition()`` to hold (the server sees a close on its next iteration)."""
    loop = IOLoop.current()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await gen.sleep(0.005)


class Echo(TCPServer):
    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        try:
            while True:
                await stream.write(await stream.read_until(b"\n"))
        except StreamClosedError:
            pass


def listen(server: TCPServer) -> int:
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    return int(sock.getsockname()[1])


async def connect(port: int) -> IOStream:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await bounded(stream.connect(("127.0.0.1", port)))
    return stream


# -- TCPServer ------------------------------------------------------------------------------


async def test_tcp_server_counts_connections(io_loop: IOLoop) -> None:
    server = Echo()
    port = listen(server)
    try:
        assert server.stats() == {
            "connections_open": 0,
            "connections_accepted": 0,
            "accept_errors": 0,
            "accepting": 1,
        }
        clients = [await connect(port) for _ in range(3)]
        for client in clients:
            await client.write(b"hi\n")
            assert await bounded(client.read_until(b"\n")) == b"hi\n"
        stats = server.stats()
        assert stats["connections_open"] == 3 and stats["connections_accepted"] == 3
        clients.pop().close()
        await until(lambda: server.stats()["connections_open"] == 2)
        assert server.stats()["connections_accepted"] == 3
        server.stop()
        assert server.stats()["accepting"] == 0
        assert server.stats()["connections_open"] == 2  # stop() leaves them open
        for client in clients:
            client.close()
        await until(lambda: server.stats()["connections_open"] == 0)
    finally:
        server.stop()


async def test_instances_lists_the_live_servers(io_loop: IOLoop) -> None:
    gc.collect()  # servers of earlier tests, unreferenced, leave the weak set
    before = set(TCPServer.instances())
    tcp = Echo()
    http = HTTPServer(lambda request: None)
    assert tcp not in TCPServer.instances()  # no sockets, no connections yet
    port = listen(tcp)
    listen(http)
    try:
        assert {tcp, http} <= set(TCPServer.instances())
        assert http in HTTPServer.instances() and tcp not in HTTPServer.instances()
        client = await connect(port)
        await until(lambda: tcp.stats()["connections_open"] == 1)
        tcp.stop()
        http.stop()
        # Stopped, but a connection is still open: still reported.
        assert tcp in TCPServer.instances() and http not in TCPServer.instances()
        client.close()
        await until(lambda: tcp.stats()["connections_open"] == 0)
        assert set(TCPServer.instances()) == before
    finally:
        tcp.stop()
        http.stop()


# -- HTTPServer -----------------------------------------------------------------------------


class Gate:
    def __init__(self) -> None:
        self.entered = locks.Event()
        self.release = locks.Event()


class Slow(RequestHandler):
    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    async def get(self) -> None:
        self.gate.entered.set()
        await self.gate.release.wait()
        self.write("done")


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")

    def post(self) -> None:
        self.write("posted")


class Broken(RequestHandler):
    def get(self) -> None:
        raise RuntimeError("broken on purpose")


class Echoing(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def served(io_loop: IOLoop, gate: Gate) -> Iterator[tuple[HTTPServer, int]]:
    app = Application(
        [
            ("/", Hello),
            ("/slow", Slow, {"gate": gate}),
            ("/broken", Broken),
            ("/ws", Echoing),
        ]
    )
    server = HTTPServer(app, max_body_size=1024, max_header_size=2048)
    port = listen(server)
    yield server, port

    async def finish() -> None:
        gate.release.set()
        for _ in range(5):
            await gen.moment
        server.stop()
        await server.close_all_connections(timeout=0)

    io_loop.run_sync(finish, timeout=WAIT)


def request_stats(server: HTTPServer) -> dict[str, int]:
    stats = server.stats()
    return {
        key: value for key, value in stats.items() if key.startswith(("requests", "websockets"))
    }


async def exchange(port: int, data: bytes) -> bytes:
    stream = await connect(port)
    try:
        await stream.write(data)
        return bytes(await bounded(stream.read_until_close()))
    finally:
        stream.close()


async def test_http_server_counts_requests(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    assert request_stats(server) == {
        "requests_in_flight": 0,
        "requests_served": 0,
        "requests_refused": 0,
        "requests_failed": 0,
        "websockets_open": 0,
    }
    client = AsyncHTTPClient(force_instance=True)
    try:
        for _ in range(3):
            response = await bounded(client.fetch(f"http://127.0.0.1:{port}/"))
            assert response.body == b"hello"
        assert request_stats(server)["requests_served"] == 3
        slow = client.fetch(f"http://127.0.0.1:{port}/slow")
        await bounded(gate.entered.wait())
        assert request_stats(server)["requests_in_flight"] == 1
        assert server.stats()["connections_open"] >= 1
        gate.release.set()
        await bounded(slow)
        stats = request_stats(server)
        assert stats["requests_in_flight"] == 0 and stats["requests_served"] == 4
    finally:
        client.close()
    # The totals outlive the connections they were counted on.
    await until(lambda: server.stats()["connections_open"] == 0)
    assert request_stats(server)["requests_served"] == 4


async def test_requests_the_server_refuses_are_counted(
    io_loop: IOLoop, served: tuple[HTTPServer, int]
) -> None:
    server, port = served
    host = b"Host: 127.0.0.1\r\n"
    bad = await exchange(port, b"GET / HTTP/1.1\r\n" + host + b"Bad Header\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ")
    too_big = await exchange(
        port, b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000
    )
    assert too_big.startswith(b"HTTP/1.1 413 ")
    long_head = await exchange(
        port, b"GET / HTTP/1.1\r\n" + host + b"X: " + b"y" * 4096 + b"\r\n\r\n"
    )
    assert long_head.startswith(b"HTTP/1.1 431 ")
    await until(lambda: server.stats()["connections_open"] == 0)
    stats = request_stats(server)
    assert stats["requests_refused"] == 3
    assert stats["requests_served"] == 0 and stats["requests_failed"] == 0


async def test_failures_are_counted(io_loop: IOLoop, served: tuple[HTTPServer, int]) -> None:
    server, port = served
    with (
        ExpectLog("reactor.application", "Uncaught exception"),
        ExpectLog("reactor.access", "500 GET /broken"),
    ):
        answer = await exchange(
            port, b"GET /broken HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/1.1 500 ")
    stats = request_stats(server)
    assert stats["requests_failed"] == 1 and stats["requests_served"] == 1


async def test_a_request_callback_that_raises_is_a_failure(io_loop: IOLoop) -> None:
    def callback(request: HTTPServerRequest) -> None:
        if request.path == "/raise":
            raise RuntimeError("raised on purpose")
        request.connection.write_headers(  # type: ignore[union-attr]
            ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": "2"}), b"ok"
        )
        request.connection.finish()  # type: ignore[union-attr]

    server = HTTPServer(callback)
    port = listen(server)
    try:
        with ExpectLog("reactor.application", "Uncaught exception"):
            answer = await exchange(port, b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 500 ")
        answer = await exchange(port, b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.endswith(b"ok")
        await until(lambda: server.stats()["connections_open"] == 0)
        stats = request_stats(server)
        assert stats["requests_failed"] == 1 and stats["requests_served"] == 1
        assert stats["requests_refused"] == 0
    finally:
        server.stop()
        await server.close_all_connections()


async def test_websockets_are_counted_while_open(
    io_loop: IOLoop, served: tuple[HTTPServer, int]
) -> None:
    server, port = served
    ws = await bounded(websocket_connect(f"ws://127.0.0.1:{port}/ws"))
    try:
        await ws.write_message("hi")
        assert await bounded(ws.read_message()) == "hi"
        stats = server.stats()
        assert stats["websockets_open"] == 1
        assert stats["connections_open"] == 1  # a detached connection still counts
        assert stats["requests_served"] == 1  # its 101
        assert stats["requests_in_flight"] == 0
    finally:
        ws.close()
    await until(lambda: server.stats()["websockets_open"] == 0)
    assert server.stats()["connections_open"] == 0
