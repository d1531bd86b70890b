"""reactor's WebSocket server and client against the ``websockets`` package.

``websockets`` is a strict, independent implementation: its client talks to
our server, our client (:func:`reactor.websocket.websocket_connect`) talks
to its server. It runs on asyncio's API, and the asyncio face of reactor's
native loops has no ``create_server``/``create_connection`` (issue 11), so
the peer runs in a child process on asyncio's own loop (tests/ws_peer.py)
and every backend of ours is tested against it the same way. One process
serves the whole module: its server for our client, and its client, which
runs the script a test sends it down a pipe (read and written by streams of
the test's own loop, which meanwhile keeps serving).

On the asyncio and uvloop backends ``serve``/``connect`` would work in the
test's process too; the child process is used everywhere so that all the
backends are tested the same way.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reactor import gen, locks, websocket
from reactor.httpclient import HTTPRequest
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import PipeIOStream
from reactor.testing import bind_unused_port
from reactor.testing.tls import TLSCertificate
from reactor.web import Application
from tests.ws_peer import pattern

pytestmark = pytest.mark.usefixtures("reactor_log")

PEER = str(Path(__file__).resolve().parents[1] / "ws_peer.py")
WAIT = 4.0
BIG = 16 * 1024 * 1024
"""The 16 MiB message of the issue: above the default max_message_size (10 MiB)."""
ROOM = 32 * 1024 * 1024


def _digest(size: int) -> str:
    return hashlib.sha256(pattern(size)).hexdigest()


def _bounded(future: Any, timeout: float = WAIT) -> Any:
    return gen.with_timeout(datetime.timedelta(seconds=timeout), future)


# -- the websockets client against our server -------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.closes: list[tuple[int | None, str | None]] = []
        self.closed = locks.Event()


class Echo(websocket.WebSocketHandler):
    def initialize(self, seen: Seen) -> None:
        self.seen = seen

    def on_message(self, message: str | bytes) -> None:
        if message == "close-me":
            self.close(4001, "server bye")
        else:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data: bytes) -> None:
        self.seen.events.append(("ping", data))

    def on_close(self) -> None:
        self.seen.closes.append((self.close_code, self.close_reason))
        self.seen.closed.set()

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return "chat" if "chat" in subprotocols else None


class DeflateEcho(Echo):
    def get_compression_options(self) -> dict[str, Any] | None:
        return {}


class BigEcho(Echo):
    @property
    def max_message_size(self) -> int:
        return ROOM


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def app(seen: Seen) -> Application:
    kwargs = {"seen": seen}
    return Application(
        [("/echo", Echo, kwargs), ("/deflate", DeflateEcho, kwargs), ("/big", BigEcho, kwargs)]
    )


@pytest.fixture
def ws_url(http_server: Any, http_port: int) -> str:
    return f"ws://127.0.0.1:{http_port}"


@dataclass
class Peer:
    """tests/ws_peer.py's process: its server's URL, and its pipes for the
    client scripts it runs on command."""

    url: str
    stdin: int
    stdout: int
    tls_url: str | None
    """``wss://localhost:PORT`` with the run's test certificate, if there is one."""


@pytest.fixture(scope="module")
def peer(request: pytest.FixtureRequest) -> Iterator[Peer]:
    """One peer process for the module (it ends when its stdin closes)."""
    command = [sys.executable, PEER, "serve"]
    try:
        certificate: TLSCertificate | None = request.getfixturevalue("tls_certificate")
    except pytest.skip.Exception:  # no way to make one here: only the wss tests skip
        certificate = None
    if certificate is not None:
        command += ["--cert-file", str(certificate.cert_file)]
        command += ["--key-file", str(certificate.key_file)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ports = json.loads(proc.stdout.readline())
        tls_url = f"wss://localhost:{ports['tls_port']}" if ports["tls_port"] else None
        yield Peer(
            f"ws://127.0.0.1:{ports['port']}", proc.stdin.fileno(), proc.stdout.fileno(), tls_url
        )
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


async def peer_client(peer: Peer, url: str, script: list[list[Any]], **options: Any) -> Any:
    """Have the peer's websockets client run ``script`` against ``url``
    (options: ``compression``, ``max_size``, ``subprotocols``, ``ca_file``);
    its report."""
    command_id = os.urandom(8).hex()
    command = {"id": command_id, "url": url, "script": script, **options}
    # Streams of this test's loop over copies of the pipes' descriptors.
    to_peer, from_peer = PipeIOStream(os.dup(peer.stdin)), PipeIOStream(os.dup(peer.stdout))
    try:
        await _bounded(to_peer.write(json.dumps(command).encode() + b"\n"))
        while True:
            answer = json.loads(await _bounded(from_peer.read_until(b"\n")))
            if answer["id"] == command_id:  # not the late answer of a test that timed out
                break
    finally:
        to_peer.close()
        from_peer.close()
    assert "error" not in answer, answer["error"]
    return answer["report"]


async def test_their_client_echo_text_and_binary(peer: Peer, ws_url: str, seen: Seen) -> None:
    report = await peer_client(
        peer,
        ws_url + "/echo",
        [["text", "h\u00e9llo"], ["recv"], ["binary", 1000], ["recv"], ["close", 1000, "done"]],
    )
    assert report["results"] == [
        {"text": "h\u00e9llo"},
        {"binary_len": 1000, "sha256": _digest(1000)},
    ]
    assert report["close_code"] == 1000  # our server echoes the code
    await _bounded(seen.closed.wait())
    assert seen.closes == [(1000, "done")]


async def test_their_client_fragmented_message(peer: Peer, ws_url: str, seen: Seen) -> None:
    # websockets sends each piece as a frame: multibyte characters, an empty one.
    pieces = ["h\u00e9l", "", "lo \u20ac", "\U0001f600"]
    for compression in (None, "deflate"):
        report = await peer_client(
            peer,
            ws_url + "/deflate",
            [["fragments", pieces], ["recv"], ["close", 1000, ""]],
            compression=compression,
        )
        assert report["results"] == [{"text": "".join(pieces)}]


async def test_their_client_16_mib_echoed_with_room(peer: Peer, ws_url: str, seen: Seen) -> None:
    report = await peer_client(peer, ws_url + "/big", [["binary", BIG], ["recv"]], max_size=ROOM)
    assert report["results"] == [{"binary_len": BIG, "sha256": _digest(BIG)}]


async def test_their_client_16_mib_refused_with_1009_by_default(
    peer: Peer, ws_url: str, seen: Seen
) -> None:
    report = await peer_client(peer, ws_url + "/echo", [["binary", BIG], ["recv"]], max_size=ROOM)
    assert [result.get("closed") for result in report["results"]] == [1009]
    await _bounded(seen.closed.wait())
    assert len(seen.closes) == 1


async def test_their_client_permessage_deflate(peer: Peer, ws_url: str, seen: Seen) -> None:
    text = "compress me " * 500
    report = await peer_client(
        peer,
        ws_url + "/deflate",
        [["text", text], ["recv"], ["binary", 100000], ["recv"], ["close", 1000, ""]],
        compression="deflate",
    )
    assert report["extensions"].startswith("permessage-deflate")
    assert report["results"] == [
        {"text_len": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()},
        {"binary_len": 100000, "sha256": _digest(100000)},
    ]


async def test_their_client_without_deflate_on_a_deflate_handler(peer: Peer, ws_url: str) -> None:
    report = await peer_client(peer, ws_url + "/deflate", [["text", "plain"], ["recv"]])
    assert report["extensions"] is None
    assert report["results"] == [{"text": "plain"}]


async def test_their_client_subprotocol(peer: Peer, ws_url: str) -> None:
    report = await peer_client(
        peer,
        ws_url + "/echo",
        [["text", "x"], ["recv"]],
        subprotocols=["other", "chat"],
    )
    assert report["subprotocol"] == "chat"


async def test_their_client_ping(peer: Peer, ws_url: str, seen: Seen) -> None:
    report = await peer_client(
        peer, ws_url + "/echo", [["ping", "are you there"], ["close", 1000, ""]]
    )
    assert report["results"] == [{"pong": True}]
    assert seen.events == [("ping", b"are you there")]


async def test_their_client_close_codes_both_ways(peer: Peer, ws_url: str, seen: Seen) -> None:
    theirs = await peer_client(peer, ws_url + "/echo", [["close", 4000, "client bye"]])
    assert theirs["close_code"] == 4000
    await _bounded(seen.closed.wait())
    assert seen.closes == [(4000, "client bye")]
    ours = await peer_client(peer, ws_url + "/echo", [["text", "close-me"], ["recv"]])
    assert ours["results"] == [{"closed": 4001, "reason": "server bye"}]
    assert (ours["close_code"], ours["close_reason"]) == (4001, "server bye")


async def test_their_client_over_tls(
    io_loop: IOLoop, peer: Peer, app: Application, seen: Seen, tls_certificate: TLSCertificate
) -> None:
    sock, port = bind_unused_port()
    server = HTTPServer(app, ssl_options=tls_certificate.server_context())
    server.add_sockets([sock])
    try:
        report = await peer_client(
            peer,
            f"wss://localhost:{port}/deflate",
            [["text", "over tls"], ["recv"], ["binary", 300000], ["recv"], ["close", 1000, ""]],
            compression="deflate",
            ca_file=str(tls_certificate.ca_file),
        )
    finally:
        server.stop()
        await server.close_all_connections()
    assert report["extensions"].startswith("permessage-deflate")
    assert report["results"] == [
        {"text": "over tls"},
        {"binary_len": 300000, "sha256": _digest(300000)},
    ]
    assert report["close_code"] == 1000


# -- our client against the websockets server -------------------------------------------


async def connect(url: str, **kwargs: Any) -> websocket.WebSocketClientConnection:
    connection: websocket.WebSocketClientConnection = await _bounded(
        websocket.websocket_connect(url, **kwargs)
    )
    return connection


def named(peer_url: str, path: str) -> tuple[str, str]:
    """A URL of the peer's naming the connection, and the name."""
    name = os.urandom(8).hex()
    return f"{peer_url}{path}?id={name}", name


async def peer_saw(peer_url: str, name: str) -> dict[str, Any]:
    """How the peer's connection ``name`` ended, as its server saw it."""
    connection = await connect(f"{peer_url}/closed?id={name}")
    try:
        message = await _bounded(connection.read_message())
    finally:
        connection.close()
    assert isinstance(message, str)
    result: dict[str, Any] = json.loads(message)
    return result


async def test_our_client_echo(io_loop: IOLoop, peer: Peer) -> None:
    url, name = named(peer.url, "/echo")
    connection = await connect(url)
    try:
        await connection.write_message("h\u00e9llo")
        assert await _bounded(connection.read_message()) == "h\u00e9llo"
        await connection.write_message(pattern(70000), binary=True)
        assert await _bounded(connection.read_message()) == pattern(70000)
    finally:
        connection.close(1000, "done")
    assert await _bounded(connection.read_message()) is None
    assert connection.close_code == 1000
    assert await peer_saw(peer.url, name) == {"code": 1000, "reason": "done"}


async def test_our_client_deflate(io_loop: IOLoop, peer: Peer) -> None:
    connection = await connect(peer.url + "/echo", compression_options={})
    text = "compress me " * 500
    try:
        assert connection.headers is not None
        extensions = connection.headers.get("Sec-WebSocket-Extensions", "")
        assert extensions.startswith("permessage-deflate"), extensions
        # websockets answers client_max_window_bits=12: the same 6,000
        # characters twice reach 6,000 bytes back into the last message's
        # context, past a 12-bit window, if our client compressed with more.
        assert "client_max_window_bits=12" in extensions, extensions
        random_text = os.urandom(3000).hex()
        for message in (text, text, random_text, random_text):
            await connection.write_message(message)
            assert await _bounded(connection.read_message()) == message
        await connection.write_message(pattern(100000), binary=True)
        assert await _bounded(connection.read_message()) == pattern(100000)
    finally:
        connection.close()


async def test_our_client_16_mib_with_room(io_loop: IOLoop, peer: Peer) -> None:
    connection = await connect(peer.url + "/echo", max_message_size=ROOM)
    try:
        await connection.write_message(pattern(BIG), binary=True)
        assert await _bounded(connection.read_message()) == pattern(BIG)
    finally:
        connection.close()


async def test_our_client_refuses_16_mib_by_default(io_loop: IOLoop, peer: Peer) -> None:
    url, name = named(peer.url, "/echo")
    connection = await connect(url)
    await connection.write_message(pattern(BIG), binary=True)
    assert await _bounded(connection.read_message()) is None
    assert (await peer_saw(peer.url, name))["code"] == 1009


async def test_our_client_sees_the_servers_close(io_loop: IOLoop, peer: Peer) -> None:
    connection = await connect(peer.url + "/close/4001")
    assert await _bounded(connection.read_message()) is None
    assert (connection.close_code, connection.close_reason) == (4001, "bye")


async def test_our_client_answers_the_servers_ping(io_loop: IOLoop, peer: Peer) -> None:
    connection = await connect(peer.url + "/ping")
    try:
        assert await _bounded(connection.read_message()) == "pong received"
    finally:
        connection.close()


async def test_our_client_over_tls(
    io_loop: IOLoop, peer: Peer, tls_certificate: TLSCertificate
) -> None:
    assert peer.tls_url is not None
    request = HTTPRequest(peer.tls_url + "/echo", ca_certs=str(tls_certificate.ca_file))
    connection = await connect(request, compression_options={})  # type: ignore[arg-type]
    try:
        for message in ("over tls", pattern(300000)):
            await connection.write_message(message, binary=isinstance(message, bytes))
            assert await _bounded(connection.read_message()) == message
    finally:
        connection.close()


async def test_our_client_async_for(io_loop: IOLoop, peer: Peer) -> None:
    connection = await connect(peer.url + "/echo")
    for word in ("one", "two", "three"):
        await connection.write_message(word)
    got = []
    async for message in connection:
        got.append(message)
        if len(got) == 3:
            connection.close()
    assert got == ["one", "two", "three"]
