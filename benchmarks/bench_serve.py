#!/usr/bin/env python
"""Multi-process servers: ``python -m reactor serve --processes 2`` beside its peers.

Four ways to serve hello world from two processes, each the way its users
deploy it:

``reactor-BACKEND``
    ``python -m reactor serve bench_serve:make_reactor_app --processes 2
    --backend BACKEND`` (one listening socket shared by the two children, the
    supervisor forwarding SIGTERM; its graceful drain with ``--drain-timeout``).
``tornado``
    Tornado 6.6: ``bind_sockets``, ``fork_processes(2)``, an ``HTTPServer``
    per child under ``asyncio.run``; on SIGTERM each child does Tornado's
    documented shutdown, ``server.stop()`` then ``await
    server.close_all_connections()``, and the parent (in ``fork_processes``)
    exits once both children did.
``gunicorn-uvicorn``
    gunicorn with two ``uvicorn.workers.UvicornWorker`` workers (uvloop,
    httptools) serving a Starlette app; gunicorn's graceful stop on SIGTERM.
``aiohttp``
    two processes forked after binding one socket, each ``web.run_app(app,
    sock=...)``; aiohttp's graceful shutdown on SIGTERM in each.

Each application answers ``GET /`` with ``Hello world!`` from a request
handler (``RequestHandler.write``, a Starlette ``PlainTextResponse``, an
aiohttp ``web.Response``). Two benchmarks:

``hello``
    wrk (``-t1 -c100``, a warm-up then the timed run) against the two
    processes: requests/s, and the server CPU per request (every process of
    the server's session, from ``/proc``).
``drain``
    N (1,000) keep-alive connections are opened, each makes one request;
    B (50) of them then keep a request in flight all the time. The server's
    main process gets SIGTERM; the result is the time until it exits (bounded
    by :data:`DRAIN_LIMIT`, then it is killed and the run is flagged), the time
    until the server closed the last connection, and the requests *cut*: a
    request written whose answer did not arrive whole before the connection
    closed. A server that drains perfectly answers every request in flight
    (with ``Connection: close``) and closes the idle connections; a request a
    client writes on a connection at the moment the server closes it as idle
    is cut too (the race every HTTP/1.1 keep-alive client retries).

Process layout: the parent runs each cell in a fresh worker (``--worker``),
as every script here. The worker starts the server through ``--serve SPEC``:
a babysitter in a session of its own that runs the server's command line as
its child, forwards SIGTERM to it, exits with its status, and kills the whole
session when the worker closes its stdin (or dies). Every server binds its
own port: reactor, Tornado and aiohttp port 0 (then say which, in a file),
gunicorn a free port chosen just before; in every case the server is ready
once each of its processes said it serves (a file each: reactor's
``--ready-file``, gunicorn's ``post_worker_init`` hook, the others' own code)
and the socket listening on the port belongs to the server's session
(``/proc``: see ``bench_http.ServerProcess.wait_listening``), so a process
that took the port first is never measured. Nothing is pinned: two server
processes, wrk and the client share the machine's CPUs.

Timings depend on the machine and what else it is doing: they belong in
documents, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_http
from _common import (
    ROOT,
    Case,
    Cells,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    render_table,
    run_main,
    unavailable_reason,
)
from bench_http import check_hello, flag_of, listening_inodes, process_tree, socket_inodes

SCRIPT = Path(__file__).resolve()
HERE = SCRIPT.parent
PROCESSES = 2
DEFAULT_REPEAT = 3
# (full, quick)
DURATION_SECONDS = (3, 1)
WARMUP_SECONDS = (1, 0)
DRAIN_CONNECTIONS = (1000, 100)
DRAIN_SLOW = (50, 10)
CONNECTIONS = 100
DRAIN_TIMEOUT = 30.0
"""The drain deadline every server is given (its own setting of it)."""
DRAIN_LIMIT = DRAIN_TIMEOUT + 10.0
"""How long the worker waits for the server to exit after SIGTERM."""
SERVER_START_TIMEOUT = 30.0
SERVER_LIFETIME = 600.0
HELLO = b"Hello world!"
SLOW_SECONDS = 1.0
"""How long ``GET /slow`` takes to answer (a sleep in the handler)."""
SLOW_LEAD = 0.3
"""How long after writing the slow requests the server gets SIGTERM."""

BASELINE = "tornado"
REACTOR_BACKENDS = ("select", "poll", "epoll", "asyncio", "uvloop")
IMPLEMENTATIONS: dict[str, str] = {
    **{
        f"reactor-{b}": f"python -m reactor serve --processes 2 --backend {b}"
        for b in REACTOR_BACKENDS
    },
    "tornado": "Tornado 6.6, fork_processes(2), stop() + close_all_connections() on SIGTERM",
    "gunicorn-uvicorn": "gunicorn, 2 uvicorn.workers.UvicornWorker workers, Starlette",
    "aiohttp": "aiohttp, 2 forked processes sharing one socket, web.run_app each",
}
BENCHES = ("hello", "drain")


def _unavailable(name: str) -> str | None:
    if name.startswith("reactor-"):
        return unavailable_reason(name)
    needs = {
        "tornado": ["tornado"],
        "gunicorn-uvicorn": ["gunicorn", "uvicorn", "starlette"],
        "aiohttp": ["aiohttp"],
    }[name]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def not_built(impl: str) -> str | None:
    """Why a reactor cell cannot run in this checkout yet (``n/a`` in the table)."""
    if impl.startswith("reactor-") and importlib.util.find_spec("reactor._serve") is None:
        return "not built: python -m reactor serve (reactor/_serve.py)"
    return None


# -- the applications -----------------------------------------------------------------


def make_reactor_app() -> Any:
    """The reactor application ``python -m reactor serve`` runs here."""
    from reactor import gen
    from reactor.web import Application, RequestHandler

    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("Hello world!")

    class Slow(RequestHandler):
        async def get(self) -> None:
            await gen.sleep(SLOW_SECONDS)
            self.write("Hello world!")

    return Application([("/", Hello), ("/slow", Slow)])


def make_starlette_app() -> Any:
    """The Starlette application gunicorn's uvicorn workers run."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello world!")

    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(SLOW_SECONDS)
        return PlainTextResponse("Hello world!")

    return Starlette(routes=[Route("/", hello), Route("/slow", slow)])


def _say_ready(ready: str, suffix: str, text: str = "") -> None:
    """Write ``ready + suffix`` whole (a rename), so a reader never sees half."""
    tmp = f"{ready}{suffix}.tmp"
    Path(tmp).write_text(text)
    os.rename(tmp, f"{ready}{suffix}")


def tornado_program(ready: str) -> None:
    """Tornado's multi-process server: ``fork_processes(2)`` and, in each child,
    the shutdown Tornado documents."""
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.process import fork_processes
    from tornado.web import Application, RequestHandler

    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("Hello world!")

    class Slow(RequestHandler):
        async def get(self) -> None:
            await asyncio.sleep(SLOW_SECONDS)
            self.write("Hello world!")

    sockets = bind_sockets(0, "127.0.0.1", backlog=1024)
    _say_ready(ready, "", str(sockets[0].getsockname()[1]))

    def forward(signum: int, frame: object) -> None:
        # fork_processes keeps its children to itself: each wrote its pid.
        for path in Path(ready).parent.glob(Path(ready).name + ".*"):
            if not path.name.endswith(".tmp"):
                try:
                    os.kill(int(path.read_text()), signal.SIGTERM)
                except (ValueError, OSError):
                    pass

    signal.signal(signal.SIGTERM, forward)
    task = fork_processes(PROCESSES, max_restarts=0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        server = HTTPServer(Application([("/", Hello), ("/slow", Slow)]))
        server.add_sockets(sockets)
        _say_ready(ready, f".{task}", str(os.getpid()))
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    asyncio.run(main())
    sys.exit(0)


def aiohttp_program(ready: str) -> None:
    """Two processes forked after binding one socket, ``web.run_app`` in each."""
    from aiohttp import web

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    _say_ready(ready, "", str(sock.getsockname()[1]))
    children = []
    for task in range(PROCESSES):
        pid = os.fork()
        if pid == 0:

            async def hello(request: web.Request) -> web.Response:
                return web.Response(text="Hello world!")

            async def slow(request: web.Request) -> web.Response:
                await asyncio.sleep(SLOW_SECONDS)
                return web.Response(text="Hello world!")

            async def started(app: web.Application, task: int = task) -> None:
                _say_ready(ready, f".{task}", str(os.getpid()))

            app = web.Application()
            app.router.add_get("/", hello)
            app.router.add_get("/slow", slow)
            app.on_startup.append(started)
            web.run_app(app, sock=sock, access_log=None, print=None, shutdown_timeout=DRAIN_TIMEOUT)
            os._exit(0)
        children.append(pid)

    def forward(signum: int, frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    sys.exit(0 if all(os.waitstatus_to_exitcode(s) == 0 for s in statuses) else 1)


GUNICORN_CONFIG = """\
# bench_serve.py: each worker says when it serves.
import os


def post_worker_init(worker):
    path = {ready!r} + ".%d" % worker.pid
    with open(path + ".tmp", "w") as f:
        f.write(str(worker.pid))
    os.rename(path + ".tmp", path)
"""


def server_command(spec: dict[str, Any], tmp: str) -> list[str]:
    """The command line of a server, as its users would type it."""
    impl, ready = spec["impl"], spec["ready"]
    py = sys.executable
    if impl.startswith("reactor-"):
        return [
            py,
            "-m",
            "reactor",
            "serve",
            "bench_serve:make_reactor_app",
            "--processes",
            str(PROCESSES),
            "--backend",
            impl.removeprefix("reactor-"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            ready,
            "--drain-timeout",
            str(DRAIN_TIMEOUT),
            "--no-access-log",
        ]
    if impl == "gunicorn-uvicorn":
        config = Path(tmp) / "gunicorn_conf.py"
        config.write_text(GUNICORN_CONFIG.format(ready=ready))
        return [
            py,
            "-m",
            "gunicorn",
            "bench_serve:make_starlette_app()",
            "--workers",
            str(PROCESSES),
            "--worker-class",
            "uvicorn.workers.UvicornWorker",
            "--bind",
            f"127.0.0.1:{spec['port']}",
            "--graceful-timeout",
            str(int(DRAIN_TIMEOUT)),
            "--keep-alive",
            "75",
            "--backlog",
            "1024",
            "--log-level",
            "warning",
            "--config",
            str(config),
        ]
    return [py, str(SCRIPT), "--program", json.dumps({"impl": impl, "ready": ready})]


# -- the babysitter (--serve) ------------------------------------------------------------


def _watch_stdin(lifetime: float) -> None:
    """Kill the server and all it forked (its process tree: reactor's
    supervisor gives its children a group of their own; and the session)
    when stdin closes or the lifetime is over. A daemon thread of the
    babysitter."""
    deadline = time.monotonic() + lifetime
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.write(2, b"server: lifetime over, exiting\n")
            break
        ready, _, _ = select.select([0], [], [], remaining)
        if ready and not os.read(0, 4096):
            break
    me = os.getpid()
    for pid in process_tree(me) - {me}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(os.getpgid(0), signal.SIGKILL)


def serve(spec: dict[str, Any]) -> int:
    """Run the server's command as a child; SIGTERM goes to it; its status is ours."""
    # 1,000 connections split over two processes, whatever the shell's limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    threading.Thread(target=_watch_stdin, args=(spec["lifetime"],), daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), str(HERE), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.pop("REACTOR_BACKEND", None)
        child = subprocess.Popen(
            server_command(spec, tmp), cwd=HERE, env=env, stdin=subprocess.DEVNULL
        )
        signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
        status = child.wait()
    return status if status >= 0 else 128 - status


def program(spec: dict[str, Any]) -> int:
    """The multi-process programs written here (Tornado's, aiohttp's)."""
    if spec["impl"] == "tornado":
        tornado_program(spec["ready"])
    elif spec["impl"] == "aiohttp":
        aiohttp_program(spec["ready"])
    else:
        raise ValueError(f"no program for {spec['impl']!r}")
    return 0


# -- the worker (--worker) -----------------------------------------------------------------


class Server:
    """The babysitter and the server under it, ready once every process said so."""

    def __init__(self, impl: str, tmp: str) -> None:
        self.impl = impl
        self.ready = os.path.join(tmp, "ready")
        # gunicorn binds the port it is given; the others pick port 0.
        port = bench_http._free_port() if impl == "gunicorn-uvicorn" else 0
        spec = {"impl": impl, "ready": self.ready, "port": port, "lifetime": SERVER_LIFETIME}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--serve", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=self._stderr,
            stderr=self._stderr,
            cwd=ROOT,
            start_new_session=True,
        )
        self.port = port

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {self.proc.returncode}: {self.stderr_tail()}"
                )
            if self._processes_ready():
                listeners = listening_inodes(self.port)
                if listeners and listeners <= socket_inodes(process_tree(self.proc.pid)):
                    return
            if time.monotonic() > deadline:
                held = "; another process holds the port" if listening_inodes(self.port) else ""
                raise TimeoutError(
                    f"the server was not ready within {SERVER_START_TIMEOUT:g} s{held}: "
                    + self.stderr_tail()
                )
            time.sleep(0.02)

    def _processes_ready(self) -> bool:
        if self.impl != "gunicorn-uvicorn":
            try:
                text = Path(self.ready).read_text()
            except FileNotFoundError:
                return False
            # reactor's --ready-file holds the bound address; ours the port.
            found = re.findall(r"\d+", text.rsplit(":", 1)[-1])
            if not found:
                return False
            self.port = int(found[0])
            if self.impl.startswith("reactor-"):
                return True  # written once every process accepts
        parent = Path(self.ready).parent
        done = [p for p in parent.glob("ready.*") if not p.name.endswith(".tmp")]
        return len(done) >= PROCESSES

    def cpu_seconds(self) -> float:
        """CPU time of every process of the server (reactor's supervisor puts
        its children in a process group of their own: the tree, not the
        group), per thread from ``schedstat`` in ns, else ``stat``'s ticks."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in process_tree(self.proc.pid):
            try:
                ns = 0
                for task in os.scandir(f"/proc/{pid}/task"):
                    with open(f"{task.path}/schedstat") as f:
                        ns += int(f.read().split()[0])
                total += ns / 1e9
            except OSError:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / ticks
                except (OSError, IndexError, ValueError):
                    continue  # gone meanwhile
        return total

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-1500:] if text else "(no output)"

    def close(self) -> str:
        """Kill every process of the server (its tree, and its session);
        returns what the server wrote."""
        for pid in process_tree(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.proc.wait(10)
        text = self.stderr_tail()
        self._stderr.close()
        return "" if text == "(no output)" else text


def hello_cell(server: Server, spec: dict[str, Any]) -> dict[str, Any]:
    check_hello(server.port)
    warm = None
    if spec["warmup"] > 0:
        warm, _ = bench_http.run_wrk(server.port, CONNECTIONS, spec["warmup"], None, None)
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    result, wrk_seconds = bench_http.run_wrk(server.port, CONNECTIONS, spec["duration"], None, None)
    cpu1, t1 = server.cpu_seconds(), time.perf_counter()
    if server.proc.poll() is not None:
        raise RuntimeError(f"the server died during the run: {server.stderr_tail()}")
    result.update(
        flag=flag_of(result["errors"]),
        warmup_flag=flag_of(warm["errors"]) if warm else "",
        server_us=(cpu1 - cpu0) / max(1, result["requests"]) * 1e6,
        server_cpu_pct=(cpu1 - cpu0) / (t1 - t0) * 100,
        wrk_cpu_pct=wrk_seconds / result["seconds"] * 100,
    )
    return result


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


SLOW_REQUEST = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Exchanges:
    """What the drain client counted."""

    def __init__(self) -> None:
        self.answered = 0
        self.cut = 0
        self.closed = 0
        self.last_close = 0.0


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes = REQUEST
) -> bool:
    """One GET and its whole answer; returns whether the server keeps the
    connection. Raises ConnectionError / IncompleteReadError when it is cut."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    if not status.startswith("HTTP/1.1 200") or body != HELLO:
        raise ValueError(f"answered {status!r} {body[:60]!r}")
    return headers.get("connection", "").lower() != "close"


async def _connection(
    port: int, slow: asyncio.Event | None, counts: Exchanges, opened: asyncio.Future[None]
) -> None:
    """One keep-alive connection: a first exchange (then ``opened`` is set);
    with ``slow``, once it is set, one ``GET /slow`` (answered after
    :data:`SLOW_SECONDS`) that the SIGTERM finds in flight; then it waits,
    idle, until the server closes it."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if not await _exchange(reader, writer):
            raise ValueError("the server closed a connection before the drain")
    except BaseException as e:
        if not opened.done():
            opened.set_exception(e)
        raise
    opened.set_result(None)
    try:
        if slow is not None:
            await slow.wait()
            try:
                await _exchange(reader, writer, SLOW_REQUEST)
                counts.answered += 1
            except (ConnectionError, asyncio.IncompleteReadError):
                counts.cut += 1
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        counts.closed += 1
        counts.last_close = time.monotonic()
    finally:
        writer.close()


async def drain_client(server: Server, n: int, b: int, limit: float) -> dict[str, Any]:
    """Open ``n`` keep-alive connections, send ``b`` of them a slow request,
    SIGTERM the server while those are in its handlers, and count until it
    exits."""
    counts = Exchanges()
    slow = asyncio.Event()
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, n, 100):
        opened = [loop.create_future() for _ in range(start, min(n, start + 100))]
        tasks += [
            asyncio.ensure_future(
                _connection(server.port, slow if start + i < b else None, counts, fut)
            )
            for i, fut in enumerate(opened)
        ]
        # Each batch connected and answered before the next one.
        await asyncio.wait_for(asyncio.gather(*opened), SERVER_START_TIMEOUT)
    slow.set()
    # The slow requests written and read by the server (loopback: well
    # within this), their answers still SLOW_SECONDS - SLOW_LEAD away.
    await asyncio.sleep(SLOW_LEAD)
    t0 = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)
    exited = await loop.run_in_executor(None, _wait_exit, server.proc, limit)
    t_exit = time.monotonic()
    done, pending = await asyncio.wait(tasks, timeout=5.0)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [str(t.exception()) for t in done if not t.cancelled() and t.exception()]
    flag = "" if exited else f"did not exit within {limit:g} s (killed)"
    if errors:
        flag += ("; " if flag else "") + f"{len(errors)} connection error(s): {errors[0]}"
    if exited and server.proc.returncode != 0:
        flag += ("; " if flag else "") + f"exit status {server.proc.returncode}"
    return {
        "drain_s": t_exit - t0,
        "closed_s": (counts.last_close - t0) if counts.closed else None,
        "cut": counts.cut,
        "answered": counts.answered,
        "closed": counts.closed,
        "left_open": len(pending),
        "connections": n,
        "busy": b,
        "exit_status": server.proc.returncode if exited else None,
        "flag": flag,
    }


def _wait_exit(proc: subprocess.Popen[bytes], limit: float) -> bool:
    try:
        proc.wait(limit)
        return True
    except subprocess.TimeoutExpired:
        return False


def worker(spec: dict[str, Any]) -> int:
    impl, bench = spec["impl"], spec["bench"]
    reason = not_built(impl)
    if reason is not None:
        emit_result({"na": reason})
        return 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = Server(impl, tmp)
        try:
            server.wait_ready()
            if bench == "hello":
                result = hello_cell(server, spec)
            else:
                check_hello(server.port)
                result = asyncio.run(
                    drain_client(server, spec["connections"], spec["busy"], DRAIN_LIMIT)
                )
        except BaseException:
            said = server.close()
            if said:
                sys.stderr.write(f"server output:\n{said}\n")
            raise
        said = server.close()
    result["server_stderr"] = said[-500:]
    emit_result(result)
    return 0


# -- the driver ---------------------------------------------------------------------


RPS = Metric("rps", "requests per second", "requests/s", True, 0)
SERVER_US = Metric("server_us", "server CPU per request", "µs", False, 1)
DRAIN = Metric("drain_s", "time from SIGTERM to the exit", "s", False, 2)
CUT = Metric("cut", "requests cut by the shutdown", "requests", False, 0)


def make_cases(args: argparse.Namespace) -> list[Case]:
    q = 1 if args.quick else 0
    duration = args.duration or DURATION_SECONDS[q]
    warmup = WARMUP_SECONDS[q] if args.warmup is None else args.warmup
    n = args.drain_connections or DRAIN_CONNECTIONS[q]
    b = min(n, DRAIN_SLOW[q])
    cases = []
    for bench in args.bench or BENCHES:
        if bench == "hello":
            cases.append(
                Case(
                    "hello",
                    f"Hello world, {PROCESSES} processes, wrk -t1 -c{CONNECTIONS}",
                    {"duration": duration, "warmup": warmup},
                    [RPS, SERVER_US],
                    warmup + duration + 120,
                    None,
                    BASELINE,
                )
            )
        else:
            cases.append(
                Case(
                    "drain",
                    f"Drain of {n:,} keep-alive connections, {b} with a request in flight",
                    {"connections": n, "busy": b},
                    [DRAIN, CUT],
                    DRAIN_LIMIT + 120,
                    None,
                    BASELINE,
                )
            )
    return cases


def _median(cells: Cells, impl: str, key: str) -> float | None:
    values = [r[key] for r in cells.get(impl, []) if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def notes(case: Case, cells: Cells, impls: list[str]) -> list[str]:
    """Below a case's tables: what else each server did."""
    out = []
    if case.bench == "hello":
        cpu = []
        for impl in impls:
            s, w = _median(cells, impl, "server_cpu_pct"), _median(cells, impl, "wrk_cpu_pct")
            if s is not None and w is not None:
                cpu.append(f"{impl} {s:.0f} / {w:.0f}")
        if cpu:
            out.append("CPU, server (both processes) / wrk, % of one core: " + "; ".join(cpu) + ".")
    else:
        rows = []
        for impl in impls:
            closed = _median(cells, impl, "closed_s")
            answered = _median(cells, impl, "answered")
            if closed is not None and answered is not None:
                rows.append(f"{impl} {closed:.2f} s / {answered:.0f}")
        if rows:
            out.append(
                "Time from SIGTERM until the server closed the last connection / requests in "
                "flight answered (medians): " + "; ".join(rows) + ". The requests in flight are "
                f"`GET /slow`, answered {SLOW_SECONDS:g} s after they arrive; SIGTERM comes "
                f"{SLOW_LEAD:g} s after they were sent, so a server that answers them cannot "
                f"exit sooner than about {SLOW_SECONDS - SLOW_LEAD:g} s."
            )
    flagged = [
        f"{impl}: {r['flag']}" for impl in impls for r in cells.get(impl, []) if r.get("flag")
    ]
    if flagged:
        out.append("Flagged runs: " + "; ".join(flagged) + ".")
    said = [
        f"{impl}: `{r['server_stderr'].strip().splitlines()[-1][:160]}`"
        for impl in impls
        for r in cells.get(impl, [])[:1]
        if r.get("server_stderr", "").strip()
    ]
    if said:
        out.append("The server wrote (last line of a run): " + "; ".join(said) + ".")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Multi-process servers: python -m reactor serve --processes 2 against "
        "Tornado's fork_processes, gunicorn + uvicorn (Starlette) and aiohttp: hello world "
        "under wrk, and the graceful drain of 1,000 keep-alive connections.",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), BENCHES)
    parser.set_defaults(repeat=DEFAULT_REPEAT)
    parser.add_argument("--duration", type=int, metavar="S", help="timed seconds of wrk (3)")
    parser.add_argument("--warmup", type=int, metavar="S", help="warm-up seconds of wrk (1)")
    parser.add_argument(
        "--drain-connections",
        type=int,
        metavar="N",
        help=f"keep-alive connections open at SIGTERM (default {DRAIN_CONNECTIONS[0]:,})",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--program", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(json.loads(args.serve))
    if args.program:
        return program(json.loads(args.program))
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.drain_connections is not None and not 1 <= args.drain_connections <= 5000:
        parser.error("--drain-connections: from 1 to 5,000")
    if "hello" in (args.bench or BENCHES) and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), _unavailable)
    cases = make_cases(args)
    command = "python benchmarks/bench_serve.py " + " ".join(argv or sys.argv[1:])
    run = drive(SCRIPT, args, cases, impls, skipped)
    out = run.header(args, command, skipped, baseline=BASELINE)
    out[-1:-1] = [
        f"- {PROCESSES} server processes each; nothing pinned (servers, wrk and the drain "
        "client share the CPUs); " + bench_http.wrk_version(),
        f"- drain: every server given {DRAIN_TIMEOUT:g} s to drain (its own setting), "
        f"killed after {DRAIN_LIMIT:g} s",
    ]
    h = "### " if args.markdown else ""
    for ci, case in enumerate(run.cases):
        out += [f"{h}{case.label}", ""]
        for metric in case.metrics:
            out += render_table(case, metric, run.impls, run.results[ci])
        note = notes(case, run.results[ci], run.impls)
        if note:
            out += [" ".join(note), ""]
    print("\n".join(out))
    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
