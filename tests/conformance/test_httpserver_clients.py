"""The HTTP server driven by real clients, on every backend.

The server runs on the test's loop; each client (``http.client``, ``curl`` in
a subprocess, or a raw socket speaking bytes we choose) runs in a thread of
the loop's executor, so the loop goes on serving while the client blocks.
Every client socket has a timeout: a server that never answers fails the
test instead of hanging it.

Every test also checks the log: nothing at ERROR and no traceback from
reactor's loggers (a client's protocol error is logged at INFO, without one).
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import io
import logging
import os
import random
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

from reactor import gen
from reactor.http1connection import _RequestConnection
from reactor.httpserver import HTTPServer
from reactor.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from reactor.ioloop import IOLoop
from reactor.locks import Condition
from reactor.netutil import bind_sockets
from reactor.testing.tls import TLSCertificate
from tests.util import LogRecords, run_curl

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

CLIENT_TIMEOUT = 4.0
"""Seconds any client waits for the server before the test fails."""

SOAK = os.environ.get("REACTOR_SOAK") == "1"
FUZZ_BATCHES = 150 if SOAK else 25
FUZZ_CONNECTIONS = 50
"""Connections per fuzz batch; each sends one to three requests, at least one
mutated (2,000 requests in all, or 12,000 with ``REACTOR_SOAK=1``)."""


# -- the log must stay clean -------------------------------------------------------


# -- the server --------------------------------------------------------------------


class Server(HTTPServer):
    """An HTTPServer that counts its connections and lets a test wait for them to close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted = 0
        self._closed = Condition()

    def handle_stream(self, stream: Any, address: Any) -> None:
        self.accepted += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self._closed.notify_all()

    async def all_closed(self, but: int = 0) -> None:
        """Wait until the server holds ``but`` connections at most."""
        deadline = datetime.timedelta(seconds=CLIENT_TIMEOUT)
        while len(self._connections) > but:
            if not await self._closed.wait(timeout=deadline):
                raise AssertionError(f"{len(self._connections)} connections still open")


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Callable[..., tuple[Server, int]]]:
    """``serve(callback, **kwargs) -> (server, port)``: a Server on 127.0.0.1."""
    servers: list[Server] = []

    def start(callback: Any, **kwargs: Any) -> tuple[Server, int]:
        server = Server(callback, **kwargs)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        servers.append(server)
        return server, int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.stop()
        for connection in list(server._connections):
            connection.close()


def respond(
    request: HTTPServerRequest,
    body: bytes = b"",
    code: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer ``request`` with ``body`` and its Content-Length."""
    fields = HTTPHeaders(headers or {})
    fields["Content-Length"] = str(len(body))
    assert request.connection is not None
    request.connection.write_headers(ResponseStartLine("HTTP/1.1", code, "OK"), fields, body)
    request.connection.finish()


async def blocking(io_loop: IOLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread, while the loop keeps serving."""
    return await io_loop.run_in_executor(None, fn, *args)


# -- raw sockets -------------------------------------------------------------------


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(reader: io.BufferedIOBase, method: str = "GET") -> Response:
    """One response from ``reader``, framed as RFC 9112 section 6.3 says."""
    line = reader.readline()
    if not line:
        raise EOFError("the server closed the connection")
    version, status, _ = line.split(b" ", 2)
    assert version == b"HTTP/1.1", line
    headers: dict[str, str] = {}
    while (line := reader.readline()) != b"\r\n":
        assert line.endswith(b"\r\n"), line
        name, _, value = line.decode("latin-1").partition(":")
        assert name.lower() not in headers, f"{name} sent twice"
        headers[name.lower()] = value.strip()
    code = int(status)
    if method == "HEAD" or code < 200 or code in (204, 304):
        body = b""
    elif headers.get("transfer-encoding") == "chunked":
        pieces = []
        while size := int(reader.readline().split(b";")[0], 16):
            pieces.append(reader.read(size))
            assert reader.readline() == b"\r\n"
        assert reader.readline() == b"\r\n"
        body = b"".join(pieces)
    elif "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    else:
        body = reader.read()
    return Response(code, headers, body)


def exchange(port: int, data: bytes, methods: list[str], to_close: bool = False) -> list[Response]:
    """Send ``data`` at once; read one response per method; then, if
    ``to_close``, check that the server closed the connection."""
    with connect(port) as sock:
        sock.sendall(data)
        reader = sock.makefile("rb")
        responses = [read_response(reader, method) for method in methods]
        if to_close:
            assert reader.read() == b"", "more data after the last response"
        return responses


def is_closed(reader: io.BufferedIOBase) -> bool:
    """True if the server has closed ``sock`` (and sent nothing more)."""
    try:
        return reader.read(1) == b""
    except ConnectionResetError:
        return True


# -- http.client -------------------------------------------------------------------


def echo_request(request: HTTPServerRequest) -> None:
    """Answer with what the server made of the request, as text lines."""
    lines = [
        f"method={request.method}",
        f"uri={request.uri}",
        f"version={request.version}",
        f"body={request.body!r}",
    ]
    for name, values in sorted(request.arguments.items()):
        lines.append(f"arg {name}={values!r}")
    for name, files in sorted(request.files.items()):
        for f in files:
            lines.append(f"file {name}={f.filename} {f.content_type} {f.body!r}")
    respond(request, "\n".join(lines).encode())


def http_client_request(
    port: int, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request(method, url, body, headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def test_get_query_arguments(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_request)
    status, body = await blocking(
        io_loop, http_client_request, port, "GET", "/path?a=1&b=x%20y&a=2&empty="
    )
    assert status == 200
    assert body.splitlines() == [
        b"method=GET",
        b"uri=/path?a=1&b=x%20y&a=2&empty=",
        b"version=HTTP/1.1",
        b"body=b''",
        b"arg a=[b'1', b'2']",
        b"arg b=[b'x y']",
        b"arg empty=[b'']",
    ]


async def test_post_urlencoded(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_request)
    form = urllib.parse.urlencode({"name": "caf\u00e9", "n": "1&2"}) + "&n=3"
    status, body = await blocking(
        io_loop,
        http_client_request,
        port,
        "POST",
        "/form?q=0",
        form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    assert b"arg n=[b'1&2', b'3']" in body.splitlines()
    assert b"arg name=[b'caf\\xc3\\xa9']" in body.splitlines()
    assert b"arg q=[b'0']" in body.splitlines()


async def test_post_multipart(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_request)
    boundary = "----reactor-boundary-1234"
    form = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="field"\r\n\r\n'
            "value\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="upload"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"\x00\x01\r\n\xff"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, body = await blocking(
        io_loop,
        http_client_request,
        port,
        "POST",
        "/upload",
        form,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200
    lines = body.splitlines()
    assert b"arg field=[b'value']" in lines
    assert b"file upload=a.bin application/octet-stream b'\\x00\\x01\\r\\n\\xff'" in lines


def several_requests(port: int, requests: list[tuple[str, str]]) -> list[tuple[int, bytes]]:
    """``(method, url)`` requests one after the other on one HTTPConnection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    results = []
    try:
        for method, url in requests:
            conn.request(method, url)
            response = conn.getresponse()
            results.append((response.status, response.read()))
            assert not response.will_close
        return results
    finally:
        conn.close()


async def test_keep_alive_reuses_one_connection(io_loop: IOLoop, serve: Any) -> None:
    contexts = []
    streams = []

    def handle(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert isinstance(conn, _RequestConnection)
        contexts.append(conn.context)
        streams.append(conn.stream)
        respond(request, request.path.encode())

    server, port = serve(handle)
    urls = [f"/{i}" for i in range(5)]
    results = await blocking(io_loop, several_requests, port, [("GET", u) for u in urls])
    assert results == [(200, u.encode()) for u in urls]
    assert server.accepted == 1
    assert len({id(c) for c in contexts}) == 1
    assert len({id(s) for s in streams}) == 1
    await server.all_closed()


def head_then_get(port: int) -> tuple[http.client.HTTPResponse, bytes, int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("HEAD", "/")
        head = conn.getresponse()
        head_body = head.read()
        # The connection is reused (http.client may drop stray bytes with the
        # HEAD response's buffer: the raw-socket test below catches those).
        conn.request("GET", "/")
        get = conn.getresponse()
        return head, head_body, get.status, get.read()
    finally:
        conn.close()


async def test_head_keeps_content_length_and_sends_no_body(io_loop: IOLoop, serve: Any) -> None:
    # The handler writes the same response for HEAD as for GET, body included:
    # the connection must drop the body and keep the Content-Length.
    server, port = serve(lambda request: respond(request, b"eleven char"))
    head, head_body, get_status, get_body = await blocking(io_loop, head_then_get, port)
    assert head.status == 200
    assert head.getheader("Content-Length") == "11"
    assert head.getheader("Transfer-Encoding") is None
    assert head_body == b""
    assert (get_status, get_body) == (200, b"eleven char")
    assert server.accepted == 1


async def test_head_over_raw_socket_has_no_body(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(lambda request: respond(request, b"eleven char"))
    # With Connection: close, all the server sends after the head is nothing.
    request = b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    data = await blocking(io_loop, raw_until_close, port, request)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nContent-Length: 11" in head
    assert rest == b""


def raw_until_close(port: int, data: bytes) -> bytes:
    """Send ``data``, then read until the server closes."""
    with connect(port) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


async def test_response_without_length_is_chunked(io_loop: IOLoop, serve: Any) -> None:
    pieces = [b"first,", b"second,", b"x" * 10000, b"last"]

    def handle(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders(), pieces[0])
        io_loop.add_callback(write_rest, conn)

    def write_rest(conn: HTTPConnection) -> None:
        for piece in pieces[1:]:
            conn.write(piece)
        conn.finish()

    server, port = serve(handle)

    def get_twice() -> list[tuple[str | None, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        try:
            results = []
            for _ in range(2):
                conn.request("GET", "/")
                response = conn.getresponse()
                results.append((response.getheader("Transfer-Encoding"), response.read()))
            return results
        finally:
            conn.close()

    results = await blocking(io_loop, get_twice)
    assert results == [("chunked", b"".join(pieces))] * 2
    assert server.accepted == 1


async def test_http10_without_length_is_ended_by_close(io_loop: IOLoop, serve: Any) -> None:
    versions = []

    def handle(request: HTTPServerRequest) -> None:
        versions.append(request.version)
        conn = request.connection
        assert conn is not None
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders(), b"part1,")
        conn.write(b"part2")
        conn.finish()

    _, port = serve(handle)

    def http10_client() -> tuple[str | None, str | None, bytes, bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        conn._http_vsn = 10  # type: ignore[attr-defined]
        conn._http_vsn_str = "HTTP/1.0"  # type: ignore[attr-defined]
        try:
            conn.request("GET", "/", headers={"Connection": "keep-alive"})
            response = conn.getresponse()
            return (
                response.getheader("Transfer-Encoding"),
                response.getheader("Connection"),
                response.read(),
                response.will_close,
            )
        finally:
            conn.close()

    # Even with keep-alive asked for: without a length, only the close ends the body.
    assert await blocking(io_loop, http10_client) == (None, "close", b"part1,part2", True)
    data = await blocking(io_loop, raw_until_close, port, b"GET / HTTP/1.0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert body == b"part1,part2"
    assert versions == ["HTTP/1.0", "HTTP/1.0"]


def http10_keep_alive(port: int) -> tuple[list[Response], bool]:
    request = b"GET /%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    with connect(port) as sock:
        reader = sock.makefile("rb")
        responses = []
        for i in range(3):
            sock.sendall(request % i)
            responses.append(read_response(reader))
        # Without keep-alive, this is the last one.
        sock.sendall(b"GET /last HTTP/1.0\r\n\r\n")
        responses.append(read_response(reader))
        return responses, is_closed(reader)


async def test_http10_keep_alive_with_length(io_loop: IOLoop, serve: Any) -> None:
    server, port = serve(lambda request: respond(request, request.uri.encode()))
    responses, closed = await blocking(io_loop, http10_keep_alive, port)
    assert [r.body for r in responses] == [b"/0", b"/1", b"/2", b"/last"]
    assert [r.headers.get("connection", "").lower() for r in responses] == [
        "keep-alive",
        "keep-alive",
        "keep-alive",
        "close",
    ]
    assert closed
    assert server.accepted == 1


async def test_no_body_statuses_keep_the_connection(io_loop: IOLoop, serve: Any) -> None:
    def handle(request: HTTPServerRequest) -> None:
        code = int(request.path[1:])
        conn = request.connection
        assert conn is not None
        headers = HTTPHeaders({"Content-Length": "100"} if code == 304 else {})
        conn.write_headers(ResponseStartLine("HTTP/1.1", code, "X"), headers)
        conn.finish()

    server, port = serve(handle)
    requests = [("GET", "/204"), ("GET", "/304"), ("GET", "/204")]
    results = await blocking(io_loop, several_requests, port, requests)
    assert results == [(204, b""), (304, b""), (204, b"")]
    assert server.accepted == 1


async def test_large_bodies_both_ways(io_loop: IOLoop, serve: Any) -> None:
    def handle(request: HTTPServerRequest) -> None:
        conn = request.connection
        assert conn is not None
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders())
        body = request.body
        for start in range(0, len(body), 1 << 20):  # chunked, in 1 MiB pieces
            conn.write(body[start : start + (1 << 20)])
        conn.finish()

    _, port = serve(handle)
    payload = random.Random(1).randbytes(8 << 20)

    def post() -> tuple[int, bytes]:
        return http_client_request(port, "POST", "/", payload)

    status, body = await blocking(io_loop, post)
    assert status == 200
    assert body == payload


# -- request bodies: chunked, 100-continue, gzip -----------------------------------


def echo_body(request: HTTPServerRequest) -> None:
    te = request.headers.get("Transfer-Encoding", "-")
    consumed = request.headers.get("X-Consumed-Content-Encoding", "-")
    respond(request, request.body, headers={"X-TE": te, "X-Consumed": consumed})


async def test_chunked_request_body_from_http_client(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    pieces = [b"hello ", b"", b"chunked ", b"x" * 70000, b"world"]

    def send() -> tuple[int, str | None, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
        try:
            conn.request("POST", "/", body=iter(pieces), encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.getheader("X-TE"), response.read()
        finally:
            conn.close()

    assert await blocking(io_loop, send) == (200, "chunked", b"".join(pieces))


async def test_chunk_extensions_and_trailers(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n"
        b'1;a=b;c="d"\r\n \r\n'
        b"A\r\n0123456789\r\n"
        b"0\r\nTrailer: x\r\nOther-Trailer: y\r\n\r\n"
    )
    # Twice on one connection: the trailers must end the first message exactly.
    [first, second] = await blocking(io_loop, exchange, port, request * 2, ["POST", "POST"])
    assert first == second
    assert first.status == 200
    assert first.body == b"hello 0123456789"


def expect_continue(port: int, request: bytes, body: bytes) -> tuple[Response, Response]:
    """Send the head, read the interim response, only then send the body."""
    with connect(port) as sock:
        reader = sock.makefile("rb")
        sock.sendall(request)
        interim = read_response(reader, "POST")
        sock.sendall(body)
        return interim, read_response(reader, "POST")


async def test_expect_100_continue(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    interim, final = await blocking(io_loop, expect_continue, port, head, b"hello")
    assert interim.status == 100
    assert final.status == 200
    assert final.body == b"hello"


async def test_expect_100_continue_chunked_body(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n"
    )
    interim, final = await blocking(io_loop, expect_continue, port, head, b"3\r\nabc\r\n0\r\n\r\n")
    assert interim.status == 100
    assert (final.status, final.body) == (200, b"abc")


async def test_no_100_continue_for_http10(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    request = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"
    data = await blocking(io_loop, raw_until_close, port, request)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\nhi")


class Refuser(HTTPServerConnectionDelegate):
    """Answers ``code`` from ``headers_received``, before any body: at once,
    or (``later``) from the awaitable headers_received returns."""

    def __init__(self, code: int, later: bool = False) -> None:
        self.code = code
        self.later = later
        self.bodies: list[bytes] = []

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        refuser = self

        class Delegate(HTTPMessageDelegate):
            def headers_received(
                self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
            ) -> Any:
                if refuser.later:
                    return self.refuse_later()
                self.refuse()
                return None

            async def refuse_later(self) -> None:
                await gen.sleep(0.01)
                self.refuse()

            def refuse(self) -> None:
                request_conn.write_headers(
                    ResponseStartLine("HTTP/1.1", refuser.code, "No"),
                    HTTPHeaders({"Content-Length": "2"}),
                    b"no",
                )
                request_conn.finish()

            def data_received(self, chunk: bytes) -> None:
                refuser.bodies.append(chunk)

        return Delegate()


def expect_refused(port: int, head: bytes) -> tuple[Response, bool]:
    with connect(port) as sock:
        reader = sock.makefile("rb")
        sock.sendall(head)
        response = read_response(reader, "POST")
        # The body was never sent: the server must not wait for it.
        return response, is_closed(reader)


@pytest.mark.parametrize("code", [413, 417])
@pytest.mark.parametrize("later", [False, True], ids=["at-once", "from-awaitable"])
async def test_refusal_in_headers_received_sends_no_100(
    io_loop: IOLoop, serve: Any, code: int, later: bool
) -> None:
    refuser = Refuser(code, later)
    _, port = serve(refuser)
    head = (
        b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
    )
    response, closed = await blocking(io_loop, expect_refused, port, head)
    assert response.status == code  # not 100
    assert response.body == b"no"
    assert closed
    assert refuser.bodies == []


def gzip_post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("POST", "/", body, headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


async def test_gzip_request_is_decompressed(io_loop: IOLoop, serve: Any) -> None:
    seen: list[HTTPServerRequest] = []

    def handle(request: HTTPServerRequest) -> None:
        seen.append(request)
        echo_body(request)

    _, port = serve(handle, decompress_request=True)
    plain = b"".join(b"line %d of a compressible body\n" % i for i in range(20000))
    compressed = gzip.compress(plain)
    assert len(compressed) < len(plain) // 10
    status, headers, body = await blocking(
        io_loop, gzip_post, port, compressed, {"Content-Encoding": "gzip"}
    )
    assert status == 200
    assert body == plain
    assert headers["X-Consumed"] == "gzip"
    [request] = seen
    assert "Content-Encoding" not in request.headers
    assert request.headers["X-Consumed-Content-Encoding"] == "gzip"


async def test_gzip_form_is_parsed(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_request, decompress_request=True, chunk_size=7)
    form = gzip.compress(b"a=1&b=two&a=3")
    status, _, body = await blocking(
        io_loop,
        gzip_post,
        port,
        form,
        {"Content-Encoding": "gzip", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    assert b"arg a=[b'1', b'3']" in body.splitlines()
    assert b"arg b=[b'two']" in body.splitlines()


async def test_gzip_request_kept_without_decompress_request(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(echo_body)
    compressed = gzip.compress(b"data")
    status, headers, body = await blocking(
        io_loop, gzip_post, port, compressed, {"Content-Encoding": "gzip"}
    )
    assert (status, body, headers["X-Consumed"]) == (200, compressed, "-")


async def test_corrupt_gzip_request_is_refused(io_loop: IOLoop, serve: Any) -> None:
    called = []
    _, port = serve(called.append, decompress_request=True)
    truncated = gzip.compress(b"x" * 1000)[:-10]
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(truncated), truncated)
    )
    [response] = await blocking(io_loop, exchange, port, request, ["POST"], True)
    assert response.status == 400
    assert called == []


# -- curl --------------------------------------------------------------------------


def curl(*args: str, data: bytes | None = None) -> bytes:
    """Run curl; return its output (it must succeed)."""
    return curl_verbose(*args, data=data)[0]


def curl_verbose(*args: str, data: bytes | None = None) -> tuple[bytes, bytes]:
    """Run curl; return its output and its stderr (with ``-v``: the exchange)."""
    return run_curl(*args, data=data)


async def test_curl_get(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    _, port = serve(echo_request)
    out = await blocking(io_loop, curl, f"http://127.0.0.1:{port}/x?a=b")
    assert out.splitlines()[:3] == [b"method=GET", b"uri=/x?a=b", b"version=HTTP/1.1"]
    assert b"arg a=[b'b']" in out.splitlines()


async def test_curl_post_data_binary(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    _, port = serve(echo_body)
    payload = bytes(range(256)) * 300
    out = await blocking(
        io_loop,
        lambda: curl("--data-binary", "@-", f"http://127.0.0.1:{port}/", data=payload),
    )
    assert out == payload


async def test_curl_expect_100_continue(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    _, port = serve(echo_body)
    payload = b"after the interim response\n" * 100
    out, log = await blocking(
        io_loop,
        lambda: curl_verbose(
            "-v",
            "--expect100-timeout",
            str(CLIENT_TIMEOUT * 2),  # without the 100, curl's --max-time fails it
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            f"http://127.0.0.1:{port}/",
            data=payload,
        ),
    )
    assert b"< HTTP/1.1 100 Continue" in log
    assert out == payload


async def test_curl_chunked_upload(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    _, port = serve(echo_body)
    payload = b"chunked upload\n" * 5000
    out = await blocking(
        io_loop,
        lambda: curl(
            "-D",
            "-",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
            f"http://127.0.0.1:{port}/",
            data=payload,
        ),
    )
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"\r\nX-Te: chunked" in head
    assert body == payload


async def test_curl_http10(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    _, port = serve(echo_request)
    out = await blocking(io_loop, curl, "--http1.0", f"http://127.0.0.1:{port}/ten")
    assert out.splitlines()[:3] == [b"method=GET", b"uri=/ten", b"version=HTTP/1.0"]


async def test_curl_keep_alive_two_urls(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    server, port = serve(lambda request: respond(request, request.uri.encode() + b"\n"))
    out = await blocking(
        io_loop,
        curl,
        "-w",
        "%{num_connects}\n",
        f"http://127.0.0.1:{port}/one",
        f"http://127.0.0.1:{port}/two",
    )
    assert out.splitlines() == [b"/one", b"1", b"/two", b"0"]
    assert server.accepted == 1


async def test_curl_https(
    io_loop: IOLoop, serve: Any, need_curl: str, tls_certificate: TLSCertificate
) -> None:
    def handle(request: HTTPServerRequest) -> None:
        respond(request, f"{request.protocol} {request.full_url()}".encode())

    server, port = serve(handle, ssl_options=tls_certificate.server_context())
    out = await blocking(
        io_loop,
        curl,
        "--cacert",
        str(tls_certificate.ca_file),
        "--resolve",
        f"localhost:{port}:127.0.0.1",
        f"https://localhost:{port}/a",
        f"https://localhost:{port}/b",
    )
    assert out == f"https https://localhost:{port}/ahttps https://localhost:{port}/b".encode()
    assert server.accepted == 1


async def test_gzip_response_read_by_curl(io_loop: IOLoop, serve: Any, need_curl: str) -> None:
    plain = b"compress me, " * 1000

    def handle(request: HTTPServerRequest) -> None:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            respond(request, gzip.compress(plain), headers={"Content-Encoding": "gzip"})
        else:
            respond(request, plain)

    _, port = serve(handle)
    url = f"http://127.0.0.1:{port}/"
    out = await blocking(io_loop, curl, "--compressed", "-D", "-", url)
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"\r\nContent-Encoding: gzip" in head
    assert body == plain
    assert await blocking(io_loop, curl, "-w", "%{size_download}", "-o", os.devnull, url) == (
        str(len(plain)).encode()
    )


# -- pipelining --------------------------------------------------------------------


def pipelined_requests() -> tuple[bytes, list[str]]:
    """Ten requests of mixed framings, and each one's method."""
    requests = []
    methods = []
    for i in range(10):
        if i % 3 == 1:
            body = b"body %d" % i
            requests.append(
                b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (i, len(body), body)
            )
            methods.append("POST")
        elif i % 3 == 2:
            requests.append(
                b"POST /%d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"4\r\nbody\r\n0\r\n\r\n" % i
            )
            methods.append("POST")
        elif i == 6:
            requests.append(b"HEAD /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            methods.append("HEAD")
        else:
            requests.append(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            methods.append("GET")
    return b"".join(requests), methods


@pytest.mark.parametrize("answer", ["at-once", "first-later", "each-later"])
async def test_pipelining_answers_in_order(io_loop: IOLoop, serve: Any, answer: str) -> None:
    seen = []

    def handle(request: HTTPServerRequest) -> None:
        index = int(request.path[1:])
        seen.append(index)
        body = b"%s %s" % (request.path.encode(), request.body)
        if answer == "first-later" and index == 0:
            io_loop.call_later(0.02, respond, request, body)
        elif answer == "each-later":
            # Later requests answer sooner: only the server can keep the order.
            io_loop.call_later(0.001 * (10 - index), respond, request, body)
        else:
            respond(request, body)

    server, port = serve(handle)
    data, methods = pipelined_requests()
    responses = await blocking(io_loop, exchange, port, data, methods)
    expected = []
    for i, method in enumerate(methods):
        if method == "HEAD":
            expected.append(b"")
        elif i % 3 == 1:
            expected.append(b"/%d body %d" % (i, i))
        elif i % 3 == 2:
            expected.append(b"/%d body" % i)
        else:
            expected.append(b"/%d " % i)
    assert [r.body for r in responses] == expected
    assert all(r.status == 200 for r in responses)
    assert seen == list(range(10))
    assert server.accepted == 1


async def test_pipelining_async_handler_then_close(io_loop: IOLoop, serve: Any) -> None:
    async def answer_later(request: HTTPServerRequest) -> None:
        await gen.sleep(0.01)
        respond(request, request.path.encode())

    def handle(request: HTTPServerRequest) -> None:
        if request.path == "/0":
            io_loop.add_callback(answer_later, request)
        else:
            respond(request, request.path.encode())

    _, port = serve(handle)
    data = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(9))
    data += b"GET /9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    responses = await blocking(io_loop, exchange, port, data, ["GET"] * 10, True)
    assert [r.body for r in responses] == [b"/%d" % i for i in range(10)]
    assert responses[-1].headers["connection"] == "close"


# -- xheaders ----------------------------------------------------------------------


def report_address(request: HTTPServerRequest) -> None:
    respond(request, f"{request.remote_ip} {request.protocol}".encode())


def requests_with_headers(port: int, header_sets: list[dict[str, str]]) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        results = []
        for headers in header_sets:
            conn.request("GET", "/", headers=headers)
            results.append(conn.getresponse().read().decode())
        return results
    finally:
        conn.close()


async def test_xheaders(io_loop: IOLoop, serve: Any) -> None:
    server, port = serve(report_address, xheaders=True, trusted_downstream=["10.0.0.1"])
    cases: list[tuple[dict[str, str], str]] = [
        ({"X-Real-Ip": "4.4.4.4", "X-Forwarded-Proto": "https"}, "4.4.4.4 https"),
        ({}, "127.0.0.1 http"),  # reset for the next request
        ({"X-Forwarded-For": "1.1.1.1, 2.2.2.2, 10.0.0.1"}, "2.2.2.2 http"),
        ({"X-Forwarded-For": "1.1.1.1, 2.2.2.2"}, "2.2.2.2 http"),
        ({"X-Real-Ip": "2001:db8::1", "X-Scheme": "https"}, "2001:db8::1 https"),
        ({}, "127.0.0.1 http"),
        ({"X-Real-Ip": "not-an-ip"}, "127.0.0.1 http"),
        ({"X-Forwarded-For": "999.1.1.1"}, "127.0.0.1 http"),
        ({"X-Forwarded-Proto": "ftp"}, "127.0.0.1 http"),
        ({"X-Forwarded-Proto": "http, https"}, "127.0.0.1 https"),
        ({"X-Real-Ip": "5.5.5.5", "X-Forwarded-For": "6.6.6.6"}, "5.5.5.5 http"),
    ]
    results = await blocking(io_loop, requests_with_headers, port, [h for h, _ in cases])
    assert results == [expected for _, expected in cases]
    assert server.accepted == 1


async def test_xheaders_ignored_without_xheaders(io_loop: IOLoop, serve: Any) -> None:
    _, port = serve(report_address)
    headers = {"X-Real-Ip": "4.4.4.4", "X-Forwarded-Proto": "https"}
    assert await blocking(io_loop, requests_with_headers, port, [headers]) == ["127.0.0.1 http"]


async def test_xheaders_pipelined_with_late_answer(io_loop: IOLoop, serve: Any) -> None:
    """The first request is answered after the second has arrived: each
    keeps its own proxy headers, and the third (none) sees the socket's."""

    def handle(request: HTTPServerRequest) -> None:
        if request.path == "/0":
            io_loop.call_later(0.01, report_address, request)
        else:
            report_address(request)

    _, port = serve(handle, xheaders=True)
    data = (
        b"GET /0 HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 1.1.1.1\r\nX-Scheme: https\r\n\r\n"
        b"GET /1 HTTP/1.1\r\nHost: x\r\nX-Real-Ip: 2.2.2.2\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    responses = await blocking(io_loop, exchange, port, data, ["GET"] * 3)
    assert [r.body for r in responses] == [b"1.1.1.1 https", b"2.2.2.2 http", b"127.0.0.1 http"]


# -- fuzz --------------------------------------------------------------------------

SEEDS = [
    b"GET /path?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 7\r\n\r\na=1&b=2",
    b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /m HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
    b"Content-Length: 59\r\n\r\n"
    b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--B--\r\n',
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=b; c=d\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
]

ALLOWED_STATUSES = {100, 200, 400, 413, 431, 501}


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """One of several ways to break (or, by luck, keep) a request."""
    data = bytearray(seed)
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 300))
    if kind == 1:  # byte flips
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:  # truncation
        del data[rng.randrange(1, len(data)) :]
    elif kind == 3:  # an inserted CR, LF, NUL, space, tab or colon
        for _ in range(rng.randrange(1, 3)):
            data.insert(rng.randrange(len(data)), rng.choice(b"\r\n\x00 \t:"))
    elif kind == 4:  # a duplicated header line
        lines = bytes(data).split(b"\r\n")
        head_end = lines.index(b"") if b"" in lines else len(lines)
        if head_end > 1:
            line = lines[rng.randrange(1, head_end)]
            lines.insert(rng.randrange(1, head_end + 1), line)
        return b"\r\n".join(lines)
    elif kind == 5:  # an added header that changes framing
        extra = rng.choice(
            [
                b"Content-Length: 5\r\n",
                b"Content-Length: -1\r\n",
                b"Content-Length: 99999999999999999999\r\n",
                b"Transfer-Encoding: chunked\r\n",
                b"Transfer-Encoding: gzip, chunked\r\n",
                b"Transfer-Encoding: chunked, identity\r\n",
                b"Host: second\r\n",
                b" folded\r\n",
                b"Content-Length: 200000000\r\n",
                b"X-Long: " + b"a" * rng.choice((100, 70000)) + b"\r\n",
                b"Expect: 100-continue\r\n",
                b"Connection: close\r\n",
                b"Content-Encoding: gzip\r\n",
            ]
        )
        position = data.find(b"\r\n") + 2
        data[position:position] = extra
    elif kind == 6:  # a random slice of random bytes replaced
        start = rng.randrange(len(data))
        data[start : start + rng.randrange(1, 20)] = rng.randbytes(rng.randrange(1, 20))
    return bytes(data)


def fuzz_batch(port: int, payloads: list[bytes]) -> list[bytes]:
    """Send each payload on its own connection, all connections open at once;
    half-close each and read it to its end. Returns what each got back."""
    socks = []
    try:
        for payload in payloads:
            sock = connect(port)
            socks.append(sock)
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed before it was all sent
        results = []
        for sock in socks:
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except ConnectionResetError:
                pass  # closed with our unread request bytes in its buffer
            results.append(b"".join(chunks))
        return results
    finally:
        for sock in socks:
            sock.close()


STATUS_LINE = re.compile(rb"(?:^|\r\n)HTTP/1\.1 (\d{3}) ")


async def test_fuzz(io_loop: IOLoop, serve: Any, reactor_log: LogRecords) -> None:
    def handle(request: HTTPServerRequest) -> None:
        respond(request, b"ok")

    server, port = serve(handle, decompress_request=True)
    rng = random.Random(f"reactor-fuzz-{FUZZ_BATCHES}")
    statuses: dict[int, int] = {}
    sent = 0
    # One keep-alive connection stays open through the whole run.
    steady = await blocking(io_loop, connect, port)
    steady_reader = steady.makefile("rb")

    def steady_request() -> Response:
        steady.sendall(b"GET /steady HTTP/1.1\r\nHost: x\r\n\r\n")
        return read_response(steady_reader)

    try:
        for _ in range(FUZZ_BATCHES):
            payloads = []
            for _ in range(FUZZ_CONNECTIONS):
                # Sometimes valid requests first: the mutation then hits a
                # connection that has been kept alive.
                requests = [rng.choice(SEEDS) for _ in range(rng.choice((0, 0, 1, 2)))]
                requests.append(mutate(rng, rng.choice(SEEDS)))
                payloads.append(b"".join(requests))
                sent += len(requests)
            results = await blocking(io_loop, fuzz_batch, port, payloads)
            for payload, result in zip(payloads, results, strict=True):
                if result:
                    assert result.startswith(b"HTTP/1.1 "), (payload, result[:200])
                for match in STATUS_LINE.finditer(result):
                    code = int(match.group(1))
                    statuses[code] = statuses.get(code, 0) + 1
                    assert code in ALLOWED_STATUSES, (payload, result[:500])
            # After each batch, well-formed requests are still served.
            status, body = await blocking(io_loop, http_client_request, port, "GET", "/ok")
            assert (status, body) == (200, b"ok")
            response = await blocking(io_loop, steady_request)
            assert (response.status, response.body) == (200, b"ok")
            # The batch's connections are all closed, on both sides.
            await server.all_closed(but=1)
    finally:
        steady_reader.close()
        steady.close()
    await server.all_closed()
    assert sent >= FUZZ_BATCHES * FUZZ_CONNECTIONS
    # The mutations did reach both sides of the parser.
    assert statuses.get(200, 0) > sent // 20, statuses
    assert statuses.get(400, 0) > sent // 10, statuses
    refusals = [r for r in reactor_log.records if r.getMessage().startswith("Refused")]
    assert refusals
    assert all(r.levelno == logging.INFO and not r.exc_info for r in refusals)
