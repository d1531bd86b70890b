"""The demo application (:mod:`reactor.demo.app`) over real HTTP, on every backend.

It is served on the test's loop and driven by reactor's client with a
cookie jar (the port test's ``Session``), or by a raw socket where the test
needs a client that lies or goes away. Every bad input gets its 4xx and
changes nothing; what a client can make the server keep is bounded.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reactor import gen, locks
from reactor.demo import app as demo
from reactor.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from reactor.websocket import WebSocketClientConnection, websocket_connect
from tests.conformance.test_port_tornado_app import Session, text

SECRET = "demo-test-secret"
CACHE = 3
"""The chat's message cache in these tests."""


class Demo:
    def __init__(self, app: demo.DemoApplication, port: int, client: AsyncHTTPClient) -> None:
        self.app = app
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.client = client

    def session(self) -> Session:
        return Session(self.client, self.base_url)

    async def user(self, name: str) -> Session:
        session = self.session()
        response = await session.login(name)
        assert response.code == 302, text(response)
        return session

    async def info(self) -> dict[str, Any]:
        response = await self.session().fetch("/api/info")
        assert response.code == 200
        return json.loads(response.body)  # type: ignore[no-any-return]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait, one HTTP round trip at a time (50 at most), for the server to
        have handled what a raw client did."""
        for _ in range(50):
            if condition():
                return
            await self.info()
        raise AssertionError(f"the server did not get to: {what}")

    async def raw(self, data: bytes, read: bool = True) -> bytes:
        """Send ``data`` on a socket of its own; with ``read``, return all the
        server answers until it closes (a 5 s timeout fails the test)."""

        def run() -> bytes:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(data)
                if not read:
                    return b""
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                return b"".join(chunks)

        return await IOLoop.current().run_in_executor(None, run)

    def poll_then_leave(self, session: Session) -> tuple[threading.Event, Any]:
        """Start a long poll on a socket of its own, closed when the returned
        event is set; the future is done once it is closed."""
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        request = f"GET /chat/updates HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n"
        leave = threading.Event()

        def run() -> None:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(request.encode())
                leave.wait(5)

        return leave, IOLoop.current().run_in_executor(None, run)


class Watch:
    """Counts the calls of a method (which goes on working), so that a test
    waits for the server to have got somewhere instead of guessing when."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
        self.calls = 0
        self._changed = locks.Condition()
        real = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            self.calls += 1
            self._changed.notify_all()
            return result

        monkeypatch.setattr(owner, name, counted)

    async def reached(self, calls: int) -> None:
        """Wait until there have been ``calls`` calls (the test's timeout bounds it)."""
        while self.calls < calls:
            await self._changed.wait()


@pytest.fixture
def site(io_loop: IOLoop, tmp_path: Path) -> Iterator[Demo]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    app = demo.make_app(str(uploads), cookie_secret=SECRET, chat_cache_size=CACHE)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        yield Demo(app, port, client)
    finally:
        client.close()
        server.stop()
        io_loop.run_sync(server.close_all_connections)


@pytest.fixture(autouse=True)
def web_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the web layer logs (warnings and up): each refused request leaves a
    line; none is an error (bad input is the client's fault, not the server's)."""
    caplog.set_level(logging.WARNING, logger="reactor")
    yield caplog
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def logged(caplog: pytest.LogCaptureFixture, *words: str) -> bool:
    return any(all(w in r.getMessage() for w in words) for r in caplog.records)


async def test_page_static_files_and_json(site: Demo, io_loop: IOLoop) -> None:
    session = site.session()
    page = await session.fetch("/")
    assert page.code == 200
    assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert f"Hello from reactor on the {io_loop.backend_name} backend!" in text(page)
    assert "Sign in to upload files and to chat." in text(page)
    for name in ("demo.css",):
        match = re.search(rf'"(/static/{re.escape(name)}\?v=[0-9a-f]+)"', text(page))
        assert match, text(page)
        static = await session.fetch(match.group(1))
        assert static.code == 200
        assert static.body == (Path(demo.HERE) / "static" / name).read_bytes()
        assert "max-age=" in static.headers["Cache-Control"]  # versioned: cached long
    info = await session.fetch("/api/info")
    assert info.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(info.body) == {
        "backend": io_loop.backend_name,
        "user": None,
        "notes": 0,
        "messages": 0,
        "last_message_id": 0,
        "waiting_polls": 0,
        "sockets": 0,
        "uploads": [],
    }
    assert (await session.fetch("/nothing/here")).code == 404
    assert (await session.fetch("/static/../app.py")).code in (403, 404)


async def test_login_with_a_signed_cookie(site: Demo, web_log: pytest.LogCaptureFixture) -> None:
    from reactor.web import create_signed_value

    alice = await site.user("alice")
    page = await alice.fetch("/")
    assert 'signed in as <b id="user">alice</b>' in text(page)
    assert 'src="/static/demo.js?v=' in text(page)
    assert (await site.info())["user"] is None  # another client
    # the login form: its name is checked, its "next" stays on this site
    bob = site.session()
    bad = await bob.login(" ")
    assert bad.code == 400
    assert "a name of 1 to 32 characters" in text(bad)
    for elsewhere in ("//evil.example/x", "/\\evil.example", "https://evil.example/", "/\r\nX: y"):
        away = await bob.fetch(
            "/login", "POST", {"name": "bob", "next": elsewhere, "_xsrf": bob.xsrf}
        )
        assert (away.code, away.headers["Location"]) == (302, "/"), elsewhere
    back = await bob.fetch(
        "/login", "POST", {"name": "bob", "next": "/api/info", "_xsrf": bob.xsrf}
    )
    assert (back.code, back.headers["Location"]) == (302, "/api/info")
    # a cookie the server did not sign, a tampered one, an expired one: nobody
    for value in (
        "alice",
        alice.cookies["user"].replace("YWxpY2U=", "Ym9i"),  # base64 of "bob"
        create_signed_value(
            SECRET, "user", "alice", clock=lambda: time.time() - 8 * 86400
        ).decode(),
        create_signed_value("another secret", "user", "alice").decode(),
    ):
        mallory = site.session()
        mallory.cookies["user"] = value
        page = await mallory.fetch("/")
        assert page.code == 200
        assert 'id="login"' in text(page), value
    fresh = site.session()
    fresh.cookies["user"] = create_signed_value(SECRET, "user", "carol").decode()
    assert 'signed in as <b id="user">carol</b>' in text(await fresh.fetch("/"))
    # sign out
    out = await alice.fetch("/logout", "POST", {"_xsrf": alice.xsrf})
    assert out.code == 302
    assert "user" not in alice.cookies


async def test_the_notes_form_needs_its_xsrf_token(
    site: Demo, web_log: pytest.LogCaptureFixture
) -> None:
    session = site.session()
    await session.fetch("/")
    for form in (
        {"note": "x"},
        {"note": "x", "_xsrf": "2|abcd|0123|1"},
        {"note": "x", "_xsrf": ""},
    ):
        refused = await session.fetch("/notes", "POST", form)
        assert refused.code == 403, form
    assert logged(web_log, "403", "/notes")
    # a token in the form but no cookie to match it: refused too
    stranger = site.session()
    refused = await stranger.fetch("/notes", "POST", {"note": "x", "_xsrf": session.xsrf})
    assert refused.code == 403
    missing = await session.fetch("/notes", "POST", {"_xsrf": session.xsrf})
    assert missing.code == 400
    assert logged(web_log, "Missing argument note")
    not_utf8 = await session.fetch(
        "/notes",
        "POST",
        body=b"note=%ff%fe&_xsrf=" + session.xsrf.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.code == 400
    too_long = await session.fetch("/notes", "POST", {"note": "x" * 501, "_xsrf": session.xsrf})
    assert too_long.code == 400
    assert site.app.notes == []
    # with the token, by form field or by header
    ok = await session.fetch(
        "/notes", "POST", {"note": "<script>1</script>", "_xsrf": session.xsrf}
    )
    assert (ok.code, ok.headers["Location"]) == (302, "/")
    ok = await session.fetch(
        "/notes", "POST", {"note": "two"}, headers={"X-XSRFToken": session.xsrf}
    )
    assert ok.code == 302
    page = text(await session.fetch("/"))
    assert "<li>&lt;script&gt;1&lt;/script&gt;</li>" in page
    assert '<p id="note-count">2 notes</p>' in page
    for i in range(demo.MAX_NOTES + 5):  # the notes kept are bounded
        await session.fetch("/notes", "POST", {"note": f"n{i}", "_xsrf": session.xsrf})
    assert len(site.app.notes) == demo.MAX_NOTES


def upload_request(session: Session, length: int, name: str = "f.bin", xsrf: bool = True) -> bytes:
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    token = f"X-XSRFToken: {session.xsrf}\r\n" if xsrf else ""
    return (
        f"PUT /upload?name={name} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n{token}"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


async def test_upload_is_streamed_to_disk(
    site: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads = tmp_path / "uploads"
    chunks: list[int] = []
    received = demo.UploadHandler.data_received

    def counting(handler: demo.UploadHandler, chunk: bytes) -> None:
        chunks.append(len(chunk))
        received(handler, chunk)

    monkeypatch.setattr(demo.UploadHandler, "data_received", counting)
    alice = await site.user("alice")
    data = os.urandom(1024 * 1024 + 7)
    put = await alice.fetch(
        "/upload?name=../../etc/passwd", "PUT", body=data, headers={"X-XSRFToken": alice.xsrf}
    )
    assert put.code == 200, text(put)
    assert json.loads(put.body) == {"name": "passwd", "size": len(data)}  # a name, not a path
    (stored,) = uploads.iterdir()
    assert stored.read_bytes() == data
    assert len(chunks) > 1 and sum(chunks) == len(data)  # to disk as it came, not whole
    assert "<li>passwd: 1048583 bytes</li>" in text(await alice.fetch("/"))
    assert (await site.info())["uploads"] == [{"name": "passwd", "size": len(data)}]
    # the files kept are bounded: the oldest go
    for i in range(demo.MAX_UPLOADS):
        put = await alice.fetch(
            f"/upload?name=f{i}", "PUT", body=b"%d" % i, headers={"X-XSRFToken": alice.xsrf}
        )
        assert put.code == 200
    assert len(list(uploads.iterdir())) == demo.MAX_UPLOADS
    assert [u["name"] for u in site.app.uploads] == [f"f{i}" for i in range(demo.MAX_UPLOADS)]


async def test_upload_refused_before_its_body(
    site: Demo, tmp_path: Path, web_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too big, not signed in, no XSRF token: the answer comes before a byte of
    the body was sent, and nothing reaches the disk."""
    uploads = tmp_path / "uploads"
    alice = await site.user("alice")
    anonymous = site.session()
    await anonymous.fetch("/")
    cases = [
        (upload_request(alice, demo.MAX_UPLOAD + 1), b"413"),
        (upload_request(alice, 10**12), b"413"),
        (upload_request(anonymous, 10), b"403"),
        (upload_request(alice, 10, xsrf=False), b"403"),
        (
            upload_request(alice, 5).replace(b"Content-Length: 5", b"Transfer-Encoding: chunked")
            + b"5\r\nhello\r\n0\r\n\r\n",
            b"411",
        ),
    ]
    for request, status in cases:
        answer = await site.raw(request)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert logged(web_log, "413", "/upload")
    assert list(uploads.iterdir()) == []
    # a client that stops halfway: what came is deleted
    closed = Watch(monkeypatch, demo.UploadHandler, "on_connection_close")
    await site.raw(upload_request(alice, 1000) + b"x" * 10, read=False)
    await closed.reached(1)
    assert list(uploads.iterdir()) == []
    assert site.app.uploads == []


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "DELETE"])
async def test_upload_with_another_method_and_a_body_is_a_405(
    site: Demo, tmp_path: Path, method: str
) -> None:
    """Before: prepare let any method but PUT through without opening a file,
    and the body then failed an assertion in data_received: a 500 and a
    traceback at ERROR for each such request (web_log checks there is none)."""
    alice = await site.user("alice")
    request = upload_request(alice, 5).replace(b"PUT ", method.encode() + b" ", 1) + b"hello"
    answer = await site.raw(request)
    assert answer.startswith(b"HTTP/1.1 405"), answer[:200]
    assert b"\r\nAllow: PUT\r\n" in answer
    assert list((tmp_path / "uploads").iterdir()) == []


async def test_an_upload_cut_short_leaves_no_handler_behind(
    site: Demo, tmp_path: Path, web_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upload a client cuts short is dropped whole: its file, and its
    handler and request (nothing keeps them once the client is gone), with
    nothing logged at ERROR (web_log)."""
    alice = await site.user("alice")
    closed = Watch(monkeypatch, demo.UploadHandler, "on_connection_close")
    for i in range(3):
        await site.raw(upload_request(alice, 1000) + b"x" * 10, read=False)
        await closed.reached(i + 1)
    await site.info()  # one more round trip: the handlers have seen the close
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, demo.UploadHandler)] == []
    assert list((tmp_path / "uploads").iterdir()) == []


def form_post(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


async def test_a_form_body_is_bounded_in_size_and_time(
    site: Demo, web_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every body but an upload's is at most MAX_FORM bytes, whatever the
    server's own limit (100 MB by default: a few connections made the demo
    hold hundreds of MB), and must arrive within BODY_SECONDS."""
    for path in ("/notes", "/login", "/chat/new", "/logout"):
        # Refused on its headers: the client need not send a byte of it.
        answer = await site.raw(form_post(path, demo.MAX_FORM + 1))
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
    chunked = (
        form_post("/notes", 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        + b"%x\r\n" % (demo.MAX_FORM + 1)
        + b"n" * (demo.MAX_FORM + 1)
        + b"\r\n0\r\n\r\n"
    )
    answer = await site.raw(chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert site.app.notes == []
    # A body of the right size that stops coming: the connection is closed
    # once BODY_SECONDS have passed (here shortened), not held forever.
    monkeypatch.setattr(demo, "BODY_SECONDS", 0.05)
    answer = await site.raw(form_post("/notes", 100) + b"note=x")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # A small form still works.
    session = site.session()
    await session.fetch("/")
    ok = await session.fetch("/notes", "POST", {"note": "x" * 400, "_xsrf": session.xsrf})
    assert ok.code == 302
    assert site.app.notes == ["x" * 400]


async def test_chat_long_poll(site: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = await site.user("alice")
    bob = await site.user("bob")
    anonymous = site.session()
    await anonymous.fetch("/")
    assert (
        await anonymous.fetch("/chat/new", "POST", {"text": "hi", "_xsrf": anonymous.xsrf})
    ).code == 403
    poll = await anonymous.fetch("/chat/updates")
    assert poll.code == 302 and poll.headers["Location"].startswith("/login?next=")
    assert (await alice.fetch("/chat/updates?cursor=x")).code == 400
    assert (await alice.fetch("/chat/new", "POST", {"text": "", "_xsrf": alice.xsrf})).code == 400
    long = {"text": "x" * (demo.MAX_TEXT + 1), "_xsrf": alice.xsrf}
    assert (await alice.fetch("/chat/new", "POST", long)).code == 400
    assert (await alice.fetch("/chat/new", "POST", {"text": "no token"})).code == 403

    # alice waits for a message after cursor 0; bob's ends her wait
    parked = Watch(monkeypatch, site.app.room.changed, "wait")
    waiting = gen.convert_yielded(alice.fetch("/chat/updates?cursor=0"))
    await parked.reached(1)
    assert site.app.room.waiting == 1
    sent = await bob.fetch("/chat/new", "POST", {"text": "<b>hi</b> alice", "_xsrf": bob.xsrf})
    assert sent.code == 200
    assert json.loads(sent.body) == {"id": 1, "author": "bob", "text": "<b>hi</b> alice"}
    update = await waiting
    assert json.loads(update.body) == {"messages": [json.loads(sent.body)]}
    assert site.app.room.waiting == 0
    page = text(await alice.fetch("/"))
    assert '<li data-id="1"><b>bob</b>: <span>&lt;b&gt;hi&lt;/b&gt; alice</span></li>' in page

    # a poll behind the newest messages answers at once, from the bounded cache
    for i in range(CACHE + 2):
        await alice.fetch("/chat/new", "POST", {"text": f"m{i}", "_xsrf": alice.xsrf})
    behind = json.loads((await bob.fetch("/chat/updates?cursor=0")).body)["messages"]
    assert [m["text"] for m in behind] == ["m2", "m3", "m4"]
    assert [m["id"] for m in behind] == [4, 5, 6]
    after = json.loads((await bob.fetch("/chat/updates?cursor=5")).body)["messages"]
    assert [m["id"] for m in after] == [6]


async def test_a_poll_with_no_news_answers_empty_in_the_end(
    site: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "POLL_SECONDS", 0.01)
    alice = await site.user("alice")
    answer = await alice.fetch("/chat/updates?cursor=0")
    assert (answer.code, json.loads(answer.body)) == (200, {"messages": []})
    assert site.app.room.waiting == 0


async def test_a_poll_whose_client_leaves_stops_waiting(
    site: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    parked = Watch(monkeypatch, site.app.room.changed, "wait")
    alice = await site.user("alice")
    leave, left = site.poll_then_leave(alice)
    await parked.reached(1)
    assert site.app.room.waiting == 1
    leave.set()
    await left
    await site.until(lambda: site.app.room.waiting == 0, "end the cancelled poll")


# -- the live chat: the same room over a WebSocket ---------------------------------


class Live:
    """A client of ``/chat/socket``: reactor's WebSocket client, JSON events."""

    def __init__(self, connection: WebSocketClientConnection) -> None:
        self.connection = connection

    async def say(self, text: Any) -> None:
        await self.connection.write_message(json.dumps({"text": text}))

    async def next(self) -> dict[str, Any]:
        message = await gen.with_timeout(timedelta(seconds=5), self.connection.read_message())
        assert isinstance(message, str), message
        return json.loads(message)  # type: ignore[no-any-return]

    async def leave(self) -> None:
        """Close, and wait for the server to close too."""
        self.connection.close()
        await self.closed()

    async def closed(self) -> None:
        """Read until the server closes (5 s at most)."""
        while (
            await gen.with_timeout(timedelta(seconds=5), self.connection.read_message())
        ) is not None:
            pass


def socket_request(site: Demo, session: Session | None, query: str = "", **headers: str) -> Any:
    if session is not None and session.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    return HTTPRequest(
        f"ws://127.0.0.1:{site.port}/chat/socket{query}", headers=headers, connect_timeout=10
    )


async def live(site: Demo, session: Session, query: str = "") -> tuple[Live, dict[str, Any]]:
    """A live client of ``session``'s user, and the history it was sent first."""
    client = Live(await websocket_connect(socket_request(site, session, query)))
    history = await client.next()
    assert history["type"] == "history", history
    return client, history


async def test_live_chat_page(site: Demo) -> None:
    anonymous = await site.session().fetch("/chat/live")
    assert anonymous.code == 302 and anonymous.headers["Location"].startswith("/login?next=")
    alice = await site.user("alice")
    assert 'id="live-link" href="/chat/live"' in text(await alice.fetch("/"))
    page = text(await alice.fetch("/chat/live"))
    assert 'data-socket="/chat/socket"' in page
    script = re.search(r'src="(/static/live\.js\?v=[0-9a-f]+)"', page)
    assert script, page
    js = await alice.fetch(script.group(1))
    assert js.body == (Path(demo.HERE) / "static" / "live.js").read_bytes()


async def test_live_chat_two_clients(site: Demo, web_log: pytest.LogCaptureFixture) -> None:
    alice_session = await site.user("alice")
    bob_session = await site.user("bob")
    alice, history = await live(site, alice_session)
    assert history == {"type": "history", "room": site.app.room.epoch, "messages": []}
    bob, _ = await live(site, bob_session)
    assert await alice.next() == {"type": "join", "name": "bob"}  # to the others only

    # a message reaches everyone, its sender too, as data: JSON text, never markup
    script = "<script>alert('hi')</script>"
    await alice.say(script)
    expected = {"type": "message", "id": 1, "author": "alice", "text": script}
    assert await alice.next() == expected
    assert await bob.next() == expected
    page = text(await bob_session.fetch("/"))  # the long-poll page has it, escaped
    assert "<span>&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;</span>" in page

    # refused: too long, empty, not a string, not JSON, binary; to the sender alone
    for bad in ("x" * (demo.MAX_TEXT + 1), "   "):
        await bob.say(bad)
        error = await bob.next()
        assert error == {"type": "error", "error": "a message is 1 to 500 characters"}
    assert logged(web_log, "chat socket of bob", "refused a message (501 characters)")
    await bob.say(["a list"])
    for bad_json in ("{not json", '{"txt": 1}', "[]"):
        await bob.connection.write_message(bad_json)
    await bob.connection.write_message(b"\x00\x01", binary=True)
    for _ in range(5):
        assert await bob.next() == {"type": "error", "error": 'send {"text": "..."} as text'}
    assert logged(web_log, "chat socket of bob", "refused a message (2 bytes, not JSON text)")
    await bob.say("  " + "y" * demo.MAX_TEXT + "  ")  # the longest message, stripped
    for client in (alice, bob):  # alice heard none of bob's errors
        assert await client.next() == {
            "type": "message",
            "id": 2,
            "author": "bob",
            "text": "y" * demo.MAX_TEXT,
        }
    assert [m["text"] for m in site.app.room.messages] == [script, "y" * demo.MAX_TEXT]

    # leaving: the others are told; the room forgets the socket
    assert site.app.room.subscribers == 2
    await bob.leave()
    assert await alice.next() == {"type": "leave", "name": "bob"}
    assert site.app.room.subscribers == 1
    assert (await site.info())["sockets"] == 1
    await alice.leave()
    await site.until(lambda: site.app.room.subscribers == 0, "forget alice's socket")


async def test_live_chat_and_long_poll_share_the_room(site: Demo) -> None:
    alice_session = await site.user("alice")
    alice, _ = await live(site, alice_session)
    posted = await alice_session.fetch(
        "/chat/new", "POST", {"text": "by post", "_xsrf": alice_session.xsrf}
    )
    assert posted.code == 200
    assert await alice.next() == {"type": "message", "id": 1, "author": "alice", "text": "by post"}
    waiting = gen.convert_yielded(alice_session.fetch("/chat/updates?cursor=1"))
    await alice.say("by socket")
    assert (await alice.next())["id"] == 2
    update = json.loads((await waiting).body)
    assert update == {"messages": [{"id": 2, "author": "alice", "text": "by socket"}]}
    await alice.leave()


async def test_live_chat_reconnect_with_a_cursor(site: Demo) -> None:
    """The page's script reconnects with ``room`` (the epoch it knows) and
    ``cursor`` (its last id): it gets what it missed; from another epoch (the
    server restarted), everything kept."""
    alice_session = await site.user("alice")
    for i in range(CACHE + 1):
        await site.app.room.add("bob", f"m{i}")
    epoch = site.app.room.epoch
    alice, history = await live(site, alice_session, f"?room={epoch}&cursor=3")
    assert [m["id"] for m in history["messages"]] == [4]
    await alice.leave()
    for query in ("?room=another&cursor=3", "?cursor=99", ""):
        alice, history = await live(site, alice_session, query)
        assert [m["id"] for m in history["messages"]] == [2, 3, 4], query
        await alice.leave()


async def test_live_chat_refuses_before_the_upgrade(
    site: Demo, web_log: pytest.LogCaptureFixture
) -> None:
    alice = await site.user("alice")
    own = f"http://127.0.0.1:{site.port}"
    cases = [
        (socket_request(site, None), 403),  # not signed in
        (socket_request(site, alice, "?cursor=x"), 400),
        (socket_request(site, alice, Origin="http://evil.example"), 403),  # another site
    ]
    for request, code in cases:
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(request)
        assert refused.value.code == code, request.headers
    assert logged(web_log, "403", "/chat/socket")
    # the same origin is welcome (check_origin's default: the Host's)
    client, _ = await live(site, alice)
    await client.leave()
    same = Live(await websocket_connect(socket_request(site, alice, Origin=own)))
    assert (await same.next())["type"] == "history"
    await same.leave()
    assert site.app.room.messages == []


async def test_live_chat_message_too_big_is_closed_1009(site: Demo) -> None:
    """A frame above MAX_FRAME is not buffered: the socket is closed with 1009."""
    alice, _ = await live(site, await site.user("alice"))
    await alice.connection.write_message("z" * (demo.MAX_FRAME + 1))
    await alice.closed()
    assert alice.connection.close_code == 1009
    assert site.app.room.messages == []
    await site.until(lambda: site.app.room.subscribers == 0, "drop the closed socket")


async def test_a_client_that_does_not_read_is_closed(
    site: Demo, web_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broadcasting never waits for a client; the bytes queued for one that
    stopped reading are bounded (MAX_PENDING, here smaller): past it, it is
    closed, and the room goes on without it."""
    monkeypatch.setattr(demo, "MAX_PENDING", 256 * 1024)
    room = site.app.room
    opened: list[demo.ChatSocketHandler] = []
    real_open = demo.ChatSocketHandler.open

    def open_and_keep(handler: demo.ChatSocketHandler) -> Any:
        opened.append(handler)
        return real_open(handler)

    monkeypatch.setattr(demo.ChatSocketHandler, "open", open_and_keep)
    alice_session, bob_session = await site.user("alice"), await site.user("bob")
    bob, _ = await live(site, bob_session)
    # alice: a raw socket that completes the handshake and never reads a byte
    cookie = "; ".join(f"{k}={v}" for k, v in alice_session.cookies.items())
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.connect(("127.0.0.1", site.port))
        stalled.sendall(
            (
                "GET /chat/socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Cookie: {cookie}\r\n\r\n"
            ).encode()
        )
        assert await bob.next() == {"type": "join", "name": "alice"}
        handler = opened[-1]
        assert handler.user_name == "alice"
        big = "b" * 60_000
        sent = 0
        # at most 400 events of 60 kB (24 MB): far more than the kernel's
        # buffers and MAX_PENDING together
        while handler.ws_connection is not None and not handler.ws_connection.is_closing():
            assert sent < 400, f"still open after {sent} events, {handler.pending} bytes pending"
            room.publish({"type": "message", "id": 0, "author": "x", "text": big})
            sent += 1
            assert handler.pending <= demo.MAX_PENDING
            assert await bob.next() == {"type": "message", "id": 0, "author": "x", "text": big}
        assert logged(web_log, "chat socket of alice", "closed", "bytes unread")
        before = handler.pending
        room.publish({"type": "message", "id": 0, "author": "x", "text": big})
        assert handler.pending == before  # nothing more is queued for it
        assert (await bob.next())["text"] == big  # the room goes on
    finally:
        stalled.close()
    assert await bob.next() == {"type": "leave", "name": "alice"}
    await bob.leave()


async def test_a_listener_that_raises_is_logged_and_the_room_goes_on(
    site: Demo, web_log: pytest.LogCaptureFixture
) -> None:
    room = site.app.room
    alice, _ = await live(site, await site.user("alice"))

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("a broken listener")

    room.subscribe(broken)
    room.subscribe(broken)  # once is enough: a listener is in the room or not
    assert room.subscribers == 2
    message = await room.add("bob", "still delivered")
    assert await alice.next() == {"type": "message", **message}
    failures = [r for r in web_log.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and "chat listener" in failures[0].getMessage()
    assert failures[0].exc_info is not None
    room.unsubscribe(broken)
    room.unsubscribe(broken)  # not subscribed any more: nothing happens
    assert room.subscribers == 1
    web_log.clear()  # the error was expected
    await alice.leave()


async def test_a_client_that_floods_is_refused_past_its_rate(
    site: Demo, web_log: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message is written to everyone: a client may send BURST at once,
    then RATE a second (the clock is the test's, so no timing is involved)."""
    now = [1000.0]
    monkeypatch.setattr(demo, "clock", lambda: now[0])
    alice, _ = await live(site, await site.user("alice"))
    bob, _ = await live(site, await site.user("bob"))
    assert (await alice.next())["type"] == "join"
    for i in range(demo.BURST + 2):
        await bob.say(f"m{i}")
    for i in range(demo.BURST):
        assert (await bob.next())["text"] == f"m{i}"
        assert (await alice.next())["text"] == f"m{i}"
    too_fast = {"type": "error", "error": "too fast: 10 messages at once, then 2 a second"}
    assert await bob.next() == too_fast
    assert await bob.next() == too_fast
    assert logged(web_log, "chat socket of bob", "refused a message (too many at once)")
    now[0] += 1.0  # a second later: RATE more
    for i in range(3):
        await bob.say(f"later {i}")
    assert [(await bob.next()).get("text") for _ in range(3)] == ["later 0", "later 1", None]
    assert [(await alice.next())["text"] for _ in range(2)] == ["later 0", "later 1"]
    assert len(site.app.room.messages) == CACHE
    await alice.leave()
    await bob.leave()
