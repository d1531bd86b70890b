"""asyncio's TCP and unix-socket API on every backend: connections, servers, streams.

On select, poll, epoll and kqueue these run on the native loop's asyncio face
(``reactor.asyncio_view.NativeAsyncioLoop``, which borrows the standard
library's transports and servers); on asyncio and uvloop they show that the
bridge leaves asyncio's own loop alone. Every exchange goes over real
sockets on 127.0.0.1 (or a unix socket in a temporary directory); each test
is bounded by ``run_sync``'s timeout and waits on events, never on time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.conformance._asyncio_face import need, run
from tests.util import WAIT

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)


class Echo(asyncio.Protocol):
    """Server side: echoes what it gets; records its life."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        self.events.append("eof")
        return False  # close

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


class Collect(asyncio.Protocol):
    """Client side: collects bytes until ``want`` of them, then resolves."""

    def __init__(self, want: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self.want = want
        self.data = bytearray()
        self.full: asyncio.Future[bytes] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.paused = 0
        self.resumed = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= self.want and not self.full.done():
            self.full.set_result(bytes(self.data))

    def eof_received(self) -> bool:
        if not self.eof.done():
            self.eof.set_result(None)
        return True  # keep the write side open: half-close

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if not self.full.done():
            self.full.set_result(bytes(self.data))

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


async def close_all(protocols: list[Any]) -> None:
    """Close the transports of server-side ``protocols`` and wait until each
    has lost its connection (so no socket outlives the test)."""
    for protocol in protocols:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()
    for protocol in protocols:
        await asyncio.wait_for(protocol.lost, WAIT)


def recorded(kind: Callable[[], Any], into: list[Any]) -> Callable[[], Any]:
    """A protocol factory that appends each protocol it makes to ``into``."""

    def factory() -> Any:
        into.append(kind())
        return into[-1]

    return factory


# -- create_server / create_connection ------------------------------------------


def test_protocol_echo_and_transport_details(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers: list[Echo] = []

        def factory() -> Echo:
            servers.append(Echo())
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, client = await loop.create_connection(lambda: Collect(11), "127.0.0.1", port)
            assert transport.get_extra_info("peername") == ("127.0.0.1", port)
            assert transport.get_extra_info("sockname")[0] == "127.0.0.1"
            assert transport.get_extra_info("socket").family == socket.AF_INET
            # A transport's fd is its own: add_reader refuses it.
            fd = transport.get_extra_info("socket").fileno()
            with pytest.raises(RuntimeError):
                loop.add_reader(fd, print)
            transport.write(b"hello ")
            transport.writelines([b"wor", b"ld"])
            assert await asyncio.wait_for(client.full, WAIT) == b"hello world"
            assert transport.get_write_buffer_size() == 0
            # (A stdlib transport's repr asks its loop's selector.)
            assert type(transport).__name__ in repr(transport)
            transport.close()
            assert transport.is_closing()
            assert await asyncio.wait_for(client.lost, WAIT) is None
            assert await asyncio.wait_for(servers[0].lost, WAIT) is None
            assert servers[0].events == ["made", "eof", "lost"]

    run(io_loop, main)


def test_streams_readline_readexactly_drain_and_eof(io_loop: IOLoop) -> None:
    payload = os.urandom(1 << 20)

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            size = int(line)
            body = await reader.readexactly(size)
            writer.write(b"%d\n" % len(body))
            writer.write(body[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"%d\n" % len(payload))
            writer.write(payload)
            await writer.drain()  # 1 MiB: more than the kernel takes at once
            assert await reader.readline() == b"%d\n" % len(payload)
            assert await reader.readexactly(len(payload)) == payload[::-1]
            with pytest.raises(asyncio.IncompleteReadError) as raised:
                await reader.readexactly(1)
            assert raised.value.partial == b""
            assert reader.at_eof()
            writer.close()
            await writer.wait_closed()

    run(io_loop, main)


def test_create_connection_with_sock_and_local_addr(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        peers: list[Any] = []

        def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        async with server:
            address = server.sockets[0].getsockname()
            # local_addr: the client socket is bound there before it connects.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                local = probe.getsockname()
            transport, client = await loop.create_connection(Collect, *address, local_addr=local)
            assert transport.get_extra_info("sockname") == local
            await asyncio.wait_for(client.eof, WAIT)
            transport.close()
            # sock=: a socket connected by someone else.
            sock = socket.create_connection(address, timeout=WAIT)
            sock.setblocking(False)
            transport, client = await loop.create_connection(Collect, sock=sock)
            assert transport.get_extra_info("socket").fileno() == sock.fileno()
            await asyncio.wait_for(client.eof, WAIT)
            transport.close()
            assert peers == [local, sock.getsockname()]
            with pytest.raises(ValueError):
                await loop.create_connection(Collect, "127.0.0.1", 1, sock=sock)

    run(io_loop, main)


def test_create_connection_refused(io_loop: IOLoop) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused

        async def main() -> None:
            loop = asyncio.get_running_loop()
            with pytest.raises(ConnectionRefusedError):
                await loop.create_connection(Collect, "127.0.0.1", port)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)

        run(io_loop, main)


def test_happy_eyeballs_over_a_host_list(io_loop: IOLoop) -> None:
    """A name with two addresses, the first of which never answers.

    The first is 127.0.0.2 on a listener whose accept queue is full: Linux
    drops the SYNs, so a connect there hangs. With ``happy_eyeballs_delay``
    the second address (127.0.0.1, the real server) is tried after that
    delay and wins; ``interleave`` is accepted with it. The host list comes
    from the loop's resolver, given the name ``dual.test``: no resolver
    here knows a name with two loopback addresses.
    """
    if sys.platform != "linux":
        pytest.skip("relies on Linux dropping SYNs to a full accept queue")
    need(io_loop, "create_connection", "happy_eyeballs_delay")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            stalled = socket.socket()
            fillers: list[socket.socket] = []
            try:
                stalled.bind(("127.0.0.2", port))
                stalled.listen(0)
                # Fill the accept queue (blocking connects that complete),
                # until a connect attempt no longer does.
                for _ in range(8):
                    filler = socket.socket()
                    filler.setblocking(False)
                    fillers.append(filler)
                    if filler.connect_ex(("127.0.0.2", port)) not in (0, 115):  # EINPROGRESS
                        break
                infos = [
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                ]
                real_getaddrinfo = loop.getaddrinfo

                async def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
                    if host == "dual.test":
                        return infos
                    return await real_getaddrinfo(host, *args, **kwargs)

                loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
                try:
                    transport, _ = await loop.create_connection(
                        Collect, "dual.test", port, happy_eyeballs_delay=0.05, interleave=1
                    )
                finally:
                    del loop.getaddrinfo
                assert transport.get_extra_info("peername") == ("127.0.0.1", port)
                transport.close()
            finally:
                stalled.close()
                for filler in fillers:
                    filler.close()

    run(io_loop, main)


def test_create_server_on_a_host_list(io_loop: IOLoop) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echoes: list[Echo] = []
        server = await loop.create_server(recorded(Echo, echoes), ["127.0.0.1", "::1"], 0)
        async with server:
            families = sorted(s.family for s in server.sockets)
            assert families == [socket.AF_INET, socket.AF_INET6]
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                transport, client = await loop.create_connection(lambda: Collect(4), host, port)
                transport.write(b"ping")
                assert await asyncio.wait_for(client.full, WAIT) == b"ping"
                transport.close()
            await close_all(echoes)

    run(io_loop, main)


def test_create_server_reuse_port_and_backlog(io_loop: IOLoop) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT on this platform")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echoes: list[Echo] = []
        factory = recorded(Echo, echoes)
        first = await loop.create_server(factory, "127.0.0.1", 0, reuse_port=True, backlog=1)
        port = first.sockets[0].getsockname()[1]
        second = await loop.create_server(factory, "127.0.0.1", port, reuse_port=True, backlog=1)
        async with first, second:
            for server in (first, second):
                sock = server.sockets[0]
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
                assert sock.getsockname()[1] == port
            # Three clients at once through servers of backlog 1: each gets in.
            clients = [
                await loop.create_connection(lambda: Collect(3), "127.0.0.1", port)
                for _ in range(3)
            ]
            for i, (transport, _) in enumerate(clients):
                transport.write(b"%03d" % i)
            for i, (transport, client) in enumerate(clients):
                assert await asyncio.wait_for(client.full, WAIT) == b"%03d" % i
                transport.close()
            await close_all(echoes)
        # Without reuse_port the port is taken.
        taken = await loop.create_server(Echo, "127.0.0.1", 0)
        async with taken:
            with pytest.raises(OSError):
                await loop.create_server(
                    Echo, "127.0.0.1", taken.sockets[0].getsockname()[1], reuse_address=False
                )

    run(io_loop, main)


def test_start_serving_false_then_serve_forever(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        echoes: list[Echo] = []
        server = await loop.create_server(
            recorded(Echo, echoes), "127.0.0.1", 0, start_serving=False
        )
        port = server.sockets[0].getsockname()[1]
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):  # bound, not listening yet
            await loop.create_connection(Collect, "127.0.0.1", port)
        serving = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        assert server.is_serving()
        transport, client = await loop.create_connection(lambda: Collect(2), "127.0.0.1", port)
        transport.write(b"ok")
        assert await asyncio.wait_for(client.full, WAIT) == b"ok"
        transport.close()
        await close_all(echoes)
        serving.cancel()  # cancelling serve_forever closes the server
        with pytest.raises(asyncio.CancelledError):
            await serving
        assert not server.is_serving()
        await asyncio.wait_for(server.wait_closed(), WAIT)
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Collect, "127.0.0.1", port)

    run(io_loop, main)


def test_server_closed_with_a_connection_open(io_loop: IOLoop) -> None:
    """close() stops accepting; the open connection goes on until it ends,
    and wait_closed() returns once it has (on 3.11, as soon as the server
    is closed)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echoes: list[Echo] = []

        def factory() -> Echo:
            echoes.append(Echo())
            return echoes[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, client = await loop.create_connection(lambda: Collect(3), "127.0.0.1", port)
        transport.write(b"one")
        assert await asyncio.wait_for(client.full, WAIT) == b"one"
        server.close()
        assert not server.is_serving()
        closed = asyncio.ensure_future(server.wait_closed())
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Collect, "127.0.0.1", port)
        # The open connection still echoes.
        client.want, client.full = 6, loop.create_future()
        transport.write(b"two")
        assert await asyncio.wait_for(client.full, WAIT) == b"onetwo"
        if sys.version_info >= (3, 12):
            assert not closed.done()
        transport.close()
        await asyncio.wait_for(echoes[0].lost, WAIT)
        await asyncio.wait_for(closed, WAIT)

    run(io_loop, main)


# -- half-close, flow control, resets -----------------------------------------------


def test_half_close_write_eof_and_eof_received(io_loop: IOLoop) -> None:
    class Upper(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.data = b""

        def data_received(self, data: bytes) -> None:
            self.data += data

        def eof_received(self) -> bool:
            # The client has finished writing; answer, then close.
            self.transport.write(self.data.upper())
            self.transport.close()
            return True

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Upper, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, client = await loop.create_connection(Collect, "127.0.0.1", port)
            assert transport.can_write_eof()
            transport.write(b"half ")
            transport.write(b"closed")
            transport.write_eof()
            await asyncio.wait_for(client.eof, WAIT)
            assert bytes(client.data) == b"HALF CLOSED"
            transport.close()
            assert await asyncio.wait_for(client.lost, WAIT) is None

    run(io_loop, main)


def test_flow_control_with_a_slow_reader(io_loop: IOLoop) -> None:
    """The reader pauses reading: the writer's buffer fills past its high
    water mark (pause_writing); the reader resumes and takes everything
    (resume_writing). The writer writes until paused, bounded at 64 MiB."""
    chunk = os.urandom(64 * 1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writers: list[Collect] = []

        def factory() -> Collect:
            writers.append(Collect())
            return writers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader_transport, reader = await loop.create_connection(Collect, "127.0.0.1", port)
            reader_transport.pause_reading()
            assert not reader_transport.is_reading()
            while not (writers and writers[0].transport):
                await asyncio.sleep(0)
            writer = writers[0]
            assert writer.transport is not None
            writer.transport.set_write_buffer_limits(high=256 * 1024)
            sent = 0
            while not writer.paused and sent < 64 << 20:
                writer.transport.write(chunk)
                sent += len(chunk)
                await asyncio.sleep(0)
            assert writer.paused == 1, "the writer never paused"
            assert writer.transport.get_write_buffer_size() > 0
            assert len(reader.data) == 0  # nothing delivered while paused
            reader.want, reader.full = sent, loop.create_future()
            reader_transport.resume_reading()
            assert reader_transport.is_reading()
            data = await asyncio.wait_for(reader.full, WAIT)
            assert len(data) == sent and data[: len(chunk)] == chunk
            assert writer.resumed == 1
            assert writer.transport.get_write_buffer_size() == 0
            reader_transport.close()
            await close_all(writers)

    run(io_loop, main)


def test_connection_reset_mid_write(io_loop: IOLoop) -> None:
    """The peer resets the connection while the server has a full write
    buffer: connection_lost gets the OSError, nothing is logged as an
    error, and the server goes on serving."""
    chunk = b"x" * (64 * 1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writers: list[Collect] = []

        def factory() -> Collect:
            writers.append(Collect())
            return writers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            peer = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            while not (writers and writers[0].transport):
                await asyncio.sleep(0)
            writer = writers[0]
            assert writer.transport is not None
            sent = 0
            while not writer.paused and sent < 64 << 20:
                writer.transport.write(chunk)
                sent += len(chunk)
                await asyncio.sleep(0)
            assert writer.transport.get_write_buffer_size() > 0
            # SO_LINGER 0: close() sends a RST instead of a FIN.
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            peer.close()
            exc = await asyncio.wait_for(writer.lost, WAIT)
            assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
            # Still serving.
            transport, _ = await loop.create_connection(Collect, "127.0.0.1", port)
            transport.write(b"hi")
            while len(writers) < 2:
                await asyncio.sleep(0)
            assert await asyncio.wait_for(writers[1].full, WAIT) == b"hi"
            transport.close()
            await close_all(writers[1:])

    run(io_loop, main)


def test_a_thousand_concurrent_stream_connections(io_loop: IOLoop) -> None:
    """1,000 clients at once through asyncio.start_server, each echoed."""
    count = 1000
    max_fd = getattr(getattr(io_loop, "_poller", None), "max_fd", None)
    if max_fd is not None and max_fd < 2 * count + 64:
        pytest.skip(f"this poller watches fds below {max_fd} only; this needs {2 * count}")

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=count)
        async with server:
            port = server.sockets[0].getsockname()[1]

            async def client(i: int) -> bytes:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"%d\n" % i)
                line = await reader.readline()
                writer.close()
                await writer.wait_closed()
                return line

            lines = await asyncio.gather(*(client(i) for i in range(count)))
            assert lines == [b"%d\n" % i for i in range(count)]

    run(io_loop, main)


# -- unix sockets, accepted sockets, sendfile ----------------------------------------


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets on this platform")
def test_unix_server_and_connection(io_loop: IOLoop, tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(handle, path)
        async with server:
            assert server.sockets[0].family == socket.AF_UNIX
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"over a unix socket\n")
            assert await reader.readline() == b"OVER A UNIX SOCKET\n"
            writer.close()
            await writer.wait_closed()
            transport, client = await loop.create_unix_connection(lambda: Collect(3), path)
            assert transport.get_extra_info("peername") == path
            transport.write(b"ok\n")
            assert await asyncio.wait_for(client.full, WAIT) == b"OK\n"
            await asyncio.wait_for(client.eof, WAIT)  # the handler has closed its side
            transport.close()
            await asyncio.wait_for(client.lost, WAIT)

    run(io_loop, main)


def test_connect_accepted_socket(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            peer = socket.socket()
            peer.setblocking(False)
            with peer:
                connecting = loop.create_task(loop.sock_connect(peer, listener.getsockname()))
                accepted, _ = await loop.sock_accept(listener)
                await connecting
                transport, echo = await loop.connect_accepted_socket(Echo, accepted)
                await loop.sock_sendall(peer, b"accepted")
                got = b""
                while len(got) < 8:
                    got += await loop.sock_recv(peer, 100)
                assert got == b"accepted"
                transport.close()
                assert await asyncio.wait_for(echo.lost, WAIT) is None

    run(io_loop, main)


def test_sendfile_and_sock_sendfile_with_a_real_file(io_loop: IOLoop, tmp_path: Path) -> None:
    content = os.urandom(300 * 1024)
    path = tmp_path / "payload.bin"
    path.write_bytes(content)
    need(io_loop, "sendfile")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sinks: list[Collect] = []

        def factory() -> Collect:
            sinks.append(Collect(len(content) - 1000))
            return sinks[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, _ = await loop.create_connection(Collect, "127.0.0.1", port)
            with path.open("rb") as f:
                sent = await loop.sendfile(transport, f, offset=1000)
                assert sent == len(content) - 1000
                assert f.tell() == len(content)
            assert await asyncio.wait_for(sinks[0].full, WAIT) == content[1000:]
            transport.close()

            # sock_sendfile on a plain non-blocking socket, with a count.
            sock = socket.socket()
            sock.setblocking(False)
            with sock:
                await loop.sock_connect(sock, ("127.0.0.1", port))
                with path.open("rb") as f:
                    sent = await loop.sock_sendfile(sock, f, offset=0, count=len(content) - 1000)
                assert sent == len(content) - 1000
                assert await asyncio.wait_for(sinks[1].full, WAIT) == content[:-1000]
            await close_all(sinks)

    run(io_loop, main)
