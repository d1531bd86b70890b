"""``python -m reactor serve APP``: serve an application from one process or several.

The command line is :func:`add_arguments`; :func:`main` runs it. With
``--processes 1`` the application is served in this process. With more, this
process becomes a supervisor: it binds the listening socket (or, with
``--reuse-port``, reserves the port), forks the serving processes, restarts one
that dies, and forwards SIGTERM / SIGINT so that each drains and exits.

Some facts about serving from several processes, which the code relies on:

- A poller does not survive ``fork()`` (an epoll or kqueue set is shared with,
  or lost by, the child), so the supervisor never makes an IOLoop: it waits in
  plain ``select()`` on a pipe the children report on and on the signal wakeup
  fd. Each child makes its own loop after the fork.
- Writes of at most ``PIPE_BUF`` bytes to a pipe are atomic, so every child
  reports "I accept" as one line on the same pipe without interleaving.
- A listening socket stays open (and keeps queueing connections nobody will
  accept) while any process holds it. The supervisor holds the shared socket to
  give it to restarted children, so on shutdown it closes its copy first; the
  socket then closes with the last child's ``stop()``.
- With ``SO_REUSEPORT`` the kernel spreads new connections over every socket
  bound to the port by the same user, but only over *listening* ones. Port 0
  would give each child a different port, so the supervisor binds one socket
  without listening on it: it holds the port for every child (and for restarts)
  and receives no connection.
- Ctrl-C sends SIGINT to the terminal's whole foreground process group. A child
  in the supervisor's group would get it twice (from the terminal, then
  forwarded), and a second signal means "exit now". So each child moves to a
  process group of its own, and only the supervisor's forwarded signal reaches
  it. A child whose supervisor was killed outright notices (its parent pid
  changes) and drains.
- A signal that arrives between ``fork()`` and the child's own handlers would
  run the supervisor's handler in the child, or kill it: SIGTERM and SIGINT are
  blocked around the fork and unblocked once the child's handlers are in place
  (a signal sent meanwhile stays pending and is handled then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import inspect
import logging
import os
import select
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any, NoReturn

from reactor import backends, process
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPServerConnectionDelegate
from reactor.ioloop import IOLoop, PeriodicCallback
from reactor.log import LogFormatter, access_log, gen_log
from reactor.netutil import bind_sockets, bind_unix_socket, ssl_options_to_context

EXIT_USAGE = 2
"""The exit status for a bad command line, APP or backend."""

OVERRUN_MARGIN = 5.0
"""Seconds past ``--drain-timeout`` after which a serving process that is still
draining gives up and exits 1 (the drain itself ends at the deadline; this only
guards against a handler that blocks the loop)."""

RESTART_BACKOFF = (0.5, 30.0)
"""A crashed process is restarted after 0.5 s, doubling each time to 30 s."""

RESTART_RESET_UPTIME = 60.0
"""A process that served this long before it died restarts after the shortest back-off again."""

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""The signals that drain the server (a second one exits at once). SIGHUP (a
hang-up: the terminal closed) is caught only where it is not ignored at start:
under ``nohup`` it stays ignored."""


def _catch(handler: Callable[[int, FrameType | None], None]) -> None:
    """Install ``handler`` for each of :data:`SIGNALS` (see there for SIGHUP)."""
    for signum in SIGNALS:
        if signum != signal.SIGHUP or signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


class ServeError(Exception):
    """A bad command line, APP, backend or certificate: printed, exit status 2."""


class _ChildExit(BaseException):
    """A serving process is done: unwinds the stack it inherited from the fork
    (past the supervisor's clean-up, which is the supervisor's own) to ``serve``,
    so that the process exits as Python processes do, with its atexit handlers
    (an application's own clean-up) run."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class ServeConfig:
    """What ``python -m reactor serve`` was asked to do (one field per option)."""

    app: str
    host: str = "127.0.0.1"
    port: int = 8888
    unix_socket: str | None = None
    unix_socket_mode: int = 0o600
    backend: str | None = None
    processes: int = 1
    reuse_port: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    xheaders: bool = False
    trusted_downstream: list[str] = field(default_factory=list)
    max_connections: int | None = None
    max_body_size: int | None = None
    max_header_size: int | None = None
    max_write_buffer_size: int | None = None
    idle_timeout: float | None = None
    body_timeout: float | None = None
    drain_timeout: float = 30.0
    access_log: bool = True
    metrics: str | None = None
    ready_file: str | None = None


# -- the command line ---------------------------------------------------------


def _size(text: str) -> int:
    """A byte count: ``1048576``, ``64k``, ``10M``, ``1G`` (powers of 1024)."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    value = text.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(value[-1:], 1)
    if scale != 1:
        value = value[:-1]
    try:
        size = int(value) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a size in bytes: {text!r} (e.g. 65536, 64k, 10M)"
        ) from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"a size must be positive, not {text!r}")
    return size


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text!r}")
        return value

    return parse


def _mode(text: str) -> int:
    """File permissions in octal: ``600``, ``0660``, ``0o666``."""
    try:
        mode = int(text.removeprefix("0o"), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"not file permissions in octal: {text!r} (e.g. 660)")
    return mode


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``serve``'s arguments and options to ``parser``."""
    parser.add_argument(
        "app",
        metavar="APP",
        help="module:attribute naming an Application (or a request callable), or a "
        "factory that returns one (module:make_app or module:make_app())",
    )
    where = parser.add_argument_group("where to listen")
    where.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    where.add_argument(
        "--port", type=_count, default=8888, help="0 picks a free port (printed); default 8888"
    )
    where.add_argument("--unix-socket", metavar="PATH", help="listen on this Unix socket instead")
    where.add_argument(
        "--unix-socket-mode",
        type=_mode,
        default=0o600,
        metavar="MODE",
        help="the Unix socket's permissions, in octal (default 600: its owner only)",
    )
    where.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    where.add_argument("--keyfile", help="the certificate's private key (PEM)")
    procs = parser.add_argument_group("processes")
    procs.add_argument("--backend", metavar="NAME", help="event-loop backend (see `backends`)")
    procs.add_argument(
        "--processes",
        type=_count,
        default=1,
        metavar="N",
        help="serving processes (default 1; 0 = one per core); with more than 1, "
        "a supervisor forks them",
    )
    procs.add_argument(
        "--reuse-port",
        action="store_true",
        help="each process binds its own SO_REUSEPORT socket (default: one shared socket)",
    )
    procs.add_argument(
        "--drain-timeout",
        type=_positive(float),
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long requests in flight may take (default 30)",
    )
    procs.add_argument(
        "--ready-file", metavar="PATH", help="write the URL here once every process accepts"
    )
    http = parser.add_argument_group("HTTP")
    http.add_argument(
        "--xheaders", action="store_true", help="trust X-Real-Ip / X-Forwarded-* (behind a proxy)"
    )
    http.add_argument(
        "--trusted-downstream",
        action="append",
        default=[],
        metavar="IP",
        help="a proxy address to skip in X-Forwarded-For (repeatable)",
    )
    http.add_argument(
        "--max-connections",
        type=_positive(int),
        metavar="N",
        help="per process; past it, new clients wait in the backlog",
    )
    http.add_argument("--max-body-size", type=_size, metavar="BYTES", help="larger bodies get 413")
    http.add_argument(
        "--max-header-size", type=_size, metavar="BYTES", help="larger headers get 431"
    )
    http.add_argument(
        "--max-write-buffer-size",
        type=_size,
        metavar="BYTES",
        help="close a connection whose unsent output passes this",
    )
    http.add_argument(
        "--body-timeout",
        type=_positive(float),
        metavar="SECONDS",
        help="the longest a request body may take to arrive (default: no limit, as in "
        "Tornado); set it with --max-connections, or a client that sends its body slowly "
        "holds a connection for ever",
    )
    http.add_argument(
        "--idle-timeout",
        type=_positive(float),
        metavar="SECONDS",
        help="close keep-alive connections idle this long (default 3600)",
    )
    http.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log each request to stderr (default on)",
    )
    http.add_argument("--metrics", metavar="PATH", help="serve Prometheus metrics at PATH")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The :class:`ServeConfig` of parsed arguments."""
    return ServeConfig(
        app=args.app,
        host=args.host,
        port=args.port,
        unix_socket=args.unix_socket,
        unix_socket_mode=args.unix_socket_mode,
        backend=args.backend,
        processes=args.processes,
        reuse_port=args.reuse_port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        xheaders=args.xheaders,
        trusted_downstream=list(args.trusted_downstream),
        max_connections=args.max_connections,
        max_body_size=args.max_body_size,
        max_header_size=args.max_header_size,
        max_write_buffer_size=args.max_write_buffer_size,
        idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        drain_timeout=args.drain_timeout,
        access_log=args.access_log,
        metrics=args.metrics,
        ready_file=args.ready_file,
    )


def main(args: argparse.Namespace) -> int:
    """Run ``serve`` with parsed arguments; returns the exit status."""
    try:
        return serve(config_from_args(args))
    except ServeError as e:
        print(f"reactor serve: error: {e}", file=sys.stderr, flush=True)
        return EXIT_USAGE


# -- the application ------------------------------------------------------------


@dataclass
class AppTarget:
    """APP resolved: ``obj`` is served as it is, or called (``factory``) in each process."""

    spec: str
    obj: Any
    factory: bool


def _servable(obj: Any) -> bool:
    return isinstance(obj, HTTPServerConnectionDelegate) or (
        callable(obj) and not isinstance(obj, type)
    )


def _what_module_offers(module: ModuleType) -> str:
    apps, factories = [], []
    for name, value in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, HTTPServerConnectionDelegate):
            apps.append(name)
        elif inspect.isfunction(value) and value.__module__ == module.__name__:
            factories.append(name)
    parts = []
    if apps:
        parts.append("applications: " + ", ".join(apps))
    if factories:
        parts.append("functions: " + ", ".join(factories))
    return "; ".join(parts) or "no application and no function"


def load_app(spec: str) -> AppTarget:
    """Import APP's module and find its attribute (the factory is not called yet).

    ``module:attr`` is an :class:`~reactor.httputil.HTTPServerConnectionDelegate`
    (an :class:`~reactor.web.Application`), a request callable (one argument),
    or a factory (no required argument; or ``module:attr()``, always called).
    Raises :class:`ServeError` naming what the module has instead.
    """
    module_name, sep, attr = spec.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not sep or not module_name or not attr:
        raise ServeError(
            f"APP must be module:attribute (e.g. examples.serve_app:app), not {spec!r}"
        )
    called = attr.endswith("()")
    if called:
        attr = attr[:-2]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ServeError(
                f"no module named {module_name!r} (run from the folder that holds it, "
                "or add that folder to PYTHONPATH)"
            ) from None
        raise
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ServeError(
                f"module {module_name!r} has no attribute {attr!r}; "
                f"it has {_what_module_offers(module)}"
            ) from None
    if called:
        if not callable(obj):
            raise ServeError(f"{spec!r}: {attr} is not callable (drop the '()')")
        return AppTarget(spec, obj, factory=True)
    if isinstance(obj, HTTPServerConnectionDelegate):
        return AppTarget(spec, obj, factory=False)
    if isinstance(obj, type) and issubclass(obj, HTTPServerConnectionDelegate):
        return AppTarget(spec, obj, factory=True)
    if callable(obj) and not isinstance(obj, type):
        try:
            parameters = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            parameters = None  # a builtin: serve it as a request callable
        if parameters is not None:
            required = [
                p
                for p in parameters
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if not required:
                return AppTarget(spec, obj, factory=True)
        return AppTarget(spec, obj, factory=False)
    raise ServeError(
        f"{spec!r} is a {type(obj).__name__}, not an Application, a request callable "
        f"or a factory; module {module_name!r} has {_what_module_offers(module)}"
    )


def make_app(target: AppTarget) -> Any:
    """The application to serve: ``target.obj``, or what its factory returns."""
    if not target.factory:
        return target.obj
    app = target.obj()
    if not _servable(app):
        raise ServeError(
            f"the factory {target.spec!r} returned a {type(app).__name__}, not an "
            "Application or a request callable"
        )
    return app


# -- where to listen --------------------------------------------------------------


@dataclass
class Listener:
    """The sockets made before serving: shared ones, or a reservation of the port."""

    url: str
    port: int
    sockets: list[socket.socket] = field(default_factory=list)
    reservation: socket.socket | None = None
    unix_path: str | None = None
    unix_inode: int | None = None

    def close(self) -> None:
        """Close this process's copies (the supervisor's, on shutdown)."""
        for sock in self.sockets:
            sock.close()
        self.sockets = []
        if self.reservation is not None:
            self.reservation.close()
            self.reservation = None

    def remove_unix_socket(self) -> None:
        """Remove the Unix socket file, if it is still the one we made."""
        if self.unix_path is None or self.unix_path.startswith("\0"):
            return
        with contextlib.suppress(OSError):
            if os.stat(self.unix_path).st_ino == self.unix_inode:
                os.unlink(self.unix_path)


def _url(host: str, port: int, tls: bool) -> str:
    shown = host or "0.0.0.0"  # every interface
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def _bind_error(what: str, e: OSError) -> ServeError:
    return ServeError(f"cannot listen on {what}: {e.strerror or e}")


def _reserve_port(host: str) -> socket.socket:
    """A socket bound with SO_REUSEPORT on a free port of ``host``, not listening."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def make_listener(config: ServeConfig, processes: int, tls: bool) -> Listener:
    """Bind what the serving processes will accept on (before any fork)."""
    if config.unix_socket:
        if config.reuse_port:
            raise ServeError("--reuse-port is for TCP; a Unix socket is always shared")
        try:
            sock = bind_unix_socket(config.unix_socket, mode=config.unix_socket_mode)
        except (OSError, ValueError) as e:
            raise ServeError(f"cannot listen on {config.unix_socket}: {e}") from None
        inode = None if config.unix_socket.startswith("\0") else os.stat(config.unix_socket).st_ino
        return Listener(
            url=f"unix:{config.unix_socket}",
            port=0,
            sockets=[sock],
            unix_path=config.unix_socket,
            unix_inode=inode,
        )
    where = f"{config.host}:{config.port}"
    try:
        if config.reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise ServeError(f"--reuse-port: SO_REUSEPORT does not exist on {sys.platform}")
            if processes == 1:
                sockets = bind_sockets(config.port, config.host, reuse_port=True)
                port = sockets[0].getsockname()[1]
                return Listener(_url(config.host, port, tls), port, sockets=sockets)
            reservation = _reserve_port(config.host) if config.port == 0 else None
            port = reservation.getsockname()[1] if reservation else config.port
            return Listener(_url(config.host, port, tls), port, reservation=reservation)
        sockets = bind_sockets(config.port, config.host)
    except OSError as e:
        raise _bind_error(where, e) from None
    port = sockets[0].getsockname()[1]
    return Listener(_url(config.host, port, tls), port, sockets=sockets)


def _ssl_context(config: ServeConfig) -> ssl.SSLContext | None:
    if not config.certfile:
        if config.keyfile:
            raise ServeError("--keyfile needs --certfile")
        return None
    options = {"certfile": config.certfile}
    if config.keyfile:
        options["keyfile"] = config.keyfile
    # ssl's FileNotFoundError does not say which of the two files it is.
    for what, path in options.items():
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            name = "certificate" if what == "certfile" else "key"
            raise ServeError(f"cannot load the {name} {path}: {e.strerror}") from None
    try:
        return ssl_options_to_context(options, server_side=True)
    except (OSError, ssl.SSLError) as e:
        raise ServeError(f"cannot load the certificate {config.certfile}: {e}") from None


def _server_kwargs(config: ServeConfig, ssl_context: ssl.SSLContext | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"xheaders": config.xheaders}
    if config.trusted_downstream:
        kwargs["trusted_downstream"] = config.trusted_downstream
    if ssl_context is not None:
        kwargs["ssl_options"] = ssl_context
    optional = {
        "max_body_size": config.max_body_size,
        "max_header_size": config.max_header_size,
        "idle_connection_timeout": config.idle_timeout,
        "body_timeout": config.body_timeout,
        "max_connections": config.max_connections,
        "max_write_buffer_size": config.max_write_buffer_size,
    }
    kwargs.update((k, v) for k, v in optional.items() if v is not None)
    return kwargs


def _write_ready_file(path: str, url: str) -> None:
    # Written whole, then renamed: a reader that sees the file sees all of it.
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".reactor-ready-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(url + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _setup_logging(config: ServeConfig) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            LogFormatter(
                fmt="%(color)s[%(levelname)1.1s %(asctime)s %(process)d %(module)s:%(lineno)d]"
                "%(end_color)s %(message)s"
            )
        )
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    if not config.access_log:
        access_log.disabled = True


# -- one serving process ------------------------------------------------------------


DUPLICATE_SIGNAL_WINDOW = 1.0
"""Seconds after the first SIGTERM / SIGINT in which a supervised process takes
another as the same request to stop, not as "exit now": a process manager that
signals the whole process group (systemd's default ``KillMode=control-group``,
``kill -TERM -PGID``) reaches each serving process directly *and* through the
supervisor's forward, within milliseconds. A person's second Ctrl-C reaches the
supervisor alone (the serving processes have process groups of their own),
which then kills the serving processes itself."""


class _Drain:
    """SIGTERM / SIGINT in a serving process: stop, drain, stop the loop; twice: exit now.

    ``duplicate_window``: a second signal this soon after the first is the same
    one delivered twice (see :data:`DUPLICATE_SIGNAL_WINDOW`), and ignored.
    """

    def __init__(
        self,
        loop: IOLoop,
        server: HTTPServer,
        timeout: float,
        status_on_twice: int,
        duplicate_window: float = 0.0,
    ):
        self.loop = loop
        self.server = server
        self.timeout = timeout
        self.status_on_twice = status_on_twice
        self.duplicate_window = duplicate_window
        self.on_start: Callable[[], None] | None = None
        """Called on the loop when the drain begins (the ready file is withdrawn)."""
        self.started = False
        self.started_at = 0.0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.started:
            # Runs in the signal handler: no loop, no logging lock, just go.
            name = signal.Signals(signum).name
            if time.monotonic() - self.started_at < self.duplicate_window:
                os.write(2, f"reactor serve: {name} again, already draining\n".encode())
                return
            os.write(2, f"reactor serve: second {name}, exiting now\n".encode())
            os._exit(self.status_on_twice)
        self.started = True
        self.started_at = time.monotonic()
        self.loop.add_callback_from_signal(self.loop.spawn_callback, self.run, signum)

    def begin(self, reason: str) -> None:
        """Start draining (from the loop's thread) unless it has started."""
        if not self.started:
            self.started = True
            gen_log.warning("reactor serve: %s", reason)
            self.loop.spawn_callback(self.run, None)

    async def run(self, signum: int | None) -> None:
        if self.on_start is not None:
            self.on_start()
        if signum is not None:
            gen_log.info(
                "reactor serve: %s: draining (at most %gs)",
                signal.Signals(signum).name,
                self.timeout,
            )
        overrun = self.loop.call_later(self.timeout + OVERRUN_MARGIN, self._overrun)
        try:
            self.server.stop()
            await self.server.close_all_connections(timeout=self.timeout)
            await _cancel_what_is_left()
        finally:
            self.loop.remove_timeout(overrun)
            self.loop.stop()

    def _overrun(self) -> None:
        gen_log.error("reactor serve: the drain overran its deadline; exiting")
        sys.stderr.flush()
        os._exit(1)


async def _cancel_what_is_left() -> None:
    """Cancel the tasks still pending after the drain (handlers cut at the
    deadline, which saw ``on_connection_close``), and let them unwind: a task
    left pending would be destroyed with the loop, and logged as an error."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)


def serve_process(
    config: ServeConfig,
    target: AppTarget,
    listener: Listener,
    ssl_context: ssl.SSLContext | None,
    announce: Callable[[str], None],
    supervisor: int | None = None,
    metrics_dir: str | None = None,
) -> int:
    """Serve on this process's own loop until a signal has drained it; returns 0.

    ``announce(backend_name)`` is called from the loop once the server accepts.
    ``supervisor``: the parent's pid, watched so that an orphan drains.
    ``metrics_dir``: the supervisor's directory where the processes exchange
    their metrics (``reactor.metrics.enable_multiprocess``), with ``--metrics``.
    """
    if config.backend:
        IOLoop.configure(config.backend)
    loop = IOLoop(make_current=True)
    try:
        app = make_app(target)
        metrics = _install_metrics(app, config.metrics) if config.metrics else None
        if metrics is not None and metrics_dir is not None:
            metrics.enable_multiprocess(metrics_dir)
        server = HTTPServer(app, **_server_kwargs(config, ssl_context))
        sockets = listener.sockets
        if not sockets:  # --reuse-port with several processes: a socket of our own
            try:
                sockets = bind_sockets(listener.port, config.host, reuse_port=True)
            except OSError as e:
                raise _bind_error(f"{config.host}:{listener.port}", e) from None
        server.add_sockets(sockets)
        drain = _Drain(
            loop,
            server,
            config.drain_timeout,
            status_on_twice=1,
            duplicate_window=DUPLICATE_SIGNAL_WINDOW if supervisor is not None else 0.0,
        )
        if supervisor is None:  # one process: the ready file is ours (else the supervisor's)
            drain.on_start = functools.partial(_withdraw_ready_file, config)
        _catch(drain.on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        if supervisor is not None:

            def watch_supervisor() -> None:
                if os.getppid() != supervisor:
                    drain.begin("the supervisor is gone: draining")

            PeriodicCallback(watch_supervisor, 1000).start()
        loop.add_callback(announce, loop.backend_name)
        loop.start()
        if supervisor is not None:
            # Drained: the process exits. The interpreter's exit puts SIGTERM
            # back to its default action, so the supervisor's forward of a
            # signal that reached us directly as well (a process group killed
            # at once) would kill us now, and the exit status would say we
            # were killed. The supervisor, which alone sees a person's second
            # signal, escalates with SIGKILL: nothing is lost by ignoring these.
            for signum in SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
    finally:
        # Otherwise the drain's handlers stay: a second signal still means "exit at once".
        if metrics_dir is not None and "reactor.metrics" in sys.modules:
            # Our file goes with the loop that wrote it.
            sys.modules["reactor.metrics"].disable_multiprocess()
        loop.close(all_fds=True)
    return 0


def _install_metrics(app: Any, path: str) -> Any:
    from reactor.web import Application

    if not isinstance(app, Application):
        raise ServeError("--metrics needs APP to be a reactor.web.Application")
    try:
        metrics = importlib.import_module("reactor.metrics")
    except ImportError as e:
        raise ServeError(f"--metrics: reactor.metrics cannot be imported ({e})") from None
    metrics.install(app, path)
    return metrics


# -- the supervisor -----------------------------------------------------------------


@dataclass
class _Slot:
    """One serving process's place: task id, current pid, restart back-off."""

    task_id: int
    pid: int | None = None
    started: float = 0.0
    ready: bool = False
    backoff: float = RESTART_BACKOFF[0]
    restart_at: float | None = None


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class Supervisor:
    """Forks the serving processes, restarts them, and shuts them down on a signal."""

    def __init__(
        self,
        config: ServeConfig,
        target: AppTarget,
        listener: Listener,
        ssl_context: ssl.SSLContext | None,
        processes: int,
        metrics_dir: str | None,
    ) -> None:
        self.pid = os.getpid()
        self.config = config
        self.target = target
        self.listener = listener
        self.ssl_context = ssl_context
        self.metrics_dir = metrics_dir
        self.slots = [_Slot(i) for i in range(processes)]
        self.by_pid: dict[int, _Slot] = {}
        self.signals: list[int] = []
        self.serving = False  # every process has accepted once
        self.stopping = False
        self.deadline: float | None = None
        self.status = 0
        self.backend = ""

    # The signal handlers only note the signal; the wakeup fd wakes select().
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    @staticmethod
    def _on_sigchld(signum: int, frame: FrameType | None) -> None:
        pass

    def run(self) -> int:
        """Serve until a signal (or a failed start); returns the exit status."""
        self._ready_r, self._ready_w = os.pipe()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._ready_r, self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        old_handlers = {s: signal.getsignal(s) for s in (*SIGNALS, signal.SIGCHLD)}
        _catch(self._on_signal)
        signal.signal(signal.SIGCHLD, self._on_sigchld)
        buffer = b""
        try:
            for slot in self.slots:
                self._spawn(slot)
            while self.by_pid or not self.stopping:
                timeout = self._next_timeout()
                try:
                    readable, _, _ = select.select([self._ready_r, self._wake_r], [], [], timeout)
                except InterruptedError:
                    readable = []
                if self._wake_r in readable:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._wake_r, 4096):
                            pass
                if self._ready_r in readable:
                    with contextlib.suppress(BlockingIOError):
                        buffer += os.read(self._ready_r, 65536)
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self._on_ready(line.decode())
                self._reap()
                while self.signals:
                    self._on_shutdown_signal(self.signals.pop(0))
                self._tick()
        finally:
            if os.getpid() == self.pid:  # not in a serving process, leaving through here
                for signum, handler in old_handlers.items():
                    signal.signal(signum, handler or signal.SIG_DFL)
                signal.set_wakeup_fd(old_wakeup)
                for fd in (self._ready_r, self._ready_w, self._wake_r, self._wake_w):
                    os.close(fd)
        return self.status

    def _next_timeout(self) -> float | None:
        times = [s.restart_at for s in self.slots if s.restart_at is not None]
        if self.deadline is not None:
            times.append(self.deadline)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _spawn(self, slot: _Slot) -> None:
        slot.restart_at = None
        slot.ready = False
        sys.stdout.flush()  # or the child would write what is buffered again
        sys.stderr.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(slot.task_id)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        slot.pid = pid
        slot.started = time.monotonic()
        self.by_pid[pid] = slot

    def _child(self, task_id: int) -> NoReturn:
        status = 1
        try:  # everything that fails is this process's exit status, nothing else
            os.setpgid(0, 0)
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (self._ready_r, self._wake_r, self._wake_w):
                os.close(fd)
            process._task_id = task_id  # what reactor.process.task_id() reports
            process._reseed_random()
            ready_w = self._ready_w

            def announce(backend: str) -> None:
                os.write(ready_w, f"{task_id} {os.getpid()} {backend}\n".encode())

            status = serve_process(
                self.config,
                self.target,
                self.listener,
                self.ssl_context,
                announce,
                supervisor=os.getppid(),
                metrics_dir=self.metrics_dir,
            )
        except ServeError as e:
            print(f"reactor serve: error: {e}", file=sys.stderr)
            status = EXIT_USAGE
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        raise _ChildExit(status)

    def _on_ready(self, line: str) -> None:
        try:
            task, pid, backend = line.split()
            slot = self.slots[int(task)]
        except (ValueError, IndexError):
            gen_log.warning("reactor serve: a serving process said %r", line)
            return
        if slot.pid != int(pid):
            return  # a process that has died since
        slot.ready = True
        self.backend = backend
        if self.serving:
            gen_log.info("reactor serve: process %d (pid %s) serves again", slot.task_id, pid)
        elif all(s.ready for s in self.slots) and not self.stopping:
            self.serving = True
            _announce(self.config, self.listener, backend, len(self.slots))

    def _reap(self) -> None:
        while self.by_pid:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self.by_pid.pop(pid, None)
            if slot is None:
                continue
            slot.pid = None
            self._on_exit(slot, pid, status)

    def _on_exit(self, slot: _Slot, pid: int, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        if self.stopping:
            level = logging.INFO if code == 0 else logging.WARNING
            gen_log.log(
                level, "reactor serve: process %d (pid %d) %s", slot.task_id, pid, _describe(status)
            )
            if code != 0:
                self.status = 1
            return
        if not self.serving:
            # Starting failed (a factory that raises, a port taken): restarting
            # would fail the same way, so stop the others and say so.
            gen_log.error(
                "reactor serve: process %d (pid %d) %s before it served; stopping",
                slot.task_id,
                pid,
                _describe(status),
            )
            self.status = EXIT_USAGE if code == EXIT_USAGE else 1
            self._shutdown(signal.SIGTERM)
            return
        uptime = time.monotonic() - slot.started
        if uptime >= RESTART_RESET_UPTIME:
            slot.backoff = RESTART_BACKOFF[0]
        gen_log.warning(
            "reactor serve: process %d (pid %d) %s; restarting in %gs",
            slot.task_id,
            pid,
            _describe(status),
            slot.backoff,
        )
        slot.restart_at = time.monotonic() + slot.backoff
        slot.backoff = min(slot.backoff * 2, RESTART_BACKOFF[1])

    def _on_shutdown_signal(self, signum: int) -> None:
        if not self.stopping:
            _withdraw_ready_file(self.config)
            gen_log.info(
                "reactor serve: %s: draining %d process(es) (at most %gs)",
                signal.Signals(signum).name,
                len(self.by_pid),
                self.config.drain_timeout,
            )
            self._shutdown(signum)
            return
        gen_log.warning(
            "reactor serve: second %s: killing the serving processes", signal.Signals(signum).name
        )
        self._kill_all()

    def _shutdown(self, signum: int) -> None:
        self.stopping = True
        for slot in self.slots:
            slot.restart_at = None
        # Our copy of a shared socket would keep it listening after every
        # child closed its own: close it, so that new clients are refused.
        self.listener.close()
        for pid in self.by_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        self.deadline = time.monotonic() + self.config.drain_timeout + OVERRUN_MARGIN * 2

    def _kill_all(self) -> None:
        for pid in list(self.by_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(self.by_pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.by_pid.clear()
        self.status = 1

    def _tick(self) -> None:
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline and self.by_pid:
            gen_log.error("reactor serve: serving processes overran the drain; killing them")
            self._kill_all()
            return
        for slot in self.slots:
            if slot.restart_at is not None and now >= slot.restart_at and not self.stopping:
                self._spawn(slot)


# -- serve ----------------------------------------------------------------------------


def _withdraw_ready_file(config: ServeConfig) -> None:
    """The drain has begun: remove the ready file, so that whatever reads it
    as "this server takes traffic" (a readiness check) stops sending any."""
    if config.ready_file:
        with contextlib.suppress(OSError):
            os.unlink(config.ready_file)


def _announce(config: ServeConfig, listener: Listener, backend: str, processes: int) -> None:
    if config.ready_file:
        _write_ready_file(config.ready_file, listener.url)
    plural = "process" if processes == 1 else "processes"
    print(
        f"reactor serve: {listener.url} on {backend}, {processes} {plural} (pid {os.getpid()})",
        flush=True,
    )


def serve(config: ServeConfig) -> int:
    """Serve ``config.app`` as the command line asked; returns the exit status.

    Raises :class:`ServeError` for a bad APP, backend, certificate or address.
    """
    if config.backend:
        try:
            backends.get(config.backend)
        except backends.BackendError as e:
            raise ServeError(f"--backend: {e}") from None
    else:
        try:
            backends.get(backends.env_choice())
        except backends.BackendError as e:
            raise ServeError(f"REACTOR_BACKEND: {e}") from None
    target = load_app(config.app)
    ssl_context = _ssl_context(config)
    if config.ready_file:
        folder = os.path.dirname(os.path.abspath(config.ready_file))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ServeError(f"--ready-file: cannot write in {folder}")
    processes = config.processes or process.cpu_count()
    if processes > 1 and (IOLoop.initialized() or IOLoop.current(instance=False) is not None):
        raise ServeError(f"importing {config.app!r} made an IOLoop; a fork cannot copy one")
    _setup_logging(config)
    listener = make_listener(config, processes, ssl_context is not None)
    metrics_dir = None
    supervisor_pid = os.getpid()
    try:
        if processes == 1:

            def announce(backend: str) -> None:
                _announce(config, listener, backend, 1)

            return serve_process(config, target, listener, ssl_context, announce)
        if config.metrics:
            metrics_dir = tempfile.mkdtemp(prefix="reactor-metrics-")
        supervisor = Supervisor(config, target, listener, ssl_context, processes, metrics_dir)
        return supervisor.run()
    except _ChildExit as e:  # a serving process, done
        return e.status
    finally:
        if os.getpid() == supervisor_pid:  # a serving process leaves all this to its supervisor
            listener.close()
            listener.remove_unix_socket()
            if config.ready_file:
                with contextlib.suppress(OSError):
                    os.unlink(config.ready_file)
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
