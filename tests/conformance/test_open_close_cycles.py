"""Connections opened and closed by the hundred thousand: the server keeps no fd.

A reactor HTTP server (a ``web.Application`` on an ``HTTPServer``) runs in a
child process on the backend under test; this test process opens and closes
connections to it, :data:`IN_FLIGHT` at a time, in a mix of the ways clients
end a connection:

- ``fin``: connect and close at once, before any request (the server may
  accept a connection that is already half-closed);
- ``rst``: connect and reset at once (``SO_LINGER`` 0), before any request;
- ``keep-alive``: a request, its whole answer, then the client closes;
- ``rst-after-request``: a request, then a reset without reading the answer
  (the server reads the request from a socket that is already dead, and its
  answer meets EPIPE or ECONNRESET);
- ``connection-close``: a request with ``Connection: close``, read to the
  end: the server closes first.

Before and after, the test counts the server's open fds (``/proc/PID/fd``):
after the cycles, once the server has seen every close, it must hold exactly
as many as after the warm-up. It must also answer every request it was
left to answer, and exit cleanly with nothing on its stderr.

Some facts this relies on (Linux):

- A connection the peer resets while it waits in the listen backlog is still
  handed out by ``accept()``, but ``getpeername()`` on it fails with
  ENOTCONN, as it does on a socket never connected; its ``SO_ERROR`` holds
  the reset (ECONNRESET). A stream that took it for "not connected yet"
  would never watch it, and its fd would leak
  (:func:`test_a_connection_reset_in_the_backlog_is_closed` shows it
  in-process).
- The bytes that came before the reset can still be read from it.
- The client's side of a connection it closes first sits in TIME_WAIT for
  60 s; Linux reuses such ports for new loopback connections
  (``net.ipv4.tcp_tw_reuse`` = 2, the default), so 100,000 cycles do not
  exhaust the ~28,000 ephemeral ports.

How many: :data:`CYCLES_DEFAULT` (100,000) on the default backend and
:data:`CYCLES_OTHER` (10,000) on each other one; ``REACTOR_SOAK=1`` makes it
100,000 on every backend. On this project's 2-core machine, shared, 100,000
cycles take about 20-30 s.
"""

from __future__ import annotations

import os
import select
import selectors
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reactor import backends
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer

pytestmark = [
    pytest.mark.usefixtures("reactor_log"),
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/PID/fd (Linux)"),
]

ROOT = Path(__file__).resolve().parent.parent.parent
SOAK = os.environ.get("REACTOR_SOAK") == "1"
CYCLES_DEFAULT = 100_000
CYCLES_OTHER = 100_000 if SOAK else 10_000
WARM_UP = 1_000
IN_FLIGHT = 64
"""Connections open at once on the client's side (more lets the server take
several events per poll, as a busy server does)."""
WAIT = 10.0
"""The longest the test waits for any one thing (an answer, the fds to settle)."""
TOTAL = 600.0 if SOAK else 240.0
"""The longest all the cycles of one test may take (a bound, not a measure)."""

ANSWER = b"Hello world!"
REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
REQUEST_CLOSE = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
LINGER_0 = struct.pack("ii", 1, 0)
KINDS = ("fin", "keep-alive", "rst", "rst-after-request", "connection-close")

SERVER = r"""
import os
import sys

from reactor import web
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets


class Hello(web.RequestHandler):
    def get(self):
        self.write("Hello world!")


def on_stdin(fd, events):
    if not os.read(0, 4096):  # the test closed our stdin: stop
        loop.remove_handler(0)
        loop.stop()


loop = IOLoop.current()
sockets = bind_sockets(0, "127.0.0.1")
server = HTTPServer(web.Application([("/hello", Hello)], log_function=lambda handler: None))
server.add_sockets(sockets)
loop.add_handler(0, on_stdin, IOLoop.READ)
print(sockets[0].getsockname()[1], loop.backend_name, flush=True)
loop.start()
server.stop()
"""


def backend_env(spec: Any) -> str:
    """What to put in REACTOR_BACKEND for the backend the fixture gives."""
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fd_count(pid: int, target: int | None = None) -> int:
    """The process's fd count once it stops changing (three equal readings
    0.1 s apart), or as soon as it is ``target``; at most :data:`WAIT` s."""
    deadline = time.monotonic() + WAIT
    readings = [fd_count(pid)]
    while time.monotonic() < deadline:
        if readings[-1] == target or (len(readings) >= 3 and len(set(readings[-3:])) == 1):
            break
        time.sleep(0.1)  # polling /proc: the count has no event to wait on
        readings.append(fd_count(pid))
    return readings[-1]


class ServerProcess:
    def __init__(self, backend: Any, stderr_path: Path) -> None:
        env = dict(os.environ, REACTOR_BACKEND=backend_env(backend))
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=ROOT,
                env=env,
            )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {self.stderr()}")
        port, self.backend_name = line.split()
        self.port = int(port)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise
        finally:
            self.proc.stdout.close()


def run_cycles(port: int, count: int) -> Counter[str]:
    """Open and close ``count`` connections, :data:`KINDS` in turn; return how
    many of each ended as they should. Any wrong answer, or a connection
    that waits more than :data:`WAIT` s, fails."""
    address = ("127.0.0.1", port)
    done: Counter[str] = Counter()
    selector = selectors.DefaultSelector()
    waiting: dict[socket.socket, tuple[str, bytearray]] = {}
    started = 0
    deadline = time.monotonic() + TOTAL
    try:
        while started < count or waiting:
            while started < count and len(waiting) < IN_FLIGHT:
                kind = KINDS[started % len(KINDS)]
                started += 1
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(WAIT)
                sock.connect(address)
                if kind == "fin":
                    sock.close()
                elif kind == "rst":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
                    sock.close()
                elif kind == "rst-after-request":
                    sock.sendall(REQUEST)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
                    sock.close()
                else:
                    sock.sendall(REQUEST if kind == "keep-alive" else REQUEST_CLOSE)
                    sock.setblocking(False)
                    waiting[sock] = (kind, bytearray())
                    selector.register(sock, selectors.EVENT_READ)
                    continue
                done[kind] += 1
            assert time.monotonic() < deadline, f"{started:,} cycles started in {TOTAL:g} s"
            events = selector.select(WAIT)
            assert events or not waiting, f"no answer for {WAIT:g} s on {len(waiting)} connections"
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                kind, received = waiting[sock]
                data = sock.recv(65536)
                received += data
                complete = received.startswith(b"HTTP/1.1 200 ") and received.endswith(
                    b"\r\n\r\n" + ANSWER
                )
                if kind == "keep-alive" and not complete:
                    assert data, f"the server closed a keep-alive connection: {bytes(received)!r}"
                    continue
                if kind == "connection-close" and data:
                    continue
                assert complete, f"{kind}: {bytes(received)!r}"
                selector.unregister(sock)
                del waiting[sock]
                sock.close()
                done[kind] += 1
    finally:
        for sock in waiting:
            sock.close()
        selector.close()
    return done


@pytest.mark.slow
@pytest.mark.timeout(TOTAL + 60)
def test_open_close_cycles_leave_no_fd(reactor_backend: Any, tmp_path: Path) -> None:
    """100,000 (default backend) or 10,000 (others) connections in the mix of
    :data:`KINDS`: the server's fd count ends where it started."""
    server = ServerProcess(reactor_backend, tmp_path / "server.stderr")
    try:
        default = server.backend_name == backends.default_name()
        count = CYCLES_DEFAULT if default else CYCLES_OTHER
        assert run_cycles(server.port, WARM_UP) == Counter(
            {kind: WARM_UP // len(KINDS) for kind in KINDS}
        )
        before = settled_fd_count(server.proc.pid)
        assert before < 64, f"{before} fds after {WARM_UP} cycles"

        done = run_cycles(server.port, count)

        assert done == Counter({kind: count // len(KINDS) for kind in KINDS})
        after = settled_fd_count(server.proc.pid, target=before)
        assert after == before, (
            f"{server.backend_name}: {before} fds before {count:,} cycles, {after} after"
        )
        assert server.proc.poll() is None, f"the server exited: {server.stderr()}"
    finally:
        status = server.stop()
    assert status == 0, server.stderr()
    assert server.stderr() == ""


async def test_a_connection_reset_in_the_backlog_is_closed(io_loop: IOLoop) -> None:
    """A client connects, sends a request and resets the connection while it
    still waits in the listen backlog (the loop has not run: nothing was
    accepted yet). The server's stream still gets the bytes that came, then
    the end, and closes: its fd does not stay open forever."""
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    streams: list[IOStream] = []
    received: list[bytes] = []
    finished: Future[None] = Future()

    class Reader(TCPServer):
        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            streams.append(stream)
            try:
                received.append(await stream.read_until_close())
            except StreamClosedError:
                received.append(b"(an error)")
            finally:
                if not finished.done():  # (the test may have given up)
                    finished.set_result(None)

    server = Reader()
    server.add_sockets(sockets)
    try:
        # All before the loop runs again: the connection is reset in the backlog.
        client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        client.sendall(REQUEST)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
        client.close()
        await finished  # bounded by the async test timeout
    finally:
        server.stop()
    assert len(streams) == 1
    assert streams[0].closed()
    assert streams[0].socket.fileno() == -1
    # What came before the reset may be read, or not, by the kernel's choice.
    assert received in ([REQUEST], [b""], [b"(an error)"])


@pytest.mark.parametrize("sends", [b"", b"\x16\x03\x01\x00\x05hello"], ids=["silent", "with-bytes"])
async def test_a_tls_connection_reset_in_the_backlog_is_no_error(
    io_loop: IOLoop, reactor_log: Any, tls_certificate: Any, sends: bytes
) -> None:
    """The same over TLS: a client that connects, maybe sends the start of a
    ClientHello, and resets before it is accepted is the client's business:
    no ERROR in the log, and the server goes on (a real TLS client is then
    answered)."""
    from reactor import web
    from reactor.httpclient import AsyncHTTPClient
    from reactor.httpserver import HTTPServer

    class Hello(web.RequestHandler):
        def get(self) -> None:
            self.write(ANSWER)

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = HTTPServer(
        web.Application([("/hello", Hello)]), ssl_options=tls_certificate.server_context()
    )
    server.add_sockets(sockets)
    client = AsyncHTTPClient(force_instance=True)
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            if sends:
                sock.sendall(sends)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
            sock.close()
        response = await client.fetch(
            f"https://localhost:{port}/hello", ssl_options=tls_certificate.client_context()
        )
        assert response.body == ANSWER
    finally:
        client.close()
        server.stop()
    errors = [r.getMessage() for r in reactor_log.records if r.levelno >= 40 or r.exc_info]
    reactor_log.records.clear()  # reported here, not again by the fixture
    assert not errors
