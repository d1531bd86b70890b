#!/usr/bin/env python
"""Web framework benchmarks: reactor.web beside Tornado, aiohttp, Starlette, Flask.

Five wrk benchmarks, each a ``GET`` of one path of the same application,
written in each framework the way its users write it (``benchmarks/web_apps/``,
one file per framework):

``hello``     ``/``: a handler writing ``Hello world!``
``json``      ``/json``: a dict written as JSON
``template``  ``/page``: a page rendered from a template with a 50-row loop
``static``    ``/static/big.bin``: a 1-MiB file from the static file handler
``notfound``  ``/no/such/page``: the framework's own 404

and one without wrk, ``layers``: the server CPU microseconds per request of
each layer of reactor's stack (and Tornado's, beside it), each server one
layer more than the one before: a bare ``HTTPServer`` callback; + an
``Application`` of 50 routes whose last has that callback as its target;
+ a ``RequestHandler`` in that route instead; + that handler rendering the
template.
Each is driven over one real loopback connection in pipelined batches of
:data:`LAYER_BATCH` GETs, and the server's CPU time (all its threads, from
``/proc``) is divided by the number of requests.

Process layout (as ``bench_http.py``, whose helpers this script uses): the
parent runs every cell in a fresh subprocess (``--worker SPEC``) with a time
limit; the worker writes the 1-MiB static file into a temporary folder,
starts the server (``--serve SPEC``, in a session of its own, pinned to the
first CPU), waits until it listens, checks two answers by hand (status, body,
the JSON, the 50 escaped rows, the static file's bytes, the 404), then runs
wrk (``taskset -c`` the second CPU) for a warm-up and the timed run, and
stops the server: the whole process group, so gunicorn's workers go too. A
server also kills its group when its stdin closes, and after a lifetime.

A run in which wrk counted socket errors, or answers above 399 (for the 404
benchmark: answers that were not 4xx), is *flagged*: kept out of the median
and shown beside it. Every server runs without an access log; the servers'
Python logging is disabled below ERROR (so a 404 costs no warning line on
stderr anywhere, and a 500 would still show). Run
``python benchmarks/bench_web.py --help``.

Timings depend on the machine and on what else it is doing: they belong in
documents, never in tests.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import importlib.metadata
import importlib.util
import json
import logging
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_http
from _common import (
    Case,
    Cells,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    fmt,
    report_header,
    run_main,
    runs,
    unavailable_reason,
)
from bench_http import _cpu_busy, _cpus, flag_of, notes, parse_wrk, wrk_version
from web_apps import (
    ESCAPED_NAME,
    HELLO,
    JSON_OBJECT,
    PATHS,
    STATIC_SIZE,
    static_content,
    write_static,
)

# (full, quick), in whole seconds: wrk's -d takes no fractions.
DURATION_SECONDS = (3, 1)
WARMUP_SECONDS = (1, 0)
DEFAULT_REPEAT = 3
CONNECTIONS = 100
STATIC_CONNECTIONS = 16
# The layer measurement: requests per cell (full, quick), after a warm-up of a tenth.
LAYER_REQUESTS = (20_000, 1_000)
LAYER_BATCH = 32

BASELINE = "tornado"
SECOND_BASELINE = "aiohttp"

REACTOR_BACKENDS = ("select", "poll", "epoll", "asyncio", "uvloop")
IMPLEMENTATIONS: dict[str, str] = {
    **{
        f"reactor-{b}": f"reactor.web.Application on the {b} backend "
        "(web_apps/tornado_app.py, imported from reactor)"
        for b in REACTOR_BACKENDS
    },
    "tornado": "tornado.web.Application 6.6 under asyncio.run (web_apps/tornado_app.py)",
    "aiohttp": "aiohttp web.Application, web.run_app(access_log=None), default asyncio loop",
    "starlette": "Starlette on uvicorn, 1 worker, uvloop + httptools, no access log",
    "flask-wsgicontainer": "Flask in reactor's WSGIContainer, HTTPServer on epoll",
    "flask-gunicorn-sync": "Flask on gunicorn, 1 sync worker",
    "flask-gunicorn-gthread": "Flask on gunicorn, 1 gthread worker with 4 threads",
}
WRK_BENCHES = ("hello", "json", "template", "static", "notfound")
BENCHES = (*WRK_BENCHES, "layers")
LAYERS = ("bare", "routing", "handler", "template")
LAYER_IMPLS = ("reactor-epoll", "reactor-uvloop", "tornado")
# What RequestHandler.render needs besides reactor.web (the namespace has the locale).
TEMPLATE_NEEDS = ["reactor.template", "reactor.locale"]
LAYER_TITLES = {
    "bare": "HTTPServer alone",
    "routing": "+ routing",
    "handler": "+ RequestHandler",
    "template": "+ template",
}
# What ends one answer of a layer server: counted to know a batch is in.
LAYER_END = {"bare": HELLO, "routing": HELLO, "handler": HELLO, "template": b"</html>"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _unavailable(name: str) -> str | None:
    """Why an implementation cannot run here at all (then it is skipped)."""
    if name.startswith("reactor-"):
        return unavailable_reason(name)
    needs = {
        "tornado": ["tornado"],
        "aiohttp": ["aiohttp"],
        "starlette": ["starlette", "uvicorn", "uvloop", "httptools"],
        "flask-wsgicontainer": ["flask"],
        "flask-gunicorn-sync": ["flask", "gunicorn"],
        "flask-gunicorn-gthread": ["flask", "gunicorn"],
    }[name]
    missing = [dist for dist in needs if _version(dist) is None]
    return f"not installed: {', '.join(missing)} (pip install -e .[bench])" if missing else None


def not_built(impl: str, bench: str, layer: str | None = None) -> str | None:
    """The reactor part a cell needs that this checkout does not have yet.

    Such a cell reads ``n/a (not built: ...)`` in the table: never a number.
    """
    if impl == "flask-wsgicontainer":
        needs = ["reactor.wsgi"]
    elif not impl.startswith("reactor-"):
        return None
    elif bench == "layers":
        needs = {"bare": ["reactor.httpserver"], "routing": ["reactor.web"]}.get(
            layer or "", ["reactor.web"]
        )
        if layer == "template":
            needs += TEMPLATE_NEEDS
    elif bench == "template":
        needs = ["reactor.web", *TEMPLATE_NEEDS]
    else:
        needs = ["reactor.web"]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if not missing and impl.startswith("reactor-") and bench == "static":
        # The web layer's first version has a StaticFileHandler skeleton that
        # answers 404; the real one has Tornado's validate_absolute_path.
        from reactor.web import StaticFileHandler

        if not hasattr(StaticFileHandler, "validate_absolute_path"):
            missing.append("reactor.web.StaticFileHandler")
    return f"not built: {', '.join(missing)}" if missing else None


# -- the server process (--serve) ---------------------------------------------------


def _watch_stdin(lifetime: float) -> None:
    """Kill the server's whole process group (gunicorn's workers too) when
    stdin closes or the lifetime is over. Runs in a daemon thread."""
    deadline = time.monotonic() + lifetime
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.write(2, b"server: lifetime over, exiting\n")
            break
        ready, _, _ = select.select([0], [], [], remaining)
        if ready and not os.read(0, 4096):
            break
    os.killpg(os.getpgid(0), signal.SIGKILL)


def serve(spec: dict[str, Any]) -> int:
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    threading.Thread(target=_watch_stdin, args=(spec["lifetime"],), daemon=True).start()
    # No access log and no warning per 404 anywhere; errors still show.
    logging.disable(logging.WARNING)
    impl, port, static = spec["impl"], spec["port"], spec["static"]
    layer = spec.get("layer")
    if impl.startswith("reactor-") or impl == "tornado":
        from web_apps import tornado_app

        pkg = "tornado" if impl == "tornado" else "reactor"
        tornado_app.serve(pkg, impl.removeprefix("reactor-"), port, static, layer)
    elif impl == "aiohttp":
        from web_apps import aiohttp_app

        aiohttp_app.serve(port, static)
    elif impl == "starlette":
        from web_apps import starlette_app

        starlette_app.serve(port, static)
    elif impl == "flask-wsgicontainer":
        from web_apps import flask_app

        flask_app.serve_wsgicontainer("epoll", port, static)
    elif impl.startswith("flask-gunicorn-"):
        from web_apps import flask_app

        flask_app.serve_gunicorn(impl.removeprefix("flask-gunicorn-"), port, static)
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    return 0


# -- the worker (--worker): server, checks, wrk ----------------------------------------


def _group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, every thread) of the processes in a group.

    Per thread from ``/proc/P/task/T/schedstat`` (nanoseconds) where the
    kernel has it, otherwise from ``/proc/P/stat`` (clock ticks).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            try:
                ns = 0
                for task in os.scandir(f"/proc/{entry.name}/task"):
                    with open(f"{task.path}/schedstat") as f:
                        ns += int(f.read().split()[0])
                total += ns / 1e9
            except OSError:
                total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue  # the process went away meanwhile
    return total


class ServerProcess(bench_http.ServerProcess):
    """bench_http's server subprocess running this script, in a session of its
    own (gunicorn's workers are killed with it), its CPU counted over every
    process and thread of that session."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec, script=Path(__file__).resolve(), new_session=True)

    def cpu_seconds(self) -> float:
        return _group_cpu_seconds(self.proc.pid)


def check_answer(bench: str, port: int) -> bool:
    """Two GETs of the benchmark's path on one connection, each checked;
    returns whether the server kept the connection open."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    static_digest = hashlib.sha256(static_content()).digest()
    kept = True
    try:
        for _ in range(2):
            conn.request("GET", PATHS[bench])
            response = conn.getresponse()
            body = response.read()
            what = f"GET {PATHS[bench]} answered {response.status} {body[:100]!r}"
            if bench == "notfound":
                if response.status != 404:
                    raise AssertionError(what)
            elif response.status != 200 or (bench == "hello" and body != HELLO):
                raise AssertionError(what)
            elif bench == "json" and (
                json.loads(body) != JSON_OBJECT
                or not response.getheader("Content-Type", "").startswith("application/json")
            ):
                raise AssertionError(f"{what} ({response.getheader('Content-Type')})")
            elif bench == "template" and (
                body.count(b"<tr>") != 50 or ESCAPED_NAME.encode() not in body or b"<49>" in body
            ):
                raise AssertionError(f"{what}: not 50 escaped rows")
            elif bench == "static" and (
                len(body) != STATIC_SIZE or hashlib.sha256(body).digest() != static_digest
            ):
                raise AssertionError(f"{what}: {len(body)} bytes, not the static file")
            if response.will_close:
                kept = False
                conn.close()
    finally:
        conn.close()
    return kept


def run_wrk(
    port: int, path: str, conns: int, seconds: int, cpu: int | None
) -> tuple[dict[str, Any], float]:
    """One wrk run; its parsed numbers and the CPU seconds wrk used."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with status {proc.returncode}: {proc.stderr.strip()}")
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(proc.stdout), cpu_seconds


def run_flag(bench: str, result: dict[str, Any]) -> str:
    """What went wrong in a wrk run ("" if nothing). For the 404 benchmark
    every answer must be a 4xx (wrk counts those as non-2xx)."""
    errors = dict(result["errors"])
    if bench != "notfound":
        return flag_of(errors)
    not_4xx = result["requests"] - errors.pop("non2xx")
    flag = flag_of(errors)
    if not_4xx:
        flag = ", ".join(filter(None, [flag, f"{not_4xx:,} answers not 4xx"]))
    return flag


def wrk_worker(spec: dict[str, Any], tmp: str) -> dict[str, Any]:
    impl, bench = spec["impl"], spec["bench"]
    server_cpu, wrk_cpu = _cpus()
    server = ServerProcess({"impl": impl, "static": tmp, "cpu": server_cpu})
    try:
        server.wait_listening()
        if wrk_cpu is not None:
            os.sched_setaffinity(0, {wrk_cpu})
        keepalive = check_answer(bench, server.port)
        path, conns = PATHS[bench], spec["conns"]
        warm = None
        if spec["warmup"] > 0:
            warm, _ = run_wrk(server.port, path, conns, spec["warmup"], wrk_cpu)
        busy0 = _cpu_busy([server_cpu, wrk_cpu])
        scpu0, t0 = server.cpu_seconds(), time.perf_counter()
        result, wrk_seconds = run_wrk(server.port, path, conns, spec["duration"], wrk_cpu)
        scpu1, t1 = server.cpu_seconds(), time.perf_counter()
        busy1 = _cpu_busy([server_cpu, wrk_cpu])
        alive = server.proc.poll() is None
    except BaseException:
        stderr = server.close()
        if stderr:
            sys.stderr.write(f"server stderr:\n{stderr}\n")
        raise
    stderr = server.close()
    if not alive:
        raise RuntimeError(f"the server died during the run: {stderr[-500:]}")
    elapsed = t1 - t0
    server_busy, wrk_busy = (b - a for a, b in zip(busy0, busy1, strict=True))
    result.update(
        connections=conns,
        keepalive=keepalive,
        flag=run_flag(bench, result),
        warmup_flag=run_flag(bench, warm) if warm else "",
        server_cpu_pct=(scpu1 - scpu0) / elapsed * 100,
        server_cpu_us_per_request=(scpu1 - scpu0) / max(1, result["requests"]) * 1e6,
        wrk_cpu_pct=wrk_seconds / result["seconds"] * 100,
        other_server_cpu_pct=max(0.0, server_busy - (scpu1 - scpu0)) / elapsed * 100,
        other_wrk_cpu_pct=max(0.0, wrk_busy - wrk_seconds) / elapsed * 100,
        server_stderr=stderr[-500:],
        pinned=server_cpu is not None,
    )
    return result


def _pipelined_batches(port: int, layer: str, batches: int) -> None:
    """``batches`` times: LAYER_BATCH GETs in one write, then all their answers."""
    request = b"GET /target HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * LAYER_BATCH
    end = LAYER_END[layer]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(batches):
            s.sendall(request)
            seen, tail = 0, b""
            while seen < LAYER_BATCH:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise RuntimeError(f"the server closed after {seen} of a batch")
                data = tail + chunk
                seen += data.count(end)
                tail = data[-(len(end) - 1) :]
            if seen != LAYER_BATCH:
                raise RuntimeError(f"{seen} answers to a batch of {LAYER_BATCH}")


def layer_worker(spec: dict[str, Any], tmp: str) -> dict[str, Any]:
    impl, layer = spec["impl"], spec["layer"]
    server_cpu, client_cpu = _cpus()
    server = ServerProcess({"impl": impl, "static": tmp, "cpu": server_cpu, "layer": layer})
    batches = max(1, spec["requests"] // LAYER_BATCH)
    try:
        server.wait_listening()
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        with urlopen_target(server.port) as (status, body):
            if status != 200 or LAYER_END[layer] not in body:
                raise AssertionError(f"GET /target answered {status} {body[:100]!r}")
        _pipelined_batches(server.port, layer, max(1, batches // 10))
        (busy0,) = _cpu_busy([server_cpu])
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        _pipelined_batches(server.port, layer, batches)
        cpu1, t1 = server.cpu_seconds(), time.perf_counter()
        (busy1,) = _cpu_busy([server_cpu])
        alive = server.proc.poll() is None
    except BaseException:
        stderr = server.close()
        if stderr:
            sys.stderr.write(f"server stderr:\n{stderr}\n")
        raise
    stderr = server.close()
    if not alive:
        raise RuntimeError(f"the server died during the run: {stderr[-500:]}")
    requests = batches * LAYER_BATCH
    return {
        "us_per_request": (cpu1 - cpu0) / requests * 1e6,
        "requests": requests,
        "rps": requests / (t1 - t0),
        # What else ran on the server's CPU meanwhile (a shared machine shows here).
        "other_server_cpu_pct": max(0.0, (busy1 - busy0) - (cpu1 - cpu0)) / (t1 - t0) * 100,
        "server_stderr": stderr[-500:],
    }


class urlopen_target:
    """``with urlopen_target(port) as (status, body)``: one GET /target."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def __enter__(self) -> tuple[int, bytes]:
        self.conn.request("GET", "/target")
        response = self.conn.getresponse()
        return response.status, response.read()

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def worker(spec: dict[str, Any]) -> int:
    """One cell; prints its result (or ``{"na": ...}`` for a part not built)."""
    impl, bench = spec["impl"], spec["bench"]
    reason = not_built(impl, bench, spec.get("layer"))
    if reason is not None:
        emit_result({"na": reason})
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write_static(tmp)
        result = layer_worker(spec, tmp) if bench == "layers" else wrk_worker(spec, tmp)
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------


RPS = Metric("rps", "requests per second", "requests/s", True, 0)
CPU_KEY = "server_cpu_us_per_request"
LAYER_US = Metric("us_per_request", "server CPU per request", "µs", False, 1)


def make_cases(
    benches: list[str], quick: bool, duration: int | None, warmup: int | None, requests: int | None
) -> list[Case]:
    q = 1 if quick else 0
    duration = DURATION_SECONDS[q] if duration is None else duration
    warmup = WARMUP_SECONDS[q] if warmup is None else warmup
    labels = {
        "hello": "Hello world",
        "json": "JSON endpoint (a dict written)",
        "template": "Template page, 50-row loop",
        "static": "1-MiB static file",
        "notfound": "404",
    }
    cases = []
    for bench in WRK_BENCHES:
        if bench in benches:
            conns = STATIC_CONNECTIONS if bench == "static" else CONNECTIONS
            params = {"duration": duration, "warmup": warmup, "conns": conns}
            label = f"{labels[bench]}, GET {PATHS[bench]}, -c{conns}"
            cases.append(Case(bench, label, params, [RPS], warmup + duration + 90, None, BASELINE))
    if "layers" in benches:
        n = LAYER_REQUESTS[q] if requests is None else requests
        for layer in LAYERS:
            params = {"layer": layer, "requests": n}
            label = f"Layer: {LAYER_TITLES[layer]}"
            cases.append(Case("layers", label, params, [LAYER_US], 120, LAYER_IMPLS, BASELINE))
    return cases


def clean_values(cells: Cells, impl: str, key: str) -> list[float]:
    return [r[key] for r in cells.get(impl, []) if key in r and not r.get("flag")]


def clean_median(cells: Cells, impl: str, key: str) -> float | None:
    values = clean_values(cells, impl, key)
    return statistics.median(values) if values else None


def _status_cell(results: list[dict[str, Any]]) -> str | None:
    """FAILED / n/a text for a cell, or None if it has numbers."""
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return f"FAILED ({len(errors)}/{len(results)}): {errors[0]}"
    na = [r["na"] for r in results if "na" in r]
    if na:
        return f"n/a ({na[0]})"
    return None


def render_wrk_table(case: Case, impls: list[str], cells: Cells) -> list[str]:
    """Median requests/s over the clean runs, min-max, the ratios to Tornado
    and to aiohttp, the server's CPU µs per request and how many times less
    that is than Tornado's and aiohttp's (the comparison that holds when
    other processes take CPU time from the server), and the flagged runs."""
    bases = [(b, clean_median(cells, b, "rps")) for b in (BASELINE, SECOND_BASELINE)]
    any_flag = any(r.get("flag") for v in cells.values() for r in v)
    header = "| implementation | median requests/s | min - max | " + " | ".join(
        f"vs {b}" for b, _ in bases
    )
    cpu_bases = [(b, clean_median(cells, b, CPU_KEY)) for b in (BASELINE, SECOND_BASELINE)]
    header += " | server CPU µs/request | CPU per request, " + " / ".join(
        f"{b}'s ÷ this" for b, _ in cpu_bases
    )
    header += " | flagged runs (not in the median) |" if any_flag else " |"
    align = "|---|---:|---:|" + "---:|" * (len(bases) + 2) + ("---|" if any_flag else "")
    empty = " |" * (len(bases) + 2)
    rows = []
    for impl in impls:
        results = cells.get(impl, [])
        status = _status_cell(results)
        flagged = [r for r in results if r.get("flag")]
        values = clean_values(cells, impl, "rps")
        if status is not None:
            row = f"| {impl} | {status} | |{empty}"
        elif values:
            med = statistics.median(values)
            spread = f"{fmt(min(values), 0)} - {fmt(max(values), 0)}"
            ratios = " | ".join("—" if not base else f"{med / base:.2f}x" for _, base in bases)
            us = clean_median(cells, impl, CPU_KEY) or 0.0
            cpu_ratios = " / ".join(
                f"{base / us:.2f}x" if base and us else "—" for _, base in cpu_bases
            )
            row = f"| {impl} | {fmt(med, 0)} | {spread} | {ratios} | {fmt(us, 1)} | {cpu_ratios} |"
        elif flagged:
            row = f"| {impl} | every run flagged | |{empty}"
        else:
            row = f"| {impl} | no result | |{empty}"
        if any_flag:
            shown = "; ".join(f"{fmt(r['rps'], 0)} requests/s with {r['flag']}" for r in flagged)
            row += f" {len(flagged)} of {len(results)}: {shown} |" if flagged else " — |"
        rows.append(row)
    title = f"**{case.label}: requests per second** (higher is better; n = {runs(cells)} runs)"
    return [title, "", header, align, *rows, ""]


def wrk_notes(cells: Cells, impls: list[str]) -> list[str]:
    out = notes(cells, impls)
    closing = [i for i in impls if any(r.get("keepalive") is False for r in cells.get(i, []))]
    if closing:
        out.append("Closed the connection after each answer (no keep-alive): " + ", ".join(closing))
    return out


def render_layers(cases: list[Case], results: list[Cells], impls: list[str]) -> list[str]:
    """One table: per implementation, each layer's server CPU µs per request
    (median) and its increment over the layer below."""
    pairs = [(c, r) for c, r in zip(cases, results, strict=True) if c.bench == "layers"]
    if not pairs:
        return []
    shown = [i for i in impls if i.removesuffix("@base") in LAYER_IMPLS]
    n = max(runs(r) for _, r in pairs)
    out = [
        "**Server CPU µs per request, by layer** (median of "
        f"{n} runs; in brackets the increment over the layer before; lower is better)",
        "",
        "| implementation | "
        + " | ".join(LAYER_TITLES[c.params["layer"]] for c, _ in pairs)
        + " |",
        "|---|" + "---:|" * len(pairs),
    ]
    for impl in shown:
        row, before = [], None
        for _, cells in pairs:
            status = _status_cell(cells.get(impl, []))
            med = clean_median(cells, impl, "us_per_request")
            if status is not None or med is None:
                row.append(status or "—")
                before = None
                continue
            inc = "" if before is None else f" (+{med - before:.1f})"
            row.append(f"{med:.1f}{inc}")
            before = med
        out.append(f"| {impl} | " + " | ".join(row) + " |")
    other = []
    for impl in shown:
        values = [
            r["other_server_cpu_pct"]
            for _, cells in pairs
            for r in cells.get(impl, [])
            if "other_server_cpu_pct" in r
        ]
        if values:
            other.append(f"{impl} {statistics.median(values):.0f}")
    if other:
        out += [
            "",
            "Other processes on the server's CPU meanwhile, % of one core (median over the "
            "layers and runs): " + "; ".join(other) + ".",
        ]
    return [*out, ""]


def summary(cases: list[Case], results: list[Cells], impls: list[str]) -> list[str]:
    wrk = [(c, r) for c, r in zip(cases, results, strict=True) if c.bench != "layers"]
    if len(wrk) < 2:
        return []
    out = [
        f"**All wrk benchmarks: median requests/s** (ratio to {BASELINE} / to {SECOND_BASELINE})",
        "",
        "| implementation | " + " | ".join(c.bench for c, _ in wrk) + " |",
        "|---|" + "---:|" * len(wrk),
    ]
    for impl in impls:
        row = []
        for _, cells in wrk:
            status = _status_cell(cells.get(impl, []))
            med = clean_median(cells, impl, "rps")
            if status is not None or med is None:
                row.append("FAILED" if status and status.startswith("FAILED") else status or "—")
                continue
            ratios = []
            for b in (BASELINE, SECOND_BASELINE):
                base = clean_median(cells, b, "rps")
                ratios.append(f"{med / base:.2f}x" if base else "—")
            row.append(f"{fmt(med, 0)} ({' / '.join(ratios)})")
        out.append(f"| {impl} | " + " | ".join(row) + " |")
    return [*out, ""]


def _describe(result: dict[str, Any]) -> str:
    if "na" in result:
        return ""
    if "server_cpu_pct" not in result:
        return (
            f" ({fmt(result.get('rps', 0), 0)} requests/s over one connection, others on the"
            f" server's CPU {result.get('other_server_cpu_pct', 0):.0f}%)"
        )
    text = (
        f" (server CPU {result['server_cpu_pct']:.0f}%,"
        f" {result['server_cpu_us_per_request']:.1f} µs/request,"
        f" wrk CPU {result['wrk_cpu_pct']:.0f}%, others on their CPUs"
        f" {result['other_server_cpu_pct']:.0f}% / {result['other_wrk_cpu_pct']:.0f}%)"
    )
    if result.get("flag"):
        text += f" FLAGGED: {result['flag']}"
    if result.get("server_stderr"):
        text += f"; server stderr: {result['server_stderr'].splitlines()[-1][:200]}"
    return text


def versions_line() -> str:
    dists = ("aiohttp", "starlette", "uvicorn", "httptools", "flask", "gunicorn", "jinja2")
    parts = [f"{d} {_version(d) or 'not installed'}" for d in dists]
    return "- " + "; ".join(parts) + f"; {wrk_version()}"


def report(
    *,
    command: str,
    started: datetime.datetime,
    elapsed: float,
    info: dict[str, str],
    repeat: int,
    skipped: dict[str, str],
    markdown: bool,
    cases: list[Case],
    results: list[Cells],
    impls: list[str],
) -> list[str]:
    """The report's lines: how it was run, a table per wrk case with its
    notes, the layer table and the summary."""
    server_cpu, wrk_cpu = _cpus()
    out = report_header(
        command=command,
        started=started,
        elapsed=elapsed,
        info=info,
        repeat=repeat,
        skipped=skipped,
        markdown=markdown,
        baseline=BASELINE,
    )
    wrk_params = next((c.params for c in cases if c.bench != "layers"), {})
    out[-1:-1] = [
        versions_line(),
        f"- also ratio = median / median of {SECOND_BASELINE}; medians and ranges over the "
        "clean runs only (a run with socket errors, or statuses above 399 where a 200 is "
        "expected, is flagged and shown apart)",
        f"- wrk -t1, {wrk_params.get('warmup', 0)} s warm-up then "
        f"{wrk_params.get('duration', 0)} s timed, on 127.0.0.1; "
        + (
            f"server pinned to CPU {server_cpu}, wrk (and the layer client) to CPU {wrk_cpu}"
            if server_cpu is not None
            else "fewer than 2 CPUs: server and wrk not pinned"
        ),
    ]
    h = "#### " if markdown else ""
    for ci, case in enumerate(cases):
        if case.bench == "layers":
            continue
        out += [f"{h}{case.label}", ""]
        out += render_wrk_table(case, impls, results[ci])
        note = wrk_notes(results[ci], impls)
        if note:
            out += [" ".join(note), ""]
    layers = render_layers(cases, results, impls)
    if layers:
        n = cases[-1].params["requests"]
        out += [
            f"{h}Server CPU per request, layer by layer",
            "",
            f"{n:,} GETs of /target per cell over one loopback connection, {LAYER_BATCH} "
            "pipelined per write, after a warm-up of a tenth of that; the server's CPU time "
            "(every thread) divided by the requests.",
            "",
            *layers,
        ]
    summ = summary(cases, results, impls)
    if summ:
        out += [f"{h}Summary", "", *summ]
    return out


def from_json(path: str, markdown: bool) -> int:
    """Print the report of a run saved with ``--json`` (e.g. after a change
    to the tables), without running anything."""
    raw = json.loads(Path(path).read_text())
    cases, results = [], []
    for c in raw["cases"]:
        layers = c["bench"] == "layers"
        metric = LAYER_US if layers else RPS
        impls_of = LAYER_IMPLS if layers else None
        cases.append(Case(c["bench"], c["label"], c["params"], [metric], 0, impls_of, BASELINE))
        results.append(c["results"])
    seen = {impl for cells in results for impl in cells}
    impls = [i for i in IMPLEMENTATIONS if i in seen]
    impls += sorted(seen - set(impls))
    out = report(
        command=raw["command"],
        started=datetime.datetime.fromisoformat(raw["date"]),
        elapsed=float(raw["machine"].get("elapsed_s", 0.0)),
        info=raw["machine"],
        repeat=raw["repeat"],
        skipped=raw["skipped"],
        markdown=markdown,
        cases=cases,
        results=results,
        impls=impls,
    )
    out.insert(out.index("") if not markdown else 2, f"- re-rendered from {path}")
    print("\n".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Web framework benchmarks with wrk: reactor.web on every backend vs "
        "Tornado, aiohttp, Starlette and Flask (hello, JSON, template, static file, 404), "
        "and the server CPU per request of each layer.",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), BENCHES)
    parser.set_defaults(repeat=DEFAULT_REPEAT)
    for action in parser._actions:
        if action.dest == "repeat":
            action.help = f"run the whole set R times and report medians (default {DEFAULT_REPEAT})"
    parser.add_argument(
        "--duration", type=int, metavar="S", help="timed seconds per wrk cell (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, metavar="S", help="warm-up seconds per wrk cell (default 1)"
    )
    parser.add_argument(
        "--layer-requests",
        type=int,
        metavar="N",
        help=f"requests per layer cell (default {LAYER_REQUESTS[0]:,}, "
        f"with --quick {LAYER_REQUESTS[1]:,})",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="print the report of a run saved with --json, running nothing",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.from_json:
        return from_json(args.from_json, args.markdown)

    if args.serve:
        return serve(json.loads(args.serve))
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if (args.duration is not None and args.duration < 1) or (
        args.warmup is not None and args.warmup < 0
    ):
        parser.error("--duration must be at least 1 s and --warmup at least 0 s")
    if args.layer_requests is not None and args.layer_requests < LAYER_BATCH:
        parser.error(f"--layer-requests must be at least {LAYER_BATCH}")
    benches = list(args.bench or BENCHES)
    if any(b in WRK_BENCHES for b in benches) and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), _unavailable)
    _, wrk_cpu = _cpus()
    if wrk_cpu is not None and shutil.which("taskset") is None:
        parser.error("taskset is not on PATH (util-linux), and wrk is pinned with it")
    cases = make_cases(benches, args.quick, args.duration, args.warmup, args.layer_requests)
    command = "python benchmarks/bench_web.py " + " ".join(argv or sys.argv[1:])

    run = drive(__file__, args, cases, impls, skipped, describe=_describe)

    out = report(
        command=command,
        started=run.started,
        elapsed=run.elapsed,
        info=run.info,
        repeat=args.repeat,
        skipped=skipped,
        markdown=args.markdown,
        cases=run.cases,
        results=run.results,
        impls=run.impls,
    )
    print("\n".join(out))

    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
