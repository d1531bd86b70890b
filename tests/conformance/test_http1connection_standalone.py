"""The stream-driven HTTP1Connection (Tornado's), on every backend.

Three parts, all through real sockets on 127.0.0.1:

- our client connection (``HTTP1Connection(stream, is_client=True)``)
  against reactor's HTTPServer;
- the same client against a scripted server that answers with hostile bytes
  (framing that lies, floods, a stall, a cut): each must end the read with a
  clear error (HTTPInputError, StreamClosedError, or False on a time limit),
  tell the delegate, and close the connection;
- the server side: a server of its own that calls ``read_response`` in a loop
  on the streams it accepts, answering ``http.client`` and raw sockets, and
  refusing bad requests with a status and a log line.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from reactor import gen
from reactor.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from reactor.httpserver import HTTPServer
from reactor.httputil import (
    HTTPHeaders,
    HTTPInputError,
    HTTPMessageDelegate,
    HTTPOutputError,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.locks import Event
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer
from reactor.testing import ExpectLog
from tests.util import run_curl

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

CLIENT_TIMEOUT = 4.0
"""Seconds a blocking client waits for the server before the test fails."""


# -- the log must stay clean -------------------------------------------------------


# -- helpers ------------------------------------------------------------------------


class Recorder(HTTPMessageDelegate):
    """Records what a connection delivers, in order."""

    def __init__(self) -> None:
        self.start_lines: list[Any] = []
        self.headers: list[HTTPHeaders] = []
        self.chunks: list[bytes] = []
        self.events: list[str] = []

    def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
        self.start_lines.append(start_line)
        self.headers.append(headers)
        self.events.append("headers")

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        self.events.append("finish")

    def on_connection_close(self) -> None:
        self.events.append("close")

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def code(self) -> int:
        return int(self.start_lines[-1].code)


def params(**kwargs: Any) -> HTTP1ConnectionParameters:
    return HTTP1ConnectionParameters(**kwargs)


async def connect(port: int) -> IOStream:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await stream.connect(("127.0.0.1", port))
    return stream


def send_request(
    conn: HTTP1Connection,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    path: str = "/",
) -> None:
    fields = HTTPHeaders({"Host": "example.com", **(headers or {})})
    if body is not None:
        fields["Content-Length"] = str(len(body))
    conn.write_headers(RequestStartLine(method, path, "HTTP/1.1"), fields, body)
    conn.finish()


async def exchange(
    conn: HTTP1Connection, method: str = "GET", **kwargs: Any
) -> tuple[bool, Recorder]:
    send_request(conn, method, **kwargs)
    recorder = Recorder()
    keep = await conn.read_response(recorder)
    return keep, recorder


def respond(request: HTTPServerRequest, body: bytes = b"", code: int = 200, **headers: str) -> None:
    fields = HTTPHeaders(headers)
    if "Content-Length" not in fields:
        fields["Content-Length"] = str(len(body))
    assert request.connection is not None
    request.connection.write_headers(ResponseStartLine("HTTP/1.1", code, "OK"), fields, body)
    request.connection.finish()


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Callable[..., int]]:
    """``serve(callback) -> port``: reactor's HTTPServer on 127.0.0.1."""
    servers: list[HTTPServer] = []

    def start(callback: Any, **kwargs: Any) -> int:
        server = HTTPServer(callback, **kwargs)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        servers.append(server)
        return int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.stop()
        for connection in list(server._connections):
            connection.close()


class Idle:
    """Counts a server's running handlers; :meth:`wait` until none runs (so
    no handler is left pending when the test's loop closes)."""

    def __init__(self) -> None:
        self.running = 0
        self.event = Event()
        self.event.set()

    def enter(self) -> None:
        self.running += 1
        self.event.clear()

    def leave(self) -> None:
        self.running -= 1
        if not self.running:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


class Scripted(TCPServer):
    """Reads each request head, answers it with the next of ``answers`` (raw
    bytes, as a hostile or simple server would send them), then closes; or,
    with ``hold``, keeps the connection open until the client closes it."""

    def __init__(self, answers: list[bytes], hold: bool = False) -> None:
        super().__init__()
        self.answers = answers
        self.hold = hold
        self.requests: list[bytes] = []
        self.idle = Idle()

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.idle.enter()
        try:
            for answer in self.answers:
                self.requests.append(await stream.read_until(b"\r\n\r\n"))
                await stream.write(answer)
            if self.hold:
                await stream.read_until_close()
        except StreamClosedError:
            pass
        finally:
            stream.close()
            self.idle.leave()


@pytest.fixture
def scripted(io_loop: IOLoop) -> Iterator[Callable[..., Awaitable[HTTP1Connection]]]:
    """``await scripted([answer, ...], hold=False, **params)``: a client
    connection to a :class:`Scripted` server."""
    servers: list[Scripted] = []
    streams: list[IOStream] = []

    async def start(answers: list[bytes], hold: bool = False, **kwargs: Any) -> HTTP1Connection:
        server = Scripted(answers, hold)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        servers.append(server)
        stream = await connect(int(sock.getsockname()[1]))
        streams.append(stream)
        return HTTP1Connection(stream, True, params(**kwargs))

    yield start
    for stream in streams:
        stream.close()
    for server in servers:
        server.stop()
        io_loop.run_sync(server.idle.wait, timeout=CLIENT_TIMEOUT)


def echo(request: HTTPServerRequest) -> None:
    body = f"{request.method} {request.path} ".encode() + request.body
    respond(request, body)


# -- our client against reactor's HTTPServer -------------------------------------------


async def test_get(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    keep, got = await exchange(conn, path="/hello?x=1")
    assert keep is True
    assert got.code == 200 and got.body == b"GET /hello "
    assert got.events == ["headers", "finish"]
    assert got.start_lines[0] == ResponseStartLine("HTTP/1.1", 200, "OK")
    assert not stream.closed()
    stream.close()


async def test_post_with_content_length(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    keep, got = await exchange(conn, "POST", body=b"x" * 100_000)
    assert keep is True
    assert got.body == b"POST / " + b"x" * 100_000
    stream.close()


async def test_chunked_upload(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    """A POST without a Content-Length goes chunked; the server gets every piece."""
    seen: list[str | None] = []

    def handler(request: HTTPServerRequest) -> None:
        seen.append(request.headers.get("Transfer-Encoding"))
        echo(request)

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True)
    conn.write_headers(
        RequestStartLine("POST", "/up", "HTTP/1.1"), HTTPHeaders({"Host": "h"}), b"first,"
    )
    for piece in (b"second,", b"", b"third"):
        await conn.write(piece)
    conn.finish()
    got = Recorder()
    assert await conn.read_response(got) is True
    assert seen == ["chunked"]
    assert got.body == b"POST /up first,second,third"
    stream.close()


async def test_keep_alive_carries_several_exchanges(
    io_loop: IOLoop, serve: Callable[..., int]
) -> None:
    """Two exchanges through one HTTP1Connection, a third through a new one
    on the same stream: one server connection serves them all."""
    streams: list[object] = []

    def handler(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        streams.append(request.connection.stream)  # type: ignore[attr-defined]
        echo(request)

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True)
    first = await exchange(conn, path="/1")
    second = await exchange(conn, "POST", body=b"two", path="/2")
    third = await exchange(HTTP1Connection(stream, True), path="/3")
    assert [keep for keep, _ in (first, second, third)] == [True, True, True]
    assert [got.body for _, got in (first, second, third)] == [
        b"GET /1 ",
        b"POST /2 two",
        b"GET /3 ",
    ]
    assert len(streams) == 3 and len(set(map(id, streams))) == 1
    stream.close()


async def test_connection_close_ends_keep_alive(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    keep, got = await exchange(conn, headers={"Connection": "close"})
    assert keep is False and got.body == b"GET / "
    assert stream.closed()


async def test_no_keep_alive_parameter(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True, params(no_keep_alive=True))
    keep, got = await exchange(conn)
    assert keep is False and got.body == b"GET / "
    assert stream.closed()


async def test_head_has_no_body(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    """The Content-Length of a HEAD answer describes the GET's body: none is
    read, and the next exchange is framed right."""

    def handler(request: HTTPServerRequest) -> None:
        respond(request, b"hello")

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True)
    keep, got = await exchange(conn, "HEAD")
    assert keep is True
    assert got.headers[0]["Content-Length"] == "5" and got.body == b""
    keep, got = await exchange(conn)
    assert keep is True and got.body == b"hello"
    stream.close()


@pytest.mark.parametrize("code", [204, 304])
async def test_bodiless_statuses(io_loop: IOLoop, serve: Callable[..., int], code: int) -> None:
    def handler(request: HTTPServerRequest) -> None:
        if request.path == "/empty":
            headers = {"Content-Length": "5"} if code == 304 else {}
            assert request.connection is not None
            request.connection.write_headers(
                ResponseStartLine("HTTP/1.1", code, "X"), HTTPHeaders(headers)
            )
            request.connection.finish()
        else:
            respond(request, b"next")

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True)
    keep, got = await exchange(conn, path="/empty")
    assert keep is True and got.code == code and got.body == b""
    keep, got = await exchange(conn, path="/next")
    assert keep is True and got.body == b"next"
    stream.close()


async def test_chunked_response(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    def handler(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders(), b"ab")
        conn.write(b"cd" * 50_000)
        conn.finish()

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True, params(chunk_size=4096))
    keep, got = await exchange(conn)
    assert keep is True
    assert got.headers[0]["Transfer-Encoding"] == "chunked"
    assert got.body == b"ab" + b"cd" * 50_000
    assert max(map(len, got.chunks)) <= 4096
    stream.close()


async def test_expect_100_continue(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    """The client waits for ``100 Continue`` before its body: the delegate
    sees the 100 first (as in Tornado), sends the body, then gets the answer."""
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    conn.write_headers(
        RequestStartLine("PUT", "/c", "HTTP/1.1"),
        HTTPHeaders({"Host": "h", "Content-Length": "4", "Expect": "100-continue"}),
    )

    class SendOnContinue(Recorder):
        def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
            super().headers_received(start_line, headers)
            if start_line.code == 100:
                conn.write(b"body")
                conn.finish()

    got = SendOnContinue()
    assert await conn.read_response(got) is True
    assert [line.code for line in got.start_lines] == [100, 200]
    assert got.body == b"PUT /c body"
    stream.close()


async def test_decompress(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    payload = b"squeeze me " * 1000

    def handler(request: HTTPServerRequest) -> None:
        respond(request, gzip.compress(payload), **{"Content-Encoding": "gzip"})

    stream = await connect(serve(handler))
    conn = HTTP1Connection(stream, True, params(decompress=True, chunk_size=1024))
    keep, got = await exchange(conn)
    assert keep is True and got.body == payload
    assert "Content-Encoding" not in got.headers[0]
    assert got.headers[0]["X-Consumed-Content-Encoding"] == "gzip"
    assert max(map(len, got.chunks)) <= 1024
    stream.close()


async def test_write_errors(io_loop: IOLoop, serve: Callable[..., int]) -> None:
    """What the application writes wrong is refused before it reaches the wire."""
    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    with pytest.raises(HTTPOutputError):
        conn.write(b"early")
    with pytest.raises(ValueError):
        conn.write_headers(RequestStartLine("GET", "/a\r\nX: y", "HTTP/1.1"), HTTPHeaders())
    conn.write_headers(
        RequestStartLine("POST", "/", "HTTP/1.1"), HTTPHeaders({"Host": "h", "Content-Length": "3"})
    )
    with pytest.raises(HTTPOutputError, match="more data"):
        conn.write(b"four")
    assert stream.closed()  # the framing broke: nothing more goes out

    stream = await connect(serve(echo))
    conn = HTTP1Connection(stream, True)
    conn.write_headers(
        RequestStartLine("POST", "/", "HTTP/1.1"), HTTPHeaders({"Host": "h", "Content-Length": "3"})
    )
    conn.write(b"ab")
    with pytest.raises(HTTPOutputError, match="short"):
        conn.finish()
    assert stream.closed()


# -- our client against hostile servers -------------------------------------------------

OK_HEAD = b"HTTP/1.1 200 OK\r\n"


async def refused(conn: HTTP1Connection, match: str, **kwargs: Any) -> Recorder:
    """The exchange fails with HTTPInputError matching ``match``, logged,
    the delegate told, the connection closed."""
    send_request(conn, **kwargs)
    got = Recorder()
    with (
        ExpectLog("reactor.general", "Malformed HTTP message", level=logging.INFO),
        pytest.raises(HTTPInputError, match=match),
    ):
        await conn.read_response(got)
    assert got.events[-1:] == ["close"] and "finish" not in got.events
    assert conn.stream.closed()
    return got


HOSTILE = {
    "both-lengths": (
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "both",
    ),
    "both-lengths-reversed": (
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
        "both",
    ),
    "other-coding": (b"Transfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
    "unequal-lengths": (b"Content-Length: 3, 4\r\n\r\nabcd", "unequal"),
    "repeated-unequal": (b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "unequal"),
    "negative-length": (b"Content-Length: -1\r\n\r\n", "Content-Length"),
    "signed-length": (b"Content-Length: +3\r\n\r\nabc", "Content-Length"),
    "hex-length": (b"Content-Length: 0x3\r\n\r\nabc", "Content-Length"),
    "bad-chunk-size": (b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "chunk size"),
    "signed-chunk-size": (
        b"Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
        "chunk size",
    ),
    "spaced-chunk-size": (
        b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
        "chunk size",
    ),
    "prefixed-chunk-size": (
        b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        "chunk size",
    ),
    "chunk-without-crlf": (b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "CRLF"),
    "long-chunk-line": (
        b"Transfer-Encoding: chunked\r\n\r\n3;" + b"e" * 2000 + b"\r\nabc\r\n0\r\n\r\n",
        "chunk-size line",
    ),
    "bad-trailer": (b"Transfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", "colon"),
    "obs-fold": (b"X-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n", "obs-fold"),
    "204-with-body": (b"Content-Length: 3\r\n\r\nabc", "204"),
    "100-with-body": (b"Content-Length: 3\r\n\r\nabc", "100"),
    "http10-chunked": (b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"),
}
STATUS_LINES = {
    "204-with-body": b"HTTP/1.1 204 No Content\r\n",
    "100-with-body": b"HTTP/1.1 100 Continue\r\n",
    "http10-chunked": b"HTTP/1.0 200 OK\r\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_framing_is_refused(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]], case: str
) -> None:
    rest, match = HOSTILE[case]
    conn = await scripted([STATUS_LINES.get(case, OK_HEAD) + rest])
    await refused(conn, match)


async def test_bad_status_line(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted([b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"])
    got = await refused(conn, "response line")
    assert got.events == ["close"]  # told, though it never saw headers


async def test_oversize_headers(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted(
        [OK_HEAD + b"X-Flood: " + b"a" * 5000 + b"\r\n\r\n"], max_header_size=1024
    )
    await refused(conn, "headers too long")


async def test_oversize_trailers(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 100) for i in range(30))
    answer = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" + trailers + b"\r\n"
    conn = await scripted([answer], max_header_size=1024)
    await refused(conn, "trailers")


async def test_body_over_max_body_size(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """Refused before reading when the Content-Length says so; as it comes
    when chunked or read to the close."""
    body = b"z" * 3000
    chunked = b"".join(b"64\r\n" + b"z" * 100 + b"\r\n" for _ in range(30)) + b"0\r\n\r\n"
    answers = [
        OK_HEAD + b"Content-Length: 3000\r\n\r\n" + body,
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
        b"HTTP/1.0 200 OK\r\n\r\n" + body,
    ]
    for answer, match in zip(answers, ["Content-Length", "chunked body", "body over"], strict=True):
        conn = await scripted([answer], max_body_size=1000, chunk_size=100)
        got = await refused(conn, match)
        assert len(got.body) <= 1000


async def test_set_max_body_size_from_headers_received(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted([OK_HEAD + b"Content-Length: 3000\r\n\r\n" + b"z" * 3000])

    class Lower(Recorder):
        def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
            super().headers_received(start_line, headers)
            conn.set_max_body_size(100)

    send_request(conn)
    with (
        ExpectLog("reactor.general", "Malformed HTTP message"),
        pytest.raises(HTTPInputError, match="max_body_size"),
    ):
        await conn.read_response(Lower())


async def test_gzip_bomb(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """max_body_size bounds what decompression makes, not only what is sent."""
    bomb = gzip.compress(b"\0" * 2_000_000)
    assert len(bomb) < 10_000
    answer = OK_HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb
    conn = await scripted([answer], decompress=True, max_body_size=100_000)
    got = await refused(conn, "decompressed")
    assert len(got.body) <= 100_000


async def test_ten_1xx_responses_are_skipped(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" * 10 + OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    conn = await scripted([answer], hold=True)
    keep, got = await exchange(conn)
    assert keep is True
    assert [line.code for line in got.start_lines] == [100] * 10 + [200]
    assert got.body == b"ok"


async def test_eleven_1xx_responses_are_refused(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    answer = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" * 11
        + OK_HEAD
        + b"Content-Length: 0\r\n\r\n"
    )
    conn = await scripted([answer], hold=True)
    got = await refused(conn, "1xx")
    assert len(got.start_lines) == 10


@pytest.mark.parametrize(
    "answer",
    [
        OK_HEAD + b"Content-Length: 10\r\n\r\nabcd",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\na\r\nabcd",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
    ],
    ids=["content-length", "mid-chunk", "before-last-chunk"],
)
async def test_response_cut_mid_body(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]], answer: bytes
) -> None:
    conn = await scripted([answer])
    send_request(conn)
    got = Recorder()
    with pytest.raises(StreamClosedError):
        await conn.read_response(got)
    assert got.events == ["headers", "close"]
    assert got.body in (b"", b"abcd")


async def test_close_before_any_response(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted([b""])
    send_request(conn)
    got = Recorder()
    with pytest.raises(StreamClosedError):
        await conn.read_response(got)
    assert got.events == []


async def test_body_read_to_the_close(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted([b"HTTP/1.0 200 OK\r\nX: 1\r\n\r\n" + b"y" * 50_000])
    keep, got = await exchange(conn)
    assert keep is False and got.body == b"y" * 50_000 and got.events == ["headers", "finish"]
    assert conn.stream.closed()


@pytest.mark.parametrize(
    ("answer", "keep"),
    [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
    ],
    ids=["1.0", "1.0-keep-alive", "1.1-close", "1.1"],
)
async def test_keep_alive_rules(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]], answer: bytes, keep: bool
) -> None:
    conn = await scripted([answer], hold=True)
    result, got = await exchange(conn)
    assert (result, got.body) == (keep, b"ok")
    assert conn.stream.closed() is not keep


async def test_lenient_but_safe_framing(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """What RFC 9112 allows is read: equal Content-Length copies, chunk
    extensions, trailers, bare LF line ends in the head, a leading empty line."""
    answers = [
        OK_HEAD + b"Content-Length: 3, 3\r\n\r\nabc",
        OK_HEAD + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        OK_HEAD
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"1;a=b\r\na\r\n2 ; c\r\nbc\r\n0;end\r\nX-Sum: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
        b"\r\n" + OK_HEAD + b"Content-Length: 3\r\n\r\nabc",
    ]
    conn = await scripted(answers, hold=True)
    for _ in answers:
        keep, got = await exchange(conn)
        assert keep is True and got.body == b"abc"


async def test_many_tiny_chunks_are_joined(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """A peer sending one-byte chunks does not get one data_received each."""
    chunks = b"1\r\nq\r\n" * 5000 + b"0\r\n\r\n"
    conn = await scripted([OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunks], hold=True)
    keep, got = await exchange(conn)
    assert keep is True and got.body == b"q" * 5000
    assert len(got.chunks) < 500


async def test_header_timeout(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """A server that never answers: the read gives up, False, closed."""
    conn = await scripted([b""], hold=True, header_timeout=0.05)
    send_request(conn)
    got = Recorder()
    with ExpectLog("reactor.general", "Timed out reading the headers"):
        assert await conn.read_response(got) is False
    assert conn.stream.closed() and got.events == []


async def test_body_timeout(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    conn = await scripted(
        [OK_HEAD + b"Content-Length: 10\r\n\r\nabc"], hold=True, body_timeout=0.05
    )
    send_request(conn)
    got = Recorder()
    with ExpectLog("reactor.general", "Timed out reading the body"):
        assert await conn.read_response(got) is False
    assert got.events == ["headers", "close"] and conn.stream.closed()


async def test_delegate_that_raises(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """Logged with its traceback; the connection closes, the read says False."""
    conn = await scripted([OK_HEAD + b"Content-Length: 2\r\n\r\nok"], hold=True)

    class Broken(Recorder):
        def data_received(self, chunk: bytes) -> None:
            raise RuntimeError("boom")

    send_request(conn)
    got = Broken()
    with ExpectLog("reactor.application", "Uncaught exception", level=logging.ERROR):
        assert await conn.read_response(got) is False
    assert got.events == ["headers", "close"] and conn.stream.closed()


async def test_delegate_awaitables_hold_the_reading(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """Nothing more is delivered until a returned awaitable is done."""
    gate = Event()
    reached = Event()
    conn = await scripted([OK_HEAD + b"Content-Length: 4\r\n\r\nabcd"], hold=True)

    class Slow(Recorder):
        def headers_received(self, start_line: Any, headers: HTTPHeaders) -> Awaitable[None]:
            super().headers_received(start_line, headers)
            reached.set()
            return gate.wait()

    send_request(conn)
    got = Slow()
    future = conn.read_response(got)
    await reached.wait()
    for _ in range(5):  # the body is there to be read: give the loop a chance to misdeliver it
        await gen.moment
    assert got.events == ["headers"] and got.chunks == [] and not future.done()
    gate.set()
    assert await future is True
    assert got.events == ["headers", "finish"] and got.body == b"abcd"


async def test_detach_after_switching_protocols(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nafter"
    conn = await scripted([answer], hold=True)
    taken: list[Any] = []

    class Taker(Recorder):
        def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
            super().headers_received(start_line, headers)
            taken.append(conn.detach())

    send_request(conn, headers={"Upgrade": "x", "Connection": "Upgrade"})
    assert await conn.read_response(Taker()) is False
    assert conn.stream is None
    [stream] = taken
    assert await stream.read_bytes(5) == b"after"  # what followed the head is kept
    stream.close()


# -- the server side: a server of its own -----------------------------------------------


class Answering(HTTPMessageDelegate):
    """Collects a request, then answers it with ``answer(conn, start_line, headers, body)``."""

    def __init__(self, conn: HTTP1Connection, answer: Callable[..., None]) -> None:
        self.conn = conn
        self.answer = answer
        self.start_line: Any = None
        self.headers = HTTPHeaders()
        self.body = bytearray()

    def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
        self.start_line, self.headers = start_line, headers

    def data_received(self, chunk: bytes) -> None:
        self.body += chunk

    def finish(self) -> None:
        self.answer(self.conn, self.start_line, self.headers, bytes(self.body))


def echo_answer(conn: HTTP1Connection, start_line: Any, headers: HTTPHeaders, body: bytes) -> None:
    data = f"{start_line.method} {start_line.path} ".encode() + body
    conn.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(data))}),
        data,
    )
    conn.finish()


class OwnServer(TCPServer):
    """Calls read_response in a loop on each accepted stream, a new
    HTTP1Connection per request, and records what each read resolved to."""

    def __init__(self, answer: Callable[..., None] = echo_answer, **kwargs: Any) -> None:
        super().__init__()
        self.answer = answer
        self.params = params(**kwargs)
        self.results: list[Any] = []
        self.closed = Event()
        self.idle = Idle()

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.idle.enter()
        try:
            while True:
                conn = HTTP1Connection(stream, False, self.params, context=address)
                try:
                    keep = await conn.read_response(Answering(conn, self.answer))
                except StreamClosedError:
                    self.results.append("closed")
                    break
                self.results.append(keep)
                if not keep:
                    break
        finally:
            stream.close()
            self.closed.set()
            self.idle.leave()


@pytest.fixture
def own_server(io_loop: IOLoop) -> Iterator[Callable[..., tuple[OwnServer, int]]]:
    servers: list[OwnServer] = []

    def start(answer: Callable[..., None] = echo_answer, **kwargs: Any) -> tuple[OwnServer, int]:
        server = OwnServer(answer, **kwargs)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        servers.append(server)
        return server, int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.idle.wait, timeout=CLIENT_TIMEOUT)


async def blocking(io_loop: IOLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread, while the loop keeps serving."""
    return await io_loop.run_in_executor(None, fn, *args)


def with_http_client(port: int) -> list[tuple[int, bytes, bool]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    results = []
    try:
        for method, url, body, chunked in [
            ("GET", "/a", None, False),
            ("POST", "/b", b"payload", False),
            ("POST", "/c", iter([b"chun", b"ked"]), True),
            ("GET", "/d", None, False),
        ]:
            conn.request(method, url, body=body, encode_chunked=chunked)
            response = conn.getresponse()
            results.append((response.status, response.read(), response.will_close))
    finally:
        conn.close()
    return results


async def test_own_server_answers_http_client(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    server, port = own_server()
    results = await blocking(io_loop, with_http_client, port)
    assert results == [
        (200, b"GET /a ", False),
        (200, b"POST /b payload", False),
        (200, b"POST /c chunked", False),
        (200, b"GET /d ", False),
    ]
    await server.closed.wait()
    assert server.results == [True, True, True, True, "closed"]


def raw_exchange(port: int, data: bytes, then: bytes = b"") -> bytes:
    """Send ``data`` (then ``then`` once an answer began), read to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        if then:
            received = sock.recv(65536)
            try:
                sock.sendall(then)
            except OSError:
                pass
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            received += piece
        return received


BAD_REQUESTS = {
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "both-lengths": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    ),
    "unequal-lengths": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab", 400),
    "bad-length": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", 400),
    "bad-chunk": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    "other-coding": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "http10-chunked": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad-version": (b"GET / HTTP/1.7\r\nHost: a\r\n\r\n", 400),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "bad-request-line": (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "too-large-body": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
async def test_own_server_refuses_bad_requests(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]], case: str
) -> None:
    """A status, ``Connection: close``, a log line; the next request on the
    connection is never read, and read_response resolves False."""
    data, code = BAD_REQUESTS[case]
    server, port = own_server(max_body_size=1000)
    with ExpectLog("reactor.general", "Malformed HTTP message", level=logging.INFO):
        response = await blocking(
            io_loop, raw_exchange, port, data + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        await server.closed.wait()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % code), response
    assert b"Connection: close" in head and body == b""
    assert server.results == [False]


async def test_own_server_refuses_oversize_headers(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """The head is read within max_header_size: past it the stream is closed
    at once (no answer can be framed), and the read says False."""
    server, port = own_server(max_header_size=1024)
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-Flood: " + b"f" * 100_000 + b"\r\n\r\n"
    with ExpectLog(
        "reactor.general", "Malformed HTTP message.*headers too long", level=logging.INFO
    ):
        response = await blocking(io_loop, raw_exchange, port, data)
        await server.closed.wait()
    assert b"200" not in response
    assert server.results == [False]


async def test_own_server_expect_100_continue(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    server, port = own_server()
    head = (
        b"PUT /e HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    response = await blocking(io_loop, raw_exchange, port, head, b"abc")
    assert response.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), response
    assert response.endswith(b"\r\n\r\nPUT /e abc")
    await server.closed.wait()
    assert server.results == [False]


async def test_own_server_http10_keep_alive(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    server, port = own_server()
    one = b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    two = b"GET /2 HTTP/1.0\r\n\r\n"
    response = await blocking(io_loop, raw_exchange, port, one + two)
    first, second = response.split(b"HTTP/1.0", 1)[0], b""
    assert response.count(b"HTTP/1.1 200 OK") == 2, response
    first, _, second = response.partition(b"GET /1 ")
    assert b"Connection: Keep-Alive" in first
    assert b"Connection: close" in second and second.endswith(b"GET /2 ")
    await server.closed.wait()
    assert server.results == [True, False]


async def test_own_server_chunked_answer_and_head(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """No Content-Length: chunked for HTTP/1.1, the close for HTTP/1.0;
    a HEAD answer carries no body."""

    def answer(conn: HTTP1Connection, start_line: Any, headers: HTTPHeaders, body: bytes) -> None:
        conn.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders(),
            b"" if start_line.method == "HEAD" else b"ab",
        )
        if start_line.method != "HEAD":
            conn.write(b"cd")
        conn.finish()

    server, port = own_server(answer)
    response = await blocking(
        io_loop,
        raw_exchange,
        port,
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET / HTTP/1.0\r\n\r\n",
    )
    head_answer, get_answer, old_answer = response.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert head_answer == b"\r\n"  # no headers, no body
    assert b"Transfer-Encoding: chunked" in get_answer
    assert get_answer.endswith(b"\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    assert b"Connection: close" in old_answer and old_answer.endswith(b"\r\n\r\nabcd")
    await server.closed.wait()
    assert server.results == [True, True, False]


async def test_own_server_early_answer(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """An answer before the body was read: the body is discarded, never
    delivered, and the connection closes after the answer."""
    bodies: list[bytes] = []

    class Early(Answering):
        def headers_received(self, start_line: Any, headers: HTTPHeaders) -> None:
            self.conn.write_headers(
                ResponseStartLine("HTTP/1.1", 403, "Forbidden"),
                HTTPHeaders({"Content-Length": "2"}),
                b"no",
            )
            self.conn.finish()

        def data_received(self, chunk: bytes) -> None:
            bodies.append(chunk)

    class EarlyServer(OwnServer):
        async def handle_stream(self, stream: IOStream, address: Any) -> None:
            conn = HTTP1Connection(stream, False, self.params)
            self.idle.enter()
            try:
                self.results.append(await conn.read_response(Early(conn, echo_answer)))
            except StreamClosedError:
                self.results.append("closed")
            finally:
                self.closed.set()
                self.idle.leave()

    server = EarlyServer()
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    port = int(sock.getsockname()[1])
    try:
        response = await blocking(
            io_loop,
            raw_exchange,
            port,
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n",
            b"b" * 20000,
        )
        await server.closed.wait()
    finally:
        server.stop()
    assert response.startswith(b"HTTP/1.1 403 Forbidden\r\n") and response.endswith(b"\r\n\r\nno")
    assert b"Connection: close" in response
    assert bodies == []
    assert server.results == [False]


async def test_own_server_delegate_that_raises(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    def answer(conn: HTTP1Connection, start_line: Any, headers: HTTPHeaders, body: bytes) -> None:
        if start_line.path == "/boom":
            raise RuntimeError("boom")
        echo_answer(conn, start_line, headers, body)

    server, port = own_server(answer)
    with ExpectLog("reactor.application", "Uncaught exception", level=logging.ERROR):
        response = await blocking(
            io_loop, raw_exchange, port, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        await server.closed.wait()
    assert response == b""
    assert server.results == [False]
    # The server goes on with other connections.
    server.closed.clear()
    response = await blocking(
        io_loop, raw_exchange, port, b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert response.endswith(b"GET /ok ")


async def test_own_server_refuses_a_body_that_is_not_gzip(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """The delegate's HTTPInputError (a gzip body that is not) is the
    client's fault: 400. Here it comes while the next chunk-size line is
    awaited (the client stalls), and that read is dropped with the connection."""
    server, port = own_server(decompress=True)
    head = (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nnotgz\r\n"
    )

    def stall_after(sock_data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as sock:
            sock.sendall(sock_data)
            received = b""
            while piece := sock.recv(65536):
                received += piece
            return received

    with ExpectLog("reactor.general", "Malformed HTTP message.*gzip", level=logging.INFO):
        response = await blocking(io_loop, stall_after, head)
        await server.closed.wait()
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response
    assert server.results == [False]


def curl_verbose(*args: str, data: bytes | None = None) -> tuple[bytes, bytes]:
    """Run curl; its output and its stderr (with ``-v``: the exchange)."""
    return run_curl("-v", *args, data=data)


async def test_own_server_answers_curl(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]], need_curl: str
) -> None:
    """Two URLs on one connection, then a 100-continue upload (curl sends
    ``Expect`` for a body this large)."""
    server, port = own_server()
    url = f"http://127.0.0.1:{port}"
    out, log = await blocking(io_loop, curl_verbose, f"{url}/a", f"{url}/b")
    assert out == b"GET /a GET /b "
    await server.closed.wait()
    assert server.results == [True, True, "closed"]  # one connection, two exchanges
    payload = b"p" * 2_000_000
    out, log = await blocking(
        io_loop,
        lambda: curl_verbose(
            "--data-binary", "@-", "-H", "Expect: 100-continue", url, data=payload
        ),
    )
    assert out == b"POST / " + payload
    assert b"HTTP/1.1 100 Continue" in log


async def test_own_server_close_callback(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """A client that leaves while the application prepares its answer: the
    close callback runs, and read_response resolves False."""
    called = Event()
    answering = Event()

    def never(conn: HTTP1Connection, start_line: Any, headers: HTTPHeaders, body: bytes) -> None:
        conn.set_close_callback(called.set)
        answering.set()

    server, port = own_server(never)
    stream = await connect(port)
    await stream.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await answering.wait()
    stream.close()
    await called.wait()
    await server.closed.wait()
    assert server.results == [False]


async def test_own_server_time_limits(
    io_loop: IOLoop, own_server: Callable[..., tuple[OwnServer, int]]
) -> None:
    """A client that stalls in its headers, or in its body, is cut off."""
    server, port = own_server(header_timeout=0.05, body_timeout=0.05)
    for data, what in [
        (b"GET / HTTP/1.1\r\nHost:", "headers"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc", "body"),
    ]:
        server.closed.clear()
        with ExpectLog("reactor.general", f"Timed out reading the {what}"):
            stream = await connect(port)
            await stream.write(data)
            await server.closed.wait()
        assert await stream.read_until_close() == b""
        stream.close()
    assert server.results == [False, False]


FUZZ_SEEDS = [
    OK_HEAD + b"Content-Length: 5\r\nX-A: b\r\n\r\nhello",
    OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n" + OK_HEAD + b"Content-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\n\r\nto the close",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out))
        action = rng.randrange(4)
        if action == 0:
            out[pos] = rng.choice(b"\r\n :;,0fF-+\x00\x7f\xffa9")
        elif action == 1:
            del out[pos]
        elif action == 2:
            out[pos:pos] = rng.choice([b"\r\n", b"\n", b" ", b",", b"0", b"Content-Length: 3\r\n"])
        else:
            out[pos:] = out[pos : pos + rng.randrange(8)]  # cut
    return bytes(out)


async def test_mutated_responses_end_cleanly(
    io_loop: IOLoop, scripted: Callable[..., Awaitable[HTTP1Connection]]
) -> None:
    """Any bytes a server sends end the read with a result, HTTPInputError
    or StreamClosedError: never another error, never a hang; a refused
    response closes the connection and tells the delegate."""
    rng = random.Random(1234)
    outcomes: set[str] = set()
    for i in range(40):
        answer = mutate(rng, FUZZ_SEEDS[i % len(FUZZ_SEEDS)])
        conn = await scripted([answer], max_header_size=512, max_body_size=64)
        send_request(conn)
        got = Recorder()
        with ExpectLog("reactor.general", "Malformed HTTP message", required=False):
            try:
                await conn.read_response(got)
                outcomes.add("read")
            except HTTPInputError:
                outcomes.add("refused")
                assert conn.stream.closed() and got.events[-1] == "close", answer
            except StreamClosedError:
                outcomes.add("cut")
        assert got.events.count("finish") + got.events.count("close") <= 1, answer
    assert outcomes == {"read", "refused", "cut"}
