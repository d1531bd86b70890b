"""reactor.simple_httpclient: Tornado's client name and arguments, through real
HTTP on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reactor import simple_httpclient
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.netutil import bind_sockets
from reactor.simple_httpclient import (
    HTTPStreamClosedError,
    HTTPTimeoutError,
    SimpleAsyncHTTPClient,
)
from reactor.tcpserver import TCPServer


def answer(request: HTTPServerRequest) -> None:
    body = (
        b"big" * 1000
        if request.path == "/big"
        else b"ua="
        + request.headers.get("User-Agent", "").encode()
        + b" host="
        + request.host.encode()
    )
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


@pytest.fixture
def app() -> Any:
    return answer


@pytest.fixture
def configured_client(io_loop: IOLoop) -> Iterator[None]:
    saved = AsyncHTTPClient._save_configuration()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        AsyncHTTPClient._restore_configuration(saved)  # type: ignore[attr-defined]


class HangsUp(TCPServer):
    """Reads a request's first line, then closes without answering."""

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        await stream.read_until(b"\r\n")
        stream.close()


@pytest.fixture
def hang_up_port(io_loop: IOLoop) -> Iterator[int]:
    sockets = bind_sockets(0, "127.0.0.1")
    server = HangsUp()
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()


async def test_configure_by_tornado_path(
    configured_client: None, http_server: Any, base_url: str
) -> None:
    AsyncHTTPClient.configure(
        "reactor.simple_httpclient.SimpleAsyncHTTPClient",
        max_clients=3,
        defaults={"user_agent": "ua1"},
    )
    client = AsyncHTTPClient()
    try:
        assert type(client) is SimpleAsyncHTTPClient
        assert client.max_clients == 3
        assert AsyncHTTPClient() is client  # the loop's shared one
        response = await client.fetch(base_url + "/")
        assert response.body.startswith(b"ua=ua1 ")
    finally:
        client.close()


async def test_tornado_arguments(io_loop: IOLoop, http_server: Any, http_port: int) -> None:
    client = SimpleAsyncHTTPClient(
        force_instance=True,
        max_clients=2,
        hostname_mapping={"app.example": "127.0.0.1"},
        max_buffer_size=1 << 20,
        defaults={"user_agent": "mapped"},
        max_header_size=4096,
        max_body_size=1000,
        idle_timeout=5.0,  # reactor's own, accepted too
    )
    try:
        assert isinstance(client, AsyncHTTPClient)
        response = await client.fetch(f"http://app.example:{http_port}/")
        assert response.body == f"ua=mapped host=app.example:{http_port}".encode()
        # /big is 3000 bytes, over max_body_size
        with pytest.raises(HTTPStreamClosedError) as caught:
            await client.fetch(f"http://app.example:{http_port}/big")
        assert caught.value.code == 599
    finally:
        client.close()


async def test_fetch_impl_calls_back_with_a_response(
    io_loop: IOLoop, http_server: Any, base_url: str, hang_up_port: int
) -> None:
    client = SimpleAsyncHTTPClient(force_instance=True)
    try:
        for url, code, error in [
            (base_url + "/", 200, None),
            (f"http://127.0.0.1:{hang_up_port}/", 599, HTTPStreamClosedError),
        ]:
            future = io_loop.asyncio_loop.create_future()
            client.fetch_impl(simple_httpclient.HTTPRequest(url), future.set_result)
            response: HTTPResponse = await future
            assert response.code == code
            if error is None:
                assert response.error is None and response.body.startswith(b"ua=")
            else:
                assert isinstance(response.error, error)
    finally:
        client.close()


async def test_errors_are_the_clients_own(io_loop: IOLoop, hang_up_port: int) -> None:
    from reactor import httpclient

    assert HTTPStreamClosedError is httpclient.HTTPStreamClosedError
    assert HTTPTimeoutError is httpclient.HTTPTimeoutError
    assert issubclass(HTTPTimeoutError, simple_httpclient.HTTPError)
    client = SimpleAsyncHTTPClient(force_instance=True)
    try:
        with pytest.raises(simple_httpclient.HTTPError) as caught:
            await client.fetch(f"http://127.0.0.1:{hang_up_port}/")
        assert isinstance(caught.value, HTTPStreamClosedError)
        assert str(caught.value).startswith("Stream closed")
    finally:
        client.close()
