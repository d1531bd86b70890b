"""reactor behind Debian's nginx, on every backend: the configuration that
docs/nginx.md documents (examples/nginx/nginx.conf), run for real.

Each test starts two reactor processes (``python -m reactor serve
tests.test_nginx:make_app --xheaders --trusted-downstream ...``, each on a
free port of its own) and nginx in front of them, with the example's
config with its ports and paths replaced (the test fails if the example
loses a line it replaces), in a prefix of its own in a temporary directory.

Some facts the tests rely on:

- Every 127.x.y.z address is this machine's loopback on Linux, so a client
  can connect *from* 127.0.0.2 (a "real client") and nginx can connect from
  127.0.0.3 (``proxy_bind``: a load balancer in front of nginx, which the
  test adds as a second ``server`` block): the addresses the application
  reports tell who is who.
- nginx retries an idempotent request (GET) on the next upstream when a
  process refuses or drops it, so a drain that cut requests would hide
  behind retries: the drain test's requests in flight are POSTs, which
  nginx never sends twice, so a cut one would come back as a 502.
- As root, nginx's workers run as ``nobody``: its prefix is a directory of
  its own under /tmp, readable by all (pytest's temporary folders are not).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reactor import gen
from reactor.web import Application, RequestHandler, stream_request_body
from reactor.websocket import WebSocketHandler
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "nginx" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
DEADLINE = 15.0
"""The longest anything here may take: a process to start, a drain, a reply."""
CLIENT = "127.0.0.2"
"""The address the test's "real client" connects from."""
EDGE = "127.0.0.3"
"""The address the load balancer in front of nginx connects from (trusted_downstream)."""


def until(condition: Any, what: str) -> None:
    """Poll ``condition`` (every 20 ms, within DEADLINE) for something another process does."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def backend_env(spec: Any) -> str:
    """What to put in REACTOR_BACKEND for the spec the ``reactor_backend`` fixture gives."""
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


@dataclass
class App:
    """One reactor process upstream of nginx."""

    process: subprocess.Popen[str]
    pid: int
    port: int

    def stop(self, signal_it: bool = True) -> tuple[int, str]:
        """SIGTERM (a graceful drain; a second one would exit at once, so
        ``signal_it=False`` once sent), then its exit status and stderr."""
        if signal_it and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, err


@dataclass
class Deployment:
    prefix: Path
    markers: Path
    port: int
    edge_port: int
    apps: list[App] = field(default_factory=list)
    nginx: subprocess.Popen[str] | None = None

    def connection(
        self, port: int | None = None, source: str = CLIENT
    ) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            "127.0.0.1", port or self.port, timeout=DEADLINE, source_address=(source, 0)
        )

    def get(self, path: str, port: int | None = None, **headers: str) -> dict[str, Any]:
        """GET ``path`` through nginx (from CLIENT); it must answer 200 with JSON."""
        conn = self.connection(port)
        try:
            conn.request("GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body, self.error_log())
            return json.loads(body)  # type: ignore[no-any-return]
        finally:
            conn.close()

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


def render_config(deployment: Deployment) -> str:
    """examples/nginx/nginx.conf with this run's ports and paths, plus the edge."""
    text = EXAMPLE.read_text()
    prefix = deployment.prefix
    upstreams = "".join(f"        server 127.0.0.1:{app.port};\n" for app in deployment.apps)
    replacements = [
        ("worker_processes auto;", "worker_processes 1;"),
        ("pid /run/nginx-reactor.pid;", f"pid {prefix}/nginx.pid;"),
        ("error_log /var/log/nginx/reactor-error.log warn;", f"error_log {prefix}/error.log info;"),
        ("access_log /var/log/nginx/reactor-access.log;", f"access_log {prefix}/access.log;"),
        ("        server 127.0.0.1:8001;\n        server 127.0.0.1:8002;\n", upstreams),
        ("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{deployment.port};"),
        (
            "http {\n",
            # Debian's build keeps its temporary files under /var/lib/nginx: here, in the prefix.
            "http {\n"
            + "".join(
                f"    {kind}_temp_path {prefix}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ),
        ),
    ]
    for old, new in replacements:
        assert text.count(old) == 1, f"examples/nginx/nginx.conf no longer has {old!r} once"
        text = text.replace(old, new)
    # The load balancer in front of nginx: it connects from EDGE and adds to
    # X-Forwarded-For as nginx does; the application trusts EDGE.
    edge = f"""
    server {{
        listen 127.0.0.1:{deployment.edge_port};
        location / {{
            proxy_pass http://127.0.0.1:{deployment.port};
            proxy_bind {EDGE};
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""
    text = text.rstrip()
    assert text.endswith("}")
    return text[:-1] + edge


def start_apps(backend: str, directory: Path, markers: Path, count: int) -> list[App]:
    """``python -m reactor serve tests.test_nginx:make_app`` as docs/nginx.md runs it,
    ``count`` times (started together, then waited for)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        REACTOR_BACKEND=backend,
        MARKERS=str(markers),
    )
    started = []
    for i in range(count):
        ready = directory / f"app-{i}.ready"
        command = [
            sys.executable, "-m", "reactor", "serve", "tests.test_nginx:make_app",
            "--port", "0", "--xheaders", "--trusted-downstream", EDGE, "--no-access-log",
            "--drain-timeout", str(DEADLINE), "--ready-file", str(ready),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        started.append((process, ready))
    apps = []
    try:
        for process, ready in started:

            def is_ready(process: subprocess.Popen[str] = process, ready: Path = ready) -> bool:
                assert process.poll() is None, process.communicate()[1]
                return ready.exists()

            until(is_ready, "a reactor process to listen")
            port = ready.read_text().strip().rstrip("/").rsplit(":", 1)[1]
            apps.append(App(process, process.pid, int(port)))
    except BaseException:
        for process, _ in started:
            if process.poll() is None:
                process.kill()
            process.communicate()
        raise
    return apps


def start_nginx(deployment: Deployment) -> subprocess.Popen[str]:
    """nginx on free ports (tried again on others if one was taken meanwhile)."""
    for attempt in range(3):
        deployment.port, deployment.edge_port = free_port(), free_port()
        conf = deployment.prefix / "nginx.conf"
        conf.write_text(render_config(deployment))
        command = [NGINX, "-p", f"{deployment.prefix}/", "-c", str(conf), "-e", "error.log"]
        process = subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

        def listening(process: subprocess.Popen[str] = process) -> bool:
            if process.poll() is not None:
                return True
            for port in (deployment.port, deployment.edge_port):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    return False
            return True

        until(listening, "nginx to listen")
        if process.poll() is None:
            return process
        err = process.communicate()[1]
        if attempt == 2:
            raise AssertionError(f"nginx did not start: {err}\n{deployment.error_log()}")
    raise AssertionError("unreachable")


@pytest.fixture
def deployment(reactor_backend: Any) -> Iterator[Deployment]:
    """Two reactor processes on ``reactor_backend``, nginx in front."""
    if not os.path.exists(NGINX):
        pytest.skip("Debian's nginx is not installed (apt-get install nginx; .ci/run does)")
    prefix = Path(tempfile.mkdtemp(prefix="reactor-nginx-"))
    prefix.chmod(0o755)  # nginx's workers (nobody, when we are root) read and write in it
    markers = prefix / "markers"
    markers.mkdir()
    d = Deployment(prefix, markers, 0, 0)
    try:
        d.apps = start_apps(backend_env(reactor_backend), prefix, markers, 2)
        d.nginx = start_nginx(d)
        yield d
        stop_nginx(d.nginx)  # first: its idle upstream connections would slow the drains
        for app in d.apps:
            status, err = app.stop()
            assert status == 0, err
            assert "Traceback" not in err and "ERROR" not in err, err
    finally:
        if d.nginx is not None:
            stop_nginx(d.nginx)
        for app in d.apps:
            if app.process.poll() is None:
                app.process.kill()
                app.process.communicate()
        shutil.rmtree(prefix, ignore_errors=True)


def stop_nginx(nginx: subprocess.Popen[str]) -> None:
    if nginx.poll() is not None:
        return
    nginx.send_signal(signal.SIGQUIT)  # nginx's graceful stop
    try:
        nginx.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        nginx.kill()
        nginx.communicate()


def test_requests_are_balanced_across_the_processes(deployment: Deployment) -> None:
    pids = [deployment.get("/whoami")["pid"] for _ in range(20)]
    counts = {app.pid: pids.count(app.pid) for app in deployment.apps}
    assert sum(counts.values()) == 20, pids  # every answer came from one of them
    assert min(counts.values()) >= 5, counts  # round robin: both serve, about half each


def test_the_application_sees_the_real_client_address(deployment: Deployment) -> None:
    seen = deployment.get("/whoami")
    assert seen["remote_ip"] == CLIENT
    assert seen["peer"] == "127.0.0.1"  # the connection itself is nginx's
    # A client that lies about who it is gets nowhere: nginx drops its
    # X-Real-IP and X-Scheme and appends the address it really came from.
    lying = deployment.get(
        "/whoami", X_Forwarded_For="6.6.6.6", X_Real_IP="6.6.6.6", X_Scheme="https"
    )
    assert lying["remote_ip"] == CLIENT
    assert lying["protocol"] == "http"
    assert lying["forwarded_for"] == f"6.6.6.6, {CLIENT}"
    # Through the load balancer in front of nginx: X-Forwarded-For ends with
    # the balancer's address, which trusted_downstream skips.
    edge = deployment.get("/whoami", port=deployment.edge_port)
    assert edge["forwarded_for"] == f"{CLIENT}, {EDGE}"
    assert edge["remote_ip"] == CLIENT


def test_websockets_are_proxied(deployment: Deployment) -> None:
    from websockets.sync.client import connect

    pids = set()
    for _ in range(2):  # one connection lands on each process
        with connect(f"ws://127.0.0.1:{deployment.port}/ws", open_timeout=DEADLINE) as ws:
            ws.send("hello")
            assert ws.recv(timeout=DEADLINE) == "hello"
            big = os.urandom(200_000)
            ws.send(big)
            assert ws.recv(timeout=DEADLINE) == big
            ws.send("pid")
            pids.add(int(ws.recv(timeout=DEADLINE)))
    assert pids == {app.pid for app in deployment.apps}


def test_request_bodies_stream_through(deployment: Deployment) -> None:
    """The handler (``@stream_request_body``) has the first bytes while the
    client still holds the rest: nginx does not buffer the body."""
    first, rest = b"a" * 1000, b"b" * 300_000
    head = (
        f"POST /upload?id=u1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {len(first) + len(rest)}\r\n\r\n"
    ).encode()
    marker = deployment.markers / "u1.first"
    with socket.create_connection(("127.0.0.1", deployment.port), timeout=DEADLINE) as sock:
        sock.sendall(head + first)
        until(marker.exists, "the application to receive the first chunk")
        assert 0 < int(marker.read_text()) <= len(first)
        sock.sendall(rest)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200
        body = json.loads(response.read())
    assert body["received"] == len(first) + len(rest)
    assert body["chunks"] >= 2


def test_a_drain_behind_nginx_loses_no_request(deployment: Deployment) -> None:
    """SIGTERM one process while it has requests in flight: they are answered,
    nginx sends new requests to the other process, nothing fails, and the
    drained process exits 0."""
    in_flight = 4

    def slow(i: int) -> tuple[int, int]:
        conn = deployment.connection()
        try:
            conn.request("POST", f"/slow?id=s{i}", body=b"x" * 100)
            response = conn.getresponse()
            return response.status, int(response.read())
        finally:
            conn.close()

    with ThreadPoolExecutor(in_flight) as pool:
        answers = [pool.submit(slow, i) for i in range(in_flight)]
        started = [deployment.markers / f"s{i}.started" for i in range(in_flight)]
        until(lambda: all(path.exists() for path in started), "the slow requests to start")
        where = [int(path.read_text()) for path in started]
        victim = next(app for app in deployment.apps if app.pid == where[0])
        other = next(app for app in deployment.apps if app is not victim)
        victim.process.send_signal(signal.SIGTERM)

        def refuses() -> bool:
            try:
                socket.create_connection(("127.0.0.1", victim.port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        until(refuses, "the drained process to stop accepting")
        # While it finishes its requests, nginx's go to the other process.
        for _ in range(10):
            assert deployment.get("/whoami")["pid"] == other.pid
        assert victim.process.poll() is None  # still answering what it has
        (deployment.markers / "release").write_text("")
        results = [answer.result(timeout=DEADLINE) for answer in answers]
    assert results == [(200, pid) for pid in where]
    status, err = victim.stop(signal_it=False)
    assert status == 0, err
    deployment.apps.remove(victim)  # done with; the fixture stops the other
    assert deployment.get("/whoami")["pid"] == other.pid


def test_the_documented_config_is_the_tested_one() -> None:
    """docs/nginx.md shows examples/nginx/nginx.conf (the file these tests run) less comments."""
    doc = (ROOT / "docs" / "nginx.md").read_text()
    shown = doc.split("```nginx\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].rstrip() for line in EXAMPLE.read_text().splitlines()]
    example = "\n".join(line for line in lines if line) + "\n"
    assert shown.replace("\n\n", "\n") == example


# -- the application the reactor processes serve ----------------------------------------


def _mark(name: str, text: str) -> None:
    """A file the test waits for, in the MARKERS directory (written whole, then renamed)."""
    markers = os.environ["MARKERS"]
    temporary = os.path.join(markers, f".{name}.{os.getpid()}")
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, os.path.join(markers, name))


class WhoAmI(RequestHandler):
    def get(self) -> None:
        context = self.request.connection.context  # type: ignore[union-attr]
        self.write(
            {
                "pid": os.getpid(),
                "remote_ip": self.request.remote_ip,
                "peer": context.address[0],
                "protocol": self.request.protocol,
                "forwarded_for": self.request.headers.get("X-Forwarded-For"),
            }
        )


class Echo(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        if message == "pid":
            message = str(os.getpid())
        self.write_message(message, binary=isinstance(message, bytes))


@stream_request_body
class Upload(RequestHandler):
    def prepare(self) -> None:
        self.received = 0
        self.chunks = 0

    def data_received(self, chunk: bytes) -> None:
        if self.chunks == 0:
            _mark(f"{self.get_query_argument('id')}.first", str(len(chunk)))
        self.received += len(chunk)
        self.chunks += 1

    def post(self) -> None:
        self.write({"received": self.received, "chunks": self.chunks})


class Slow(RequestHandler):
    """Says it started, then answers once the test writes ``release``."""

    async def post(self) -> None:
        _mark(f"{self.get_query_argument('id')}.started", str(os.getpid()))
        release = os.path.join(os.environ["MARKERS"], "release")
        deadline = time.monotonic() + DEADLINE
        while not os.path.exists(release) and time.monotonic() < deadline:
            await gen.sleep(0.02)
        self.write(str(os.getpid()))


def make_app() -> Application:
    """What ``serve`` runs in each upstream process."""
    return Application(
        [(r"/whoami", WhoAmI), (r"/ws", Echo), (r"/upload", Upload), (r"/slow", Slow)]
    )
