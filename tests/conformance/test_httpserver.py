"""The HTTP/1.1 server's strictness, limits and time limits, on every backend.

Each request the server must refuse is its own test: it is sent, followed on
the same connection by a well-formed request that must never be answered;
the server must answer the refusal with its status and ``Connection: close``,
close the connection, and never show the request to the application.
"""

from __future__ import annotations

import gc
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.http1connection import _RequestConnection
from reactor.httpserver import HTTPServer
from reactor.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPOutputError,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    ResponseStartLine,
)
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.netutil import bind_sockets
from reactor.testing import ExpectLog

HOST = b"Host: example.com\r\n"
GOOD = b"GET /next HTTP/1.1\r\n" + HOST + b"\r\n"


def answer(request: HTTPServerRequest, body: bytes = b"ok", code: int = 200) -> None:
    request.connection.write_headers(  # type: ignore[union-attr]
        ResponseStartLine("HTTP/1.1", code, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()  # type: ignore[union-attr]


class Recorder:
    """A request callback that answers with the body it received and records each request."""

    def __init__(self) -> None:
        self.requests: list[HTTPServerRequest] = []

    def __call__(self, request: HTTPServerRequest) -> None:
        self.requests.append(request)
        answer(request, b"got:" + request.body)


def start(handler: Any, **kwargs: Any) -> tuple[HTTPServer, int]:
    server = HTTPServer(handler, **kwargs)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    return server, int(sock.getsockname()[1])


async def connect(port: int) -> IOStream:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await stream.connect(("127.0.0.1", port))
    return stream


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, then read until the server closes."""
    stream = await connect(port)
    await stream.write(data)
    return await stream.read_until_close()


@pytest.fixture
def served(io_loop: IOLoop) -> Iterator[tuple[Recorder, int, HTTPServer]]:
    recorder = Recorder()
    server, port = start(recorder)
    yield recorder, port, server
    server.stop()
    for connection in list(server._connections):
        connection.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def assert_refused(response: bytes, code: int) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert status_of(response) == code, response
    assert b"Connection: close" in head
    assert body == b"", "nothing may follow a refusal (the next request is never answered)"


# -- requests that must be refused ------------------------------------------------------

SMUGGLING = {
    # Framing: both lengths, or a length that can be read two ways.
    "content-length-and-transfer-encoding": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-and-content-length": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "repeated-content-length-same": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "repeated-content-length-different": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    "content-length-list": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1, 1\r\n\r\nx",
    "content-length-negative": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\nx",
    "content-length-plus-sign": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: +1\r\n\r\nx",
    "content-length-hex": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 0x1\r\n\r\nx",
    "content-length-inner-space": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1 2\r\n\r\nx",
    # Transfer codings: chunked must be last, and the only one we accept.
    "transfer-encoding-not-chunked": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: gzip\r\n\r\n",
    "transfer-encoding-chunked-not-last": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "transfer-encoding-other-before-chunked": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-repeated": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-lookalike": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-in-http-1.0": b"POST / HTTP/1.0\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    # Chunk sizes.
    "chunk-size-not-hex": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
    "chunk-size-trailing-space": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
    "chunk-data-longer-than-size": b"POST / HTTP/1.1\r\n"
    + HOST
    + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
    # Header lines.
    "obs-fold": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n b\r\n\r\n",
    "bare-cr-in-value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n",
    "bare-cr-line-end": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\r\n\r\n",
    "bare-lf-line-end": b"GET / HTTP/1.1\n" + HOST + b"\n",
    "space-before-colon": b"GET / HTTP/1.1\r\n" + HOST + b"X-A : a\r\n\r\n",
    "tab-before-colon": b"GET / HTTP/1.1\r\n" + HOST + b"X-A\t: a\r\n\r\n",
    "invalid-header-name": b"GET / HTTP/1.1\r\n" + HOST + b"X(a): a\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\n" + HOST + b": a\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "control-in-value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x01b\r\n\r\n",
    "del-in-value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x7fb\r\n\r\n",
    # The request line and Host.
    "invalid-method": b"G@T / HTTP/1.1\r\n" + HOST + b"\r\n",
    "control-before-method": b"\x01GET / HTTP/1.1\r\n" + HOST + b"\r\n",
    "method-with-separator": b"GE(T) / HTTP/1.1\r\n" + HOST + b"\r\n",
    "version-1.2": b"GET / HTTP/1.2\r\n" + HOST + b"\r\n",
    "version-2.0": b"GET / HTTP/2.0\r\n" + HOST + b"\r\n",
    "version-0.9": b"GET /\r\n\r\n",
    "version-wrong-protocol": b"GET / HTTPS/1.1\r\n" + HOST + b"\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n",
    "control-in-target": b"GET /a\x01b HTTP/1.1\r\n" + HOST + b"\r\n",
    "http-1.1-without-host": b"GET / HTTP/1.1\r\n\r\n",
    "http-1.1-with-two-hosts": b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n",
}


@pytest.mark.parametrize("request_bytes", SMUGGLING.values(), ids=SMUGGLING.keys())
async def test_refused_with_400(
    served: tuple[Recorder, int, HTTPServer], request_bytes: bytes
) -> None:
    recorder, port, _ = served
    response = await exchange(port, request_bytes + GOOD)
    assert_refused(response, 400)
    assert recorder.requests == []


ACCEPTED = {
    "chunk-extensions-and-trailers": (
        b"POST / HTTP/1.1\r\n"
        + HOST
        + b"Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n"
        + b"1;x\r\n!\r\n0\r\nX-Trailer: yes\r\n\r\n",
        b"hello!",
    ),
    "chunked-case-insensitive": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"hi",
    ),
    "obs-text-in-value": (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: caf\xe9\r\n\r\n", b""),
    "empty-line-before-request": (b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n", b""),
    "http-1.0-without-host": (b"GET / HTTP/1.0\r\n\r\n", b""),
}


@pytest.mark.parametrize("request_bytes, body", ACCEPTED.values(), ids=ACCEPTED.keys())
async def test_lenient_where_the_rfc_allows(
    served: tuple[Recorder, int, HTTPServer], request_bytes: bytes, body: bytes
) -> None:
    recorder, port, _ = served
    stream = await connect(port)
    await stream.write(request_bytes)
    head = await stream.read_until(b"\r\n\r\n")
    assert status_of(head) == 200
    assert await stream.read_bytes(4 + len(body)) == b"got:" + body
    [request] = recorder.requests
    if request.version == "HTTP/1.1":
        await stream.write(GOOD)  # the connection goes on
        assert status_of(await stream.read_until(b"\r\n\r\n")) == 200
    stream.close()


async def test_obs_text_is_decoded_as_latin_1(served: tuple[Recorder, int, HTTPServer]) -> None:
    recorder, port, _ = served
    stream = await connect(port)
    await stream.write(b"GET / HTTP/1.1\r\n" + HOST + b"X-A: caf\xe9\r\n\r\n")
    await stream.read_until(b"got:")
    assert recorder.requests[0].headers["x-a"] == "caf\xe9"
    stream.close()


async def test_whitespace_around_a_header_value_is_not_part_of_it(
    served: tuple[Recorder, int, HTTPServer],
) -> None:
    # RFC 9110 section 5.5: leading and trailing spaces and tabs are not the value's.
    recorder, port, _ = served
    stream = await connect(port)
    await stream.write(
        b"GET / HTTP/1.1\r\n" + HOST + b"X-A:  two words \t \r\nX-B:\t\r\nX-C: c\r\nX-C: d \r\n\r\n"
    )
    await stream.read_until(b"got:")
    headers = recorder.requests[0].headers
    assert headers["X-A"] == "two words"
    assert headers["X-B"] == ""
    assert headers.get_list("X-C") == ["c", "d"]
    stream.close()


# -- limits -----------------------------------------------------------------------------


async def test_headers_over_the_limit_get_431(io_loop: IOLoop) -> None:
    recorder = Recorder()
    server, port = start(recorder, max_header_size=1024)
    big = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 2000 + b"\r\n\r\n"
    assert_refused(await exchange(port, big + GOOD), 431)
    # Just under the limit is fine.
    fits = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 900 + b"\r\n\r\n"
    stream = await connect(port)
    await stream.write(fits)
    assert status_of(await stream.read_until(b"\r\n\r\n")) == 200
    stream.close()
    assert len(recorder.requests) == 1
    server.stop()


async def test_endless_header_line_is_cut_off_at_the_limit(io_loop: IOLoop) -> None:
    """A header line that never ends: answered 431 long before the client stops
    sending, so memory stays bounded."""
    recorder = Recorder()
    server, port = start(recorder, max_header_size=4096)
    stream = await connect(port)
    await stream.write(b"GET / HTTP/1.1\r\n" + HOST + b"X-Endless: ")
    # Like a real client, read the answer while still sending.
    answer_head = stream.read_until(b"\r\n\r\n")
    sent = 0
    try:
        while sent < 4 * 1024 * 1024 and not answer_head.done():
            await stream.write(b"a" * 65536)
            sent += 65536
    except StreamClosedError:
        pass
    response = await answer_head
    assert_refused(response, 431)
    assert sent < 4 * 1024 * 1024, "the server read megabytes of one header line"
    assert recorder.requests == []
    server.stop()


async def test_body_over_the_limit_by_content_length_gets_413(io_loop: IOLoop) -> None:
    recorder = Recorder()
    server, port = start(recorder, max_body_size=100)
    request = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 101\r\n\r\n" + b"x" * 101
    assert_refused(await exchange(port, request + GOOD), 413)
    assert recorder.requests == []
    ok = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\nConnection: close\r\n\r\n"
    response = await exchange(port, ok + b"x" * 100)
    assert status_of(response) == 200
    assert response.endswith(b"got:" + b"x" * 100)
    server.stop()


async def test_chunked_body_over_the_limit_gets_413(io_loop: IOLoop) -> None:
    recorder = Recorder()
    server, port = start(recorder, max_body_size=100)
    chunks = b"40\r\n" + b"x" * 64 + b"\r\n"
    request = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    assert_refused(await exchange(port, request + chunks * 2 + b"0\r\n\r\n" + GOOD), 413)
    assert recorder.requests == []
    server.stop()


class Streaming(HTTPServerConnectionDelegate):
    """Each request's body is handed over piece by piece; ``hold`` makes
    data_received return a future the test resolves (flow control)."""

    def __init__(self, hold: bool = False, max_body_size: int | None = None) -> None:
        self.hold = hold
        self.max_body_size = max_body_size
        self.chunks: list[bytes] = []
        self.held: list[Future[None]] = []
        self.finished = Future[None]()
        self.closed = Future[None]()

    def start_request(self, server_conn: object, request_conn: Any) -> HTTPMessageDelegate:
        outer = self

        class Message(HTTPMessageDelegate):
            def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
                if outer.max_body_size is not None:
                    request_conn.set_max_body_size(outer.max_body_size)

            def data_received(self, chunk: bytes) -> Future[None] | None:
                outer.chunks.append(chunk)
                if outer.hold:
                    future = Future[None]()
                    outer.held.append(future)
                    return future
                return None

            def finish(self) -> None:
                request_conn.write_headers(
                    ResponseStartLine("HTTP/1.1", 200, "OK"),
                    HTTPHeaders({"Content-Length": "2"}),
                    b"ok",
                )
                request_conn.finish()
                outer.finished.set_result(None)

            def on_connection_close(self) -> None:
                outer.closed.set_result(None)

        return Message()


async def test_data_received_future_holds_the_body_back(io_loop: IOLoop) -> None:
    delegate = Streaming(hold=True)
    server, port = start(delegate)
    stream = await connect(port)
    await stream.write(b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n")
    for piece in (b"one", b"two", b"three"):
        await stream.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    await stream.write(b"0\r\n\r\n")
    expected = [b"one", b"two", b"three"]
    for i in range(len(expected)):
        while len(delegate.held) <= i:
            await gen.sleep(0.001)
        # Until this future resolves, no later piece may be delivered.
        await gen.sleep(0.01)
        assert delegate.chunks == expected[: i + 1]
        assert not delegate.finished.done()
        delegate.held[i].set_result(None)
    await delegate.finished
    assert status_of(await stream.read_until(b"\r\n\r\n")) == 200
    stream.close()
    server.stop()


async def test_set_max_body_size_per_request(io_loop: IOLoop) -> None:
    delegate = Streaming(max_body_size=10)
    server, port = start(delegate, max_body_size=1000)
    request = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 20\r\n\r\n" + b"x" * 20
    assert_refused(await exchange(port, request), 413)
    await delegate.closed  # it had seen the headers: it hears of the close
    server.stop()


async def test_set_max_body_size_can_raise_the_limit(io_loop: IOLoop) -> None:
    # headers_received runs before the Content-Length is held against the
    # limit, so the limit it sets is the one that counts.
    delegate = Streaming(max_body_size=1000)
    server, port = start(delegate, max_body_size=10)
    stream = await connect(port)
    await stream.write(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 20\r\n\r\n" + b"x" * 20)
    head = await stream.read_until(b"\r\n\r\n")
    assert status_of(head) == 200, head
    assert await stream.read_bytes(2) == b"ok"
    assert b"".join(delegate.chunks) == b"x" * 20
    stream.close()
    server.stop()


async def test_set_max_body_size_lowered_refuses_before_the_body(io_loop: IOLoop) -> None:
    delegate = Streaming(max_body_size=10)
    server, port = start(delegate, max_body_size=1000)
    request = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 20\r\nExpect: 100-continue\r\n\r\n"
    response = await exchange(port, request)
    assert_refused(response, 413)  # and no 100 Continue before it
    assert delegate.chunks == []
    await delegate.closed
    server.stop()


# -- time limits ------------------------------------------------------------------------


async def test_slow_header_client_is_cut_off_while_others_are_served(io_loop: IOLoop) -> None:
    recorder = Recorder()
    server, port = start(recorder, header_timeout=0.3)
    slow = await connect(port)
    await slow.write(b"GET / HTTP/1.1\r\n")
    closed = Future[None]()
    slow.set_close_callback(lambda: closed.set_result(None))
    start_time = io_loop.time()
    served = 0
    while not closed.done():
        stream = await connect(port)
        await stream.write(b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        assert status_of(await stream.read_until_close()) == 200
        served += 1
        try:
            await slow.write(b"X-Drip: 1\r\n")  # a slowloris: one header at a time
        except StreamClosedError:
            break  # cut off (the close callback runs on the next iteration)
        await gen.sleep(0.02)
    elapsed = io_loop.time() - start_time
    assert 0.25 < elapsed < 2.0
    assert served >= 3
    response = await slow.read_until_close()
    assert_refused(response, 408)
    server.stop()


async def test_silent_connection_is_closed_at_the_header_timeout(io_loop: IOLoop) -> None:
    """A connection that never sends a byte is closed without an answer (it
    may be a browser's preconnect: there is no request to answer)."""
    server, port = start(Recorder(), header_timeout=0.1)
    # Before the connect: the server may accept (and start its timer) before
    # this coroutine resumes from connect(), on a loaded machine long before.
    start_time = io_loop.time()
    stream = await connect(port)
    assert await stream.read_until_close() == b""
    assert io_loop.time() - start_time >= 0.09
    server.stop()


async def test_idle_connection_is_closed(io_loop: IOLoop) -> None:
    server, port = start(Recorder(), idle_connection_timeout=0.1)
    stream = await connect(port)
    # Before the request: the server's idle timer starts when its answer is
    # written, which may be well before this coroutine reads it.
    start_time = io_loop.time()
    await stream.write(GOOD)
    await stream.read_until(b"got:")
    assert await stream.read_until_close() == b""
    assert io_loop.time() - start_time >= 0.09
    server.stop()


async def test_keep_alive_activity_is_not_idle(io_loop: IOLoop) -> None:
    """Requests arriving more often than the idle timeout keep the connection."""
    server, port = start(Recorder(), idle_connection_timeout=0.15)
    stream = await connect(port)
    for _ in range(6):
        await stream.write(GOOD)
        await stream.read_until(b"got:")
        await gen.sleep(0.05)
    assert not stream.closed()
    stream.close()
    server.stop()


async def test_slow_body_is_cut_off_at_the_body_timeout(io_loop: IOLoop) -> None:
    delegate = Streaming()
    server, port = start(delegate, body_timeout=0.1)
    stream = await connect(port)
    await stream.write(b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\nabc")
    assert await stream.read_until_close() == b""
    await delegate.closed
    assert delegate.chunks == [b"abc"]
    server.stop()


# -- responses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("X-Injected", "a\r\nSet-Cookie: evil=1"),
        ("X-Injected", "a\nb"),
        ("X-Injected", "a\rb"),
        ("X-Bad\r\nName", "a"),
    ],
)
async def test_header_injection_is_refused(io_loop: IOLoop, name: str, value: str) -> None:
    errors: list[BaseException] = []

    def handler(request: HTTPServerRequest) -> None:
        try:
            # Refused where it is set (a ValueError that is also an
            # HTTPOutputError), so it never reaches write_headers.
            headers = HTTPHeaders({"Content-Length": "0"})
            headers[name] = value
            request.connection.write_headers(  # type: ignore[union-attr]
                ResponseStartLine("HTTP/1.1", 200, "OK"), headers
            )
        except HTTPOutputError as e:
            errors.append(e)
            answer(request, b"safe")

    server, port = start(handler)
    response = await exchange(port, b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert len(errors) == 1
    assert b"evil" not in response and b"X-Injected" not in response
    assert response.endswith(b"safe")
    server.stop()


async def test_reason_phrase_injection_is_refused(io_loop: IOLoop) -> None:
    errors: list[BaseException] = []

    def handler(request: HTTPServerRequest) -> None:
        try:
            request.connection.write_headers(  # type: ignore[union-attr]
                ResponseStartLine("HTTP/1.1", 200, "OK\r\nSet-Cookie: evil=1"), HTTPHeaders()
            )
        except HTTPOutputError as e:
            errors.append(e)
            answer(request, b"safe")

    server, port = start(handler)
    response = await exchange(port, b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert errors and b"evil" not in response
    server.stop()


async def test_application_error_is_logged_and_answered_500(io_loop: IOLoop) -> None:
    calls = []

    def handler(request: HTTPServerRequest) -> None:
        calls.append(request.path)
        if request.path == "/boom":
            raise RuntimeError("handler failed on purpose")
        answer(request)

    server, port = start(handler)
    with ExpectLog("reactor.application", "Uncaught exception", level=logging.ERROR):
        response = await exchange(port, b"GET /boom HTTP/1.1\r\n" + HOST + b"\r\n" + GOOD)
    assert_refused(response, 500)
    assert calls == ["/boom"]
    # The server goes on.
    response = await exchange(port, b"GET /ok HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert status_of(response) == 200
    server.stop()


@pytest.mark.parametrize("mistake", ["too-long", "too-short"])
async def test_body_must_match_content_length(io_loop: IOLoop, mistake: str) -> None:
    errors: list[BaseException] = []

    def handler(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert isinstance(conn, _RequestConnection)
        conn.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": "5"})
        )
        try:
            if mistake == "too-long":
                conn.write(b"123456")
            else:
                conn.write(b"1234")
                conn.finish()
        except HTTPOutputError as e:
            errors.append(e)

    server, port = start(handler)
    response = await exchange(port, b"GET / HTTP/1.1\r\n" + HOST + b"\r\n" + GOOD)
    assert len(errors) == 1
    # The connection is closed rather than left with a wrongly framed body.
    assert response.count(b"HTTP/1.1") == 1
    server.stop()


async def test_response_framing_follows_the_request(io_loop: IOLoop) -> None:
    """No Content-Length: chunked for HTTP/1.1, close-delimited for HTTP/1.0."""

    def handler(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders(), b"ab")
        conn.write(b"cd")
        conn.finish()

    server, port = start(handler)
    response = await exchange(port, b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
    response = await exchange(port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"abcd"
    server.stop()


async def test_upgrade_and_detach(io_loop: IOLoop) -> None:
    """A 101 answer, then the stream is the application's: bytes the client
    sent right behind the request are not lost."""
    detached: list[IOStream] = []

    def handler(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert isinstance(conn, _RequestConnection)
        conn.write_headers(
            ResponseStartLine("HTTP/1.1", 101, "Switching Protocols"),
            HTTPHeaders({"Upgrade": "echo", "Connection": "Upgrade"}),
        )
        stream = conn.detach()
        assert isinstance(stream, IOStream)
        detached.append(stream)

        async def echo() -> None:
            while True:
                line = await stream.read_until(b"\n")
                await stream.write(line.upper())

        io_loop.add_callback(echo)

    server, port = start(handler)
    stream = await connect(port)
    await stream.write(
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n"
    )
    head = await stream.read_until(b"\r\n\r\n")
    assert status_of(head) == 101
    assert await stream.read_until(b"\n") == b"EARLY\n"
    await stream.write(b"later\n")
    assert await stream.read_until(b"\n") == b"LATER\n"
    stream.close()
    detached[0].close()
    server.stop()


async def test_upgrade_declined_goes_on_as_http(served: tuple[Recorder, int, HTTPServer]) -> None:
    recorder, port, _ = served
    stream = await connect(port)
    await stream.write(
        b"GET /up HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + GOOD
    )
    await stream.read_until(b"got:")
    await stream.read_until(b"got:")
    assert [r.path for r in recorder.requests] == ["/up", "/next"]
    stream.close()


async def test_connection_close_from_the_client_is_honoured(
    served: tuple[Recorder, int, HTTPServer],
) -> None:
    _, port, _ = served
    response = await exchange(port, b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
    assert status_of(response) == 200
    assert b"Connection: close" in response


async def test_half_close_after_pipelined_requests_gets_every_answer(
    served: tuple[Recorder, int, HTTPServer],
) -> None:
    recorder, port, _ = served
    sock = socket.create_connection(("127.0.0.1", port))
    stream = IOStream(sock)
    await stream.write(GOOD * 3)
    sock.shutdown(socket.SHUT_WR)
    response = await stream.read_until_close()
    assert response.count(b"got:") == 3
    assert len(recorder.requests) == 3


async def test_request_attributes(served: tuple[Recorder, int, HTTPServer]) -> None:
    recorder, port, _ = served
    body = b"a=1&b=2&a=3"
    request = (
        b"POST /path/x?q=1&q=2 HTTP/1.1\r\nHost: Example.COM:8080\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Cookie: c=d; e=f\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
    ) % (len(body), body)
    await exchange(port, request)
    [r] = recorder.requests
    assert (r.method, r.uri, r.path, r.query) == ("POST", "/path/x?q=1&q=2", "/path/x", "q=1&q=2")
    assert r.version == "HTTP/1.1"
    assert (r.host, r.host_name) == ("Example.COM:8080", "example.com")
    assert r.remote_ip == "127.0.0.1" and r.protocol == "http"
    assert r.query_arguments == {"q": [b"1", b"2"]}
    assert r.body_arguments == {"a": [b"1", b"3"], "b": [b"2"]}
    assert r.arguments == {"q": [b"1", b"2"], "a": [b"1", b"3"], "b": [b"2"]}
    assert r.cookies["c"].value == "d" and r.cookies["e"].value == "f"
    assert r.full_url() == "http://Example.COM:8080/path/x?q=1&q=2"
    assert 0 <= r.request_time() < 10


async def test_close_all_connections(io_loop: IOLoop) -> None:
    recorder = Recorder()
    server, port = start(recorder)
    streams = [await connect(port) for _ in range(3)]
    for stream in streams:
        await stream.write(GOOD)
        await stream.read_until(b"got:")
    assert len(server._connections) == 3
    server.stop()
    await server.close_all_connections()
    for stream in streams:
        assert await stream.read_until_close() == b""
    assert not server._connections


# -- methods (RFC 9110 section 9.1) -----------------------------------------------------

UNKNOWN_METHODS = {
    "unknown-token": b"FROB / HTTP/1.1\r\n" + HOST + b"\r\n",
    "known-prefix": b"PURGEX / HTTP/1.1\r\n" + HOST + b"\r\n",
    "lowercase": b"get / HTTP/1.1\r\n" + HOST + b"\r\n",  # methods are case-sensitive
    "rtsp-method": b"DESCRIBE / HTTP/1.1\r\n" + HOST + b"\r\n",
    "token-characters": b"X-MY_METHOD.1!~ / HTTP/1.1\r\n" + HOST + b"\r\n",
    "after-a-good-request": GOOD + b"FROB / HTTP/1.1\r\n" + HOST + b"\r\n",
}


@pytest.mark.parametrize("request_bytes", UNKNOWN_METHODS.values(), ids=UNKNOWN_METHODS.keys())
async def test_unknown_method_gets_501(
    served: tuple[Recorder, int, HTTPServer], request_bytes: bytes
) -> None:
    recorder, port, _ = served
    response = await exchange(port, request_bytes + GOOD)
    answered = [r.path for r in recorder.requests]
    if request_bytes.startswith(GOOD):
        head, _, response = response.partition(b"got:")
        assert status_of(head) == 200 and answered == ["/next"]
    else:
        assert answered == []
    assert_refused(response, 501)


@pytest.mark.parametrize(
    "method", ["PURGE", "PROPFIND", "PROPPATCH", "MKCOL", "MKCALENDAR", "M-SEARCH", "QUERY", "LINK"]
)
async def test_registered_methods_reach_the_application(
    served: tuple[Recorder, int, HTTPServer], method: str
) -> None:
    recorder, port, _ = served
    stream = await connect(port)
    await stream.write(method.encode() + b" /x HTTP/1.1\r\n" + HOST + b"\r\n" + GOOD)
    await stream.read_until(b"got:")
    await stream.read_until(b"got:")
    assert [(r.method, r.path) for r in recorder.requests] == [(method, "/x"), ("GET", "/next")]
    stream.close()


# -- pipelining back-pressure -----------------------------------------------------------

BIG = 65536


async def test_pipelined_flood_waits_for_the_client_to_read(io_loop: IOLoop) -> None:
    """A client pipelines many GETs for a 64 KiB answer and reads nothing:
    the server runs only as many handlers as the socket buffers absorb, then
    waits; once the client reads, every answer arrives, whole and in order."""
    count = 400
    seen: list[int] = []

    def handle(request: HTTPServerRequest) -> None:
        index = int(request.path[1:])
        seen.append(index)
        answer(request, b"%08d" % index + b"x" * (BIG - 8))

    server = HTTPServer(handle)
    [listener] = bind_sockets(0, "127.0.0.1")
    # Small kernel buffers (inherited by the accepted socket), so that what
    # the kernel absorbs is a few answers and the count below is tight.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    server.add_sockets([listener])
    port = listener.getsockname()[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    stream = IOStream(sock)
    await stream.connect(("127.0.0.1", port))
    sent = stream.write(b"".join(b"GET /%d HTTP/1.1\r\n%s\r\n" % (i, HOST) for i in range(count)))
    for _ in range(5000):
        connections = list(server._connections)
        if seen and connections and connections[0].stream.writing():
            break
        await gen.sleep(0.001)
    else:
        pytest.fail("the server never filled the socket")
    await gen.sleep(0.05)  # time enough for handlers that would run on
    assert len(seen) <= 8, f"{len(seen)} handlers ran for a client that read nothing"
    for i in range(count):
        head = await stream.read_until(b"\r\n\r\n")
        assert status_of(head) == 200 and b"Content-Length: 65536" in head
        body = await stream.read_bytes(BIG)
        assert body[:8] == b"%08d" % i
    await sent
    assert seen == list(range(count))
    stream.close()
    server.stop()


async def test_requests_held_behind_a_slow_answer_are_parsed_in_bounded_slices(
    io_loop: IOLoop,
) -> None:
    """While one answer is awaited, what the client pipelined behind it is
    not all parsed into held requests: at most one slice of input is."""
    from reactor import http1connection

    count = 2000
    late: list[HTTPServerRequest] = []

    def handle(request: HTTPServerRequest) -> None:
        if request.path == "/0":
            late.append(request)
        else:
            answer(request, request.path.encode())

    server, port = start(handle)
    stream = await connect(port)
    request = b"GET /%04d HTTP/1.1\r\n" + HOST + b"\r\n"
    stream.write(
        b"".join(
            request % i if i else b"GET /0 HTTP/1.1\r\n" + HOST + b"\r\n" for i in range(count)
        )
    )
    while not late:
        await gen.sleep(0.001)
    await gen.sleep(0.02)
    [connection] = server._connections
    held = len(connection._pending or ())
    per_slice = http1connection._FEED_SLICE // len(request % 1) + 2
    assert held <= 2 * per_slice, f"{held} parser events held for {count} pipelined requests"
    answer(late[0], b"/0")
    for i in range(count):
        head = await stream.read_until(b"\r\n\r\n")
        assert status_of(head) == 200
        expected = b"/0" if i == 0 else b"/%04d" % i
        assert await stream.read_bytes(len(expected)) == expected
    stream.close()
    server.stop()


# -- per-request garbage ----------------------------------------------------------------


async def test_requests_are_freed_by_reference_counting(io_loop: IOLoop) -> None:
    """No cycle ties a finished request's objects together: with the cycle
    collector off, nothing of the served requests is left."""
    from reactor.http1connection import _RequestConnection as RequestConnection
    from reactor.httpserver import _CallableAdapter

    kinds = (HTTPServerRequest, RequestConnection, _CallableAdapter)

    def alive() -> int:
        return sum(type(o) in kinds for o in gc.get_objects())

    server, port = start(lambda request: answer(request, b"hi"))
    stream = await connect(port)
    gc.collect()
    gc.disable()
    try:
        before = alive()
        for _ in range(20):
            await stream.write(GOOD)
            await stream.read_until(b"\r\n\r\n")
            assert await stream.read_bytes(2) == b"hi"
        left = alive() - before
    finally:
        gc.enable()
    assert left == 0, f"{left} request objects wait for the cycle collector"
    stream.close()
    server.stop()


async def test_many_small_writes_arrive_whole_and_in_order(io_loop: IOLoop) -> None:
    pieces = [b"%d," % i for i in range(2000)]

    def handle(request: HTTPServerRequest) -> None:
        connection = request.connection
        assert connection is not None
        connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(sum(map(len, pieces)))}),
        )
        for piece in pieces:
            connection.write(piece)
        connection.finish()

    server, port = start(handle)
    stream = await connect(port)
    await stream.write(GOOD + GOOD)
    for _ in range(2):
        head = await stream.read_until(b"\r\n\r\n")
        assert status_of(head) == 200
        assert await stream.read_bytes(sum(map(len, pieces))) == b"".join(pieces)
    stream.close()
    server.stop()
