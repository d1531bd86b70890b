"""A non-blocking HTTP/1.1 server.

``HTTPServer(callback)`` calls ``callback(request)`` with each complete
:class:`~reactor.httputil.HTTPServerRequest`; the callback answers through
``request.connection``::

    def handle(request):
        body = b"Hello world!"
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(body))}),
            body,
        )
        request.connection.finish()

    HTTPServer(handle).listen(8888)
    IOLoop.current().start()

An :class:`~reactor.httputil.HTTPServerConnectionDelegate` (the web layer's
Application is one) can stand in for the callback and then sees each
request's headers and body as they arrive. Starting the server (``listen``,
``bind``/``start``, ``add_sockets``) and TLS (``ssl_options``) are
:class:`~reactor.tcpserver.TCPServer`'s. The protocol itself, its strict
parsing and its limits: :mod:`reactor.http1connection`.

A graceful shutdown, in a coroutine on the server's loop::

    server.stop()  # accept nothing new (what the backlog holds is served)
    await server.close_all_connections(timeout=30)  # drain, then cut

:meth:`HTTPServer.stats` adds request counters to the server's connection
counters.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from reactor import netutil
from reactor.concurrent import Future
from reactor.http1connection import HTTP1ConnectionParameters, HTTP1ServerConnection
from reactor.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from reactor.ioloop import IOLoop, _new_future
from reactor.iostream import BaseIOStream, IOStream, SSLIOStream
from reactor.tcpserver import TCPServer
from reactor.util import Configurable

__all__ = ["HTTPRequest", "HTTPServer"]


class HTTPServer(TCPServer, Configurable, HTTPServerConnectionDelegate):
    """An HTTP/1.1 (and 1.0) server; see the module docstring.

    ``request_callback``: a function of one request, or an
    :class:`~reactor.httputil.HTTPServerConnectionDelegate`.
    ``no_keep_alive``: close each connection after one response.
    ``xheaders``: trust ``X-Real-Ip`` / ``X-Forwarded-For`` for
    ``remote_ip`` and ``X-Scheme`` / ``X-Forwarded-Proto`` for ``protocol``
    (behind a proxy); ``trusted_downstream``: proxy addresses to skip in
    ``X-Forwarded-For``. ``protocol``: what ``request.protocol`` says
    (default ``http``, or ``https`` with ``ssl_options``).
    ``decompress_request``: gunzip bodies sent with ``Content-Encoding: gzip``.
    ``chunk_size``, ``max_header_size``, ``max_body_size``, ``header_timeout``
    (time to send a request's headers, default 30 s),
    ``idle_connection_timeout`` (between requests, default 3600 s) and
    ``body_timeout``: see :class:`~reactor.http1connection.HTTP1ConnectionParameters`.
    ``max_buffer_size`` and ``read_chunk_size`` go to each connection's
    stream. ``max_connections`` and ``max_write_buffer_size``: see
    :class:`~reactor.tcpserver.TCPServer`; a response written faster than
    its client reads, past ``max_write_buffer_size``, is cut (the
    connection closes, logged once).

    Defaults, where they differ from Tornado's: ``header_timeout`` is 30 s,
    or ``idle_connection_timeout`` when that is shorter (Tornado allows the
    whole ``idle_connection_timeout``, 3600 s, for a request's headers);
    ``max_body_size`` defaults to ``max_buffer_size`` when that is given, as
    in Tornado, else 100 MiB.

    A :class:`~reactor.util.Configurable`, as in Tornado:
    ``HTTPServer.configure(Subclass, **kwargs)`` makes ``HTTPServer(...)``
    build ``Subclass`` with ``kwargs`` added; a subclass may set itself up in
    ``__init__`` or in ``initialize`` (calling the base's).
    """

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return HTTPServer

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        return HTTPServer

    def __init__(
        self,
        request_callback: HTTPServerConnectionDelegate | Callable[[HTTPServerRequest], None],
        no_keep_alive: bool = False,
        xheaders: bool = False,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        protocol: str | None = None,
        decompress_request: bool = False,
        chunk_size: int | None = None,
        max_header_size: int | None = None,
        idle_connection_timeout: float | None = None,
        body_timeout: float | None = None,
        max_body_size: int | None = None,
        max_buffer_size: int | None = None,
        trusted_downstream: Iterable[str] | None = None,
        header_timeout: float | None = 30.0,
        read_chunk_size: int | None = None,
        *,
        max_connections: int | None = None,
        max_write_buffer_size: int | None = None,
    ) -> None:
        super().__init__(
            ssl_options=ssl_options,
            max_buffer_size=max_buffer_size,
            read_chunk_size=read_chunk_size,
            max_connections=max_connections,
            max_write_buffer_size=max_write_buffer_size,
        )
        self.request_callback = request_callback
        self.xheaders = xheaders
        self.protocol = protocol
        self.trusted_downstream = set(trusted_downstream or ())
        if header_timeout is not None and idle_connection_timeout:
            # Tornado's idle_connection_timeout bounds the wait for headers
            # too: a shorter one still does.
            header_timeout = min(header_timeout, idle_connection_timeout)
        self.conn_params = HTTP1ConnectionParameters(
            no_keep_alive=no_keep_alive,
            chunk_size=chunk_size,
            max_header_size=max_header_size,
            header_timeout=header_timeout,
            max_body_size=max_body_size or max_buffer_size,
            body_timeout=body_timeout,
            decompress=decompress_request,
            idle_timeout=idle_connection_timeout or 3600.0,
        )
        self._connections: set[HTTP1ServerConnection] = set()
        # Detached connections (WebSockets), by stream, until the stream closes.
        self._detached: dict[BaseIOStream, HTTP1ServerConnection] = {}
        self._draining = False
        self._drained: Future[None] | None = None
        # The counters of connections gone (see stats).
        self._gone_answered = 0
        self._gone_refused = 0
        self._gone_errors = 0

    @property
    def draining(self) -> bool:
        """True from the start of :meth:`close_all_connections` on."""
        return self._draining

    async def close_all_connections(self, timeout: float | None = 0) -> None:
        """Close every connection: gracefully within ``timeout`` seconds,
        then at once (call :meth:`stop` first, so that none comes in).

        The drain: an idle keep-alive connection (no byte of a next request
        sent) closes now; a request in progress is finished, and its
        response carries ``Connection: close`` (or, if its headers went out
        already, the connection closes when it ends); requests pipelined
        behind it are not started. A detached connection gets the drain
        callback its protocol registered (``request.connection.
        set_drain_callback``; a WebSocket closes with 1001, "going away").
        Returns once every connection is closed. After ``timeout`` seconds
        whatever is still open is closed at once (a handler still at work
        sees ``on_connection_close``); ``None``: no time limit; ``0`` (the
        default, Tornado's behaviour): close everything now.
        """
        loop = IOLoop.current()
        now = timeout is not None and timeout <= 0
        if not self._draining:
            self._draining = True
            # A request begun from here on is answered with Connection: close.
            self.conn_params.no_keep_alive = True
            if not now:
                for connection in list(self._connections):
                    connection._drain()
                for connection in list(self._detached.values()):
                    connection._drain()
        timer = None
        if now:
            self._close_now()
        elif timeout is not None:
            timer = loop.call_later(timeout, self._close_now)
        try:
            while self._connections or self._detached:
                if self._drained is None:
                    self._drained = _new_future()
                await self._drained
        finally:
            if timer is not None:
                loop.remove_timeout(timer)

    def _close_now(self) -> None:
        for connection in list(self._connections):
            connection.close()
        for stream in list(self._detached):
            stream.close()

    def _check_drained(self) -> None:
        drained = self._drained
        if drained is not None and not self._connections and not self._detached:
            self._drained = None
            drained.set_result(None)

    def stats(self) -> dict[str, int]:
        """:meth:`TCPServer.stats <reactor.tcpserver.TCPServer.stats>`, and:
        ``requests_in_flight`` (requests whose response is not finished),
        ``requests_served`` (responses finished, in total; a WebSocket's
        101 included), ``requests_refused`` (requests the server answered
        itself, unseen by the application: 400, 408, 413, 431, 501...),
        ``requests_failed`` (responses with a 5xx status: the server's 500
        when a handler raised, or the application's own) and
        ``websockets_open`` (detached connections open). Summed from
        per-connection counters when called: nothing is counted per request
        beyond an integer add."""
        stats = super().stats()
        in_flight = 0
        answered = self._gone_answered
        refused = self._gone_refused
        errors = self._gone_errors
        for connection in self._connections:
            answered += connection._answered
            refused += connection._refused
            errors += connection._errors
            request = connection._request
            if request is not None and not request.finished:
                in_flight += 1
        stats["requests_in_flight"] = in_flight
        stats["requests_served"] = answered
        stats["requests_refused"] = refused
        stats["requests_failed"] = errors
        stats["websockets_open"] = len(self._detached)
        return stats

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        connection = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(connection)
        connection.start_serving(self)
        if self._draining:
            connection._drain()

    def _connection_closed(self, stream: BaseIOStream) -> None:
        if self._detached.pop(stream, None) is not None:
            # After the stream's close callback (the protocol's on_close).
            IOLoop.current().add_callback(self._check_drained)

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        callback = self.request_callback
        if isinstance(callback, HTTPServerConnectionDelegate):
            delegate = callback.start_request(server_conn, request_conn)
        else:
            delegate = _CallableAdapter(callback, request_conn)
        if self.xheaders:
            delegate = _ProxyAdapter(delegate, request_conn)
        return delegate

    def on_close(self, server_conn: object) -> None:
        if isinstance(server_conn, HTTP1ServerConnection):
            if server_conn not in self._connections:
                return
            self._connections.discard(server_conn)
            self._gone_answered += server_conn._answered
            self._gone_refused += server_conn._refused
            self._gone_errors += server_conn._errors
            if server_conn._detached:
                # Its stream is still a connection of ours, until it closes.
                stream = server_conn.stream
                if not stream.closed():
                    self._detached[stream] = server_conn
                    if self._draining:
                        server_conn._drain()
            self._check_drained()


class _CallableAdapter(HTTPMessageDelegate):
    """Collects a request's body, then calls the server's callback with it."""

    __slots__ = ("_chunks", "connection", "request", "request_callback")

    def __init__(
        self, request_callback: Callable[[HTTPServerRequest], None], connection: HTTPConnection
    ) -> None:
        self.connection = connection
        self.request_callback = request_callback
        self.request: HTTPServerRequest | None = None
        self._chunks: list[bytes] = []

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        self.request = HTTPServerRequest(
            connection=self.connection,
            start_line=start_line,
            headers=headers,
        )
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self._chunks.append(chunk)
        return None

    def finish(self) -> None:
        request = self.request
        assert request is not None
        if self._chunks:
            request.body = b"".join(self._chunks)
            self._chunks = []
            request._parse_body()
        self.request_callback(request)

    def on_connection_close(self) -> None:
        self._chunks = []


class _HTTPRequestContext:
    """Per-connection facts a request reports: ``remote_ip``, ``protocol``."""

    __slots__ = (
        "_orig_protocol",
        "_orig_remote_ip",
        "address",
        "address_family",
        "protocol",
        "remote_ip",
        "trusted_downstream",
    )

    def __init__(
        self,
        stream: IOStream,
        address: Any,
        protocol: str | None,
        trusted_downstream: set[str],
    ) -> None:
        self.address = address
        sock = getattr(stream, "socket", None)
        self.address_family = sock.family if sock is not None else None
        if self.address_family in (socket.AF_INET, socket.AF_INET6) and address is not None:
            self.remote_ip = address[0]
        else:
            self.remote_ip = "0.0.0.0"  # a Unix socket: no address to report
        if protocol:
            self.protocol = protocol
        elif isinstance(stream, SSLIOStream):
            self.protocol = "https"
        else:
            self.protocol = "http"
        self._orig_remote_ip = self.remote_ip
        self._orig_protocol = self.protocol
        self.trusted_downstream = trusted_downstream

    def __str__(self) -> str:
        if self.address_family in (socket.AF_INET, socket.AF_INET6):
            return str(self.remote_ip)
        return str(self.address)

    def _apply_xheaders(self, headers: HTTPHeaders) -> None:
        """Take the client's address and scheme from a proxy's headers."""
        ip = headers.get("X-Forwarded-For", self.remote_ip)
        # The last hop that is not one of our own proxies.
        for hop in reversed([part.strip() for part in ip.split(",")]):
            if hop not in self.trusted_downstream:
                ip = hop
                break
        ip = headers.get("X-Real-Ip", ip)
        if netutil.is_valid_ip(ip):
            self.remote_ip = ip
        proto = headers.get("X-Scheme", headers.get("X-Forwarded-Proto", self.protocol))
        if proto:
            proto = proto.split(",")[-1].strip()
        if proto in ("http", "https"):
            self.protocol = proto

    def _unapply_xheaders(self) -> None:
        self.remote_ip = self._orig_remote_ip
        self.protocol = self._orig_protocol


class _ProxyAdapter(HTTPMessageDelegate):
    """Applies ``xheaders`` for one request, and undoes them after it."""

    def __init__(self, delegate: HTTPMessageDelegate, request_conn: HTTPConnection) -> None:
        self.connection = request_conn
        self.delegate = delegate

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        context = getattr(self.connection, "context", None)
        if isinstance(context, _HTTPRequestContext):
            context._apply_xheaders(headers)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        try:
            self.delegate.finish()
        finally:
            self._cleanup()

    def on_connection_close(self) -> None:
        try:
            self.delegate.on_connection_close()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        context = getattr(self.connection, "context", None)
        if isinstance(context, _HTTPRequestContext):
            context._unapply_xheaders()


HTTPRequest = HTTPServerRequest
"""Tornado's old name for :class:`reactor.httputil.HTTPServerRequest`."""
