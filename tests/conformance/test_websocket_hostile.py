"""What a hostile peer can make the WebSocket layer do (a review from outside).

Each test plays a peer that lies, floods, stalls or never reads, over a
real socket (:mod:`tests.ws_raw` builds every byte), against a small app of
its own, and checks that the damage is bounded: a clear refusal, a close
code, nothing delivered that should not be, nothing kept after the close.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import socket
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen, locks, websocket
from reactor.httpclient import HTTPRequest, HTTPStreamClosedError, HTTPTimeoutError
from reactor.iostream import IOStream
from reactor.log import gen_log
from reactor.web import Application, RequestHandler
from tests import ws_raw
from tests.util import LogRecords
from tests.ws_raw import TEXT, RawWebSocket, frame

pytestmark = pytest.mark.usefixtures("reactor_log")

WAIT = 4.0


class Echo(websocket.WebSocketHandler):
    """Echoes; records (weakly) the handler, its protocol and its stream
    in ``seen``, and counts its closes in ``closed``."""

    def initialize(self, seen: list[Any], closed: Closes) -> None:
        self.seen = seen
        self.closes = closed
        seen.append(weakref.ref(self))

    def open(self, *args: str, **kwargs: str) -> None:
        connection = self.ws_connection
        assert connection is not None and connection.stream is not None
        self.seen += [weakref.ref(connection), weakref.ref(connection.stream)]

    def on_message(self, message: str | bytes) -> None:
        if message == "close-me":
            self.close(4001, "bye")
        else:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        self.closes.count += 1
        self.closes.condition.notify_all()


class DeflateEcho(Echo):
    def get_compression_options(self) -> dict[str, Any] | None:
        return {}


class Pinging(Echo):
    @property
    def ping_interval(self) -> float:
        return 0.1


class Closes:
    def __init__(self) -> None:
        self.count = 0
        self.condition = locks.Condition()

    async def wait_for(self, count: int) -> None:
        while self.count < count:
            assert await self.condition.wait(timeout=_wait()), self.count


class Plain(RequestHandler):
    def get(self) -> None:
        self.write("plain")


@pytest.fixture
def seen() -> list[Any]:
    return []


@pytest.fixture
def closed() -> Closes:
    return Closes()


@pytest.fixture
def app(seen: list[Any], closed: Closes) -> Application:
    kwargs = {"seen": seen, "closed": closed}
    return Application(
        [
            ("/echo", Echo, kwargs),
            ("/deflate", DeflateEcho, kwargs),
            ("/pinging", Pinging, kwargs),
            ("/plain", Plain),
        ]
    )


@pytest.fixture
def port(http_server: Any, http_port: int) -> int:
    return http_port


def _wait() -> datetime.timedelta:
    return datetime.timedelta(seconds=WAIT)


# -- the handshake -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "http://[::1",  # urlsplit raises ValueError on these two
        "http://[127.0.0.1]",
        "null",
        "http://evil@127.0.0.1",
        "HTTP://127.0.0.1:1",
        "http://127.0.0.1",
        "http://xn--bcher-kva.example",
        "http://b\xfccher.example",
    ],
)
async def test_unparsable_or_foreign_origin_is_a_403(port: int, origin: str) -> None:
    """An Origin the default check_origin cannot parse is not ours: a 403
    (it was a 500 with a traceback: any client could fill the error log)."""
    ws = await RawWebSocket.connect(port, "/echo", headers={"Origin": origin})
    try:
        assert ws.status == 403, ws.response
    finally:
        ws.close()


@contextlib.contextmanager
def declines() -> Iterator[LogRecords]:
    """The debug lines of the permessage-deflate offers the server declined."""
    records = LogRecords()
    old = gen_log.level
    gen_log.setLevel(logging.DEBUG)
    gen_log.addHandler(records)
    try:
        yield records
    finally:
        gen_log.removeHandler(records)
        gen_log.setLevel(old)


def _declined(records: LogRecords) -> int:
    return sum("declined a permessage-deflate offer" in r.getMessage() for r in records.records)


@pytest.mark.parametrize(
    ("junk", "taken"),
    [
        pytest.param("permessage-deflate; foo", False, id="bad-offers"),
        pytest.param("permessage-deflate" + "; x" * 5, True, id="too-many-parameters"),
        pytest.param("x", True, id="other-extensions"),
    ],
)
async def test_thousands_of_extension_offers_cost_a_bounded_negotiation(
    port: int, junk: str, taken: bool
) -> None:
    """A 60 KB header of junk offers, then a good one. The server parses no
    more than 16 permessage-deflate offers (past them, the good one is not
    looked at: no compression, still a 101), and skips unparsed the offers
    of other extensions and those with more parameters than
    permessage-deflate has. Each was parsed and declined, one at a time:
    up to 45 times a handshake's CPU (20 ms here for ``x,x,x...``)."""
    offers = ", ".join([junk] * (60_000 // (len(junk) + 2)))
    with declines() as records:
        ws = await RawWebSocket.connect(
            port, "/deflate", headers={"Sec-WebSocket-Extensions": offers + ", permessage-deflate"}
        )
    try:
        ws.check_accept()
        if taken:
            assert ws.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
            assert _declined(records) == 0
        else:
            assert "Sec-WebSocket-Extensions" not in ws.headers
            assert _declined(records) == 16
    finally:
        ws.close()


async def test_a_good_offer_after_declined_ones_is_taken(port: int) -> None:
    offers = ", ".join(["permessage-deflate; foo"] * 10 + ["x"] * 10 + ["permessage-deflate"])
    with declines() as records:
        ws = await RawWebSocket.connect(
            port, "/deflate", headers={"Sec-WebSocket-Extensions": offers}
        )
    try:
        ws.check_accept()
        assert ws.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
        assert _declined(records) == 10
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("host", "origin"),
    [("127.0.0.1", "http://127.0.0.1"), ("LOCALHOST:{port}", "http://localhost:{port}")],
)
async def test_origin_of_the_host_is_accepted(port: int, host: str, origin: str) -> None:
    """Same origin: the Origin's host[:port] is the Host header's, with or
    without a port, in any case."""
    headers = {"Host": host.format(port=port), "Origin": origin.format(port=port)}
    ws = await RawWebSocket.connect(port, "/echo", headers=headers)
    try:
        ws.check_accept()
    finally:
        ws.close()


async def test_upgrade_after_plain_requests_on_a_keep_alive_connection(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    stream = IOStream(sock)
    try:
        plain = f"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        upgrade, _key = ws_raw.handshake_request(f"127.0.0.1:{port}", "/echo")
        stream.write(plain + plain + upgrade + frame(TEXT, "after", mask=True))
        for _ in range(2):
            head = await gen.with_timeout(_wait(), stream.read_until(b"\r\n\r\n"))
            assert head.startswith(b"HTTP/1.1 200"), head
            assert await gen.with_timeout(_wait(), stream.read_bytes(5)) == b"plain"
        head = await gen.with_timeout(_wait(), stream.read_until(b"\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 101"), head
        echoed = await gen.with_timeout(_wait(), stream.read_bytes(7))
        assert echoed == frame(TEXT, "after", mask=False)
    finally:
        stream.close()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(({"Content-Length": "4"}, b"body"), id="content-length"),
        pytest.param(({"Transfer-Encoding": "chunked"}, b"4\r\nbody\r\n0\r\n\r\n"), id="chunked"),
    ],
)
async def test_upgrade_request_with_a_body_is_a_400(port: int, seen: list[Any], body: Any) -> None:
    """A body on the handshake was read as WebSocket frames (the handler
    runs on the head, and what follows it is the WebSocket's): refused."""
    headers, data = body
    ws = await RawWebSocket.connect(
        port, "/echo", headers=headers, then=data + frame(TEXT, "x", mask=True)
    )
    try:
        assert ws.status == 400, ws.response
        assert b"no body" in ws.response.body if ws.response else False
    finally:
        ws.close()


@pytest.mark.parametrize("length", ["0", "00"])
async def test_upgrade_request_with_content_length_0_is_accepted(port: int, length: str) -> None:
    ws = await RawWebSocket.connect(
        port, "/echo", headers={"Content-Length": length}, then=frame(TEXT, "x", mask=True)
    )
    try:
        ws.check_accept()
        got = await ws.read_frame()
        assert got is not None and got.text == "x"
    finally:
        ws.close()


async def test_http_pipelined_after_the_upgrade_is_read_as_frames(
    port: int, closed: Closes
) -> None:
    """What follows the upgrade request is the WebSocket's: a second HTTP
    request behind it is a bad frame (1002), not a second response."""
    pipelined = f"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    ws = await RawWebSocket.connect(port, "/echo", then=pipelined)
    ws.check_accept()
    assert await ws.expect_close(1002) == []
    await closed.wait_for(1)


async def test_closed_connections_are_collected(port: int, seen: list[Any], closed: Closes) -> None:
    """Nothing of a closed WebSocket stays: the handler, its protocol and
    its stream are garbage once it is closed, however it closed (the HTTP
    server kept every connection it had handed to a WebSocket: detaching
    never told the server the connection was no longer its)."""
    for _ in range(10):
        ws = await RawWebSocket.connect(port, "/echo")
        ws.check_accept()
        await ws.write(frame(TEXT, "hi", mask=True), ws_raw.close(1000, mask=True))
        await ws.expect_close(1000)
        ws.close()
    for _ in range(10):
        ws = await RawWebSocket.connect(port, "/echo")
        await ws.write(frame(TEXT, "hi", mask=True))
        await ws.read_frame()
        ws.close()  # vanishes
    await closed.wait_for(20)
    await gen.moment
    gc.collect()
    assert len(seen) == 60
    assert [ref() for ref in seen if ref() is not None] == []


# -- frames ------------------------------------------------------------------------------


async def test_close_storm_gets_one_close_and_one_on_close(port: int, closed: Closes) -> None:
    ws = await RawWebSocket.connect(port, "/echo")
    ws.check_accept()
    storm = [ws_raw.close(1000 + i % 4, mask=True) for i in range(1000)]
    await ws.write(frame(TEXT, "before", mask=True), *storm, frame(TEXT, "after", mask=True))
    frames = await ws.expect_close(1000)
    assert [f.text for f in frames] == ["before"]
    await closed.wait_for(1)
    await gen.moment
    assert closed.count == 1


async def test_data_while_the_server_closes_is_discarded(port: int, closed: Closes) -> None:
    ws = await RawWebSocket.connect(port, "/echo")
    ws.check_accept()
    await ws.write(frame(TEXT, "close-me", mask=True))
    [close] = await ws.read_frames_until_close()
    assert close.close_code == 4001
    # The server is closing: what comes now is read and dropped, not echoed.
    await ws.write(*[frame(TEXT, "late", mask=True)] * 500, ws_raw.close(4001, mask=True))
    await ws.expect_eof()
    await closed.wait_for(1)


async def test_a_peer_stalled_inside_a_frame_is_dropped_by_the_ping_timeout(
    port: int, closed: Closes
) -> None:
    """Slowloris after the handshake: a frame header that never ends, a
    byte at a time. There is no read timeout (an idle WebSocket is
    legitimate, as in Tornado); pings are the bound: a peer stuck inside a
    frame cannot send its pong, so the ping timeout drops it."""
    ws = await RawWebSocket.connect(port, "/pinging")
    ws.check_accept()
    whole = frame(TEXT, "never", mask=True)
    await ws.write(whole[:1])
    got = await ws.read_frame()
    assert got is not None and got.opcode == ws_raw.PING
    await ws.write(whole[1:2])  # trickles on, never completing the frame
    frames = await ws.read_frames_until_close()
    assert frames[-1].close_code == 1011 and frames[-1].close_reason == "ping timeout"
    await ws.expect_eof()
    await closed.wait_for(1)


# -- the client against a hostile server --------------------------------------------------


@pytest.fixture
def raw_server(io_loop: Any) -> Iterator[ws_raw.RawServer]:
    server = ws_raw.RawServer()
    yield server
    server.close()


async def test_client_refuses_a_101_with_endless_headers(raw_server: ws_raw.RawServer) -> None:
    connecting = websocket.websocket_connect(raw_server.url)
    peer = await raw_server.accept()
    await peer.read_request()
    # 100 KB of headers: the client reads at most 64 KiB of them, then gives up.
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    peer.stream.write(b"HTTP/1.1 101 Switching Protocols\r\n" + filler * 100)
    with pytest.raises(HTTPStreamClosedError, match="larger than 65536 bytes"):
        await gen.with_timeout(_wait(), connecting)
    await peer.expect_eof()


async def test_client_times_out_a_101_that_never_ends(raw_server: ws_raw.RawServer) -> None:
    request = HTTPRequest(raw_server.url, request_timeout=0.2)
    connecting = websocket.websocket_connect(request)
    peer = await raw_server.accept()
    await peer.read_request()
    await peer.stream.write(b"HTTP/1.1 101 Switching Protocols\r\nX-A: b\r\n")
    with pytest.raises(HTTPTimeoutError):
        await gen.with_timeout(_wait(), connecting)
    await peer.expect_eof()


async def test_client_refuses_a_16_mib_frame_from_its_header(raw_server: ws_raw.RawServer) -> None:
    connecting = websocket.websocket_connect(raw_server.url)
    peer = await raw_server.accept()
    await peer.read_request()
    await peer.answer(then=frame(ws_raw.BINARY, b"", mask=False, length=16 * 1024 * 1024))
    connection = await gen.with_timeout(_wait(), connecting)
    [close] = await peer.read_frames_until_close()
    assert close.close_code == 1009
    assert await gen.with_timeout(_wait(), connection.read_message()) is None


async def test_client_skips_interim_answers_before_the_101(raw_server: ws_raw.RawServer) -> None:
    """A 100 Continue (our own server sends one to a request with ``Expect:
    100-continue``) or a 103 before the 101 is an interim answer (RFC 9110
    section 15.2), not the handshake's: it was taken for a refusal, an
    HTTPClientError 100."""
    request = HTTPRequest(raw_server.url, headers={"Expect": "100-continue"})
    connecting = websocket.websocket_connect(request)
    peer = await raw_server.accept()
    await peer.read_request()
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    await peer.stream.write(interim)
    await peer.answer(then=frame(TEXT, "hello", mask=False))
    connection = await gen.with_timeout(_wait(), connecting)
    try:
        assert await gen.with_timeout(_wait(), connection.read_message()) == "hello"
    finally:
        connection.close()


async def test_client_refuses_endless_interim_answers(raw_server: ws_raw.RawServer) -> None:
    connecting = websocket.websocket_connect(raw_server.url)
    peer = await raw_server.accept()
    await peer.read_request()
    peer.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 1000)
    with pytest.raises(websocket.WebSocketError):
        await gen.with_timeout(_wait(), connecting)
    await peer.expect_eof()
