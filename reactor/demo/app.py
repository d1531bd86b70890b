"""The demo web application: every part of :mod:`reactor.web` a first user meets.

- ``GET /``: a page rendered from a template (Tornado's syntax), naming the
  backend the loop runs on; static files under versioned URLs.
- ``POST /notes``: a form protected against cross-site request forgery.
- ``GET|POST /login``, ``POST /logout``: a login kept in a signed cookie.
- ``PUT /upload?name=N``: a file streamed to disk as it arrives
  (``stream_request_body``), answered with its size.
- ``GET /api/info``: a JSON endpoint.
- ``POST /chat/new``, ``GET /chat/updates?cursor=N``: a long-polling chat room.

What a client that lies, floods or stalls can make it do is bounded: names,
notes and messages have a maximum length, the chat keeps only its newest
messages, an upload is refused before its body is read when it is too big,
not signed in or lacks its XSRF token, and at most ``MAX_UPLOADS`` files are
kept on disk (the oldest are deleted). Any other body is at most
``MAX_FORM`` bytes, and every body must arrive within ``BODY_SECONDS``,
whatever server runs the application (the server's own limits are 100 MB
and no time limit by default). A long poll whose client goes away stops
waiting.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import timedelta
from typing import IO, Any

from reactor import locks, web
from reactor.httputil import HTTPConnection, HTTPMessageDelegate
from reactor.ioloop import IOLoop

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_NAME = 32
"""Characters in a user name."""
MAX_TEXT = 500
"""Characters in a note or a chat message."""
MAX_NOTES = 50
MAX_UPLOAD = 4 * 1024 * 1024
"""Bytes in one uploaded file."""
MAX_UPLOADS = 10
"""Uploaded files kept on disk."""
POLL_SECONDS = 30.0
"""How long a long poll waits before it answers with no message."""
MAX_FORM = 64 * 1024
"""Bytes in the body of any request but an upload (forms are small)."""
BODY_SECONDS = 120.0
"""How long a request's body may take to arrive."""


class ChatRoom:
    """The chat's newest messages and the long polls waiting for the next one.

    Messages get increasing ids. A client polls with the last id it has seen
    (its cursor) and gets every kept message after it, or waits for one, so
    a message posted between two polls is not lost. Only the newest
    ``cache_size`` messages are kept.
    """

    def __init__(self, cache_size: int = 100) -> None:
        self.cache_size = cache_size
        self.messages: list[dict[str, Any]] = []
        self.last_id = 0
        self.waiting = 0
        """Long polls waiting now."""
        self.changed = locks.Condition()
        """Notified on each new message. A poll whose client leaves cancels
        its wait; the Condition sweeps cancelled waits out, so clients that
        connect and leave cost bounded memory."""

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


def _limit_body(connection: HTTPConnection | None, max_size: int) -> None:
    """Limit the size of the body of the request on ``connection`` and the
    time it may take (``BODY_SECONDS``), where the connection can (HTTP/1's
    does; ``set_max_body_size`` is not on the abstract HTTPConnection)."""
    set_max_body_size = getattr(connection, "set_max_body_size", None)
    set_body_timeout = getattr(connection, "set_body_timeout", None)
    if set_max_body_size is not None:
        set_max_body_size(max_size)
    if set_body_timeout is not None:
        set_body_timeout(BODY_SECONDS)


class DemoApplication(web.Application):
    """The demo; ``upload_dir`` is where uploads go (a folder it may fill)."""

    def __init__(self, upload_dir: str, chat_cache_size: int = 100, **settings: Any) -> None:
        self.upload_dir = upload_dir
        self.room = ChatRoom(chat_cache_size)
        self.notes: list[str] = []
        self.uploads: list[dict[str, Any]] = []
        handlers = [
            web.url(r"/", MainHandler, name="home"),
            web.url(r"/login", LoginHandler, name="login"),
            web.url(r"/logout", LogoutHandler, name="logout"),
            web.url(r"/notes", NotesHandler, name="notes"),
            web.url(r"/upload", UploadHandler, name="upload"),
            web.url(r"/api/info", InfoHandler, name="info"),
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

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        # Before the body is read: without this, a client could make the
        # server buffer 100 MB per connection for a form, or stall a body
        # forever. UploadHandler raises the size limit for its own body.
        _limit_body(request_conn, MAX_FORM)
        return super().start_request(server_conn, request_conn)

    def keep_upload(self, upload: dict[str, Any]) -> None:
        self.uploads.append(upload)
        while len(self.uploads) > MAX_UPLOADS:
            old = self.uploads.pop(0)
            try:
                os.unlink(old["path"])
            except OSError:
                pass


class BaseHandler(web.RequestHandler):
    @property
    def app(self) -> DemoApplication:
        assert isinstance(self.application, DemoApplication)
        return self.application

    def get_current_user(self) -> str | None:
        name = self.get_signed_cookie("user", max_age_days=7)
        return name.decode("utf-8") if name else None


class MainHandler(BaseHandler):
    def get(self) -> None:
        self.render(
            "index.html",
            backend=IOLoop.current().backend_name,
            notes=self.app.notes,
            messages=self.app.room.messages,
            uploads=self.app.uploads,
            max_upload=MAX_UPLOAD,
        )


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


class NotesHandler(BaseHandler):
    def post(self) -> None:
        note = self.get_argument("note").strip()
        if not note or len(note) > MAX_TEXT:
            raise web.HTTPError(400, "a note of 1 to %d characters", MAX_TEXT)
        self.app.notes.append(note)
        del self.app.notes[:-MAX_NOTES]
        self.redirect(self.reverse_url("home"))


@web.stream_request_body
class UploadHandler(BaseHandler):
    """``PUT /upload?name=N`` with the file as the body, signed in and with the
    ``X-XSRFToken`` header; answers ``{"name": N, "size": bytes}``.

    Everything is checked in :meth:`prepare`, before a byte of the body is
    read: the XSRF token (by the framework), the login, the size announced.
    The body goes to disk chunk by chunk as it arrives.
    """

    file: IO[bytes] | None = None
    size = 0

    SUPPORTED_METHODS = ("PUT",)

    def prepare(self) -> None:
        if not self.current_user:
            raise web.HTTPError(403, "sign in to upload")
        length = self.request.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise web.HTTPError(411, "an upload needs a Content-Length")
        if int(length) > MAX_UPLOAD:
            raise web.HTTPError(413, "an upload is at most %d bytes", MAX_UPLOAD)
        _limit_body(self.request.connection, MAX_UPLOAD)
        name = os.path.basename(self.get_query_argument("name", "upload"))[:100]
        self.display_name = name or "upload"
        # open across the data_received calls; closed in put() or on_finish()
        self.file = tempfile.NamedTemporaryFile(dir=self.app.upload_dir, delete=False)  # noqa: SIM115

    def data_received(self, chunk: bytes) -> None:
        assert self.file is not None
        self.size += len(chunk)
        self.file.write(chunk)

    def put(self) -> None:
        assert self.file is not None
        self.file.close()
        upload = {"name": self.display_name, "size": self.size, "path": self.file.name}
        self.file = None
        self.app.keep_upload(upload)
        self.write({"name": upload["name"], "size": upload["size"]})

    def on_finish(self) -> None:
        if self.file is not None:  # the upload did not complete: drop what came
            self.file.close()
            os.unlink(self.file.name)
            self.file = None

    def on_connection_close(self) -> None:
        self.on_finish()


class InfoHandler(BaseHandler):
    def get(self) -> None:
        room = self.app.room
        self.write(
            {
                "backend": IOLoop.current().backend_name,
                "user": self.current_user,
                "notes": len(self.app.notes),
                "messages": len(room.messages),
                "last_message_id": room.last_id,
                "waiting_polls": room.waiting,
                "uploads": [{"name": u["name"], "size": u["size"]} for u in self.app.uploads],
            }
        )


class ChatNewHandler(BaseHandler):
    @web.authenticated
    def post(self) -> None:
        text = self.get_argument("text").strip()
        if not text or len(text) > MAX_TEXT:
            raise web.HTTPError(400, "a message of 1 to %d characters", MAX_TEXT)
        assert self.current_user is not None
        self.write(self.app.room.add(self.current_user, text))


class ChatUpdatesHandler(BaseHandler):
    """``GET /chat/updates?cursor=N``: ``{"messages": [...]}``, the messages after
    N as soon as there is one, or none after ``POLL_SECONDS`` (poll again)."""

    waiter: asyncio.Future[bool] | None = None

    @web.authenticated
    async def get(self) -> None:
        try:
            cursor = int(self.get_argument("cursor", "0"))
        except ValueError:
            raise web.HTTPError(400, "cursor must be an integer") from None
        room = self.app.room
        messages = room.since(cursor)
        if not messages:
            self.waiter = room.changed.wait(timeout=timedelta(seconds=POLL_SECONDS))
            room.waiting += 1
            try:
                await self.waiter
            except asyncio.CancelledError:
                return  # the client went away (on_connection_close)
            finally:
                room.waiting -= 1
            messages = room.since(cursor)
        self.write({"messages": messages})

    def on_connection_close(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.cancel()


def make_app(upload_dir: str, **settings: Any) -> DemoApplication:
    """The demo application, uploads stored in ``upload_dir``."""
    return DemoApplication(upload_dir, **settings)
