"""File-descriptor readiness and handler management, on every backend."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from typing import Any

import pytest

from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from tests.util import socketpair, wait_for


def _first_event(loop: IOLoop, fd: Any, events: int) -> tuple[Any, int]:
    """Register ``fd`` for ``events`` and return the first (fileobj, mask)."""
    got: Future[tuple[Any, int]] = Future()

    def handler(fileobj: Any, mask: int) -> None:
        loop.remove_handler(fileobj)
        if not got.done():
            got.set_result((fileobj, mask))

    loop.add_handler(fd, handler, events)
    return wait_for(loop, got)  # type: ignore[no-any-return]


def test_socket_readable(io_loop: IOLoop) -> None:
    a, b = socketpair()
    with a, b:
        b.send(b"ping")
        fileobj, mask = _first_event(io_loop, a, IOLoop.READ)
        assert fileobj is a  # the handler gets back what was registered
        assert mask & IOLoop.READ
        assert a.recv(10) == b"ping"


def test_int_fd_handler_gets_the_int(io_loop: IOLoop) -> None:
    a, b = socketpair()
    with a, b:
        b.send(b"x")
        fileobj, mask = _first_event(io_loop, a.fileno(), IOLoop.READ)
        assert fileobj == a.fileno()
        assert mask & IOLoop.READ


def test_socket_writable(io_loop: IOLoop) -> None:
    a, b = socketpair()
    with a, b:
        _, mask = _first_event(io_loop, a, IOLoop.WRITE)
        assert mask & IOLoop.WRITE
        assert not mask & IOLoop.READ


def test_pipe_readable_and_writable(io_loop: IOLoop) -> None:
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        _, mask = _first_event(io_loop, w, IOLoop.WRITE)
        assert mask & IOLoop.WRITE
        os.write(w, b"data")
        _, mask = _first_event(io_loop, r, IOLoop.READ)
        assert mask & IOLoop.READ
        assert os.read(r, 10) == b"data"
    finally:
        os.close(r)
        os.close(w)


def test_socket_hangup_is_read_or_error_and_data_is_kept(io_loop: IOLoop) -> None:
    a, b = socketpair()
    with a:
        b.send(b"last words")
        b.close()
        _, mask = _first_event(io_loop, a, IOLoop.READ)
        assert mask & (IOLoop.READ | IOLoop.ERROR)
        # Data that arrived before the hang-up is still there, then EOF.
        assert a.recv(100) == b"last words"
        assert a.recv(100) == b""


def test_pipe_hangup_is_read_or_error(io_loop: IOLoop) -> None:
    r, w = os.pipe()
    try:
        os.set_blocking(r, False)
        os.write(w, b"tail")
        os.close(w)
        _, mask = _first_event(io_loop, r, IOLoop.READ)
        assert mask & (IOLoop.READ | IOLoop.ERROR)
        assert os.read(r, 100) == b"tail"
        assert os.read(r, 100) == b""
    finally:
        os.close(r)


def test_refused_connect_is_reported(io_loop: IOLoop) -> None:
    # A port that was just bound and closed refuses connections.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = socket.socket()
    client.setblocking(False)
    with client:
        try:
            client.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except ConnectionRefusedError:
            pytest.fail("loopback refused synchronously; nothing left to poll")
        _, mask = _first_event(io_loop, client, IOLoop.WRITE)
        assert mask & (IOLoop.WRITE | IOLoop.ERROR)
        assert client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED


def test_readiness_is_level_triggered(io_loop: IOLoop) -> None:
    a, b = socketpair()
    calls = []

    def handler(fileobj: Any, mask: int) -> None:
        calls.append(mask)  # never reads: the fd stays readable
        if len(calls) == 3:
            io_loop.remove_handler(a)
            io_loop.stop()

    with a, b:
        b.send(b"x")
        io_loop.add_handler(a, handler, IOLoop.READ)
        io_loop.call_later(10, io_loop.stop)
        io_loop.start()
        assert len(calls) == 3


def test_update_handler_switches_events(io_loop: IOLoop) -> None:
    a, b = socketpair()
    seen: list[int] = []
    done: Future[None] = Future()

    def handler(fileobj: Any, mask: int) -> None:
        seen.append(mask)
        if len(seen) == 1:
            assert mask & IOLoop.WRITE and not mask & IOLoop.READ
            io_loop.update_handler(a, IOLoop.READ)  # nothing to read yet
            io_loop.call_later(0.05, b.send, b"now")
        else:
            assert mask & IOLoop.READ and not mask & IOLoop.WRITE
            io_loop.remove_handler(a)
            done.set_result(None)

    with a, b:
        io_loop.add_handler(a, handler, IOLoop.WRITE)
        wait_for(io_loop, done)
        assert len(seen) == 2


def test_update_handler_to_none_silences_the_fd(io_loop: IOLoop) -> None:
    a, b = socketpair()
    calls = []
    with a, b:
        b.send(b"unread")
        io_loop.add_handler(a, lambda f, m: calls.append(m), IOLoop.READ | IOLoop.WRITE)
        io_loop.update_handler(a, IOLoop.NONE)
        io_loop.call_later(0.05, io_loop.stop)
        io_loop.start()
        io_loop.remove_handler(a)
        assert calls == []


def test_remove_handler_stops_events(io_loop: IOLoop) -> None:
    a, b = socketpair()
    calls = []
    with a, b:
        io_loop.add_handler(a, lambda f, m: calls.append(m), IOLoop.READ)
        io_loop.remove_handler(a)
        b.send(b"x")
        io_loop.call_later(0.05, io_loop.stop)
        io_loop.start()
        assert calls == []


def test_remove_unknown_or_closed_fd_is_harmless(io_loop: IOLoop) -> None:
    io_loop.remove_handler(12345)
    a, b = socketpair()
    io_loop.add_handler(a, lambda f, m: None, IOLoop.READ)
    fd = a.fileno()
    a.close()  # wrong order, but must not break the loop
    b.close()
    io_loop.remove_handler(fd)
    assert io_loop.run_sync(lambda: "still running") == "still running"


def test_adding_an_fd_twice_is_an_error(io_loop: IOLoop) -> None:
    a, b = socketpair()
    with a, b:
        io_loop.add_handler(a, lambda f, m: None, IOLoop.READ)
        with pytest.raises(ValueError, match="twice"):
            io_loop.add_handler(a.fileno(), lambda f, m: None, IOLoop.WRITE)
        io_loop.remove_handler(a)


def test_handler_removing_another_fd_drops_its_pending_event(io_loop: IOLoop) -> None:
    """Both fds are ready in the same iteration; whichever handler runs first
    removes and closes the other, whose handler must then never run."""
    pair1, pair2 = socketpair(), socketpair()
    first, second = pair1[0], pair2[0]
    pair1[1].send(b"x")
    pair2[1].send(b"x")
    ran: list[socket.socket] = []

    def handler(sock: socket.socket, mask: int) -> None:
        ran.append(sock)
        other = second if sock is first else first
        io_loop.remove_handler(sock)
        io_loop.remove_handler(other)
        other.close()
        io_loop.stop()

    io_loop.add_handler(first, handler, IOLoop.READ)
    io_loop.add_handler(second, handler, IOLoop.READ)
    io_loop.call_later(10, io_loop.stop)
    io_loop.start()
    # Let another iteration go by: a stale event must not reach the handler.
    io_loop.run_sync(lambda: None)
    assert len(ran) == 1
    for s in (first, second, pair1[1], pair2[1]):
        s.close()


def test_stale_event_does_not_reach_a_new_handler_on_a_reused_fd(io_loop: IOLoop) -> None:
    """Both fds are ready in the same poll; whichever handler runs first
    removes and closes the other, and registers a new, idle socket that got
    the closed one's fd number. The closed fd's event, still in the batch,
    must not reach the new handler (nothing was ever sent to it); the new
    handler must still get the new socket's own readiness afterwards."""
    pair1, pair2 = socketpair(), socketpair()
    first, second = pair1[0], pair2[0]
    pair1[1].send(b"x")
    pair2[1].send(b"x")
    ran: list[socket.socket] = []
    newcomer: list[tuple[socket.socket, socket.socket]] = []
    newcomer_events: list[int] = []
    woken: Future[None] = Future()

    def on_newcomer(sock: socket.socket, mask: int) -> None:
        newcomer_events.append(mask)
        io_loop.remove_handler(sock)
        if not woken.done():
            woken.set_result(None)

    def handler(sock: socket.socket, mask: int) -> None:
        ran.append(sock)
        other = second if sock is first else first
        io_loop.remove_handler(sock)
        io_loop.remove_handler(other)
        number = other.fileno()
        other.close()
        new_a, new_b = socketpair()
        if new_a.fileno() != number:  # make sure the number is reused
            os.dup2(new_a.fileno(), number)
            new_a.close()
            new_a = socket.socket(fileno=number)
            new_a.setblocking(False)
        newcomer.append((new_a, new_b))
        io_loop.add_handler(new_a, on_newcomer, IOLoop.READ)
        io_loop.stop()

    io_loop.add_handler(first, handler, IOLoop.READ)
    io_loop.add_handler(second, handler, IOLoop.READ)
    io_loop.call_later(10, io_loop.stop)
    io_loop.start()
    try:
        assert len(ran) == 1 and len(newcomer) == 1
        new_a, new_b = newcomer[0]
        io_loop.run_sync(lambda: None)  # another iteration: still nothing for it
        assert newcomer_events == []
        new_b.send(b"hello")
        wait_for(io_loop, woken)
        assert len(newcomer_events) == 1 and newcomer_events[0] & IOLoop.READ
        assert new_a.recv(10) == b"hello"
    finally:
        for s in (first, second, pair1[1], pair2[1], *(s for p in newcomer for s in p)):
            s.close()


def test_handler_exception_is_logged_and_loop_goes_on(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = socketpair()

    def bad_handler(fileobj: Any, mask: int) -> None:
        io_loop.remove_handler(fileobj)
        raise ZeroDivisionError("handler failed")

    with a, b:
        b.send(b"x")
        io_loop.add_handler(a, bad_handler, IOLoop.READ)
        with caplog.at_level(logging.ERROR, logger="reactor.application"):
            io_loop.call_later(0.05, io_loop.stop)
            io_loop.start()
        assert io_loop.run_sync(lambda: 7) == 7
    assert any(r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records)


def test_fd_limit_is_a_clear_error_or_no_limit(io_loop: IOLoop) -> None:
    """Capability, not identity: a poller with ``max_fd`` refuses larger fds
    with a message naming FD_SETSIZE; one without watches them fine."""
    limit = getattr(getattr(io_loop, "_poller", None), "max_fd", None)
    target = (limit or 1024) + 76
    a, b = socketpair()
    high = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, target)
    high_sock = socket.socket(fileno=high)
    try:
        assert high >= 1024
        if limit is not None:
            with pytest.raises(ValueError, match="FD_SETSIZE"):
                io_loop.add_handler(high_sock, lambda f, m: None, IOLoop.READ)
            assert io_loop.run_sync(lambda: "alive") == "alive"
        else:
            b.send(b"x")
            _, mask = _first_event(io_loop, high_sock, IOLoop.READ)
            assert mask & IOLoop.READ
    finally:
        high_sock.close()
        a.close()
        b.close()


def test_close_all_fds_closes_registered_fds(reactor_backend: Any) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)
    a, b = socketpair()
    r, w = os.pipe()
    loop.add_handler(a, lambda f, m: None, IOLoop.READ)
    loop.add_handler(r, lambda f, m: None, IOLoop.READ)
    loop.close(all_fds=True)
    assert a.fileno() == -1  # the socket object was closed
    with pytest.raises(OSError):
        os.fstat(r)
    b.close()
    os.close(w)


def test_close_without_all_fds_leaves_them_open(reactor_backend: Any) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)
    a, b = socketpair()
    with a, b:
        loop.add_handler(a, lambda f, m: None, IOLoop.READ)
        loop.close()
        b.send(b"still open")
        assert a.recv(100) == b"still open"


def test_close_all_fds_leaves_asyncio_readers_open(reactor_backend: Any) -> None:
    """``close(all_fds=True)`` closes what was registered with add_handler,
    not the fds that asyncio code watches with ``asyncio_loop.add_reader``
    (those belong to that code, which closes them itself)."""
    loop = IOLoop(backend=reactor_backend, make_current=False)
    mine, mine_peer = socketpair()
    theirs, theirs_peer = socketpair()
    try:
        loop.add_handler(mine, lambda f, m: None, IOLoop.READ)
        loop.asyncio_loop.add_reader(theirs.fileno(), lambda: None)
        loop.close(all_fds=True)
        assert mine.fileno() == -1
        theirs_peer.send(b"still open")
        assert theirs.recv(100) == b"still open"
    finally:
        for s in (mine, mine_peer, theirs, theirs_peer):
            s.close()
