"""The demo web application: every part of :mod:`reactor.web` a first user meets.

- ``GET /``: a page rendered from a template (Tornado's syntax), naming the
  backend the loop runs on; static files under versioned URLs.
- ``POST /notes``: a form protected against cross-site request forgery.
- ``GET|POST /login``, ``POST /logout``: a login kept in a signed cookie.
- ``PUT /upload?name=N``: a file streamed to disk as it arrives
  (``stream_request_body``), answered with its size.
- ``GET /api/info``: a JSON endpoint.
- ``POST /chat/new``, ``GET /chat/updates?cursor=N``: a long-polling chat room.
- ``GET /chat/live``, ``/chat/socket``: the same room over a WebSocket, with
  join/leave notices and a client script that reconnects.

What a client that lies, floods or stalls can make it do is bounded: names,
notes and messages have a maximum length, the chat keeps only its newest
messages, an upload is refused before its body is read when it is too big,
not signed in or lacks its XSRF token, and at most ``MAX_UPLOADS`` files are
kept on disk (the oldest are deleted). Any other body is at most
``MAX_FORM`` bytes, and every body must arrive within ``BODY_SECONDS``,
whatever server runs the application (the server's own limits are 100 MB
and no time limit by default). A long poll whose client goes away stops
waiting. A WebSocket frame is at most ``MAX_FRAME`` bytes, and a socket
whose client does not read holds at most ``MAX_PENDING`` bytes of unsent
messages on the server before it is closed.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import IO, Any

from reactor import escape, gen, locks, web, websocket
from reactor.demo.broker import Broker, BrokerUnavailable, InProcessBroker, from_url
from reactor.httputil import HTTPConnection, HTTPMessageDelegate
from reactor.ioloop import IOLoop
from reactor.log import app_log

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
MAX_FRAME = 16 * 1024
"""Bytes in one WebSocket message from a client (a longer one is closed with
1009 before it is buffered); room for ``MAX_TEXT`` characters of JSON, each
escaped to six bytes."""
MAX_PENDING = 1024 * 1024
"""Bytes of messages to one WebSocket client that the server holds before
the kernel has taken them: a client that stops reading is closed past it."""
BURST = 10
"""Messages a WebSocket client may send at once; then ``RATE`` a second."""
RATE = 2.0
"""Messages a second a WebSocket client may send, over time: each one is
written to every client of the room, so a flood is bounded at its source."""
PING_SECONDS = 30.0
"""How often the server pings a WebSocket client (one that does not answer
in that time is closed): a vanished client does not hold its place."""
ECHO_SECONDS = 5.0
"""The longest a post or a join waits for its event to come back from the
broker (from Redis, on the subscribed connection)."""
BROKER_ENV = "REACTOR_DEMO_BROKER"
"""The environment variable naming the broker when ``make_app`` is given
none: a ``redis://`` URL, or empty for the in-process one."""
SECRET_ENV = "REACTOR_DEMO_SECRET"
"""The environment variable holding the cookie secret when the settings give
none: processes that share a broker behind one address must share it too,
or a login (and an XSRF token) made by one is refused by the others."""

Listener = Callable[[dict[str, Any]], None]


class ChatRoom:
    """The chat's newest messages, and who is told about the next events.

    Messages get increasing ids, given by the room's :class:`~reactor.demo.broker.Broker`
    (the same in every process that shares it). A client polls with the last
    id it has seen (its cursor) and gets every kept message after it, or
    waits for one, so a message posted between two polls is not lost. Only
    the newest ``cache_size`` messages are kept.

    Whatever happens in the room (a message, someone joining or leaving) is
    an event, a dict with a ``"type"``, published through the broker and
    given, in the broker's order, to every listener of this process: the
    WebSocket clients (:meth:`join`) are listeners; the long polls wait on
    :attr:`changed`. ``epoch`` names the numbering: ids start again at 1 in
    a new one (a process of its own with the in-process broker), and a client
    that kept a cursor from another epoch starts from the oldest kept message.
    """

    def __init__(
        self, cache_size: int = 100, broker: Broker | None = None, name: str = "main"
    ) -> None:
        self.cache_size = cache_size
        self.broker = broker if broker is not None else InProcessBroker()
        self.name = name
        self.messages: list[dict[str, Any]] = []
        self.last_id = 0
        self.epoch = os.urandom(6).hex()
        """Until the broker's first sync names the shared one."""
        self.waiting = 0
        """Long polls waiting now."""
        self.changed = locks.Condition()
        """Notified on each new message. A poll whose client leaves cancels
        its wait; the Condition sweeps cancelled waits out, so clients that
        connect and leave cost bounded memory."""
        self._listeners: dict[Listener, None] = {}  # a set that keeps its order
        self._joining: dict[str, tuple[Listener, int, str | None]] = {}
        self._started: asyncio.Future[None] | None = None
        self.ready = False
        """True once :meth:`start` has returned (the handlers then skip it)."""
        self.broker.subscribe(name, self.receive)

    @property
    def subscribers(self) -> int:
        return len(self._listeners)

    async def start(self) -> None:
        """Start the broker (once; the first caller waits for its first connection
        attempt, the others for the same)."""
        started = self._started
        if started is None:
            started = self._started = gen.convert_yielded(self.broker.start())
        if not started.done():
            await asyncio.shield(started)  # a waiter that is cancelled cancels only itself
        started.result()
        self.ready = True

    def subscribe(self, listener: Listener) -> None:
        """Give ``listener`` every event of this process's room from now on."""
        self._listeners[listener] = None

    def unsubscribe(self, listener: Listener) -> None:
        """Stop giving events to ``listener`` (nothing if it was not subscribed)."""
        self._listeners.pop(listener, None)
        for ref, (joining, _, _) in list(self._joining.items()):
            if joining == listener:  # gone before its join came back
                del self._joining[ref]
                self.changed.notify_all()

    def publish(self, event: dict[str, Any]) -> None:
        """Give ``event`` to every listener of this process (not through the
        broker). A listener must not block (a WebSocket client's queues the
        message and returns); one that raises is logged and the others still
        get the event."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                app_log.exception("chat listener %r failed", listener)

    def since(self, cursor: int, epoch: str | None = None) -> list[dict[str, Any]]:
        """The kept messages after ``cursor``; all of them if the cursor is from
        another epoch (``epoch`` given and not this room's) or from the future."""
        if cursor > self.last_id or (epoch is not None and epoch != self.epoch):
            cursor = 0
        return [m for m in self.messages if m["id"] > cursor]

    async def add(self, author: str, text: str) -> dict[str, Any]:
        """Post a message; returns it with its id once this process has it (so
        a poll that follows with that id as its cursor waits for the next).

        Raises :class:`~reactor.demo.broker.BrokerUnavailable` if the broker
        cannot deliver it: it was not posted.
        """
        event = await self.broker.publish(
            self.name, {"type": "message", "author": author, "text": text}
        )
        number = event["id"]
        deadline = IOLoop.current().time() + ECHO_SECONDS
        while self.last_id < number and IOLoop.current().time() < deadline:
            # From Redis it comes back on the subscribed connection; if that
            # broke meanwhile, the sync that follows the reconnection brings it.
            await self.changed.wait(timeout=deadline)
        return {"id": number, "author": author, "text": text}

    async def join(self, listener: Listener, name: str, cursor: int, epoch: str | None) -> None:
        """Tell the room's listeners in every process that ``name`` came, then
        give ``listener`` the kept messages after ``cursor`` (a ``history``
        event) and every event after its own join, in the broker's order: so
        it misses nothing between its history and its first event.

        With the broker unreachable, ``listener`` is let in here alone (its
        history, then the events of this process) and no one is told.
        """
        ref = os.urandom(8).hex()
        self._joining[ref] = (listener, cursor, epoch)
        try:
            await self.broker.publish(self.name, {"type": "join", "name": name, "ref": ref})
        except BrokerUnavailable:
            pass  # in at once, unannounced
        else:
            deadline = IOLoop.current().time() + ECHO_SECONDS
            while ref in self._joining and IOLoop.current().time() < deadline:
                await self.changed.wait(timeout=deadline)
        entry = self._joining.pop(ref, None)
        if entry is not None:
            self._admit(*entry)

    async def leave(self, listener: Listener, name: str) -> None:
        """Stop giving events to ``listener`` and tell the others ``name`` left
        (if the broker can: a leave is not worth an error)."""
        self.unsubscribe(listener)
        try:
            await self.broker.publish(self.name, {"type": "leave", "name": name})
        except BrokerUnavailable:
            pass

    def _admit(self, listener: Listener, cursor: int, epoch: str | None) -> None:
        listener({"type": "history", "room": self.epoch, "messages": self.since(cursor, epoch)})
        self._listeners[listener] = None

    def receive(self, event: dict[str, Any]) -> None:
        """What the broker delivers (its subscriber): each message once, in order."""
        # From Redis, whoever may write to it could have published this: only
        # what this demo would post gets through, with only the known fields.
        kind = event.get("type")
        if kind == "message":
            author, text = event.get("author"), event.get("text")
            if not _fits(author, MAX_NAME) or not _fits(text, MAX_TEXT, printable=False):
                app_log.warning(
                    "chat room %s: dropped message %s (not one of ours)", self.name, event.get("id")
                )
                return
            self._record({"id": event["id"], "author": author, "text": text})
        elif kind == "sync":
            self._sync(event)
        elif kind in ("join", "leave"):
            name, ref = event.get("name"), event.get("ref")
            if not _fits(name, MAX_NAME):
                return
            self.publish({"type": kind, "name": name})  # to the others: the one joining is not in
            entry = self._joining.pop(ref, None) if isinstance(ref, str) else None
            if entry is not None:
                self._admit(*entry)
                self.changed.notify_all()  # join() is waiting for this

    def _record(self, message: dict[str, Any]) -> None:
        if message["id"] <= self.last_id:
            return  # had it already
        self.last_id = message["id"]
        self.messages.append(message)
        del self.messages[: -self.cache_size]
        self.changed.notify_all()
        self.publish({"type": "message", **message})

    def _sync(self, event: dict[str, Any]) -> None:
        """Catch up with the broker: the messages this process missed (while
        it was starting, or disconnected) are given to its clients, in order."""
        if event["epoch"] != self.epoch:
            self.epoch = event["epoch"]
            self.messages = []
            self.last_id = 0
        for message in event["messages"]:
            if message["id"] > self.last_id:
                self.receive(message)
        self.last_id = max(self.last_id, event["last_id"])
        self.changed.notify_all()


def _fits(value: object, length: int, printable: bool = True) -> bool:
    """Whether ``value`` is a string such as the demo accepts: 1 to ``length``
    characters (printable ones, for a name)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= length
        and (not printable or value.isprintable())
    )


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

    def __init__(
        self,
        upload_dir: str,
        chat_cache_size: int = 100,
        broker: Broker | None = None,
        **settings: Any,
    ) -> None:
        self.upload_dir = upload_dir
        self.room = ChatRoom(chat_cache_size, broker)
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
            web.url(r"/chat/live", LiveChatHandler, name="chat-live"),
            web.url(r"/chat/socket", ChatSocketHandler, name="chat-socket"),
        ]
        defaults: dict[str, Any] = {
            "template_path": os.path.join(HERE, "templates"),
            "static_path": os.path.join(HERE, "static"),
            "cookie_secret": os.environ.get(SECRET_ENV) or os.urandom(32).hex(),
            "xsrf_cookies": True,
            "login_url": "/login",
            "websocket_ping_interval": PING_SECONDS,
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

    def prepare(self) -> Awaitable[None] | None:
        # The chat's broker starts on the first request, so on the loop that
        # serves (after a fork, in the process that serves): then never again.
        room = self.app.room
        return None if room.ready else room.start()


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
                "sockets": room.subscribers,
                "uploads": [{"name": u["name"], "size": u["size"]} for u in self.app.uploads],
            }
        )


class ChatNewHandler(BaseHandler):
    @web.authenticated
    async def post(self) -> None:
        text = self.get_argument("text").strip()
        if not text or len(text) > MAX_TEXT:
            raise web.HTTPError(400, "a message of 1 to %d characters", MAX_TEXT)
        assert self.current_user is not None
        room = self.app.room
        try:
            message = await room.add(self.current_user, text)
        except BrokerUnavailable as e:
            # Not posted, and the poster is told so: try again later.
            self.set_status(503)
            self.set_header("Retry-After", "5")
            self.write({"error": f"not delivered: the chat is unavailable ({e}), try again"})
            return
        self.write(message)


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


_last_encoded: tuple[dict[str, Any], str] | None = None


def _encode(event: dict[str, Any]) -> str:
    """``event`` as JSON, encoded once for all the listeners it is published
    to in turn (the last one is kept, and with it the dict: its id cannot be
    reused meanwhile)."""
    global _last_encoded
    if _last_encoded is None or _last_encoded[0] is not event:
        _last_encoded = (event, escape.json_encode(event))
    return _last_encoded[1]


def clock() -> float:
    """Seconds, for the WebSocket clients' message rate (the loop's clock)."""
    return IOLoop.current().time()


class LiveChatHandler(BaseHandler):
    """``GET /chat/live``: the room's page for the WebSocket client (``live.js``)."""

    @web.authenticated
    def get(self) -> None:
        self.render("live.html", max_text=MAX_TEXT)


class ChatSocketHandler(BaseHandler, websocket.WebSocketHandler):
    """``/chat/socket?cursor=N&room=EPOCH``: the room over a WebSocket, signed in.

    Server to client, JSON events: first ``{"type": "history", "room": EPOCH,
    "messages": [...]}`` (the kept messages after the cursor), then
    ``message`` (``id``, ``author``, ``text``: shown as text by the page),
    ``join`` and ``leave`` (``name``: someone else came or went) and
    ``error`` (``error``: why the last message was refused, to its sender
    alone). Client to server: ``{"text": "..."}``, 1 to ``MAX_TEXT``
    characters, at most ``BURST`` at once and ``RATE`` a second after (one
    beyond is refused). The origin must be this site's (``check_origin``'s default);
    a WebSocket is a GET and carries no XSRF token, the origin check is what
    keeps another site's page out.

    Broadcasting never waits for a client: ``write_message`` queues the
    frame. What is queued and not yet taken by the kernel is counted per
    client (``pending``); a client that lets it pass ``MAX_PENDING`` (it
    stopped reading) is closed with 1008, so it cannot make the server
    buffer the room's traffic without end.
    """

    pending = 0
    """Bytes written to this client that the kernel has not taken yet."""
    subscribed = False
    allowance = float(BURST)
    """Messages this client may send now (a token bucket: ``RATE`` a second
    are added, up to ``BURST``)."""
    checked = 0.0

    @property
    def max_message_size(self) -> int:
        return MAX_FRAME

    def prepare(self) -> Awaitable[None] | None:
        # Before the upgrade: a 403 or 400 here is an HTTP answer.
        if not self.current_user:
            raise web.HTTPError(403, "sign in to chat")
        try:
            self.cursor = int(self.get_query_argument("cursor", "0"))
        except ValueError:
            raise web.HTTPError(400, "cursor must be an integer") from None
        return super().prepare()

    async def open(self, *args: str, **kwargs: str) -> None:
        room = self.app.room
        self.user_name = self.current_user
        self.checked = clock()
        epoch = self.get_query_argument("room", None)
        self.subscribed = True
        await room.join(self.deliver, self.user_name, self.cursor, epoch)

    async def on_message(self, message: str | bytes) -> None:
        text = None
        if isinstance(message, str):
            try:
                text = json.loads(message)["text"]
            except (ValueError, TypeError, KeyError, RecursionError):  # Recursion: too deep
                pass
        now = clock()
        self.allowance = min(float(BURST), self.allowance + (now - self.checked) * RATE)
        self.checked = now
        if self.allowance < 1:
            self.refuse(
                "too many at once", f"too fast: {BURST} messages at once, then {RATE:g} a second"
            )
            return
        self.allowance -= 1
        if not isinstance(text, str):
            self.refuse(f"{len(message)} bytes, not JSON text", 'send {"text": "..."} as text')
        elif not text.strip() or len(text.strip()) > MAX_TEXT:
            self.refuse(f"{len(text)} characters", f"a message is 1 to {MAX_TEXT} characters")
        else:
            try:
                await self.app.room.add(self.user_name, text.strip())
            except BrokerUnavailable:
                self.deliver(
                    {"type": "error", "error": "not delivered: the chat is unavailable, try again"}
                )

    def refuse(self, what: str, error: str) -> None:
        """Tell this client alone why its message was refused; log it."""
        app_log.warning(
            "chat socket of %s (%s): refused a message (%s)",
            self.user_name,
            self.request.remote_ip,
            what,
        )
        self.deliver({"type": "error", "error": error})

    def deliver(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for this client; never waits for it."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        data = _encode(event)
        size = len(data)  # bytes: json_encode's output is ASCII
        if self.pending + size > MAX_PENDING:
            app_log.warning(
                "chat socket of %s (%s): closed, %d bytes unread",
                self.user_name,
                self.request.remote_ip,
                self.pending,
            )
            self.close(1008, "too slow: messages were not read")
            return
        try:
            written = self.write_message(data)
        except websocket.WebSocketClosedError:
            return
        self.pending += size

        def taken(future: asyncio.Future[None]) -> None:
            self.pending -= size
            if not future.cancelled():
                future.exception()  # a closed stream's error is no one's business here

        written.add_done_callback(taken)

    def on_close(self) -> None:
        if self.subscribed:
            self.subscribed = False
            IOLoop.current().spawn_callback(self.app.room.leave, self.deliver, self.user_name)


def make_app(
    upload_dir: str | None = None, broker: Broker | str | None = None, **settings: Any
) -> DemoApplication:
    """The demo application, uploads stored in ``upload_dir`` (None: a
    temporary folder of its own, removed at exit).

    ``broker`` carries the chat's events: a :class:`~reactor.demo.broker.Broker`,
    or a URL for :func:`~reactor.demo.broker.from_url` (``redis://HOST:PORT/DB``);
    None reads ``REACTOR_DEMO_BROKER`` (so ``python -m reactor serve
    reactor.demo.app:make_app`` uses it in every process), and without it
    the in-process broker. The cookie secret, when ``settings`` give none,
    is ``REACTOR_DEMO_SECRET``'s, else a random one.
    """
    if broker is None:
        broker = os.environ.get(BROKER_ENV)
    if not isinstance(broker, Broker):
        broker = from_url(broker)
    if upload_dir is None:
        upload_dir = tempfile.mkdtemp(prefix="reactor-demo-uploads-")
        maker = os.getpid()

        def remove(path: str = upload_dir) -> None:
            if os.getpid() == maker:  # not a forked child leaving before the others
                shutil.rmtree(path, ignore_errors=True)

        atexit.register(remove)
    return DemoApplication(upload_dir, broker=broker, **settings)
