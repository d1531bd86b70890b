"""``python -m reactor serve`` as a user runs it: real processes, real signals, real clients.

Every test starts ``python -m reactor serve examples.serve_app:...`` on a free
port with ``--backend`` from the ``reactor_backend`` fixture (so each runs on
every backend), waits for its ``--ready-file`` (never a sleep), and talks to it
with http.client, curl, wrk or the ``websockets`` package. The server's stderr
goes to a file the test reads; a log line at ERROR level fails the test unless
the test expected it.
"""

from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reactor.httpserver import HTTPServer
from reactor.testing.tls import TLSCertificate
from tests.conformance.conftest import need_curl, tls_certificate  # noqa: F401 (fixtures)
from tests.util import run_curl

ROOT = Path(__file__).resolve().parent.parent
APP = "examples.serve_app:app"
START_TIMEOUT = 20.0
"""How long a server may take to say it serves (a loaded CI machine starts Python slowly)."""
EXIT_TIMEOUT = 15.0
"""How long a server may take to exit after a signal, past its drain timeout."""


def backend_arg(spec: Any) -> str:
    """What ``--backend`` takes for the fixture's backend (kqueue's emulation by path)."""
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll ``condition`` until it returns something true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Served:
    """A ``python -m reactor serve`` process (the supervisor, with ``--processes`` > 1)."""

    def __init__(
        self,
        tmp_path: Path,
        backend: Any,
        *args: str,
        app: str = APP,
        env: dict[str, str] | None = None,
    ) -> None:
        self.ready_file = tmp_path / "ready"
        self.stdout_path = tmp_path / "stdout"
        self.stderr_path = tmp_path / "stderr"
        self.expected_errors: list[str] = []
        command = [sys.executable, "-m", "reactor", "serve", app]
        if not any(a.startswith("--unix-socket") or a == "--port" for a in args):
            command += ["--port", "0"]
        command += ["--backend", backend_arg(backend), "--ready-file", str(self.ready_file)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*command, *args],
                stdout=out,
                stderr=err,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            )
        self.url = self._wait_ready()
        parts = urllib.parse.urlsplit(self.url)
        self.host = parts.hostname or ""
        self.port = parts.port or 0

    def _wait_ready(self) -> str:
        def ready() -> str | None:
            if self.ready_file.exists():
                return self.ready_file.read_text().strip()
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the server exited with {self.process.returncode}: " + self.stderr()
                )
            return None

        return str(wait_until(ready, "the ready file", START_TIMEOUT))

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        """One request on a connection of its own: status, headers, body."""
        conn = self.connection()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, path: str, **headers: str) -> Any:
        status, _, body = self.get(path, **headers)
        assert status == 200, body
        return json.loads(body)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        """SIGTERM, then the exit status (the server must exit in time)."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def check_log(self) -> None:
        """No ERROR line (nor traceback) in the server's log but those expected."""
        bad = [
            line
            for line in self.stderr().splitlines()
            if (line.startswith("[E ") or line.startswith("Traceback"))
            and not any(e in line for e in self.expected_errors)
        ]
        assert not bad, self.stderr()


@pytest.fixture
def serve(tmp_path: Path, reactor_backend: Any) -> Iterator[Callable[..., Served]]:
    """``serve(*args, app=...)`` starts a server on the backend under test; each is
    stopped (and its log checked) when the test ends."""
    started: list[Served] = []
    count = 0

    def start(*args: str, app: str = APP, env: dict[str, str] | None = None) -> Served:
        nonlocal count
        count += 1
        directory = tmp_path / f"serve{count}"
        directory.mkdir()
        served = Served(directory, reactor_backend, *args, app=app, env=env)
        started.append(served)
        return served

    yield start
    for served in started:
        try:
            if served.process.poll() is None:
                served.stop()
        finally:
            served.kill()
    for served in started:
        served.check_log()


def pids_serving(served: Served, want: int, attempts: int = 40) -> dict[int, int | None]:
    """Open batches of simultaneous connections until ``want`` processes have
    answered ``/pid``; returns ``{pid: task_id}``."""
    seen: dict[int, int | None] = {}
    for _ in range(attempts):
        conns = [served.connection() for _ in range(8)]
        try:
            for conn in conns:
                conn.request("GET", "/pid")
            for conn in conns:
                answer = json.loads(conn.getresponse().read())
                seen[answer["pid"]] = answer["task_id"]
        finally:
            for conn in conns:
                conn.close()
        if len(seen) >= want:
            break
    return seen


# -- serving -----------------------------------------------------------------------------


def test_one_process_serves_every_route(serve: Callable[..., Served]) -> None:
    served = serve()
    banner = served.stdout()
    match = re.fullmatch(
        r"reactor serve: (http://127\.0\.0\.1:\d+/) on (\w+), 1 process \(pid (\d+)\)\n", banner
    )
    assert match, banner
    assert match.group(1) == served.url
    assert int(match.group(3)) == served.pid
    status, _, body = served.get("/")
    assert (status, body) == (200, b"Hello, world")
    conn = served.connection()
    conn.request("POST", "/echo", body=b"some bytes \x00\xff")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"some bytes \x00\xff")
    conn.close()
    served.expected_errors += ["Uncaught exception GET /error", "500 GET /error"]
    status, _, _ = served.get("/error")
    assert status == 500
    assert served.json("/pid") == {
        "pid": served.pid,
        "task_id": None,
        "remote_ip": "127.0.0.1",
        "protocol": "http",
    }
    assert "200 GET /pid" in served.stderr()  # the access log is on by default
    assert served.stop() == 0
    assert not served.ready_file.exists()  # removed on exit, as a pid file


def test_the_banner_names_the_backend(serve: Callable[..., Served], reactor_backend: Any) -> None:
    served = serve("--no-access-log")
    name = reactor_backend if isinstance(reactor_backend, str) else "kqueue"
    assert f" on {name}, 1 process " in served.stdout()
    served.get("/")
    assert served.stop() == 0
    assert "GET /" not in served.stderr()  # --no-access-log


@pytest.mark.parametrize("mode", ["shared", "reuse-port"])
def test_two_processes_share_the_work(serve: Callable[..., Served], mode: str) -> None:
    extra = ["--reuse-port"] if mode == "reuse-port" else []
    served = serve("--processes", "2", *extra)
    assert f", 2 processes (pid {served.pid})" in served.stdout()
    seen = pids_serving(served, 2)
    assert sorted(task for task in seen.values() if task is not None) == [0, 1], seen
    assert served.pid not in seen  # the supervisor serves nothing itself
    assert served.stop() == 0
    log = served.stderr()
    for pid, task in seen.items():
        assert f"process {task} (pid {pid}) exited with status 0" in log


def test_zero_processes_means_one_per_core(serve: Callable[..., Served]) -> None:
    cores = len(os.sched_getaffinity(0))
    served = serve("--processes", "0")
    assert f", {cores} process" in served.stdout()
    assert len(pids_serving(served, cores)) == cores
    assert served.stop() == 0


@pytest.mark.parametrize("spec", ["examples.serve_app:make_app", "examples.serve_app:make_app()"])
def test_a_factory_is_called_in_each_process(serve: Callable[..., Served], spec: str) -> None:
    served = serve("--processes", "2", app=spec)
    assert len(pids_serving(served, 2)) == 2
    assert served.get("/")[2] == b"Hello, world"
    assert served.stop() == 0


def test_each_process_runs_its_own_clean_up_at_exit(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """A factory's atexit handler runs in each serving process when it exits."""
    (tmp_path / "cleanup_app.py").write_text(
        "import atexit, os\n"
        "from examples.serve_app import make_app as _make_app\n"
        "def make_app():\n"
        "    folder = os.environ['CLEANUP_FOLDER']\n"
        "    atexit.register(lambda: open(os.path.join(folder, str(os.getpid())), 'w').close())\n"
        "    return _make_app()\n"
    )
    done = tmp_path / "done"
    done.mkdir()
    env = {"CLEANUP_FOLDER": str(done), "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    served = serve("--processes", "2", app="cleanup_app:make_app", env=env)
    children = set(pids_serving(served, 2))
    assert served.stop() == 0
    assert {int(name) for name in os.listdir(done)} == children


def test_a_killed_process_is_restarted_with_a_back_off(serve: Callable[..., Served]) -> None:
    served = serve("--processes", "2")
    seen = pids_serving(served, 2)
    by_task = {task: pid for pid, task in seen.items()}
    first = by_task[0]
    backoffs = []
    for _ in range(2):
        os.kill(first, signal.SIGKILL)

        def restarted(old: int = first) -> int | None:
            for pid, task in pids_serving(served, 2, attempts=1).items():
                if task == 0 and pid != old:
                    return pid
            return None

        new = wait_until(restarted, "task 0 to serve from a new process")
        log = served.stderr()
        match = re.search(
            rf"process 0 \(pid {first}\) was killed by SIGKILL; restarting in ([\d.]+)s", log
        )
        assert match, log
        backoffs.append(float(match.group(1)))
        first = new
    assert backoffs == [0.5, 1.0]  # the back-off doubles
    assert by_task[1] in pids_serving(served, 2)  # the other process served on
    assert served.stop() == 0


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to see processes")
def test_serving_processes_drain_when_the_supervisor_is_killed(
    serve: Callable[..., Served],
) -> None:
    served = serve("--processes", "2")
    children = list(pids_serving(served, 2))
    served.process.kill()  # SIGKILL: no forwarding
    served.wait()
    wait_until(lambda: all(_gone(pid) for pid in children), "the orphans to drain and exit")


def test_sigint_drains_as_sigterm_does(serve: Callable[..., Served]) -> None:
    served = serve("--processes", "2")
    seen = pids_serving(served, 2)
    served.signal(signal.SIGINT)
    assert served.wait() == 0
    log = served.stderr()
    assert "SIGINT: draining 2 process(es)" in log
    for pid, task in seen.items():
        assert f"process {task} (pid {pid}) exited with status 0" in log


def test_unix_socket(serve: Callable[..., Served], tmp_path: Path) -> None:
    path = str(tmp_path / "reactor.sock")
    served = serve("--unix-socket", path, "--processes", "2")
    assert served.url == f"unix:{path}"
    answers = set()
    for _ in range(10):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), data
        answers.add(json.loads(body)["task_id"])
    assert answers <= {0, 1} and answers
    assert served.stop() == 0
    assert not os.path.exists(path)  # the supervisor removes its socket file


def test_tls(serve: Callable[..., Served], tls_certificate: TLSCertificate) -> None:  # noqa: F811
    served = serve(
        "--certfile", str(tls_certificate.cert_file), "--keyfile", str(tls_certificate.key_file)
    )
    assert served.url.startswith("https://127.0.0.1:")
    conn = http.client.HTTPSConnection(
        "localhost", served.port, timeout=10, context=tls_certificate.client_context()
    )
    conn.request("GET", "/pid")
    answer = json.loads(conn.getresponse().read())
    conn.close()
    assert answer["protocol"] == "https"
    # A client that speaks plain HTTP to the TLS port gets nothing, and the server goes on.
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(100)
        except ConnectionError:
            answer = b""
        assert not answer.startswith(b"HTTP/")
    conn = http.client.HTTPSConnection(
        "localhost", served.port, timeout=10, context=tls_certificate.client_context()
    )
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"Hello, world"
    conn.close()
    assert served.stop() == 0


def test_body_and_header_limits(serve: Callable[..., Served]) -> None:
    served = serve("--max-body-size", "1k", "--max-header-size", "2k")
    conn = served.connection()
    conn.request("POST", "/echo", body=b"x" * 1024)
    response = conn.getresponse()
    assert (response.status, len(response.read())) == (200, 1024)
    conn.close()
    conn = served.connection()
    conn.request("POST", "/echo", body=b"x" * 1025)
    assert conn.getresponse().status == 413
    conn.close()
    status, _, _ = served.get("/", **{"X-Big": "y" * 4096})
    assert status == 431
    assert served.get("/")[0] == 200
    assert served.stop() == 0


def test_xheaders_and_trusted_downstream(serve: Callable[..., Served]) -> None:
    served = serve("--xheaders", "--trusted-downstream", "198.51.100.7")
    answer = served.json("/pid", **{"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert answer["remote_ip"] == "203.0.113.9"
    answer = served.json("/pid", **{"X-Real-Ip": "203.0.113.10", "X-Scheme": "https"})
    assert (answer["remote_ip"], answer["protocol"]) == ("203.0.113.10", "https")
    assert served.stop() == 0
    plain = serve()
    assert plain.json("/pid", **{"X-Real-Ip": "203.0.113.10"})["remote_ip"] == "127.0.0.1"


def _raw_get(sock: socket.socket, path: str = "/") -> http.client.HTTPResponse:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response


def test_max_connections_holds_the_next_client_in_the_backlog(
    serve: Callable[..., Served],
) -> None:
    served = serve("--max-connections", "1")
    first = socket.create_connection((served.host, served.port), timeout=10)
    assert _raw_get(first).read() == b"Hello, world"  # kept alive: the one connection
    second = socket.create_connection((served.host, served.port), timeout=10)
    second.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
    # Not accepted while the first is open (0.5 s of silence; a wrong server answers in ms).
    assert select.select([second], [], [], 0.5)[0] == []
    first.close()
    response = http.client.HTTPResponse(second)
    response.begin()
    assert json.loads(response.read())["pid"] == served.pid
    second.close()
    assert served.stop() == 0


def test_idle_timeout_closes_a_quiet_keep_alive_connection(serve: Callable[..., Served]) -> None:
    served = serve("--idle-timeout", "0.5")
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        assert _raw_get(sock).read() == b"Hello, world"
        assert select.select([sock], [], [], 10)[0], "the server did not close the connection"
        assert sock.recv(1) == b""
    assert served.stop() == 0


def test_curl_through_keep_alive(serve: Callable[..., Served], need_curl: str) -> None:  # noqa: F811
    served = serve("--processes", "2")
    out, _ = run_curl(served.url, served.url + "pid", "--next", "-d", "posted", served.url + "echo")
    assert out.startswith(b"Hello, world{")
    assert out.endswith(b"}posted")
    assert served.stop() == 0


# -- bad command lines ----------------------------------------------------------------------


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reactor", "serve", *args, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["examples.serve_app:nope"],
            "module 'examples.serve_app' has no attribute 'nope'; "
            "it has applications: app; functions: make_app",
        ),
        (["examples.no_such_module:app"], "no module named 'examples.no_such_module'"),
        (["examples.serve_app"], "APP must be module:attribute"),
        (["examples.serve_app:MAX_DELAY"], "is a float, not an Application"),
        (["examples.serve_app:MAX_DELAY()"], "is not callable"),
        ([APP, "--backend", "nope"], "unknown backend 'nope'; available: "),
        ([APP, "--keyfile", "k.pem"], "--keyfile needs --certfile"),
        ([APP, "--certfile", "/nonexistent.pem"], "cannot load the certificate"),
        ([APP, "--unix-socket", "/tmp/x.sock", "--reuse-port"], "--reuse-port is for TCP"),
        ([APP, "--ready-file", "/nonexistent/ready"], "--ready-file: cannot write in /nonexistent"),
    ],
)
def test_a_bad_command_line_says_why_and_exits_2(args: list[str], message: str) -> None:
    result = run_serve(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_option_value_exits_2() -> None:
    result = run_serve(APP, "--max-body-size", "lots")
    assert result.returncode == 2
    assert "not a size in bytes: 'lots'" in result.stderr


def test_an_unavailable_backend_names_what_exists() -> None:
    result = run_serve(APP, "--backend", "kqueue" if sys.platform == "linux" else "epoll")
    assert result.returncode == 2
    assert "is not available" in result.stderr
    assert "available: " in result.stderr


def test_a_factory_that_fails_stops_the_supervisor(tmp_path: Path) -> None:
    (tmp_path / "failing_app.py").write_text(
        "def make_app():\n    raise RuntimeError('no database')\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reactor",
            "serve",
            "failing_app:make_app",
            "--processes",
            "2",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)])),
    )
    assert result.returncode == 1, result.stderr
    assert "RuntimeError: no database" in result.stderr
    assert "before it served; stopping" in result.stderr


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "reactor", "serve", APP, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


# -- the drain ------------------------------------------------------------------------------

needs_drain = pytest.mark.skipif(
    "timeout" not in inspect.signature(HTTPServer.close_all_connections).parameters,
    reason="HTTPServer.close_all_connections(timeout) (the graceful drain) is not in this checkout",
)

WRK_SCRIPT = """
-- Each thread counts its responses; at 500 it writes the marker file, which
-- tells the test that wrk is in full flight. done() prints wrk's own tally.
local marker = os.getenv("SERVE_TEST_MARKER")
local count = 0
response = function(status, headers, body)
  count = count + 1
  if count == 500 and marker then
    local f = io.open(marker, "w")
    if f then f:write("running") f:close() end
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@needs_drain
def test_sigterm_during_wrk_loses_no_request(serve: Callable[..., Served], tmp_path: Path) -> None:
    """MUST-SHOW: wrk runs through a SIGTERM to ``--processes 2``: no read or timeout
    error and no non-2xx; every process exits 0 within the drain deadline.

    Once the listeners have closed, wrk's reconnects are refused. wrk 4.1 (Debian's)
    does not check a non-blocking connect's result (its plain ``sock_connect`` returns
    OK), so a refused connect shows as a *write* error, at its first write: "connect 0,
    write N". Those requests were never sent, so they are counted and printed, not
    lost. A request wrk sent and did not get answered whole would be a read error (the
    server closed or reset the connection under it) or a timeout: those must be 0.
    (A reset before wrk wrote anything is also a write error; it loses nothing.)"""
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed (.ci/run installs it with apt-get)")
    served = serve("--processes", "2", "--no-access-log", "--drain-timeout", "5")
    script = tmp_path / "count.lua"
    script.write_text(WRK_SCRIPT)
    marker = tmp_path / "wrk-running"
    client = subprocess.Popen(
        [wrk, "-t", "2", "-c", "50", "-d", "3s", "-s", str(script), served.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, SERVE_TEST_MARKER=str(marker)),
    )
    try:
        wait_until(marker.exists, "wrk to be in full flight")
        served.signal(signal.SIGTERM)
        assert served.wait(timeout=5 + EXIT_TIMEOUT) == 0, served.stderr()
        output, _ = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    tally = json.loads(output.strip().splitlines()[-1])
    print(f"wrk through SIGTERM: {tally} (write: connects refused after the listeners closed)")
    assert tally["requests"] >= 500
    lost = {key: tally[key] for key in ("read", "timeout", "status")}
    assert lost == {"read": 0, "timeout": 0, "status": 0}, output
    log = served.stderr()
    assert len(re.findall(r"process [01] \(pid \d+\) exited with status 0", log)) == 2, log


@dataclass
class Tally:
    """What keep-alive clients saw through a drain."""

    answered: int = 0
    closed_by_server: int = 0  # a response with Connection: close
    closed_before_send: int = 0  # found closed before sending the next request
    refused: int = 0  # a new connection refused: the listener had closed
    lost: list[str] = field(default_factory=list)  # a request sent and not answered whole


def _closed(sock: socket.socket) -> bool:
    """The peer closed ``sock`` (checked before a request goes out on it)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionError:
        return True


def keep_alive_client(served: Served, tally: Tally, lock: threading.Lock) -> None:
    """Requests one at a time on a keep-alive connection (every fifth a slow one),
    reconnecting when the server closes it, until a connection is refused."""
    sock: socket.socket | None = None
    for i in range(3000):
        if sock is None:
            try:
                sock = socket.create_connection((served.host, served.port), timeout=10)
            except ConnectionRefusedError:
                with lock:
                    tally.refused += 1
                return
        elif _closed(sock):
            with lock:
                tally.closed_before_send += 1
            sock.close()
            sock = None
            continue
        path, expected = (
            ("/slow?delay=0.05", b"slept 0.05\n") if i % 5 == 0 else ("/", b"Hello, world")
        )
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read()
            response.close()
            if response.status != 200 or body != expected:
                raise AssertionError(f"{response.status} {body!r}")
        except (OSError, http.client.HTTPException, AssertionError) as e:
            with lock:
                tally.lost.append(f"{path}: {e!r}")
            sock.close()
            return
        with lock:
            tally.answered += 1
            if response.will_close:
                tally.closed_by_server += 1
        if response.will_close:
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


@needs_drain
def test_sigterm_with_keep_alive_python_clients(serve: Callable[..., Served]) -> None:
    """Twenty keep-alive clients through a SIGTERM to ``--processes 2``: each request
    is answered whole, or its connection was closed before the request went out."""
    served = serve("--processes", "2", "--no-access-log", "--drain-timeout", "5")
    tally, lock = Tally(), threading.Lock()
    clients = [
        threading.Thread(target=keep_alive_client, args=(served, tally, lock), daemon=True)
        for _ in range(20)
    ]
    for client in clients:
        client.start()
    wait_until(lambda: tally.answered >= 300 or tally.lost, "300 answers")
    served.signal(signal.SIGTERM)
    assert served.wait(timeout=5 + EXIT_TIMEOUT) == 0, served.stderr()
    for client in clients:
        client.join(timeout=20)
        assert not client.is_alive()
    print("keep-alive clients through SIGTERM:", tally)
    assert tally.lost == []
    assert tally.answered >= 300
    assert tally.closed_by_server + tally.closed_before_send + tally.refused >= 20


def _slow_request(served: Served, path: str, result: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        conn = served.connection(timeout=60)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            result["status"] = response.status
            result["connection"] = response.getheader("Connection")
            result["body"] = response.read()
            if conn.sock is not None:  # kept alive: the drain must close it soon
                readable = select.select([conn.sock], [], [], 10)[0]
                result["closed"] = bool(readable) and conn.sock.recv(1) == b""
            else:
                result["closed"] = True
        except (OSError, http.client.HTTPException) as e:
            result["error"] = e
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@needs_drain
def test_a_slow_request_in_flight_completes(serve: Callable[..., Served]) -> None:
    served = serve("--drain-timeout", "10")
    result: dict[str, Any] = {}
    thread = _slow_request(served, "/slow?delay=1", result)
    wait_in_flight(served, 1)
    served.signal(signal.SIGTERM)
    thread.join(timeout=20)
    assert result == {"status": 200, "connection": "close", "body": b"slept 1\n", "closed": True}
    assert served.wait() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((served.host, served.port), timeout=5)


@needs_drain
@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_request_past_the_drain_timeout_is_cut(
    serve: Callable[..., Served], processes: str
) -> None:
    """Cut at the deadline; the process exits 0, and its handler's coroutine, cancelled,
    leaves no "Task was destroyed but it is pending" error in the log."""
    served = serve("--processes", processes, "--drain-timeout", "1")
    result: dict[str, Any] = {}
    thread = _slow_request(served, "/slow?delay=50", result)
    wait_in_flight(served, int(processes))
    served.signal(signal.SIGTERM)
    assert served.wait(timeout=1 + EXIT_TIMEOUT) == 0, served.stderr()
    thread.join(timeout=10)
    assert isinstance(result.get("error"), (http.client.RemoteDisconnected, ConnectionError))


def wait_in_flight(served: Served, processes: int) -> None:
    """Wait until the server's processes answer one ``/slow`` request between them."""

    def in_flight() -> bool:
        return (
            sum(json.loads(b)["slow"] for b in _each_process(served, "/inflight", processes)) == 1
        )

    wait_until(in_flight, "the slow request to be in flight")


def _each_process(served: Served, path: str, processes: int) -> list[bytes]:
    """``path`` answered once by each of the ``processes`` serving processes."""
    answers: dict[int, bytes] = {}
    for _ in range(40):
        conns = [served.connection() for _ in range(8)]
        try:
            for conn in conns:
                conn.request("GET", "/pid")
            pids = [json.loads(conn.getresponse().read())["pid"] for conn in conns]
            for conn, pid in zip(conns, pids, strict=True):
                if pid not in answers:
                    conn.request("GET", path)
                    answers[pid] = conn.getresponse().read()
        finally:
            for conn in conns:
                conn.close()
        if len(answers) == processes:
            return list(answers.values())
    raise AssertionError("not every process answered")


@needs_drain
@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_second_sigterm_exits_at_once(serve: Callable[..., Served], processes: str) -> None:
    served = serve("--processes", processes, "--drain-timeout", "50")
    result: dict[str, Any] = {}
    _slow_request(served, "/slow?delay=50&flush=1", result)
    wait_in_flight(served, int(processes))
    served.signal(signal.SIGTERM)
    wait_until(lambda: "draining (at most 50s)" in served.stderr(), "the drain to start")
    served.signal(signal.SIGTERM)
    assert served.wait(timeout=EXIT_TIMEOUT) == 1
    if processes == "2":
        assert "second SIGTERM: killing the serving processes" in served.stderr()
    else:
        assert "second SIGTERM, exiting now" in served.stderr()


@needs_drain
def test_a_websocket_is_closed_with_1001(serve: Callable[..., Served]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    served = serve("--drain-timeout", "10")
    with connect(f"ws://{served.host}:{served.port}/ws", open_timeout=10) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        served.signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert served.wait() == 0


@needs_drain
def test_sigterm_to_every_process_at_once_still_drains(serve: Callable[..., Served]) -> None:
    """systemd's default KillMode=control-group signals the supervisor and each serving
    process at the same moment; the supervisor forwards its signal too. A serving
    process takes the second SIGTERM within DUPLICATE_SIGNAL_WINDOW as the same one:
    the slow request in flight is answered, and every process exits 0."""
    served = serve("--processes", "2", "--drain-timeout", "10")
    children = sorted(pids_serving(served, 2))
    assert len(children) == 2
    result: dict[str, Any] = {}
    thread = _slow_request(served, "/slow?delay=1", result)
    wait_in_flight(served, 2)
    for pid in [served.pid, *children]:
        os.kill(pid, signal.SIGTERM)
    thread.join(timeout=20)
    assert result == {"status": 200, "connection": "close", "body": b"slept 1\n", "closed": True}
    assert served.wait() == 0, served.stderr()
    assert "exiting now" not in served.stderr()


def test_body_timeout_frees_a_connection_whose_body_stalls(serve: Callable[..., Served]) -> None:
    """--body-timeout: a client that sends its headers and then stalls on the body
    loses its connection (and, at --max-connections 1, the next client is served)."""
    served = serve("--max-connections", "1", "--body-timeout", "0.5")
    loris = socket.create_connection((served.host, served.port), timeout=10)
    try:
        loris.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab")
        status, _, body = served.get("/")  # waits in the backlog until the loris is cut
        assert status == 200, body
        rest = b""
        while chunk := loris.recv(4096):  # the server closed it; nothing was answered
            rest += chunk
        assert b"200 OK" not in rest
    finally:
        loris.close()


@needs_drain
@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_ready_file_is_withdrawn_when_the_drain_begins(
    serve: Callable[..., Served], processes: str
) -> None:
    """A readiness check that reads the ready file stops sending traffic to a
    draining server: the file goes at the signal, while a request is still in flight."""
    served = serve("--processes", processes, "--drain-timeout", "30")
    result: dict[str, Any] = {}
    thread = _slow_request(served, "/slow?delay=50", result)
    wait_in_flight(served, int(processes))
    served.signal(signal.SIGTERM)
    wait_until(lambda: not served.ready_file.exists(), "the ready file to go")
    assert served.process.poll() is None  # still draining: the request is in flight
    assert "error" not in result and "status" not in result
    served.signal(signal.SIGTERM)  # the second signal: exit now
    assert served.wait() == 1
    thread.join(timeout=10)
