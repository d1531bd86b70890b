"""reactor.routing on every backend: routers served by an HTTPServer and
fetched over real sockets; matchers and URL reversal checked directly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import web
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
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
from reactor.netutil import bind_sockets
from reactor.routing import (
    AnyMatches,
    HostMatches,
    PathMatches,
    ReversibleRuleRouter,
    Rule,
    RuleRouter,
    URLSpec,
    url,
)
from reactor.testing import ExpectLog


def answer(request: HTTPServerRequest, body: bytes) -> None:
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


def callback_target(request: HTTPServerRequest, **params: Any) -> None:
    answer(request, repr((request.path, request.body, params)).encode())


class Delegate(HTTPMessageDelegate):
    def __init__(self, connection: HTTPConnection) -> None:
        self.connection = connection
        self.body = b""

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> None:
        assert isinstance(start_line, RequestStartLine)
        self.path = start_line.path

    def data_received(self, chunk: bytes) -> None:
        self.body += chunk

    def finish(self) -> None:
        body = b"delegate: " + self.path.encode() + b" " + self.body
        self.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        self.connection.finish()


class ConnectionDelegate(HTTPServerConnectionDelegate):
    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        return Delegate(request_conn)


class Hello(web.RequestHandler):
    def initialize(self, who: str = "web") -> None:
        self.who = who

    def get(self, *args: str) -> None:
        self.write(f"hello {self.who} {list(args)}")


@pytest.fixture
def served(io_loop: IOLoop) -> Iterator[Any]:
    started: list[tuple[HTTPServer, AsyncHTTPClient]] = []

    def serve(router: Any) -> Any:
        server = HTTPServer(router)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        client = AsyncHTTPClient(force_instance=True)
        started.append((server, client))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"

        async def fetch(path: str, **kwargs: Any) -> HTTPResponse:
            kwargs.setdefault("raise_error", False)
            return await client.fetch(base + path, **kwargs)

        return fetch

    yield serve
    for server, client in started:
        client.close()
        server.stop()
        io_loop.run_sync(server.close_all_connections)


async def test_rule_router_routes_to_each_kind_of_target(served: Any) -> None:
    app = web.Application([(r"/app/(.*)", Hello, {"who": "app"})])
    router = RuleRouter(
        [
            Rule(PathMatches(r"/app/.*"), app),
            Rule(PathMatches(r"/delegate/.*"), ConnectionDelegate()),
            (r"/callback/(?P<name>[a-z]+)", callback_target),
            (re.compile(r"/compiled"), callback_target, {"extra": 1}),
        ]
    )
    fetch = served(router)
    assert (await fetch("/app/x")).body == b"hello app ['x']"
    response = await fetch("/delegate/y", method="POST", body=b"payload")
    assert response.body == b"delegate: /delegate/y payload"
    response = await fetch("/callback/abc", method="POST", body=b"b=1")
    assert (
        response.body
        == repr(
            ("/callback/abc", b"b=1", {"path_args": [], "path_kwargs": {"name": b"abc"}})
        ).encode()
    )
    response = await fetch("/compiled")
    assert response.body == repr(("/compiled", b"", {"target_kwargs": {"extra": 1}})).encode()


async def test_unrouted_request_is_a_404(served: Any) -> None:
    fetch = served(RuleRouter([(r"/only", callback_target)]))
    response = await fetch("/other")
    assert response.code == 404
    assert response.body == b""


async def test_host_matches(served: Any) -> None:
    router = RuleRouter(
        [
            Rule(HostMatches(r"a\.example"), RuleRouter([(r"/", callback_target, {"h": "a"})])),
            Rule(HostMatches(re.compile(r"b\.example$")), callback_target, {"h": "b"}),
            Rule(AnyMatches(), callback_target, {"h": "any"}),
        ]
    )
    fetch = served(router)
    a = await fetch("/", headers={"Host": "A.EXAMPLE:99"})
    assert b"'h': 'a'" in a.body
    # A nested router that has no rule for the path lets later rules try.
    a_other = await fetch("/x", headers={"Host": "a.example"})
    assert b"'h': 'any'" in a_other.body
    b = await fetch("/", headers={"Host": "b.example"})
    assert b"'h': 'b'" in b.body
    # Anchored: a host that only starts like a pattern does not match.
    ab = await fetch("/", headers={"Host": "a.example.evil"})
    assert b"'h': 'any'" in ab.body


async def test_application_inside_an_application(served: Any) -> None:
    inner = web.Application([(r"/inner/(.*)", Hello, {"who": "inner"})])
    outer = web.Application([(r"/outer", Hello, {"who": "outer"}), (r"/inner/.*", inner)])
    fetch = served(outer)
    assert (await fetch("/outer")).body == b"hello outer []"
    assert (await fetch("/inner/z")).body == b"hello inner ['z']"


async def test_nested_rule_lists_in_an_application(served: Any) -> None:
    app = web.Application(
        [
            Rule(PathMatches(r"/api/.*"), [(r"/api/v1/(.*)", Hello, {"who": "v1"})]),
            (r"/(.*)", Hello),
        ]
    )
    fetch = served(app)
    assert (await fetch("/api/v1/q")).body == b"hello v1 ['q']"
    assert (await fetch("/api/v2/q")).body == b"hello web ['api/v2/q']"


def test_path_matches_groups_must_not_be_mixed() -> None:
    with pytest.raises(ValueError, match="all named or all positional"):
        PathMatches(r"/(?P<a>x)/(y)")


@pytest.mark.parametrize(
    ("pattern", "args", "expected"),
    [
        (r"/plain", (), "/plain"),
        (r"^/anchored$", (), "/anchored"),
        (r"/item/([0-9]+)", (42,), "/item/42"),
        (r"/a/([^/]+)/b/([^/]+)", ("x y", "é"), "/a/x%20y/b/%C3%A9"),
        (r"/named/(?P<slug>[a-z-]+)", ("a&b=c",), "/named/a%26b%3Dc"),
        (r"/dot\.html", (), "/dot.html"),
        (r"/percent%/(.*)", ("x",), "/percent%/x"),
        (r"/bytes/(.*)", (b"r\xc3\xa9",), "/bytes/r%C3%A9"),
    ],
)
def test_reverse(pattern: str, args: tuple[Any, ...], expected: str) -> None:
    assert PathMatches(pattern).reverse(*args) == expected


def test_reverse_refuses_patterns_it_cannot_rebuild_and_wrong_arguments() -> None:
    with pytest.raises(ValueError, match="Cannot reverse"):
        PathMatches(r"/a/(b(c))").reverse("x")
    with pytest.raises(ValueError, match="Cannot reverse"):
        PathMatches(r"/a\d/(x)").reverse("x")
    with pytest.raises(ValueError, match="takes 1 arguments, got 2"):
        PathMatches(r"/a/(x)").reverse("1", "2")


def test_named_rules_reverse_through_nested_routers() -> None:
    inner = ReversibleRuleRouter([url(r"/in/([0-9]+)", Hello, name="inner")])
    outer = ReversibleRuleRouter([Rule(PathMatches(r"/in/.*"), inner), url(r"/o", Hello, name="o")])
    assert outer.reverse_url("o") == "/o"
    assert outer.reverse_url("inner", 5) == "/in/5"
    assert outer.reverse_url("nothing") is None
    app = web.Application([url(r"/x/(.*)", Hello, name="x")])
    assert app.reverse_url("x", "a b") == "/x/a%20b"
    with pytest.raises(KeyError, match="nothing not found in named urls"):
        app.reverse_url("nothing")


def test_a_repeated_name_replaces_the_first_with_a_warning() -> None:
    with ExpectLog("reactor.application", r"Multiple handlers named dup"):
        router = ReversibleRuleRouter(
            [url(r"/1", Hello, name="dup"), url(r"/2", Hello, name="dup")]
        )
    assert router.reverse_url("dup") == "/2"


def test_rule_target_by_dotted_name_and_urlspec_attributes() -> None:
    rule = Rule(AnyMatches(), "reactor.web.ErrorHandler", {"status_code": 404})
    assert rule.target is web.ErrorHandler
    spec = URLSpec(r"/u/([0-9]+)", Hello, {"who": "u"}, name="u")
    assert spec.regex.pattern == r"/u/([0-9]+)$"
    assert spec.handler_class is Hello
    assert spec.kwargs == {"who": "u"}
    assert spec.reverse(3) == "/u/3"
    assert "URLSpec('/u/([0-9]+)$'" in repr(spec)
    assert web.url is URLSpec


def test_rule_tuples_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="a rule tuple is"):
        RuleRouter([(r"/a",)])
