"""Real database servers for the library tests: Debian's ``redis-server`` and PostgreSQL.

Each is started on a free loopback port in a temporary directory of its own,
waited for until it says it accepts connections, and stopped after (the
temporary directory removed). The tests use them through session-scoped
fixtures (see tests/conformance/test_asyncio_libraries.py), so one server
serves every backend's tests; ``.ci/run`` installs the packages with
apt-get.

Some facts about starting them:

- Neither can be told to pick its own port and say which (``redis-server
  --port 0`` turns TCP off), so a free port is found by binding to port 0 and
  closing; another process may take it in between, so a server that exits
  at start is tried again on another port (three times).
- Both write "ready to accept connections" to their log when they are; that
  line, not a listening port, is the signal: PostgreSQL listens before it has
  finished recovery and answers "the database system is starting up" until
  then. A thread reads the server's output, so that the pipe never fills and
  blocks the server, and sets an event on that line.
- PostgreSQL refuses to run as root. As root (CI and this workplace), initdb
  and postgres run as the ``postgres`` user (Debian's package makes it; else
  ``nobody``), in a directory that user owns, outside pytest's per-user
  temporary folder (mode 0700, owned by root).
- PostgreSQL's SIGTERM waits for every client to leave; SIGINT ("fast
  shutdown") rolls their transactions back and stops at once.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

START_TIMEOUT = 30.0
"""The longest a server may take to be ready (initdb alone takes a few seconds)."""
STOP_TIMEOUT = 10.0
READY = "ready to accept connections"


class ServerNotInstalled(Exception):
    """The server's program is not on this machine: the tests that need it skip."""


@dataclass
class RunningServer:
    """A server process that said it is ready: where it listens, and its log so far."""

    name: str
    host: str
    port: int
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self, sig: int) -> None:
        """Signal the server, wait for it to exit (killing it after STOP_TIMEOUT), and
        close its output once the reading thread has seen its end."""
        _stop(self.process, sig)
        if self.reader is not None:
            self.reader.join(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pump(stream: IO[str], log: list[str], ready: threading.Event) -> None:
    for line in stream:
        log.append(line.rstrip("\n"))
        if READY in line.lower():
            ready.set()
    ready.set()  # the output ended: the server exited (the caller checks which)


def _start(name: str, command: list[str], port: int, **popen: Any) -> RunningServer:
    """Start ``command`` and wait for its "ready" log line; raise RuntimeError with
    its log if it exits first or is not ready within START_TIMEOUT."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a Ctrl-C in the test run is the test run's, not the server's
        **popen,
    )
    server = RunningServer(name, "127.0.0.1", port, process)
    ready = threading.Event()
    assert process.stdout is not None
    server.reader = threading.Thread(
        target=_pump, args=(process.stdout, server.log, ready), daemon=True, name=name
    )
    server.reader.start()
    if not ready.wait(START_TIMEOUT) or process.poll() is not None:
        server.stop(signal.SIGKILL)
        tail = "\n".join(server.log[-15:])
        raise RuntimeError(f"{name} did not start on port {port}: {' '.join(command)}\n{tail}")
    return server


def _stop(process: subprocess.Popen[str], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def _start_on_a_free_port(name: str, make_command: Any, **popen: Any) -> RunningServer:
    error: RuntimeError | None = None
    for _ in range(3):
        port = free_port()
        try:
            return _start(name, make_command(port), port, **popen)
        except RuntimeError as e:
            error = e  # most likely the port was taken meanwhile: another one
    assert error is not None
    raise error


# -- redis ------------------------------------------------------------------------------


@contextmanager
def redis_server(port: int | None = None) -> Iterator[RunningServer]:
    """A ``redis-server`` on a free loopback port (or on ``port``, for a test
    that starts one again where its clients expect it), persisting nothing,
    in a temporary directory.

    Raises ServerNotInstalled where there is no ``redis-server``.
    """
    program = shutil.which("redis-server")
    if program is None:
        raise ServerNotInstalled("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="reactor-redis-") as directory:

        def command(port: int) -> list[str]:
            # Options on the command line, no config file: no save, no AOF, loopback only.
            return [
                program,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", directory,
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--protected-mode", "yes",
                "--loglevel", "notice",
            ]  # fmt: skip

        if port is None:
            server = _start_on_a_free_port("redis-server", command)
        else:
            server = _start("redis-server", command(port), port)
        try:
            yield server
        finally:
            server.stop(signal.SIGTERM)


# -- PostgreSQL ---------------------------------------------------------------------------


def _postgres_program(name: str) -> str | None:
    """``name`` (initdb, postgres) on PATH, else in Debian's /usr/lib/postgresql/VERSION/bin."""
    found = shutil.which(name)
    if found is not None:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL when we are root (it refuses root); None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and there is no postgres or nobody user to run PostgreSQL")


@contextmanager
def postgres_server() -> Iterator[RunningServer]:
    """A fresh PostgreSQL cluster (``initdb``, trust authentication for the
    ``postgres`` superuser on loopback, fsync off) served by ``postgres`` on a
    free loopback port; its Unix socket is in the same temporary directory.

    Raises ServerNotInstalled where there is no ``initdb`` or ``postgres``.
    """
    initdb, postgres = _postgres_program("initdb"), _postgres_program("postgres")
    if initdb is None or postgres is None:
        raise ServerNotInstalled("PostgreSQL is not installed (apt-get install postgresql)")
    user = _unprivileged_user()
    popen: dict[str, Any] = {}
    if user is not None:
        popen = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    directory = tempfile.mkdtemp(prefix="reactor-postgres-")
    try:
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        data = os.path.join(directory, "data")
        result = subprocess.run(
            [initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            cwd=directory,
            env={**os.environ, "LC_ALL": "C"},
            **popen,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

        def command(port: int) -> list[str]:
            return [
                postgres,
                "-D", data,
                "-p", str(port),
                "-h", "127.0.0.1",
                "-k", directory,  # the Unix socket's directory
                "-F",  # fsync off: a throwaway cluster
                "-c", "max_connections=50",
                "-c", "shared_buffers=16MB",
            ]  # fmt: skip

        server = _start_on_a_free_port("postgres", command, cwd=directory, **popen)
        try:
            yield server
        finally:
            server.stop(signal.SIGINT)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
