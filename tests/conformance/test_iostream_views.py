"""start_reading(views=True) on every backend: a view handed to the callback
stays intact while the callback runs, whatever the callback reads meanwhile.

Reads share one scratch chunk per thread. A view of it is lent to the
callback, so any read that completes inside the callback (from another
stream, or from this one after stop_reading) must not land in the chunk the
callback is still looking at. The HTTP server is the real-world case: llhttp
parses the view while a request handler runs.
"""

from __future__ import annotations

import socket
from typing import Any

from reactor import gen
from reactor.concurrent import Future
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.netutil import bind_sockets
from tests.conformance.test_iostream import Cleanup, stream_and_peer, unread
from tests.util import WAIT


async def arrived(sock: socket.socket, n: int) -> None:
    """Wait until the kernel holds ``n`` unread bytes for ``sock``."""
    deadline = IOLoop.current().time() + WAIT
    while unread(sock) < n:
        assert IOLoop.current().time() < deadline, "the bytes never arrived"
        await gen.moment


async def test_a_read_inside_the_callback_leaves_the_view_intact(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    """Another stream's read that completes at once, inside the callback,
    goes elsewhere than the chunk the callback's view shows."""
    stream, peer = stream_and_peer(cleanup)
    other, other_peer = stream_and_peer(cleanup)
    other_peer.sendall(b"B" * 300)
    await arrived(other.socket, 300)
    seen: list[tuple[bytes, bytes]] = []
    nested: list[Future[bytes]] = []
    done: Future[None] = Future()

    def on_data(data: memoryview) -> None:
        before = bytes(data)
        reading = other.read_bytes(300)
        assert reading.done(), "the nested read should complete inline"
        nested.append(reading)
        seen.append((before, bytes(data)))
        if not done.done():
            done.set_result(None)

    stream.start_reading(on_data, views=True)
    peer.sendall(b"A" * 200)
    await gen.with_timeout(io_loop.time() + WAIT, done)
    assert nested[0].result() == b"B" * 300
    before, after = seen[0]
    assert before == b"A" * len(before)
    assert after == before, "the view changed under the callback"


async def test_the_streams_own_read_inside_the_callback_leaves_the_view_intact(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    """The callback stops reading and reads the same stream at once: that
    recv must not overwrite the view it is still holding either."""
    stream, peer = stream_and_peer(cleanup)
    got: list[tuple[bytes, bytes]] = []
    done: Future[None] = Future()
    peer.sendall(b"head")
    await arrived(stream.socket, 4)

    def on_data(data: memoryview) -> None:
        before = bytes(data)
        stream.stop_reading()
        peer.sendall(b"T" * 100)  # loopback: in the kernel when sendall returns
        reading = stream.read_bytes(1, partial=True)
        got.append((before, bytes(data)))
        done.set_result(None)
        # The nested read's bytes are the stream's, not lost.
        assert not reading.done() or reading.result().startswith(b"T")

    stream.start_reading(on_data, views=True)
    await gen.with_timeout(io_loop.time() + WAIT, done)
    before, after = got[0]
    assert before == b"head"
    assert after == b"head"


def _answer(request: HTTPServerRequest, body: bytes) -> None:
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


async def test_http_handler_reading_another_socket_between_pipelined_requests(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    """A client pipelines /first and /second; /first's handler reads a
    waiting reply from another socket (at once, inside the handler, while
    llhttp is still parsing the client's bytes). The server must then see
    /second exactly, and nothing of what the other socket sent."""
    first = b"GET /first HTTP/1.1\r\nHost: example.com\r\n\r\n"
    second = b"GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n"
    # Lined up with the client's bytes in the chunk: a request of its own
    # for a path of the same length where /second would be.
    decoy = b"GET /sneaky HTTP/1.1\r\nHost: example.com\r\n\r\n"
    assert len(decoy) == len(second)
    backend_reply = b"x" * len(first) + decoy

    backend, backend_peer = stream_and_peer(cleanup)
    backend_peer.sendall(backend_reply)
    await arrived(backend.socket, len(backend_reply))

    paths: list[str] = []
    replies: list[bytes] = []

    def handler(request: HTTPServerRequest) -> None:
        paths.append(request.path)
        if request.path == "/first":
            reading = backend.read_bytes(len(backend_reply))
            assert reading.done(), "the backend's reply should be read inline"
            replies.append(reading.result())
        _answer(request, request.path.encode())

    server = HTTPServer(handler)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    try:
        client = cleanup(IOStream(socket.socket()))
        await client.connect(sock.getsockname()[:2])
        await client.write(first + second)
        bodies = []
        for _ in range(2):
            head = await client.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            bodies.append(await client.read_bytes(length))
    finally:
        server.stop()
        for connection in list(server._connections):
            connection.close()
    assert paths == ["/first", "/second"]
    assert bodies == [b"/first", b"/second"]
    assert replies == [backend_reply]
