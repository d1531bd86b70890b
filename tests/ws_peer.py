"""The ``websockets`` package as a real peer, in a process of its own.

``websockets`` runs on asyncio's API; reactor's native loops have an asyncio
face without ``create_server``/``create_connection`` (issue 11), so the
interop tests run this peer in a child process on asyncio's own loop, and
every reactor backend is tested against it the same way.

``python tests/ws_peer.py serve [--cert-file PEM --key-file PEM]``
    A ``websockets.asyncio.server.serve`` server on 127.0.0.1 (deflate
    offered, ``max_size`` 32 MiB), and the same over TLS with a certificate;
    prints ``{"port": N, "tls_port": M or null}`` and serves until
    its stdin closes. Meanwhile it runs the client scripts it reads on
    stdin (:func:`run_commands`): one process for a whole test module,
    rather than a Python start-up per test. Paths: ``/echo`` echoes every message; ``/ping`` sends
    a ping, waits for the pong, sends ``"pong received"`` then echoes;
    ``/close/CODE`` closes at once with CODE and reason ``"bye"``. A
    connection named with ``?id=NAME`` is remembered: ``/closed?id=NAME``
    waits until it has ended and sends the close code and reason its server
    side saw (JSON), then closes.

``python tests/ws_peer.py client URL SCRIPT [--compression deflate]
[--max-size N] [--subprotocol P]``
    One such script, by hand: a ``websockets.asyncio.client.connect``
    client running SCRIPT (JSON list of steps, see :func:`run_script`);
    prints one JSON object: the response's extensions header, the
    subprotocol, each step's result, and the close code/reason it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import ssl
import sys
from typing import Any

MAX_SIZE = 32 * 1024 * 1024
STEP_TIMEOUT = 8.0


def pattern(size: int) -> bytes:
    """``size`` bytes of a known, non-repeating-looking content."""
    block = hashlib.sha256(b"reactor").digest() * 32  # 1 KiB
    return (block * (size // len(block) + 1))[:size]


def describe(message: str | bytes) -> dict[str, Any]:
    """A message as JSON: the text itself, or a binary's length and digest."""
    if isinstance(message, str):
        if len(message) > 1000:
            return {
                "text_len": len(message),
                "sha256": hashlib.sha256(message.encode()).hexdigest(),
            }
        return {"text": message}
    return {"binary_len": len(message), "sha256": hashlib.sha256(message).hexdigest()}


async def serve(cert_file: str | None = None, key_file: str | None = None) -> None:
    from urllib.parse import parse_qs, urlsplit

    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    ended: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def end_of(name: str) -> asyncio.Future[dict[str, Any]]:
        return ended.setdefault(name, asyncio.get_running_loop().create_future())

    async def handler(connection: ServerConnection) -> None:
        url = urlsplit(connection.request.path if connection.request else "/")
        path, name = url.path, parse_qs(url.query).get("id", [""])[0]
        if path.startswith("/close/"):
            await connection.close(int(path.rsplit("/", 1)[1]), "bye")
            return
        if path == "/closed":
            await connection.send(json.dumps(await asyncio.wait_for(end_of(name), STEP_TIMEOUT)))
            await connection.close()
            return
        if path == "/ping":
            pong = await connection.ping(b"peer-ping")
            await asyncio.wait_for(pong, STEP_TIMEOUT)
            await connection.send("pong received")
        try:
            async for message in connection:
                await connection.send(message)
        except ConnectionClosed:
            pass
        finally:
            if name:
                end_of(name).set_result(
                    {"code": connection.close_code, "reason": connection.close_reason}
                )

    options: dict[str, Any] = {
        "max_size": MAX_SIZE,
        "ping_interval": None,
        "compression": "deflate",
    }
    async with ws_serve(handler, "127.0.0.1", 0, **options) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        if cert_file is None or key_file is None:
            print(json.dumps({"port": port, "tls_port": None}), flush=True)
            await run_commands()
            return
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        async with ws_serve(handler, "127.0.0.1", 0, ssl=context, **options) as tls_server:
            tls_port = next(iter(tls_server.sockets)).getsockname()[1]
            print(json.dumps({"port": port, "tls_port": tls_port}), flush=True)
            await run_commands()


async def run_commands() -> None:
    """Run the client scripts read from stdin, one JSON object a line
    (``id``, ``url``, ``script`` and :func:`run_script`'s options), each
    answered with one line ``{"id": ..., "report": ...}`` (or ``"error"``),
    until stdin closes."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        answer: dict[str, Any] = {"id": command.pop("id")}
        try:
            answer["report"] = await run_script(**command)
        except Exception as e:
            answer["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(answer), flush=True)


async def run_script(
    url: str,
    script: list[list[Any]],
    compression: str | None = None,
    max_size: int = 1024 * 1024,
    subprotocols: list[str] | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Steps: ``["text", s]``, ``["binary", n]`` (n bytes of :func:`pattern`),
    ``["fragments", [s, ...]]`` (one text message sent as these fragments),
    ``["recv"]`` (result: :func:`describe`), ``["ping", data]`` (waits for
    the pong: ``{"pong": true}``),
    ``["close", code, reason]``, ``["wait_closed"]``. A step that finds the
    connection closed ends the script with ``{"closed": code, "reason": r}``
    (what the server's Close said). ``ca_file``: for a ``wss://`` URL, the
    CA to trust (certificate and hostname checked)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    results: list[Any] = []
    tls: dict[str, Any] = {"ssl": ssl.create_default_context(cafile=ca_file)} if ca_file else {}
    async with connect(
        url,
        **tls,
        compression=compression,
        max_size=max_size,
        subprotocols=subprotocols or None,  # type: ignore[arg-type]
        proxy=None,
        ping_interval=None,
        open_timeout=STEP_TIMEOUT,
        close_timeout=STEP_TIMEOUT,
    ) as connection:
        assert connection.response is not None
        out: dict[str, Any] = {
            "extensions": connection.response.headers.get("Sec-WebSocket-Extensions"),
            "subprotocol": connection.subprotocol,
            "results": results,
        }
        try:
            for step, *args in script:
                await _step(connection, step, args, results)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            results.append({"closed": code, "reason": e.rcvd.reason if e.rcvd else None})
    out["close_code"] = connection.close_code
    out["close_reason"] = connection.close_reason
    return out


async def _step(connection: Any, step: str, args: list[Any], results: list[Any]) -> None:
    if step == "text":
        await connection.send(args[0])
    elif step == "binary":
        await connection.send(pattern(args[0]))
    elif step == "fragments":  # one text message, one frame per piece
        await connection.send(iter(args[0]))
    elif step == "recv":
        results.append(describe(await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)))
    elif step == "ping":
        pong = await connection.ping(args[0].encode())
        await asyncio.wait_for(pong, STEP_TIMEOUT)
        results.append({"pong": True})
    elif step == "close":
        await connection.close(args[0], args[1])
    elif step == "wait_closed":
        await asyncio.wait_for(connection.wait_closed(), STEP_TIMEOUT)
    else:
        raise ValueError(f"unknown step {step!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve")
    server.add_argument("--cert-file", default=None, help="also serve wss:// with this certificate")
    server.add_argument("--key-file", default=None)
    client = commands.add_parser("client")
    client.add_argument("url")
    client.add_argument("script")
    client.add_argument("--compression", default=None)
    client.add_argument("--max-size", type=int, default=1024 * 1024)
    client.add_argument("--subprotocol", action="append", default=[])
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.cert_file, args.key_file))
    else:
        result = asyncio.run(
            run_script(
                args.url, json.loads(args.script), args.compression, args.max_size, args.subprotocol
            )
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
