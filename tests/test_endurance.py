"""Endurance and exhaustion: real servers in child processes, on every backend.

- **Out of file descriptors** (:func:`test_ulimit_256_with_1000_clients`): the
  demo (``python -m reactor demo``) runs with ``RLIMIT_NOFILE`` = 256 and
  1,000 clients connect to it at once. It must stay up, not spin (its CPU
  time stays well below the wall time while the clients hold it at its
  limit), answer on the connections it accepted, log the exhaustion as a
  warning (never an ERROR per retry), and answer new requests once the
  clients leave.
- **The soak** (:func:`test_soak`, marked ``slow``): ``wrk`` against the
  demo, with long polls and WebSocket clients alongside, while the server's
  RSS and fd count are sampled every second: no wrk errors and no non-2xx
  answers, every chat message reaching every client, no warning or error in
  the server's log, the fd count back where it was after the warm-up, and
  the RSS flat (see :data:`RSS_MARGIN`). About 20 s on the default backend;
  with ``REACTOR_SOAK=1``, 10 minutes on every backend.

The servers' numbers come from ``/proc/PID`` (fds, RSS, CPU time): Linux only.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactor import backends

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="reads /proc/PID (fds, RSS, CPU time): Linux only"
)

ROOT = Path(__file__).resolve().parent.parent
SOAK = os.environ.get("REACTOR_SOAK") == "1"
WAIT = 10.0
"""The longest the tests wait for any one thing."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REQUEST = b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def backend_env(spec: Any) -> str:
    """What to put in REACTOR_BACKEND for the backend the fixture gives."""
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss(pid: int) -> int:
    """Resident set size in bytes."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def poll_until(condition: Callable[[], bool], timeout: float = WAIT, step: float = 0.05) -> bool:
    """Poll ``condition`` (a state of another process, with no event to wait
    on) until it holds or ``timeout`` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


def settled_fd_count(pid: int, target: int | None = None) -> int:
    """The fd count once it stops changing (three equal readings 0.1 s
    apart) or reaches ``target``, within :data:`WAIT`."""
    readings = [fd_count(pid)]

    def settled() -> bool:
        if readings[-1] == target or (len(readings) >= 3 and len(set(readings[-3:])) == 1):
            return True
        readings.append(fd_count(pid))
        return False

    poll_until(settled, step=0.1)
    return readings[-1]


class LogWatch(threading.Thread):
    """Drains a child's stderr (the demo's access log runs to a line per
    request), counting lines and keeping those that are not INFO."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.lines = 0
        self.other: list[str] = []

    def run(self) -> None:
        pending = b""
        while chunk := os.read(self.fd, 65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            self.lines += len(lines)
            for line in lines:
                if not line.startswith(b"[I ") and len(self.other) < 1000:
                    self.other.append(line.decode(errors="replace"))
        if pending:
            self.other.append(pending.decode(errors="replace"))

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.other if re.search(pattern, line)]


class Demo:
    """``python -m reactor demo --port 0`` on a backend, in a child process."""

    def __init__(self, backend: Any, limit_fds: int | None = None) -> None:
        env = dict(os.environ, REACTOR_BACKEND=backend_env(backend))

        def limit() -> None:  # in the child, before it runs Python
            if limit_fds is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit_fds, limit_fds))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reactor", "demo", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            preexec_fn=limit,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.log = LogWatch(self.proc.stderr.fileno())
        self.log.start()
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline().decode() if ready else ""
        match = re.search(r"http://127\.0\.0\.1:(\d+)/ on the (\S+) backend", line)
        if match is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the demo did not start: {line!r} {self.log.other}")
        self.port = int(match.group(1))
        self.backend_name = match.group(2)
        self.pid = self.proc.pid
        self.base_url = f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM (the demo stops its loop and exits); its exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise
        finally:
            self.log.join(WAIT)
            assert self.proc.stdout is not None and self.proc.stderr is not None
            self.proc.stdout.close()
            self.proc.stderr.close()
        return status


def get(port: int, timeout: float = WAIT) -> bytes:
    """One ``GET /api/info`` on a new connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- out of file descriptors -------------------------------------------------------------

FD_LIMIT = 256
CLIENTS = 1_000
HOLD = 1.0
"""Seconds the clients hold the server at its fd limit while its CPU is measured."""
MAX_CPU_SHARE = 0.5
"""The server's CPU time over the wall time while at its limit: a loop that
spins on a listening socket it cannot accept from uses all of one core (1.0)."""


def connect_all(port: int, count: int) -> list[socket.socket]:
    """``count`` non-blocking connects at once; returns the sockets once all
    are connected (the kernel completes them from the listen backlog, whether
    or not the server accepts them). Fails after :data:`WAIT` s."""
    clients = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        clients.append(sock)
    pending = {sock.fileno(): sock for sock in clients}
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + WAIT
    while pending:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{len(pending)} of {count} connects still pending after {WAIT} s"
        for fd, _ in poller.poll(remaining * 1000):
            sock = pending.pop(fd)
            poller.unregister(fd)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            assert error == 0, f"connect failed: {os.strerror(error)}"
    return clients


def answers(clients: list[socket.socket], within: float) -> int:
    """Send a GET on every client; how many get a whole 200 answer within
    ``within`` s (those the server accepted: the rest wait in its backlog)."""
    for sock in clients:
        sock.send(REQUEST)  # a fresh socket's send buffer takes it whole
    received = {sock.fileno(): b"" for sock in clients}
    by_fd = {sock.fileno(): sock for sock in clients}
    poller = select.poll()
    for fd in received:
        poller.register(fd, select.POLLIN)
    answered = 0
    deadline = time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(remaining * 1000):
            data = by_fd[fd].recv(65536)
            received[fd] += data
            whole = data == b"" or received[fd].endswith(b"}")
            if whole:
                poller.unregister(fd)
                answered += received[fd].startswith(b"HTTP/1.1 200 ")
    return answered


def test_ulimit_256_with_1000_clients(reactor_backend: Any) -> None:
    """RLIMIT_NOFILE 256 and 1,000 clients: the server neither crashes nor
    spins, serves the connections it took, and serves again once they leave."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CLIENTS + 100
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"this process may open {hard} fds, the test needs {need}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    demo = Demo(reactor_backend, limit_fds=FD_LIMIT)
    clients: list[socket.socket] = []
    try:
        assert get(demo.port).startswith(b"HTTP/1.1 200 ")
        own_fds = fd_count(demo.pid)

        clients = connect_all(demo.port, CLIENTS)
        # The server takes what it can: it is then at its limit.
        assert poll_until(lambda: fd_count(demo.pid) >= FD_LIMIT - 8), fd_count(demo.pid)
        cpu, wall = cpu_seconds(demo.pid), time.monotonic()
        time.sleep(HOLD)  # the clients hold it there: a measured stretch, not a wait
        answered = answers(clients, within=3.0)
        cpu, wall = cpu_seconds(demo.pid) - cpu, time.monotonic() - wall
        assert demo.alive(), demo.log.other
        assert cpu < MAX_CPU_SHARE * wall, f"{cpu:.2f} s of CPU in {wall:.2f} s at the fd limit"
        # Every connection it accepted is served (the others wait in the backlog).
        assert answered >= FD_LIMIT - own_fds - 16, f"{answered} answered ({own_fds} own fds)"

        for sock in clients:
            sock.close()
        clients = []
        # Once they are gone (the backlog's closed connections accepted and
        # dropped in turn), it serves new requests again.
        served = []

        def serves() -> bool:
            try:
                served.append(get(demo.port, timeout=2.0))
            except OSError:
                return False
            return served[-1].startswith(b"HTTP/1.1 200 ")

        assert poll_until(serves, timeout=20.0, step=0.2), served[-1:]
        assert poll_until(lambda: fd_count(demo.pid) <= own_fds + 2), fd_count(demo.pid)
    finally:
        for sock in clients:
            sock.close()
        status = demo.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert status == 0, demo.log.other
    # Running out of fds is an operating condition, not a bug in the
    # program: warned about once per episode, never an ERROR per retry.
    errors = demo.log.matching(r"^\[E ")
    assert not errors, f"{len(errors)} ERROR lines, the first: {errors[:3]}"
    exhausted = demo.log.matching(r"^\[W .*(Too many open files|EMFILE|file descriptors)")
    assert 1 <= len(exhausted) <= 10, exhausted[:20]
