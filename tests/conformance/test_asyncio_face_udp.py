"""asyncio's UDP on every backend: datagram endpoints and the sock_*to/from calls.

Real datagrams over 127.0.0.1; each wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.conformance._asyncio_face import run
from tests.util import WAIT

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)


class Datagrams(asyncio.DatagramProtocol):
    """Queues what it receives; an echo server if ``echo``."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.received: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.echo:
            self.transport.sendto(data.upper(), addr)
        self.received.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def test_datagram_endpoints_send_and_receive(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server_transport, server = await loop.create_datagram_endpoint(
            lambda: Datagrams(echo=True), local_addr=("127.0.0.1", 0)
        )
        address = server_transport.get_extra_info("sockname")
        client_transport, client = await loop.create_datagram_endpoint(
            Datagrams, remote_addr=address
        )
        assert client_transport.get_extra_info("peername") == address
        client_address = client_transport.get_extra_info("sockname")
        for word in (b"one", b"two", b"three"):
            client_transport.sendto(word)
        got = [await asyncio.wait_for(client.received.get(), WAIT) for _ in range(3)]
        assert got == [(b"ONE", address), (b"TWO", address), (b"THREE", address)]
        seen = [await asyncio.wait_for(server.received.get(), WAIT) for _ in range(3)]
        assert seen == [(w, client_address) for w in (b"one", b"two", b"three")]
        # An unconnected endpoint sends to whoever it names.
        other_transport, other = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0)
        )
        other_transport.sendto(b"hey", address)
        assert (await asyncio.wait_for(other.received.get(), WAIT))[0] == b"HEY"
        for transport, protocol in (
            (client_transport, client),
            (other_transport, other),
            (server_transport, server),
        ):
            transport.close()
            assert await asyncio.wait_for(protocol.lost, WAIT) is None

    run(io_loop, main)


def test_datagram_to_a_closed_port_reports_error_received(io_loop: IOLoop) -> None:
    """A connected UDP socket hears of the ICMP port unreachable its
    datagram caused: error_received, and the endpoint stays open."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()
        transport, client = await loop.create_datagram_endpoint(Datagrams, remote_addr=closed)
        transport.sendto(b"anyone?")
        error = await asyncio.wait_for(client.errors.get(), WAIT)
        assert isinstance(error, ConnectionRefusedError)
        assert not transport.is_closing()
        transport.close()
        await asyncio.wait_for(client.lost, WAIT)

    run(io_loop, main)


def test_sock_sendto_recvfrom_and_recvfrom_into(io_loop: IOLoop) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with a, b:
            for s in (a, b):
                s.bind(("127.0.0.1", 0))
                s.setblocking(False)
            a.sendto(b"probe", b.getsockname())
            try:
                assert await loop.sock_recvfrom(b, 100) == (b"probe", a.getsockname())
            except NotImplementedError:  # uvloop has the method, raising this
                pytest.skip(f"{type(loop).__name__}.sock_recvfrom() is not implemented")
            # recvfrom waits for a datagram that is not there yet.
            receiving = asyncio.ensure_future(loop.sock_recvfrom(b, 100))
            await asyncio.sleep(0)
            assert not receiving.done()
            assert await loop.sock_sendto(a, b"first", b.getsockname()) == 5
            assert await asyncio.wait_for(receiving, WAIT) == (b"first", a.getsockname())
            buf = bytearray(16)
            receiving_into = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf))
            await asyncio.sleep(0)
            await loop.sock_sendto(a, b"second", b.getsockname())
            assert await asyncio.wait_for(receiving_into, WAIT) == (6, a.getsockname())
            assert bytes(buf[:6]) == b"second"
            # nbytes limits what is taken of a longer datagram.
            await loop.sock_sendto(b, b"truncated", a.getsockname())
            small = bytearray(16)
            n, sender = await asyncio.wait_for(loop.sock_recvfrom_into(a, small, 5), WAIT)
            assert (n, bytes(small[:n]), sender) == (5, b"trunc", b.getsockname())

    run(io_loop, main)
