"""A loop's life after it ends: callbacks added to a closed loop, and a loop inherited by fork()."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.util import WAIT


class _Payload:
    """Something a queued callback holds on to, so a test can see it kept or freed."""


def _alive(refs: list[weakref.ref[_Payload]]) -> int:
    gc.collect()
    return sum(ref() is not None for ref in refs)


def test_add_callback_after_close_is_dropped(reactor_backend: Any) -> None:
    """A closed loop never runs a callback again, so it must not keep one:
    each is dropped at once, without an error, as Tornado does."""
    loop = IOLoop(backend=reactor_backend, make_current=False)
    loop.close()
    refs = []
    for _ in range(1000):
        payload = _Payload()
        refs.append(weakref.ref(payload))
        loop.add_callback(lambda p: None, payload)
        loop.spawn_callback(lambda p: None, payload)
    del payload
    assert _alive(refs) == 0


def test_timers_after_close_are_refused(reactor_backend: Any) -> None:
    """A closed loop never runs a timer again: call_at, call_later and
    add_timeout raise RuntimeError, as asyncio's loop does, and keep nothing."""
    loop = IOLoop(backend=reactor_backend, make_current=False)
    loop.close()
    payload = _Payload()
    ref = weakref.ref(payload)
    later = loop.time() + 10
    for method, when in (("call_later", 10), ("call_at", later), ("add_timeout", later)):
        with pytest.raises(RuntimeError, match="closed"):
            getattr(loop, method)(when, lambda p: None, payload)
    del payload
    assert ref() is None


def test_add_callback_from_threads_racing_close(reactor_backend: Any) -> None:
    """Threads keep adding callbacks while the loop is closed under them:
    none of them gets an error, and once close() has returned what they add
    is not kept (at most one callback per thread, caught in the act, may
    outlive the race)."""
    loop = IOLoop(backend=reactor_backend, make_current=False)
    nthreads, per_thread = 4, 500
    errors: list[BaseException] = []
    refs: list[weakref.ref[_Payload]] = []
    refs_lock = threading.Lock()
    started = threading.Barrier(nthreads + 1)
    closed = threading.Event()

    def producer() -> None:
        try:
            started.wait(WAIT)
            mine = []
            # Some before and during close, then the rest once it is done.
            for i in range(per_thread * 2):
                if i == per_thread:
                    closed.wait(WAIT)
                payload = _Payload()
                mine.append(weakref.ref(payload))
                loop.add_callback(lambda p: None, payload)
            with refs_lock:
                refs.extend(mine[per_thread:])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=producer) for _ in range(nthreads)]
    for t in threads:
        t.start()
    started.wait(WAIT)
    loop.close()
    closed.set()
    for t in threads:
        t.join(WAIT)
    assert errors == []
    assert len(refs) == nthreads * per_thread
    assert _alive(refs) <= nthreads


_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(body: Any) -> tuple[int, str]:
    """Run ``body()`` in a forked child; return its exit code and what it wrote.

    The child reports through a pipe and leaves with ``os._exit``, so none of
    the parent's cleanup (pytest's included) runs twice.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 3
        try:
            os.close(r)
            code, message = body()
            os.write(w, message.encode()[:4000])
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), message


@_FORK
def test_a_loop_inherited_by_fork_refuses_to_run_in_the_child(
    io_loop: IOLoop, reactor_backend: Any
) -> None:
    """The child shares the parent's poller (an epoll set is one kernel
    object) and waker; running the inherited loop would steal the parent's
    events. It refuses with an error that says so; a new loop made in the
    child runs, and the parent's loop goes on."""
    assert io_loop.run_sync(lambda: "before") == "before"

    def child() -> tuple[int, str]:
        try:
            io_loop.run_sync(lambda: "ran in the child")
        except RuntimeError as e:
            if "fork" not in str(e):
                return 2, f"unexpected error: {e}"
            refusal = str(e)
        else:
            return 1, "the inherited loop ran in the child"
        fresh = IOLoop(backend=reactor_backend, make_current=False)
        try:
            if fresh.run_sync(lambda: "fresh") != "fresh":
                return 4, "a new loop in the child did not run"
        finally:
            fresh.close()
        return 0, refusal

    code, message = _in_child(child)
    assert code == 0, message
    assert "process" in message
    assert io_loop.run_sync(lambda: "after") == "after"
