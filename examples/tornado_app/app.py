"""A small web application written for Tornado 6.6, to show that one ports to
reactor by changing its imports and nothing else.

It has a page rendered from templates (Tornado's syntax: extends, block,
include, for, if, set, module, comments), static files with versioned URLs,
a login kept in a signed cookie, a guestbook form protected against
cross-site request forgery, and a long-polling chat room.

Run it with ``python app.py [--port=8888] [--address=127.0.0.1]``. It prints
``listening on http://ADDRESS:PORT/`` once it accepts connections.

Every line below that names the framework is an import:
tests/conformance/test_port_tornado_app.py rewrites those lines and runs the
result on each of reactor's backends, and runs this file, unmodified, on the
framework it was written for.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from typing import Any

from tornado import httpserver, ioloop, locks, netutil, web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="the port to listen on (0 picks a free one)")
define("address", default="127.0.0.1", help="the address to listen on")

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_NAME = 32
MAX_TEXT = 500
POLL_SECONDS = 30


class ChatRoom:
    """The chat's recent messages and the long polls waiting for the next one.

    Each message has an increasing ``id``; a client polls with the last id
    it has seen (its cursor) and gets every kept message after it, or waits
    until there is one. Only the newest ``cache_size`` messages are kept.
    """

    def __init__(self, cache_size: int = 100) -> None:
        self.cache_size = cache_size
        self.messages: list[dict[str, Any]] = []
        self.last_id = 0
        self.changed = locks.Condition()

    def since(self, cursor: int) -> list[dict[str, Any]]:
        if cursor > self.last_id:  # a cursor from before a restart
            cursor = 0
        return [m for m in self.messages if m["id"] > cursor]

    def add(self, author: str, text: str) -> dict[str, Any]:
        self.last_id += 1
        message = {"id": self.last_id, "author": author, "text": text}
        self.messages.append(message)
        del self.messages[: -self.cache_size]
        self.changed.notify_all()
        return message


class App(web.Application):
    def __init__(self, **settings: Any) -> None:
        self.room = ChatRoom()
        self.notes: list[str] = []
        handlers = [
            web.url(r"/", MainHandler, name="home"),
            web.url(r"/login", LoginHandler, name="login"),
            web.url(r"/logout", LogoutHandler, name="logout"),
            web.url(r"/guestbook", GuestbookHandler, name="guestbook"),
            web.url(r"/chat/new", ChatNewHandler, name="chat-new"),
            web.url(r"/chat/updates", ChatUpdatesHandler, name="chat-updates"),
        ]
        defaults: dict[str, Any] = {
            "template_path": os.path.join(HERE, "templates"),
            "static_path": os.path.join(HERE, "static"),
            "cookie_secret": os.urandom(32).hex(),
            "xsrf_cookies": True,
            "login_url": "/login",
        }
        defaults.update(settings)
        super().__init__(handlers, **defaults)


class BaseHandler(web.RequestHandler):
    @property
    def app(self) -> App:
        return self.application  # type: ignore[return-value]

    def get_current_user(self) -> str | None:
        name = self.get_signed_cookie("user", max_age_days=7)
        return name.decode("utf-8") if name else None


class MainHandler(BaseHandler):
    def get(self) -> None:
        self.render("index.html", notes=self.app.notes, messages=self.app.room.messages)


class LoginHandler(BaseHandler):
    def get(self) -> None:
        self.render("login.html", error=None, next=self.get_argument("next", "/"))

    def post(self) -> None:
        name = self.get_argument("name").strip()
        target = self.get_argument("next", "/")
        # Only a path on this site: "//host" and "/\host" would leave it, and a
        # control character has no place in a Location header.
        if not target.isprintable() or not target.startswith("/") or target[1:2] in ("/", "\\"):
            target = "/"
        if not name or len(name) > MAX_NAME or not name.isprintable():
            self.set_status(400)
            self.render("login.html", error=f"a name of 1 to {MAX_NAME} characters", next=target)
            return
        self.set_signed_cookie("user", name, expires_days=7, httponly=True, samesite="Lax")
        self.redirect(target)


class LogoutHandler(BaseHandler):
    def post(self) -> None:
        self.clear_cookie("user")
        self.redirect(self.reverse_url("home"))


class GuestbookHandler(BaseHandler):
    def post(self) -> None:
        note = self.get_argument("note").strip()
        if not note or len(note) > MAX_TEXT:
            raise web.HTTPError(400, "a note of 1 to %d characters", MAX_TEXT)
        self.app.notes.append(note)
        del self.app.notes[:-50]
        self.redirect(self.reverse_url("home"))


class ChatNewHandler(BaseHandler):
    @web.authenticated
    def post(self) -> None:
        text = self.get_argument("text").strip()
        if not text or len(text) > MAX_TEXT:
            raise web.HTTPError(400, "a message of 1 to %d characters", MAX_TEXT)
        assert self.current_user is not None
        self.write(self.app.room.add(self.current_user, text))


class ChatUpdatesHandler(BaseHandler):
    """``GET /chat/updates?cursor=N``: the messages after N, as soon as there is one.

    Answers ``{"messages": [...]}``, empty after POLL_SECONDS without news
    (the client polls again). A client that goes away stops its wait.
    """

    waiting: asyncio.Future[bool] | None = None

    @web.authenticated
    async def get(self) -> None:
        try:
            cursor = int(self.get_argument("cursor", "0"))
        except ValueError:
            raise web.HTTPError(400, "cursor must be an integer") from None
        room = self.app.room
        messages = room.since(cursor)
        if not messages:
            self.waiting = room.changed.wait(timeout=timedelta(seconds=POLL_SECONDS))
            try:
                await self.waiting
            except asyncio.CancelledError:
                return  # on_connection_close: nobody to answer
            messages = room.since(cursor)
        self.write({"messages": messages})

    def on_connection_close(self) -> None:
        if self.waiting is not None:
            self.waiting.cancel()


def main() -> None:
    parse_command_line()
    app = App()
    sockets = netutil.bind_sockets(options.port, options.address)
    server = httpserver.HTTPServer(app)
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
