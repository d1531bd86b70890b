#!/usr/bin/env python
"""Profile the web layer's request path: where a request's CPU time goes.

Serves ``bench_web.py``'s application (``web_apps/tornado_app.py``, from
``reactor`` or from ``tornado``) in this process under ``cProfile``, while
``wrk`` (a subprocess, pinned to another CPU when there are two) sends GETs
of one path for a few seconds; then prints the functions by their own time
and by cumulative time, per request (µs), so that a change to the hot path
can be weighed in microseconds::

    python benchmarks/profile_web.py                       # reactor, epoll, GET /
    python benchmarks/profile_web.py --pkg tornado         # the same on Tornado 6.6
    python benchmarks/profile_web.py --layer handler       # the 50-route Application
    python benchmarks/profile_web.py --dump /tmp/web.prof  # also save the raw profile

cProfile slows every Python call by a similar amount, so its absolute
numbers are larger than the benchmark's; read the shares and the ranks.
For a sampling profile without that overhead, run the same command under
``py-spy record --format raw -o /tmp/web.folded -- python
benchmarks/profile_web.py --no-profile``, then ``python
benchmarks/profile_web.py --folded /tmp/web.folded`` for the shares per
function. ``--client pipelined --layer handler`` drives one connection with
32 pipelined GETs per write instead of wrk (``bench_web.py``'s layer
client), so that the socket calls weigh less beside the Python.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import _common  # noqa: F401 (puts this checkout's reactor on sys.path)
from bench_http import _free_port
from web_apps import PATHS, tornado_app, write_static

WITHOUT = {
    "etag": "compute_etag returns None (no Etag, no 304 check)",
    "log": "a log_function that does nothing",
    "static": "no static_path (its three routes gone)",
    "default-headers": "Server, Date and Content-Type cleared before finish (fewer "
    "headers to encode and send)",
}


def _remove(app: Any, part: str, pkg: str) -> None:
    """Take one part away from the benchmark application (see WITHOUT)."""
    web = __import__(f"{pkg}.web", fromlist=["RequestHandler"])
    if part == "etag":
        web.RequestHandler.compute_etag = lambda self: None
    elif part == "log":
        app.settings["log_function"] = lambda handler: None
    elif part == "static":
        app.default_router.rules[0].target.rules[:] = [
            rule
            for rule in app.default_router.rules[0].target.rules
            if "static" not in getattr(rule.target, "__name__", "").lower()
        ]
    elif part == "default-headers":
        original = web.RequestHandler.finish

        def finish(self: Any, chunk: Any = None) -> Any:
            for name in ("Server", "Date", "Content-Type"):
                self.clear_header(name)
            return original(self, chunk)

        web.RequestHandler.finish = finish


def _client(cmd: list[str], timeout: float, done: Any) -> None:
    """Run the client process (pinned to the second CPU if there is one)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2 and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpus[-1]), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    done(proc.stdout + proc.stderr)


def _drive(port: int, layer: str, requests: int) -> int:
    """The pipelined client: ``requests`` GETs of /target, LAYER_BATCH per write."""
    from bench_web import LAYER_BATCH, _pipelined_batches

    batches = max(1, requests // LAYER_BATCH)
    _pipelined_batches(port, layer, batches)
    print(f"  {batches * LAYER_BATCH} requests in")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pkg", choices=("reactor", "tornado"), default="reactor")
    parser.add_argument("--backend", default="epoll", help="reactor's backend (default epoll)")
    parser.add_argument(
        "--bench", choices=tuple(PATHS), default="hello", help="the path to GET (default hello)"
    )
    parser.add_argument(
        "--layer", choices=tornado_app.LAYERS, help="serve one layer's target, GET /target"
    )
    parser.add_argument(
        "--client",
        choices=("wrk", "pipelined"),
        default="wrk",
        help="wrk (default), or one connection sending 32 pipelined GETs of /target per "
        "write (with --layer; bench_web.py's layer client)",
    )
    parser.add_argument(
        "--requests", type=int, default=50_000, help="pipelined requests (default 50,000)"
    )
    parser.add_argument(
        "--folded",
        metavar="PATH",
        help="only read py-spy's raw output (--format raw) and print the shares per function",
    )
    parser.add_argument(
        "--without",
        action="append",
        choices=tuple(WITHOUT),
        help="serve the application without one part, to weigh it by difference "
        "(may be repeated): " + "; ".join(f"{k}: {v}" for k, v in WITHOUT.items()),
    )
    parser.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=int, default=3, help="wrk seconds (default 3)")
    parser.add_argument("--connections", type=int, default=100, help="wrk -c (default 100)")
    parser.add_argument("--limit", type=int, default=35, help="rows per listing (default 35)")
    parser.add_argument("--dump", metavar="PATH", help="also write the raw profile here")
    parser.add_argument(
        "--no-profile", action="store_true", help="no cProfile (for py-spy); print requests/s"
    )
    args = parser.parse_args()
    if args.folded:
        return folded_shares(args.folded, args.limit)
    if args.drive is not None:
        return _drive(args.drive, args.layer or "bare", args.requests)
    if args.client == "pipelined" and args.layer is None:
        parser.error("--client pipelined needs --layer")
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]})
    static = tempfile.mkdtemp()
    write_static(static)
    port = _free_port()
    path = "/target" if args.layer else PATHS[args.bench]
    target = (
        tornado_app.make_app(args.pkg, static)
        if args.layer is None
        else tornado_app.layer_target(args.pkg, args.layer)
    )
    for variant in args.without or ():
        _remove(target, variant, args.pkg)
    httpserver = __import__(f"{args.pkg}.httpserver", fromlist=["HTTPServer"])
    ioloop = __import__(f"{args.pkg}.ioloop", fromlist=["IOLoop"])
    if args.pkg == "reactor":
        ioloop.IOLoop.configure(args.backend)
    loop = ioloop.IOLoop.current()
    httpserver.HTTPServer(target).listen(port, "127.0.0.1")
    output: list[str] = []

    def done(text: str) -> None:
        output.append(text)
        loop.add_callback(loop.stop)

    if args.client == "wrk":
        cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s"]
        cmd.append(f"http://127.0.0.1:{port}{path}")
        timeout = args.duration + 60.0
    else:
        cmd = [sys.executable, __file__, "--drive", str(port), "--layer", args.layer]
        cmd += ["--requests", str(args.requests)]
        timeout = 600.0
    threading.Thread(target=_client, args=(cmd, timeout, done), daemon=True).start()
    profile = None if args.no_profile else cProfile.Profile()
    cpu0, times0 = time.process_time(), os.times()
    if profile is not None:
        profile.enable()
    loop.start()
    if profile is not None:
        profile.disable()
    cpu, times1 = time.process_time() - cpu0, os.times()
    user, system = times1.user - times0.user, times1.system - times0.system
    shutil.rmtree(static, ignore_errors=True)

    text = output[0] if output else ""
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m is None:
        print(text, file=sys.stderr)
        return 1
    requests = int(m.group(1))
    errors = re.search(r"Socket errors.*|Non-2xx.*", text)
    print(
        f"{args.pkg} ({args.backend if args.pkg == 'reactor' else 'asyncio'}), GET {path}: "
        f"{requests:,} requests, {cpu / requests * 1e6:.1f} µs of server CPU each "
        f"({user / requests * 1e6:.1f} user + {system / requests * 1e6:.1f} system)"
        + (" (profiled)" if profile is not None else "")
        + (f" ({errors.group(0).strip()})" if errors else "")
    )
    if profile is None:
        return 0
    if args.dump:
        profile.dump_stats(args.dump)
    for sort in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(profile, stream=buf)
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"\n== by {sort}: {total / requests * 1e6:.1f} µs per request in all (profiled)")
        print(f"{'own µs/req':>10} {'cum µs/req':>10} {'calls/req':>9}  function")
        rows = sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda kv: kv[1][2] if sort == "tottime" else kv[1][3],
            reverse=True,
        )
        for (filename, line, name), (_cc, ncalls, tt, ct, _callers) in rows[: args.limit]:
            where = f"{_short(filename)}:{line}({name})"
            print(
                f"{tt / requests * 1e6:10.2f} {ct / requests * 1e6:10.2f} "
                f"{ncalls / requests:9.2f}  {where}"
            )
    return 0


_FRAME = re.compile(r"(.*) \((.*?):\d+\)$")


def folded_shares(path: str, limit: int) -> int:
    """Each function's share of the loop's samples in a py-spy raw profile:
    inclusive (anywhere on the stack) and its own (the innermost frame;
    py-spy without --native counts a C call as its Python caller's)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            if not any("IOLoop.start" in f or "run_forever" in f for f in frames):
                continue  # start-up, not the serving loop
            n = int(count)
            total += n
            keys = []
            for frame in frames:
                m = _FRAME.match(frame)
                keys.append(f"{_short(m.group(2))}:{m.group(1)}" if m else frame)
            for key in set(keys):
                inclusive[key] = inclusive.get(key, 0) + n
            own[keys[-1]] = own.get(keys[-1], 0) + n
    if not total:
        print("no samples of a running loop")
        return 1
    for title, counts in (("inclusive", inclusive), ("own", own)):
        print(f"== {title} share of {total:,} samples")
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]:
            print(f"{100 * n / total:6.1f}%  {key}")
    return 0


def _short(filename: str) -> str:
    for marker in ("/reactor/", "/tornado/", "/benchmarks/", "/lib/python"):
        i = filename.rfind(marker)
        if i >= 0:
            return filename[i + 1 :]
    return filename


if __name__ == "__main__":
    sys.exit(main())
