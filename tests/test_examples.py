"""The examples run as a user would run them: a fresh process per backend."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reactor import backends
from tests.util import backend_envs

ROOT = Path(__file__).resolve().parent.parent
AVAILABLE = [name for name, reason in backends.available().items() if reason is None]


def checkout_env(**extra: str) -> dict[str, str]:
    """The environment for an example's process: this checkout's reactor on
    its path (not whichever an installation points to), and ``extra``."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, **extra)


@pytest.mark.parametrize("backend", AVAILABLE)
def test_asyncio_code_runs_unchanged_on_each_backend(backend: str) -> None:
    env = checkout_env(REACTOR_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "asyncio_on_reactor.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"backend={backend} result=['A', 'B', 'C', '(timed out as expected)']"
    )


@pytest.mark.parametrize("backend", AVAILABLE)
def test_tcpecho_server_and_client(backend: str) -> None:
    """The echo example as a user runs it: a server process, a client process."""
    env = checkout_env(REACTOR_BACKEND=backend)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = str(probe.getsockname()[1])
    probe.close()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "tcpecho" / "server.py"), "--port", port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == f"listening on 127.0.0.1:{port}"
        client = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "tcpecho" / "client.py"),
                "--port",
                port,
                "hello",
                "reactor",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == ["hello", "reactor"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
        assert server.returncode == 0, err  # SIGTERM stops the loop cleanly


@pytest.mark.parametrize("backend", AVAILABLE)
def test_demo_server(backend: str) -> None:
    """The README's main job, ``python -m reactor demo``, answered by http.client
    (tests/test_demo.py drives the application through all its parts)."""
    env = checkout_env(REACTOR_BACKEND=backend)
    server = subprocess.Popen(
        [sys.executable, "-m", "reactor", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/ on the (\w+) backend", line)
        assert match, line
        assert match.group(2) == backend
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        page = response.read().decode()
        assert f"Hello from reactor on the {backend} backend!" in page
        css = re.search(r'href="(/static/demo\.css\?v=\w+)"', page)
        assert css, page
        conn.request("GET", css.group(1))  # the same keep-alive connection
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == (ROOT / "reactor" / "demo" / "static" / "demo.css").read_bytes()
        conn.request("GET", "/api/info")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["backend"] == backend
        conn.request("GET", "/nothing")
        response = conn.getresponse()
        assert response.status == 404
        response.read()
        conn.request("GET", "/chat/live")  # the live chat: sign in first
        response = conn.getresponse()
        assert (response.status, response.getheader("Location")) == (
            302,
            "/login?next=%2Fchat%2Flive",
        )
        response.read()
        conn.close()
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=10)
        assert server.returncode == 0, err
        assert "stopped" in out
        assert "Traceback" not in err, err
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


# -- the web examples: the seeds' hello worlds and the demo's parts ----------------

RUN_ON_A_FREE_PORT = """
import runpy, sys
from reactor import netutil, tcpserver
from reactor.ioloop import IOLoop

if sys.argv[1] == "kqueue-emulated":
    from reactor.testing.kqueue_emulation import EmulatedKqueuePoller

    IOLoop.configure(EmulatedKqueuePoller)

def bind_a_free_port(port, address=None, *args, **kwargs):
    sockets = netutil.bind_sockets(0, "127.0.0.1", *args, **kwargs)
    port, backend = sockets[0].getsockname()[1], IOLoop.current().backend_name
    print("listening on http://127.0.0.1:%d/ on %s" % (port, backend), flush=True)
    return sockets

tcpserver.bind_sockets = bind_a_free_port
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
"""``python -c RUN_ON_A_FREE_PORT BACKEND|- script args...`` runs a program that
listens on a fixed port (the seeds' 8888) on a free one instead, and says
which, and on which backend: tests run in parallel, on a shared machine.
``kqueue-emulated`` runs it on kqueue through the kevent emulation (Linux has
no kqueue; REACTOR_BACKEND could not name it)."""

SEED_BACKENDS = AVAILABLE + ([] if "kqueue" in AVAILABLE else ["kqueue-emulated"])


@contextmanager
def serving(
    args: list[str],
    backend: str | None = None,
    stop: int = signal.SIGINT,
    first_line: list[str] | None = None,
) -> Iterator[int]:
    """Run an example server (``args`` after the interpreter); yield its port.
    It must print ``listening on http://127.0.0.1:PORT/`` first, and is
    stopped after (by ``stop``: SIGINT is Ctrl-C), without a traceback."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )  # this checkout's reactor, not another
    if backend is not None:
        env["REACTOR_BACKEND"] = backend
    server = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.match(r"listening on http://127\.0\.0\.1:(\d+)/", line)
        assert match, (line, server.stderr.read() if server.stderr else "")
        if first_line is not None:
            first_line.append(line)
        yield int(match.group(1))
    finally:
        server.send_signal(stop)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert "Traceback" not in err, err


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def cookies_of(response: http.client.HTTPResponse) -> dict[str, str]:
    jar = {}
    for line in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = line.partition("=")
        jar[name] = rest.split(";", 1)[0]
    return jar


def xsrf_token(cookie: str) -> str:
    return urllib.parse.unquote(cookie.strip('"'))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("backend", SEED_BACKENDS)
@pytest.mark.parametrize("seed", ["hello_world.py", "hello_options.py"])
def test_seed_hello_worlds(seed: str, backend: str) -> None:
    """Seeds 000 and 001 with ``tornado`` changed to ``reactor``, on each backend
    (they do not catch Ctrl-C: SIGTERM stops them)."""
    script = str(ROOT / "examples" / seed)
    args = ["-c", RUN_ON_A_FREE_PORT, backend, script, "--port=8888"]
    env_backend = None if backend == "kqueue-emulated" else backend
    line: list[str] = []
    with serving(args, env_backend, stop=signal.SIGTERM, first_line=line) as port:
        assert line[0].split()[-1] == backend.replace("-emulated", ""), line
        status, response, body = request(port, "GET", "/")
        assert (status, body) == (200, b"Hello, world")
        assert response.getheader("Content-Type") == "text/html; charset=UTF-8"
        assert request(port, "GET", "/missing")[0] == 404


def test_seed_001_options_help() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hello_options.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        ),
    )
    out = result.stdout + result.stderr
    assert "--port" in out and "run on the given port" in out and "8888" in out, out


WEB = ROOT / "examples" / "web"


def test_example_page() -> None:
    with serving([str(WEB / "page.py"), "--port=0"]) as port:
        status, _, body = request(port, "GET", "/?name=%3Cb%3Eyou")
        page = body.decode()
        assert status == 200
        assert "<h1>Hello, &lt;b&gt;you!</h1>" in page
        assert "<li>&lt;three&gt;</li>" in page
        match = re.search(r'href="(/static/page\.css\?v=[0-9a-f]+)"', page)
        assert match, page
        status, response, css = request(port, "GET", match.group(1))
        assert (status, css) == (200, (WEB / "static" / "page.css").read_bytes())
        assert "max-age" in response.getheader("Cache-Control", "")


def test_example_form() -> None:
    with serving([str(WEB / "form.py"), "--port=0"]) as port:
        status, response, body = request(port, "GET", "/")
        assert status == 200 and b'name="_xsrf"' in body
        xsrf = cookies_of(response)["_xsrf"]
        cookie = {"Cookie": f"_xsrf={xsrf}", **FORM}
        assert request(port, "POST", "/", "message=hi", cookie)[0] == 403
        form = urllib.parse.urlencode({"message": "<hi>", "_xsrf": xsrf_token(xsrf)})
        assert request(port, "POST", "/", form, cookie)[0] == 302
        assert request(port, "POST", "/", "_xsrf=" + xsrf_token(xsrf), cookie)[0] == 400
        assert b"<li>&lt;hi&gt;</li>" in request(port, "GET", "/")[2]


def test_example_upload_with_curl(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (.ci/run installs it)")
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(300_000))
    with serving([str(WEB / "upload.py"), "--port=0"]) as port:
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "10",
                "-T",
                str(data),
                f"http://127.0.0.1:{port}/data.bin",
            ],
            capture_output=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"name": "data.bin", "size": 300_000}
        # a body announced too big is refused before it is sent
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("PUT", "/big")
        conn.putheader("Content-Length", str(10**12))
        conn.endheaders()
        assert conn.getresponse().status == 413
        conn.close()


def test_example_json_api() -> None:
    with serving([str(WEB / "json_api.py"), "--port=0"]) as port:
        status, response, body = request(port, "POST", "/sum", b'{"numbers": [1, 2, 3.5]}')
        assert (status, json.loads(body)) == (200, {"count": 3, "sum": 6.5})
        assert response.getheader("Content-Type") == "application/json; charset=UTF-8"
        for bad in (b"not json", b'{"numbers": "12"}', b"{}", b"[1]"):
            assert request(port, "POST", "/sum", bad)[0] == 400, bad


def test_example_login() -> None:
    with serving([str(WEB / "login.py"), "--port=0"]) as port:
        status, response, _ = request(port, "GET", "/")
        assert status == 302
        assert response.getheader("Location") == "/login?next=%2F"
        status, response, _ = request(port, "GET", "/login")
        xsrf = cookies_of(response)["_xsrf"]
        form = urllib.parse.urlencode({"name": "alice", "next": "/", "_xsrf": xsrf_token(xsrf)})
        status, response, _ = request(
            port, "POST", "/login", form, {"Cookie": f"_xsrf={xsrf}", **FORM}
        )
        assert status == 302
        user = cookies_of(response)["user"]
        status, _, body = request(port, "GET", "/", headers={"Cookie": f"user={user}"})
        assert (status, body.startswith(b"Hello, alice:")) == (200, True)
        assert request(port, "GET", "/", headers={"Cookie": "user=alice"})[0] == 302  # unsigned


def test_example_chat() -> None:
    with serving([str(WEB / "chat.py"), "--port=0"]) as port:
        waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        waiting.request("GET", "/updates?cursor=0")  # answered once there is a message
        status, _, body = request(port, "POST", "/new", "text=hello+%3Cyou%3E", FORM)
        assert (status, json.loads(body)) == (200, {"id": 1, "text": "hello <you>"})
        response = waiting.getresponse()
        assert json.loads(response.read()) == {"messages": [{"id": 1, "text": "hello <you>"}]}
        waiting.close()
        assert request(port, "GET", "/updates?cursor=zero")[0] == 400
        assert request(port, "POST", "/new", "text=", FORM)[0] == 400


@pytest.mark.parametrize(
    ("backend_id", "backend"), backend_envs(), ids=[i for i, _ in backend_envs()]
)
def test_ported_tornado_websocket_chat_with_the_websockets_client(
    backend_id: str, backend: str, tmp_path: Path
) -> None:
    """examples/tornado_websocket_chat, imports ported, run as a program on
    each backend, and chatted through by another implementation's client
    (the ``websockets`` package's)."""
    from websockets.sync.client import connect

    from tests.conformance.test_port_tornado_websocket_chat import port_chat

    app = port_chat(tmp_path / "chat")
    with serving([str(app), "--port=0"], backend, stop=signal.SIGTERM) as port:
        url = f"ws://127.0.0.1:{port}/socket"
        with connect(url, open_timeout=10) as alice, connect(url, open_timeout=10) as bob:
            alice.send(json.dumps({"text": f"<b>{backend}</b>"}))
            for client in (alice, bob):
                assert json.loads(client.recv(timeout=10)) == {"id": 1, "text": f"<b>{backend}</b>"}
            bob.send("{}")
            assert "error" in json.loads(bob.recv(timeout=10))
        with connect(url, open_timeout=10, compression=None) as late:
            assert json.loads(late.recv(timeout=10))["id"] == 1  # the cache
