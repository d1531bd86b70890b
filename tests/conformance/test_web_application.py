"""Application through real HTTP on every backend: hosts, default handlers,
settings (static routes, gzip, log_function, debug), the access log,
streamed bodies, closed connections, detach, authenticated, render with
a template loader and UI modules, and the stock handlers."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import types
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen, web
from reactor.concurrent import Future
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.locks import Event
from reactor.netutil import bind_sockets
from reactor.testing import ExpectLog
from reactor.util import ObjectDict


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("raise_error", False)
    kwargs.setdefault("follow_redirects", False)
    return await client.fetch(url, **kwargs)


async def connect(port: int) -> IOStream:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await stream.connect(("127.0.0.1", port))
    return stream


class Serving:
    """An Application served on a free port of the test's loop."""

    def __init__(self, app: web.Application, **server_kwargs: Any) -> None:
        self.server = HTTPServer(app, **server_kwargs)
        [sock] = bind_sockets(0, "127.0.0.1")
        self.server.add_sockets([sock])
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = AsyncHTTPClient(force_instance=True)

    async def fetch(self, path: str, **kwargs: Any) -> HTTPResponse:
        return await fetch(self.client, self.url + path, **kwargs)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Any]:
    servers: list[Serving] = []

    def start(app: web.Application, **server_kwargs: Any) -> Serving:
        serving = Serving(app, **server_kwargs)
        servers.append(serving)
        return serving

    yield start
    for serving in servers:
        serving.close()
        io_loop.run_sync(serving.server.close_all_connections)


class Echo(web.RequestHandler):
    def initialize(self, label: str = "default") -> None:
        self.label = label

    def get(self, *args: str, **kwargs: str) -> None:
        self.write({"label": self.label, "path": self.request.path, "args": list(args)})


class FixedLocale:
    """A locale of our own: reactor.locale is another part of the web layer."""

    code = "en_US"

    def translate(self, message: str, plural: str | None = None, count: int | None = None) -> str:
        return message

    def pgettext(self, context: str, message: str, *args: Any) -> str:
        return message


# -- hosts and defaults ---------------------------------------------------------------


async def test_add_handlers_routes_by_host(serve: Any) -> None:
    app = web.Application([(r"/", Echo, {"label": "any host"})])
    app.add_handlers(r"api\.example\.com", [(r"/", Echo, {"label": "api"})])
    app.add_handlers(r".*\.example\.org", [(r"/", Echo, {"label": "org"})])
    s = serve(app)
    api = await s.fetch("/", headers={"Host": "API.example.com:8080"})
    assert json.loads(api.body)["label"] == "api"
    org = await s.fetch("/", headers={"Host": "www.example.org"})
    assert json.loads(org.body)["label"] == "org"
    other = await s.fetch("/", headers={"Host": "else.example.net"})
    assert json.loads(other.body)["label"] == "any host"


async def test_default_host_rules_apply_to_unknown_hosts(serve: Any) -> None:
    app = web.Application([], default_host="main.example")
    app.add_handlers(r"main\.example", [(r"/", Echo, {"label": "main"})])
    s = serve(app)
    response = await s.fetch("/", headers={"Host": "unknown.example"})
    assert json.loads(response.body)["label"] == "main"
    # Through a proxy (X-Real-Ip), the default host does not apply.
    proxied = await s.fetch("/", headers={"Host": "unknown.example", "X-Real-Ip": "10.0.0.1"})
    assert proxied.code == 404


async def test_default_handler_class(serve: Any) -> None:
    app = web.Application(
        [(r"/", Echo)],
        default_handler_class=Echo,
        default_handler_args={"label": "fallback"},
    )
    s = serve(app)
    response = await s.fetch("/anything/else")
    assert json.loads(response.body) == {"label": "fallback", "path": "/anything/else", "args": []}


async def test_first_matching_rule_wins_and_literal_paths_keep_their_order(serve: Any) -> None:
    app = web.Application(
        [
            (r"/a.c", Echo, {"label": "regex first"}),
            (r"/abc", Echo, {"label": "literal second"}),
            (r"/exact", Echo, {"label": "literal"}),
            (r"/(.*)", Echo, {"label": "catch-all"}),
            (r"/late", Echo, {"label": "never"}),
        ]
    )
    s = serve(app)
    assert json.loads((await s.fetch("/abc")).body)["label"] == "regex first"
    assert json.loads((await s.fetch("/axc")).body)["label"] == "regex first"
    assert json.loads((await s.fetch("/exact")).body)["label"] == "literal"
    assert json.loads((await s.fetch("/late")).body)["label"] == "catch-all"
    # A pattern is anchored at both ends.
    assert json.loads((await s.fetch("/exactly")).body)["label"] == "catch-all"


async def test_listen_returns_the_server(io_loop: IOLoop) -> None:
    app = web.Application([(r"/", Echo)])
    [sock] = bind_sockets(0, "127.0.0.1")
    port = sock.getsockname()[1]
    sock.close()
    server = app.listen(port, "127.0.0.1", xheaders=True)
    client = AsyncHTTPClient(force_instance=True)
    try:
        assert isinstance(server, HTTPServer)
        assert server.xheaders
        response = await fetch(client, f"http://127.0.0.1:{port}/")
        assert response.code == 200
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


# -- the access log ---------------------------------------------------------------------


async def test_access_log_levels_and_format(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    class Coded(web.RequestHandler):
        def get(self, code: str) -> None:
            self.set_status(int(code))

    s = serve(web.Application([(r"/code/([0-9]+)", Coded)]))
    with caplog.at_level(logging.INFO, logger="reactor.access"):
        for code in ("200", "404", "503"):
            await s.fetch("/code/" + code + "?q=1")
    records = [r for r in caplog.records if r.name == "reactor.access"]
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING, logging.ERROR]
    for record, code in zip(records, ("200", "404", "503"), strict=True):
        message = record.getMessage()
        assert message.startswith(f"{code} GET /code/{code}?q=1 (127.0.0.1) ")
        assert message.endswith("ms")
        float(message.rsplit(" ", 1)[1][:-2])  # the duration, in milliseconds


async def test_log_function_replaces_the_access_log(serve: Any) -> None:
    seen: list[tuple[int, str]] = []
    app = web.Application(
        [(r"/", Echo)], log_function=lambda h: seen.append((h.get_status(), h.request.path))
    )
    s = serve(app)
    await s.fetch("/")
    await s.fetch("/missing")
    assert seen == [(200, "/"), (404, "/missing")]


# -- settings ---------------------------------------------------------------------------


class RecordingStatic(web.StaticFileHandler):
    """Stands in for the static handler, to see what Application routes to it."""

    def initialize(self, path: str, default_filename: str | None = None, extra: str = "") -> None:
        self.root = path
        self.extra = extra

    def get(self, path: str, include_body: bool = True) -> None:
        self.write({"root": self.root, "path": path, "extra": self.extra})

    @classmethod
    def get_version(cls, settings: dict[str, Any], path: str) -> str | None:
        return "v1"

    resets = 0

    @classmethod
    def reset(cls) -> None:
        cls.resets += 1


async def test_static_path_routes(serve: Any, tmp_path: Any) -> None:
    class UsesStaticUrl(web.RequestHandler):
        def get(self) -> None:
            self.write(
                {
                    "url": self.static_url("app.css"),
                    "plain": self.static_url("app.css", include_version=False),
                    "host": self.static_url("app.css", include_host=True),
                }
            )

    app = web.Application(
        [(r"/urls", UsesStaticUrl)],
        static_path=str(tmp_path),
        static_url_prefix="/assets/",
        static_handler_class=RecordingStatic,
        static_handler_args={"extra": "args"},
        static_hash_cache=False,
    )
    s = serve(app)
    RecordingStatic.resets = 0
    for path, expected in (
        ("/assets/css/app.css", "css/app.css"),
        ("/favicon.ico", "favicon.ico"),
        ("/robots.txt", "robots.txt"),
    ):
        body = json.loads((await s.fetch(path)).body)
        assert body == {"root": str(tmp_path), "path": expected, "extra": "args"}
    urls = json.loads((await s.fetch("/urls")).body)
    assert urls == {
        "url": "/assets/app.css?v=v1",
        "plain": "/assets/app.css",
        "host": f"http://127.0.0.1:{s.port}/assets/app.css?v=v1",
    }
    assert RecordingStatic.resets == 4  # the hashes are forgotten before each request


async def test_static_url_without_static_path_says_which_setting(serve: Any) -> None:
    class UsesStaticUrl(web.RequestHandler):
        def get(self) -> None:
            self.write(self.static_url("x.css"))

    s = serve(web.Application([(r"/", UsesStaticUrl)]))
    with ExpectLog("reactor.application", r"Uncaught exception"):
        response = await s.fetch("/")
    assert response.code == 500


def test_debug_implies_its_settings(io_loop: IOLoop) -> None:
    with ExpectLog("reactor.general", r"autoreload", required=False):
        app = web.Application([], debug=True, autoreload=False)
    assert app.settings["compiled_template_cache"] is False
    assert app.settings["static_hash_cache"] is False
    assert app.settings["serve_traceback"] is True
    explicit = web.Application([], debug=True, autoreload=False, serve_traceback=False)
    assert explicit.settings["serve_traceback"] is False


class Big(web.RequestHandler):
    def get(self) -> None:
        kind = self.get_argument("kind", "text")
        if kind == "json":
            self.write({"data": "x" * 5000})
        elif kind == "image":
            self.set_header("Content-Type", "image/png")
            self.write(b"\x89PNG" + b"\0" * 5000)
        elif kind == "small":
            self.write("tiny")
        else:
            self.write("text " * 1000)


async def test_compress_response(serve: Any) -> None:
    s = serve(web.Application([(r"/", Big)], compress_response=True))
    response = await s.fetch("/", headers={"Accept-Encoding": "gzip"}, decompress_response=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert int(response.headers["Content-Length"]) == len(response.body) < 5000
    assert gzip.decompress(response.body) == b"text " * 1000
    as_json = await s.fetch("/?kind=json", headers={"Accept-Encoding": "gzip"})
    assert json.loads(as_json.body) == {"data": "x" * 5000}
    for kind in ("image", "small"):
        plain = await s.fetch(
            f"/?kind={kind}", headers={"Accept-Encoding": "gzip"}, decompress_response=False
        )
        assert "Content-Encoding" not in plain.headers, kind
        assert plain.headers["Vary"] == "Accept-Encoding"
    unasked = await s.fetch("/", decompress_response=False)
    assert "Content-Encoding" not in unasked.headers
    assert unasked.body == b"text " * 1000


class FlushedText(web.RequestHandler):
    async def get(self) -> None:
        for i in range(4):
            self.write(f"piece {i} " * 300)
            await self.flush()
        self.write("end")


async def test_compress_response_of_a_flushed_body(serve: Any) -> None:
    s = serve(web.Application([(r"/", FlushedText)], compress_response=True))
    expected = "".join(f"piece {i} " * 300 for i in range(4)).encode() + b"end"
    raw_response = await s.fetch(
        "/", headers={"Accept-Encoding": "gzip"}, decompress_response=False
    )
    assert raw_response.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in raw_response.headers
    assert gzip.decompress(raw_response.body) == expected
    assert (await s.fetch("/", headers={"Accept-Encoding": "gzip"})).body == expected


async def test_application_as_a_request_callback(io_loop: IOLoop) -> None:
    """``HTTPServer(app)`` with the app used as a plain callable (``app(request)``)."""
    app = web.Application([(r"/", Echo, {"label": "called"})])
    server = HTTPServer(lambda request: app(request))
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await fetch(client, f"http://127.0.0.1:{sock.getsockname()[1]}/")
        assert json.loads(response.body)["label"] == "called"
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


async def test_ui_methods_and_modules_from_a_module_dict_or_list(serve: Any) -> None:
    class Shout(web.UIModule):
        def render(self, word: str) -> str:
            return word.upper()

    def double(handler: web.RequestHandler, word: str) -> str:
        return word * 2

    class Uses(web.RequestHandler):
        def get_user_locale(self) -> Any:
            return FixedLocale()

        def get(self) -> None:
            self.write(self.ui["double"]("ab") + self.ui["modules"].Shout("cd"))

    as_module = types.ModuleType("ui_module_of_the_test")
    as_module.Shout = Shout  # type: ignore[attr-defined]
    as_module.helper = 3  # type: ignore[attr-defined]
    app = web.Application(
        [(r"/", Uses)],
        ui_methods=[{"double": double, "_private": double, "NotAMethod": double}],
        ui_modules=[as_module, {"not_a_module": 3}],
    )
    assert app.ui_modules["Shout"] is Shout and "helper" not in app.ui_modules
    assert "_private" not in app.ui_methods and "NotAMethod" not in app.ui_methods
    assert "not_a_module" not in app.ui_modules
    s = serve(app)
    assert (await s.fetch("/")).body == b"ababCD"


# -- render, with a loader of our own -------------------------------------------------


class CallableTemplate:
    """A template that is a function of the namespace."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def generate(self, **namespace: Any) -> bytes:
        return str(self.source(ObjectDict(namespace))).encode()


class DictTemplateLoader:
    """Stands in for reactor.template's Loader (another part of the web layer)."""

    def __init__(self, templates: dict[str, Any]) -> None:
        self.templates = templates
        self.resets = 0

    def load(self, name: str) -> CallableTemplate:
        return CallableTemplate(self.templates[name])

    def reset(self) -> None:
        self.resets += 1


class Page(web.RequestHandler):
    def get_user_locale(self) -> Any:
        return FixedLocale()

    def xsrf_form_html(self) -> str:
        return "<input xsrf>"

    def get_current_user(self) -> str:
        return "alice"

    def get(self) -> None:
        self.render("page.html", title="Hi")


class Scripted(web.UIModule):
    def render(self) -> str:
        return "<b>module</b>"

    def embedded_javascript(self) -> str:
        return "var a = 1;"

    def javascript_files(self) -> list[str]:
        return ["/js/a.js", "http://cdn.example/b.js", "/js/a.js"]

    def embedded_css(self) -> str:
        return "b { color: red }"

    def css_files(self) -> str:
        return "/css/a.css"

    def html_head(self) -> str:
        return "<meta head>"

    def html_body(self) -> str:
        return "<p body>"


class WithModule(Page):
    def get(self) -> None:
        self.render("module.html", module=self.ui["modules"].Scripted)


async def test_render_with_template_loader_setting(serve: Any) -> None:
    loader = DictTemplateLoader(
        {
            "page.html": lambda ns: (
                f"<title>{ns.title}</title>{ns.current_user} {ns.xsrf_form_html()} "
                f"{ns.reverse_url(ns.page)} {ns.request.path} {type(ns.handler).__name__} "
                f"{ns._(ns.word)}"
            ),
            "module.html": lambda ns: f"<html><head></head><body>{ns.module()}</body></html>",
        }
    )
    app = web.Application(
        [web.url(r"/page", Page, name="page"), (r"/module", WithModule)],
        template_loader=loader,
        ui_modules={"Scripted": Scripted},
    )

    class Names(Page):
        def get_template_namespace(self) -> dict[str, Any]:
            namespace = super().get_template_namespace()
            namespace.update(page="page", word="translated")
            return namespace

    app.wildcard_router.rules[0].target = Names  # a rule changed after it was added
    s = serve(app)
    response = await s.fetch("/page")
    assert response.body == b"<title>Hi</title>alice <input xsrf> /page /page Names translated"
    page = (await s.fetch("/module")).body
    head, body = page.split(b"</head>")
    assert b'<link href="/css/a.css" type="text/css" rel="stylesheet"/>' in head
    assert b"b { color: red }" in head and b"<meta head>" in head
    assert body.count(b'<script src="/js/a.js"') == 1
    assert b'<script src="http://cdn.example/b.js"' in body
    assert b"var a = 1;" in body and b"<p body>" in body
    assert body.index(b"<b>module</b>") < body.index(b"<script")
    assert loader.resets == 0


async def test_template_cache_is_reset_per_request_without_compiled_template_cache(
    serve: Any,
) -> None:
    loader = DictTemplateLoader({"page.html": lambda ns: ns.title})
    web.RequestHandler._template_loaders.clear()
    s = serve(
        web.Application([(r"/", Page)], template_loader=loader, compiled_template_cache=False)
    )
    try:
        await s.fetch("/")  # registers the loader
        await s.fetch("/")
        assert loader.resets >= 1
    finally:
        web.RequestHandler._template_loaders.clear()


# -- streaming bodies and closed connections ---------------------------------------


@web.stream_request_body
class Upload(web.RequestHandler):
    received: list[int]

    def prepare(self) -> None:
        self.received = []
        limit = self.get_query_argument("limit", None)
        if limit is not None:
            self.request.connection.set_max_body_size(int(limit))  # type: ignore[union-attr]

    async def data_received(self, chunk: bytes) -> None:
        self.received.append(len(chunk))
        await gen.moment  # back-pressure: the next piece waits for this

    def put(self) -> None:
        self.write({"bytes": sum(self.received), "body": len(self.request.body)})


async def test_stream_request_body(serve: Any) -> None:
    s = serve(web.Application([(r"/upload", Upload)]))
    body = b"x" * (1024 * 1024)
    response = await s.fetch("/upload", method="PUT", body=body)
    assert response.code == 200
    assert json.loads(response.body) == {"bytes": len(body), "body": 0}


async def test_stream_request_body_flood_is_cut_at_the_limit(serve: Any) -> None:
    """A client that sends more than the handler allows gets 413, and the
    handler never sees more than the limit."""
    s = serve(web.Application([(r"/upload", Upload)]))
    stream = await connect(s.port)
    await stream.write(
        b"PUT /upload?limit=65536 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n%s\r\n" % (32768, b"y" * 32768)
    reply = b""
    for _ in range(64):  # 2 MiB offered; the server stops reading long before
        try:
            await stream.write(piece)
        except Exception:
            break
        if stream.closed():
            break
    with ExpectLog("reactor.general", r"Refused a request", required=False):
        reply = await stream.read_until_close()
    assert reply.startswith(b"HTTP/1.1 413 ")


async def test_stream_request_body_declared_too_large_is_refused_before_the_body(
    serve: Any,
) -> None:
    s = serve(web.Application([(r"/upload", Upload)]))
    stream = await connect(s.port)
    with ExpectLog("reactor.general", r"Refused a request", required=False):
        await stream.write(
            b"PUT /upload?limit=10 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        )
        reply = await stream.read_until_close()
    assert reply.startswith(b"HTTP/1.1 413 ")


class LongPoll(web.RequestHandler):
    """Waits for a message that never comes; records what happens to it."""

    events: list[str] = []
    closed = Event()

    async def get(self) -> None:
        self.waiter: Future[None] = Future()
        LongPoll.events.append("waiting")
        await self.waiter
        LongPoll.events.append("woken")

    def on_connection_close(self) -> None:
        LongPoll.events.append("closed")
        self.waiter.set_result(None)
        LongPoll.closed.set()

    def on_finish(self) -> None:
        LongPoll.events.append("finished")


async def test_client_that_closes_mid_request_gets_on_connection_close(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    LongPoll.events = []
    LongPoll.closed = Event()
    s = serve(web.Application([(r"/poll", LongPoll)]))
    stream = await connect(s.port)
    await stream.write(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    while "waiting" not in LongPoll.events:
        await gen.moment
    with caplog.at_level(logging.WARNING):
        stream.close()
        await LongPoll.closed.wait()
        for _ in range(5):
            await gen.moment
    assert LongPoll.events[:2] == ["waiting", "closed"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@web.stream_request_body
class SlowUpload(web.RequestHandler):
    events: list[str] = []
    closed = Event()

    def data_received(self, chunk: bytes) -> None:
        if "data" not in SlowUpload.events:
            SlowUpload.events.append("data")

    def put(self) -> None:
        SlowUpload.events.append("put")

    def on_connection_close(self) -> None:
        super().on_connection_close()
        SlowUpload.events.append("closed")
        SlowUpload.closed.set()


async def test_client_that_closes_mid_body_stops_the_handler(serve: Any) -> None:
    SlowUpload.events = []
    SlowUpload.closed = Event()
    s = serve(web.Application([(r"/up", SlowUpload)]))
    stream = await connect(s.port)
    await stream.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"z" * 10)
    while "data" not in SlowUpload.events:
        await gen.moment
    stream.close()
    await SlowUpload.closed.wait()
    for _ in range(5):
        await gen.moment
    assert SlowUpload.events == ["data", "closed"]  # once, and put never runs


class Detaches(web.RequestHandler):
    async def get(self) -> None:
        stream = self.detach()
        await stream.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw")
        stream.close()


async def test_detach_hands_over_the_stream(serve: Any) -> None:
    s = serve(web.Application([(r"/", Detaches)]))
    stream = await connect(s.port)
    await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = await stream.read_until_close()
    assert reply == b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nraw"


# -- authenticated ---------------------------------------------------------------------


class Private(web.RequestHandler):
    def get_current_user(self) -> str | None:
        return self.get_query_argument("user", None)

    @web.authenticated
    def get(self) -> None:
        self.write("hello " + self.current_user)

    @web.authenticated
    def post(self) -> None:
        self.write("posted")


async def test_authenticated(serve: Any) -> None:
    s = serve(web.Application([(r"/private", Private)], login_url="/login"))
    anonymous = await s.fetch("/private?x=1")
    assert anonymous.code == 302
    assert anonymous.headers["Location"] == "/login?next=%2Fprivate%3Fx%3D1"
    assert (await s.fetch("/private?user=bob")).body == b"hello bob"
    with ExpectLog("reactor.access", r"403", required=False):
        refused = await s.fetch("/private", method="POST", body=b"")
    assert refused.code == 403


async def test_authenticated_with_an_absolute_login_url(serve: Any) -> None:
    s = serve(web.Application([(r"/private", Private)], login_url="https://login.example/in?a=b"))
    response = await s.fetch("/private")
    assert response.headers["Location"] == "https://login.example/in?a=b"
    s2 = serve(web.Application([(r"/private", Private)], login_url="https://login.example/in"))
    response = await s2.fetch("/private")
    assert response.headers["Location"] == (
        f"https://login.example/in?next=http%3A%2F%2F127.0.0.1%3A{s2.port}%2Fprivate"
    )


async def test_authenticated_without_login_url_is_a_500(serve: Any) -> None:
    s = serve(web.Application([(r"/private", Private)]))
    with ExpectLog("reactor.application", r"Uncaught exception"):
        response = await s.fetch("/private")
    assert response.code == 500


# -- the stock handlers -----------------------------------------------------------------


async def test_redirect_handler(serve: Any) -> None:
    app = web.Application(
        [
            (r"/old/(.*)", web.RedirectHandler, {"url": "/new/{0}"}),
            (r"/named/(?P<id>[0-9]+)", web.RedirectHandler, {"url": "/items/{id}"}),
            (r"/temp", web.RedirectHandler, {"url": "/elsewhere", "permanent": False}),
        ]
    )
    s = serve(app)
    response = await s.fetch("/old/a/b?x=1&y=2")
    assert response.code == 301
    assert response.headers["Location"] == "/new/a/b?x=1&y=2"
    assert (await s.fetch("/named/42")).headers["Location"] == "/items/42"
    temporary = await s.fetch("/temp")
    assert temporary.code == 302
    assert temporary.headers["Location"] == "/elsewhere"


async def test_redirect_handler_refuses_to_become_an_open_redirect(serve: Any) -> None:
    """CVE-2023-28370's class: ``/{0}`` filled with ``/evil.example`` would
    send the browser to ``//evil.example``, another host."""
    s = serve(web.Application([(r"/go/(.*)", web.RedirectHandler, {"url": "/{0}"})]))
    assert (await s.fetch("/go/page")).headers["Location"] == "/page"
    for path in ("/go//evil.example", "/go/%2Fevil.example", "/go/\\evil.example"):
        with ExpectLog("reactor.general", r"403 GET .*names another host"):
            response = await s.fetch(path)
        assert response.code == 403, path
        assert "Location" not in response.headers


async def test_error_handler(serve: Any) -> None:
    s = serve(web.Application([(r"/gone", web.ErrorHandler, {"status_code": 410})]))
    assert (await s.fetch("/gone")).code == 410
    # Not an XSRF failure, even with xsrf_cookies on.
    assert (await s.fetch("/gone", method="POST", body=b"")).code == 410


async def test_fallback_handler(serve: Any) -> None:
    def legacy(request: HTTPServerRequest) -> None:
        body = b"legacy saw " + request.path.encode()
        assert request.connection is not None
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        request.connection.finish()

    s = serve(web.Application([(r"/legacy/.*", web.FallbackHandler, {"fallback": legacy})]))
    assert (await s.fetch("/legacy/page")).body == b"legacy saw /legacy/page"


async def test_template_module_declares_resources_once(serve: Any) -> None:
    def part(ns: Any) -> str:
        ns.set_resources(embedded_css=".part{}", javascript_files="/js/part.js")
        return f"[part {ns.n}]"

    loader = DictTemplateLoader(
        {
            "part.html": part,
            "outer.html": lambda ns: (
                "<html><head></head><body>"
                + ns.modules.Template("part.html", n=1)
                + ns.modules.Template("part.html", n=2)
                + "</body></html>"
            ),
        }
    )

    class Outer(Page):
        def get(self) -> None:
            self.render("outer.html")

    s = serve(web.Application([(r"/", Outer)], template_loader=loader))
    page = (await s.fetch("/")).body
    assert b"[part 1][part 2]" in page
    assert page.count(b".part{}") == 1
    assert page.count(b'<script src="/js/part.js"') == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr_FR"),
        ("en;q=0.1, es-ES;q=0.9", "es_ES"),
        ("xx;q=bogus, es-ES;q=nan, es-ES;q=-1, fr-FR", "fr_FR"),
        ("", "en_US"),
    ],
)
async def test_browser_locale_from_accept_language(
    serve: Any, tmp_path: Any, header: str, expected: str
) -> None:
    locale = pytest.importorskip("reactor.locale")  # another part of the web layer
    (tmp_path / "fr_FR.csv").write_text('"Hello","Bonjour"\n')
    (tmp_path / "es_ES.csv").write_text('"Hello","Hola"\n')
    locale.load_translations(str(tmp_path))

    class Greets(web.RequestHandler):
        def get(self) -> None:
            self.write(self.locale.code)

    s = serve(web.Application([(r"/", Greets)]))
    headers = {"Accept-Language": header} if header else {}
    assert (await s.fetch("/", headers=headers)).body == expected.encode()


@web.stream_request_body
class RefusesUploads(web.RequestHandler):
    chunks = 0

    def prepare(self) -> None:
        raise web.HTTPError(403, "uploads are closed")

    def data_received(self, chunk: bytes) -> None:
        RefusesUploads.chunks += 1

    def put(self) -> None:
        raise AssertionError("put must not run")


async def test_streaming_handler_that_refuses_in_prepare_never_sees_the_body(serve: Any) -> None:
    RefusesUploads.chunks = 0
    s = serve(web.Application([(r"/", RefusesUploads)]))
    with ExpectLog("reactor.general", r"403 PUT / .*uploads are closed"):
        response = await s.fetch("/", method="PUT", body=b"x" * 200_000)
    assert response.code == 403
    assert RefusesUploads.chunks == 0
    assert (await s.fetch("/", method="PUT", body=b"again")).code == 403  # the server goes on


async def test_application_subclass_routing_hooks_are_used(serve: Any) -> None:
    """An Application that overrides find_handler / get_handler_delegate is
    asked for every request, plain-text routes included."""
    seen: list[str] = []

    class Counting(web.Application):
        def get_handler_delegate(self, request: HTTPServerRequest, *args: Any, **kw: Any) -> Any:
            seen.append("delegate " + request.path)
            return super().get_handler_delegate(request, *args, **kw)

    class Finding(web.Application):
        def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> Any:
            seen.append("find " + request.path)
            return super().find_handler(request, **kwargs)

    counting = serve(Counting([(r"/", Echo, {"label": "c"})]))
    finding = serve(Finding([(r"/", Echo, {"label": "f"})]))
    assert json.loads((await counting.fetch("/")).body)["label"] == "c"
    assert json.loads((await finding.fetch("/")).body)["label"] == "f"
    assert seen == ["delegate /", "find /"]
