"""The demo chat's brokers (:mod:`reactor.demo.broker`), on every backend.

Against a real ``redis-server`` started by the tests on a free loopback port
(tests/servers.py; skipped, saying so, where it is not installed):

- in this process, brokers standing for processes: the same ids in the same
  order everywhere for a concurrent burst, a late subscriber catching up, a
  Redis that lost its data (``FLUSHALL``, as a restart without persistence)
  numbering on from where it was, what is not an event dropped, an
  unreachable Redis refusing posts instead of claiming them, and closing
  leaving no subscription behind;
- two real ``python -m reactor demo --broker redis://...`` processes: a
  message posted over HTTP (with its XSRF token) to one reaches a WebSocket
  client and a long poll of the other, a burst keeps its order in both, and
  when Redis is killed and started again both keep serving, refuse posts
  meanwhile (saying so), log it once, and recover on their own;
- the in-process broker, the default, with no Redis at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from reactor import gen
from reactor.demo import app as demo
from reactor.demo.broker import (
    BrokerUnavailable,
    InProcessBroker,
    RedisBroker,
    from_url,
)
from reactor.httpclient import AsyncHTTPClient, HTTPRequest
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from reactor.websocket import WebSocketClientConnection, websocket_connect
from tests import test_demo
from tests.conformance import conftest as conformance
from tests.conformance.test_port_tornado_app import Session
from tests.servers import RunningServer, ServerNotInstalled, free_port, redis_server
from tests.util import LogRecords

reactor_log = conformance.reactor_log  # the fixture, here too: no ERROR may be logged
pytestmark = pytest.mark.usefixtures("reactor_log")

ROOT = Path(__file__).resolve().parent.parent
SECRET = "broker-test-secret"
"""The cookie secret both demo processes share (REACTOR_DEMO_SECRET)."""
WAIT = 20.0
"""The longest any one step waits (a hang fails the test, never CI)."""

Event = dict[str, Any]


@pytest.fixture(scope="session")
def redis_address() -> Iterator[RunningServer]:
    try:
        with redis_server() as server:
            yield server
    except ServerNotInstalled as e:
        pytest.skip(str(e))


@pytest.fixture
def redis_url(redis_address: RunningServer) -> str:
    """This session's Redis, emptied for the test (it is ours alone)."""
    import redis as sync_redis

    with sync_redis.Redis(host=redis_address.host, port=redis_address.port) as r:
        r.flushall()
    return f"redis://{redis_address.host}:{redis_address.port}/0"


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``condition`` (every 10 ms) until it holds; fail after ``timeout`` s."""
    deadline = IOLoop.current().time() + timeout
    while not condition():
        if IOLoop.current().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await gen.sleep(0.01)


def messages(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] == "message"]


# -- the brokers in this process ------------------------------------------------------------


async def test_in_process_broker(io_loop: IOLoop, reactor_log: LogRecords) -> None:
    broker = InProcessBroker()
    first: list[Event] = []
    broker.subscribe("main", first.append)
    await broker.start()
    (sync,) = first
    assert sync == {"type": "sync", "epoch": sync["epoch"], "last_id": 0, "messages": []}
    one = await broker.publish("main", {"type": "message", "author": "a", "text": "1"})
    assert one == {"type": "message", "author": "a", "text": "1", "id": 1}
    assert first[-1] == one  # delivered before publish returned
    assert await broker.publish("main", {"type": "join", "name": "b"}) == {
        "type": "join",
        "name": "b",
    }
    two = await broker.publish("main", {"type": "message", "author": "a", "text": "2"})
    assert two["id"] == 2
    late: list[Event] = []
    broker.subscribe("main", late.append)  # catches up with the kept messages
    assert late == [{"type": "sync", "epoch": sync["epoch"], "last_id": 2, "messages": [one, two]}]
    other: list[Event] = []
    broker.subscribe("other", other.append)  # rooms are apart; each numbers its own
    assert (await broker.publish("other", {"type": "message", "text": "x"}))["id"] == 1
    assert other[-1]["id"] == 1 and first[-1] == two

    def broken(event: Event) -> None:
        raise RuntimeError("a broken subscriber")

    broker.subscribe("main", broken)
    broken_sync_error = [r for r in reactor_log.records if "subscriber" in r.getMessage()]
    assert len(broken_sync_error) == 1  # its sync raised already: logged
    three = await broker.publish("main", {"type": "message", "text": "3"})
    assert first[-1] == three and late[-1] == three  # the others still got it
    reactor_log.records.clear()  # the errors were expected
    broker.unsubscribe("main", broken)
    broker.unsubscribe("main", broken)  # not subscribed any more: nothing happens
    for bad in ("", "x" * 65, "a\nb"):
        with pytest.raises(ValueError, match="room's name"):
            broker.subscribe(bad, first.append)
    await broker.close()


def test_make_app_chooses_the_broker(
    io_loop: IOLoop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(demo.BROKER_ENV, raising=False)
    assert type(demo.make_app(str(tmp_path)).room.broker) is InProcessBroker
    monkeypatch.setenv(demo.BROKER_ENV, "redis://127.0.0.1:1/3")
    chosen = demo.make_app(str(tmp_path)).room.broker
    assert isinstance(chosen, RedisBroker) and chosen.address == "127.0.0.1:1/3"
    given = InProcessBroker()
    assert demo.make_app(str(tmp_path), broker=given).room.broker is given
    assert isinstance(
        demo.make_app(str(tmp_path), broker="redis://:pw@h:7/0").room.broker, RedisBroker
    )
    assert "pw" not in RedisBroker("redis://:pw@h:7/0").address  # logged: no password
    monkeypatch.setenv(demo.BROKER_ENV, "")
    assert type(demo.make_app(str(tmp_path)).room.broker) is InProcessBroker
    for bad in ("amqp://x", "localhost:6379"):
        with pytest.raises(ValueError, match="redis://HOST:PORT/DB"):
            from_url(bad)
    monkeypatch.setenv(demo.SECRET_ENV, "shared")
    assert demo.make_app(str(tmp_path)).settings["cookie_secret"] == "shared"


class Recorder:
    """A subscriber that keeps what it gets, and wakes the test that waits for it."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    async def count(self, kind: str, n: int) -> list[Event]:
        """The first ``n`` events of ``kind``, once there are so many."""
        await until(
            lambda: len([e for e in self.events if e["type"] == kind]) >= n, f"{n} {kind} events"
        )
        return [e for e in self.events if e["type"] == kind][:n]


async def numsub(url: str, channel: str) -> int:
    client = redis.asyncio.Redis.from_url(url)
    try:
        ((_, count),) = await client.pubsub_numsub(channel)
        return int(count)
    finally:
        await client.aclose()


async def test_redis_brokers_number_alike_and_catch_up(io_loop: IOLoop, redis_url: str) -> None:
    """Two brokers (two processes, as far as Redis can tell) publishing a burst
    at once: both deliver the same ids, 1 to 100, in increasing order; one that
    comes later catches up; a Redis that lost everything numbers on."""
    channel = "reactor-demo:room:main"
    one, two = RedisBroker(redis_url), RedisBroker(redis_url)
    seen_one, seen_two = Recorder(), Recorder()
    one.subscribe("main", seen_one)
    two.subscribe("main", seen_two)
    try:
        await one.start()
        await two.start()
        assert one.connected and two.connected
        (sync_one,) = seen_one.events
        (sync_two,) = seen_two.events
        assert sync_one["epoch"] == sync_two["epoch"]  # the first one's, kept in Redis
        assert await numsub(redis_url, channel) == 2

        published = await asyncio.gather(
            *(
                broker.publish("main", {"type": "message", "author": name, "text": f"{name}{i}"})
                for i in range(50)
                for broker, name in ((one, "one"), (two, "two"))
            )
        )
        assert sorted(e["id"] for e in published) == list(range(1, 101))
        got_one = await seen_one.count("message", 100)
        got_two = await seen_two.count("message", 100)
        assert [e["id"] for e in got_one] == list(range(1, 101))
        assert got_one == got_two  # the same events, in the same order
        assert {e["text"] for e in got_one} == {e["text"] for e in published}

        # a process that starts later: the kept messages come in its sync
        three, seen_three = RedisBroker(redis_url, history=30), Recorder()
        three.subscribe("main", seen_three)
        await three.start()
        (sync_three,) = seen_three.events
        assert sync_three["epoch"] == sync_one["epoch"]
        assert sync_three["last_id"] == 100
        assert sync_three["messages"] == got_one[-100:]  # the first ones kept 100
        joined = await three.publish("main", {"type": "join", "name": "c"})
        assert "id" not in joined
        assert (await seen_one.count("join", 1)) == [{"type": "join", "name": "c"}]
        await three.close()
        assert await numsub(redis_url, channel) == 2

        # Redis loses everything (a restart with no persistence): the next id
        # is 101, not 1, and the epoch stays (cursors keep their meaning).
        flusher = redis.asyncio.Redis.from_url(redis_url)
        await flusher.flushall()
        await flusher.aclose()
        after = await two.publish("main", {"type": "message", "author": "two", "text": "on"})
        assert after["id"] == 101
        assert (await seen_one.count("message", 101))[-1] == after
        assert (await seen_two.count("message", 101))[-1] == after
    finally:
        await one.close()
        await two.close()
    assert await numsub(redis_url, channel) == 0  # unsubscribed, not just dropped
    await one.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await one.start()


async def test_a_room_subscribed_while_connected(io_loop: IOLoop, redis_url: str) -> None:
    """A room subscribed after the broker connected is subscribed on the live
    connection and synced when Redis confirms it; a second subscriber of a
    room catches up from what the broker has."""
    broker, poster = RedisBroker(redis_url), RedisBroker(redis_url)
    try:
        await broker.start()
        await poster.start()
        early = await poster.publish("lobby", {"type": "message", "author": "p", "text": "early"})
        lobby = Recorder()
        broker.subscribe("lobby", lobby)
        (sync,) = await lobby.count("sync", 1)
        assert sync["messages"] == [early] and sync["last_id"] == 1
        later = await poster.publish("lobby", {"type": "message", "author": "p", "text": "later"})
        assert await lobby.count("message", 1) == [later]
        second = Recorder()
        broker.subscribe("lobby", second)
        assert second.events == [
            {"type": "sync", "epoch": sync["epoch"], "last_id": 2, "messages": [early, later]}
        ]
    finally:
        await broker.close()
        await poster.close()


async def test_a_room_misses_nothing_across_a_reconnection(
    io_loop: IOLoop, redis_url: str, reactor_log: LogRecords
) -> None:
    """Redis cuts the subscribed connections (``CLIENT KILL TYPE pubsub``)
    while another process goes on posting: each room reconnects, catches up
    from the kept messages, and its listener gets every message once, in
    order, with no gap, as a room that never lost its connection does."""
    rooms = [demo.ChatRoom(200, RedisBroker(redis_url)) for _ in range(2)]
    heard: list[list[Event]] = [[], []]
    for room, got in zip(rooms, heard, strict=True):
        room.subscribe(got.append)
    killer = redis.asyncio.Redis.from_url(redis_url)
    try:
        for room in rooms:
            await room.start()
        posted = [await rooms[1].add("two", "first")]
        killed = await killer.client_kill_filter(_type="pubsub", skipme=True)
        assert killed == 2
        # Redis closed both subscriptions before it answered the kill: the
        # next post reaches neither room on a channel, only in a sync. Post
        # on until both brokers have logged that Redis is back.
        while len([r for r in reactor_log.records if "is back" in r.getMessage()]) < 2:
            try:
                posted.append(await rooms[1].add("two", f"m{len(posted)}"))
            except BrokerUnavailable:
                await gen.sleep(0.01)
            assert len(posted) < 2000
        posted.append(await rooms[1].add("two", "last"))
        for room, got in zip(rooms, heard, strict=True):
            await until(lambda room=room: room.last_id == posted[-1]["id"], "the last message")
            ids = [e["id"] for e in got if e["type"] == "message"]
            assert ids == [m["id"] for m in posted] == list(range(1, len(posted) + 1))
            assert [m["id"] for m in room.messages] == ids[-200:]
    finally:
        await killer.aclose()
        for room in rooms:
            await room.broker.close()


async def test_redis_broker_drops_what_is_not_an_event(
    io_loop: IOLoop, redis_url: str, reactor_log: LogRecords
) -> None:
    """Whoever can write to Redis can publish on the room's channel: junk is
    dropped (counted, one warning), and the room goes on."""
    broker, seen = RedisBroker(redis_url), Recorder()
    broker.subscribe("main", seen)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await broker.start()
        junk = [
            b"not json",
            b"[1, 2]",
            b'{"no": "type"}',
            b'{"type": "message", "text": "no id"}',
            b'{"type": "message", "id": true}',
            b'{"type": "message", "id": -3}',
            b'{"type": "join", "name": "' + b"x" * 70_000 + b'"}',
        ]
        for data in junk:
            await raw.publish("reactor-demo:room:main", data)
        await raw.publish("reactor-demo:room:main", b'{"type": "join", "name": "ok"}')
        assert await seen.count("join", 1) == [{"type": "join", "name": "ok"}]
        assert [e["type"] for e in seen.events] == ["sync", "join"]
        assert broker.dropped == len(junk)
        warned = [w for w in reactor_log.warnings() if "not events" in w]
        assert len(warned) == 1, warned
    finally:
        await raw.aclose()
        await broker.close()


async def test_a_room_takes_from_redis_only_what_it_would_post(
    io_loop: IOLoop, redis_url: str, reactor_log: LogRecords
) -> None:
    """Events that are well-formed but not the demo's (too long, a name that
    is not printable, fields of their own) are dropped or cut to their known
    fields before a client sees them."""
    room, heard = demo.ChatRoom(broker=RedisBroker(redis_url)), Recorder()
    room.subscribe(heard)
    raw = redis.asyncio.Redis.from_url(redis_url)
    channel = "reactor-demo:room:main"
    try:
        await room.start()
        for event in [
            {"type": "message", "id": 1, "author": "m", "text": "x" * (demo.MAX_TEXT + 1)},
            {"type": "message", "id": 2, "author": "m\x1b[2J", "text": "hi"},
            {"type": "message", "id": 3, "author": "m", "text": ["not", "text"]},
            {"type": "join", "name": "n" * (demo.MAX_NAME + 1)},
            {"type": "history", "room": "x", "messages": []},  # not for clients from Redis
            {"type": "join", "name": "eve", "script": "<script>", "ref": "guess"},
            {"type": "message", "id": 4, "author": "eve", "text": "two\nlines", "extra": 1},
        ]:
            await raw.publish(channel, json.dumps(event))
        await heard.count("message", 1)
        assert heard.events == [
            {"type": "join", "name": "eve"},
            {"type": "message", "id": 4, "author": "eve", "text": "two\nlines"},
        ]
        assert room.messages == [{"id": 4, "author": "eve", "text": "two\nlines"}]
        assert len([w for w in reactor_log.warnings() if "not one of ours" in w]) == 3
    finally:
        await raw.aclose()
        await room.broker.close()


async def test_redis_broker_unreachable(io_loop: IOLoop, reactor_log: LogRecords) -> None:
    """Nothing listens where the URL points: start() returns after the first
    attempt (the broker keeps trying), a publish is refused, not claimed."""
    broker, seen = RedisBroker(f"redis://127.0.0.1:{free_port()}/0"), Recorder()
    broker.subscribe("main", seen)
    await broker.start()
    assert not broker.connected
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        await broker.publish("main", {"type": "message", "author": "a", "text": "lost"})
    assert seen.events == []
    warned = [w for w in reactor_log.warnings() if "unreachable" in w]
    assert len(warned) == 1 and "reconnecting" in warned[0], warned
    await broker.close()


# -- demo processes --------------------------------------------------------------------------


@dataclass
class DemoProcess:
    """``python -m reactor demo`` in a process of its own; its log in a file."""

    process: subprocess.Popen[str]
    log: Path
    port: int = 0
    stopped: bool = field(default=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM; it must stop cleanly (exit 0, no traceback, no error logged)."""
        if self.stopped:
            return
        self.stopped = True
        self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"the demo did not stop on SIGTERM:\n{self.log_text()}") from None
        log = self.log_text()
        assert self.process.returncode == 0, log
        assert "reactor demo: stopped" in out
        assert "Traceback" not in log, log
        # errors: only the access log's lines for the posts refused while
        # Redis was away (a 5xx is logged as an error)
        errors = [line for line in log.splitlines() if line.startswith("[E ")]
        assert all("503 POST /chat/new" in line for line in errors), log


def backend_spec(reactor_backend: Any) -> str:
    if isinstance(reactor_backend, str):
        return reactor_backend
    return f"{reactor_backend.__module__}:{reactor_backend.__qualname__}"


@contextmanager
def demo_processes(
    count: int,
    reactor_backend: Any,
    broker: str | None,
    tmp_path: Path,
    by_env: tuple[int, ...] = (),
) -> Iterator[list[DemoProcess]]:
    """``count`` demo processes on the backend, with ``--broker`` (those whose
    index is in ``by_env``: with ``REACTOR_DEMO_BROKER`` instead)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        REACTOR_BACKEND=backend_spec(reactor_backend),
        REACTOR_DEMO_SECRET=SECRET,
    )
    env.pop(demo.BROKER_ENV, None)
    started: list[DemoProcess] = []
    try:
        for i in range(count):
            command = [sys.executable, "-m", "reactor", "demo", "--port", "0"]
            own_env = dict(env)
            if broker is not None and i in by_env:
                own_env[demo.BROKER_ENV] = broker
            elif broker is not None:
                command += ["--broker", broker]
            log = tmp_path / f"demo-{i}.log"
            with log.open("w") as stderr:
                process = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    env=own_env,
                    cwd=ROOT,
                )
            started.append(DemoProcess(process, log))
        for server in started:
            assert server.process.stdout is not None
            line = server.process.stdout.readline()  # the test's timeout bounds it
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            assert match, f"{line!r}\n{server.log_text()}"
            server.port = int(match.group(1))
        yield started
        for server in started:
            server.stop()
    finally:
        for server in started:
            if server.process.poll() is None:
                server.process.kill()
                server.process.communicate()


class Live:
    """A client of ``/chat/socket``: reactor's WebSocket client, JSON events."""

    def __init__(self, connection: WebSocketClientConnection) -> None:
        self.connection = connection

    async def say(self, text: str) -> None:
        await self.connection.write_message(json.dumps({"text": text}))

    async def next(self) -> Event:
        message = await gen.with_timeout(timedelta(seconds=WAIT), self.connection.read_message())
        assert isinstance(message, str), message
        return json.loads(message)  # type: ignore[no-any-return]

    async def messages(self, n: int) -> list[Event]:
        """The next ``n`` events, which must all be messages."""
        got = [await self.next() for _ in range(n)]
        assert [e["type"] for e in got] == ["message"] * n, got
        return got


async def live(session: Session, query: str = "") -> tuple[Live, Event]:
    """A WebSocket client of ``session``'s user and server, and its history."""
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    url = session.base_url.replace("http://", "ws://") + "/chat/socket" + query
    request = HTTPRequest(url, headers={"Cookie": cookie}, connect_timeout=WAIT)
    client = Live(await websocket_connect(request))
    history = await client.next()
    assert history["type"] == "history", history
    return client, history


async def signed_in(client: AsyncHTTPClient, server: DemoProcess, name: str) -> Session:
    session = Session(client, server.base_url)
    assert (await session.login(name)).code == 302
    return session


def elsewhere(session: Session, server: DemoProcess) -> Session:
    """The same user agent (its cookies) talking to another server: the
    processes share their cookie secret, as behind one address they must."""
    other = Session(session.client, server.base_url)
    other.cookies = dict(session.cookies)
    return other


async def post(session: Session, text: str) -> Any:
    return await session.fetch("/chat/new", "POST", {"text": text, "_xsrf": session.xsrf})


async def info(server: DemoProcess, client: AsyncHTTPClient) -> Event:
    response = await client.fetch(server.base_url + "/api/info", request_timeout=WAIT)
    return json.loads(response.body)  # type: ignore[no-any-return]


async def poll_parked(server: DemoProcess, client: AsyncHTTPClient, polls: int) -> None:
    """Wait until ``polls`` long polls wait on ``server`` (as it reports)."""
    for _ in range(500):
        if (await info(server, client))["waiting_polls"] >= polls:
            return
        await gen.sleep(0.01)
    raise AssertionError("the long poll did not start waiting")


def run(io_loop: IOLoop, main: Callable[[], Awaitable[None]]) -> None:
    """Run the test's client side on its loop, bounded (these tests start processes)."""
    io_loop.run_sync(main, timeout=50)


def test_a_message_posted_to_one_process_reaches_the_other(
    io_loop: IOLoop, reactor_backend: Any, redis_url: str, tmp_path: Path
) -> None:
    """MUST-SHOW: two demo processes on one Redis (A told by ``--broker``, B by
    ``REACTOR_DEMO_BROKER``). A message posted to A over HTTP, with its XSRF
    token as the page sends it, reaches a WebSocket client and a long poll of
    B; a burst from both keeps one order in both."""
    with demo_processes(2, reactor_backend, redis_url, tmp_path, by_env=(1,)) as (a, b):

        async def main() -> None:
            client = AsyncHTTPClient(force_instance=True)
            try:
                carol_a = await signed_in(client, a, "carol")
                alice_b = await signed_in(client, b, "alice")
                bob_b = await signed_in(client, b, "bob")
                watcher, history = await live(alice_b)
                assert history["messages"] == []
                waiting = gen.convert_yielded(bob_b.fetch("/chat/updates?cursor=0"))
                await poll_parked(b, client, 1)

                sent = await post(carol_a, "<b>hello</b> from A")
                assert sent.code == 200, sent.body
                first = {"id": 1, "author": "carol", "text": "<b>hello</b> from A"}
                assert json.loads(sent.body) == first
                assert await watcher.next() == {"type": "message", **first}
                polled = await waiting
                assert json.loads(polled.body) == {"messages": [first]}

                # A client of A: the same room (the epoch is shared), the same history;
                # B's client hears it join.
                dave, dave_history = await live(carol_a)
                assert dave_history == {
                    "type": "history",
                    "room": history["room"],
                    "messages": [first],
                }
                assert await watcher.next() == {"type": "join", "name": "carol"}

                # A burst: 10 over A's WebSocket and 10 posted to B at once.
                async def by_socket() -> None:
                    for i in range(demo.BURST):
                        await dave.say(f"socket {i}")

                async def by_post() -> None:
                    for i in range(10):
                        assert (await post(bob_b, f"post {i}")).code == 200

                await gen.multi([by_socket(), by_post()])
                on_b = await watcher.messages(20)
                on_a = await dave.messages(20)
                assert on_a == on_b  # one order, in both processes
                assert [e["id"] for e in on_b] == list(range(2, 22))
                texts = [e["text"] for e in on_b]
                assert [t for t in texts if t.startswith("socket")] == [
                    f"socket {i}" for i in range(demo.BURST)
                ]
                assert [t for t in texts if t.startswith("post")] == [
                    f"post {i}" for i in range(10)
                ]
                # and the long polls of both have them, in that order, from cursor 1
                for session in (bob_b, elsewhere(bob_b, a)):
                    caught = await session.fetch("/chat/updates?cursor=1")
                    assert [m["id"] for m in json.loads(caught.body)["messages"]] == [
                        e["id"] for e in on_b
                    ]
                dave.connection.close()
                assert await watcher.next() == {"type": "leave", "name": "carol"}
                watcher.connection.close()
            finally:
                client.close()

        run(io_loop, main)
        for server in (a, b):
            assert "unreachable" not in server.log_text()


def test_redis_goes_away_and_comes_back(
    io_loop: IOLoop, reactor_backend: Any, tmp_path: Path
) -> None:
    """Redis is killed under two demo processes and started again on its port:
    both keep serving their pages, long polls and sockets; posts are refused
    with a 503 (an error event over a socket), not claimed delivered; each
    logs it once and recovers alone; ids go on from where they were."""
    try:
        redis_first = redis_server()
        first = redis_first.__enter__()
    except ServerNotInstalled as e:
        pytest.skip(str(e))
    port = first.port
    url = f"redis://127.0.0.1:{port}/0"
    again: Any = None
    try:
        with demo_processes(2, reactor_backend, url, tmp_path) as (a, b):

            async def main() -> None:
                nonlocal again
                client = AsyncHTTPClient(force_instance=True)
                try:
                    carol_a = await signed_in(client, a, "carol")
                    watcher, _ = await live(await signed_in(client, b, "alice"))
                    sender, _ = await live(carol_a)
                    assert await watcher.next() == {"type": "join", "name": "carol"}
                    assert (await post(carol_a, "before")).code == 200
                    before = {"type": "message", "id": 1, "author": "carol", "text": "before"}
                    assert await watcher.next() == before
                    assert await sender.next() == before

                    first.stop(signal.SIGKILL)
                    refused = await post(carol_a, "while away")
                    assert refused.code == 503, refused.body
                    assert refused.headers["Retry-After"] == "5"
                    await sender.say("while away, by socket")
                    assert (await sender.next())["type"] == "error"
                    # a client that comes meanwhile gets in, with the history (no one
                    # else is told: a join would have to go through Redis)
                    late, late_history = await live(elsewhere(carol_a, b))
                    assert [m["text"] for m in late_history["messages"]] == ["before"]
                    for server in (a, b):
                        here = elsewhere(carol_a, server)
                        assert "<span>before</span>" in (await here.fetch("/")).body.decode()
                        kept = await here.fetch("/chat/updates?cursor=0")
                        assert [m["text"] for m in json.loads(kept.body)["messages"]] == ["before"]

                    again = redis_server(port)
                    again.__enter__()
                    deadline = io_loop.time() + WAIT
                    for session in (carol_a, elsewhere(carol_a, b)):
                        while (answer := await post(session, "after")).code == 503:
                            assert io_loop.time() < deadline, "no recovery"
                            await gen.sleep(0.05)
                        assert answer.code == 200, answer.body
                    # Ids go on after the restart (Redis kept nothing): 2 and 3,
                    # never a second 1. Nothing refused came through.
                    for client_ in (watcher, sender, late):
                        got = await client_.messages(2)
                        assert [(e["id"], e["text"]) for e in got] == [(2, "after"), (3, "after")]
                    for client_ in (sender, watcher, late):
                        client_.connection.close()
                finally:
                    client.close()

            run(io_loop, main)
            for server in (a, b):
                log = server.log_text()
                assert log.count("is unreachable") == 1, log  # once, however many retries
                assert log.count("is back") == 1, log
    finally:
        if again is not None:
            again.__exit__(None, None, None)
        redis_first.__exit__(None, None, None)


def test_the_in_process_broker_needs_no_redis(
    io_loop: IOLoop, reactor_backend: Any, tmp_path: Path
) -> None:
    """The default: no Redis anywhere. A process's chat works within it (a post
    reaches its WebSocket client); another process's is its own (ids from 1)."""
    with demo_processes(2, reactor_backend, None, tmp_path) as (a, b):

        async def main() -> None:
            client = AsyncHTTPClient(force_instance=True)
            try:
                alice_a = await signed_in(client, a, "alice")
                watcher, _ = await live(alice_a)
                assert (await post(alice_a, "here")).code == 200
                assert await watcher.next() == {
                    "type": "message",
                    "id": 1,
                    "author": "alice",
                    "text": "here",
                }
                alice_b = elsewhere(alice_a, b)
                answer = json.loads((await post(alice_b, "there")).body)
                assert answer == {"id": 1, "author": "alice", "text": "there"}
                assert (await info(a, client))["last_message_id"] == 1
                watcher.connection.close()
            finally:
                client.close()

        run(io_loop, main)


def test_demo_refuses_an_unknown_broker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reactor", "demo", "--port", "0", "--broker", "kafka://x"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 2
    assert "unknown broker 'kafka://x': give redis://HOST:PORT/DB" in result.stderr


# -- the demo's own chat tests (tests/test_demo.py), with the room on Redis -------------------


@pytest.fixture
def site(io_loop: IOLoop, tmp_path: Path, redis_url: str) -> Iterator[test_demo.Demo]:
    """tests/test_demo.py's site, its chat room on a RedisBroker."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    app = demo.make_app(
        str(uploads),
        broker=RedisBroker(redis_url),
        cookie_secret=test_demo.SECRET,
        chat_cache_size=test_demo.CACHE,
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        yield test_demo.Demo(app, port, client)
    finally:
        client.close()
        server.stop()
        io_loop.run_sync(server.close_all_connections)
        io_loop.run_sync(app.room.broker.close)


@pytest.fixture
def web_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """As in tests/test_demo.py: what the web layer logs, warnings and up."""
    caplog.set_level(logging.WARNING, logger="reactor")
    yield caplog


# The same tests, the same assertions (ids from 1, joins to the others only,
# a post's id good as a cursor at once, a slow reader closed, a flood
# refused): the room behaves on Redis as it does in one process.
test_chat_long_poll_on_redis = test_demo.test_chat_long_poll
test_a_poll_whose_client_leaves_stops_waiting_on_redis = (
    test_demo.test_a_poll_whose_client_leaves_stops_waiting
)
test_live_chat_two_clients_on_redis = test_demo.test_live_chat_two_clients
test_live_chat_and_long_poll_share_the_room_on_redis = (
    test_demo.test_live_chat_and_long_poll_share_the_room
)
test_live_chat_reconnect_with_a_cursor_on_redis = test_demo.test_live_chat_reconnect_with_a_cursor
test_a_client_that_does_not_read_is_closed_on_redis = (
    test_demo.test_a_client_that_does_not_read_is_closed
)
test_a_client_that_floods_is_refused_past_its_rate_on_redis = (
    test_demo.test_a_client_that_floods_is_refused_past_its_rate
)
