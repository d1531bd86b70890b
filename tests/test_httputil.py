"""reactor.httputil: headers, start lines, the request object, body and cookie parsing.

Sans-IO: everything here is fed strings and bytes, with no event loop, so
these tests run once, not once per backend.
"""

from __future__ import annotations

import copy
import datetime
import http.cookies
import logging
import time
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor import httputil
from reactor.httputil import (
    DEFAULT_MAX_PART_HEADER_SIZE,
    DEFAULT_MAX_PARTS,
    HTTP_WHITESPACE,
    HTTPConnection,
    HTTPFile,
    HTTPHeaders,
    HTTPInputError,
    HTTPOutputError,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    _encode_header,
    _is_valid_host,
    _parse_header,
    _request_host_error,
    _split_absolute_form,
    encode_username_password,
    format_timestamp,
    parse_body_arguments,
    parse_cookie,
    parse_multipart_form_data,
    parse_request_start_line,
    parse_response_start_line,
    qs_to_qsl,
    split_host_and_port,
    url_concat,
)

# -- HTTPHeaders ---------------------------------------------------------------------


def test_headers_are_case_insensitive() -> None:
    headers = HTTPHeaders()
    headers["content-TYPE"] = "text/html"
    assert headers["Content-Type"] == "text/html"
    assert headers["CONTENT-TYPE"] == "text/html"
    assert "content-type" in headers
    assert headers.get("CoNtEnT-tYpE") == "text/html"
    assert list(headers) == ["Content-Type"]
    del headers["CONTENT-type"]
    assert "Content-Type" not in headers
    assert len(headers) == 0
    assert headers.get("Content-Type", "default") == "default"
    assert 5 not in headers  # type: ignore[comparison-overlap]


def test_headers_multiple_values_keep_order() -> None:
    headers = HTTPHeaders()
    headers.add("Set-Cookie", "a=1")
    headers.add("X-Other", "x")
    headers.add("set-cookie", "b=2")
    headers.add("SET-COOKIE", "c=3")
    assert headers["Set-Cookie"] == "a=1,b=2,c=3"
    assert headers.get_list("set-cookie") == ["a=1", "b=2", "c=3"]
    assert headers.get_list("Missing") == []
    assert list(headers.get_all()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Set-Cookie", "c=3"),
        ("X-Other", "x"),
    ]
    # Setting replaces every value; get_list returns a copy.
    headers.get_list("Set-Cookie").append("not stored")
    headers["Set-Cookie"] = "only"
    assert headers.get_list("Set-Cookie") == ["only"]
    # str() is Tornado's: one line per value, ended by "\n"; parse() reads it back.
    assert str(headers) == "Set-Cookie: only\nX-Other: x\n"
    assert HTTPHeaders.parse(str(headers)) == headers


def test_headers_constructors() -> None:
    assert HTTPHeaders({"content-length": "3"})["Content-Length"] == "3"
    assert HTTPHeaders(Host="example.com")["host"] == "example.com"
    assert HTTPHeaders([("A", "1"), ("b", "2")]) == {"A": "1", "B": "2"}


def test_headers_parse() -> None:
    headers = HTTPHeaders.parse(
        "Content-Type: text/plain\r\nX-Multi:  a \r\nx-multi:\tb\tc\t\r\nEmpty:\r\n\r\n"
    )
    assert headers["Content-Type"] == "text/plain"
    assert headers.get_list("X-Multi") == ["a", "b\tc"]  # outer whitespace stripped
    assert headers["Empty"] == ""
    # Bare LF line endings are accepted; bytes are read as latin-1.
    headers = HTTPHeaders.parse(b"A: caf\xe9\nB: 2\n")
    assert headers["A"] == "caf\u00e9"
    assert headers["B"] == "2"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("A: b\r\n c\r\n", "obs-fold"),
        ("A: b\r\n\tc\r\n", "obs-fold"),
        ("A: b\rc\r\n", "bare CR"),
        ("A : b\r\n", "invalid header name"),
        ("A\t: b\r\n", "invalid header name"),
        (": b\r\n", "invalid header name"),
        ("A(b): c\r\n", "invalid header name"),
        ("N\u00e4me: c\r\n", "invalid header name"),
        ("No colon here\r\n", "without a colon"),
        ("A: b\x00c\r\n", "invalid character"),
        ("A: b\x7fc\r\n", "invalid character"),
        ("A: b\x1bc\r\n", "invalid character"),
    ],
)
def test_headers_parse_is_strict(block: str, message: str) -> None:
    with pytest.raises(HTTPInputError, match=message):
        HTTPHeaders.parse(block)


def test_headers_encode() -> None:
    headers = HTTPHeaders()
    headers.add("Content-Length", 12)  # type: ignore[arg-type]  # an int is written as str
    headers.add("X-A", "caf\u00e9")
    headers.add("x-a", "2")
    assert headers._encode() == b"Content-Length: 12\r\nX-A: caf\xe9\r\nX-A: 2\r\n"


_BAD_NAMES = [
    "a\nb",
    "a\r\nb",
    "a b",
    "",
    "a:b",
    "X-Evil\r\nSet-Cookie",
    "N\u00e4me",
    "\u017fet-cookie",
]
_BAD_VALUES = ["a\r\nSet-Cookie: injected=1", "a\nb", "a\rb", "a\x00b", "a\x7fb", "a\x1bb"]


def _set_by_item(name: str, value: str) -> HTTPHeaders:
    headers = HTTPHeaders()
    headers[name] = value
    return headers


def _set_by_add(name: str, value: str) -> HTTPHeaders:
    headers = HTTPHeaders()
    headers.add(name, value)
    return headers


def _set_by_add_again(name: str, value: str) -> HTTPHeaders:
    headers = HTTPHeaders({name: "first"} if _is_token(name) else {})
    headers.add(name, value)
    return headers


def _is_token(name: str) -> bool:
    return bool(name) and all(c in "!#$%&'*+-.^_`|~" or (c.isascii() and c.isalnum()) for c in name)


_SETTERS = {
    "setitem": _set_by_item,
    "add": _set_by_add,
    "add-again": _set_by_add_again,
    "dict": lambda name, value: HTTPHeaders({name: value}),
    "pairs": lambda name, value: HTTPHeaders([(name, value)]),
    "update": lambda name, value: _set_by_item("Other", "x").update({name: value}),  # type: ignore[func-returns-value]
    "setdefault": lambda name, value: HTTPHeaders().setdefault(name, value),
}


@pytest.mark.parametrize("how", sorted(_SETTERS))
@pytest.mark.parametrize("name", _BAD_NAMES)
def test_headers_refuse_an_invalid_name_when_set(how: str, name: str) -> None:
    # RFC 9110 section 5.1: a field name is a token. A name with CR, LF,
    # a space or a colon would end the line or the name early once sent.
    with pytest.raises(ValueError, match="invalid header name"):
        _SETTERS[how](name, "v")


@pytest.mark.parametrize("how", sorted(_SETTERS))
@pytest.mark.parametrize("value", _BAD_VALUES)
def test_headers_refuse_a_control_character_in_a_value_when_set(how: str, value: str) -> None:
    with pytest.raises(ValueError, match="invalid header value"):
        _SETTERS[how]("X-Evil", value)


def test_headers_refusals_leave_the_headers_unchanged() -> None:
    headers = HTTPHeaders({"A": "1"})
    with pytest.raises(ValueError):
        headers.add("A", "2\r\nB: 3")
    with pytest.raises(ValueError):
        headers["A"] = "\n"
    with pytest.raises(ValueError):
        headers["a b"] = "1"
    assert list(headers.get_all()) == [("A", "1")]
    assert headers["A"] == "1"


def test_headers_refusal_is_also_an_output_error() -> None:
    # Code written against reactor's earlier check (at send time) catches
    # HTTPOutputError; code written for Tornado catches ValueError.
    with pytest.raises(HTTPOutputError):
        HTTPHeaders({"X-Evil": "a\r\nInjected: 1"})


@pytest.mark.parametrize("name", ["X-Foo", "!#$%&'*+-.^_`|~", "a", "0-9"])
def test_headers_accept_every_token_name(name: str) -> None:
    headers = HTTPHeaders({name: "1"})
    headers.add(name, "2")
    headers[name + "x"] = "3"
    assert headers.get_list(name) == ["1", "2"]
    assert headers[name + "x"] == "3"
    assert HTTPHeaders.parse(headers._encode()) == headers


def test_headers_accept_visible_values() -> None:
    headers = HTTPHeaders({"A": "caf\u00e9\tb", "B": "", "C": " x "})
    headers.add("D", 12)  # type: ignore[arg-type]  # an int is written as str
    assert headers._encode() == b"A: caf\xe9\tb\r\nB: \r\nC:  x \r\nD: 12\r\n"


def test_headers_add_keeps_values_apart_until_read() -> None:
    """Linearity, structurally: ``add`` appends to a list and never builds
    the joined string (re-joining on each add is what made n adds cost
    n**2); the joined value is made once, on first read, and kept."""
    headers = HTTPHeaders()
    for i in range(1000):
        headers.add("X-Repeat", str(i))
        assert "X-Repeat" not in headers._combined or i == 0
    assert headers.get_list("X-Repeat") == [str(i) for i in range(1000)]
    assert "X-Repeat" not in headers._combined  # get_list joins nothing either
    joined = headers["X-Repeat"]
    assert joined == ",".join(str(i) for i in range(1000))
    assert headers["x-repeat"] is joined  # kept: the second read joins nothing
    assert headers.get("X-REPEAT") is joined
    headers.add("X-Repeat", "more")
    assert headers["X-Repeat"] == joined + ",more"  # an add forgets the joined value


def test_headers_get_list_is_a_copy_made_in_one_step() -> None:
    headers = HTTPHeaders()
    for i in range(3):
        headers.add("A", str(i))
    first = headers.get_list("A")
    first.append("not stored")
    assert headers.get_list("A") == ["0", "1", "2"]
    assert headers.get_list("A") is not headers.get_list("A")


def test_headers_mapping_sees_every_name_whatever_its_value_count() -> None:
    headers = HTTPHeaders()
    headers.add("A", "1")
    headers.add("B", "1")
    headers.add("B", "2")
    assert "B" in headers and "b" in headers
    assert len(headers) == 2
    assert list(headers) == ["A", "B"]
    assert dict(headers) == {"A": "1", "B": "1,2"}
    assert headers.get("B") == "1,2"
    assert headers.get("C", "none") == "none"
    del headers["b"]
    assert "B" not in headers and headers.get("B") is None
    with pytest.raises(KeyError):
        headers["B"]
    with pytest.raises(KeyError):
        del headers["B"]
    assert headers.pop("A") == "1"
    assert len(headers) == 0


def test_headers_copies_are_independent() -> None:
    original = HTTPHeaders()
    original.add("A", "1")
    for duplicate in (original.copy(), copy.copy(original), HTTPHeaders(original)):
        assert duplicate == original
        duplicate.add("A", "2")
        duplicate["B"] = "3"
        assert original.get_list("A") == ["1"]
        assert "B" not in original
        assert duplicate.get_list("A") == ["1", "2"]


def test_headers_equality() -> None:
    one = HTTPHeaders()
    one.add("A", "1")
    one.add("A", "2")
    same = HTTPHeaders()
    same.add("a", "1")
    same.add("a", "2")
    reversed_values = HTTPHeaders()
    reversed_values.add("A", "2")
    reversed_values.add("A", "1")
    assert one == same
    assert one != reversed_values  # the order of a name's values matters
    assert one == {"a": "1,2"}  # a plain mapping compares with the joined values
    assert one != {"A": "1"}
    assert one != 5
    assert "HTTPHeaders" in repr(one)


_token = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCXYZ", min_size=1)
_visible_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t")
)


@given(st.lists(st.tuples(_token, _visible_value)))
def test_headers_encode_parse_round_trip(pairs: list[tuple[str, str]]) -> None:
    headers = HTTPHeaders()
    for name, value in pairs:
        headers.add(name, value)
    parsed = HTTPHeaders.parse(headers._encode())
    expected = [(name, value.strip(" \t")) for name, value in headers.get_all()]
    assert list(parsed.get_all()) == expected


# -- start lines ---------------------------------------------------------------------


def test_parse_request_start_line() -> None:
    line = parse_request_start_line("GET /foo?a=b HTTP/1.1")
    assert line == RequestStartLine("GET", "/foo?a=b", "HTTP/1.1")
    assert line.method == "GET" and line.path == "/foo?a=b" and line.version == "HTTP/1.1"
    assert parse_request_start_line("OPTIONS * HTTP/1.0").path == "*"
    assert parse_request_start_line("M-SEARCH http://h/x HTTP/1.1").method == "M-SEARCH"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "malformed request line"),
        ("GET /foo", "malformed request line"),
        ("GET  /foo HTTP/1.1", "malformed request line"),
        ("GET /foo HTTP/1.1 ", "malformed request line"),
        ("GET /a b HTTP/1.1", "malformed request line"),
        ("GET\t/foo HTTP/1.1", "malformed request line"),
        ("G(T /foo HTTP/1.1", "invalid method"),
        ("GET /foo HTTP/2.0", "unsupported HTTP version"),
        ("GET /foo http/1.1", "unsupported HTTP version"),
        ("GET /foo HTTP/1.10", "unsupported HTTP version"),
        ("GET /f\x00o HTTP/1.1", "invalid request target"),
        ("GET /f\x7fo HTTP/1.1", "invalid request target"),
    ],
)
def test_parse_request_start_line_malformed(line: str, message: str) -> None:
    with pytest.raises(HTTPInputError, match=message):
        parse_request_start_line(line)


def test_parse_response_start_line() -> None:
    assert parse_response_start_line("HTTP/1.1 200 OK") == ResponseStartLine("HTTP/1.1", 200, "OK")
    assert parse_response_start_line("HTTP/1.0 404 Not Found").reason == "Not Found"
    assert parse_response_start_line("HTTP/1.1 204").reason == ""
    assert parse_response_start_line("HTTP/1.1 599 ").reason == ""


@pytest.mark.parametrize(
    "line",
    [
        "",
        "HTTP/1.1",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 2000 OK",
        "HTTP/1.1 abc OK",
        "HTTP/2 200 OK",
        "HTTP/1.1  200 OK",
        "HTTP/1.1 200 OK\r",
        "ICY 200 OK",
    ],
)
def test_parse_response_start_line_malformed(line: str) -> None:
    with pytest.raises(HTTPInputError, match="malformed response line"):
        parse_response_start_line(line)


# -- HTTPServerRequest ----------------------------------------------------------------


class _Context:
    remote_ip = "203.0.113.7"
    protocol = "https"


class _Connection(HTTPConnection):
    """Only what the request reads from a connection: its ``context``."""

    context = _Context()


def _request(uri: str = "/", **headers: str) -> HTTPServerRequest:
    return HTTPServerRequest(method="GET", uri=uri, headers=HTTPHeaders(headers))


def test_request_path_and_query() -> None:
    request = _request("/a/b%20c?x=1&y=&x=2&z")
    assert request.path == "/a/b%20c"
    assert request.query == "x=1&y=&x=2&z"
    assert request.query_arguments == {"x": [b"1", b"2"], "y": [b""], "z": [b""]}
    assert request.arguments == request.query_arguments
    assert request.body_arguments == {}
    assert request.files == {}

    bare = _request("/only")
    assert (bare.path, bare.query, bare.query_arguments) == ("/only", "", {})


def test_request_from_start_line() -> None:
    request = HTTPServerRequest(start_line=RequestStartLine("POST", "/p?q=1", "HTTP/1.1"))
    assert (request.method, request.uri, request.version) == ("POST", "/p?q=1", "HTTP/1.1")
    assert (request.path, request.query) == ("/p", "q=1")
    assert request.body == b""
    assert isinstance(request.headers, HTTPHeaders)


def test_request_arguments_merge_after_parse_body() -> None:
    request = HTTPServerRequest(
        method="POST",
        uri="/form?a=query&b=q",
        headers=HTTPHeaders({"Content-Type": "application/x-www-form-urlencoded"}),
        body=b"a=body&c=%C3%A4",
    )
    assert request.arguments == {"a": [b"query"], "b": [b"q"]}  # before the body is parsed
    request._parse_body()
    assert request.body_arguments == {"a": [b"body"], "c": [b"\xc3\xa4"]}
    assert request.query_arguments == {"a": [b"query"], "b": [b"q"]}
    assert request.arguments == {"a": [b"query", b"body"], "b": [b"q"], "c": [b"\xc3\xa4"]}
    # The merged dict is a copy: changing it leaves the sources alone.
    request.arguments["a"].append(b"x")
    assert request.query_arguments["a"] == [b"query"]


def test_request_parse_body_multipart() -> None:
    boundary = b"1234abcd"
    body = _encode_multipart([("field", b"value")], boundary, files=[("up", "a.txt", b"data")])
    request = HTTPServerRequest(
        method="POST",
        uri="/upload",
        headers=HTTPHeaders({"Content-Type": "multipart/form-data; boundary=1234abcd"}),
        body=body,
    )
    request._parse_body()
    assert request.arguments == {"field": [b"value"]}
    assert request.files == {
        "up": [HTTPFile(filename="a.txt", body=b"data", content_type="text/plain")]
    }


def test_request_parse_body_malformed_raises() -> None:
    request = HTTPServerRequest(
        method="POST",
        uri="/upload",
        headers=HTTPHeaders({"Content-Type": "multipart/form-data; boundary=xyz"}),
        body=b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\ntruncated",
    )
    with pytest.raises(HTTPInputError, match="final boundary"):
        request._parse_body()
    assert request.body_arguments == {}


def test_request_cookies() -> None:
    request = HTTPServerRequest(uri="/", headers=HTTPHeaders())
    request.headers.add("Cookie", 'session=abc; quoted="a\\"b"; expires=reserved')
    request.headers.add("Cookie", "second=2")
    cookies = request.cookies
    assert set(cookies) == {"session", "quoted", "second"}  # "expires" is reserved: skipped
    assert cookies["session"].value == "abc"
    assert cookies["quoted"].value == 'a"b'
    assert cookies["second"].value == "2"
    assert isinstance(cookies["session"], http.cookies.Morsel)
    assert _request().cookies == {}


@pytest.mark.parametrize(
    ("host", "host_name"),
    [
        ("example.com", "example.com"),
        ("Example.COM:8080", "example.com"),
        ("[::1]:8888", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("127.0.0.1:80", "127.0.0.1"),
    ],
)
def test_request_host_name(host: str, host_name: str) -> None:
    request = _request(Host=host)
    assert request.host == host
    assert request.host_name == host_name


def test_request_host_defaults() -> None:
    assert _request().host == "127.0.0.1"
    explicit = HTTPServerRequest(uri="/", host="given:1", headers=HTTPHeaders(Host="header"))
    assert explicit.host == "given:1"
    assert explicit.host_name == "given"


@pytest.mark.parametrize(
    "host",
    [
        "a.example",
        "a.example:8080",
        "127.0.0.1:80",
        "[::1]:8080",
        "[::1]",
        "[2001:db8::ffff:1.2.3.4]",
        "xn--bcher-kva.example",
        "A-b_c~d.",
        "a:0",
        "a:65535",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert _is_valid_host(host)
    assert _request_host_error(b"/", [host], "HTTP/1.1") is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "a b",
        "a.example,b.example",
        "evil.example/x@good",
        "<script>x</script>",
        "user@a",
        "a:99999",
        "a:x",
        "a:",
        "a:123456",
        ":80",
        "::1",
        "[::g]",
        "[fe80::1%25eth0]",
        "[::1",
        "[v1.fe]",
        "a%2Fb",
        "a;b",
        "caf\u00e9",
    ],
)
def test_invalid_hosts(host: str) -> None:
    assert not _is_valid_host(host)
    assert _request_host_error(b"/", [host], "HTTP/1.0") == f"invalid Host header: {host!r}"


def test_request_host_error_counts_host_fields() -> None:
    assert _request_host_error(b"/", None, "HTTP/1.1") == "an HTTP/1.1 request needs a Host header"
    assert _request_host_error(b"/", None, "HTTP/1.0") is None
    for version in ("HTTP/1.0", "HTTP/1.1"):
        error = _request_host_error(b"/", ["a", "a"], version)
        assert error == "a request may have only one Host header"


def test_request_host_error_checks_an_absolute_form_target() -> None:
    assert _request_host_error(b"http://a.example/x", ["b"], "HTTP/1.1") is None
    assert _request_host_error(b"HTTPS://a.example", None, "HTTP/1.0") is None
    assert "scheme" in str(_request_host_error(b"ftp://a.example/x", ["a"], "HTTP/1.1"))
    for target in (b"http://u@a.example/", b"http:///x", b"http://a:99999/"):
        assert "invalid host in the request target" in str(
            _request_host_error(target, ["a"], "HTTP/1.1")
        )
    assert _request_host_error(b"*", ["a"], "HTTP/1.1") is None  # OPTIONS *


def test_split_absolute_form() -> None:
    assert _split_absolute_form("/x") is None
    assert _split_absolute_form("*") is None
    assert _split_absolute_form("a.example:443") is None  # authority-form (CONNECT)
    assert _split_absolute_form("http://a.example/x?q") == ("http", "a.example", "/x?q")
    assert _split_absolute_form("HTTP://A:1") == ("http", "A:1", "/")
    assert _split_absolute_form("http://a?q=/") == ("http", "a", "/?q=/")


def test_request_with_an_absolute_form_target() -> None:
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "http://A.example:81/p?q=1", "HTTP/1.1"),
        headers=HTTPHeaders(Host="other.example"),
    )
    assert (request.host, request.host_name) == ("A.example:81", "a.example")
    assert (request.uri, request.path, request.query) == ("/p?q=1", "/p", "q=1")
    assert request.full_url() == "http://A.example:81/p?q=1"
    assert request.headers["Host"] == "other.example"  # as sent


def test_split_host_and_port() -> None:
    assert split_host_and_port("example.com:80") == ("example.com", 80)
    assert split_host_and_port("example.com") == ("example.com", None)
    # As in Tornado, an IPv6 literal keeps its brackets.
    assert split_host_and_port("[::1]:443") == ("[::1]", 443)
    assert split_host_and_port("[::1]") == ("[::1]", None)


def test_request_full_url_and_connection_context() -> None:
    request = HTTPServerRequest(
        method="GET",
        uri="/p?q=1",
        headers=HTTPHeaders(Host="[::1]:8443"),
        connection=_Connection(),
    )
    assert request.remote_ip == "203.0.113.7"
    assert request.protocol == "https"
    assert request.full_url() == "https://[::1]:8443/p?q=1"
    assert _request("/x", Host="h").full_url() == "http://h/x"
    assert _request().remote_ip is None
    assert "method='GET'" in repr(request)


def test_request_time() -> None:
    request = _request()
    assert 0 <= request.request_time() < 60
    request._start_time = 1000.0
    request._finish_time = 1001.5
    assert request.request_time() == 1.5


# -- url_concat and qs_to_qsl ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "args", "expected"),
    [
        ("http://example.com/foo", {"c": "d"}, "http://example.com/foo?c=d"),
        ("http://example.com/foo?a=b", {"c": "d"}, "http://example.com/foo?a=b&c=d"),
        ("http://example.com/foo?a=b&", {"c": "d"}, "http://example.com/foo?a=b&c=d"),
        (
            "http://example.com/foo?a=b",
            [("c", "d"), ("c", "d2")],
            "http://example.com/foo?a=b&c=d&c=d2",
        ),
        ("http://example.com/foo?a=b", (("c", "d"),), "http://example.com/foo?a=b&c=d"),
        ("http://example.com/foo?a=b#frag", {"c": "d"}, "http://example.com/foo?a=b&c=d#frag"),
        ("http://example.com/foo?empty=", {"c": ""}, "http://example.com/foo?empty=&c="),
        ("/relative", {"sp ace": "a&b"}, "/relative?sp+ace=a%26b"),
        ("http://example.com/foo?a=b", [], "http://example.com/foo?a=b"),
        ("http://example.com/foo?a=b", None, "http://example.com/foo?a=b"),
        ("http://example.com/foo?a=b", {"n": 1}, "http://example.com/foo?a=b&n=1"),
    ],
)
def test_url_concat(url: str, args: object, expected: str) -> None:
    assert url_concat(url, args) == expected  # type: ignore[arg-type]


def test_url_concat_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="dict, a list or tuple"):
        url_concat("http://example.com/", "c=d")  # type: ignore[arg-type]


def test_qs_to_qsl() -> None:
    qs = {"a": [b"1", b"2"], "b": [], "c": [b""]}
    assert list(qs_to_qsl(qs)) == [("a", b"1"), ("a", b"2"), ("c", b"")]
    assert list(qs_to_qsl({})) == []


# -- format_timestamp -----------------------------------------------------------------

_EXPECTED_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
_POSIX = 784111777


@pytest.mark.parametrize(
    "ts",
    [
        _POSIX,
        float(_POSIX),
        _POSIX + 0.25,  # fractions of a second are dropped
        time.gmtime(_POSIX),
        tuple(time.gmtime(_POSIX)),
        tuple(time.gmtime(_POSIX))[:6],
        datetime.datetime(1994, 11, 6, 8, 49, 37),  # naive means UTC
        datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.timezone.utc),
        datetime.datetime(
            1994, 11, 6, 10, 49, 37, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
    ],
    ids=lambda ts: type(ts).__name__,
)
def test_format_timestamp(ts: object) -> None:
    assert format_timestamp(ts) == _EXPECTED_DATE  # type: ignore[arg-type]


def test_format_timestamp_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="unknown timestamp type"):
        format_timestamp("1994-11-06")  # type: ignore[arg-type]


# -- body arguments: urlencoded -------------------------------------------------------


def test_parse_urlencoded() -> None:
    arguments: dict[str, list[bytes]] = {"a": [b"existing"]}
    files: dict[str, list[HTTPFile]] = {}
    parse_body_arguments(
        "application/x-www-form-urlencoded; charset=UTF-8",
        b"a=1&b=&a=2&c=%C3%A4+x",
        arguments,
        files,
    )
    assert arguments == {"a": [b"existing", b"1", b"2"], "b": [b""], "c": [b"\xc3\xa4 x"]}
    assert files == {}


def test_parse_urlencoded_media_type_is_case_insensitive() -> None:
    arguments: dict[str, list[bytes]] = {}
    parse_body_arguments("Application/X-WWW-Form-URLEncoded", b"a=1", arguments, {})
    assert arguments == {"a": [b"1"]}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "", "multipart/mixed"])
def test_parse_body_ignores_other_types(content_type: str) -> None:
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    parse_body_arguments(content_type, b"a=1", arguments, files)
    assert arguments == {} and files == {}


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]
)
def test_parse_body_skips_content_encoding(
    content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    arguments: dict[str, list[bytes]] = {}
    headers = HTTPHeaders({"Content-Encoding": "gzip"})
    with caplog.at_level(logging.WARNING, logger="reactor.general"):
        parse_body_arguments(content_type, b"\x1f\x8b compressed", arguments, {}, headers)
    assert arguments == {}
    assert "Unsupported Content-Encoding 'gzip'" in caplog.text


def test_parse_body_identity_encoding_is_parsed(caplog: pytest.LogCaptureFixture) -> None:
    arguments: dict[str, list[bytes]] = {}
    headers = HTTPHeaders({"Content-Encoding": "Identity"})
    parse_body_arguments("application/x-www-form-urlencoded", b"a=1", arguments, {}, headers)
    assert arguments == {"a": [b"1"]}
    assert caplog.text == ""


def test_parse_urlencoded_too_many_fields() -> None:
    arguments: dict[str, list[bytes]] = {}
    body = b"&".join(b"f%d=x" % i for i in range(11))
    with pytest.raises(HTTPInputError, match="max_arguments=10"):
        parse_body_arguments(
            "application/x-www-form-urlencoded", body, arguments, {}, max_arguments=10
        )
    assert arguments == {}
    parse_body_arguments("application/x-www-form-urlencoded", body, arguments, {}, max_arguments=11)
    assert len(arguments) == 11


# -- body arguments: multipart --------------------------------------------------------


def _encode_multipart(
    fields: list[tuple[str, bytes]],
    boundary: bytes,
    files: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """A multipart/form-data body as a browser sends it: fields, then files."""
    out = []
    for name, value in fields:
        out.append(b"--" + boundary + b"\r\n")
        out.append(b'Content-Disposition: form-data; name="%s"\r\n\r\n' % name.encode())
        out.append(value + b"\r\n")
    for name, filename, content in files:
        out.append(b"--" + boundary + b"\r\n")
        out.append(
            b'Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
            % (name.encode(), filename.encode())
        )
        out.append(b"Content-Type: text/plain\r\n\r\n")
        out.append(content + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def _parse(
    body: bytes,
    content_type: str = "multipart/form-data; boundary=1234",
    *,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_part_header_size: int = DEFAULT_MAX_PART_HEADER_SIZE,
) -> tuple[dict[str, list[bytes]], dict[str, list[HTTPFile]]]:
    arguments: dict[str, list[bytes]] = {}
    files: dict[str, list[HTTPFile]] = {}
    parse_body_arguments(
        content_type,
        body,
        arguments,
        files,
        max_parts=max_parts,
        max_part_header_size=max_part_header_size,
    )
    return arguments, files


def test_multipart_fields_and_files() -> None:
    body = (
        b"--1234\r\n"
        b'Content-Disposition: form-data; name="title"\r\n'
        b"\r\n"
        b"Hello\r\n"
        b"--1234\r\n"
        b'Content-Disposition: form-data; name="upload"; filename="a b.txt"\r\n'
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"line 1\r\nline 2 --1234 (no CRLF before: content)\r\n\r\n"
        b"--1234\r\n"
        b"content-disposition: FORM-DATA; name=upload; filename=raw.bin\r\n"
        b"\r\n"
        b"\x00\xff\r\n"
        b"--1234\r\n"
        b'Content-Disposition: form-data; name="title"\r\n'
        b"\r\n"
        b"\r\n"
        b"--1234--\r\n"
    )
    arguments, files = _parse(body)
    assert arguments == {"title": [b"Hello", b""]}
    first, second = files["upload"]
    assert first.filename == first["filename"] == "a b.txt"
    assert first.content_type == "text/plain"
    assert first.body == b"line 1\r\nline 2 --1234 (no CRLF before: content)\r\n"
    assert second == {
        "filename": "raw.bin",
        "body": b"\x00\xff",
        "content_type": "application/unknown",
    }


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/form-data; boundary="1234"',
        "multipart/form-data; charset=utf-8; boundary=1234",
        "Multipart/Form-Data;boundary=1234",
        'multipart/form-data; BOUNDARY="1234" ; x=y',
    ],
)
def test_multipart_boundary_forms(content_type: str) -> None:
    body = _encode_multipart([("a", b"1")], b"1234")
    assert _parse(body, content_type) == ({"a": [b"1"]}, {})


def test_multipart_quoted_boundary_with_specials() -> None:
    boundary = "a:b=c d"  # legal in a boundary, but only quoted in the header
    body = _encode_multipart([("a", b"1")], boundary.encode())
    assert _parse(body, f'multipart/form-data; boundary="{boundary}"') == ({"a": [b"1"]}, {})
    arguments: dict[str, list[bytes]] = {}
    parse_multipart_form_data(b'"a:b=c d"', body, arguments, {})
    assert arguments == {"a": [b"1"]}


def test_multipart_rfc5987_filename() -> None:
    body = (
        b"--1234\r\n"
        b'Content-Disposition: form-data; name=doc; filename="fallback.txt"; '
        b"filename*=UTF-8''%E2%82%AC%20rates.txt\r\n"
        b"\r\n"
        b"x\r\n"
        b"--1234\r\n"
        b'Content-Disposition: form-data; name="raw"; filename="caf\xc3\xa9.txt"\r\n'
        b"\r\n"
        b"y\r\n"
        b"--1234--"
    )
    _, files = _parse(body)
    assert files["doc"][0].filename == "\u20ac rates.txt"  # filename*= wins
    assert files["raw"][0].filename == "caf\u00e9.txt"  # raw UTF-8, as browsers send it


def test_multipart_preamble_padding_and_epilogue() -> None:
    body = (
        b"This is the preamble.\r\n"
        b"--1234 \t\r\n"
        b"Content-Disposition: form-data; name=a\r\n"
        b"\r\n"
        b"1\r\n"
        b"--1234--\r\n"
        b"epilogue, ignored\r\n--1234\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
    )
    assert _parse(body) == ({"a": [b"1"]}, {})


def test_multipart_empty_filename_is_a_field() -> None:
    # A file input with no file chosen: browsers send filename="".
    body = (
        b"--1234\r\n"
        b'Content-Disposition: form-data; name="up"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n"
        b"\r\n"
        b"\r\n"
        b"--1234--\r\n"
    )
    assert _parse(body) == ({"up": [b""]}, {})


def test_multipart_no_parts() -> None:
    assert _parse(b"--1234--\r\n") == ({}, {})


_PART = b"--1234\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_PART, "ends without its final boundary"),
        (_PART + b"--1234", "ends without its final boundary"),
        (_PART + b"--1234\r\nContent-Disposition: form-data; name=b\r\n\r\n2", "final boundary"),
        (b"", "without its boundary"),
        (b"no boundary at all", "without its boundary"),
        (_encode_multipart([("a", b"1")], b"other"), "without its boundary"),
        (b"--1234junk\r\n" + _PART[8:] + b"--1234--", "unexpected data after a boundary"),
        (b"--1234\r\n\r\nno headers\r\n--1234--", "without Content-Disposition"),
        (b"--1234\r\nContent-Type: text/plain\r\n\r\nx\r\n--1234--", "without Content-Disposition"),
        (b"--1234\r\nContent-Disposition: form-data\r\n\r\nx\r\n--1234--", "without a name"),
        (
            b'--1234\r\nContent-Disposition: form-data; name=""\r\n\r\nx\r\n--1234--',
            "without a name",
        ),
        (
            b'--1234\r\nContent-Disposition: form-data; filename="f"\r\n\r\nx\r\n--1234--',
            "without a name",
        ),
        (
            b"--1234\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--1234--",
            "not 'form-data'",
        ),
        (
            b"--1234\r\nContent-Disposition: form-data; name=a\r\nno blank line\r\n--1234--",
            "without an empty line",
        ),
        (b"--1234\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--1234--", "obs-fold"),
        (
            b"--1234\r\nContent-Disposition: form-data; name=\xe9\r\n\r\nx\r\n--1234--",
            "not UTF-8",
        ),
    ],
)
def test_multipart_malformed(body: bytes, message: str) -> None:
    arguments: dict[str, list[bytes]] = {"keep": [b"me"]}
    files: dict[str, list[HTTPFile]] = {}
    with pytest.raises(HTTPInputError, match=message):
        parse_body_arguments("multipart/form-data; boundary=1234", body, arguments, files)
    assert arguments == {"keep": [b"me"]} and files == {}  # unchanged on error


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary=""'],
)
def test_multipart_without_boundary(content_type: str) -> None:
    with pytest.raises(HTTPInputError, match="boundary"):
        _parse(b"--1234--", content_type)


def test_multipart_too_many_parts() -> None:
    body = _encode_multipart([(f"f{i}", b"x") for i in range(5)], b"1234")
    assert len(_parse(body, max_parts=5)[0]) == 5
    with pytest.raises(HTTPInputError, match="max_parts=4"):
        _parse(body, max_parts=4)


def test_multipart_default_part_limit() -> None:
    # Tornado 6.6's default: 100 parts.
    body = _encode_multipart([("f", b"")] * 101, b"1234")
    with pytest.raises(HTTPInputError, match="max_parts=100 "):
        _parse(body)
    assert len(_parse(body, max_parts=101)[0]["f"]) == 101


@pytest.fixture
def global_parse_config() -> Iterator[None]:
    before = httputil._parse_body_config
    yield
    httputil.set_parse_body_config(before)


def test_parse_body_config_sets_the_limits_per_call() -> None:
    body = _encode_multipart([("f", b"x")] * 3, b"1234")
    config = httputil.ParseBodyConfig(multipart=httputil.ParseMultipartConfig(max_parts=2))
    arguments: dict[str, list[bytes]] = {}
    with pytest.raises(HTTPInputError, match="max_parts=2 "):
        httputil.parse_body_arguments(
            "multipart/form-data; boundary=1234", body, arguments, {}, config=config
        )
    assert arguments == {}
    urlencoded = httputil.ParseBodyConfig(
        urlencoded=httputil.ParseUrlEncodedConfig(max_arguments=2)
    )
    with pytest.raises(HTTPInputError, match="max_arguments=2"):
        httputil.parse_body_arguments(
            "application/x-www-form-urlencoded", b"a=1&b=2&c=3", arguments, {}, config=urlencoded
        )
    httputil.parse_body_arguments(
        "application/x-www-form-urlencoded", b"a=1&b=2", arguments, {}, config=urlencoded
    )
    assert arguments == {"a": [b"1"], "b": [b"2"]}


def test_multipart_parsing_can_be_turned_off(global_parse_config: None) -> None:
    body = _encode_multipart([("f", b"x")], b"1234")
    disabled = httputil.ParseMultipartConfig(enabled=False)
    with pytest.raises(HTTPInputError, match="disabled"):
        httputil.parse_multipart_form_data(b"1234", body, {}, {}, config=disabled)
    httputil.set_parse_body_config(httputil.ParseBodyConfig(multipart=disabled))
    with pytest.raises(HTTPInputError, match="disabled"):
        _parse(body)


def test_the_global_config_bounds_query_strings(global_parse_config: None) -> None:
    request = httputil.HTTPServerRequest("GET", "/?" + "&".join(f"a{i}=1" for i in range(5)))
    assert len(request.query_arguments) == 5
    httputil.set_parse_body_config(
        httputil.ParseBodyConfig(urlencoded=httputil.ParseUrlEncodedConfig(max_arguments=4))
    )
    request = httputil.HTTPServerRequest("GET", "/?" + "&".join(f"a{i}=1" for i in range(5)))
    with pytest.raises(HTTPInputError, match="query string"):
        request.query_arguments  # noqa: B018


def test_multipart_part_header_limit() -> None:
    long_name = "n" * 200
    body = _encode_multipart([(long_name, b"x")], b"1234")
    header_size = len(f'Content-Disposition: form-data; name="{long_name}"')
    assert _parse(body, max_part_header_size=header_size)[0] == {long_name: [b"x"]}
    with pytest.raises(HTTPInputError, match=f"max_part_header_size={header_size - 1}"):
        _parse(body, max_part_header_size=header_size - 1)
    # Headers with no end at all are reported as over the limit, not searched to the end.
    endless = b"--1234\r\nX-Pad: " + b"a" * 20_000 + b"\r\n--1234--"
    with pytest.raises(HTTPInputError, match="max_part_header_size=10240"):
        _parse(endless)


_BOUNDARY = b"reactor-test-7MA4YWxkTrZu0gW"
_DELIMITER = b"\r\n--" + _BOUNDARY
_field_name = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\;'),
    min_size=1,
)
# Values built from pieces that look like framing, to stress the delimiter search.
_field_value = st.lists(
    st.binary(max_size=20)
    | st.sampled_from([b"\r\n", b"\r\n\r\n", b"--", b"\r\n--", _DELIMITER[:-1], b"--" + _BOUNDARY])
).map(b"".join)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_field_name, _field_value)))
def test_multipart_round_trip(fields: list[tuple[str, bytes]]) -> None:
    # A value may hold anything but the delimiter ("\r\n--boundary"), also
    # across its edges: after the CRLF that ends the part's headers, or into
    # the delimiter that follows it.
    fields = [
        (n, v) for n, v in fields if (b"\r\n" + v + _DELIMITER).find(_DELIMITER) == len(v) + 2
    ]
    expected: dict[str, list[bytes]] = {}
    for name, value in fields:
        expected.setdefault(name, []).append(value)
    body = _encode_multipart(fields, _BOUNDARY)
    content_type = "multipart/form-data; boundary=" + _BOUNDARY.decode()
    assert _parse(body, content_type) == (expected, {})


# -- Content-Type style headers --------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("text/html", ("text/html", {})),
        ("text/html; charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ("  text/html ;  CHARSET = utf-8 ; ", ("text/html", {"charset": "utf-8"})),
        ('form-data; name="a;b"; x=1', ("form-data", {"name": "a;b", "x": "1"})),
        ('form-data; foo="b\\\\a\\"r"', ("form-data", {"foo": 'b\\a"r'})),
        ('form-data; filename="C:\\dir\\f.txt"', ("form-data", {"filename": "C:\\dir\\f.txt"})),
        ("form-data; file*=utf-8''T%C3%A4st", ("form-data", {"file": "T\u00e4st"})),
        ("form-data; file*=\"utf-8''T%C3%A4st\"", ("form-data", {"file": "T\u00e4st"})),
        ("a; f*=iso-8859-1'en'%A3%20rates", ("a", {"f": "\u00a3 rates"})),
        ("a; f*=no-such-charset''%C3%A4", ("a", {"f": "\u00e4"})),
        ("a; f*=utf-8''%FF", ("a", {"f": "\ufffd"})),
        ("a; f*=not-extended", ("a", {"f": "not-extended"})),
        (
            "a; f*0*=utf-8''%E2%82; f*1*=%AC; f*2=\" x\"; f*4=gap",
            ("a", {"f": "\u20ac x"}),
        ),
        ("a; f=plain; f*1=no-piece-zero", ("a", {"f": "plain"})),
        ("a; bare; =novalue; x=1", ("a", {"x": "1"})),
        ('a; x="unterminated; y=2', ("a", {"x": '"unterminated; y=2'})),
        ("", ("", {})),
    ],
)
def test_parse_header(line: str, expected: tuple[str, dict[str, str]]) -> None:
    assert _parse_header(line) == expected


def test_encode_header() -> None:
    assert _encode_header("text/html", {}) == "text/html"
    assert (
        _encode_header(
            "permessage-deflate", {"client_max_window_bits": 15, "client_no_context_takeover": None}
        )
        == "permessage-deflate; client_max_window_bits=15; client_no_context_takeover"
    )
    assert _encode_header("form-data", {"name": 'a "b"'}) == 'form-data; name="a \\"b\\""'
    assert _encode_header("form-data", {"f": "\u00e4\r\n"}) == "form-data; f*=UTF-8''%C3%A4%0D%0A"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"charset": "utf-8"},
        {"name": "field", "filename": "a b.txt"},
        {"name": 'quo"te', "filename": "back\\slash"},
        {"filename": "\u20ac rates \U0001f600.txt", "x": ""},
        {"filename": "line\r\nbreak\ttab"},
    ],
)
def test_header_round_trip(params: dict[str, str]) -> None:
    encoded = _encode_header("form-data", params)
    assert "\r" not in encoded and "\n" not in encoded
    assert _parse_header(encoded) == ("form-data", params)


@given(
    st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1),
        st.text(alphabet=st.characters(codec="utf-8")),
    )
)
def test_header_round_trip_property(params: dict[str, str]) -> None:
    assert _parse_header(_encode_header("x", params)) == ("x", params)


# -- cookies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("chips=ahoy; vienna=finger", {"chips": "ahoy", "vienna": "finger"}),
        ("  a  =  1  ;b=2", {"a": "1", "b": "2"}),
        ("a=1;; ;b=2;", {"a": "1", "b": "2"}),
        ("a=b=c", {"a": "b=c"}),
        ("a=1; a=2", {"a": "2"}),
        ("nameless", {"": "nameless"}),
        ("a=1; nameless", {"a": "1", "": "nameless"}),
        ("=b", {"": "b"}),
        ("=", {}),
        ("", {}),
        ("a=", {"a": ""}),
        ('a="quoted value"', {"a": "quoted value"}),
        ('a="x\\"y\\\\z"', {"a": 'x"y\\z'}),
        ('a="\\012\\101"', {"a": "\nA"}),
        ('a="unterminated', {"a": '"unterminated'}),
        ('a="', {"a": '"'}),
        ("a=\u00fc\u00df", {"a": "\u00fc\u00df"}),
        ("a b=c d", {"a b": "c d"}),
        ('keebler=E=mc2; L=\\"Loves\\"', {"keebler": "E=mc2", "L": '\\"Loves\\"'}),
    ],
)
def test_parse_cookie(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie(header) == expected


@pytest.mark.parametrize(
    "value", ['"a"', '"a\\"b"', '"\\012x\\777\\8"', '"\\\\"', "plain", '"', '"a\\', '""']
)
def test_cookie_unquote_matches_stdlib(value: str) -> None:
    stdlib_unquote = http.cookies._unquote
    assert parse_cookie("a=" + value)["a"] == stdlib_unquote(value)


def test_parse_cookie_backslashes_are_linear() -> None:
    # http.cookies before CPython 3.12.6 took seconds on this (CVE-2024-7592).
    value = '"' + "\\" * 200_000 + '"'
    start = time.perf_counter()
    assert parse_cookie("a=" + value)["a"] == "\\" * 100_000
    assert time.perf_counter() - start < 1.0


def test_encode_username_password_is_utf8_of_the_nfc_form() -> None:
    decomposed = "Jose\u0301"  # "José" with a combining accent
    assert encode_username_password(decomposed, "p:w") == "José:p:w".encode()
    assert encode_username_password(b"\xff", b"x") == b"\xff:x"
    assert HTTP_WHITESPACE == " \t"


def test_httpserver_keeps_tornados_old_request_name() -> None:
    from reactor.httpserver import HTTPRequest

    assert HTTPRequest is HTTPServerRequest
