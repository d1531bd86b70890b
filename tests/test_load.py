"""A bounded load test: one TCPServer process holding many idle connections.

A child process (a real process, started with :mod:`subprocess`) runs a
reactor ``TCPServer`` echo server on 127.0.0.1, on the platform's default
backend (``REACTOR_BACKEND`` is removed from its environment, so under tox
every environment runs this same test on the default backend). This test
process opens N connections to it and leaves them idle, in batches of
:data:`BATCH`, waiting after each batch until the server reports that it
holds them all (so that no listen backlog overflows). Then, with all N open:

- a normal request (a new connection, one 64-byte message) must be echoed
  within :data:`ANSWER_WITHIN` (5 s: generous, this is not a timing test);
- the first of the idle connections must still echo;
- the server must still accept more connections, and echo on them.

Finally every connection is closed, the server must notice each close, and
it must exit cleanly with nothing on its stderr.

N = 2,000 by default, and 10,000 when the environment variable
``REACTOR_SOAK=1`` is set (the soak run). Both processes raise their soft
``RLIMIT_NOFILE`` to the hard limit; the test is skipped if the hard limit is
too low for N. Every wait is bounded (socket timeouts, and ``select`` on the
server's control pipe); nothing sleeps. Marked ``slow``.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reactor import backends

ROOT = Path(__file__).resolve().parent.parent

SOAK = os.environ.get("REACTOR_SOAK") == "1"
N = 10_000 if SOAK else 2_000
BATCH = 100
MORE = 10
"""Connections opened after the request, to show the server still accepts."""
MESSAGE_SIZE = 64
ANSWER_WITHIN = 5.0
WAIT = 60.0
"""Upper bound for each step the test waits for (a batch accepted, all closed)."""
SERVER_LIFETIME = 600.0

# The server. It answers on stdout to lines on stdin, from its own loop:
# "wait K" -> "live K" once it holds exactly K connections (at once if it
# does). End of input stops it.
SERVER = r"""
import os
import resource
import sys

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

from reactor.ioloop import IOLoop
from reactor.iostream import StreamClosedError
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer

SIZE = int(sys.argv[1])
LIFETIME = float(sys.argv[2])
live = 0
targets = []


def reply_if_reached():
    for target in [t for t in targets if t == live]:
        targets.remove(target)
        os.write(1, b"live %d\n" % live)


class EchoServer(TCPServer):
    async def handle_stream(self, stream, address):
        global live
        live += 1
        reply_if_reached()
        try:
            while True:
                data = await stream.read_bytes(SIZE)
                await stream.write(data)
        except StreamClosedError:
            pass
        finally:
            stream.close()
            live -= 1
            reply_if_reached()


pending = b""


def on_stdin(fd, events):
    global pending
    data = os.read(0, 4096)
    if not data:
        loop.remove_handler(0)
        loop.stop()
        return
    pending += data
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        command, value = line.split()
        assert command == b"wait", line
        targets.append(int(value))
    reply_if_reached()


def lifetime_over():
    sys.stderr.write("server: lifetime over\n")
    sys.stderr.flush()
    os._exit(3)


loop = IOLoop.current()
sockets = bind_sockets(0, "127.0.0.1")
server = EchoServer()
server.add_sockets(sockets)
loop.add_handler(0, on_stdin, IOLoop.READ)
loop.call_later(LIFETIME, lifetime_over)
os.write(1, b"PORT %d %s\n" % (sockets[0].getsockname()[1], loop.backend_name.encode()))
loop.start()
server.stop()
"""


class Server:
    """The server process and its control pipe."""

    def __init__(self, stderr_path: Path) -> None:
        env = dict(os.environ)
        env.pop("REACTOR_BACKEND", None)
        with open(stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(MESSAGE_SIZE), str(SERVER_LIFETIME)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=ROOT,
                env=env,
            )
        self.stderr_path = stderr_path
        self._pending = b""

    def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the server said nothing for {timeout:g} s{self.stderr()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                data = os.read(fd, 4096)
                if not data:
                    raise AssertionError(f"the server exited{self.stderr()}")
                self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def wait_live(self, count: int, timeout: float = WAIT) -> None:
        """Until the server holds exactly ``count`` connections."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"wait %d\n" % count)
        self.proc.stdin.flush()
        assert self.readline(timeout) == f"live {count}"

    def stderr(self) -> str:
        text = self.stderr_path.read_text(errors="replace").strip()
        return f"; its stderr:\n{text}" if text else ""

    def stop(self) -> int:
        """Close its stdin (it stops its loop and exits); its exit status."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def connect(port: int, timeout: float = WAIT) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def echo(sock: socket.socket, message: bytes, within: float) -> bytes:
    """Send ``message`` and read as many bytes back, all within ``within`` s."""
    deadline = time.monotonic() + within
    sock.settimeout(within)
    sock.sendall(message)
    received = b""
    while len(received) < len(message):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no full echo within {within:g} s ({len(received)} bytes)")
        sock.settimeout(remaining)
        chunk = sock.recv(len(message) - len(received))
        if not chunk:
            raise AssertionError(f"the server closed the connection after {len(received)} bytes")
        received += chunk
    return received


def message(tag: int) -> bytes:
    return (b"%08d" % tag).ljust(MESSAGE_SIZE, b".")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_idle_connections_then_a_normal_request(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = N + BATCH + MORE + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} (N = {N:,})")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        run_load(tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def run_load(tmp_path: Path) -> None:
    server = Server(tmp_path / "server.stderr")
    try:
        port_word, port_text, backend = server.readline(WAIT).split()
        assert port_word == "PORT"
        assert backend == backends.default_name()
        port = int(port_text)
        idle: list[socket.socket] = []
        try:
            # N idle connections, BATCH at a time.
            while len(idle) < N:
                for _ in range(min(BATCH, N - len(idle))):
                    idle.append(connect(port))
                server.wait_live(len(idle))

            # A normal request, on a new connection, while all N are open.
            start = time.monotonic()
            with connect(port, timeout=ANSWER_WITHIN) as sock:
                assert echo(sock, message(0), ANSWER_WITHIN) == message(0)
                assert time.monotonic() - start < ANSWER_WITHIN
                # The first idle connection still works.
                assert echo(idle[0], message(1), ANSWER_WITHIN) == message(1)
                # And the server still accepts more.
                for _ in range(MORE):
                    idle.append(connect(port))
                server.wait_live(N + 1 + MORE)
                assert echo(idle[-1], message(2), ANSWER_WITHIN) == message(2)
            server.wait_live(N + MORE)
        finally:
            for sock in idle:
                sock.close()
        # The server notices every close.
        server.wait_live(0)
    finally:
        status = server.stop()
    # It stopped its loop at the end of its input and exited, silently.
    assert status == 0, server.stderr()
    assert server.stderr() == ""
