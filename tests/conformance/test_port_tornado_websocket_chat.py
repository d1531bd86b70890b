"""A Tornado WebSocket chat ports to reactor by changing its imports, on every backend.

``examples/tornado_websocket_chat`` is a Tornado 6.6 application in the
shape of Tornado's ``demos/websocket`` (a page, a ``WebSocketHandler`` with
a class-level set of open sockets and a message cache, JSON messages, a
small script), written for this project. The test copies it into a
temporary folder, rewrites ``tornado`` to ``reactor`` in its import lines
and nowhere else (``port_to_reactor``, shared with the port of
``examples/tornado_app``), serves it on the test's loop and drives it with
reactor's WebSocket client. The same driver runs against the unmodified
example served by Tornado in a subprocess, so what it asserts is Tornado's
behaviour. tests/test_browser.py opens the port in Chromium on each backend.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reactor import gen
from reactor import options as reactor_options
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from reactor.websocket import WebSocketClientConnection, websocket_connect
from tests.conformance.test_port_tornado_app import port_to_reactor

pytestmark = pytest.mark.usefixtures("reactor_log")

ROOT = Path(__file__).resolve().parents[2]
CHAT_DIR = ROOT / "examples" / "tornado_websocket_chat"
READ_SECONDS = 5.0
"""How long the driver waits for a message before the test fails."""


def port_chat(into: Path) -> Path:
    """The example copied into ``into``, its imports ported; the ported app.py."""
    shutil.copytree(CHAT_DIR, into, ignore=shutil.ignore_patterns("__pycache__"))
    path = into / "app.py"
    path.write_text(port_to_reactor(path.read_text()))
    return path


@pytest.fixture(scope="module")
def ported_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The ported module, imported once. Its ``define()`` calls go to an
    ``options`` of its own: the process-wide one allows each name once, and
    the port of examples/tornado_app defines ``--port`` too."""
    path = port_chat(tmp_path_factory.mktemp("ported") / "chat")
    spec = importlib.util.spec_from_file_location("ported_tornado_websocket_chat", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    process_wide = reactor_options.options
    reactor_options.options = reactor_options.OptionParser()
    try:
        spec.loader.exec_module(module)
    finally:
        reactor_options.options = process_wide
    yield module


class Chatter:
    """One client of the room: reactor's WebSocket client, JSON decoded."""

    def __init__(self, connection: WebSocketClientConnection) -> None:
        self.connection = connection

    async def say(self, text: Any) -> None:
        await self.connection.write_message(json.dumps({"text": text}))

    async def hear(self) -> dict[str, Any]:
        message = await gen.with_timeout(
            timedelta(seconds=READ_SECONDS), self.connection.read_message()
        )
        assert isinstance(message, str), message
        return json.loads(message)  # type: ignore[no-any-return]

    async def leave(self) -> None:
        """Close, and wait until the server has closed too (its messages on
        the way are read and dropped)."""
        self.connection.close()
        while (
            await gen.with_timeout(timedelta(seconds=READ_SECONDS), self.connection.read_message())
            is not None
        ):
            pass


async def drive_chat(base_url: str, cache_size: int) -> None:
    """What users of the room do, every answer checked. The room must be new
    (no message yet) and keep ``cache_size`` messages."""
    client = AsyncHTTPClient(force_instance=True)
    try:
        page = await client.fetch(base_url + "/", request_timeout=10)
        html = page.body.decode()
        assert "<h1>WebSocket chat</h1>" in html
        script = re.search(r'src="(/static/chat\.js\?v=[0-9a-f]+)"', html)
        assert script, html
        js = await client.fetch(base_url + script.group(1), request_timeout=10)
        assert js.body == (CHAT_DIR / "static" / "chat.js").read_bytes()
    finally:
        client.close()

    url = base_url.replace("http://", "ws://") + "/socket"

    async def join() -> Chatter:
        return Chatter(await websocket_connect(url, connect_timeout=10))

    alice = await join()
    await alice.say("<script>alert(1)</script>")  # data, not markup: sent back as is
    assert await alice.hear() == {"id": 1, "text": "<script>alert(1)</script>"}

    bob = await join()  # a late joiner is sent what was said
    assert await bob.hear() == {"id": 1, "text": "<script>alert(1)</script>"}
    await bob.say("hello alice ☺")
    for chatter in (alice, bob):
        assert await chatter.hear() == {"id": 2, "text": "hello alice ☺"}

    # refused messages go back to their sender alone, and are not kept
    for bad in ("x" * 501, "  ", 42):
        await alice.say(bad)
        assert "error" in await alice.hear()
    await alice.connection.write_message("not json")
    assert "1 to 500 characters" in (await alice.hear())["error"]
    await bob.say("x" * 500)
    for chatter in (alice, bob):
        assert await chatter.hear() == {"id": 3, "text": "x" * 500}  # bob heard no error

    # the cache is bounded: a late joiner gets the newest messages only
    for n in range(4, cache_size + 3):
        await alice.say(f"m{n}")
        for chatter in (alice, bob):
            assert await chatter.hear() == {"id": n, "text": f"m{n}"}
    carol = await join()
    replayed = [(await carol.hear())["id"] for _ in range(cache_size)]
    assert replayed == list(range(3, cache_size + 3))

    # one who leaves is written to no more; the others go on
    await alice.leave()
    await bob.say("still here")
    for chatter in (bob, carol):
        assert (await chatter.hear())["text"] == "still here"
    await bob.leave()
    await carol.leave()


async def test_ported_chat(io_loop: IOLoop, ported_chat: ModuleType) -> None:
    module = ported_chat
    assert module.websocket.__name__ == "reactor.websocket"
    handler = module.ChatSocketHandler
    handler.cache.clear()  # class-level: a fresh room for each backend
    handler.waiters.clear()
    handler.last_id = 0
    cache_size = 4
    module.CACHE_SIZE = cache_size
    sock, port = bind_unused_port()
    server = HTTPServer(module.make_app())
    server.add_sockets([sock])
    try:
        await drive_chat(f"http://127.0.0.1:{port}", cache_size)
        assert len(handler.cache) == cache_size
    finally:
        server.stop()
        await server.close_all_connections()


def test_the_example_is_tornado_code(tmp_path: Path) -> None:
    """The unmodified example, served by Tornado in a subprocess, passes the
    same driver (reactor's client on one loop: it runs once)."""
    pytest.importorskip("tornado")
    server = subprocess.Popen(
        [sys.executable, str(CHAT_DIR / "app.py"), "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    loop = IOLoop(make_current=False)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+)/", line)
        assert match, (line, server.stderr.read() if server.stderr else "")
        cache_size = 50  # the example's CACHE_SIZE

        loop.run_sync(lambda: drive_chat(match.group(1), cache_size), timeout=30)
    finally:
        loop.close()
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "Traceback" not in err, err
