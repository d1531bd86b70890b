"""RFC 6455 and RFC 7692, rule by rule, with raw frames over a real socket.

The client is :mod:`tests.ws_raw`, which builds every byte itself (so the
frames that break a rule are exactly the ones the test means). The server
is a :class:`~reactor.websocket.WebSocketHandler` that records what reaches
the application (messages, pings, pongs, ``on_close``) and echoes messages.

Each failing-frame test sends a good message, the bad frame and another
good message in one write, then checks (a) the Close code the RFC gives and
that the server then closes TCP (EOF), and (b) that the application saw
the first message and nothing after the bad frame, and ``on_close`` once.

Then what must be accepted (every length encoding, a character split
across fragments, control frames between fragments, token lists), the
opening handshake's refusals, the permessage-deflate negotiation table, the
close handshake and its bounds, pings, and what a hostile client may cost
the server (a deflate bomb, one-byte fragments, a ping flood it does not
read), measured with ``tracemalloc`` or counted on the wire. Last, the
client's side: reactor's client against a raw server
(:class:`tests.ws_raw.RawServer`), one bad server frame per rule.

The rules are those of the contract (briefs/ws-rules.md); every test runs
on every backend, and no ERROR may be logged unless the test expects it
(``reactor_log``).
"""

from __future__ import annotations

import base64
import datetime
import os
import socket
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import gen, locks, websocket
from reactor.httpclient import HTTPClientError
from reactor.iostream import StreamClosedError
from reactor.log import app_log
from reactor.testing import ExpectLog
from reactor.web import Application
from tests import ws_raw
from tests.ws_raw import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, RawWebSocket, frame

pytestmark = pytest.mark.usefixtures("reactor_log")

WAIT = 4.0
SMALL = 64 * 1024
"""``max_message_size`` of the ``/small`` handlers."""
TINY = 4 * 1024
"""``max_message_size`` of ``/tiny``."""


class Recorder:
    """What reached the application, across the test's connections."""

    def __init__(self) -> None:
        self.opened = 0
        self.events: list[tuple[str, Any]] = []
        self.closes: list[tuple[int | None, str | None]] = []
        self.closed = locks.Event()

    async def wait_closed(self) -> None:
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), self.closed.wait())
        # A second on_close, if any, would have been called by now.
        await gen.moment
        await gen.moment


class Echo(websocket.WebSocketHandler):
    def initialize(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def open(self, *args: str, **kwargs: str) -> None:
        self.recorder.opened += 1

    def on_message(self, message: str | bytes) -> None:
        self.recorder.events.append(("message", message))
        if message == "close-me":
            self.close(4001, "server bye")
        else:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data: bytes) -> None:
        self.recorder.events.append(("ping", data))

    def on_pong(self, data: bytes) -> None:
        self.recorder.events.append(("pong", data))

    def on_close(self) -> None:
        self.recorder.closes.append((self.close_code, self.close_reason))
        self.recorder.closed.set()


class DeflateEcho(Echo):
    def get_compression_options(self) -> dict[str, Any] | None:
        return {}


class SmallEcho(Echo):
    @property
    def max_message_size(self) -> int:
        return SMALL


class TinyEcho(Echo):
    @property
    def max_message_size(self) -> int:
        return TINY


class SmallSendBuffer(Echo):
    """Little room in the kernel for what the server sends (SO_SNDBUF), so
    that a client that does not read makes the server's output wait soon,
    and a cap on the stream's write buffer (256 KiB: a few reads' worth of
    answers), past which a write raises (and the test fails)."""

    def open(self, *args: str, **kwargs: str) -> None:
        super().open(*args, **kwargs)
        assert self.ws_connection is not None and self.ws_connection.stream is not None
        stream = self.ws_connection.stream
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        stream.max_write_buffer_size = 256 * 1024


def _small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)


class SmallBuffers(Echo):
    """Little room in the kernel both ways: a few hundred KiB in flight
    fill it."""

    def open(self, *args: str, **kwargs: str) -> None:
        super().open(*args, **kwargs)
        assert self.ws_connection is not None and self.ws_connection.stream is not None
        _small_buffers(self.ws_connection.stream.socket)


class Pinging(Echo):
    """Pings every 100 ms; a pong must come within the interval."""

    @property
    def ping_interval(self) -> float:
        return 0.1


class SmallDeflateEcho(SmallEcho, DeflateEcho):
    pass


class Failing(Echo):
    def on_message(self, message: str | bytes) -> None:
        super().on_message(message)
        if message == "raise":
            raise ValueError("on_message failed on purpose")


class AwaitingEcho(Echo):
    """Echoes at the pace the client reads: each message waits for its echo
    to be handed to the kernel before the next is delivered."""

    async def on_message(self, message: str | bytes) -> None:  # type: ignore[override]
        self.recorder.events.append(("message", message))
        await self.write_message(message, binary=isinstance(message, bytes))
        self.recorder.events.append(("written", message))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(recorder: Recorder) -> Application:
    kwargs = {"recorder": recorder}
    return Application(
        [
            ("/echo", Echo, kwargs),
            ("/deflate", DeflateEcho, kwargs),
            ("/small", SmallEcho, kwargs),
            ("/tiny", TinyEcho, kwargs),
            ("/small-send-buffer", SmallSendBuffer, kwargs),
            ("/pinging", Pinging, kwargs),
            ("/small-buffers", SmallBuffers, kwargs),
            ("/small-deflate", SmallDeflateEcho, kwargs),
            ("/failing", Failing, kwargs),
            ("/awaiting", AwaitingEcho, kwargs),
        ]
    )


@pytest.fixture
def port(http_server: Any, http_port: int) -> int:
    return http_port


DEFLATE = {"Sec-WebSocket-Extensions": "permessage-deflate"}


async def open_ws(port: int, path: str = "/echo", **kwargs: Any) -> RawWebSocket:
    """A raw connection that got its 101 (with deflate on the deflate paths)."""
    if "deflate" in path:
        kwargs.setdefault("headers", DEFLATE)
    ws = await RawWebSocket.connect(port, path, **kwargs)
    ws.check_accept()
    extensions = ws_raw.parse_extensions(ws.headers.get("Sec-WebSocket-Extensions"))
    assert [name for name, _ in extensions] == (["permessage-deflate"] if "deflate" in path else [])
    return ws


def payloads(frames: list[ws_raw.Frame], wbits: int = 15) -> list[str | bytes]:
    """The messages in ``frames`` (unfragmented, as the echo sends them),
    inflated where RSV1 says they are compressed."""
    inflater = ws_raw.Inflater(wbits)
    out: list[str | bytes] = []
    for got in frames:
        assert got.fin and not got.masked, got
        data = inflater.inflate(got.payload) if got.rsv1 else got.payload
        out.append(data.decode("utf-8") if got.opcode == TEXT else data)
    return out


# -- one failing frame per rule ---------------------------------------------------------

BOMB = ws_raw.deflate(bytes(1024 * 1024))
"""1 MiB of zeros compressed to about 1 KiB: it must never be inflated whole."""
OVER_MAX = ws_raw.deflate(os.urandom(SMALL // 2).hex() + "x")
"""A message one byte over ``SMALL`` once inflated."""


def _bad(path: str, code: int, *frames: bytes, id: str) -> Any:
    return pytest.param(path, b"".join(frames), code, id=id)


PROTOCOL, BAD_DATA, TOO_BIG = 1002, 1007, 1009

FAILING_FRAMES = [
    # §5.1: a client must mask every frame.
    _bad("/echo", PROTOCOL, frame(TEXT, "x", mask=False), id="unmasked-client-frame"),
    _bad("/echo", PROTOCOL, frame(PING, b"", mask=False), id="unmasked-client-ping"),
    # §5.2: RSV bits without an extension that defines them.
    _bad("/echo", PROTOCOL, frame(TEXT, "x", rsv1=True), id="rsv1-without-extension"),
    _bad("/echo", PROTOCOL, frame(TEXT, "x", rsv2=True), id="rsv2-without-extension"),
    _bad("/echo", PROTOCOL, frame(TEXT, "x", rsv3=True), id="rsv3-without-extension"),
    _bad("/deflate", PROTOCOL, frame(TEXT, "x", rsv2=True), id="rsv2-with-deflate"),
    _bad(
        "/echo",
        PROTOCOL,
        frame(TEXT, ws_raw.deflate("compressed"), rsv1=True),
        id="compressed-frame-without-negotiation",
    ),
    # RFC 7692 §6.1: RSV1 only on the first frame of a data message.
    _bad(
        "/deflate",
        PROTOCOL,
        frame(TEXT, "ab", fin=False),
        frame(CONTINUATION, "cd", rsv1=True),
        id="rsv1-on-continuation-with-deflate",
    ),
    _bad("/deflate", PROTOCOL, frame(PING, b"p", rsv1=True), id="rsv1-on-ping-with-deflate"),
    _bad("/deflate", PROTOCOL, ws_raw.close(1000, rsv1=True), id="rsv1-on-close-with-deflate"),
    # §5.2: reserved opcodes, one of each class.
    _bad("/echo", PROTOCOL, frame(3, b"x"), id="reserved-data-opcode-3"),
    _bad("/echo", PROTOCOL, frame(7, b"x"), id="reserved-data-opcode-7"),
    _bad("/echo", PROTOCOL, frame(11, b"x"), id="reserved-control-opcode-11"),
    _bad("/echo", PROTOCOL, frame(15, b"x"), id="reserved-control-opcode-15"),
    # §5.5: control frames are at most 125 bytes and not fragmented.
    _bad("/echo", PROTOCOL, frame(PING, bytes(126)), id="ping-of-126-bytes"),
    _bad("/echo", PROTOCOL, ws_raw.close(1000, "x" * 124), id="close-of-126-bytes"),
    _bad("/echo", PROTOCOL, frame(PING, b"p", fin=False), id="fragmented-ping"),
    # §5.4: fragments.
    _bad("/echo", PROTOCOL, frame(CONTINUATION, "x"), id="continuation-without-start"),
    _bad(
        "/echo",
        PROTOCOL,
        frame(TEXT, "a", fin=False),
        frame(TEXT, "b"),
        id="text-frame-mid-fragmentation",
    ),
    _bad(
        "/echo",
        PROTOCOL,
        frame(BINARY, b"a", fin=False),
        frame(BINARY, b"b", fin=False),
        id="binary-frame-mid-fragmentation",
    ),
    # §5.2: lengths.
    _bad(
        "/echo",
        PROTOCOL,
        frame(BINARY, b"x", length=(1 << 63) | 1, length_size=8),
        id="64-bit-length-with-msb-set",
    ),
    _bad("/echo", PROTOCOL, frame(TEXT, "abc", length_size=2), id="non-minimal-16-bit-length"),
    _bad("/echo", PROTOCOL, frame(TEXT, "abc", length_size=8), id="non-minimal-64-bit-length"),
    _bad(
        "/echo",
        PROTOCOL,
        frame(BINARY, bytes(1000), length_size=8),
        id="64-bit-length-below-65536",
    ),
    # §5.5.1: a Close payload is empty or a 2-byte code and a reason.
    _bad("/echo", PROTOCOL, frame(CLOSE, b"\x03"), id="close-payload-of-1-byte"),
    # §8.1: text must be UTF-8.
    _bad("/echo", BAD_DATA, frame(TEXT, b"ok \xff"), id="invalid-utf8-text"),
    _bad("/echo", BAD_DATA, frame(TEXT, b"\xed\xa0\x80"), id="utf8-surrogate"),
    _bad(
        "/echo",
        BAD_DATA,
        frame(TEXT, b"\xe2\x82", fin=False),
        frame(CONTINUATION, b"A"),
        id="bad-continuation-byte-across-fragments",
    ),
    _bad(
        "/echo",
        BAD_DATA,
        frame(TEXT, b"\xe2\x82", fin=False),
        frame(CONTINUATION, b""),
        id="truncated-utf8-at-message-end",
    ),
    _bad("/echo", BAD_DATA, ws_raw.close(1000, b"\xff"), id="close-reason-not-utf8"),
    # RFC 7692: a compressed payload that does not inflate (1007, as websockets).
    _bad("/deflate", BAD_DATA, frame(TEXT, b"\xff\xff\xff\xff", rsv1=True), id="bad-deflate-data"),
    _bad(
        "/deflate",
        BAD_DATA,
        frame(TEXT, ws_raw.deflate(b"ok \xff"), rsv1=True),
        id="invalid-utf8-compressed",
    ),
    _bad(
        "/deflate",
        BAD_DATA,
        frame(TEXT, ws_raw.deflate(b"ok \xe2\x82A")[:3], rsv1=True, fin=False),
        frame(CONTINUATION, ws_raw.deflate(b"ok \xe2\x82A")[3:]),
        id="invalid-utf8-compressed-in-fragments",
    ),
    # Sizes above max_message_size.
    _bad("/small", TOO_BIG, frame(BINARY, bytes(SMALL + 1)), id="message-over-max-in-one-frame"),
    _bad(
        "/small",
        TOO_BIG,
        frame(BINARY, bytes(SMALL // 2), fin=False),
        frame(CONTINUATION, bytes(SMALL // 2), fin=False),
        frame(CONTINUATION, b"x"),
        id="message-over-max-across-fragments",
    ),
    _bad("/small-deflate", TOO_BIG, frame(BINARY, BOMB, rsv1=True), id="deflate-bomb"),
    _bad(
        "/small-deflate",
        TOO_BIG,
        frame(BINARY, BOMB[:500], rsv1=True, fin=False),
        frame(CONTINUATION, BOMB[500:]),
        id="deflate-bomb-in-fragments",
    ),
    _bad(
        "/small-deflate",
        TOO_BIG,
        frame(BINARY, OVER_MAX[:20], rsv1=True, fin=False),
        frame(CONTINUATION, OVER_MAX[20:]),
        id="inflated-fragments-over-max",
    ),
]


@pytest.mark.parametrize(("path", "bad", "code"), FAILING_FRAMES)
async def test_failing_frame_closes_with_the_rfc_code_and_delivers_nothing_after_it(
    port: int, recorder: Recorder, path: str, bad: bytes, code: int
) -> None:
    ws = await open_ws(port, path)
    try:
        await ws.write(ws_raw.text("before"), bad, ws_raw.text("after"))
        before = await ws.expect_close(code)
    finally:
        ws.close()
    await recorder.wait_closed()
    assert payloads(before) == ["before"]
    assert recorder.events == [("message", "before")]
    assert len(recorder.closes) == 1


INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
async def test_invalid_close_code_is_answered_with_1002_and_never_echoed(
    port: int, recorder: Recorder, code: int
) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(ws_raw.text("before"), ws_raw.close(code, "bad"), ws_raw.text("after"))
        before = await ws.expect_close(PROTOCOL)
    finally:
        ws.close()
    await recorder.wait_closed()
    assert payloads(before) == ["before"]
    assert recorder.events == [("message", "before")]
    assert len(recorder.closes) == 1


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1008, 1011, 1014, 3000, 4000, 4999])
async def test_valid_close_code_is_echoed_and_stored(
    port: int, recorder: Recorder, code: int
) -> None:
    ws = await open_ws(port)
    try:
        # Data after a Close is not delivered (RFC 6455 section 5.5.1).
        await ws.write(ws_raw.close(code, "bye \u2603"), ws_raw.text("after the close"))
        frames = await ws.read_frames_until_close()
        await ws.expect_eof()
    finally:
        ws.close()
    assert frames[:-1] == []
    assert frames[-1].close_code == code  # the code is echoed (the reason need not be)
    await recorder.wait_closed()
    assert recorder.closes == [(code, "bye \u2603")]
    assert recorder.events == []


async def test_empty_close_is_answered_with_an_empty_close(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(ws_raw.close())
        frames = await ws.read_frames_until_close()
        await ws.expect_eof()
    finally:
        ws.close()
    assert frames[-1].payload == b""
    await recorder.wait_closed()
    assert recorder.closes == [(None, None)]


async def test_on_message_raising_closes_with_1011_and_logs_the_traceback(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port, "/failing")
    try:
        with ExpectLog(app_log, "Uncaught exception") as expected:
            await ws.write(ws_raw.text("raise"), ws_raw.text("after"))
            before = await ws.expect_close(1011)
            await recorder.wait_closed()
    finally:
        ws.close()
    assert expected.logged_stack and expected.matched == 1
    # The echo of "raise" went out before the handler raised.
    assert payloads(before) == ["raise"]
    assert recorder.events == [("message", "raise")]
    assert len(recorder.closes) == 1


# -- the answers to one read -----------------------------------------------------------
# The server gathers what it writes while it handles one read into one send;
# what a peer sees must be the same as if every frame had its own.


async def test_answers_to_one_read_keep_their_order_around_control_frames(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port)
    try:
        first = [ws_raw.text(f"a{i}") for i in range(10)]
        second = [ws_raw.text(f"b{i}") for i in range(10)]
        await ws.write(*first, frame(PING, b"between"), *second, ws_raw.close(1000))
        frames = await ws.expect_close(1000)
    finally:
        ws.close()
    kinds = [(f.opcode, f.payload) for f in frames]
    assert kinds == (
        [(TEXT, f"a{i}".encode()) for i in range(10)]
        + [(PONG, b"between")]
        + [(TEXT, f"b{i}".encode()) for i in range(10)]
    )


async def test_an_awaited_echo_of_one_read_resolves_and_keeps_the_order(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port, "/awaiting")
    try:
        await ws.write(*(ws_raw.text(f"m{i}") for i in range(20)))
        echoes = [await ws.read_frame() for _ in range(20)]
        await ws.write(ws_raw.close(1000))
        await ws.expect_close(1000)
        await recorder.wait_closed()
    finally:
        ws.close()
    assert [e.payload if e else None for e in echoes] == [f"m{i}".encode() for i in range(20)]
    # Each write's future resolved before the next message was delivered.
    expected: list[tuple[str, Any]] = []
    for i in range(20):
        expected += [("message", f"m{i}"), ("written", f"m{i}")]
    assert recorder.events == expected


# -- what must be accepted --------------------------------------------------------------


async def test_messages_in_the_handshake_packet_are_delivered_after_open(
    port: int, recorder: Recorder
) -> None:
    # The frames follow the request in one write: they must be neither lost
    # nor parsed as HTTP.
    ws = await RawWebSocket.connect(
        port, "/echo", then=ws_raw.text("early") + ws_raw.binary(b"\x00\x01")
    )
    try:
        ws.check_accept()
        first, second = await ws.read_frame(), await ws.read_frame()
    finally:
        ws.close()
    assert first is not None and second is not None
    assert payloads([first, second]) == ["early", b"\x00\x01"]
    assert recorder.opened == 1


@pytest.mark.parametrize(
    ("size", "length_size"),
    [(0, 0), (125, 0), (126, 2), (65535, 2), (65536, 8), (SMALL, 8)],
    ids=["empty", "7-bit-max", "16-bit-min", "16-bit-max", "64-bit-min", "exactly-max"],
)
async def test_every_minimal_length_encoding_is_accepted(
    port: int, recorder: Recorder, size: int, length_size: int
) -> None:
    data = os.urandom(size)
    ws = await open_ws(port, "/small" if size <= SMALL else "/echo")
    try:
        await ws.write(frame(BINARY, data, length_size=length_size))
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and payloads([got]) == [data]


async def test_fragmented_message_up_to_max_is_accepted(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/small")
    try:
        await ws.write(frame(BINARY, b"a" * (SMALL - 1), fin=False), frame(CONTINUATION, b"b"))
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and payloads([got]) == [b"a" * (SMALL - 1) + b"b"]


@pytest.mark.parametrize("cut", [1, 2, 3])
async def test_multibyte_character_split_across_fragments_is_valid(
    port: int, recorder: Recorder, cut: int
) -> None:
    encoded = "a\U0001f600b".encode()  # a 4-byte character between two letters
    ws = await open_ws(port)
    try:
        await ws.write(
            frame(TEXT, encoded[: 1 + cut], fin=False),
            frame(CONTINUATION, b"", fin=False),
            frame(CONTINUATION, encoded[1 + cut :]),
        )
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and payloads([got]) == ["a\U0001f600b"]


@pytest.mark.parametrize(
    "first",
    [b"ok \xff", b"\xe2\x28", b"\xc0\xaf", b"\xf4\x90"],
    ids=["ff-byte", "bad-second-byte", "overlong", "above-u10ffff"],
)
async def test_invalid_utf8_is_detected_before_the_message_ends(
    port: int, recorder: Recorder, first: bytes
) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(ws_raw.text("before"), frame(TEXT, first, fin=False))
        # The final fragment is never sent: the Close must come without it.
        before = await ws.expect_close(BAD_DATA)
    finally:
        ws.close()
    await recorder.wait_closed()
    assert payloads(before) == ["before"]
    assert recorder.events == [("message", "before")]


async def test_too_big_is_refused_from_the_header_alone(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/small")
    try:
        # The header of a 1 GiB frame, and not one byte of its payload.
        await ws.write(ws_raw.text("before"), frame(BINARY, b"", length=1 << 30))
        before = await ws.expect_close(TOO_BIG)
    finally:
        ws.close()
    await recorder.wait_closed()
    assert payloads(before) == ["before"]
    assert recorder.events == [("message", "before")]


async def test_too_big_fragmented_is_refused_before_the_last_fragment(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port, "/small")
    try:
        await ws.write(
            frame(BINARY, bytes(SMALL), fin=False),
            frame(CONTINUATION, b"", fin=False, length=1 << 20),
        )
        await ws.expect_close(TOO_BIG)
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == []


async def test_one_byte_fragments_cost_no_more_than_the_message(
    port: int, recorder: Recorder
) -> None:
    # max_message_size bounds what a message may make the server hold, not
    # only its payload: a list of one-byte fragments would cost about 100
    # bytes per byte of message.
    fragments = [frame(CONTINUATION, b"a", fin=False) for _ in range(TINY - 2)]
    data = b"".join([frame(BINARY, b"a", fin=False), *fragments, frame(CONTINUATION, b"a")])
    ws = await open_ws(port, "/tiny")
    tracemalloc.start()
    try:
        await ws.write(data)
        got = await ws.read_frame()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        ws.close()
    assert got is not None and got.payload == b"a" * TINY
    assert peak < 8 * TINY, peak


async def test_control_frames_between_fragments_are_handled_at_once(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(frame(TEXT, "Hello, ", fin=False), frame(PING, b"mid"))
        # The pong comes while the message is still open.
        pong = await ws.read_frame()
        assert pong is not None and (pong.opcode, pong.payload) == (PONG, b"mid")
        assert recorder.events == [("ping", b"mid")]
        await ws.write(
            frame(PONG, b"unsolicited"),
            frame(CONTINUATION, "wor", fin=False),
            frame(PING, b""),
            frame(CONTINUATION, "ld"),
        )
        got = [await ws.read_frame(), await ws.read_frame()]
    finally:
        ws.close()
    assert [(f.opcode, f.payload) for f in got if f is not None] == [
        (PONG, b""),
        (TEXT, b"Hello, world"),
    ]
    assert recorder.events == [
        ("ping", b"mid"),
        ("pong", b"unsolicited"),
        ("ping", b""),
        ("message", "Hello, world"),
    ]


async def test_ping_flood_from_a_client_that_does_not_read_is_bounded(
    port: int, recorder: Recorder
) -> None:
    # 4,000 pings (500 KB of pongs to answer) from a client that does not
    # read. The server may stop reading while its answers wait, or answer
    # only the latest ping (RFC 6455 section 5.5.3); it may not queue them
    # all: its stream's write buffer is capped (SmallSendBuffer) well below.
    count = 4000
    pings = [frame(PING, f"{i:0125d}".encode()) for i in range(count)]
    last = f"{count - 1:0125d}".encode()
    ws = await open_ws(port, "/small-send-buffer", receive_buffer=4096)
    try:
        writing = ws.stream.write(b"".join([*pings, ws_raw.text("end")]))
        try:
            await gen.with_timeout(
                datetime.timedelta(seconds=0.2), writing, quiet_exceptions=StreamClosedError
            )
        except TimeoutError:
            pass  # the server holds the client back (it stopped reading): fine
        # Now read: the last ping is answered, and the message after them.
        answered = echoed = False
        while not (answered and echoed):
            got = await ws.read_frame()
            assert got is not None
            answered = answered or (got.opcode == PONG and got.payload == last)
            echoed = echoed or (got.opcode == TEXT and got.payload == b"end")
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), writing)
    finally:
        ws.close()
    assert [e for e in recorder.events if e[0] == "message"] == [("message", "end")]
    assert len(recorder.events) == count + 1  # on_ping for each, as they arrived


async def test_close_between_fragments_ends_the_message_undelivered(
    port: int, recorder: Recorder
) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(
            frame(TEXT, "never ", fin=False), ws_raw.close(1000), frame(CONTINUATION, "ends")
        )
        assert await ws.expect_close(1000) == []
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == []
    assert recorder.closes == [(1000, None)]  # a code alone: None (Tornado)


async def test_compressed_text_split_inside_a_character_is_valid(
    port: int, recorder: Recorder
) -> None:
    message = "\u20ac" * 1000  # 3 bytes each
    compressed = ws_raw.deflate(message)
    ws = await open_ws(port, "/deflate")
    try:
        await ws.write(
            frame(TEXT, compressed[:1], rsv1=True, fin=False),
            frame(CONTINUATION, compressed[1:2], fin=False),
            frame(CONTINUATION, compressed[2:]),
        )
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and payloads([got]) == [message]


async def test_ping_is_answered_with_its_payload(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(frame(PING, bytes(range(125))))
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and (got.opcode, got.payload) == (PONG, bytes(range(125)))


# -- the opening handshake --------------------------------------------------------------


def _key(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


HANDSHAKE_FAILURES = [
    pytest.param({"Sec-WebSocket-Key": None}, (), 400, id="missing-key"),
    pytest.param({"Sec-WebSocket-Key": "not base64 at all!!!!!=="}, (), 400, id="bad-key"),
    pytest.param({"Sec-WebSocket-Key": _key(15)}, (), 400, id="key-of-15-bytes"),
    pytest.param({"Sec-WebSocket-Key": _key(17)}, (), 400, id="key-of-17-bytes"),
    pytest.param({}, [("Sec-WebSocket-Key", _key(16))], 400, id="duplicate-key"),
    pytest.param({"Upgrade": None}, (), 400, id="missing-upgrade"),
    pytest.param({"Upgrade": "h2c"}, (), 400, id="upgrade-to-other"),
    pytest.param({"Connection": None}, (), 400, id="missing-connection"),
    pytest.param({"Connection": "keep-alive"}, (), 400, id="connection-without-upgrade"),
    pytest.param({"Sec-WebSocket-Version": "8"}, (), 426, id="version-8"),
    pytest.param({"Sec-WebSocket-Version": "14"}, (), 426, id="version-14"),
    pytest.param({"Sec-WebSocket-Version": None}, (), 426, id="missing-version"),
]


@pytest.mark.parametrize(("headers", "extra", "status"), HANDSHAKE_FAILURES)
async def test_bad_handshake_is_refused(
    port: int,
    recorder: Recorder,
    headers: dict[str, str | None],
    extra: list[tuple[str, str]],
    status: int,
) -> None:
    ws = await RawWebSocket.connect(port, "/echo", headers, extra)
    ws.close()
    assert ws.status == status, ws.response
    if status == 426:
        assert ws.headers["Sec-WebSocket-Version"] == "13"
    assert "Sec-WebSocket-Accept" not in ws.headers
    assert recorder.opened == 0


async def test_upgrade_error_names_websocket(port: int, recorder: Recorder) -> None:
    ws = await RawWebSocket.connect(port, "/echo", {"Upgrade": "h2c"})
    ws.close()
    assert ws.status == 400
    assert b'Can "Upgrade" only to "WebSocket".' in ws.response.body  # type: ignore[union-attr]


async def test_http_1_0_is_refused(port: int, recorder: Recorder) -> None:
    ws = await RawWebSocket.connect(port, "/echo", version="HTTP/1.0")
    ws.close()
    assert ws.status == 400
    assert recorder.opened == 0


async def test_post_is_refused_with_405(port: int, recorder: Recorder) -> None:
    ws = await RawWebSocket.connect(port, "/echo", {"Content-Length": "0"}, method="POST")
    ws.close()
    assert ws.status == 405
    assert recorder.opened == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Upgrade": "WebSocket"},
        {"Upgrade": "foo/2, websocket"},
        {"Connection": "keep-alive, Upgrade"},
        {"Connection": "UPGRADE"},
    ],
    ids=[
        "upgrade-case",
        "upgrade-token-list",
        "connection-token-list",
        "connection-case",
    ],
)
async def test_token_lists_and_case_are_accepted(
    port: int, recorder: Recorder, headers: dict[str, str]
) -> None:
    ws = await RawWebSocket.connect(port, "/echo", headers)
    try:
        ws.check_accept()
        await ws.write(ws_raw.text("hi"))
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and payloads([got]) == ["hi"]


# -- permessage-deflate negotiation (RFC 7692 §5, §7.1) ---------------------------------

NEGOTIATION = [
    pytest.param("permessage-deflate", {}, id="bare"),
    pytest.param(
        "permessage-deflate; server_no_context_takeover",
        {"server_no_context_takeover": None},
        id="server-no-context-takeover",
    ),
    pytest.param(
        "permessage-deflate; client_no_context_takeover",
        {"client_no_context_takeover": None},
        id="client-no-context-takeover",
    ),
    pytest.param(
        "permessage-deflate; server_max_window_bits=10",
        {"server_max_window_bits": "10"},
        id="server-max-window-bits",
    ),
    pytest.param(
        "permessage-deflate; client_max_window_bits",
        {"client_max_window_bits": "<=15"},
        id="client-max-window-bits-bare",
    ),
    pytest.param(
        "permessage-deflate; client_max_window_bits=12",
        {"client_max_window_bits": "<=12"},
        id="client-max-window-bits-12",
    ),
    pytest.param(
        "permessage-deflate; foo=1, permessage-deflate; server_no_context_takeover",
        {"server_no_context_takeover": None},
        id="unknown-param-declined-next-taken",
    ),
    pytest.param(
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover, "
        "permessage-deflate",
        {},
        id="duplicate-param-declined",
    ),
    pytest.param("permessage-deflate; server_max_window_bits=8", None, id="server-window-8"),
    pytest.param(
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; "
        "client_no_context_takeover",
        {"client_no_context_takeover": None},
        id="server-window-8-then-next",
    ),
    pytest.param("permessage-deflate; server_max_window_bits=16", None, id="window-16"),
    pytest.param("permessage-deflate; server_max_window_bits=x", None, id="window-not-int"),
    pytest.param("permessage-deflate; server_max_window_bits", None, id="server-window-bare"),
    pytest.param(
        "permessage-deflate; server_no_context_takeover=1", None, id="value-where-none-allowed"
    ),
    pytest.param("x-webkit-deflate-frame, permessage-deflate", {}, id="unknown-extension-skipped"),
    pytest.param("x-webkit-deflate-frame", None, id="no-acceptable-offer"),
]


@pytest.mark.parametrize(("offer", "answer"), NEGOTIATION)
async def test_permessage_deflate_negotiation(
    port: int, recorder: Recorder, offer: str, answer: dict[str, str | None] | None
) -> None:
    ws = await RawWebSocket.connect(port, "/deflate", {"Sec-WebSocket-Extensions": offer})
    try:
        ws.check_accept()
        extensions = ws_raw.parse_extensions(ws.headers.get("Sec-WebSocket-Extensions"))
        if answer is None:
            assert extensions == []
        else:
            [(name, params)] = extensions
            assert name == "permessage-deflate"
            expected = {k: v for k, v in answer.items() if not (v or "").startswith("<=")}
            bound = {k: int(v[2:]) for k, v in answer.items() if v and v.startswith("<=")}
            assert {k: v for k, v in params.items() if k not in bound} == expected
            for k, limit in bound.items():
                if k in params:  # a bare offer may be answered or not
                    assert 8 <= int(params[k] or "") <= limit
        # The connection works, compressed or not as agreed, and each side
        # keeps to the window it was given: the text repeats at a distance
        # of 2000 bytes, beyond a 10-bit window (1024).
        message = os.urandom(1000).hex() * 2
        if answer is None:
            await ws.write(ws_raw.text(message))
        else:
            client_bits = int(params.get("client_max_window_bits") or 15)
            await ws.write(frame(TEXT, ws_raw.deflate(message, client_bits), rsv1=True))
        got = await ws.read_frame()
    finally:
        ws.close()
    assert got is not None and got.rsv1 == (answer is not None)
    server_bits = int(params.get("server_max_window_bits") or 15) if answer is not None else 15
    assert payloads([got], server_bits) == [message]


async def test_no_extension_without_compression_options(port: int, recorder: Recorder) -> None:
    ws = await RawWebSocket.connect(port, "/echo", DEFLATE)
    ws.close()
    ws.check_accept()
    assert "Sec-WebSocket-Extensions" not in ws.headers


async def test_deflate_both_ways_with_context_takeover(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/deflate")
    message = "the same words again and again " * 50
    try:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        for _ in range(3):  # context carried over from message to message
            data = compressor.compress(message.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await ws.write(frame(TEXT, data[:-4], rsv1=True))
        # A fragmented compressed message, then an uncompressed one.
        fresh = ws_raw.deflate(b"\x00" * 3000)
        await ws.write(
            frame(BINARY, fresh[:5], rsv1=True, fin=False),
            frame(CONTINUATION, fresh[5:]),
            ws_raw.text("plain"),
        )
        got = [await ws.read_frame() for _ in range(5)]
    finally:
        ws.close()
    frames = [f for f in got if f is not None]
    assert all(f.rsv1 for f in frames)  # the server compresses every data message
    assert len(frames[0].payload) < len(message)
    assert payloads(frames) == [message] * 3 + [b"\x00" * 3000, "plain"]
    assert recorder.events == [("message", message)] * 3 + [
        ("message", b"\x00" * 3000),
        ("message", "plain"),
    ]


async def test_deflate_bomb_is_never_inflated_whole(port: int, recorder: Recorder) -> None:
    # 32 MiB of zeros in a 32 KiB frame (under max_message_size, so only
    # inflating tells): refused with 1009 with at most a bounded part of it
    # ever in memory.
    bomb = ws_raw.deflate(bytes(32 * 1024 * 1024))
    assert len(bomb) < SMALL
    ws = await open_ws(port, "/small-deflate")
    tracemalloc.start()
    try:
        await ws.write(frame(BINARY, bomb, rsv1=True))
        await ws.expect_close(TOO_BIG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        ws.close()
    assert peak < 4 * 1024 * 1024, peak
    await recorder.wait_closed()
    assert recorder.events == []


async def test_control_frames_are_not_compressed(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/deflate")
    try:
        await ws.write(frame(PING, b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
        got = await ws.read_frame()
        await ws.write(ws_raw.close(1000, "a" * 100))
        close = await ws.read_frames_until_close()
        await ws.expect_eof()
    finally:
        ws.close()
    assert got is not None and not got.rsv1 and got.payload == b"a" * 37
    assert not close[-1].rsv1 and close[-1].close_code == 1000


# -- the close handshake (§7) -----------------------------------------------------------


async def test_server_close_waits_for_the_clients_close(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(ws_raw.text("close-me"))
        frames = await ws.read_frames_until_close()
        assert frames[-1].close_code == 4001 and frames[-1].close_reason == "server bye"
        # Still open: a data frame is discarded, our Close is read and is the
        # code the handler sees.
        await ws.write(ws_raw.text("discarded"), ws_raw.close(4002, "client bye"))
        await ws.expect_eof()
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == [("message", "close-me")]
    assert recorder.closes == [(4002, "client bye")]


async def test_client_that_never_answers_the_close_is_dropped(
    port: int, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bound (5 s) is a module constant, lowered here so that the test
    # waits on the event (EOF), not on a clock.
    monkeypatch.setattr(websocket, "_CLOSE_TIMEOUT", 0.05)
    ws = await open_ws(port)
    try:
        await ws.write(ws_raw.text("close-me"))
        frames = await ws.read_frames_until_close()
        assert frames[-1].close_code == 4001
        await ws.expect_eof()  # no Close of ours: the server gives up
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == [("message", "close-me")]
    assert recorder.closes == [(None, None)]


async def test_server_pings_and_keeps_a_client_that_answers(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/pinging")
    try:
        for _ in range(2):
            got = await ws.read_frame()
            assert got is not None and got.opcode == PING
            await ws.write(frame(PONG, got.payload))
        await ws.write(ws_raw.text("still here"))
        while (got := await ws.read_frame()) is not None and got.opcode == PING:
            await ws.write(frame(PONG, got.payload))
        assert got is not None and payloads([got]) == ["still here"]
    finally:
        ws.close()
    assert ("message", "still here") in recorder.events
    assert len([e for e in recorder.events if e[0] == "pong"]) >= 2


async def test_ping_timeout_drops_a_dead_client_at_once(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port, "/pinging")
    try:
        got = await ws.read_frame()
        assert got is not None and got.opcode == PING
        # No pong: Close 1011, then TCP closed without the 5 s close wait
        # (expect_eof's bound is shorter).
        frames = await ws.read_frames_until_close()
        assert (frames[-1].close_code, frames[-1].close_reason) == (1011, "ping timeout")
        await ws.expect_eof()
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == []
    assert len(recorder.closes) == 1


async def test_client_that_vanishes_mid_frame(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port)
    whole = ws_raw.text("x" * 1000)
    try:
        await ws.write(ws_raw.text("before"), whole[: len(whole) // 2])
        got = await ws.read_frame()
        assert got is not None and payloads([got]) == ["before"]
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == [("message", "before")]
    assert recorder.closes == [(None, None)]


async def test_client_that_vanishes_mid_header(port: int, recorder: Recorder) -> None:
    ws = await open_ws(port)
    try:
        await ws.write(frame(BINARY, b"", length=70000)[:3])
    finally:
        ws.close()
    await recorder.wait_closed()
    assert recorder.events == []
    assert len(recorder.closes) == 1


def test_struct_sanity() -> None:
    # The helper writes what the RFC's §5.2 figure shows.
    assert frame(TEXT, b"Hello", mask=b"\x37\xfa\x21\x3d") == bytes.fromhex(
        "818537fa213d7f9f4d5158"
    )
    assert frame(PONG, b"Hello", mask=False) == bytes.fromhex("8a0548656c6c6f")
    assert frame(BINARY, bytes(256), mask=False)[:4] == bytes.fromhex("827e0100")
    assert struct.unpack("!Q", frame(BINARY, bytes(65536), mask=False)[2:10]) == (65536,)


async def test_our_client_and_server_writing_at_once_do_not_deadlock(
    port: int, recorder: Recorder
) -> None:
    # Both ends have more to send than the kernel holds, and neither waits
    # for its writes: each must go on reading while its output waits (if
    # both stopped reading until their output drained, nothing would move).
    connection = await gen.with_timeout(
        datetime.timedelta(seconds=WAIT),
        websocket.websocket_connect(f"ws://127.0.0.1:{port}/small-buffers"),
    )
    assert connection.protocol is not None and connection.protocol.stream is not None
    _small_buffers(connection.protocol.stream.socket)
    data = os.urandom(256 * 1024)
    try:
        writes = [connection.write_message(data, binary=True) for _ in range(3)]
        for _ in range(3):
            got = await gen.with_timeout(
                datetime.timedelta(seconds=WAIT), connection.read_message()
            )
            assert got == data
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), gen.multi(writes))
    finally:
        connection.close()
    await recorder.wait_closed()


# -- the client's side: reactor's client against a raw server ---------------------------


@pytest.fixture
def raw_server(io_loop: Any) -> Iterator[ws_raw.RawServer]:
    server = ws_raw.RawServer()
    yield server
    server.close()


class ClientMessages:
    """An ``on_message_callback`` recording what reaches the application."""

    def __init__(self) -> None:
        self.got: list[str | bytes | None] = []
        self.ended = locks.Event()

    def __call__(self, message: str | bytes | None) -> None:
        self.got.append(message)
        if message is None:
            self.ended.set()

    async def wait_ended(self) -> None:
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), self.ended.wait())


async def client_and_peer(
    server: ws_raw.RawServer,
    answer: dict[str, str | None] | None = None,
    *,
    then: bytes = b"",
    **kwargs: Any,
) -> tuple[websocket.WebSocketClientConnection, ws_raw.RawPeer]:
    """Our client connected to a raw peer that answered its handshake."""
    connecting = websocket.websocket_connect(server.url, **kwargs)
    peer = await server.accept()
    await peer.read_request()
    await peer.answer(headers=answer, then=then)
    connection = await gen.with_timeout(datetime.timedelta(seconds=WAIT), connecting)
    return connection, peer


CLIENT_FAILING_FRAMES = [
    pytest.param(frame(TEXT, "x", mask=True), PROTOCOL, id="masked-server-frame"),
    pytest.param(frame(TEXT, "x", mask=False, rsv1=True), PROTOCOL, id="rsv1-without-extension"),
    pytest.param(frame(3, b"", mask=False), PROTOCOL, id="reserved-opcode-3"),
    pytest.param(frame(11, b"", mask=False), PROTOCOL, id="reserved-opcode-11"),
    pytest.param(frame(PING, bytes(126), mask=False), PROTOCOL, id="ping-of-126-bytes"),
    pytest.param(frame(PING, b"", fin=False, mask=False), PROTOCOL, id="fragmented-ping"),
    pytest.param(frame(CONTINUATION, "x", mask=False), PROTOCOL, id="continuation-without-start"),
    pytest.param(
        frame(TEXT, "a", fin=False, mask=False) + frame(TEXT, "b", mask=False),
        PROTOCOL,
        id="text-mid-fragmentation",
    ),
    pytest.param(
        frame(BINARY, b"", mask=False, length=1 << 63, length_size=8),
        PROTOCOL,
        id="64-bit-length-with-msb-set",
    ),
    pytest.param(frame(TEXT, "ab", mask=False, length_size=2), PROTOCOL, id="non-minimal-length"),
    pytest.param(frame(CLOSE, b"\x03", mask=False), PROTOCOL, id="close-payload-of-1-byte"),
    pytest.param(ws_raw.close(1005, mask=False), PROTOCOL, id="close-code-1005"),
    pytest.param(frame(TEXT, b"\xff", mask=False), BAD_DATA, id="invalid-utf8"),
    pytest.param(
        frame(BINARY, b"", mask=False, length=SMALL + 1), TOO_BIG, id="over-max-message-size"
    ),
]


@pytest.mark.parametrize(("bad", "code"), CLIENT_FAILING_FRAMES)
async def test_client_fails_on_a_bad_server_frame(
    raw_server: ws_raw.RawServer, bad: bytes, code: int
) -> None:
    messages = ClientMessages()
    connection, peer = await client_and_peer(
        raw_server, on_message_callback=messages, max_message_size=SMALL
    )
    await peer.write(frame(TEXT, "before", mask=False), bad, frame(TEXT, "after", mask=False))
    [close] = await peer.read_frames_until_close()
    assert close.masked and close.close_code == code
    await peer.expect_eof()
    await messages.wait_ended()
    assert messages.got == ["before", None]
    assert connection.close_code is None


async def test_client_masks_every_frame_with_a_fresh_key(raw_server: ws_raw.RawServer) -> None:
    connection, peer = await client_and_peer(raw_server)
    request = peer.request_headers
    assert request["Sec-WebSocket-Version"] == "13"
    assert len(base64.b64decode(request["Sec-WebSocket-Key"], validate=True)) == 16
    for _ in range(3):
        await connection.write_message("same")
    await connection.write_message(b"\x00" * 200, binary=True)
    connection.ping(b"p")
    frames = [await peer.read_frame() for _ in range(5)]
    assert all(f is not None and f.masked for f in frames)
    assert [(f.opcode, f.payload) for f in frames if f is not None] == [
        (TEXT, b"same"),
        (TEXT, b"same"),
        (TEXT, b"same"),
        (BINARY, b"\x00" * 200),
        (PING, b"p"),
    ]
    connection.close()


async def test_client_gets_frames_sent_with_the_101(raw_server: ws_raw.RawServer) -> None:
    connection, _peer = await client_and_peer(
        raw_server, then=frame(TEXT, "early", mask=False) + frame(BINARY, b"\x01", mask=False)
    )
    try:
        read = datetime.timedelta(seconds=WAIT)
        assert await gen.with_timeout(read, connection.read_message()) == "early"
        assert await gen.with_timeout(read, connection.read_message()) == b"\x01"
    finally:
        connection.close()


async def test_client_answers_the_servers_close_then_waits_for_tcp(
    raw_server: ws_raw.RawServer,
) -> None:
    messages = ClientMessages()
    connection, peer = await client_and_peer(raw_server, on_message_callback=messages)
    await peer.write(ws_raw.close(4001, "bye", mask=False), frame(TEXT, "late", mask=False))
    [close] = await peer.read_frames_until_close()
    assert close.masked and close.close_code == 4001
    peer.close()  # the server closes TCP, as it must
    await messages.wait_ended()
    assert messages.got == [None]
    assert (connection.close_code, connection.close_reason) == (4001, "bye")


async def test_client_drops_a_server_that_never_closes_tcp(
    raw_server: ws_raw.RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket, "_CLOSE_TIMEOUT", 0.05)
    messages = ClientMessages()
    connection, peer = await client_and_peer(raw_server, on_message_callback=messages)
    await peer.write(ws_raw.close(1000, mask=False))
    await peer.read_frames_until_close()
    await peer.expect_eof()  # the client gave up waiting
    await messages.wait_ended()
    assert connection.close_code == 1000


async def test_client_close_handshake(raw_server: ws_raw.RawServer) -> None:
    connection, peer = await client_and_peer(raw_server)
    connection.close(1001, "going")
    [close] = await peer.read_frames_until_close()
    assert close.masked and (close.close_code, close.close_reason) == (1001, "going")
    await peer.write(ws_raw.close(1001, mask=False))
    peer.close()
    read = datetime.timedelta(seconds=WAIT)
    assert await gen.with_timeout(read, connection.read_message()) is None
    assert connection.close_code == 1001


CLIENT_BAD_ANSWERS = [
    pytest.param({"Sec-WebSocket-Accept": ws_raw.accept_value("x")}, {}, id="wrong-accept"),
    pytest.param({"Sec-WebSocket-Accept": None}, {}, id="missing-accept"),
    pytest.param({"Upgrade": "h2c"}, {}, id="upgrade-not-websocket"),
    pytest.param({"Connection": "keep-alive"}, {}, id="connection-without-upgrade"),
    pytest.param({"Sec-WebSocket-Protocol": "chat"}, {}, id="subprotocol-not-offered"),
    pytest.param(
        {"Sec-WebSocket-Extensions": "permessage-deflate"}, {}, id="extension-not-offered"
    ),
    pytest.param(
        {"Sec-WebSocket-Extensions": "x-unknown"},
        {"compression_options": {}},
        id="unknown-extension",
    ),
    pytest.param(
        {"Sec-WebSocket-Extensions": "permessage-deflate; foo"},
        {"compression_options": {}},
        id="unknown-parameter",
    ),
    pytest.param(
        {
            "Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover; "
            "server_no_context_takeover"
        },
        {"compression_options": {}},
        id="duplicate-parameter",
    ),
    pytest.param(
        {"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=7"},
        {"compression_options": {}},
        id="bad-window-bits",
    ),
]


@pytest.mark.parametrize(("answer", "kwargs"), CLIENT_BAD_ANSWERS)
async def test_client_refuses_a_bad_handshake_answer(
    raw_server: ws_raw.RawServer, answer: dict[str, str | None], kwargs: dict[str, Any]
) -> None:
    connecting = websocket.websocket_connect(raw_server.url, **kwargs)
    peer = await raw_server.accept()
    await peer.read_request()
    await peer.answer(headers=answer)
    with pytest.raises(websocket.WebSocketError):
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), connecting)
    await peer.expect_eof()  # the client closed the connection


@pytest.mark.parametrize("status", ["200 OK", "400 Bad Request", "426 Upgrade Required"])
async def test_client_refuses_a_status_other_than_101(
    raw_server: ws_raw.RawServer, status: str
) -> None:
    connecting = websocket.websocket_connect(raw_server.url)
    peer = await raw_server.accept()
    await peer.read_request()
    await peer.answer(status, {"Content-Length": "0"})
    with pytest.raises(HTTPClientError) as caught:
        await gen.with_timeout(datetime.timedelta(seconds=WAIT), connecting)
    assert caught.value.code == int(status.split()[0])


@pytest.mark.parametrize(
    ("answer", "fresh", "bits"),
    [
        ("permessage-deflate", False, 15),
        ("permessage-deflate; client_no_context_takeover", True, 15),
        ("permessage-deflate; client_max_window_bits=10", False, 10),
        ("permessage-deflate; server_no_context_takeover; server_max_window_bits=9", False, 15),
    ],
    ids=["plain", "client-no-context-takeover", "client-window-10", "server-params"],
)
async def test_client_deflate_keeps_to_the_answer(
    raw_server: ws_raw.RawServer, answer: str, fresh: bool, bits: int
) -> None:
    connection, peer = await client_and_peer(
        raw_server, {"Sec-WebSocket-Extensions": answer}, compression_options={}
    )
    try:
        offer = ws_raw.parse_extensions(peer.request_headers["Sec-WebSocket-Extensions"])
        assert offer == [("permessage-deflate", {"client_max_window_bits": None})]
        # Repeats at a distance of 2000 bytes: beyond a 10-bit window.
        message = os.urandom(1000).hex() * 2
        await connection.write_message(message)
        await connection.write_message(message)
        first, second = await peer.read_frame(), await peer.read_frame()
        assert first is not None and second is not None
        assert first.rsv1 and second.rsv1 and first.masked
        inflater = ws_raw.Inflater(bits)
        assert inflater.inflate(first.payload).decode() == message
        assert inflater.inflate(second.payload).decode() == message
        # Without context takeover, each message is compressed afresh.
        assert (second.payload == first.payload) is fresh
        # And the client inflates what the server compresses.
        await peer.write(
            frame(TEXT, ws_raw.deflate("from the server " * 10, 9), mask=False, rsv1=True)
        )
        read = datetime.timedelta(seconds=WAIT)
        assert await gen.with_timeout(read, connection.read_message()) == "from the server " * 10
    finally:
        connection.close()
