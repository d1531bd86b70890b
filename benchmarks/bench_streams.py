#!/usr/bin/env python
"""Stream benchmarks: TCP echo servers on reactor's backends next to asyncio, uvloop and Tornado.

Two benchmarks, each cell run with one server process and one client process:

``echo``
    Ping-pong over C connections (C = 1, 100, 1,000) with fixed-size
    messages (64 bytes and 16 KiB): every connection sends one message,
    waits for all of it to come back, checks it and sends it again. After a
    warm-up, the messages completed in a fixed window are counted: messages
    per second, all connections together.
``idle``
    One server holding N idle connections (10,000): the growth of the
    server's resident memory per connection (VmRSS, read by the server
    itself), and the latency of a normal echo request made while all N are
    open (median of 20), on an established connection and on a new one.

Every server speaks the same protocol: a message is exactly ``size`` bytes,
and the server sends each message back once it has all of it. Each server is
written as a user of that library would write it: reactor and Tornado with a
``TCPServer`` whose ``handle_stream`` loops on ``await
stream.read_bytes(size)`` and ``await stream.write(data)``; asyncio streams
with ``asyncio.start_server``, ``readexactly`` and ``drain``; a Protocol that
buffers until it has a whole message (asyncio's default loop, and uvloop).

The client is the same for every server: uvloop with an ``asyncio.Protocol``
per connection (the cheapest client at hand, so that it is not the
bottleneck), pinned to the other CPU than the server where there are two.
Each cell reports the CPU both processes used over the timed window, so a
saturated client would show.

Process layout: the parent (this script, no options but the CLI ones) runs
every cell in a fresh subprocess (``--worker SPEC``, the client), with a time
limit; the client starts the server (``--serve SPEC``) and talks to it over
its stdin/stdout (port, connection count, memory). A server exits when its
stdin closes, so a client killed by the time limit takes its server with it,
and in any case after a lifetime of its own. Run
``python benchmarks/bench_streams.py --help``.

Timings depend on the machine and on whatever else it is doing: they belong
in documents, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

from _common import (
    BASELINE_SUFFIX,
    ROOT,
    Case,
    Cells,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    fmt,
    medians,
    render_table,
    run_main,
    unavailable_reason,
)

# Sizes: (full, quick).
CONNECTIONS = ((1, 100, 1_000), (1, 100))
MESSAGE_SIZES = (64, 16 * 1024)
WARMUP_SECONDS = (0.5, 0.1)
DURATION_SECONDS = (3.0, 0.5)
IDLE_CONNECTIONS = (10_000, 1_000)
LATENCY_SAMPLES = 20
IDLE_MESSAGE_SIZE = 64

# The select backend cannot watch fds >= FD_SETSIZE (1,024 on Linux): the
# C = 1,000 cells are not run on it (see README.md).
SELECT_MAX_CONNECTIONS = 1_000 - 1
# Connections are opened this many at a time; after each batch the client
# waits until the server has accepted them all, so that no listen backlog
# overflows (each server keeps its library's default backlog, 100 to 128).
CONNECT_BATCH = 100
# Bounds on everything the client waits for outside the timed window.
SERVER_START_TIMEOUT = 30.0
SETTLE_TIMEOUT = 60.0
SERVER_LIFETIME = 600.0

BASELINE = "asyncio-streams"

IMPLEMENTATIONS: dict[str, str] = {
    "reactor-select": "reactor TCPServer/IOStream, IOLoop on the select backend",
    "reactor-poll": "reactor TCPServer/IOStream, IOLoop on the poll backend",
    "reactor-epoll": "reactor TCPServer/IOStream, IOLoop on the epoll backend",
    "reactor-asyncio": "reactor TCPServer/IOStream on the asyncio bridge",
    "reactor-uvloop": "reactor TCPServer/IOStream on the uvloop bridge",
    "asyncio-streams": "asyncio.start_server, readexactly + write + drain (default loop)",
    "asyncio-protocol": "asyncio.Protocol on the default loop (loop.create_server)",
    "uvloop-protocol": "asyncio.Protocol on uvloop (loop.create_server)",
    "tornado": "tornado.tcpserver.TCPServer / IOStream 6.6 (on asyncio's default loop)",
}
IDLE_IMPLEMENTATIONS = ("reactor-epoll", "asyncio-streams", "tornado")


def _unavailable(name: str) -> str | None:
    if name == "uvloop-protocol":
        return unavailable_reason("uvloop")
    return unavailable_reason(name)


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpus() -> tuple[int | None, int | None]:
    """The CPUs for the server and the client, or (None, None): no pinning."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


# -- the server process (--serve) ---------------------------------------------------


class ServerState:
    """What the server's control thread reports: connections open and accepted."""

    def __init__(self) -> None:
        self.live = 0
        self.accepted = 0

    def opened(self) -> None:
        self.live += 1
        self.accepted += 1

    def closed(self) -> None:
        self.live -= 1


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def _control(state: ServerState, lifetime: float) -> None:
    """The server's control thread: answers one JSON line per line read on
    stdin; exits the process at end of input or when the lifetime is over."""
    deadline = time.monotonic() + lifetime
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.write(2, b"server: lifetime over, exiting\n")
            os._exit(3)
        ready, _, _ = select.select([0], [], [], remaining)
        if not ready:
            continue
        data = os.read(0, 4096)
        if not data:
            os._exit(0)  # the client is done (or gone)
        pending += data
        while b"\n" in pending:
            _line, pending = pending.split(b"\n", 1)
            reply = {
                "live": state.live,
                "accepted": state.accepted,
                "rss_kib": _status_kib("VmRSS"),
                "hwm_kib": _status_kib("VmHWM"),
                "fds": len(os.listdir("/proc/self/fd")),
                "max_fd": max(int(fd) for fd in os.listdir("/proc/self/fd")),
            }
            os.write(1, (json.dumps(reply) + "\n").encode())


def _listening(state: ServerState, port: int, lifetime: float) -> None:
    """Tell the client the port, then answer its questions from a thread."""
    os.write(1, f"PORT {port}\n".encode())
    threading.Thread(target=_control, args=(state, lifetime), daemon=True).start()


def serve_reactor(backend: str, size: int, state: ServerState, lifetime: float) -> None:
    from reactor.ioloop import IOLoop
    from reactor.iostream import IOStream, StreamClosedError
    from reactor.netutil import bind_sockets
    from reactor.tcpserver import TCPServer

    class EchoServer(TCPServer):
        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            state.opened()
            stream.set_nodelay(True)
            try:
                while True:
                    data = await stream.read_bytes(size)
                    await stream.write(data)
            except StreamClosedError:
                pass
            finally:
                stream.close()
                state.closed()

    IOLoop.configure(backend)
    loop = IOLoop.current()
    if loop.backend_name != backend:
        raise RuntimeError(f"asked for backend {backend!r}, got {loop.backend_name!r}")
    sockets = bind_sockets(0, "127.0.0.1")
    EchoServer().add_sockets(sockets)
    _listening(state, sockets[0].getsockname()[1], lifetime)
    loop.start()


def serve_tornado(size: int, state: ServerState, lifetime: float) -> None:
    from tornado.iostream import IOStream, StreamClosedError
    from tornado.netutil import bind_sockets
    from tornado.tcpserver import TCPServer

    class EchoServer(TCPServer):
        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            state.opened()
            stream.set_nodelay(True)
            try:
                while True:
                    data = await stream.read_bytes(size)
                    await stream.write(data)
            except StreamClosedError:
                pass
            finally:
                stream.close()
                state.closed()

    async def main() -> None:
        sockets = bind_sockets(0, "127.0.0.1")
        EchoServer().add_sockets(sockets)
        _listening(state, sockets[0].getsockname()[1], lifetime)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_asyncio_streams(size: int, state: ServerState, lifetime: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.opened()
        try:
            while True:
                data = await reader.readexactly(size)
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            state.closed()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        _listening(state, server.sockets[0].getsockname()[1], lifetime)
        await server.serve_forever()

    asyncio.run(main())


def serve_protocol(uvloop: bool, size: int, state: ServerState, lifetime: float) -> None:
    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # (uvloop's transports are not asyncio.Transport subclasses)
            self.transport = cast(asyncio.Transport, transport)
            self.buffer = bytearray()
            state.opened()

        def data_received(self, data: bytes) -> None:
            buffer = self.buffer
            if not buffer and len(data) == size:
                self.transport.write(data)  # the usual case: one whole message
                return
            buffer += data
            while len(buffer) >= size:
                self.transport.write(bytes(buffer[:size]))
                del buffer[:size]

        def connection_lost(self, exc: Exception | None) -> None:
            state.closed()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
        _listening(state, server.sockets[0].getsockname()[1], lifetime)
        await server.serve_forever()

    if uvloop:
        import uvloop as uv

        uv.run(main())
    else:
        asyncio.run(main())


def serve(spec: dict[str, Any]) -> int:
    _pin(spec.get("cpu"))
    _raise_nofile()
    impl, size, lifetime = spec["impl"], spec["size"], spec["lifetime"]
    state = ServerState()
    if impl.startswith("reactor-"):
        serve_reactor(impl.removeprefix("reactor-"), size, state, lifetime)
    elif impl == "tornado":
        serve_tornado(size, state, lifetime)
    elif impl == "asyncio-streams":
        serve_asyncio_streams(size, state, lifetime)
    elif impl in ("asyncio-protocol", "uvloop-protocol"):
        serve_protocol(impl == "uvloop-protocol", size, state, lifetime)
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    return 0


# -- the client process (--worker) -----------------------------------------------------


class ServerProcess:
    """The server subprocess, and its control channel (stdin/stdout lines)."""

    def __init__(self, impl: str, size: int, cpu: int | None) -> None:
        spec = {"impl": impl, "size": size, "cpu": cpu, "lifetime": SERVER_LIFETIME}
        env = dict(os.environ)
        env.pop("REACTOR_BACKEND", None)
        # Closed in close(); a file rather than a pipe, so that it never fills.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
            env=env,
        )
        self._pending = b""
        self._ticks = os.sysconf("SC_CLK_TCK")
        self.port = 0

    def wait_listening(self) -> None:
        """Read the port the server listens on (its first line)."""
        line = self._readline(SERVER_START_TIMEOUT)
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server said {line!r} instead of its port")
        self.port = int(line.split()[1])

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the server did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    raise RuntimeError(f"the server exited: {self.stderr_tail()}")
                self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def stats(self) -> dict[str, int]:
        """The server's connection counts, VmRSS and fds (asked, then read)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        self.proc.stdin.flush()
        result: dict[str, int] = json.loads(self._readline(10.0))
        return result

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (from /proc, unintrusive)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-2000:] if text else "(no stderr)"

    def close(self) -> str:
        """Stop the server; returns what it wrote to stderr ("" if nothing)."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        self._stderr.close()
        return text


class Client:
    """The shared state of one client: its connections and the first error."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.running = False  # while True, an echoed message is sent again
        self.busy = 0  # connections waiting for an echo
        self.idle_waiter: asyncio.Future[None] | None = None
        self.failed: asyncio.Future[None] = loop.create_future()

    def fail(self, error: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_exception(error)

    def became_idle(self) -> None:
        self.busy -= 1
        if not self.busy and self.idle_waiter is not None and not self.idle_waiter.done():
            self.idle_waiter.set_result(None)


class PingPong(asyncio.Protocol):
    """One client connection: sends ``message``, checks the echo, repeats."""

    def __init__(self, client: Client, message: bytes) -> None:
        self.client = client
        self.message = message
        self.size = len(message)
        self.buffer = bytearray()
        self.count = 0
        self.waiter: asyncio.Future[float] | None = None  # single requests (latency)
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.write = self.transport.write

    def start(self) -> None:
        self.client.busy += 1
        self.write(self.message)

    def request(self) -> asyncio.Future[float]:
        """Send one message; resolves with the perf_counter time of its echo."""
        self.waiter = self.client.loop.create_future()
        self.write(self.message)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if not self.buffer and len(data) == self.size:
            if data != self.message:
                self.client.fail(AssertionError("the echo differs from the message"))
                return
        else:
            buffer = self.buffer
            buffer += data
            if len(buffer) < self.size:
                return
            if buffer != self.message:
                self.client.fail(
                    AssertionError(f"bad echo: {len(buffer)} bytes for a {self.size}-byte message")
                )
                return
            buffer.clear()
        self.count += 1
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result(time.perf_counter())
        elif self.client.running:
            self.write(self.message)
        else:
            self.client.became_idle()

    def close(self) -> None:
        self.closing = True
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.client.fail(ConnectionError(f"the server closed a connection ({exc!r})"))


def _message(i: int, size: int) -> bytes:
    """Connection ``i``'s message: its number, then filler, ``size`` bytes."""
    head = b"%08d:" % i
    filler = bytes(range(33, 127)) * (size // 94 + 1)
    return (head + filler)[:size]


async def _open(
    client: Client,
    server: ServerProcess,
    count: int,
    size: int,
    first: int = 0,
    already: int = 0,
) -> list[PingPong]:
    """Open ``count`` connections in batches, waiting after each batch until
    the server holds them all (``already`` is what it held before)."""
    loop = client.loop
    protocols: list[PingPong] = []
    for start in range(0, count, CONNECT_BATCH):
        batch = range(first + start, first + min(start + CONNECT_BATCH, count))
        results = await asyncio.gather(
            *(
                loop.create_connection(
                    lambda i=i: PingPong(client, _message(i, size)), "127.0.0.1", server.port
                )
                for i in batch
            )
        )
        protocols += [protocol for _, protocol in results]
        await _wait_live(server, already + len(protocols))
    return protocols


async def _wait_live(server: ServerProcess, target: int, timeout: float = SETTLE_TIMEOUT) -> None:
    """Until the server reports ``target`` open connections (bounded)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        live = server.stats()["live"]
        if live == target:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server holds {live} connections, expected {target}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _guarded(client: Client, aw: Any, timeout: float) -> Any:
    """Await ``aw``, failing at once if a connection failed, or after ``timeout``."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait(
        {task, client.failed}, timeout=timeout, return_when="FIRST_COMPLETED"
    )
    if client.failed in done:
        task.cancel()
        client.failed.result()  # raises
    if task not in done:
        task.cancel()
        raise TimeoutError(f"no progress within {timeout:g} s")
    return task.result()


async def echo_client(spec: dict[str, Any], server: ServerProcess) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = Client(loop)
    conns, size = spec["conns"], spec["size"]
    protocols = await _guarded(client, _open(client, server, conns, size), SETTLE_TIMEOUT)
    opened = server.stats()

    client.running = True
    for p in protocols:
        p.start()
    await _guarded(client, asyncio.sleep(spec["warmup"]), spec["warmup"] + 10)

    counts0 = [p.count for p in protocols]
    scpu0, ccpu0 = server.cpu_seconds(), time.process_time()
    t0 = time.perf_counter()
    await _guarded(client, asyncio.sleep(spec["duration"]), spec["duration"] + 10)
    t1 = time.perf_counter()
    scpu1, ccpu1 = server.cpu_seconds(), time.process_time()
    counts1 = [p.count for p in protocols]

    # Let every connection finish its message, then close them all.
    client.running = False
    if client.busy:
        client.idle_waiter = loop.create_future()
        await _guarded(client, client.idle_waiter, 10.0)
    for p in protocols:
        p.close()
    await _wait_live(server, 0, 10.0)

    per_conn = [b - a for a, b in zip(counts0, counts1, strict=True)]
    elapsed = t1 - t0
    total = sum(per_conn)
    if not total:
        raise AssertionError("no message completed in the timed window")
    return {
        "connections": conns,
        "size": size,
        "seconds": elapsed,
        "messages": total,
        "per_second": total / elapsed,
        "per_conn_min": min(per_conn),
        "per_conn_max": max(per_conn),
        "server_cpu_pct": (scpu1 - scpu0) / elapsed * 100,
        "client_cpu_pct": (ccpu1 - ccpu0) / elapsed * 100,
        "server_max_fd": opened["max_fd"],
    }


async def _round_trip(client: Client, protocol: PingPong) -> float:
    t0 = time.perf_counter()
    t1 = await _guarded(client, protocol.request(), 10.0)
    return float(t1 - t0)


async def idle_client(spec: dict[str, Any], server: ServerProcess) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = Client(loop)
    n, size = spec["n"], IDLE_MESSAGE_SIZE

    # Warm-up: one connection, a few echoes, closed; the server is then back
    # to no connection, with its first-use allocations done.
    warm = await _guarded(client, _open(client, server, 1, size), SETTLE_TIMEOUT)
    for _ in range(LATENCY_SAMPLES):
        await _round_trip(client, warm[0])
    warm[0].close()
    await _wait_live(server, 0, 10.0)
    before = server.stats()

    t0 = time.perf_counter()
    protocols = await _guarded(client, _open(client, server, n, size, first=1), SETTLE_TIMEOUT * 3)
    open_seconds = time.perf_counter() - t0
    after = server.stats()

    # One more connection, on which 20 requests are timed one by one.
    extra = (await _guarded(client, _open(client, server, 1, size, n + 1, n), SETTLE_TIMEOUT))[0]
    echo_ms = [await _round_trip(client, extra) * 1000 for _ in range(LATENCY_SAMPLES)]

    # 20 new connections, each: connect, one request, close.
    connect_ms = []
    for i in range(LATENCY_SAMPLES):
        t = time.perf_counter()
        _, p = await _guarded(
            client,
            loop.create_connection(
                lambda i=i: PingPong(client, _message(n + 2 + i, size)), "127.0.0.1", server.port
            ),
            10.0,
        )
        t_echo = await _guarded(client, p.request(), 10.0)
        connect_ms.append((t_echo - t) * 1000)
        p.close()
    # An idle connection still works too: the first one opened.
    first_ms = await _round_trip(client, protocols[0]) * 1000
    # Every idle connection and the timed one are still held (the 20 closed
    # ones are gone once the server has seen them close).
    await _wait_live(server, n + 1, 10.0)
    held = n + 1

    extra.close()
    for p in protocols:
        p.close()
    await _wait_live(server, 0, SETTLE_TIMEOUT)

    grown = (after["rss_kib"] - before["rss_kib"]) * 1024
    return {
        "connections": n,
        "held": held,
        "open_seconds": open_seconds,
        "rss_before_mib": before["rss_kib"] / 1024,
        "rss_after_mib": after["rss_kib"] / 1024,
        "bytes_per_connection": grown / n,
        "echo_ms": statistics.median(echo_ms),
        "echo_max_ms": max(echo_ms),
        "connect_echo_ms": statistics.median(connect_ms),
        "connect_echo_max_ms": max(connect_ms),
        "first_idle_echo_ms": first_ms,
        "server_max_fd": after["max_fd"],
    }


def worker(spec: dict[str, Any]) -> int:
    """The client of one cell: start the server, load it, print the result."""
    impl, bench = spec["impl"], spec["bench"]
    if bench == "echo" and impl == "reactor-select" and spec["conns"] > SELECT_MAX_CONNECTIONS:
        emit_result({"na": "FD_SETSIZE"})
        return 0
    nofile = _raise_nofile()
    need = spec["n"] + 100 if bench == "idle" else spec["conns"] + 100
    if nofile < need:
        raise RuntimeError(f"RLIMIT_NOFILE is {nofile} even at the hard limit; {need} needed")
    server_cpu, client_cpu = _cpus()
    size = spec["size"] if bench == "echo" else IDLE_MESSAGE_SIZE
    server = ServerProcess(impl, size, server_cpu)
    try:
        server.wait_listening()
        _pin(client_cpu)
        import uvloop

        main = echo_client if bench == "echo" else idle_client
        result = uvloop.run(main(spec, server))
    except BaseException:
        stderr = server.close()
        if stderr:
            sys.stderr.write(f"server stderr:\n{stderr}\n")
        raise
    stderr = server.close()
    if stderr:
        raise RuntimeError(f"the server wrote to stderr: {stderr[-500:]}")
    result["pinned"] = server_cpu is not None
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------


ECHO_METRIC = Metric("per_second", "messages per second", "messages/s", True, 0)
IDLE_METRICS = [
    Metric("bytes_per_connection", "server RSS growth per idle connection", "bytes", False, 0),
    Metric("echo_ms", "echo round trip with all idle connections open", "ms", False, 3),
    Metric("connect_echo_ms", "connect + echo on a new connection meanwhile", "ms", False, 3),
]


def make_cases(
    benches: list[str],
    quick: bool,
    warmup: float | None,
    duration: float | None,
    idle_n: int | None,
    connections: list[int] | None = None,
    sizes: list[int] | None = None,
) -> list[Case]:
    q = 1 if quick else 0
    warmup = WARMUP_SECONDS[q] if warmup is None else warmup
    duration = DURATION_SECONDS[q] if duration is None else duration
    cases = []
    if "echo" in benches:
        for conns in connections or CONNECTIONS[q]:
            for size in sizes or MESSAGE_SIZES:
                label = f"C = {conns:,}, {_size_label(size)} messages"
                params = {"conns": conns, "size": size, "warmup": warmup, "duration": duration}
                cases.append(
                    Case(
                        "echo",
                        label,
                        params,
                        [ECHO_METRIC],
                        warmup + duration + 120,
                        None,
                        BASELINE,
                    )
                )
    if "idle" in benches:
        n = IDLE_CONNECTIONS[q] if idle_n is None else idle_n
        cases.append(
            Case(
                "idle",
                f"{n:,} idle connections",
                {"n": n},
                IDLE_METRICS,
                600,
                IDLE_IMPLEMENTATIONS,
                BASELINE,
            )
        )
    return cases


def _size_label(size: int) -> str:
    return f"{size // 1024}-KiB" if size >= 1024 and size % 1024 == 0 else f"{size}-byte"


def _median_of(cells: Cells, impl: str, key: str) -> float | None:
    values = [r[key] for r in cells.get(impl, []) if key in r]
    return statistics.median(values) if values else None


def echo_notes(cells: Cells, impls: list[str]) -> list[str]:
    """Below an echo table: the CPU each side used, and the fairness."""
    parts = []
    for impl in impls:
        s = _median_of(cells, impl, "server_cpu_pct")
        c = _median_of(cells, impl, "client_cpu_pct")
        if s is not None and c is not None:
            parts.append(f"{impl} {s:.0f} / {c:.0f}")
    notes = []
    if parts:
        notes.append("CPU over the timed window, server / client, % of one core (medians):")
        notes.append("; ".join(parts) + ".")
    return notes


def idle_notes(cells: Cells, impls: list[str]) -> list[str]:
    parts = []
    for impl in impls:
        runs = [r for r in cells.get(impl, []) if "held" in r]
        if runs:
            before = statistics.median(r["rss_before_mib"] for r in runs)
            after = statistics.median(r["rss_after_mib"] for r in runs)
            opened = statistics.median(r["open_seconds"] for r in runs)
            worst = max(r["connect_echo_max_ms"] for r in runs)
            held = min(r["held"] for r in runs)
            parts.append(
                f"{impl}: VmRSS {before:.1f} -> {after:.1f} MiB, {held:,} connections held at the "
                f"end (the idle ones and the one timed), "
                f"opened in {opened:.1f} s, slowest connect + echo {worst:.2f} ms"
            )
    return ["; ".join(parts) + "."] if parts else []


def summary(cases: list[Case], results: list[Cells], impls: list[str]) -> list[str]:
    """All echo medians in one table, one column per cell."""
    echo = [(c, r) for c, r in zip(cases, results, strict=True) if c.bench == "echo"]
    if not echo:
        return []
    head = "| implementation | " + " | ".join(c.label for c, _ in echo) + " |"
    out = [
        "**Echo, all cells: median messages/s** (ratio to asyncio-streams in brackets)",
        "",
        head,
        "|---|" + "---:|" * len(echo),
    ]
    for impl in impls:
        row = []
        for case, cells in echo:
            runs = cells.get(impl, [])
            if any("na" in r for r in runs):
                row.append(f"n/a ({runs[0]['na']})")
                continue
            meds = medians(ECHO_METRIC, impls, cells)
            if impl not in meds:
                row.append("—")
                continue
            base = meds.get(case.baseline)
            ratio = f" ({meds[impl] / base:.2f}x)" if base else ""
            row.append(fmt(meds[impl], 0) + ratio)
        out.append(f"| {impl} | " + " | ".join(row) + " |")
    return [*out, ""]


def criteria(cases: list[Case], results: list[Cells]) -> list[str]:
    """The issue's yardstick: C = 100 with 64-byte messages."""
    for case, cells in zip(cases, results, strict=True):
        if case.bench == "echo" and case.params["conns"] == 100 and case.params["size"] == 64:
            epoll = _median_of(cells, "reactor-epoll", "per_second")
            streams = _median_of(cells, "asyncio-streams", "per_second")
            tornado = _median_of(cells, "tornado", "per_second")
            if epoll is None:
                return []
            out = [f"At {case.label}: reactor-epoll {fmt(epoll, 0)} messages/s"]
            if streams:
                out.append(f"{epoll / streams:.2f}x asyncio-streams ({fmt(streams, 0)})")
            if tornado:
                out.append(f"{epoll / tornado:.2f}x tornado ({fmt(tornado, 0)})")
            return ["; ".join(out) + ".", ""]
    return []


def _describe(result: dict[str, Any]) -> str:
    if "server_cpu_pct" in result:
        return (
            f" (server CPU {result['server_cpu_pct']:.0f}%, client CPU "
            f"{result['client_cpu_pct']:.0f}%, per connection {result['per_conn_min']:,}"
            f" to {result['per_conn_max']:,})"
        )
    if "held" in result:
        return (
            f" (held {result['held']:,}, VmRSS {result['rss_before_mib']:.1f} -> "
            f"{result['rss_after_mib']:.1f} MiB, opened in {result['open_seconds']:.1f} s)"
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Stream benchmarks: TCP echo servers on reactor's backends vs asyncio, "
        "uvloop, Tornado; idle connections.",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), ["echo", "idle"])
    parser.add_argument(
        "--duration", type=float, metavar="S", help="timed seconds per echo cell (default 3)"
    )
    parser.add_argument(
        "--warmup", type=float, metavar="S", help="warm-up seconds per echo cell (default 0.5)"
    )
    parser.add_argument(
        "--idle-connections",
        type=int,
        metavar="N",
        help="idle connections for the idle benchmark (default 10,000)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        metavar="C",
        help="only these numbers of connections for the echo benchmark (default 1 100 1000)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="BYTES",
        help="only these message sizes for the echo benchmark (default 64 16384)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        return serve(json.loads(args.serve))
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), _unavailable)
    if _unavailable("uvloop") is not None:
        parser.error("the client needs uvloop: pip install -e .[bench]")
    benches = args.bench or ["echo", "idle"]
    cases = make_cases(
        benches,
        args.quick,
        args.warmup,
        args.duration,
        args.idle_connections,
        args.connections,
        args.sizes,
    )
    command = "python benchmarks/bench_streams.py " + " ".join(argv or sys.argv[1:])

    run = drive(__file__, args, cases, impls, skipped, describe=_describe)
    results, impls = run.results, run.impls

    server_cpu, client_cpu = _cpus()
    out = run.header(args, command, skipped, baseline=BASELINE)
    out.insert(
        -1,
        "- server pinned to CPU "
        f"{server_cpu}, client (uvloop + asyncio.Protocol) to CPU {client_cpu}"
        if server_cpu is not None
        else "- fewer than 2 CPUs: server and client not pinned",
    )
    h = "### " if args.markdown else ""
    titles = {"echo": "Echo ping-pong", "idle": "Idle connections"}
    shown_bench = None
    for ci, case in enumerate(cases):
        if case.bench != shown_bench:
            out += [f"{h}{titles[case.bench]}", ""]
            shown_bench = case.bench
        shown = [
            i for i in impls if case.impls is None or i.removesuffix(BASELINE_SUFFIX) in case.impls
        ]
        if case.bench == "echo":
            out += render_table(
                case, ECHO_METRIC, shown, results[ci], echo_notes(results[ci], shown)
            )
        else:
            for metric in case.metrics:
                out += render_table(case, metric, shown, results[ci])
            out += idle_notes(results[ci], shown)
            out.append("")
    if "echo" in benches:
        out += [f"{h}Echo summary", ""]
        out += summary(cases, results, impls)
        out += criteria(cases, results)
    print("\n".join(out))

    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
