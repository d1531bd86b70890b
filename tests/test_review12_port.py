"""Issue 12 review, as a porting Tornado user: shutdown and process recipes
written for Tornado 6.6 behave the same with reactor's imports.

Each program in ``tests/review12_port/`` is genuine Tornado code taking its
module prefix as an argument; it runs once with ``tornado`` (what the test
asserts is what Tornado does) and once with ``reactor`` on each backend, in a
child process, driven by real sockets and real signals.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "review12_port"


def backend_env(spec: Any) -> str:
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def start(reactor_backend: Any) -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """Start a recipe with ``tornado`` or ``reactor`` (on the backend under test)."""
    started: list[subprocess.Popen[str]] = []

    def run(program: str, lib: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env["REACTOR_BACKEND"] = backend_env(reactor_backend)
        process = subprocess.Popen(
            # Tornado 6.6 itself warns on add_callback_from_signal; not under test.
            [sys.executable, "-W", "ignore::DeprecationWarning", str(PROGRAMS / program), lib],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def read_port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("port "), line
    return int(line.split()[1])


def drain_recipe(start: Callable[[str, str], subprocess.Popen[str]], lib: str) -> dict[str, Any]:
    process = start("drain_recipe.py", lib)
    assert process.stdout is not None
    port = read_port(process)
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    idle.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    first = idle.recv(65536)
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    assert process.stdout.readline().strip() == "slow: started"
    process.send_signal(signal.SIGTERM)
    seen = {
        "first": first.split(b"\r\n")[0].decode(),
        "idle_after": idle.recv(65536),
        "busy_after": busy.recv(65536),
    }
    out, _ = process.communicate(timeout=10)
    idle.close()
    busy.close()
    seen["returncode"] = process.returncode
    seen["stdout"] = out.split("\n")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10)
    return seen


def test_stop_then_close_all_connections_from_a_signal(
    start: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    # server.stop(); await server.close_all_connections(), scheduled from a
    # SIGTERM handler with IOLoop.add_callback_from_signal: Tornado closes an
    # idle keep-alive connection and cuts a request in progress (its handler
    # sees on_connection_close), then the loop stops and the program exits 0.
    tornado = drain_recipe(start, "tornado")
    assert tornado == {
        "first": "HTTP/1.1 200 OK",
        "idle_after": b"",
        "busy_after": b"",
        "returncode": 0,
        "stdout": ["slow: on_connection_close", "drained", "exit", ""],
    }
    assert drain_recipe(start, "reactor") == tornado


def fork_recipe(start: Callable[[str, str], subprocess.Popen[str]], lib: str) -> dict[str, Any]:
    process = start("fork_recipe.py", lib)
    port = read_port(process)

    def get(path: str) -> str | None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            body = connection.getresponse().read().decode()
            connection.close()
            return body
        except (ConnectionError, http.client.HTTPException):
            return None

    children: dict[str, int] = {}

    def both_answered() -> bool:
        answer = get("/pid")
        if answer:
            task, pid = answer.split()
            children[task] = int(pid)
        return len(children) == 2

    wait_until(both_answered, "both children to answer")
    os.kill(children["0"], signal.SIGKILL)

    def restarted() -> bool:
        answer = get("/pid")
        return bool(answer) and answer.split()[0] == "0" and int(answer.split()[1]) != children["0"]

    wait_until(restarted, "child 0 restarted")

    def parent_exited() -> bool:
        get("/quit")  # each child that answers leaves its loop and exits 0
        return process.poll() is not None

    wait_until(parent_exited, "the parent to exit")
    out, err = process.communicate(timeout=10)
    return {
        "tasks": sorted(children),
        "returncode": process.returncode,
        "stdout": sorted(out.splitlines()),
        "restart_logged": "child 0 (pid" in err and "killed by signal 9" in err,
    }


def test_fork_processes_then_add_sockets(
    start: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    # bind_sockets, fork_processes(2), HTTPServer.add_sockets: two children
    # with task ids 0 and 1; one killed is forked again; when each child exits
    # 0 the parent exits 0.
    tornado = fork_recipe(start, "tornado")
    assert tornado == {
        "tasks": ["0", "1"],
        "returncode": 0,
        "stdout": ["child 0 leaves", "child 1 leaves"],
        "restart_logged": True,
    }
    assert fork_recipe(start, "reactor") == tornado


def listen_recipe(start: Callable[[str, str], subprocess.Popen[str]], lib: str) -> list[Any]:
    process = start("listen_recipe.py", lib)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"HTTPServer {lib}"
    return list(json.loads(lines[1]))


def test_application_listen_with_tornados_keyword_arguments(
    start: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    # Application.listen(port, address, family=, backlog=, flags=, reuse_port=,
    # **HTTPServer's arguments) returns the HTTPServer it started.
    tornado = listen_recipe(start, "tornado")
    reactor = listen_recipe(start, "reactor")
    ok = [200, "close", '{"ip": "1.2.3.4", "proto": "https", "n": 10}']
    assert tornado[0] == reactor[0] == ok
    # A body over max_body_size: Tornado answers 400 (and may reset the
    # connection before it is read: it closes with the body unread), reactor
    # 413 with Connection: close and a lingering close, so never a reset (a
    # deliberate difference, docs/migration.md).
    assert tornado[1] in ([400, None, ""], [400, None, "(reset)"], [None, None, "(reset)"])
    assert reactor[1] == [413, "close", ""]


# -- docs/deployment.md, followed as written ---------------------------------


def run_serve(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reactor", "serve", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
    )


def test_a_missing_key_file_is_named_not_the_certificate(tmp_path: Path) -> None:
    # deployment.md: "a wrong path ... fails at once with exit status 2". A
    # mistyped --keyfile was reported as "cannot load the certificate
    # CERT: [Errno 2] No such file or directory": the user looks at the
    # certificate, which is there.
    from reactor.testing.tls import make_certificate

    certificate = make_certificate(tmp_path)
    missing = tmp_path / "myapp.key"
    result = run_serve(
        "examples.serve_app:app",
        "--port",
        "0",
        "--certfile",
        str(certificate.cert_file),
        "--keyfile",
        str(missing),
    )
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert str(missing) in error, error
    assert "No such file" in error, error


NOBODY = 65534


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path is under a 0700 one):
    the socket's own mode is what is tested."""
    with tempfile.TemporaryDirectory(dir="/tmp") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def connect_as_nobody(path: Path) -> str:
    """Connect to the Unix socket ``path`` from a child running as user and
    group nobody (as nginx's workers do when its master runs as root and the
    configuration names no ``user``). Returns "ok" or the error's name."""
    code = (
        "import os, socket, sys\n"
        f"os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
        "    print('ok' if s.recv(100).startswith(b'HTTP/1.') else 'no answer')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root, to connect as another user (nobody) the way nginx's workers do",
)
def test_a_unix_socket_can_be_opened_to_nginxs_user(open_folder: Path) -> None:
    # deployment.md: "A Unix socket suits a proxy on the same machine:
    # proxy_pass http://unix:/run/myapp/http.sock; in nginx". The socket is
    # made 0600, so nginx's workers (www-data, or nobody) get EACCES and every
    # request is a 502: serve needs a way to give the socket another mode.
    sock = open_folder / "http.sock"
    ready = open_folder / "ready"
    command = [
        sys.executable, "-m", "reactor", "serve", "examples.serve_app:app",
        "--unix-socket", str(sock), "--unix-socket-mode", "666", "--ready-file", str(ready),
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: ready.exists() or server.poll() is not None, "the server")
        assert server.poll() is None, server.communicate()[1]
        assert oct(os.stat(sock).st_mode & 0o777) == "0o666"
        assert connect_as_nobody(sock) == "ok"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root, to connect as another user (nobody)",
)
def test_a_unix_socket_is_private_by_default(open_folder: Path) -> None:
    sock = open_folder / "http.sock"
    ready = open_folder / "ready"
    server = subprocess.Popen(
        [sys.executable, "-m", "reactor", "serve", "examples.serve_app:app",
         "--unix-socket", str(sock), "--ready-file", str(ready)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: ready.exists() or server.poll() is not None, "the server")
        assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
        assert connect_as_nobody(sock) == "PermissionError"
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_a_bad_unix_socket_mode_is_refused() -> None:
    result = run_serve(
        "examples.serve_app:app", "--unix-socket", "/tmp/x.sock", "--unix-socket-mode", "9"
    )
    assert result.returncode == 2
    assert "--unix-socket-mode" in result.stderr


# -- docs/metrics.md, followed as written -------------------------------------


def python_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", [0, 1], ids=["one-process", "fork_processes"])
def test_metrics_page_programs_serve_metrics(
    tmp_path: Path, reactor_backend: Any, index: int
) -> None:
    # Each program on the page, saved and run with python (its port 8888
    # replaced by a free one), serves /metrics. They used names they never
    # defined (MainHandler, make_app) and the first never started its loop.
    blocks = python_blocks("metrics.md")
    assert len(blocks) == 2
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    program = tmp_path / "program.py"
    program.write_text(blocks[index].replace("8888", str(port)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REACTOR_BACKEND": backend_env(reactor_backend)}
    server = subprocess.Popen(
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # fork_processes' children leave with their parent's group
    )

    def scraped() -> str | None:
        if server.poll() is not None:
            raise AssertionError(server.communicate()[1])
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
            connection.close()
        except OSError:
            return None
        processes = set(re.findall(r'reactor_process_info\{[^}]*process="(\d+)"', text))
        return text if len(processes) == (1 if index == 0 else 4) else None

    try:
        text = wait_until(scraped, "/metrics to report every process")
        assert "reactor_loop_iterations_total" in text
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the program exited (and the assertion above says why)
        server.communicate(timeout=10)
