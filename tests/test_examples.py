"""The examples run as a user would run them: a fresh process per backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reactor import backends

ROOT = Path(__file__).resolve().parent.parent
AVAILABLE = [name for name, reason in backends.available().items() if reason is None]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_asyncio_code_runs_unchanged_on_each_backend(backend: str) -> None:
    env = dict(os.environ, REACTOR_BACKEND=backend)
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
    env = dict(os.environ, REACTOR_BACKEND=backend)
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
    """The README's main job, ``python -m reactor demo``, answered by http.client."""
    import http.client
    import re
    import signal

    env = dict(os.environ, REACTOR_BACKEND=backend)
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
        assert response.read() == f"Hello from reactor on the {backend} backend!\n".encode()
        conn.request("POST", "/echo", body=b"ping", headers={"Content-Type": "text/plain"})
        response = conn.getresponse()  # the same keep-alive connection
        assert (response.status, response.read()) == (200, b"ping")
        assert response.getheader("Content-Type") == "text/plain"
        conn.request("GET", "/nothing")
        response = conn.getresponse()
        assert response.status == 404
        response.read()
        conn.close()
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=10)
        assert server.returncode == 0, err
        assert "stopped" in out
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
