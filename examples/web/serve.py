"""What the examples in this folder share: ``--port`` and ``--address``, and a
line that says where the server listens once it does."""

from __future__ import annotations

from reactor import httpserver, ioloop, netutil, web
from reactor.options import define, options, parse_command_line

define("port", default=8888, type=int, help="the port to listen on (0 picks a free one)")
define("address", default="127.0.0.1", help="the address to listen on")


def serve(app: web.Application) -> None:
    """Parse the command line, serve ``app`` and run the loop until Ctrl-C."""
    parse_command_line()
    sockets = netutil.bind_sockets(options.port, options.address)
    httpserver.HTTPServer(app).add_sockets(sockets)
    host, port = sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass
