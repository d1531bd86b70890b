"""A WebSocket chat room written for Tornado 6.6, to show that one ports to
reactor by changing its imports and nothing else.

One page, one socket: ``GET /`` is the room, ``/socket`` its WebSocket. A
client sends ``{"text": "..."}``; every open socket of the room receives
``{"id": N, "text": "..."}`` (JSON, shown by the page's script as text,
never as markup). A socket that opens is sent the newest messages first
(the room keeps ``CACHE_SIZE``), so a late joiner sees what was said. A
message that is not such JSON, is empty or is longer than ``MAX_TEXT``
characters is refused with ``{"error": "..."}`` to its sender alone.

Run it with ``python app.py [--port=8888] [--address=127.0.0.1]``. It prints
``listening on http://ADDRESS:PORT/`` once it accepts connections.

Every line below that names the framework is an import:
tests/conformance/test_port_tornado_websocket_chat.py rewrites those lines
and runs the result on each of reactor's backends, and runs this file,
unmodified, on the framework it was written for.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from typing import Any

from tornado import httpserver, ioloop, netutil, web, websocket
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="the port to listen on (0 picks a free one)")
define("address", default="127.0.0.1", help="the address to listen on")

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_TEXT = 500
"""Characters in one message."""
CACHE_SIZE = 50
"""Messages a socket that opens is sent first."""
log = logging.getLogger("chat")


class RoomHandler(web.RequestHandler):
    def get(self) -> None:
        self.render("index.html", max_text=MAX_TEXT)


class ChatSocketHandler(websocket.WebSocketHandler):
    """One open socket of the room. The room itself is the class: the sockets
    open now (``waiters``) and the newest messages (``cache``)."""

    waiters: set[ChatSocketHandler] = set()
    cache: list[dict[str, Any]] = []
    last_id = 0

    def get_compression_options(self) -> dict[str, Any]:
        return {}  # permessage-deflate, when the browser offers it

    def open(self) -> None:
        for message in self.cache:
            self.write_message(message)
        self.waiters.add(self)

    def on_close(self) -> None:
        self.waiters.discard(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            text = json.loads(message)["text"]
        except (ValueError, TypeError, KeyError):
            text = None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            log.warning("refused a message from %s", self.request.remote_ip)
            self.write_message({"error": f'send {{"text": "..."}} of 1 to {MAX_TEXT} characters'})
            return
        ChatSocketHandler.last_id += 1
        chat = {"id": ChatSocketHandler.last_id, "text": text}
        self.remember(chat)
        self.broadcast(chat)

    @classmethod
    def remember(cls, chat: dict[str, Any]) -> None:
        cls.cache.append(chat)
        del cls.cache[:-CACHE_SIZE]

    @classmethod
    def broadcast(cls, chat: dict[str, Any]) -> None:
        # write_message queues the frame and returns at once: a slow reader
        # delays nobody else (what is queued for one that never reads is not
        # bounded in this small example; the demo's live chat bounds it). A
        # socket that closed meanwhile is skipped.
        for waiter in list(cls.waiters):
            try:
                waiter.write_message(chat)
            except websocket.WebSocketClosedError:
                cls.waiters.discard(waiter)


def make_app(**settings: Any) -> web.Application:
    return web.Application(
        [(r"/", RoomHandler), (r"/socket", ChatSocketHandler)],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        **settings,
    )


def main() -> None:
    parse_command_line()
    sockets = netutil.bind_sockets(options.port, options.address)
    server = httpserver.HTTPServer(make_app())
    server.add_sockets(sockets)
    host, port = sockets[0].getsockname()[:2]
    print(f"listening on http://{host}:{port}/", flush=True)
    loop = ioloop.IOLoop.current()
    signal.signal(signal.SIGTERM, lambda signum, frame: loop.add_callback_from_signal(loop.stop))
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
