"""A loop's life after it ends: callbacks added to a closed loop, and a loop inherited by fork()."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

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
