"""HTTP/1.x on a stream: the server side of a connection, parsed with llhttp.

:class:`HTTP1ServerConnection` serves the requests of one connection; for
each it asks its delegate (an :class:`~reactor.httputil.HTTPServerConnectionDelegate`,
such as :class:`~reactor.httpserver.HTTPServer`) for a message delegate, and
gives that delegate a per-request :class:`~reactor.httputil.HTTPConnection`
to answer through. :class:`HTTP1Connection` is the other way in: one
connection driven by hand, from a stream (see its docstring).

How bytes become requests. The stream pushes what it reads
(:meth:`~reactor.iostream.BaseIOStream.start_reading`) into llhttp (through
``httptools``), whose callbacks become the delegate's ``headers_received``,
``data_received`` and ``finish``; no future and no coroutine per request.
Responses go out in request order (pipelining): while a request's response
is unfinished, while the kernel has not taken a finished one whole (the
client reads slower than it asks: write back-pressure), or while a
delegate's awaitable holds the body back (flow control), the parser's
further events wait in a queue and the connection stops reading, so that
the socket's buffers and TCP's window push back on the client. llhttp is
given each read in slices of :data:`_FEED_SLICE` bytes, and what follows a
slice in which the connection blocked waits unparsed: a pipelining client
can make it hold at most one slice of parsed requests and one read of bytes.

Strictness (RFC 9112). llhttp runs with none of its leniencies: it refuses
Content-Length together with Transfer-Encoding, a repeated or malformed
Content-Length, a Transfer-Encoding whose last coding is not chunked, bad
chunk sizes, obs-fold, bare CR, whitespace before a colon, invalid header
names and values, methods that are not tokens, and unknown versions. On top
of it this module refuses a request with several Host headers or an invalid
one (an HTTP/1.1 request with none; see httputil._request_host_error), HTTP
versions other than 1.0 and 1.1, and transfer codings other than chunked.
Each of these is answered 400 with ``Connection: close``, the connection is
closed, and the application never sees the request. A method token outside
llhttp's table (:data:`_KNOWN_METHODS`) gets 501 Not Implemented, the same
way (RFC 9110 section 9.1). Headers over ``max_header_size`` get 431, a body
over ``max_body_size`` 413 (a Content-Length is held against the limit once
``headers_received`` has run, which may change it). Response headers are checked as they
are written: a CR or LF in a name, value or reason phrase raises
:class:`~reactor.httputil.HTTPOutputError` (no header injection).

Time limits. ``header_timeout``: from a request's first byte (or from the
accept, for the first request) to the end of its headers; a slow client is
answered 408 and cut off. ``body_timeout``: from the end of the headers to
the end of the body. ``idle_timeout``: between requests. One timer per
connection, re-armed lazily, keeps this off the per-request path.
"""

from __future__ import annotations

import collections
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

from reactor import gen
from reactor.concurrent import Future
from reactor.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPInputError,
    HTTPMessageDelegate,
    HTTPOutputError,
    HTTPServerConnectionDelegate,
    RequestStartLine,
    ResponseStartLine,
    _InvalidHeaderError,
    _normalize_name,
    _request_host_error,
    parse_request_start_line,
    parse_response_start_line,
    responses,
)
from reactor.ioloop import _done_future, _new_future
from reactor.iostream import (
    BaseIOStream,
    SSLIOStream,
    StreamBufferFullError,
    StreamClosedError,
    UnsatisfiableReadError,
)
from reactor.log import app_log, gen_log

__all__ = [
    "CR_OR_LF_RE",
    "DIGITS",
    "HEXDIGITS",
    "HTTP1Connection",
    "HTTP1ConnectionParameters",
    "HTTP1ServerConnection",
    "is_transfer_encoding_chunked",
    "parse_hex_int",
    "parse_int",
]

_INF = float("inf")

# Held answers are written once they reach this size (see _write).
_CORK_LIMIT = 65536

# llhttp parses all it is given, and cannot be paused from a callback: the
# requests it parses while an answer is awaited are held as events (a head
# costs about 1 KB). So a read is given to it in slices of this size, and
# what follows a slice in which the connection blocked is kept as bytes
# until it unblocks: a read of 64 KiB of pipelined GETs holds at most one
# slice's worth of parsed requests, not 2,400. (A body's bytes, when the
# Content-Length says how many follow, go in one piece.)
_FEED_SLICE = 4096

DRAIN_IDLE_GRACE = 1.0
"""In a drain, how long after its last request an idle keep-alive connection
may still send its next one (answered with ``Connection: close``) before it
is closed; see :meth:`HTTP1ServerConnection._drain`."""

LINGER_SECONDS = 2.0
"""How long a refused connection reads and discards before closing; see
:meth:`HTTP1ServerConnection._close_after_flush`."""


class HTTP1ConnectionParameters:
    """Settings shared by the connections of one server (or given to an
    :class:`HTTP1Connection`, which has no use for ``idle_timeout``).

    ``chunk_size``: the most body bytes handed to ``data_received`` at a time
    after decompression (default 64 KiB). ``max_header_size``: the start
    line and headers (default 64 KiB). ``max_body_size``: default 100 MiB.
    Timeouts are in seconds; None means no limit: ``header_timeout``
    (default 30), ``body_timeout`` (default None), ``idle_timeout``
    (between requests, default 3600). ``decompress``: gunzip request bodies
    sent with ``Content-Encoding: gzip``.
    """

    __slots__ = (
        "body_timeout",
        "chunk_size",
        "decompress",
        "header_timeout",
        "idle_timeout",
        "max_body_size",
        "max_header_size",
        "no_keep_alive",
    )

    def __init__(
        self,
        no_keep_alive: bool = False,
        chunk_size: int | None = None,
        max_header_size: int | None = None,
        header_timeout: float | None = 30.0,
        max_body_size: int | None = None,
        body_timeout: float | None = None,
        decompress: bool = False,
        idle_timeout: float | None = 3600.0,
    ) -> None:
        self.no_keep_alive = no_keep_alive
        self.chunk_size = chunk_size or 65536
        self.max_header_size = max_header_size or 65536
        self.header_timeout = header_timeout
        self.max_body_size = max_body_size or 100 * 1024 * 1024
        self.body_timeout = body_timeout
        self.decompress = decompress
        self.idle_timeout = idle_timeout


class _Refused(Exception):
    """A request the server answers with ``code`` and a close, unseen by the app."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# Methods come from llhttp's fixed table: decode each name once.
_METHODS: dict[bytes, str] = {}
_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
# Header names as sent -> normalized: one dict lookup per header.
_RAW_NAMES: dict[bytes, str] = {}
_NO_BODY_CODES = frozenset((204, 304))


class _RequestConnection(HTTPConnection):
    """One request's side of the connection: how its delegate answers.

    ``write_headers``, ``write`` and ``finish`` as in
    :class:`~reactor.httputil.HTTPConnection`; the futures resolve when the
    bytes are handed to the kernel. The response is framed by the
    ``Content-Length`` the application sets, else chunked (HTTP/1.1), else by
    closing the connection (HTTP/1.0). ``context`` is the connection's (the
    remote address, the protocol).
    """

    __slots__ = (
        "_chunked",
        "_close_callback",
        "_conn",
        "_delegate",
        "_expect_continue",
        "_keep_alive",
        "_message_done",
        "_method",
        "_no_body",
        "_remaining",
        "_started",
        "context",
        "finished",
        "stream",
    )

    def __init__(self, conn: HTTP1ServerConnection, method: str, keep_alive: bool) -> None:
        self._conn = conn
        self.stream = conn.stream
        self.context = conn.context
        self._method = method
        self._keep_alive = keep_alive
        self._delegate: HTTPMessageDelegate | None = None
        self._close_callback: Callable[[], None] | None = None
        self._expect_continue = False
        self._message_done = False  # the whole request has been read
        self._started = False  # write_headers was called
        self.finished = False  # finish was called
        self._chunked = False
        self._no_body = False
        self._remaining: int | None = None  # body bytes the Content-Length still allows

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` if the connection closes before this response is finished."""
        self._close_callback = callback

    def set_body_timeout(self, timeout: float) -> None:
        """Override the server's ``body_timeout`` for this request (call it
        from ``headers_received``)."""
        self._conn._body_timeout = timeout

    def set_max_body_size(self, max_body_size: int) -> None:
        """Override the server's ``max_body_size`` for this request, up or
        down (call it from ``headers_received``: a ``Content-Length`` is held
        against the limit after that, and its awaitable, are done)."""
        self._conn._max_body_size = max_body_size

    def detach(self) -> BaseIOStream:
        """Take the stream over (e.g. after a ``101 Switching Protocols``).

        The connection stops reading and serving; bytes it had read beyond
        this request are put back into the stream's buffer. The server
        still counts the stream as one of its connections until it closes.
        """
        return self._conn._detach()

    def set_drain_callback(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` (on the loop, once) when the server drains
        (:meth:`~reactor.httpserver.HTTPServer.close_all_connections`) while
        this connection is detached: what the protocol that took the stream
        over does to end it gracefully (a WebSocket closes with 1001). May
        be called before or after :meth:`detach`; a drain waits for the
        stream to close, up to its deadline."""
        conn = self._conn
        conn._drain_callback = callback
        if conn._draining and conn._detached:
            conn._run_drain_callback()

    def write_headers(
        self,
        start_line: RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> Future[None]:
        if self._started:
            raise HTTPOutputError("write_headers called twice for one response")
        assert isinstance(start_line, ResponseStartLine), "a server writes a response"
        code = start_line.code
        if code >= 500:
            self._conn._errors += 1
        reason = start_line.reason
        if "\r" in reason or "\n" in reason:
            raise HTTPOutputError(f"invalid reason phrase: {reason[:100]!r}")
        fields = headers._as_list  # which names are set; values through headers[...]
        keep_alive = self._keep_alive
        if code < 200 or code in _NO_BODY_CODES or self._method == "HEAD":
            self._no_body = True
        if "Content-Length" in fields:
            try:
                remaining = int(headers["Content-Length"])
            except ValueError:
                raise HTTPOutputError(
                    f"invalid Content-Length: {headers['Content-Length']!r}"
                ) from None
            if remaining < 0:
                raise HTTPOutputError(f"invalid Content-Length: {remaining}")
            if not self._no_body:
                self._remaining = remaining
        elif "Transfer-Encoding" in fields:
            # The application frames the body itself (its own chunks).
            self._chunked = False
        elif not self._no_body:
            if self._conn._version == "HTTP/1.1":
                self._chunked = True
                headers["Transfer-Encoding"] = "chunked"
            else:
                keep_alive = False  # HTTP/1.0: the close ends the body
        if "Connection" in fields and headers["Connection"].lower() == "close":
            keep_alive = False
        if not keep_alive:
            self._keep_alive = False
            if "Connection" not in fields:
                headers["Connection"] = "close"
        elif self._conn._version == "HTTP/1.0" and "Connection" not in fields:
            headers["Connection"] = "Keep-Alive"
        head = b"HTTP/1.1 %d %s\r\n%s\r\n" % (code, reason.encode("latin-1"), headers._encode())
        self._started = True
        self._expect_continue = False
        if chunk:
            head += self._frame(chunk)
        return self._conn._write(head)

    def _frame(self, chunk: bytes) -> bytes:
        if self._no_body:
            if self._method == "HEAD":
                return b""
            raise HTTPOutputError("this response may not have a body")
        remaining = self._remaining
        if remaining is not None:
            remaining -= len(chunk)
            self._remaining = remaining
            if remaining < 0:
                self._conn._close_after_flush()
                raise HTTPOutputError("tried to write more data than the Content-Length")
        if self._chunked:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def write(self, chunk: bytes) -> Future[None]:
        if not self._started:
            raise HTTPOutputError("write before write_headers")
        if self.finished:
            raise HTTPOutputError("write after finish")
        if not chunk:
            return _done_future()
        return self._conn._write(self._frame(chunk))

    def finish(self) -> None:
        if not self._started:
            raise HTTPOutputError("finish before write_headers")
        if self.finished:
            raise HTTPOutputError("finish called twice")
        self.finished = True
        # This response's delegate (and whatever it holds: the request, a
        # handler) and this connection refer to each other: let them go now,
        # for reference counting to free them, not the cycle collector.
        self._delegate = None
        self._close_callback = None
        if self._remaining:
            client_left = self.stream.closed()
            self._conn._close_after_flush()
            if client_left:
                # The client left mid-body: nothing is owed to it, and its
                # handler learnt so from a write (as in Tornado, no error).
                return
            raise HTTPOutputError(
                f"response finished {self._remaining} bytes short of its Content-Length"
            )
        if self._chunked:
            self._conn._write(b"0\r\n\r\n")
        self._conn._response_finished(self)


class HTTP1ServerConnection:
    """Serves the requests of one connection (see the module docstring).

    ``context``: what requests see as ``request.connection.context``
    (``remote_ip``, ``protocol``). Start with :meth:`start_serving`; stop
    with :meth:`close`.
    """

    # Slots: an idle keep-alive connection stays small, attributes are quick.
    __slots__ = (
        "__weakref__",
        "_answered",
        "_blocked",
        "_body_left",
        "_body_size",
        "_body_start",
        "_body_timeout",
        "_closed",
        "_closing",
        "_content_length",
        "_corked",
        "_corked_size",
        "_corking",
        "_deadline",
        "_delegate",
        "_detached",
        "_drain_callback",
        "_draining",
        "_errors",
        "_head_fed",
        "_in_head",
        "_loop",
        "_max_body_size",
        "_message_start",
        "_now",
        "_parser",
        "_pending",
        "_raw_headers",
        "_reading",
        "_refused",
        "_request",
        "_served",
        "_timer",
        "_timer_at",
        "_unfed",
        "_url",
        "_version",
        "context",
        "params",
        "stream",
    )

    def __init__(
        self,
        stream: BaseIOStream,
        params: HTTP1ConnectionParameters | None = None,
        context: Any = None,
    ) -> None:
        self.stream = stream
        self.params = params = params or HTTP1ConnectionParameters()
        self.context = context
        self._delegate: HTTPServerConnectionDelegate | None = None
        self._loop = stream.io_loop
        self._parser = httptools.HttpRequestParser(self)
        self._now = 0.0
        self._closed = False
        self._detached = False
        self._reading = False
        # Writes made while one read is parsed go out together: see _write.
        self._corking = False
        self._corked: list[bytes] = []
        self._corked_size = 0
        # The message being parsed.
        self._in_head = False
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._head_fed = 0  # bytes fed since the head began (-1: it began in this feed)
        self._message_start = 0.0
        self._version = "HTTP/1.1"
        self._body_left = 0  # body bytes the Content-Length still announces
        # Input not yet given to llhttp: what followed an Upgrade request, or
        # the rest of a read in which the connection blocked (see _FEED_SLICE).
        self._unfed: bytes | memoryview | None = None
        # The request being handled (its body being read, or its response awaited).
        self._request: _RequestConnection | None = None
        self._body_size = 0
        self._body_start = 0.0
        # The request's Content-Length (-1: none), until _continue checks it.
        self._content_length: int | None = None
        self._max_body_size = params.max_body_size
        self._body_timeout = params.body_timeout
        # Parser events held back while blocked (pipelining, flow control).
        self._blocked = False
        self._pending: collections.deque[tuple[Callable[[Any], None], Any]] | None = None
        # One lazily re-armed timer: see _update_deadline and _on_timer.
        self._deadline: float | None = None
        self._timer: object | None = None
        self._timer_at = _INF
        self._served = 0  # requests begun
        # What HTTPServer.stats() sums (lazily, over the open connections).
        self._answered = 0  # responses finished (a 101 and detach included)
        self._refused = 0  # requests the connection answered itself (4xx, 501)
        self._errors = 0  # responses with a 5xx status
        # A server's drain: see _drain.
        self._draining = False
        self._closing = False  # _close_after_flush was called
        self._drain_callback: Callable[[], None] | None = None

    # -- life cycle -------------------------------------------------------------------

    def start_serving(self, delegate: HTTPServerConnectionDelegate) -> None:
        """Serve requests, asking ``delegate`` for each one's handler."""
        self._delegate = delegate
        # Answers leave whole (one send per read, see _write): Nagle's wait
        # for an ACK would only delay the next one (by the peer's delayed
        # ACK, up to 40 ms, when requests are pipelined).
        self.stream.set_nodelay(True)
        self.stream.set_close_callback(self._on_stream_close)
        self._now = now = self._loop.time()
        self._message_start = now
        self._update_deadline()
        self._reading = True
        self.stream.start_reading(self._on_data, views=True)

    def close(self) -> None:
        """Close the connection now (pending responses are dropped)."""
        self._blocked = True  # deliver nothing more, even from this read
        self._pending = None
        self.stream.close()

    def _on_stream_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        self._pending = None
        self._abandon_request()
        if self._delegate is not None:
            self._delegate.on_close(self)

    def _abandon_request(self) -> None:
        """The current request will not be completed: tell its delegate."""
        request = self._request
        self._request = None
        if request is not None and not request.finished:
            callback = request._close_callback
            if callback is not None:
                request._close_callback = None
                self._run(callback)
            delegate = request._delegate
            if delegate is not None and not request._message_done:
                self._run(delegate.on_connection_close)

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:
            app_log.error("Exception in callback %r", fn, exc_info=True)

    def _detach(self) -> BaseIOStream:
        self._uncork()  # the 101 answer first
        stream = self.stream
        self._answered += 1
        self._closed = self._detached = True
        self._cancel_timer()
        self._pending = None
        self._request = None
        stream.set_close_callback(None)
        stream.stop_reading()
        rest = self._unfed
        self._unfed = None
        if rest:
            self._unread(rest)
        # The connection is no longer served (the server keeps the stream,
        # until it closes, among its detached connections).
        if self._delegate is not None:
            self._delegate.on_close(self)
        return stream

    def _unread(self, data: bytes | memoryview) -> None:
        """Put ``data`` back in front of the stream's buffer, for its next owner."""
        stream = self.stream
        stream._read_buffer[stream._read_pos : stream._read_pos] = data

    # -- reading ----------------------------------------------------------------------

    def _on_data(self, data: bytes | memoryview) -> None:
        """start_reading's callback: feed llhttp, answers held until the end."""
        if not data:  # end of input
            self._on_eof()
            return
        self._corking = True
        try:
            self._feed(data)
        finally:
            self._uncork()

    def _feed(self, data: bytes | memoryview) -> None:
        """Give ``data`` to llhttp, a slice at a time (see :data:`_FEED_SLICE`);
        if the connection blocks, keep the rest for :meth:`_unblock`."""
        self._now = self._loop.time()
        size = len(data)
        pos = 0
        while True:
            if size - pos <= _FEED_SLICE:
                end = size
                piece = data if not pos else data[pos:]
            else:
                if type(data) is bytes:
                    data = memoryview(data)  # slices without copies
                end = pos + max(_FEED_SLICE, self._body_left)
                piece = data[pos:end]
            if not self._parse(piece, data, pos):
                return
            if end >= size:
                break
            pos = end
            if self._blocked:
                # Bytes, not parsed requests, wait. A view of the stream's
                # scratch buffer (a bytearray) is copied; a view of bytes we
                # hold already (an earlier rest) is kept, not copied again.
                rest = data[pos:]
                if not (isinstance(rest, memoryview) and type(rest.obj) is bytes):
                    rest = bytes(rest)
                self._unfed = rest
                break
        self._after_feed()

    def _after_feed(self) -> None:
        if self._closed:
            return
        if self._blocked and self._reading:
            self._reading = False
            self.stream.stop_reading()
        self._update_deadline()

    def _parse(self, piece: bytes | memoryview, data: bytes | memoryview, pos: int) -> bool:
        """Feed ``piece`` (``data[pos:]``'s start) to llhttp; False when
        nothing more may be fed (an error, an upgrade, a close), with the
        connection's state already brought up to date."""
        if self._in_head and self._head_fed >= 0:
            self._head_fed += len(piece)
        try:
            self._parser.feed_data(piece)
        except httptools.HttpParserUpgrade as e:
            # llhttp stops after a request with Upgrade: what follows may be
            # another protocol (if the application switches) or more HTTP.
            rest = bytes(data[pos + e.args[0] :])  # data may be the stream's scratch view
            if self._detached:
                self._unread(rest)
                return False
            if self._request is None and not self._blocked:
                if rest:  # answered without switching: HTTP goes on
                    self._feed(rest)
                return False
            self._unfed = rest
            self._block()  # until the application answers
            self._after_feed()
            return False
        except httptools.HttpParserCallbackError as e:
            # httptools wraps whatever a callback raised, even Ctrl-C's
            # KeyboardInterrupt: let those through as themselves.
            if isinstance(e.__context__, BaseException) and not isinstance(
                e.__context__, Exception
            ):
                raise e.__context__ from None
            # Our own callbacks catch the application's errors: a bug here.
            gen_log.error("Error in the HTTP/1 connection %r", self, exc_info=True)
            self.stream.close()
            return False
        except httptools.HttpParserError as e:
            # llhttp stays in its error state: nothing after this is parsed.
            self._emit(self._refuse, _refusal_for(e, piece))
            self._after_feed()
            return False
        if self._in_head:
            if self._head_fed < 0:
                self._head_fed = 0
            elif self._head_fed > self.params.max_header_size:
                self._in_head = False
                self._emit(self._refuse, _Refused(431, "request headers too large"))
                self._after_feed()
                return False
        return not self._closed

    def _on_eof(self) -> None:
        """The client closed (or half-closed) its side: finish what we owe, then close."""
        if self._in_head or (self._request is not None and not self._request._message_done):
            self.stream.close()  # a request cut short: nothing to answer
        elif self._blocked or self._request is not None:
            self._emit(lambda _: self._close_after_flush(), None)
        else:
            self._close_after_flush()

    # llhttp's callbacks (httptools looks these up by name).

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_fed = -1
        self._message_start = self._now
        self._url = b""
        self._raw_headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method)
        if method is None:
            method = _METHODS[raw_method] = raw_method.decode("latin-1")
        version = _VERSIONS.get(parser.get_http_version())
        url = self._url
        size = len(url) + len(method) + 11
        headers = HTTPHeaders()
        fields = headers._combined
        lists = headers._as_list
        raw_names = _RAW_NAMES
        for raw_name, raw_value in self._raw_headers:
            size += len(raw_name) + len(raw_value) + 4
            name = raw_names.get(raw_name)
            if name is None:
                name = _normalize_name(raw_name.decode("latin-1"))
                if len(raw_names) < 4096:  # bounded: names come from clients
                    raw_names[raw_name] = name
            value = raw_value.decode("latin-1")
            # llhttp keeps trailing whitespace, which is not the value's (RFC 9110 5.5)
            if value and value[-1] in " \t":
                value = value.rstrip(" \t")
            values = lists.get(name)
            if values is None:
                fields[name] = value
                lists[name] = [value]
            else:
                fields.pop(name, None)  # joined on first read: n adds stay linear
                values.append(value)
        refusal = None
        if size > self.params.max_header_size:
            refusal = _Refused(431, "request headers too large")
        elif version is None:
            refusal = _Refused(400, f"unsupported HTTP version {parser.get_http_version()}")
        elif (host_error := _request_host_error(url, lists.get("Host"), version)) is not None:
            refusal = _Refused(400, host_error)
        elif "Transfer-Encoding" in lists and (
            version == "HTTP/1.0" or headers["Transfer-Encoding"].lower() != "chunked"
        ):
            # HTTP/1.0 has no transfer codings: its framing cannot be trusted
            # (RFC 9112 section 6.1).
            refusal = _Refused(400, "unsupported Transfer-Encoding")
        if refusal is not None:
            self._emit(self._refuse, refusal)
            return
        # Held against max_body_size once headers_received has run (which
        # may change the limit): see _continue.
        length = int(headers["Content-Length"]) if "Content-Length" in lists else -1
        self._body_left = length  # llhttp checked it
        start_line = RequestStartLine(method, url.decode("latin-1"), version)  # type: ignore[arg-type]
        keep_alive = parser.should_keep_alive()
        if self._blocked:
            self._hold(self._head, (start_line, headers, keep_alive, length))
        else:
            self._head((start_line, headers, keep_alive, length))

    def on_body(self, body: bytes) -> None:
        self._body_left -= len(body)
        if self._blocked:
            self._hold(self._body, body)
        else:
            self._body(body)

    def on_message_complete(self) -> None:
        self._body_left = 0
        if self._blocked:
            self._hold(self._done, None)
        else:
            self._done(None)

    # -- delivering parser events -----------------------------------------------------

    def _emit(self, fn: Callable[[Any], None], arg: Any) -> None:
        if self._blocked:
            self._hold(fn, arg)
        else:
            fn(arg)

    def _hold(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Queue a parser event until _unblock (made on first need: most
        connections never hold one, and an empty deque costs ~600 bytes)."""
        if self._pending is None:
            self._pending = collections.deque()
        self._pending.append((fn, arg))

    def _block(self) -> None:
        self._blocked = True

    def _unblock(self, _: object = None) -> None:
        """Deliver held-back events until done or blocked again; then read on."""
        if self._closed:
            return
        self._blocked = False
        pending = self._pending
        self._corking = True  # answers to held-back requests go out together
        try:
            while pending and not self._blocked and not self._closed:
                fn, arg = pending.popleft()
                fn(arg)
            if self._closed or self._blocked:
                return
            rest = self._unfed
            if rest is not None:
                # The rest of a read (or what followed an Upgrade request
                # the application answered without switching: HTTP again).
                self._unfed = None
                self._feed(rest)
                if self._closed or self._blocked:
                    return
        finally:
            self._uncork()
        self._update_deadline()
        if not self._reading:
            self._reading = True
            self.stream.start_reading(self._on_data, views=True)

    def _wait_for(self, result: Awaitable[None]) -> None:
        """A delegate returned ``result``: deliver nothing more until it is done."""
        future = gen.convert_yielded(result)
        if future.done():
            if self._check(future):
                self._continue()
            return
        self._block()
        self._loop.add_future(future, self._resume_after)

    def _resume_after(self, future: Future[None]) -> None:
        if self._check(future) and self._continue():
            self._unblock()

    def _continue(self) -> bool:
        """A delegate is done with ``headers_received`` (its awaitable
        included), or with a piece of body. After the headers: unless the
        delegate has answered, hold the Content-Length against the limit,
        which ``set_max_body_size`` may have changed (413, and False), then
        send ``100 Continue`` if the request expects it."""
        length = self._content_length
        if length is None:
            return True
        self._content_length = None
        request = self._request
        if request is None or request._started:
            return True
        if length > self._max_body_size:
            self._refuse(_Refused(413, "request body too large"))
            return False
        if request._expect_continue:
            # The client waits for this before it sends the body.
            request._expect_continue = False
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _check(self, future: Future[None]) -> bool:
        try:
            future.result()
        except Exception as e:
            self._delegate_failed(e, "an awaitable of the request handler")
            return False
        return True

    def _delegate_failed(self, error: Exception, where: str) -> None:
        """A delegate raised ``error``: an HTTPInputError is the client's
        (400, or its code for a body too large; logged as a refusal);
        anything else is the application's (500, logged with its
        traceback)."""
        if isinstance(error, HTTPInputError):
            # 413 for a decompressed body over max_body_size.
            code = error.code if isinstance(error, _TooLarge) else 400
            self._refuse(_Refused(code, str(error)))
            return
        app_log.error("Uncaught exception in %s", where, exc_info=error)
        self._refuse(_Refused(500, "internal error"))

    def _head(self, args: tuple[RequestStartLine, HTTPHeaders, bool, int]) -> None:
        start_line, headers, keep_alive, self._content_length = args
        if self.params.no_keep_alive:
            keep_alive = False
        self._version = start_line.version
        request = self._request = _RequestConnection(self, start_line.method, keep_alive)
        self._served += 1
        self._body_size = 0
        self._body_start = self._now
        assert self._delegate is not None
        try:
            delegate = self._delegate.start_request(self, request)
            if self.params.decompress and "Content-Encoding" in headers._as_list:
                # The limit holds for the body as decompressed: a small gzip
                # bomb must not become a huge body (as in Tornado).
                delegate = _GzipMessageDelegate(
                    delegate, self.params.chunk_size, self._max_body_size
                )
            request._delegate = delegate
            if (
                start_line.version == "HTTP/1.1"
                and headers.get("Expect", "").lower() == "100-continue"
            ):
                request._expect_continue = True
            result = delegate.headers_received(start_line, headers)
        except Exception as e:
            self._delegate_failed(e, "headers_received")
            return
        if result is not None:
            self._wait_for(result)
        else:
            self._continue()

    def _body(self, chunk: bytes) -> None:
        request = self._request
        if request is None or request._delegate is None:
            return  # its delegate failed: the connection is closing
        self._body_size += len(chunk)
        if self._body_size > self._max_body_size:
            self._refuse(_Refused(413, "request body too large"))
            return
        try:
            result = request._delegate.data_received(chunk)
        except Exception as e:
            self._delegate_failed(e, "data_received")
            return
        if result is not None:
            self._wait_for(result)

    def _done(self, _: object) -> None:
        request = self._request
        if request is None or request._delegate is None:
            return
        request._message_done = True
        self._max_body_size = self.params.max_body_size
        self._body_timeout = self.params.body_timeout
        try:
            request._delegate.finish()
        except Exception as e:
            self._delegate_failed(e, "the request handler")
            return
        if not request.finished and self._request is request:
            self._block()  # until _response_finished: responses go out in order

    def _refuse(self, refusal: _Refused) -> None:
        """Answer ``refusal.code`` (unless a response has begun) and close."""
        if self._closed:
            return
        code = refusal.code
        if code == 500:
            self._errors += 1  # its delegate raised
        else:
            self._refused += 1
        if code < 500:
            address = getattr(self.context, "remote_ip", None)
            gen_log.info("Refused a request from %s: %d %s", address, code, refusal)
        request = self._request
        if request is not None and request._started:
            # Too late for a status: end the response by closing.
            self.stream.close()
            return
        self._abandon_request()
        reason = responses.get(code, "Error")
        self._in_head = False
        self._write(
            b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            % (code, reason.encode("latin-1"))
        )
        self._close_after_flush(linger=True)

    # -- writing ----------------------------------------------------------------------

    def _write(self, data: bytes) -> Future[None]:
        """Hand ``data`` to the stream; while a read is being parsed, hold it
        until the end of that read (up to :data:`_CORK_LIMIT` bytes), so that
        the answers to pipelined requests leave in one ``send``. What is held
        counts as written: it reaches the stream before the loop runs
        anything else. (Held pieces are joined once, when they go: joining
        as they come would copy quadratically in the number of writes.)"""
        if self._corking:
            corked = self._corked
            size = self._corked_size + len(data)
            if size < _CORK_LIMIT:
                # A copy of what the application may change once this returns.
                corked.append(data if type(data) is bytes else bytes(data))
                self._corked_size = size
                return _done_future()
            if corked:
                corked.append(data)
                data = b"".join(corked)
                corked.clear()
                self._corked_size = 0
        try:
            return self.stream.write(data)
        except StreamClosedError as e:
            future: Future[None] = _new_future()
            future.set_exception(e)
            future.exception()  # the close is reported through on_connection_close
            return future
        except StreamBufferFullError as e:
            # The client does not read what it asked for (the server's
            # max_write_buffer_size): the response is cut, the handler
            # told through on_connection_close, like a client that left.
            stream = self.stream
            gen_log.info(
                "Closing the connection from %s: its client does not read, and its "
                "response passed max_write_buffer_size (%s bytes)",
                getattr(self.context, "remote_ip", None),
                stream.max_write_buffer_size,
            )
            stream.close(exc_info=e)
            future = _new_future()
            future.set_exception(StreamClosedError(real_error=e))
            future.exception()
            return future

    def _uncork(self) -> None:
        self._corking = False
        corked = self._corked
        if corked:
            data = corked[0] if len(corked) == 1 else b"".join(corked)
            corked.clear()
            self._corked_size = 0
            self._write(data)

    def _response_finished(self, request: _RequestConnection) -> None:
        if request is not self._request or self._closed:
            return
        self._answered += 1
        if not request._message_done or not request._keep_alive:
            # An answer before the whole request was read, or no keep-alive:
            # the rest of the input cannot be trusted to be a request. (In a
            # drain, requests pipelined behind this one are not started:
            # linger, so that our close does not reset this answer.)
            linger = not request._message_done or (self._draining and self._input_waiting())
            self._close_after_flush(linger=linger)
            return
        self._request = None
        stream = self.stream
        if stream.writing():
            # Back-pressure: the kernel did not take this answer whole (the
            # client reads slower than it asks). The next pipelined request
            # waits until it has, and meanwhile nothing is read, so the
            # socket's buffers and TCP's window push back on the client.
            self._blocked = True
            if self._reading:
                self._reading = False
                stream.stop_reading()
            stream.write(b"").add_done_callback(self._drained)
        elif self._blocked:
            self._unblock()

    def _drained(self, _: object) -> None:
        if not self.stream.closed():
            self._unblock()

    def _close_after_flush(self, linger: bool = False) -> None:
        """Deliver nothing more; close once what is written has gone out.

        ``linger``: the client may still be sending (a refused or cut-short
        request). Closing a socket with unread input makes the kernel send a
        reset, which can destroy our answer before the client reads it; so
        shut down our side, then read and discard for up to
        :data:`LINGER_SECONDS` (what nginx calls a lingering close).
        """
        self._uncork()
        self._closing = True
        self._blocked = True
        self._pending = None
        self._unfed = None
        self._deadline = None
        stream = self.stream
        if stream.closed():
            return
        if self._reading:
            self._reading = False
            stream.stop_reading()
        if stream.writing():
            stream.write(b"").add_done_callback(lambda _: self._close(linger))
        else:
            self._close(linger)

    def _close(self, linger: bool) -> None:
        stream = self.stream
        sock = getattr(stream, "socket", None)
        if not linger or stream.closed() or sock is None or isinstance(stream, SSLIOStream):
            stream.close()
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            stream.close()
            return
        self._loop.call_later(LINGER_SECONDS, stream.close)
        stream.start_reading(self._discard)

    def _discard(self, data: bytes) -> None:
        if not data:  # the client is done too
            self.stream.close()

    # -- a server's drain -------------------------------------------------------------

    def _drain(self) -> None:
        """The server drains (HTTPServer.close_all_connections): the request
        in progress is finished, with ``Connection: close`` on its response
        (or, if its headers went out already, a close at its end); requests
        pipelined behind it are not started; an idle connection (no byte of
        a next request read, none waiting in the socket) closes now, unless
        it was busy less than :data:`DRAIN_IDLE_GRACE` ago. The server has
        set ``params.no_keep_alive``, so that a request begun from here on
        is answered with ``Connection: close``.

        Why the grace: a client that has just had an answer sends its next
        request on the same connection a moment later (a load generator at
        once; any client once its loop gets round to it). Closed at once, that
        request would meet a closed socket: a failed request for the client,
        since it cannot know whether it was seen. Kept open a moment, it is
        answered, with ``Connection: close``. A connection idle for longer is
        not about to be used, and closes at once."""
        if self._draining:
            return
        self._draining = True
        if self._detached:
            self._run_drain_callback()
            return
        if self._closed or self._closing:
            return  # closing already (after a refusal, or a close)
        request = self._request
        if request is not None:
            request._keep_alive = False
            return
        if self._in_head:
            return  # a request has begun: it is answered, then the connection closes
        if self._blocked:
            # A finished answer the client is slow to take, with requests
            # held behind it: those are not started.
            self._close_after_flush(linger=self._input_waiting())
            return
        if self._input_waiting():
            return  # a next request is on its way: answered, then closed
        idle = self._loop.time() - self._now  # since the last read (or the accept)
        if idle >= DRAIN_IDLE_GRACE:
            self._close_after_flush()
        else:
            self._loop.call_later(DRAIN_IDLE_GRACE - idle, self._close_if_idle)

    def _close_if_idle(self) -> None:
        """The drain's grace is over: close unless a request has begun."""
        if self._closed or self._closing or self._detached:
            return
        if self._request is not None or self._in_head or self._blocked:
            return  # answered with Connection: close, then closed
        if not self._input_waiting():
            self._close_after_flush()

    def _run_drain_callback(self) -> None:
        callback = self._drain_callback
        if callback is not None:
            self._drain_callback = None
            self._loop.add_callback(callback)

    def _input_waiting(self) -> bool:
        """True if the client has sent bytes not parsed yet (held, buffered,
        or in the socket's receive queue: peeked, not read)."""
        if self._pending or self._unfed:
            return True
        stream = self.stream
        if stream.closed():
            return False
        if stream._read_pos < len(stream._read_buffer):
            return True
        sock = getattr(stream, "socket", None)
        if not isinstance(sock, socket.socket):
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        try:
            # The raw socket's recv (an SSLSocket's takes no flags): any
            # byte, encrypted or not, is the client talking.
            return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK))
        except OSError:  # BlockingIOError: nothing waits; others: gone
            return False

    # -- time limits ------------------------------------------------------------------

    def _update_deadline(self) -> None:
        params = self.params
        if self._blocked:
            deadline = None  # the application has the request
        elif self._in_head or not self._served:
            timeout = params.header_timeout
            deadline = None if timeout is None else self._message_start + timeout
        elif self._request is not None:
            timeout = self._body_timeout
            deadline = None if timeout is None else self._body_start + timeout
        else:
            timeout = params.idle_timeout
            deadline = None if timeout is None else self._now + timeout
        self._deadline = deadline
        if deadline is not None and deadline < self._timer_at:
            if self._timer is not None:
                self._loop.remove_timeout(self._timer)
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._loop.remove_timeout(self._timer)
            self._timer = None
            self._timer_at = _INF

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = _INF
        deadline = self._deadline
        if deadline is None or self._closed:
            return
        if self._loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        address = getattr(self.context, "remote_ip", None)
        if self._in_head:
            gen_log.info("Timed out waiting for request headers from %s", address)
            self._refuse(_Refused(408, "timed out waiting for the request headers"))
        else:
            # Nothing sent at all (a preconnected or idle socket), or a body
            # too slow: no answer is expected, or none can be given.
            gen_log.debug("Closing a timed-out connection from %s", address)
            self.stream.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self.context, 'remote_ip', None)}>"


def _parser_message(error: Exception) -> str:
    return str(error) or type(error).__name__


# The methods llhttp accepts in an HTTP request (its table, as of the
# llhttp in httptools 0.6 to 0.9): RFC 9110's, PATCH, WebDAV's and its
# extensions (RFC 4918, 3253, 3648, 5323, 5842, 3744, 4791), UPnP's, LINK,
# UNLINK, PURGE, SOURCE and QUERY. CONNECT goes through the Upgrade path.
_KNOWN_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE PATCH "
    b"COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL "
    b"REPORT MKACTIVITY CHECKOUT MERGE MKCALENDAR "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE "
    b"LINK UNLINK PURGE SOURCE QUERY".split()
)

# A request line: a method token (RFC 9110 section 5.6.2), SP, a target, SP, a version.
_REQUEST_LINE = re.compile(rb"(?:^|\n)([!#$%&'*+\-.^_`|~0-9A-Za-z]+) [^ \r\n]+ HTTP/")


def _refusal_for(error: Exception, data: bytes | memoryview) -> _Refused:
    """The answer to a request llhttp refused. RFC 9110 section 9.1: a
    method token the server does not know gets ``501 Not Implemented``;
    anything that is not a token, like any other malformed request, 400.
    llhttp reports both as an invalid method (RTSP's methods, which its
    table shares, as "Invalid method for HTTP/x.x request"), and not where
    the request began: so look in what was fed for a request line whose
    method is a token llhttp does not know."""
    if isinstance(error, httptools.HttpParserInvalidMethodError) or "Invalid method" in str(error):
        for match in _REQUEST_LINE.finditer(bytes(data)):
            token = match.group(1)
            if token not in _KNOWN_METHODS:
                method = token[:40].decode("latin-1")
                return _Refused(501, f"method {method!r} is not implemented")
    return _Refused(400, _parser_message(error))


class _GzipMessageDelegate(HTTPMessageDelegate):
    """Gunzips a request body for the delegate it wraps (``decompress_request``).

    The delegate sees the body decompressed, without ``Content-Encoding``
    and ``Content-Length`` (the original encoding is in
    ``X-Consumed-Content-Encoding``), in pieces of at most ``chunk_size``.
    """

    def __init__(
        self, delegate: HTTPMessageDelegate, chunk_size: int, max_size: int | None = None
    ) -> None:
        self._delegate = delegate
        self._chunk_size = chunk_size
        self._decompressor: Any = None
        # The most decompressed bytes to deliver (None: no limit), so that a
        # small gzip bomb cannot become a huge body.
        self._left = max_size

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        if headers.get("Content-Encoding", "").lower() == "gzip":
            self._decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            headers.add("X-Consumed-Content-Encoding", headers["Content-Encoding"])
            del headers["Content-Encoding"]
            if "Content-Length" in headers:
                del headers["Content-Length"]
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._decompressor is None:
            return self._delegate.data_received(chunk)
        return self._feed(chunk)

    async def _feed(self, chunk: bytes) -> None:
        decompressor = self._decompressor
        data = chunk
        while data:
            try:
                piece = decompressor.decompress(data, self._chunk_size)
            except zlib.error as e:
                raise HTTPInputError(f"invalid gzip request body: {e}") from None
            data = decompressor.unconsumed_tail
            if self._left is not None:
                self._left -= len(piece)
                if self._left < 0:
                    raise _TooLarge(413, "decompressed body too large")
            if piece:
                result = self._delegate.data_received(piece)
                if result is not None:
                    await result

    def finish(self) -> None:
        if self._decompressor is not None:
            tail = self._decompressor.flush()
            if tail:
                # data_received may return an awaitable; at finish nothing
                # more can wait, as in Tornado.
                self._delegate.data_received(tail)
            if not self._decompressor.eof:
                raise HTTPInputError("truncated gzip request body")
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._delegate.on_connection_close()


# -- one connection driven by hand: Tornado's HTTP1Connection ------------------------
#
# Some facts this part is built on (RFC 9112):
# - A message's body length comes from, in order: the request method and the
#   status (HEAD, 1xx, 204 and 304 answers have none, whatever the headers
#   say), Transfer-Encoding (whose last coding must be chunked; we take
#   chunked alone), Content-Length, and else: nothing for a request, the
#   close of the connection for a response (section 6.3).
# - Transfer-Encoding together with Content-Length is how requests are
#   smuggled past a proxy that reads one and a server that reads the other:
#   refused. So is Transfer-Encoding in an HTTP/1.0 message (section 6.1).
# - A Content-Length may be a list of one value repeated (a proxy that
#   joined two copies): taken as that value. Different values, a sign, a
#   space or anything but ASCII digits: refused (parse_int).
# - A chunk is its size in hex, maybe ";extensions" (ignored), CRLF, the
#   data, CRLF; size 0 ends the body, then trailer lines, then an empty line.
# - A client may get any number of 1xx answers before the real one: we take
#   at most _MAX_1XX_RESPONSES, so a peer cannot keep a client reading.
# - The peer may lie, flood or stall: the head is read within
#   max_header_size and header_timeout, the body within max_body_size and
#   body_timeout, a chunk-size line within _MAX_CHUNK_LINE, the trailers
#   within max_header_size.

CR_OR_LF_RE = re.compile(b"\r|\n")
"""A CR or an LF: what no start line or header line that is sent may hold."""

DIGITS = re.compile(r"[0-9]+")
"""One or more ASCII decimal digits (what :func:`parse_int` takes)."""

HEXDIGITS = re.compile(r"[0-9a-fA-F]+")
"""One or more ASCII hexadecimal digits (what :func:`parse_hex_int` takes)."""


def parse_int(s: str) -> int:
    """Parse a non-negative decimal integer made of ASCII digits only.

    Raises ValueError for anything ``int()`` would take beyond that: a
    sign, surrounding whitespace, underscores, other scripts' digits.
    """
    if DIGITS.fullmatch(s) is None:
        raise ValueError(f"not a non-negative decimal integer: {s[:100]!r}")
    return int(s)


def parse_hex_int(s: str) -> int:
    """Parse a non-negative hexadecimal integer (ASCII hex digits only, no
    ``0x``, sign, whitespace or underscores); ValueError otherwise."""
    if HEXDIGITS.fullmatch(s) is None:
        raise ValueError(f"not a non-negative hexadecimal integer: {s[:100]!r}")
    return int(s, 16)


def is_transfer_encoding_chunked(headers: HTTPHeaders) -> bool:
    """True if ``headers`` say ``Transfer-Encoding: chunked``, False without
    a Transfer-Encoding.

    Raises :class:`~reactor.httputil.HTTPInputError` for a Transfer-Encoding
    together with a Content-Length, and for any coding but ``chunked`` alone
    (``gzip, chunked`` included): a message whose framing two readers could
    disagree on is refused, not guessed at.
    """
    if "Transfer-Encoding" not in headers:
        return False
    if "Content-Length" in headers:
        raise HTTPInputError("message with both Transfer-Encoding and Content-Length")
    coding = headers["Transfer-Encoding"]
    if coding.lower() == "chunked":
        return True
    raise HTTPInputError(f"unsupported Transfer-Encoding: {coding[:100]!r}")


class _TooLarge(HTTPInputError):
    """Input over a limit: ``code`` is the status a server answers it with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _DelegateFailed(Exception):
    """A delegate raised (logged already): the connection is closed."""


_MAX_1XX_RESPONSES = 10
# A chunk-size line, extensions included.
_MAX_CHUNK_LINE = 1024
# Bytes handled (a chunk counts as _CHUNK_COST more) before letting the loop
# run: a body already buffered would otherwise be handled in one go.
_YIELD_EVERY = 256 * 1024
_CHUNK_COST = 1024
_HEAD_END = re.compile(b"\r?\n\r?\n")
_LIST_SEPARATOR = re.compile(r",[ \t]*")
# What a message's framing says follows its head (else a length).
_CHUNKED = -1
_UNTIL_CLOSE = -2


def _tokens(value: str | None) -> set[str]:
    """The lower-cased tokens of a list header (``Connection: keep-alive, Upgrade``)."""
    if not value:
        return set()
    return {token.strip(" \t").lower() for token in value.split(",")}


def _content_length(headers: HTTPHeaders) -> int:
    value = headers["Content-Length"]
    if "," in value:
        # Repeated copies of one value (RFC 9112 section 6.3) are that value.
        pieces = _LIST_SEPARATOR.split(value)
        if any(piece != pieces[0] for piece in pieces):
            raise HTTPInputError(f"multiple unequal Content-Lengths: {value[:100]!r}")
        value = pieces[0]
    try:
        return parse_int(value)
    except ValueError:
        raise HTTPInputError(f"invalid Content-Length: {value[:100]!r}") from None


def _retrieve(future: Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _limited(read: Awaitable[bytes], code: int, what: str) -> bytes:
    """Await a read given a ``max_bytes``: a peer that sent more is refused
    (``code``; the stream closed it already)."""
    try:
        return await read
    except StreamClosedError as e:
        if isinstance(e.real_error, UnsatisfiableReadError):
            raise _TooLarge(code, f"{what} too long") from None
        raise


def _close_lingering(stream: BaseIOStream, read: bool = True) -> None:
    """Close ``stream`` without losing what was written to a reset (the
    peer may still be sending, and a close with unread input sends an RST):
    shut our side, then close at the peer's end or after
    :data:`LINGER_SECONDS` (see HTTP1ServerConnection._close_after_flush).
    ``read``: discard what arrives meanwhile (False: a read of ours is
    pending, and does that)."""
    sock = getattr(stream, "socket", None)
    if (
        stream.closed()
        or sock is None
        or isinstance(stream, SSLIOStream)
        or (read and stream.reading())  # a read abandoned midway: nothing to wait for
    ):
        stream.close()
        return
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        stream.close()
        return
    stream.io_loop.call_later(LINGER_SECONDS, stream.close)
    if read:

        def discard(data: bytes) -> None:
            if not data:
                stream.close()

        stream.start_reading(discard)


class HTTP1Connection(HTTPConnection):
    """HTTP/1.x on one stream, driven by hand: a client's, or a server's.

    A client writes a request (:meth:`write_headers`, :meth:`write`,
    :meth:`finish`) and reads the response with :meth:`read_response`; a
    server reads a request with :meth:`read_response` and answers it
    through the same methods. When the future of :meth:`read_response`
    resolves True, the connection can carry the next exchange (through this
    object or a new one on the same stream). reactor's
    :class:`~reactor.httpserver.HTTPServer` does not use this class (see
    :class:`HTTP1ServerConnection`); it is for code that drives HTTP/1.x
    itself, as with Tornado's.

    ``params`` (:class:`HTTP1ConnectionParameters`): the limits on what is
    read (``max_header_size``, ``max_body_size``, ``header_timeout``,
    ``body_timeout``), ``chunk_size`` (the most body bytes per
    ``data_received``), ``decompress`` (gunzip a ``Content-Encoding: gzip``
    body) and ``no_keep_alive``. ``context``: anything, kept as
    :attr:`context`. ``stream`` is None once :meth:`detach`\\ ed.
    """

    def __init__(
        self,
        stream: BaseIOStream,
        is_client: bool,
        params: HTTP1ConnectionParameters | None = None,
        context: object | None = None,
    ) -> None:
        self.is_client = is_client
        self.stream = stream
        self.params = params = params if params is not None else HTTP1ConnectionParameters()
        self.context = context
        self.no_keep_alive = params.no_keep_alive
        self._detached = False
        self._timed_out = False
        self._timer: object | None = None
        self._new_message()

    def _new_message(self) -> None:
        """The state of one exchange (a request and its response)."""
        params = self.params
        self._max_body_size = params.max_body_size
        self._body_timeout = params.body_timeout
        self._request_start_line: RequestStartLine | None = None
        self._request_headers: HTTPHeaders | None = None
        self._response_start_line: ResponseStartLine | None = None
        self._headers_written = False
        self._write_finished = False  # finish() was called
        self._read_finished = False  # the whole incoming message was read
        self._disconnect_on_finish = False
        self._chunking_output = False
        self._expected_content_remaining: int | None = None
        self._pending_write: Future[None] | None = None
        self._close_callback: Callable[[], None] | None = None
        # Resolves when the response is written (a server waits on it).
        self._finish_future: Future[None] = _new_future()

    # -- reading ----------------------------------------------------------------------

    def read_response(self, delegate: HTTPMessageDelegate) -> Future[bool]:
        """Read one message: the response when ``is_client``, else a request.

        ``delegate`` gets ``headers_received`` (also for each 1xx response a
        client reads before the real one), ``data_received`` and ``finish``,
        or ``on_connection_close`` if the message cannot be completed; the
        connection waits on any awaitable they return. A server's future
        resolves once its response is finished too.

        Resolves True if the connection can carry another message, False if
        it is closed (a timeout, a refusal, no keep-alive) or detached. A
        malformed message (:class:`~reactor.httputil.HTTPInputError`, also
        when a delegate raises one): a client's future fails with it, a
        server answers 400 (413 or 431 for a limit) and closes. The stream
        closing mid-message fails the future with
        :class:`~reactor.iostream.StreamClosedError`. A delegate that raises
        anything else is logged; the connection closes and resolves False.
        """
        if self.params.decompress:
            delegate = _GzipMessageDelegate(delegate, self.params.chunk_size, self._max_body_size)
        future: Future[bool] = gen.convert_yielded(self._read_message(delegate))
        return future

    async def _read_message(self, delegate: HTTPMessageDelegate) -> bool:
        owed_close = False  # the delegate has had headers, not yet the end
        stream = self.stream
        try:
            seen_1xx = 0
            while True:
                self._arm_timer(self.params.header_timeout, "headers")
                start_line, headers = await self._read_head()
                self._cancel_timer()
                framing = self._framing(start_line, headers)
                informational = isinstance(start_line, ResponseStartLine) and start_line.code < 200
                if informational:
                    seen_1xx += 1
                    if seen_1xx > _MAX_1XX_RESPONSES:
                        raise HTTPInputError(f"more than {_MAX_1XX_RESPONSES} 1xx responses")
                owed_close = True
                if not framing:
                    self._read_finished = True  # a bodiless request is read once its head is
                await self._call(delegate.headers_received, start_line, headers)
                if self._detached:
                    owed_close = False
                    return False
                if not informational:
                    break
                if isinstance(start_line, ResponseStartLine) and start_line.code == 101:
                    # The protocol switched and the delegate did not take the stream.
                    self.close()
                    return False
            if framing >= 0 and framing > self._max_body_size:
                raise _TooLarge(413, f"Content-Length {framing} is over max_body_size")
            if not self.is_client:
                self._send_continue(start_line, headers, framing)
            if framing:
                self._arm_timer(self._body_timeout, "body")
                await self._read_body(framing, delegate)
                self._cancel_timer()
            self._read_finished = True
            if self.is_client or not self._write_finished:
                owed_close = False
                await self._call(delegate.finish)
            if self._detached:
                return False
            if not self.is_client:
                if not self._finish_future.done() and not stream.closed():
                    # The application answers: a close meanwhile ends the wait.
                    stream.set_close_callback(self._on_connection_close)
                    await self._finish_future
                keep = not self._disconnect_on_finish
                if not keep:
                    self.close()
            else:
                assert isinstance(start_line, ResponseStartLine)
                keep = self._write_finished and self._client_keeps_alive(
                    start_line, headers, framing
                )
                if not keep:
                    self.close()
            keep = keep and not self._detached and not stream.closed()
            if keep:
                self._new_message()
            return keep
        except _DelegateFailed:
            self.close()
            return False
        except HTTPInputError as e:
            gen_log.info("Malformed HTTP message from %s: %s", self.context, e)
            if self.is_client:
                owed_close = True  # a client waiting on the delegate must not hang
                self.close()
                raise
            await self._refuse(e)
            return False
        except StreamClosedError:
            if self._timed_out or (self._write_finished and not self.is_client):
                return False  # closed on purpose: a time limit, or an answer given early
            raise
        finally:
            self._cancel_timer()
            if owed_close:
                try:
                    delegate.on_connection_close()
                except Exception:
                    app_log.error("Exception in on_connection_close of %r", delegate, exc_info=True)
            self._clear_callbacks()

    async def _read_head(self) -> tuple[RequestStartLine | ResponseStartLine, HTTPHeaders]:
        data = await _limited(
            self.stream.read_until_regex(_HEAD_END, max_bytes=self.params.max_header_size),
            431,
            "headers",
        )
        # An empty line before a message is allowed (RFC 9112 section 2.2).
        text = data.decode("latin-1").lstrip("\r\n")
        eol = text.find("\n")
        if eol < 0:
            raise HTTPInputError("empty message head")
        line = text[:eol]
        if line.endswith("\r"):
            line = line[:-1]
        headers = HTTPHeaders.parse(text[eol:])
        if self.is_client:
            return parse_response_start_line(line), headers
        request = parse_request_start_line(line)
        if request.version not in ("HTTP/1.0", "HTTP/1.1"):
            raise HTTPInputError(f"unsupported HTTP version: {request.version}")
        host_error = _request_host_error(
            request.path.encode("latin-1"), headers.get_list("Host") or None, request.version
        )
        if host_error is not None:
            raise HTTPInputError(host_error)
        self._request_start_line = request
        self._request_headers = headers
        self._disconnect_on_finish = not self._server_keeps_alive(request, headers)
        return request, headers

    def _framing(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> int:
        """What follows the head: a length, :data:`_CHUNKED` or
        :data:`_UNTIL_CLOSE`. Raises HTTPInputError where the headers lie."""
        code = start_line.code if isinstance(start_line, ResponseStartLine) else 0
        if 100 <= code < 200:
            if "Content-Length" in headers or "Transfer-Encoding" in headers:
                raise HTTPInputError(f"a {code} response cannot have a body")
            return 0
        chunked = is_transfer_encoding_chunked(headers)
        if chunked and start_line.version == "HTTP/1.0":
            raise HTTPInputError("Transfer-Encoding in an HTTP/1.0 message")
        length = _content_length(headers) if "Content-Length" in headers else None
        if self.is_client:
            request = self._request_start_line
            if code == 304 or (request is not None and request.method == "HEAD"):
                return 0
            if code == 204:
                if chunked or length:
                    raise HTTPInputError("a 204 response cannot have a body")
                return 0
        if chunked:
            return _CHUNKED
        if length is not None:
            return length
        return _UNTIL_CLOSE if self.is_client else 0

    def _send_continue(self, request: object, headers: HTTPHeaders, framing: int) -> None:
        """A client that sent ``Expect: 100-continue`` waits for this before
        its body: send it once the delegate has taken the headers, unless it
        has answered already (then the body is not wanted)."""
        if (
            framing
            and not self._headers_written
            and isinstance(request, RequestStartLine)
            and request.version == "HTTP/1.1"
            and headers.get("Expect", "").lower() == "100-continue"
            and not self.stream.closed()
        ):
            self.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _read_body(self, framing: int, delegate: HTTPMessageDelegate) -> None:
        if framing == _CHUNKED:
            await self._read_chunked_body(delegate)
        elif framing == _UNTIL_CLOSE:
            await self._read_body_until_close(delegate)
        else:
            await self._read_fixed_body(framing, delegate)

    async def _read_fixed_body(self, length: int, delegate: HTTPMessageDelegate) -> None:
        stream = self.stream
        chunk_size = self.params.chunk_size
        work = 0
        while length > 0:
            data = await stream.read_bytes(min(chunk_size, length), partial=True)
            length -= len(data)
            await self._deliver(delegate, data)
            work += len(data)
            if work >= _YIELD_EVERY:
                work = 0
                await gen.moment

    async def _read_chunked_body(self, delegate: HTTPMessageDelegate) -> None:
        stream = self.stream
        chunk_size = self.params.chunk_size
        # Small chunks are joined (their boundaries mean nothing), up to
        # chunk_size, and delivered whenever a read would wait: so a peer
        # sending one-byte chunks costs one data_received per read, not per byte.
        pending = bytearray()

        async def read(future: Future[bytes]) -> bytes:
            if pending and not future.done():
                data = bytes(pending)
                pending.clear()
                try:
                    await self._deliver(delegate, data)
                except BaseException:
                    # The read is abandoned: its failure at the close is no news.
                    future.add_done_callback(_retrieve)
                    raise
            return await future

        total = 0
        work = 0
        while True:
            work += _CHUNK_COST
            if work >= _YIELD_EVERY:
                work = 0
                await gen.moment
            line = await _limited(
                read(stream.read_until(b"\r\n", max_bytes=_MAX_CHUNK_LINE)),
                400,
                "chunk-size line",
            )
            size_text, ext, _ = line[:-2].partition(b";")
            if ext:
                size_text = size_text.rstrip(b" \t")
            try:
                size = parse_hex_int(size_text.decode("latin-1"))
            except ValueError:
                raise HTTPInputError(f"invalid chunk size: {line[:40]!r}") from None
            if not size:
                break
            total += size
            if total > self._max_body_size:
                raise _TooLarge(413, "chunked body over max_body_size")
            while size:
                data = await read(stream.read_bytes(min(size, chunk_size), partial=True))
                size -= len(data)
                work += len(data)
                if not pending and len(data) == chunk_size:
                    await self._deliver(delegate, data)
                    continue
                pending += data
                if len(pending) >= chunk_size:
                    piece = bytes(pending[:chunk_size])
                    del pending[:chunk_size]
                    await self._deliver(delegate, piece)
            if await read(stream.read_bytes(2)) != b"\r\n":
                raise HTTPInputError("chunk data not followed by CRLF")
        # Trailer fields, bounded like the head; checked, then dropped.
        budget = self.params.max_header_size
        trailers = []
        while True:
            line = await _limited(
                read(stream.read_until(b"\r\n", max_bytes=budget)), 431, "trailers"
            )
            if line == b"\r\n":
                break
            budget -= len(line)
            if budget <= 2:
                raise _TooLarge(431, "trailers over max_header_size")
            trailers.append(line)
        if trailers:
            HTTPHeaders.parse(b"".join(trailers))
        if pending:
            await self._deliver(delegate, bytes(pending))

    async def _read_body_until_close(self, delegate: HTTPMessageDelegate) -> None:
        stream = self.stream
        chunk_size = self.params.chunk_size
        total = 0
        work = 0
        while True:
            try:
                data = await stream.read_bytes(chunk_size, partial=True)
            except StreamClosedError:
                if self._timed_out:
                    raise
                return  # the close is this body's end
            total += len(data)
            if total > self._max_body_size:
                raise _TooLarge(413, "body over max_body_size")
            await self._deliver(delegate, data)
            work += len(data)
            if work >= _YIELD_EVERY:
                work = 0
                await gen.moment

    async def _deliver(self, delegate: HTTPMessageDelegate, data: bytes) -> None:
        # A server that has answered already discards the rest of the body.
        if self.is_client or not self._write_finished:
            await self._call(delegate.data_received, data)

    async def _call(self, method: Callable[..., Awaitable[None] | None], *args: Any) -> None:
        """Call a delegate's method, and wait on what it returns. An
        HTTPInputError (a gzip body that is not gzip) or a closed stream is
        the peer's doing and goes on up; anything else is logged, and the
        connection is closed."""
        try:
            result = method(*args)
            if result is not None:
                await result
        except (HTTPInputError, StreamClosedError):
            raise
        except Exception:
            app_log.error(
                "Uncaught exception in %s", getattr(method, "__qualname__", method), exc_info=True
            )
            raise _DelegateFailed from None

    async def _refuse(self, error: HTTPInputError) -> None:
        """A server's answer to a malformed request: its status (unless a
        response has begun), then a close."""
        stream = self.stream
        if not self._headers_written and not stream.closed():
            code = error.code if isinstance(error, _TooLarge) else 400
            reason = responses.get(code, "Bad Request").encode("latin-1")
            try:
                await stream.write(
                    b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    % (code, reason)
                )
            except StreamClosedError:
                pass
        self._clear_callbacks()
        _close_lingering(stream)
        self._finish_message()

    def _server_keeps_alive(self, request: RequestStartLine, headers: HTTPHeaders) -> bool:
        if self.no_keep_alive:
            return False
        tokens = _tokens(headers.get("Connection"))
        if request.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    def _client_keeps_alive(
        self, response: ResponseStartLine, headers: HTTPHeaders, framing: int
    ) -> bool:
        if self.no_keep_alive or framing == _UNTIL_CLOSE:
            return False
        sent = self._request_headers
        if sent is not None and "close" in _tokens(sent.get("Connection")):
            return False
        tokens = _tokens(headers.get("Connection"))
        if response.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    # -- time limits ------------------------------------------------------------------

    def _arm_timer(self, timeout: float | None, what: str) -> None:
        self._cancel_timer()
        if timeout is None:
            return
        stream = self.stream

        def expire() -> None:
            self._timer = None
            self._timed_out = True
            gen_log.info("Timed out reading the %s from %s", what, self.context)
            stream.close()

        self._timer = stream.io_loop.call_later(timeout, expire)

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            self.stream.io_loop.remove_timeout(timer)

    # -- the connection's life --------------------------------------------------------

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` if the stream closes while a server waits for
        the application's response (when no delegate is reading: a
        delegate hears of a close through ``on_connection_close``)."""
        self._close_callback = callback

    def _on_connection_close(self) -> None:
        callback = self._close_callback
        self._close_callback = None
        if callback is not None:
            try:
                callback()
            except Exception:
                app_log.error("Exception in the close callback %r", callback, exc_info=True)
        self._finish_message()

    def _clear_callbacks(self) -> None:
        self._close_callback = None
        if not self._detached:
            self.stream.set_close_callback(None)

    def _finish_message(self) -> None:
        if not self._finish_future.done():
            self._finish_future.set_result(None)

    def close(self) -> None:
        """Close the stream (unless detached); a pending read ends."""
        if not self._detached:
            self.stream.close()
        self._clear_callbacks()
        self._finish_message()

    def detach(self) -> BaseIOStream:
        """Stop all HTTP processing and return the stream (call it from
        ``headers_received``, e.g. for a WebSocket handshake); what was read
        beyond the message stays in the stream's buffer."""
        self._cancel_timer()
        self._clear_callbacks()
        stream = self.stream
        self._detached = True
        self.stream = None  # type: ignore[assignment]
        self._finish_message()
        return stream

    def set_body_timeout(self, timeout: float) -> None:
        """Override ``params.body_timeout`` for this message (from ``headers_received``)."""
        self._body_timeout = timeout

    def set_max_body_size(self, max_body_size: int) -> None:
        """Override ``params.max_body_size`` for this message (from ``headers_received``)."""
        self._max_body_size = max_body_size

    # -- writing ----------------------------------------------------------------------

    def write_headers(
        self,
        start_line: RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> Future[None]:
        """Send a request's (client) or a response's (server) start line and
        headers, and ``chunk`` of body if given.

        Without a Content-Length the body is sent chunked: by a client for
        POST, PUT and PATCH; by a server answering HTTP/1.1 with a response
        that may have a body (else, for HTTP/1.0, the close ends the body).
        A server adds ``Connection: close`` when it will close (the request
        asked for it, no keep-alive, no length) and ``Connection:
        Keep-Alive`` for an HTTP/1.0 client that asked to keep it. A CR or
        LF in the start line raises ValueError
        (:class:`~reactor.httputil.HTTPOutputError` too).
        """
        if self._headers_written:
            raise HTTPOutputError("write_headers called twice for one message")
        if isinstance(start_line, RequestStartLine):
            assert self.is_client, "a server writes responses"
            self._request_start_line = start_line
            self._request_headers = headers
            first = f"{start_line.method} {start_line.path} HTTP/1.1"
            self._chunking_output = (
                start_line.method in ("POST", "PUT", "PATCH") and "Content-Length" not in headers
            )
            self._expected_content_remaining = None
        else:
            assert not self.is_client, "a client writes requests"
            request = self._request_start_line
            assert request is not None, "a response before read_response read its request"
            self._response_start_line = start_line
            code = start_line.code
            first = f"HTTP/1.1 {code} {start_line.reason}"
            bodiless = request.method == "HEAD" or code in _NO_BODY_CODES or 100 <= code < 200
            has_length = "Content-Length" in headers
            self._chunking_output = (
                request.version == "HTTP/1.1" and not bodiless and not has_length
            )
            if not bodiless and not has_length and not self._chunking_output:
                self._disconnect_on_finish = True  # the close ends the body
            if not self._read_finished or "close" in _tokens(headers.get("Connection")):
                # An answer before the whole request was read, or one that says so.
                self._disconnect_on_finish = True
            if self._disconnect_on_finish:
                headers["Connection"] = "close"
            elif request.version == "HTTP/1.0":
                headers["Connection"] = "Keep-Alive"
            self._expected_content_remaining = 0 if bodiless else None
        if self._chunking_output:
            headers["Transfer-Encoding"] = "chunked"
        if self._expected_content_remaining is None and "Content-Length" in headers:
            try:
                self._expected_content_remaining = parse_int(headers["Content-Length"])
            except ValueError:
                raise HTTPOutputError(
                    f"invalid Content-Length: {headers['Content-Length'][:100]!r}"
                ) from None
        head = first.encode("latin-1")
        if CR_OR_LF_RE.search(head):
            raise _InvalidHeaderError(f"CR or LF in the start line: {head[:100]!r}")
        self._headers_written = True
        data = head + b"\r\n" + headers._encode() + b"\r\n"
        if chunk:
            data += self._format_chunk(chunk)
        return self._write_stream(data)

    def _format_chunk(self, chunk: bytes) -> bytes:
        remaining = self._expected_content_remaining
        if remaining is not None:
            remaining -= len(chunk)
            self._expected_content_remaining = remaining
            if remaining < 0:
                self.stream.close()  # the framing is broken: no more of it
                raise HTTPOutputError("tried to write more data than the Content-Length")
        if self._chunking_output and chunk:
            return b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        return chunk

    def _write_stream(self, data: bytes) -> Future[None]:
        stream = self.stream
        if self._detached or stream.closed():
            future: Future[None] = _new_future()
            future.set_exception(StreamClosedError())
            future.exception()  # the caller may ignore it
            return future
        self._pending_write = written = stream.write(data)
        return written

    def write(self, chunk: bytes) -> Future[None]:
        """Send a piece of the body (chunked if the headers said so); the
        future resolves when it is handed to the kernel."""
        if not self._headers_written:
            raise HTTPOutputError("write before write_headers")
        if self._write_finished:
            raise HTTPOutputError("write after finish")
        if not chunk:
            return _done_future()
        return self._write_stream(self._format_chunk(chunk))

    def finish(self) -> None:
        """End the message. Fewer bytes than its Content-Length raise
        :class:`~reactor.httputil.HTTPOutputError` (and close the stream);
        a server that answers before it has read the whole request closes
        the connection after the answer."""
        if not self._headers_written:
            raise HTTPOutputError("finish before write_headers")
        if self._write_finished:
            raise HTTPOutputError("finish called twice")
        stream = self.stream
        remaining = self._expected_content_remaining
        if remaining and not self._detached and not stream.closed():
            stream.close()
            raise HTTPOutputError(f"finished {remaining} bytes short of the Content-Length")
        if self._chunking_output:
            self._write_stream(b"0\r\n\r\n")
        self._write_finished = True
        if self._detached:
            self._finish_message()
            return
        stream.set_nodelay(True)  # nothing more follows: no Nagle wait for the last bytes
        if not self.is_client and not self._read_finished:
            self._disconnect_on_finish = True  # the rest of the request cannot be read
        pending = self._pending_write
        if pending is None or pending.done():
            self._finish_request(pending)
        else:
            pending.add_done_callback(self._finish_request)

    def _finish_request(self, written: Future[None] | None) -> None:
        if written is not None and not written.cancelled():
            written.exception()  # a failed write: the close is reported elsewhere
        if not self.is_client and self._disconnect_on_finish and not self._detached:
            self._clear_callbacks()
            if self._read_finished:
                self.stream.close()
            else:
                # Answered before the end of the request: read_response
                # goes on discarding the body, for LINGER_SECONDS at most.
                _close_lingering(self.stream, read=False)
        self._finish_message()
