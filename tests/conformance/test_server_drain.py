"""A server's graceful drain, on every backend: ``TCPServer.stop()`` and
``HTTPServer.close_all_connections(timeout)``.

What is checked, each through real sockets and real clients (raw sockets,
``http.client`` in a thread, our AsyncHTTPClient, the ``websockets``
package's client in a thread):

- ``stop()`` serves the connections the kernel completed already (in the
  listen backlog) instead of resetting them, then closes the listener;
- a request in flight when the drain starts gets its whole response, with
  ``Connection: close``; if its headers went out already, the connection
  closes when the response ends; requests pipelined behind it never reach
  the application, and the close resets nothing;
- an idle keep-alive connection is closed; one whose next request is
  already in the socket, or comes just after the drain began (as a load
  generator's does), is answered first, with ``Connection: close``;
- past the deadline, what is left is cut, and its handler's
  ``on_connection_close`` runs; ``timeout=0`` (the default, Tornado's)
  closes everything now;
- a detached connection's drain callback runs (registered before or after
  ``detach()``), and the drain waits for its stream to close; a WebSocket
  client sees 1001, and the drain waits for its closing handshake.
"""

from __future__ import annotations

import datetime
import http.client
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import websockets.exceptions
import websockets.sync.client

from reactor import gen, locks
from reactor.concurrent import Future
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPServerRequest
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.netutil import bind_sockets
from reactor.web import Application, RequestHandler
from reactor.websocket import WebSocketHandler
from tests import ws_raw

pytestmark = pytest.mark.usefixtures("reactor_log")

WAIT = 5.0
"""The bound of every wait, and the deadline of drains that must not reach theirs."""


async def bounded(awaitable: Any, timeout: float = WAIT) -> Any:
    return await gen.with_timeout(datetime.timedelta(seconds=timeout), awaitable)


class Gate:
    """What the slow handlers tell the test, and wait for."""

    def __init__(self) -> None:
        self.entered = locks.Event()
        self.release = locks.Event()
        self.cut = locks.Event()
        self.fast = 0


class Slow(RequestHandler):
    """Answers ``done`` once the test releases it."""

    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    async def get(self) -> None:
        self.gate.entered.set()
        await self.gate.release.wait()
        self.write("done")

    def on_connection_close(self) -> None:
        self.gate.cut.set()


class Streaming(RequestHandler):
    """Sends its headers and a first chunk, then the rest once released."""

    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    async def get(self) -> None:
        self.write("part;")
        await self.flush()
        self.gate.entered.set()
        await self.gate.release.wait()
        self.write("rest")


class Fast(RequestHandler):
    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    def get(self) -> None:
        self.gate.fast += 1
        self.write("fast")


class Socket(WebSocketHandler):
    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    def open(self, *args: str, **kwargs: str) -> None:
        self.gate.entered.set()

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)

    def on_close(self) -> None:
        self.gate.cut.set()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def served(io_loop: IOLoop, gate: Gate) -> Iterator[tuple[HTTPServer, int]]:
    app = Application(
        [
            ("/slow", Slow, {"gate": gate}),
            ("/streaming", Streaming, {"gate": gate}),
            ("/fast", Fast, {"gate": gate}),
            ("/ws", Socket, {"gate": gate}),
        ]
    )
    server = HTTPServer(app)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    yield server, sock.getsockname()[1]

    async def finish() -> None:
        # Handlers still waiting (cut by a drain) end, rather than being
        # garbage collected pending.
        gate.release.set()
        for _ in range(5):
            await gen.moment
        server.stop()
        await server.close_all_connections(timeout=0)

    io_loop.run_sync(finish, timeout=WAIT)


async def connect(port: int) -> IOStream:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await bounded(stream.connect(("127.0.0.1", port)))
    return stream


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def read_until_eof(sock: socket.socket) -> bytes:
    """Read a blocking socket until the peer closes; a reset raises."""
    sock.settimeout(WAIT)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def responses_in(data: bytes) -> list[tuple[bytes, bytes]]:
    """(head, body) of each Content-Length response in ``data``."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        found.append((head, rest[:length]))
        data = rest[length:]
    return found


# -- under load ----------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
async def test_a_drain_under_wrk_loses_no_request(
    io_loop: IOLoop, served: tuple[HTTPServer, int]
) -> None:
    """wrk keeps 20 keep-alive connections busy through the drain: every
    request it sent is answered (no read error: a request cut or never
    answered ends in one; no timeout; no status but 200), and the responses
    it counts are the ones the server finished. Its reconnections after
    ``Connection: close`` meet the closed listener, which wrk counts as
    write errors (a refused non-blocking connect shows on the first write):
    those lose nothing, no request went out."""
    server, port = served
    wrk = subprocess.Popen(
        ["wrk", "-t1", "-c20", "-d2s", "--timeout", "2s", f"http://127.0.0.1:{port}/fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = io_loop.time() + WAIT
        while server.stats()["requests_served"] < 200:
            assert io_loop.time() < deadline and wrk.poll() is None, "wrk sent too little"
            await gen.sleep(0.01)
        server.stop()
        await bounded(server.close_all_connections(timeout=WAIT), 2 * WAIT)  # past the deadline
        served_at_end = server.stats()["requests_served"]
        out, _ = await io_loop.run_in_executor(None, lambda: wrk.communicate(timeout=WAIT))
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    report = out.decode(errors="replace")
    assert wrk.returncode == 0, report
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    if errors is not None:
        _, read, _, timeout = (int(n) for n in errors.groups())
        assert (read, timeout) == (0, 0), report
    assert "Non-2xx" not in report, report
    total = re.search(r"(\d+) requests in", report)
    assert total is not None and int(total.group(1)) == served_at_end, report


# -- stop() ------------------------------------------------------------------------------


async def test_stop_serves_the_connections_waiting_in_the_backlog(
    io_loop: IOLoop, served: tuple[HTTPServer, int]
) -> None:
    server, port = served
    # The kernel completes these handshakes; the loop has not run since, so
    # they wait in the listen backlog, not accepted.
    clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(get("/fast"))
        server.stop()
        server.stop()  # idempotent
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
        for client in clients:
            client.settimeout(WAIT)
            conn = http.client.HTTPResponse(client)
            answers = await io_loop.run_in_executor(None, lambda c=conn: (c.begin(), c.read()))
            assert conn.status == 200 and answers[1] == b"fast"
    finally:
        for client in clients:
            client.close()


# -- requests in flight ------------------------------------------------------------------


async def test_request_in_flight_gets_its_whole_response_with_connection_close(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    client = AsyncHTTPClient(force_instance=True)
    try:
        fetch = client.fetch(f"http://127.0.0.1:{port}/slow", request_timeout=WAIT)
        await bounded(gate.entered.wait())
        assert not server.draining
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        await gen.moment
        assert server.draining
        assert not drain.done()  # no deadline: it waits for the handler
        gate.release.set()
        response = await bounded(fetch)
        assert response.code == 200 and response.body == b"done"
        assert response.headers["Connection"] == "close"
        await bounded(drain)
        assert not gate.cut.is_set()  # it finished: nothing was cut
    finally:
        client.close()


async def test_response_begun_before_the_drain_ends_with_a_close(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    stream = await connect(port)
    await stream.write(get("/streaming"))
    head = await bounded(stream.read_until(b"\r\n\r\n"))
    await bounded(gate.entered.wait())
    assert b"Transfer-Encoding: chunked" in head and b"Connection: close" not in head
    server.stop()
    drain = gen.convert_yielded(server.close_all_connections(timeout=None))
    gate.release.set()
    rest = await bounded(stream.read_until_close())  # the close ends it
    assert rest == b"5\r\npart;\r\n4\r\nrest\r\n0\r\n\r\n"
    await bounded(drain)


async def test_requests_pipelined_behind_the_one_in_flight_are_not_started(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        client.sendall(get("/slow") + get("/fast") + get("/fast"))
        await bounded(gate.entered.wait())
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        gate.release.set()
        # A reset would raise here: the close must not destroy the answer.
        data = await io_loop.run_in_executor(None, read_until_eof, client)
        client.close()  # the server lingers until the client is done too
        await bounded(drain)
    finally:
        client.close()
    [(head, body)] = responses_in(data)
    assert head.startswith(b"HTTP/1.1 200") and body == b"done"
    assert b"Connection: close" in head
    assert gate.fast == 0


# -- idle connections ----------------------------------------------------------------------


async def test_idle_keep_alive_connection_is_closed(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)

    def one_request() -> tuple[bytes, str | None]:
        conn.request("GET", "/fast")
        response = conn.getresponse()
        return response.read(), response.getheader("Connection")

    try:
        body, connection = await io_loop.run_in_executor(None, one_request)
        assert body == b"fast" and connection is None  # kept alive
        server.stop()
        # No deadline: it returns because the idle connection was closed.
        await bounded(server.close_all_connections(timeout=None))
        assert conn.sock is not None
        assert await io_loop.run_in_executor(None, conn.sock.recv, 1) == b""
    finally:
        conn.close()


async def test_a_next_request_begun_is_answered_with_connection_close(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    """A keep-alive connection that has sent part of its next request when
    the drain starts (read by the server already, or still in its socket:
    either way) is not idle: that request is answered, then it closes."""
    server, port = served
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        client.sendall(get("/fast"))
        client.settimeout(WAIT)
        first = http.client.HTTPResponse(client)
        await io_loop.run_in_executor(None, lambda: (first.begin(), first.read()))
        assert first.getheader("Connection") is None  # kept alive
        request = get("/fast")
        client.sendall(request[:20])
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        while not server.draining:
            await gen.moment
        client.sendall(request[20:])
        data = await io_loop.run_in_executor(None, read_until_eof, client)
        client.close()
        await bounded(drain)
    finally:
        client.close()
    [(head, body)] = responses_in(data)
    assert body == b"fast" and b"Connection: close" in head


async def test_next_request_sent_just_after_the_drain_began_is_answered(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    """A client that had its answer just before the drain and sends its
    next request just after: what wrk does on every connection. It is
    answered with ``Connection: close`` (closed at once, it would have been
    a request lost), then the connection closes."""
    server, port = served
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        client.sendall(get("/fast"))
        client.settimeout(WAIT)
        first = http.client.HTTPResponse(client)
        await io_loop.run_in_executor(None, lambda: (first.begin(), first.read()))
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        while not server.draining:
            await gen.moment
        await gen.moment
        client.sendall(get("/fast"))
        data = await io_loop.run_in_executor(None, read_until_eof, client)
        client.close()
        await bounded(drain)
    finally:
        client.close()
    [(head, body)] = responses_in(data)
    assert body == b"fast" and b"Connection: close" in head


async def test_connections_that_never_sent_a_byte_are_closed(
    io_loop: IOLoop, served: tuple[HTTPServer, int]
) -> None:
    server, port = served
    streams = [await connect(port) for _ in range(3)]
    await gen.sleep(0)  # let the server accept them
    while server._open < 3:
        await gen.sleep(0.01)
    server.stop()
    await bounded(server.close_all_connections(timeout=None))
    for stream in streams:
        assert await bounded(stream.read_until_close()) == b""


# -- the deadline --------------------------------------------------------------------------


async def test_handler_past_the_deadline_is_cut_and_told(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    stream = await connect(port)
    await stream.write(get("/slow"))
    await bounded(gate.entered.wait())
    server.stop()
    await bounded(server.close_all_connections(timeout=0.2))
    assert gate.cut.is_set()  # on_connection_close ran before the drain returned
    assert await bounded(stream.read_until_close()) == b""  # cut: no response


@pytest.mark.parametrize("how", ["timeout=0", "default"])
async def test_timeout_zero_closes_everything_now(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate, how: str
) -> None:
    server, port = served
    idle = await connect(port)
    await idle.write(get("/fast"))
    await bounded(idle.read_until(b"fast"))
    busy = await connect(port)
    await busy.write(get("/slow"))
    await bounded(gate.entered.wait())
    server.stop()
    if how == "default":
        await bounded(server.close_all_connections())  # Tornado's behaviour
    else:
        await bounded(server.close_all_connections(timeout=0))
    assert server.draining
    assert gate.cut.is_set()
    assert await bounded(busy.read_until_close()) == b""
    assert await bounded(idle.read_until_close()) == b""


# -- detached connections --------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
async def test_detached_connection_gets_its_drain_callback(io_loop: IOLoop, when: str) -> None:
    streams: list[IOStream] = []

    def take_over(request: HTTPServerRequest) -> None:
        connection: Any = request.connection

        def say_bye() -> None:
            stream.write(b"bye\n").add_done_callback(lambda _: stream.close())

        if when == "before":
            connection.set_drain_callback(say_bye)
        stream = connection.detach()
        if when == "after":
            connection.set_drain_callback(say_bye)
        streams.append(stream)
        stream.write(b"hello\n")

    server = HTTPServer(take_over)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    client = await connect(sock.getsockname()[1])
    try:
        await client.write(get("/"))
        assert await bounded(client.read_until(b"\n")) == b"hello\n"
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        assert await bounded(client.read_until_close()) == b"bye\n"
        await bounded(drain)
        assert streams[0].closed()
    finally:
        client.close()
        await server.close_all_connections(timeout=0)


async def test_detached_connection_without_a_callback_is_cut_at_the_deadline(
    io_loop: IOLoop,
) -> None:
    def take_over(request: HTTPServerRequest) -> None:
        request.connection.detach()  # type: ignore[union-attr]

    server = HTTPServer(take_over)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    client = await connect(sock.getsockname()[1])
    try:
        await client.write(get("/"))
        while not server._detached:
            await gen.sleep(0.01)
        server.stop()
        await bounded(server.close_all_connections(timeout=0.2))
        assert await bounded(client.read_until_close()) == b""
    finally:
        client.close()


async def test_websocket_client_sees_1001_going_away(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    """The ``websockets`` package's own client (its sync API, in a thread)."""
    server, port = served
    opened: Future[None] = Future()

    def client() -> tuple[int, str]:
        with websockets.sync.client.connect(
            f"ws://127.0.0.1:{port}/ws", open_timeout=WAIT, close_timeout=WAIT
        ) as ws:
            ws.send("hi")
            assert ws.recv(timeout=WAIT) == "hi"
            io_loop.add_callback(opened.set_result, None)
            try:
                ws.recv(timeout=WAIT)
            except websockets.exceptions.ConnectionClosed as e:
                assert e.rcvd is not None
                return e.rcvd.code, e.rcvd.reason
        raise AssertionError("no close")

    result = io_loop.run_in_executor(None, client)
    await bounded(opened)
    server.stop()
    await bounded(server.close_all_connections(timeout=None))
    assert await bounded(result) == (1001, "")
    assert gate.cut.is_set()  # the handler's on_close ran


async def test_drain_waits_for_the_websocket_closing_handshake(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    """A raw client that answers the server's Close only when the test says."""
    server, port = served
    ws = await ws_raw.RawWebSocket.connect(port, "/ws")
    try:
        ws.check_accept()
        await bounded(gate.entered.wait())
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        [close] = await ws.read_frames_until_close()
        assert close.close_code == 1001
        await gen.moment
        assert not drain.done()  # the handshake is not over
        await ws.write(ws_raw.close(1001))
        await ws.expect_eof()
        await bounded(drain)
    finally:
        ws.close()


async def test_websocket_that_never_answers_is_cut_at_the_deadline(
    io_loop: IOLoop, served: tuple[HTTPServer, int], gate: Gate
) -> None:
    server, port = served
    ws = await ws_raw.RawWebSocket.connect(port, "/ws")
    try:
        ws.check_accept()
        await bounded(gate.entered.wait())
        server.stop()
        await bounded(server.close_all_connections(timeout=0.3))
        [close] = await ws.read_frames_until_close()
        assert close.close_code == 1001
        await ws.expect_eof()
        assert gate.cut.is_set()
    finally:
        ws.close()


# -- over TLS ------------------------------------------------------------------------------


async def test_drain_over_tls(io_loop: IOLoop, gate: Gate, tls_certificate: Any) -> None:
    """The idle check looks at the raw socket under TLS (and at what the TLS
    layer holds decrypted): an idle connection closes, a busy one is answered."""
    app = Application([("/slow", Slow, {"gate": gate}), ("/fast", Fast, {"gate": gate})])
    server = HTTPServer(app, ssl_options=tls_certificate.server_context())
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    client = AsyncHTTPClient(force_instance=True)
    idle = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        await bounded(idle.connect(("127.0.0.1", port)))
        tls = await bounded(
            idle.start_tls(False, tls_certificate.client_context(), server_hostname="localhost")
        )
        await tls.write(get("/fast"))
        await bounded(tls.read_until(b"fast"))
        fetch = client.fetch(
            f"https://localhost:{port}/slow",
            ssl_options=tls_certificate.client_context(),
            request_timeout=WAIT,
        )
        await bounded(gate.entered.wait())
        server.stop()
        drain = gen.convert_yielded(server.close_all_connections(timeout=None))
        assert await bounded(tls.read_until_close()) == b""  # the idle one closes
        gate.release.set()
        response = await bounded(fetch)
        assert response.body == b"done" and response.headers["Connection"] == "close"
        await bounded(drain)
    finally:
        client.close()
        idle.close()
        server.stop()
        await server.close_all_connections()
