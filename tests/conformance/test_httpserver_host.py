"""What the server makes of the Host header and the request target, on every backend.

RFC 9112 section 3.2: a request with no Host (HTTP/1.1), several, or an
invalid one is answered 400. RFC 9112 section 3.2.2: an absolute-form target
(``GET http://a.example/x``) names the host itself, and wins over Host.
Requests are sent as exact bytes on a raw connection; a refused one is
followed on the same connection by a good request that must never be
answered, and the application must never see either.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reactor.ioloop import IOLoop
from tests.conformance.test_httpserver import (
    HOST,
    Recorder,
    assert_refused,
    exchange,
    start,
    status_of,
)

# Must never be answered after a refusal; "Connection: close" so that a server
# that wrongly answers both closes, and the test fails at once.
GOOD = b"GET /next HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"


@pytest.fixture
def served(io_loop: IOLoop) -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    server, port = start(recorder)
    yield recorder, port
    server.stop()
    for connection in list(server._connections):
        connection.close()


def get(target: bytes, *headers: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"GET " + target + b" " + version + b"\r\n" + b"".join(h + b"\r\n" for h in headers)


# The examples, lists, bad ports, and what the strict grammar leaves out.
BAD_HOSTS = {
    "space": b"Host: a b",
    "list": b"Host: a.example,b.example",
    "list-with-space": b"Host: a.example, b.example",
    "path-and-userinfo": b"Host: evil.example/x@good",
    "userinfo": b"Host: user@a.example",
    "markup": b"Host: <script>x</script>",
    "empty": b"Host:",
    "blank": b"Host:   ",
    "port-too-big": b"Host: a:99999",
    "port-not-digits": b"Host: a:x",
    "port-empty": b"Host: a.example:",
    "port-six-digits": b"Host: a:000080",
    "two-ports": b"Host: a:1:2",
    "port-only": b"Host: :80",
    "ipv6-unbracketed": b"Host: ::1",
    "ipv6-not-an-address": b"Host: [::g]",
    "ipv6-zone-id": b"Host: [fe80::1%25eth0]",
    "ipv6-unclosed": b"Host: [::1",
    "ipvfuture": b"Host: [v1.fe]",
    "percent-encoded": b"Host: a%2Fb.example",
    "sub-delims": b"Host: a;b.example",
    "quote": b"Host: a'b.example",
    "backslash": b"Host: a\\b.example",
    "obs-text": b"Host: caf\xe9.example",
}


@pytest.mark.parametrize("host", BAD_HOSTS.values(), ids=BAD_HOSTS.keys())
async def test_invalid_host_is_refused(served: tuple[Recorder, int], host: bytes) -> None:
    recorder, port = served
    response = await exchange(port, get(b"/", host) + b"\r\n" + GOOD)
    assert_refused(response, 400)
    assert recorder.requests == []


@pytest.mark.parametrize("xheaders", [False, True], ids=["plain", "xheaders"])
async def test_invalid_host_is_refused_over_http10_and_behind_a_proxy(
    io_loop: IOLoop, xheaders: bool
) -> None:
    """HTTP/1.0 may leave Host out, not send a bad one; and trusting a
    proxy's headers (xheaders) lets no bad Host through either."""
    recorder = Recorder()
    server, port = start(recorder, xheaders=xheaders)
    for name, host in BAD_HOSTS.items():
        for version in (b"HTTP/1.0", b"HTTP/1.1"):
            response = await exchange(port, get(b"/", host, version=version) + b"\r\n" + GOOD)
            assert status_of(response) == 400, (name, version, response)
            assert_refused(response, 400)
    assert recorder.requests == []
    server.stop()


DUPLICATES = {
    "same": (b"Host: a.example", b"Host: a.example"),
    "different": (b"Host: a.example", b"Host: b.example"),
    "second-empty": (b"Host: a.example", b"Host:"),
    "other-case": (b"Host: a.example", b"hOST: a.example"),
}


@pytest.mark.parametrize("hosts", DUPLICATES.values(), ids=DUPLICATES.keys())
@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"], ids=["1.1", "1.0"])
async def test_more_than_one_host_is_refused(
    served: tuple[Recorder, int], hosts: tuple[bytes, bytes], version: bytes
) -> None:
    recorder, port = served
    response = await exchange(port, get(b"/", *hosts, version=version) + b"\r\n" + GOOD)
    assert_refused(response, 400)
    assert recorder.requests == []


async def test_http11_without_host_is_refused(served: tuple[Recorder, int]) -> None:
    recorder, port = served
    response = await exchange(port, get(b"/") + b"\r\n" + GOOD)
    assert_refused(response, 400)
    assert recorder.requests == []


GOOD_HOSTS = {
    # Host value: (request.host, request.host_name)
    "a.example": ("a.example", "a.example"),
    "a.example:8080": ("a.example:8080", "a.example"),
    "A.Example:80": ("A.Example:80", "a.example"),
    "127.0.0.1:80": ("127.0.0.1:80", "127.0.0.1"),
    "127.0.0.1": ("127.0.0.1", "127.0.0.1"),
    "[::1]:8080": ("[::1]:8080", "[::1]"),
    "[::1]": ("[::1]", "[::1]"),
    "[2001:DB8::ffff:1.2.3.4]": ("[2001:DB8::ffff:1.2.3.4]", "[2001:db8::ffff:1.2.3.4]"),
    "xn--bcher-kva.example": ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    "under_score.internal": ("under_score.internal", "under_score.internal"),
    "a.example.": ("a.example.", "a.example."),
    "localhost:0": ("localhost:0", "localhost"),
    "a:65535": ("a:65535", "a"),
}


@pytest.mark.parametrize("host", GOOD_HOSTS, ids=GOOD_HOSTS.keys())
async def test_valid_host_is_served(served: tuple[Recorder, int], host: str) -> None:
    recorder, port = served
    response = await exchange(
        port, get(b"/p?q=1", b"Host: " + host.encode(), b"Connection: close") + b"\r\n"
    )
    assert status_of(response) == 200, response
    [request] = recorder.requests
    assert (request.host, request.host_name) == GOOD_HOSTS[host]
    assert request.headers["Host"] == host
    assert (request.uri, request.path, request.query) == ("/p?q=1", "/p", "q=1")
    assert request.full_url() == f"http://{host}/p?q=1"


async def test_http10_without_host_falls_back_to_127_0_0_1(served: tuple[Recorder, int]) -> None:
    recorder, port = served
    response = await exchange(port, get(b"/x", version=b"HTTP/1.0") + b"\r\n")
    assert status_of(response) == 200, response
    [request] = recorder.requests
    assert (request.host, request.host_name) == ("127.0.0.1", "127.0.0.1")
    assert request.full_url() == "http://127.0.0.1/x"


ABSOLUTE_FORM = {
    # target: (request.host, request.host_name, request.uri, request.path, request.query)
    b"http://a.example/x": ("a.example", "a.example", "/x", "/x", ""),
    b"http://a.example:8080/x/y?q=1": ("a.example:8080", "a.example", "/x/y?q=1", "/x/y", "q=1"),
    b"HTTP://A.example/x": ("A.example", "a.example", "/x", "/x", ""),
    b"https://a.example/s": ("a.example", "a.example", "/s", "/s", ""),
    b"http://a.example": ("a.example", "a.example", "/", "/", ""),
    b"http://a.example?q=1": ("a.example", "a.example", "/?q=1", "/", "q=1"),
    b"http://[::1]:8080/v6": ("[::1]:8080", "[::1]", "/v6", "/v6", ""),
}


@pytest.mark.parametrize("target", ABSOLUTE_FORM, ids=[t.decode() for t in ABSOLUTE_FORM])
async def test_absolute_form_target_names_the_host(
    served: tuple[Recorder, int], target: bytes
) -> None:
    # RFC 9112 section 3.2.2: the target's authority wins over Host, which
    # must still be there (HTTP/1.1) and valid.
    recorder, port = served
    response = await exchange(
        port, get(target, b"Host: other.example", b"Connection: close") + b"\r\n"
    )
    assert status_of(response) == 200, response
    [request] = recorder.requests
    host, host_name, uri, path, query = ABSOLUTE_FORM[target]
    assert (request.host, request.host_name) == (host, host_name)
    assert (request.uri, request.path, request.query) == (uri, path, query)
    # The scheme is the connection's (and a trusted proxy's), not the client's claim.
    assert request.full_url() == f"http://{host}{uri}"


async def test_absolute_form_over_http10_needs_no_host(served: tuple[Recorder, int]) -> None:
    recorder, port = served
    response = await exchange(port, get(b"http://a.example/x", version=b"HTTP/1.0") + b"\r\n")
    assert status_of(response) == 200, response
    [request] = recorder.requests
    assert (request.host, request.path) == ("a.example", "/x")


BAD_ABSOLUTE_FORM = {
    "userinfo": b"http://user@a.example/x",
    "userinfo-and-password": b"http://u:p@a.example/x",
    "empty-authority": b"http:///x",
    "bad-port": b"http://a.example:99999/x",
    "list": b"http://a.example,b.example/x",
    "other-scheme": b"ftp://a.example/x",
    "websocket-scheme": b"ws://a.example/x",
    "percent-encoded": b"http://a%2Fb.example/x",
}


@pytest.mark.parametrize("target", BAD_ABSOLUTE_FORM.values(), ids=BAD_ABSOLUTE_FORM.keys())
async def test_invalid_absolute_form_target_is_refused(
    served: tuple[Recorder, int], target: bytes
) -> None:
    recorder, port = served
    response = await exchange(port, get(target, b"Host: a.example") + b"\r\n" + GOOD)
    assert_refused(response, 400)
    assert recorder.requests == []


async def test_absolute_form_does_not_excuse_an_invalid_host(
    served: tuple[Recorder, int],
) -> None:
    recorder, port = served
    for host in (b"Host: a b", b"Host: a.example,b.example", b"Host:"):
        response = await exchange(port, get(b"http://a.example/x", host) + b"\r\n" + GOOD)
        assert_refused(response, 400)
    response = await exchange(port, get(b"http://a.example/x") + b"\r\n" + GOOD)
    assert_refused(response, 400)  # HTTP/1.1 still needs its Host
    assert recorder.requests == []


async def test_forwarded_host_headers_do_not_change_the_host(io_loop: IOLoop) -> None:
    # xheaders trusts X-Real-Ip / X-Forwarded-For / X-Scheme / X-Forwarded-Proto
    # (as Tornado does), never a forwarded host: request.host stays the
    # validated Host.
    recorder = Recorder()
    server, port = start(recorder, xheaders=True)
    response = await exchange(
        port,
        get(
            b"/",
            b"Host: a.example",
            b"X-Forwarded-Host: evil.example/x@good",
            b"Forwarded: host=evil.example",
            b"Connection: close",
        )
        + b"\r\n",
    )
    assert status_of(response) == 200, response
    [request] = recorder.requests
    assert (request.host, request.host_name) == ("a.example", "a.example")
    server.stop()


async def test_a_valid_request_after_a_valid_one_on_the_same_connection(
    served: tuple[Recorder, int],
) -> None:
    """Hosts are remembered once valid: the second request is checked as well."""
    recorder, port = served
    data = (
        get(b"/1", b"Host: a.example")
        + b"\r\n"
        + get(b"/2", b"Host: a.example")
        + b"\r\n"
        + get(b"/3", b"Host: a b")
        + b"\r\n"
        + GOOD
    )
    response = await exchange(port, data)
    assert response.count(b"HTTP/1.1 200") == 2
    assert [r.path for r in recorder.requests] == ["/1", "/2"]
    assert response.split(b"HTTP/1.1 ")[-1].startswith(b"400")


async def test_repeated_header_fields_are_kept_apart_until_read(
    served: tuple[Recorder, int],
) -> None:
    """The server's header builder is linear for a repeated name (issue 9
    item 3), structurally: it keeps the values in a list and joins them only
    when the application reads the joined value."""
    recorder, port = served
    repeated = [b"X-Repeat: v%d" % i for i in range(2000)]
    response = await exchange(
        port, get(b"/", b"Host: a.example", *repeated, b"Connection: close") + b"\r\n"
    )
    assert status_of(response) == 200, response
    [request] = recorder.requests
    assert "X-Repeat" in request.headers
    assert "X-Repeat" not in request.headers._combined
    assert request.headers.get_list("x-repeat") == [f"v{i}" for i in range(2000)]
    assert request.headers["X-Repeat"] == ",".join(f"v{i}" for i in range(2000))
