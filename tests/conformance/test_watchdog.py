"""set_blocking_log_threshold: a blocked loop gets its stack logged."""

from __future__ import annotations

import logging
import time

import pytest

from reactor.ioloop import IOLoop


def _block_the_loop_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass  # a CPU-bound callback, the kind the watchdog exists to catch


def _blocked_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "blocked" in r.getMessage()]


def test_blocking_callback_is_logged_with_its_stack(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    io_loop.set_blocking_log_threshold(0.05)
    with caplog.at_level(logging.WARNING, logger="reactor.general"):
        io_loop.call_later(0.02, _block_the_loop_for, 0.4)
        io_loop.call_later(0.5, io_loop.stop)
        io_loop.start()
    io_loop.set_blocking_log_threshold(None)
    records = _blocked_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]  # once per episode
    assert "_block_the_loop_for" in records[0].getMessage()


def test_idle_and_stopped_loops_are_not_reported(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    io_loop.set_blocking_log_threshold(0.05)
    with caplog.at_level(logging.WARNING, logger="reactor.general"):
        io_loop.call_later(0.3, io_loop.stop)  # idle, waiting in poll
        io_loop.start()
        _block_the_loop_for(0.3)  # the loop is not running: not its problem
        io_loop.call_later(0.05, io_loop.stop)
        io_loop.start()
    io_loop.set_blocking_log_threshold(None)
    assert _blocked_records(caplog) == []
