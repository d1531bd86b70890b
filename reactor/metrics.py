"""Prometheus metrics of the loop and the servers: a ``/metrics`` handler.

``install(app)`` adds :class:`MetricsHandler` at ``/metrics``; a GET answers
in the Prometheus text exposition format, made by ``prometheus_client``
from :meth:`IOLoop.stats() <reactor.ioloop.IOLoop.stats>` of the loop that
serves the request and the :meth:`~reactor.tcpserver.TCPServer.stats` of
every live server of the process (summed), each sample labelled
``process`` (the :func:`~reactor.process.task_id`, or ``"0"``). With
:func:`enable_multiprocess`, every process of a pre-forked server writes
its values to a shared directory each second, and a scrape of any one of
them reports all of them.

Some facts this module is built on:

- A scrape may come from anyone who can reach the port, as often as they
  like. It costs one ``stats()`` call per server, the listing of one
  directory and at most one small file per process (files past
  ``_MAX_FILE_SIZE`` or past ``_MAX_FILES`` in number, names that are not
  ``<task id>.json``, symlinks, FIFOs and other non-files are not read);
  nothing is kept between scrapes.
- Processes die without cleaning up (SIGKILL, ``os._exit``, a crash): a
  file whose pid is not alive, or that was not rewritten for
  ``_STALE_AFTER`` seconds (a pid reused by another program), is ignored,
  not reported. A file that cannot be parsed (being replaced, truncated,
  not ours) is ignored too: a scrape never fails because of one.
- Files are replaced atomically (written beside, then ``os.replace``), so
  a reader sees a whole old file or a whole new one, never half of one.
- Counters are per process and restart at zero when a process restarts;
  Prometheus' ``rate()`` handles such resets, and the ``process`` label
  keeps one process's reset from hiding in another's total.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from reactor import process
from reactor.ioloop import IOLoop, PeriodicCallback
from reactor.tcpserver import TCPServer
from reactor.web import Application, RequestHandler

__all__ = ["MetricsHandler", "disable_multiprocess", "enable_multiprocess", "install"]

log = logging.getLogger("reactor.metrics")

_WRITE_INTERVAL = 1.0
"""Seconds between two writes of a process's file."""
_STALE_AFTER = 60.0
"""A file not rewritten for this long is ignored even if its pid is alive."""
_MAX_FILES = 1024
"""At most this many process files are read per scrape."""
_MAX_FILE_SIZE = 64 * 1024
"""A process file is a few hundred bytes; a larger one is not ours."""
_FILE_NAME = re.compile(r"([0-9]{1,9})\.json")

# (stats key, metric name, help). Counters get prometheus' ``_total`` suffix.
_LOOP_COUNTERS = (
    ("iterations", "reactor_loop_iterations", "Loop iterations since the loop was made."),
    ("busy_time", "reactor_loop_busy_seconds", "Time the loop spent running callbacks."),
    ("idle_time", "reactor_loop_idle_seconds", "Time the loop spent waiting in its poller."),
    ("callbacks", "reactor_loop_callbacks", "Callbacks, timers and fd handlers run."),
)
_LOOP_GAUGES = (
    (
        "longest_iteration",
        "reactor_loop_longest_iteration_seconds",
        "The longest busy stretch between two polls in about the last 10 seconds.",
    ),
    ("fds", "reactor_loop_fds", "File descriptors registered with the loop now."),
    ("timers", "reactor_loop_timers", "Timers pending now."),
    ("timer_lag", "reactor_loop_timer_lag_seconds", "How late the last timer run ran."),
)
_SERVER_COUNTERS = (
    ("connections_accepted", "reactor_server_connections_accepted", "Connections accepted."),
    ("accept_errors", "reactor_server_accept_errors", "accept() failures (EMFILE, ENFILE...)."),
    (
        "requests_served",
        "reactor_server_requests_served",
        "HTTP responses finished (a WebSocket's 101 included).",
    ),
    (
        "requests_refused",
        "reactor_server_requests_refused",
        "HTTP requests the server answered itself (400, 408, 413, 431...), unseen by handlers.",
    ),
    ("requests_failed", "reactor_server_requests_failed", "HTTP responses with a 5xx status."),
)
_SERVER_GAUGES = (
    ("connections_open", "reactor_server_connections_open", "Connections open now."),
    ("accepting", "reactor_server_accepting", "Servers accepting new connections now."),
    (
        "requests_in_flight",
        "reactor_server_requests_in_flight",
        "HTTP requests whose response has not finished.",
    ),
    ("websockets_open", "reactor_server_websockets_open", "WebSocket connections open now."),
)
_LOOP_KEYS = tuple(key for key, _, _ in _LOOP_COUNTERS + _LOOP_GAUGES)
_SERVER_KEYS = tuple(key for key, _, _ in _SERVER_COUNTERS + _SERVER_GAUGES)


class _Report:
    """One process's values: its own, read now, or another's, read from its file."""

    __slots__ = ("age", "backend", "loop", "pid", "process", "server_count", "servers")

    def __init__(
        self,
        process: str,
        pid: int,
        backend: str,
        age: float,
        loop: dict[str, float],
        servers: dict[str, float],
        server_count: int,
    ) -> None:
        self.process = process
        self.pid = pid
        self.backend = backend
        self.age = age
        self.loop = loop
        self.servers = servers
        self.server_count = server_count

    def to_json(self, now: float) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "process": self.process,
                "time": now,
                "backend": self.backend,
                "loop": self.loop,
                "servers": self.servers,
                "server_count": self.server_count,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: bytes, now: float) -> _Report:
        """Parse a process file; raise ValueError (or KeyError, TypeError) if it is not one."""
        data = json.loads(text)
        backend = data["backend"]
        process_label = data["process"]
        if not isinstance(backend, str) or not isinstance(process_label, str):
            raise ValueError("backend and process must be strings")
        return cls(
            process_label,
            _integer(data["pid"]),
            backend,
            max(0.0, now - _number(data["time"])),
            {key: _number(data["loop"][key]) for key in _LOOP_KEYS},
            {key: _number(data["servers"][key]) for key in _SERVER_KEYS},
            _integer(data["server_count"]),
        )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _process_label() -> str:
    task = process.task_id()
    return "0" if task is None else str(task)


def _own_report(label: str) -> _Report:
    """This process's values now, from the current loop and every live server."""
    stats = IOLoop.current().stats()
    loop = {key: float(stats[key]) for key in _LOOP_KEYS}
    servers = dict.fromkeys(_SERVER_KEYS, 0.0)
    count = 0
    for server in TCPServer.instances():
        count += 1
        for key, value in server.stats().items():
            if key in servers:
                servers[key] += value
    return _Report(label, os.getpid(), str(stats["backend"]), 0.0, loop, servers, count)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _has_loop() -> bool:
    """Whether ``IOLoop.current()`` would return a loop without making one."""
    if IOLoop.current(instance=False) is not None:
        return True
    return IOLoop.initialized() and threading.current_thread() is threading.main_thread()


class _Exchange:
    """The multi-process file exchange of this process (see :func:`enable_multiprocess`)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.label = _process_label()
        self.pid = os.getpid()
        self.path = os.path.join(directory, f"{self.label}.json")
        self._failing = False
        self._timer: PeriodicCallback | None = None

    def start(self) -> None:
        """Write now and every second on the current loop; with none yet, wait for
        :func:`install` or a scrape to bring one (the process was just forked)."""
        if self._timer is not None or not _has_loop():
            return
        self._timer = PeriodicCallback(self.write, _WRITE_INTERVAL * 1000)
        self.write()
        self._timer.start()

    def write(self) -> None:
        """Replace this process's file with its values now."""
        now = time.time()
        text = _own_report(self.label).to_json(now)
        temporary = os.path.join(self.directory, f".{self.label}.{self.pid}.tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temporary, self.path)
        except OSError as e:
            # The supervisor removes the directory when it stops: no error then,
            # and one warning (not one a second) if it is something else.
            if not self._failing:
                self._failing = True
                log.warning("metrics: cannot write %s: %s", self.path, e)
            return
        if self._failing:
            self._failing = False
            log.info("metrics: writing %s again", self.path)

    def stop(self) -> None:
        """Stop writing and remove this process's file (only in the process that wrote it)."""
        if self._timer is not None:
            self._timer.stop()
        if os.getpid() != self.pid:
            return  # a forked child's copy: the file is its parent's
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def reports(self, now: float) -> list[_Report]:
        """This process's values, and those of every other live process's file."""
        own = _own_report(self.label)
        reports = [own]
        try:
            entries = os.scandir(self.directory)
        except OSError:
            return reports
        seen = {own.process}
        with entries:
            read = 0
            for entry in entries:
                match = _FILE_NAME.fullmatch(entry.name)
                if match is None or match.group(1) in seen:
                    continue
                if read >= _MAX_FILES:
                    break
                read += 1
                report = _read_report(entry.path, now)
                if report is None or report.process != match.group(1):
                    continue
                if report.pid == own.pid or not _pid_alive(report.pid):
                    continue
                seen.add(report.process)
                reports.append(report)
        reports.sort(key=lambda r: (len(r.process), r.process))
        return reports


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)


def _read_report(path: str, now: float) -> _Report | None:
    # Not following a symlink, and not blocking on a FIFO: only a plain file is read.
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None  # gone meanwhile (its process exited), or a symlink
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, _MAX_FILE_SIZE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(text) > _MAX_FILE_SIZE:
        return None
    try:
        report = _Report.from_json(text, now)
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: nested too deep
        return None
    if report.age > _STALE_AFTER:
        return None
    return report


_exchange: _Exchange | None = None


def _current_exchange() -> _Exchange | None:
    if _exchange is not None and _exchange.pid != os.getpid():
        return None  # inherited through a fork: that exchange is the parent's
    return _exchange


def enable_multiprocess(directory: str) -> None:
    """Share this process's metrics with the other processes of a server.

    Call it in each serving process, after the fork, with the same
    ``directory``, one the processes' parent made and removes. The process
    writes its values to ``directory/<task id>.json`` every second, on its
    current loop (called before the process has one, it starts once
    :func:`install` or a scrape runs on it), and removes the file when it
    exits; :class:`MetricsHandler` in any of the processes then reports
    every live one. Calling it again replaces the earlier call.
    """
    global _exchange
    disable_multiprocess()
    exchange = _Exchange(os.fspath(directory))
    exchange.start()
    _exchange = exchange


def disable_multiprocess() -> None:
    """Undo :func:`enable_multiprocess` in this process: stop writing, remove its file."""
    global _exchange
    exchange, _exchange = _exchange, None
    if exchange is not None:
        exchange.stop()


@atexit.register
def _remove_at_exit() -> None:
    exchange = _current_exchange()
    if exchange is not None:
        exchange.stop()


class _ReactorCollector(Collector):
    """Reads the loop's and the servers' stats at each scrape (prometheus' custom collector)."""

    def collect(self) -> Iterable[Metric]:
        exchange = _current_exchange()
        if exchange is None:
            reports = [_own_report(_process_label())]
        else:
            exchange.start()
            reports = exchange.reports(time.time())
        return _families(reports)


def _families(reports: list[_Report]) -> Iterator[Metric]:
    labels = ["process"]
    for table, kind, source in (
        (_LOOP_COUNTERS, CounterMetricFamily, "loop"),
        (_LOOP_GAUGES, GaugeMetricFamily, "loop"),
        (_SERVER_COUNTERS, CounterMetricFamily, "servers"),
        (_SERVER_GAUGES, GaugeMetricFamily, "servers"),
    ):
        for key, name, documentation in table:
            family = kind(name, documentation, labels=labels)
            for report in reports:
                values = report.loop if source == "loop" else report.servers
                family.add_metric([report.process], values[key])
            yield family
    servers = GaugeMetricFamily(
        "reactor_server_instances", "Servers with sockets or connections.", labels=labels
    )
    info = GaugeMetricFamily(
        "reactor_process_info",
        "1 for each process reported, with its pid and loop backend.",
        labels=["process", "pid", "backend"],
    )
    age = GaugeMetricFamily(
        "reactor_process_report_age_seconds",
        "How old the values reported for the process are (0: the process that answered).",
        labels=labels,
    )
    for report in reports:
        servers.add_metric([report.process], report.server_count)
        info.add_metric([report.process, str(report.pid), report.backend], 1)
        age.add_metric([report.process], report.age)
    yield servers
    yield info
    yield age


_registry = CollectorRegistry(auto_describe=False)
_registry.register(_ReactorCollector())


class MetricsHandler(RequestHandler):
    """Answers GET with this process's (or, with :func:`enable_multiprocess`,
    every process's) loop and server metrics in the Prometheus text format.

    Mount it yourself (``(r"/metrics", MetricsHandler)``) or with
    :func:`install`. It reveals load and connection counts: where that
    matters, mount it on a port or path only the scraper reaches.
    """

    def get(self) -> None:
        """The metrics, as ``text/plain; version=...`` (prometheus_client's latest format)."""
        body = generate_latest(_registry)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


def install(app: Application, path: str = "/metrics") -> None:
    """Add :class:`MetricsHandler` to ``app`` at ``path`` (for every host,
    before the application's own rules, so a catch-all route does not hide it)."""
    app.add_handlers(r".*$", [(re.escape(path), MetricsHandler)])
    exchange = _current_exchange()
    if exchange is not None:
        exchange.start()
