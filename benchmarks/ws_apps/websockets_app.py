"""The ``websockets`` package's echo server (``websockets.asyncio.server``).

The handler is the one its documentation starts with: ``async for message
in websocket: await websocket.send(message)``. ``compression="deflate"``
(the package's default, with its default settings) when the cell is
compressed, ``compression=None`` otherwise. On asyncio's default event loop,
or on uvloop (``uvloop.run``) for the ``websockets-uvloop`` row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve


def serve(
    port: int,
    deflate: bool,
    use_uvloop: bool = False,
    stop_hook: Callable[[Callable[[], None]], None] | None = None,
) -> None:
    async def echo(websocket: ServerConnection) -> None:
        async for message in websocket:
            await websocket.send(message)

    async def main() -> None:
        compression: Any = "deflate" if deflate else None
        async with ws_serve(echo, "127.0.0.1", port, compression=compression):
            done = asyncio.Event()
            if stop_hook is not None:
                loop = asyncio.get_running_loop()
                stop_hook(lambda: loop.call_soon_threadsafe(done.set))
            await done.wait()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
