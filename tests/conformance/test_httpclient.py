"""AsyncHTTPClient and HTTPClient on every backend, over real sockets on 127.0.0.1.

Two kinds of server: the standard library's ``ThreadingHTTPServer`` in a
thread (a real HTTP/1.1 server that knows nothing of reactor), and small
in-loop reactor TCPServers that send and check exact bytes (connection
reuse, the keep-alive race, queueing, timeouts, framing edge cases).
"""

from __future__ import annotations

import datetime
import gc
import gzip
import http.server
import json
import socket
import ssl
import sys
import threading
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from reactor import gen
from reactor.concurrent import Future
from reactor.httpclient import (
    AsyncHTTPClient,
    HTTPClient,
    HTTPClientError,
    HTTPError,
    HTTPRequest,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
)
from reactor.httputil import HTTPHeaders, HTTPOutputError, format_timestamp
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.locks import Event
from reactor.netutil import bind_sockets
from reactor.tcpserver import TCPServer
from reactor.testing.tls import TLSCertificate

WAIT = datetime.timedelta(seconds=5)
"""How long a test waits for something that should happen at once."""


# -- a real HTTP/1.1 server in a thread ---------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes by path; see each branch of do_GET."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10
    server: _ThreadedServer

    def setup(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_expect_100(self) -> bool:
        with self.server.lock:
            self.server.expect_headers.append(self.headers.get("Expect", ""))
        if self.path.startswith("/reject"):
            self.send_response(417)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return False
        return super().handle_expect_100()

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if code not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_chunked(self, pieces: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        parts = url.path.strip("/").split("/")
        route = parts[0]
        if route == "echo":
            echo = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
            }
            self._send(200, json.dumps(echo).encode(), {"Content-Type": "application/json"})
        elif route == "status":
            code = int(parts[1])
            self._send(code, f"status {code}".encode())
        elif route == "redirect":
            hops = int(parts[1])
            code = int(query.get("code", "302"))
            location = "/echo" if hops == 0 else f"/redirect/{hops - 1}?code={code}"
            self._send(code, b"this body is dropped", {"Location": location})
        elif route == "goto":
            self._send(302, b"", {"Location": query["url"]})
        elif route == "chunked":
            self._send_chunked([b"first,", b"second,", b"third"])
        elif route == "gzip":
            saw = self.headers.get("Accept-Encoding", "")
            payload = gzip.compress(b"compressed text " * 64)
            self._send(200, payload, {"Content-Encoding": "gzip", "X-Saw-Accept-Encoding": saw})
        elif route == "bomb":
            self._send(200, gzip.compress(b"\0" * 10_000), {"Content-Encoding": "gzip"})
        elif route == "slow":
            self.server.release.wait(10)
            self._send(200, b"late")
        elif route == "nocontent":
            self._send(204)
        elif route == "head":
            self._send(200, b"x" * 1234)
        elif route == "close":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"framed by close")
            self.close_connection = True
        elif route == "big":
            self._send(200, b"b" * 1000)
        elif route == "bigchunked":
            self._send_chunked([b"c" * 400] * 3)
        else:
            self._send(404, b"no such route")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET


class _ThreadedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.connections = 0
        self.expect_headers: list[str] = []
        self.release = threading.Event()
        self.scheme = "https" if context is not None else "http"
        # shutdown() waits for serve_forever to look at its flag, which it
        # does every poll_interval (0.5 s by default).
        self._thread = threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (timeouts, failed handshakes): expected here

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.server_address[1]}{path}"

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)


@pytest.fixture
def http_server() -> Iterator[_ThreadedServer]:
    server = _ThreadedServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def https_server(tls_certificate: TLSCertificate) -> Iterator[_ThreadedServer]:
    server = _ThreadedServer(tls_certificate.server_context())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(io_loop: IOLoop) -> Iterator[AsyncHTTPClient]:
    client = AsyncHTTPClient(force_instance=True)
    try:
        yield client
    finally:
        client.close()


def _echo(response: HTTPResponse) -> dict[str, Any]:
    echo: dict[str, Any] = json.loads(response.body)
    echo["headers"] = HTTPHeaders({k: v for k, v in echo["headers"]})
    return echo


# -- exact bytes: in-loop servers ---------------------------------------------------

_Handle = Callable[[IOStream, int], Awaitable[None]]


class _RawServer(TCPServer):
    """Runs ``handle(stream, n)`` for the n-th accepted connection (from 1)."""

    def __init__(self, handle: _Handle) -> None:
        super().__init__()
        self.handle = handle
        self.accepted = 0
        self.finished = 0
        self.errors: list[BaseException] = []
        self.streams: list[IOStream] = []
        [sock] = bind_sockets(0, "127.0.0.1")
        self.port = int(sock.getsockname()[1])
        self.add_sockets([sock])

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        self.accepted += 1
        self.streams.append(stream)
        try:
            await self.handle(stream, self.accepted)
        except StreamClosedError:
            pass
        except Exception as e:
            self.errors.append(e)
        finally:
            stream.close()
            self.finished += 1

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@pytest.fixture
def raw_server(io_loop: IOLoop) -> Iterator[Callable[[_Handle], _RawServer]]:
    servers: list[_RawServer] = []

    def make(handle: _Handle) -> _RawServer:
        server = _RawServer(handle)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        for stream in server.streams:
            stream.close()
    # Let the handlers see their streams closed and end, rather than be
    # destroyed pending with the loop.
    io_loop.run_sync(lambda: _until(lambda: all(s.finished == s.accepted for s in servers)))
    for server in servers:
        assert not server.errors, server.errors


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _read_request(stream: IOStream) -> bytes:
    return await stream.read_until(b"\r\n\r\n", max_bytes=65536)


async def _until(condition: Callable[[], bool], iterations: int = 1000) -> None:
    """Let the loop run until ``condition()`` holds (bounded: it fails, not hangs)."""
    for _ in range(iterations):
        if condition():
            return
        await gen.moment
    raise AssertionError("condition not reached")


# -- requests ----------------------------------------------------------------------


async def test_get_sends_a_complete_http11_request(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    url = http_server.url("/echo?a=1&b=%20")
    response = await client.fetch(url)
    assert response.code == 200
    assert response.reason == "OK"
    assert response.effective_url == url
    assert response.error is None
    assert response.request.url == url
    assert response.request_time is not None and response.request_time > 0
    assert response.start_time is not None
    assert response.headers["Content-Type"] == "application/json"
    echo = _echo(response)
    assert echo["method"] == "GET"
    assert echo["path"] == "/echo?a=1&b=%20"
    headers = echo["headers"]
    assert headers["Host"] == f"127.0.0.1:{http_server.server_address[1]}"
    assert headers["User-Agent"].startswith("reactor/")
    assert headers["Accept-Encoding"] == "gzip"
    assert "Content-Length" not in headers


async def test_post_body_str_is_utf8_with_length_and_form_type(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    response = await client.fetch(http_server.url("/echo"), method="POST", body="é=1")
    echo = _echo(response)
    assert echo["method"] == "POST"
    assert echo["body"].encode("latin-1") == "é=1".encode()
    assert echo["headers"]["Content-Length"] == "4"
    assert echo["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_auth_user_agent_and_if_modified_since(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    when = datetime.datetime(2020, 5, 17, 8, 30, 0)
    response = await client.fetch(
        http_server.url("/echo"),
        auth_username="alice",
        auth_password="s3cret",
        user_agent="probe/1.0",
        if_modified_since=when,
        headers={"X-Custom": "yes"},
    )
    headers = _echo(response)["headers"]
    assert headers["Authorization"] == "Basic YWxpY2U6czNjcmV0"
    assert headers["User-Agent"] == "probe/1.0"
    assert headers["If-Modified-Since"] == format_timestamp(when)
    assert headers["X-Custom"] == "yes"
    # Credentials in the URL work too.
    url = http_server.url("/echo").replace("://", "://bob:pw@")
    headers = _echo(await client.fetch(url))["headers"]
    assert headers["Authorization"] == "Basic Ym9iOnB3"
    assert headers["Host"] == f"127.0.0.1:{http_server.server_address[1]}"


async def test_body_rules_and_bad_requests_fail_before_connecting(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    async def never(stream: IOStream, n: int) -> None:
        raise AssertionError("no request should connect")

    url = raw_server(never).url("/")
    with pytest.raises(ValueError, match="Body must not be None"):
        await client.fetch(url, method="POST")
    with pytest.raises(ValueError, match="Body must be None"):
        await client.fetch(url, method="GET", body=b"x")
    with pytest.raises(KeyError, match="unknown method"):
        await client.fetch(url, method="BREW")
    with pytest.raises(ValueError, match="Unsupported url scheme"):
        await client.fetch("ftp://127.0.0.1/x")
    with pytest.raises(ValueError, match="mutually exclusive"):
        await client.fetch(url, method="POST", body=b"x", body_producer=lambda write: None)
    with pytest.raises(HTTPOutputError):
        await client.fetch(url, headers={"X-Evil": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="path"):
        await client.fetch(url + "a b")
    with pytest.raises(ValueError, match="keyword arguments"):
        await client.fetch(HTTPRequest(url), method="POST")
    assert client.pool_stats()["opened"] == 0


async def test_nonstandard_methods_are_allowed_on_request(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    response = await client.fetch(
        http_server.url("/echo"), method="DELETE", body=b"gone", allow_nonstandard_methods=True
    )
    echo = _echo(response)
    assert (echo["method"], echo["body"]) == ("DELETE", "gone")


# -- responses ---------------------------------------------------------------------


async def test_error_codes_raise_or_return(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(http_server.url("/status/404"))
    error = info.value
    assert error.code == 404
    assert str(error) == "HTTP 404: Not Found"
    assert error.response is not None and error.response.body == b"status 404"
    assert HTTPError is HTTPClientError

    response = await client.fetch(http_server.url("/status/503"), raise_error=False)
    assert response.code == 503
    assert isinstance(response.error, HTTPClientError) and response.error.code == 503
    assert response.body == b"status 503"
    with pytest.raises(HTTPClientError):
        response.rethrow()
    (await client.fetch(http_server.url("/status/201"))).rethrow()


async def test_chunked_response_is_decoded_and_connection_reused(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    for _ in range(2):
        response = await client.fetch(http_server.url("/chunked"))
        assert response.body == b"first,second,third"
        assert response.headers["Transfer-Encoding"] == "chunked"
    assert http_server.connections == 1


async def test_streaming_and_header_callbacks(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    chunks: list[bytes] = []
    lines: list[str] = []
    response = await client.fetch(
        http_server.url("/chunked"), streaming_callback=chunks.append, header_callback=lines.append
    )
    assert b"".join(chunks) == b"first,second,third"
    assert response.body == b""
    assert lines[0] == "HTTP/1.1 200 OK\r\n"
    assert "Transfer-Encoding: chunked\r\n" in lines
    assert lines[-1] == "\r\n"
    assert all(line.endswith("\r\n") for line in lines)
    assert len(lines) == len(list(response.headers.get_all())) + 2


async def test_async_streaming_callback_is_awaited_in_order(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    seen: list[bytes] = []

    async def slow_consumer(chunk: bytes) -> None:
        await gen.moment
        seen.append(chunk)

    await client.fetch(http_server.url("/big"), streaming_callback=slow_consumer)
    assert b"".join(seen) == b"b" * 1000


async def test_gzip_is_requested_and_decompressed_unless_disabled(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    expected = b"compressed text " * 64
    response = await client.fetch(http_server.url("/gzip"))
    assert response.body == expected
    assert response.headers["X-Saw-Accept-Encoding"] == "gzip"
    assert response.headers["X-Consumed-Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in response.headers

    chunks: list[bytes] = []
    await client.fetch(http_server.url("/gzip"), streaming_callback=chunks.append)
    assert b"".join(chunks) == expected

    raw = await client.fetch(http_server.url("/gzip"), decompress_response=False)
    assert gzip.decompress(raw.body) == expected
    assert raw.headers["Content-Encoding"] == "gzip"
    assert raw.headers["X-Saw-Accept-Encoding"] == ""


async def test_deflate_with_and_without_zlib_wrapper(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    import zlib

    text = b"deflated " * 100
    wrapped = zlib.compress(text)
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bare = raw_deflate.compress(text) + raw_deflate.flush()

    async def handle(stream: IOStream, n: int) -> None:
        for body in (wrapped, bare):
            await _read_request(stream)
            head = b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
            await stream.write(head % len(body) + body)
        await stream.read_bytes(1)

    server = raw_server(handle)
    assert (await client.fetch(server.url())).body == text
    assert (await client.fetch(server.url())).body == text


async def test_whitespace_around_a_response_header_value_is_not_part_of_it(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    # RFC 9110 section 5.5: leading and trailing spaces and tabs are not the value's.
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2 \r\nX-A:  two words \t \r\nX-B: \t\r\n\r\nok"
        )
        await stream.read_bytes(1)

    response = await client.fetch(raw_server(handle).url())
    assert response.body == b"ok"
    assert response.headers["X-A"] == "two words"
    assert response.headers["X-B"] == ""
    assert response.headers["Content-Length"] == "2"


async def test_head_has_no_body_and_keeps_the_connection(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    response = await client.fetch(http_server.url("/head"), method="HEAD")
    assert response.code == 200
    assert response.headers["Content-Length"] == "1234"
    assert response.body == b""
    response = await client.fetch(http_server.url("/head"))
    assert response.body == b"x" * 1234
    assert http_server.connections == 1


async def test_204_has_no_body_and_keeps_the_connection(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    response = await client.fetch(http_server.url("/nocontent"))
    assert (response.code, response.body) == (204, b"")
    assert (await client.fetch(http_server.url("/echo"))).code == 200
    assert http_server.connections == 1


async def test_response_framed_by_close(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    response = await client.fetch(http_server.url("/close"))
    assert response.body == b"framed by close"
    assert client.pool_stats()["idle"] == 0
    assert (await client.fetch(http_server.url("/close"))).body == b"framed by close"
    assert http_server.connections == 2


async def test_interim_responses_are_skipped(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK)
        await stream.read_bytes(1)

    response = await client.fetch(raw_server(handle).url())
    assert (response.code, response.body) == (200, b"ok")
    assert "Link" not in response.headers


async def test_max_body_size(http_server: _ThreadedServer, io_loop: IOLoop) -> None:
    client = AsyncHTTPClient(force_instance=True, max_body_size=500)
    try:
        with pytest.raises(HTTPStreamClosedError, match="max_body_size") as info:
            await client.fetch(http_server.url("/big"))  # Content-Length 1000
        assert info.value.code == 599
        with pytest.raises(HTTPStreamClosedError, match="max_body_size"):
            await client.fetch(http_server.url("/bigchunked"))  # 3 x 400, chunked
        with pytest.raises(HTTPStreamClosedError, match="decompressed"):
            await client.fetch(http_server.url("/bomb"))  # small gzip of 10,000 zeros
        assert (await client.fetch(http_server.url("/echo"))).code == 200
        assert client.pool_stats()["idle"] == 1  # the failures' connections were closed
    finally:
        client.close()


async def test_max_header_size(
    raw_server: Callable[[_Handle], _RawServer], io_loop: IOLoop
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 3000 + b"\r\n\r\n")
        await stream.read_bytes(1)

    async def endless(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 3000)
        await stream.read_bytes(1)  # the header line never ends

    client = AsyncHTTPClient(force_instance=True, max_header_size=1024)
    try:
        with pytest.raises(HTTPStreamClosedError, match="max_header_size"):
            await client.fetch(raw_server(handle).url())
        with pytest.raises(HTTPStreamClosedError, match="max_header_size"):
            await client.fetch(raw_server(endless).url(), request_timeout=2)
    finally:
        client.close()


async def test_malformed_response(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(b"SMTP ready\r\n\r\n")
        await stream.read_bytes(1)

    with pytest.raises(HTTPStreamClosedError, match="malformed") as info:
        await client.fetch(raw_server(handle).url())
    assert info.value.code == 599


async def test_server_closing_mid_response(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    with pytest.raises(HTTPStreamClosedError) as info:
        await client.fetch(raw_server(handle).url())
    assert str(info.value) == "Stream closed"


# -- redirects ---------------------------------------------------------------------


async def test_redirect_chain_is_followed(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    url = http_server.url("/redirect/3")
    response = await client.fetch(url)
    assert response.code == 200
    assert response.effective_url == http_server.url("/echo")
    assert response.request.url == url
    assert _echo(response)["method"] == "GET"
    assert http_server.connections == 1  # the hops reused one connection


async def test_too_many_redirects_return_the_last_3xx(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(http_server.url("/redirect/3"), max_redirects=2)
    assert info.value.code == 302
    assert info.value.response is not None
    assert info.value.response.headers["Location"] == "/redirect/0?code=302"
    response = await client.fetch(
        http_server.url("/redirect/3"), max_redirects=2, raise_error=False
    )
    assert response.code == 302
    assert response.effective_url == http_server.url("/redirect/1?code=302")
    not_followed = await client.fetch(
        http_server.url("/redirect/1"), follow_redirects=False, raise_error=False
    )
    assert not_followed.code == 302
    assert not_followed.body == b"this body is dropped"


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    other = _ThreadedServer()
    try:
        for target, kept in ((http_server.url("/echo"), True), (other.url("/echo"), False)):
            url = http_server.url("/goto?" + urllib.parse.urlencode({"url": target}))
            response = await client.fetch(
                url, auth_username="u", auth_password="p", headers={"Cookie": "c=1"}
            )
            assert response.effective_url == target
            headers = _echo(response)["headers"]
            assert ("Authorization" in headers, "Cookie" in headers) == (kept, kept)
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("code", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")]
)
async def test_post_redirects(
    http_server: _ThreadedServer, client: AsyncHTTPClient, code: int, method: str
) -> None:
    response = await client.fetch(
        http_server.url(f"/redirect/1?code={code}"), method="POST", body=b"payload"
    )
    echo = _echo(response)
    assert echo["method"] == method
    assert echo["body"] == ("payload" if method == "POST" else "")
    assert ("Content-Length" in echo["headers"]) == (method == "POST")


# -- 100-continue and request bodies -----------------------------------------------


async def test_expect_100_continue(http_server: _ThreadedServer, client: AsyncHTTPClient) -> None:
    response = await client.fetch(
        http_server.url("/echo"), method="PUT", body=b"after continue", expect_100_continue=True
    )
    assert _echo(response)["body"] == "after continue"
    assert http_server.expect_headers == ["100-continue"]


async def test_expect_100_final_answer_means_no_body(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    after: list[bytes] = []

    async def handle(stream: IOStream, n: int) -> None:
        head = await _read_request(stream)
        assert b"\r\nExpect: 100-continue\r\n" in head
        await stream.write(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        after.append(await stream.read_until_close())

    server = raw_server(handle)
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(
            server.url(), method="POST", body=b"never sent", expect_100_continue=True
        )
    assert info.value.code == 417
    # The connection cannot be reused (the server may wait for the body): it
    # was closed, and what the server read until then holds no body.
    await _until(lambda: bool(after))
    assert after == [b""]


async def test_body_producer_is_sent_chunked(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    received: list[bytes] = []

    async def handle(stream: IOStream, n: int) -> None:
        received.append(await _read_request(stream))
        received.append(await stream.read_until(b"0\r\n\r\n"))
        await stream.write(OK)
        await stream.read_bytes(1)

    async def produce(write: Callable[[bytes], Future[None]]) -> None:
        await write(b"hello")
        await gen.moment
        await write(b"")  # nothing: must not end the body early
        await write(b", world")

    response = await client.fetch(raw_server(handle).url(), method="POST", body_producer=produce)
    assert response.body == b"ok"
    assert b"\r\nTransfer-Encoding: chunked\r\n" in received[0]
    assert b"Content-Length" not in received[0]
    assert received[1] == b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"


async def test_body_producer_with_content_length(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    received: list[bytes] = []

    async def handle(stream: IOStream, n: int) -> None:
        received.append(await _read_request(stream))
        received.append(await stream.read_bytes(10))
        await stream.write(OK)
        await stream.read_bytes(1)

    async def produce(write: Callable[[bytes], Future[None]]) -> None:
        await write(b"01234")
        await write(b"56789")

    url = raw_server(handle).url()
    response = await client.fetch(
        url, method="PUT", headers={"Content-Length": "10"}, body_producer=produce
    )
    assert response.body == b"ok"
    assert b"Transfer-Encoding" not in received[0]
    assert received[1] == b"0123456789"


# -- connection reuse --------------------------------------------------------------


async def test_sequential_fetches_share_one_connection(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    for i in range(5):
        response = await client.fetch(http_server.url(f"/echo?i={i}"))
        assert _echo(response)["path"] == f"/echo?i={i}"
    assert http_server.connections == 1
    stats = client.pool_stats()
    assert (stats["opened"], stats["reused"], stats["idle"]) == (1, 4, 1)


async def test_pools_are_per_origin(client: AsyncHTTPClient) -> None:
    first, second = _ThreadedServer(), _ThreadedServer()
    try:
        for _ in range(2):
            await client.fetch(first.url("/echo"))
            await client.fetch(second.url("/echo"))
        assert (first.connections, second.connections) == (1, 1)
        assert client.pool_stats()["idle"] == 2
    finally:
        first.stop()
        second.stop()


def _answer_every_request(response: bytes) -> _Handle:
    """A server that answers each request on a connection with ``response``
    and keeps the connection open whatever the messages say: only the
    client's judgement decides whether a connection is used again."""

    async def handle(stream: IOStream, n: int) -> None:
        while True:
            await _read_request(stream)
            await stream.write(response)

    return handle


@pytest.mark.parametrize(
    ("response", "request_headers"),
    [
        (OK, {"Connection": "close"}),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", {}),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", {}),
        # Bytes after the response: whatever they are, the connection is suspect.
        (OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", {}),
    ],
    ids=["request-close", "response-close", "http10", "trailing-bytes"],
)
async def test_connections_that_must_not_be_reused(
    raw_server: Callable[[_Handle], _RawServer],
    client: AsyncHTTPClient,
    response: bytes,
    request_headers: dict[str, str],
) -> None:
    server = raw_server(_answer_every_request(response))
    for _ in range(2):
        assert (await client.fetch(server.url(), headers=request_headers)).body == b"ok"
    assert server.accepted == 2
    assert client.pool_stats()["reused"] == 0


async def test_http10_keep_alive_is_reused(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    server = raw_server(
        _answer_every_request(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
        )
    )
    for _ in range(2):
        assert (await client.fetch(server.url())).body == b"ok"
    assert server.accepted == 1


async def _read_whole_request(stream: IOStream) -> bytes:
    """The head and body of one request (framed by Content-Length or chunked)."""
    head = await _read_request(stream)
    if b"\r\ntransfer-encoding: chunked\r\n" in head.lower():
        return head + await stream.read_until(b"0\r\n\r\n", max_bytes=65536)
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and int(value):
            return head + await stream.read_bytes(int(value))
    return head


def _lost_after_reading(requests: list[tuple[int, bytes]], closes: int = 1) -> _Handle:
    """A server that answers the first request on its first connection, then
    reads the second one whole and closes without answering; each of the
    first ``closes`` connections ends that way (after answering once, for
    the first), later ones answer with ``X-Connection: <n>``."""

    async def handle(stream: IOStream, n: int) -> None:
        if n == 1:
            requests.append((n, await _read_whole_request(stream)))
            await stream.write(OK)
        requests.append((n, await _read_whole_request(stream)))
        if n <= closes:
            return  # closed unanswered, after reading all of it
        await stream.write(
            b"HTTP/1.1 200 OK\r\nX-Connection: %d\r\nContent-Length: 6\r\n\r\nsecond" % n
        )
        await stream.read_bytes(1)

    return handle


async def _producer(write: Callable[[bytes], Future[None]]) -> None:
    await write(b"streamed")


@pytest.mark.parametrize(
    ("method", "body"),
    [("POST", b"pay 100"), ("PATCH", b"+1"), ("POST", _producer), ("PUT", _producer)],
    ids=["POST", "PATCH", "POST-body_producer", "PUT-body_producer"],
)
async def test_request_that_cannot_be_replayed_is_not_retried(
    raw_server: Callable[[_Handle], _RawServer],
    client: AsyncHTTPClient,
    method: str,
    body: bytes | Callable[[Callable[[bytes], Future[None]]], Awaitable[None]],
) -> None:
    """RFC 9110 section 9.2.2: the server took a non-idempotent request on a
    reused connection and closed it unanswered. It may have acted on it, so
    the client reports the loss instead of sending the request again; a body
    from a body_producer cannot be sent twice whatever the method."""
    requests: list[tuple[int, bytes]] = []
    server = raw_server(_lost_after_reading(requests))
    assert (await client.fetch(server.url("/one"))).body == b"ok"
    kwargs: dict[str, Any] = {"body": body} if isinstance(body, bytes) else {"body_producer": body}
    with pytest.raises(HTTPStreamClosedError) as info:
        await client.fetch(server.url("/two"), method=method, **kwargs)
    assert info.value.code == 599
    assert [(n, head.split(b" ", 2)[:2]) for n, head in requests] == [
        (1, [b"GET", b"/one"]),
        (1, [method.encode(), b"/two"]),
    ]
    assert server.accepted == 1


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_idempotent_request_is_retried_once(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient, method: str
) -> None:
    """The same loss for an idempotent method: the request is sent again on
    a new connection (the server sees it twice) and that answer is the result."""
    requests: list[tuple[int, bytes]] = []
    server = raw_server(_lost_after_reading(requests))
    assert (await client.fetch(server.url("/one"))).body == b"ok"
    body = b"state" if method == "PUT" else None
    response = await client.fetch(server.url("/two"), method=method, body=body)
    assert response.headers["X-Connection"] == "2"
    assert response.body == (b"" if method == "HEAD" else b"second")
    sent = [(n, head.split(b"\r\n\r\n", 1)) for n, head in requests]
    assert [(n, head.split(b" ", 2)[:2], rest) for n, (head, rest) in sent[1:]] == [
        (1, [method.encode(), b"/two"], body or b""),
        (2, [method.encode(), b"/two"], body or b""),
    ]
    assert server.accepted == 2


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_idempotent_request_is_retried_once_only(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient, method: str
) -> None:
    requests: list[tuple[int, bytes]] = []
    server = raw_server(_lost_after_reading(requests, closes=2))
    await client.fetch(server.url("/one"))
    with pytest.raises(HTTPStreamClosedError):
        await client.fetch(
            server.url("/two"), method=method, body=b"x" if method == "PUT" else None
        )
    assert [n for n, _ in requests] == [1, 1, 2]


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("when", ["while-idle", "as-it-is-taken"])
async def test_idle_connection_closed_by_server_is_not_used(
    raw_server: Callable[[_Handle], _RawServer],
    client: AsyncHTTPClient,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    when: str,
) -> None:
    """The server closes the idle connection before the next request: the
    client finds it dead before writing to it and sends the request (a POST
    too) once, on a new connection, without an error.

    "as-it-is-taken": the close lands just before the request takes the
    connection from the pool, when the loop has had no chance to see it (a
    wrapper around the pool's take makes that moment exact on every
    backend); only the look at the socket itself can tell.
    """
    requests: list[tuple[int, bytes]] = []

    async def handle(stream: IOStream, n: int) -> None:
        while True:
            requests.append((n, await _read_whole_request(stream)))
            await stream.write(OK)

    server = raw_server(handle)
    assert (await client.fetch(server.url("/one"))).body == b"ok"
    assert client.pool_stats()["idle"] == 1
    if when == "while-idle":
        server.streams[0].close()  # the server's keep-alive timeout, say
    else:
        take = client._take_idle

        def close_then_take(key: Any) -> Any:
            server.streams[0].close()
            return take(key)

        monkeypatch.setattr(client, "_take_idle", close_then_take)
    body = b"pay 100" if method == "POST" else None
    response = await client.fetch(server.url("/two"), method=method, body=body)
    assert response.body == b"ok"
    assert [(n, head.split(b" ", 2)[:2]) for n, head in requests] == [
        (1, [b"GET", b"/one"]),
        (2, [method.encode(), b"/two"]),
    ]
    stats = client.pool_stats()
    assert (stats["opened"], stats["reused"]) == (2, 0)


async def test_idle_connection_closed_by_server_is_dropped(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(OK)  # says keep-alive, then closes

    server = raw_server(handle)
    await client.fetch(server.url())
    await _until(lambda: client.pool_stats()["idle"] == 0)
    assert (await client.fetch(server.url())).body == b"ok"
    assert server.accepted == 2
    assert client.pool_stats()["reused"] == 0


async def test_idle_timeout_closes_pooled_connections(
    raw_server: Callable[[_Handle], _RawServer], io_loop: IOLoop
) -> None:
    closed = Event()

    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(OK)
        try:
            await stream.read_bytes(1)
        except StreamClosedError:
            closed.set()

    client = AsyncHTTPClient(force_instance=True, idle_timeout=0.05)
    try:
        await client.fetch(raw_server(handle).url())
        assert client.pool_stats()["idle"] == 1
        await closed.wait(WAIT)
        assert client.pool_stats()["idle"] == 0
    finally:
        client.close()


async def test_close_closes_idle_connections(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    closed = Event()

    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(OK)
        try:
            await stream.read_bytes(1)
        except StreamClosedError:
            closed.set()

    await client.fetch(raw_server(handle).url())
    client.close()
    await closed.wait(WAIT)
    with pytest.raises(RuntimeError, match="closed"):
        client.fetch("http://127.0.0.1/")


async def test_max_idle_connections_evicts_the_oldest(
    raw_server: Callable[[_Handle], _RawServer], io_loop: IOLoop
) -> None:
    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await stream.write(OK)
        await stream.read_bytes(1)

    servers = [raw_server(handle) for _ in range(3)]
    client = AsyncHTTPClient(force_instance=True, max_idle_connections=2)
    try:
        for server in servers:
            await client.fetch(server.url())
        assert client.pool_stats()["idle"] == 2
        await client.fetch(servers[0].url())  # the oldest was dropped: a new connection
        assert [s.accepted for s in servers] == [2, 1, 1]
    finally:
        client.close()


# -- max_clients and the queue -----------------------------------------------------


async def test_max_clients_bounds_concurrent_requests(
    raw_server: Callable[[_Handle], _RawServer], io_loop: IOLoop
) -> None:
    gates: list[Future[None]] = []
    arrived = Event()
    peak = 0

    async def handle(stream: IOStream, n: int) -> None:
        nonlocal peak
        while True:
            await _read_request(stream)
            gate: Future[None] = Future()
            gates.append(gate)
            peak = max(peak, len(gates))
            arrived.set()
            await gate
            await stream.write(OK)

    server = raw_server(handle)
    client = AsyncHTTPClient(force_instance=True, max_clients=3)
    try:
        fetches = [client.fetch(server.url(f"/{i}")) for i in range(10)]
        for served in range(10):
            while len(gates) < min(3, 10 - served):
                arrived.clear()
                await arrived.wait(WAIT)
            if served == 0:
                assert client.pool_stats()["active"] == 3
                assert client.pool_stats()["queued"] == 7
            gates.pop(0).set_result(None)
        responses = await gen.multi(fetches)
        assert all(r.body == b"ok" for r in responses)
        assert peak == 3
        assert server.accepted == 3  # the queued requests reused the connections
    finally:
        client.close()


async def test_queue_timeout(raw_server: Callable[[_Handle], _RawServer], io_loop: IOLoop) -> None:
    release: Future[None] = Future()

    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        await release
        await stream.write(OK)
        await stream.read_bytes(1)

    server = raw_server(handle)
    client = AsyncHTTPClient(force_instance=True, max_clients=1)
    try:
        first = client.fetch(server.url())
        with pytest.raises(HTTPTimeoutError) as info:
            await client.fetch(server.url(), connect_timeout=0.05, raise_error=False)
        assert info.value.code == 599
        assert str(info.value) == "Timeout in request queue"
        assert client.pool_stats()["queued"] == 0
        release.set_result(None)
        assert (await first).body == b"ok"
    finally:
        client.close()


# -- timeouts and connection errors ------------------------------------------------


async def test_request_timeout_closes_the_connection(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    closed = Event()

    async def handle(stream: IOStream, n: int) -> None:
        await _read_request(stream)
        try:
            await stream.read_bytes(1)  # never answers; waits for the client to give up
        except StreamClosedError:
            closed.set()

    server = raw_server(handle)
    with pytest.raises(HTTPTimeoutError) as info:
        await client.fetch(server.url(), request_timeout=0.1, raise_error=False)
    assert info.value.code == 599
    assert str(info.value) == "Timeout during request"
    assert info.value.response is None
    await closed.wait(WAIT)
    assert client.pool_stats()["idle"] == 0


async def test_connect_timeout_covers_the_tls_handshake(
    raw_server: Callable[[_Handle], _RawServer], client: AsyncHTTPClient
) -> None:
    """A server that accepts TCP but never answers the TLS ClientHello: the
    connect timeout fires and the half-open TLS connection is closed."""
    closed = Event()

    async def handle(stream: IOStream, n: int) -> None:
        try:
            while True:
                await stream.read_bytes(4096, partial=True)
        except StreamClosedError:
            closed.set()

    server = raw_server(handle)
    with pytest.raises(HTTPTimeoutError) as info:
        await client.fetch(server.url(scheme="https"), connect_timeout=0.1)
    assert str(info.value) == "Timeout while connecting"
    await closed.wait(WAIT)


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs to a full queue")
async def test_connect_timeout_on_a_full_backlog(client: AsyncHTTPClient) -> None:
    """A listening socket that never accepts, with a backlog of 0: once one
    connection waits in its queue, Linux drops further SYNs, so the
    client's connect hangs until the connect timeout."""
    listener = socket.socket()
    fillers = [socket.socket() for _ in range(3)]
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(address)
        with pytest.raises(HTTPTimeoutError) as info:
            await client.fetch(f"http://127.0.0.1:{address[1]}/", connect_timeout=0.1)
        assert str(info.value) == "Timeout while connecting"
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_slow_response_from_a_real_server(
    http_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    with pytest.raises(HTTPTimeoutError, match="Timeout during request"):
        await client.fetch(http_server.url("/slow"), request_timeout=0.1)


async def test_connection_refused_raises_the_os_error(
    client: AsyncHTTPClient, io_loop: IOLoop
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound, never listening: refused
    with pytest.raises(ConnectionRefusedError):
        await client.fetch(f"http://127.0.0.1:{port}/", raise_error=False)


# -- TLS ---------------------------------------------------------------------------


async def test_https_with_the_right_ca(
    https_server: _ThreadedServer, client: AsyncHTTPClient, tls_certificate: TLSCertificate
) -> None:
    ca = str(tls_certificate.ca_file)
    for host in ("127.0.0.1", "localhost"):
        response = await client.fetch(https_server.url("/echo", host), ca_certs=ca)
        assert _echo(response)["method"] == "GET"
    await client.fetch(https_server.url("/echo"), ca_certs=ca)  # reuses the 127.0.0.1 one
    context = tls_certificate.client_context()
    await client.fetch(https_server.url("/echo"), ssl_options=context)
    await client.fetch(https_server.url("/echo"), ssl_options=context)
    assert https_server.connections == 3  # 127.0.0.1 + localhost (CA file), then the context
    assert client.pool_stats()["reused"] == 2


async def test_https_certificate_is_verified(
    https_server: _ThreadedServer, client: AsyncHTTPClient
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await client.fetch(https_server.url("/echo"), raise_error=False)
    response = await client.fetch(https_server.url("/echo"), validate_cert=False)
    assert response.code == 200


# -- the client object -------------------------------------------------------------


async def test_one_shared_client_per_loop(io_loop: IOLoop) -> None:
    shared = AsyncHTTPClient()
    try:
        assert AsyncHTTPClient() is shared
        private = AsyncHTTPClient(force_instance=True)
        assert private is not shared
        private.close()
    finally:
        shared.close()
    again = AsyncHTTPClient()
    try:
        assert again is not shared
    finally:
        again.close()


def test_shared_client_does_not_keep_its_loop_alive(reactor_backend: Any) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=False)  # type: ignore[call-arg]
    loop.make_current()
    try:
        client = AsyncHTTPClient()
        assert client.io_loop is loop
    finally:
        IOLoop.clear_current()
    client_ref, loop_ref = weakref.ref(client), weakref.ref(loop)
    loop.close(all_fds=True)
    del loop, client
    gc.collect()
    assert loop_ref() is None
    assert client_ref() is None


async def test_configure_sets_arguments_and_class(io_loop: IOLoop) -> None:
    class Custom(AsyncHTTPClient):
        pass

    try:
        AsyncHTTPClient.configure(None, max_clients=3, defaults={"user_agent": "configured"})
        client = AsyncHTTPClient(force_instance=True)
        assert client.max_clients == 3
        assert client.defaults["user_agent"] == "configured"
        client.close()
        AsyncHTTPClient.configure(Custom)
        client = AsyncHTTPClient(force_instance=True)
        assert type(client) is Custom
        client.close()
        with pytest.raises(TypeError):
            AsyncHTTPClient.configure(dict)  # type: ignore[arg-type]
    finally:
        AsyncHTTPClient.configure(None)
    assert AsyncHTTPClient.configured_class() is AsyncHTTPClient


async def test_defaults_fill_unset_request_attributes(
    http_server: _ThreadedServer, io_loop: IOLoop
) -> None:
    client = AsyncHTTPClient(force_instance=True, defaults={"user_agent": "from-defaults"})
    try:
        echo = _echo(await client.fetch(http_server.url("/echo")))
        assert echo["headers"]["User-Agent"] == "from-defaults"
        echo = _echo(await client.fetch(http_server.url("/echo"), user_agent="explicit"))
        assert echo["headers"]["User-Agent"] == "explicit"
    finally:
        client.close()


def test_blocking_client_outside_any_loop(
    http_server: _ThreadedServer, reactor_backend: Any
) -> None:
    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
    try:
        assert IOLoop.current(instance=False) is None
        client = HTTPClient()
        try:
            for i in range(3):
                response = client.fetch(http_server.url(f"/echo?i={i}"))
                assert _echo(response)["path"] == f"/echo?i={i}"
            assert http_server.connections == 1
            with pytest.raises(HTTPClientError) as info:
                client.fetch(http_server.url("/status/404"))
            assert info.value.code == 404
            assert client.fetch(http_server.url("/status/404"), raise_error=False).code == 404
        finally:
            client.close()
        client.close()  # again: nothing
        with pytest.raises(RuntimeError):
            client.fetch(http_server.url("/echo"))
        assert IOLoop.current(instance=False) is None
    finally:
        IOLoop.configure(previous)
