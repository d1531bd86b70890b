#!/usr/bin/env python
"""A client that pipelines and never reads: how far ahead does the server run?

Each server answers ``GET /`` with a 64 KiB body and counts the handlers it
ran; ``GET /stats`` (on a second connection) answers with that count and the
process's resident set size. The client warms the server up, then writes
``--requests`` (default 3,000) pipelined GETs on one connection without reading
any answer, waits until the handler count stops moving, and reads the stats:

- *handlers ahead*: handlers run for the flood while the client read nothing;
- *RSS growth*: the server's resident set after the flood minus before it.

Then the client reads every answer and checks that all arrived, complete and
in order. A server with write backpressure runs a few handlers and holds a
few buffers; one without it runs them all and holds every answer in memory.

Servers: reactor's bare ``HTTPServer`` on the chosen backend (``--backend``,
default epoll), the same from another checkout with ``--baseline-tree PATH``
(e.g. ``git worktree add ../base HEAD~1``), and Tornado 6.6's ``HTTPServer``.
Counts and memory, not timings: they do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY_SIZE = 64 * 1024
SETTLE = 1.0  # seconds without a new handler before the count is read
LIMIT = 20.0  # seconds the flood may take to settle


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def serve(impl: str, backend: str, port: int) -> None:
    """The server process: prints nothing, exits when stdin closes."""
    import threading

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    body = b"x" * BODY_SIZE
    count = [0]

    if impl == "tornado":
        from tornado.httpserver import HTTPServer
        from tornado.httputil import HTTPHeaders, ResponseStartLine
        from tornado.ioloop import IOLoop
    else:
        from reactor.httpserver import HTTPServer  # type: ignore[no-redef]
        from reactor.httputil import HTTPHeaders, ResponseStartLine  # type: ignore[no-redef]
        from reactor.ioloop import IOLoop  # type: ignore[no-redef]

        IOLoop.configure(backend)

    def handle(request: Any) -> None:
        if request.path == "/stats":
            answer = json.dumps({"handlers": count[0], "rss_kb": _rss_kb()}).encode()
        else:
            count[0] += 1
            answer = body
        headers = HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(answer))})
        request.connection.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers, answer)
        request.connection.finish()

    async def main() -> None:
        HTTPServer(handle).listen(port, "127.0.0.1")

    loop = IOLoop.current()
    loop.add_callback(main)
    loop.start()


def _read_response(f: Any) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = f.readline()
        if not line:
            raise ConnectionError("closed before a whole response")
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body: bytes = f.read(length)
    if len(body) != length:
        raise ConnectionError("closed in a body")
    return body


def _stats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        stats: dict[str, int] = json.loads(_read_response(s.makefile("rb")))
        return stats


def measure(impl: str, backend: str, tree: Path, requests: int) -> dict[str, Any]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, REACTOR_BENCH_TREE=str(tree), PYTHONPATH=str(tree))
    env.pop("REACTOR_BACKEND", None)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", impl, backend, str(port)],
        stdin=subprocess.PIPE,
        cwd=tree,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{impl}: the server did not start") from None
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as warm:
            f = warm.makefile("rb")
            for _ in range(50):
                warm.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                _read_response(f)
        before = _stats(port)
        flood = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
        with flood:
            flood.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * requests)
            last, since, start = -1, time.monotonic(), time.monotonic()
            while time.monotonic() - since < SETTLE and time.monotonic() - start < LIMIT:
                now = _stats(port)
                if now["handlers"] != last:
                    last, since = now["handlers"], time.monotonic()
                time.sleep(0.1)
            f = flood.makefile("rb")
            complete = sum(len(_read_response(f)) == BODY_SIZE for _ in range(requests))
        return {
            "impl": impl,
            "ahead": now["handlers"] - before["handlers"],
            "rss_growth_mb": (now["rss_kb"] - before["rss_kb"]) / 1024,
            "complete": complete,
        }
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--backend", default="epoll")
    parser.add_argument("--baseline-tree", metavar="PATH", help="also measure this checkout")
    parser.add_argument("--no-tornado", action="store_true")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        impl, backend, port = args.serve
        serve(impl, backend, int(port))
        return 0
    runs = [(f"reactor-{args.backend}", ROOT)]
    if args.baseline_tree:
        runs.append((f"reactor-{args.backend}@base", Path(args.baseline_tree).resolve()))
    if not args.no_tornado:
        runs.append(("tornado", ROOT))
    print(f"{args.requests:,} pipelined GETs for a {BODY_SIZE // 1024} KiB answer, never read\n")
    print("| server | handlers run ahead of the client | RSS growth | answers read after |")
    print("|---|---:|---:|---:|")
    for name, tree in runs:
        impl = "tornado" if name == "tornado" else "reactor"
        r = measure(impl, args.backend, tree, args.requests)
        print(
            f"| {name} | {r['ahead']:,} | {r['rss_growth_mb']:.1f} MB "
            f"| {r['complete']:,} / {args.requests:,} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
