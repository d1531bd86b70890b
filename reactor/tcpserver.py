"""TCPServer: accept connections and hand each one to ``handle_stream`` as an IOStream.

Subclass it and override :meth:`TCPServer.handle_stream` (which may be a
coroutine)::

    class EchoServer(TCPServer):
        async def handle_stream(self, stream, address):
            while True:
                line = await stream.read_until(b"\\n")
                await stream.write(line)

Three ways to start it:

1. one process: ``server.listen(8888)``, then start the loop;
2. pre-fork: ``server.bind(8888)`` then ``server.start(0)`` (one worker per
   CPU, sharing the sockets), then ``IOLoop.current().start()`` in each;
3. advanced: make sockets with :func:`reactor.netutil.bind_sockets` (with
   ``reuse_port``, say), fork with :func:`reactor.process.fork_processes`,
   and ``server.add_sockets(sockets)`` in each worker.

TLS: pass ``ssl_options`` (an :class:`ssl.SSLContext` or Tornado's dict of
options); each connection then gets an :class:`~reactor.iostream.SSLIOStream`
whose handshake runs without blocking the loop.

Protecting the process: ``max_connections`` bounds the connections open at
once (past it, new ones wait in the kernel's backlog, unaccepted, until one
closes); running out of file descriptors pauses accepting with a back-off
instead of spinning (see :func:`~reactor.netutil.add_accept_handler`);
``max_write_buffer_size`` bounds what each connection may queue for a
client that does not read. :meth:`TCPServer.stats` counts connections, and
:meth:`TCPServer.instances` finds every live server (for metrics).
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import weakref
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

from reactor import gen, netutil, process
from reactor.ioloop import IOLoop
from reactor.iostream import BaseIOStream, IOStream, SSLIOStream
from reactor.log import app_log
from reactor.netutil import _DEFAULT_BACKLOG, _Acceptor, bind_sockets

__all__ = ["TCPServer"]

# stop() with no max_connections: the whole backlog (netutil bounds it).
_BACKLOG_ALL = 1 << 30

_Server = TypeVar("_Server", bound="TCPServer")


class TCPServer:
    """A non-blocking, single-threaded TCP server (see the module docstring).

    ``max_buffer_size`` and ``read_chunk_size`` go to each connection's
    stream, and so does ``max_write_buffer_size`` (default: no limit), past
    which a write raises :class:`~reactor.iostream.StreamBufferFullError`.
    ``max_connections`` (default: no limit): the most connections open at
    once, a detached one (a WebSocket) included until its stream closes;
    at the limit the server stops accepting, so that new connections wait
    in the kernel's listen backlog, and it accepts again when one closes.
    """

    # Every server of this process, for instances() (metrics).
    _instances: ClassVar[weakref.WeakSet[TCPServer]] = weakref.WeakSet()

    def __init__(
        self,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
        *,
        max_connections: int | None = None,
        max_write_buffer_size: int | None = None,
    ) -> None:
        self.ssl_options = ssl_options
        self._ssl_context: ssl.SSLContext | None = None
        if ssl_options is not None:
            if isinstance(ssl_options, dict):
                # Check the files up front: a typo should fail at start-up,
                # not on the first client's handshake.
                if "certfile" not in ssl_options:
                    raise KeyError('missing key "certfile" in ssl_options')
                for key in ("certfile", "keyfile"):
                    path = ssl_options.get(key)
                    if path and not os.path.exists(path):
                        raise ValueError(f'{key} "{path}" does not exist')
            self._ssl_context = netutil.ssl_options_to_context(ssl_options, server_side=True)
        self.max_buffer_size = max_buffer_size
        self.read_chunk_size = read_chunk_size
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self.max_connections = max_connections
        self.max_write_buffer_size = max_write_buffer_size
        self._sockets: dict[int, socket.socket] = {}
        self._acceptors: dict[int, _Acceptor] = {}
        self._pending_sockets: list[socket.socket] = []
        self._started = False
        self._stopped = False
        # Counted per connection, never per request: see stats().
        self._open = 0
        self._accepted = 0
        self._accept_errors = 0  # of acceptors gone (stop); live ones count their own
        self._held = False  # at max_connections: accepting is held
        TCPServer._instances.add(self)

    @classmethod
    def instances(cls: type[_Server]) -> list[_Server]:
        """The servers of this class (and its subclasses) in this process
        that have listening sockets or open connections: what a metrics
        endpoint reports. A server that was stopped drops out once its last
        connection closes."""
        return [
            server
            for server in list(TCPServer._instances)
            if isinstance(server, cls) and (server._sockets or server._open)
        ]

    def stats(self) -> dict[str, int]:
        """Counters of this server: ``connections_open`` (now, detached ones
        included), ``connections_accepted`` (in total), ``accept_errors``
        (``accept()`` failures for want of file descriptors or memory, in
        total) and ``accepting`` (1 while accepting; 0 while held at
        ``max_connections``, backing off after such a failure, or after
        :meth:`stop`)."""
        errors = self._accept_errors
        accepting = 0
        for acceptor in self._acceptors.values():
            errors += acceptor.errors
            if acceptor.accepting:
                accepting = 1
        return {
            "connections_open": self._open,
            "connections_accepted": self._accepted,
            "accept_errors": errors,
            "accepting": accepting,
        }

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind and start accepting on the current loop (one process)."""
        sockets = bind_sockets(
            port,
            address=address,
            family=family,
            backlog=backlog,
            flags=flags,
            reuse_port=reuse_port,
        )
        self.add_sockets(sockets)

    def add_sockets(self, sockets: list[socket.socket]) -> None:
        """Start accepting on listening sockets (e.g. from ``bind_sockets``)."""
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            acceptor = _Acceptor(sock, self._handle_connection)
            self._acceptors[sock.fileno()] = acceptor
            if self._held:
                acceptor.hold()

    def add_socket(self, socket: socket.socket) -> None:
        """Start accepting on one listening socket."""
        self.add_sockets([socket])

    def bind(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind now, accept after :meth:`start` (which may fork)."""
        sockets = bind_sockets(
            port,
            address=address,
            family=family,
            backlog=backlog,
            flags=flags,
            reuse_port=reuse_port,
        )
        if self._started:
            self.add_sockets(sockets)
        else:
            self._pending_sockets.extend(sockets)

    def start(self, num_processes: int | None = 1, max_restarts: int | None = None) -> None:
        """Start accepting on the sockets from :meth:`bind`.

        ``num_processes`` other than 1 forks that many workers first (None or
        0: one per CPU) with :func:`reactor.process.fork_processes`; each then
        accepts on the shared sockets. No IOLoop may exist before a fork.
        """
        assert not self._started, "start() called twice"
        self._started = True
        if num_processes != 1:
            process.fork_processes(num_processes, max_restarts)
        sockets, self._pending_sockets = self._pending_sockets, []
        self.add_sockets(sockets)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets; idempotent.

        Connections the kernel has completed already (waiting in the
        listen backlog) are accepted first, within ``max_connections``, and
        served as any other, instead of being reset by the close. Connections
        already accepted are left alone: close them yourself (an HTTPServer:
        :meth:`~reactor.httpserver.HTTPServer.close_all_connections`).
        """
        if self._stopped:
            return
        self._stopped = True
        limit = self.max_connections
        for fd, sock in self._sockets.items():
            assert sock.fileno() == fd
            acceptor = self._acceptors.pop(fd)
            acceptor.remove()
            room = _BACKLOG_ALL if limit is None else limit - self._open
            if room > 0:
                acceptor.accept_backlog(room)
            self._accept_errors += acceptor.errors
            sock.close()
        self._sockets.clear()

    def handle_stream(self, stream: IOStream, address: Any) -> Awaitable[None] | None:
        """Handle one connection; override. May be a coroutine function.

        A failure of the returned coroutine or future is logged.
        """
        raise NotImplementedError(f"{type(self).__name__}.handle_stream")

    def _handle_connection(self, connection: socket.socket, address: Any) -> None:
        stream: IOStream
        if self._ssl_context is not None:
            try:
                # A client that reset while it waited in the backlog: wrap_socket
                # would raise ECONNRESET, or "Closed before TLS handshake", from
                # an SSLSocket it then leaves unclosed. Its business, not ours.
                connection.getpeername()
            except OSError:
                connection.close()
                return
            try:
                connection = self._ssl_context.wrap_socket(
                    connection, server_side=True, do_handshake_on_connect=False
                )
            except ssl.SSLError as err:
                if err.args[0] == ssl.SSL_ERROR_EOF:
                    connection.close()
                    return
                raise
            except OSError as err:
                # The client may already be gone (reset, or a half-open
                # probe); that is its business, not an error of ours.
                if err.errno in (
                    errno.ECONNABORTED,
                    errno.ECONNRESET,
                    errno.EINVAL,
                    errno.ENOTCONN,
                ):
                    connection.close()
                    return
                raise
            stream = SSLIOStream(
                connection,
                max_buffer_size=self.max_buffer_size,
                read_chunk_size=self.read_chunk_size,
                max_write_buffer_size=self.max_write_buffer_size,
            )
        else:
            stream = IOStream(
                connection,
                max_buffer_size=self.max_buffer_size,
                read_chunk_size=self.read_chunk_size,
                max_write_buffer_size=self.max_write_buffer_size,
            )
        stream._close_hook = self._stream_closed
        self._accepted += 1
        self._open += 1
        limit = self.max_connections
        if limit is not None and self._open >= limit and not self._held:
            self._hold(True)
        try:
            result = self.handle_stream(stream, address)
        except Exception:
            app_log.error("Error in connection callback", exc_info=True)
            stream.close()
            return
        if result is not None:
            IOLoop.current().add_future(gen.convert_yielded(result), _log_failure)

    def _stream_closed(self, stream: BaseIOStream) -> None:
        """A connection's stream closed (its close hook; see _handle_connection)."""
        self._open -= 1
        if self._held and self._open < (self.max_connections or 0):
            self._hold(False)
        self._connection_closed(stream)

    def _connection_closed(self, stream: BaseIOStream) -> None:
        """Called when a connection's stream closes (HTTPServer forgets the
        detached ones here)."""

    def _hold(self, held: bool) -> None:
        # Past max_connections, new connections wait in the backlog.
        self._held = held
        for acceptor in self._acceptors.values():
            if held:
                acceptor.hold()
            else:
                acceptor.release()


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        app_log.error("Error in handle_stream", exc_info=(type(exc), exc, exc.__traceback__))
