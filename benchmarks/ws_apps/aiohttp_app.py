"""aiohttp's echo server: a ``web.WebSocketResponse`` in a ``web.Application``.

The handler is the one aiohttp's documentation shows: ``async for msg in
ws``, ``send_str`` for text and ``send_bytes`` for binary. ``compress`` is
aiohttp's own switch for permessage-deflate (on by default in aiohttp; off
here in the cells that are not compressed). ``web.run_app`` with no access
log, on asyncio's default loop.
"""

from __future__ import annotations

from aiohttp import WSMsgType, web

from . import PATH


def make_app(deflate: bool) -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=deflate)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get(PATH, echo)
    return app


def serve(port: int, deflate: bool) -> None:
    web.run_app(make_app(deflate), host="127.0.0.1", port=port, access_log=None, print=None)
