"""asyncio's pipes, subprocesses, signals and debug mode on every backend.

Real pipes from :func:`os.pipe`, real child processes (this Python, ``sh``),
real signals sent from another thread while the loop sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from reactor.ioloop import IOLoop
from tests.conformance._asyncio_face import run
from tests.util import WAIT, LogRecords

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

posix_only = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.data = bytearray()
        self.eof = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.eof.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


# -- pipes -------------------------------------------------------------------------


def test_read_and_write_pipes(io_loop: IOLoop) -> None:
    """1 MiB through a pipe (its buffer holds 64 KiB): the write transport
    buffers and drains, the read transport gets it all, then EOF."""
    payload = os.urandom(1 << 20)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        read_transport, reader = await loop.connect_read_pipe(Collect, os.fdopen(r, "rb", 0))
        write_transport, writer = await loop.connect_write_pipe(Collect, os.fdopen(w, "wb", 0))
        write_transport.write(payload)
        assert write_transport.get_write_buffer_size() > 0  # the pipe took only part
        write_transport.close()  # after the buffer has gone out
        await asyncio.wait_for(reader.eof, WAIT)
        assert bytes(reader.data) == payload
        assert await asyncio.wait_for(writer.lost, WAIT) is None
        assert await asyncio.wait_for(reader.lost, WAIT) is None
        assert read_transport.is_closing()

    run(io_loop, main)


def test_write_pipe_closed_by_its_reader(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        write_transport, writer = await loop.connect_write_pipe(Collect, os.fdopen(w, "wb", 0))
        os.close(r)
        # Nothing was buffered, so no error (asyncio's rule): just closed.
        assert await asyncio.wait_for(writer.lost, WAIT) is None
        assert write_transport.is_closing()

    run(io_loop, main)


# -- subprocesses --------------------------------------------------------------------


def test_subprocess_exec_stdin_stdout_stderr_and_returncode(io_loop: IOLoop) -> None:
    script = (
        "import sys; data = sys.stdin.read(); "
        "sys.stdout.write(data.upper()); sys.stderr.write('err'); sys.exit(3)"
    )

    async def main() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(b"to the child"), WAIT)
        assert (out, err, process.returncode) == (b"TO THE CHILD", b"err", 3)

    run(io_loop, main)


def test_subprocess_kill(io_loop: IOLoop) -> None:
    script = "import sys, time; print('ready', flush=True); time.sleep(60)"

    async def main() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), WAIT) == b"ready\n"
        assert process.returncode is None
        process.kill()
        assert await asyncio.wait_for(process.wait(), WAIT) == -signal.SIGKILL
        assert await process.stdout.read() == b""

    run(io_loop, main)


def test_subprocess_shell_and_the_protocol_interface(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        process = await asyncio.create_subprocess_shell(
            "echo $((6 * 7)); exit 5", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(process.communicate(), WAIT)
        assert (out, process.returncode) == (b"42\n", 5)

        # The lower-level call, with a protocol of one's own.
        exited = loop.create_future()
        chunks: list[bytes] = []

        class Child(asyncio.SubprocessProtocol):
            def pipe_data_received(self, fd: int, data: bytes) -> None:
                chunks.append(data)

            def process_exited(self) -> None:
                exited.set_result(None)

        transport, _ = await loop.subprocess_exec(
            Child, sys.executable, "-c", "print('hi')", stdin=None
        )
        await asyncio.wait_for(exited, WAIT)
        assert transport.get_returncode() == 0
        transport.close()
        assert b"".join(chunks) == b"hi\n"

    run(io_loop, main)


# -- signals -------------------------------------------------------------------------


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@posix_only
@pytest.mark.usefixtures("restore_signals")
def test_signal_handlers_beside_add_callback_from_signal(io_loop: IOLoop) -> None:
    """An asyncio handler (SIGUSR1) and a Python handler that calls
    add_callback_from_signal (SIGUSR2), both signals sent by a helper
    thread to itself (so the C-level handler runs there) once the loop is
    idle. Both callbacks run on the loop's thread; without the wakeup fd
    the loop would sleep until the test's timeout."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        from_asyncio: asyncio.Future[tuple[int, str]] = loop.create_future()
        from_signal: asyncio.Future[int] = loop.create_future()

        def on_usr1(word: str) -> None:
            if not from_asyncio.done():
                from_asyncio.set_result((threading.get_ident(), word))

        def on_usr2() -> None:
            if not from_signal.done():
                from_signal.set_result(threading.get_ident())

        loop.add_signal_handler(signal.SIGUSR1, on_usr1, "usr1")
        signal.signal(signal.SIGUSR2, lambda s, f: io_loop.add_callback_from_signal(on_usr2))
        idle = threading.Event()

        def send() -> None:
            idle.wait(WAIT)
            me = threading.get_ident()
            signal.pthread_kill(me, signal.SIGUSR1)
            signal.pthread_kill(me, signal.SIGUSR2)

        sender = threading.Thread(target=send)
        sender.start()
        loop.call_soon(idle.set)  # then nothing is ready: the loop sleeps
        try:
            got = await asyncio.wait_for(asyncio.gather(from_asyncio, from_signal), WAIT)
        finally:
            sender.join(WAIT)
        assert got == [(loop_thread, "usr1"), loop_thread]
        assert loop.remove_signal_handler(signal.SIGUSR1)
        assert not loop.remove_signal_handler(signal.SIGUSR1)
        assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

    run(io_loop, main)


@posix_only
@pytest.mark.usefixtures("restore_signals")
def test_add_signal_handler_errors(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def coroutine() -> None:
            pass

        with pytest.raises(TypeError):
            loop.add_signal_handler(signal.SIGUSR1, coroutine)
        with pytest.raises(ValueError):
            loop.add_signal_handler(10_000, print)
        with pytest.raises(TypeError):
            loop.add_signal_handler("SIGUSR1", print)  # type: ignore[arg-type]
        uvloop = type(loop).__module__.startswith("uvloop")
        # Only from the main thread (uvloop raises ValueError, asyncio RuntimeError).
        with pytest.raises(ValueError if uvloop else RuntimeError):
            await loop.run_in_executor(None, loop.add_signal_handler, signal.SIGUSR1, print)
        # A second handler replaces the first.
        seen: list[str] = []
        loop.add_signal_handler(signal.SIGUSR1, seen.append, "first")
        loop.add_signal_handler(signal.SIGUSR1, seen.append, "second")
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR2, done.set_result, None)
        signal.raise_signal(signal.SIGUSR1)
        signal.raise_signal(signal.SIGUSR2)
        await asyncio.wait_for(done, WAIT)
        assert seen == ["second"]
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.remove_signal_handler(signal.SIGUSR2)
        # Last: after this uvloop's signal handling no longer works (uvloop 0.23).
        with pytest.raises(RuntimeError):
            loop.add_signal_handler(signal.SIGKILL, print)

    run(io_loop, main)


# -- debug mode ----------------------------------------------------------------------


@pytest.fixture
def asyncio_log() -> Iterator[LogRecords]:
    logger = logging.getLogger("asyncio")
    handler = LogRecords()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_debug_mode_warns_of_slow_callbacks(io_loop: IOLoop, asyncio_log: LogRecords) -> None:
    """With ``slow_callback_duration`` 0 every callback is slow: each one
    (call_soon, call_later, a task's step) is logged with its name."""

    def quick_callback() -> None:
        pass

    def quick_timer() -> None:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.0
        try:
            loop.call_soon(quick_callback)
            ran = loop.create_future()
            loop.call_later(0, lambda: (quick_timer(), ran.set_result(None)))
            await asyncio.wait_for(ran, WAIT)
            await asyncio.sleep(0)
        finally:
            loop.set_debug(False)
            loop.slow_callback_duration = 0.1

    run(io_loop, main)
    slow = [r.getMessage() for r in asyncio_log.records if r.levelno == logging.WARNING]
    assert any("quick_callback" in m and "took" in m for m in slow), slow
    assert any("<lambda>" in m and "took" in m for m in slow), slow
    assert any("<Task" in m and "main()" in m for m in slow), slow


def test_debug_mode_checks_threads_and_coroutine_callbacks(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        try:
            with pytest.raises(RuntimeError, match="Non-thread-safe"):
                await loop.run_in_executor(None, loop.call_soon, print)

            async def coroutine() -> None:
                pass

            # (uvloop's debug mode does not check what call_soon is given.)
            if not type(loop).__module__.startswith("uvloop"):
                with pytest.raises(TypeError):
                    loop.call_soon(coroutine)  # type: ignore[arg-type]
        finally:
            loop.set_debug(False)
        # Outside debug mode call_soon from a thread is not checked (as in
        # asyncio); call_soon_threadsafe is the right call.
        done = loop.create_future()
        await loop.run_in_executor(None, loop.call_soon_threadsafe, done.set_result, 1)
        assert await asyncio.wait_for(done, WAIT) == 1

    run(io_loop, main)


def test_debug_mode_says_where_an_unawaited_coroutine_was_made(io_loop: IOLoop) -> None:
    async def never_awaited() -> None:
        pass

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        try:
            await asyncio.sleep(0)  # asyncio turns tracking on from a callback
            assert sys.get_coroutine_origin_tracking_depth() > 0
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                coroutine = never_awaited()
                del coroutine
                gc.collect()
        finally:
            loop.set_debug(False)
        await asyncio.sleep(0)
        assert sys.get_coroutine_origin_tracking_depth() == 0
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    messages = run(io_loop, main)
    assert any("never_awaited" in m and "Coroutine created at" in m for m in messages), messages
