"""``python -m reactor``: the command line.

``python -m reactor backends`` lists every backend, whether it can run here
(and why not), and which one ``IOLoop()`` would choose.

``python -m reactor demo [--port 8888] [--address 127.0.0.1]`` runs the demo
HTTP server on the default backend (or ``REACTOR_BACKEND``'s) until Ctrl-C:
``GET /`` says hello and names the backend, ``POST /echo`` answers with the
body it was sent, anything else is a 404.
"""

from __future__ import annotations

import argparse
import signal
import sys

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
    from reactor.httpserver import HTTPServer
    from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
    from reactor.ioloop import IOLoop
    from reactor.netutil import bind_sockets

    loop = IOLoop.current()
    hello = f"Hello from reactor on the {loop.backend_name} backend!\n".encode()

    def handle(request: HTTPServerRequest) -> None:
        if request.path == "/" and request.method in ("GET", "HEAD"):
            code, body, content_type = 200, hello, "text/plain; charset=utf-8"
        elif request.path == "/echo" and request.method == "POST":
            code, body = 200, request.body
            content_type = request.headers.get("Content-Type", "application/octet-stream")
        else:
            code, body, content_type = 404, b"Not found\n", "text/plain; charset=utf-8"
        headers = HTTPHeaders({"Content-Type": content_type, "Content-Length": str(len(body))})
        assert request.connection is not None
        reason = "OK" if code == 200 else "Not Found"
        request.connection.write_headers(ResponseStartLine("HTTP/1.1", code, reason), headers, body)
        request.connection.finish()

    sockets = bind_sockets(args.port, args.address)
    HTTPServer(handle).add_sockets(sockets)
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
    print("reactor demo: stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reactor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backends", help="list the event-loop backends").set_defaults(run=_backends)
    demo = commands.add_parser("demo", help="run the demo HTTP server")
    demo.add_argument("--port", type=int, default=8888, help="0 picks a free port (default 8888)")
    demo.add_argument("--address", default="127.0.0.1", help="default 127.0.0.1")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
