"""Small helpers shared by the tests."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from typing import Any

from reactor import backends
from reactor.concurrent import Future
from reactor.ioloop import IOLoop

WAIT = 10.0
"""Upper bound for anything a test waits for: a hang fails, it never blocks CI."""


def wait_for(loop: IOLoop, future: Future[Any], timeout: float = WAIT) -> Any:
    """Run ``loop`` until ``future`` is done and return its result."""
    return loop.run_sync(lambda: future, timeout=timeout)


def socketpair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class LogRecords(logging.Handler):
    """Keeps every record it is given (see the ``reactor_log`` fixture)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == logging.WARNING]


CURL_TIMEOUT = 4.0
"""curl's own ``--max-time`` in the tests that drive servers with it."""


def run_curl(*args: str, data: bytes | None = None) -> tuple[bytes, bytes]:
    """Run curl (``-sS``, bounded by :data:`CURL_TIMEOUT`) and return its
    output and its stderr; it must succeed. Tests that call it take the
    ``need_curl`` fixture (tests/conformance/conftest.py), which skips
    without curl."""
    path = shutil.which("curl")
    assert path is not None  # the need_curl fixture skips without it
    result = subprocess.run(
        [path, "-sS", "--max-time", str(CURL_TIMEOUT), *args],
        input=data,
        capture_output=True,
        timeout=CURL_TIMEOUT + 2,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout, result.stderr


def backend_envs() -> list[tuple[str, str]]:
    """``(test id, REACTOR_BACKEND value)`` for every backend a program in a
    child process can run on: kqueue through its emulation (named by the
    poller's path) where the system has none."""
    from reactor.testing.kqueue_emulation import EmulatedKqueuePoller

    names = [(n, n) for n, reason in backends.available().items() if reason is None]
    if "kqueue" not in dict(names):
        emulated = f"{EmulatedKqueuePoller.__module__}:{EmulatedKqueuePoller.__qualname__}"
        names.append(("kqueue-emulated", emulated))
    return names
