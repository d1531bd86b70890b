"""The standard library's transports, servers and subprocesses on a native loop's asyncio face.

Some facts about asyncio's transport code (CPython 3.10 to 3.13, read from
``asyncio/selector_events.py``, ``unix_events.py``, ``base_events.py``,
``sslproto.py``, ``base_subprocess.py`` and ``staggered.py``):

- The socket and datagram transports (``_SelectorSocketTransport``,
  ``_SelectorDatagramTransport``), the pipe transports of ``unix_events``,
  :class:`asyncio.sslproto.SSLProtocol` (``ssl=`` and ``start_tls``) and the
  subprocess transport ask their loop for very little: ``_add_reader`` /
  ``_remove_reader`` / ``_add_writer`` / ``_remove_writer`` (a handle back
  from the adds, a bool from the removes), ``call_soon``, ``call_later``,
  ``time``, ``create_future``, ``create_task``, ``get_debug``,
  ``is_closed``, ``call_exception_handler``, and a ``_transports`` mapping
  of fd to transport that ``add_reader`` & co. consult
  (``_ensure_fd_no_transport``) so that user code cannot steal a
  transport's fd. They read, write and close their sockets themselves.
- The one other thing a transport reads from its loop is ``_selector``, and
  only in its ``repr()`` (``selector.get_key(fd).events``, KeyError when the
  fd is not watched). A repr that raises would break every log line that
  names a transport, so the face offers :class:`SelectorView`, the
  ``get_key`` of its own fd table, and nothing else of a selector.
- The high-level methods (``create_connection`` with happy eyeballs,
  ``create_server`` and :class:`asyncio.Server`, ``start_tls``,
  ``sendfile``, ``subprocess_exec``...) are written in ``BaseEventLoop``,
  ``BaseSelectorEventLoop`` and ``_UnixSelectorEventLoop`` on top of those
  same few calls plus a handful of private helpers of the same classes
  (``_ensure_resolved``, ``_create_connection_transport``,
  ``_make_socket_transport``, ``_start_serving``, ``_accept_connection``...).
  None of them uses the selector loop's run loop (``_ready``,
  ``_scheduled``, ``_run_once``), its self-pipe or ``super()``.
- Python versions move these helpers around: 3.13 gives
  ``_UnixSelectorEventLoop`` its own ``_stop_serving`` (it unlinks unix
  socket files, kept in ``_unix_server_sockets``); 3.10 has no
  ``sock_recvfrom``/``sock_sendto`` at all. ``tests/test_asyncio_view.py``
  reads the source of every borrowed method on the running Python and fails
  if one of them touches a name the face does not have.
- Subprocesses: ``_make_subprocess_transport`` asks the event loop policy
  for its child watcher (3.11: ``ThreadedChildWatcher``, a thread per child
  that reports the exit with ``call_soon_threadsafe``; 3.12+ chooses
  pidfd or threads itself). No SIGCHLD handler is needed, so nothing here
  competes with the native loop's signal handling.

So the face *borrows* those methods: :class:`StdlibTransports` is a mixin
whose attributes are the very functions of :class:`asyncio.SelectorEventLoop`
(found along its MRO, on the running Python), and the face supplies the few
calls above over the native loop. The other way, a method written here for
each call on top of the stdlib transport classes, would copy some thousand
lines of argument checking, address resolution, happy eyeballs, server
bookkeeping and TLS wiring that CPython maintains and fixes (and changes
between versions); borrowing is smaller, and it stays right as CPython
fixes bugs. Subclassing ``SelectorEventLoop`` instead would bring in its run
loop and self-pipe too (every method not overridden would silently use
them); the borrowed list names exactly what runs.
"""

from __future__ import annotations

import asyncio
import selectors
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reactor.asyncio_view import NativeAsyncioLoop

# The methods taken from asyncio.SelectorEventLoop, by name; those missing on
# this Python (or platform) are left out, and the AbstractEventLoop default
# (NotImplementedError) stays. The public ones first, then their helpers.
BORROWED: tuple[str, ...] = (
    # connections and servers
    "create_connection",
    "create_server",
    "create_unix_connection",
    "create_unix_server",
    "create_datagram_endpoint",
    "connect_accepted_socket",
    "start_tls",
    "_connect_sock",
    "_create_connection_transport",
    "_create_server_getaddrinfo",
    "_ensure_resolved",
    "_make_socket_transport",
    "_make_ssl_transport",
    "_make_datagram_transport",
    "_start_serving",
    "_accept_connection",
    "_accept_connection2",
    "_stop_serving",
    "_ensure_fd_no_transport",
    # pipes and subprocesses
    "connect_read_pipe",
    "connect_write_pipe",
    "subprocess_exec",
    "subprocess_shell",
    "_make_read_pipe_transport",
    "_make_write_pipe_transport",
    "_make_subprocess_transport",
    "_child_watcher_callback",
    "_log_subprocess",
    # sendfile
    "sendfile",
    "sock_sendfile",
    "_sendfile_native",
    "_sendfile_fallback",
    "_check_sendfile_params",
    "_sock_sendfile_native",
    "_sock_sendfile_native_impl",
    "_sock_sendfile_fallback",
    "_sock_sendfile_update_filepos",
    "_sock_add_cancellation_callback",
)

SOURCE: type = asyncio.SelectorEventLoop


def _rebound(function: Any, owner: type) -> Any:
    """``function``, with its ``super()`` (its ``__class__`` cell) pointing
    at ``owner`` instead of the stdlib class it was written in."""
    if (
        not isinstance(function, types.FunctionType)
        or "__class__" not in function.__code__.co_freevars
    ):
        return function
    cells = tuple(
        types.CellType(owner) if name == "__class__" else cell
        for name, cell in zip(
            function.__code__.co_freevars, function.__closure__ or (), strict=True
        )
    )
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__, cells
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__dict__.update(function.__dict__)
    return copy


def _layered() -> type:
    """One mixin class per stdlib class along SOURCE's MRO (BaseEventLoop,
    then BaseSelectorEventLoop, then _UnixSelectorEventLoop), each holding
    the borrowed methods written in that class and deriving from the one
    before: a method that calls ``super()`` (3.13's unix ``_stop_serving``)
    reaches the borrowed method of the class below, as in asyncio."""
    sources = [
        cls
        for cls in SOURCE.__mro__
        if issubclass(cls, asyncio.AbstractEventLoop) and cls is not asyncio.AbstractEventLoop
    ]
    base: type = object
    for source in reversed(sources):
        layer = type(f"_From{source.__name__}", (base,), {"__slots__": (), "__module__": __name__})
        for name in BORROWED:
            if name in vars(source):
                setattr(layer, name, _rebound(vars(source)[name], layer))
        base = layer
    return base


if TYPE_CHECKING:
    _Borrowed = object
else:
    _Borrowed = _layered()


class StdlibTransports(_Borrowed):
    """The high-level methods of :class:`asyncio.SelectorEventLoop`, borrowed.

    A mixin for :class:`~reactor.asyncio_view.NativeAsyncioLoop`, ahead of
    :class:`asyncio.AbstractEventLoop` in its bases; see the module
    docstring for what the borrowed code needs from the class it is mixed
    into. The methods sit in base classes of their own, one per stdlib class
    (see :func:`_layered`).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # The one borrowed helper the face calls itself.
        def _ensure_fd_no_transport(self, fd: Any) -> None: ...


class SelectorView:
    """What a stdlib transport's ``repr()`` reads from ``loop._selector``:
    ``get_key(fd)`` of the fds the face watches (KeyError for others).
    ``data`` is ``(reader handle, writer handle)``, as in asyncio."""

    __slots__ = ("_loop",)

    def __init__(self, loop: NativeAsyncioLoop) -> None:
        self._loop = loop

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        loop = self._loop
        fd = fileobj if isinstance(fileobj, int) else int(fileobj.fileno())
        reader = loop._readers.get(fd)
        writer = loop._writers.get(fd)
        if reader is None and writer is None:
            raise KeyError(f"{fileobj!r} is not registered")
        events = (selectors.EVENT_READ if reader is not None else 0) | (
            selectors.EVENT_WRITE if writer is not None else 0
        )
        return selectors.SelectorKey(fileobj, fd, events, (reader, writer))


def borrowed_methods() -> dict[str, list[Callable[..., Any]]]:
    """The borrowed methods present on this Python, by name, each with the
    versions of the classes along the MRO (most derived first; for tests)."""
    found: dict[str, list[Callable[..., Any]]] = {}
    for layer in StdlibTransports.__mro__[1:]:
        for name in BORROWED:
            if name in vars(layer):
                found.setdefault(name, []).append(vars(layer)[name])
    return found
