"""A long-polling chat room, the smallest: ``POST /new`` (``text=``) adds a
message, ``GET /updates?cursor=N`` answers the messages after id N as soon as
there is one. The newest ``CACHE`` messages are kept; a poll whose client
goes away stops waiting. (The demo, ``python -m reactor demo``, has the same
room behind a login and a page.)"""

from __future__ import annotations

import asyncio
from typing import Any

from serve import serve

from reactor import locks, web

CACHE = 100
messages: list[dict[str, Any]] = []
last_id = 0
changed = locks.Condition()


class NewHandler(web.RequestHandler):
    def post(self) -> None:
        global last_id
        text = self.get_argument("text")
        if not 0 < len(text) <= 500:
            raise web.HTTPError(400, "a message of 1 to 500 characters")
        last_id += 1
        messages.append({"id": last_id, "text": text})
        del messages[:-CACHE]
        changed.notify_all()
        self.write(messages[-1])


class UpdatesHandler(web.RequestHandler):
    waiter: Any = None

    async def get(self) -> None:
        try:
            cursor = int(self.get_argument("cursor", "0"))
        except ValueError:
            raise web.HTTPError(400, "cursor must be an integer") from None
        while not [m for m in messages if m["id"] > cursor]:
            self.waiter = changed.wait()
            try:
                await self.waiter
            except asyncio.CancelledError:
                return
        self.write({"messages": [m for m in messages if m["id"] > cursor]})

    def on_connection_close(self) -> None:
        if self.waiter is not None:
            self.waiter.cancel()


def make_app() -> web.Application:
    return web.Application([(r"/new", NewHandler), (r"/updates", UpdatesHandler)])


if __name__ == "__main__":
    serve(make_app())
