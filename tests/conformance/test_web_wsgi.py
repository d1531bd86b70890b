"""A Flask app beside reactor handlers in one Application, through
``web.FallbackHandler`` and ``wsgi.WSGIContainer``, over real HTTP on every
backend: routes to both, a form POST to Flask, a streamed Flask response,
Flask's 404 and reactor's, and one keep-alive connection going back and forth
between the two. ``http.client`` runs in the loop's executor with a timeout,
so a server that never answers fails the test instead of hanging it."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from reactor import web
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets
from reactor.wsgi import WSGIContainer

WAIT = 4.0
"""Seconds a client thread waits for the server."""


def make_flask() -> flask.Flask:
    app = flask.Flask("reactor_web_wsgi_test")

    @app.route("/flask/")
    def index() -> str:
        return "flask index"

    @app.route("/flask/hello/<name>")
    def hello(name: str) -> str:
        return f"flask says hello, {name}"

    @app.route("/flask/form", methods=["POST"])
    def form() -> str:
        fields = ",".join(f"{k}={v}" for k, v in sorted(flask.request.form.items()))
        return f"form {fields}"

    @app.route("/flask/stream")
    def stream() -> Any:
        def blocks() -> Iterator[str]:
            for i in range(4):
                yield f"block {i}\n"

        return flask.Response(blocks(), mimetype="text/plain")

    return app


class Api(web.RequestHandler):
    def get(self, name: str) -> None:
        self.write({"reactor": name})

    def post(self, name: str) -> None:
        self.write({"reactor": name, "a": self.get_body_argument("a")})


class Mixed:
    """The Application (reactor routes first, Flask under /flask/) on a free port."""

    def __init__(self) -> None:
        self.container = WSGIContainer(make_flask())
        app = web.Application(
            [
                (r"/api/(\w+)", Api),
                (r"/flask/.*", web.FallbackHandler, {"fallback": self.container}),
            ]
        )
        self.server = HTTPServer(app)
        [self.sock] = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.server.add_sockets([self.sock])
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = AsyncHTTPClient(force_instance=True)

    async def fetch(self, path: str, **kwargs: Any) -> HTTPResponse:
        kwargs.setdefault("raise_error", False)
        return await self.client.fetch(self.url + path, **kwargs)


@pytest.fixture
def mixed(io_loop: IOLoop) -> Iterator[Mixed]:
    serving = Mixed()
    yield serving
    serving.client.close()
    serving.server.stop()
    io_loop.run_sync(serving.server.close_all_connections, timeout=WAIT)
    serving.container.executor.shutdown(wait=True)


async def test_routes_reach_flask_and_reactor(mixed: Mixed) -> None:
    flask_page = await mixed.fetch("/flask/")
    assert (flask_page.code, flask_page.body) == (200, b"flask index")
    assert flask_page.headers["Content-Type"] == "text/html; charset=utf-8"
    hello = await mixed.fetch("/flask/hello/ada")
    assert hello.body == b"flask says hello, ada"
    api = await mixed.fetch("/api/ada")
    assert api.code == 200
    assert json.loads(api.body) == {"reactor": "ada"}
    assert api.headers["Content-Type"] == "application/json; charset=UTF-8"


async def test_form_posts_to_flask_and_to_reactor(mixed: Mixed) -> None:
    to_flask = await mixed.fetch("/flask/form", method="POST", body="b=2&a=%C3%A9")
    assert (to_flask.code, to_flask.body) == (200, "form a=é,b=2".encode())
    to_reactor = await mixed.fetch("/api/x", method="POST", body="a=%C3%A9")
    assert json.loads(to_reactor.body) == {"reactor": "x", "a": "é"}
    # Flask answers a method it does not route with its own 405.
    wrong = await mixed.fetch("/flask/form")
    assert wrong.code == 405


async def test_flask_streams_beside_reactor(mixed: Mixed) -> None:
    chunks: list[bytes] = []
    response = await mixed.fetch("/flask/stream", streaming_callback=chunks.append)
    assert response.code == 200
    assert b"".join(chunks) == b"block 0\nblock 1\nblock 2\nblock 3\n"
    assert response.headers["Transfer-Encoding"] == "chunked"


async def test_flask_404_and_reactor_404_are_each_their_own(mixed: Mixed) -> None:
    flask_missing = await mixed.fetch("/flask/nowhere")
    assert flask_missing.code == 404
    assert b"The requested URL was not found on the server" in flask_missing.body
    reactor_missing = await mixed.fetch("/elsewhere")
    assert reactor_missing.code == 404
    assert reactor_missing.body == (
        b"<html><title>404: Not Found</title><body>404: Not Found</body></html>"
    )
    # A path the reactor pattern does not match falls to reactor's 404, not Flask.
    bad_api = await mixed.fetch("/api/not-a-word")
    assert bad_api.code == 404
    assert bad_api.body == reactor_missing.body


def back_and_forth(port: int) -> list[tuple[int, bytes]]:
    """One keep-alive connection: Flask, reactor, a Flask POST, reactor, Flask's 404."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    answers = []
    try:
        for method, path, body in [
            ("GET", "/flask/hello/one", None),
            ("GET", "/api/two", None),
            ("POST", "/flask/form", "x=3"),
            ("GET", "/api/four", None),
            ("GET", "/flask/none", None),
            ("GET", "/flask/stream", None),
            ("GET", "/api/last", None),
        ]:
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            answers.append((response.status, response.read()))
        assert conn.sock is not None  # never closed between requests
    finally:
        conn.close()
    return answers


async def test_one_connection_goes_back_and_forth(io_loop: IOLoop, mixed: Mixed) -> None:
    answers = await io_loop.run_in_executor(None, back_and_forth, mixed.port)
    assert [code for code, _ in answers] == [200, 200, 200, 200, 404, 200, 200]
    assert answers[0][1] == b"flask says hello, one"
    assert json.loads(answers[1][1]) == {"reactor": "two"}
    assert answers[2][1] == b"form x=3"
    assert json.loads(answers[3][1]) == {"reactor": "four"}
    assert answers[5][1] == b"block 0\nblock 1\nblock 2\nblock 3\n"
    assert json.loads(answers[6][1]) == {"reactor": "last"}


async def test_a_lying_content_length_gets_400_and_the_server_goes_on(
    io_loop: IOLoop, mixed: Mixed
) -> None:
    def lie() -> bytes:
        with socket.create_connection(("127.0.0.1", mixed.port), timeout=WAIT) as sock:
            sock.sendall(b"POST /flask/form HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\nx=1")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    answer = await io_loop.run_in_executor(None, lie)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert (await mixed.fetch("/flask/")).body == b"flask index"


async def test_head_to_flask_has_no_body(mixed: Mixed) -> None:
    response = await mixed.fetch("/flask/hello/ada", method="HEAD")
    assert response.code == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == str(len(b"flask says hello, ada"))


async def test_a_body_over_max_body_size_is_refused_before_flask(io_loop: IOLoop) -> None:
    container = WSGIContainer(make_flask())
    app = web.Application([(r"/flask/.*", web.FallbackHandler, {"fallback": container})])
    server = HTTPServer(app, max_body_size=1024)
    [sock] = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server.add_sockets([sock])
    port = int(sock.getsockname()[1])
    client = AsyncHTTPClient(force_instance=True)
    try:
        big = await client.fetch(
            f"http://127.0.0.1:{port}/flask/form",
            method="POST",
            body="a=" + "x" * 4096,
            raise_error=False,
        )
        assert big.code == 413  # reactor's HTTPServer says why (Tornado: a bare 400)
        small = await client.fetch(
            f"http://127.0.0.1:{port}/flask/form", method="POST", body="a=1", raise_error=False
        )
        assert small.body == b"form a=1"
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
        container.executor.shutdown(wait=True)
