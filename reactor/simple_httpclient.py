"""Tornado's ``tornado.simple_httpclient`` names, for code that imports them.

Tornado has two HTTP clients: ``simple_httpclient`` (its default) and
``curl_httpclient``. reactor has one, the pooling HTTP/1.1 client of
:mod:`reactor.httpclient`, which is ``AsyncHTTPClient()``'s default;
:class:`SimpleAsyncHTTPClient` is that client with Tornado's constructor
arguments, so that ``AsyncHTTPClient.configure(
"reactor.simple_httpclient.SimpleAsyncHTTPClient", max_clients=50)`` and
subclasses of it port unchanged. Its errors are the client's own classes:
``except HTTPTimeoutError`` catches the same exception whichever module it
was imported from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactor.httpclient import (
    _DEFAULT_MAX_BUFFER_SIZE,
    AsyncHTTPClient,
    HTTPClientError,
    HTTPError,
    HTTPRequest,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
)
from reactor.iostream import StreamClosedError
from reactor.netutil import Resolver

__all__ = [
    "HTTPError",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "SimpleAsyncHTTPClient",
    "StreamClosedError",
]


class SimpleAsyncHTTPClient(AsyncHTTPClient):
    """reactor's HTTP/1.1 client (:class:`reactor.httpclient.AsyncHTTPClient`)
    under Tornado's name and with Tornado's ``initialize`` arguments, in
    Tornado's order.

    ``max_clients`` (10) requests run at once, the others wait in line;
    ``hostname_mapping`` overrides DNS; ``max_buffer_size`` (100 MiB) bounds
    what a response may make the client buffer, ``max_header_size`` and
    ``max_body_size`` a response's header block and body; ``resolver`` is
    the :class:`~reactor.netutil.Resolver` to use; ``defaults`` are
    :class:`~reactor.httpclient.HTTPRequest` attribute defaults. reactor's
    own ``idle_timeout`` and ``max_idle_connections`` (the keep-alive pool)
    may be given as keywords too.
    """

    def initialize(  # type: ignore[override]
        self,
        max_clients: int = 10,
        hostname_mapping: dict[Any, Any] | None = None,
        max_buffer_size: int = _DEFAULT_MAX_BUFFER_SIZE,
        resolver: Resolver | None = None,
        defaults: dict[str, Any] | None = None,
        max_header_size: int | None = None,
        max_body_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().initialize(
            defaults=defaults,
            max_clients=max_clients,
            hostname_mapping=hostname_mapping,
            max_buffer_size=max_buffer_size,
            resolver=resolver,
            max_header_size=max_header_size,
            max_body_size=max_body_size,
            **kwargs,
        )

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        """Run ``request`` and call ``callback(response)`` when it ends,
        whatever its outcome: a failure is a response with ``error`` set
        (code 599 when no response arrived), as in Tornado.

        Tornado's :meth:`fetch` goes through this method; reactor's does not
        (a subclass that overrides ``fetch_impl`` to change how requests are
        sent must override ``fetch`` instead).
        """
        inherited = getattr(super(), "fetch_impl", None)
        if inherited is not None:
            # The client has a fetch_impl of its own (and fetch may go
            # through it): this one must not call fetch, which would loop.
            inherited(request, callback)
            return
        future = self.fetch(request, raise_error=False)

        def done(f: Any) -> None:
            try:
                response = f.result()
            except HTTPClientError as e:
                response = e.response or HTTPResponse(request, e.code, error=e)
            except Exception as e:
                response = HTTPResponse(request, 599, error=e)
            callback(response)

        future.add_done_callback(done)
