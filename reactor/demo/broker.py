"""Brokers: how the demo chat's events reach the clients of every process.

A room's events (a message, someone joining or leaving) are published to
the broker, which gives them to every subscriber of the room, in every
process, in one order. :class:`InProcessBroker` (the default) serves one
process; :class:`RedisBroker` carries them through Redis pub/sub, so a
message posted to one server process (or machine) reaches the clients of
all the others.

Some facts about Redis pub/sub, and what they make this module do:

- ``PUBLISH`` delivers to the connections subscribed at that moment and to
  no one else: a process that is starting or reconnecting misses what is
  published meanwhile, for good. So numbered messages are also kept in a
  list (the newest ``history``), and a subscriber reads it once its
  ``SUBSCRIBE`` is confirmed (a ``sync`` event): what was published before
  is in the list, what comes after arrives on the channel, and what is in
  both is recognised by its id.
- Redis runs a Lua script whole, with nothing in between. The id (``INCR``),
  the list and the ``PUBLISH`` are one script, so ids reach every
  subscriber in increasing order; two processes doing ``INCR`` and then
  ``PUBLISH`` could publish 6 before 5, and a client whose cursor is 6
  would never see 5.
- A subscribed connection gets its messages in the order Redis published
  them; each process numbers nothing itself, so every process sees the same
  ids in the same order and a long-poll cursor means the same everywhere.
- A Redis that persists nothing restarts empty: its counter would start
  again at 1 and a client's cursor 57 would mean nothing. Each process gives
  the scripts the room's epoch and the highest id it has seen: the epoch is
  set again if it is missing, and the counter never goes back below that id.
- A command whose reply is lost may have run: redis-py's retries would run
  the publish script again, and the message would be posted twice. Retries
  are off: a publish that fails is reported as not delivered (rarely, it
  was). Nothing is claimed delivered that Redis did not take.
- A connection to a Redis that vanished without closing it (a cable, a
  partition) looks idle forever: the subscriber pings after ``PING_SECONDS``
  of silence and reconnects after twice that.
- Whoever may write to Redis may publish on the room's channel: what comes
  from it is checked (a JSON object of at most ``MAX_EVENT`` bytes with a
  ``type`` other than ``sync``, a message with an integer id) and dropped, with a warning,
  otherwise.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from reactor.log import app_log

Event = dict[str, Any]
Callback = Callable[[Event], None]

HISTORY = 100
"""Numbered messages a broker keeps per room, for subscribers that catch up."""
MAX_EVENT = 64 * 1024
"""Bytes in one event from Redis; a longer one is dropped."""
MAX_ROOM = 64
"""Characters in a room's name."""
MAX_ID = 2**53
"""The largest message id taken from Redis (exact in Lua's doubles)."""
RECONNECT_FIRST = 0.1
"""Seconds before the first attempt to reconnect to Redis; then doubled..."""
RECONNECT_MAX = 2.0
"""...up to this."""
PING_SECONDS = 10.0
"""Silence on the subscribed connection after which it is pinged; after
twice this, Redis is taken for gone."""
COMMAND_SECONDS = 5.0
"""How long a command to Redis (a publish) may take, connecting included."""


class BrokerUnavailable(Exception):
    """The broker cannot deliver now (its server is unreachable): the event
    was not published, and the poster should be told so."""


def _check_room(room: str) -> None:
    if not room or len(room) > MAX_ROOM or not room.isprintable():
        raise ValueError(f"a room's name is 1 to {MAX_ROOM} printable characters: {room!r}")


def _deliver(callbacks: dict[Callback, None], event: Event) -> None:
    for callback in list(callbacks):
        try:
            callback(event)
        except Exception:
            app_log.exception("chat broker: subscriber %r failed", callback)


class Broker(abc.ABC):
    """Carries each room's events to every subscriber, in every process, in one order.

    An event is a JSON-serialisable dict with a ``"type"``. Those of type
    ``"message"`` are numbered: the broker gives each the room's next
    ``"id"`` (the same in every process) and keeps the newest ones.

    A subscriber's callback gets, first (and again after each reconnection
    to a server), ``{"type": "sync", "epoch": E, "last_id": N, "messages":
    [...]}``: the name of this numbering (ids start again at 1 in a new
    epoch), the last id given, and the kept messages, some of which it may
    have missed. Then every event published to the room, each numbered
    message once, in increasing order. Callbacks must not block; one that
    raises is logged and the others still get the event.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect. Returns once the first attempt is over; a broker that could
        not connect keeps trying in the background. Idempotent."""

    @abc.abstractmethod
    async def publish(self, room: str, event: Event) -> Event:
        """Give ``event`` to every subscriber of ``room``; returns the event as
        delivered (with its ``id`` if it is a message).

        Raises :class:`BrokerUnavailable` when it cannot be delivered.
        """

    @abc.abstractmethod
    def subscribe(self, room: str, callback: Callback) -> None:
        """Give ``callback`` the events of ``room`` from now on (a sync first)."""

    @abc.abstractmethod
    def unsubscribe(self, room: str, callback: Callback) -> None:
        """Stop giving ``callback`` the events of ``room`` (nothing if it was not subscribed)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Unsubscribe from everything and close the connections. Idempotent."""


class _LocalRoom:
    def __init__(self) -> None:
        self.callbacks: dict[Callback, None] = {}  # a set that keeps its order
        self.epoch = os.urandom(6).hex()
        self.last_id = 0
        self.kept: deque[Event] = deque(maxlen=HISTORY)


class InProcessBroker(Broker):
    """The events of one process's rooms, delivered before :meth:`publish`
    returns; ids start at 1 in each process (each has an epoch of its own)."""

    def __init__(self) -> None:
        self._rooms: dict[str, _LocalRoom] = {}

    def _room(self, room: str) -> _LocalRoom:
        local = self._rooms.get(room)
        if local is None:
            _check_room(room)
            local = self._rooms[room] = _LocalRoom()
        return local

    async def start(self) -> None:
        pass

    async def publish(self, room: str, event: Event) -> Event:
        local = self._room(room)
        if event.get("type") == "message":
            local.last_id += 1
            event = {**event, "id": local.last_id}
            local.kept.append(event)
        _deliver(local.callbacks, event)
        return event

    def subscribe(self, room: str, callback: Callback) -> None:
        local = self._room(room)
        local.callbacks[callback] = None
        sync = {
            "type": "sync",
            "epoch": local.epoch,
            "last_id": local.last_id,
            "messages": list(local.kept),
        }
        _deliver({callback: None}, sync)

    def unsubscribe(self, room: str, callback: Callback) -> None:
        local = self._rooms.get(room)
        if local is not None:
            local.callbacks.pop(callback, None)

    async def close(self) -> None:
        for local in self._rooms.values():
            local.callbacks.clear()


# -- Redis --------------------------------------------------------------------------------

_SYNC = """
-- KEYS: epoch, counter, kept messages. ARGV: the caller's epoch, the last id it has seen,
-- how many kept messages to read (the newest).
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if epoch == ARGV[1] and last < tonumber(ARGV[2]) then
  last = tonumber(ARGV[2])
  redis.call('SET', KEYS[2], ARGV[2])
end
return {epoch, last, redis.call('LRANGE', KEYS[3], -tonumber(ARGV[3]), -1)}
"""

_PUBLISH = """
-- KEYS: epoch, counter, kept messages. ARGV: the caller's epoch, the last id it has
-- seen, the channel, the event's JSON (an object, not empty, without "id"), how many to keep.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
local id = redis.call('INCR', KEYS[2])
local payload = '{"id":' .. string.format('%d', id) .. ',' .. string.sub(ARGV[4], 2)
redis.call('RPUSH', KEYS[3], payload)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
redis.call('PUBLISH', ARGV[3], payload)
return id
"""


class _RedisRoom(_LocalRoom):
    def __init__(self, prefix: str, name: str) -> None:
        super().__init__()
        self.name = name
        self.channel = f"{prefix}:room:{name}"
        self.keys = [f"{self.channel}:epoch", f"{self.channel}:id", f"{self.channel}:kept"]


def _parse(data: bytes) -> Event | None:
    """An event from Redis, or None if it is not one (too big, not JSON, no type)."""
    if len(data) > MAX_EVENT:
        return None
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    if event["type"] == "sync":
        return None  # the broker's own, made from what it read; never from the channel
    if event["type"] == "message" and not (
        # An int, not a bool; below what the scripts' counter can reach (Lua
        # numbers are doubles; INCR's are 64-bit): taken as the last id seen,
        # a larger one would be set as the counter and fail every INCR after.
        type(event.get("id")) is int and 0 < event["id"] <= MAX_ID
    ):
        return None
    return event


class RedisBroker(Broker):
    """Events carried by Redis pub/sub (``redis.asyncio``), one channel per room:
    ``PREFIX:room:NAME``; numbered messages kept in ``PREFIX:room:NAME:kept``.

    ``url`` is redis-py's (``redis://[:password@]host:port/db``,
    ``rediss://`` for TLS, ``unix://path``). When Redis goes away, this is
    logged once; :meth:`publish` raises :class:`BrokerUnavailable` until it is
    back (the poster is told; nothing is queued), the subscriber reconnects
    with a back-off (``RECONNECT_FIRST`` doubling to ``RECONNECT_MAX``
    seconds) and catches up with a sync. At most ``max_connections``
    commands run at once; more wait (up to ``COMMAND_SECONDS``). Every
    process sharing a room must give the same ``prefix`` and ``history``
    (the newest ``history`` messages are kept in Redis).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "reactor-demo",
        history: int = HISTORY,
        max_connections: int = 8,
    ) -> None:
        from redis.asyncio.connection import parse_url

        options = parse_url(url)  # a ValueError names what is wrong with it
        self.url = url
        self.prefix = prefix
        self.history = history
        self.max_connections = max_connections
        host, port = options.get("host", "localhost"), options.get("port", 6379)
        where = options.get("path") or f"{host}:{port}"
        self.address = f"{where}/{options.get('db', 0)}"
        """Where Redis is, for the log (never the password)."""
        self.connected = False
        """True while subscribed and caught up: publishing may succeed."""
        self.dropped = 0
        """Events from Redis that were not events (see the module's facts)."""
        self._rooms: dict[str, _RedisRoom] = {}
        self._channels: dict[str, _RedisRoom] = {}
        self._control = f"{prefix}:broker"  # subscribed always, published to never
        self._client: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._first_attempt: asyncio.Future[None] | None = None
        self._closing = False
        self._down_logged = False
        self._errors: tuple[type[Exception], ...] = (OSError,)
        self._publish_script: Any = None
        self._sync_script: Any = None

    def _room(self, room: str) -> _RedisRoom:
        state = self._rooms.get(room)
        if state is None:
            _check_room(room)
            state = self._rooms[room] = _RedisRoom(self.prefix, room)
            state.kept = deque(maxlen=self.history)
            self._channels[state.channel] = state
        return state

    async def start(self) -> None:
        if self._closing:
            raise RuntimeError("this broker is closed")
        if self._reader is None:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError

            self._errors = (RedisError, OSError)

            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections + 1,  # and the subscriber's
                timeout=COMMAND_SECONDS,
                socket_connect_timeout=COMMAND_SECONDS,
                socket_timeout=COMMAND_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
            self._client = redis.asyncio.Redis.from_pool(pool)
            self._publish_script = self._client.register_script(_PUBLISH)
            self._sync_script = self._client.register_script(_SYNC)
            self._first_attempt = asyncio.get_running_loop().create_future()
            self._reader = asyncio.get_running_loop().create_task(self._run())
        assert self._first_attempt is not None
        await asyncio.shield(self._first_attempt)

    async def publish(self, room: str, event: Event) -> Event:
        state = self._room(room)
        if not self.connected:
            raise BrokerUnavailable(f"redis at {self.address} is unreachable")
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        try:
            if event.get("type") == "message":
                args = [state.epoch, state.last_id, state.channel, body, self.history]
                number = await self._publish_script(keys=state.keys, args=args)
                return {**event, "id": int(number)}
            await self._client.publish(state.channel, body)
            return event
        except self._errors as e:
            raise BrokerUnavailable(f"redis at {self.address}: {e}") from e

    def subscribe(self, room: str, callback: Callback) -> None:
        state = self._room(room)
        new = not state.callbacks
        state.callbacks[callback] = None
        if not new:
            # The room is subscribed (or will be on connecting): this one
            # catches up from what the broker knows.
            sync = {
                "type": "sync",
                "epoch": state.epoch,
                "last_id": state.last_id,
                "messages": list(state.kept),
            }
            _deliver({callback: None}, sync)
        elif self._pubsub is not None:
            # Subscribed while connected: its confirmation reaches the
            # reader, which syncs the room then (see _handle).
            task = asyncio.get_running_loop().create_task(self._subscribe_late(state.channel))
            self._tasks.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)

    async def _subscribe_late(self, channel: str) -> None:
        with contextlib.suppress(Exception):  # disconnected: the reader subscribes again
            await self._pubsub.subscribe(channel)

    def unsubscribe(self, room: str, callback: Callback) -> None:
        state = self._rooms.get(room)
        if state is not None:
            state.callbacks.pop(callback, None)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.connected = False
        reader, self._reader = self._reader, None
        if reader is not None:
            pubsub = self._pubsub
            try:
                if pubsub is None:  # disconnected, waiting to retry
                    raise TimeoutError
                # UNSUBSCRIBE; the reader sees the last confirmation and returns.
                await pubsub.unsubscribe()
                await asyncio.wait_for(asyncio.shield(reader), 2.0)
            except Exception:
                reader.cancel()
                await asyncio.wait([reader])  # its CancelledError is not ours
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
        for state in self._rooms.values():
            state.callbacks.clear()

    # -- the subscriber ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = RECONNECT_FIRST
        while not self._closing:
            caught_up = False
            try:
                caught_up = await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not self._closing:
                    self._went_down(e)
            finally:
                self.connected = False
                self._pubsub = None
                self._first_attempt_over()
            if self._closing:
                break
            delay = RECONNECT_FIRST if caught_up else min(delay * 2, RECONNECT_MAX)
            await asyncio.sleep(delay)

    async def _listen(self) -> bool:
        """Subscribe, catch up, deliver until closed or disconnected; returns
        whether it caught up (connected) at all, and raises what broke it."""
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        caught_up = False
        try:
            unconfirmed = {self._control, *(s.channel for s in self._rooms.values())}
            await pubsub.subscribe(*unconfirmed)
            loop = asyncio.get_running_loop()
            heard = loop.time()
            while True:
                message = await pubsub.get_message(timeout=PING_SECONDS)
                if message is None:
                    if loop.time() - heard > 2 * PING_SECONDS:
                        raise ConnectionError(f"no answer for {2 * PING_SECONDS:g} s")
                    await pubsub.ping()
                    continue
                heard = loop.time()
                kind = message["type"]
                if kind == "message":
                    self._handle(message["channel"], message["data"])
                elif kind == "subscribe":
                    channel = message["channel"].decode()
                    if channel != self._control:
                        await self._sync(channel)
                    unconfirmed.discard(channel)
                    if not unconfirmed and not caught_up:  # every room synced
                        caught_up = self.connected = True
                        self._came_back()
                        self._first_attempt_over()
                elif kind == "unsubscribe" and self._closing and message["data"] == 0:
                    return caught_up
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _first_attempt_over(self) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            self._first_attempt.set_result(None)

    async def _sync(self, channel: str) -> None:
        state = self._channels.get(channel)
        if state is None:
            return
        epoch, last, kept = await self._sync_script(
            keys=state.keys, args=[state.epoch, state.last_id, max(self.history, HISTORY)]
        )
        epoch = epoch.decode()
        messages = [e for e in map(_parse, kept) if e is not None and e["type"] == "message"]
        if epoch != state.epoch:  # a new numbering: the old ids mean nothing in it
            state.epoch = epoch
            state.last_id = 0
        state.last_id = max(state.last_id, int(last))
        state.kept.clear()
        state.kept.extend(messages[-self.history :])
        sync = {"type": "sync", "epoch": epoch, "last_id": state.last_id, "messages": messages}
        _deliver(state.callbacks, sync)

    def _handle(self, channel: bytes, data: bytes) -> None:
        state = self._channels.get(channel.decode())
        if state is None:
            return
        event = _parse(data)
        if event is None:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                app_log.warning(
                    "chat broker: dropped %d event(s) from redis at %s that were not events "
                    "(%d bytes on %s)",
                    self.dropped,
                    self.address,
                    len(data),
                    state.channel,
                )
            return
        if event["type"] == "message":
            if event["id"] <= state.last_id:
                return  # in the sync already
            state.last_id = event["id"]
            state.kept.append(event)
        _deliver(state.callbacks, event)

    def _went_down(self, error: BaseException) -> None:
        if not self._down_logged:
            self._down_logged = True
            app_log.warning(
                "chat broker: redis at %s is unreachable (%s); the rooms go on here, "
                "posts are refused until it answers again; reconnecting",
                self.address,
                error or type(error).__name__,
            )
        else:
            app_log.debug("chat broker: redis at %s still unreachable (%s)", self.address, error)

    def _came_back(self) -> None:
        if self._down_logged:
            self._down_logged = False
            app_log.info("chat broker: redis at %s is back", self.address)


def from_url(url: str | None) -> Broker:
    """The broker a URL names: none or empty, :class:`InProcessBroker`;
    ``redis://``, ``rediss://`` or ``unix://``, :class:`RedisBroker`."""
    if not url:
        return InProcessBroker()
    if url.split("://", 1)[0] in ("redis", "rediss", "unix"):
        return RedisBroker(url)
    raise ValueError(
        f"unknown broker {url!r}: give redis://HOST:PORT/DB (or rediss://, unix://), "
        "or nothing for the in-process broker"
    )
