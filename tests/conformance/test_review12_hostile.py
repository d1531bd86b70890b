"""Review of issue 12 as a hostile client and operator: the loop-facing
defects found, each pinned by a test through real sockets, on every backend
(the Redis ones: tests/test_review12_hostile.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reactor import gen, metrics
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets
from reactor.testing import ExpectLog
from reactor.web import Application, RequestHandler
from tests.conformance.test_metrics import Hello, processes, scrape
from tests.conformance.test_server_drain import WAIT, Gate, Slow, bounded, connect, get
from tests.conformance.test_server_drain import gate as gate  # the fixture
from tests.test_demo import Demo, live
from tests.test_demo import site as site  # the fixture
from tests.test_demo import web_log as web_log  # the fixture (no ERROR logged)

pytestmark = pytest.mark.usefixtures("reactor_log")

DEEP = "[" * 100_000
"""JSON nested deeper than json.loads can go: it raises RecursionError (not a
ValueError), however small the limit on the input's size."""


@pytest.fixture
def app() -> Application:
    application = Application([(r"/hello", Hello)], log_function=lambda h: None)
    metrics.install(application)
    return application


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Path]:
    metrics.enable_multiprocess(str(tmp_path))
    yield tmp_path
    metrics.disable_multiprocess()


async def test_a_metrics_file_nested_too_deep_is_ignored(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, exchange: Path
) -> None:
    """A file in the metrics directory that is JSON nested too deep is one
    that cannot be parsed: ignored, as the module promises ("a scrape never
    fails because of one"). It made every scrape of every process a 500."""
    (exchange / "1.json").write_text(DEEP[: metrics._MAX_FILE_SIZE])
    samples = await scrape(http_client, base_url + "/metrics")
    assert set(processes(samples)) == {"0"}


async def test_a_chat_message_nested_too_deep_is_refused(site: Demo) -> None:
    """The demo's live chat: a WebSocket message of JSON nested too deep is
    refused as not JSON text, like any other that is not; it raised out of
    on_message instead (logged as an error, the socket closed)."""
    bob, _ = await live(site, await site.user("bob"))
    await bob.connection.write_message(DEEP[:2000])
    assert await bob.next() == {"type": "error", "error": 'send {"text": "..."} as text'}
    await bob.say("still here")
    message = await bob.next()
    assert message["type"] == "message" and message["text"] == "still here"
    await bob.leave()


# -- the drain, attacked ---------------------------------------------------------------


class Raises(RequestHandler):
    """Fails once the test releases it (a handler that raises during the drain)."""

    def initialize(self, gate: Gate) -> None:
        self.gate = gate

    async def get(self) -> None:
        self.gate.entered.set()
        await self.gate.release.wait()
        raise RuntimeError("raised during the drain")


@pytest.fixture
def drained(io_loop: IOLoop, gate: Gate) -> Iterator[tuple[HTTPServer, int]]:
    app = Application(
        [("/slow", Slow, {"gate": gate}), ("/raises", Raises, {"gate": gate})],
        log_function=lambda handler: None,
    )
    server = HTTPServer(app)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    yield server, sock.getsockname()[1]

    async def finish() -> None:
        gate.release.set()
        for _ in range(5):
            await gen.moment
        server.stop()
        await server.close_all_connections(timeout=0)

    io_loop.run_sync(finish, timeout=WAIT)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = IOLoop.current().time() + timeout
    while not condition():
        assert IOLoop.current().time() < deadline, f"timed out waiting for {what}"
        await gen.sleep(0.01)


@pytest.mark.parametrize("when", ["before", "during"])
async def test_half_a_request_that_stalls_ends_at_the_drain_deadline(
    io_loop: IOLoop, drained: tuple[HTTPServer, int], when: str
) -> None:
    """Half a request's headers, sent before or during the drain, then
    nothing: the drain waits for it (it has begun), but no longer than its
    deadline, far shorter than header_timeout."""
    server, port = drained
    stream = await connect(port)
    half = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "
    if when == "before":
        await stream.write(half)
        await wait_for(lambda: server.stats()["connections_open"] == 1, "the connection")
    server.stop()
    task = gen.convert_yielded(server.close_all_connections(timeout=0.5))
    if when == "during":
        await stream.write(half)
    await bounded(task)
    assert await bounded(stream.read_until_close()) == b""
    assert server.stats()["connections_open"] == 0


async def test_a_handler_that_raises_during_the_drain_is_answered_500_with_close(
    io_loop: IOLoop, drained: tuple[HTTPServer, int], gate: Gate
) -> None:
    """A request in flight whose handler raises once the drain has begun: its
    client gets the 500, with Connection: close, the connection closes, and
    the drain ends then, not at its deadline."""
    server, port = drained
    stream = await connect(port)
    await stream.write(get("/raises"))
    await bounded(gate.entered.wait())
    server.stop()
    task = gen.convert_yielded(server.close_all_connections(timeout=WAIT * 4))
    with ExpectLog("reactor.application", "Uncaught exception", level=logging.ERROR):
        gate.release.set()
        answer = await bounded(stream.read_until_close())
        await bounded(task)
    head = answer.split(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 500 "), answer
    assert b"\r\nConnection: close" in head, head


# -- slowloris at max_connections --------------------------------------------------------


@pytest.mark.parametrize("part", ["headers", "body"])
async def test_a_slowloris_at_max_connections_is_bounded(io_loop: IOLoop, part: str) -> None:
    """One client holding the only connection of ``max_connections=1`` by
    sending its request slowly locks every other client out (they wait in
    the backlog), but only for as long as the server's timeouts allow: for
    the headers, ``header_timeout`` (its 408 frees the slot); for a body,
    ``body_timeout`` (None by default, as in Tornado: ``serve --body-timeout``
    and docs/deployment.md say to set it where ``max_connections`` is)."""
    app = Application([("/slow", Slow, {"gate": Gate()})], log_function=lambda handler: None)
    server = HTTPServer(
        app,
        max_connections=1,
        header_timeout=0.5,
        idle_connection_timeout=0.5,
        body_timeout=0.5,
    )
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    loris = await connect(port)
    other = None
    try:
        if part == "headers":
            await loris.write(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        else:
            await loris.write(
                b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9\r\n\r\n"
            )
        await wait_for(lambda: server.stats()["connections_open"] == 1, "the loris")
        other = await connect(port)  # completed by the kernel, waiting in the backlog
        await other.write(get("/nowhere"))
        # Freed within the timeout (0.5 s here) and the 408's lingering close
        # (LINGER_SECONDS, 2 s), the other client is served.
        await wait_for(
            lambda: server.stats()["connections_accepted"] == 2, "the other client", timeout=4
        )
        answer = await bounded(other.read_until(b"\r\n\r\n"))
        assert answer.startswith(b"HTTP/1.1 404 ")
    finally:
        loris.close()
        if other is not None:
            other.close()
        server.stop()
        await server.close_all_connections(timeout=0)
