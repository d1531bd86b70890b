"""Limits that protect a server's process, on every backend.

- ``max_connections``: at the limit the server stops accepting, new
  connections wait in the kernel's backlog (their handshake done, their
  request sent, unanswered), and each close lets one more in; a detached
  connection (a WebSocket) counts until its stream closes.
- Out of file descriptors (a real EMFILE: a child process lowers its own
  ``RLIMIT_NOFILE``): the server does not spin (its CPU time stays far below
  the wall time that passes), keeps serving the connections it has, logs the
  condition once per stretch, and accepts the waiting clients once
  descriptors are free again.
- ``max_write_buffer_size``: a response written to a client that never
  reads is cut once it passes the bound (the connection closes, one log
  line, the handler hears of it), and so is a WebSocket whose queue does.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reactor import gen, locks
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer
from reactor.web import Application, RequestHandler
from reactor.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect
from tests import ws_raw

pytestmark = pytest.mark.usefixtures("reactor_log")

ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0


async def bounded(awaitable: Any, timeout: float = WAIT) -> Any:
    return await gen.with_timeout(datetime.timedelta(seconds=timeout), awaitable)


async def until(condition: Any, timeout: float = WAIT) -> None:
    loop = IOLoop.current()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await gen.sleep(0.005)


def listen(server: TCPServer) -> int:
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    return int(sock.getsockname()[1])


# -- max_connections ------------------------------------------------------------------------


class CountingEcho(TCPServer):
    """Echoes lines; counts the connections it handles at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now = 0
        self.peak = 0
        self.handled = 0

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.now += 1
        self.handled += 1
        self.peak = max(self.peak, self.now)
        try:
            while True:
                await stream.write(await stream.read_until(b"\n"))
        except StreamClosedError:
            pass
        finally:
            self.now -= 1


def test_max_connections_rejects_nothing(io_loop: IOLoop) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        TCPServer(max_connections=0)


async def test_past_max_connections_clients_wait_in_the_backlog(io_loop: IOLoop) -> None:
    server = CountingEcho(max_connections=2)
    port = listen(server)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(5)]
    try:
        for client in clients:
            client.sendall(b"hi\n")
        # The first two (the backlog is first in, first out) are served.
        for client in clients[:2]:
            assert await io_loop.run_in_executor(None, client.recv, 16) == b"hi\n"
        # The others stay in the backlog: run the loop a while (absence is
        # all there is to wait for) and nothing more is accepted.
        await gen.sleep(0.1)
        stats = server.stats()
        assert stats["connections_open"] == 2 and stats["connections_accepted"] == 2
        assert stats["accepting"] == 0
        assert select.select(clients[2:], [], [], 0)[0] == []  # no answer yet
        # Each close lets one more in.
        for i in range(2, 5):
            clients[i - 2].close()
            assert await io_loop.run_in_executor(None, clients[i].recv, 16) == b"hi\n"
            assert server.stats()["connections_open"] <= 2
        for client in clients[3:]:
            client.close()
        await until(lambda: server.stats()["connections_open"] == 0)
        assert server.stats()["accepting"] == 1
        assert server.handled == 5 and server.peak == 2
        assert server.stats()["connections_accepted"] == 5
    finally:
        for client in clients:
            client.close()
        server.stop()


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


class Echoing(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


async def test_a_websocket_counts_against_max_connections(io_loop: IOLoop) -> None:
    server = HTTPServer(Application([("/", Hello), ("/ws", Echoing)]), max_connections=1)
    port = listen(server)
    client = AsyncHTTPClient(force_instance=True)
    try:
        ws = await bounded(websocket_connect(f"ws://127.0.0.1:{port}/ws"))
        await ws.write_message("hi")
        assert await bounded(ws.read_message()) == "hi"
        fetch = client.fetch(f"http://127.0.0.1:{port}/", request_timeout=WAIT)
        await gen.sleep(0.1)  # absence: the request waits in the backlog
        assert not fetch.done()
        assert server.stats()["accepting"] == 0
        ws.close()
        response = await bounded(fetch)
        assert response.body == b"hello"
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


async def test_stop_takes_the_backlog_within_max_connections(io_loop: IOLoop) -> None:
    server = CountingEcho(max_connections=2)
    port = listen(server)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(4)]
    try:
        clients[0].sendall(b"one\n")
        assert await io_loop.run_in_executor(None, clients[0].recv, 16) == b"one\n"
        server.stop()  # one place left: one more accepted, the rest refused
        assert server.stats()["connections_accepted"] == 2
        clients[1].sendall(b"two\n")
        assert await io_loop.run_in_executor(None, clients[1].recv, 16) == b"two\n"
    finally:
        for client in clients:
            client.close()
    await until(lambda: server.stats()["connections_open"] == 0)


# -- out of file descriptors ---------------------------------------------------------------

SPARE_FDS = 8
"""How many descriptors the child leaves itself above those it has open."""

_CHILD = """
import json, logging, os, resource, sys
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.locks import Event
from reactor.netutil import bind_sockets

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
server = None

def handle(request):
    if request.path == "/stats":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        body = json.dumps(dict(server.stats(), cpu=usage.ru_utime + usage.ru_stime)).encode()
    else:
        body = b"hello"
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()

async def main():
    global server
    server = HTTPServer(handle)
    [sock] = bind_sockets(0, "127.0.0.1", backlog=256)
    server.add_sockets([sock])
    open_now = len(os.listdir("/proc/self/fd"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + SPARE, hard))
    print(sock.getsockname()[1], flush=True)
    await Event().wait()

IOLoop.current().run_sync(main)
"""


def _backend_env(reactor_backend: Any) -> dict[str, str]:
    spec = (
        reactor_backend
        if isinstance(reactor_backend, str)
        else f"{reactor_backend.__module__}:{reactor_backend.__qualname__}"
    )
    env = dict(os.environ, REACTOR_BACKEND=spec, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_out_of_file_descriptors_neither_spins_nor_stops(reactor_backend: Any) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", f"SPARE = {SPARE_FDS}\n{_CHILD}"],
        cwd=ROOT,
        env=_backend_env(reactor_backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    clients: list[socket.socket] = []
    control = None
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        # A connection made before the shortage: it must be served throughout.
        control = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)

        def stats() -> dict[str, Any]:
            assert control is not None
            control.request("GET", "/stats")
            return dict(json.loads(control.getresponse().read()))

        assert stats()["accept_errors"] == 0
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(40):  # far more than the child has descriptors for
            client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            client.sendall(request)
            clients.append(client)
        deadline = time.monotonic() + WAIT
        while stats()["accept_errors"] == 0:
            assert time.monotonic() < deadline, "the child never ran out of descriptors"
        # Out of descriptors: the loop must not spin. A window of wall time
        # (what is measured, not waited for) against the CPU time it used.
        before, start = stats(), time.monotonic()
        time.sleep(1.0)
        after, wall = stats(), time.monotonic() - start
        assert after["cpu"] - before["cpu"] < 0.3 * wall, (before, after)
        assert after["connections_open"] == before["connections_open"]
        assert after["connections_open"] < len(clients)
        # Clients answered leave; the ones waiting get in and are answered.
        pending = list(clients)
        deadline = time.monotonic() + 30.0
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} clients never answered"
            ready, _, _ = select.select(pending, [], [], 1.0)
            for client in ready:
                answer = client.recv(65536)
                assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"hello")
                client.close()
                pending.remove(client)
        final = stats()
        assert final["accept_errors"] >= 1
        assert final["connections_accepted"] == len(clients) + 1
        # And a new client is served at once.
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        fresh.request("GET", "/")
        assert fresh.getresponse().read() == b"hello"
        fresh.close()
    finally:
        for client in clients:
            client.close()
        if control is not None:
            control.close()
        child.terminate()
        _, err = child.communicate(timeout=WAIT)
    log = err.decode(errors="replace").splitlines()
    started = [line for line in log if "pausing accepting" in line]
    ended = [line for line in log if "works again" in line]
    # Logged once per stretch out of descriptors, not once per failed accept.
    assert started and all(line.startswith("WARNING") for line in started)
    assert len(ended) >= len(started) - 1 and all(line.startswith("INFO") for line in ended)
    assert len(started) <= final["accept_errors"]
    assert not [line for line in log if line.startswith(("ERROR", "Traceback"))], log


# -- max_write_buffer_size ------------------------------------------------------------------

WRITE_BOUND = 256 * 1024
CHUNK = 64 * 1024
MOST_CHUNKS = 512
"""A handler stops after this many chunks (32 MiB) should the bound not hold."""
KERNEL_ROOM = 8 * 1024 * 1024
"""More than loopback's socket buffers (the sender's auto-tuned, the receiver's) can take."""


class Flooder:
    """What a flooding handler reports."""

    def __init__(self) -> None:
        self.sent = 0
        self.cut = locks.Event()


class Flood(RequestHandler):
    """Writes without waiting for the client (no ``await`` on flush): only
    the server's bound stops it."""

    def initialize(self, flooder: Flooder) -> None:
        self.flooder = flooder

    async def get(self) -> None:
        chunk = b"x" * CHUNK
        for _ in range(MOST_CHUNKS):
            if self.flooder.cut.is_set():
                return
            self.write(chunk)
            self.flush()
            self.flooder.sent += CHUNK
            await gen.moment

    def on_connection_close(self) -> None:
        self.flooder.cut.set()


class FloodSocket(WebSocketHandler):
    def initialize(self, flooder: Flooder) -> None:
        self.flooder = flooder

    async def open(self, *args: str, **kwargs: str) -> None:
        chunk = "x" * CHUNK
        for _ in range(MOST_CHUNKS):
            try:
                self.write_message(chunk)
            except WebSocketClosedError:
                return
            self.flooder.sent += CHUNK
            await gen.moment

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        self.flooder.cut.set()


def non_reading_client(port: int, request: bytes) -> socket.socket:
    """A client with a small receive window that sends ``request`` and never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    sock.sendall(request)
    return sock


async def test_a_response_to_a_client_that_never_reads_is_cut(
    io_loop: IOLoop, reactor_log: Any
) -> None:
    flooder = Flooder()
    server = HTTPServer(
        Application([("/", Flood, {"flooder": flooder})]), max_write_buffer_size=WRITE_BOUND
    )
    port = listen(server)
    client = non_reading_client(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        await bounded(flooder.cut.wait())
        assert flooder.sent < KERNEL_ROOM + WRITE_BOUND
        await until(lambda: server.stats()["connections_open"] == 0)
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
    lines = [r for r in reactor_log.records if "max_write_buffer_size" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]


async def test_a_websocket_whose_queue_passes_the_bound_is_closed(
    io_loop: IOLoop, reactor_log: Any
) -> None:
    flooder = Flooder()
    server = HTTPServer(
        Application([("/ws", FloodSocket, {"flooder": flooder})]),
        max_write_buffer_size=WRITE_BOUND,
    )
    port = listen(server)
    ws = await ws_raw.RawWebSocket.connect(port, "/ws", receive_buffer=4096)
    try:
        ws.check_accept()
        await bounded(flooder.cut.wait())  # the handler's on_close ran
        assert flooder.sent < KERNEL_ROOM + WRITE_BOUND
        await until(lambda: server.stats()["websockets_open"] == 0)
        assert server.stats()["connections_open"] == 0
    finally:
        ws.close()
        server.stop()
        await server.close_all_connections()
    lines = [r for r in reactor_log.records if "max_write_buffer_size" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]


async def test_a_client_that_reads_is_not_cut(io_loop: IOLoop) -> None:
    """The bound is on what waits, not on what is sent: a large response
    written in pieces that are waited for goes through whole."""

    class Big(RequestHandler):
        async def get(self) -> None:
            for _ in range(64):
                self.write(b"y" * CHUNK)
                await self.flush()

    server = HTTPServer(Application([("/", Big)]), max_write_buffer_size=WRITE_BOUND)
    port = listen(server)
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await bounded(client.fetch(f"http://127.0.0.1:{port}/"))
        assert len(response.body) == 64 * CHUNK
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


async def test_application_listen_passes_the_limits_on(io_loop: IOLoop) -> None:
    server = Application([("/", Hello)]).listen(
        0, "127.0.0.1", max_connections=3, max_write_buffer_size=WRITE_BOUND
    )
    try:
        assert server.max_connections == 3 and server.max_write_buffer_size == WRITE_BOUND
        [sock] = server._sockets.values()
        client = AsyncHTTPClient(force_instance=True)
        try:
            response = await bounded(client.fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/"))
        finally:
            client.close()
        assert response.body == b"hello"
    finally:
        server.stop()
        await server.close_all_connections()
