"""The demo in a real browser: Debian's chromium, headless, driven by Playwright.

``python -m reactor demo`` runs as a user starts it (a subprocess, a free
port); two browser pages sign in as two users, post the XSRF-protected
form, upload a file and see its size, and exchange chat messages through
the long poll. In the live chat (the same room over a WebSocket) two pages
see each other's messages and comings and goings, markup in a message
shows as text, and the page's script reconnects once the server is back
after a restart. The port of ``examples/tornado_websocket_chat`` (Tornado
code, imports changed) runs on each backend and two pages chat through it.

One browser serves every test (a context per user: cookies of its own),
so that the whole costs one browser start. The browser is the system's
(``/usr/bin/chromium``), never one Playwright downloads; it is offline, and
the demo needs nothing from outside. Without chromium or the playwright
package the tests are skipped and say which is missing (``.ci/run``
installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.util import backend_envs

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("REACTOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 5000
"""Milliseconds any browser step may take before the test fails."""


@pytest.fixture
def demo_url() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "reactor", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/) on the (\w+) backend", line)
        assert match, line
        yield match.group(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS * 2
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, url: str, name: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.locator("#hello")).to_have_text(
        re.compile(r"Hello from reactor on the \w+ backend!")
    )
    page.click("#login")
    page.fill("#name", name)
    page.click("#login-form button")
    expect(page.locator("#user")).to_have_text(name)
    return page


def test_demo_in_a_browser(browser: Any, demo_url: str) -> None:
    from playwright.sync_api import expect

    alice = sign_in(browser, demo_url, "alice")
    # the stylesheet is a static file under a versioned URL, and it applied
    assert re.search(r"/static/demo\.css\?v=\w+", alice.content())
    assert "sans-serif" in alice.evaluate("getComputedStyle(document.body).fontFamily")

    # the XSRF-protected form, with markup in it shown as text
    alice.fill("#notes-form input[name=note]", "<i>first</i>")
    alice.click("#notes-form button")
    expect(alice.locator("#note-count")).to_have_text("1 note")
    expect(alice.locator("#notes li")).to_have_text("<i>first</i>")

    # an upload, streamed to the server, its size shown after
    alice.set_input_files(
        "#upload-file",
        files=[
            {"name": "hello.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 12345}
        ],
    )
    alice.click("#upload-form button")
    expect(alice.locator("#upload-result")).to_have_text("Uploaded hello.bin: 12345 bytes")
    alice.reload()
    expect(alice.locator("#uploads li")).to_have_text("hello.bin: 12345 bytes")

    # the chat: each page's message reaches the other's long poll
    bob = sign_in(browser, demo_url, "bob")
    alice.fill("#chat-text", "hi bob <b>")
    alice.press("#chat-text", "Enter")
    expect(bob.locator("#messages li").last).to_have_text("alice: hi bob <b>")
    expect(bob.locator("#messages li span b")).to_have_count(0)  # text, not markup
    bob.fill("#chat-text", "hi alice")
    bob.press("#chat-text", "Enter")
    expect(alice.locator("#messages li").last).to_have_text("bob: hi alice")
    expect(alice.locator("#messages li")).to_have_count(2)

    # the JSON endpoint, read by the browser
    info = alice.evaluate("fetch('/api/info').then((r) => r.json())")
    assert info["user"] == "alice"
    assert (info["messages"], info["notes"]) == (2, 1)

    alice.click("#logout")
    expect(alice.locator("#login")).to_be_visible()


# -- the live chat: WebSockets ------------------------------------------------------

SERVE_DEMO = """
import signal, sys, tempfile
from reactor.demo.app import make_app
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets

sockets = bind_sockets(int(sys.argv[1]), "127.0.0.1")
server = HTTPServer(make_app(tempfile.mkdtemp(), cookie_secret="browser-test"))
server.add_sockets(sockets)
print("listening on http://127.0.0.1:%d/" % sockets[0].getsockname()[1], flush=True)
loop = IOLoop.current()
signal.signal(signal.SIGTERM, lambda signum, frame: loop.add_callback_from_signal(loop.stop))
loop.start()
"""
"""The demo application with a fixed cookie secret on a given port (0: a free
one), so that it can be restarted on the same port with its users still
signed in (``python -m reactor demo`` makes a new secret each start)."""


class Server:
    """A server process that prints ``listening on http://127.0.0.1:PORT/``;
    :meth:`started` waits for that line (start several, then wait: they
    start in parallel)."""

    def __init__(self, args: list[str], backend: str | None = None) -> None:
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        )  # this checkout's reactor
        env.pop("REACTOR_BACKEND", None)
        if backend is not None:
            env["REACTOR_BACKEND"] = backend
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.url = ""
        self.port = 0

    def started(self) -> Server:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.match(r"listening on (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, (line, self.proc.stderr.read() if self.proc.stderr else "")
        self.url = match.group(1)
        self.port = int(match.group(2))
        return self

    def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        assert "Traceback" not in err, err


def test_live_chat_in_a_browser(browser: Any) -> None:
    from playwright.sync_api import expect

    server = Server(["-c", SERVE_DEMO, "0"]).started()
    try:
        alice = sign_in(browser, server.url, "alice")
        alice.click("#live-link")
        expect(alice.locator("#status")).to_have_attribute("data-state", "open")
        bob = sign_in(browser, server.url, "bob")
        bob.goto(server.url + "chat/live")
        expect(bob.locator("#status")).to_have_attribute("data-state", "open")
        expect(alice.locator("#messages li.notice").last).to_have_text("bob joined")

        markup = "<script>window.owned = 1</script><b>bold?</b>"
        alice.fill("#chat-text", markup)
        alice.press("#chat-text", "Enter")
        for page in (alice, bob):
            expect(page.locator("#messages li[data-id]").last).to_have_text(f"alice: {markup}")
            expect(page.locator("#messages li span b")).to_have_count(0)  # text, not markup
            expect(page.locator("#messages script")).to_have_count(0)
            assert page.evaluate("window.owned") is None
        bob.fill("#chat-text", "hi alice")
        bob.press("#chat-text", "Enter")
        expect(alice.locator("#messages li[data-id]").last).to_have_text("bob: hi alice")

        # a message too long (past the input's maxlength, by script): refused to bob alone
        bob.evaluate("document.getElementById('chat-text').value = 'x'.repeat(501)")
        bob.press("#chat-text", "Enter")
        expect(bob.locator("#chat-error")).to_have_text("a message is 1 to 500 characters")
        expect(alice.locator("#chat-error")).to_have_text("")

        bob.close()
        expect(alice.locator("#messages li.notice").last).to_have_text("bob left")

        # the server restarts on the same port: the page reconnects by itself
        # (its back-off starts at 250 ms and doubles), in a new room
        port = server.port
        server.stop()
        expect(alice.locator("#status")).to_have_attribute("data-state", "closed")
        server = Server(["-c", SERVE_DEMO, str(port)]).started()
        expect(alice.locator("#status")).to_have_attribute("data-state", "open", timeout=15000)
        expect(alice.locator("#messages li[data-id]")).to_have_count(0)  # the new room is empty
        alice.fill("#chat-text", "after the restart")
        alice.press("#chat-text", "Enter")
        expect(alice.locator("#messages li[data-id]")).to_have_text(["alice: after the restart"])
    finally:
        server.stop()


BACKENDS = backend_envs()


@pytest.fixture(scope="module")
def ported_chats(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """examples/tornado_websocket_chat with its imports ported, served on each
    backend by a process of its own, all started at once."""
    from tests.conformance.test_port_tornado_websocket_chat import port_chat

    app = port_chat(tmp_path_factory.mktemp("browser-port") / "chat")
    servers = {name: Server([str(app), "--port=0"], backend=env) for name, env in BACKENDS}
    # and the example itself on the framework it was written for
    servers["tornado"] = Server(
        [str(ROOT / "examples" / "tornado_websocket_chat" / "app.py"), "--port=0"]
    )
    try:
        yield {name: server.started() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("backend", [*(name for name, _ in BACKENDS), "tornado"])
def test_ported_tornado_chat_in_a_browser(
    browser: Any, ported_chats: dict[str, Server], backend: str
) -> None:
    """The issue's first "must show": Tornado's WebSocket chat demo, imports
    changed, on every backend, in a real browser (and, unchanged, on Tornado:
    the page and script are the example's own, not written for reactor)."""
    from playwright.sync_api import expect

    server = ported_chats[backend]
    contexts = [browser.new_context() for _ in range(2)]
    try:
        pages = []
        for context in contexts:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(server.url)
            expect(page.locator("#status")).to_have_text("connected")
            pages.append(page)
        first, second = pages
        first.fill("#text", f"<i>on {backend}</i>")
        first.press("#text", "Enter")
        for page in pages:
            expect(page.locator("#messages li")).to_have_text([f"<i>on {backend}</i>"])
            expect(page.locator("#messages li i")).to_have_count(0)
        second.fill("#text", "and back")
        second.press("#text", "Enter")
        expect(first.locator("#messages li")).to_have_text([f"<i>on {backend}</i>", "and back"])
    finally:
        for context in contexts:
            context.close()
