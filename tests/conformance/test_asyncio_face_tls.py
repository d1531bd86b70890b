"""asyncio's TLS on every backend: ``ssl=`` on servers and connections, and start_tls.

The certificate is the run's throwaway CA and server certificate (the
``tls_certificate`` fixture), valid for ``localhost`` and 127.0.0.1; the
exchanges go over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from reactor.testing.tls import TLSCertificate
from tests.conformance._asyncio_face import run
from tests.util import WAIT

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)


async def upper_server(
    tls: ssl.SSLContext | None, handled: list[asyncio.Future[None]]
) -> asyncio.Server:
    """A stream server that answers each line in upper case, until EOF."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        done = asyncio.get_running_loop().create_future()
        handled.append(done)
        try:
            while line := await reader.readline():
                writer.write(line.upper())
                await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass  # a client that failed its handshake
        finally:
            writer.close()
            done.set_result(None)

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)


def test_tls_server_and_connection(io_loop: IOLoop, tls_certificate: TLSCertificate) -> None:
    async def main() -> None:
        handled: list[asyncio.Future[None]] = []
        server = await upper_server(tls_certificate.server_context(), handled)
        async with server:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=tls_certificate.client_context(),
                server_hostname="localhost",
            )
            ssl_object = writer.get_extra_info("ssl_object")
            assert ssl_object is not None and ssl_object.version() in ("TLSv1.2", "TLSv1.3")
            assert writer.get_extra_info("peercert")["subjectAltName"]
            lines = [b"%05d" % i + b"x" * 1000 + b"\n" for i in range(100)]  # many records
            writer.write(b"secret\n" + b"".join(lines))
            await writer.drain()
            assert await reader.readline() == b"SECRET\n"
            for line in lines:
                assert await reader.readline() == line.upper()
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(asyncio.gather(*handled), WAIT)

    run(io_loop, main)


def test_tls_bad_certificate_and_wrong_hostname_fail(
    io_loop: IOLoop, tls_certificate: TLSCertificate
) -> None:
    """A client that does not trust the CA, and one that expects another
    name, both fail the handshake with SSLCertVerificationError; the server
    goes on serving."""

    async def main() -> None:
        handled: list[asyncio.Future[None]] = []
        server = await upper_server(tls_certificate.server_context(), handled)
        async with server:
            port = server.sockets[0].getsockname()[1]
            untrusting = ssl.create_default_context()  # the system CAs only
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=untrusting, server_hostname="localhost"
                )
            with pytest.raises(ssl.SSLCertVerificationError, match=r"example\.org"):
                await asyncio.open_connection(
                    "127.0.0.1",
                    port,
                    ssl=tls_certificate.client_context(),
                    server_hostname="example.org",
                )
            # A good client still gets in.
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=tls_certificate.client_context(),
                server_hostname="localhost",
            )
            writer.write(b"still\n")
            assert await reader.readline() == b"STILL\n"
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(asyncio.gather(*handled), WAIT)

    run(io_loop, main)


def test_start_tls_upgrades_a_plain_connection(
    io_loop: IOLoop, tls_certificate: TLSCertificate
) -> None:
    """A STARTTLS exchange: a line in the clear, both sides upgrade with
    loop.start_tls, then lines over TLS on the same TCP connection."""

    class Server(asyncio.Protocol):
        def __init__(self) -> None:
            loop = asyncio.get_running_loop()
            self.lost = loop.create_future()
            self.tls: asyncio.Future[asyncio.Transport] | None = None
            self.replies: list[asyncio.Future[None]] = []

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            if self.tls is None:
                assert data == b"STARTTLS\n"
                self.transport.write(b"GO\n")
                self.tls = asyncio.ensure_future(
                    asyncio.get_running_loop().start_tls(
                        self.transport, self, tls_certificate.server_context(), server_side=True
                    )
                )
            else:
                # Decrypted data may come before start_tls has returned.
                self.replies.append(asyncio.ensure_future(self.reply(data)))

        async def reply(self, data: bytes) -> None:
            assert self.tls is not None
            (await self.tls).write(data.upper())

        def connection_lost(self, exc: BaseException | None) -> None:
            if self.tls is not None and self.tls.done() and not self.tls.exception():
                self.tls.result().close()  # (3.10's TLS transport warns if left open)
            self.lost.set_result(exc)

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.lines: asyncio.Queue[bytes] = asyncio.Queue()
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            self.lines.put_nowait(data)

        def connection_lost(self, exc: BaseException | None) -> None:
            self.lost.set_result(exc)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        servers: list[Server] = []

        def factory() -> Server:
            servers.append(Server())
            return servers[-1]

        server = await loop.create_server(factory, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            transport, client = await loop.create_connection(Client, "127.0.0.1", port)
            transport.write(b"STARTTLS\n")
            assert await asyncio.wait_for(client.lines.get(), WAIT) == b"GO\n"
            assert transport.get_extra_info("ssl_object") is None
            tls_transport = await loop.start_tls(
                transport,
                client,
                tls_certificate.client_context(),
                server_hostname="localhost",
            )
            assert tls_transport.get_extra_info("ssl_object") is not None
            tls_transport.write(b"now private\n")
            assert await asyncio.wait_for(client.lines.get(), WAIT) == b"NOW PRIVATE\n"
            tls_transport.close()
            await asyncio.wait_for(client.lost, WAIT)
            await asyncio.wait_for(servers[0].lost, WAIT)

    run(io_loop, main)


def test_a_client_that_stalls_its_handshake_is_dropped(
    io_loop: IOLoop, tls_certificate: TLSCertificate
) -> None:
    """A client that connects and never speaks TLS: ssl_handshake_timeout
    (a loop timer under the stdlib's SSLProtocol) closes it; the server
    goes on serving, and nothing is logged as an error."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handled: list[asyncio.Future[None]] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handled.append(loop.create_future())
            writer.close()
            handled[-1].set_result(None)

        server = await asyncio.start_server(
            handle,
            "127.0.0.1",
            0,
            ssl=tls_certificate.server_context(),
            ssl_handshake_timeout=0.2,
        )
        async with server:
            port = server.sockets[0].getsockname()[1]
            stalled_reader, stalled = await asyncio.open_connection("127.0.0.1", port)
            # The server gives up: EOF (or a reset) on the silent client.
            try:
                assert await asyncio.wait_for(stalled_reader.read(), WAIT) == b""
            except ConnectionResetError:
                pass
            stalled.close()
            assert handled == []  # the handler never saw it
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=tls_certificate.client_context(),
                server_hostname="localhost",
            )
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
            writer.close()
            await asyncio.wait_for(asyncio.gather(*handled), WAIT)
            assert len(handled) == 1

    run(io_loop, main)
