"""HTTP/1.1 clients: :class:`AsyncHTTPClient` (non-blocking) and
:class:`HTTPClient` (blocking, for scripts).

``response = await AsyncHTTPClient().fetch("http://example.org/")`` follows
redirects, decompresses gzip, and raises :class:`HTTPClientError` for a
non-2xx answer (``raise_error=False`` returns it instead). The API is
Tornado's; unlike Tornado's simple client, connections are kept alive and
reused.

Connection reuse, and the facts it relies on:

- A connection is pooled per origin and TLS settings: (scheme, host, port,
  address family, source address, TLS context or certificate options). It
  goes back to the idle pool only after a response that allows it: the
  server spoke HTTP/1.1 (or 1.0 with ``keep-alive``) without
  ``Connection: close``, the body was framed by ``Content-Length`` or chunked
  and read to its end, the request body was sent whole, nothing followed
  the response, and the request did not ask for ``Connection: close``.
  A body that ends when the server closes can never be followed by another
  response.
- An idle connection keeps a one-byte read pending. A server that closes it
  (FIN or RST) or sends anything unasked (a ``408``, garbage) completes that
  read, and the connection is dropped at once instead of being handed out.
  The loop may not have seen that yet when a request takes the connection,
  so the socket is also polled (without waiting) just before reuse: anything
  to read, an EOF or an error there means the server spoke or hung up while
  the connection was idle, and it is dropped before a byte is written.
- A server may still close a connection just as a request goes out on it
  (the keep-alive race), and then nobody can tell whether it acted on the
  request. RFC 9110 section 9.2.2 allows repeating a request automatically
  only when its method is idempotent: GET, HEAD, OPTIONS, TRACE, PUT and
  DELETE. So a request sent on a *reused* connection that fails before a
  single byte of the answer arrived is sent once more, on a fresh
  connection, only if its method is one of those and its body can be sent
  again (``body``, not ``body_producer``). Any other request fails with the
  loss (``HTTPStreamClosedError``, or the socket's error), as it would on a
  new connection; the server may have seen it once, never twice.
- Idle connections are closed after ``idle_timeout`` seconds (60), beyond
  ``max_idle_connections`` (100; the least recently used go first), and by
  :meth:`AsyncHTTPClient.close`. A timed-out or failed request always closes
  its connection.

Responses are parsed by ``httptools`` (Node's llhttp, in C): the bytes read
from the stream go to it as they come, in chunks of up to 64 KiB; chunked
framing is undone there, and gzip/deflate by :mod:`zlib` before the body
reaches ``streaming_callback`` or the response buffer, which is joined once.
llhttp cannot be told that a response to HEAD has no body, so the parser
is stopped at the end of the headers of such a response.
"""

from __future__ import annotations

import base64
import collections
import copy
import functools
import io
import re
import select
import socket
import ssl
import time
import urllib.parse
import weakref
import zlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar

import httptools

from reactor import gen, version
from reactor.concurrent import (
    Future,
    future_add_done_callback,
    future_set_exception_unless_cancelled,
    future_set_result_unless_cancelled,
)
from reactor.escape import utf8
from reactor.httputil import (
    HTTPHeaders,
    HTTPOutputError,
    encode_username_password,
    format_timestamp,
    responses,
)
from reactor.ioloop import IOLoop, _new_future
from reactor.iostream import IOStream, SSLIOStream, StreamClosedError
from reactor.log import gen_log
from reactor.netutil import (
    OverrideResolver,
    Resolver,
    is_valid_ip,
    ssl_options_to_context,
)
from reactor.tcpclient import TCPClient
from reactor.util import Configurable

__all__ = [
    "AsyncHTTPClient",
    "HTTPClient",
    "HTTPClientError",
    "HTTPError",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
]

_READ_CHUNK = 64 * 1024
_DEFAULT_MAX_HEADER_SIZE = 64 * 1024
_DEFAULT_MAX_BUFFER_SIZE = 100 * 1024 * 1024
_SUPPORTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# RFC 9110 section 9.2.2: the methods a client may repeat on its own, because
# the effect of several identical requests is that of one.
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})

# What may be sent: a token for a method, a request target without control
# characters (no CR/LF injection; header values are checked by HTTPHeaders).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")


# -- errors ------------------------------------------------------------------------


class HTTPClientError(Exception):
    """A request failed: ``code`` is the HTTP status, or 599 when no response
    arrived (a timeout, a closed connection).

    ``response`` is the :class:`HTTPResponse`, if there was one; with
    ``follow_redirects=False`` a redirect is such an error, and its target is
    in ``error.response.headers["Location"]``. ``str(error)`` is
    ``"HTTP 404: Not Found"``.
    """

    def __init__(
        self, code: int, message: str | None = None, response: HTTPResponse | None = None
    ) -> None:
        self.code = code
        self.message = message or responses.get(code, "Unknown")
        self.response = response
        super().__init__(code, message, response)

    def __str__(self) -> str:
        return f"HTTP {self.code}: {self.message}"

    # The default repr would recurse through response.error.
    __repr__ = __str__


HTTPError = HTTPClientError
"""The older name of :class:`HTTPClientError`."""


class HTTPTimeoutError(HTTPClientError):
    """A timeout (code 599): ``"Timeout while connecting"``, ``"Timeout during
    request"`` or ``"Timeout in request queue"``; that is also its ``str``."""

    def __init__(self, message: str) -> None:
        super().__init__(599, message=message)

    def __str__(self) -> str:
        return self.message or "Timeout"


class HTTPStreamClosedError(HTTPClientError):
    """The connection closed, or was closed by the client, before the response
    was complete (code 599): the server hung up, the response was malformed,
    or it broke a limit (``max_header_size``, ``max_body_size``)."""

    def __init__(self, message: str) -> None:
        super().__init__(599, message=message)

    def __str__(self) -> str:
        return self.message or "Stream closed"


class _StopParsing(Exception):
    """Raised in a parser callback to stop llhttp (see _Exchange._feed)."""


# -- request and response ----------------------------------------------------------


class HTTPRequest:
    """What to fetch, and how.

    Arguments left as None take the client's ``defaults`` (see
    :class:`AsyncHTTPClient`), then :attr:`_DEFAULTS`.

    - ``url``; ``method`` (``GET``); ``headers`` (a dict or
      :class:`~reactor.httputil.HTTPHeaders`); ``body`` (str is sent as UTF-8).
      POST, PUT and PATCH need a body and the others must not have one, unless
      ``allow_nonstandard_methods``, which also allows methods beyond
      GET/HEAD/POST/PUT/DELETE/PATCH/OPTIONS.
    - ``body_producer``: instead of ``body``, ``async def producer(write)``
      calling ``write(bytes)`` (whose future may be awaited for flow
      control). Sent chunked unless ``headers`` has a ``Content-Length``.
    - ``auth_username``/``auth_password`` (``auth_mode`` "basic" only), or
      ``user:password@`` in the URL.
    - ``connect_timeout`` (resolution, TCP and TLS) and ``request_timeout``
      (the whole request, connecting included), in seconds, 20 each; 0 means
      none. Time spent waiting for a ``max_clients`` slot is bounded by the
      smaller of the two.
    - ``if_modified_since`` (a timestamp or datetime), ``user_agent``.
    - ``follow_redirects`` (True), ``max_redirects`` (5).
    - ``decompress_response`` (True; ``use_gzip`` is the old name): ask for
      gzip and decompress it.
    - ``streaming_callback(chunk)``: gets the body as it arrives (and the
      response's body stays empty); may return an awaitable, which is
      awaited before reading on. ``header_callback(line)``: gets the status
      line, each header line and a final ``"\\r\\n"``.
    - TLS: ``validate_cert`` (True), ``ca_certs``, ``client_cert``,
      ``client_key``, or an ``ssl_options`` dict or :class:`ssl.SSLContext`,
      which overrides the other four.
    - ``network_interface``: the local address to connect from;
      ``allow_ipv6`` (True); ``expect_100_continue``: send the headers with
      ``Expect: 100-continue`` and the body only after ``100 Continue``.

    ``proxy_*`` and ``prepare_curl_callback`` exist for compatibility: a proxy
    raises NotImplementedError, the curl callback is ignored.
    """

    _DEFAULTS: ClassVar[dict[str, Any]] = {
        "connect_timeout": 20.0,
        "request_timeout": 20.0,
        "follow_redirects": True,
        "max_redirects": 5,
        "decompress_response": True,
        "proxy_password": "",
        "allow_nonstandard_methods": False,
        "validate_cert": True,
    }

    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: dict[str, str] | HTTPHeaders | None = None,
        body: bytes | str | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        auth_mode: str | None = None,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        if_modified_since: float | Any | None = None,
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
        user_agent: str | None = None,
        use_gzip: bool | None = None,
        network_interface: str | None = None,
        streaming_callback: Callable[[bytes], Awaitable[None] | None] | None = None,
        header_callback: Callable[[str], None] | None = None,
        prepare_curl_callback: Callable[[Any], None] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_username: str | None = None,
        proxy_password: str | None = None,
        proxy_auth_mode: str | None = None,
        allow_nonstandard_methods: bool | None = None,
        validate_cert: bool | None = None,
        ca_certs: str | None = None,
        allow_ipv6: bool | None = None,
        client_key: str | None = None,
        client_cert: str | None = None,
        body_producer: Callable[[Callable[[bytes], Future[None]]], Awaitable[None] | None]
        | None = None,
        expect_100_continue: bool = False,
        decompress_response: bool | None = None,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
    ) -> None:
        self.headers = headers
        if if_modified_since:
            self.headers["If-Modified-Since"] = format_timestamp(if_modified_since)
        self.url = url
        self.method = method
        self.body = body
        self.body_producer = body_producer
        self.auth_username = auth_username
        self.auth_password = auth_password
        self.auth_mode = auth_mode
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.decompress_response = (
            decompress_response if decompress_response is not None else use_gzip
        )
        self.network_interface = network_interface
        self.streaming_callback = streaming_callback
        self.header_callback = header_callback
        self.prepare_curl_callback = prepare_curl_callback
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_username = proxy_username
        self.proxy_password = proxy_password
        self.proxy_auth_mode = proxy_auth_mode
        self.allow_nonstandard_methods = allow_nonstandard_methods
        self.validate_cert = validate_cert
        self.ca_certs = ca_certs
        self.allow_ipv6 = allow_ipv6
        self.client_key = client_key
        self.client_cert = client_cert
        self.ssl_options = ssl_options
        self.expect_100_continue = expect_100_continue
        self.start_time = time.time()

    @property
    def headers(self) -> HTTPHeaders:
        return self._headers

    @headers.setter
    def headers(self, value: dict[str, str] | HTTPHeaders | None) -> None:
        if value is None:
            self._headers = HTTPHeaders()
        elif isinstance(value, HTTPHeaders):
            self._headers = value
        else:
            self._headers = HTTPHeaders(value)

    @property
    def body(self) -> bytes | None:
        return self._body

    @body.setter
    def body(self, value: bytes | str | None) -> None:
        self._body = utf8(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method} {self.url})"


class HTTPResponse:
    """The answer to a request.

    ``request`` (the one given to ``fetch``, even after redirects), ``code``,
    ``reason``, ``headers``, ``effective_url`` (where the last redirect led),
    ``buffer`` (a :class:`io.BytesIO`) and ``body`` (its bytes), ``error``
    (an :class:`HTTPClientError` for a non-2xx code, or what made the request
    fail), ``request_time`` (seconds for the last hop, connecting included,
    queueing not), ``start_time`` (``time.time()`` when it started; None if
    it never left the queue) and ``time_info`` (``{"queue": seconds}``).
    """

    error: BaseException | None = None

    def __init__(
        self,
        request: HTTPRequest,
        code: int,
        headers: HTTPHeaders | None = None,
        buffer: io.BytesIO | None = None,
        effective_url: str | None = None,
        error: BaseException | None = None,
        request_time: float | None = None,
        time_info: dict[str, float] | None = None,
        reason: str | None = None,
        start_time: float | None = None,
    ) -> None:
        self.request = request
        self.code = code
        self.reason = reason or responses.get(code, "Unknown")
        self.headers = headers if headers is not None else HTTPHeaders()
        self.buffer = buffer
        self._body: bytes | None = None
        self.effective_url = request.url if effective_url is None else effective_url
        self._error_is_response_code = False
        if error is not None:
            self.error = error
        elif code < 200 or code >= 300:
            self._error_is_response_code = True
            self.error = HTTPClientError(code, message=self.reason, response=self)
        else:
            self.error = None
        self.request_time = request_time
        self.start_time = start_time
        self.time_info = time_info or {}

    @property
    def body(self) -> bytes:
        """The body (b"" with a ``streaming_callback``)."""
        if self.buffer is None:
            return b""
        if self._body is None:
            self._body = self.buffer.getvalue()
        return self._body

    def rethrow(self) -> None:
        """Raise :attr:`error`, if there is one."""
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code}, reason={self.reason!r}, "
            f"effective_url={self.effective_url!r}, error={self.error!r})"
        )


# -- the client --------------------------------------------------------------------


class _Connection:
    """An open connection and where it goes (its pool key); while idle, the
    read that watches it and the timer that will close it."""

    __slots__ = ("key", "stream", "timer", "watch")

    def __init__(self, key: Hashable, stream: IOStream) -> None:
        self.key = key
        self.stream = stream
        self.watch: Future[bytes] | None = None
        self.timer: object | None = None


_instance_caches: dict[type, weakref.WeakKeyDictionary[IOLoop, AsyncHTTPClient]] = {}


class AsyncHTTPClient(Configurable):
    """A non-blocking HTTP/1.1 client with a pool of kept-alive connections.

    ``AsyncHTTPClient()`` returns the client of the current
    :class:`~reactor.ioloop.IOLoop`, made on first use and kept in a weak
    per-loop cache; ``force_instance=True`` makes a private one (close it when
    done). Arguments for the shared one are set with :meth:`configure`, as
    arguments given to a later ``AsyncHTTPClient()`` do not reach the
    existing instance.

    - ``defaults``: :class:`HTTPRequest` attribute values for requests that
      leave them None (``{"user_agent": "MyAgent"}``).
    - ``max_clients`` (10): the most requests in flight; more wait in a FIFO
      queue (see ``HTTPRequest`` for the queue timeout).
    - ``max_buffer_size`` (100 MiB): the stream's read buffer bound, and
      ``max_body_size``'s default. ``max_header_size`` (64 KiB):
      the largest header block accepted. ``max_body_size``: the largest body,
      counted on the wire and again after decompression.
    - ``resolver``: a :class:`~reactor.netutil.Resolver` (default: a new
      ``Resolver()``, closed with the client); ``hostname_mapping``: a dict
      of host or ``(host, port)`` overrides.
    - ``idle_timeout`` (60 s) and ``max_idle_connections`` (100): how long
      and how many idle connections are kept for reuse; 0 disables reuse.

    A :class:`~reactor.util.Configurable`, as in Tornado:
    :meth:`configure` chooses the class and the arguments, and a subclass
    sets itself up in :meth:`initialize`.
    """

    _loop_ref: weakref.ref[IOLoop]
    _instance_cache: weakref.WeakKeyDictionary[IOLoop, AsyncHTTPClient] | None

    def __new__(cls, force_instance: bool = False, **kwargs: Any) -> AsyncHTTPClient:
        impl = cls.configured_class() if cls is AsyncHTTPClient else cls
        io_loop = IOLoop.current()
        cache = (
            None
            if force_instance
            else _instance_caches.setdefault(impl, weakref.WeakKeyDictionary())
        )
        if cache is not None:
            existing = cache.get(io_loop)
            if existing is not None:
                return existing
        # Configurable.__new__ merges configure()'s arguments and calls
        # initialize; the loop and the cache are set before, for it to use.
        self: AsyncHTTPClient = object.__new__(impl)  # type: ignore[assignment]
        # Weakly, so that the cache entry does not keep the loop alive (its
        # idle connections still do, until they close).
        self._loop_ref = weakref.ref(io_loop)
        self._instance_cache = cache
        if cls is AsyncHTTPClient:
            kwargs = {**AsyncHTTPClient.__dict__.get("_configured_kwargs", {}), **kwargs}
        self.initialize(**kwargs)
        if cache is not None:
            cache[io_loop] = self
        return self

    def __init__(self, force_instance: bool = False, **kwargs: Any) -> None:
        # Everything happens once, in __new__ and initialize (a subclass
        # overrides initialize); this is here for subclasses that call it.
        pass

    def initialize(
        self,
        defaults: dict[str, Any] | None = None,
        max_clients: int = 10,
        hostname_mapping: dict[Any, Any] | None = None,
        max_buffer_size: int = _DEFAULT_MAX_BUFFER_SIZE,
        resolver: Resolver | None = None,
        max_header_size: int | None = None,
        max_body_size: int | None = None,
        idle_timeout: float = 60.0,
        max_idle_connections: int = 100,
    ) -> None:
        """Set up a new instance (the constructor's keyword arguments, merged
        over :meth:`configure`'s). A subclass given to :meth:`configure`
        overrides this, not ``__init__``, and calls the base version."""
        self.defaults = dict(HTTPRequest._DEFAULTS)
        if defaults is not None:
            self.defaults.update(defaults)
        self.max_clients = max_clients
        self.max_buffer_size = max_buffer_size
        self.max_header_size = max_header_size or _DEFAULT_MAX_HEADER_SIZE
        self.max_body_size = max_body_size or max_buffer_size
        self.idle_timeout = idle_timeout
        self.max_idle_connections = max_idle_connections
        self._own_resolver = resolver is None
        self.resolver = resolver if resolver is not None else Resolver()
        if hostname_mapping is not None:
            self.resolver = OverrideResolver(self.resolver, hostname_mapping)
        self._tcp_client = TCPClient(resolver=self.resolver)
        self._closed = False
        # max_clients: the slots taken, and the requests waiting for one.
        self._active = 0
        self._waiting: collections.deque[Future[None]] = collections.deque()
        # The idle pool: a stack per key (the most recently used is reused
        # first, so surplus connections age out), and all of them oldest
        # first for max_idle_connections.
        self._idle: dict[Hashable, list[_Connection]] = {}
        self._idle_order: dict[_Connection, None] = {}
        self._ssl_contexts: dict[Hashable, ssl.SSLContext] = {}
        self._opened = 0
        self._reused = 0

    @property
    def io_loop(self) -> IOLoop:
        """The loop this client runs on (current when it was made)."""
        loop = self._loop_ref()
        if loop is None:
            raise RuntimeError("the IOLoop of this AsyncHTTPClient is gone")
        return loop

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return AsyncHTTPClient

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        return AsyncHTTPClient

    @classmethod
    def configure(cls, impl: str | type[Configurable] | None, **kwargs: Any) -> None:
        """Choose the class ``AsyncHTTPClient()`` builds (an AsyncHTTPClient
        subclass, or its import path ``"pkg.module.Class"``; None: this
        class) and the keyword arguments new instances get, e.g.
        ``AsyncHTTPClient.configure(None, max_clients=50)``. Instances already
        made keep their settings. Raises TypeError (also a ValueError) for
        what is not a subclass, ImportError for a path that does not import.
        """
        super().configure(impl, **kwargs)

    def close(self) -> None:
        """Close the idle connections and release the resolver; no new fetch
        may start. Requests in flight finish, and their connections are then
        closed. Needed for ``force_instance`` clients, and before closing a
        loop whose shared client was used."""
        if self._closed:
            return
        self._closed = True
        cache = self._instance_cache
        loop = self._loop_ref()
        if cache is not None and loop is not None and cache.get(loop) is self:
            del cache[loop]
        for conn in list(self._idle_order):
            self._drop_idle(conn)
        self._tcp_client.close()
        if self._own_resolver:
            self.resolver.close()

    def fetch(
        self, request: str | HTTPRequest, raise_error: bool = True, **kwargs: Any
    ) -> Future[HTTPResponse]:
        """Fetch ``request`` (a URL, with ``kwargs`` for :class:`HTTPRequest`,
        or an HTTPRequest); the future resolves to the :class:`HTTPResponse`.

        A non-2xx response fails the future with :class:`HTTPClientError`
        (carrying the response); with ``raise_error=False`` it is returned
        instead, its ``error`` set. Other failures raise either way: a
        timeout or a lost connection (:class:`HTTPTimeoutError`,
        :class:`HTTPStreamClosedError`, code 599), a refused connection or a
        certificate that does not check out (the :class:`OSError` or
        :class:`ssl.SSLError` itself), an invalid request (ValueError).
        """
        if self._closed:
            raise RuntimeError("fetch() called on a closed AsyncHTTPClient")
        if not isinstance(request, HTTPRequest):
            request = HTTPRequest(url=request, **kwargs)
        elif kwargs:
            raise ValueError("keyword arguments cannot be combined with an HTTPRequest object")
        # Headers are added to this copy, never to the caller's object; the
        # defaults are applied now, so a later change to ``request`` does not
        # reach this fetch.
        request.headers = HTTPHeaders(request.headers)
        resolved = self._with_defaults(request)
        future: Future[HTTPResponse] = _new_future()
        if type(self).fetch_impl is not AsyncHTTPClient.fetch_impl:
            # A Tornado-style subclass that answers requests its own way.
            def on_response(response: HTTPResponse) -> None:
                if response.error is not None and (
                    raise_error or not response._error_is_response_code
                ):
                    future_set_exception_unless_cancelled(future, response.error)
                else:
                    future_set_result_unless_cancelled(future, response)

            self.fetch_impl(resolved, on_response)
            return future

        def on_done(done: Future[HTTPResponse]) -> None:
            try:
                response = done.result()
            except Exception as e:
                future_set_exception_unless_cancelled(future, e)
                return
            if response.error is not None and (raise_error or not response._error_is_response_code):
                future_set_exception_unless_cancelled(future, response.error)
            else:
                future_set_result_unless_cancelled(future, response)

        future_add_done_callback(gen.convert_yielded(self._fetch(resolved, request)), on_done)
        return future

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        """Run ``request`` (its defaults applied) and call ``callback(response)``
        when it ends, whatever the outcome: a failure is a response whose
        ``error`` is set (code 599 when no response arrived).

        Tornado's extension point: a subclass that overrides it (to answer
        from a cache, or with canned responses in tests) gets every
        :meth:`fetch` through it. reactor's own client does not go through
        it, so the usual path costs no extra callback.
        """

        def on_done(done: Future[HTTPResponse]) -> None:
            try:
                response = done.result()
            except HTTPClientError as e:
                response = e.response or HTTPResponse(request, e.code, error=e)
            except Exception as e:
                response = HTTPResponse(request, 599, error=e)
            callback(response)

        future_add_done_callback(gen.convert_yielded(self._fetch(request, request)), on_done)

    def pool_stats(self) -> dict[str, int]:
        """Counters for tuning: ``active`` requests, ``queued`` ones waiting
        for a ``max_clients`` slot, ``idle`` pooled connections, and since the
        client was made, connections ``opened`` and requests sent on a
        ``reused`` one."""
        return {
            "active": self._active,
            "queued": len(self._waiting),
            "idle": len(self._idle_order),
            "opened": self._opened,
            "reused": self._reused,
        }

    # -- one fetch: the queue, the hops of a redirect chain ------------------------

    async def _fetch(self, resolved: HTTPRequest, original: HTTPRequest) -> HTTPResponse:
        """Queue, send, follow redirects; resolves to the final response,
        which is an error response (code 599) if the request failed."""
        while True:
            exchange = _Exchange(self, resolved, original, _Target(resolved))
            queued_at = self.io_loop.time()
            try:
                await self._acquire(resolved)
            except HTTPTimeoutError as e:
                waited = self.io_loop.time() - queued_at
                return HTTPResponse(
                    original, 599, error=e, request_time=waited, time_info={"queue": waited}
                )
            exchange.queue_time = self.io_loop.time() - queued_at
            try:
                response = await exchange.start()
            finally:
                self._release()
            if exchange.redirect is None:
                return response
            resolved = self._with_defaults(exchange.redirect)

    def _with_defaults(self, request: HTTPRequest) -> HTTPRequest:
        """A shallow copy of ``request`` with the defaults filled in (the
        headers object stays shared, as Tornado's request proxy does)."""
        resolved = copy.copy(request)
        for name, value in self.defaults.items():
            if getattr(resolved, name, None) is None:
                setattr(resolved, name, value)
        return resolved

    async def _acquire(self, request: HTTPRequest) -> None:
        """Take a max_clients slot, waiting in line if there is none; raise
        HTTPTimeoutError if the wait outlasts the request's timeouts."""
        if self._active < self.max_clients:
            self._active += 1
            return
        waiter: Future[None] = _new_future()
        self._waiting.append(waiter)
        gen_log.debug(
            "max_clients limit reached, request queued: %d active, %d queued",
            self._active,
            len(self._waiting),
        )
        timeouts = [t for t in (request.connect_timeout, request.request_timeout) if t]
        handle = None
        if timeouts:
            handle = self.io_loop.call_later(min(timeouts), self._queue_timeout, waiter)
        try:
            await waiter
        finally:
            if handle is not None:
                self.io_loop.remove_timeout(handle)

    def _queue_timeout(self, waiter: Future[None]) -> None:
        if not waiter.done():
            self._waiting.remove(waiter)
            waiter.set_exception(HTTPTimeoutError("Timeout in request queue"))

    def _release(self) -> None:
        """Give the slot to the first request in line, or free it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    # -- the idle pool -------------------------------------------------------------

    def _take_idle(self, key: Hashable) -> _Connection | None:
        """The most recently pooled live connection for ``key``, or None."""
        stack = self._idle.get(key)
        while stack:
            conn = stack.pop()
            if not stack:
                del self._idle[key]
            del self._idle_order[conn]
            if conn.timer is not None:
                self.io_loop.remove_timeout(conn.timer)
                conn.timer = None
            watch = conn.watch
            conn.watch = None
            stream = conn.stream
            if watch is None or watch.done() or stream.closed() or _peer_spoke(stream):
                stream.close()  # closed, or sent something: see _idle_event
            else:
                watch.cancel()
                self._reused += 1
                return conn
            stack = self._idle.get(key)
        return None

    def _put_idle(self, conn: _Connection) -> None:
        """Pool a connection whose last response allowed reuse."""
        stream = conn.stream
        if self._closed or self.idle_timeout <= 0 or self.max_idle_connections <= 0:
            stream.close()
            return
        try:
            watch = stream.read_bytes(1, partial=True)
        except StreamClosedError:
            return
        if watch.done():  # bytes after the response, or closed meanwhile
            stream.close()
            return
        conn.watch = watch
        watch.add_done_callback(functools.partial(self._idle_event, conn))
        conn.timer = self.io_loop.call_later(self.idle_timeout, self._idle_expired, conn)
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_order[conn] = None
        while len(self._idle_order) > self.max_idle_connections:
            self._drop_idle(next(iter(self._idle_order)))

    def _idle_event(self, conn: _Connection, watch: Future[bytes]) -> None:
        """The watching read of an idle connection completed: the server
        closed it or sent something nobody asked for. Unless the read was
        cancelled because the connection was taken, it is dropped."""
        if watch.cancelled():
            return
        watch.exception()  # seen either way
        if conn.watch is watch:
            self._drop_idle(conn)

    def _idle_expired(self, conn: _Connection) -> None:
        conn.timer = None
        self._drop_idle(conn)

    def _drop_idle(self, conn: _Connection) -> None:
        """Close an idle connection and forget it."""
        if conn in self._idle_order:
            del self._idle_order[conn]
            stack = self._idle[conn.key]
            stack.remove(conn)
            if not stack:
                del self._idle[conn.key]
        if conn.timer is not None:
            self.io_loop.remove_timeout(conn.timer)
            conn.timer = None
        conn.watch = None
        conn.stream.close()

    def _ssl_context(self, request: HTTPRequest) -> tuple[Hashable, ssl.SSLContext]:
        """The TLS context for ``request`` and the key that tells pools apart;
        contexts built from options are made once per client."""
        options = request.ssl_options
        if isinstance(options, ssl.SSLContext):
            return options, options
        key: Hashable
        if options is not None:
            try:
                key = ("options", tuple(sorted(options.items())))
                hash(key)
            except TypeError:
                key = ("options-object", id(options))
        else:
            key = (
                "settings",
                bool(request.validate_cert),
                request.ca_certs,
                request.client_cert,
                request.client_key,
            )
        context = self._ssl_contexts.get(key)
        if context is None:
            context = _ssl_context_for(request)
            if len(self._ssl_contexts) < 64:
                self._ssl_contexts[key] = context
        return key, context


def _ssl_context_for(request: HTTPRequest) -> ssl.SSLContext:
    """A client TLS context from ``request``'s ``ssl_options`` or its
    ``validate_cert``/``ca_certs``/``client_cert`` settings (validation on
    unless ``validate_cert`` is false); also used by the WebSocket client."""
    options = request.ssl_options
    if isinstance(options, ssl.SSLContext):
        return options
    if options is not None:
        return ssl_options_to_context(options, server_side=False)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=request.ca_certs)
    if request.validate_cert is not None and not request.validate_cert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if request.client_cert is not None:
        context.load_cert_chain(request.client_cert, request.client_key)
    return context


def _peer_spoke(stream: IOStream) -> bool:
    """Whether the socket of an idle connection has something to report now
    (bytes, an EOF or an error) that the loop has not delivered yet.

    Any of these means the connection must not carry another request: the
    server closed it or sent something unasked. On TLS this may also be a
    late protocol record (a session ticket); dropping the connection then
    costs a new one, not an error.
    """
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


# -- one request on one connection -------------------------------------------------


class _Target:
    """Where a request goes and what it sends, checked before it is queued.

    Raises ValueError (or KeyError for an unknown method, NotImplementedError
    for a proxy) for a request that cannot be sent, as Tornado does.
    """

    def __init__(self, request: HTTPRequest) -> None:
        parsed = urllib.parse.urlsplit(request.url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"Unsupported url scheme: {request.url}")
        host = parsed.hostname
        if not host:
            raise ValueError(f"No host in URL: {request.url}")
        self.scheme = parsed.scheme
        self.host = host
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.netloc = parsed.netloc.rpartition("@")[2]
        self.path = (parsed.path or "/") + ("?" + parsed.query if parsed.query else "")
        if _BAD_TARGET.search(self.path):
            raise ValueError(f"invalid character in the URL's path: {request.url!r}")
        self.username = parsed.username
        self.password = parsed.password
        method = request.method
        if not _TOKEN.match(method):
            raise ValueError(f"invalid method {method!r}")
        if method not in _SUPPORTED_METHODS and not request.allow_nonstandard_methods:
            raise KeyError(f"unknown method {method}")
        for name in ("proxy_host", "proxy_port", "proxy_username", "proxy_auth_mode"):
            if getattr(request, name, None):
                raise NotImplementedError(f"{name} is not supported")
        if request.auth_mode not in (None, "basic"):
            raise ValueError(f"unsupported auth_mode {request.auth_mode}")
        if request.body is not None and request.body_producer is not None:
            raise ValueError("body and body_producer are mutually exclusive")
        if not request.allow_nonstandard_methods:
            body_expected = method in ("POST", "PATCH", "PUT")
            body_present = request.body is not None or request.body_producer is not None
            if body_expected != body_present:
                raise ValueError(
                    f"Body must {'not ' if body_expected else ''}be None for method "
                    f"{method} (unless allow_nonstandard_methods is true)"
                )
        self.source_ip = request.network_interface
        if self.source_ip and not is_valid_ip(self.source_ip):
            raise ValueError(
                f"network_interface must be an IPv4 or IPv6 address, got {self.source_ip!r}"
            )
        self.af = socket.AF_INET if request.allow_ipv6 is False else socket.AF_UNSPEC


class _Exchange:
    """One hop: a request and its response, on a pooled or new connection.

    :meth:`start` returns a future for the response that the coroutine
    :meth:`_run` completes, unless a timer does first (then the connection
    is closed under the coroutine, which ends quietly). The exchange is also
    the ``httptools`` parser's protocol: its ``on_*`` methods are llhttp's
    callbacks. An exception they raise stops the parser; it is kept in
    ``_stopped_by`` and raised again by :meth:`_feed`.
    """

    # The response state, set by _reset when the request is sent.
    _received: bool
    _final: bool
    _complete: bool
    _extra: bool
    _keep_alive: bool
    _continue: bool
    _body_sent: bool
    _until_close: bool
    _following: bool
    _pending: list[Awaitable[None]]

    def __init__(
        self,
        client: AsyncHTTPClient,
        request: HTTPRequest,
        original: HTTPRequest,
        target: _Target,
    ) -> None:
        self.client = client
        self.io_loop = client.io_loop
        self.request = request
        self.original = original
        self.target = target
        self.queue_time = 0.0
        self.redirect: HTTPRequest | None = None
        self.result: Future[HTTPResponse] = _new_future()
        self.start_time = 0.0  # set by start(), after the queue
        self.start_wall_time = 0.0
        self.stream: IOStream | None = None
        self._connecting = False
        self._request_timer: object | None = None
        self._connect_timer: object | None = None
        self._close_requested = False
        self._chunked_request = False
        tls_key: Hashable = None
        self._ssl_context: ssl.SSLContext | None = None
        if target.scheme == "https":
            tls_key, self._ssl_context = client._ssl_context(request)
        self.key: Hashable = (
            target.scheme,
            target.host,
            target.port,
            target.af,
            target.source_ip,
            tls_key,
        )
        self._head = self._prepare_head()

    # -- the request ---------------------------------------------------------------

    def _prepare_head(self) -> bytes:
        """Add the headers a request needs and return the encoded head."""
        request = self.request
        target = self.target
        headers = request.headers
        if "close" in headers.get("Connection", "").lower():
            self._close_requested = True
        if "Host" not in headers:
            headers["Host"] = target.netloc
        username, password = target.username, target.password
        if username is None and request.auth_username is not None:
            username, password = request.auth_username, request.auth_password
        if username is not None:
            credentials = encode_username_password(username, password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        if request.user_agent:
            headers["User-Agent"] = request.user_agent
        elif "User-Agent" not in headers:
            headers["User-Agent"] = f"reactor/{version}"
        if request.expect_100_continue:
            headers["Expect"] = "100-continue"
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        elif (
            request.body_producer is not None
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        ):
            headers["Transfer-Encoding"] = "chunked"
        self._chunked_request = (
            request.body_producer is not None
            and headers.get("Transfer-Encoding", "").lower() == "chunked"
        )
        if request.method == "POST" and "Content-Type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if request.decompress_response:
            headers["Accept-Encoding"] = "gzip"
        # headers._encode() refuses CR, LF and other control characters.
        start = f"{request.method} {target.path} HTTP/1.1\r\n".encode()
        return start + headers._encode() + b"\r\n"

    async def _send_body(self, stream: IOStream) -> None:
        request = self.request
        if request.body is not None:
            if request.body:
                stream.write(request.body)
        elif request.body_producer is not None:
            writer = _BodyWriter(stream, self._chunked_request, request.headers)
            produced = request.body_producer(writer.write)
            if produced is not None:
                await produced
            writer.finish()
        self._body_sent = True

    # -- running it ----------------------------------------------------------------

    def start(self) -> Future[HTTPResponse]:
        self.start_time = self.io_loop.time()
        self.start_wall_time = time.time()
        timeout = self.request.request_timeout
        if timeout:
            self._request_timer = self.io_loop.call_at(self.start_time + timeout, self._on_timeout)
        future_add_done_callback(gen.convert_yielded(self._run()), self._on_run_done)
        return self.result

    async def _run(self) -> None:
        client = self.client
        conn = client._take_idle(self.key)
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        while True:
            self.stream = conn.stream
            try:
                await self._exchange(conn.stream)
                break
            except StreamClosedError:
                if self.result.done() or not reused or self._received or not self._replayable():
                    raise
            # The server closed the reused connection before answering (the
            # keep-alive race): an idempotent request goes once more, on a
            # new connection.
            gen_log.debug(
                "%s %s: reused connection lost, retrying", self.request.method, self.request.url
            )
            conn.stream.close()
            reused = False
            conn = await self._connect()
        self._finish(conn)

    def _replayable(self) -> bool:
        """Whether the request may be sent again after a connection was lost
        under it (RFC 9110 section 9.2.2): an idempotent method, and a body
        that is not consumed by sending it."""
        request = self.request
        return request.method in _IDEMPOTENT_METHODS and request.body_producer is None

    def _on_run_done(self, done: Future[None]) -> None:
        error = done.exception()
        if error is None:
            return
        if not self.result.done():
            self._fail(error)
        elif not isinstance(error, (StreamClosedError, HTTPClientError)):
            gen_log.debug(
                "%s %s failed after it ended: %r", self.request.method, self.request.url, error
            )

    def _on_timeout(self) -> None:
        self._request_timer = None
        message = "Timeout while connecting" if self._connecting else "Timeout during request"
        self._fail(HTTPTimeoutError(message))

    def _on_connect_timeout(self) -> None:
        self._connect_timer = None
        self._fail(HTTPTimeoutError("Timeout while connecting"))

    def _clear_timers(self) -> None:
        for handle in (self._request_timer, self._connect_timer):
            if handle is not None:
                self.io_loop.remove_timeout(handle)
        self._request_timer = self._connect_timer = None

    def _fail(self, error: BaseException) -> None:
        """End the request with ``error`` (a 599 response); close the connection."""
        self._clear_timers()
        if self.stream is not None:
            self.stream.close()
        if self.result.done():
            return
        if isinstance(error, StreamClosedError):
            # As Tornado: the underlying error if there is one (a reset, a
            # refused connection, a certificate error), else "Stream closed".
            error = error.real_error or HTTPStreamClosedError("Stream closed")
        elif isinstance(error, TimeoutError) and not isinstance(error, HTTPClientError):
            error = HTTPTimeoutError("Timeout while connecting")
        self.result.set_result(
            HTTPResponse(
                self.original,
                599,
                error=error,
                request_time=self.io_loop.time() - self.start_time,
                start_time=self.start_wall_time,
                time_info={"queue": self.queue_time},
            )
        )

    async def _connect(self) -> _Connection:
        """A new connection, TLS included, within the connect timeout."""
        request = self.request
        target = self.target
        self._connecting = True
        now = self.io_loop.time()
        deadlines = []
        if request.connect_timeout:
            deadlines.append(now + request.connect_timeout)
            self._connect_timer = self.io_loop.call_at(deadlines[0], self._on_connect_timeout)
        if request.request_timeout:
            deadlines.append(self.start_time + request.request_timeout)
        remaining = max(min(deadlines) - now, 0.0) if deadlines else None
        try:
            stream = await self.client._tcp_client.connect(
                target.host,
                target.port,
                af=target.af,
                max_buffer_size=self.client.max_buffer_size,
                source_ip=target.source_ip,
                timeout=remaining,
            )
        except TimeoutError:
            raise HTTPTimeoutError("Timeout while connecting") from None
        self.stream = stream
        if self.result.done():  # timed out meanwhile
            stream.close()
            raise StreamClosedError()
        if self._ssl_context is not None:
            tls = self._start_tls(stream, self._ssl_context)
            await tls.wait_for_handshake()
            stream = tls
        if self._connect_timer is not None:
            self.io_loop.remove_timeout(self._connect_timer)
            self._connect_timer = None
        self._connecting = False
        stream.set_nodelay(True)
        self.client._opened += 1
        return _Connection(self.key, stream)

    def _start_tls(self, stream: IOStream, context: ssl.SSLContext) -> SSLIOStream:
        """Wrap the connected socket in TLS; the handshake starts at once.

        Done here rather than with IOStream.start_tls so that the TLS stream
        is ours to close if the connect timeout ends the handshake: the
        socket is duplicated and the plain stream closed (which leaves the
        connection open), and the duplicate becomes the TLS stream's.
        """
        sock = stream.socket.dup()
        stream.close()
        try:
            ssl_sock = context.wrap_socket(
                sock, server_hostname=self.target.host, do_handshake_on_connect=False
            )
        except BaseException:
            sock.close()
            raise
        tls = SSLIOStream(
            ssl_sock, ssl_options=context, max_buffer_size=self.client.max_buffer_size
        )
        self.stream = tls
        return tls

    async def _exchange(self, stream: IOStream) -> None:
        """Send the request and read the response, to its end."""
        self._reset()
        request = self.request
        stream.write(self._head)
        if not request.expect_100_continue or (
            request.body is None and request.body_producer is None
        ):
            await self._send_body(stream)
        while not self._complete:
            try:
                data = await stream.read_bytes(_READ_CHUNK, partial=True)
            except StreamClosedError:
                if self._final and self._until_close and stream.error is None:
                    self._message_done(False)  # the body ends with the connection
                    break
                raise
            self._received = True
            self._feed(data)
            if self._pending:
                pending, self._pending = self._pending, []
                for awaitable in pending:
                    await awaitable
            if self._continue and not self._body_sent and not self._final:
                await self._send_body(stream)

    def _finish(self, conn: _Connection) -> None:
        self._clear_timers()
        stream = conn.stream
        if self.result.done():  # a timer won
            stream.close()
            return
        if (
            self._keep_alive
            and self._body_sent
            and not self._extra
            and not self._close_requested
            and not stream.closed()
        ):
            self.client._put_idle(conn)
        else:
            stream.close()
        if self._following:
            self.redirect = self._redirect_request()
        if self.request.streaming_callback is not None or self._following:
            buffer = io.BytesIO()
        else:
            buffer = io.BytesIO(b"".join(self._chunks))
        self.result.set_result(
            HTTPResponse(
                self.original,
                self._code,
                reason=self._reason,
                headers=self._headers,
                buffer=buffer,
                effective_url=self.request.url,
                request_time=self.io_loop.time() - self.start_time,
                start_time=self.start_wall_time,
                time_info={"queue": self.queue_time},
            )
        )

    def _redirect_request(self) -> HTTPRequest:
        """The request for the Location of this 3xx, as Tornado builds it."""
        request = self.request
        new = copy.copy(request)
        new.url = urllib.parse.urljoin(request.url, self._headers["Location"])
        new.headers = request.headers.copy()
        before = urllib.parse.urlsplit(self.original.url)
        after = urllib.parse.urlsplit(new.url)
        if (before.scheme, before.netloc) != (after.scheme, after.netloc):
            # Another origin: credentials stay behind (as curl does).
            new.auth_username = new.auth_password = None
            if "@" in after.netloc:
                netloc = after.hostname or ""
                if ":" in netloc:
                    netloc = f"[{netloc}]"
                if after.port is not None:
                    netloc = f"{netloc}:{after.port}"
                new.url = urllib.parse.urlunsplit(after._replace(netloc=netloc))
            for name in ("Authorization", "Cookie"):
                if name in new.headers:
                    del new.headers[name]
        new.max_redirects = (request.max_redirects or 0) - 1
        if "Host" in new.headers:
            del new.headers["Host"]
        if (self._code == 303 and request.method != "HEAD") or (
            self._code in (301, 302) and request.method == "POST"
        ):
            new.method = "GET"
            new.body = None
            new.body_producer = None
            for name in ("Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding"):
                if name in new.headers:
                    del new.headers[name]
        return new

    # -- the response: llhttp's callbacks --------------------------------------------

    def _reset(self) -> None:
        """Fresh response state (again for a retry)."""
        self._parser = httptools.HttpResponseParser(self)
        self._received = False  # any byte of the response
        self._final = False  # the final (non-1xx) status line and headers are in
        self._complete = False
        self._extra = False  # bytes after the response: no reuse
        self._keep_alive = False
        self._continue = False  # 100 Continue received
        self._body_sent = False
        self._until_close = False
        self._following = False
        self._code = 0
        self._reason: str | None = None
        self._reason_parts: list[bytes] = []
        self._headers = HTTPHeaders()
        self._header_size = 0
        self._head_bytes = 0  # bytes fed while the final headers were incomplete
        self._body_size = 0
        self._inflated_size = 0
        self._decompressor: Any = None
        self._encoding = ""
        self._chunks: list[bytes] = []
        self._pending = []
        self._stopped_by: BaseException | None = None

    def _feed(self, data: bytes) -> None:
        if not self._final:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            error = self._stopped_by
            self._stopped_by = None
            if error is None:
                raise
            if not isinstance(error, _StopParsing):
                raise error from None
            if (
                self.request.method == "HEAD"
                and self._complete
                and not (data.endswith(b"\n\r\n") or data.endswith(b"\n\n"))
            ):
                # Stopped at the end of the headers, with more in this chunk
                # that was not part of the response.
                self._extra = True
        except httptools.HttpParserUpgrade:
            raise HTTPStreamClosedError(
                "Stream closed: the server switched protocols, which fetch does not support"
            ) from None
        except httptools.HttpParserError as e:
            raise HTTPStreamClosedError(f"Stream closed: malformed HTTP response: {e}") from None
        if not self._final and self._head_bytes > self.client.max_header_size:
            raise HTTPStreamClosedError(
                f"Stream closed: response headers larger than max_header_size "
                f"({self.client.max_header_size} bytes)"
            )

    def on_message_begin(self) -> None:
        if self._complete:
            self._extra = True
            stop = self._stopped_by = _StopParsing()
            raise stop

    def on_status(self, data: bytes) -> None:
        self._reason_parts.append(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_size += len(name) + len(value) + 4
        text = value.decode("latin-1")
        # llhttp keeps trailing whitespace, which is not the value's (RFC 9110 5.5)
        if text and text[-1] in " \t":
            text = text.rstrip(" \t")
        self._headers.add(name.decode("latin-1"), text)

    def on_headers_complete(self) -> None:
        try:
            self._headers_complete()
        except BaseException as e:
            self._stopped_by = e
            raise

    def _headers_complete(self) -> None:
        parser = self._parser
        code = parser.get_status_code()
        request = self.request
        if code < 200:
            # An interim response; llhttp ends it here and reads the next.
            if code == 100 and request.expect_100_continue:
                self._continue = True
            self._reason_parts = []
            self._headers = HTTPHeaders()
            self._header_size = 0
            return
        self._final = True
        self._code = code
        reason = b"".join(self._reason_parts).decode("latin-1")
        self._reason = reason or None
        max_header_size = self.client.max_header_size
        if self._header_size + len(reason) + 15 > max_header_size:
            raise HTTPStreamClosedError(
                f"Stream closed: response headers larger than max_header_size "
                f"({max_header_size} bytes)"
            )
        headers = self._headers
        no_body = request.method == "HEAD" or code in (204, 304)
        chunked = (
            headers.get("Transfer-Encoding", "").rpartition(",")[2].strip().lower() == "chunked"
        )
        self._until_close = not no_body and not chunked and "Content-Length" not in headers
        self._following = bool(
            request.follow_redirects
            and code in _REDIRECT_CODES
            and (request.max_redirects or 0) > 0
            and "Location" in headers
        )
        if not self._following:
            length = headers.get("Content-Length")
            if (
                length is not None
                and not no_body
                and length.isdigit()
                and int(length) > self.client.max_body_size
            ):
                raise HTTPStreamClosedError(
                    f"Stream closed: Content-Length {length} is larger than max_body_size "
                    f"({self.client.max_body_size} bytes)"
                )
            callback = request.header_callback
            if callback is not None:
                callback(f"HTTP/{parser.get_http_version()} {code} {reason}\r\n")
                for name, value in headers.get_all():
                    callback(f"{name}: {value}\r\n")
                callback("\r\n")
            if request.decompress_response:
                encoding = headers.get("Content-Encoding", "").strip().lower()
                if encoding in ("gzip", "x-gzip", "deflate"):
                    self._encoding = encoding
                    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
                    self._decompressor = zlib.decompressobj(wbits)
                    # What follows is decoded: say so, as Tornado does.
                    headers.add("X-Consumed-Content-Encoding", headers["Content-Encoding"])
                    del headers["Content-Encoding"]
        if request.method == "HEAD":
            # llhttp would wait for a Content-Length of body: stop it here.
            tokens = headers.get("Connection", "").lower()
            keep_alive = "close" not in tokens and (
                parser.get_http_version() != "1.0" or "keep-alive" in tokens
            )
            self._message_done(keep_alive)
            raise _StopParsing()

    def on_body(self, data: bytes) -> None:
        try:
            self._body_size += len(data)
            if self._body_size > self.client.max_body_size:
                raise HTTPStreamClosedError(
                    f"Stream closed: response body larger than max_body_size "
                    f"({self.client.max_body_size} bytes)"
                )
            if self._following:
                return  # a redirect's body is dropped
            if self._decompressor is None:
                self._deliver(data)
            else:
                self._inflate(data)
        except BaseException as e:
            self._stopped_by = e
            raise

    def on_message_complete(self) -> None:
        if not self._final:
            return  # the end of an interim (1xx) response
        try:
            self._message_done(self._parser.should_keep_alive())
        except BaseException as e:
            self._stopped_by = e
            raise

    def _message_done(self, keep_alive: bool) -> None:
        self._complete = True
        self._keep_alive = keep_alive
        decompressor = self._decompressor
        if decompressor is not None:
            self._decompressor = None
            if not self._following:
                tail = decompressor.flush()
                if tail:
                    self._count_inflated(len(tail))
                    self._deliver(tail)

    def _inflate(self, data: bytes) -> None:
        """Decompress and deliver in pieces of at most a read chunk."""
        decompressor = self._decompressor
        while data:
            try:
                out = decompressor.decompress(data, _READ_CHUNK)
            except zlib.error as e:
                if self._encoding == "deflate" and not self._inflated_size:
                    # "deflate" is often sent raw, without the zlib wrapper.
                    decompressor = self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._encoding = "raw deflate"
                    continue
                raise HTTPStreamClosedError(
                    f"Stream closed: invalid {self._encoding} data: {e}"
                ) from None
            tail = decompressor.unconsumed_tail
            if out:
                self._count_inflated(len(out))
                self._deliver(out)
            elif len(tail) >= len(data):
                break  # nothing more to decode (trailing bytes after the stream)
            data = tail

    def _count_inflated(self, size: int) -> None:
        self._inflated_size += size
        if self._inflated_size > self.client.max_body_size:
            raise HTTPStreamClosedError(
                f"Stream closed: decompressed body larger than max_body_size "
                f"({self.client.max_body_size} bytes)"
            )

    def _deliver(self, chunk: bytes) -> None:
        callback = self.request.streaming_callback
        if callback is None:
            self._chunks.append(chunk)
        else:
            awaitable = callback(chunk)
            if awaitable is not None:
                self._pending.append(awaitable)


class _BodyWriter:
    """The ``write`` a body_producer gets: chunked framing, or a check that
    the bytes match the Content-Length the caller declared."""

    __slots__ = ("_chunked", "_expected", "_stream", "_written")

    def __init__(self, stream: IOStream, chunked: bool, headers: HTTPHeaders) -> None:
        self._stream = stream
        self._chunked = chunked
        length = headers.get("Content-Length")
        self._expected = int(length) if length is not None and not chunked else None
        self._written = 0

    def write(self, chunk: bytes) -> Future[None]:
        stream = self._stream
        size = len(chunk)
        self._written += size
        if self._expected is not None and self._written > self._expected:
            stream.close()
            raise HTTPOutputError(
                f"body_producer wrote more than the Content-Length ({self._expected} bytes)"
            )
        if not self._chunked:
            return stream.write(chunk)
        if not size:
            return stream.write(b"")  # an empty chunk would end the body
        stream.write(b"%x\r\n" % size)
        stream.write(chunk)
        return stream.write(b"\r\n")

    def finish(self) -> None:
        if self._chunked:
            self._stream.write(b"0\r\n\r\n")
        elif self._expected is not None and self._written < self._expected:
            self._stream.close()
            raise HTTPOutputError(
                f"body_producer wrote {self._written} bytes, less than the "
                f"Content-Length ({self._expected} bytes)"
            )


# -- the blocking client -----------------------------------------------------------


class HTTPClient:
    """A blocking client for scripts and tests, over an :class:`AsyncHTTPClient`
    on a private loop::

        client = HTTPClient()
        try:
            print(client.fetch("http://example.org/").body)
        except HTTPClientError as e:  # a non-2xx answer; e.response has it
            print("Error:", e)
        finally:
            client.close()

    It must not be used from a thread whose loop is running (use
    AsyncHTTPClient there). ``kwargs`` go to ``async_client_class``
    (AsyncHTTPClient by default).
    """

    def __init__(
        self, async_client_class: type[AsyncHTTPClient] | None = None, **kwargs: Any
    ) -> None:
        self._closed = True  # until built: __del__ must not trip over a failed __init__
        self._io_loop = IOLoop(make_current=False)
        client_class = async_client_class or AsyncHTTPClient

        async def make_client() -> AsyncHTTPClient:
            # Made while the private loop runs, so it is the client's loop.
            return client_class(**kwargs)

        try:
            self._async_client = self._io_loop.run_sync(make_client)
        except BaseException:
            self._io_loop.close(all_fds=True)
            raise
        self._closed = False

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and its loop; closing again does nothing."""
        if not self._closed:
            self._closed = True
            self._async_client.close()
            self._io_loop.close(all_fds=True)

    def fetch(self, request: str | HTTPRequest, **kwargs: Any) -> HTTPResponse:
        """Fetch and return the :class:`HTTPResponse`; raises as
        :meth:`AsyncHTTPClient.fetch` does (``raise_error=False`` is accepted)."""
        if self._closed:
            raise RuntimeError("fetch() called on a closed HTTPClient")
        response: HTTPResponse = self._io_loop.run_sync(
            functools.partial(self._async_client.fetch, request, **kwargs)
        )
        return response


def main() -> None:
    """``python -m reactor.httpclient URL...``: fetch each URL and print it.

    Options (reactor.options): ``--print_headers`` (default off),
    ``--print_body`` (on), ``--follow_redirects`` (on), ``--validate_cert``
    (on), ``--proxy_host``, ``--proxy_port``. A non-2xx answer is printed
    like any other.
    """
    from reactor.options import define, options, parse_command_line

    define("print_headers", type=bool, default=False)
    define("print_body", type=bool, default=True)
    define("follow_redirects", type=bool, default=True)
    define("validate_cert", type=bool, default=True)
    define("proxy_host", type=str)
    define("proxy_port", type=int)
    urls = parse_command_line()
    client = HTTPClient()
    try:
        for url in urls:
            try:
                response = client.fetch(
                    url,
                    follow_redirects=options.follow_redirects,
                    validate_cert=options.validate_cert,
                    proxy_host=options.proxy_host,
                    proxy_port=options.proxy_port,
                )
            except HTTPClientError as e:
                if e.response is None:
                    raise
                response = e.response
            if options.print_headers:
                print(response.headers)
            if options.print_body:
                print(response.body.decode("utf-8", "replace"))
    finally:
        client.close()


if __name__ == "__main__":
    main()
