"""reactor.netutil with real sockets: binding, accepting, resolving, TLS options.

Tests that touch the loop take ``io_loop`` and run on every backend. Sockets
are real, on 127.0.0.1 and ::1 (the IPv6 cases are skipped, with the reason,
on a machine that cannot bind ::1), and every one is closed: warnings are
errors in this suite, a leaked socket's ResourceWarning included.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import errno
import ipaddress
import itertools
import logging
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactor import gen, netutil
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.log import gen_log
from reactor.netutil import (
    DefaultExecutorResolver,
    DefaultLoopResolver,
    ExecutorResolver,
    OverrideResolver,
    Resolver,
    ThreadedResolver,
    add_accept_handler,
    bind_sockets,
    bind_unix_socket,
    is_valid_ip,
    ssl_options_to_context,
    ssl_wrap_socket,
)
from reactor.testing import ExpectLog
from tests.util import WAIT, wait_for


def _ipv6_missing() -> str | None:
    """Why this machine cannot do IPv6 on loopback, or None if it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        return f"this machine cannot bind ::1 ({e})"
    return None


IPV6_MISSING = _ipv6_missing()
needs_ipv6 = pytest.mark.skipif(IPV6_MISSING is not None, reason=f"no IPv6: {IPV6_MISSING}")


# -- helpers -------------------------------------------------------------------


class Accepted:
    """An ``add_accept_handler`` callback that keeps the connections.

    :attr:`enough` completes once ``expected`` connections have come.
    """

    def __init__(self, expected: int = 1) -> None:
        self.expected = expected
        self.connections: list[tuple[socket.socket, Any]] = []
        self.enough: Future[None] = Future()

    def __call__(self, connection: socket.socket, address: Any) -> None:
        self.connections.append((connection, address))
        if len(self.connections) >= self.expected and not self.enough.done():
            self.enough.set_result(None)

    def close(self) -> None:
        for connection, _ in self.connections:
            connection.close()


def connect(address: Any, family: int = socket.AF_INET) -> socket.socket:
    """A client connected to a listener on ``address`` (a blocking connect:
    the kernel completes it from the listen queue, no accept needed)."""
    if family == socket.AF_UNIX:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.settimeout(WAIT)
            client.connect(address)
        except BaseException:
            client.close()
            raise
        return client
    return socket.create_connection(address[:2], timeout=WAIT)


def run_iterations(io_loop: IOLoop, n: int = 10) -> None:
    """Run ``n`` loop iterations, each with a poll: what was ready got handled."""
    finished: Future[None] = Future()
    left = n

    def tick() -> None:
        nonlocal left
        left -= 1
        if left:
            io_loop.add_callback(tick)
        else:
            finished.set_result(None)

    io_loop.add_callback(tick)
    wait_for(io_loop, finished)


def drain_queue(listener: socket.socket) -> int:
    """Accept and close whatever is queued on ``listener``; return how many."""
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def assert_round_trip(client: socket.socket, server_side: socket.socket) -> None:
    client.sendall(b"ping")
    server_side.settimeout(WAIT)
    assert server_side.recv(4) == b"ping"
    server_side.sendall(b"pong")
    assert client.recv(4) == b"pong"


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """``closing(x)`` releases ``x`` at the end of the test, whatever happens,
    and returns it: sockets, lists of them, resolvers, :class:`Accepted` are
    closed; a function (add_accept_handler's remover) is called."""
    with contextlib.ExitStack() as stack:

        def register(x: Any) -> Any:
            for item in x if isinstance(x, list) else [x]:
                stack.callback(item.close if hasattr(item, "close") else item)
            return x

        yield register


# -- bind_sockets ----------------------------------------------------------------


def _listener_options(sock: socket.socket) -> dict[str, Any]:
    options = {
        "blocking": sock.getblocking(),
        "reuseaddr": bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),
        "listening": bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
    }
    if sock.family == socket.AF_INET6:
        options["v6only"] = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    return options


def serve_one(io_loop: IOLoop, listener: socket.socket, closing: Any) -> None:
    """Connect to ``listener``, accept through add_accept_handler, exchange data."""
    accepted = closing(Accepted())
    closing(add_accept_handler(listener, accepted))
    client = closing(connect(listener.getsockname(), listener.family))
    wait_for(io_loop, accepted.enough)
    [(server_side, address)] = accepted.connections
    if listener.family != socket.AF_UNIX:
        assert address[:2] == client.getsockname()[:2]
    assert_round_trip(client, server_side)


def test_bind_sockets_on_ipv4_loopback(io_loop: IOLoop, closing: Any) -> None:
    [listener] = closing(bind_sockets(0, "127.0.0.1"))
    assert listener.family == socket.AF_INET
    assert _listener_options(listener) == {"blocking": False, "reuseaddr": True, "listening": True}
    serve_one(io_loop, listener, closing)


@needs_ipv6
def test_bind_sockets_on_ipv6_loopback(io_loop: IOLoop, closing: Any) -> None:
    [listener] = closing(bind_sockets(0, "::1"))
    assert listener.family == socket.AF_INET6
    assert _listener_options(listener) == {
        "blocking": False,
        "reuseaddr": True,
        "listening": True,
        "v6only": True,
    }
    serve_one(io_loop, listener, closing)


@needs_ipv6
@pytest.mark.parametrize("address", [None, ""])
def test_bind_sockets_everywhere_is_ipv4_and_ipv6_on_one_port(
    io_loop: IOLoop, closing: Any, address: str | None
) -> None:
    listeners = closing(bind_sockets(0, address))
    assert [s.family for s in listeners] == [socket.AF_INET, socket.AF_INET6]
    v4, v6 = listeners
    assert v4.getsockname()[0] == "0.0.0.0" and v6.getsockname()[0] == "::"
    port = v4.getsockname()[1]
    assert v6.getsockname()[1] == port  # port 0: the IPv6 socket took the IPv4 one's port
    assert _listener_options(v6)["v6only"]  # which is why both could bind it
    # Each family's connection reaches its own socket.
    by_family = {socket.AF_INET: closing(Accepted()), socket.AF_INET6: closing(Accepted())}
    for listener in listeners:
        closing(add_accept_handler(listener, by_family[listener.family]))
    v4_client = closing(connect(("127.0.0.1", port)))
    v6_client = closing(connect(("::1", port), socket.AF_INET6))
    wait_for(io_loop, by_family[socket.AF_INET].enough)
    wait_for(io_loop, by_family[socket.AF_INET6].enough)
    assert_round_trip(v4_client, by_family[socket.AF_INET].connections[0][0])
    assert_round_trip(v6_client, by_family[socket.AF_INET6].connections[0][0])


def test_bind_sockets_family_limits_the_addresses(closing: Any) -> None:
    listeners = closing(bind_sockets(0, None, family=socket.AF_INET))
    assert [(s.family, s.getsockname()[0]) for s in listeners] == [(socket.AF_INET, "0.0.0.0")]


def test_bind_sockets_localhost_binds_each_address_on_one_port(closing: Any) -> None:
    listeners = closing(bind_sockets(0, "localhost"))
    expected = {
        (af, sockaddr[0])
        for af, _, _, _, sockaddr in socket.getaddrinfo(
            "localhost", 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        if IPV6_MISSING is None or af == socket.AF_INET
    }
    assert {(s.family, s.getsockname()[0]) for s in listeners} == expected
    assert len({s.getsockname()[1] for s in listeners}) == 1


def test_bind_sockets_explicit_port_in_use_raises(closing: Any) -> None:
    [taken] = closing(bind_sockets(0, "127.0.0.1"))
    with pytest.raises(OSError) as info:
        bind_sockets(taken.getsockname()[1], "127.0.0.1")
    assert info.value.errno == errno.EADDRINUSE


@needs_ipv6
def test_bind_sockets_failure_closes_the_sockets_already_bound(closing: Any) -> None:
    # Hold the port on IPv6 only: bind_sockets gets 0.0.0.0 (IPv4 goes
    # first), then fails on ::. The IPv4 socket must not outlive the error:
    # if it did, the port would still be taken on IPv4 below.
    [v6] = closing(bind_sockets(0, "::", family=socket.AF_INET6))
    port = v6.getsockname()[1]
    with pytest.raises(OSError) as info:
        bind_sockets(port, None)
    assert info.value.errno == errno.EADDRINUSE
    [v4] = closing(bind_sockets(port, "0.0.0.0"))
    assert v4.getsockname()[1] == port


def test_bind_sockets_port_zero_starts_over_when_the_port_is_taken_elsewhere(
    monkeypatch: pytest.MonkeyPatch, closing: Any
) -> None:
    """With port 0, the port the kernel gives the IPv4 socket may be taken on
    IPv6; bind_sockets then tries again with a new one. Which port the kernel
    picks is not ours to choose, so the collision is injected here."""
    real_bind_all = netutil._bind_all
    collisions = 3

    def colliding(*args: Any) -> list[socket.socket]:
        nonlocal collisions
        if collisions:
            collisions -= 1
            raise netutil._SharedPortTaken()
        return real_bind_all(*args)

    monkeypatch.setattr(netutil, "_bind_all", colliding)
    listeners = closing(bind_sockets(0, None))
    assert collisions == 0 and listeners
    collisions = netutil._PORT_ZERO_ATTEMPTS
    with pytest.raises(OSError, match="pass an explicit port") as info:
        bind_sockets(0, None)
    assert info.value.errno == errno.EADDRINUSE


def test_reuse_port_lets_two_sockets_share_a_port(io_loop: IOLoop, closing: Any) -> None:
    [first] = closing(bind_sockets(0, "127.0.0.1", reuse_port=True))
    port = first.getsockname()[1]
    [second] = closing(bind_sockets(port, "127.0.0.1", reuse_port=True))
    for listener in (first, second):
        assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    with pytest.raises(OSError) as info:  # without the option, the port is taken
        bind_sockets(port, "127.0.0.1")
    assert info.value.errno == errno.EADDRINUSE
    # The kernel spreads connections over both; between them, all are served.
    accepted = closing(Accepted(expected=20))
    closing(add_accept_handler(first, accepted))
    closing(add_accept_handler(second, accepted))
    clients = closing([connect(("127.0.0.1", port)) for _ in range(20)])
    wait_for(io_loop, accepted.enough)
    assert sorted(a for _, a in accepted.connections) == sorted(c.getsockname() for c in clients)


def test_reuse_port_where_the_platform_lacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform without SO_REUSEPORT, faked by removing the constant."""
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(ValueError, match="SO_REUSEPORT"):
        bind_sockets(0, "127.0.0.1", reuse_port=True)


# -- bind_unix_socket --------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path (AF_UNIX paths are ~100 bytes at most)."""
    path = tempfile.mkdtemp(prefix="reactor-")
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path)


def test_unix_socket_serves_with_its_mode(io_loop: IOLoop, closing: Any, short_dir: Path) -> None:
    path = str(short_dir / "s")
    listener = closing(bind_unix_socket(path))
    assert listener.family == socket.AF_UNIX and not listener.getblocking()
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    serve_one(io_loop, listener, closing)
    other = str(short_dir / "t")
    closing(bind_unix_socket(other, mode=0o660))
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o660


def test_unix_socket_replaces_a_stale_socket_file(
    io_loop: IOLoop, closing: Any, short_dir: Path
) -> None:
    path = str(short_dir / "s")
    with socket.socket(socket.AF_UNIX) as old:  # a server that died without unlinking
        old.bind(path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    listener = closing(bind_unix_socket(path))
    serve_one(io_loop, listener, closing)


def test_unix_socket_refuses_to_clobber_another_file(short_dir: Path) -> None:
    path = short_dir / "precious"
    path.write_text("data")
    with pytest.raises(ValueError, match="exists and is not a socket"):
        bind_unix_socket(str(path))
    assert path.read_text() == "data"


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the abstract namespace is Linux's"
)
def test_unix_socket_in_the_abstract_namespace(io_loop: IOLoop, closing: Any) -> None:
    name = f"\0reactor-test-{os.getpid()}-{id(io_loop)}"
    listener = closing(bind_unix_socket(name))
    assert listener.getsockname() == name.encode()
    serve_one(io_loop, listener, closing)


# -- add_accept_handler ------------------------------------------------------------


def test_accepts_200_connections_then_removal_stops_accepting(
    io_loop: IOLoop, closing: Any
) -> None:
    [listener] = closing(bind_sockets(0, "127.0.0.1", backlog=512))
    address = listener.getsockname()
    accepted = closing(Accepted(expected=200))
    remove = closing(add_accept_handler(listener, accepted))
    clients = closing([connect(address) for _ in range(200)])
    wait_for(io_loop, accepted.enough)
    assert sorted(a for _, a in accepted.connections) == sorted(c.getsockname() for c in clients)

    remove()
    late = closing(connect(address))
    run_iterations(io_loop)  # the listener is readable all along
    assert len(accepted.connections) == 200
    connection, peer = listener.accept()  # still queued, untouched
    closing(connection)
    assert peer == late.getsockname()
    remove()  # a second call does nothing


def test_accepts_a_bounded_number_per_event(io_loop: IOLoop, closing: Any) -> None:
    """A listener with 200 queued connections lets the loop run in between:
    at most ``_ACCEPTS_PER_EVENT`` are accepted per readiness event."""
    total = 200
    assert total > netutil._ACCEPTS_PER_EVENT
    [listener] = closing(bind_sockets(0, "127.0.0.1", backlog=512))
    closing([connect(listener.getsockname()) for _ in range(total)])
    accepted = closing(Accepted(expected=total))
    counts: list[int] = []

    def tick() -> None:  # once per loop iteration
        counts.append(len(accepted.connections))
        if not accepted.enough.done():
            io_loop.add_callback(tick)

    io_loop.add_callback(tick)
    closing(add_accept_handler(listener, accepted))
    wait_for(io_loop, accepted.enough)
    bursts = [b - a for a, b in itertools.pairwise([*counts, total]) if b > a]
    assert max(bursts) <= netutil._ACCEPTS_PER_EVENT
    assert len(bursts) >= 2


def test_remove_from_the_callback_ends_the_burst(io_loop: IOLoop, closing: Any) -> None:
    [listener] = closing(bind_sockets(0, "127.0.0.1"))
    closing([connect(listener.getsockname()) for _ in range(5)])
    accepted = closing(Accepted())

    def first_only(connection: socket.socket, address: Any) -> None:
        accepted(connection, address)
        remove()

    remove = add_accept_handler(listener, first_only)
    wait_for(io_loop, accepted.enough)
    run_iterations(io_loop)
    assert len(accepted.connections) == 1
    assert drain_queue(listener) == 4


class FlakyListener:
    """A real listening socket whose ``accept`` first raises ``errors``.

    The errors are injected: provoking EMFILE for real would starve the
    whole test process of file descriptors, and ECONNABORTED depends on a
    race with the peer. Readiness still comes from the real socket.
    """

    def __init__(self, sock: socket.socket, errors: list[OSError]) -> None:
        self.sock = sock
        self.errors = errors
        self.calls = 0
        self.times: list[float] = []
        self.first_call: Future[None] = Future()

    def fileno(self) -> int:
        return self.sock.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        self.calls += 1
        self.times.append(time.monotonic())
        if not self.first_call.done():
            self.first_call.set_result(None)
        if self.errors:
            raise self.errors.pop(0)
        return self.sock.accept()

    def __repr__(self) -> str:
        return f"<FlakyListener fd={self.fileno()}>"


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def test_aborted_and_failed_connections_are_skipped(
    io_loop: IOLoop, closing: Any, caplog: pytest.LogCaptureFixture
) -> None:
    [sock] = closing(bind_sockets(0, "127.0.0.1"))
    flaky = FlakyListener(
        sock, [ConnectionAbortedError(errno.ECONNABORTED, "aborted"), _error(errno.EPROTO)]
    )
    client = closing(connect(sock.getsockname()))
    accepted = closing(Accepted())
    with caplog.at_level(logging.WARNING):
        closing(add_accept_handler(flaky, accepted))  # type: ignore[arg-type]
        wait_for(io_loop, accepted.enough)
    assert accepted.connections[0][1] == client.getsockname()
    # In one event: two skipped, one accepted, then EAGAIN.
    assert flaky.calls == 4
    assert not caplog.records


def test_out_of_file_descriptors_is_logged_and_accepting_resumes(
    io_loop: IOLoop, closing: Any
) -> None:
    [sock] = closing(bind_sockets(0, "127.0.0.1"))
    flaky = FlakyListener(sock, [_error(errno.EMFILE), _error(errno.ENFILE)])
    client = closing(connect(sock.getsockname()))
    accepted = closing(Accepted())
    # One stretch out of descriptors is logged once: a warning when it
    # starts, an info line when accepting works again.
    with (
        ExpectLog(gen_log, r"accept\(\) on .* works again", level=logging.INFO) as works,
        ExpectLog(gen_log, r"accept\(\) on .* failed: .*; pausing accepting") as failed,
    ):
        closing(add_accept_handler(flaky, accepted))  # type: ignore[arg-type]
        wait_for(io_loop, accepted.enough)
    assert failed.logged == 1 and works.logged == 1
    assert accepted.connections[0][1] == client.getsockname()
    # Out of descriptors, accepting pauses (0.1 s, then twice that) instead
    # of retrying on every loop iteration. Half the pause is margin for clocks.
    assert flaky.calls == 4  # EMFILE, ENFILE, the connection, EAGAIN
    first_pause = flaky.times[1] - flaky.times[0]
    second_pause = flaky.times[2] - flaky.times[1]
    assert first_pause >= netutil._PAUSE_MIN / 2
    assert second_pause >= netutil._PAUSE_MIN


def test_remove_while_paused_stays_removed(io_loop: IOLoop, closing: Any) -> None:
    [sock] = closing(bind_sockets(0, "127.0.0.1"))
    flaky = FlakyListener(sock, [_error(errno.EMFILE)])
    closing(connect(sock.getsockname()))
    accepted = closing(Accepted())
    with ExpectLog(gen_log, r"accept\(\) on .* failed"):
        remove = add_accept_handler(flaky, accepted)  # type: ignore[arg-type]
        wait_for(io_loop, flaky.first_call)
    remove()
    # Run well past the pause (absence is all there is to wait for).
    slept: Future[None] = Future()
    io_loop.call_later(netutil._PAUSE_MIN * 10, slept.set_result, None)
    wait_for(io_loop, slept)
    assert flaky.calls == 1 and not accepted.connections
    assert drain_queue(sock) == 1


def test_remove_after_the_socket_is_closed(io_loop: IOLoop, closing: Any) -> None:
    [listener] = bind_sockets(0, "127.0.0.1")
    remove = add_accept_handler(listener, Accepted())
    listener.close()
    remove()  # finds the handler by its fd number, not the closed socket
    [fresh] = closing(bind_sockets(0, "127.0.0.1"))  # may reuse the fd number
    serve_one(io_loop, fresh, closing)


# -- is_valid_ip ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "valid"),
    [
        ("127.0.0.1", True),
        ("4.4.4.4", True),
        ("::1", True),
        ("2620:0:1cfe:face:b00c::3", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", False),  # a name, and never looked up
        ("www.example.com", False),
        ("", False),
        ("\x00", False),
        ("127.0.0.1\x00junk", False),
        ("4.4.4.4<", False),
        ("1.2.3.4.5", False),
        ("1.2.3.256", False),
        ("a" * 100, False),  # over the IDNA label limit: UnicodeError inside
    ],
)
def test_is_valid_ip(ip: str, valid: bool) -> None:
    assert is_valid_ip(ip) is valid


# -- resolvers -----------------------------------------------------------------------

RESOLVERS: dict[str, Callable[[], Resolver]] = {
    "executor": DefaultExecutorResolver,
    "loop": DefaultLoopResolver,
    "threaded": ThreadedResolver,
    "explicit-executor": lambda: ExecutorResolver(
        concurrent.futures.ThreadPoolExecutor(2), close_executor=True
    ),
}


@pytest.fixture(params=list(RESOLVERS))
def resolver(request: pytest.FixtureRequest) -> Iterator[Resolver]:
    made = RESOLVERS[request.param]()
    try:
        yield made
    finally:
        made.close()


async def test_resolver_resolves_localhost_and_literals(
    io_loop: IOLoop, resolver: Resolver
) -> None:
    localhost = await resolver.resolve("localhost", 8080)
    assert (socket.AF_INET, ("127.0.0.1", 8080)) in localhost
    assert all(ipaddress.ip_address(addr[0]).is_loopback for _, addr in localhost)
    assert await resolver.resolve("127.0.0.1", 80) == [(socket.AF_INET, ("127.0.0.1", 80))]
    only_v4 = await resolver.resolve("localhost", 80, socket.AF_INET)
    assert only_v4 and all(af == socket.AF_INET for af, _ in only_v4)
    with pytest.raises(OSError):  # an IPv4 literal has no IPv6 address
        await resolver.resolve("127.0.0.1", 80, socket.AF_INET6)


@needs_ipv6
async def test_resolver_resolves_ipv6_literals(io_loop: IOLoop, resolver: Resolver) -> None:
    [(af, address)] = await resolver.resolve("::1", 443)
    assert af == socket.AF_INET6 and address[:2] == ("::1", 443)


def test_resolve_before_the_loop_runs(io_loop: IOLoop, resolver: Resolver) -> None:
    future = resolver.resolve("127.0.0.1", 80)
    assert wait_for(io_loop, future) == [(socket.AF_INET, ("127.0.0.1", 80))]


class Gate:
    """Stands in for ``socket.getaddrinfo``: holds every lookup until opened.

    A resolver that blocked the loop would hold the loop too, so the timer
    that opens the gate would never fire; the wait is bounded so that such a
    resolver fails the test instead of hanging it.
    """

    def __init__(self) -> None:
        self.real = socket.getaddrinfo
        self.opened = threading.Event()
        self.threads: list[int] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        if not self.opened.wait(WAIT / 4):
            raise TimeoutError("the gate was never opened: the loop did not run")
        return self.real(*args, **kwargs)


async def test_resolver_does_not_block_the_loop(
    io_loop: IOLoop, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate()
    monkeypatch.setattr(socket, "getaddrinfo", gate)
    ticks = 0
    timer: object = None

    def tick() -> None:  # a timer that must keep firing during the lookup
        nonlocal ticks, timer
        ticks += 1
        if ticks == 3:
            gate.opened.set()
        timer = io_loop.call_later(0.005, tick)

    timer = io_loop.call_later(0.005, tick)
    try:
        future = resolver.resolve("localhost", 80)
        assert not future.done()
        result = await future
    finally:
        gate.opened.set()
        io_loop.remove_timeout(timer)
    assert (socket.AF_INET, ("127.0.0.1", 80)) in result
    if not gate.threads:
        pytest.skip(
            "this loop's getaddrinfo does not go through socket.getaddrinfo "
            "(uvloop resolves in libuv's thread pool), so the gate could not hold it"
        )
    assert ticks >= 3
    assert threading.get_ident() not in gate.threads


def test_resolver_results_connect(io_loop: IOLoop, closing: Any, resolver: Resolver) -> None:
    [listener] = closing(bind_sockets(0, "127.0.0.1"))
    port = listener.getsockname()[1]
    results = wait_for(io_loop, resolver.resolve("localhost", port, socket.AF_INET))
    accepted = closing(Accepted())
    closing(add_accept_handler(listener, accepted))
    family, address = results[0]
    client = closing(socket.socket(family, socket.SOCK_STREAM))
    client.settimeout(WAIT)
    client.connect(address)
    wait_for(io_loop, accepted.enough)
    assert_round_trip(client, accepted.connections[0][0])


class RecordingResolver(Resolver):
    """Answers at once with what it was asked, and remembers being closed."""

    def __init__(self) -> None:
        self.closed = False

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Any]]]:
        future: Future[list[tuple[int, Any]]] = Future()
        future.set_result([(family, (host, port))])
        return future

    def close(self) -> None:
        self.closed = True


def test_override_resolver_tries_the_most_specific_key_first(io_loop: IOLoop) -> None:
    inner = RecordingResolver()
    resolver = OverrideResolver(
        inner,
        {
            "example.test": "127.0.0.2",
            ("example.test", 443): ("127.0.0.3", 8443),
            ("example.test", 443, socket.AF_INET6): ("::1", 9443),
        },
    )

    def asked(host: str, port: int, family: int = socket.AF_UNSPEC) -> Any:
        return wait_for(io_loop, resolver.resolve(host, port, family))[0]  # type: ignore[arg-type]

    assert asked("example.test", 80) == (socket.AF_UNSPEC, ("127.0.0.2", 80))
    assert asked("example.test", 443) == (socket.AF_UNSPEC, ("127.0.0.3", 8443))
    assert asked("example.test", 443, socket.AF_INET) == (socket.AF_INET, ("127.0.0.3", 8443))
    assert asked("example.test", 443, socket.AF_INET6) == (socket.AF_INET6, ("::1", 9443))
    assert asked("other.test", 443) == (socket.AF_UNSPEC, ("other.test", 443))
    resolver.close()
    assert inner.closed


def test_override_resolver_reaches_a_real_server(
    io_loop: IOLoop, closing: Any, resolver: Resolver
) -> None:
    [listener] = closing(bind_sockets(0, "127.0.0.1"))
    port = listener.getsockname()[1]
    override = OverrideResolver(resolver, {("service.test", 80): ("127.0.0.1", port)})
    [(family, address)] = wait_for(io_loop, override.resolve("service.test", 80, socket.AF_INET))
    assert (family, address) == (socket.AF_INET, ("127.0.0.1", port))
    serve_one(io_loop, listener, closing)


@pytest.fixture
def restore_resolver_configuration() -> Iterator[None]:
    saved = Resolver._configured, Resolver._configured_kwargs
    try:
        yield
    finally:
        Resolver._configured, Resolver._configured_kwargs = saved


@pytest.mark.usefixtures("restore_resolver_configuration")
def test_resolver_configure_chooses_what_resolver_builds() -> None:
    Resolver.configure(None)
    assert Resolver.configured_class() is DefaultExecutorResolver
    assert type(Resolver()) is DefaultExecutorResolver

    Resolver.configure("reactor.netutil.DefaultLoopResolver")
    assert type(Resolver()) is DefaultLoopResolver

    inner = RecordingResolver()
    Resolver.configure(OverrideResolver, resolver=inner, mapping={"a.test": "127.0.0.1"})
    built = Resolver()
    assert type(built) is OverrideResolver
    assert built.resolver is inner and built.mapping == {"a.test": "127.0.0.1"}
    overridden: Any = Resolver(mapping={})  # type: ignore[call-arg]
    assert overridden.mapping == {}  # call arguments win over configured ones
    # Naming an implementation builds that one, without the configured arguments.
    assert type(DefaultExecutorResolver()) is DefaultExecutorResolver
    assert isinstance(ThreadedResolver(), ExecutorResolver)

    Resolver.configure(None)
    assert type(Resolver()) is DefaultExecutorResolver


@pytest.mark.usefixtures("restore_resolver_configuration")
def test_resolver_configure_rejects_what_is_not_a_resolver() -> None:
    with pytest.raises(TypeError, match="Resolver subclass"):
        Resolver.configure(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Resolver subclass"):
        Resolver.configure("reactor.ioloop.IOLoop")
    with pytest.raises(TypeError, match="interface"):
        Resolver.configure(Resolver)
    with pytest.raises(ImportError):
        Resolver.configure("reactor.no_such_module.Resolver")
    with pytest.raises(ImportError, match="import path"):
        Resolver.configure("Resolver")
    assert Resolver.configured_class() is DefaultExecutorResolver  # nothing changed


# -- TLS -----------------------------------------------------------------------------


def _certificate_with_cryptography(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _certificate_with_openssl(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("making a test certificate needs the cryptography package or openssl")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-nodes", "-days", "1",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key_path), "-out", str(cert_path),
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert_path, key_path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(certfile, keyfile)``: a self-signed certificate for localhost, made now."""
    directory = tmp_path_factory.mktemp("tls")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        cert_path, key_path = _certificate_with_openssl(directory)
    else:
        cert_path, key_path = _certificate_with_cryptography(directory)
    return str(cert_path), str(key_path)


def handshake(io_loop: IOLoop, sock: ssl.SSLSocket) -> Future[None]:
    """Drive a non-blocking TLS handshake on the loop."""
    done: Future[None] = Future()

    def step(_fd: Any, _events: int) -> None:
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            io_loop.update_handler(sock, IOLoop.READ)
            return
        except ssl.SSLWantWriteError:
            io_loop.update_handler(sock, IOLoop.WRITE)
            return
        except OSError as e:
            io_loop.remove_handler(sock)
            done.set_exception(e)
            return
        io_loop.remove_handler(sock)
        done.set_result(None)

    io_loop.add_handler(sock, step, IOLoop.READ | IOLoop.WRITE)
    return done


def handshakes(io_loop: IOLoop, *socks: ssl.SSLSocket) -> None:
    """Run the handshakes of both ends of a connection to completion."""
    wait_for(io_loop, gen.multi([handshake(io_loop, sock) for sock in socks]))


def receive(io_loop: IOLoop, sock: ssl.SSLSocket, size: int) -> Future[bytes]:
    """Read exactly ``size`` bytes from a non-blocking TLS socket on the loop."""
    done: Future[bytes] = Future()
    data = bytearray()

    def read(_fd: Any, _events: int) -> None:
        while len(data) < size:
            try:
                chunk = sock.recv(size - len(data))
            except ssl.SSLWantReadError:
                return
            if not chunk:
                break
            data.extend(chunk)
        io_loop.remove_handler(sock)
        done.set_result(bytes(data))

    io_loop.add_handler(sock, read, IOLoop.READ)
    return done


def tls_pair(
    io_loop: IOLoop,
    closing: Any,
    server_options: dict[str, Any] | ssl.SSLContext,
    client_options: dict[str, Any] | ssl.SSLContext,
    server_hostname: str,
) -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    """A real TCP connection on 127.0.0.1, wrapped with ssl_wrap_socket on
    both ends (handshake not done yet)."""
    [listener] = closing(bind_sockets(0, "127.0.0.1"))
    accepted = closing(Accepted())
    closing(add_accept_handler(listener, accepted))
    raw_client = closing(connect(listener.getsockname()))
    wait_for(io_loop, accepted.enough)
    raw_server = accepted.connections[0][0]
    raw_client.setblocking(False)
    raw_server.setblocking(False)
    server = closing(
        ssl_wrap_socket(raw_server, server_options, server_side=True, do_handshake_on_connect=False)
    )
    client = closing(
        ssl_wrap_socket(
            raw_client,
            client_options,
            server_hostname=server_hostname,
            server_side=False,
            do_handshake_on_connect=False,
        )
    )
    return server, client


def test_ssl_options_make_contexts_that_talk(
    io_loop: IOLoop, closing: Any, certificate: tuple[str, str]
) -> None:
    certfile, keyfile = certificate
    server_context = ssl_options_to_context(
        {"certfile": certfile, "keyfile": keyfile}, server_side=True
    )
    assert server_context.protocol == ssl.PROTOCOL_TLS_SERVER
    client_options = {"ca_certs": certfile, "cert_reqs": ssl.CERT_REQUIRED}
    client_context = ssl_options_to_context(client_options, server_side=False)
    assert client_context.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert client_context.verify_mode == ssl.CERT_REQUIRED and client_context.check_hostname
    for context in (server_context, client_context):
        assert context.options & ssl.OP_NO_COMPRESSION

    names: list[str | None] = []

    def record_sni(_sock: Any, name: str | None, _context: Any) -> None:
        names.append(name)

    server_context.sni_callback = record_sni
    server, client = tls_pair(io_loop, closing, server_context, client_options, "localhost")
    handshakes(io_loop, server, client)
    assert names == ["localhost"]  # SNI sent
    peer = client.getpeercert()
    assert peer is not None and ("DNS", "localhost") in peer["subjectAltName"]
    client.send(b"hello over tls")
    assert wait_for(io_loop, receive(io_loop, server, 14)) == b"hello over tls"
    server.send(b"hi")
    assert wait_for(io_loop, receive(io_loop, client, 2)) == b"hi"


def test_tls_client_rejects_the_wrong_host_name(
    io_loop: IOLoop, closing: Any, certificate: tuple[str, str]
) -> None:
    certfile, keyfile = certificate
    server_options = {"certfile": certfile, "keyfile": keyfile}
    client_options = {"ca_certs": certfile, "cert_reqs": ssl.CERT_REQUIRED}
    server, client = tls_pair(io_loop, closing, server_options, client_options, "wrong.test")
    server_done = handshake(io_loop, server)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"wrong\.test"):
        wait_for(io_loop, handshake(io_loop, client))
    with pytest.raises(OSError):  # the client's alert, or its hang-up
        wait_for(io_loop, server_done)


def test_tls_client_without_verification(
    io_loop: IOLoop, closing: Any, certificate: tuple[str, str]
) -> None:
    certfile, keyfile = certificate
    client_context = ssl_options_to_context({"cert_reqs": ssl.CERT_NONE}, server_side=False)
    assert client_context.verify_mode == ssl.CERT_NONE and not client_context.check_hostname
    server, client = tls_pair(
        io_loop, closing, {"certfile": certfile, "keyfile": keyfile}, client_context, "wrong.test"
    )
    handshakes(io_loop, server, client)


def test_ssl_options_to_context_passes_contexts_and_rejects_the_rest() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert ssl_options_to_context(context) is context
    assert ssl_options_to_context(context, server_side=True) is context
    with pytest.raises(ValueError, match=r"unknown ssl_options \['certfle'\]"):
        ssl_options_to_context({"certfle": "x.pem"}, server_side=True)
    with pytest.raises(TypeError, match=r"dict or an ssl\.SSLContext"):
        ssl_options_to_context([("certfile", "x.pem")], server_side=True)  # type: ignore[arg-type]
    explicit = ssl_options_to_context({"ssl_version": ssl.PROTOCOL_TLS_CLIENT})
    assert explicit.protocol == ssl.PROTOCOL_TLS_CLIENT  # no warning: the version is given
    ciphers = ssl_options_to_context({"ciphers": "ECDHE+AESGCM"}, server_side=True)
    assert all("ECDHE" in c["name"] for c in ciphers.get_ciphers() if c["protocol"] != "TLSv1.3")


def test_ssl_options_to_context_without_a_side_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning) as warned:
        context = ssl_options_to_context({})
    # Ours names the fix and points at the caller; the ssl module's follows.
    assert "pass server_side=True for a server or False" in str(warned[0].message)
    assert warned[0].filename == __file__
    assert context.protocol == ssl.PROTOCOL_TLS
