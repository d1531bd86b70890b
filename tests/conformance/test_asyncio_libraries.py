"""Real asyncio libraries, unchanged, on every backend (issue 11).

Each test runs a library's own code as an asyncio task of the loop under test
(``run_coroutine``: on select, poll, epoll and kqueue the task belongs to the
native loop's :class:`~reactor.asyncio_view.NativeAsyncioLoop`, on asyncio
and uvloop to the real asyncio loop) and makes a real exchange over loopback:
aiohttp's server and client, with each other and with reactor's HTTP server
and client on the other end; ``httpx.AsyncClient`` against a reactor web
application; the ``websockets`` package's server and client, in this
process; ``aiosqlite`` on a file; anyio's asyncio backend (task groups, TCP
listeners and connections, worker threads); ``redis.asyncio`` against a real
``redis-server`` and ``asyncpg`` against a real PostgreSQL, each started once
for the session on a free port (tests/servers.py) and skipped, saying so,
only where the server's program is not installed.

Every test asserts literal expected values, the same on every backend: so
each one shows that the library gets the same results on reactor's loops as
on asyncio's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import anyio
import anyio.abc
import anyio.to_thread
import asyncpg
import httpx
import pytest
import redis.asyncio
import websockets.asyncio.client
import websockets.asyncio.server
from aiohttp import web

from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from reactor.web import Application, RequestHandler
from tests.conformance.test_asyncio_on_any_backend import run_coroutine
from tests.servers import RunningServer, ServerNotInstalled, postgres_server, redis_server

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup  # anyio's dependency on Python 3.10

pytestmark = pytest.mark.usefixtures("reactor_log")

BODY = bytes(range(256)) * 256
"""64 KiB for the uploads: more than one read and one write on every path."""
BODY_SHA = hashlib.sha256(BODY).hexdigest()


# -- the servers, one each for the session ---------------------------------------------


@pytest.fixture(scope="session")
def redis_address() -> Iterator[RunningServer]:
    try:
        with redis_server() as server:
            yield server
    except ServerNotInstalled as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def postgres_address() -> Iterator[RunningServer]:
    try:
        with postgres_server() as server:
            yield server
    except ServerNotInstalled as e:
        pytest.skip(str(e))


# -- HTTP applications on each side ------------------------------------------------------


def aiohttp_application() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.query.get('name', 'world')}")

    async def upload(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})

    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(5):
            await response.write(f"chunk {i};".encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.add_routes(
        [web.get("/hello", hello), web.post("/upload", upload), web.get("/chunks", chunks)]
    )
    return app


async def start_aiohttp(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


class HelloHandler(RequestHandler):
    def get(self) -> None:
        self.write(f"hello {self.get_argument('name', 'world')}")


class UploadHandler(RequestHandler):
    def post(self) -> None:
        body = self.request.body
        self.write({"length": len(body), "sha256": hashlib.sha256(body).hexdigest()})


class ChunksHandler(RequestHandler):
    async def get(self) -> None:
        for i in range(5):
            self.write(f"chunk {i};")
            await self.flush()


class ReactorApp:
    """A reactor web application on a free loopback port, started on the running loop."""

    def __init__(self) -> None:
        app = Application(
            [(r"/hello", HelloHandler), (r"/upload", UploadHandler), (r"/chunks", ChunksHandler)]
        )
        sock, self.port = bind_unused_port()
        self.server = HTTPServer(app)
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()


# -- aiohttp -------------------------------------------------------------------------------


def test_aiohttp_server_and_client(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        runner, port = await start_aiohttp(aiohttp_application())
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{url}/hello", params={"name": "reactor"}) as r:
                    hello = (r.status, await r.text())
                async with session.post(f"{url}/upload", data=BODY) as r:
                    upload = await r.json()
                async with session.get(f"{url}/chunks") as r:
                    chunks = await r.text()
                # Ten requests at once on the session's pool.
                texts = await asyncio.gather(
                    *(_aiohttp_text(session, f"{url}/hello?name={i}") for i in range(10))
                )
                async with session.get(f"{url}/missing") as r:
                    missing = r.status
        finally:
            await runner.cleanup()
        return [hello, upload, chunks, texts, missing]

    hello, upload, chunks, texts, missing = run_coroutine(io_loop, main)
    assert hello == (200, "hello reactor")
    assert upload == {"length": len(BODY), "sha256": BODY_SHA}
    assert chunks == "chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;"
    assert texts == [f"hello {i}" for i in range(10)]
    assert missing == 404


async def _aiohttp_text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as r:
        return await r.text()


def test_aiohttp_server_with_reactor_client(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        runner, port = await start_aiohttp(aiohttp_application())
        url = f"http://127.0.0.1:{port}"
        client = AsyncHTTPClient(force_instance=True)
        try:
            hello = await client.fetch(f"{url}/hello?name=reactor")
            upload = await client.fetch(f"{url}/upload", method="POST", body=BODY)
            chunks = await client.fetch(f"{url}/chunks")
            missing = await client.fetch(f"{url}/missing", raise_error=False)
        finally:
            client.close()
            await runner.cleanup()
        return [
            (hello.code, hello.body),
            json.loads(upload.body),
            (chunks.headers.get("Transfer-Encoding"), chunks.body),
            missing.code,
        ]

    hello, upload, chunks, missing = run_coroutine(io_loop, main)
    assert hello == (200, b"hello reactor")
    assert upload == {"length": len(BODY), "sha256": BODY_SHA}
    assert chunks == ("chunked", b"chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;")
    assert missing == 404


def test_aiohttp_client_against_reactor_server(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        app = ReactorApp()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{app.url}/hello", params={"name": "aiohttp"}) as r:
                    hello = (r.status, await r.text())
                async with session.post(f"{app.url}/upload", data=BODY) as r:
                    upload = await r.json()
                async with session.get(f"{app.url}/chunks") as r:
                    chunks = (r.headers.get("Transfer-Encoding"), await r.text())
                texts = await asyncio.gather(
                    *(_aiohttp_text(session, f"{app.url}/hello?name={i}") for i in range(10))
                )
                async with session.get(f"{app.url}/missing") as r:
                    missing = r.status
        finally:
            await app.close()
        return [hello, upload, chunks, texts, missing]

    hello, upload, chunks, texts, missing = run_coroutine(io_loop, main)
    assert hello == (200, "hello aiohttp")
    assert upload == {"length": len(BODY), "sha256": BODY_SHA}
    assert chunks == ("chunked", "chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;")
    assert texts == [f"hello {i}" for i in range(10)]
    assert missing == 404


def test_aiohttp_server_answers_a_lying_client_and_goes_on(io_loop: IOLoop) -> None:
    """Garbage, a request line with a bad Content-Length and a client that leaves
    mid-body, on raw connections (asyncio streams of the same loop): a 400 for
    the first two, nothing lost, and the next well-formed request is served."""

    async def exchange(port: int, data: bytes, *, half: bool = False) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            if half:
                writer.write_eof()
            return await asyncio.wait_for(reader.read(), 5.0)
        finally:
            writer.close()

    async def main() -> list[bytes]:
        runner, port = await start_aiohttp(aiohttp_application())
        try:
            garbage = await exchange(port, b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
            bad_length = await exchange(
                port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
            )
            gone = await exchange(
                port,
                b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nshort",
                half=True,
            )
            good = await exchange(
                port, b"GET /hello?name=after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
        finally:
            await runner.cleanup()
        return [garbage, bad_length, gone, good]

    garbage, bad_length, gone, good = run_coroutine(io_loop, main)
    assert re.match(rb"HTTP/1\.[01] 400 ", garbage), garbage[:100]
    assert re.match(rb"HTTP/1\.[01] 400 ", bad_length), bad_length[:100]
    assert not gone.startswith(b"HTTP/1.1 200"), gone[:100]  # no answer to half a body
    assert good.startswith(b"HTTP/1.1 200 ") and good.endswith(b"hello after"), good[-100:]


# -- httpx ---------------------------------------------------------------------------------


def test_httpx_async_client_against_reactor_app(io_loop: IOLoop) -> None:
    async def main() -> list[Any]:
        app = ReactorApp()
        try:
            async with httpx.AsyncClient(base_url=app.url, timeout=5.0) as client:
                hello = await client.get("/hello", params={"name": "httpx"})
                upload = await client.post("/upload", content=BODY)
                async with client.stream("GET", "/chunks") as streamed:
                    parts = [part async for part in streamed.aiter_bytes()]
                responses = await asyncio.gather(
                    *(client.get("/hello", params={"name": str(i)}) for i in range(10))
                )
                missing = await client.get("/missing")
        finally:
            await app.close()
        return [
            (hello.status_code, hello.text, hello.http_version),
            upload.json(),
            b"".join(parts),
            [r.text for r in responses],
            missing.status_code,
        ]

    hello, upload, chunks, texts, missing = run_coroutine(io_loop, main)
    assert hello == (200, "hello httpx", "HTTP/1.1")
    assert upload == {"length": len(BODY), "sha256": BODY_SHA}
    assert chunks == b"chunk 0;chunk 1;chunk 2;chunk 3;chunk 4;"
    assert texts == [f"hello {i}" for i in range(10)]
    assert missing == 404


# -- websockets ------------------------------------------------------------------------------


def test_websockets_server_and_client(io_loop: IOLoop) -> None:
    async def echo(ws: websockets.asyncio.server.ServerConnection) -> None:
        async for message in ws:
            if message == "bye":
                await ws.close(4000, "asked to")
                return
            await ws.send(message)

    async def main() -> list[Any]:
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.asyncio.client.connect(f"ws://127.0.0.1:{port}/") as ws:
                got: list[Any] = []
                for message in ["hello", "ünïcode", b"\x00\x01binary", BODY]:
                    await ws.send(message)
                    got.append(await ws.recv())
                # Many in flight at once: every echo comes back, in order.
                for i in range(100):
                    await ws.send(f"n{i}")
                in_order = [await ws.recv() for _ in range(100)]
                pong_latency = await (await ws.ping(b"ping!"))
                await ws.send("bye")
                await ws.wait_closed()
                closed = (ws.close_code, ws.close_reason)
        return [got, in_order, pong_latency >= 0, closed]

    got, in_order, ponged, closed = run_coroutine(io_loop, main)
    assert got == ["hello", "ünïcode", b"\x00\x01binary", BODY]
    assert in_order == [f"n{i}" for i in range(100)]
    assert ponged
    assert closed == (4000, "asked to")


def test_websockets_server_refuses_a_message_over_max_size(io_loop: IOLoop) -> None:
    """A client that sends more than the server's max_size: the server closes with
    1009 (message too big), the client sees it, and the server serves the next one."""

    async def echo(ws: websockets.asyncio.server.ServerConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass

    async def main() -> list[Any]:
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0, max_size=1024) as server:
            url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            async with websockets.asyncio.client.connect(url) as ws:
                await ws.send(b"x" * 4096)
                with pytest.raises(websockets.ConnectionClosedError):
                    await ws.recv()
                refused = (ws.close_code, ws.protocol.close_rcvd and ws.protocol.close_rcvd.code)
            async with websockets.asyncio.client.connect(url) as ws:
                await ws.send("still there?")
                after = await ws.recv()
        return [refused, after]

    refused, after = run_coroutine(io_loop, main)
    assert refused == (1009, 1009)
    assert after == "still there?"


# -- aiosqlite -------------------------------------------------------------------------------


def test_aiosqlite_on_a_file(io_loop: IOLoop, tmp_path: Path) -> None:
    path = tmp_path / "library.db"

    async def main() -> list[Any]:
        async with aiosqlite.connect(path) as db:
            await db.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, year INT)")
            await db.executemany(
                "INSERT INTO books (title, year) VALUES (?, ?)",
                [(f"book {i}", 1900 + i) for i in range(200)],
            )
            await db.commit()
            async with db.execute("SELECT count(*), min(year), max(year) FROM books") as cursor:
                summary = await cursor.fetchone()
            # A transaction rolled back leaves nothing behind.
            await db.execute("DELETE FROM books WHERE year < 2000")
            await db.rollback()
            async with db.execute("SELECT title FROM books WHERE id IN (1, 200) ORDER BY id") as c:
                titles = [row[0] async for row in c]
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                await db.execute("SELECT * FROM nowhere")
            count_after = (await db.execute_fetchall("SELECT count(*) FROM books"))[0][0]
        return [tuple(summary) if summary else None, titles, count_after]

    summary, titles, count_after = run_coroutine(io_loop, main)
    assert summary == (200, 1900, 2099)
    assert titles == ["book 0", "book 199"]
    assert count_after == 200
    # The file really holds it, read back without asyncio.
    with sqlite3.connect(path) as plain:
        assert plain.execute("SELECT count(*) FROM books").fetchone() == (200,)
    plain.close()


# -- anyio (its asyncio backend) ---------------------------------------------------------------


def test_anyio_task_group_tcp_and_threads(io_loop: IOLoop) -> None:
    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            data = b""
            while not data.endswith(b"\n"):
                data += await client.receive()
            await client.send(data.upper())

    async def one_client(port: int, i: int, results: dict[int, bytes]) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(f"client {i}\n".encode())
            received = b""
            while not received.endswith(b"\n"):
                received += await stream.receive()
            results[i] = received

    async def main() -> list[Any]:
        results: dict[int, bytes] = {}
        threads: list[str] = []

        def in_a_thread(x: int) -> int:
            threads.append(threading.current_thread().name)
            return x * x

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        async with listener, anyio.create_task_group() as outer:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            outer.start_soon(listener.serve, handle)
            async with anyio.create_task_group() as clients:
                for i in range(20):
                    clients.start_soon(one_client, port, i, results)
            squares = [await anyio.to_thread.run_sync(in_a_thread, x) for x in range(3)]
            with anyio.move_on_after(0.01) as scope:
                await anyio.sleep(10)
            outer.cancel_scope.cancel()
        return [
            results,
            squares,
            scope.cancelled_caught,
            threading.current_thread().name not in threads,
        ]

    results, squares, timed_out, other_thread = run_coroutine(io_loop, main)
    assert results == {i: f"CLIENT {i}\n".encode() for i in range(20)}
    assert squares == [0, 1, 4]
    assert timed_out
    assert other_thread


def test_anyio_task_group_propagates_an_error(io_loop: IOLoop) -> None:
    async def main() -> list[str]:
        cancelled: list[str] = []

        async def sleeper() -> None:
            try:
                await anyio.sleep(10)
            except anyio.get_cancelled_exc_class():
                cancelled.append("sleeper cancelled")
                raise

        async def failer() -> None:
            await anyio.sleep(0.001)
            raise ValueError("boom")

        with pytest.raises(ExceptionGroup) as caught:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                tg.start_soon(failer)
        return [*cancelled, *(repr(e) for e in caught.value.exceptions)]

    assert run_coroutine(io_loop, main) == ["sleeper cancelled", "ValueError('boom')"]


# -- redis.asyncio against redis-server ------------------------------------------------------


def test_redis_set_get_pipeline_and_pubsub(io_loop: IOLoop, redis_address: RunningServer) -> None:
    key = f"reactor-test:{io_loop.backend_name}"

    async def main() -> list[Any]:
        client = redis.asyncio.Redis(host=redis_address.host, port=redis_address.port)
        try:
            await client.delete(key, f"{key}:n", f"{key}:list")
            set_ok = await client.set(key, BODY)
            value = await client.get(key)
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(f"{key}:n").incrby(f"{key}:n", 41).rpush(f"{key}:list", "a", "b", "c")
                pipe.lrange(f"{key}:list", 0, -1)
                piped = await pipe.execute()
            missing = await client.get(f"{key}:absent")

            pubsub = client.pubsub()
            await pubsub.subscribe(f"{key}:channel")
            subscribed = await pubsub.get_message(timeout=5.0)
            receivers = await client.publish(f"{key}:channel", "first")
            await client.publish(f"{key}:channel", "second")
            messages = [await _next_message(pubsub), await _next_message(pubsub)]
            await pubsub.unsubscribe()
            await pubsub.aclose()
            await client.delete(key, f"{key}:n", f"{key}:list")
        finally:
            await client.aclose()
        return [
            set_ok,
            value == BODY,
            piped,
            missing,
            subscribed and subscribed["type"],
            receivers,
            messages,
        ]

    assert run_coroutine(io_loop, main) == [
        True,
        True,
        [1, 42, 3, [b"a", b"b", b"c"]],
        None,
        "subscribe",
        1,
        [b"first", b"second"],
    ]


async def _next_message(pubsub: Any) -> Any:
    """The data of the next published message (not a subscribe notice), within 5 s."""

    async def wait() -> Any:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            if message is not None:
                return message["data"]

    return await asyncio.wait_for(wait(), 5.0)


# -- asyncpg against PostgreSQL --------------------------------------------------------------


def test_asyncpg_queries_transaction_and_notify(
    io_loop: IOLoop, postgres_address: RunningServer
) -> None:
    channel = f"reactor_{io_loop.backend_name}"

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            host=postgres_address.host,
            port=postgres_address.port,
            user="postgres",
            database="postgres",
            timeout=5.0,
        )

    async def main() -> list[Any]:
        conn = await connect()
        other = await connect()
        try:
            await conn.execute("CREATE TEMP TABLE items (id serial PRIMARY KEY, name text, n int)")
            await conn.executemany(
                "INSERT INTO items (name, n) VALUES ($1, $2)",
                [(f"item {i}", i) for i in range(500)],
            )
            rows = await conn.fetch("SELECT name, n FROM items WHERE n % 100 = 0 ORDER BY n")
            total = await conn.fetchval("SELECT sum(n) FROM items")

            async with conn.transaction():
                await conn.execute("UPDATE items SET n = -n WHERE n < 10")
            with pytest.raises(ZeroDivisionError):
                async with conn.transaction():
                    await conn.execute("DELETE FROM items")
                    raise ZeroDivisionError  # rolls the delete back
            negatives = await conn.fetchval("SELECT count(*) FROM items WHERE n < 0")
            count = await conn.fetchval("SELECT count(*) FROM items")
            with pytest.raises(asyncpg.UndefinedTableError):
                await conn.fetch("SELECT * FROM nowhere")
            big = await conn.fetchval("SELECT $1::bytea", BODY)

            notified: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

            def listener(_conn: Any, _pid: int, channel: str, payload: str) -> None:
                notified.put_nowait((channel, payload))

            await conn.add_listener(channel, listener)
            await other.execute("SELECT pg_notify($1, 'first'), pg_notify($1, 'second')", channel)
            notes = [await asyncio.wait_for(notified.get(), 5.0) for _ in range(2)]
            await conn.remove_listener(channel, listener)
        finally:
            await other.close()
            await conn.close()
        return [
            [tuple(r) for r in rows],
            total,
            negatives,
            count,
            big == BODY,
            notes,
        ]

    rows, total, negatives, count, big_ok, notes = run_coroutine(io_loop, main)
    assert rows == [
        ("item 0", 0),
        ("item 100", 100),
        ("item 200", 200),
        ("item 300", 300),
        ("item 400", 400),
    ]
    assert total == sum(range(500))
    assert negatives == 9  # 1..9 negated; 0 stays 0
    assert count == 500
    assert big_ok
    assert notes == [(channel, "first"), (channel, "second")]


def test_asyncpg_connection_killed_by_the_server(
    io_loop: IOLoop, postgres_address: RunningServer
) -> None:
    """The server ends a connection mid-session (pg_terminate_backend): the query on
    it fails with asyncpg's error, the connection knows it is closed, and the other
    connections and new ones go on."""

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            host=postgres_address.host,
            port=postgres_address.port,
            user="postgres",
            database="postgres",
            timeout=5.0,
        )

    async def main() -> list[Any]:
        victim, killer = await connect(), await connect()
        try:
            lost = asyncio.get_running_loop().create_future()
            victim.add_termination_listener(lambda conn: lost.done() or lost.set_result(None))
            pid = victim.get_server_pid()
            terminated = await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
            await asyncio.wait_for(lost, 5.0)  # asyncpg saw its connection end
            victim_closed = victim.is_closed()
            with pytest.raises(asyncpg.InterfaceError, match="closed"):
                await victim.fetchval("SELECT 1")
            survivor = await killer.fetchval("SELECT 2")
            fresh = await connect()
            again = await fresh.fetchval("SELECT 3")
            await fresh.close()
        finally:
            victim.terminate()
            await killer.close()
        return [terminated, victim_closed, survivor, again]

    assert run_coroutine(io_loop, main) == [True, True, 2, 3]
