"""A line-echo server on reactor's TCPServer.

    python examples/tcpecho/server.py --port 9888
    REACTOR_BACKEND=poll python examples/tcpecho/server.py --port 9888 --processes 2

Each line a client sends comes back unchanged; "quit" closes the connection.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from reactor.ioloop import IOLoop
from reactor.iostream import IOStream, StreamClosedError
from reactor.log import app_log, enable_pretty_logging
from reactor.tcpserver import TCPServer


class EchoServer(TCPServer):
    async def handle_stream(self, stream: IOStream, address: Any) -> None:
        try:
            while True:
                line = await stream.read_until(b"\n", max_bytes=64 * 1024)
                if line.strip() == b"quit":
                    break
                await stream.write(line)
        except StreamClosedError:
            pass  # the client went away
        finally:
            stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--processes", type=int, default=1, help="0: one per CPU")
    args = parser.parse_args()
    enable_pretty_logging()
    server = EchoServer()
    server.bind(args.port, address=args.address)
    server.start(args.processes)  # forks here when processes != 1
    loop = IOLoop.current()
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
    app_log.info("echo server on %s:%d (%s backend)", args.address, args.port, loop.backend_name)
    print(f"listening on {args.address}:{args.port}", flush=True)
    loop.start()
    server.stop()


if __name__ == "__main__":
    main()
