"""Processes: pre-forking servers and non-blocking child processes.

- :func:`fork_processes` forks worker processes that share the listening
  sockets made before it; the parent restarts workers that die abnormally.
- :class:`Subprocess` runs a child process whose stdin/stdout/stderr can be
  :class:`~reactor.iostream.PipeIOStream`\\ s, and tells you when it exits,
  through a SIGCHLD handler that works on every backend.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from binascii import hexlify
from collections.abc import Callable
from typing import Any

from reactor.concurrent import Future, future_set_exception_unless_cancelled
from reactor.concurrent import future_set_result_unless_cancelled as _set_result
from reactor.ioloop import IOLoop, _new_future
from reactor.log import gen_log

__all__ = ["CalledProcessError", "Subprocess", "cpu_count", "fork_processes", "task_id"]

CalledProcessError = subprocess.CalledProcessError
"""Raised by :meth:`Subprocess.wait_for_exit` for a non-zero exit status."""


def cpu_count() -> int:
    """The number of processors this process may run on (at least 1)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    count = os.cpu_count()
    if count:
        return count
    gen_log.error("Could not detect the number of processors; assuming 1")
    return 1


def _reseed_random() -> None:
    # A forked child starts with its parent's random state: reseed it so the
    # workers do not all produce the same "random" numbers.
    try:
        seed = int(hexlify(os.urandom(16)), 16)
    except NotImplementedError:
        seed = int(time.time() * 1000) ^ os.getpid()
    random.seed(seed)


_task_id: int | None = None


def fork_processes(num_processes: int | None, max_restarts: int | None = None) -> int:
    """Fork ``num_processes`` workers (None or <= 0: one per CPU).

    Returns in each child with its task id, 0 to ``num_processes - 1``. The
    parent never returns: it waits for the children, restarts one that was
    killed by a signal or exited with a non-zero status (at most
    ``max_restarts`` times in all, default 100), and exits with status 0
    once every child has exited cleanly.

    Sockets bound before the call are shared by all workers; no IOLoop may
    exist yet (a loop's poller does not survive a fork): make loops after.
    """
    global _task_id
    if sys.platform == "win32":
        raise RuntimeError("fork_processes needs os.fork, which Windows lacks")
    if IOLoop.initialized() or IOLoop.current(instance=False) is not None:
        raise RuntimeError(
            "Cannot fork worker processes: an IOLoop already exists in this process. "
            "Call fork_processes() before creating any IOLoop."
        )
    if max_restarts is None:
        max_restarts = 100
    if num_processes is None or num_processes <= 0:
        num_processes = cpu_count()
    gen_log.info("Starting %d processes", num_processes)
    children: dict[int, int] = {}

    def start_child(i: int) -> int | None:
        global _task_id
        pid = os.fork()
        if pid == 0:
            _reseed_random()
            _task_id = i
            return i
        children[pid] = i
        return None

    for i in range(num_processes):
        child_id = start_child(i)
        if child_id is not None:
            return child_id
    restarts = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in children:
            continue
        child_id = children.pop(pid)
        if os.WIFSIGNALED(status):
            gen_log.warning(
                "child %d (pid %d) killed by signal %d, restarting",
                child_id,
                pid,
                os.WTERMSIG(status),
            )
        elif os.WEXITSTATUS(status) != 0:
            gen_log.warning(
                "child %d (pid %d) exited with status %d, restarting",
                child_id,
                pid,
                os.WEXITSTATUS(status),
            )
        else:
            gen_log.info("child %d (pid %d) exited normally", child_id, pid)
            continue
        restarts += 1
        if restarts > max_restarts:
            raise RuntimeError("Too many child restarts, giving up")
        new_id = start_child(child_id)
        if new_id is not None:
            return new_id
    # All children exited cleanly: so does the parent, without running the
    # code after fork_processes() that was meant for workers.
    sys.exit(0)


def task_id() -> int | None:
    """The task id of this worker from :func:`fork_processes`, else None."""
    return _task_id


class Subprocess:
    """A child process with non-blocking pipes and an exit notification.

    ``Subprocess(args, stdin=Subprocess.STREAM, stdout=Subprocess.STREAM, ...)``
    takes :class:`subprocess.Popen`'s arguments; each of stdin, stdout and
    stderr given as ``Subprocess.STREAM`` becomes a
    :class:`~reactor.iostream.PipeIOStream` attribute of the same name
    (other values pass to Popen unchanged). :meth:`wait_for_exit` returns a
    future for the exit status; :meth:`set_exit_callback` calls back with it.
    Exits are noticed through SIGCHLD (see :meth:`initialize`), on every
    backend.
    """

    STREAM = object()

    _initialized = False
    _waiting: dict[int, Subprocess] = {}
    _old_sigchld: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from reactor.iostream import PipeIOStream

        self.io_loop = IOLoop.current()
        to_close: list[int] = []
        self.stdin: PipeIOStream | None = None
        self.stdout: PipeIOStream | None = None
        self.stderr: PipeIOStream | None = None
        ours: dict[str, int] = {}
        if kwargs.get("stdin") is Subprocess.STREAM:
            child_end, our_end = os.pipe()
            kwargs["stdin"] = child_end
            to_close.append(child_end)
            ours["stdin"] = our_end
        for name in ("stdout", "stderr"):
            if kwargs.get(name) is Subprocess.STREAM:
                our_end, child_end = os.pipe()
                kwargs[name] = child_end
                to_close.append(child_end)
                ours[name] = our_end
        try:
            self.proc = subprocess.Popen(*args, **kwargs)
        except BaseException:
            for fd in to_close + list(ours.values()):
                os.close(fd)
            raise
        for fd in to_close:
            os.close(fd)  # the child has its copies
        for name, fd in ours.items():
            setattr(self, name, PipeIOStream(fd))
        self.pid = self.proc.pid
        self.returncode: int | None = None
        self._exit_callback: Callable[[int], Any] | None = None

    def set_exit_callback(self, callback: Callable[[int], Any]) -> None:
        """Call ``callback(returncode)`` on this loop when the process exits.

        Installs the SIGCHLD handler (:meth:`initialize`) if needed.
        """
        self._exit_callback = callback
        Subprocess.initialize()
        Subprocess._waiting[self.pid] = self
        Subprocess._try_cleanup_process(self.pid)

    def wait_for_exit(self, raise_error: bool = True) -> Future[int]:
        """A future for the exit status; with ``raise_error`` a non-zero
        status fails it with :class:`CalledProcessError`."""
        future: Future[int] = _new_future()

        def callback(returncode: int) -> None:
            if returncode != 0 and raise_error:
                future_set_exception_unless_cancelled(
                    future, CalledProcessError(returncode, self.proc.args)
                )
            else:
                _set_result(future, returncode)

        self.set_exit_callback(callback)
        return future

    @classmethod
    def initialize(cls) -> None:
        """Install the SIGCHLD handler (main thread only; idempotent).

        The handler only schedules :meth:`_cleanup` on the waiting children's
        loops with ``add_callback_from_signal``; reaping happens there, so it
        works the same on the native and the asyncio backends. Other SIGCHLD users in
        the process must not reap our children.
        """
        if cls._initialized:
            return
        cls._old_sigchld = signal.signal(signal.SIGCHLD, cls._on_sigchld)
        cls._initialized = True

    @classmethod
    def _on_sigchld(cls, signum: int, frame: Any) -> None:
        # Each waiting child's own loop reaps it: loops come and go (one per
        # test, say), and the handler must not hold on to the first one.
        for loop in {id(s.io_loop): s.io_loop for s in list(cls._waiting.values())}.values():
            loop.add_callback_from_signal(cls._cleanup)

    @classmethod
    def uninitialize(cls) -> None:
        """Restore the SIGCHLD handler that was there before :meth:`initialize`."""
        if not cls._initialized:
            return
        signal.signal(signal.SIGCHLD, cls._old_sigchld)
        cls._initialized = False

    @classmethod
    def _cleanup(cls) -> None:
        for pid in list(cls._waiting):
            cls._try_cleanup_process(pid)

    @classmethod
    def _try_cleanup_process(cls, pid: int) -> None:
        try:
            ret_pid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as e:
            if e.errno == errno.ECHILD:
                return
            raise
        if ret_pid == 0:
            return
        assert ret_pid == pid
        subproc = cls._waiting.pop(pid)
        subproc.io_loop.add_callback(subproc._set_returncode, status)

    def _set_returncode(self, status: int) -> None:
        self.returncode = os.waitstatus_to_exitcode(status)
        # Tell Popen too, so it does not try to reap the pid again.
        self.proc.returncode = self.returncode
        if self._exit_callback is not None:
            callback, self._exit_callback = self._exit_callback, None
            callback(self.returncode)
