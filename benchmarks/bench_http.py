#!/usr/bin/env python
"""HTTP server benchmarks: hello world over keep-alive, measured with wrk.

Servers: reactor's bare ``HTTPServer`` (a request callback) on every backend,
Tornado 6.6's bare ``HTTPServer`` with the same callback, Tornado's
``web.Application`` with a ``RequestHandler``, an aiohttp ``web.Application``
and uvicorn (uvloop + httptools) with a raw ASGI app. Three benchmarks:

``hello``
    ``GET /`` answered with ``Hello world!`` (12 bytes, ``text/plain``),
    ``wrk -t1 -c100``: one request in flight per connection.
``pipeline``
    The same, but wrk writes N (default 16) pipelined GETs at a time on each
    connection (a Lua script written to a temporary file at run time).
``upload``
    ``POST /`` with a 1-MiB body, ``wrk -t1 -c16``; the server reads the
    whole body and answers with its length in decimal. Requests/s and MiB/s.

Process layout: the parent (this script, no options but the CLI ones) runs
every cell in a fresh subprocess (``--worker SPEC``) with a time limit. The
worker picks a free port, starts the server (``--serve SPEC``, pinned to the
first CPU), waits until the port answers, checks one exchange by hand (the
body, keep-alive, all N pipelined answers, the upload's length), runs a
1-second wrk warm-up and then the timed wrk run (``taskset -c`` the second
CPU), and stops the server. A server exits when its stdin closes, so a worker
killed by its time limit takes its server with it, and in any case after a
lifetime of its own.

wrk's ``Requests/sec:`` is the result. A run in which wrk counted socket
errors (connect, read, write, timeout) or responses with a status above 399
is *flagged*: left out of the median and shown beside it with its errors.
Run ``python benchmarks/bench_http.py --help``.

Timings depend on the machine and on whatever else it is doing: they belong
in documents, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.metadata
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

from _common import (
    ROOT,
    Case,
    Cells,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    fmt,
    run_main,
    runs,
    unavailable_reason,
)

# (full, quick), in whole seconds: wrk's -d takes no fractions.
DURATION_SECONDS = (5, 1)
WARMUP_SECONDS = (1, 0)
CONNECTIONS = 100
UPLOAD_CONNECTIONS = 16
PIPELINE_DEPTH = 16
UPLOAD_SIZE = 1024 * 1024
DEFAULT_REPEAT = 3

HELLO = b"Hello world!"
SERVER_START_TIMEOUT = 30.0
SERVER_LIFETIME = 600.0

BASELINE = "tornado-httpserver"
SECOND_BASELINE = "aiohttp"

IMPLEMENTATIONS: dict[str, str] = {
    "reactor-select": "reactor HTTPServer, bare callback, IOLoop on the select backend",
    "reactor-poll": "reactor HTTPServer, bare callback, IOLoop on the poll backend",
    "reactor-epoll": "reactor HTTPServer, bare callback, IOLoop on the epoll backend",
    "reactor-asyncio": "reactor HTTPServer, bare callback, on the asyncio bridge",
    "reactor-uvloop": "reactor HTTPServer, bare callback, on the uvloop bridge",
    "tornado-httpserver": "tornado.httpserver.HTTPServer 6.6, bare callback (asyncio.run)",
    "tornado-web": "tornado.web.Application + RequestHandler 6.6 (asyncio.run)",
    "aiohttp": "aiohttp web.Application, web.run_app(access_log=None), default asyncio loop",
    "uvicorn": "uvicorn, 1 worker, uvloop + httptools, no access log, a raw ASGI app",
}
BENCHES = ("hello", "pipeline", "upload")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _unavailable(name: str) -> str | None:
    if name.startswith("reactor-"):
        reason = unavailable_reason(name)
        if reason is None and importlib.util.find_spec("reactor.httpserver") is None:
            reason = "reactor.httpserver does not exist in this checkout yet"
        return reason
    if name.startswith("tornado-"):
        return unavailable_reason("tornado")
    needs = {"aiohttp": ["aiohttp"], "uvicorn": ["uvicorn", "uvloop", "httptools"]}[name]
    missing = [dist for dist in needs if _version(dist) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def _cpus() -> tuple[int | None, int | None]:
    """The CPUs for the server and for wrk, or (None, None): no pinning."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


# -- the server process (--serve) -------------------------------------------------
#
# Each server is the smallest program a user of that library would write for
# the job: "hello" (also used by the pipeline benchmark) answers every request
# with HELLO; "upload" reads the whole body and answers with its length.


def _watch_stdin(lifetime: float) -> None:
    """Exit the process when stdin closes (the worker is done or gone), or
    when the lifetime is over. Runs in a daemon thread."""
    deadline = time.monotonic() + lifetime
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.write(2, b"server: lifetime over, exiting\n")
            os._exit(3)
        ready, _, _ = select.select([0], [], [], remaining)
        if ready and not os.read(0, 4096):
            os._exit(0)


def serve_reactor(backend: str, mode: str, port: int) -> None:
    from reactor.httpserver import HTTPServer
    from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
    from reactor.ioloop import IOLoop

    def hello(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Type": "text/plain", "Content-Length": "12"}),
            b"Hello world!",
        )
        request.connection.finish()

    def upload(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        body = str(len(request.body)).encode()
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
            body,
        )
        request.connection.finish()

    IOLoop.configure(backend)
    loop = IOLoop.current()
    if loop.backend_name != backend:
        raise RuntimeError(f"asked for backend {backend!r}, got {loop.backend_name!r}")
    server = HTTPServer(hello if mode == "hello" else upload)
    server.listen(port, "127.0.0.1")
    loop.start()


def serve_tornado_httpserver(mode: str, port: int) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine

    def hello(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Type": "text/plain", "Content-Length": "12"}),
            b"Hello world!",
        )
        request.connection.finish()

    def upload(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        body = str(len(request.body)).encode()
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
            body,
        )
        request.connection.finish()

    async def main() -> None:
        server = HTTPServer(hello if mode == "hello" else upload)
        server.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_tornado_web(mode: str, port: int) -> None:
    from tornado.web import Application, RequestHandler

    class Hello(RequestHandler):
        def get(self) -> None:
            self.write("Hello world!")

    class Upload(RequestHandler):
        def post(self) -> None:
            self.write(str(len(self.request.body)))

    async def main() -> None:
        app = Application([("/", Hello if mode == "hello" else Upload)])
        app.listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_aiohttp(mode: str, port: int, size: int) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello world!")

    async def upload(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(text=str(len(body)))

    # client_max_size: aiohttp refuses bodies over 1 MiB by default.
    app = web.Application(client_max_size=max(1024**2, size))
    if mode == "hello":
        app.router.add_get("/", hello)
    else:
        app.router.add_post("/", upload)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_uvicorn(mode: str, port: int) -> None:
    import uvicorn

    async def lifespan(receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if mode == "hello":
            body = b"Hello world!"
        else:
            length = 0
            while True:
                message = await receive()
                length += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = str(length).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # The same as `uvicorn --loop uvloop --http httptools --no-access-log
    # --log-level warning --workers 1`, in this process (so that it is pinned).
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        workers=1,
    )


def serve(spec: dict[str, Any]) -> int:
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    threading.Thread(target=_watch_stdin, args=(spec["lifetime"],), daemon=True).start()
    impl, mode, port = spec["impl"], spec["mode"], spec["port"]
    if impl.startswith("reactor-"):
        serve_reactor(impl.removeprefix("reactor-"), mode, port)
    elif impl == "tornado-httpserver":
        serve_tornado_httpserver(mode, port)
    elif impl == "tornado-web":
        serve_tornado_web(mode, port)
    elif impl == "aiohttp":
        serve_aiohttp(mode, port, spec["size"])
    elif impl == "uvicorn":
        serve_uvicorn(mode, port)
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    return 0


# -- the worker (--worker): server, checks, wrk ----------------------------------------


class ServerProcess:
    """The server subprocess (``script --serve SPEC``, this script by default):
    started pinned, stopped by closing its stdin. ``new_session``: in a
    session of its own, so that :meth:`close` kills the workers it forked
    (gunicorn's) with it."""

    def __init__(
        self, spec: dict[str, Any], script: Path | None = None, new_session: bool = False
    ) -> None:
        self.port = _free_port()
        spec = {**spec, "port": self.port, "lifetime": SERVER_LIFETIME}
        env = dict(os.environ)
        env.pop("REACTOR_BACKEND", None)
        # Under --baseline-tree the worker has REACTOR_BENCH_TREE set, and the
        # server imports reactor from that checkout too.
        cwd = Path(env.get("REACTOR_BENCH_TREE") or ROOT)
        # Closed in close(); a file rather than a pipe, so that it never fills.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._group = new_session
        self.proc = subprocess.Popen(
            [sys.executable, str(script or Path(__file__).resolve()), "--serve", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=cwd,
            env=env,
            start_new_session=new_session,
        )
        self._ticks = os.sysconf("SC_CLK_TCK")

    def wait_listening(self) -> None:
        """Until the server itself listens on its port (bounded).

        The port was free when the worker chose it, but on a shared machine
        another process may bind it before the server does; a bare connect
        would then measure that process. So the listening socket on the port
        must belong to the server: its inode (``/proc/net/tcp``) must be one
        of the server's open sockets, or of a process it forked (gunicorn's
        arbiter, a supervisor's children). If a stranger holds the port, the
        server fails to bind and exits, and the cell fails saying so.
        """
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {self.proc.returncode}: {self.stderr_tail()}"
                    + _port_holders_note(self.port)
                )
            listeners = listening_inodes(self.port)
            if listeners:
                ours = socket_inodes(process_tree(self.proc.pid))
                if listeners <= ours:
                    try:
                        socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                        return
                    except OSError:
                        pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the server did not listen within {SERVER_START_TIMEOUT:g} s"
                    + _port_holders_note(self.port)
                )
            time.sleep(0.02)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (from /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text[-2000:] if text else "(no stderr)"

    def close(self) -> str:
        """Stop the server (and its session's processes, with ``new_session``);
        returns what it wrote to stderr ("" if nothing)."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            if not self._group:
                self.proc.kill()
        if self._group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        self._stderr.close()
        return text


def _cpu_busy(cpus: list[int | None]) -> list[float]:
    """Seconds each of ``cpus`` has spent running processes (user, nice and
    system time in /proc/stat; not interrupts, where loopback TCP does much
    of its work, nor steal)."""
    ticks = os.sysconf("SC_CLK_TCK")
    busy: dict[int, float] = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                busy[int(name[3:])] = sum(int(v) for v in fields[:3]) / ticks
    return [busy.get(cpu, 0.0) if cpu is not None else 0.0 for cpu in cpus]


def listening_inodes(port: int) -> set[int]:
    """The inodes of the sockets listening on TCP ``port`` (any address), from
    ``/proc/net/tcp`` and ``tcp6``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st ... inode; st 0A is LISTEN.
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def process_tree(pid: int) -> set[int]:
    """``pid`` and every live process descended from it (through ``/proc``)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    parents[int(entry.name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def socket_inodes(pids: set[int]) -> set[int]:
    """The inodes of the sockets the processes ``pids`` hold open."""
    inodes = set()
    for pid in pids:
        try:
            fds = list(os.scandir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd.path)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _port_holders_note(port: int) -> str:
    """ "; port N is held by another process" when a stranger listens on it."""
    return f"; port {port} is held by another process" if listening_inodes(port) else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def check_hello(port: int) -> None:
    """Two GETs on one connection: status, body, and the connection kept."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(2):
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or body != HELLO:
                raise AssertionError(f"GET / answered {response.status} {body[:100]!r}")
            if response.will_close:
                raise AssertionError("the server does not keep the connection alive")
    finally:
        conn.close()


def check_pipeline(port: int, depth: int) -> None:
    """``depth`` GETs in one write: ``depth`` answers must come back."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request * depth)
        data = b""
        while data.count(HELLO) < depth:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    answers = data.count(b"HTTP/1.1 200 ")
    if answers != depth or data.count(HELLO) != depth:
        raise AssertionError(f"{depth} pipelined GETs, {answers} answers: {data[:200]!r}")


def check_upload(port: int, size: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", "/", body=b"x" * size, headers={"Content-Type": "application/octet-stream"}
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or body != str(size).encode():
        raise AssertionError(f"a {size}-byte POST was answered {response.status} {body[:100]!r}")


def lua_script(bench: str, depth: int, size: int) -> str | None:
    """The wrk script of a benchmark (None: plain GETs, no script)."""
    if bench == "pipeline":
        return (
            f"-- bench_http.py: {depth} pipelined GETs per write\n"
            "init = function(args)\n"
            "   local r = {}\n"
            f"   for i = 1, {depth} do r[i] = wrk.format(nil, '/') end\n"
            "   req = table.concat(r)\n"
            "end\n"
            "request = function()\n"
            "   return req\n"
            "end\n"
        )
    if bench == "upload":
        return (
            f"-- bench_http.py: POST with a {size}-byte body\n"
            'wrk.method = "POST"\n'
            f'wrk.body = string.rep("x", {size})\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        )
    return None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if m is None:
        raise ValueError(f"not a wrk time: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """The numbers of one wrk run, from its text output (``--latency``)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output, re.M)
    if rps is None or total is None:
        raise RuntimeError(f"no result in wrk's output:\n{output}")
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock is not None:
        for key, value in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            errors[key] = int(value)
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if status is not None:
        errors["non2xx"] = int(status.group(1))
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M)}
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "seconds": _ms(total.group(2) + total.group(3)) / 1000,
        "errors": errors,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
    }


def flag_of(errors: dict[str, int]) -> str:
    """What went wrong in a run ("12 read errors, 3 non-2xx"); "" if nothing."""
    names = {"non2xx": "non-2xx"}
    parts = [
        f"{n:,} {names.get(k, k)}" + ("" if k == "non2xx" else " errors")
        for k, n in errors.items()
        if n
    ]
    return ", ".join(parts)


def run_wrk(
    port: int, conns: int, seconds: int, script: str | None, cpu: int | None
) -> tuple[dict[str, Any], float]:
    """One wrk run; returns its parsed numbers and the CPU seconds wrk used."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{port}/")
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with status {proc.returncode}: {proc.stderr.strip()}")
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(proc.stdout), cpu_seconds


def worker(spec: dict[str, Any]) -> int:
    """One cell: start the server, check it, warm it up, measure it with wrk."""
    impl, bench = spec["impl"], spec["bench"]
    server_cpu, wrk_cpu = _cpus()
    mode = "upload" if bench == "upload" else "hello"
    server = ServerProcess({"impl": impl, "mode": mode, "size": spec["size"], "cpu": server_cpu})
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server.wait_listening()
            if wrk_cpu is not None:
                os.sched_setaffinity(0, {wrk_cpu})
            if bench == "hello":
                check_hello(server.port)
            elif bench == "pipeline":
                check_pipeline(server.port, spec["depth"])
            else:
                check_upload(server.port, spec["size"])
            text = lua_script(bench, spec["depth"], spec["size"])
            script = None
            if text is not None:
                script = os.path.join(tmp, f"{bench}.lua")
                Path(script).write_text(text)
            warm = None
            if spec["warmup"] > 0:
                warm, _ = run_wrk(server.port, spec["conns"], spec["warmup"], script, wrk_cpu)
            busy0 = _cpu_busy([server_cpu, wrk_cpu])
            scpu0, t0 = server.cpu_seconds(), time.perf_counter()
            result, wrk_seconds = run_wrk(
                server.port, spec["conns"], spec["duration"], script, wrk_cpu
            )
            scpu1, t1 = server.cpu_seconds(), time.perf_counter()
            busy1 = _cpu_busy([server_cpu, wrk_cpu])
            alive = server.proc.poll() is None
            if bench == "pipeline":
                # wrk 4.1 times a pipelined batch only when its last answer
                # is in, and its percentiles read 0 then: no latency here.
                result["p50_ms"] = result["p99_ms"] = None
        except BaseException:
            stderr = server.close()
            if stderr:
                sys.stderr.write(f"server stderr:\n{stderr}\n")
            raise
        stderr = server.close()
    if not alive:
        raise RuntimeError(f"the server died during the run: {stderr[-500:]}")
    elapsed = t1 - t0
    server_busy, wrk_busy = (b - a for a, b in zip(busy0, busy1, strict=True))
    result.update(
        connections=spec["conns"],
        flag=flag_of(result["errors"]),
        warmup_flag=flag_of(warm["errors"]) if warm else "",
        server_cpu_pct=(scpu1 - scpu0) / elapsed * 100,
        wrk_cpu_pct=wrk_seconds / result["seconds"] * 100,
        # What else ran on the two CPUs meanwhile (a shared machine shows here).
        other_server_cpu_pct=max(0.0, server_busy - (scpu1 - scpu0)) / elapsed * 100,
        other_wrk_cpu_pct=max(0.0, wrk_busy - wrk_seconds) / elapsed * 100,
        server_stderr=stderr[-500:],
        pinned=server_cpu is not None,
    )
    if bench == "upload":
        result["mib_per_s"] = result["rps"] * spec["size"] / 2**20
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------


RPS = Metric("rps", "requests per second", "requests/s", True, 0)
MIBS = Metric("mib_per_s", "request body MiB per second", "MiB/s", True, 1)


def make_cases(
    benches: list[str],
    quick: bool,
    duration: int | None,
    warmup: int | None,
    conns: int,
    upload_conns: int,
    depth: int,
    size: int,
) -> list[Case]:
    q = 1 if quick else 0
    duration = DURATION_SECONDS[q] if duration is None else duration
    warmup = WARMUP_SECONDS[q] if warmup is None else warmup
    common = {"duration": duration, "warmup": warmup, "depth": depth, "size": size}
    timeout = warmup + duration + 120
    labels = {
        "hello": f"Hello world, keep-alive, -c{conns}",
        "pipeline": f"Hello world, {depth} pipelined GETs per write, -c{conns}",
        "upload": f"{_size_label(size)} POST, -c{upload_conns}",
    }
    cases = []
    for bench in BENCHES:
        if bench in benches:
            c = upload_conns if bench == "upload" else conns
            metrics = [RPS, MIBS] if bench == "upload" else [RPS]
            params = {**common, "conns": c}
            cases.append(Case(bench, labels[bench], params, metrics, timeout, None, BASELINE))
    return cases


def _size_label(size: int) -> str:
    for unit, name in ((2**20, "MiB"), (2**10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}-{name}"
    return f"{size:,}-byte"


def clean_values(cells: Cells, impl: str, key: str) -> list[float]:
    """The values of the runs that completed without a flag."""
    return [r[key] for r in cells.get(impl, []) if key in r and not r.get("flag")]


def clean_medians(metric: Metric, impls: list[str], cells: Cells) -> dict[str, float]:
    out = {}
    for impl in impls:
        values = clean_values(cells, impl, metric.key)
        if values:
            out[impl] = statistics.median(values)
    return out


def render_table(case: Case, metric: Metric, impls: list[str], cells: Cells) -> list[str]:
    """Lines of a markdown table: median over the clean runs, their min-max,
    the ratios to the two baselines and, if any run was flagged, a column
    with the flagged runs."""
    meds = clean_medians(metric, impls, cells)
    bases = [(b, meds.get(b)) for b in (BASELINE, SECOND_BASELINE)]
    any_flag = any(r.get("flag") for v in cells.values() for r in v)
    header = f"| implementation | median {metric.unit} | min - max | " + " | ".join(
        f"vs {b}" for b, _ in bases
    )
    header += " | flagged runs (not in the median) |" if any_flag else " |"
    align = "|---|---:|---:|" + "---:|" * len(bases) + ("---|" if any_flag else "")
    empty = " |" * len(bases)
    rows = []
    for impl in impls:
        results = cells.get(impl, [])
        errors = [r["error"] for r in results if "error" in r]
        flagged = [r for r in results if r.get("flag")]
        values = clean_values(cells, impl, metric.key)
        if errors:
            row = f"| {impl} | FAILED ({len(errors)}/{len(results)}): {errors[0]} | |{empty}"
        elif values:
            med = meds[impl]
            spread = f"{fmt(min(values), metric.digits)} - {fmt(max(values), metric.digits)}"
            ratios = " | ".join("—" if not base else f"{med / base:.2f}x" for _, base in bases)
            row = f"| {impl} | {fmt(med, metric.digits)} | {spread} | {ratios} |"
        elif flagged:
            row = f"| {impl} | every run flagged | |{empty}"
        else:
            row = f"| {impl} | no result | |{empty}"
        if any_flag:
            shown = "; ".join(
                f"{fmt(r[metric.key], metric.digits)} {metric.unit} with {r['flag']}"
                for r in flagged
            )
            row += f" {len(flagged)} of {len(results)}: {shown} |" if flagged else " — |"
        rows.append(row)
    title = f"**{case.label}: {metric.title}** (higher is better; n = {runs(cells)} runs per cell)"
    return [title, "", header, align, *rows, ""]


def _median_of(cells: Cells, impl: str, key: str) -> float | None:
    values = [r[key] for r in cells.get(impl, []) if r.get(key) is not None]
    return statistics.median(values) if values else None


def notes(cells: Cells, impls: list[str]) -> list[str]:
    """Below a table: CPU of server and wrk, latency, anything the servers said."""
    cpu, other, latency, said, warm = [], [], [], [], []
    for impl in impls:
        s = _median_of(cells, impl, "server_cpu_pct")
        w = _median_of(cells, impl, "wrk_cpu_pct")
        if s is not None and w is not None:
            cpu.append(f"{impl} {s:.0f} / {w:.0f}")
        other_s = _median_of(cells, impl, "other_server_cpu_pct")
        other_w = _median_of(cells, impl, "other_wrk_cpu_pct")
        if other_s is not None and other_w is not None and max(other_s, other_w) >= 5:
            other.append(f"{impl} {other_s:.0f} / {other_w:.0f}")
        p50 = _median_of(cells, impl, "p50_ms")
        p99 = _median_of(cells, impl, "p99_ms")
        if p50 is not None and p99 is not None:
            latency.append(f"{impl} {p50:.2f} / {p99:.2f}")
        stderr = [r["server_stderr"] for r in cells.get(impl, []) if r.get("server_stderr")]
        if stderr:
            said.append(f"{impl} ({len(stderr)} runs): `{stderr[0].splitlines()[-1][:160]}`")
        warm_flags = [r["warmup_flag"] for r in cells.get(impl, []) if r.get("warmup_flag")]
        if warm_flags:
            warm.append(f"{impl}: {warm_flags[0]}")
    out = []
    if cpu:
        out.append(
            "CPU over the timed run, server / wrk, % of one core (medians): " + "; ".join(cpu) + "."
        )
    if other:
        out.append(
            "Other processes on the server's / wrk's CPU meanwhile, % of one core (medians, "
            "shown where 5 or more): " + "; ".join(other) + "."
        )
    if latency:
        out.append("Latency p50 / p99, ms (medians): " + "; ".join(latency) + ".")
    if warm:
        out.append("Errors in the warm-up (not counted): " + "; ".join(warm) + ".")
    if said:
        out.append("The server wrote to stderr: " + "; ".join(said) + ".")
    return out


def summary(cases: list[Case], results: list[Cells], impls: list[str]) -> list[str]:
    """Every benchmark's medians in one table, with both ratios."""
    if not cases:
        return []
    out = [
        f"**All benchmarks: median requests/s** (ratio to {BASELINE} / to {SECOND_BASELINE})",
        "",
        "| implementation | " + " | ".join(c.label for c in cases) + " |",
        "|---|" + "---:|" * len(cases),
    ]
    for impl in impls:
        row = []
        for cells in results:
            meds = clean_medians(RPS, impls, cells)
            runs_of = cells.get(impl, [])
            flagged = sum(1 for r in runs_of if r.get("flag"))
            if any("error" in r for r in runs_of):
                row.append("FAILED")
                continue
            if impl not in meds:
                row.append("every run flagged" if flagged else "—")
                continue
            ratios = [
                f"{meds[impl] / meds[b]:.2f}x" if meds.get(b) else "—"
                for b in (BASELINE, SECOND_BASELINE)
            ]
            cell = f"{fmt(meds[impl], 0)} ({' / '.join(ratios)})"
            row.append(cell + (f", {flagged} run(s) flagged" if flagged else ""))
        out.append(f"| {impl} | " + " | ".join(row) + " |")
    return [*out, ""]


def _describe(result: dict[str, Any]) -> str:
    text = (
        f" (server CPU {result['server_cpu_pct']:.0f}%, wrk CPU {result['wrk_cpu_pct']:.0f}%,"
        f" others on their CPUs {result['other_server_cpu_pct']:.0f}% /"
        f" {result['other_wrk_cpu_pct']:.0f}%"
    )
    if result.get("p99_ms") is not None:
        text += f", p99 {result['p99_ms']:.2f} ms"
    text += ")"
    if result.get("flag"):
        text += f" FLAGGED: {result['flag']}"
    if result.get("server_stderr"):
        text += f"; server stderr: {result['server_stderr'].splitlines()[-1][:200]}"
    return text


def wrk_version() -> str:
    try:
        proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = (proc.stdout + proc.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def versions_line() -> str:
    parts = [f"{d} {_version(d) or 'not installed'}" for d in ("aiohttp", "uvicorn", "httptools")]
    try:
        from aiohttp import http_parser

        c_parser = "C" if "_http_parser" in http_parser.HttpRequestParser.__module__ else "Python"
        parts[0] += f" ({c_parser} HTTP parser)"
    except ImportError:
        pass
    return "- " + "; ".join(parts) + f"; {wrk_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="HTTP server benchmarks with wrk: reactor's HTTPServer on every backend "
        "vs Tornado, aiohttp and uvicorn (hello world, pipelined, 1-MiB uploads).",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), BENCHES)
    parser.set_defaults(repeat=DEFAULT_REPEAT)
    for action in parser._actions:
        if action.dest == "repeat":
            action.help = f"run the whole set R times and report medians (default {DEFAULT_REPEAT})"
    parser.add_argument(
        "--pipeline",
        type=int,
        nargs="?",
        const=PIPELINE_DEPTH,
        metavar="N",
        help=f"run the pipelined benchmark, N GETs per write (default {PIPELINE_DEPTH})",
    )
    parser.add_argument("--upload", action="store_true", help="run the upload benchmark")
    parser.add_argument(
        "--duration", type=int, metavar="S", help="timed seconds per cell, whole (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, metavar="S", help="warm-up seconds per cell, whole (default 1)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        metavar="C",
        help=f"wrk connections for hello and pipeline (default {CONNECTIONS})",
    )
    parser.add_argument(
        "--upload-connections",
        type=int,
        default=UPLOAD_CONNECTIONS,
        metavar="C",
        help=f"wrk connections for the upload (default {UPLOAD_CONNECTIONS})",
    )
    parser.add_argument(
        "--upload-size",
        type=int,
        default=UPLOAD_SIZE,
        metavar="BYTES",
        help=f"request body of the upload (default {UPLOAD_SIZE:,})",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        return serve(json.loads(args.serve))
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.pipeline is not None and args.pipeline < 1:
        parser.error("--pipeline must be at least 1")
    if (args.duration is not None and args.duration < 1) or (
        args.warmup is not None and args.warmup < 0
    ):
        parser.error("--duration must be at least 1 s and --warmup at least 0 s")
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), _unavailable)
    benches = list(args.bench or [])
    if args.pipeline is not None:
        benches.append("pipeline")
    if args.upload:
        benches.append("upload")
    benches = benches or list(BENCHES)
    server_cpu, wrk_cpu = _cpus()
    if wrk_cpu is not None and shutil.which("taskset") is None:
        parser.error("taskset is not on PATH (util-linux), and wrk is pinned with it")
    cases = make_cases(
        benches,
        args.quick,
        args.duration,
        args.warmup,
        args.connections,
        args.upload_connections,
        args.pipeline or PIPELINE_DEPTH,
        args.upload_size,
    )
    command = "python benchmarks/bench_http.py " + " ".join(argv or sys.argv[1:])

    run = drive(__file__, args, cases, impls, skipped, describe=_describe)
    results, impls = run.results, run.impls

    out = run.header(args, command, skipped, baseline=BASELINE)
    params = cases[0].params if cases else {}
    out[-1:-1] = [
        versions_line(),
        f"- also ratio = median / median of {SECOND_BASELINE}; medians and ranges over the "
        "clean runs only (a run in which wrk counted socket errors or statuses above 399 is "
        "flagged and shown apart)",
        f"- wrk -t1, {params.get('warmup', 0)} s warm-up then {params.get('duration', 0)} s "
        "timed, on 127.0.0.1; "
        + (
            f"server pinned to CPU {server_cpu}, wrk to CPU {wrk_cpu} (taskset)"
            if server_cpu is not None
            else "fewer than 2 CPUs: server and wrk not pinned"
        ),
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
