#!/usr/bin/env python
"""WebSocket echo benchmarks: messages per second and server CPU per message.

Servers (``benchmarks/ws_apps/``, one small file per library): reactor's
``WebSocketHandler`` on every backend, Tornado 6.6's ``WebSocketHandler`` (the
same program, imported from ``tornado``), the ``websockets`` package's
``websockets.asyncio.server`` (on asyncio's default loop, and on uvloop) and
aiohttp's ``web.WebSocketResponse``. Every server echoes every message back.

Cases: C = 1 and 100 connections; 64-byte text and 64-KiB binary messages;
without and with permessage-deflate (the server enables it with its
library's defaults and the client offers ``permessage-deflate;
client_max_window_bits``). Eight cells per server.

The client is the same for every server: this script's own, on uvloop, one
``asyncio.Protocol`` per connection over raw sockets. It does its own opening
handshake (checking ``Sec-WebSocket-Accept``), parses the server's
permessage-deflate answer and honours it (window bits, no_context_takeover,
with ``zlib``), masks every frame it sends and keeps a *window* of W messages
in flight per connection: it sends W, and sends one more for every echo that
comes back, each echo checked byte for byte against what was sent. Without
deflate the masked frames are built before the timed part (a pool of
:data:`POOL` messages, each with its own random mask key), so sending costs
the client one ``write`` per batch; with deflate each message is compressed
and masked as it is sent (the compressed bytes depend on the history).

A server's speed shows in its CPU time per message more than in the rate:
one Python client on one core tops out well below what the fastest servers
can echo. The result of a cell is the messages echoed per second over the
timed window and the server's CPU microseconds per message (its CPU time
over the window, every thread of its process group, divided by the echoes);
the tables give the ratios of both to Tornado's and to websockets'.

Process layout (as ``bench_http.py`` and ``bench_web.py``, whose helpers this
script uses): the parent runs every cell in a fresh subprocess (``--worker
SPEC``, the client) with a time limit; the worker starts the server
(``--serve SPEC``, in a session of its own, pinned to the first CPU), pins
itself to the second, opens the connections (50 at a time), runs a warm-up
and the timed window, then stops sending, waits for every message in flight,
closes every connection with a Close handshake (code 1000, checked) and stops
the server. A server exits when its stdin closes, and after a lifetime.

``--profile`` runs one more cell, 64-byte text over 100 connections on
reactor's epoll backend (``--profile-impl`` for another), with the server
under ``cProfile``, and prints its functions in µs per message.

Run ``python benchmarks/bench_websocket.py --help``. Timings depend on the
machine and on what else it does: they belong in documents, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pstats
import random
import select
import signal
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_http
from _common import (
    Case,
    Cells,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    fmt,
    progress,
    report_header,
    run_main,
    runs,
    unavailable_reason,
)
from bench_http import _cpu_busy, _cpus
from bench_web import _group_cpu_seconds
from ws_apps import PATH

# (full, quick), in seconds.
DURATION_SECONDS = (2.0, 0.4)
WARMUP_SECONDS = (0.5, 0.1)
DEFAULT_REPEAT = 3
CONNECTIONS = (1, 100)
SIZES = (64, 65536)
TEXT_LIMIT = 1024
"""Messages up to this size are text (``64 B text``), larger ones binary."""
WINDOW = {64: 8, 65536: 2}
"""Messages in flight per connection, by message size (``--window`` overrides)."""
POOL = 16
"""Distinct messages the client cycles through (each its own masked frame)."""
CONNECT_BATCH = 50
DRAIN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
PROFILE_SECONDS = 3.0

BASELINE = "tornado"
SECOND_BASELINE = "websockets"
PROFILE_IMPL = "reactor-epoll"

REACTOR_BACKENDS = ("select", "poll", "epoll", "asyncio", "uvloop")
IMPLEMENTATIONS: dict[str, str] = {
    **{
        f"reactor-{b}": f"reactor.websocket.WebSocketHandler on the {b} backend "
        "(ws_apps/tornado_app.py, imported from reactor)"
        for b in REACTOR_BACKENDS
    },
    "tornado": "tornado.websocket.WebSocketHandler 6.6 under asyncio.run (ws_apps/tornado_app.py)",
    "websockets": "websockets.asyncio.server.serve, asyncio's default loop",
    "websockets-uvloop": "websockets.asyncio.server.serve under uvloop.run",
    "aiohttp": "aiohttp web.WebSocketResponse, web.run_app(access_log=None), default asyncio loop",
}
BENCHES = ("echo",)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _unavailable(name: str) -> str | None:
    """Why an implementation cannot run here at all (then it is skipped)."""
    if name.startswith("reactor-"):
        return unavailable_reason(name)
    needs = {
        "tornado": ["tornado"],
        "websockets": ["websockets"],
        "websockets-uvloop": ["websockets", "uvloop"],
        "aiohttp": ["aiohttp"],
    }[name]
    missing = [dist for dist in needs if _version(dist) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def not_built(impl: str) -> str | None:
    """``not built: reactor.websocket`` while this checkout has no such module.

    Such a cell reads ``n/a (not built: ...)`` in the table: never a number.
    """
    if impl.startswith("reactor-") and importlib.util.find_spec("reactor.websocket") is None:
        return "not built: reactor.websocket"
    return None


# -- the server process (--serve) ---------------------------------------------------


def _watch_stdin(lifetime: float, stopper: list[Callable[[], None]]) -> None:
    """When stdin closes (or the lifetime is over): stop the server's loop
    cleanly if it registered a way to (``--profile``: the profile is written
    after the loop returns), else kill the server's process group."""
    deadline = time.monotonic() + lifetime
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.write(2, b"server: lifetime over, exiting\n")
            break
        ready, _, _ = select.select([0], [], [], remaining)
        if ready and not os.read(0, 4096):
            break
    if stopper:
        stopper[0]()
        time.sleep(20)  # the main thread writes the profile and exits meanwhile
    os.killpg(os.getpgid(0), signal.SIGKILL)


def serve(spec: dict[str, Any]) -> int:
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    # No access line per upgrade; warnings and errors still show on stderr.
    logging.disable(logging.INFO)
    stopper: list[Callable[[], None]] = []
    threading.Thread(target=_watch_stdin, args=(spec["lifetime"], stopper), daemon=True).start()
    impl, port, deflate = spec["impl"], spec["port"], spec["deflate"]
    profile_path = spec.get("profile")
    profiler = None
    hook = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()

        def hook(stop: Callable[[], None]) -> None:
            # Called once the server listens, just before its loop runs:
            # the profile leaves out the imports and the set-up.
            stopper.append(stop)
            profiler.enable()

    if impl.startswith("reactor-") or impl == "tornado":
        from ws_apps import tornado_app

        pkg = "tornado" if impl == "tornado" else "reactor"
        tornado_app.serve(pkg, impl.removeprefix("reactor-"), port, deflate, hook)
    elif impl in ("websockets", "websockets-uvloop"):
        from ws_apps import websockets_app

        websockets_app.serve(port, deflate, impl == "websockets-uvloop", hook)
    elif impl == "aiohttp":
        from ws_apps import aiohttp_app

        aiohttp_app.serve(port, deflate)
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
    return 0


class ServerProcess(bench_http.ServerProcess):
    """bench_http's server subprocess running this script, in a session of its
    own, its CPU counted over every process and thread of that session."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec, script=Path(__file__).resolve(), new_session=True)

    def cpu_seconds(self) -> float:
        return _group_cpu_seconds(self.proc.pid)

    def user_system_seconds(self) -> tuple[float, float]:
        """User and system CPU time of the server process (every thread; from
        /proc/PID/stat, in clock ticks: coarser than :meth:`cpu_seconds`)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / self._ticks, int(fields[12]) / self._ticks

    def close_and_wait(self, timeout: float) -> str:
        """Close stdin and wait for the server to exit by itself (the profile
        is written then), killing its group only after ``timeout``."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except Exception:
            pass
        return self.close()


# -- the client (in the worker) -----------------------------------------------------


def message_pool(size: int) -> list[bytes]:
    """The :data:`POOL` messages the client sends in turn, ``size`` bytes each.

    Text messages (``size`` <= :data:`TEXT_LIMIT`) are ASCII; binary ones are
    words drawn from a small vocabulary by a seeded RNG, so that deflate has
    something to do (they compress to about a third), and the same every run.
    """
    rng = random.Random(20261202)
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(300)
    ]
    out = []
    for j in range(POOL):
        head = f"message {j:02d} ".encode()
        if size <= TEXT_LIMIT:
            body = bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz0123456789 ", k=size))
        else:
            parts, n = [], 0
            while n < size:
                w = rng.choice(words) + b" "
                parts.append(w)
                n += len(w)
            body = b"".join(parts)
        out.append((head + body)[:size])
    return out


class KeySource:
    """Random 4-byte mask keys, drawn from ``os.urandom`` 4 KiB at a time."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def next(self) -> bytes:
        if self._pos >= len(self._buf):
            self._buf, self._pos = os.urandom(4096), 0
        key = self._buf[self._pos : self._pos + 4]
        self._pos += 4
        return key


def mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        n, "little"
    )


def client_frame(opcode: int, payload: bytes, key: bytes, rsv1: bool = False) -> bytes:
    """One masked, final client frame."""
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        head = bytes((b0, 0x80 | n))
    elif n < 65536:
        head = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


class HandshakeError(Exception):
    pass


def parse_deflate_answer(value: str) -> dict[str, Any]:
    """The server's permessage-deflate answer (``Sec-WebSocket-Extensions``),
    checked against what the client offered (``client_max_window_bits``, bare)."""
    exts = [e.strip() for e in value.split(",") if e.strip()]
    if len(exts) != 1:
        raise HandshakeError(f"expected one extension in the answer, got {value!r}")
    name, *params = [p.strip() for p in exts[0].split(";")]
    if name != "permessage-deflate":
        raise HandshakeError(f"answered an extension we did not offer: {value!r}")
    out: dict[str, Any] = {
        "server_no_context_takeover": False,
        "client_no_context_takeover": False,
        "server_max_window_bits": 15,
        "client_max_window_bits": 15,
    }
    seen = set()
    for p in params:
        key, _, val = p.partition("=")
        key, val = key.strip(), val.strip().strip('"')
        if key in seen or key not in out:
            raise HandshakeError(f"bad permessage-deflate answer {value!r}")
        seen.add(key)
        if key.endswith("no_context_takeover"):
            if val:
                raise HandshakeError(f"bad permessage-deflate answer {value!r}")
            out[key] = True
        else:
            if not val.isdigit() or not 8 <= int(val) <= 15:
                raise HandshakeError(f"bad window bits in {value!r}")
            out[key] = int(val)
    return out


class EchoClient(asyncio.Protocol):
    """One WebSocket connection that keeps ``window`` messages in flight."""

    def __init__(
        self, port: int, pool: list[bytes], window: int, deflate: bool, keys: KeySource
    ) -> None:
        self.port = port
        self.pool = pool
        self.window = window
        self.deflate_offered = deflate
        self.keys = keys
        self.opcode = 1 if len(pool[0]) <= TEXT_LIMIT else 2
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = bytearray()
        self.head: bytearray | None = bytearray()  # None once the 101 is parsed
        self.key = base64.b64encode(os.urandom(16))
        self.frames: list[bytes] = []
        self.sent = 0
        self.received = 0
        self.running = False
        self.closing = False
        self.close_code: int | None = None
        self.error: str | None = None
        self.extension = ""
        self.compressed_replies = 0
        self.drained: asyncio.Future[None] | None = None
        self.fragments: list[bytes] = []
        self.fragment_opcode = 0
        self.fragment_rsv1 = False
        self.compressor: Any = None
        self.decompressor: Any = None
        self.negotiated: dict[str, Any] | None = None

    # -- handshake
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] (uvloop's is no asyncio.Transport)
        lines = [
            f"GET {PATH} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.deflate_offered:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _handshake_done(self, head: bytes) -> None:
        status, *header_lines = head.decode("latin-1").split("\r\n")
        if not status.startswith("HTTP/1.1 101"):
            raise HandshakeError(f"the server answered {status!r}")
        headers: dict[str, list[str]] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != [accept]:
            raise HandshakeError(f"bad Sec-WebSocket-Accept: {headers.get('sec-websocket-accept')}")
        answer = ", ".join(headers.get("sec-websocket-extensions", []))
        self.extension = answer
        if answer and not self.deflate_offered:
            raise HandshakeError(f"an extension we did not offer: {answer!r}")
        if answer:
            self.negotiated = parse_deflate_answer(answer)
            self.compressor = self._new_compressor()
            self.decompressor = self._new_decompressor()
        else:
            # Uncompressed: the masked frames are made now, not in the timed part.
            self.frames = [client_frame(self.opcode, m, self.keys.next()) for m in self.pool]

    def _new_compressor(self) -> Any:
        assert self.negotiated is not None
        return zlib.compressobj(1, zlib.DEFLATED, -self.negotiated["client_max_window_bits"])

    def _new_decompressor(self) -> Any:
        assert self.negotiated is not None
        return zlib.decompressobj(-self.negotiated["server_max_window_bits"])

    # -- sending
    def _frame(self, i: int) -> bytes:
        if self.negotiated is None:
            return self.frames[i % POOL]
        assert self.negotiated is not None
        if self.negotiated["client_no_context_takeover"]:
            self.compressor = self._new_compressor()
        message = self.pool[i % POOL]
        data = self.compressor.compress(message) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(b"\x00\x00\xff\xff"):
            data = data[:-4]
        return client_frame(self.opcode, data, self.keys.next(), rsv1=True)

    def start(self) -> None:
        self.running = True
        self._send(self.window)

    def _send(self, n: int) -> None:
        assert self.transport is not None
        first = self.sent
        self.sent += n
        if n == 1:
            self.transport.write(self._frame(first))
        else:
            self.transport.write(b"".join([self._frame(i) for i in range(first, first + n)]))

    def stop(self) -> asyncio.Future[None]:
        """Stop sending; the future is done when every message in flight is back."""
        self.running = False
        self.drained = asyncio.get_running_loop().create_future()
        if self.received == self.sent:
            self.drained.set_result(None)
        return self.drained

    def close(self) -> None:
        assert self.transport is not None
        self.closing = True
        self.transport.write(client_frame(8, (1000).to_bytes(2, "big"), self.keys.next()))

    # -- receiving
    def data_received(self, data: bytes) -> None:
        try:
            if self.head is not None:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > 65536:
                        raise HandshakeError("no end to the server's answer")
                    return
                head, rest = bytes(self.head[:end]), bytes(self.head[end + 4 :])
                self.head = None
                self._handshake_done(head)
                self.handshake.set_result(None)
                if not rest:
                    return
                data = rest
            self.buf += data
            self._frames()
        except Exception as e:
            self._fail(f"{type(e).__name__}: {e}")

    def _frames(self) -> None:
        buf = self.buf
        n = len(buf)
        pos = 0
        got = 0
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise ValueError("the server masked a frame")
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[start : start + 2], "big")
                start += 2
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            end = start + length
            if end > n:
                break
            payload = bytes(buf[start:end])
            pos = end
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == 0:
                if not self.fragments:
                    raise ValueError("a continuation frame with no message started")
                self.fragments.append(payload)
                if not fin:
                    continue
                payload, self.fragments = b"".join(self.fragments), []
                opcode, rsv1 = self.fragment_opcode, self.fragment_rsv1
            elif opcode < 8:
                if self.fragments:
                    raise ValueError("a new message inside a fragmented one")
                rsv1 = bool(b0 & 0x40)
                if not fin:
                    self.fragments = [payload]
                    self.fragment_opcode, self.fragment_rsv1 = opcode, rsv1
                    continue
            else:
                rsv1 = False
            if opcode in (1, 2):
                if rsv1:
                    if self.decompressor is None:
                        raise ValueError("a compressed frame without permessage-deflate")
                    assert self.negotiated is not None
                    if self.negotiated["server_no_context_takeover"]:
                        self.decompressor = self._new_decompressor()
                    payload = self.decompressor.decompress(payload + b"\x00\x00\xff\xff")
                    self.compressed_replies += 1
                if opcode != self.opcode or payload != self.pool[self.received % POOL]:
                    raise ValueError(
                        f"echo {self.received} differs: opcode {opcode}, "
                        f"{len(payload)} bytes {payload[:40]!r}"
                    )
                self.received += 1
                got += 1
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else None
                if not self.closing:
                    raise ValueError(f"the server closed the connection: {payload[:100]!r}")
            elif opcode == 9:
                assert self.transport is not None
                self.transport.write(client_frame(10, payload, self.keys.next()))
            elif opcode != 10:
                raise ValueError(f"unknown opcode {opcode}")
        if pos:
            del buf[:pos]
        if got:
            if self.running:
                self._send(got)
            elif (
                self.drained is not None and self.received == self.sent and not self.drained.done()
            ):
                self.drained.set_result(None)

    def _fail(self, error: str) -> None:
        if self.error is None:
            self.error = error
        for fut in (self.handshake, self.drained, self.closed):
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(error))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self._fail(f"the server dropped the connection ({exc or 'EOF'})")
        elif not self.closed.done():
            self.closed.set_result(None)


async def run_client(
    port: int,
    spec: dict[str, Any],
    server: ServerProcess,
    cpus: tuple[int | None, int | None],
) -> dict[str, Any]:
    """Open the connections, warm up, measure the timed window, close cleanly."""
    loop = asyncio.get_running_loop()
    pool = message_pool(spec["size"])
    keys = KeySource()
    clients: list[EchoClient] = []
    for first in range(0, spec["conns"], CONNECT_BATCH):
        batch = []
        for _ in range(first, min(spec["conns"], first + CONNECT_BATCH)):
            client = EchoClient(port, pool, spec["window"], spec["deflate"], keys)
            batch.append(client)
            await loop.create_connection(lambda c=client: c, "127.0.0.1", port)  # type: ignore[misc]
        await asyncio.wait_for(asyncio.gather(*(c.handshake for c in batch)), 30)
        clients += batch
    for c in clients:
        c.start()

    def total() -> int:
        for c in clients:
            if c.error:
                raise RuntimeError(c.error)
        return sum(c.received for c in clients)

    await asyncio.sleep(spec["warmup"])
    n0, per0 = total(), [c.received for c in clients]
    busy0 = _cpu_busy(list(cpus))
    us0 = server.user_system_seconds()
    s0, c0, t0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
    await asyncio.sleep(spec["duration"])
    n1, per1 = total(), [c.received for c in clients]
    s1, c1, t1 = server.cpu_seconds(), time.process_time(), time.perf_counter()
    us1 = server.user_system_seconds()
    busy1 = _cpu_busy(list(cpus))

    await asyncio.wait_for(asyncio.gather(*(c.stop() for c in clients)), DRAIN_TIMEOUT)
    for c in clients:
        c.close()
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), CLOSE_TIMEOUT)
    codes = sorted({str(c.close_code) for c in clients})

    messages = n1 - n0
    if messages <= 0:
        raise RuntimeError("no message was echoed in the timed window")
    elapsed = t1 - t0
    server_busy, client_busy = (b - a for a, b in zip(busy0, busy1, strict=True))
    per = [b - a for a, b in zip(per0, per1, strict=True)]
    return {
        "msgs_per_s": messages / elapsed,
        "messages": messages,
        "seconds": elapsed,
        "server_cpu_us_per_msg": (s1 - s0) / messages * 1e6,
        "server_user_us_per_msg": (us1[0] - us0[0]) / messages * 1e6,
        "server_system_us_per_msg": (us1[1] - us0[1]) / messages * 1e6,
        "server_cpu_pct": (s1 - s0) / elapsed * 100,
        "client_cpu_pct": (c1 - c0) / elapsed * 100,
        "other_server_cpu_pct": max(0.0, server_busy - (s1 - s0)) / elapsed * 100,
        "other_client_cpu_pct": max(0.0, client_busy - (c1 - c0)) / elapsed * 100,
        "min_per_conn": min(per),
        "max_per_conn": max(per),
        "extension": clients[0].extension,
        "compressed_pct": 100.0
        * sum(c.compressed_replies for c in clients)
        / max(1, sum(c.received for c in clients)),
        "close_codes": ",".join(codes),
        "total_messages": sum(c.received for c in clients),
    }


def _client_loop_runner() -> Callable[[Any], Any]:
    try:
        import uvloop

        return uvloop.run  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run


def worker(spec: dict[str, Any]) -> int:
    """One cell: start the server, run the client against it."""
    impl = spec["impl"]
    reason = not_built(impl)
    if reason is not None:
        emit_result({"na": reason})
        return 0
    server_cpu, client_cpu = _cpus()
    profile_path = spec.get("profile")
    server = ServerProcess(
        {
            "impl": impl,
            "deflate": spec["deflate"],
            "cpu": server_cpu,
            **({"profile": profile_path} if profile_path else {}),
        }
    )
    try:
        server.wait_listening()
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        result = _client_loop_runner()(
            run_client(server.port, spec, server, (server_cpu, client_cpu))
        )
        alive = server.proc.poll() is None
    except BaseException:
        stderr = server.close()
        if stderr:
            sys.stderr.write(f"server stderr:\n{stderr}\n")
        raise
    stderr = server.close_and_wait(30) if profile_path else server.close()
    if not alive:
        raise RuntimeError(f"the server died during the run: {stderr[-500:]}")
    result.update(
        connections=spec["conns"],
        window=spec["window"],
        server_stderr=stderr[-500:],
        pinned=server_cpu is not None,
    )
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------

MSGS = Metric("msgs_per_s", "messages per second", "messages/s", True, 0)
CPU_KEY = "server_cpu_us_per_msg"


def size_label(size: int) -> str:
    kind = "text" if size <= TEXT_LIMIT else "binary"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB {kind}"
    return f"{size} B {kind}"


def make_cases(
    quick: bool,
    duration: float | None,
    warmup: float | None,
    conns_list: list[int],
    sizes: list[int],
    deflates: list[bool],
    window: int | None,
) -> list[Case]:
    q = 1 if quick else 0
    duration = DURATION_SECONDS[q] if duration is None else duration
    warmup = WARMUP_SECONDS[q] if warmup is None else warmup
    cases = []
    for deflate in deflates:
        for size in sizes:
            for conns in conns_list:
                w = window or WINDOW.get(size, 2)
                params = {
                    "duration": duration,
                    "warmup": warmup,
                    "conns": conns,
                    "size": size,
                    "deflate": deflate,
                    "window": w,
                }
                label = f"{size_label(size)}, C={conns}" + (
                    ", permessage-deflate" if deflate else ""
                )
                timeout = warmup + duration + 90
                cases.append(Case("echo", label, params, [MSGS], timeout, None, BASELINE))
    return cases


def clean_values(cells: Cells, impl: str, key: str) -> list[float]:
    return [r[key] for r in cells.get(impl, []) if key in r]


def clean_median(cells: Cells, impl: str, key: str) -> float | None:
    values = clean_values(cells, impl, key)
    return statistics.median(values) if values else None


def _status_cell(results: list[dict[str, Any]]) -> str | None:
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return f"FAILED ({len(errors)}/{len(results)}): {errors[0]}"
    na = [r["na"] for r in results if "na" in r]
    if na:
        return f"n/a ({na[0]})"
    return None


def _apostrophe(name: str) -> str:
    return "'" if name.endswith("s") else "'s"


def render_table(case: Case, impls: list[str], cells: Cells) -> list[str]:
    """Median messages/s, min-max, the ratios to Tornado and to websockets,
    the server's CPU µs per message, and Tornado's and websockets' CPU per
    message divided by it (how many times cheaper a message is here)."""
    bases = [(b, clean_median(cells, b, "msgs_per_s")) for b in (BASELINE, SECOND_BASELINE)]
    cpu_bases = [(b, clean_median(cells, b, CPU_KEY)) for b in (BASELINE, SECOND_BASELINE)]
    header = (
        "| implementation | median messages/s | min - max | "
        + " | ".join(f"vs {b}" for b, _ in bases)
        + " | server CPU µs/message | CPU per message, "
        + " / ".join(f"{b}{_apostrophe(b)} ÷ this" for b, _ in cpu_bases)
        + " |"
    )
    align = "|---|---:|---:|" + "---:|" * (len(bases) + 2)
    empty = " |" * (len(bases) + 2)
    rows = []
    for impl in impls:
        results = cells.get(impl, [])
        status = _status_cell(results)
        values = clean_values(cells, impl, "msgs_per_s")
        if status is not None:
            rows.append(f"| {impl} | {status} | |{empty}")
        elif values:
            med = statistics.median(values)
            spread = f"{fmt(min(values), 0)} - {fmt(max(values), 0)}"
            ratios = " | ".join("—" if not base else f"{med / base:.2f}x" for _, base in bases)
            us = clean_median(cells, impl, CPU_KEY) or 0.0
            cpu_ratios = " / ".join(
                f"{base / us:.2f}x" if base and us else "—" for _, base in cpu_bases
            )
            rows.append(
                f"| {impl} | {fmt(med, 0)} | {spread} | {ratios} | {fmt(us, 1)} | {cpu_ratios} |"
            )
        else:
            rows.append(f"| {impl} | no result | |{empty}")
    title = f"**{case.label}: messages per second** (higher is better; n = {runs(cells)} runs)"
    return [title, "", header, align, *rows, ""]


def _median_of(cells: Cells, impl: str, key: str) -> float | None:
    values = [r[key] for r in cells.get(impl, []) if r.get(key) is not None]
    return statistics.median(values) if values else None


def notes(case: Case, cells: Cells, impls: list[str]) -> list[str]:
    """Below a table: CPU of server and client, other processes, the spread
    between connections, what deflate the servers answered, their stderr."""
    cpu, split, other, spread, ext, said = [], [], [], [], [], []
    for impl in impls:
        user = _median_of(cells, impl, "server_user_us_per_msg")
        system = _median_of(cells, impl, "server_system_us_per_msg")
        if user is not None and system is not None:
            split.append(f"{impl} {user:.1f} + {system:.1f}")
        s = _median_of(cells, impl, "server_cpu_pct")
        c = _median_of(cells, impl, "client_cpu_pct")
        if s is not None and c is not None:
            cpu.append(f"{impl} {s:.0f} / {c:.0f}")
        os_ = _median_of(cells, impl, "other_server_cpu_pct")
        oc = _median_of(cells, impl, "other_client_cpu_pct")
        if os_ is not None and oc is not None and max(os_, oc) >= 5:
            other.append(f"{impl} {os_:.0f} / {oc:.0f}")
        lo = _median_of(cells, impl, "min_per_conn")
        hi = _median_of(cells, impl, "max_per_conn")
        if case.params["conns"] > 1 and lo is not None and hi is not None:
            spread.append(f"{impl} {lo:,.0f} - {hi:,.0f}")
        if case.params["deflate"]:
            results = [r for r in cells.get(impl, []) if "extension" in r]
            if results:
                r = results[0]
                answer = r["extension"] or "(none: not compressed)"
                ext.append(f"{impl} `{answer}` ({r['compressed_pct']:.0f}% of echoes compressed)")
        stderr = [r["server_stderr"] for r in cells.get(impl, []) if r.get("server_stderr")]
        if stderr:
            said.append(f"{impl} ({len(stderr)} runs): `{stderr[0].splitlines()[-1][:160]}`")
    out = []
    if cpu:
        out.append(
            "CPU over the timed window, server / client, % of one core (medians): "
            + "; ".join(cpu)
            + "."
        )
    if split:
        out.append(
            "Server CPU per message, user + system µs (medians; from /proc in clock ticks): "
            + "; ".join(split)
            + "."
        )
    if other:
        out.append(
            "Other processes on the server's / client's CPU meanwhile, % of one core "
            "(medians, shown where 5 or more): " + "; ".join(other) + "."
        )
    if spread:
        out.append(
            "Messages per connection in the window, fewest - most (medians): "
            + "; ".join(spread)
            + "."
        )
    if ext:
        out.append("The servers' permessage-deflate answers: " + "; ".join(ext) + ".")
    if said:
        out.append("The server wrote to stderr: " + "; ".join(said) + ".")
    return out


def summary(cases: list[Case], results: list[Cells], impls: list[str], key: str) -> list[str]:
    """Every case side by side: the medians of ``key`` with both ratios."""
    if len(cases) < 2:
        return []
    title = (
        "server CPU µs per message (lower is better; in brackets tornado's ÷ this / websockets' "
        "÷ this)"
        if key == CPU_KEY
        else "messages per second (higher is better; in brackets ratio to tornado / to websockets)"
    )
    out = [
        f"**All cases: {title}**",
        "",
        "| implementation | " + " | ".join(c.label for c in cases) + " |",
        "|---|" + "---:|" * len(cases),
    ]
    for impl in impls:
        row = []
        for cells in results:
            status = _status_cell(cells.get(impl, []))
            med = clean_median(cells, impl, key)
            if status is not None or med is None:
                row.append("FAILED" if status and status.startswith("FAILED") else status or "—")
                continue
            ratios = []
            for b in (BASELINE, SECOND_BASELINE):
                base = clean_median(cells, b, key)
                if not base or not med:
                    ratios.append("—")
                elif key == CPU_KEY:
                    ratios.append(f"{base / med:.2f}x")
                else:
                    ratios.append(f"{med / base:.2f}x")
            row.append(f"{fmt(med, 1 if key == CPU_KEY else 0)} ({' / '.join(ratios)})")
        out.append(f"| {impl} | " + " | ".join(row) + " |")
    return [*out, ""]


def issue_check(cases: list[Case], results: list[Cells]) -> list[str]:
    """The issue's bar, read off the 64 B / C = 100 cell without deflate:
    reactor on epoll at most half Tornado's CPU per message, and less than
    websockets'."""
    for case, cells in zip(cases, results, strict=True):
        p = case.params
        if p["size"] == 64 and p["conns"] == 100 and not p["deflate"]:
            ours = clean_median(cells, "reactor-epoll", CPU_KEY)
            tornado = clean_median(cells, BASELINE, CPU_KEY)
            ws = clean_median(cells, SECOND_BASELINE, CPU_KEY)
            if ours is None or tornado is None or ws is None:
                return [
                    "The issue's bar (64 B text, C=100, epoll): not measured in this run "
                    "(needs reactor-epoll, tornado and websockets).",
                    "",
                ]
            half = "yes" if ours <= tornado / 2 else "NO"
            less = "yes" if ours < ws else "NO"
            return [
                f"The issue's bar (64 B text, C=100): reactor-epoll {ours:.1f} µs per message, "
                f"Tornado {tornado:.1f} ({tornado / ours:.2f}x reactor's; at most half of "
                f"Tornado's: {half}), websockets {ws:.1f} (less than websockets': {less}).",
                "",
            ]
    return []


def _describe(result: dict[str, Any]) -> str:
    if "na" in result:
        return ""
    text = (
        f" ({result[CPU_KEY]:.1f} µs/message, server CPU {result['server_cpu_pct']:.0f}%,"
        f" client CPU {result['client_cpu_pct']:.0f}%, others on their CPUs"
        f" {result['other_server_cpu_pct']:.0f}% / {result['other_client_cpu_pct']:.0f}%"
    )
    if result.get("extension"):
        text += f", {result['compressed_pct']:.0f}% compressed"
    text += ")"
    if result.get("server_stderr"):
        text += f"; server stderr: {result['server_stderr'].splitlines()[-1][:200]}"
    return text


def versions_line() -> str:
    parts = [f"{d} {_version(d) or 'not installed'}" for d in ("websockets", "aiohttp")]
    try:
        import websockets.speedups  # noqa: F401

        parts[0] += " (with its C speedups)"
    except ImportError:
        parts[0] += " (without its C speedups)"
    return "- " + "; ".join(parts)


def report(
    *,
    command: str,
    started: datetime.datetime,
    elapsed: float,
    info: dict[str, str],
    repeat: int,
    skipped: dict[str, str],
    markdown: bool,
    cases: list[Case],
    results: list[Cells],
    impls: list[str],
) -> list[str]:
    server_cpu, client_cpu = _cpus()
    out = report_header(
        command=command,
        started=started,
        elapsed=elapsed,
        info=info,
        repeat=repeat,
        skipped=skipped,
        markdown=markdown,
        baseline=BASELINE,
    )
    p = cases[0].params if cases else {}
    windows = sorted({f"{size_label(c.params['size'])}: {c.params['window']}" for c in cases})
    out[-1:-1] = [
        versions_line(),
        f"- also ratio = median / median of {SECOND_BASELINE}; server CPU per message = the "
        "server's CPU time over the timed window (every thread of its process group) divided "
        "by the messages echoed in it",
        f"- client: this script's raw-socket client on uvloop; {p.get('warmup', 0)} s warm-up "
        f"then {p.get('duration', 0)} s timed, on 127.0.0.1; messages in flight per connection: "
        + ", ".join(windows)
        + "; "
        + (
            f"server pinned to CPU {server_cpu}, client to CPU {client_cpu}"
            if server_cpu is not None
            else "fewer than 2 CPUs: server and client not pinned"
        ),
    ]
    h = "#### " if markdown else ""
    out += issue_check(cases, results)
    for ci, case in enumerate(cases):
        out += [f"{h}{case.label}", ""]
        out += render_table(case, impls, results[ci])
        note = notes(case, results[ci], impls)
        if note:
            out += [" ".join(note), ""]
    if len(cases) > 1:
        out += [f"{h}Summary", ""]
        out += summary(cases, results, impls, CPU_KEY)
        out += summary(cases, results, impls, "msgs_per_s")
    return out


def from_json(path: str, markdown: bool) -> int:
    """Print the report of a run saved with ``--json``, running nothing."""
    raw = json.loads(Path(path).read_text())
    cases = [
        Case(c["bench"], c["label"], c["params"], [MSGS], 0, None, BASELINE) for c in raw["cases"]
    ]
    results = [c["results"] for c in raw["cases"]]
    seen = {impl for cells in results for impl in cells}
    impls = [i for i in IMPLEMENTATIONS if i in seen] + sorted(seen - set(IMPLEMENTATIONS))
    out = report(
        command=raw["command"],
        started=datetime.datetime.fromisoformat(raw["date"]),
        elapsed=float(raw["machine"].get("elapsed_s", 0.0)),
        info=raw["machine"],
        repeat=raw["repeat"],
        skipped=raw["skipped"],
        markdown=markdown,
        cases=cases,
        results=results,
        impls=impls,
    )
    print("\n".join(out))
    return 0


def profile(impl: str, quick: bool, duration: float | None, top: int) -> int:
    """The 64 B text / C = 100 cell with the server under cProfile: its
    functions by own time and by cumulative time, in µs per message."""
    reason = _unavailable(impl) or not_built(impl)
    if reason is not None:
        progress(f"cannot profile {impl}: {reason}")
        return 1
    seconds = duration if duration is not None else (1.0 if quick else PROFILE_SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "server.prof")
        spec = {
            "impl": impl,
            "bench": "echo",
            "conns": 100,
            "size": 64,
            "deflate": False,
            "window": WINDOW[64],
            "warmup": 0.2,
            "duration": seconds,
            "profile": path,
        }
        case = Case(
            "echo",
            "profile",
            {k: v for k, v in spec.items() if k not in ("impl", "bench")},
            [MSGS],
            seconds + 120,
        )
        result = bench_http_run_one(case, impl)
        if "error" in result:
            progress(f"the profiled run failed: {result['error']}")
            progress(result.get("stderr", ""))
            return 1
        if not os.path.exists(path):
            progress("the server wrote no profile")
            return 1
        messages = result["total_messages"]
        stats = pstats.Stats(path)
    print(
        f"cProfile of the {impl} server, 64 B text echo over 100 connections, window "
        f"{WINDOW[64]}, {seconds:g} s timed: {messages:,} messages echoed in all "
        "(the profile covers every one of them, the handshakes and the closes too); "
        f"the server's CPU in the timed window, profiled: {result[CPU_KEY]:.1f} µs per "
        "message (cProfile slows every Python call: read the shares and the ranks)."
    )
    for sort, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        print(f"\n**Top {top} by {title}** (µs per message; calls per message)\n")
        print("| function | calls/message | own µs/message | cumulative µs/message |")
        print("|---|---:|---:|---:|")
        entries = sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda kv: kv[1][2] if sort == "tottime" else kv[1][3],
            reverse=True,
        )
        for (filename, line, name), (_cc, nc, tt, ct, _callers) in entries[:top]:
            where = f"{_short(filename)}:{line}({name})"
            print(
                f"| `{where}` | {nc / messages:.2f} | {tt / messages * 1e6:.2f} | "
                f"{ct / messages * 1e6:.2f} |"
            )
    return 0


def _short(filename: str) -> str:
    """A profile entry's file, shorter: relative to the checkout or to site-packages."""
    root = str(Path(__file__).resolve().parent.parent) + os.sep
    if filename.startswith(root):
        return filename[len(root) :]
    if "site-packages" + os.sep in filename:
        return filename.split("site-packages" + os.sep, 1)[1]
    stdlib = sysconfig.get_paths()["stdlib"] + os.sep
    if filename.startswith(stdlib):
        return filename[len(stdlib) :]
    return filename


def bench_http_run_one(case: Case, impl: str) -> dict[str, Any]:
    from _common import run_one

    return run_one(__file__, impl, case, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="WebSocket echo benchmarks: reactor's WebSocketHandler on every backend vs "
        "Tornado 6.6, websockets and aiohttp (messages/s and server CPU µs per message; "
        "1 and 100 connections, 64 B text and 64 KiB binary, with and without "
        "permessage-deflate).",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), BENCHES)
    parser.set_defaults(repeat=DEFAULT_REPEAT)
    for action in parser._actions:
        if action.dest == "repeat":
            action.help = f"run the whole set R times and report medians (default {DEFAULT_REPEAT})"
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help=f"timed seconds per cell (default {DURATION_SECONDS[0]:g}, "
        f"with --quick {DURATION_SECONDS[1]:g})",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        metavar="S",
        help=f"warm-up seconds per cell (default {WARMUP_SECONDS[0]:g}, "
        f"with --quick {WARMUP_SECONDS[1]:g})",
    )
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=list(CONNECTIONS),
        metavar="C",
        help="connections per cell (default: 1 100)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(SIZES),
        metavar="BYTES",
        help=f"message sizes (default: 64 65536; up to {TEXT_LIMIT} bytes: text, else binary)",
    )
    parser.add_argument(
        "--deflate",
        choices=("off", "on", "both"),
        default="both",
        help="cells without permessage-deflate, with it, or both (default)",
    )
    parser.add_argument(
        "--window",
        type=int,
        metavar="W",
        help="messages in flight per connection (default: 8 for 64 B, 2 for 64 KiB)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the tables: the 64 B text / C=100 cell with the server under cProfile",
    )
    parser.add_argument(
        "--profile-impl",
        default=PROFILE_IMPL,
        choices=[i for i in IMPLEMENTATIONS if i.startswith("reactor-") or i == "tornado"],
        help=f"the server --profile profiles (default {PROFILE_IMPL})",
    )
    parser.add_argument(
        "--top", type=int, default=30, help="functions --profile lists (default 30)"
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="print the report of a run saved with --json, running nothing",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.from_json:
        return from_json(args.from_json, args.markdown)
    if args.serve:
        return serve(json.loads(args.serve))
    if args.worker:
        return worker(json.loads(args.worker))
    if args.profile:
        return profile(args.profile_impl, args.quick, args.duration, args.top)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if (args.duration is not None and args.duration <= 0) or (
        args.warmup is not None and args.warmup < 0
    ):
        parser.error("--duration must be above 0 s and --warmup at least 0 s")
    if any(c < 1 for c in args.connections) or any(s < 16 for s in args.sizes):
        parser.error("--connections must be at least 1 and --sizes at least 16 bytes")
    if args.window is not None and args.window < 1:
        parser.error("--window must be at least 1")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), _unavailable)
    deflates = {"off": [False], "on": [True], "both": [False, True]}[args.deflate]
    cases = make_cases(
        args.quick, args.duration, args.warmup, args.connections, args.sizes, deflates, args.window
    )
    command = "python benchmarks/bench_websocket.py " + " ".join(argv or sys.argv[1:])

    run = drive(__file__, args, cases, impls, skipped, describe=_describe)
    out = report(
        command=command,
        started=run.started,
        elapsed=run.elapsed,
        info=run.info,
        repeat=args.repeat,
        skipped=skipped,
        markdown=args.markdown,
        cases=run.cases,
        results=run.results,
        impls=run.impls,
    )
    print("\n".join(out))
    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
