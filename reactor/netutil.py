"""Sockets for servers and clients: listening, accepting, resolving, TLS options.

- :func:`bind_sockets` and :func:`bind_unix_socket` make non-blocking
  listening sockets; :func:`add_accept_handler` accepts their connections on
  the current :class:`~reactor.ioloop.IOLoop`.
- :class:`Resolver` turns a host name into addresses without blocking the
  loop. ``Resolver()`` builds the implementation chosen with
  :meth:`Resolver.configure` (by default :class:`DefaultExecutorResolver`).
- :func:`ssl_options_to_context` and :func:`ssl_wrap_socket` accept
  Tornado's ``ssl_options`` dictionaries as well as :class:`ssl.SSLContext`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import importlib
import os
import socket
import ssl
import stat
import sys
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, _new_future
from reactor.log import gen_log
from reactor.util import Configurable

__all__ = [
    "BlockingResolver",
    "DefaultExecutorResolver",
    "DefaultLoopResolver",
    "ExecutorResolver",
    "OverrideResolver",
    "Resolver",
    "ThreadedResolver",
    "add_accept_handler",
    "bind_sockets",
    "bind_unix_socket",
    "is_valid_ip",
    "ssl_options_to_context",
    "ssl_wrap_socket",
]

_DEFAULT_BACKLOG = 1024
"""The listen backlog (the kernel caps it at net.core.somaxconn). 128, the
old default, overflows when a thousand clients connect at once: their SYNs
are dropped and retried a second or more later."""

_ACCEPTS_PER_EVENT = 128
"""The most connections one readable event of a listening socket accepts, so
one busy listener cannot starve the rest of the loop."""

# With port 0 and several addresses, the first socket's port may already be
# taken in the other family; binding then starts over with a new port.
_PORT_ZERO_ATTEMPTS = 8

Address = Any
"""A socket address as ``socket.connect`` takes it: ``(host, port)`` for
IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6, a path for AF_UNIX."""


# -- listening -------------------------------------------------------------------


def bind_sockets(
    port: int,
    address: str | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    backlog: int = _DEFAULT_BACKLOG,
    flags: int | None = None,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Non-blocking sockets listening on ``port`` at every address of ``address``.

    ``address`` is an IP address or a host name; empty or None means every
    interface, in IPv4 and IPv6 both (the IPv6 socket is IPV6_V6ONLY so the
    two can share the port). ``family`` limits the families
    (``socket.AF_INET`` or ``AF_INET6``). ``port`` 0 picks a free port, the
    same one for every socket returned. ``flags`` is passed to
    :func:`socket.getaddrinfo` (default ``AI_PASSIVE``). ``reuse_port`` sets
    SO_REUSEPORT so several processes can listen on the same port; it raises
    ValueError on platforms without it.

    On POSIX the sockets have SO_REUSEADDR, so a restarted server can bind
    while old connections linger in TIME_WAIT. Raises OSError if an address
    cannot be bound; no socket is left open then.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError(
            f"reuse_port=True needs SO_REUSEPORT, which this platform ({sys.platform}) "
            "lacks; bind without reuse_port"
        )
    if not address:
        address = None
    if family == socket.AF_UNSPEC and not socket.has_ipv6:
        # A Python built without IPv6 still gets AF_INET6 entries from
        # getaddrinfo, and then fails to make those sockets.
        family = socket.AF_INET
    if flags is None:
        flags = socket.AI_PASSIVE
    candidates = _listen_addresses(address, port, family, flags)
    attempts = _PORT_ZERO_ATTEMPTS if port == 0 and len(candidates) > 1 else 1
    for attempt in range(attempts):
        try:
            return _bind_all(candidates, address, backlog, reuse_port)
        except _SharedPortTaken:
            if attempt == attempts - 1:
                raise OSError(
                    errno.EADDRINUSE,
                    f"could not find a port that is free on every address of {address!r} "
                    f"in {attempts} attempts; pass an explicit port",
                ) from None
    raise AssertionError("unreachable")


def _listen_addresses(
    address: str | None, port: int, family: int, flags: int
) -> list[tuple[int, int, int, Address]]:
    """``[(family, type, proto, sockaddr)]`` to bind, IPv4 first, without repeats."""
    seen: set[tuple[int, Address]] = set()
    result: list[tuple[int, int, int, Address]] = []
    for af, socktype, proto, _canonname, sockaddr in socket.getaddrinfo(
        address, port, family, socket.SOCK_STREAM, 0, flags
    ):
        if (af, sockaddr) in seen:
            continue
        seen.add((af, sockaddr))
        if (
            sys.platform == "darwin"
            and address == "localhost"
            and af == socket.AF_INET6
            and sockaddr[3] != 0
        ):
            # macOS lists the link-local fe80::1%lo0 for localhost; its
            # firewall does not know that address is local and asks the user,
            # again and again, to allow the program to listen there.
            continue
        result.append((af, socktype, proto, sockaddr))
    # A stable sort: IPv4 first (the lower constant on every platform we
    # know), each family's addresses in the resolver's order.
    result.sort(key=lambda info: info[0])
    return result


class _SharedPortTaken(Exception):
    """Port 0: the port picked for the first address is taken on another."""


def _bind_all(
    candidates: list[tuple[int, int, int, Address]],
    address: str | None,
    backlog: int,
    reuse_port: bool,
) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    skipped: list[str] = []
    chosen_port: int | None = None
    try:
        for af, socktype, proto, sockaddr in candidates:
            try:
                sock = socket.socket(af, socktype, proto)
            except OSError as e:
                if e.errno == errno.EAFNOSUPPORT:  # a kernel without this family
                    skipped.append(f"{sockaddr[0]}: {e.strerror}")
                    continue
                raise
            sockets.append(sock)
            _set_listen_options(sock, af, reuse_port)
            requested_port = sockaddr[1]
            if requested_port == 0 and chosen_port is not None:
                sockaddr = (sockaddr[0], chosen_port, *sockaddr[2:])
            try:
                sock.bind(sockaddr)
            except OSError as e:
                if (
                    e.errno == errno.EADDRNOTAVAIL
                    and address == "localhost"
                    and af == socket.AF_INET6
                ):
                    # Half-enabled IPv6 (Docker's default, among others):
                    # AF_INET6 sockets exist and localhost resolves to ::1,
                    # but ::1 cannot be bound. Only this case is forgiven; the
                    # same error elsewhere is more likely a typo.
                    sockets.remove(sock)
                    sock.close()
                    skipped.append(f"{sockaddr[0]}: {e.strerror}")
                    continue
                if e.errno == errno.EADDRINUSE and requested_port == 0 and chosen_port:
                    raise _SharedPortTaken() from e
                raise
            chosen_port = sock.getsockname()[1]
            sock.setblocking(False)
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets and skipped:
        raise OSError(
            errno.EADDRNOTAVAIL,
            f"no address of {address!r} could be bound: {'; '.join(skipped)}",
        )
    return sockets


def _set_listen_options(sock: socket.socket, af: int, reuse_port: bool) -> None:
    if os.name != "nt":
        # On Windows SO_REUSEADDR lets another process steal the port; on
        # POSIX it only allows binding over TIME_WAIT leftovers.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:  # GNU Hurd has no SO_REUSEADDR
                raise
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
        # Linux lets an IPv6 socket take IPv4 connections too, which makes
        # 0.0.0.0 and :: on one port collide. Each family gets its own socket.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)


def bind_unix_socket(
    file: str, mode: int = 0o600, backlog: int = _DEFAULT_BACKLOG
) -> socket.socket:
    """A non-blocking AF_UNIX socket listening at the path ``file``.

    A socket file already at ``file`` (left by an earlier run, say) is
    removed first; any other kind of file is left alone and ValueError is
    raised. The socket file gets permissions ``mode``. On Linux, a name
    starting with ``"\\0"`` is in the abstract namespace: no file, no mode.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:
                raise
        sock.setblocking(False)
        if file.startswith("\0"):
            sock.bind(file)
        else:
            try:
                st = os.stat(file)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISSOCK(st.st_mode):
                    raise ValueError(
                        f"{file!r} exists and is not a socket; refusing to replace it "
                        "(remove it or choose another path)"
                    )
                os.remove(file)
            sock.bind(file)
            # The file exists with the umask's permissions between bind and
            # chmod; put it in a directory of restricted access if that matters.
            os.chmod(file, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


# -- accepting -------------------------------------------------------------------

# accept() errors that concern one incoming connection, not the listener:
# the connection is dropped and accepting goes on. ECONNABORTED: the peer gave
# up while queued. Linux also hands a queued connection's pending network
# error to accept() (see accept(2), "Error handling"), and EPERM when a
# firewall rule forbids it.
_ACCEPT_SKIP = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENETUNREACH",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENONET",
        "EOPNOTSUPP",
    )
    if hasattr(errno, name)
)

# accept() errors that mean the process (or system) is out of something: the
# connection stays queued and the listener stays readable, so retrying at
# once would spin the loop at 100% CPU. Accepting pauses instead, for a delay
# that doubles from _PAUSE_MIN to _PAUSE_MAX and resets after a success (Go's
# net/http does the same); the connections wait in the kernel's backlog
# meanwhile, and the server keeps serving the ones it has. One such stretch
# is logged once: a warning when it starts, an info line when it ends.
_ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_PAUSE_MIN = 0.1
_PAUSE_MAX = 1.0

# The most connections a stop() takes from a listener's backlog: the kernel
# holds at most net.core.somaxconn (4096 by default) there.
_BACKLOG_LIMIT = 65536


class _Acceptor:
    """Accepts the connections of one listening socket on the current loop:
    the engine of :func:`add_accept_handler` and of
    :class:`~reactor.tcpserver.TCPServer`, which also holds it (a
    connection limit), counts its failures, and takes its backlog on stop."""

    __slots__ = (
        "_backoff",
        "_callback",
        "_fd",
        "_loop",
        "_retry",
        "_sock",
        "_watching",
        "errors",
        "held",
        "removed",
    )

    def __init__(
        self, sock: socket.socket, callback: Callable[[socket.socket, Address], None]
    ) -> None:
        self._loop = IOLoop.current()
        self._sock = sock
        # Kept as a number: after sock.close(), sock.fileno() is -1 and the
        # handler could no longer be found to remove it.
        self._fd = sock.fileno()
        self._callback = callback
        self._watching = False
        self._retry: object | None = None  # the back-off timer, out of descriptors
        self._backoff = 0.0
        self.errors = 0
        """accept() failures for want of descriptors or memory (EMFILE...)."""
        self.held = False
        """True while the owner holds accepting (a connection limit)."""
        self.removed = False
        self._update()

    @property
    def accepting(self) -> bool:
        """True while the listener is watched: not removed, held or backing off."""
        return self._watching

    def _update(self) -> None:
        want = not self.removed and not self.held and self._retry is None
        if want == self._watching:
            return
        if want:
            if self._sock.fileno() != self._fd:
                return  # closed meanwhile
            self._loop.add_handler(self._sock, self._on_readable, IOLoop.READ)
        else:
            self._loop.remove_handler(self._fd)
        self._watching = want

    def hold(self) -> None:
        """Stop accepting until :meth:`release` (connections wait in the backlog)."""
        self.held = True
        self._update()

    def release(self) -> None:
        """Accept again after :meth:`hold`."""
        self.held = False
        self._update()

    def remove(self) -> None:
        """Accept nothing more, not even later in the current event; idempotent."""
        if self.removed:
            return
        self.removed = True
        if self._retry is not None:
            self._loop.remove_timeout(self._retry)
            self._retry = None
        self._update()

    def _on_readable(self, _fileobj: Any, _events: int) -> None:
        # Bounded, as connections may arrive faster than we take them. The
        # number queued when the event came is unknown; the listen backlog is
        # a fair guess. Accepting them all before calling back would be no
        # better: it would unbalance processes sharing the listener.
        self._accept(_ACCEPTS_PER_EVENT)

    def accept_backlog(self, limit: int) -> int:
        """Accept what the kernel has queued already (until EAGAIN, ``limit``
        at most), even once removed: a stopping server serves the clients
        whose connections were complete instead of resetting them. Returns
        how many were accepted."""
        return self._accept(min(limit, _BACKLOG_LIMIT), final=True)

    def _accept(self, limit: int, final: bool = False) -> int:
        sock = self._sock
        callback = self._callback
        accepted = 0
        while accepted < limit:
            if not final and (self.removed or self.held):
                break
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                break  # drained (or another process got there first)
            except OSError as e:
                if e.errno in _ACCEPT_SKIP:
                    gen_log.debug("accept() on %r skipped a connection: %s", sock, e)
                    continue
                if e.errno in _ACCEPT_EXHAUSTED:
                    self._exhausted(e)
                    break
                raise
            if self._backoff:
                self._backoff = 0.0
                gen_log.info("accept() on %r works again", sock)
            accepted += 1
            callback(connection, address)
        return accepted

    def _exhausted(self, error: OSError) -> None:
        self.errors += 1
        if not self._backoff:
            gen_log.warning(
                "accept() on %r failed: %s; pausing accepting, retrying every %g to %g "
                "seconds until it succeeds (logged once)",
                self._sock,
                error,
                _PAUSE_MIN,
                _PAUSE_MAX,
            )
        self._backoff = min(max(self._backoff * 2, _PAUSE_MIN), _PAUSE_MAX)
        if self.removed:
            return
        if self._retry is not None:
            self._loop.remove_timeout(self._retry)
        self._retry = self._loop.call_later(self._backoff, self._retry_now)
        self._update()

    def _retry_now(self) -> None:
        self._retry = None
        self._update()


def add_accept_handler(
    sock: socket.socket, callback: Callable[[socket.socket, Address], None]
) -> Callable[[], None]:
    """Call ``callback(connection, address)`` for each connection ``sock`` accepts.

    ``sock`` is a listening socket, non-blocking (as :func:`bind_sockets` makes
    them). The handler runs on the current IOLoop and takes at most 128
    connections per readiness event, so that a busy listener cannot starve
    the loop. ``connection`` is as ``sock.accept()`` returns it: the callback
    owns it (an IOStream makes it non-blocking).

    A connection that fails while queued is skipped. When the process runs
    out of file descriptors (EMFILE, ENFILE; or ENOBUFS, ENOMEM), accepting
    pauses and is retried after a back-off (0.1 seconds, doubling to 1): the
    loop does not spin and nothing is raised; a warning is logged when this
    starts and an info line when accepting works again. Other errors of
    ``accept`` propagate to the loop's
    :meth:`~reactor.ioloop.IOLoop.handle_callback_exception`.

    Returns a function that removes the handler: no connection is accepted
    after it is called, not even later in the same event. It may be called
    more than once, and after ``sock`` is closed.
    """
    return _Acceptor(sock, callback).remove


def is_valid_ip(ip: str) -> bool:
    """True if ``ip`` is an IPv4 or IPv6 address literal (never looked up).

    Accepts what the system's ``getaddrinfo`` accepts as numeric: dotted
    quads and their short forms (``127.1``), IPv6 with a scope
    (``fe80::1%lo``). Host names, empty strings and strings with NUL are not.
    """
    if not ip or "\0" in ip:  # getaddrinfo reads "" as localhost, stops at NUL
        return False
    try:
        infos = socket.getaddrinfo(
            ip, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )
    except socket.gaierror as e:
        if e.errno == socket.EAI_NONAME:
            return False
        raise
    except UnicodeError:
        # Python's IDNA codec rejects labels over 63 characters before
        # getaddrinfo sees them, AI_NUMERICHOST or not.
        return False
    return bool(infos)


# -- resolving -------------------------------------------------------------------


def _getaddrinfo_pairs(host: str, port: int, family: int) -> list[tuple[int, Address]]:
    """Blocking: ``getaddrinfo`` for TCP, as ``[(family, address)]``."""
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    return [(af, sockaddr) for af, _type, _proto, _canonname, sockaddr in infos]


class Resolver(Configurable):
    """Turns host names into addresses without blocking the loop.

    A :class:`~reactor.util.Configurable`: ``Resolver()`` returns an
    instance of the implementation chosen with :meth:`configure` (by
    default :class:`DefaultExecutorResolver`); naming a subclass,
    ``DefaultLoopResolver()``, builds that one. An implementation sets
    itself up in ``__init__`` or, Tornado's way, in ``initialize``.
    """

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        return Resolver

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        """The implementation used when none is configured."""
        return DefaultExecutorResolver

    @classmethod
    def configure(cls, impl: str | type[Configurable] | None, **kwargs: Any) -> None:
        """Make ``Resolver()`` build ``impl(**kwargs)`` from now on.

        ``impl`` is a Resolver subclass or its import path
        (``"reactor.netutil.ThreadedResolver"``, or ``"pkg.mod:Class"``);
        None returns to the default. Keyword arguments given to ``Resolver()``
        itself override ``kwargs``. Raises TypeError if ``impl`` is not a
        Resolver subclass, ImportError if its path does not import.
        """
        if impl is Resolver or impl == "reactor.netutil.Resolver":
            raise TypeError("Resolver is the interface; configure one of its implementations")
        super().configure(impl, **kwargs)

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        """Resolve ``host`` (a name or an address literal) for a TCP connection.

        Returns a future for a list of ``(family, address)``, ``address`` being
        what ``socket.connect`` takes: ``(host, port)`` for IPv4, with
        ``flowinfo`` and ``scope_id`` for IPv6. ``family`` limits the
        families. The future fails with :class:`OSError` (usually
        :class:`socket.gaierror`) if the name cannot be resolved.
        """
        raise NotImplementedError(f"{type(self).__name__}.resolve")

    def close(self) -> None:
        """Release what the resolver holds (threads, say); it cannot be used after."""


def _import_class(path: str) -> Any:
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise ImportError(f"{path!r} is not an import path like 'package.module.Class'")
    return getattr(importlib.import_module(module_name), name)


class DefaultExecutorResolver(Resolver):
    """The default: ``socket.getaddrinfo`` in the loop's default executor
    (:meth:`IOLoop.run_in_executor <reactor.ioloop.IOLoop.run_in_executor>`)."""

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        return IOLoop.current().run_in_executor(None, _getaddrinfo_pairs, host, port, family)


class DefaultLoopResolver(Resolver):
    """Resolves with the running asyncio loop's ``getaddrinfo``.

    On the asyncio and uvloop backends that is the asyncio loop's own
    resolver (uvloop's runs in libuv's thread pool); on the native backends,
    the loop's :mod:`asyncio face <reactor.asyncio_view>`, which uses its
    own thread pool.
    """

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        return gen.convert_yielded(self._resolve(host, port, family))

    async def _resolve(self, host: str, port: int, family: int) -> list[tuple[int, Address]]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM
        )
        return [(af, sockaddr) for af, _type, _proto, _canonname, sockaddr in infos]


class ExecutorResolver(Resolver):
    """Runs ``socket.getaddrinfo`` in ``executor``.

    ``executor`` None: a thread pool of this resolver's own. ``close``
    shuts the executor down if ``close_executor`` (always true for the
    resolver's own pool).
    """

    def __init__(
        self,
        executor: concurrent.futures.Executor | None = None,
        close_executor: bool = True,
    ) -> None:
        if executor is None:
            executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="reactor-resolver")
            close_executor = True
        self.executor: concurrent.futures.Executor | None = executor
        self.close_executor = close_executor

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        if self.executor is None:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return IOLoop.current().run_in_executor(
            self.executor, _getaddrinfo_pairs, host, port, family
        )

    def close(self) -> None:
        if self.executor is not None and self.close_executor:
            self.executor.shutdown(wait=False)
        self.executor = None


class BlockingResolver(Resolver):
    """Resolves in the calling thread, blocking the loop while it does.

    Tornado's deprecated resolver, kept for ported code: the future it
    returns is already done. Use it only where names resolve instantly
    (address literals, ``/etc/hosts``); otherwise use the default.
    """

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        future: Future[list[tuple[int, Address]]] = _new_future()
        try:
            future.set_result(_getaddrinfo_pairs(host, port, family))
        except Exception as e:
            future.set_exception(e)
        return future


class ThreadedResolver(ExecutorResolver):
    """An :class:`ExecutorResolver` on a thread pool of ``num_threads``
    shared by every ThreadedResolver of the process (the first one made
    sizes it). ``close`` leaves the shared pool running."""

    _pool: ClassVar[concurrent.futures.ThreadPoolExecutor | None] = None
    _pool_pid: ClassVar[int | None] = None

    def __init__(self, num_threads: int = 10) -> None:
        super().__init__(executor=self._shared_pool(num_threads), close_executor=False)

    @classmethod
    def _shared_pool(cls, num_threads: int) -> concurrent.futures.ThreadPoolExecutor:
        pid = os.getpid()
        # A forked child inherits the pool object but not its threads.
        if ThreadedResolver._pool is None or ThreadedResolver._pool_pid != pid:
            ThreadedResolver._pool = concurrent.futures.ThreadPoolExecutor(
                num_threads, thread_name_prefix="reactor-resolver"
            )
            ThreadedResolver._pool_pid = pid
        return ThreadedResolver._pool


class OverrideResolver(Resolver):
    """Redirects some lookups, then asks ``resolver``; for tests, mostly.

    ``mapping`` keys, tried most specific first: ``(host, port, family)``
    and ``(host, port)`` map to a new ``(host, port)``; ``host`` alone maps
    to a new host, keeping the port. ``close`` closes ``resolver`` too.
    """

    def __init__(self, resolver: Resolver, mapping: dict[Any, Any]) -> None:
        self.resolver = resolver
        self.mapping = mapping

    def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> Future[list[tuple[int, Address]]]:
        mapping = self.mapping
        if (host, port, family) in mapping:
            host, port = mapping[(host, port, family)]
        elif (host, port) in mapping:
            host, port = mapping[(host, port)]
        elif host in mapping:
            host = mapping[host]
        return self.resolver.resolve(host, port, family)

    def close(self) -> None:
        self.resolver.close()


# -- TLS -------------------------------------------------------------------------

_SSL_OPTIONS = frozenset({"ssl_version", "certfile", "keyfile", "cert_reqs", "ca_certs", "ciphers"})
"""The keys of an ``ssl_options`` dictionary (the old ``ssl.wrap_socket`` arguments)."""


def ssl_options_to_context(
    ssl_options: dict[str, Any] | ssl.SSLContext, server_side: bool | None = None
) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for ``ssl_options``; a context is returned as is.

    The dictionary's keys are ``ssl_version``, ``certfile``, ``keyfile``,
    ``cert_reqs``, ``ca_certs`` and ``ciphers``; any other raises ValueError.
    ``server_side`` True or False makes a server or client context (a client
    context checks the peer's certificate and host name unless ``cert_reqs``
    is ``ssl.CERT_NONE``). None makes one for either side with the
    deprecated ``ssl.PROTOCOL_TLS``: a DeprecationWarning names the fix (and
    the :mod:`ssl` module adds its own). TLS compression is always off.
    """
    if isinstance(ssl_options, ssl.SSLContext):
        return ssl_options
    if not isinstance(ssl_options, dict):
        raise TypeError(
            f"ssl_options must be a dict or an ssl.SSLContext, not {type(ssl_options).__name__}"
        )
    unknown = set(ssl_options) - _SSL_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown ssl_options {sorted(unknown)}; the keys are {sorted(_SSL_OPTIONS)} "
            "(for anything else, pass an ssl.SSLContext)"
        )
    if "ssl_version" in ssl_options:
        protocol = ssl_options["ssl_version"]
    elif server_side is None:
        warnings.warn(
            "ssl_options_to_context without server_side uses the deprecated "
            "ssl.PROTOCOL_TLS; pass server_side=True for a server or False for a client",
            DeprecationWarning,
            stacklevel=2,
        )
        protocol = ssl.PROTOCOL_TLS
    else:
        protocol = ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT
    context = ssl.SSLContext(protocol)
    if "certfile" in ssl_options:
        context.load_cert_chain(ssl_options["certfile"], ssl_options.get("keyfile"))
    if "cert_reqs" in ssl_options:
        if ssl_options["cert_reqs"] == ssl.CERT_NONE:
            # A client context checks host names, which needs certificates;
            # it must be turned off before verification can be.
            context.check_hostname = False
        context.verify_mode = ssl_options["cert_reqs"]
    if "ca_certs" in ssl_options:
        context.load_verify_locations(ssl_options["ca_certs"])
    if "ciphers" in ssl_options:
        context.set_ciphers(ssl_options["ciphers"])
    context.options |= ssl.OP_NO_COMPRESSION  # CRIME
    return context


def ssl_wrap_socket(
    socket: socket.socket,
    ssl_options: dict[str, Any] | ssl.SSLContext,
    server_hostname: str | None = None,
    server_side: bool | None = None,
    **kwargs: Any,
) -> ssl.SSLSocket:
    """Wrap ``socket`` in TLS, with :func:`ssl_options_to_context`'s context.

    ``server_hostname`` is sent by SNI and, on a client context that checks
    host names, checked against the peer's certificate. ``kwargs`` go to
    :meth:`ssl.SSLContext.wrap_socket` (``do_handshake_on_connect=False``
    for a non-blocking socket, typically).
    """
    context = ssl_options_to_context(ssl_options, server_side=server_side)
    return context.wrap_socket(
        socket, server_hostname=server_hostname, server_side=bool(server_side), **kwargs
    )
