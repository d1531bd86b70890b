"""A client for the echo server: sends lines, prints what comes back.

python examples/tcpecho/client.py --port 9888 hello world
"""

from __future__ import annotations

import argparse

from reactor.ioloop import IOLoop
from reactor.tcpclient import TCPClient


async def echo(host: str, port: int, messages: list[str]) -> list[str]:
    client = TCPClient()
    stream = await client.connect(host, port, timeout=5)
    replies = []
    try:
        for message in messages:
            await stream.write(message.encode() + b"\n")
            replies.append((await stream.read_until(b"\n")).decode().rstrip("\n"))
        await stream.write(b"quit\n")
    finally:
        stream.close()
        client.close()
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9888)
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args()
    for reply in IOLoop.current().run_sync(lambda: echo(args.host, args.port, args.messages)):
        print(reply)


if __name__ == "__main__":
    main()
