"""WSGIContainer through real HTTP, on every backend: a plain WSGI app, Flask,
streaming, the loop not blocking while a view blocks, and applications that
misbehave.

Clients: reactor's AsyncHTTPClient on the loop, and ``http.client``, a raw
socket or ``curl`` in a thread of the loop's executor (each with a timeout, so
a server that never answers fails the test instead of hanging it). Waits
between the application's thread and the test are on threading.Events with a
timeout, never sleeps.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import logging
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import flask
import pytest

from reactor import gen
from reactor.httpclient import AsyncHTTPClient, HTTPClientError
from reactor.ioloop import IOLoop
from reactor.testing import ExpectLog
from reactor.wsgi import WSGIContainer

WAIT = 4.0
"""Seconds a thread (client or application) waits for the other side."""

StartResponse = Callable[..., Callable[[bytes], None]]
Environ = dict[str, Any]


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello world!\n"]


def echo_environ(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Answers with the environ's str values as JSON (and the body it read)."""
    data = {k: v for k, v in environ.items() if isinstance(v, str)}
    data["body"] = environ["wsgi.input"].read().decode("latin-1")
    data["wsgi.version"] = list(environ["wsgi.version"])
    data["wsgi.multithread"] = environ["wsgi.multithread"]
    data["thread"] = threading.current_thread().name
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


class Routes:
    """``app`` dispatches on PATH_INFO to the test's own WSGI callables."""

    def __init__(self) -> None:
        self.apps: dict[str, Callable[[Environ, StartResponse], Any]] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        return self.apps.get(environ["PATH_INFO"], hello)(environ, start_response)


@pytest.fixture
def routes() -> Routes:
    return Routes()


@pytest.fixture
def container(routes: Routes) -> Iterator[WSGIContainer]:
    container = WSGIContainer(routes)  # type: ignore[arg-type]
    yield container
    if container._executor is not None:
        container._executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def app(container: WSGIContainer) -> WSGIContainer:
    return container


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


async def in_thread(io_loop: IOLoop, fn: Callable[..., Any], *args: Any) -> Any:
    return await io_loop.run_in_executor(None, fn, *args)


# -- a plain WSGI application ------------------------------------------------------


async def test_hello(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await http_client.fetch(base_url + "/")
    assert response.code == 200
    assert response.body == b"Hello world!\n"
    assert response.headers["Content-Type"] == "text/plain"
    # one block: its length is known, so no chunking
    assert response.headers["Content-Length"] == "13"
    assert response.headers["Server"].startswith("ReactorServer/")


async def test_environ(
    http_client: AsyncHTTPClient, base_url: str, http_port: int, routes: Routes
) -> None:
    path_info = "/café x".encode().decode("latin-1")  # PEP 3333's native string
    routes.apps[path_info] = echo_environ
    with ExpectLog(
        "reactor.general",
        r"(?i)WSGI request from 127\.0\.0\.1: dropped .*X_Smuggled",
        level=logging.INFO,
    ):
        response = await http_client.fetch(
            base_url + "/caf%C3%A9%20x?a=1&b=%20",
            method="POST",
            body=b"name=value",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Custom": "yes",
                "X_Smuggled": "evil",
            },
        )
    env = json.loads(response.body)
    # PEP 3333: the percent-decoded bytes, one latin-1 character each
    assert env["PATH_INFO"] == path_info
    assert env["SCRIPT_NAME"] == ""
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "10"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["body"] == "name=value"
    assert env["HTTP_X_CUSTOM"] == "yes"
    assert "HTTP_X_SMUGGLED" not in env
    assert env["HTTP_HOST"] == f"127.0.0.1:{http_port}"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(http_port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is True
    # the application ran on the container's pool, not on the loop's thread
    assert env["thread"].startswith("reactor-wsgi")


async def test_repeated_headers_and_default_port(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    routes.apps["/env"] = echo_environ
    request = (
        b"GET /env HTTP/1.1\r\nHost: example.com\r\nAccept: a\r\nAccept: b\r\n"
        b"Cookie: x=1\r\nCookie: y=2\r\nConnection: close\r\n\r\n"
    )
    reply = await in_thread(io_loop, raw_exchange, http_port, request)
    env = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert env["HTTP_ACCEPT"] == "a, b"
    assert env["HTTP_COOKIE"] == "x=1; y=2"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "80"


async def test_write_callable_and_close(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"b"
            yield b""  # an empty block is skipped
            yield b"c"

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Body:
        write = start_response("201 Created", [("X-App", "1")])
        write(b"a")
        return Body()

    routes.apps["/w"] = app
    response = await http_client.fetch(base_url + "/w")
    assert response.code == 201
    assert response.body == b"abc"
    assert response.headers["X-App"] == "1"
    assert closed.is_set()


async def test_write_callable_then_one_block(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])(b"written ")
        return [b"returned"]  # one block, but not the whole body

    routes.apps["/w1"] = app
    response = await http_client.fetch(base_url + "/w1")
    assert response.body == b"written returned"


async def test_empty_body_and_head(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    def empty(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    routes.apps["/empty"] = empty
    response = await http_client.fetch(base_url + "/empty")
    assert response.code == 204
    assert response.body == b""
    assert "Content-Length" not in response.headers  # RFC 9110 section 8.6
    assert "Transfer-Encoding" not in response.headers
    response = await http_client.fetch(base_url + "/", method="HEAD")
    assert response.code == 200
    assert response.headers["Content-Length"] == "13"
    assert response.body == b""


async def test_access_log(http_client: AsyncHTTPClient, base_url: str, routes: Routes) -> None:
    def two_blocks(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        return [b"a", b"b"]

    # Two blocks: the response is chunked, and its end is written, and the
    # line logged, on the loop after the application returned (a one-block
    # response may reach the client before the line is written).
    routes.apps["/two"] = two_blocks
    with ExpectLog(
        "reactor.access", r"200 GET /two\?q=1 \(127\.0\.0\.1\) \d+\.\d\dms", level=logging.INFO
    ):
        await http_client.fetch(base_url + "/two?q=1")


# -- streaming -------------------------------------------------------------------------


def streamed(release: threading.Event, closed: threading.Event) -> Any:
    """A WSGI app whose second block waits until the client has read the first."""

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            yield b"first;"
            if not release.wait(WAIT):
                yield b"TIMED-OUT"
                return
            yield b"second"
        finally:
            closed.set()

    return app


async def test_streaming_is_chunked_and_not_delayed(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    release, closed = threading.Event(), threading.Event()
    routes.apps["/stream"] = streamed(release, closed)

    def client() -> tuple[bool, bytes, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=WAIT)
        try:
            conn.request("GET", "/stream")
            response = conn.getresponse()
            # read1: whatever arrived, without waiting for the rest
            first = response.read1(100)
            release.set()
            rest = response.read()
            return response.chunked, first, rest
        finally:
            conn.close()

    chunked, first, rest = await in_thread(io_loop, client)
    assert chunked
    assert first == b"first;"  # sent before the app produced the second block
    assert rest == b"second"
    assert closed.wait(WAIT)


async def test_http10_without_length_ends_with_close(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    release, closed = threading.Event(), threading.Event()
    release.set()
    routes.apps["/stream"] = streamed(release, closed)
    reply = await in_thread(io_loop, raw_exchange, http_port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"first;second"


async def test_client_that_leaves_stops_the_body(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    closed = threading.Event()
    produced = []

    def endless(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for i in range(100_000):
                produced.append(i)
                yield b"x" * 65536
        finally:
            closed.set()

    routes.apps["/endless"] = endless

    def client() -> None:
        with socket.create_connection(("127.0.0.1", http_port), timeout=WAIT) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")

    await in_thread(io_loop, client)
    assert await in_thread(io_loop, closed.wait, WAIT)
    # the body stopped long before its 6 GB: back-pressure, then the close
    assert len(produced) < 100_000


async def test_client_that_stops_reading_is_cut_off(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes, container: WSGIContainer
) -> None:
    container.write_timeout = 0.1
    closed = threading.Event()

    def endless(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for _ in range(100_000):
                yield b"x" * 65536
        finally:
            closed.set()

    routes.apps["/endless"] = endless

    def client() -> bool:
        with socket.create_connection(("127.0.0.1", http_port), timeout=WAIT) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
            # Read nothing more until the application's thread gave up ...
            if not closed.wait(WAIT):
                return False
            # ... and the server closed the connection.
            while sock.recv(1 << 20):
                pass
            return True

    with ExpectLog(
        "reactor.general", r"WSGI response GET /endless: 127.0.0.1 took nothing", level=logging.INFO
    ):
        assert await in_thread(io_loop, client)


# -- the loop does not block ---------------------------------------------------------------


@pytest.fixture
def flask_app() -> flask.Flask:
    app = flask.Flask("reactor_wsgi_test")
    app.config["blocked"] = threading.Event()
    app.config["release"] = threading.Event()

    @app.route("/")
    def index() -> str:
        return "flask index"

    @app.route("/hello/<name>")
    def hello_name(name: str) -> str:
        return f"Hello, {name}!"

    @app.route("/form", methods=["POST"])
    def form() -> str:
        return "got " + ",".join(f"{k}={v}" for k, v in sorted(flask.request.form.items()))

    @app.route("/json", methods=["GET", "POST"])
    def as_json() -> Any:
        if flask.request.method == "POST":
            return flask.jsonify(received=flask.request.get_json())
        return flask.jsonify(answer=42, items=[1, 2])

    @app.route("/stream")
    def stream() -> Any:
        def blocks() -> Iterator[str]:
            for i in range(3):
                yield f"block {i}\n"

        return flask.Response(blocks(), mimetype="text/plain")

    @app.route("/slow")
    def slow() -> str:
        app.config["blocked"].set()
        # Block this worker until the test says another request was served.
        released = app.config["release"].wait(WAIT)
        return "slow done" if released else "slow timed out"

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("flask view failed")

    return app


@pytest.fixture
def flask_client(io_loop: IOLoop, flask_app: flask.Flask) -> Iterator[tuple[AsyncHTTPClient, str]]:
    from reactor.httpserver import HTTPServer
    from reactor.testing import bind_unused_port

    container = WSGIContainer(flask_app)
    sock, port = bind_unused_port()
    server = HTTPServer(container)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        yield client, f"http://127.0.0.1:{port}"
    finally:
        client.close()
        server.stop()
        io_loop.run_sync(server.close_all_connections, timeout=WAIT)
        sock.close()
        container.executor.shutdown(wait=True)


async def test_flask_routes_forms_json(flask_client: tuple[AsyncHTTPClient, str]) -> None:
    client, url = flask_client
    assert (await client.fetch(url + "/")).body == b"flask index"
    assert (await client.fetch(url + "/hello/ada")).body == b"Hello, ada!"
    response = await client.fetch(url + "/form", method="POST", body="b=2&a=%C3%A9")
    assert response.body == "got a=é,b=2".encode()
    response = await client.fetch(url + "/json")
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {"answer": 42, "items": [1, 2]}
    response = await client.fetch(
        url + "/json",
        method="POST",
        body=json.dumps({"k": [1, "two"]}),
        headers={"Content-Type": "application/json"},
    )
    assert json.loads(response.body) == {"received": {"k": [1, "two"]}}
    with pytest.raises(HTTPClientError) as caught:
        await client.fetch(url + "/missing")
    assert caught.value.code == 404


async def test_flask_streaming(flask_client: tuple[AsyncHTTPClient, str]) -> None:
    client, url = flask_client
    chunks: list[bytes] = []
    response = await client.fetch(url + "/stream", streaming_callback=chunks.append)
    assert b"".join(chunks) == b"block 0\nblock 1\nblock 2\n"
    assert response.headers["Transfer-Encoding"] == "chunked"


async def test_flask_error_is_500(flask_client: tuple[AsyncHTTPClient, str]) -> None:
    client, url = flask_client
    # Flask handles its own view errors (its log); the server stays up.
    flask_logger = logging.getLogger("reactor_wsgi_test")
    with ExpectLog(flask_logger, r"Exception on /boom"), pytest.raises(HTTPClientError) as caught:
        await client.fetch(url + "/boom")
    assert caught.value.code == 500
    assert (await client.fetch(url + "/")).code == 200


async def test_blocking_view_does_not_block_the_loop(
    io_loop: IOLoop, flask_client: tuple[AsyncHTTPClient, str], flask_app: flask.Flask
) -> None:
    client, url = flask_client
    slow = client.fetch(url + "/slow")
    # Wait (off the loop) until the slow view is blocked in its thread.
    assert await in_thread(io_loop, flask_app.config["blocked"].wait, WAIT)
    # Meanwhile the loop serves other requests; and a timer runs.
    ticked = []
    io_loop.call_later(0, ticked.append, True)
    fast = await client.fetch(url + "/")
    assert fast.body == b"flask index"
    assert ticked
    flask_app.config["release"].set()
    assert (await slow).body == b"slow done"


async def test_view_that_sleeps_while_another_is_answered(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    import time

    started = threading.Event()

    def sleeper(environ: Environ, start_response: StartResponse) -> list[bytes]:
        started.set()
        time.sleep(0.2)  # the blocking call under test, not a wait in the test
        start_response("200 OK", [])
        return [b"slept"]

    routes.apps["/sleep"] = sleeper
    slow = http_client.fetch(base_url + "/sleep")
    assert await in_thread(io_loop, started.wait, WAIT)
    fast = await http_client.fetch(base_url + "/")
    assert fast.body == b"Hello world!\n"
    assert not slow.done()  # answered while the sleeper still slept
    assert (await slow).body == b"slept"


async def test_curl(io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed for this test (apt-get install curl)"
    routes.apps["/env"] = echo_environ
    result = await in_thread(
        io_loop,
        lambda: subprocess.run(
            [
                curl,
                "-sS",
                "--max-time",
                str(WAIT),
                "-d",
                "x=1",
                f"http://127.0.0.1:{http_port}/env",
            ],
            capture_output=True,
            timeout=WAIT + 2,
        ),
    )
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["body"] == "x=1"
    assert env["HTTP_USER_AGENT"].startswith("curl/")


async def test_custom_executor_and_inline_executor(
    io_loop: IOLoop, http_port: int, routes: Routes
) -> None:
    from reactor.httpserver import HTTPServer
    from reactor.testing import bind_unused_port

    class Inline(concurrent.futures.Executor):
        """Runs each job on the calling thread (like Tornado's dummy_executor)."""

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:
                future.set_exception(e)
            return future

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine")
    routes.apps["/env"] = echo_environ
    client = AsyncHTTPClient(force_instance=True)
    try:
        for executor, thread in [(pool, "mine"), (Inline(), threading.current_thread().name)]:
            sock, port = bind_unused_port()
            server = HTTPServer(WSGIContainer(routes, executor=executor))  # type: ignore[arg-type]
            server.add_sockets([sock])
            try:
                response = await client.fetch(f"http://127.0.0.1:{port}/env?x")
                env = json.loads(response.body)
                assert env["thread"].startswith(thread)
            finally:
                server.stop()
                await server.close_all_connections()
                sock.close()
    finally:
        client.close()
        pool.shutdown(wait=True)


# -- applications that misbehave: 500, a log line, and the server goes on -----------------


def raises(environ: Environ, start_response: StartResponse) -> list[bytes]:
    raise ValueError("app failed")


def not_iterable(environ: Environ, start_response: StartResponse) -> Any:
    start_response("200 OK", [])
    return None


def twice(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [b"x"]


def yields_str(environ: Environ, start_response: StartResponse) -> list[Any]:
    start_response("200 OK", [])
    return ["text, not bytes"]


def no_start_response(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return [b"body without a status"]


def no_start_response_empty(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return []


def hop_by_hop(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Transfer-Encoding", "chunked")])
    return [b"0\r\n\r\n"]


def header_injection(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
    return [b"x"]


def bad_status(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("OK 200", [])
    return [b"x"]


def status_injection(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK\r\nSet-Cookie: evil=1", [])
    return []


def bad_content_length(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "-1")])
    return [b"x"]


def two_content_lengths(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "1"), ("content-length", "1")])
    return [b"x"]


def interim_status(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("101 Switching Protocols", [])
    return []


def bad_header_tuple(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("X-One", "1", "extra")])
    return [b"x"]


def close_raises(environ: Environ, start_response: StartResponse) -> Any:
    class Body(list[bytes]):
        def close(self) -> None:
            raise OSError("close failed")

    start_response("200 OK", [])
    return Body([b"x", b"y"])


@pytest.mark.parametrize(
    "bad_app, message",
    [
        (raises, r"Uncaught exception in WSGI application GET /bad"),
        (not_iterable, r"Uncaught exception in WSGI application"),
        (twice, r"Uncaught exception in WSGI application"),
        (yields_str, r"Uncaught exception in WSGI application"),
        (no_start_response, r"Uncaught exception in WSGI application"),
        (no_start_response_empty, r"WSGI application did not call start_response"),
        (hop_by_hop, r"Uncaught exception in WSGI application"),
        (header_injection, r"Uncaught exception in WSGI application"),
        (bad_status, r"Uncaught exception in WSGI application"),
        (status_injection, r"Uncaught exception in WSGI application"),
        (bad_content_length, r"Uncaught exception in WSGI application"),
        (two_content_lengths, r"Uncaught exception in WSGI application"),
        (interim_status, r"Uncaught exception in WSGI application"),
        (bad_header_tuple, r"Uncaught exception in WSGI application"),
    ],
    ids=lambda x: getattr(x, "__name__", "msg"),
)
async def test_bad_application_is_500(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes, bad_app: Any, message: str
) -> None:
    routes.apps["/bad"] = bad_app
    with (
        ExpectLog("reactor.application", message, level=logging.ERROR),
        ExpectLog("reactor.access", r"500 GET /bad"),
    ):
        response = await http_client.fetch(base_url + "/bad", raise_error=False)
    assert response.code == 500
    assert "evil" not in str(response.headers)
    assert b"500: Internal Server Error" in response.body
    # the server goes on, on the same client
    assert (await http_client.fetch(base_url + "/")).body == b"Hello world!\n"


async def test_close_that_raises_is_logged(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    routes.apps["/close"] = close_raises
    with ExpectLog("reactor.application", r"WSGI response body's close\(\) raised"):
        response = await http_client.fetch(base_url + "/close")
    assert response.body == b"xy"  # the body was whole: it is delivered


async def test_error_after_headers_cuts_the_response(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    def fails_midway(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise RuntimeError("midway")

    routes.apps["/midway"] = fails_midway
    with ExpectLog("reactor.application", r"Uncaught exception in WSGI application"):
        reply = await in_thread(
            io_loop, raw_exchange, http_port, b"GET /midway HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in body
    assert not body.endswith(b"0\r\n\r\n")  # no last chunk: the client sees it cut


async def test_content_length_mismatch_closes(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    def short(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "100")])
        yield b"only this"
        yield b" and this"

    routes.apps["/short"] = short
    with ExpectLog("reactor.application", r"WSGI response GET /short did not match"):
        reply = await in_thread(
            io_loop, raw_exchange, http_port, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b"only this and this")


async def test_body_for_a_304_closes_the_connection(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    def not_modified_with_body(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("304 Not Modified", [])
        return [b"a 304 has no body"]

    routes.apps["/304"] = not_modified_with_body
    with ExpectLog("reactor.application", r"WSGI response GET /304 could not be sent"):
        reply = await in_thread(
            io_loop, raw_exchange, http_port, b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    assert b"a 304 has no body" not in reply


async def test_exc_info_replaces_the_status_before_the_body(
    http_client: AsyncHTTPClient, base_url: str, routes: Routes
) -> None:
    def recovers(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("lookup")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Second", "1")], sys.exc_info())
        return [b"sorry"]

    routes.apps["/r"] = recovers
    response = await http_client.fetch(base_url + "/r", raise_error=False)
    assert response.code == 503
    assert response.body == b"sorry"
    assert "X-First" not in response.headers
    assert response.headers["X-Second"] == "1"


async def test_exc_info_after_the_headers_reraises(
    io_loop: IOLoop, http_port: int, http_server: Any, routes: Routes
) -> None:
    def too_late(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        write(b"sent")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())  # re-raises the KeyError
        yield b"never"

    routes.apps["/late"] = too_late
    with ExpectLog("reactor.application", r"Uncaught exception in WSGI application"):
        reply = await in_thread(
            io_loop, raw_exchange, http_port, b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert b"never" not in reply


def test_container_api() -> None:
    container = WSGIContainer(hello)
    assert container.wsgi_application is hello
    assert isinstance(container.executor, concurrent.futures.ThreadPoolExecutor)
    assert container.executor is container.executor
    container.executor.shutdown()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    assert WSGIContainer(hello, executor=pool).executor is pool
    pool.shutdown()


async def test_a_client_reset_mid_body_is_no_error(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """The client resets the connection between two blocks, before the loop
    has seen it go (an inline executor: the body runs on the loop's thread,
    so the close callback cannot come first): the failed write ends the
    response quietly, with no error logged and no 500."""
    from reactor.concurrent import dummy_executor
    from reactor.httpserver import HTTPServer
    from reactor.testing import bind_unused_port

    client: list[socket.socket] = []
    finished = threading.Event()

    def resets(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"first"
            sock = client[0]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # an RST, at once
            for _ in range(50):
                yield b"x" * 65536
        finally:
            finished.set()

    server = HTTPServer(WSGIContainer(resets, executor=dummy_executor))  # type: ignore[arg-type]
    sock, port = bind_unused_port()
    server.add_sockets([sock])
    try:
        with caplog.at_level(logging.INFO, logger="reactor"):
            conn = socket.create_connection(("127.0.0.1", port))
            client.append(conn)
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await in_thread(io_loop, finished.wait, WAIT)
            await gen.sleep(0.05)  # let the loop see the close, and log what it would
    finally:
        server.stop()
        await server.close_all_connections()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    [access] = [r for r in caplog.records if r.name == "reactor.access"]
    assert access.getMessage().startswith("200 GET /")


async def test_a_client_that_leaves_before_the_answer_is_not_a_500(
    io_loop: IOLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """A request waits for a busy worker; its client gives up meanwhile (as wrk
    does at the end of a run). The access log says the client left, at INFO:
    nothing was answered, so it is no 500."""
    from reactor.httpserver import HTTPServer
    from reactor.testing import bind_unused_port

    release = threading.Event()
    started = threading.Event()

    def slow(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/busy":
            started.set()
            release.wait(WAIT)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    container = WSGIContainer(slow, executor=concurrent.futures.ThreadPoolExecutor(1))  # type: ignore[arg-type]
    server = HTTPServer(container)
    sock, port = bind_unused_port()
    server.add_sockets([sock])
    busy = socket.create_connection(("127.0.0.1", port))
    try:
        with caplog.at_level(logging.INFO, logger="reactor"):
            busy.sendall(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await in_thread(io_loop, started.wait, WAIT)
            with socket.create_connection(("127.0.0.1", port)) as leaver:
                leaver.sendall(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in range(500):  # until the server has seen the close
                if len(server._connections) == 1:
                    break
                await gen.sleep(0.01)
            release.set()
            assert (await in_thread(io_loop, busy.recv, 1000)).startswith(b"HTTP/1.1 200 OK")
            for _ in range(200):  # until the queued request's line is logged
                if any("/queued" in r.getMessage() for r in caplog.records):
                    break
                await gen.sleep(0.01)
    finally:
        busy.close()
        server.stop()
        await server.close_all_connections()
        container._executor.shutdown(wait=True)  # type: ignore[union-attr]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors
    [queued] = [r for r in caplog.records if "/queued" in r.getMessage()]
    assert queued.levelno == logging.INFO
    assert queued.getMessage().startswith("client left before the answer: GET /queued")
