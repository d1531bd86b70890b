"""RequestHandler through real HTTP on every backend: methods (plain, async
def, gen.coroutine), arguments, status and headers, output, errors.

Each test fetches from an Application served by the ``http_server`` fixture
with the project's AsyncHTTPClient (or a raw socket where the client would
refuse to send the bad input)."""

from __future__ import annotations

import datetime
import json
import logging
import socket
from typing import Any

import pytest

from reactor import gen, web
from reactor.escape import url_escape
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.testing import ExpectLog


class Plain(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class Async(web.RequestHandler):
    async def get(self) -> None:
        await gen.sleep(0)
        self.write({"kind": "async"})


class Coroutine(web.RequestHandler):
    @gen.coroutine
    def get(self) -> Any:
        yield gen.moment
        self.write({"kind": "coroutine"})


class AsyncPrepare(web.RequestHandler):
    async def prepare(self) -> None:
        await gen.sleep(0)
        self.prepared = True

    def get(self) -> None:
        self.write("prepared" if self.prepared else "not prepared")


class FinishInPrepare(web.RequestHandler):
    def prepare(self) -> None:
        self.finish("from prepare")

    def get(self) -> None:
        raise AssertionError("get must not run after prepare finished")


class Initialized(web.RequestHandler):
    def initialize(self, word: str) -> None:  # type: ignore[override]
        self.word = word

    def get(self) -> None:
        self.write(self.word)


class Arguments(web.RequestHandler):
    def get(self) -> None:
        self.write(
            {
                "one": self.get_argument("one"),
                "all": self.get_arguments("many"),
                "default": self.get_argument("absent", "fallback"),
                "none": self.get_argument("absent", None),
                "raw": self.get_argument("raw", "", strip=False),
                "query": self.get_query_argument("one"),
            }
        )

    def post(self) -> None:
        self.write(
            {
                "body": self.get_body_argument("b"),
                "bodies": self.get_body_arguments("b"),
                "query": self.get_query_arguments("b"),
                "both": self.get_arguments("b"),
            }
        )


class PathArgs(web.RequestHandler):
    def get(self, first: str, second: str) -> None:
        self.write({"args": [first, second], "path_args": self.path_args})


class PathKwargs(web.RequestHandler):
    def get(self, name: str, number: str) -> None:
        self.write({"name": name, "number": number, "kwargs": self.path_kwargs})


class Status(web.RequestHandler):
    def get(self) -> None:
        code = int(self.get_argument("code"))
        reason = self.get_argument("reason", None)
        self.set_status(code, reason)
        self.write(str(self.get_status()))


class Headers(web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("X-Default", "yes")
        self.set_header("Server", "mine")

    def get(self) -> None:
        self.set_header("X-Str", "a")
        self.set_header("X-Bytes", b"b")
        self.set_header("X-Int", 42)
        self.set_header("X-Date", datetime.datetime(2020, 1, 2, 3, 4, 5))
        self.add_header("X-Multi", "1")
        self.add_header("X-Multi", "2")
        self.set_header("X-Gone", "x")
        self.clear_header("X-Gone")
        self.clear_header("X-Never-Set")


class Raises(web.RequestHandler):
    def get(self) -> None:
        raise ZeroDivisionError("the handler's own bug")


class AsyncRaises(web.RequestHandler):
    async def get(self) -> None:
        await gen.sleep(0)
        raise KeyError("async bug")


class RaisesHTTPError(web.RequestHandler):
    def get(self) -> None:
        code = int(self.get_argument("code"))
        raise web.HTTPError(
            code, "secret detail %s", "here", reason=self.get_argument("reason", None)
        )


class RaisesFinish(web.RequestHandler):
    def get(self) -> None:
        self.set_status(201)
        raise web.Finish("finished early")


class WritesList(web.RequestHandler):
    def get(self) -> None:
        self.write([1, 2])  # type: ignore[arg-type]


class UnsafeHeader(web.RequestHandler):
    def get(self) -> None:
        self.set_header("X-Evil", self.get_argument("value"))


class CustomError(web.RequestHandler):
    def get(self) -> None:
        raise web.HTTPError(418)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write({"error": status_code, "exc": type(kwargs["exc_info"][1]).__name__})


class SendError(web.RequestHandler):
    def get(self) -> None:
        self.write("discarded")
        self.send_error(503, reason="Come Back Later")


class Redirects(web.RequestHandler):
    def get(self) -> None:
        kind = self.get_argument("kind")
        if kind == "temporary":
            self.redirect("/plain")
        elif kind == "permanent":
            self.redirect("/plain", permanent=True)
        elif kind == "status":
            self.redirect("http://other.example/x", status=307)


class Flushes(web.RequestHandler):
    async def get(self) -> None:
        for i in range(3):
            self.write(f"part{i};")
            await self.flush()


class Head(web.RequestHandler):
    def get(self) -> None:
        self.write("body of twelve")

    def head(self) -> None:
        self.write("body of twelve")


class Clear(web.RequestHandler):
    def get(self) -> None:
        self.set_header("X-Before", "1")
        self.write("lost")
        self.set_status(500)
        self.clear()
        self.write("kept")


class Etag(web.RequestHandler):
    def get(self) -> None:
        self.write("stable content")


class NoEtag(web.RequestHandler):
    def compute_etag(self) -> str | None:
        return None

    def get(self) -> None:
        self.write("stable content")


class OnFinish(web.RequestHandler):
    finished: list[str] = []

    def get(self) -> None:
        self.write("x")

    def on_finish(self) -> None:
        OnFinish.finished.append(self.request.path)


class Slash(web.RequestHandler):
    @web.removeslash
    def get(self) -> None:
        self.write("no slash: " + self.request.path)


class AddSlash(web.RequestHandler):
    @web.addslash
    def get(self) -> None:
        self.write("slash: " + self.request.path)


class OnlyPost(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST")

    def post(self) -> None:
        self.write("posted")


class Reverse(web.RequestHandler):
    def get(self) -> None:
        self.write(self.reverse_url("kwargs", "a b/c?d#e", 7))


class FlushAfterFinish(web.RequestHandler):
    """A Tornado handler may flush() with nothing buffered once it has
    finished (in on_finish, say): it gets a resolved future, not an error."""

    outcomes: list[str] = []

    def get(self) -> None:
        self.write("done")
        self.flush()
        self.finish()

    def on_finish(self) -> None:
        try:
            future = self.flush()
        except Exception as exc:
            self.outcomes.append(f"raised {exc!r}")
        else:
            self.outcomes.append(f"done={future.done()} result={future.result()!r}")


@pytest.fixture
def app() -> web.Application:
    return web.Application(
        [
            (r"/plain", Plain),
            (r"/async", Async),
            (r"/coroutine", Coroutine),
            (r"/async-prepare", AsyncPrepare),
            (r"/finish-in-prepare", FinishInPrepare),
            (r"/initialized", Initialized, {"word": "configured"}),
            (r"/arguments", Arguments),
            (r"/path/([^/]+)/([^/]+)", PathArgs),
            web.url(r"/kw/(?P<name>[^/]+)/(?P<number>[0-9]+)", PathKwargs, name="kwargs"),
            (r"/status", Status),
            (r"/headers", Headers),
            (r"/raises", Raises),
            (r"/async-raises", AsyncRaises),
            (r"/http-error", RaisesHTTPError),
            (r"/finish-exception", RaisesFinish),
            (r"/writes-list", WritesList),
            (r"/unsafe-header", UnsafeHeader),
            (r"/custom-error", CustomError),
            (r"/send-error", SendError),
            (r"/redirect", Redirects),
            (r"/flushes", Flushes),
            (r"/head", Head),
            (r"/clear", Clear),
            (r"/etag", Etag),
            (r"/no-etag", NoEtag),
            (r"/on-finish", OnFinish),
            (r"/flush-after-finish", FlushAfterFinish),
            (r"/slash/*", Slash),
            (r"/addslash/?", AddSlash),
            (r"/only-post", OnlyPost),
            (r"/reverse", Reverse),
        ]
    )


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("raise_error", False)
    kwargs.setdefault("follow_redirects", False)
    return await client.fetch(url, **kwargs)


async def raw(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes."""
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await stream.connect(("127.0.0.1", port))
    await stream.write(data)
    return await stream.read_until_close()


async def test_plain_method(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/plain")
    assert response.code == 200
    assert response.body == b"Hello, world"
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert response.headers["Content-Length"] == "12"
    assert response.headers["Server"].startswith("ReactorServer/")
    assert "Date" in response.headers


@pytest.mark.parametrize(("path", "kind"), [("/async", "async"), ("/coroutine", "coroutine")])
async def test_async_and_coroutine_methods(
    http_client: AsyncHTTPClient, base_url: str, path: str, kind: str
) -> None:
    response = await fetch(http_client, base_url + path)
    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(response.body) == {"kind": kind}


async def test_async_prepare_runs_before_the_method(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/async-prepare")
    assert response.body == b"prepared"


async def test_finish_in_prepare_skips_the_method(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/finish-in-prepare")
    assert response.code == 200
    assert response.body == b"from prepare"


async def test_initialize_gets_the_rule_kwargs(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/initialized")
    assert response.body == b"configured"


async def test_arguments(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(
        http_client, base_url + "/arguments?one=+first+&one=%20last%20&many=a&many=b&raw=%20x%01"
    )
    assert json.loads(response.body) == {
        "one": "last",
        "all": ["a", "b"],
        "default": "fallback",
        "none": None,
        "raw": " x ",  # control characters become spaces; not stripped
        "query": "last",
    }


async def test_body_and_query_arguments_are_kept_apart(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(
        http_client,
        base_url + "/arguments?b=q",
        method="POST",
        body="b=x&b=y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert json.loads(response.body) == {
        "body": "y",
        "bodies": ["x", "y"],
        "query": ["q"],
        "both": ["q", "x", "y"],
    }


async def test_missing_argument_is_a_400_naming_it(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    with ExpectLog("reactor.general", r"400 GET /arguments .*Missing argument one"):
        response = await fetch(http_client, base_url + "/arguments")
    assert response.code == 400
    assert b"missing argument one" in response.body


async def test_non_utf8_argument_is_a_400(http_client: AsyncHTTPClient, base_url: str) -> None:
    with ExpectLog("reactor.general", r"400 GET .*Invalid unicode in one"):
        response = await fetch(http_client, base_url + "/arguments?one=%ff%fe")
    assert response.code == 400


async def test_non_utf8_path_argument_is_a_400(http_client: AsyncHTTPClient, base_url: str) -> None:
    with ExpectLog("reactor.general", r"400 GET .*Invalid unicode in url"):
        response = await fetch(http_client, base_url + "/path/%ff/x")
    assert response.code == 400


async def test_positional_path_arguments_are_unquoted(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/path/a%20b/c+d%2Fe")
    assert json.loads(response.body) == {
        "args": ["a b", "c+d/e"],
        "path_args": ["a b", "c+d/e"],
    }


async def test_named_path_arguments(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/kw/%C3%A9t%C3%A9/12")
    assert json.loads(response.body) == {
        "name": "été",
        "number": "12",
        "kwargs": {"name": "été", "number": "12"},
    }


async def test_reverse_url_escapes_its_arguments(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/reverse")
    # "/" is kept (as in Tornado); "?" and "#" cannot start a query or fragment.
    assert response.body == b"/kw/a%20b/c%3Fd%23e/7"


@pytest.mark.parametrize(
    ("code", "reason", "expected_reason"),
    [
        ("201", None, "Created"),
        ("299", None, "Unknown"),
        ("299", "Custom Reason", "Custom Reason"),
        ("200", "<script>", "Unknown"),
    ],
)
async def test_set_status(
    http_client: AsyncHTTPClient,
    base_url: str,
    code: str,
    reason: str | None,
    expected_reason: str,
) -> None:
    url = base_url + "/status?code=" + code + ("&reason=" + url_escape(reason) if reason else "")
    response = await fetch(http_client, url)
    assert response.code == int(code)
    assert response.reason == expected_reason
    assert response.body == code.encode()


async def test_header_values_and_defaults(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/headers")
    headers = response.headers
    assert headers["X-Default"] == "yes"
    assert headers["Server"] == "mine"
    assert headers["X-Str"] == "a"
    assert headers["X-Bytes"] == "b"
    assert headers["X-Int"] == "42"
    assert headers["X-Date"] == "Thu, 02 Jan 2020 03:04:05 GMT"
    assert headers.get_list("X-Multi") == ["1", "2"]
    assert "X-Gone" not in headers


async def test_header_injection_is_refused_with_500(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    with ExpectLog("reactor.application", r"Uncaught exception GET /unsafe-header"):
        response = await fetch(http_client, base_url + "/unsafe-header?value=a%0d%0aX-Injected:+1")
    assert response.code == 500
    assert "X-Injected" not in response.headers


async def test_a_header_value_latin1_cannot_carry_is_refused_where_it_is_set(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    # U+00E9 is Latin-1, and goes out as its one byte; U+20AC is not, and
    # fails in set_header (a 500 logged once), not when the headers are sent.
    response = await fetch(http_client, base_url + "/unsafe-header?value=caf%C3%A9")
    assert response.code == 200
    assert response.headers["X-Evil"] == "caf\u00e9"
    with ExpectLog("reactor.application", r"Uncaught exception GET /unsafe-header"):
        response = await fetch(http_client, base_url + "/unsafe-header?value=%E2%82%AC")
    assert response.code == 500
    assert "X-Evil" not in response.headers


async def test_uncaught_exception_is_a_500_logged_with_its_traceback(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        response = await fetch(http_client, base_url + "/raises")
    assert response.code == 500
    assert b"ZeroDivisionError" not in response.body  # no traceback without serve_traceback
    assert response.body == b"<html><title>500: Internal Server Error</title>" + (
        b"<body>500: Internal Server Error</body></html>"
    )
    [record] = [r for r in caplog.records if r.name == "reactor.application"]
    assert record.getMessage().startswith("Uncaught exception GET /raises (127.0.0.1)")
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


async def test_async_exception_is_a_500(http_client: AsyncHTTPClient, base_url: str) -> None:
    with ExpectLog("reactor.application", r"Uncaught exception GET /async-raises"):
        response = await fetch(http_client, base_url + "/async-raises")
    assert response.code == 500


async def test_traceback_is_served_only_with_serve_traceback(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, app: web.Application
) -> None:
    app.settings["serve_traceback"] = True
    with ExpectLog("reactor.application", r"Uncaught exception GET /raises"):
        response = await fetch(http_client, base_url + "/raises")
    assert response.code == 500
    assert response.headers["Content-Type"] == "text/plain"
    assert b"Traceback (most recent call last)" in response.body
    assert b"ZeroDivisionError: the handler's own bug" in response.body


@pytest.mark.parametrize("code", [400, 403, 404, 409, 503])
async def test_http_error_codes(http_client: AsyncHTTPClient, base_url: str, code: int) -> None:
    with ExpectLog("reactor.general", rf"{code} GET /http-error.*: secret detail here"):
        response = await fetch(http_client, base_url + f"/http-error?code={code}")
    assert response.code == code
    assert b"secret detail" not in response.body  # the log message stays in the log


async def test_http_error_reason(http_client: AsyncHTTPClient, base_url: str) -> None:
    with ExpectLog("reactor.general", r"400 GET"):
        response = await fetch(http_client, base_url + "/http-error?code=400&reason=Bad+Widget")
    assert response.reason == "Bad Widget"
    assert b"400: Bad Widget" in response.body


async def test_finish_exception_ends_without_error(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/finish-exception")
    assert response.code == 201
    assert response.body == b"finished early"


async def test_write_of_a_list_is_refused(http_client: AsyncHTTPClient, base_url: str) -> None:
    with ExpectLog("reactor.application", r"Uncaught exception GET /writes-list"):
        response = await fetch(http_client, base_url + "/writes-list")
    assert response.code == 500


async def test_write_error_override(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/custom-error")
    assert response.code == 418
    assert json.loads(response.body) == {"error": 418, "exc": "HTTPError"}


async def test_send_error_discards_output(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/send-error")
    assert response.code == 503
    assert response.reason == "Come Back Later"
    assert b"discarded" not in response.body


@pytest.mark.parametrize(
    ("kind", "code", "location"),
    [
        ("temporary", 302, "/plain"),
        ("permanent", 301, "/plain"),
        ("status", 307, "http://other.example/x"),
    ],
)
async def test_redirect(
    http_client: AsyncHTTPClient, base_url: str, kind: str, code: int, location: str
) -> None:
    response = await fetch(http_client, base_url + f"/redirect?kind={kind}")
    assert response.code == code
    assert response.headers["Location"] == location


async def test_flush_sends_pieces_chunked(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/flushes")
    assert response.body == b"part0;part1;part2;"
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers


async def test_head_has_headers_and_no_body(http_port: int, http_server: Any) -> None:
    reply = await raw(http_port, b"HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 14" in head
    assert body == b""


async def test_clear_resets_output_headers_and_status(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/clear")
    assert response.code == 200
    assert response.body == b"kept"
    assert "X-Before" not in response.headers


async def test_etag_and_304(http_client: AsyncHTTPClient, base_url: str) -> None:
    first = await fetch(http_client, base_url + "/etag")
    etag = first.headers["Etag"]
    assert etag.startswith('"') and etag.endswith('"')
    for sent in (etag, "W/" + etag, '"other", ' + etag, "*"):
        again = await fetch(http_client, base_url + "/etag", headers={"If-None-Match": sent})
        assert again.code == 304, sent
        assert again.body == b""
        assert "Content-Type" not in again.headers
        assert again.headers["Etag"] == etag
    other = await fetch(http_client, base_url + "/etag", headers={"If-None-Match": '"nope"'})
    assert other.code == 200
    assert other.body == b"stable content"


async def test_no_etag_when_compute_etag_returns_none(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/no-etag", headers={"If-None-Match": "*"})
    assert response.code == 200
    assert "Etag" not in response.headers


async def test_on_finish_is_called(http_client: AsyncHTTPClient, base_url: str) -> None:
    OnFinish.finished.clear()
    await fetch(http_client, base_url + "/on-finish")
    assert OnFinish.finished == ["/on-finish"]


async def test_flush_after_finish_resolves(http_client: AsyncHTTPClient, base_url: str) -> None:
    FlushAfterFinish.outcomes.clear()
    response = await fetch(http_client, base_url + "/flush-after-finish")
    assert (response.code, response.body) == (200, b"done")
    assert FlushAfterFinish.outcomes == ["done=True result=None"]


async def test_removeslash_and_addslash(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/slash/?a=1")
    assert response.code == 301
    assert response.headers["Location"] == "/slash?a=1"
    response = await fetch(http_client, base_url + "/slash")
    assert response.body == b"no slash: /slash"
    response = await fetch(http_client, base_url + "/addslash?a=1")
    assert response.code == 301
    assert response.headers["Location"] == "/addslash/?a=1"
    response = await fetch(http_client, base_url + "/addslash/")
    assert response.body == b"slash: /addslash/"


async def test_removeslash_refuses_a_protocol_relative_redirect(
    io_loop: IOLoop, http_port: int, app: web.Application
) -> None:
    """CVE-2023-28370's class: ``//evil.example/`` must not become
    ``Location: //evil.example``, which a browser reads as another host."""
    app.add_handlers(r".*", [(r"/+evil\.example/*", Slash)])
    from reactor.httpserver import HTTPServer
    from reactor.netutil import bind_sockets

    server = HTTPServer(app)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    try:
        with ExpectLog("reactor.general", r"403 GET //evil.example/"):
            reply = await raw(
                port, b"GET //evil.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
    finally:
        server.stop()
        await server.close_all_connections()
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert b"Location" not in reply


async def test_unsupported_method_is_405_with_allow(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, base_url + "/plain", method="DELETE")
    assert response.code == 405
    assert response.headers["Allow"] == "GET"
    response = await fetch(http_client, base_url + "/only-post", method="PUT", body=b"")
    assert response.code == 405
    assert response.headers["Allow"] == "POST"


async def test_unknown_route_is_404(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/no/such/page")
    assert response.code == 404
    assert b"404: Not Found" in response.body


# -- errors around the edges -----------------------------------------------------------


class ErrorAfterFlush(web.RequestHandler):
    async def get(self) -> None:
        self.write("partial")
        await self.flush()
        raise ValueError("too late for a status")


class ErrorInWriteError(web.RequestHandler):
    def get(self) -> None:
        raise web.HTTPError(409)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        raise RuntimeError("the error page's own bug")


class ErrorInOnFinish(web.RequestHandler):
    def get(self) -> None:
        self.write("answered")

    def on_finish(self) -> None:
        raise RuntimeError("cleanup failed")


class WriteAfterFinish(web.RequestHandler):
    def get(self) -> None:
        self.finish("first")
        self.write("second")


class CoroutinePrepareRaises(web.RequestHandler):
    @gen.coroutine
    def prepare(self) -> Any:
        yield gen.moment
        raise web.HTTPError(401)

    def get(self) -> None:
        raise AssertionError("get must not run")


@pytest.fixture
def edge_app() -> web.Application:
    return web.Application(
        [
            (r"/after-flush", ErrorAfterFlush),
            (r"/in-write-error", ErrorInWriteError),
            (r"/in-on-finish", ErrorInOnFinish),
            (r"/write-after-finish", WriteAfterFinish),
            (r"/prepare-raises", CoroutinePrepareRaises),
            (r"/plain", Plain),
        ]
    )


@pytest.fixture
def edge(io_loop: IOLoop, edge_app: web.Application) -> Any:
    from reactor.httpserver import HTTPServer
    from reactor.netutil import bind_sockets

    server = HTTPServer(edge_app)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    port = sock.getsockname()[1]
    yield client, f"http://127.0.0.1:{port}", port
    client.close()
    server.stop()
    io_loop.run_sync(server.close_all_connections)


async def test_error_after_the_headers_went_out_ends_the_response(edge: Any) -> None:
    _, _, port = edge
    with (
        ExpectLog("reactor.application", r"Uncaught exception GET /after-flush"),
        ExpectLog("reactor.general", r"Cannot send error response after headers written"),
    ):
        reply = await raw(port, b"GET /after-flush HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial" in reply
    # Closed without the last chunk: the client can tell the body is cut short.
    assert not reply.endswith(b"0\r\n\r\n")


async def test_error_in_write_error_still_answers(edge: Any) -> None:
    client, base, _ = edge
    with ExpectLog("reactor.application", r"Uncaught exception in write_error"):
        response = await fetch(client, base + "/in-write-error")
    assert response.code == 409
    assert (await fetch(client, base + "/plain")).code == 200  # the loop goes on


async def test_error_in_on_finish_is_logged_after_the_answer(edge: Any) -> None:
    client, base, _ = edge
    with ExpectLog("reactor.application", r"Uncaught exception GET /in-on-finish"):
        response = await fetch(client, base + "/in-on-finish")
    assert response.code == 200
    assert response.body == b"answered"


async def test_write_after_finish_is_logged(edge: Any) -> None:
    client, base, _ = edge
    with ExpectLog("reactor.application", r"Uncaught exception GET /write-after-finish"):
        response = await fetch(client, base + "/write-after-finish")
    assert response.body == b"first"


async def test_coroutine_prepare_that_raises(edge: Any) -> None:
    client, base, _ = edge
    response = await fetch(client, base + "/prepare-raises")
    assert response.code == 401


async def test_many_pipelined_requests_are_answered_in_order(
    http_port: int, http_server: Any
) -> None:
    """Sync and async handlers on one pipelined connection: each answer in its place."""
    paths = ["/plain", "/async", "/coroutine", "/arguments?one=1"] * 25
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in paths)
    data += b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = await raw(http_port, data)
    assert reply.count(b"HTTP/1.1 200 OK") == len(paths) + 1
    order = [m for m in (b"Hello, world", b'"async"', b'"coroutine"', b'"one": "1"')]
    positions = [reply.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_http_error_messages() -> None:
    plain = web.HTTPError(404, "100% gone")
    assert plain.get_message() == "100% gone"
    assert plain.log_message == "100%% gone"  # a %-format, as older code reads it
    assert str(plain) == "HTTP 404: Not Found (100% gone)"
    formatted = web.HTTPError(400, "bad %s", "input", reason="Bad Input")
    assert formatted.get_message() == "bad input"
    assert formatted.log_message == "bad %s"
    assert str(formatted) == "HTTP 400: Bad Input (bad input)"
    assert str(web.HTTPError(599)) == "HTTP 599: Unknown"
    missing = web.MissingArgumentError("page")
    assert (missing.status_code, missing.arg_name) == (400, "page")
    assert str(missing) == "HTTP 400: Bad Request (Missing argument page)"


class HookOverrides(web.RequestHandler):
    """Overrides the hooks that the hot path skips when they are the base's."""

    def initialize(self) -> None:  # no arguments: still called
        self.initialized = True

    def set_etag_header(self) -> None:
        self.set_header("Etag", '"custom"')

    def check_etag_header(self) -> bool:
        return self.request.headers.get("X-Pretend-Fresh") == "yes"

    def get(self) -> None:
        self.write("initialized" if self.initialized else "not initialized")


async def test_overridden_hooks_run(io_loop: IOLoop, app: web.Application) -> None:
    app.add_handlers(r".*", [(r"/hooks", HookOverrides)])
    from reactor.httpserver import HTTPServer
    from reactor.netutil import bind_sockets

    server = HTTPServer(app)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        response = await fetch(client, base + "/hooks")
        assert response.body == b"initialized"
        assert response.headers["Etag"] == '"custom"'
        fresh = await fetch(client, base + "/hooks", headers={"X-Pretend-Fresh": "yes"})
        assert fresh.code == 304
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
