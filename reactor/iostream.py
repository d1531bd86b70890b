"""Buffered non-blocking streams: sockets (:class:`IOStream`), TLS
(:class:`SSLIOStream`) and pipes (:class:`PipeIOStream`).

Everything a stream does is documented on :class:`BaseIOStream`; the
subclasses document only what differs.

Some facts about sockets, pipes and TLS that the code below relies on (each
is also a conformance test in ``tests/conformance/test_iostream.py``):

- A peer's FIN reads as ``b""``, and it looks the same whether the peer called
  ``shutdown(SHUT_WR)`` (it still listens) or ``close()`` (it is gone). So an
  end of input closes the stream, as in Tornado (a socket left open would
  sit in CLOSE_WAIT until the application noticed), *except* under
  :meth:`~BaseIOStream.start_reading` on a socket: its callback is told
  (``b""``) and decides, so a protocol that allows a half-close (HTTP/1.1)
  can still answer.
- Bytes the peer sent before closing are read before the EOF, and bytes the
  stream has buffered are never dropped by a close: a read on a closed stream
  is still satisfied from the buffer.
- A reset (RST, e.g. the peer closed with SO_LINGER 0 or with unread data)
  surfaces as ECONNRESET on the next recv or send (then EPIPE). poll and epoll
  report it unasked as POLLERR|POLLHUP, i.e. ``IOLoop.ERROR``; kqueue and the
  asyncio bridges have no error-only registration and report it as
  readability or writability instead. On ERROR we read what is left and then
  close with the socket's SO_ERROR.
- A refused non-blocking connect shows up as writable (or ERROR) with
  SO_ERROR set; poll on a socket that was never connected reports
  POLLOUT|POLLHUP at once, so a stream over an unconnected socket is not
  registered with the loop until :meth:`IOStream.connect`.
- Pipes have no half-close and no SO_ERROR: a read end whose writer closed
  reads EOF, a write end whose reader closed fails with EPIPE (and epoll
  reports it as ERROR).
- TLS: a non-blocking handshake, read or write may need the socket readable
  *or* writable (SSLWantReadError / SSLWantWriteError). One ``recv_into`` on
  an SSL socket returns at most one record (16 KiB) of plaintext, and
  plaintext can wait inside the SSL object where poll cannot see it, so a
  short SSL read never means the socket is drained. OpenSSL's SSL_write
  (Python does not enable partial writes) must be retried with the same
  bytes after SSLWantWriteError; it then returns the whole length at once.

How the hot path is kept short:

- Reads ``recv_into`` a preallocated chunk shared by all streams of a thread,
  so an idle stream holds no read memory. ``read_*`` copy the bytes out
  before any other code runs. A ``start_reading(views=True)`` callback is
  instead lent a view of the chunk, and code it runs may read too (an HTTP
  handler reading another socket while llhttp still parses the view): for
  the callback's duration the chunk is taken from the thread, and a read
  started meanwhile gets a fresh chunk of its own. So no two live readers
  share a buffer, and the common case (nothing read inside the callback)
  costs two attribute stores per chunk; a fresh chunk per stream would cost
  a chunk of memory per idle connection instead.
- When the stream's buffer is empty and the chunk completes the pending read
  (the usual request/response case), the result is cut straight from the
  chunk; otherwise bytes go to one ``bytearray`` per stream, consumed through
  an offset and compacted lazily.
- A read first looks in the buffer, then tries the fd inline, and only then
  waits for the loop. The fd stays registered for READ between reads while
  the buffer is empty (that also notices a peer's close), so consecutive
  reads cost no epoll_ctl; it is dropped once a chunk of unrequested data
  is buffered. An inline recv is skipped when the fd is registered for READ and
  the last recv found it empty: level-triggered readiness will report new
  data, so that recv would only cost a failed syscall.
- A write is sent inline when nothing is queued; only the unsent rest is
  queued (a memoryview of the caller's object, not a copy; small writes are
  coalesced into one buffer), and WRITE is registered only while data waits.
- Futures that are done when returned (data already buffered, a write the
  kernel took at once) let ``await`` continue without a loop iteration.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import functools
import os
import re
import socket as socket_module
import ssl
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, TypeVar

from reactor.concurrent import Future
from reactor.ioloop import IOLoop, _done_future, _new_future
from reactor.log import gen_log
from reactor.netutil import ssl_options_to_context

__all__ = [
    "BaseIOStream",
    "IOStream",
    "PipeIOStream",
    "SSLIOStream",
    "StreamBufferFullError",
    "StreamClosedError",
    "UnsatisfiableReadError",
]

_READ = IOLoop.READ
_WRITE = IOLoop.WRITE
_ERROR = IOLoop.ERROR

# The kinds of pending read. _BYTES and _UNTIL come first: they are the ones
# the shared chunk can satisfy directly (see _pump).
_BYTES = 1
_UNTIL = 2
_REGEX = 3
_CLOSE = 4
_INTO = 5

_DEFAULT_MAX_BUFFER_SIZE = 100 * 1024 * 1024
_DEFAULT_READ_CHUNK_SIZE = 64 * 1024
# Queued writes smaller than this are copied into one buffer (fewer send
# calls); larger ones are queued as views of the caller's object.
_COALESCE_BELOW = 4096
# The consumed prefix of the read buffer is dropped once it is at least this
# big and more than half of the buffer.
_COMPACT_AFTER = 64 * 1024

_ExcInfo = (
    None
    | bool
    | BaseException
    | tuple[type[BaseException] | None, BaseException | None, types.TracebackType | None]
)

_S = TypeVar("_S", bound="IOStream")
_SSLS = TypeVar("_SSLS", bound="SSLIOStream")

# Errors that mean "the peer went away", logged at debug level only.
_CONNECTION_LOST = frozenset(
    {errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT, errno.ENOTCONN}
)


def _clean_close(error: BaseException | None) -> bool:
    """Whether a close for ``error`` still lets read_until_close succeed:
    none, or the peer going away (a reset is how many peers close)."""
    return error is None or (isinstance(error, OSError) and error.errno in _CONNECTION_LOST)


class StreamClosedError(IOError):
    """The stream is closed: raised by operations on it, and by the futures of
    operations that were pending when it closed.

    ``real_error`` is the exception that closed it (a ConnectionResetError, an
    ssl.SSLError, the StreamBufferFullError of a read that was too big...), or
    None if it was closed cleanly by either side.
    """

    def __init__(self, real_error: BaseException | None = None) -> None:
        if real_error is None:
            super().__init__("Stream is closed")
        else:
            super().__init__(f"Stream is closed: {real_error!r}")
        self.real_error = real_error


class UnsatisfiableReadError(Exception):
    """A read cannot complete within its ``max_bytes``: the stream is closed
    with it, so it is the ``real_error`` of the read's StreamClosedError."""


class StreamBufferFullError(Exception):
    """A read needs more than ``max_buffer_size`` bytes buffered, or a write
    would take the write buffer past ``max_write_buffer_size``."""


_Chunk = tuple[bytearray, memoryview]
"""A read chunk and a view of all of it."""


class _SharedChunk:
    """The read chunk of one size that a thread's streams share.

    ``chunk`` is None while it is lent: a start_reading callback holds a view
    of it (``views=True``). Whoever reads meanwhile - another stream, or the
    lender itself after stop_reading - must not overwrite what the callback
    is looking at, and reads into a chunk of its own instead (see
    :func:`_fresh_chunk`).
    """

    __slots__ = ("chunk",)

    def __init__(self, size: int) -> None:
        self.chunk: _Chunk | None = _fresh_chunk(size)


def _fresh_chunk(size: int) -> _Chunk:
    buf = bytearray(size)
    return buf, memoryview(buf)


class _Scratch(threading.local):
    chunks: dict[int, _SharedChunk]

    def __init__(self) -> None:
        self.chunks = {}


_scratch = _Scratch()


_NO_QUEUE: Any = ()  # see BaseIOStream.__init__


def _scratch_chunk(size: int) -> _SharedChunk:
    """This thread's shared read chunk of ``size`` bytes."""
    shared = _scratch.chunks.get(size)
    if shared is None:
        shared = _scratch.chunks[size] = _SharedChunk(size)
    return shared


class BaseIOStream:
    """A buffered, non-blocking byte stream over one file descriptor.

    Reads return futures and run one at a time; writes return futures and
    queue. Subclasses provide the fd (:meth:`fileno`, :meth:`read_from_fd`,
    :meth:`write_to_fd`, :meth:`close_fd`); see :class:`IOStream`,
    :class:`SSLIOStream` and :class:`PipeIOStream`.

    ``max_buffer_size`` (default 100 MiB): the most bytes a read may need
    buffered; a read that needs more fails with :class:`StreamBufferFullError`
    and closes the stream. Unrequested data beyond it is simply not read yet
    (the peer is slowed down by TCP flow control).
    ``read_chunk_size`` (default 64 KiB): the most bytes asked of the fd per
    read call. ``max_write_buffer_size`` (default: unlimited): the most bytes
    that may wait to be written; see :meth:`write`.

    A stream belongs to the loop that is current when it is created and must
    be used from that loop's thread only.
    """

    # Slots: no per-instance dict, so an idle connection stays small.
    __slots__ = (
        "__weakref__",
        "_chunk",
        "_chunk_size",
        "_close_callback",
        "_close_hook",
        "_closed",
        "_connect_future",
        "_drained",
        "_eof",
        "_events",
        "_opening",
        "_read_buffer",
        "_read_bytes",
        "_read_callback",
        "_read_delimiter",
        "_read_filled",
        "_read_future",
        "_read_kind",
        "_read_max_bytes",
        "_read_partial",
        "_read_pos",
        "_read_regex",
        "_read_scan",
        "_read_target",
        "_read_views",
        "_recv",
        "_send",
        "_write_buffer_size",
        "_write_chunks",
        "_write_done",
        "_write_futures",
        "_write_pos",
        "_write_queued",
        "error",
        "io_loop",
        "max_buffer_size",
        "max_write_buffer_size",
    )

    _keep_open_after_eof = False
    """True where end of input during start_reading is a half-close (sockets)."""

    _short_read_drains = True
    """True where a read returning less than asked means the fd is drained."""

    def __init__(
        self,
        max_buffer_size: int | None = None,
        read_chunk_size: int | None = None,
        max_write_buffer_size: int | None = None,
    ) -> None:
        self.io_loop = IOLoop.current()
        self.max_buffer_size = max_buffer_size or _DEFAULT_MAX_BUFFER_SIZE
        self.read_chunk_size = min(
            read_chunk_size or _DEFAULT_READ_CHUNK_SIZE, max(1, self.max_buffer_size // 2)
        )
        self.max_write_buffer_size = max_write_buffer_size
        self.error: BaseException | None = None
        """The exception that closed the stream, or None."""

        # Reading: unread bytes are _read_buffer[_read_pos:].
        self._read_buffer = bytearray()
        self._read_pos = 0
        self._read_future: Future[Any] | None = None
        self._read_kind = 0
        self._read_bytes = 0
        self._read_partial = False
        self._read_delimiter = b""
        self._read_regex: re.Pattern[bytes] | None = None
        self._read_max_bytes: int | None = None
        self._read_scan = 0  # where the delimiter search resumes
        self._read_target: memoryview | None = None  # read_into's buffer
        self._read_filled = 0
        self._read_callback: Callable[[Any], object] | None = None  # start_reading's
        self._read_views = False
        self._eof = False  # the fd reported end of input
        self._drained = False  # the last read found the fd empty

        # Writing: queued chunks are bytearrays we own (and may append to) or
        # memoryviews of the callers' objects; _write_pos is into the first.
        # Both queues start as a shared empty tuple and become deques on the
        # first write that has to wait: most streams never queue anything,
        # and an empty deque costs ~600 bytes per connection.
        self._write_chunks: collections.deque[bytearray | memoryview] = _NO_QUEUE
        self._write_pos = 0
        self._write_buffer_size = 0
        self._write_queued = 0  # bytes ever accepted by write()
        self._write_done = 0  # bytes ever handed to the kernel
        self._write_futures: collections.deque[tuple[int, Future[None]]] = _NO_QUEUE

        self._events: int | None = None  # what the fd is registered for; None: not
        self._opening = False  # connect or TLS handshake under way: I/O waits
        self._connect_future: Future[Any] | None = None
        self._closed = False
        self._close_callback: Callable[[], Any] | None = None
        # The owner's own close callback (a server counting its connections),
        # kept apart from set_close_callback's, which belongs to whoever
        # reads the stream; called synchronously, once, from close().
        self._close_hook: Callable[[BaseIOStream], None] | None = None
        self._bind_io()

    @property
    def read_chunk_size(self) -> int:
        return self._chunk_size

    @read_chunk_size.setter
    def read_chunk_size(self, size: int) -> None:
        self._chunk = _scratch_chunk(size)
        self._chunk_size = size

    # -- what subclasses provide -----------------------------------------------

    def fileno(self) -> int:
        """The file descriptor number."""
        raise NotImplementedError(f"{type(self).__name__}.fileno")

    def close_fd(self) -> None:
        """Close the file descriptor (called once, by :meth:`close`)."""
        raise NotImplementedError(f"{type(self).__name__}.close_fd")

    def read_from_fd(self, buf: memoryview) -> int | None:
        """Read into ``buf``; return the count, 0 at end of input, or None if
        nothing is available yet. Errors are raised (and close the stream)."""
        raise NotImplementedError(f"{type(self).__name__}.read_from_fd")

    def write_to_fd(self, data: memoryview | bytes | bytearray) -> int:
        """Write some of ``data``; return the count (0 if the fd is full)."""
        raise NotImplementedError(f"{type(self).__name__}.write_to_fd")

    def get_fd_error(self) -> BaseException | None:
        """The pending error of the fd (SO_ERROR for sockets), if any."""
        return None

    # The hot path calls _recv and _send, which may also raise _would_block
    # (then meaning None and 0). They are read_from_fd and write_to_fd, or,
    # where a subclass has not overridden those, the socket's own C methods:
    # one Python frame less per read and per write.
    _would_block: tuple[type[BaseException], ...] = ()

    def _bind_io(self) -> None:
        self._recv: Callable[[memoryview], int | None] = self.read_from_fd
        self._send: Callable[[memoryview | bytes | bytearray], int] = self.write_to_fd

    # -- reading -------------------------------------------------------------

    def read_bytes(self, num_bytes: int, partial: bool = False) -> Future[bytes]:
        """Read ``num_bytes`` bytes; with ``partial``, resolve as soon as at
        least one byte is there, with at most ``num_bytes``.

        Only one read may be pending at a time: starting another raises
        RuntimeError. Reading from a closed stream raises
        :class:`StreamClosedError`, unless the buffered data satisfies the
        read. If the stream closes first, the future fails with it.
        """
        if num_bytes < 0:
            raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
        future = self._start_read()
        self._read_kind = _BYTES
        self._read_bytes = num_bytes
        self._read_partial = partial
        if num_bytes > self.max_buffer_size and not partial:
            self._fail_read(
                StreamBufferFullError(
                    f"read_bytes({num_bytes}) needs more than max_buffer_size "
                    f"({self.max_buffer_size} bytes)"
                )
            )
            return future
        available = len(self._read_buffer) - self._read_pos
        if available >= num_bytes or (partial and available):
            self._finish_read(num_bytes if available >= num_bytes else available)
        else:
            self._read_more()
        return future

    def read_until(self, delimiter: bytes, max_bytes: int | None = None) -> Future[bytes]:
        """Read up to and including ``delimiter``.

        With ``max_bytes``, if the delimiter does not end within that many
        bytes the stream is closed (logged at INFO, as in Tornado) and the
        future fails with :class:`StreamClosedError` whose ``real_error`` is
        an :class:`UnsatisfiableReadError`.
        """
        if not delimiter:
            raise ValueError("read_until needs a non-empty delimiter")
        future = self._start_read()
        self._read_kind = _UNTIL
        self._read_delimiter = delimiter
        self._read_max_bytes = max_bytes
        self._read_scan = self._read_pos
        self._try_inline_read()
        return future

    def read_until_regex(
        self, regex: bytes | re.Pattern[bytes], max_bytes: int | None = None
    ) -> Future[bytes]:
        """Read up to and including the end of the first match of ``regex``.

        The regex is searched in the unread data only (``^`` and ``\\A``
        match where that data starts). ``max_bytes`` as in :meth:`read_until`.
        """
        future = self._start_read()
        self._read_kind = _REGEX
        self._read_regex = re.compile(regex)
        self._read_max_bytes = max_bytes
        self._try_inline_read()
        return future

    def read_until_close(self) -> Future[bytes]:
        """Read everything until the peer closes (or the stream is closed).

        Resolves with all the data, even if the stream closed on an error
        (which is then in :attr:`error`). The end of input closes the stream,
        as any end of input does (the close callback runs); to answer a peer
        that only shut down its sending side, use :meth:`start_reading`.
        """
        future = self._start_read()
        self._read_kind = _CLOSE
        self._try_inline_read()
        return future

    def read_into(self, buf: bytearray | memoryview, partial: bool = False) -> Future[int]:
        """Read into ``buf`` (any writable buffer) until it is full; with
        ``partial``, resolve as soon as at least one byte is in it. Resolves
        with the number of bytes read.

        Buffered bytes are copied in first; the rest is read from the fd
        directly into ``buf``, which must not be used until the future
        resolves. If the stream closes first, the bytes already in ``buf``
        are also kept for later reads; if the read is cancelled, they are not.
        """
        future = self._start_read()
        target = memoryview(buf)
        if target.readonly:
            self._clear_read()
            raise TypeError("read_into needs a writable buffer")
        if target.format != "B" or target.ndim != 1:
            target = target.cast("B")
        size = len(target)
        pos = self._read_pos
        available = len(self._read_buffer) - pos
        n = available if available < size else size
        if n < size and not (partial and n) and (self._closed or self._eof):
            self._clear_read()
            raise StreamClosedError(real_error=self.error)
        if n:
            with memoryview(self._read_buffer) as view:
                target[:n] = view[pos : pos + n]
            self._advance(n)
        if n == size or (partial and n):
            self._clear_read()
            future.set_result(n)
            return future
        self._read_kind = _INTO
        self._read_target = target
        self._read_filled = n
        self._read_partial = partial
        self._read_more()
        return future

    def start_reading(self, callback: Callable[[Any], object], views: bool = False) -> None:
        """Hand every piece of data to ``callback(data)`` as it arrives, until
        :meth:`stop_reading` or the close.

        The push counterpart of the ``read_*`` methods, for protocols that
        parse bytes as they come (the HTTP/1.1 server feeds llhttp this way):
        no future per read, one call per ``recv``. Bytes already buffered are
        handed over first, within this call. On a socket, end of input is
        ``callback(b"")``, once, and the stream stays open for writing (the
        peer may have only half-closed): closing it is then up to the caller.
        On a pipe, end of input closes the stream. An exception from
        ``callback`` is logged and closes the stream. Raises RuntimeError if
        a ``read_*`` is pending.

        ``views=True`` saves a copy per read: the callback then gets a
        memoryview of the thread's shared read chunk, valid only until it
        returns (a parser that copies what it keeps can take it as it is).
        The view stays intact while the callback runs, even if the callback
        reads from this or other streams meanwhile: those reads go to another
        buffer.
        """
        if self.reading():
            raise RuntimeError("a read is pending: start_reading needs the stream to itself")
        self._read_callback = callback
        self._read_views = views
        buf = self._read_buffer
        if len(buf) > self._read_pos:
            data = bytes(buf[self._read_pos :])
            del buf[:]
            self._read_pos = 0
            callback(data)
        if not self._closed and self._read_callback is not None:
            self._update_events()

    def stop_reading(self) -> None:
        """Stop :meth:`start_reading`'s deliveries (to pause, or to go back to
        ``read_*``). At most one more chunk is then read from the fd, into
        the buffer, before the stream stops reading (flow control)."""
        self._read_callback = None
        if not self._closed:
            self._update_events()

    def reading(self) -> bool:
        """True while a read is pending."""
        return self._read_future is not None and not self._read_future.done()

    def _start_read(self) -> Future[Any]:
        future = self._read_future
        if future is not None:
            if not future.done():
                raise RuntimeError(
                    "Already reading: a stream allows one read at a time; "
                    "await the pending read before starting another"
                )
            self._clear_read()  # the caller cancelled it
        future = self._read_future = _new_future()
        return future

    def _clear_read(self) -> Future[Any] | None:
        """Forget the pending read; return its future if it is still pending."""
        future = self._read_future
        self._read_future = None
        self._read_kind = 0
        self._read_regex = None
        self._read_target = None
        if future is None or future.done():
            return None
        return future

    def _try_inline_read(self) -> None:
        """Complete the new read from the buffer or the fd, else wait for READ."""
        try:
            k = self._find_read()
        except UnsatisfiableReadError as e:
            self._unsatisfiable(e)
            return
        if k >= 0:
            self._finish_read(k)
        else:
            self._read_more()

    def _read_more(self) -> None:
        """The buffer cannot complete the new read: read the fd, or wait for READ."""
        if self._closed or self._eof:
            if self._read_kind == _CLOSE:
                self._finish_read(len(self._read_buffer) - self._read_pos)
                return
            self._clear_read()
            raise StreamClosedError(real_error=self.error)
        if self._opening:
            self._update_events()
            return
        events = self._events
        if self._drained and events is not None and events & _READ:
            # The last recv found nothing and READ is registered: the loop
            # will report new data, so an inline recv would most likely fail.
            # (Nothing to re-register either: READ is all a read needs.)
            return
        self._handle_read(False)
        if self._read_future is not None and not self._closed:
            self._update_events()

    def _find_read(self) -> int:
        """How many buffered bytes complete the pending read, or -1.

        Raises UnsatisfiableReadError if it cannot complete within max_bytes.
        """
        buf = self._read_buffer
        pos = self._read_pos
        available = len(buf) - pos
        kind = self._read_kind
        if kind == _BYTES:
            if available >= self._read_bytes:
                return self._read_bytes
            if self._read_partial and available:
                return available
            return -1
        if kind == _UNTIL:
            delimiter = self._read_delimiter
            max_bytes = self._read_max_bytes
            start = self._read_scan if self._read_scan > pos else pos
            if max_bytes is None:
                i = buf.find(delimiter, start)
            else:
                i = buf.find(delimiter, start, pos + max_bytes)
            if i >= 0:
                return i - pos + len(delimiter)
            if max_bytes is not None and available >= max_bytes:
                raise UnsatisfiableReadError(
                    f"delimiter {delimiter!r} not found within {max_bytes} bytes"
                )
            # A later search only needs to look at the last bytes again.
            rescan = len(buf) - len(delimiter) + 1
            self._read_scan = rescan if rescan > pos else pos
            return -1
        if kind == _REGEX:
            assert self._read_regex is not None
            max_bytes = self._read_max_bytes
            if pos:
                self._compact()
            match = self._read_regex.search(buf)
            if match is not None:
                end = match.end()
                if max_bytes is not None and end > max_bytes:
                    raise UnsatisfiableReadError(
                        f"regex {self._read_regex.pattern!r} not matched within {max_bytes} bytes"
                    )
                return end
            if max_bytes is not None and available > max_bytes:
                raise UnsatisfiableReadError(
                    f"regex {self._read_regex.pattern!r} not matched within {max_bytes} bytes"
                )
            return -1
        return -1  # _CLOSE completes at end of input only

    def _finish_read(self, k: int) -> None:
        """Resolve the pending read with the next ``k`` buffered bytes."""
        future = self._clear_read()
        if future is None:
            return  # cancelled: the data stays for the next read
        buf = self._read_buffer
        pos = self._read_pos
        if pos + k == len(buf):
            if pos:
                with memoryview(buf) as view:
                    data = view[pos:].tobytes()
            else:
                data = bytes(buf)
            buf.clear()
            self._read_pos = 0
        else:
            with memoryview(buf) as view:
                data = view[pos : pos + k].tobytes()
            self._advance(k)
        future.set_result(data)

    def _advance(self, k: int) -> None:
        """Mark ``k`` buffered bytes consumed; compact lazily."""
        buf = self._read_buffer
        pos = self._read_pos + k
        if pos == len(buf):
            buf.clear()
            pos = 0
        elif pos >= _COMPACT_AFTER and pos > len(buf) >> 1:
            del buf[:pos]
            self._read_scan -= pos
            pos = 0
        self._read_pos = pos

    def _compact(self) -> None:
        pos = self._read_pos
        del self._read_buffer[:pos]
        self._read_scan = max(0, self._read_scan - pos)
        self._read_pos = 0

    def _unsatisfiable(self, error: UnsatisfiableReadError) -> None:
        """The pending read cannot complete within its max_bytes: log and
        close, as Tornado does; the read fails with the StreamClosedError
        whose ``real_error`` is ``error``."""
        gen_log.info("Unsatisfiable read, closing connection: %s", error)
        self.close(exc_info=error)

    def _fail_read(self, error: BaseException) -> None:
        """Fail the pending read with ``error`` (a limit was hit) and close."""
        future = self._clear_read()
        if future is not None:
            future.set_exception(error)
        self.close(exc_info=error)

    def _handle_read(self, drain: bool) -> None:
        """Read from the fd; ``drain`` (the fd reported ERROR): until it is empty."""
        if self._eof:
            return
        try:
            if self._read_callback is not None:
                self._pump_stream(drain)
            elif self._read_kind == _INTO:
                self._pump_into(drain)
            else:
                self._pump(drain)
        except OSError as e:
            self._lost(e)

    def _pump(self, drain: bool) -> None:
        """Read into the buffer while that is useful, completing the pending read.

        Without a pending read (and without ``drain``) one chunk is read and
        kept for the next read; _update_events stops reading once a chunk is
        buffered.
        """
        buf = self._read_buffer
        chunk_size = self._chunk_size
        chunk = self._chunk.chunk
        if chunk is None:  # lent to a start_reading callback up the stack
            chunk = _fresh_chunk(chunk_size)
        view = chunk[1]
        recv = self._recv
        would_block = self._would_block
        while True:
            available = len(buf) - self._read_pos
            room = self.max_buffer_size - available
            if room <= 0:
                if self._read_future is not None:
                    self._fail_read(
                        StreamBufferFullError(
                            f"the pending read needs more than max_buffer_size "
                            f"({self.max_buffer_size} bytes)"
                        )
                    )
                return
            asked = chunk_size if room >= chunk_size else room
            try:
                n = recv(view if asked == chunk_size else view[:asked])
            except would_block:
                n = None
            if n is None:
                self._drained = True
                return
            if not n:
                self._on_eof()
                return
            self._drained = n < asked and self._short_read_drains
            future = self._read_future
            if future is not None:
                kind = self._read_kind
                if not available and kind <= _UNTIL:
                    # Nothing buffered: cut the result from the chunk itself.
                    if kind == _BYTES:
                        k = self._read_bytes
                        if n < k:
                            k = n if self._read_partial else 0
                    else:
                        k = self._chunk_until(chunk[0], n)
                    if k > 0:
                        self._read_future = None
                        self._read_kind = 0
                        if future.done():  # cancelled: keep everything
                            buf += view[:n]
                        else:
                            future.set_result(view[:k].tobytes())
                            if k < n:
                                buf += view[k:n]
                        if drain:
                            continue
                        return
                buf += view[:n]
                try:
                    k = self._find_read()
                except UnsatisfiableReadError as e:
                    self._unsatisfiable(e)
                    return
                if k >= 0:
                    self._finish_read(k)
                    if not drain:
                        return
            else:
                buf += view[:n]
                if not drain:
                    return
            if self._drained and not drain:
                return

    def _pump_stream(self, drain: bool) -> None:
        """start_reading's reads: each chunk straight to the callback.

        With views, the callback is lent the shared chunk: it is taken out
        of the thread's hands while the callback runs, so that a read the
        callback makes (on any stream, this one included) cannot overwrite
        what it is being shown; such a read gets a chunk of its own.
        """
        size = self._chunk_size
        shared = self._chunk
        chunk = shared.chunk  # None while lent further up the stack
        view = (chunk if chunk is not None else _fresh_chunk(size))[1]
        recv = self._recv
        would_block = self._would_block
        while True:
            try:
                n = recv(view)
            except would_block:
                n = None
            if n is None:
                self._drained = True
                return
            if not n:
                callback = self._read_callback
                if callback is not None and self._keep_open_after_eof:
                    self._eof = True  # a half-close: the callback decides
                    callback(b"")
                else:
                    self._on_eof()
                return
            callback = self._read_callback
            if callback is None:  # stopped while this chunk was on its way
                self._read_buffer += view[:n]
                return
            if self._read_views:
                shared.chunk = None
                try:
                    callback(view[:n])
                finally:
                    shared.chunk = chunk
            else:
                callback(view[:n].tobytes())
            if self._closed or self._read_callback is None:
                return
            if n < size and self._short_read_drains and not drain:
                self._drained = True
                return

    def _chunk_until(self, chunk: bytearray, n: int) -> int:
        """Like _find_read for read_until, over the first ``n`` bytes of the
        read chunk (the buffer being empty); 0 if they do not do."""
        delimiter = self._read_delimiter
        i = chunk.find(delimiter, 0, n)
        if i < 0:
            return 0
        k = i + len(delimiter)
        max_bytes = self._read_max_bytes
        if max_bytes is not None and k > max_bytes:
            return 0  # _find_read raises the error
        return k

    def _pump_into(self, drain: bool) -> None:
        """read_into's reads, straight into the caller's buffer."""
        target = self._read_target
        assert target is not None
        filled = self._read_filled
        size = len(target)
        recv = self._recv
        would_block = self._would_block
        while True:
            asked = size - filled
            try:
                n = recv(target[filled:])
            except would_block:
                n = None
            if n is None:
                self._drained = True
                break
            if not n:
                self._read_filled = filled
                self._on_eof()
                return
            filled += n
            self._drained = n < asked and self._short_read_drains
            if filled == size or self._read_partial:
                future = self._clear_read()
                if future is not None:
                    future.set_result(filled)
                if drain:
                    self._pump(drain)
                return
            if self._drained:
                break
        self._read_filled = filled

    def _on_eof(self) -> None:
        """The fd reported end of input: close (which resolves a pending
        read_until_close with what was buffered)."""
        self._eof = True
        self.close()

    # -- writing -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> Future[None]:
        """Write ``data``; the future resolves once it (and everything written
        before it) has been handed to the kernel. When the kernel takes it all
        at once, that is a shared future that is already resolved.

        Whatever the kernel does not take at once is queued without copying
        (a view of ``data``), so a bytearray or memoryview passed here must
        not be changed until the future resolves. Raises
        :class:`StreamClosedError` if the stream is closed, and
        :class:`StreamBufferFullError` (the stream stays usable) if the queued
        bytes plus ``data`` would exceed ``max_write_buffer_size``. If the
        stream closes before the data is written, the future fails with
        :class:`StreamClosedError`.
        """
        if self._closed:
            raise StreamClosedError(real_error=self.error)
        if type(data) is memoryview and (data.format != "B" or data.ndim != 1):
            data = data.cast("B")
        size = len(data)
        queued = self._write_buffer_size
        if not size:
            if not queued:
                return _done_future()
            future: Future[None] = _new_future()
            self._waiting_writes().append((self._write_queued, future))
            return future
        limit = self.max_write_buffer_size
        if limit is not None and queued + size > limit:
            raise StreamBufferFullError(
                f"writing {size} bytes would exceed max_write_buffer_size ({limit} bytes; "
                f"{queued} are waiting); wait for earlier writes first"
            )
        self._write_queued += size
        if not queued and not self._opening:
            try:
                n = self._send(data)
            except self._would_block:
                n = 0
            except OSError as e:
                self._lost(e)
                future = _new_future()
                self._fail(future)
                return future
            self._write_done += n
            if n == size:
                return _done_future()
            if n:
                data = memoryview(data)[n:]
                size -= n
        self._queue(data, size)
        future = _new_future()
        self._waiting_writes().append((self._write_queued, future))
        self._update_events()
        return future

    def writing(self) -> bool:
        """True while written data waits to be handed to the kernel."""
        return bool(self._write_buffer_size)

    def _waiting_writes(self) -> collections.deque[tuple[int, Future[None]]]:
        if self._write_futures is _NO_QUEUE:
            self._write_futures = collections.deque()
        return self._write_futures

    def _queue(self, data: bytes | bytearray | memoryview, size: int) -> None:
        chunks = self._write_chunks
        if chunks is _NO_QUEUE:
            chunks = self._write_chunks = collections.deque()
        self._write_buffer_size += size
        if size < _COALESCE_BELOW:
            if chunks:
                tail = chunks[-1]
                if type(tail) is bytearray:
                    if len(chunks) == 1 and self._write_pos >= _COMPACT_AFTER:
                        del tail[: self._write_pos]
                        self._write_pos = 0
                    tail += data
                    return
            chunks.append(bytearray(data))
        elif type(data) is memoryview:
            chunks.append(data)
        else:
            chunks.append(memoryview(data))

    def _flush(self) -> None:
        """Hand queued data to the kernel until it is all gone or the fd is full."""
        chunks = self._write_chunks
        send = self._send
        would_block = self._would_block
        pos = self._write_pos
        done = self._write_done
        try:
            while chunks:
                head = chunks[0]
                try:
                    if type(head) is bytearray:
                        with memoryview(head) as view:
                            n = send(view[pos:] if pos else view)
                    else:
                        n = send(head[pos:] if pos else head)
                except would_block:
                    n = 0
                if not n:
                    break
                done += n
                self._write_buffer_size -= n
                pos += n
                if pos == len(head):
                    chunks.popleft()
                    pos = 0
                else:
                    break  # a short write: the fd is full
        except OSError as e:
            self._write_pos = pos
            self._write_done = done
            self._lost(e)
            return
        self._write_pos = pos
        self._write_done = done
        futures = self._write_futures
        while futures and futures[0][0] <= done:
            future = futures.popleft()[1]
            if not future.done():
                future.set_result(None)

    # -- events, opening, closing ----------------------------------------------

    def _handle_events(self, fd: Any, events: int) -> None:
        if self._closed:
            return
        try:
            if self._opening:
                self._handle_opening(events)
            else:
                if events & (_READ | _ERROR) and not self._eof:
                    try:
                        if self._read_callback is not None:
                            self._pump_stream(bool(events & _ERROR))
                        elif self._read_kind == _INTO:
                            self._pump_into(bool(events & _ERROR))
                        else:
                            self._pump(bool(events & _ERROR))
                    except OSError as e:
                        self._lost(e)
                if events & _WRITE and self._write_buffer_size and not self._closed:
                    self._flush()
                if events & _ERROR and not self._closed:
                    # Nothing above explained it (EOF or an error would have
                    # closed us): a hang-up or error the peer will not fix.
                    self.close(exc_info=self.get_fd_error())
                    return
            if not self._closed:
                self._update_events()
        except Exception as e:
            gen_log.error("Uncaught exception in %r; closing it", self, exc_info=True)
            self.close(exc_info=e)

    def _handle_opening(self, events: int) -> None:
        """An event while connecting (or shaking hands); subclasses handle it."""

    def _opening_events(self) -> int:
        """The events to wait for while opening."""
        return 0

    def _opened(self) -> None:
        """The connection is ready: run the I/O that waited for it."""
        self._opening = False
        self._drained = False
        if self._write_buffer_size:
            self._flush()
        if (self._read_future is not None or self._read_callback is not None) and not (
            self._closed
        ):
            self._handle_read(False)
        if not self._closed:
            self._update_events()

    def _update_events(self) -> None:
        """Register the fd for what the stream waits for now."""
        if self._opening:
            events = self._opening_events()
        else:
            events = _WRITE if self._write_buffer_size else 0
            if not self._eof and (
                self._read_future is not None
                or self._read_callback is not None
                or (
                    len(self._read_buffer) - self._read_pos < self._chunk_size
                    and (
                        self._close_callback is not None
                        or (self._events is not None and self._events & _READ)
                    )
                )
            ):
                # A pending read; or idle, with less than a chunk buffered:
                # stay registered, which notices a close (even right after
                # some last data) and spares re-registering for the next read.
                # A chunk of unrequested data stops reading (flow control).
                events |= _READ
        current = self._events
        if events != current:
            if current is None:
                if not events:
                    return
                self.io_loop.add_handler(self, self._handle_events, events)
            else:
                self.io_loop.update_handler(self, events)
            self._events = events

    def _lost(self, error: OSError) -> None:
        """A read or write failed: close with ``error``."""
        if error.errno not in _CONNECTION_LOST and not isinstance(error, ssl.SSLError):
            gen_log.warning("I/O error on %r: %s", self, error)
        self.close(exc_info=error)

    def _fail(self, future: Future[Any]) -> None:
        if not future.done():
            future.set_exception(StreamClosedError(real_error=self.error))
            future.exception()  # counted as seen: the close is reported anyway

    def close(self, exc_info: _ExcInfo = False) -> None:
        """Close the stream and its fd; closing again does nothing.

        ``exc_info``: True takes the exception being handled
        (``sys.exc_info()``); an exception or an exc_info tuple is taken as
        given. It becomes :attr:`error`, the ``real_error`` of the
        :class:`StreamClosedError` raised from then on. Pending writes fail;
        a pending read fails too, except :meth:`read_until_close`, which
        resolves with what was buffered when the close is clean or a
        connection reset (a peer that closes with data unread resets), and
        fails for any other error, so that a body cut short never looks
        complete (as in Tornado). Buffered data stays readable. The
        close callback, if any, runs on the next loop iteration.
        """
        if self._closed:
            return
        if exc_info:
            if isinstance(exc_info, tuple):
                error = exc_info[1]
            elif isinstance(exc_info, BaseException):
                error = exc_info
            else:
                error = sys.exc_info()[1]
            if error is not None:
                self.error = error
        self._closed = True
        self._read_callback = None
        if self._events is not None:
            self.io_loop.remove_handler(self)
            self._events = None
        try:
            self.close_fd()
        except OSError:
            gen_log.debug("error closing %r", self, exc_info=True)
        if self._read_future is not None:
            if self._read_kind == _CLOSE and _clean_close(self.error):
                self._finish_read(len(self._read_buffer) - self._read_pos)
            else:
                target = self._read_target
                if target is not None and self._read_filled:
                    # read_into's bytes so far: back into the buffer, for
                    # the reads that may follow (the data is never lost).
                    pos = self._read_pos
                    self._read_buffer[pos:pos] = target[: self._read_filled]
                future = self._clear_read()
                if future is not None:
                    self._fail(future)
        for _, future in self._write_futures:
            self._fail(future)
        if self._write_futures:
            self._write_futures.clear()
        if self._write_chunks:
            self._write_chunks.clear()
        self._write_buffer_size = 0
        self._fail_opening()
        callback = self._close_callback
        if callback is not None:
            self._close_callback = None
            self.io_loop.add_callback(callback)
        hook = self._close_hook
        if hook is not None:
            self._close_hook = None
            hook(self)

    def _fail_opening(self) -> None:
        future = self._connect_future
        if future is not None:
            self._connect_future = None
            self._fail(future)

    def closed(self) -> bool:
        """True once the stream is closed (by either side, or by an error)."""
        return self._closed

    def set_close_callback(self, callback: Callable[[], Any] | None) -> None:
        """Call ``callback()`` once, on the loop, when the stream closes; at
        once (on the next iteration) if it is closed already.

        While a callback is set, an idle stream watches its fd so that a
        peer's close is noticed even when nothing is being read.
        """
        self._close_callback = callback
        if callback is None:
            return
        if self._closed:
            self._close_callback = None
            self.io_loop.add_callback(callback)
        else:
            self._update_events()

    def set_nodelay(self, value: bool) -> None:
        """Disable (True) or re-enable Nagle's algorithm where that applies
        (TCP sockets); a no-op elsewhere."""

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        try:
            fd = self.fileno()
        except Exception:
            fd = -1
        return f"<{type(self).__name__} fd={fd} {state}>"


class IOStream(BaseIOStream):
    """A stream over a socket.

    ``socket`` is made non-blocking. If it is not connected yet, call
    :meth:`connect`; reads and writes started before then wait for it.
    """

    __slots__ = (
        "_connecting",
        "_fd",
        "socket",
    )

    _keep_open_after_eof = True
    _would_block: tuple[type[BaseException], ...] = (BlockingIOError,)

    def __init__(self, socket: socket_module.socket, *args: Any, **kwargs: Any) -> None:
        self.socket = socket
        self.socket.setblocking(False)
        self._fd = socket.fileno()
        self._connecting = False
        super().__init__(*args, **kwargs)
        try:
            socket.getpeername()
        except OSError:
            # Not connected: a socket that connect() will connect, or an
            # accepted connection its peer reset before we got to it (it
            # sent a request and closed with SO_LINGER 0). The latter holds
            # its reset in SO_ERROR: it must be watched like any other, or
            # its fd is never closed; the first read then sees the end.
            code = socket.getsockopt(socket_module.SOL_SOCKET, socket_module.SO_ERROR)
            if code:
                self.error = OSError(code, os.strerror(code))
            else:
                self._opening = True  # nothing to watch until connect()

    def fileno(self) -> int:
        return self._fd

    def close_fd(self) -> None:
        self.socket.close()

    def read_from_fd(self, buf: memoryview) -> int | None:
        try:
            return self.socket.recv_into(buf)
        except BlockingIOError:
            return None

    def write_to_fd(self, data: memoryview | bytes | bytearray) -> int:
        try:
            return self.socket.send(data)
        except BlockingIOError:
            return 0

    def _bind_io(self) -> None:
        super()._bind_io()
        cls = type(self)
        if cls.read_from_fd is _direct_io(cls).read_from_fd:
            self._recv = self.socket.recv_into
        if cls.write_to_fd is _direct_io(cls).write_to_fd:
            self._send = self.socket.send

    def get_fd_error(self) -> BaseException | None:
        try:
            code = self.socket.getsockopt(socket_module.SOL_SOCKET, socket_module.SO_ERROR)
        except OSError as e:
            return e
        return OSError(code, os.strerror(code)) if code else None

    def set_nodelay(self, value: bool) -> None:
        if self._closed or self.socket.family not in (
            socket_module.AF_INET,
            socket_module.AF_INET6,
        ):
            return
        try:
            self.socket.setsockopt(
                socket_module.IPPROTO_TCP, socket_module.TCP_NODELAY, 1 if value else 0
            )
        except OSError as e:
            # EINVAL: the peer already closed (seen on macOS); nothing to tune.
            if e.errno != errno.EINVAL:
                raise

    def connect(self: _S, address: Any, server_hostname: str | None = None) -> Future[_S]:
        """Connect the socket to ``address``; the future resolves to the stream.

        Reads and writes may be started before it resolves; they run once
        connected. If the connection fails, the future (and they) fail with
        :class:`StreamClosedError` whose ``real_error`` says why (e.g.
        ConnectionRefusedError). ``server_hostname`` is for
        :class:`SSLIOStream` (SNI and certificate checking); a plain stream
        ignores it.
        """
        if self._closed:
            raise StreamClosedError(real_error=self.error)
        if self._connecting or not self._opening:
            raise RuntimeError(f"{self!r} is already connected or connecting")
        future: Future[_S] = _new_future()
        self._connect_future = future
        self._connecting = True
        try:
            self.socket.connect(address)
        except BlockingIOError:
            pass  # EINPROGRESS: writability will tell
        except OSError as e:
            self.close(exc_info=e)  # reported through the future
            return future
        self._update_events()
        return future

    def _opening_events(self) -> int:
        return _WRITE if self._connecting else 0

    def _handle_opening(self, events: int) -> None:
        if not self._connecting:
            return
        error = self.get_fd_error()
        if error is not None:
            self.close(exc_info=error)
            return
        self._connecting = False
        self._tcp_connected()

    def _tcp_connected(self) -> None:
        """The TCP connection is up."""
        future = self._connect_future
        self._connect_future = None
        if future is not None and not future.done():
            future.set_result(self)
        self._opened()

    def start_tls(
        self,
        server_side: bool,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Future[SSLIOStream]:
        """Turn this connection into TLS (STARTTLS); resolves to a new
        :class:`SSLIOStream` once the handshake is done, or fails with the
        handshake's error (see :meth:`SSLIOStream.wait_for_handshake`).

        This stream is finished: it counts as closed afterwards (without
        closing the socket), and its close callback moves to the new stream.
        It must be idle: no pending read or write and nothing buffered,
        else ValueError. ``ssl_options``: an :class:`ssl.SSLContext` or a
        dict of ``certfile``, ``keyfile``, ``cert_reqs``, ``ca_certs``,
        ``ciphers``, ``ssl_version``; clients default to the system's trusted
        CAs with hostname checking, servers need a certificate.
        ``server_hostname`` (client side) is sent as SNI and checked against
        the server's certificate.
        """
        if self._closed:
            raise StreamClosedError(real_error=self.error)
        if self._read_future is not None and self._read_future.done():
            self._clear_read()  # cancelled
        if (
            self._read_future is not None
            or self._write_buffer_size
            or self._write_futures
            or self._opening
            or self._read_pos != len(self._read_buffer)
        ):
            raise ValueError(
                "IOStream is not idle (pending I/O or buffered data); cannot start TLS"
            )
        context = _ssl_context(ssl_options, server_side)
        if not server_side:
            _check_server_hostname(context, server_hostname)
        if self._events is not None:
            self.io_loop.remove_handler(self)
            self._events = None
        callback = self._close_callback
        self._close_callback = None
        self._closed = True  # the socket now belongs to the TLS stream
        try:
            ssl_socket = context.wrap_socket(
                self.socket,
                server_side=server_side,
                server_hostname=None if server_side else server_hostname,
                do_handshake_on_connect=False,
            )
        except BaseException:
            self.socket.close()
            raise
        stream = SSLIOStream(
            ssl_socket,
            ssl_options=context,
            max_buffer_size=self.max_buffer_size,
            read_chunk_size=self.read_chunk_size,
            max_write_buffer_size=self.max_write_buffer_size,
        )
        if callback is not None:
            stream.set_close_callback(callback)
        return stream.wait_for_handshake()


class SSLIOStream(IOStream):
    """A stream over TLS.

    ``socket`` is either an :class:`ssl.SSLSocket` wrapped with
    ``do_handshake_on_connect=False`` (typically accepted by a server; the
    handshake starts at once), or a plain unconnected socket for
    :meth:`connect` (client side; it is wrapped once connected). For an
    established plain connection use :meth:`IOStream.start_tls`.
    ``ssl_options`` as in :meth:`IOStream.start_tls`.

    Reads and writes started during the handshake wait for it. A failed
    handshake closes the stream. As in Tornado, the handshake's own futures
    (:meth:`connect`, :meth:`wait_for_handshake`, :meth:`IOStream.start_tls`)
    then fail with the error itself (an :class:`ssl.SSLError`; an
    :class:`ssl.SSLCertVerificationError` for a certificate or hostname that
    does not check out), and pending reads and writes with
    :class:`StreamClosedError` whose ``real_error`` it is. The end of input
    always closes a TLS stream.
    """

    __slots__ = (
        "_handshake_done",
        "_handshake_events",
        "_handshake_future",
        "_server_hostname",
        "_ssl_accepting",
        "_ssl_context",
        "_ssl_options",
    )

    _keep_open_after_eof = False
    _short_read_drains = False
    _would_block = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)

    def __init__(
        self,
        socket: socket_module.socket,
        *args: Any,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> None:
        self._ssl_options = ssl_options
        self._ssl_context: ssl.SSLContext | None = None
        self._server_hostname: str | None = None
        self._ssl_accepting = False
        self._handshake_done = False
        self._handshake_events = _READ
        self._handshake_future: Future[SSLIOStream] | None = None
        super().__init__(socket, *args, **kwargs)
        if not self._opening:  # connected already
            if not isinstance(socket, ssl.SSLSocket):
                raise ValueError(
                    "SSLIOStream needs an ssl.SSLSocket (wrapped with "
                    "do_handshake_on_connect=False) or an unconnected socket to "
                    "connect(); for a connected plain socket use IOStream.start_tls"
                )
            self._opening = True
            self._ssl_accepting = True
            self._do_handshake()

    def read_from_fd(self, buf: memoryview) -> int | None:
        try:
            return self.socket.recv_into(buf)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return None

    def write_to_fd(self, data: memoryview | bytes | bytearray) -> int:
        try:
            return self.socket.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            # SSL_write must be retried with the same bytes: _flush does,
            # since nothing counts as written.
            return 0

    def connect(self: _SSLS, address: Any, server_hostname: str | None = None) -> Future[_SSLS]:
        """Connect, then shake hands as the client; resolves to the stream
        once the handshake is done, or fails as :meth:`wait_for_handshake`
        does (with the ssl.SSLError, or e.g. the ConnectionRefusedError).
        ``server_hostname`` is sent as SNI and checked against the
        certificate (required when the context checks hostnames, as the
        default one does)."""
        if isinstance(self.socket, ssl.SSLSocket):
            raise ValueError("SSLIOStream.connect needs a plain socket: it wraps it itself")
        context = _ssl_context(self._ssl_options, server_side=False)
        _check_server_hostname(context, server_hostname)
        self._ssl_context = context
        self._server_hostname = server_hostname
        return super().connect(address, server_hostname)

    def wait_for_handshake(self) -> Future[SSLIOStream]:
        """A future that resolves to the stream once the TLS handshake is
        done. If the handshake fails, it fails with what closed the stream
        (as in Tornado: the :class:`ssl.SSLError`, a ConnectionResetError...),
        or with :class:`StreamClosedError` if the stream was just closed."""
        future = self._handshake_future
        if future is None:
            future = self._handshake_future = _new_future()
            if self._handshake_done:
                future.set_result(self)
            elif self._closed:
                self._fail_handshake(future)
        return future

    def _opening_events(self) -> int:
        if self._connecting:
            return _WRITE
        return self._handshake_events if self._ssl_accepting else 0

    def _handle_opening(self, events: int) -> None:
        if self._connecting:
            super()._handle_opening(events)
        elif self._ssl_accepting:
            self._do_handshake()

    def _tcp_connected(self) -> None:
        context = self._ssl_context
        assert context is not None
        try:
            self.socket = context.wrap_socket(
                self.socket,
                server_hostname=self._server_hostname,
                do_handshake_on_connect=False,
            )
        except (OSError, ValueError) as e:
            self.close(exc_info=e)
            return
        self._bind_io()  # the socket's methods, now the SSLSocket's
        self._ssl_accepting = True
        self._do_handshake()

    def _do_handshake(self) -> None:
        sock = self.socket
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._handshake_events = _READ
        except ssl.SSLWantWriteError:
            self._handshake_events = _WRITE
        except (OSError, ValueError) as e:
            # ssl.SSLError (and SSLCertVerificationError) is an OSError, as
            # is a reset or EOF from the peer mid-handshake.
            gen_log.debug("TLS handshake failed on %r: %s", self, e)
            self.close(exc_info=e)
            return
        else:
            self._ssl_accepting = False
            self._handshake_done = True
            for future in (self._connect_future, self._handshake_future):
                if future is not None and not future.done():
                    future.set_result(self)
            self._connect_future = None
            self._opened()
            return
        self._update_events()

    def _fail_opening(self) -> None:
        # connect()'s future is the handshake's here: both fail with the
        # error itself, as in Tornado.
        future = self._connect_future
        self._connect_future = None
        if future is not None:
            self._fail_handshake(future)
        future = self._handshake_future
        if future is not None:
            self._fail_handshake(future)

    def _fail_handshake(self, future: Future[Any]) -> None:
        if not future.done():
            error = self.error
            future.set_exception(error if error is not None else StreamClosedError())
            future.exception()  # counted as seen: the close is reported anyway


class PipeIOStream(BaseIOStream):
    """A stream over one end of a pipe (or another non-socket fd), e.g. a
    subprocess's stdin or stdout. ``fd`` is made non-blocking; the stream
    owns it and closes it. The end of input always closes a pipe stream."""

    __slots__ = (
        "_write_only",
        "fd",
    )

    def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        # A pipe's write end cannot be read: on ERROR (its reader is gone)
        # there is nothing to drain, only EPIPE to report.
        self._write_only = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
        super().__init__(*args, **kwargs)
        self._eof = self._write_only  # no input, ever

    def fileno(self) -> int:
        return self.fd

    def get_fd_error(self) -> BaseException | None:
        if self._write_only:
            return BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        return None

    def close_fd(self) -> None:
        os.close(self.fd)

    def read_from_fd(self, buf: memoryview) -> int | None:
        try:
            return os.readv(self.fd, (buf,))
        except BlockingIOError:
            return None

    def write_to_fd(self, data: memoryview | bytes | bytearray) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0


# -- TLS settings ------------------------------------------------------------------


def _ssl_context(
    options: dict[str, Any] | ssl.SSLContext | None, server_side: bool
) -> ssl.SSLContext:
    """An SSLContext for ``options``: a context as given, or one built from
    Tornado's dict keys; None means the system defaults (clients only)."""
    if isinstance(options, ssl.SSLContext):
        return options
    if options is None:
        if server_side:
            raise ValueError(
                "a server-side TLS stream needs ssl_options with a certificate: an "
                "ssl.SSLContext, or {'certfile': ..., 'keyfile': ...}"
            )
        return _default_client_context()
    return ssl_options_to_context(options, server_side=server_side)


@functools.cache
def _default_client_context() -> ssl.SSLContext:
    """The system's trusted CAs, with hostname checking; made once (loading
    the CA store takes milliseconds) and shared, as contexts may be."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


def _direct_io(cls: type[IOStream]) -> type[IOStream]:
    """The class whose read_from_fd/write_to_fd are plain calls of the socket
    methods (so that _bind_io may call those directly): SSLIOStream for TLS
    streams, IOStream for the others."""
    return SSLIOStream if issubclass(cls, SSLIOStream) else IOStream


def _check_server_hostname(context: ssl.SSLContext, server_hostname: str | None) -> None:
    if context.check_hostname and not server_hostname:
        raise ValueError(
            "this TLS context checks hostnames: pass server_hostname (the name the "
            "certificate must match), or use a context with check_hostname=False"
        )
