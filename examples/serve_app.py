"""A small application for ``python -m reactor serve`` (used by its tests and docs).

Serve it with one process or several::

    python -m reactor serve examples.serve_app:app --port 8888
    python -m reactor serve examples.serve_app:make_app --processes 2

Routes:

- ``GET /``: ``Hello, world``.
- ``GET /slow?delay=SECONDS``: answers after ``delay`` seconds (at most 60);
  with ``&flush=1`` the first line goes out at once, the rest after the delay.
- ``GET /inflight``: how many ``/slow`` requests this process is answering now.
- ``POST /echo``: the request body, back.
- ``GET /error``: a handler that raises (a 500, and the traceback in the log).
- ``GET /pid``: ``{"pid": ..., "task_id": ...}`` of the process that answered.
- ``/ws``: a WebSocket that echoes each message.
"""

from __future__ import annotations

import os
from typing import Any

from reactor import gen, process, web, websocket

MAX_DELAY = 60.0
"""The longest ``/slow`` wait a client may ask for."""

_slow_in_flight = 0


class HelloHandler(web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


class SlowHandler(web.RequestHandler):
    async def get(self) -> None:
        global _slow_in_flight
        try:
            delay = float(self.get_argument("delay", "1"))
        except ValueError:
            raise web.HTTPError(400, "delay must be a number of seconds") from None
        if not 0 <= delay <= MAX_DELAY:
            raise web.HTTPError(400, f"delay must be between 0 and {MAX_DELAY:g} seconds")
        _slow_in_flight += 1
        try:
            if self.get_argument("flush", ""):
                self.write("started\n")
                await self.flush()
            await gen.sleep(delay)
            self.write(f"slept {delay:g}\n")
        finally:
            _slow_in_flight -= 1


class InFlightHandler(web.RequestHandler):
    def get(self) -> None:
        self.write({"slow": _slow_in_flight})


class EchoHandler(web.RequestHandler):
    def post(self) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body)


class ErrorHandler(web.RequestHandler):
    def get(self) -> None:
        raise RuntimeError("this handler always fails")


class PidHandler(web.RequestHandler):
    def get(self) -> None:
        self.write({"pid": os.getpid(), "task_id": process.task_id()})


class EchoWebSocket(websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


def make_app(**settings: Any) -> web.Application:
    """The application; ``settings`` go to :class:`~reactor.web.Application`."""
    return web.Application(
        [
            (r"/", HelloHandler),
            (r"/slow", SlowHandler),
            (r"/inflight", InFlightHandler),
            (r"/echo", EchoHandler),
            (r"/error", ErrorHandler),
            (r"/pid", PidHandler),
            (r"/ws", EchoWebSocket),
        ],
        **settings,
    )


app = make_app()
