"""WebSockets (RFC 6455, with RFC 7692 permessage-deflate): a server handler
(:class:`WebSocketHandler`) and a client (:func:`websocket_connect`), with
Tornado 6.6's API.

Some facts about the protocol that the code below relies on (each is also a
test, in ``tests/conformance/test_websocket.py`` or the raw-frame suite):

- A frame is 2 bytes of header, then 0, 2 or 8 bytes of extended length
  (7-bit values 126 and 127 announce them), then a 4-byte masking key if the
  MASK bit is set, then the payload. So its whole size is known from at most
  14 bytes: a frame too big for ``max_message_size`` is refused (1009) from
  its header, before its payload is buffered.
- Every frame a client sends is masked and no frame a server sends is
  (section 5.1): the mask keeps a browser's script from writing bytes of its
  choosing on the wire (cache-poisoning proxies). We close with 1002 on a
  frame with the wrong masking, where Tornado and aiohttp accept it.
- Control frames (close, ping, pong) have at most 125 bytes of payload, are
  never fragmented, and may come between the fragments of a data message
  (section 5.5): they are handled at once.
- A text message is UTF-8 as a whole; a fragment may end inside a code point,
  so fragments are checked with an incremental decoder.
- The close handshake (section 7): each side sends one Close frame and the
  server closes TCP first (so the TIME_WAIT state stays on the server). A
  socket closed with unread input makes the kernel send a reset, and a
  reset can make the peer drop our Close frame before it reads it: input
  that is waiting is read and discarded before such a close.
- permessage-deflate (RFC 7692) compresses each data message with DEFLATE
  and a sync flush, strips the final ``00 00 ff ff``, and flags the first
  frame with RSV1. A small compressed message can inflate to anything, so
  inflating is bounded by ``max_message_size``. zlib cannot make a raw
  deflate stream with an 8-bit window (it uses 9), so an offer that asks us
  to compress with ``server_max_window_bits=8`` is declined.

The hot path (one masked 64-byte message in, one frame out): the stream
hands each read to :meth:`WebSocketProtocol13._on_data` as a view of its
shared chunk (``start_reading(views=True)``); frames are parsed straight out
of it and only an incomplete frame's bytes are copied (into one bytearray
per connection). Unmasking is ``websockets.speedups.apply_mask`` when that C
helper is installed, else one big-integer XOR (see docs/websocket.md for the
measurements). A frame is written with one ``stream.write``.
"""

from __future__ import annotations

import abc
import base64
import codecs
import collections
import copy
import hashlib
import io
import logging
import os
import socket
import ssl
import struct
import sys
import warnings
import zlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reactor import escape, gen, httputil, version
from reactor.concurrent import Future, future_set_result_unless_cancelled
from reactor.escape import utf8
from reactor.httpclient import (
    HTTPClientError,
    HTTPRequest,
    HTTPStreamClosedError,
    HTTPTimeoutError,
    _ssl_context_for,
)
from reactor.httputil import HTTPHeaders
from reactor.ioloop import IOLoop, _new_future
from reactor.iostream import (
    IOStream,
    StreamBufferFullError,
    StreamClosedError,
    UnsatisfiableReadError,
)
from reactor.log import app_log, gen_log
from reactor.tcpclient import TCPClient
from reactor.web import RequestHandler

if TYPE_CHECKING:
    from reactor.netutil import Resolver

__all__ = [
    "WebSocketClientConnection",
    "WebSocketClosedError",
    "WebSocketError",
    "WebSocketHandler",
    "WebSocketProtocol",
    "WebSocketProtocol13",
    "websocket_connect",
]

_default_max_message_size = 10 * 1024 * 1024

# Seconds a side waits for the peer's part of the close handshake.
_CLOSE_TIMEOUT = 5.0
# The RFC's GUID (section 1.3), appended to the key for Sec-WebSocket-Accept.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# The most a client reads of a handshake answer's head.
_MAX_HANDSHAKE_HEAD = 64 * 1024
# The most 1xx answers a client skips before the handshake's own.
_MAX_INTERIM_ANSWERS = 10
# Payloads at least this big are written after their header, not joined to it.
_JOIN_BELOW = 64 * 1024

_OP_CONTINUATION = 0x0
_OP_TEXT = 0x1
_OP_BINARY = 0x2
_OP_CLOSE = 0x8
_OP_PING = 0x9
_OP_PONG = 0xA


def _close_code_allowed(code: int) -> bool:
    """Codes a Close frame may carry (RFC 6455 section 7.4 and the IANA
    registry): 1004-1006 and 1015 are reserved for reports, never sent."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# _XOR[k] maps each byte b to b ^ k (for bytes.translate).
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]


def _mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``mask``: one big integer for a
    small payload, four ``bytes.translate`` over strided slices for a big
    one (faster from about 1 KiB: see docs/websocket.md)."""
    n = len(data)
    if not n:
        return b""
    if n < 1024:
        key = int.from_bytes((mask * ((n >> 2) + 1))[:n], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")
    out = bytearray(data)
    out[0::4] = out[0::4].translate(_XOR[mask[0]])
    out[1::4] = out[1::4].translate(_XOR[mask[1]])
    out[2::4] = out[2::4].translate(_XOR[mask[2]])
    out[3::4] = out[3::4].translate(_XOR[mask[3]])
    return bytes(out)


_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes]
try:  # the websockets package's C helper: 5x to 80x faster (docs/websocket.md)
    from websockets.speedups import apply_mask as _mask  # (data, mask), as _mask_python
except ImportError:  # pragma: no cover - depends on what is installed
    _mask = _mask_python


class WebSocketError(Exception):
    """A WebSocket failed (a bad handshake answer, a protocol error)."""


class WebSocketClosedError(WebSocketError):
    """Raised when writing to (or pinging) a closed WebSocket."""


class _DecompressTooLargeError(Exception):
    pass


class _ProtocolError(Exception):
    """Fails the connection with ``code`` (raised inside the frame parser)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class _WebSocketParams:
    def __init__(
        self,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        max_message_size: int = _default_max_message_size,
        compression_options: dict[str, Any] | None = None,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_message_size = max_message_size
        self.compression_options = compression_options


_seen_log_messages: set[str] = set()


def de_dupe_gen_log(level: int, msg: str) -> None:
    """Log ``msg`` on ``gen_log`` the first time only (a warning about a
    setting would otherwise repeat for every connection)."""
    if msg not in _seen_log_messages:
        if len(_seen_log_messages) < 1000:
            _seen_log_messages.add(msg)
        gen_log.log(level, msg)


def _raise_not_supported_for_websockets(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("Method not supported for Web Sockets")


def _token_list(values: list[str]) -> list[str]:
    """The lower-cased tokens of comma-separated header values."""
    return [token.strip().lower() for value in values for token in value.split(",")]


class WebSocketHandler(RequestHandler):
    """A handler for one WebSocket connection: subclass it and override
    :meth:`open`, :meth:`on_message` and :meth:`on_close`; send with
    :meth:`write_message`.

    The ``GET`` method does the opening handshake; refusals are HTTP answers
    (400 for a malformed request, 426 for a version other than 13, 403 when
    :meth:`check_origin` says no). Application settings:
    ``websocket_ping_interval``, ``websocket_ping_timeout``,
    ``websocket_max_message_size`` (each also a property to override).
    """

    def __init__(
        self, application: Any, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> None:
        super().__init__(application, request, **kwargs)
        self.ws_connection: WebSocketProtocol13 | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._on_close_called = False
        self.open_args: tuple[str, ...] = ()
        self.open_kwargs: dict[str, str] = {}

    async def get(self, *args: Any, **kwargs: Any) -> None:
        self.open_args = args
        self.open_kwargs = kwargs
        request = self.request
        headers = request.headers
        # RFC 6455 section 4.1: the handshake is an HTTP/1.1 (or later) GET.
        if request.version == "HTTP/1.0" or not request.version.startswith("HTTP/1."):
            self._refuse(400, "WebSocket needs HTTP/1.1 or later.")
            return
        # Section 4.1: the handshake is a bodiless GET. Bytes after the head
        # are WebSocket frames, so a body would be read as frames (a proxy
        # that forwards it as a body would let it smuggle frames in).
        if headers.get("Content-Length", "0").lstrip("0") or "Transfer-Encoding" in headers:
            self._refuse(400, "A WebSocket handshake has no body.")
            return
        # Section 4.2.1, items 3 and 4: token lists, case-insensitive.
        if "websocket" not in _token_list(headers.get_list("Upgrade")):
            self._refuse(400, 'Can "Upgrade" only to "WebSocket".')
            return
        if "upgrade" not in _token_list(headers.get_list("Connection")):
            self._refuse(400, '"Connection" must be "Upgrade".')
            return
        # Section 4.4: an unsupported version gets a 426 naming ours.
        if headers.get_list("Sec-WebSocket-Version") != ["13"]:
            self._upgrade_required()
            return
        # Section 4.2.1, item 5: the key is base64 of 16 bytes.
        keys = headers.get_list("Sec-WebSocket-Key")
        if len(keys) != 1 or not _valid_key(keys[0]):
            self._refuse(400, "Missing/Invalid WebSocket headers")  # Tornado's words
            return
        # Section 10.2: browsers do not apply the same-origin policy to
        # WebSockets. Sec-Fetch-Site (or, without it, Origin against Host)
        # decides; check_origin is asked only about a cross-origin browser.
        # After prepare(), so check_origin may use what prepare() learnt.
        error = self._check_cross_origin(self.check_origin)
        if error is not None:
            self._refuse(403, "Cross origin websockets not allowed", error)
            return
        self.ws_connection = self.get_websocket_protocol()
        if self.ws_connection is None:
            self._upgrade_required()
            return
        opening = self.ws_connection.accept_connection(self)
        if opening is not None:
            await opening  # an async open

    def _upgrade_required(self) -> None:
        # Tornado's 426: an empty body, nothing logged but the access line.
        self.set_status(426, "Upgrade Required")
        self.set_header("Sec-WebSocket-Version", "13")
        self.finish()

    def _refuse(self, status: int, message: str, why: str | None = None) -> None:
        self.set_status(status)
        self.finish(message)
        if why is None:  # Tornado's debug lines: the body, then why
            gen_log.debug("%s", message)
        else:
            gen_log.debug("%s: %s", message, why)

    @property
    def ping_interval(self) -> float | None:
        """Seconds between the pings we send (setting
        ``websocket_ping_interval``; 0 or None: no pings)."""
        return self.settings.get("websocket_ping_interval", None)

    @property
    def ping_timeout(self) -> float | None:
        """Seconds to wait for a pong before the peer counts as gone (setting
        ``websocket_ping_timeout``; default and maximum: the ping interval;
        0: no timeout)."""
        return self.settings.get("websocket_ping_timeout", None)

    @property
    def max_message_size(self) -> int:
        """The largest message accepted, in bytes, after decompression
        (setting ``websocket_max_message_size``, default 10 MiB); bigger ones
        close the connection with 1009."""
        return self.settings.get(  # type: ignore[no-any-return]
            "websocket_max_message_size", _default_max_message_size
        )

    def write_message(
        self, message: bytes | str | dict[str, Any], binary: bool = False
    ) -> Future[None]:
        """Send a message: a str (text), a dict (as JSON text), bytes (a
        binary message with ``binary=True``, else sent as text as they are).

        Returns a future that resolves once the frame is handed to the
        kernel: await it to send at the pace the client reads. Raises
        :class:`WebSocketClosedError` if the connection is closed or closing
        (the future fails with it if the connection closes first)."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            raise WebSocketClosedError()
        return connection.write_message(message, binary=binary)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Pick one of the client's ``Sec-WebSocket-Protocol`` values (or
        None, the default, for none); returning a value not offered is a
        bug (a 500)."""
        return None

    @property
    def selected_subprotocol(self) -> str | None:
        """The subprotocol :meth:`select_subprotocol` chose."""
        assert self.ws_connection is not None
        return self.ws_connection.selected_subprotocol

    def get_compression_options(self) -> dict[str, Any] | None:
        """Return a dict to allow permessage-deflate (``{}`` for the
        defaults; keys ``compression_level`` and ``mem_level``), None (the
        default) to refuse it."""
        return None

    def open(self, *args: str, **kwargs: str) -> Awaitable[None] | None:
        """Called when the connection is open, with the route's groups. May
        be a coroutine: no message is delivered before it is done."""
        return None

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """Called for each message (str for text, bytes for binary). May be
        a coroutine: the next message waits for it (reading pauses)."""
        raise NotImplementedError

    def ping(self, data: str | bytes = b"") -> None:
        """Send a ping (at most 125 bytes of ``data``); raises
        :class:`WebSocketClosedError` if the connection is closed."""
        data = utf8(data)
        if self.ws_connection is None or self.ws_connection.is_closing():
            raise WebSocketClosedError()
        self.ws_connection.write_ping(data)

    def on_pong(self, data: bytes) -> None:
        """Called when a pong arrives."""

    def on_ping(self, data: bytes) -> None:
        """Called when a ping arrives (after it has been answered)."""

    def on_close(self) -> None:
        """Called once when the connection is closed, whatever closed it;
        ``close_code`` and ``close_reason`` hold what the peer sent."""

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the close handshake (``code``: 1000 when only ``reason``
        is given; neither: an empty Close frame; a reason past the 123
        bytes a Close frame holds is cut at a character boundary). TCP is
        closed once the client answers, or after 5 seconds. A code no
        endpoint may send (outside 1000-1003, 1007-1014, 3000-4999) raises
        ValueError."""
        if self.ws_connection is not None:
            self.ws_connection.close(code, reason)
            self.ws_connection = None

    def check_origin(self, origin: str) -> bool:
        """Whether to accept a browser's connection from another site,
        ``origin`` (the ``Origin`` header): by default
        :meth:`check_trusted_origin` (the ``trusted_origins`` setting).

        It is asked only about cross-origin browsers: a request the browser
        marks ``Sec-Fetch-Site: same-origin`` (or ``none``), one without
        ``Sec-Fetch-Site`` whose ``Origin`` host and port are the ``Host``
        header, and one without ``Origin`` (not a browser) are accepted
        before it. Override to allow other sites; it runs after
        :meth:`prepare`."""
        return self.check_trusted_origin(origin)

    def set_nodelay(self, value: bool) -> None:
        """Turn Nagle's algorithm off (True) or on for this connection."""
        assert self.ws_connection is not None
        self.ws_connection.set_nodelay(value)

    def on_connection_close(self) -> None:
        connection = self.ws_connection
        if connection is not None:
            connection.on_connection_close()
            self.ws_connection = None
        if not self._on_close_called:
            self._on_close_called = True
            try:
                self.on_close()
            except Exception:
                app_log.error("Exception in on_close of %r", self, exc_info=True)
            self._break_cycles()

    def on_ws_connection_close(
        self, close_code: int | None = None, close_reason: str | None = None
    ) -> None:
        self.close_code = close_code
        self.close_reason = close_reason
        self.on_connection_close()

    def _break_cycles(self) -> None:
        # on_close runs once and then the handler is done; until then the
        # protocol and the handler refer to each other.
        if self.get_status() != 101 or self._on_close_called:
            super()._break_cycles()

    def get_websocket_protocol(self) -> WebSocketProtocol13 | None:
        """The protocol object for this request (None: unsupported version)."""
        websocket_version = self.request.headers.get("Sec-WebSocket-Version")
        if websocket_version != "13":
            return None
        params = _WebSocketParams(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size,
            compression_options=self.get_compression_options(),
        )
        return WebSocketProtocol13(self, False, params)

    def _detach_stream(self) -> IOStream:
        for method in (
            "write",
            "redirect",
            "set_header",
            "set_cookie",
            "set_status",
            "flush",
            "finish",
            "render",
            "send_error",
        ):
            setattr(self, method, _raise_not_supported_for_websockets)
        # A server's drain closes the connection with 1001, "going away"
        # (the close handshake bounded by the drain's deadline).
        set_drain_callback = getattr(self.request.connection, "set_drain_callback", None)
        if set_drain_callback is not None:
            set_drain_callback(self._on_server_drain)
        return self.detach()

    def _on_server_drain(self) -> None:
        if self.ws_connection is not None and not self.ws_connection.is_closing():
            self.close(1001)


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


class WebSocketProtocol(abc.ABC):
    """The framing of one connection, for a handler or a client."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.stream: IOStream | None = None
        self.client_terminated = False
        self.server_terminated = False

    def on_connection_close(self) -> None:
        self._abort()

    def _abort(self) -> None:
        """Close the connection now."""
        self.client_terminated = True
        self.server_terminated = True
        if self.stream is not None:
            self.stream.close()
        self.close()

    @abc.abstractmethod
    def close(self, code: int | None = None, reason: str | None = None) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def is_closing(self) -> bool:
        raise NotImplementedError()

    @abc.abstractmethod
    def accept_connection(self, handler: WebSocketHandler) -> Awaitable[None] | None:
        raise NotImplementedError()

    @abc.abstractmethod
    def write_message(
        self, message: str | bytes | dict[str, Any], binary: bool = False
    ) -> Future[None]:
        raise NotImplementedError()

    @property
    @abc.abstractmethod
    def selected_subprotocol(self) -> str | None:
        raise NotImplementedError()

    @abc.abstractmethod
    def write_ping(self, data: bytes) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def start_pinging(self) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def set_nodelay(self, x: bool) -> None:
        raise NotImplementedError()


# -- permessage-deflate (RFC 7692) ------------------------------------------------------

_DEFLATE_PARAMS = frozenset(
    (
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    )
)


# The most permessage-deflate offers a server looks at (a client makes one
# or two; a header full of them would cost CPU per offer, for nothing).
_MAX_DEFLATE_OFFERS = 16


def _parse_extensions(
    values: list[str], deflate_only: bool = False
) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` values as (name, [(param, value)]) in
    order, duplicates kept (so that they can be refused).

    ``deflate_only`` (a server's negotiation): only what may be a
    permessage-deflate offer, at most _MAX_DEFLATE_OFFERS of them, and none
    with more parameters than the extension has; the rest costs a
    substring search, not a parse (a 64 KiB header of ``x,x,x...`` or of
    one offer with 18,000 parameters took 5 to 20 ms of CPU, 12 to 45
    times its handshake)."""
    offers: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        if deflate_only:
            value = value.lower()
            if "permessage-deflate" not in value:
                continue
        for offer in value.split(","):
            if deflate_only:
                if "permessage-deflate" not in offer or offer.count(";") > len(_DEFLATE_PARAMS):
                    continue
                if len(offers) == _MAX_DEFLATE_OFFERS:
                    return offers
            parts = [part.strip() for part in offer.split(";")]
            if not parts[0]:
                continue
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                if not part:
                    continue
                name, eq, arg = part.partition("=")
                arg = arg.strip()
                if len(arg) >= 2 and arg[0] == arg[-1] == '"':
                    arg = arg[1:-1]
                params.append((name.strip().lower(), arg if eq else None))
            offers.append((parts[0].lower(), params))
    return offers


def _window_bits(value: str | None, bare_ok: bool) -> int | None:
    """A ``*_max_window_bits`` value: 8-15; None when bare (if allowed);
    raises ValueError otherwise."""
    if value is None:
        if bare_ok:
            return None
        raise ValueError("a value is needed")
    if not (value.isdigit() and len(value) <= 2) or not 8 <= int(value) <= 15:
        raise ValueError(f"bad window bits {value!r}")
    return int(value)


def _check_deflate_params(params: list[tuple[str, str | None]], server: bool) -> dict[str, Any]:
    """The parameters of one permessage-deflate offer (server) or answer
    (client) as a dict; ValueError for anything RFC 7692 section 7 does not
    allow."""
    agreed: dict[str, Any] = {}
    for name, value in params:
        if name not in _DEFLATE_PARAMS:
            raise ValueError(f"unknown parameter {name}")
        if name in agreed:
            raise ValueError(f"duplicate parameter {name}")
        if name.endswith("no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")
            agreed[name] = True
        else:
            # An offer may leave client_max_window_bits bare ("any you like").
            bits = _window_bits(value, bare_ok=server and name == "client_max_window_bits")
            if name == "server_max_window_bits" and bits == 8 and server:
                raise ValueError("zlib cannot compress with an 8-bit window")
            if name == "client_max_window_bits" and bits == 8 and not server:
                raise ValueError("zlib cannot compress with an 8-bit window")
            agreed[name] = bits
    return agreed


class _PerMessageDeflateCompressor:
    def __init__(
        self, persistent: bool, max_wbits: int | None, compression_options: dict[str, Any] | None
    ) -> None:
        options = compression_options or {}
        self._wbits = max_wbits or zlib.MAX_WBITS
        self._level = options.get("compression_level", 6)
        self._mem_level = options.get("mem_level", 8)
        self._compressor = self._make() if persistent else None

    def _make(self) -> Any:
        return zlib.compressobj(self._level, zlib.DEFLATED, -self._wbits, self._mem_level)

    def compress(self, data: bytes) -> bytes:
        compressor = self._compressor or self._make()
        out: bytes = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4]  # the 00 00 ff ff of the sync flush (RFC 7692 section 7.2.1)


class _PerMessageDeflateDecompressor:
    def __init__(self, persistent: bool, max_wbits: int | None, max_message_size: int) -> None:
        self._wbits = max_wbits or zlib.MAX_WBITS
        self._max_message_size = max_message_size
        self._persistent = persistent
        self._decompressor = self._make() if persistent else None
        self._current: Any = None

    def _make(self) -> Any:
        return zlib.decompressobj(-self._wbits)

    def decompress(self, data: bytes | memoryview, size_so_far: int, final: bool) -> bytes:
        """Inflate one frame's payload of a message, of which ``size_so_far``
        bytes have been inflated; at most up to ``max_message_size``
        (_DecompressTooLargeError beyond; zlib.error for bad data)."""
        decompressor = self._current
        if decompressor is None:
            decompressor = self._current = self._decompressor or self._make()
        limit = self._max_message_size - size_so_far
        if final:
            data = bytes(data) + b"\x00\x00\xff\xff"
            self._current = None
        out: bytes = decompressor.decompress(data, limit + 1)
        if len(out) > limit or decompressor.unconsumed_tail:
            self._current = None
            raise _DecompressTooLargeError()
        return out


# -- the protocol ------------------------------------------------------------------------


class WebSocketProtocol13(WebSocketProtocol):
    """RFC 6455 framing for one connection: ``handler`` is a
    :class:`WebSocketHandler` (server) or a :class:`WebSocketClientConnection`
    (client, ``mask_outgoing=True``)."""

    FIN = 0x80
    RSV1 = 0x40
    RSV2 = 0x20
    RSV3 = 0x10
    RSV_MASK = RSV1 | RSV2 | RSV3
    OPCODE_MASK = 0x0F

    stream: IOStream | None

    def __init__(self, handler: Any, mask_outgoing: bool, params: _WebSocketParams) -> None:
        super().__init__(handler)
        self.mask_outgoing = mask_outgoing
        self.params = params
        self._is_server = not mask_outgoing
        self._max_message_size = params.max_message_size
        self._compression_options = params.compression_options
        self._compressor: _PerMessageDeflateCompressor | None = None
        self._decompressor: _PerMessageDeflateDecompressor | None = None
        self._selected_subprotocol: str | None = None
        self._protocol: WebSocketProtocol13 | None = None
        self._allowed_rsv = 0  # RSV1 once permessage-deflate is agreed
        # Reading: bytes of an incomplete frame, and how many make it whole.
        self._tail = bytearray()
        self._need = 0
        self._reading = False
        self._opened = False  # reading may start (see _begin_reading)
        self._paused = False  # waiting for an on_message awaitable
        self._failed = False  # nothing more is delivered to the application
        # The fragmented message being received (opcode 0: none).
        self._frag_opcode = 0
        self._frag_compressed = False
        self._frag_text: io.StringIO | None = None
        self._frag_bytes: bytearray | None = None
        self._frag_size = 0
        self._frag_decoder: Any = None
        self._pong_due: bytes | None = None  # see _send_pong
        # Closing.
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._waiting: object | None = None  # the close handshake's timer
        self._closed_called = False
        # Pings.
        self._received_pong = False
        self._ping_timer: object | None = None
        self._ping_time = 0.0
        # Writes while a read's frames are handled are gathered into one
        # send (see _on_data): the frames, and the future they all return.
        self._corking = False
        self._corked: list[bytes] = []
        self._cork_future: Future[None] | None = None
        self._masks = b""
        self._mask_pos = 4096  # the next key's offset in _masks (drawn when used up)

    # -- the opening handshake (server) ---------------------------------------------------

    @property
    def selected_subprotocol(self) -> str | None:
        return self._selected_subprotocol

    @selected_subprotocol.setter
    def selected_subprotocol(self, value: str | None) -> None:
        self._selected_subprotocol = value

    @staticmethod
    def compute_accept_value(key: str | bytes) -> str:
        """``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 section 4.2.2)."""
        return base64.b64encode(hashlib.sha1(utf8(key) + _GUID).digest()).decode("ascii")

    def _challenge_response(self, handler: WebSocketHandler) -> str:
        return self.compute_accept_value(handler.request.headers["Sec-WebSocket-Key"])

    def accept_connection(self, handler: WebSocketHandler) -> Awaitable[None] | None:
        """Answer the (already checked) handshake with a 101, take the
        stream over and open; returns the awaitable of an async ``open``."""
        headers = handler.request.headers
        subprotocols = [
            token.strip()
            for value in headers.get_list("Sec-WebSocket-Protocol")
            for token in value.split(",")
            if token.strip()
        ]
        selected = handler.select_subprotocol(subprotocols)
        if selected:
            if selected not in subprotocols:
                raise ValueError(
                    f"select_subprotocol returned {selected!r}, not one of {subprotocols!r}"
                )
            self._selected_subprotocol = selected
            handler.set_header("Sec-WebSocket-Protocol", selected)
        if self._compression_options is not None:
            answer = self._negotiate_deflate(headers.get_list("Sec-WebSocket-Extensions"))
            if answer is not None:
                handler.set_header("Sec-WebSocket-Extensions", answer)
        handler.set_status(101)
        handler.set_header("Upgrade", "websocket")
        handler.set_header("Connection", "Upgrade")
        handler.set_header("Sec-WebSocket-Accept", self._challenge_response(handler))
        handler._clear_representation_headers()
        handler.clear_header("Content-Type")
        # flush, not finish: finishing would hand the connection back to
        # the HTTP parser, which would read our client's frames as HTTP.
        handler.flush()
        self.stream = handler._detach_stream()
        handler.application.log_request(handler)
        self.stream.set_close_callback(self._on_stream_close)
        try:
            handler.on_finish()  # the HTTP response is over (Tornado's finish() calls it here)
            result = handler.open(*handler.open_args, **handler.open_kwargs)
        except Exception:
            handler.log_exception(*sys.exc_info())
            self._fail(1011, "")
            return None
        self.start_pinging()
        if result is not None:
            return self._open_async(result)
        # The request may still be in the HTTP connection's parser (its
        # leftover bytes go back to the stream after this returns): start
        # reading once it has let go.
        self.stream.io_loop.add_callback(self._begin_reading)
        return None

    async def _open_async(self, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            self.handler.log_exception(*sys.exc_info())
            self._fail(1011, "")
            return
        self._begin_reading()

    def _negotiate_deflate(self, values: list[str]) -> str | None:
        """The answer to the first acceptable permessage-deflate offer (RFC
        7692 section 5: unacceptable offers are declined, not errors)."""
        for name, params in _parse_extensions(values, deflate_only=True):
            if name != "permessage-deflate":
                continue
            try:
                offer = _check_deflate_params(params, server=True)
            except ValueError as e:
                gen_log.debug("declined a permessage-deflate offer: %s", e)
                continue
            answer = []
            if offer.get("server_no_context_takeover"):
                answer.append("server_no_context_takeover")
            if offer.get("client_no_context_takeover"):
                answer.append("client_no_context_takeover")
            server_bits = offer.get("server_max_window_bits")
            if server_bits is not None:
                answer.append(f"server_max_window_bits={server_bits}")
            client_bits = offer.get("client_max_window_bits")
            if client_bits is not None:
                answer.append(f"client_max_window_bits={client_bits}")
            self._create_compressors("server", offer, self._compression_options)
            return "; ".join(["permessage-deflate", *answer])
        return None

    def _process_server_headers(self, key: str | bytes, headers: HTTPHeaders) -> None:
        """Check a 101 answer (client side); WebSocketError if it is wrong."""
        if "websocket" not in _token_list(headers.get_list("Upgrade")):
            raise WebSocketError("the answer's Upgrade header is not websocket")
        if "upgrade" not in _token_list(headers.get_list("Connection")):
            raise WebSocketError("the answer's Connection header is not Upgrade")
        accept = headers.get_list("Sec-WebSocket-Accept")
        if accept != [self.compute_accept_value(key)]:
            raise WebSocketError("the answer's Sec-WebSocket-Accept does not match the key")
        extensions = _parse_extensions(headers.get_list("Sec-WebSocket-Extensions"))
        if extensions:
            if self._compression_options is None or len(extensions) > 1:
                raise WebSocketError(f"unrequested extensions in the answer: {extensions!r}")
            name, params = extensions[0]
            if name != "permessage-deflate":
                raise WebSocketError(f"unrequested extension in the answer: {name}")
            try:
                agreed = _check_deflate_params(params, server=False)
            except ValueError as e:
                raise WebSocketError(f"bad permessage-deflate answer: {e}") from None
            self._create_compressors("client", agreed, self._compression_options)
        protocols = headers.get_list("Sec-WebSocket-Protocol")
        if len(protocols) > 1:
            raise WebSocketError("several subprotocols in the answer")
        self._selected_subprotocol = protocols[0].strip() if protocols else None

    def _get_compressor_options(
        self,
        side: str,
        agreed_parameters: dict[str, Any],
        compression_options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The compressor's settings for ``side`` ("server" or "client")."""
        return {
            "persistent": not agreed_parameters.get(f"{side}_no_context_takeover"),
            "max_wbits": agreed_parameters.get(f"{side}_max_window_bits"),
        }

    def _create_compressors(
        self,
        side: str,
        agreed_parameters: dict[str, Any],
        compression_options: dict[str, Any] | None = None,
    ) -> None:
        other = "client" if side == "server" else "server"
        ours = self._get_compressor_options(side, agreed_parameters)
        theirs = self._get_compressor_options(other, agreed_parameters)
        self._compressor = _PerMessageDeflateCompressor(
            ours["persistent"], ours["max_wbits"], compression_options
        )
        self._decompressor = _PerMessageDeflateDecompressor(
            theirs["persistent"], theirs["max_wbits"], self._max_message_size
        )
        self._allowed_rsv = self.RSV1

    # -- writing --------------------------------------------------------------------------

    def _write_frame(self, fin: bool, opcode: int, data: bytes, flags: int = 0) -> Future[None]:
        stream = self.stream
        assert stream is not None
        n = len(data)
        b0 = (0x80 if fin else 0) | flags | opcode
        if self.mask_outgoing:
            pos = self._mask_pos
            if pos >= 4096:
                self._masks = os.urandom(4096)  # keys in batches: one syscall per 1024 frames
                pos = 0
            key = self._masks[pos : pos + 4]
            self._mask_pos = pos + 4
            data = _mask(data, key)
            if n < 126:
                header = bytes((b0, 0x80 | n)) + key
            elif n < 65536:
                header = struct.pack("!BBH", b0, 0xFE, n) + key
            else:
                header = struct.pack("!BBQ", b0, 0xFF, n) + key
        elif n < 126:
            header = bytes((b0, n))
        elif n < 65536:
            header = struct.pack("!BBH", b0, 126, n)
        else:
            header = struct.pack("!BBQ", b0, 127, n)
        try:
            if n < _JOIN_BELOW:
                if self._corking and opcode < _OP_CLOSE:
                    self._corked.append(header + data)
                    future = self._cork_future
                    if future is None:
                        future = self._cork_future = _new_future()
                    return future
                if self._corked:
                    self._flush_corked()
                return stream.write(header + data)
            if self._corked:
                self._flush_corked()
            stream.write(header)
            return stream.write(data)
        except StreamBufferFullError:
            self._overflowed()
            raise StreamClosedError() from None

    def _overflowed(self) -> None:
        """The stream's ``max_write_buffer_size`` (a server's setting) is
        passed: the peer does not read what it is sent. No Close frame could
        reach it past what waits already: TCP is closed at once."""
        stream = self.stream
        gen_log.info(
            "Closing a WebSocket whose peer does not read: its queue passed "
            "max_write_buffer_size (%s bytes)",
            stream.max_write_buffer_size if stream is not None else None,
        )
        self._abort()

    def _flush_corked(self) -> None:
        """Send the gathered data frames in one write; their future follows
        it, failing with WebSocketClosedError if the stream closes first."""
        corked = self._corked
        data = corked[0] if len(corked) == 1 else b"".join(corked)
        corked.clear()
        future = self._cork_future
        self._cork_future = None
        assert future is not None
        stream = self.stream
        try:
            if stream is None:
                raise StreamClosedError()
            written = stream.write(data)
        except (StreamClosedError, StreamBufferFullError) as e:
            if isinstance(e, StreamBufferFullError):
                self._overflowed()
            future.set_exception(WebSocketClosedError())
            future.exception()  # seen: see _closed_as_websocket
            return
        if written.done() and written.exception() is None:
            future.set_result(None)  # the kernel took it all (the usual case)
        else:
            written.add_done_callback(lambda done: _copy_outcome(done, future))

    def write_message(
        self, message: str | bytes | dict[str, Any], binary: bool = False
    ) -> Future[None]:
        if binary:
            opcode = _OP_BINARY
            data = message if type(message) is bytes else utf8(message)  # type: ignore[arg-type]
        else:
            opcode = _OP_TEXT
            if type(message) is str:
                data = message.encode()
            elif isinstance(message, dict):
                data = escape.json_encode(message).encode()
            else:
                data = utf8(message)
        flags = 0
        compressor = self._compressor
        if compressor is not None:
            data = compressor.compress(data)
            flags = self.RSV1
        if self.stream is None or self.stream.closed():
            raise WebSocketClosedError()
        try:
            future = self._write_frame(True, opcode, data, flags)
        except StreamClosedError:
            raise WebSocketClosedError() from None
        if future is self._cork_future or (future.done() and future.exception() is None):
            return future  # gathered, or the kernel took it (the usual cases): no wrapper
        return _closed_as_websocket(future)

    def write_ping(self, data: bytes) -> None:
        """Send a ping with ``data`` (at most 125 bytes: else ValueError)."""
        if len(data) > 125:
            raise ValueError("control frame payloads may not exceed 125 bytes")  # Tornado
        if self.stream is None or self.stream.closed():
            raise WebSocketClosedError()
        try:
            self._write_frame(True, _OP_PING, data)
        except StreamClosedError:
            raise WebSocketClosedError() from None

    def _send_pong(self, data: bytes) -> None:
        stream = self.stream
        try:
            if stream is not None and stream.writing():
                # RFC 6455 section 5.5.3: a pong for the latest ping is
                # enough. While our output waits for the peer to read, the
                # pings get one pong, sent once it has drained: a peer that
                # pings without reading cannot grow our write buffer.
                if self._pong_due is None:
                    stream.write(b"").add_done_callback(self._send_due_pong)
                self._pong_due = data
                return
            self._write_frame(True, _OP_PONG, data)
        except StreamClosedError:
            pass

    def _send_due_pong(self, future: Future[None]) -> None:
        data, self._pong_due = self._pong_due, None
        if future.exception() is None and data is not None:
            self._send_pong(data)

    def set_nodelay(self, x: bool) -> None:
        assert self.stream is not None
        self.stream.set_nodelay(x)

    # -- reading --------------------------------------------------------------------------

    def _begin_reading(self) -> None:
        """Start reading frames: once open is done and the HTTP layer has
        put back what followed the request."""
        self._opened = True
        self._start_reading()

    def _start_reading(self) -> None:
        stream = self.stream
        if stream is None or stream.closed() or self._failed or self._reading:
            return
        self._reading = True
        stream.start_reading(self._on_data, views=True)

    def _on_data(self, data: bytes | memoryview) -> None:
        """start_reading's callback: parse every whole frame of ``data``
        (after the tail of the last read), keep the incomplete rest."""
        if not data:
            self._on_eof()
            return
        tail = self._tail
        if tail:
            tail += data
            if len(tail) < self._need:
                return  # a big frame still coming: parse it once it is whole
        # The answers to this read's messages (an echo, say) go out in one
        # send when it is handled, not one each: the kernel's cost per send
        # is most of a small message's.
        self._corking = True
        try:
            if tail:
                with memoryview(tail) as view:
                    used = self._parse(view)
                if used == len(tail):
                    self._tail = bytearray()  # let a big frame's buffer go
                else:
                    del tail[:used]
            else:
                used = self._parse(data)
                if used < len(data):
                    tail += data[used:]
        finally:
            self._corking = False
            if self._corked:
                self._flush_corked()
        # Reading goes on while our output waits for the peer: if both ends
        # stopped reading while they had something to send, two reactor
        # peers writing at once would wait for each other forever. What we
        # answer on our own is bounded instead (see _send_pong).

    def _on_eof(self) -> None:
        # The peer's side is closed; there is nothing more to answer.
        if self.stream is not None:
            self.stream.close()

    def _pause(self, awaitable: Any) -> None:
        """An on_message awaitable: read nothing more until it is done."""
        future = gen.convert_yielded(awaitable)
        if future.done():
            self._on_handled(future, resume=False)
            return
        self._paused = True
        if self._reading:
            self._reading = False
            assert self.stream is not None
            self.stream.stop_reading()
        IOLoop.current().add_future(future, self._on_handled)

    def _on_handled(self, future: Future[Any], resume: bool = True) -> None:
        try:
            future.result()
        except Exception:
            self._callback_failed()
            return
        if not resume:
            return
        self._paused = False
        if self._failed:
            return
        tail = self._tail
        if tail and len(tail) >= self._need:
            with memoryview(tail) as view:
                used = self._parse(view)
            del tail[:used]
        if not self._paused:
            self._start_reading()

    def _callback_failed(self) -> None:
        self.handler.log_exception(*sys.exc_info())
        self._fail(1011, "")

    def _parse(self, data: bytes | bytearray | memoryview) -> int:
        """Handle the whole frames at the start of ``data``; return how many
        bytes were used (the rest is an incomplete frame, or waits while
        the application handles a message)."""
        n = len(data)
        pos = 0
        masked_in = self._is_server  # a server's input must be masked, a client's must not
        max_size = self._max_message_size
        try:
            while not self._paused and not self._failed:
                left = n - pos
                if left < 2:
                    self._need = 2
                    return pos
                b0 = data[pos]
                b1 = data[pos + 1]
                length = b1 & 0x7F
                head = 2
                if length == 126:
                    if left < 4:
                        self._need = 4
                        return pos
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    head = 4
                    if length < 126:
                        raise _ProtocolError(1002, "non-minimal length")
                elif length == 127:
                    if left < 10:
                        self._need = 10
                        return pos
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    head = 10
                    if length >> 63:
                        raise _ProtocolError(1002, "length with its top bit set")
                    if length < 65536:
                        raise _ProtocolError(1002, "non-minimal length")
                if bool(b1 & 0x80) is not masked_in:
                    raise _ProtocolError(
                        1002, "unmasked client frame" if masked_in else "masked server frame"
                    )
                opcode = b0 & 0x0F
                rsv = b0 & 0x70
                if rsv & ~self._allowed_rsv:
                    raise _ProtocolError(1002, "reserved bits set")
                if opcode & 0x8:
                    if opcode > _OP_PONG:
                        raise _ProtocolError(1002, f"unknown opcode {opcode}")
                    if length > 125 or not b0 & 0x80:
                        raise _ProtocolError(1002, "control frame too long or fragmented")
                    if rsv:
                        raise _ProtocolError(1002, "reserved bits on a control frame")
                elif opcode == _OP_CONTINUATION:
                    if not self._frag_opcode:
                        raise _ProtocolError(1002, "continuation without a message")
                    if rsv:
                        raise _ProtocolError(1002, "reserved bits on a continuation frame")
                    if self._frag_size + length > max_size:
                        raise _ProtocolError(1009, "message too big")
                elif opcode <= _OP_BINARY:
                    if self._frag_opcode:
                        raise _ProtocolError(1002, "new message inside a fragmented one")
                    if length > max_size:
                        raise _ProtocolError(1009, "message too big")
                else:
                    raise _ProtocolError(1002, f"unknown opcode {opcode}")
                start = pos + head + 4 if masked_in else pos + head
                end = start + length
                if end > n:
                    self._need = end - pos
                    return pos
                if masked_in:
                    payload = _mask(data[start:end], bytes(data[start - 4 : start]))
                else:
                    payload = bytes(data[start:end])
                pos = end
                if opcode == _OP_TEXT and b0 & 0x80 and not rsv:
                    # The usual message: one uncompressed text frame.
                    try:
                        text = payload.decode()
                    except UnicodeDecodeError:
                        raise _ProtocolError(1007, "invalid UTF-8") from None
                    if self.client_terminated or self.server_terminated:
                        continue  # closing: data is discarded
                    self._deliver(text)
                else:
                    self._handle_frame(b0, opcode, payload)
        except _ProtocolError as e:
            self._fail(e.code, e.reason)
            return n
        if self._failed:
            return n
        self._need = 0
        return pos

    def _deliver(self, message: str | bytes) -> None:
        try:
            result = self.handler.on_message(message)
        except Exception:
            self._callback_failed()
            return
        if result is not None:
            self._pause(result)

    def _handle_frame(self, b0: int, opcode: int, payload: bytes) -> None:
        """Every frame but an uncompressed single-frame text message."""
        fin = b0 & 0x80
        if opcode & 0x8:
            self._handle_control(opcode, payload)
            return
        if opcode != _OP_CONTINUATION:
            self._frag_opcode = opcode
            self._frag_compressed = bool(b0 & self.RSV1)
            self._frag_size = 0
            if not fin:
                # One buffer per fragmented message, whatever the number of
                # fragments (a list of pieces would grow with empty frames).
                if opcode == _OP_TEXT:
                    self._frag_decoder = codecs.getincrementaldecoder("utf-8")()
                    self._frag_text = io.StringIO()
                else:
                    self._frag_bytes = bytearray()
        opcode = self._frag_opcode
        if self._frag_compressed:
            assert self._decompressor is not None
            try:
                payload = self._decompressor.decompress(payload, self._frag_size, bool(fin))
            except _DecompressTooLargeError:
                raise _ProtocolError(1009, "message too big once inflated") from None
            except zlib.error:
                raise _ProtocolError(1007, "bad compressed data") from None
        self._frag_size += len(payload)
        message: str | bytes
        decoder = self._frag_decoder
        if decoder is not None:  # a fragmented text message: checked as it comes
            try:
                piece = decoder.decode(payload, bool(fin))
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8") from None
            text = self._frag_text
            assert text is not None
            if piece:
                text.write(piece)
            if not fin:
                return
            message = text.getvalue()
            self._frag_decoder = self._frag_text = None
        elif self._frag_bytes is not None:  # a fragmented binary message
            self._frag_bytes += payload
            if not fin:
                return
            message = bytes(self._frag_bytes)
            self._frag_bytes = None
        elif opcode == _OP_TEXT:  # one compressed frame
            try:
                message = payload.decode()
            except UnicodeDecodeError:
                raise _ProtocolError(1007, "invalid UTF-8") from None
        else:
            message = payload
        self._frag_opcode = 0
        if not (self.client_terminated or self.server_terminated):
            self._deliver(message)

    def _handle_control(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_CLOSE:
            self.client_terminated = True
            if len(payload) == 1:
                raise _ProtocolError(1002, "a close payload of one byte")
            if payload:
                code = int.from_bytes(payload[:2], "big")
                if not _close_code_allowed(code):
                    raise _ProtocolError(1002, f"invalid close code {code}")
                try:
                    reason = payload[2:].decode()
                except UnicodeDecodeError:
                    raise _ProtocolError(1007, "close reason not UTF-8") from None
                self.close_code = code
                self.close_reason = reason or None  # a code alone: None (Tornado)
            self._on_peer_close()
        elif opcode == _OP_PING:
            if self.server_terminated or self.client_terminated:
                return
            self._send_pong(payload)
            self._run_callback(self.handler.on_ping, payload)
        else:
            self._received_pong = True
            if self.server_terminated or self.client_terminated:
                return
            self._run_callback(self.handler.on_pong, payload)

    def _run_callback(self, callback: Callable[..., Any], *args: Any) -> Future[Any] | None:
        try:
            result = callback(*args)
        except Exception:
            self._callback_failed()
            return None
        if result is not None:
            future = gen.convert_yielded(result)
            IOLoop.current().add_future(future, self._check_callback)
            return future
        return None

    def _check_callback(self, future: Future[Any]) -> None:
        try:
            future.result()
        except Exception:
            self._callback_failed()

    # -- closing --------------------------------------------------------------------------

    def _on_peer_close(self) -> None:
        """The peer's Close frame (valid): answer it, then the server closes TCP."""
        self._failed = True  # nothing more reaches the application
        stream = self.stream
        assert stream is not None
        if not self.server_terminated:
            self.server_terminated = True
            code = self.close_code
            try:
                self._write_frame(True, _OP_CLOSE, b"" if code is None else struct.pack("!H", code))
            except StreamClosedError:
                pass
        if self._is_server:
            self._close_stream_after_writes()
        else:
            self._wait_for_close()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a Close frame (if not sent yet); then wait for the peer's
        (5 s at most) or, if it came already, close."""
        if code is not None and not _close_code_allowed(code):
            raise ValueError(f"{code} is not a close code an endpoint may send (RFC 6455 7.4)")
        stream = self.stream
        if stream is None or stream.closed():
            return
        if not self.server_terminated:
            self.server_terminated = True
            if code is None and reason is not None:
                code = 1000
            payload = b"" if code is None else struct.pack("!H", code) + _close_reason(reason)
            try:
                self._write_frame(True, _OP_CLOSE, payload)
            except StreamClosedError:
                return
        if self.client_terminated:
            if self._is_server:
                self._close_stream_after_writes()
            return
        self._wait_for_close()
        # Keep reading for the peer's Close, even while a message is being
        # handled (data frames are discarded from now on).
        self._paused = False
        if self._opened:  # else reading starts once open is done
            self._start_reading()

    def _wait_for_close(self) -> None:
        if self._waiting is None and self.stream is not None:
            self._waiting = self.stream.io_loop.call_later(_CLOSE_TIMEOUT, self._abort)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (RFC 6455 section 7.1.7): one Close frame
        with ``code``, best effort, then TCP closed at once."""
        if self._failed and (self.stream is None or self.stream.closed()):
            return
        self._failed = True
        gen_log.info("WebSocket closed with %d: %s", code, reason)
        stream = self.stream
        if stream is None or stream.closed():
            return
        if not self.server_terminated:
            self.server_terminated = True
            try:
                self._write_frame(True, _OP_CLOSE, struct.pack("!H", code) + utf8(reason))
            except StreamClosedError:
                return
        self._close_stream_after_writes()

    def _close_stream_after_writes(self) -> None:
        stream = self.stream
        if stream is None or stream.closed():
            return
        if self._reading:
            self._reading = False
            stream.stop_reading()
        if stream.writing():
            stream.write(b"").add_done_callback(self._close_stream)
            self._wait_for_close()  # bounded, should the peer not read
        else:
            self._close_stream()

    def _close_stream(self, written: Future[None] | None = None) -> None:
        if written is not None:
            written.exception()  # a stream closed meanwhile: nothing left to do
        stream = self.stream
        if stream is None or stream.closed():
            return
        # Input left unread would make close() send a reset, which can
        # destroy our Close frame before the peer reads it: read it first.
        sock = getattr(stream, "socket", None)
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            try:
                for _ in range(16):
                    if not sock.recv(65536):
                        break
            except OSError:
                pass
        stream.close()

    def is_closing(self) -> bool:
        """True once the connection is closed or its close handshake began."""
        return (
            self.stream is None
            or self.stream.closed()
            or self.client_terminated
            or self.server_terminated
        )

    def _on_stream_close(self) -> None:
        if self._closed_called:
            return
        self._closed_called = True
        self._failed = True
        io_loop = IOLoop.current()
        if self._waiting is not None:
            io_loop.remove_timeout(self._waiting)
            self._waiting = None
        if self._ping_timer is not None:
            io_loop.remove_timeout(self._ping_timer)
            self._ping_timer = None
        handler = self.handler
        try:
            handler.on_ws_connection_close(self.close_code, self.close_reason)
        except Exception:
            app_log.error("Exception in on_close of %r", handler, exc_info=True)

    def _abort(self) -> None:
        self.client_terminated = True
        self.server_terminated = True
        self._failed = True
        if self.stream is not None:
            self.stream.close()

    # -- pings ----------------------------------------------------------------------------

    @property
    def ping_interval(self) -> float:
        return self.params.ping_interval or 0

    @property
    def ping_timeout(self) -> float:
        timeout = self.params.ping_timeout
        interval = self.ping_interval
        if timeout is None:
            return interval
        if interval and timeout > interval:
            de_dupe_gen_log(
                logging.WARNING,
                # Tornado's words, so that a ported ExpectLog matches
                f"The websocket_ping_timeout ({timeout}) cannot be longer than the "
                f"websocket_ping_interval ({interval}).\n"
                f"Setting websocket_ping_timeout={interval}",
            )
            return interval
        return timeout

    def start_pinging(self) -> None:
        """Ping every ``ping_interval`` seconds (if it is set)."""
        interval = self.ping_interval
        if interval > 0 and self._ping_timer is None and self.stream is not None:
            self._ping_timer = self.stream.io_loop.call_later(interval, self.periodic_ping)

    @staticmethod
    def ping_sleep_time(*, last_ping_time: float, interval: float, now: float) -> float:
        """Seconds from ``now`` until the ping after the one at ``last_ping_time``."""
        return max(0, last_ping_time + interval - now)

    def periodic_ping(self) -> None:
        """Send a ping; after ``ping_timeout`` seconds without a pong, the
        peer counts as gone (Close 1011, TCP closed at once)."""
        self._ping_timer = None
        if self.is_closing():
            return
        assert self.stream is not None
        io_loop = self.stream.io_loop
        self._received_pong = False
        self._ping_time = io_loop.time()
        try:
            self.write_ping(b"")
        except WebSocketClosedError:
            return
        timeout = self.ping_timeout
        wait = timeout if timeout > 0 else self.ping_interval
        self._ping_timer = io_loop.call_later(wait, self._after_ping)

    def _after_ping(self) -> None:
        self._ping_timer = None
        if self.is_closing():
            return
        if self.ping_timeout > 0 and not self._received_pong:
            self._fail(1011, "ping timeout")
            if self.stream is not None:
                self.stream.close()
            return
        assert self.stream is not None
        io_loop = self.stream.io_loop
        delay = self.ping_sleep_time(
            last_ping_time=self._ping_time, interval=self.ping_interval, now=io_loop.time()
        )
        self._ping_timer = io_loop.call_later(delay, self.periodic_ping)


def _close_reason(reason: str | bytes | None) -> bytes:
    """``reason`` as a Close frame carries it: UTF-8, cut at a character
    boundary to the 123 bytes a control frame leaves after the code (a
    longer one would make the frame one the peer must refuse)."""
    data = utf8(reason or "")
    if len(data) > 123:
        data = data[:123].decode("utf-8", "ignore").encode()
    return data


def _copy_outcome(done: Future[None], future: Future[None]) -> None:
    """Resolve ``future`` as the write ``done`` was, StreamClosedError
    turned into WebSocketClosedError."""
    if future.done():
        return
    error = done.exception()
    if error is None:
        future.set_result(None)
        return
    if isinstance(error, StreamClosedError):
        error = WebSocketClosedError()
    future.set_exception(error)
    # Counted as seen, as the stream's own write futures are: a message sent
    # without awaiting its future is no error to log when the peer goes
    # away (on_close says so).
    future.exception()


def _closed_as_websocket(future: Future[None]) -> Future[None]:
    """``future``, with StreamClosedError turned into WebSocketClosedError."""
    result: Future[None] = _new_future()
    future.add_done_callback(lambda done: _copy_outcome(done, result))
    return result


# -- the client --------------------------------------------------------------------------


class WebSocketClientConnection:
    """A client's WebSocket connection: made by :func:`websocket_connect`."""

    protocol: WebSocketProtocol13 | None = None

    def __init__(
        self,
        request: HTTPRequest,
        on_message_callback: Callable[[str | bytes | None], None] | None = None,
        compression_options: dict[str, Any] | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        max_message_size: int = _default_max_message_size,
        subprotocols: list[str] | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.request = request
        self.connect_future: Future[WebSocketClientConnection] = _new_future()
        self.params = _WebSocketParams(
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_message_size=max_message_size,
            compression_options=compression_options,
        )
        self._on_message_callback = on_message_callback
        self._subprotocols = subprotocols
        self._resolver = resolver
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.headers: HTTPHeaders | None = None
        self._selected_subprotocol: str | None = None
        self._protocol: WebSocketProtocol13 | None = None
        self._key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._messages: collections.deque[str | bytes | None] = collections.deque()
        # read_message futures waiting, oldest first (Tornado allows several)
        self._readers: collections.deque[Future[str | bytes | None]] = collections.deque()
        self._space: Future[None] | None = None
        self._ended = False  # None was read: every read_message gives None
        self._closed = False
        self._stream: IOStream | None = None
        self._timeout: object | None = None
        self.io_loop = IOLoop.current()
        self._task = gen.convert_yielded(self.run())

    def __aiter__(self) -> WebSocketClientConnection:
        return self

    async def __anext__(self) -> str | bytes:
        message = await self.read_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def run(self) -> None:
        """Connect and do the opening handshake (started by the constructor);
        its outcome is :attr:`connect_future`'s."""
        try:
            await self._handshake()
        except BaseException as error:
            e = error
            if isinstance(e, StreamClosedError):  # as the HTTP client (and Tornado's):
                # the socket's error (ConnectionRefusedError...), else a 599
                e = e.real_error or HTTPStreamClosedError("Stream closed")
            if self._stream is not None:
                self._stream.close()
            if not self.connect_future.done():
                self.connect_future.set_exception(e)
                self.connect_future.exception()  # retrieved by whoever awaits it
            if not isinstance(e, Exception):
                raise
        finally:
            if self._timeout is not None:
                self.io_loop.remove_timeout(self._timeout)
                self._timeout = None

    async def _handshake(self) -> None:
        request = self.request
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss", "http", "https"):
            raise ValueError(f"not a WebSocket URL: {request.url!r}")
        secure = scheme in ("wss", "https")
        host = parts.hostname
        if not host:
            raise ValueError(f"no host in {request.url!r}")
        port = parts.port or (443 if secure else 80)
        ssl_context = _ssl_context_for(request) if secure else None
        if request.request_timeout:
            self._timeout = self.io_loop.call_later(request.request_timeout, self._on_timeout)
        client = TCPClient(resolver=self._resolver)
        try:
            stream = await client.connect(
                host,
                port,
                ssl_options=ssl_context,
                timeout=request.connect_timeout or None,
            )
        except TimeoutError:
            raise HTTPTimeoutError("Timeout while connecting") from None
        finally:
            client.close()
        self._stream = stream
        if self.connect_future.done():  # timed out meanwhile
            stream.close()
            return
        stream.set_nodelay(True)
        stream.write(self._request_head(parts, host, port, secure))
        for _ in range(_MAX_INTERIM_ANSWERS + 1):
            try:
                head = await stream.read_until(b"\r\n\r\n", max_bytes=_MAX_HANDSHAKE_HEAD)
            except StreamClosedError as e:
                if not isinstance(e.real_error, UnsatisfiableReadError):
                    raise
                raise HTTPStreamClosedError(
                    f"Stream closed: response headers larger than {_MAX_HANDSHAKE_HEAD} bytes"
                ) from None
            first, _, rest = head.decode("latin-1").partition("\r\n")
            start_line = httputil.parse_response_start_line(first)
            headers = HTTPHeaders.parse(rest)
            # An interim answer (a 100 Continue to an Expect the request
            # carried, a 102, a 103) precedes the real one (RFC 9110 15.2).
            if not 100 <= start_line.code < 200 or start_line.code == 101:
                break
        else:
            raise WebSocketError(f"more than {_MAX_INTERIM_ANSWERS} interim answers")
        self.headers = headers
        self.headers_received(start_line, headers)
        if start_line.code != 101:
            raise HTTPClientError(start_line.code, start_line.reason)
        protocol = WebSocketProtocol13(self, True, self.params)
        protocol._process_server_headers(self._key, headers)
        if protocol.selected_subprotocol is not None and protocol.selected_subprotocol not in (
            self._subprotocols or []
        ):
            raise WebSocketError(
                f"the server chose a subprotocol we did not offer: {protocol.selected_subprotocol}"
            )
        if self.connect_future.done():
            stream.close()
            return
        self.protocol = self._protocol = protocol  # protocol: None after close()
        self._selected_subprotocol = protocol.selected_subprotocol  # kept after close()
        protocol.stream = stream
        stream.set_close_callback(protocol._on_stream_close)
        protocol.start_pinging()
        protocol._begin_reading()
        self.connect_future.set_result(self)

    def _request_head(self, parts: Any, host: str, port: int, secure: bool) -> bytes:
        request = self.request
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = HTTPHeaders(request.headers)
        if "Host" not in headers:
            default = 443 if secure else 80
            netloc = f"[{host}]" if ":" in host else host
            headers["Host"] = netloc if port == default else f"{netloc}:{port}"
        headers["Upgrade"] = "websocket"
        headers["Connection"] = "Upgrade"
        headers["Sec-WebSocket-Key"] = self._key
        headers["Sec-WebSocket-Version"] = "13"
        if self._subprotocols:
            headers["Sec-WebSocket-Protocol"] = ",".join(self._subprotocols)
        if self.params.compression_options is not None:
            headers["Sec-WebSocket-Extensions"] = "permessage-deflate; client_max_window_bits"
        # Tornado's client goes through its HTTP client, which says who it is.
        if request.user_agent:
            headers["User-Agent"] = request.user_agent
        elif "User-Agent" not in headers:
            headers["User-Agent"] = f"reactor/{version}"
        if request.auth_username is not None and "Authorization" not in headers:
            headers["Authorization"] = "Basic " + base64.b64encode(
                httputil.encode_username_password(
                    request.auth_username, request.auth_password or ""
                )
            ).decode("ascii")
        lines = [f"GET {path} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _on_timeout(self) -> None:
        self._timeout = None
        if not self.connect_future.done():
            self.connect_future.set_exception(
                HTTPTimeoutError("Timeout during request")  # Tornado's words
            )
            self.connect_future.exception()
            if self._stream is not None:
                self._stream.close()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the close handshake (see :meth:`WebSocketHandler.close`);
        :attr:`protocol` is None from then on, as in Tornado."""
        if self._protocol is not None:  # a second close() is a no-op there
            self._protocol.close(code, reason)  # (a code no endpoint may send raises here)
        elif self._stream is not None:
            self._stream.close()
        self.protocol = None

    def on_connection_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.connect_future.done():
            self.connect_future.set_exception(StreamClosedError())
            self.connect_future.exception()
        self._on_message(None)
        if self._space is not None and not self._space.done():
            self._space.set_result(None)

    def on_ws_connection_close(
        self, close_code: int | None = None, close_reason: str | None = None
    ) -> None:
        self.close_code = close_code
        self.close_reason = close_reason
        self.on_connection_close()

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: HTTPHeaders,
    ) -> None:
        """Called with the handshake's answer (a hook; it does nothing)."""

    def data_received(self, chunk: bytes) -> None:
        """Tornado's HTTP-delegate hook; a handshake answer's body is not read."""

    def finish(self) -> None:
        """Tornado's HTTP-delegate hook; the handshake ends with its head."""

    def write_message(
        self, message: str | bytes | dict[str, Any], binary: bool = False
    ) -> Future[None]:
        """Send a message (see :meth:`WebSocketHandler.write_message`)."""
        protocol = self.protocol
        if protocol is None:
            raise WebSocketClosedError("Client connection has been closed")  # Tornado's
        if protocol.is_closing():
            raise WebSocketClosedError()
        return protocol.write_message(message, binary=binary)

    def read_message(
        self, callback: Callable[[Future[str | bytes | None]], None] | None = None
    ) -> Awaitable[str | bytes | None]:
        """The next message (str or bytes); None once the connection is
        closed. Unread messages hold reading back (one waits at most).
        Several reads may wait at once: they get the messages in order (and
        all get None at the close)."""
        future: Future[str | bytes | None]
        if self._messages:
            message = self._messages.popleft()
            if message is None:
                self._ended = True
            space = self._space
            if space is not None and not self._messages:
                self._space = None
                future_set_result_unless_cancelled(space, None)
            future = _new_future()
            future.set_result(message)
        elif self._ended:
            future = _new_future()
            future.set_result(None)
        else:
            future = _new_future()
            self._readers.append(future)
        if callback is not None:
            self.io_loop.add_future(future, callback)
        return future

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        return self._on_message(message)

    def _on_message(self, message: str | bytes | None) -> Awaitable[None] | None:
        if self._on_message_callback is not None:
            self._on_message_callback(message)
            return None
        readers = self._readers
        while readers:
            reader = readers.popleft()
            if reader.done():  # cancelled
                continue
            reader.set_result(message)
            if message is None:  # the close: every read waiting gets None
                self._ended = True
                while readers:
                    future_set_result_unless_cancelled(readers.popleft(), None)
            return None
        self._messages.append(message)
        if message is None:
            return None
        space = self._space = _new_future()
        return space

    def ping(self, data: bytes = b"") -> None:
        """Send a ping (at most 125 bytes)."""
        data = utf8(data)
        if self.protocol is None or self.protocol.is_closing():
            raise WebSocketClosedError()
        self.protocol.write_ping(data)

    def on_pong(self, data: bytes) -> None:
        pass

    def on_ping(self, data: bytes) -> None:
        pass

    def get_websocket_protocol(self) -> WebSocketProtocol13:
        return WebSocketProtocol13(self, True, self.params)

    @property
    def selected_subprotocol(self) -> str | None:
        """The subprotocol the server chose (None: none)."""
        return self._selected_subprotocol

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert typ is not None and value is not None
        app_log.error("Uncaught exception %s", value, exc_info=(typ, value, tb))


def websocket_connect(
    url: str | HTTPRequest,
    callback: Callable[[Future[WebSocketClientConnection]], None] | None = None,
    connect_timeout: float | None = None,
    on_message_callback: Callable[[str | bytes | None], None] | None = None,
    compression_options: dict[str, Any] | None = None,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
    max_message_size: int = _default_max_message_size,
    subprotocols: list[str] | None = None,
    resolver: Resolver | None = None,
) -> Awaitable[WebSocketClientConnection]:
    """Connect to a WebSocket server (``ws://`` or ``wss://``); returns an
    awaitable of the :class:`WebSocketClientConnection`.

    ``url`` may be an :class:`~reactor.httpclient.HTTPRequest` (for headers
    such as ``Origin`` or cookies, TLS options, ``request_timeout`` for the
    whole handshake). ``compression_options`` (a dict, ``{}`` for defaults)
    offers permessage-deflate. With ``on_message_callback``, every message
    (then None at the close) goes to it instead of :meth:`read_message`.
    ``callback`` (deprecated, with a DeprecationWarning as in Tornado) gets
    the future once it is done. A non-101 answer fails with
    :class:`~reactor.httpclient.HTTPClientError`, a wrong 101 with
    :class:`WebSocketError`.
    """
    if isinstance(url, HTTPRequest):
        request = copy.copy(url)  # the defaults below are this call's, not the caller's request's
        if connect_timeout is not None:
            request.connect_timeout = connect_timeout
    else:
        request = HTTPRequest(url, connect_timeout=connect_timeout)
    if request.connect_timeout is None:
        request.connect_timeout = 20.0
    if request.request_timeout is None:
        request.request_timeout = 20.0
    conn = WebSocketClientConnection(
        request,
        on_message_callback=on_message_callback,
        compression_options=compression_options,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_message_size=max_message_size,
        subprotocols=subprotocols,
        resolver=resolver,
    )
    if callback is not None:
        warnings.warn(  # Tornado's warning, word for word: ported tests match it
            "The callback argument to websocket_connect is deprecated. "
            "Use the returned Future instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        IOLoop.current().add_future(conn.connect_future, callback)
    return conn.connect_future
