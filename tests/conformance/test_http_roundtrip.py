"""Properties of the HTTP server and client together, on every backend:
any header set and any body, framed by Content-Length or chunked, arrives as
sent at the server and comes back as sent to the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.concurrent import Future
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets


def echo(request: HTTPServerRequest) -> None:
    """Answers with the request's X- headers, in order, and its body."""
    headers = HTTPHeaders({"Content-Length": str(len(request.body))})
    for name, value in request.headers.get_all():
        if name.startswith("X-"):
            headers.add(name, value)
    assert request.connection is not None
    request.connection.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers)
    # In pieces, to exercise write() too.
    for i in range(0, len(request.body), 7000):
        request.connection.write(request.body[i : i + 7000])
    request.connection.finish()


names = st.from_regex(r"X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}", fullmatch=True)
# A field value: visible ASCII and obs-text, with inner spaces and tabs;
# surrounding whitespace is not part of a value (RFC 9110 section 5.5).
values = st.text(
    st.characters(codec="latin-1", exclude_categories=["Cc"]) | st.sampled_from([" ", "\t"]),
    max_size=40,
).map(lambda v: v.strip(" \t"))
header_sets = st.lists(st.tuples(names, values), max_size=12)
bodies = st.binary(max_size=60_000)


def run(reactor_backend: Any, test: Callable[[AsyncHTTPClient, str], Any]) -> None:
    loop = IOLoop(backend=reactor_backend, make_current=True)
    try:
        server = HTTPServer(echo)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        client = AsyncHTTPClient(force_instance=True)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/echo"
        try:
            loop.run_sync(lambda: test(client, url), timeout=10)
        finally:
            client.close()
            server.stop()
            loop.run_sync(server.close_all_connections)
    finally:
        IOLoop.clear_current()
        loop.close(all_fds=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=header_sets, body=bodies, chunked=st.booleans(), split=st.integers(1, 9000))
def test_headers_and_bodies_round_trip(
    reactor_backend: Any, pairs: list[tuple[str, str]], body: bytes, chunked: bool, split: int
) -> None:
    sent = HTTPHeaders()
    for name, value in pairs:
        sent.add(name, value)

    async def producer(write: Callable[[bytes], Future[None]]) -> None:
        for i in range(0, len(body), split):
            await write(body[i : i + split])

    async def exchange(client: AsyncHTTPClient, url: str) -> None:
        if chunked:
            response = await client.fetch(url, method="POST", headers=sent, body_producer=producer)
        else:
            response = await client.fetch(url, method="POST", headers=sent, body=body)
        assert response.body == body
        expected = HTTPHeaders()
        for name, value in pairs:
            expected.add(name, value)
        for name in expected:
            assert response.headers.get_list(name) == expected.get_list(name), name

    run(reactor_backend, exchange)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=st.lists(st.tuples(header_sets, bodies), min_size=1, max_size=6))
def test_keep_alive_sequences_round_trip(
    reactor_backend: Any, requests: list[tuple[list[tuple[str, str]], bytes]]
) -> None:
    """Several requests over the client's pooled connection: each answer is its own."""

    async def exchange(client: AsyncHTTPClient, url: str) -> None:
        for pairs, body in requests:
            headers = HTTPHeaders()
            for name, value in pairs:
                headers.add(name, value)
            response = await client.fetch(url, method="PUT", headers=headers, body=body)
            assert response.body == body
            for name in headers:
                assert response.headers.get_list(name) == headers.get_list(name)

    run(reactor_backend, exchange)
