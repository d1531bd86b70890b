"""Review of issue 12 as a hostile client and operator: the defects found,
each pinned by a test through real parts (a real redis-server, real
sockets), on every backend."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio

from reactor.demo import app as demo
from reactor.demo.broker import RedisBroker
from reactor.ioloop import IOLoop
from tests.conformance import conftest as conformance
from tests.test_broker import Recorder, redis_address, redis_url, until
from tests.test_serve import Served, _slow_request, pids_serving, serve, wait_in_flight
from tests.util import LogRecords

__all__ = ["redis_address", "redis_url", "serve"]  # the fixtures, here too
reactor_log = conformance.reactor_log

pytestmark = pytest.mark.usefixtures("reactor_log")

CHANNEL = "reactor-demo:room:main"


async def test_a_message_id_past_redis_integers_does_not_stop_the_posts(
    io_loop: IOLoop, redis_url: str
) -> None:
    """A message published on the room's channel with an id past what Redis's
    counter can hold (INCR's 64-bit integers; Lua's doubles) is dropped: taken,
    each process would give it to the publish script as its last id seen, the
    script would set the counter to it, and every post after, from every
    process, would fail."""
    broker, seen = RedisBroker(redis_url), Recorder()
    broker.subscribe("main", seen)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await broker.start()
        for bad in (10**30, 2**63, 2**53 + 1):
            event = {"type": "message", "id": bad, "author": "eve", "text": "boom"}
            await raw.publish(CHANNEL, json.dumps(event))
        await raw.publish(CHANNEL, json.dumps({"type": "join", "name": "marker"}))
        await seen.count("join", 1)  # everything before it was handled
        assert broker.dropped == 3
        posted = await broker.publish("main", {"type": "message", "author": "a", "text": "hi"})
        assert posted["id"] == 1
        (got,) = await seen.count("message", 1)
        assert got == posted
    finally:
        await raw.aclose()
        await broker.close()


async def test_a_sync_from_redis_does_not_wipe_the_rooms(
    io_loop: IOLoop, redis_url: str, reactor_log: LogRecords
) -> None:
    """``sync`` is the broker's own event (made from what its script read),
    never one that comes on the channel: one published there by whoever may
    write to Redis is dropped. Delivered, an empty one would empty the room's
    messages in every process (a new "epoch"), and a malformed one would make
    the room's subscriber raise."""
    room, heard = demo.ChatRoom(broker=RedisBroker(redis_url)), Recorder()
    room.subscribe(heard)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await room.start()
        posted = await room.broker.publish(
            "main", {"type": "message", "author": "a", "text": "kept"}
        )
        await until(lambda: room.messages != [], "the message in the room")
        epoch = room.epoch
        await raw.publish(CHANNEL, json.dumps({"type": "sync"}))
        await raw.publish(
            CHANNEL, json.dumps({"type": "sync", "epoch": "evil", "last_id": 0, "messages": []})
        )
        await raw.publish(CHANNEL, json.dumps({"type": "join", "name": "marker"}))
        await until(lambda: any(e.get("name") == "marker" for e in heard.events), "the marker")
        assert room.epoch == epoch
        assert room.messages == [{"id": posted["id"], "author": "a", "text": "kept"}]
        assert not [r for r in reactor_log.records if r.levelno >= logging.ERROR]
    finally:
        await raw.aclose()
        await room.broker.close()


DEEP = b"[" * 100_000
"""JSON nested deeper than json.loads can go: it raises RecursionError (not a
ValueError), however small the limit on the input's size."""


async def test_json_nested_too_deep_from_redis_is_dropped(
    io_loop: IOLoop, redis_url: str, reactor_log: LogRecords
) -> None:
    """Deep JSON published on the room's channel is junk like any other: dropped
    and counted. Raised out of the subscriber, it was taken for Redis going away:
    the subscription was dropped and made again (posts refused meanwhile), as
    often as anyone cared to publish it."""
    broker, seen = RedisBroker(redis_url), Recorder()
    broker.subscribe("main", seen)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await broker.start()
        await raw.publish(CHANNEL, DEEP[: 60 * 1024])
        await raw.publish(CHANNEL, json.dumps({"type": "join", "name": "marker"}))
        await seen.count("join", 1)
        assert broker.dropped == 1
        assert [e["type"] for e in seen.events] == ["sync", "join"]  # no second sync
        assert not [w for w in reactor_log.warnings() if "unreachable" in w]
    finally:
        await raw.aclose()
        await broker.close()


# -- python -m reactor serve and SIGHUP ------------------------------------------------


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sighup_drains_as_sigterm_does(serve: Callable[..., Served], processes: str) -> None:
    """A hang-up (the terminal of ``python -m reactor serve`` closed, or a
    ``kill -HUP``) drains, as SIGTERM does: before, its default action killed
    the process at once, cutting what was in flight; the supervisor left its
    ready file behind (saying it served when nothing did), its Unix socket
    file and its metrics directory."""
    served = serve("--processes", processes, "--drain-timeout", "10")
    result: dict[str, Any] = {}
    thread = _slow_request(served, "/slow?delay=1", result)
    wait_in_flight(served, int(processes))
    served.signal(signal.SIGHUP)
    assert served.wait() == 0
    thread.join(timeout=10)
    assert result["status"] == 200 and result["body"] == b"slept 1\n"
    assert "SIGHUP: draining" in served.stderr()
    assert not served.ready_file.exists()


def test_sighup_ignored_at_start_stays_ignored(serve: Callable[..., Served]) -> None:
    """Started with SIGHUP ignored (``nohup``), the server keeps ignoring it:
    the hang-up that nohup is there to survive does not stop it."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does, inherited
    try:
        served = serve("--processes", "2")
    finally:
        signal.signal(signal.SIGHUP, previous)
    seen = pids_serving(served, 2)
    served.signal(signal.SIGHUP)
    for pid in seen:
        os.kill(pid, signal.SIGHUP)
    assert len(pids_serving(served, 2)) == 2  # both still serve
    assert served.process.poll() is None
    served.signal(signal.SIGTERM)
    assert served.wait() == 0


async def test_a_sync_brings_at_most_history_messages(io_loop: IOLoop, redis_url: str) -> None:
    """The list of kept messages is trimmed to ``history`` by each publish, but
    whoever may write to Redis can make it longer (RPUSH): a sync reads and
    delivers only the newest ``history`` of it (100 at least), as docs/scaling.md says,
    instead of the whole list to every process (memory, and a flood of old
    messages to every client)."""
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        kept = [
            json.dumps({"id": i, "type": "message", "author": "m", "text": str(i)})
            for i in range(1, 5001)
        ]
        await raw.rpush(CHANNEL + ":kept", *kept)
        await raw.set(CHANNEL + ":id", 5000)
        broker, seen = RedisBroker(redis_url, history=30), Recorder()  # reads 100 (HISTORY)
        broker.subscribe("main", seen)
        try:
            await broker.start()
            (sync,) = await seen.count("sync", 1)
            assert sync["last_id"] == 5000
            assert [m["id"] for m in sync["messages"]] == list(range(4901, 5001))
        finally:
            await broker.close()
    finally:
        await raw.aclose()
