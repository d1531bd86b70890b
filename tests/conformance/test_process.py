"""reactor.process on every backend: Subprocess with pipes and SIGCHLD;
fork_processes with reuse_port serving from several real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.process import CalledProcessError, Subprocess, cpu_count, task_id
from reactor.tcpclient import TCPClient

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGCHLD and fork are POSIX facilities"
)


@pytest.fixture(autouse=True)
def _restore_sigchld() -> Iterator[None]:
    yield
    Subprocess.uninitialize()


def test_cpu_count_and_task_id() -> None:
    assert cpu_count() >= 1
    assert task_id() is None  # not a forked worker


async def test_stdout_stream_and_exit_status(io_loop: IOLoop) -> None:
    proc = Subprocess(
        [sys.executable, "-c", "import sys; print('hello'); sys.stderr.write('oops')"],
        stdout=Subprocess.STREAM,
        stderr=Subprocess.STREAM,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = await proc.stdout.read_until_close()
    err = await proc.stderr.read_until_close()
    assert (out, err) == (b"hello\n", b"oops")
    assert await proc.wait_for_exit() == 0
    assert proc.returncode == 0


async def test_stdin_stream_round_trip(io_loop: IOLoop) -> None:
    proc = Subprocess(
        [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"],
        stdin=Subprocess.STREAM,
        stdout=Subprocess.STREAM,
    )
    assert proc.stdin is not None and proc.stdout is not None
    await proc.stdin.write(b"piped " * 20000)  # larger than a pipe buffer
    proc.stdin.close()
    data = await proc.stdout.read_until_close()
    assert data == b"PIPED " * 20000
    assert await proc.wait_for_exit() == 0


async def test_nonzero_exit_raises_or_returns(io_loop: IOLoop) -> None:
    failing = Subprocess([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(CalledProcessError) as info:
        await failing.wait_for_exit()
    assert info.value.returncode == 3
    quiet = Subprocess([sys.executable, "-c", "raise SystemExit(4)"])
    assert await quiet.wait_for_exit(raise_error=False) == 4


async def test_exit_callback_and_a_killed_child(io_loop: IOLoop) -> None:
    proc = Subprocess([sys.executable, "-c", "import time; time.sleep(30)"])
    codes: list[int] = []
    exited: Future[int] = Future()
    proc.set_exit_callback(lambda code: (codes.append(code), exited.set_result(code)))
    os.kill(proc.pid, signal.SIGTERM)
    assert await exited == -signal.SIGTERM
    assert codes == [-signal.SIGTERM]


async def test_many_children_exit_in_any_order(io_loop: IOLoop) -> None:
    procs = [
        Subprocess([sys.executable, "-c", f"import time; time.sleep({0.05 * (5 - i)}); exit({i})"])
        for i in range(5)
    ]
    codes = await gen.multi([p.wait_for_exit(raise_error=False) for p in procs])
    assert codes == list(range(5))


_FORKED_SERVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from reactor.netutil import bind_sockets
    from reactor.process import fork_processes, task_id
    from reactor.tcpserver import TCPServer
    from reactor.ioloop import IOLoop

    sockets = bind_sockets(0, "127.0.0.1", reuse_port=True)
    print(sockets[0].getsockname()[1], flush=True)
    fork_processes(3, max_restarts=0)

    class WhoAmI(TCPServer):
        async def handle_stream(self, stream, address):
            await stream.write(b"%d %d\\n" % (task_id(), os.getpid()))
            stream.close()

    server = WhoAmI()
    server.add_sockets(sockets)
    IOLoop.current().start()
    """
)


async def test_fork_processes_serves_from_several_processes(
    io_loop: IOLoop, reactor_backend: Any
) -> None:
    """A real pre-forked server: 3 workers share one listening socket; new
    connections reach more than one of them (the kernel spreads accepts)."""
    spec = (
        reactor_backend
        if isinstance(reactor_backend, str)
        else f"{reactor_backend.__module__}:{reactor_backend.__qualname__}"
    )
    env = dict(os.environ, REACTOR_BACKEND=spec)
    parent = subprocess.Popen(
        [sys.executable, "-c", _FORKED_SERVER.format(root=str(ROOT))],
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        port = int(parent.stdout.readline())
        client = TCPClient()
        seen: dict[int, int] = {}
        # The workers start at their own pace (slowly, on a loaded machine);
        # until a second one waits in accept, the first takes every
        # connection. So keep connecting, pausing now and then, for a while.
        deadline = io_loop.time() + 4.0
        try:
            attempts = 0
            while len(seen) < 2 and io_loop.time() < deadline:
                stream: IOStream = await client.connect("127.0.0.1", port, timeout=5)
                worker, pid = map(int, (await stream.read_until_close()).split())
                stream.close()
                seen[worker] = pid
                attempts += 1
                if attempts % 20 == 0:
                    await gen.sleep(0.02)
        finally:
            client.close()
        assert len(seen) >= 2, seen
        assert set(seen) <= {0, 1, 2}
        assert len(set(seen.values())) == len(seen)  # distinct processes
        assert parent.pid not in seen.values()
    finally:
        os.killpg(parent.pid, signal.SIGTERM)
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()
