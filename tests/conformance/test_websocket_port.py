"""Tornado 6.6 WebSocket programs ported to reactor: where a port once behaved
differently, the behaviour Tornado's users rely on, through real sockets on
every backend.

Each test is a regression test for one difference found by running the same
program on Tornado 6.6 and on reactor (imports changed only).
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest

import reactor
from reactor import gen, web
from reactor.concurrent import Future
from reactor.httpclient import HTTPRequest, HTTPStreamClosedError, HTTPTimeoutError
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.locks import Event
from reactor.tcpserver import TCPServer
from reactor.testing import bind_unused_port
from reactor.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect
from tests.util import LogRecords

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

TIMEOUT = 5.0
KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="  # base64 of b"0123456789abcdef"
TRUSTED = "http://trusted.example"


class Events:
    """What the handlers of one test did."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.closed = Event()  # set by on_close


@pytest.fixture
def events() -> Events:
    return Events()


class Plain(WebSocketHandler):
    """Tornado's default ``check_origin``."""

    def initialize(self, events: Events) -> None:
        self.events = events

    def open(self, *args: str, **kwargs: str) -> None:
        self.events.log.append("open")


class OnlyExampleCom(Plain):
    """The override Tornado's docs teach: allow a family of sites."""

    def check_origin(self, origin: str) -> bool:
        self.events.log.append(("check_origin", origin))
        return origin.endswith(".example.com")


@pytest.fixture
def app(events: Events) -> web.Application:
    routes: list[Any] = [
        (r"/plain", Plain),
        (r"/example-com", OnlyExampleCom),
        (r"/no-protocol", NoProtocol),
        (r"/closer", Closer),
        (r"/pings-back", PingsBack),
        (r"/user-agent", RecordsUserAgent),
        (r"/chat", Chat),
        (r"/burst", Burst),
    ]
    return web.Application(
        [(path, cls, {"events": events}) for path, cls in routes],
        trusted_origins={TRUSTED},
    )


async def within(awaitable: Awaitable[Any]) -> Any:
    return await gen.with_timeout(IOLoop.current().time() + TIMEOUT, awaitable)


async def exchange(port: int, path: str, headers: dict[str, str | None]) -> tuple[int, bytes]:
    """Send a WebSocket handshake with ``headers`` added (a value None drops
    a header) over a raw socket: the answer's status and body (empty for a 101)."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **headers,
    }
    head = f"GET {path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in fields.items() if value is not None
    )
    stream = IOStream(socket.socket())
    try:
        await within(stream.connect(("127.0.0.1", port)))
        await stream.write(head.encode() + b"\r\n")
        answer = await within(stream.read_until(b"\r\n\r\n"))
        status = int(answer.split(b" ", 2)[1])
        if status == 101:
            return status, b""
        length = re.search(rb"\r\ncontent-length: *(\d+)\r\n", answer.lower())
        assert length is not None, answer
        size = int(length.group(1))
        return status, await within(stream.read_bytes(size)) if size else b""
    finally:
        stream.close()


# -- cross-origin checks: Tornado 6.6's Sec-Fetch-Site / Origin algorithm --------------


@pytest.mark.parametrize(
    ("path", "headers", "status", "asked"),
    [
        # The browser says same-origin (or a typed URL): accepted, check_origin not asked,
        # even when Host was rewritten by a proxy and no longer matches Origin.
        ("/plain", {"Sec-Fetch-Site": "same-origin", "Origin": "http://front.example"}, 101, None),
        ("/plain", {"Sec-Fetch-Site": "none", "Origin": "http://front.example"}, 101, None),
        # No Sec-Fetch-Site: an Origin naming the Host passes before check_origin,
        # even one that would say no.
        ("/example-com", {"Origin": "http://127.0.0.1:{port}"}, 101, None),
        ("/example-com", {"Origin": "http://a.example.com"}, 101, "http://a.example.com"),
        ("/example-com", {"Origin": "http://evil.example"}, 403, "http://evil.example"),
        # same-site / cross-site: only an Origin check_origin trusts, Host or not.
        ("/plain", {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:{port}"}, 403, ""),
        ("/plain", {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:{port}"}, 403, ""),
        ("/example-com", {"Sec-Fetch-Site": "cross-site"}, 403, None),
        (
            "/example-com",
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://b.example.com"},
            101,
            "http://b.example.com",
        ),
        # The default check_origin is check_trusted_origin: the trusted_origins setting.
        ("/plain", {"Origin": TRUSTED}, 101, None),
        ("/plain", {"Sec-Fetch-Site": "cross-site", "Origin": TRUSTED}, 101, None),
        ("/plain", {"Origin": "http://evil.example"}, 403, None),
    ],
)
async def test_cross_origin_rules_are_tornados(
    http_server: Any,
    http_port: int,
    events: Events,
    path: str,
    headers: dict[str, str],
    status: int,
    asked: str | None,  # the origin check_origin is asked about (None or "": not asked)
) -> None:
    headers = {name: value.format(port=http_port) for name, value in headers.items()}
    got, body = await exchange(http_port, path, headers)
    assert got == status, body
    if status == 403:
        assert body == b"Cross origin websockets not allowed"
    opened = ["open"] if status == 101 else []
    asked_about = [] if not asked else [("check_origin", asked)]
    assert events.log == asked_about + opened


# -- refused handshakes: Tornado's bodies and debug lines ------------------------------


class NoProtocol(Plain):
    def get_websocket_protocol(self) -> None:
        return None


@pytest.fixture
def debug_log(reactor_log: LogRecords) -> Iterator[LogRecords]:
    """``reactor_log`` with reactor.general's DEBUG lines in it."""
    logger = logging.getLogger("reactor.general")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield reactor_log
    finally:
        logger.setLevel(old)


@pytest.mark.parametrize(
    ("path", "headers", "status", "body", "line"),
    [
        ("/plain", {"Sec-WebSocket-Version": "8"}, 426, b"", None),
        ("/plain", {"Sec-WebSocket-Version": None}, 426, b"", None),
        ("/no-protocol", {}, 426, b"", None),
        ("/plain", {"Sec-WebSocket-Key": None}, 400, b"Missing/Invalid WebSocket headers", ""),
        ("/plain", {"Upgrade": "h2c"}, 400, b'Can "Upgrade" only to "WebSocket".', ""),
        ("/plain", {"Connection": "close"}, 400, b'"Connection" must be "Upgrade".', ""),
        (
            "/plain",
            {"Origin": "http://evil.example"},
            403,
            b"Cross origin websockets not allowed",
            "Cross origin websockets not allowed: Origin 'http://evil.example' not allowed",
        ),
    ],
)
async def test_refusals_answer_and_log_as_tornado(
    http_server: Any,
    http_port: int,
    events: Events,
    debug_log: LogRecords,
    path: str,
    headers: dict[str, str | None],
    status: int,
    body: bytes,
    line: str | None,  # the debug line ("": the body's text; None: no line)
) -> None:
    got, answer = await exchange(http_port, path, headers)
    assert (got, answer) == (status, body)
    if status == 426:
        assert answer == b""
    lines = [r.getMessage() for r in debug_log.records if r.name == "reactor.general"]
    lines = [m for m in lines if not m.startswith("new IOLoop")]
    assert lines == ([] if line is None else [line or body.decode()])
    assert events.log == []


# -- close codes and reasons on both sides ---------------------------------------------


class Closer(Plain):
    """Closes with the code and reason the message names ("4001 bye")."""

    def on_message(self, message: str | bytes) -> None:
        assert isinstance(message, str)
        code, _, reason = message.partition(" ")
        self.close(int(code), reason or None)

    def on_close(self) -> None:
        self.events.log.append(("on_close", self.close_code, self.close_reason))
        self.events.closed.set()


@pytest.mark.parametrize(("code", "reason"), [(4002, None), (4002, ""), (1001, "away")])
async def test_a_close_code_without_reason_gives_close_reason_none(
    http_server: Any, base_url: str, events: Events, code: int, reason: str | None
) -> None:
    # The client closes: the server sees its code, and None for an empty reason.
    conn = await within(websocket_connect("ws" + base_url[4:] + "/closer"))
    conn.close(code, reason)
    assert await within(conn.read_message()) is None
    await within(events.closed.wait())
    assert events.log == ["open", ("on_close", code, reason or None)]
    # The server echoed the code alone.
    assert (conn.close_code, conn.close_reason) == (code, None)


async def test_server_close_reason_reaches_the_client_and_the_echo_has_none(
    http_server: Any, base_url: str, events: Events
) -> None:
    conn = await within(websocket_connect("ws" + base_url[4:] + "/closer"))
    conn.write_message("4001 bye now")
    assert await within(conn.read_message()) is None
    assert (conn.close_code, conn.close_reason) == (4001, "bye now")
    await within(events.closed.wait())
    assert events.log == ["open", ("on_close", 4001, None)]


class PingsBack(Plain):
    """Tries a ping the message's length in bytes; answers with what happened."""

    def on_message(self, message: str | bytes) -> None:
        try:
            self.ping(b"x" * int(message))
        except ValueError as e:
            self.write_message(f"ValueError: {e}")
        else:
            self.write_message("sent")


async def test_a_ping_over_125_bytes_raises_tornados_value_error(
    http_server: Any, base_url: str
) -> None:
    conn = await within(websocket_connect("ws" + base_url[4:] + "/pings-back"))
    with pytest.raises(ValueError, match=r"^control frame payloads may not exceed 125 bytes$"):
        conn.ping(b"y" * 126)
    conn.ping(b"y" * 125)  # the limit itself is fine
    conn.write_message("126")
    assert await within(conn.read_message()) == (
        "ValueError: control frame payloads may not exceed 125 bytes"
    )
    conn.write_message("125")
    assert await within(conn.read_message()) == "sent"
    conn.close()
    assert await within(conn.read_message()) is None


# -- settings ----------------------------------------------------------------------------

_unique = itertools.count(1)  # de_dupe_gen_log says a message once per process


class PingSettings(Plain):
    def open(self, *args: str, **kwargs: str) -> None:
        assert self.ws_connection is not None
        self.events.log.append(("ping_timeout", self.ws_connection.ping_timeout))


async def test_a_ping_timeout_above_the_interval_warns_in_tornados_words(
    io_loop: IOLoop, reactor_log: LogRecords, events: Events
) -> None:
    timeout = 1000 + next(_unique)
    application = web.Application(
        [(r"/", PingSettings, {"events": events})],
        websocket_ping_interval=600,  # no ping during the test
        websocket_ping_timeout=timeout,
    )
    sock, port = bind_unused_port()
    server = HTTPServer(application)
    server.add_sockets([sock])
    try:
        conn = await within(websocket_connect(f"ws://127.0.0.1:{port}/"))
        conn.close()
        assert await within(conn.read_message()) is None
    finally:
        server.stop()
        await server.close_all_connections()
    assert events.log == [("ping_timeout", 600)]
    assert (
        f"The websocket_ping_timeout ({timeout}) cannot be longer than the "
        f"websocket_ping_interval (600).\nSetting websocket_ping_timeout=600"
    ) in reactor_log.warnings()


# -- the client's handshake failures: the exceptions Tornado's client raises -----------


async def test_a_refused_connection_raises_connection_refused_error(io_loop: IOLoop) -> None:
    sock, port = bind_unused_port()
    sock.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError):
        await within(websocket_connect(f"ws://127.0.0.1:{port}/"))


class HangsUp(TCPServer):
    """Reads the request, then closes without an answer."""

    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        await stream.read_until(b"\r\n\r\n")
        stream.close()


async def test_a_server_that_hangs_up_gives_a_599(io_loop: IOLoop) -> None:
    sock, port = bind_unused_port()
    server = HangsUp()
    server.add_sockets([sock])
    try:
        with pytest.raises(HTTPStreamClosedError) as info:
            await within(websocket_connect(f"ws://127.0.0.1:{port}/"))
        assert info.value.code == 599
        assert str(info.value) == "Stream closed"
    finally:
        server.stop()


async def test_the_request_timeout_says_tornados_words(io_loop: IOLoop) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # the kernel completes the connect; nobody answers
    port = listener.getsockname()[1]
    try:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/", request_timeout=0.05)
        with pytest.raises(HTTPTimeoutError, match=r"^Timeout during request$"):
            await within(websocket_connect(request))
    finally:
        listener.close()


class RecordsUserAgent(Plain):
    def open(self, *args: str, **kwargs: str) -> None:
        self.events.log.append(self.request.headers.get("User-Agent"))
        self.close()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, f"reactor/{reactor.version}"),  # as the HTTP client (Tornado: Tornado/6.6.1)
        ({"user_agent": "porter/1"}, "porter/1"),
        ({"headers": {"User-Agent": "own/2"}}, "own/2"),
    ],
)
async def test_the_client_sends_a_user_agent_as_the_http_client_does(
    http_server: Any, base_url: str, events: Events, options: dict[str, Any], expected: str
) -> None:
    request = HTTPRequest("ws" + base_url[4:] + "/user-agent", **options)
    conn = await within(websocket_connect(request))
    assert await within(conn.read_message()) is None
    assert events.log == [expected]


class Chat(Plain):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat" if "chat" in subprotocols else None


async def test_after_the_clients_close_protocol_is_none_as_in_tornado(
    http_server: Any, base_url: str
) -> None:
    conn = await within(websocket_connect("ws" + base_url[4:] + "/chat", subprotocols=["chat"]))
    assert conn.protocol is not None
    conn.close(1000, "done")
    assert conn.protocol is None
    with pytest.raises(WebSocketClosedError, match=r"^Client connection has been closed$"):
        conn.write_message("late")
    with pytest.raises(WebSocketClosedError):
        conn.ping(b"late")
    conn.close()  # again: nothing happens
    assert conn.selected_subprotocol == "chat"  # still known
    assert await within(conn.read_message()) is None
    assert conn.close_code == 1000


class Burst(Plain):
    """Answers a message with three."""

    def on_message(self, message: str | bytes) -> None:
        for i in range(3):
            self.write_message(f"{message}{i}")


async def test_several_read_message_calls_may_wait_at_once(http_server: Any, base_url: str) -> None:
    conn = await within(websocket_connect("ws" + base_url[4:] + "/burst"))
    reads = [conn.read_message() for _ in range(3)]  # before anything arrived
    conn.write_message("m")
    assert [await within(read) for read in reads] == ["m0", "m1", "m2"]
    cancelled = conn.read_message()
    assert isinstance(cancelled, Future)
    cancelled.cancel()  # a cancelled read does not swallow a message
    after = [conn.read_message(), conn.read_message()]
    conn.write_message("n")
    assert await within(after[0]) == "n0" and await within(after[1]) == "n1"
    assert await within(conn.read_message()) == "n2"
    waiting = [conn.read_message(), conn.read_message()]
    conn.close()
    assert [await within(read) for read in waiting] == [None, None]  # all get the close
