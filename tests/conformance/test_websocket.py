"""reactor.websocket through real sockets on every backend: our client against
our server, plus raw sockets where a client must misbehave (never answer a
ping, send a frame in the handshake's packet) and ``http.client`` for the
handshake's refusals.

The one-rule-per-test raw-frame suite (every protocol error and its close
code) and the interop tests with the ``websockets`` package live in their
own modules.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import resource
import socket
import ssl
import struct
from collections.abc import Awaitable
from typing import Any

import pytest

from reactor import gen, web, websocket
from reactor.httpclient import HTTPClientError, HTTPRequest, HTTPTimeoutError
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.locks import Event
from reactor.netutil import DefaultExecutorResolver, OverrideResolver
from reactor.testing import ExpectLog, bind_unused_port
from reactor.testing.tls import TLSCertificate
from reactor.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    WebSocketHandler,
    WebSocketProtocol13,
    websocket_connect,
)
from tests.util import LogRecords

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

TIMEOUT = 5.0


class Echo(WebSocketHandler):
    """Echoes each message; records what happened to it in ``events``."""

    events: list[Any]
    closed: Event

    def initialize(self, events: list[Any] | None = None, closed: Event | None = None) -> None:
        self.events = events if events is not None else []
        self.closed = closed or Event()

    def open(self, *args: str, **kwargs: str) -> None:
        self.events.append(("open", args))

    def on_message(self, message: str | bytes) -> None:
        self.events.append(("message", message))
        self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data: bytes) -> None:
        self.events.append(("ping", data))

    def on_pong(self, data: bytes) -> None:
        self.events.append(("pong", data))

    def on_close(self) -> None:
        self.events.append(("close", self.close_code, self.close_reason))
        self.closed.set()


class State:
    """What the handlers of one test share."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closed = Event()
        self.handlers: list[WebSocketHandler] = []


@pytest.fixture
def state() -> State:
    return State()


class Recorded(Echo):
    def initialize(self, state: State) -> None:  # type: ignore[override]
        super().initialize(state.events, state.closed)
        state.handlers.append(self)


class AsyncOpen(Recorded):
    async def open(self, *args: str, **kwargs: str) -> None:  # type: ignore[override]
        self.events.append(("opening",))
        await gen.sleep(0.01)
        self.events.append(("open", args))


class SlowMessages(Recorded):
    async def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        self.events.append(("start", message))
        for _ in range(3):
            await gen.moment
        self.events.append(("end", message))
        await self.write_message(message)


class ClosesOnMessage(Recorded):
    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        self.events.append(("message", message))
        code, _, reason = message.partition(" ")
        self.close(int(code) if code else None, reason or None)


class Subprotocols(Recorded):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        self.events.append(("offered", subprotocols))
        return "chat" if "chat" in subprotocols else None


class WrongSubprotocol(Recorded):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "not-offered"


class Compressed(Recorded):
    def get_compression_options(self) -> dict[str, Any] | None:
        return {}


class SmallMessages(Recorded):
    @property
    def max_message_size(self) -> int:
        return 1000


class Pings(Recorded):
    @property
    def ping_interval(self) -> float | None:
        return 0.05

    @property
    def ping_timeout(self) -> float | None:
        return 0.05


class Raises(Recorded):
    def on_message(self, message: str | bytes) -> None:
        raise ZeroDivisionError("on purpose")


class SetsCookie(Recorded):
    def prepare(self) -> None:
        self.set_header("X-Before", "upgrade")
        self.set_cookie("c", "1")


class AfterUpgrade(Recorded):
    def open(self, *args: str, **kwargs: str) -> None:
        for method in ("write", "finish", "flush", "set_status", "redirect"):
            try:
                getattr(self, method)("x")
            except RuntimeError as e:
                self.events.append((method, str(e)))


class Producer(Recorded):
    """Sends ``count`` messages of ``size`` bytes as fast as the futures allow."""

    async def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        assert isinstance(message, str)
        count, size = map(int, message.split())
        assert self.ws_connection is not None and self.ws_connection.stream is not None
        stream = self.ws_connection.stream
        payload = b"x" * size
        most = 0
        for _ in range(count):
            await self.write_message(payload, binary=True)
            most = max(most, stream._write_buffer_size)
        self.events.append(("most queued", most))
        self.write_message("done")


class BigWriter(Recorded):
    """Writes 16 MiB without waiting and keeps the future."""

    def on_message(self, message: str | bytes) -> None:
        self.events.append(("future", self.write_message(b"x" * (16 * 1024 * 1024), binary=True)))


class ExtendsGet(Recorded):
    """The Tornado idiom: a check, then ``await super().get()``."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.get_query_argument("token", None) != "ok":
            raise web.HTTPError(401)
        await super().get(*args, **kwargs)


class ClosesInOpen(Recorded):
    def open(self, *args: str, **kwargs: str) -> None:
        self.close(4001, "not today")


class AsyncPrepare(Recorded):
    async def prepare(self) -> None:  # type: ignore[override]
        await gen.sleep(0.01)  # the handshake's packet is parsed meanwhile


class PingsClient(Recorded):
    """Pings the client with the message's text as data."""

    def on_message(self, message: str | bytes) -> None:
        self.events.append(("message", message))
        self.ping(message)


class Silent(Recorded):
    def on_message(self, message: str | bytes) -> None:
        self.events.append(("message", message))


@pytest.fixture
def app(state: State) -> web.Application:
    routes: list[Any] = [
        (r"/echo/(.*)", Recorded),
        (r"/echo", Recorded),
        (r"/async-open", AsyncOpen),
        (r"/slow", SlowMessages),
        (r"/closes", ClosesOnMessage),
        (r"/subprotocols", Subprotocols),
        (r"/wrong-subprotocol", WrongSubprotocol),
        (r"/compressed", Compressed),
        (r"/small", SmallMessages),
        (r"/pings", Pings),
        (r"/raises", Raises),
        (r"/cookie", SetsCookie),
        (r"/after-upgrade", AfterUpgrade),
        (r"/producer", Producer),
        (r"/pings-client", PingsClient),
        (r"/silent", Silent),
        (r"/async-prepare", AsyncPrepare),
        (r"/big-writer", BigWriter),
        (r"/extends-get", ExtendsGet),
        (r"/closes-in-open", ClosesInOpen),
    ]
    return web.Application([(path, cls, {"state": state}) for path, cls in routes])


@pytest.fixture
def ws_url(http_server: Any, base_url: str) -> str:
    return "ws" + base_url[len("http") :]


@pytest.fixture
def port(http_server: Any, http_port: int) -> int:
    return http_port


async def connect(url: str, **kwargs: Any) -> WebSocketClientConnection:
    return await gen.with_timeout(
        IOLoop.current().time() + TIMEOUT, websocket_connect(url, **kwargs)
    )


async def within(awaitable: Awaitable[Any]) -> Any:
    return await gen.with_timeout(IOLoop.current().time() + TIMEOUT, awaitable)


# -- raw sockets -------------------------------------------------------------------------

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(path: str, port: int, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked frame, as a client sends it."""
    mask = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0xFE, n)
    else:
        head = struct.pack("!BBQ", b0, 0xFF, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def read_frame(stream: IOStream) -> tuple[int, bytes]:
    """A server's (unmasked) frame: (first byte, payload)."""
    b0, b1 = await stream.read_bytes(2)
    n = b1 & 0x7F
    assert not b1 & 0x80, "a server frame must not be masked"
    if n == 126:
        (n,) = struct.unpack("!H", await stream.read_bytes(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await stream.read_bytes(8))
    return b0, await stream.read_bytes(n) if n else b""


async def raw_connect(port: int, rcvbuf: int | None = None) -> IOStream:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    stream = IOStream(sock)
    await stream.connect(("127.0.0.1", port))
    return stream


async def raw_open(port: int, path: str, extra: bytes = b"", rcvbuf: int | None = None) -> IOStream:
    """A raw client past the handshake (``extra``: sent in the same write)."""
    stream = await raw_connect(port, rcvbuf)
    await stream.write(handshake(path, port) + extra)
    head = await within(stream.read_until(b"\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 101 "), head
    return stream


def plain_request(port: int, path: str, headers: dict[str, str], method: str = "GET") -> Any:
    """``http.client``'s answer (run in a thread): (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


async def in_thread(fn: Any, *args: Any) -> Any:
    return await within(asyncio.get_running_loop().run_in_executor(None, fn, *args))


# -- echo --------------------------------------------------------------------------------


async def test_echo_text_binary_and_dict(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo")
    conn.write_message("héllo")
    assert await within(conn.read_message()) == "héllo"
    conn.write_message(b"\x00\xff" * 100, binary=True)
    assert await within(conn.read_message()) == b"\x00\xff" * 100
    conn.write_message({"a": [1, "</script>"]})
    assert await within(conn.read_message()) == '{"a": [1, "<\\/script>"]}'
    big = "z" * 70000  # a 64-bit length
    conn.write_message(big)
    assert await within(conn.read_message()) == big
    conn.close()
    assert await within(conn.read_message()) is None
    await within(state.closed.wait())
    assert state.events[0] == ("open", ())
    assert [e[1] for e in state.events if e[0] == "message"][:2] == ["héllo", b"\x00\xff" * 100]


async def test_open_gets_the_path_groups(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo/room1")
    conn.write_message("x")
    assert await within(conn.read_message()) == "x"
    assert state.events[0] == ("open", ("room1",))
    conn.close()
    await within(state.closed.wait())


async def test_async_open_is_awaited_before_the_first_message(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/async-open")
    conn.write_message("first")  # sent while open still sleeps
    assert await within(conn.read_message()) == "first"
    assert state.events[:3] == [("opening",), ("open", ()), ("message", "first")]
    conn.close()
    await within(state.closed.wait())


async def test_async_on_message_handles_messages_in_order(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/slow")
    for i in range(50):
        conn.write_message(str(i))
    got = [await within(conn.read_message()) for _ in range(50)]
    assert got == [str(i) for i in range(50)]
    handled = [e for e in state.events if e[0] in ("start", "end")]
    # Each message is finished before the next one starts.
    assert handled == [(kind, str(i)) for i in range(50) for kind in ("start", "end")]
    conn.close()
    await within(state.closed.wait())


async def test_async_for_yields_messages_until_the_close(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/closes")
    conn.write_message("1000 done")
    got = [message async for message in conn]
    assert got == []
    assert conn.close_code == 1000 and conn.close_reason == "done"
    # read_message keeps answering None after the close.
    assert await within(conn.read_message()) is None


async def test_a_close_reason_is_cut_to_what_a_control_frame_holds(
    ws_url: str, state: State
) -> None:
    # 100 two-byte characters: 200 bytes, where a Close frame has room for 123
    # after its code. The reason is cut at a character boundary, so the
    # client (strict about both limits) takes the Close as a valid one.
    conn = await connect(ws_url + "/closes")
    conn.write_message("4000 " + "é" * 100)
    assert await within(conn.read_message()) is None
    assert conn.close_code == 4000
    assert conn.close_reason == "é" * 61  # 122 bytes: a 62nd would be 124
    await within(state.closed.wait())


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 2000, 5000])
async def test_close_with_a_code_no_endpoint_may_send_raises(
    ws_url: str, state: State, code: int
) -> None:
    conn = await connect(ws_url + "/echo")
    with pytest.raises(ValueError, match="not a close code"):
        conn.close(code)
    # Nothing was sent: the connection still works, and closes as asked.
    conn.write_message("still open")
    assert await within(conn.read_message()) == "still open"
    conn.close(4000)
    assert await within(conn.read_message()) is None
    assert conn.close_code == 4000
    await within(state.closed.wait())


async def test_on_message_callback_gets_messages_then_none(ws_url: str, state: State) -> None:
    got: list[Any] = []
    done = Event()

    def on_message(message: str | bytes | None) -> None:
        got.append(message)
        if message is None:
            done.set()

    conn = await connect(ws_url + "/echo", on_message_callback=on_message)
    conn.write_message("a")
    conn.write_message("b")
    while len(got) < 2:
        await gen.moment
    conn.close()
    await within(done.wait())
    assert got == ["a", "b", None]


async def test_callback_argument_gets_the_connection_future(ws_url: str, state: State) -> None:
    done = Event()
    futures: list[Any] = []

    def callback(future: Any) -> None:
        futures.append(future)
        done.set()

    with pytest.warns(DeprecationWarning, match="callback argument to websocket_connect"):
        websocket_connect(ws_url + "/echo", callback=callback)
    await within(done.wait())
    conn = futures[0].result()
    assert isinstance(conn, WebSocketClientConnection)
    conn.close()
    await within(state.closed.wait())


async def test_a_frame_in_the_handshakes_packet_is_not_lost(port: int, state: State) -> None:
    # The HTTP server must hand the bytes after the request to the
    # WebSocket, not parse them as HTTP (they would make a 400).
    frame = client_frame(0x1, b"early")
    stream = await raw_open(port, "/echo", extra=frame + client_frame(0x1, b"second"))
    assert await within(read_frame(stream)) == (0x81, b"early")
    assert await within(read_frame(stream)) == (0x81, b"second")
    stream.write(client_frame(0x8, struct.pack("!H", 1000)))
    assert await within(read_frame(stream)) == (0x88, struct.pack("!H", 1000))
    assert await within(stream.read_until_close()) == b""
    await within(state.closed.wait())
    assert [e for e in state.events if e[0] == "message"] == [
        ("message", "early"),
        ("message", "second"),
    ]


@pytest.mark.parametrize("path", ["/async-prepare", "/async-open"])
async def test_a_frame_in_the_handshakes_packet_with_an_async_handler(
    port: int, state: State, path: str
) -> None:
    # Here the upgrade is answered after the HTTP connection has parsed the
    # whole packet: it must keep what followed the request for the WebSocket.
    stream = await raw_open(port, path, extra=client_frame(0x1, b"early"))
    assert await within(read_frame(stream)) == (0x81, b"early")
    stream.close()
    await within(state.closed.wait())


async def test_upgrade_with_compress_response(io_loop: IOLoop, state: State) -> None:
    # The application's output transforms (gzip) leave the 101 alone.
    app = web.Application([(r"/echo", Recorded, {"state": state})], compress_response=True)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        stream = await raw_connect(port)
        await stream.write(
            handshake("/echo", port, "Accept-Encoding: gzip\r\n") + client_frame(0x1, b"hi")
        )
        head = await within(stream.read_until(b"\r\n\r\n"))
        assert head.startswith(b"HTTP/1.1 101 ") and b"gzip" not in head.lower()
        assert await within(read_frame(stream)) == (0x81, b"hi")
        stream.close()
        await within(state.closed.wait())
    finally:
        server.stop()


# -- closing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"), [(1000, "bye"), (1001, ""), (4000, "custom é"), (None, None)]
)
async def test_client_close_code_and_reason_reach_the_server(
    ws_url: str, state: State, code: int | None, reason: str | None
) -> None:
    conn = await connect(ws_url + "/echo")
    conn.close(code, reason)
    assert await within(conn.read_message()) is None
    await within(state.closed.wait())
    handler = state.handlers[0]
    assert handler.close_code == code
    assert handler.close_reason == (reason or None)  # a code alone: None, as Tornado
    # The server echoes the code.
    assert conn.close_code == code
    assert [e for e in state.events if e[0] == "close"] == [("close", code, reason or None)]


async def test_reason_without_code_is_1000(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo")
    conn.close(reason="only a reason")
    assert await within(conn.read_message()) is None
    await within(state.closed.wait())
    assert state.handlers[0].close_code == 1000
    assert state.handlers[0].close_reason == "only a reason"


@pytest.mark.parametrize(
    ("message", "code", "reason"), [("1001 going", 1001, "going"), ("", None, "")]
)
async def test_server_initiated_close(
    ws_url: str, state: State, message: str, code: int | None, reason: str
) -> None:
    conn = await connect(ws_url + "/closes")
    conn.write_message(message)
    assert await within(conn.read_message()) is None
    assert conn.close_code == code
    if code is not None:
        assert conn.close_reason == reason
    await within(state.closed.wait())
    # The client echoed the code; on_close ran once.
    assert state.handlers[0].close_code == code
    assert len([e for e in state.events if e[0] == "close"]) == 1


async def test_server_closes_tcp_after_the_close_handshake(port: int, state: State) -> None:
    stream = await raw_open(port, "/closes")
    stream.write(client_frame(0x1, b"1000 x"))
    assert await within(read_frame(stream)) == (0x88, struct.pack("!H", 1000) + b"x")
    # Data frames after our Close are discarded, then our Close ends it.
    stream.write(client_frame(0x1, b"ignored") + client_frame(0x8, struct.pack("!H", 1000)))
    assert await within(stream.read_until_close()) == b""
    await within(state.closed.wait())
    assert [e[1] for e in state.events if e[0] == "message"] == ["1000 x"]


async def test_write_after_close_raises(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo")
    conn.close()
    with pytest.raises(WebSocketClosedError):
        conn.write_message("late")
    with pytest.raises(WebSocketClosedError):
        conn.ping(b"late")
    assert await within(conn.read_message()) is None
    await within(state.closed.wait())
    handler = state.handlers[0]
    with pytest.raises(WebSocketClosedError):
        handler.write_message("late")
    with pytest.raises(WebSocketClosedError):
        handler.ping(b"late")


async def test_on_close_runs_once_when_the_client_vanishes(port: int, state: State) -> None:
    stream = await raw_open(port, "/echo")
    stream.write(client_frame(0x1, b"hi"))
    assert await within(read_frame(stream)) == (0x81, b"hi")
    stream.write(client_frame(0x1, b"cut short")[:5])  # then gone mid-frame
    await gen.moment
    stream.close()
    await within(state.closed.wait())
    for _ in range(3):
        await gen.moment
    assert [e for e in state.events if e[0] == "close"] == [("close", None, None)]
    assert [e[1] for e in state.events if e[0] == "message"] == ["hi"]


async def test_methods_after_the_upgrade_raise(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/after-upgrade")
    conn.close()
    await within(state.closed.wait())
    message = "Method not supported for Web Sockets"
    assert state.events[:5] == [
        ("write", message),
        ("finish", message),
        ("flush", message),
        ("set_status", message),
        ("redirect", message),
    ]


async def test_exception_in_on_message_is_logged_and_closes_with_1011(
    ws_url: str, state: State, reactor_log: LogRecords
) -> None:
    conn = await connect(ws_url + "/raises")
    with ExpectLog("reactor.application", "Uncaught exception"):
        conn.write_message("boom")
        assert await within(conn.read_message()) is None
    assert conn.close_code == 1011
    await within(state.closed.wait())


# -- the handshake's refusals ------------------------------------------------------------

GOOD = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": KEY,
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Upgrade": "h2c"}, 400),
        ({"Upgrade": None}, 400),
        ({"Connection": "keep-alive"}, 400),
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Version": None}, 426),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": "dG9vIHNob3J0"}, 400),  # base64 of 9 bytes
        ({"Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),  # not base64
        ({"Origin": "http://evil.example"}, 403),
    ],
)
async def test_handshake_refusals(
    port: int, state: State, change: dict[str, str | None], status: int
) -> None:
    headers = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    got, answer_headers, body = await in_thread(plain_request, port, "/echo", headers)
    assert got == status, body
    if status == 426:
        assert answer_headers["sec-websocket-version"] == "13"
    assert state.events == []  # open never ran


async def test_post_is_405(port: int, state: State) -> None:
    got, _, _ = await in_thread(plain_request, port, "/echo", GOOD, "POST")
    assert got == 405


async def test_tokens_in_lists_are_accepted(port: int, state: State) -> None:
    stream = await raw_connect(port)
    request = (
        handshake("/echo", port)
        .replace(b"Connection: Upgrade", b"Connection: keep-alive, UPGRADE")
        .replace(b"Upgrade: websocket", b"Upgrade: foo, WebSocket")
    )
    await stream.write(request)
    head = await within(stream.read_until(b"\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 101 ")
    accept = WebSocketProtocol13.compute_accept_value(KEY)
    assert f"\r\nsec-websocket-accept: {accept}\r\n".lower().encode() in head.lower()
    stream.close()
    await within(state.closed.wait())


async def test_http_1_0_is_refused(port: int, state: State) -> None:
    stream = await raw_connect(port)
    await stream.write(handshake("/echo", port).replace(b"HTTP/1.1", b"HTTP/1.0"))
    head = await within(stream.read_until(b"\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 400 ")
    stream.close()


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        ("http://127.0.0.1:{port}", "127.0.0.1:{port}", True),
        ("HTTP://Example.COM:{port}", "example.com:{port}", True),
        ("http://127.0.0.1:1", "127.0.0.1:{port}", False),
        ("http://evil.example", "127.0.0.1:{port}", False),
    ],
)
async def test_check_origin(port: int, state: State, origin: str, host: str, ok: bool) -> None:
    request = HTTPRequest(
        f"ws://127.0.0.1:{port}/echo",
        headers={"Origin": origin.format(port=port), "Host": host.format(port=port)},
    )
    if ok:
        conn = await connect(request)  # type: ignore[arg-type]
        conn.close()
        await within(state.closed.wait())
    else:
        with pytest.raises(HTTPClientError) as info:
            await connect(request)  # type: ignore[arg-type]
        assert info.value.code == 403


async def test_the_callers_request_is_left_as_it_was(port: int, state: State) -> None:
    request = HTTPRequest(f"ws://127.0.0.1:{port}/echo", headers={"X-Mine": "1"})
    conn = await connect(request)  # type: ignore[arg-type]
    conn.write_message("hello")
    assert await within(conn.read_message()) == "hello"
    conn.close()
    await within(state.closed.wait())
    # The client's own defaults (timeouts, handshake headers) are not written into it.
    assert request.connect_timeout is None and request.request_timeout is None
    assert dict(request.headers) == {"X-Mine": "1"}


async def test_headers_set_before_the_upgrade_go_out_in_the_101(port: int, state: State) -> None:
    stream = await raw_connect(port)
    await stream.write(handshake("/cookie", port))
    head = await within(stream.read_until(b"\r\n\r\n"))
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nX-Before: upgrade\r\n" in head
    assert b"\r\nSet-Cookie: c=1" in head
    assert b"Content-Type" not in head and b"Content-Length" not in head
    stream.close()
    await within(state.closed.wait())


# -- subprotocols ------------------------------------------------------------------------


async def test_selected_subprotocol(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/subprotocols", subprotocols=["other", "chat"])
    assert conn.selected_subprotocol == "chat"
    conn.write_message("x")
    await within(conn.read_message())
    assert state.handlers[0].selected_subprotocol == "chat"
    assert state.events[0] == ("offered", ["other", "chat"])
    conn.close()
    await within(state.closed.wait())


async def test_no_subprotocol_selected(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/subprotocols", subprotocols=["other"])
    assert conn.selected_subprotocol is None
    conn.close()
    await within(state.closed.wait())


async def test_a_subprotocol_not_offered_is_a_500(ws_url: str, state: State) -> None:
    with (
        ExpectLog("reactor.application", "Uncaught exception"),
        ExpectLog("reactor.access", "500"),
        pytest.raises(HTTPClientError) as info,
    ):
        await connect(ws_url + "/wrong-subprotocol", subprotocols=["chat"])
    assert info.value.code == 500


# -- errors of the client ----------------------------------------------------------------


async def test_non_101_answer_is_an_http_client_error(ws_url: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await connect(ws_url + "/no-such-path")
    assert info.value.code == 404


# -- pings -------------------------------------------------------------------------------


async def test_ping_with_data_gets_a_pong_and_on_ping(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/pings-client")
    conn.write_message("from server")  # the server pings us; our client answers
    while ("pong", b"from server") not in state.events:
        await gen.moment
    conn.ping(b"from client")
    while ("ping", b"from client") not in state.events:
        await gen.moment
    with pytest.raises(ValueError):
        conn.ping(b"x" * 126)
    conn.close()
    await within(state.closed.wait())


async def test_server_answers_a_ping_with_its_data(port: int, state: State) -> None:
    stream = await raw_open(port, "/echo")
    stream.write(client_frame(0x9, b"are you there"))
    assert await within(read_frame(stream)) == (0x8A, b"are you there")
    stream.close()
    await within(state.closed.wait())
    assert ("ping", b"are you there") in state.events


async def test_ping_interval_keeps_a_live_connection_open(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/pings")  # pings every 0.05 s, 0.05 s to answer
    while len([e for e in state.events if e[0] == "pong"]) < 3:
        await gen.moment
    conn.write_message("still here")
    assert await within(conn.read_message()) == "still here"
    assert not state.closed.is_set()
    conn.close()
    await within(state.closed.wait())


async def test_ping_timeout_closes_a_dead_peer(port: int, state: State) -> None:
    # A client that completes the handshake and then never answers.
    stream = await raw_open(port, "/pings")
    b0, _ = await within(read_frame(stream))
    assert b0 == 0x89  # a ping
    await within(state.closed.wait())  # on_close, without the peer's help
    b0, payload = await within(read_frame(stream))
    assert (b0, payload) == (0x88, struct.pack("!H", 1011) + b"ping timeout")
    assert await within(stream.read_until_close()) == b""


async def test_client_ping_interval_and_timeout(io_loop: IOLoop) -> None:
    # Our client's pings against a server that never answers them.
    server = ScriptedServer()
    conn = await connect(f"ws://127.0.0.1:{server.port}/", ping_interval=0.05, ping_timeout=0.05)
    assert await within(conn.read_message()) is None
    assert conn.close_code is None
    received = await server.close()
    # A masked ping (no data: 2 + 4 bytes), then a masked Close 1011.
    assert received[0] == 0x89 and received[1] == 0x80
    assert received[6] == 0x88


# -- settings and limits -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/small"])
async def test_max_message_size_per_handler(ws_url: str, state: State, path: str) -> None:
    conn = await connect(ws_url + path)
    conn.write_message("x" * 1000)
    assert await within(conn.read_message()) == "x" * 1000
    conn.write_message("x" * 1001)
    assert await within(conn.read_message()) is None
    assert conn.close_code == 1009
    await within(state.closed.wait())
    assert [len(e[1]) for e in state.events if e[0] == "message"] == [1000]


async def test_settings_apply_to_every_handler(io_loop: IOLoop, state: State) -> None:
    app = web.Application(
        [(r"/echo", Recorded, {"state": state})],
        websocket_max_message_size=100,
        websocket_ping_interval=0.05,
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        conn = await connect(f"ws://127.0.0.1:{port}/echo")
        while not [e for e in state.events if e[0] == "pong"]:
            await gen.moment  # the setting's pings, answered by our client
        handler = state.handlers[0]
        assert handler.ping_interval == 0.05 and handler.max_message_size == 100
        conn.write_message("y" * 101)
        assert await within(conn.read_message()) is None
        assert conn.close_code == 1009
        await within(state.closed.wait())
    finally:
        server.stop()


async def test_client_max_message_size(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo", max_message_size=10)
    conn.write_message("0123456789")
    assert await within(conn.read_message()) == "0123456789"
    conn.write_message("0123456789a")  # the echo is too big for the client
    assert await within(conn.read_message()) is None
    await within(state.closed.wait())
    assert state.handlers[0].close_code == 1009


async def test_16_mib_message_is_echoed_when_allowed(io_loop: IOLoop, state: State) -> None:
    app = web.Application(
        [(r"/echo", Recorded, {"state": state})], websocket_max_message_size=16 * 1024 * 1024
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        conn = await connect(f"ws://127.0.0.1:{port}/echo", max_message_size=16 * 1024 * 1024)
        big = os.urandom(16 * 1024 * 1024)
        conn.write_message(big, binary=True)
        assert await within(conn.read_message()) == big
        conn.close()
        await within(state.closed.wait())
    finally:
        server.stop()


async def test_write_futures_pace_a_fast_producer(ws_url: str, state: State) -> None:
    # The server awaits each write's future: what it has queued never grows
    # past one frame, however slowly we read.
    conn = await connect(ws_url + "/producer")
    conn.write_message("100 65536")
    for _ in range(100):
        assert await within(conn.read_message()) == b"x" * 65536
        await gen.moment
    assert await within(conn.read_message()) == "done"
    (most,) = [e[1] for e in state.events if e[0] == "most queued"]
    assert most <= 65536 + 10
    conn.close()
    await within(state.closed.wait())


async def test_client_without_reads_pauses_the_server(ws_url: str, state: State) -> None:
    # Unread messages stop our client reading, so the server's writes wait
    # for the kernel's buffers (the futures do not resolve).
    conn = await connect(ws_url + "/producer")
    producer = state.handlers[0]
    assert producer.ws_connection is not None and conn.protocol is not None
    stream = producer.ws_connection.stream
    assert stream is not None and conn.protocol.stream is not None
    # Small kernel buffers (no autotuning): 6 MiB cannot fit in them.
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    conn.protocol.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.write_message("100 65536")
    while not stream.writing():
        await gen.moment
    for _ in range(20):
        await gen.moment
    assert "most queued" not in [e[0] for e in state.events]  # still waiting on a future
    got = 0
    while await within(conn.read_message()) != "done":
        got += 1
    assert got == 100
    conn.close()
    await within(state.closed.wait())


# -- permessage-deflate ------------------------------------------------------------------


async def test_deflate_negotiated_and_working_both_ways(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/compressed", compression_options={})
    assert conn.headers is not None
    assert conn.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    for message in ["hello", "hello " * 10000, b"\x00" * 100000, ""]:
        conn.write_message(message, binary=isinstance(message, bytes))
        assert await within(conn.read_message()) == message
    conn.close()
    await within(state.closed.wait())


async def test_client_without_compression_options_gets_none(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/compressed")
    assert conn.headers is not None and "Sec-WebSocket-Extensions" not in conn.headers
    conn.write_message("plain")
    assert await within(conn.read_message()) == "plain"
    conn.close()
    await within(state.closed.wait())


async def test_server_without_compression_declines_an_offer(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/echo", compression_options={})
    assert conn.headers is not None and "Sec-WebSocket-Extensions" not in conn.headers
    conn.write_message("plain")
    assert await within(conn.read_message()) == "plain"
    conn.close()
    await within(state.closed.wait())


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        (
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        # Declined offers (RFC 7692 section 5), then one we take.
        ("permessage-deflate; foo=1, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate", "permessage-deflate"),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", None),
        ("x-webkit-deflate-frame", None),
    ],
)
async def test_deflate_offers(port: int, state: State, offer: str, answer: str | None) -> None:
    stream = await raw_connect(port)
    await stream.write(handshake("/compressed", port, f"Sec-WebSocket-Extensions: {offer}\r\n"))
    head = (await within(stream.read_until(b"\r\n\r\n"))).decode()
    assert head.startswith("HTTP/1.1 101 ")
    lines = [
        line for line in head.split("\r\n") if line.lower().startswith("sec-websocket-extensions")
    ]
    assert [line.split(": ", 1)[1] for line in lines] == ([answer] if answer else [])
    stream.close()
    await within(state.closed.wait())


async def test_deflate_frames_on_the_wire(port: int, state: State) -> None:
    import zlib

    stream = await raw_connect(port)
    await stream.write(
        handshake("/compressed", port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    )
    await within(stream.read_until(b"\r\n\r\n"))
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(b"abc" * 100) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frame = bytearray(client_frame(0x1, data[:-4]))
    frame[0] |= 0x40  # RSV1: compressed
    stream.write(bytes(frame))
    b0, payload = await within(read_frame(stream))
    assert b0 == 0xC1  # FIN, RSV1, text
    assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") == b"abc" * 100
    assert state.events[1] == ("message", "abc" * 100)
    stream.write(client_frame(0x9, b"p"))  # control frames are never compressed
    assert await within(read_frame(stream)) == (0x8A, b"p")
    stream.close()
    await within(state.closed.wait())


async def test_inflating_is_bounded(port: int, state: State) -> None:
    import zlib

    stream = await raw_connect(port)
    await stream.write(
        handshake("/compressed", port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    )
    await within(stream.read_until(b"\r\n\r\n"))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(b"\x00" * (11 * 1024 * 1024)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 20000  # 11 MiB of zeros, past the default 10 MiB
    frame = bytearray(client_frame(0x2, bomb[:-4]))
    frame[0] |= 0x40
    stream.write(bytes(frame))
    assert await within(read_frame(stream)) == (
        0x88,
        struct.pack("!H", 1009) + b"message too big once inflated",
    )
    await within(state.closed.wait())
    assert [e for e in state.events if e[0] == "message"] == []


# -- TLS and many connections ------------------------------------------------------------


async def test_wss(io_loop: IOLoop, state: State, tls_certificate: TLSCertificate) -> None:
    app = web.Application([(r"/echo", Recorded, {"state": state})])
    sock, port = bind_unused_port()
    server = HTTPServer(app, ssl_options=tls_certificate.server_context())
    server.add_sockets([sock])
    try:
        request = HTTPRequest(f"wss://localhost:{port}/echo", ca_certs=str(tls_certificate.ca_file))
        conn = await connect(request)  # type: ignore[arg-type]
        conn.write_message("secret")
        assert await within(conn.read_message()) == "secret"
        conn.close()
        assert await within(conn.read_message()) is None
        await within(state.closed.wait())
        # Without the CA, the certificate is refused.
        with pytest.raises(ssl.SSLError):
            await connect(f"wss://localhost:{port}/echo")
    finally:
        server.stop()


def test_a_thousand_concurrent_connections(io_loop: IOLoop, state: State) -> None:
    """1,000 WebSockets at once, both ends in this process (a backend that
    can only watch fds below FD_SETSIZE gets as many as it can hold).
    Bounded by 60 s, as test_tcp's: a loaded 2-core machine is slow."""
    limit = getattr(getattr(io_loop, "_poller", None), "max_fd", None)
    count = 1000 if limit is None else (limit - 128) // 2
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * count + 200:
        pytest.skip(f"needs {2 * count + 200} fds, the limit is {soft}")

    async def run() -> None:
        app = web.Application([(r"/echo", Recorded, {"state": state})])
        sock, port = bind_unused_port()
        server = HTTPServer(app)
        server.add_sockets([sock])
        conns: list[WebSocketClientConnection] = []
        try:

            async def one(i: int) -> Any:
                conn = await websocket_connect(f"ws://127.0.0.1:{port}/echo")
                conns.append(conn)
                conn.write_message(str(i))
                return await conn.read_message()

            replies = await gen.multi([one(i) for i in range(count)])
            assert replies == [str(i) for i in range(count)]
            assert len(state.handlers) == count
        finally:
            for conn in conns:
                conn.close()
            for conn in conns:
                await conn.read_message()
            server.stop()

    io_loop.run_sync(run, timeout=60)


# -- unmasking ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 1023, 1024, 1025, 4099, 70000])
def test_pure_python_unmasking_matches_the_definition(size: int) -> None:
    mask = os.urandom(4)
    data = os.urandom(size)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert websocket._mask_python(data, mask) == expected
    assert websocket._mask_python(memoryview(data), mask) == expected
    assert websocket._mask(data, mask) == expected


async def test_echo_with_the_pure_python_unmasking(
    ws_url: str, state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The path used when websockets' C helper is not installed.
    monkeypatch.setattr(websocket, "_mask", websocket._mask_python)
    conn = await connect(ws_url + "/echo")
    for size in (10, 2000, 70000):
        conn.write_message(b"%d" % size * size, binary=True)
        assert await within(conn.read_message()) == b"%d" % size * size
    conn.close()
    await within(state.closed.wait())


async def test_a_peer_that_pings_without_reading_is_not_buffered_for(
    port: int, state: State
) -> None:
    # Each ping is answered: a peer that sends pings and reads nothing would
    # grow the server's write buffer by every pong. While its answers wait,
    # the server answers only the latest ping (or stops reading).
    stream = await raw_open(port, "/echo", rcvbuf=65536)
    while not state.handlers:
        await gen.moment
    protocol = state.handlers[0].ws_connection
    assert protocol is not None and protocol.stream is not None
    server_stream = protocol.stream
    # Small kernel buffers (no autotuning): 2 MiB of pongs cannot fit in them.
    server_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    pings = client_frame(0x9, b"p" * 125) * 16000  # 2 MiB of pings
    stream.write(pings)
    # Until the server stops reading, or has read every ping (events: the
    # open, then one per ping).
    while (protocol._reading or not server_stream.writing()) and len(state.events) < 16001:
        await gen.moment
    assert server_stream._write_buffer_size < 512 * 1024
    stream.close()
    await within(state.closed.wait())


# -- the client's connection options -----------------------------------------------------


async def test_resolver_is_used(port: int, state: State) -> None:
    resolver = OverrideResolver(DefaultExecutorResolver(), {"chat.invalid": "127.0.0.1"})
    try:
        conn = await connect(f"ws://chat.invalid:{port}/echo", resolver=resolver)
        conn.write_message("resolved")
        assert await within(conn.read_message()) == "resolved"
        conn.close()
        await within(state.closed.wait())
    finally:
        resolver.close()


async def test_request_timeout_bounds_the_handshake(io_loop: IOLoop) -> None:
    # A server that accepts the connection and never answers the handshake.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/", request_timeout=0.05)
        with pytest.raises(HTTPTimeoutError):
            await connect(request)  # type: ignore[arg-type]
    finally:
        listener.close()


async def test_read_message_callback(ws_url: str, state: State) -> None:
    done = Event()
    got: list[Any] = []

    def callback(future: Any) -> None:
        got.append(future.result())
        done.set()

    conn = await connect(ws_url + "/echo")
    conn.write_message("via callback")
    conn.read_message(callback)
    await within(done.wait())
    assert got == ["via callback"]
    conn.close()
    await within(state.closed.wait())


def test_a_ping_timeout_above_the_interval_is_capped_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, reactor_log: LogRecords
) -> None:
    monkeypatch.setattr(websocket, "_seen_log_messages", set())
    for _ in range(3):  # as for three connections
        protocol = WebSocketProtocol13(None, False, websocket._WebSocketParams(30, 40))
        assert protocol.ping_interval == 30
        assert protocol.ping_timeout == 30
    assert WebSocketProtocol13(None, False, websocket._WebSocketParams(30)).ping_timeout == 30
    assert WebSocketProtocol13(None, False, websocket._WebSocketParams(30, 0)).ping_timeout == 0
    assert WebSocketProtocol13(None, False, websocket._WebSocketParams()).ping_interval == 0
    warnings = [w for w in reactor_log.warnings() if "websocket_ping_timeout" in w]
    assert len(warnings) == 1, warnings


async def test_write_future_fails_with_websocket_closed_error(port: int, state: State) -> None:
    stream = await raw_open(port, "/big-writer")
    stream.write(client_frame(0x1, b"go"))
    while not [e for e in state.events if e[0] == "future"]:
        await gen.moment
    ((_, future),) = [e for e in state.events if e[0] == "future"]
    assert not future.done()  # 16 MiB do not fit in the kernel's buffers
    stream.close()  # gone without reading them
    with pytest.raises(WebSocketClosedError):
        await within(future)
    await within(state.closed.wait())


async def test_a_get_that_awaits_super_get(ws_url: str, state: State) -> None:
    with ExpectLog("reactor.access", "401"), pytest.raises(HTTPClientError) as info:
        await connect(ws_url + "/extends-get")
    assert info.value.code == 401
    conn = await connect(ws_url + "/extends-get?token=ok")
    conn.write_message("in")
    assert await within(conn.read_message()) == "in"
    conn.close()
    await within(state.closed.wait())


class ScriptedServer:
    """Answers one handshake with a 101 and ``extra`` headers (the right
    accept value unless ``accept`` is given), then reads until the close."""

    def __init__(
        self, extra: str = "", accept: str | None = None, upgrade: str = "websocket"
    ) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.extra = extra
        self.accept = accept
        self.upgrade = upgrade
        self.read_bytes: int | None = None
        self.task = asyncio.ensure_future(self._serve())

    async def _serve(self) -> bytes:
        sock, _ = await asyncio.get_running_loop().sock_accept(self.listener)
        stream = IOStream(sock)
        head = (await stream.read_until(b"\r\n\r\n")).decode()
        key = next(
            line.split(": ", 1)[1]
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = self.accept or WebSocketProtocol13.compute_accept_value(key)
        await stream.write(
            (
                f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {self.upgrade}\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{self.extra}\r\n"
            ).encode()
        )
        if self.read_bytes is not None:
            data = await stream.read_bytes(self.read_bytes)
            stream.close()
            return data
        return await stream.read_until_close()

    async def close(self) -> bytes:
        try:
            return await within(self.task)  # type: ignore[no-any-return]
        finally:
            self.listener.close()


@pytest.mark.parametrize(
    ("extra", "offer", "match"),
    [
        ("Sec-WebSocket-Extensions: permessage-deflate; foo=1\r\n", {}, "deflate"),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n",
            {},
            "deflate",
        ),
        ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n", {}, "8"),
        (
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            "server_no_context_takeover\r\n",
            {},
            "duplicate",
        ),
        ("Sec-WebSocket-Extensions: x-other\r\n", {}, "x-other"),
        ("Sec-WebSocket-Extensions: permessage-deflate\r\n", None, "unrequested"),
        ("Sec-WebSocket-Protocol: chat\r\n", None, "subprotocol"),
    ],
)
async def test_client_refuses_a_bad_101(
    io_loop: IOLoop, extra: str, offer: dict[str, Any] | None, match: str
) -> None:
    server = ScriptedServer(extra)
    with pytest.raises(WebSocketError, match=match):
        await connect(f"ws://127.0.0.1:{server.port}/", compression_options=offer)
    await server.close()


@pytest.mark.parametrize(("accept", "upgrade"), [("d3Jvbmc=", "websocket"), (None, "h2c")])
async def test_client_refuses_a_wrong_accept_or_upgrade(
    io_loop: IOLoop, accept: str | None, upgrade: str
) -> None:
    server = ScriptedServer(accept=accept, upgrade=upgrade)
    with pytest.raises(WebSocketError, match="Accept" if accept else "Upgrade"):
        await connect(f"ws://127.0.0.1:{server.port}/")
    await server.close()


async def test_client_accepts_what_rfc_7692_lets_a_server_add(io_loop: IOLoop) -> None:
    # server_max_window_bits and the no_context_takeover parameters may be
    # in the answer unasked (RFC 7692 sections 7.1.1 and 7.1.2.1).
    server = ScriptedServer(
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        "client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9\r\n"
    )
    server.read_bytes = 2
    conn = await connect(f"ws://127.0.0.1:{server.port}/", compression_options={})
    conn.write_message("x" * 100)
    received = await server.close()
    assert received[0] == 0xC1  # FIN, RSV1 (compressed), text
    assert received[1] & 0x80 and (received[1] & 0x7F) < 100  # masked, compressed
    assert await within(conn.read_message()) is None


async def test_close_in_open_with_frames_in_the_handshakes_packet(port: int, state: State) -> None:
    # The frames that came with the request are read (and discarded: we are
    # closing) in order, and the client's Close after them ends it.
    stream = await raw_open(
        port,
        "/closes-in-open",
        extra=client_frame(0x1, b"dropped") + client_frame(0x8, struct.pack("!H", 4001)),
    )
    assert await within(read_frame(stream)) == (0x88, struct.pack("!H", 4001) + b"not today")
    assert await within(stream.read_until_close()) == b""
    await within(state.closed.wait())
    assert state.handlers[0].close_code == 4001
    assert [e for e in state.events if e[0] == "message"] == []


async def test_client_sees_a_close_from_open(ws_url: str, state: State) -> None:
    conn = await connect(ws_url + "/closes-in-open")
    assert await within(conn.read_message()) is None
    assert (conn.close_code, conn.close_reason) == (4001, "not today")
    await within(state.closed.wait())
