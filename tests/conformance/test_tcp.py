"""TCPServer and TCPClient on every backend, with real sockets and real TLS."""

from __future__ import annotations

import datetime
import socket
import ssl
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, SSLIOStream, StreamClosedError
from reactor.log import app_log
from reactor.netutil import Resolver, bind_sockets
from reactor.tcpclient import TCPClient
from reactor.tcpserver import TCPServer
from reactor.testing import ExpectLog


class EchoServer(TCPServer):
    """Echoes lines; "boom" makes handle_stream fail (it must be logged)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.addresses: list[Any] = []
        self.streams: list[IOStream] = []

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.addresses.append(address)
        self.streams.append(stream)
        try:
            while True:
                line = await stream.read_until(b"\n")
                if line == b"boom\n":
                    raise RuntimeError("handler failed on purpose")
                await stream.write(line)
        except StreamClosedError:
            pass
        finally:
            stream.close()


def _listen(server: TCPServer, address: str = "127.0.0.1") -> int:
    [sock] = bind_sockets(0, address)
    server.add_sockets([sock])
    return int(sock.getsockname()[1])


async def _echo(stream: IOStream, payload: bytes) -> bytes:
    await stream.write(payload)
    return await stream.read_until(b"\n")


async def test_echo_round_trip(io_loop: IOLoop) -> None:
    server = EchoServer()
    port = _listen(server)
    client = TCPClient()
    try:
        stream = await client.connect("127.0.0.1", port)
        assert await _echo(stream, b"hello\n") == b"hello\n"
        assert server.addresses[0][0] == "127.0.0.1"
        assert stream.socket.getsockname()[1] == server.addresses[0][1]
        stream.close()
    finally:
        server.stop()
        client.close()


async def test_handle_stream_failure_is_logged_and_server_goes_on(io_loop: IOLoop) -> None:
    server = EchoServer()
    port = _listen(server)
    client = TCPClient()
    try:
        with ExpectLog(app_log, "Error in handle_stream") as expectation:
            first = await client.connect("127.0.0.1", port)
            await first.write(b"boom\n")
            with pytest.raises(StreamClosedError):
                await first.read_until(b"\n")
            first.close()
            # The failure is logged when the server sees its future done,
            # an iteration or two after the connection closed.
            for _ in range(200):
                if expectation.logged:
                    break
                await gen.sleep(0.005)
        second = await client.connect("127.0.0.1", port)
        assert await _echo(second, b"still serving\n") == b"still serving\n"
        second.close()
    finally:
        server.stop()
        client.close()


async def test_stop_closes_the_listening_sockets(io_loop: IOLoop) -> None:
    server = EchoServer()
    port = _listen(server)
    server.stop()
    server.stop()  # idempotent
    client = TCPClient()
    try:
        with pytest.raises((StreamClosedError, OSError)):
            await client.connect("127.0.0.1", port)
    finally:
        client.close()


async def test_bind_then_start_in_one_process(io_loop: IOLoop) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = EchoServer()
    server.bind(port, address="127.0.0.1")
    server.start(1)
    client = TCPClient()
    try:
        stream = await client.connect("127.0.0.1", port)
        assert await _echo(stream, b"started\n") == b"started\n"
        stream.close()
    finally:
        server.stop()
        client.close()


async def test_tls_server_and_client(io_loop: IOLoop, tls_certificate: Any) -> None:
    server = EchoServer(ssl_options=tls_certificate.server_context())
    port = _listen(server)
    client = TCPClient()
    try:
        stream = await client.connect(
            "localhost",
            port,
            af=socket.AF_INET,
            ssl_options=tls_certificate.client_context(),
        )
        assert isinstance(stream, SSLIOStream)
        assert await _echo(stream, b"secret\n") == b"secret\n"
        stream.close()
    finally:
        server.stop()
        client.close()


async def test_tls_dict_options_are_checked_up_front(
    io_loop: IOLoop, tls_certificate: Any, tmp_path: Any
) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        TCPServer(ssl_options={"certfile": str(tmp_path / "missing.pem")})
    server = EchoServer(
        ssl_options={
            "certfile": str(tls_certificate.cert_file),
            "keyfile": str(tls_certificate.key_file),
        }
    )
    port = _listen(server)
    client = TCPClient()
    try:
        stream = await client.connect(
            "127.0.0.1", port, ssl_options=tls_certificate.client_context()
        )
        assert await _echo(stream, b"dict options\n") == b"dict options\n"
        stream.close()
    finally:
        server.stop()
        client.close()


async def test_tls_client_rejects_a_certificate_it_does_not_trust(
    io_loop: IOLoop, tls_certificate: Any
) -> None:
    server = EchoServer(ssl_options=tls_certificate.server_context())
    port = _listen(server)
    client = TCPClient()
    try:
        untrusting = ssl.create_default_context()  # the system CAs only
        with pytest.raises((ssl.SSLError, StreamClosedError)):
            await client.connect("localhost", port, af=socket.AF_INET, ssl_options=untrusting)
    finally:
        server.stop()
        client.close()


def test_many_concurrent_connections(io_loop: IOLoop) -> None:
    """1,000 connections at once through one server. A backend that can only
    watch fds below FD_SETSIZE (select) gets as many as it can hold, client
    and server ends both living in this process; the fd limit itself is
    tested in test_handlers and test_pollers. (Bounded by 60 s, not the
    default 5: a loaded 2-core CI machine runs 2,000 sockets slower.)"""
    io_loop.run_sync(_many_concurrent_connections, timeout=60)


async def _many_concurrent_connections() -> None:
    io_loop = IOLoop.current()
    limit = getattr(getattr(io_loop, "_poller", None), "max_fd", None)
    count = 1000 if limit is None else (limit - 128) // 2
    server = EchoServer()
    port = _listen(server)
    client = TCPClient()
    streams: list[IOStream] = []
    try:

        async def one(i: int) -> bytes:
            stream = await client.connect("127.0.0.1", port)
            streams.append(stream)
            return await _echo(stream, b"%d\n" % i)

        replies = await gen.multi([one(i) for i in range(count)])
        assert replies == [b"%d\n" % i for i in range(count)]
        assert len(server.streams) == count
    finally:
        for stream in streams:
            stream.close()
        server.stop()
        client.close()


class _ScriptedResolver(Resolver):
    """Resolves every name to a fixed list of (family, address); None: never."""

    def __init__(self, addrinfo: list[tuple[int, Any]] | None) -> None:
        self.addrinfo = addrinfo

    def resolve(self, host: str, port: int, family: int = socket.AF_UNSPEC) -> Future[Any]:
        f: Future[Any] = Future()
        if self.addrinfo is not None:
            f.set_result(self.addrinfo)
        return f

    def close(self) -> None:
        pass


def _refused_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


async def test_happy_eyeballs_falls_back_to_the_other_family(io_loop: IOLoop) -> None:
    """The first family's addresses are refused; the other family's works."""
    server = EchoServer()
    port = _listen(server)
    refused = _refused_port()
    addrinfo = [
        (socket.AF_INET6, ("::1", refused, 0, 0)),
        (socket.AF_INET6, ("::1", refused, 0, 0)),
        (socket.AF_INET, ("127.0.0.1", port)),
    ]
    client = TCPClient(resolver=_ScriptedResolver(addrinfo))
    try:
        stream = await client.connect("anything.test", port, timeout=5)
        assert stream.socket.family == socket.AF_INET
        assert await _echo(stream, b"fallback\n") == b"fallback\n"
        stream.close()
    finally:
        server.stop()
        client.close()


async def test_all_addresses_refused_is_the_last_error(io_loop: IOLoop) -> None:
    refused = _refused_port()
    client = TCPClient(resolver=_ScriptedResolver([(socket.AF_INET, ("127.0.0.1", refused))]))
    try:
        with pytest.raises(StreamClosedError) as info:
            await client.connect("anything.test", refused, timeout=5)
        assert isinstance(info.value.real_error, ConnectionRefusedError)
    finally:
        client.close()


async def test_connect_timeout_covers_resolution(io_loop: IOLoop) -> None:
    client = TCPClient(resolver=_ScriptedResolver(None))
    try:
        with pytest.raises(TimeoutError):
            await client.connect("slow.test", 1, timeout=datetime.timedelta(milliseconds=50))
    finally:
        client.close()


async def test_source_port_and_ip(io_loop: IOLoop) -> None:
    server = EchoServer()
    port = _listen(server)
    wanted = _refused_port()  # a free port to use as our source
    client = TCPClient()
    try:
        stream = await client.connect("127.0.0.1", port, source_ip="127.0.0.1", source_port=wanted)
        assert stream.socket.getsockname() == ("127.0.0.1", wanted)
        stream.close()
    finally:
        server.stop()
        client.close()
