"""``/metrics`` (:mod:`reactor.metrics`) on every backend.

What a scraper gets is read back with prometheus_client's own parser (the
format is theirs; the test checks it parses and says what happened), and
the multi-process exchange runs in two real forked processes, each asked
for the other's values. Files a process did not write, or that a dead
process left behind, are put in the exchange directory by hand and must not
show up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reactor import metrics
from reactor.httpclient import AsyncHTTPClient
from reactor.ioloop import IOLoop
from reactor.testing import ExpectLog
from reactor.web import Application, RequestHandler

pytestmark = pytest.mark.usefixtures("reactor_log")

ROOT = Path(__file__).resolve().parent.parent.parent
DEADLINE = 20.0


class Hello(RequestHandler):
    def get(self) -> None:
        self.write("hello")


class Boom(RequestHandler):
    def get(self) -> None:
        raise RuntimeError("expected by the test")


class CatchAll(RequestHandler):
    def get(self, path: str) -> None:
        self.write("catch-all")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample: (name, labels) -> value; fails on anything the parser refuses."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, process: str = "0") -> float:
    return samples[(name, frozenset({("process", process)}))]


def processes(samples: Samples) -> dict[str, dict[str, str]]:
    """``process`` label -> the labels of its ``reactor_process_info`` sample."""
    found = {}
    for (name, labels), _ in samples.items():
        if name == "reactor_process_info":
            info = dict(labels)
            found[info["process"]] = info
    return found


async def scrape(client: AsyncHTTPClient, url: str) -> Samples:
    response = await client.fetch(url)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.body.decode())


@pytest.fixture
def app() -> Application:
    application = Application(
        [(r"/hello", Hello), (r"/boom", Boom), (r"/(.*)", CatchAll)], log_function=lambda h: None
    )
    metrics.install(application)
    return application


@pytest.fixture
def single_process() -> Iterator[None]:
    """A test that turns the exchange on has it turned off after."""
    yield
    metrics.disable_multiprocess()


async def test_metrics_parse_and_name_every_family(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str
) -> None:
    samples = await scrape(http_client, base_url + "/metrics")
    for name in (
        "reactor_loop_iterations_total",
        "reactor_loop_busy_seconds_total",
        "reactor_loop_idle_seconds_total",
        "reactor_loop_callbacks_total",
        "reactor_loop_longest_iteration_seconds",
        "reactor_loop_fds",
        "reactor_loop_timers",
        "reactor_loop_timer_lag_seconds",
        "reactor_server_connections_open",
        "reactor_server_connections_accepted_total",
        "reactor_server_accept_errors_total",
        "reactor_server_accepting",
        "reactor_server_requests_in_flight",
        "reactor_server_requests_served_total",
        "reactor_server_requests_refused_total",
        "reactor_server_requests_failed_total",
        "reactor_server_websockets_open",
        "reactor_server_instances",
        "reactor_process_report_age_seconds",
    ):
        assert value(samples, name) >= 0, name
    assert value(samples, "reactor_loop_iterations_total") > 0
    assert value(samples, "reactor_loop_fds") >= 2  # the listening socket, the connection
    assert value(samples, "reactor_server_instances") >= 1
    assert value(samples, "reactor_server_accepting") >= 1
    assert value(samples, "reactor_server_connections_open") >= 1  # this scrape's
    assert value(samples, "reactor_server_requests_in_flight") >= 1  # this scrape
    assert processes(samples) == {
        "0": {"process": "0", "pid": str(os.getpid()), "backend": io_loop.stats()["backend"]}
    }


async def test_request_counters_grow(http_client: AsyncHTTPClient, base_url: str) -> None:
    before = await scrape(http_client, base_url + "/metrics")
    for _ in range(3):
        assert (await http_client.fetch(base_url + "/hello")).body == b"hello"
    with ExpectLog("reactor.application", "Uncaught exception GET /boom"):
        response = await http_client.fetch(base_url + "/boom", raise_error=False)
    assert response.code == 500
    after = await scrape(http_client, base_url + "/metrics")

    def grew(name: str) -> float:
        return value(after, name) - value(before, name)

    # The 3 hellos, the 500 and the first scrape finished in between.
    assert grew("reactor_server_requests_served_total") >= 5
    assert grew("reactor_server_requests_failed_total") == 1
    assert grew("reactor_loop_callbacks_total") > 0
    assert grew("reactor_loop_iterations_total") > 0
    assert grew("reactor_loop_busy_seconds_total") > 0


async def test_install_wins_over_a_catch_all_route(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    assert (await http_client.fetch(base_url + "/other")).body == b"catch-all"
    response = await http_client.fetch(base_url + "/metrics")
    assert b"reactor_loop_iterations_total" in response.body
    assert response.headers["Cache-Control"] == "no-store"


def write_report(directory: Path, label: str, **change: Any) -> None:
    """A process file as a live process writes it, with ``change`` applied."""
    report = {
        "pid": os.getppid(),  # alive, and not this process
        "process": label,
        "time": time.time(),
        "backend": "poll",
        "loop": dict.fromkeys(metrics._LOOP_KEYS, 7),
        "servers": dict.fromkeys(metrics._SERVER_KEYS, 3),
        "server_count": 1,
    }
    report.update(change)
    (directory / f"{label}.json").write_text(json.dumps(report))


@pytest.mark.usefixtures("single_process")
async def test_exchange_reports_live_files_and_ignores_the_rest(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, tmp_path: Path
) -> None:
    metrics.enable_multiprocess(str(tmp_path))
    own = json.loads((tmp_path / "0.json").read_text())
    assert own["pid"] == os.getpid() and own["process"] == "0"

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_report(tmp_path, "1")  # live: reported
    write_report(tmp_path, "2", pid=dead.pid)  # its process is gone
    write_report(tmp_path, "3", time=time.time() - 3600)  # not rewritten for an hour
    write_report(tmp_path, "4", loop={"iterations": "many"})  # not ours
    write_report(tmp_path, "5", process="6")  # says it is another process
    (tmp_path / "7.json").write_text('{"pid": ')  # cut short
    (tmp_path / "8.json").write_bytes(b" " * (metrics._MAX_FILE_SIZE + 1) + b"{}")
    (tmp_path / "9.json").mkdir()  # not even a file
    os.mkfifo(tmp_path / "10.json")  # a FIFO: opening it to read would block
    write_report(tmp_path, "real", process="11")  # its target is a good file
    (tmp_path / "11.json").symlink_to(tmp_path / "real.json")  # but a symlink
    write_report(tmp_path, "x")  # not a task id
    write_report(tmp_path, "0", pid=os.getppid())  # our own label: we report ourselves

    samples = await scrape(http_client, base_url + "/metrics")
    assert set(processes(samples)) == {"0", "1"}
    assert processes(samples)["0"]["pid"] == str(os.getpid())
    assert value(samples, "reactor_loop_iterations_total", "1") == 7
    assert value(samples, "reactor_server_requests_served_total", "1") == 3
    assert value(samples, "reactor_process_report_age_seconds", "0") == 0
    assert value(samples, "reactor_process_report_age_seconds", "1") >= 0

    metrics.disable_multiprocess()
    assert not (tmp_path / "0.json").exists()
    samples = await scrape(http_client, base_url + "/metrics")
    assert set(processes(samples)) == {"0"}  # only ourselves again


@pytest.mark.usefixtures("single_process")
async def test_a_scrape_reads_a_bounded_number_of_files(
    io_loop: IOLoop,
    http_client: AsyncHTTPClient,
    base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_MAX_FILES", 3)
    metrics.enable_multiprocess(str(tmp_path))
    for label in range(1, 8):
        write_report(tmp_path, str(label))
    samples = await scrape(http_client, base_url + "/metrics")
    assert len(processes(samples)) == 1 + 3  # itself, and the first 3 files listed


@pytest.mark.usefixtures("single_process")
async def test_exchange_file_is_rewritten_every_second(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, tmp_path: Path
) -> None:
    metrics.enable_multiprocess(str(tmp_path))
    path = tmp_path / "0.json"
    first = json.loads(path.read_text())
    deadline = time.monotonic() + DEADLINE
    while json.loads(path.read_text())["time"] == first["time"]:
        assert time.monotonic() < deadline, "the file was not rewritten"
        await http_client.fetch(base_url + "/hello")  # lets the loop run its timer
    assert json.loads(path.read_text())["loop"]["iterations"] > first["loop"]["iterations"]
    assert [p.name for p in tmp_path.iterdir()] == ["0.json"]  # no temporary left over


# -- two real processes -----------------------------------------------------------------


def backend_env(spec: Any) -> str:
    """What to put in REACTOR_BACKEND for the spec ``reactor_backend`` gives."""
    return spec if isinstance(spec, str) else f"{spec.__module__}:{spec.__qualname__}"


def http_get(port: int, path: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


def test_two_processes_each_report_both(reactor_backend: Any, tmp_path: Path) -> None:
    """``fork_processes(2)``; each child serves on a port of its own and calls
    ``enable_multiprocess`` on one directory (one before it has a loop, one
    after): a scrape of either one reports both, each with its own values,
    and each removes its file as it exits."""
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    ready = tmp_path / "ready"
    ready.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        REACTOR_BACKEND=backend_env(reactor_backend),
    )
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.test_metrics", str(exchange), str(ready)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: dict[str, tuple[int, int]] = {}
    try:
        deadline = time.monotonic() + DEADLINE
        while len(children) < 2:
            assert parent.poll() is None, parent.communicate()[1]
            assert time.monotonic() < deadline, "the children did not start"
            for path in ready.glob("*.ready"):
                pid, port = path.read_text().split()
                children[path.stem] = (int(pid), int(port))
            time.sleep(0.05)  # polling for files the children write, with a deadline
        assert set(children) == {"0", "1"}

        for label, (pid, port) in children.items():
            http_get(port, "/hello")
            # Each wrote its file before saying it was ready.
            samples = parse(http_get(port, "/metrics"))
            found = processes(samples)
            assert set(found) == {"0", "1"}, found
            assert {found[t]["pid"] for t in found} == {str(p) for p, _ in children.values()}
            assert found[label]["pid"] == str(pid)
            assert value(samples, "reactor_process_report_age_seconds", label) == 0
            assert value(samples, "reactor_server_requests_served_total", label) >= 1
            assert value(samples, "reactor_server_instances", label) == 1

        for pid, _ in children.values():
            os.kill(pid, signal.SIGTERM)
        _, err = parent.communicate(timeout=DEADLINE)
        assert parent.returncode == 0, err
        assert list(exchange.iterdir()) == []  # each child removed its file
    finally:
        if parent.poll() is None:
            for pid, _ in children.values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            parent.kill()
            parent.communicate()


def test_serve_processes_report_each_other(reactor_backend: Any, tmp_path: Path) -> None:
    """``python -m reactor serve --processes 2 --reuse-port --metrics /metrics``:
    whichever process answers a scrape, both processes are in it."""
    ready = tmp_path / "ready"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        REACTOR_BACKEND=backend_env(reactor_backend),
    )
    command = [
        sys.executable, "-m", "reactor", "serve", "examples.serve_app:make_app",
        "--port", "0", "--processes", "2", "--reuse-port", "--no-access-log",
        "--metrics", "/metrics", "--ready-file", str(ready),
    ]  # fmt: skip
    supervisor = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.exists():
            assert supervisor.poll() is None, supervisor.communicate()[1]
            assert time.monotonic() < deadline, "serve did not get ready"
            time.sleep(0.05)  # polling for the file serve writes, with a deadline
        port = int(ready.read_text().strip().rsplit(":", 1)[1].rstrip("/"))
        answered: set[str] = set()
        for _ in range(200):  # new connections, spread by SO_REUSEPORT's hash
            samples = parse(http_get(port, "/metrics"))
            found = processes(samples)
            if len(found) < 2:  # the other has not written its first file yet
                assert time.monotonic() < deadline, found
                continue
            assert set(found) == {"0", "1"}, found
            assert len({info["pid"] for info in found.values()}) == 2
            answering = [
                t for t in found if value(samples, "reactor_process_report_age_seconds", t) == 0
            ]
            assert len(answering) == 1
            answered.add(answering[0])
            if answered == {"0", "1"}:
                break
        assert answered == {"0", "1"}, "one process answered every scrape"
        supervisor.send_signal(signal.SIGTERM)
        _, err = supervisor.communicate(timeout=DEADLINE)
        assert supervisor.returncode == 0, err
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.communicate()


def _serve_two(exchange: str, ready: str) -> None:
    """The program of test_two_processes_each_report_both (run as ``-m``)."""
    from reactor import process
    from reactor.httpserver import HTTPServer
    from reactor.netutil import bind_sockets

    task = process.fork_processes(2, max_restarts=0)
    if task == 1:  # as serve does: before the loop is made; install() starts it
        metrics.enable_multiprocess(exchange)
    loop = IOLoop.current()
    application = Application([(r"/hello", Hello)], log_function=lambda h: None)
    metrics.install(application)
    server = HTTPServer(application)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    if task == 0:  # with the loop current: it starts at once
        metrics.enable_multiprocess(exchange)
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
    port = sockets[0].getsockname()[1]
    temporary = os.path.join(ready, f".{task}")
    with open(temporary, "w") as f:
        f.write(f"{os.getpid()} {port}")
    os.replace(temporary, os.path.join(ready, f"{task}.ready"))
    loop.start()
    server.stop()


if __name__ == "__main__":
    _serve_two(sys.argv[1], sys.argv[2])
