"""TCPClient: connect to a host by name, over IPv6 or IPv4, with happy eyeballs.

``stream = await TCPClient().connect("example.org", 443, ssl_options=ctx)``
resolves the name without blocking the loop, then tries the addresses in the
order the resolver gave them, two families racing (RFC 8305, "happy
eyeballs"): the first family's addresses are tried one after another; if the
first attempt has not succeeded within ``_INITIAL_CONNECT_DELAY`` (0.3 s), the
other family starts in parallel. The first connection to succeed wins and
the others are closed.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from typing import Any

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, _new_future
from reactor.iostream import IOStream
from reactor.netutil import Resolver

__all__ = ["TCPClient"]

_INITIAL_CONNECT_DELAY = 0.3

_Address = tuple[Any, ...]
_AddrInfo = list[tuple[Any, _Address]]


class _Connector:
    """Races connection attempts across address families (see the module docstring).

    ``connect(af, addr)`` starts one attempt and returns its future. Each
    family's addresses are tried in order; the secondary family starts when
    the primary fails outright or after ``timeout`` seconds without success.
    """

    def __init__(self, addrinfo: _AddrInfo, connect: Any) -> None:
        self.io_loop = IOLoop.current()
        self.connect = connect
        self.future: Future[tuple[socket.AddressFamily, _Address, IOStream]] = _new_future()
        self.timeout: object | None = None
        self.connect_timeout: object | None = None
        self.last_error: BaseException | None = None
        self.remaining = len(addrinfo)
        self.primary_addrs, self.secondary_addrs = self.split(addrinfo)
        self.streams: set[IOStream] = set()

    @staticmethod
    def split(
        addrinfo: list[tuple[socket.AddressFamily, _Address]],
    ) -> tuple[
        list[tuple[socket.AddressFamily, _Address]], list[tuple[socket.AddressFamily, _Address]]
    ]:
        """Split into the first address's family and all the others."""
        if not addrinfo:
            return [], []
        first_family = addrinfo[0][0]
        primary = [a for a in addrinfo if a[0] == first_family]
        secondary = [a for a in addrinfo if a[0] != first_family]
        return primary, secondary

    def start(
        self,
        timeout: float = _INITIAL_CONNECT_DELAY,
        connect_timeout: float | datetime.timedelta | None = None,
    ) -> Future[tuple[socket.AddressFamily, _Address, IOStream]]:
        self.try_connect(iter(self.primary_addrs))
        self.set_timeout(timeout)
        if connect_timeout is not None:
            self.set_connect_timeout(connect_timeout)
        return self.future

    def try_connect(self, addrs: Iterator[tuple[socket.AddressFamily, _Address]]) -> None:
        try:
            af, addr = next(addrs)
        except StopIteration:
            # This family is exhausted. If nothing else is in flight, fail.
            if self.remaining == 0 and not self.future.done():
                self.future.set_exception(
                    self.last_error or OSError("connection failed: no address to try")
                )
            return
        try:
            stream, future = self.connect(af, addr)
        except OSError as e:  # e.g. the source address cannot be bound
            self.remaining -= 1
            self.last_error = e
            self.try_connect(addrs)
            return
        self.streams.add(stream)
        future.add_done_callback(lambda f: self.on_connect_done(addrs, af, addr, f))

    def on_connect_done(
        self,
        addrs: Iterator[tuple[socket.AddressFamily, _Address]],
        af: socket.AddressFamily,
        addr: _Address,
        future: Future[IOStream],
    ) -> None:
        self.remaining -= 1
        try:
            stream = future.result()
        except Exception as e:
            if self.future.done():
                return
            self.last_error = e
            self.try_connect(addrs)
            if self.timeout is not None:
                # The primary failed outright: no reason to wait before the
                # secondary family.
                self.io_loop.remove_timeout(self.timeout)
                self.on_timeout()
            return
        self.clear_timeouts()
        if self.future.done():
            stream.close()  # lost the race
        else:
            self.streams.discard(stream)
            self.future.set_result((af, addr, stream))
            self.close_streams()

    def set_timeout(self, timeout: float) -> None:
        self.timeout = self.io_loop.call_later(timeout, self.on_timeout)

    def on_timeout(self) -> None:
        self.timeout = None
        if not self.future.done():
            self.try_connect(iter(self.secondary_addrs))

    def clear_timeout(self) -> None:
        if self.timeout is not None:
            self.io_loop.remove_timeout(self.timeout)
            self.timeout = None

    def set_connect_timeout(self, connect_timeout: float | datetime.timedelta) -> None:
        # Relative: a timedelta, or seconds from now (add_timeout would take a
        # bare number for a deadline on the loop's clock).
        if isinstance(connect_timeout, datetime.timedelta):
            connect_timeout = connect_timeout.total_seconds()
        self.connect_timeout = self.io_loop.call_later(connect_timeout, self.on_connect_timeout)

    def on_connect_timeout(self) -> None:
        self.connect_timeout = None
        if not self.future.done():
            self.future.set_exception(TimeoutError("connection timed out"))
        self.close_streams()

    def clear_timeouts(self) -> None:
        self.clear_timeout()
        if self.connect_timeout is not None:
            self.io_loop.remove_timeout(self.connect_timeout)
            self.connect_timeout = None

    def close_streams(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams.clear()


class TCPClient:
    """A non-blocking TCP connection factory (see the module docstring)."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        if resolver is not None:
            self.resolver = resolver
            self._own_resolver = False
        else:
            self.resolver = Resolver()
            self._own_resolver = True

    def close(self) -> None:
        if self._own_resolver:
            self.resolver.close()

    async def connect(
        self,
        host: str,
        port: int,
        af: socket.AddressFamily = socket.AF_UNSPEC,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        source_ip: str | None = None,
        source_port: int | None = None,
        timeout: float | datetime.timedelta | None = None,
    ) -> IOStream:
        """Connect to ``host:port``; returns an IOStream (an SSLIOStream with
        ``ssl_options``, after its handshake and hostname check).

        ``af`` limits the address family; ``source_ip``/``source_port`` bind
        the local end; ``timeout`` (seconds or a timedelta) bounds the whole
        operation, resolution and TLS included, raising :class:`TimeoutError`.
        A refused or unreachable address fails with the last connection error
        (a :class:`~reactor.iostream.StreamClosedError`).
        """
        io_loop = IOLoop.current()
        if timeout is not None:
            seconds = (
                timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else timeout
            )
            deadline: float | None = io_loop.time() + seconds
        else:
            deadline = None

        def remaining() -> float | None:
            return None if deadline is None else max(deadline - io_loop.time(), 0.0)

        resolving = self.resolver.resolve(host, port, af)
        addrinfo = await (resolving if deadline is None else gen.with_timeout(deadline, resolving))
        connector = _Connector(
            addrinfo,
            lambda af, addr: self._create_stream(
                max_buffer_size, af, addr, source_ip=source_ip, source_port=source_port
            ),
        )
        _, _, stream = await connector.start(connect_timeout=remaining())
        if ssl_options is not None:
            tls = stream.start_tls(False, ssl_options=ssl_options, server_hostname=host)
            stream = await (tls if deadline is None else gen.with_timeout(deadline, tls))
        return stream

    def _create_stream(
        self,
        max_buffer_size: int | None,
        af: socket.AddressFamily,
        addr: _Address,
        source_ip: str | None = None,
        source_port: int | None = None,
    ) -> tuple[IOStream, Future[IOStream]]:
        sock = socket.socket(af)
        if source_ip is not None or source_port is not None:
            bind_ip = source_ip or ("::1" if af == socket.AF_INET6 else "127.0.0.1")
            try:
                sock.bind((bind_ip, source_port or 0))
            except OSError:
                sock.close()
                raise
        stream = IOStream(sock, max_buffer_size=max_buffer_size)
        return stream, stream.connect(addr)
