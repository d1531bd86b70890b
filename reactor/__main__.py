"""``python -m reactor``: the command line.

``python -m reactor backends`` lists every backend, whether it can run here
(and why not), and which one ``IOLoop()`` would choose.

``python -m reactor demo [--port 8888] [--address 127.0.0.1]`` runs the demo
web application (:mod:`reactor.demo.app`: a templated page naming the
backend, an XSRF-protected form, a signed-cookie login, a streamed file
upload, static files, a JSON endpoint and a long-polling chat) on the
default backend (or ``REACTOR_BACKEND``'s) until Ctrl-C. Uploads go to a
temporary folder, removed when it stops; the access log goes to stderr.
With ``--broker redis://HOST:PORT/DB`` the chat's messages go through
Redis, to the clients of every demo process that uses the same one.

``python -m reactor serve APP [options]`` serves an application
(``module:app`` or a factory ``module:make_app``) from one process or
several, and drains it gracefully on SIGTERM / SIGINT: see
:mod:`reactor._serve` and docs/deployment.md.

``python -m reactor bench [NAME...] [--backends ...] [--quick] [--repeat N]
[--out DIR] [--no-plots]`` runs the checkout's benchmark scripts
(``benchmarks/bench_NAME.py``) on every backend available here, prints their
tables and writes them, with a plot per script, into ``docs/`` (see
:mod:`reactor._bench`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from reactor import backends


def _backends(args: argparse.Namespace) -> int:
    default = backends.default_name()
    try:
        chosen = backends.get(backends.env_choice())[0]
        chosen_error = None
    except backends.BackendError as e:
        chosen, chosen_error = None, str(e)
    rows = []
    for name, reason in backends.available().items():
        entry = backends.BACKENDS.get(name)
        description = entry.description if entry else "registered by an entry point"
        status = "available" if reason is None else f"unavailable: {reason}"
        marks = []
        if name == default:
            marks.append("default")
        if name == chosen and chosen != default:
            marks.append("chosen by REACTOR_BACKEND")
        mark = f" ({', '.join(marks)})" if marks else ""
        rows.append(f"  {name:<8} {status}{mark}\n           {description}")
    print(f"reactor backends on {sys.platform}:")
    print("\n".join(rows))
    print(f"default: {default}")
    if chosen_error:
        print(f"REACTOR_BACKEND is invalid: {chosen_error}", file=sys.stderr)
        return 2
    return 0


def _demo(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from reactor.demo.app import make_app
    from reactor.httpserver import HTTPServer
    from reactor.ioloop import IOLoop
    from reactor.log import enable_pretty_logging
    from reactor.netutil import bind_sockets

    enable_pretty_logging()  # the access log (status, method, URI, client, duration) on stderr
    loop = IOLoop.current()
    upload_dir = tempfile.mkdtemp(prefix="reactor-demo-uploads-")
    try:
        try:
            app = make_app(upload_dir, broker=args.broker)  # None: $REACTOR_DEMO_BROKER
        except ValueError as e:
            print(f"python -m reactor demo: {e}", file=sys.stderr)
            return 2
        loop.run_sync(app.room.start)  # connects to the broker (or logs that it cannot yet)
        sockets = bind_sockets(args.port, args.address)
        server = HTTPServer(app)
        server.add_sockets(sockets)
        host, port = sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"reactor demo: serving http://{shown}:{port}/ on the {loop.backend_name} backend "
            "(Ctrl-C stops)",
            flush=True,
        )

        # Ctrl-C (and SIGTERM) stop the loop cleanly. Installed explicitly: a
        # shell or supervisor that started us in the background may have set
        # SIGINT to be ignored, and Python then never raises KeyboardInterrupt.
        def stop(signum: int, frame: object) -> None:
            loop.add_callback_from_signal(loop.stop)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        loop.start()
        server.stop()
        loop.run_sync(app.room.broker.close, timeout=5)
    finally:
        shutil.rmtree(upload_dir, ignore_errors=True)
    print("reactor demo: stopped")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from reactor import _serve as serve

    return serve.main(args)


def _add_serve(commands: Any) -> None:
    from reactor._serve import add_arguments

    serve = commands.add_parser(
        "serve",
        help="serve an application (module:app) from one or more processes",
        description="Serve APP over HTTP from one process or several, with a graceful drain "
        "on SIGTERM/SIGINT (see docs/deployment.md).",
    )
    add_arguments(serve)
    serve.set_defaults(run=_serve)


def _run_bench(args: argparse.Namespace) -> int:
    from reactor import _bench

    return _bench.run(args)


def _add_bench(commands: Any) -> None:
    from reactor import _bench

    bench = commands.add_parser(
        "bench", help="run the benchmarks on every backend; write their tables and plots"
    )
    _bench.add_arguments(bench)
    bench.set_defaults(run=_run_bench)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reactor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backends", help="list the event-loop backends").set_defaults(run=_backends)
    demo = commands.add_parser("demo", help="run the demo web application")
    demo.add_argument("--port", type=int, default=8888, help="0 picks a free port (default 8888)")
    demo.add_argument("--address", default="127.0.0.1", help="default 127.0.0.1")
    demo.add_argument(
        "--broker",
        metavar="URL",
        default=None,
        help="carry the chat through Redis (redis://HOST:PORT/DB) to the other processes "
        "using it; default: $REACTOR_DEMO_BROKER, else in this process alone",
    )
    demo.set_defaults(run=_demo)
    _add_serve(commands)
    _add_bench(commands)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
