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
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from reactor import gen, netutil, process
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, SSLIOStream
from reactor.log import app_log
from reactor.netutil import _DEFAULT_BACKLOG, add_accept_handler, bind_sockets

__all__ = ["TCPServer"]


class TCPServer:
    """A non-blocking, single-threaded TCP server (see the module docstring)."""

    def __init__(
        self,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
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
        self._sockets: dict[int, socket.socket] = {}
        self._handlers: dict[int, Callable[[], None]] = {}
        self._pending_sockets: list[socket.socket] = []
        self._started = False
        self._stopped = False

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
            self._handlers[sock.fileno()] = add_accept_handler(sock, self._handle_connection)

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
        """Stop accepting and close the listening sockets.

        Connections already accepted are left alone: close them yourself.
        """
        if self._stopped:
            return
        self._stopped = True
        for fd, sock in self._sockets.items():
            assert sock.fileno() == fd
            self._handlers.pop(fd)()
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
                if err.errno in (errno.ECONNABORTED, errno.EINVAL, errno.ENOTCONN):
                    connection.close()
                    return
                raise
            stream = SSLIOStream(
                connection,
                max_buffer_size=self.max_buffer_size,
                read_chunk_size=self.read_chunk_size,
            )
        else:
            stream = IOStream(
                connection,
                max_buffer_size=self.max_buffer_size,
                read_chunk_size=self.read_chunk_size,
            )
        try:
            result = self.handle_stream(stream, address)
        except Exception:
            app_log.error("Error in connection callback", exc_info=True)
            stream.close()
            return
        if result is not None:
            IOLoop.current().add_future(gen.convert_yielded(result), _log_failure)


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        exc = future.exception()
        app_log.error("Error in handle_stream", exc_info=(type(exc), exc, exc.__traceback__))
