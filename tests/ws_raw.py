"""A raw WebSocket client for tests: any frame, byte for byte, over a real socket.

The WebSocket code under test must never be trusted to build the bytes that
test it, so this module speaks RFC 6455 on its own, in the plainest way:

- :func:`frame` builds any frame a client could send, valid or not: any
  opcode, FIN and RSV bits, masked or not (or with a mask bit that lies),
  any length encoding (7-bit, 16-bit, 64-bit, non-minimal, MSB set) and a
  declared length that differs from the payload (to send only a header).
- :class:`RawWebSocket` opens a TCP connection with reactor's
  :class:`~reactor.iostream.IOStream` (so it runs on the test's ``io_loop``,
  any backend), sends an opening handshake with the headers the test chose,
  and returns the status and headers; then writes frames and reads the
  server's frames one by one (:meth:`RawWebSocket.read_frame`), telling a
  clean EOF (``None``) from a connection cut mid-frame.
- :func:`deflate`, :class:`Inflater` and :func:`parse_extensions` speak
  permessage-deflate (RFC 7692) the same plain way.
- :class:`RawServer` and :class:`RawPeer` are the other side: a listener
  whose connections answer a WebSocket client's handshake as the test
  chooses and then send it any frame, to test a client.

Every read is bounded by :data:`TIMEOUT`: a server that hangs fails the
test, it never blocks it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import socket
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reactor import gen
from reactor.httputil import HTTPHeaders
from reactor.iostream import IOStream, StreamClosedError

TIMEOUT = 4.0
"""Bound, in seconds, on every read of :class:`RawWebSocket`."""

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 §1.3: appended to the key before hashing it into the accept value."""

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA

MAX_FRAME = 64 * 1024 * 1024
"""The largest frame payload :meth:`RawWebSocket.read_frame` accepts."""


def new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def apply_mask(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated (masking and unmasking)."""
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )


def frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool | bytes = True,
    mask_bit: bool | None = None,
    length: int | None = None,
    length_size: int | None = None,
) -> bytes:
    """One frame's bytes, exactly as asked.

    ``mask``: True (a random key, as a client must), a 4-byte key, or False
    (unmasked, as a server must). ``mask_bit`` overrides the header's mask
    bit alone (the key and masking follow ``mask``), to make a frame lie.
    ``length`` is the length written in the header (default: the payload's);
    ``length_size`` forces its encoding: 0 (7-bit), 2 (16-bit, code 126) or
    8 (64-bit, code 127), minimal or not; default: the minimal one. Nothing
    is checked: an opcode above 15 or a length too big for its encoding is
    the caller's business (it raises from ``struct``).
    """
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    declared = len(data) if length is None else length
    if length_size is None:
        length_size = 0 if declared < 126 else 2 if declared < 65536 else 8
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | opcode
    key = os.urandom(4) if mask is True else mask or b""
    bit = 0x80 if (bool(key) if mask_bit is None else mask_bit) else 0
    if length_size == 0:
        header = struct.pack("!BB", first, bit | declared)
    elif length_size == 2:
        header = struct.pack("!BBH", first, bit | 126, declared)
    else:
        header = struct.pack("!BBQ", first, bit | 127, declared)
    return header + key + (apply_mask(key, data) if key else data)


def text(message: str, **kwargs: Any) -> bytes:
    """A masked, final text frame (``kwargs`` as for :func:`frame`)."""
    return frame(TEXT, message.encode("utf-8"), **kwargs)


def binary(message: bytes, **kwargs: Any) -> bytes:
    """A masked, final binary frame."""
    return frame(BINARY, message, **kwargs)


def close_payload(code: int | None = None, reason: bytes | str = b"") -> bytes:
    """A Close frame's payload: empty, or the 2-byte code and the reason."""
    if code is None:
        return b""
    data = reason.encode("utf-8") if isinstance(reason, str) else reason
    return struct.pack("!H", code) + data


def close(code: int | None = None, reason: bytes | str = b"", **kwargs: Any) -> bytes:
    """A masked Close frame."""
    return frame(CLOSE, close_payload(code, reason), **kwargs)


TAIL = b"\x00\x00\xff\xff"
"""RFC 7692 §7.2.1: the end of a sync flush, stripped from each compressed message."""


def deflate(message: bytes | str, wbits: int = 15) -> bytes:
    """``message`` compressed as a permessage-deflate payload (no context
    takeover: a fresh compressor, always valid whatever was negotiated)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -wbits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[: -len(TAIL)]


class Inflater:
    """Inflates the server's compressed messages, one connection's worth
    (the context carries over, as the server's may).

    With ``wbits`` below 15 it also checks that the server kept to that
    window: zlib itself lets a back-reference reach into whatever output
    the same call produced, so the output is taken a few bytes at a time,
    leaving only the window as history ("invalid distance too far back").
    """

    def __init__(self, wbits: int = 15) -> None:
        self._decompressor = zlib.decompressobj(-wbits)
        self._step = 0 if wbits == 15 else 16

    def inflate(self, payload: bytes) -> bytes:
        if not self._step:
            return self._decompressor.decompress(payload + TAIL)
        out = []
        data = payload + TAIL
        while True:
            chunk = self._decompressor.decompress(data, self._step)
            out.append(chunk)
            data = self._decompressor.unconsumed_tail
            if not data and len(chunk) < self._step:
                return b"".join(out)


def parse_extensions(header: str | None) -> list[tuple[str, dict[str, str | None]]]:
    """``Sec-WebSocket-Extensions`` as ``[(name, {param: value or None})]``."""
    if not header:
        return []
    result = []
    for offer in header.split(","):
        name, *params = (part.strip() for part in offer.split(";"))
        values: dict[str, str | None] = {}
        for param in params:
            key, sep, value = param.partition("=")
            values[key.strip()] = value.strip().strip('"') if sep else None
        result.append((name, values))
    return result


@dataclass
class Frame:
    """A frame the server sent, as read off the wire."""

    opcode: int
    payload: bytes
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    masked: bool

    @property
    def close_code(self) -> int | None:
        """A Close frame's code (None for an empty payload)."""
        assert self.opcode == CLOSE, self
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        assert self.opcode == CLOSE, self
        return self.payload[2:].decode("utf-8")

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")


class CutMidFrame(Exception):
    """The connection ended inside a frame (a clean EOF is ``None``)."""


@dataclass
class HandshakeResponse:
    status: int
    reason: str
    headers: HTTPHeaders
    body: bytes


def handshake_request(
    host: str,
    path: str = "/",
    headers: Mapping[str, str | None] | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    key: str | None = None,
) -> tuple[bytes, str]:
    """An opening handshake and the key it carries.

    The defaults are a valid request; ``headers`` replaces a default header of
    the same name (case-insensitive) or adds one, a None value removes it;
    ``extra_headers`` are appended as they are (duplicates allowed).
    """
    key = new_key() if key is None else key
    fields: dict[str, tuple[str, str]] = {
        name.lower(): (name, value)
        for name, value in [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
    }
    for name, value in (headers or {}).items():
        if value is None:
            fields.pop(name.lower(), None)
        else:
            fields[name.lower()] = (name, value)
    lines = [f"{method} {path} {version}"]
    lines += [f"{name}: {value}" for name, value in fields.values()]
    lines += [f"{name}: {value}" for name, value in extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


async def _bounded(future: Any, timeout: float) -> Any:
    return await gen.with_timeout(
        datetime.timedelta(seconds=timeout), future, quiet_exceptions=StreamClosedError
    )


class RawWebSocket:
    """A client connection driven byte by byte (see the module's docstring).

    ``await RawWebSocket.connect(port, path, ...)`` sends the handshake (the
    arguments of :func:`handshake_request`) plus ``then`` (bytes sent in
    the same write, e.g. frames right behind the request) and reads the
    response head; ``receive_buffer`` sets the socket's SO_RCVBUF (a client
    that reads slowly, with little room in the kernel). :attr:`response`
    holds the head; with a 101 the connection is ready for :meth:`write`
    and :meth:`read_frame`, otherwise the body has been read too (by
    Content-Length).
    """

    def __init__(self, stream: IOStream, key: str) -> None:
        self.stream = stream
        self.key = key
        self.response: HandshakeResponse | None = None

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/",
        headers: Mapping[str, str | None] | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        *,
        then: bytes = b"",
        timeout: float = TIMEOUT,
        receive_buffer: int | None = None,
        **request_kwargs: Any,
    ) -> RawWebSocket:
        request, key = handshake_request(
            f"127.0.0.1:{port}", path, headers, extra_headers, **request_kwargs
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connecting, so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        stream = IOStream(sock)
        self = cls(stream, key)
        try:
            await _bounded(stream.connect(("127.0.0.1", port)), timeout)
            stream.write(request + then)
            head = await _bounded(stream.read_until(b"\r\n\r\n", max_bytes=65536), timeout)
            first, _, rest = head.decode("latin-1").partition("\r\n")
            _, status, reason = [*first.split(" ", 2), ""][:3]
            parsed = HTTPHeaders.parse(rest)
            body = b""
            if int(status) != 101 and "Content-Length" in parsed:
                body = await _bounded(stream.read_bytes(int(parsed["Content-Length"])), timeout)
            self.response = HandshakeResponse(int(status), reason, parsed, body)
        except BaseException:
            stream.close()
            raise
        return self

    @property
    def status(self) -> int:
        assert self.response is not None
        return self.response.status

    @property
    def headers(self) -> HTTPHeaders:
        assert self.response is not None
        return self.response.headers

    def check_accept(self) -> None:
        """Assert a valid 101 for this connection's key."""
        assert self.status == 101, self.response
        assert self.headers["Sec-WebSocket-Accept"] == accept_value(self.key)
        assert self.headers["Upgrade"].lower() == "websocket"
        assert "upgrade" in self.headers["Connection"].lower()

    async def write(self, *frames: bytes) -> None:
        """Send ``frames`` in one write (one packet, as far as TCP goes)."""
        await _bounded(self.stream.write(b"".join(frames)), TIMEOUT)

    async def read_frame(self, timeout: float = TIMEOUT) -> Frame | None:
        """The server's next frame; None at a clean EOF (between frames).

        Raises :exc:`CutMidFrame` if the connection ends inside a frame,
        ``TimeoutError`` if nothing comes in ``timeout`` seconds.
        """
        stream = self.stream
        try:
            head = await _bounded(stream.read_bytes(2), timeout)
        except StreamClosedError:
            return None
        try:
            first, second = head
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await _bounded(stream.read_bytes(2), timeout))
            elif size == 127:
                (size,) = struct.unpack("!Q", await _bounded(stream.read_bytes(8), timeout))
            assert size <= MAX_FRAME, f"server frame of {size} bytes"
            key = await _bounded(stream.read_bytes(4), timeout) if second & 0x80 else b""
            payload = await _bounded(stream.read_bytes(size), timeout) if size else b""
        except StreamClosedError as e:
            raise CutMidFrame(f"connection closed inside a frame starting {bytes(head)!r}") from e
        return Frame(
            opcode=first & 0x0F,
            payload=apply_mask(key, payload) if key else payload,
            fin=bool(first & 0x80),
            rsv1=bool(first & 0x40),
            rsv2=bool(first & 0x20),
            rsv3=bool(first & 0x10),
            masked=bool(key),
        )

    async def read_frames_until_close(self, timeout: float = TIMEOUT) -> list[Frame]:
        """Every frame up to and including the server's Close (which must come)."""
        frames: list[Frame] = []
        while True:
            got = await self.read_frame(timeout)
            assert got is not None, f"EOF without a Close frame, after {frames}"
            frames.append(got)
            if got.opcode == CLOSE:
                return frames

    async def expect_close(self, code: int | None, timeout: float = TIMEOUT) -> list[Frame]:
        """Read up to the server's Close, check its code, then check that the
        server closes TCP (EOF, no byte after the Close). Returns the frames
        that came before the Close."""
        frames = await self.read_frames_until_close(timeout)
        assert frames[-1].close_code == code, frames[-1]
        await self.expect_eof(timeout)
        return frames[:-1]

    async def expect_eof(self, timeout: float = TIMEOUT) -> None:
        """The server closes TCP, sending nothing more."""
        rest = await _bounded(self.stream.read_until_close(), timeout)
        assert rest == b"", rest

    def close(self) -> None:
        self.stream.close()


# -- the server's side: a raw peer for testing a WebSocket client -----------------------


class RawPeer(RawWebSocket):
    """One connection accepted by :class:`RawServer`: reads the client's
    handshake, answers it with the status and headers the test chose, then
    writes frames (unmasked, as a server's) and reads the client's."""

    def __init__(self, stream: IOStream) -> None:
        super().__init__(stream, "")
        self.request_line = ""
        self.request_headers = HTTPHeaders()

    async def read_request(self, timeout: float = TIMEOUT) -> HTTPHeaders:
        head = await _bounded(self.stream.read_until(b"\r\n\r\n", max_bytes=65536), timeout)
        self.request_line, _, rest = head.decode("latin-1").partition("\r\n")
        self.request_headers = HTTPHeaders.parse(rest)
        self.key = self.request_headers.get("Sec-WebSocket-Key", "")
        return self.request_headers

    async def answer(
        self,
        status: str = "101 Switching Protocols",
        headers: Mapping[str, str | None] | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        *,
        then: bytes = b"",
    ) -> None:
        """The response head (a valid 101 for the request's key by default;
        ``headers`` and ``extra_headers`` as for :func:`handshake_request`),
        and ``then`` in the same write."""
        fields: dict[str, tuple[str, str]] = {
            name.lower(): (name, value)
            for name, value in [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_value(self.key)),
            ]
        }
        for name, value in (headers or {}).items():
            if value is None:
                fields.pop(name.lower(), None)
            else:
                fields[name.lower()] = (name, value)
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in fields.values()]
        lines += [f"{name}: {value}" for name, value in extra_headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        await _bounded(self.stream.write(head + then), TIMEOUT)


class RawServer:
    """A listener on 127.0.0.1 whose connections the test takes one by one
    (:meth:`accept`), as :class:`RawPeer` objects. :meth:`close` closes the
    listener and every connection it accepted."""

    def __init__(self) -> None:
        from reactor.queues import Queue
        from reactor.tcpserver import TCPServer
        from reactor.testing import bind_unused_port

        self._accepted: Queue[RawPeer] = Queue()
        self._peers: list[RawPeer] = []
        accepted = self._accepted
        peers = self._peers

        class Accepting(TCPServer):
            def handle_stream(self, stream: IOStream, address: Any) -> None:
                peer = RawPeer(stream)
                peers.append(peer)
                accepted.put_nowait(peer)

        sock, self.port = bind_unused_port()
        self._server = Accepting()
        self._server.add_sockets([sock])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def accept(self, timeout: float = TIMEOUT) -> RawPeer:
        peer: RawPeer = await self._accepted.get(timeout=datetime.timedelta(seconds=timeout))
        return peer

    def close(self) -> None:
        self._server.stop()
        for peer in self._peers:
            peer.close()
