"""Signals: add_callback_from_signal, and the wakeup of a blocked poll."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.util import WAIT

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals (SIGUSR1)"
)


@pytest.fixture
def sigusr1() -> Iterator[list[Any]]:
    """Route SIGUSR1 to a list of callables; restore the old handler after."""
    targets: list[Any] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: [t() for t in targets])
    try:
        yield targets
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_callback_from_signal_runs_on_the_loop(io_loop: IOLoop, sigusr1: list[Any]) -> None:
    seen: list[int] = []
    loop_thread = threading.get_ident()

    def on_loop() -> None:
        seen.append(threading.get_ident())
        io_loop.stop()

    sigusr1.append(lambda: io_loop.add_callback_from_signal(on_loop))
    io_loop.add_callback(os.kill, os.getpid(), signal.SIGUSR1)
    io_loop.call_later(WAIT, io_loop.stop)
    io_loop.start()
    assert seen == [loop_thread]


def test_signal_wakes_a_loop_blocked_in_poll(io_loop: IOLoop, sigusr1: list[Any]) -> None:
    """No timers, no ready fds: the loop blocks in poll until the signal,
    sent from another thread, wakes it; a hang here fails by timeout."""
    seen: list[str] = []
    sigusr1.append(
        lambda: io_loop.add_callback_from_signal(lambda: (seen.append("signal"), io_loop.stop()))
    )
    started = threading.Event()
    io_loop.add_callback(started.set)
    sender = threading.Thread(
        target=lambda: started.wait(WAIT) and os.kill(os.getpid(), signal.SIGUSR1)
    )
    sender.start()
    io_loop.start()
    sender.join(WAIT)
    assert seen == ["signal"]


def test_signal_delivered_to_another_thread_wakes_the_loop(
    io_loop: IOLoop, sigusr1: list[Any]
) -> None:
    """The kernel may deliver a process signal to any thread. Aimed at a
    helper thread (pthread_kill), its C-level handler runs there while the
    loop's thread sleeps in poll; Python runs the handler in the main
    thread only once something wakes it. The signal itself must do that
    (through the wakeup fd), long before the loop's own safety timer."""
    seen: list[str] = []
    sigusr1.append(
        lambda: io_loop.add_callback_from_signal(lambda: (seen.append("signal"), io_loop.stop()))
    )
    started = threading.Event()
    io_loop.add_callback(started.set)
    io_loop.call_later(WAIT, lambda: (seen.append("safety timer"), io_loop.stop()))

    def send_to_myself() -> None:
        if started.wait(WAIT):
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    sender = threading.Thread(target=send_to_myself)
    sender.start()
    io_loop.start()
    sender.join(WAIT)
    # Woken by the safety timer instead, the loop would run it too, in the
    # same iteration as the signal's callback.
    assert seen == ["signal"]


def test_interrupted_poll_goes_on(io_loop: IOLoop, sigusr1: list[Any]) -> None:
    """A signal whose handler does nothing with the loop interrupts poll
    (EINTR); the loop must carry on to its timer as if nothing happened."""
    counted: list[int] = []
    sigusr1.append(lambda: counted.append(1))
    io_loop.call_later(0.01, os.kill, os.getpid(), signal.SIGUSR1)
    io_loop.call_later(0.05, io_loop.stop)
    io_loop.start()
    assert counted == [1]
    assert io_loop.run_sync(lambda: "alive") == "alive"
