#!/usr/bin/env python
"""asyncio programs on reactor's epoll loop, asyncio's default loop and uvloop (issue 11).

The same asyncio server program runs on each event loop: on ``reactor-epoll``
it runs on the asyncio face of reactor's native loop
(``IOLoop(backend="epoll").asyncio_loop``, a
:class:`reactor.asyncio_view.NativeAsyncioLoop`), on ``asyncio`` on
``asyncio.new_event_loop()``, on ``uvloop`` on ``uvloop.new_event_loop()``.
Four benchmarks:

``protocol``
    An ``asyncio.Protocol`` echo server (``loop.create_server``;
    ``data_received`` writes what it got back), C connections, each with one
    message of S bytes in flight: the client sends it, waits for the whole
    echo, checks it byte for byte and sends it again. Messages per second.
``streams``
    The same exchange against an ``asyncio.start_server`` handler that
    loops ``data = await reader.read(65536)``, ``writer.write(data)``,
    ``await writer.drain()``.
``aiohttp``
    An aiohttp ``web.Application`` (``AppRunner`` + ``TCPSite``,
    ``access_log=None``) answering ``GET /`` with ``Hello world!``, measured
    with ``wrk -t1 -c100`` (keep-alive) as in bench_http.py.
``accept``
    ``asyncio.start_server`` whose handler writes one byte and closes; K
    client tasks each connect, read the byte and the end of the stream, and
    connect again. Connections per second.

Process layout (as in bench_http.py): the parent runs each cell in a fresh
worker subprocess (``--worker SPEC``) with a time limit; the worker starts
the server (``--serve SPEC``) pinned to the first CPU, pins itself to the
second and runs the client there, on uvloop (asyncio's loop where uvloop is
not installed): the same client for every server. Also recorded: the
server's CPU time per message, connection or request (from /proc), which
ranks the servers even where one Python client cannot keep a fast server
busy. Where reactor's asyncio face lacks a loop method a benchmark needs
(``create_server`` until issue 11 is done), its cells read ``n/a (not built:
...)``. Run ``python benchmarks/bench_asyncio.py --help``.

Timings depend on the machine and on whatever else it is doing: they belong
in documents, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import (
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
from bench_http import (
    SERVER_START_TIMEOUT,
    ServerProcess,
    _cpu_busy,
    _cpus,
    _watch_stdin,
    check_hello,
    flag_of,
    run_wrk,
)

IMPLEMENTATIONS: dict[str, str] = {
    "reactor-epoll": "the asyncio face of reactor's IOLoop on the epoll backend",
    "asyncio": "asyncio.new_event_loop(), the standard library's default loop",
    "uvloop": "uvloop.new_event_loop()",
}
BASELINE = "asyncio"
SCRIPT = os.path.abspath(__file__)
BENCHES = ("protocol", "streams", "aiohttp", "accept")

CONNECTIONS = (1, 100, 1000)
SIZES = (64, 16 * 1024)
# (full, quick) seconds
DURATION = (2.0, 0.3)
WARMUP = (0.5, 0.1)
WRK_SECONDS = (5, 1)  # wrk's -d takes whole seconds
WRK_CONNECTIONS = 100
ACCEPT_CLIENTS = 50
CONNECT_BATCH = 100
"""Connections opened at once by the echo client (each batch awaited)."""
DRAIN_TIMEOUT = 10.0
DEFAULT_REPEAT = 3

NEEDS: dict[str, tuple[str, ...]] = {
    "protocol": ("create_server",),
    "streams": ("create_server",),
    "aiohttp": ("create_server",),
    "accept": ("create_server",),
}
"""The loop methods each benchmark's server calls beyond what every face has."""


def not_built(impl: str, bench: str) -> str | None:
    """``"not built: NativeAsyncioLoop.create_server"`` where reactor's asyncio face
    still has asyncio.AbstractEventLoop's NotImplementedError for a method the
    benchmark needs; None where it can run."""
    if not impl.startswith("reactor-"):
        return None
    from reactor.asyncio_view import NativeAsyncioLoop

    missing = [
        f"NativeAsyncioLoop.{name}"
        for name in NEEDS[bench]
        if getattr(NativeAsyncioLoop, name) is getattr(asyncio.AbstractEventLoop, name)
    ]
    return f"not built: {', '.join(missing)}" if missing else None


def new_loop(impl: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the implementation, not running yet."""
    if impl == "asyncio":
        return asyncio.new_event_loop()
    if impl == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    from reactor.ioloop import IOLoop

    backend = impl.removeprefix("reactor-")
    io_loop = IOLoop(backend=backend)
    if io_loop.backend_name != backend:
        raise RuntimeError(f"asked for backend {backend!r}, got {io_loop.backend_name!r}")
    return io_loop.asyncio_loop


# -- the server process (--serve) ---------------------------------------------------
#
# Each server is the smallest asyncio program a user would write for the job,
# the same on every loop.


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def greet_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"+")
    writer.close()


async def serve_main(bench: str, port: int, ready_file: str) -> None:
    loop = asyncio.get_running_loop()
    if bench == "protocol":
        await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024)
    elif bench == "streams":
        await asyncio.start_server(echo_stream, "127.0.0.1", port, backlog=1024)
    elif bench == "accept":
        await asyncio.start_server(greet_and_close, "127.0.0.1", port, backlog=1024)
    elif bench == "aiohttp":
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="Hello world!")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    else:
        raise ValueError(f"unknown benchmark {bench!r}")
    with open(ready_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    await asyncio.Event().wait()


def serve(spec: dict[str, Any]) -> int:
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    threading.Thread(target=_watch_stdin, args=(spec["lifetime"],), daemon=True).start()
    loop = new_loop(spec["impl"])
    asyncio.set_event_loop(loop)
    loop.run_until_complete(serve_main(spec["bench"], spec["port"], spec["ready_file"]))
    return 0


class AsyncioServerProcess(ServerProcess):
    """bench_http.py's server process, ready only once the server itself says it
    listens (it writes a file): on a shared machine, another process may take
    the free port between the worker's choice and the server's bind, and a
    connect to the port alone would then reach that process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        fd, self.ready_file = tempfile.mkstemp(prefix="bench-asyncio-ready-")
        os.close(fd)
        os.unlink(self.ready_file)
        super().__init__({**spec, "ready_file": self.ready_file}, script=SCRIPT)

    def wait_listening(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {self.proc.returncode}: {self.stderr_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {SERVER_START_TIMEOUT:g} s")
            time.sleep(0.02)
        super().wait_listening()

    def close(self) -> str:
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        return super().close()


# -- the client (in the worker) ---------------------------------------------------------


def message(size: int) -> bytes:
    """``size`` bytes of a repeating, position-dependent pattern."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


class EchoClient(asyncio.Protocol):
    """One connection with one message in flight: send, read the whole echo, check it, repeat."""

    def __init__(self, msg: bytes) -> None:
        self.msg = msg
        self.size = len(msg)
        self.buf = bytearray()
        self.count = 0
        self.stopping = False
        self.error: str | None = None
        self.idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        self.transport.write(self.msg)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if len(buf) < self.size:
            return
        # One message in flight: a full buffer must be exactly that message.
        if len(buf) != self.size or buf != self.msg:
            self._fail(f"a wrong echo: {len(buf)} bytes, {bytes(buf[:40])!r}...")
            return
        buf.clear()
        self.count += 1
        if self.stopping:
            if not self.idle.done():
                self.idle.set_result(None)
        else:
            self.transport.write(self.msg)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.idle.done():
            self._fail(f"the server closed the connection ({exc!r})")

    def _fail(self, why: str) -> None:
        self.error = why
        if not self.idle.done():
            self.idle.set_result(None)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(
    server: ServerProcess,
    count: Callable[[], int],
    spec: dict[str, Any],
) -> dict[str, float]:
    """Operations per second and server CPU per operation over ``spec["duration"]``,
    after ``spec["warmup"]``; also the CPU that other processes took meanwhile
    on the server's and the client's CPUs."""
    await asyncio.sleep(spec["warmup"])
    cpus = spec["cpus"]
    busy0, mine0 = _cpu_busy(cpus), own_cpu_seconds()
    n0, cpu0, t0 = count(), server.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(spec["duration"])
    n1, cpu1, t1 = count(), server.cpu_seconds(), time.perf_counter()
    busy1, mine1 = _cpu_busy(cpus), own_cpu_seconds()
    ops, elapsed = n1 - n0, t1 - t0
    if ops <= 0:
        raise RuntimeError(f"nothing completed in {elapsed:.2f} s")
    server_busy, client_busy = (b - a for a, b in zip(busy0, busy1, strict=True))
    return {
        "rate": ops / elapsed,
        "server_us": (cpu1 - cpu0) / ops * 1e6,
        "server_cpu_pct": (cpu1 - cpu0) / elapsed * 100,
        "client_cpu_pct": (mine1 - mine0) / elapsed * 100,
        "other_server_cpu_pct": max(0.0, server_busy - (cpu1 - cpu0)) / elapsed * 100,
        "other_client_cpu_pct": max(0.0, client_busy - (mine1 - mine0)) / elapsed * 100,
        "ops": ops,
    }


async def echo_client(server: ServerProcess, spec: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    msg = message(spec["size"])
    clients: list[EchoClient] = []
    transports: list[asyncio.BaseTransport] = []
    try:
        for start in range(0, spec["conns"], CONNECT_BATCH):
            batch = min(CONNECT_BATCH, spec["conns"] - start)
            made = await asyncio.gather(
                *(
                    loop.create_connection(lambda: EchoClient(msg), "127.0.0.1", server.port)
                    for _ in range(batch)
                )
            )
            for transport, protocol in made:
                transports.append(transport)
                clients.append(protocol)
        for client in clients:
            client.start()
        result = await timed(server, lambda: sum(c.count for c in clients), spec)
        # Stop sending, wait for what is in flight: every echo came back whole.
        for client in clients:
            client.stopping = True
        await asyncio.wait_for(asyncio.gather(*(c.idle for c in clients)), DRAIN_TIMEOUT)
        errors = [c.error for c in clients if c.error]
        if errors:
            raise RuntimeError(f"{len(errors)} connection(s) failed: {errors[0]}")
        counts = [c.count for c in clients]
        result.update(fewest=min(counts), most=max(counts))
        result["mib_per_s"] = result["rate"] * spec["size"] * 2 / 2**20
        return result
    finally:
        for transport in transports:
            transport.close()


async def accept_client(server: ServerProcess, spec: dict[str, Any]) -> dict[str, Any]:
    done = 0
    stop = False

    async def one() -> None:
        nonlocal done
        while not stop:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                greeting = await reader.read(1)
                end = await reader.read(1)
                if greeting != b"+" or end != b"":
                    raise RuntimeError(f"the server answered {greeting!r}, then {end!r}")
            finally:
                writer.close()
            done += 1

    tasks = [asyncio.ensure_future(one()) for _ in range(spec["clients"])]
    try:
        result = await timed(server, lambda: done, spec)
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), DRAIN_TIMEOUT)
        return result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def client_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def worker(spec: dict[str, Any]) -> int:
    impl, bench = spec["impl"], spec["bench"]
    reason = not_built(impl, bench)
    if reason is not None:
        emit_result({"na": reason})
        return 0
    server_cpu, client_cpu = _cpus()
    spec = {**spec, "cpus": [server_cpu, client_cpu]}
    server = AsyncioServerProcess({"impl": impl, "bench": bench, "cpu": server_cpu})
    try:
        server.wait_listening()
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        if bench == "aiohttp":
            result = wrk_cell(server, spec, client_cpu)
        else:
            loop = client_loop()
            try:
                run = echo_client if bench in ("protocol", "streams") else accept_client
                result = loop.run_until_complete(run(server, spec))
            finally:
                loop.close()
        alive = server.proc.poll() is None
    except BaseException:
        stderr = server.close()
        if stderr:
            sys.stderr.write(f"server stderr:\n{stderr}\n")
        raise
    stderr = server.close()
    if not alive:
        raise RuntimeError(f"the server died during the run: {stderr[-500:]}")
    result.update(server_stderr=stderr[-500:], pinned=server_cpu is not None)
    emit_result(result)
    return 0


def wrk_cell(server: ServerProcess, spec: dict[str, Any], cpu: int | None) -> dict[str, Any]:
    check_hello(server.port)  # the body, and the connection kept alive
    if spec["wrk_warmup"] > 0:
        run_wrk(server.port, spec["conns"], spec["wrk_warmup"], None, cpu)
    busy0, cpu0, t0 = _cpu_busy(spec["cpus"]), server.cpu_seconds(), time.perf_counter()
    wrk, wrk_seconds = run_wrk(server.port, spec["conns"], spec["wrk_seconds"], None, cpu)
    busy1, cpu1, t1 = _cpu_busy(spec["cpus"]), server.cpu_seconds(), time.perf_counter()
    flag = flag_of(wrk["errors"])
    if flag:
        raise RuntimeError(f"wrk counted errors against a hello server: {flag}")
    elapsed = t1 - t0
    server_busy, client_busy = (b - a for a, b in zip(busy0, busy1, strict=True))
    return {
        "rate": wrk["rps"],
        "server_us": (cpu1 - cpu0) / wrk["requests"] * 1e6,
        "server_cpu_pct": (cpu1 - cpu0) / elapsed * 100,
        "client_cpu_pct": wrk_seconds / elapsed * 100,
        "other_server_cpu_pct": max(0.0, server_busy - (cpu1 - cpu0)) / elapsed * 100,
        "other_client_cpu_pct": max(0.0, client_busy - wrk_seconds) / elapsed * 100,
        "p50_ms": wrk["p50_ms"],
        "p99_ms": wrk["p99_ms"],
    }


# -- the driver -------------------------------------------------------------------------


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def make_cases(args: argparse.Namespace) -> list[Case]:
    q = 1 if args.quick else 0
    duration = DURATION[q] if args.duration is None else args.duration
    warmup = WARMUP[q] if args.warmup is None else args.warmup
    timed = {"duration": duration, "warmup": warmup}
    benches = args.bench or list(BENCHES)
    cases: list[Case] = []
    for bench in BENCHES:
        if bench not in benches:
            continue
        if bench in ("protocol", "streams"):
            what = "asyncio.Protocol echo" if bench == "protocol" else "asyncio streams echo"
            for size in args.sizes:
                for conns in args.connections:
                    rate = Metric("rate", "messages per second", "messages/s", True, 0)
                    cases.append(
                        Case(
                            bench,
                            f"{what}, {_size(size)}, C = {conns:,}",
                            {**timed, "size": size, "conns": conns},
                            [rate, server_us_metric("message")],
                            warmup + duration + 60 + conns / 50,
                        )
                    )
        elif bench == "aiohttp":
            seconds = WRK_SECONDS[q]
            cases.append(
                Case(
                    bench,
                    f"aiohttp hello world, wrk -t1 -c{WRK_CONNECTIONS}",
                    {"conns": WRK_CONNECTIONS, "wrk_seconds": seconds, "wrk_warmup": 1 - q},
                    [
                        Metric("rate", "requests per second", "requests/s", True, 0),
                        server_us_metric("request"),
                    ],
                    seconds + 90,
                )
            )
        else:
            cases.append(
                Case(
                    bench,
                    f"asyncio.start_server accept rate, {args.accept_clients} connecting at once",
                    {**timed, "clients": args.accept_clients},
                    [
                        Metric("rate", "connections per second", "connections/s", True, 0),
                        server_us_metric("connection"),
                    ],
                    warmup + duration + 60,
                )
            )
    return cases


def server_us_metric(per: str) -> Metric:
    return Metric("server_us", f"server CPU µs per {per}", "µs", False, 1)


def summary(cases: list[Case], results: list[Cells], impls: list[str]) -> list[str]:
    """Every case's median rate in one table, with the ratio to asyncio's loop."""
    out = [
        f"**All cases: median rate** (ratio to {BASELINE}; higher is better)",
        "",
        "| case | " + " | ".join(impls) + " |",
        "|---|" + "---:|" * len(impls),
    ]
    for case, cells in zip(cases, results, strict=True):
        meds = medians(case.metrics[0], impls, cells)
        base = meds.get(BASELINE)
        row = []
        for impl in impls:
            runs_of = cells.get(impl, [])
            if any("error" in r for r in runs_of):
                row.append("FAILED")
            elif impl in meds:
                ratio = f" ({meds[impl] / base:.2f}x)" if base else ""
                row.append(fmt(meds[impl], 0) + ratio)
            elif runs_of and "na" in runs_of[0]:
                row.append("n/a")
            else:
                row.append("—")
        out.append(f"| {case.label} | " + " | ".join(row) + " |")
    return [*out, ""]


def _median_of(cells: Cells, impl: str, key: str) -> float | None:
    values = [r[key] for r in cells.get(impl, []) if r.get(key) is not None]
    return statistics.median(values) if values else None


def notes(cells: Cells, impls: list[str]) -> list[str]:
    """Below a case's tables: the CPU of server and client, what else ran on their CPUs."""
    cpu, other, said = [], [], []
    for impl in impls:
        s, c = (_median_of(cells, impl, k) for k in ("server_cpu_pct", "client_cpu_pct"))
        if s is not None and c is not None:
            cpu.append(f"{impl} {s:.0f} / {c:.0f}")
        os_, oc = (
            _median_of(cells, impl, k) for k in ("other_server_cpu_pct", "other_client_cpu_pct")
        )
        if os_ is not None and oc is not None and max(os_, oc) >= 5:
            other.append(f"{impl} {os_:.0f} / {oc:.0f}")
        stderr = [r["server_stderr"] for r in cells.get(impl, []) if r.get("server_stderr")]
        if stderr:
            said.append(f"{impl} ({len(stderr)} runs): `{stderr[0].splitlines()[-1][:160]}`")
    out = []
    if cpu:
        out.append(
            "CPU over the timed window, server / client, % of one core (medians): "
            + "; ".join(cpu)
            + "."
        )
    if other:
        out.append(
            "Other processes on the server's / client's CPU meanwhile, % of one core "
            "(medians, shown where 5 or more): " + "; ".join(other) + "."
        )
    if said:
        out.append("The server wrote to stderr: " + "; ".join(said) + ".")
    return out


def _describe(result: dict[str, Any]) -> str:
    if "server_cpu_pct" not in result:
        return ""
    return (
        f" (server CPU {result['server_cpu_pct']:.0f}%, client {result['client_cpu_pct']:.0f}%,"
        f" others on their CPUs {result['other_server_cpu_pct']:.0f}% /"
        f" {result['other_client_cpu_pct']:.0f}%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="asyncio servers (Protocol echo, streams echo, aiohttp hello, accept rate) "
        "on reactor's epoll loop's asyncio face, asyncio's default loop and uvloop.",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), BENCHES)
    parser.set_defaults(repeat=DEFAULT_REPEAT)
    for action in parser._actions:
        if action.dest == "repeat":
            action.help = f"run the whole set R times and report medians (default {DEFAULT_REPEAT})"
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=list(CONNECTIONS),
        metavar="C",
        help="echo connections per cell (default 1 100 1000)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(SIZES),
        metavar="BYTES",
        help="echo message sizes (default 64 16384)",
    )
    parser.add_argument(
        "--accept-clients",
        type=int,
        default=ACCEPT_CLIENTS,
        metavar="K",
        help=f"client tasks connecting at once in the accept benchmark (default {ACCEPT_CLIENTS})",
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="timed seconds per echo/accept cell (default 2)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        metavar="S",
        help="warm-up seconds per echo/accept cell (default 0.5)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        spec = json.loads(args.serve)
        return serve(spec)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if min(args.connections) < 1 or min(args.sizes) < 1 or args.accept_clients < 1:
        parser.error("--connections, --sizes and --accept-clients must be at least 1")
    if max(args.connections) > 5000:
        parser.error("--connections: at most 5,000 (each is two file descriptors here)")
    benches = args.bench or list(BENCHES)
    if "aiohttp" in benches and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk); or leave out --bench aiohttp")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), unavailable_reason)
    cases = make_cases(args)
    command = "python benchmarks/bench_asyncio.py " + " ".join(argv or sys.argv[1:])
    run = drive(SCRIPT, args, cases, impls, skipped, describe=_describe)
    results, impls = run.results, run.impls

    out = run.header(args, command, skipped, baseline=BASELINE)
    server_cpu, client_cpu = _cpus()
    out[-1:-1] = [
        "- client: one process on "
        + ("uvloop" if unavailable_reason("uvloop") is None else "asyncio's loop")
        + ", the same for every server; "
        + (
            f"server pinned to CPU {server_cpu}, client and wrk to CPU {client_cpu}"
            if server_cpu is not None
            else "fewer than 2 CPUs: nothing pinned"
        ),
        "- echo: one message in flight per connection, every echo checked byte for byte; "
        "accept: the server writes one byte and closes",
    ]
    h = "### " if args.markdown else ""
    for ci, case in enumerate(cases):
        out += [f"{h}{case.label}", ""]
        for metric in case.metrics:
            out += render_table(case, metric, impls, results[ci])
        note = notes(results[ci], impls)
        if note:
            out += [" ".join(note), ""]
    if len(cases) > 1:
        out += [f"{h}Summary", ""]
        out += summary(cases, results, impls)
    print("\n".join(out))
    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
