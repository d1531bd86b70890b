"""reactor.iostream on every backend: real sockets on loopback, real TLS, real pipes.

Each test takes ``io_loop``, so it runs once per backend. Peers are either
plain blocking sockets with a timeout (to control exactly what goes on the
wire: partial packets, shutdown, resets) or streams of their own (when the
peer must keep up with a large transfer). To know that a stream has read a
packet before sending the next one, a test waits until the kernel holds no
unread bytes for it (FIONREAD), instead of sleeping.
"""

from __future__ import annotations

import array
import errno
import fcntl
import logging
import os
import random
import re
import socket
import ssl
import struct
import termios
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor import gen, iostream
from reactor.concurrent import Future
from reactor.ioloop import IOLoop
from reactor.iostream import (
    IOStream,
    PipeIOStream,
    SSLIOStream,
    StreamBufferFullError,
    StreamClosedError,
    UnsatisfiableReadError,
)
from reactor.testing import ExpectLog, bind_unused_port
from tests.conformance.conftest import TLSCertificate
from tests.util import WAIT

_T = TypeVar("_T")
Cleanup = Callable[[_T], _T]

SMALL_BUFFER = 64 * 1024
"""SO_SNDBUF/SO_RCVBUF for tests that need the kernel's buffers to fill up."""
BIG = 8 * 1024 * 1024
"""Far more than both small buffers hold, so a write of it has to wait."""


def _ipv6_unavailable() -> str | None:
    if not socket.has_ipv6:
        return "Python was built without IPv6 support"
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as e:
        return f"this machine has no IPv6 loopback (binding ::1 failed: {e})"
    return None


LOOPBACKS = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param(
        "::1",
        id="ipv6",
        marks=pytest.mark.skipif(_ipv6_unavailable() is not None, reason=str(_ipv6_unavailable())),
    ),
]


def random_bytes(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def unread(sock: socket.socket) -> int:
    """Bytes the kernel holds for ``sock`` that nobody has read yet."""
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


async def consumed(stream: IOStream) -> None:
    """Wait until ``stream`` (which has a read pending) has read all the kernel holds."""
    while unread(stream.socket):
        await gen.moment


def connected_sockets(
    cleanup: Cleanup[Any], host: str = "127.0.0.1", small_buffers: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair ``(a, b)`` on loopback; both are closed at the end."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        if small_buffers:  # inherited by the accepted socket
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        listener.bind((host, 0))
        listener.listen(1)
        a = cleanup(socket.socket(family))
        if small_buffers:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        a.connect(listener.getsockname()[:2])
        listener.settimeout(WAIT)
        b = cleanup(listener.accept()[0])
    return a, b


def stream_and_peer(
    cleanup: Cleanup[Any], small_buffers: bool = False, **kwargs: Any
) -> tuple[IOStream, socket.socket]:
    """An IOStream and the plain socket at the other end (blocking, with a timeout)."""
    a, b = connected_sockets(cleanup, small_buffers=small_buffers)
    b.settimeout(WAIT)
    return cleanup(IOStream(a, **kwargs)), b


def stream_pair(
    cleanup: Cleanup[Any], host: str = "127.0.0.1", small_buffers: bool = False
) -> tuple[IOStream, IOStream]:
    a, b = connected_sockets(cleanup, host, small_buffers)
    return cleanup(IOStream(a)), cleanup(IOStream(b))


def recv_until_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- reading -------------------------------------------------------------------------


async def test_read_bytes_partial_and_exact(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"hello")
    assert await stream.read_bytes(100, partial=True) == b"hello"
    peer.sendall(b"abcdef")
    assert await stream.read_bytes(3) == b"abc"
    done = stream.read_bytes(100, partial=True)
    assert done.done()  # the rest was buffered: no loop iteration needed
    assert await done == b"def"
    assert await stream.read_bytes(0) == b""

    waiting = stream.read_bytes(4)
    assert stream.reading()
    peer.sendall(b"12")
    await consumed(stream)
    assert not waiting.done()
    peer.sendall(b"345")
    assert await waiting == b"1234"
    assert not stream.reading()
    assert await stream.read_bytes(1) == b"5"


async def test_delimiter_split_across_packets(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    head = stream.read_until(b"\r\n\r\n")
    # The four-byte delimiter arrives in three packets.
    for packet in (b"GET / HTTP/1.1\r", b"\nHost: x\r", b"\n\r"):
        peer.sendall(packet)
        await consumed(stream)
        assert not head.done()
    peer.sendall(b"\nBODY")
    assert await head == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert await stream.read_bytes(4) == b"BODY"

    peer.sendall(b"one\ntwo\nthr")
    assert await stream.read_until(b"\n") == b"one\n"
    assert await stream.read_until(b"\n") == b"two\n"
    last = stream.read_until(b"\n")
    await consumed(stream)
    assert not last.done()
    peer.sendall(b"ee\n")
    assert await last == b"three\n"


async def test_read_until_regex(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"abc 123 xyz")
    assert await stream.read_until_regex(rb"\d+ ") == b"abc 123 "
    end_of_headers = stream.read_until_regex(re.compile(rb"\r?\n\r?\n"))
    peer.sendall(b"\r\n")
    await consumed(stream)
    assert not end_of_headers.done()
    peer.sendall(b"\n+rest")
    assert await end_of_headers == b"xyz\r\n\n"
    # The regex sees the unread data only: ^ is where it starts.
    assert await stream.read_until_regex(rb"^\+") == b"+"
    assert await stream.read_bytes(4) == b"rest"


async def test_read_until_max_bytes(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"123456789\n")
    # The delimiter may end exactly at max_bytes.
    assert await stream.read_until(b"\n", max_bytes=10) == b"123456789\n"
    too_far = stream.read_until(b"\n", max_bytes=10)
    peer.sendall(b"12345")
    await consumed(stream)
    assert not too_far.done()
    with ExpectLog(
        "reactor.general", "Unsatisfiable read, closing connection: .*10 bytes", level=logging.INFO
    ):
        peer.sendall(b"67890\n")  # the delimiter would end at byte 11
        # As in Tornado: the read fails as the stream closes, with the reason.
        with pytest.raises(StreamClosedError) as unsatisfiable:
            await too_far
    assert stream.closed()
    assert isinstance(stream.error, UnsatisfiableReadError)
    assert unsatisfiable.value.real_error is stream.error
    assert "not found within 10 bytes" in str(stream.error)
    with pytest.raises(StreamClosedError) as closed:
        stream.write(b"x")
    assert closed.value.real_error is stream.error


async def test_read_until_max_bytes_with_the_delimiter_in_the_buffer(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    closed: Future[None] = Future()
    stream.set_close_callback(lambda: closed.set_result(None))
    peer.sendall(b"a" * 20 + b"\n")
    with (
        ExpectLog("reactor.general", "Unsatisfiable read", level=logging.INFO),
        pytest.raises(StreamClosedError) as failed,
    ):
        await stream.read_until(b"\n", max_bytes=10)
    assert isinstance(failed.value.real_error, UnsatisfiableReadError)
    assert stream.closed()
    await closed  # the close callback runs
    assert peer.recv(100) == b""  # and the fd is closed

    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"ok\n" + b"a" * 20 + b"\n")
    assert await stream.read_until(b"\n") == b"ok\n"
    with ExpectLog("reactor.general", "Unsatisfiable read", level=logging.INFO):
        reading = stream.read_until(b"\n", max_bytes=10)  # from the buffer, at once
    assert reading.done()
    with pytest.raises(StreamClosedError) as failed:
        reading.result()
    assert isinstance(failed.value.real_error, UnsatisfiableReadError)
    assert stream.closed()


async def test_read_until_regex_max_bytes(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"x" * 50)
    with (
        ExpectLog("reactor.general", "Unsatisfiable read", level=logging.INFO),
        pytest.raises(StreamClosedError) as failed,
    ):
        await stream.read_until_regex(rb"\r?\n", max_bytes=20)
    assert isinstance(failed.value.real_error, UnsatisfiableReadError)
    assert "not matched within 20 bytes" in str(failed.value.real_error)
    assert stream.closed()


async def test_max_buffer_size_fails_a_read_that_needs_more(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup, max_buffer_size=1024)
    peer.sendall(b"x" * 4096)
    with pytest.raises(StreamBufferFullError, match="max_buffer_size"):
        await stream.read_until(b"\n")
    assert stream.closed()
    assert isinstance(stream.error, StreamBufferFullError)


async def test_max_buffer_size_read_bytes_and_read_until_close(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, _ = stream_and_peer(cleanup, max_buffer_size=1024)
    with pytest.raises(StreamBufferFullError, match=r"read_bytes\(2048\)"):
        await stream.read_bytes(2048)
    assert stream.closed()

    stream, peer = stream_and_peer(cleanup, max_buffer_size=1024)
    peer.sendall(b"y" * 4096)
    peer.close()
    with pytest.raises(StreamBufferFullError):
        await stream.read_until_close()
    assert stream.closed()


async def test_unrequested_data_beyond_max_buffer_size_waits(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    """Only a read that needs too much fails; data nobody asked for yet
    is left in the kernel (flow control), not counted against the stream."""
    stream, peer = stream_and_peer(cleanup, max_buffer_size=1024)
    stream.set_close_callback(lambda: None)  # watch the fd while idle
    data = random_bytes(8192)
    peer.sendall(data)
    for _ in range(5):
        await gen.moment
    got = [await stream.read_bytes(1024) for _ in range(8)]
    assert b"".join(got) == data
    assert not stream.closed()


async def test_read_into(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"head\n0123456789")
    assert await stream.read_until(b"\n") == b"head\n"  # the rest is buffered
    buf = bytearray(4)
    assert await stream.read_into(buf) == 4
    assert buf == b"0123"
    buf = bytearray(10)
    filling = stream.read_into(buf)  # six bytes are buffered, four must come
    await consumed(stream)
    assert not filling.done()
    peer.sendall(b"abcd")
    assert await filling == 10
    assert buf == b"456789abcd"

    buf = bytearray(100)
    peer.sendall(b"xyz")
    assert await stream.read_into(buf, partial=True) == 3
    assert buf[:3] == b"xyz"

    shorts = array.array("h", [0, 0])
    peer.sendall(struct.pack("=hh", 7, -2))
    assert await stream.read_into(memoryview(shorts)) == 4
    assert list(shorts) == [7, -2]
    with pytest.raises(TypeError, match="writable"):
        stream.read_into(memoryview(b"read-only"))


async def test_large_buffered_reads_in_pieces(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    """Much more data buffered than one read takes: consumed through the
    offset, compacted as it goes, nothing lost or reordered."""
    ours, theirs = stream_pair(cleanup)
    body = random_bytes(1000).replace(b"\n", b" ")
    lines = [b"%06d:" % i + body[: 990 + i % 11] + b"\n" for i in range(400)]
    first_half, second_half = b"".join(lines[:200]), b"".join(lines[200:])
    sending = theirs.write(first_half + b"<HALF>" + second_half)
    assert await ours.read_until(b"<HALF>") == first_half + b"<HALF>"
    got = [await ours.read_until(b"\n") for _ in range(150)]
    got.append(await ours.read_bytes(sum(map(len, lines[350:]))))
    assert b"".join(got) == second_half
    await sending


async def test_a_second_concurrent_read_raises(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    first = stream.read_bytes(1)
    with pytest.raises(RuntimeError, match="Already reading"):
        stream.read_until(b"\n")
    with pytest.raises(RuntimeError, match="Already reading"):
        stream.read_until_close()
    peer.sendall(b"xy")
    assert await first == b"x"
    assert await stream.read_bytes(1) == b"y"  # the next read may start now

    cancelled = stream.read_bytes(5)
    cancelled.cancel()
    peer.sendall(b"hello")
    # A cancelled read frees the stream, and its data stays for the next read.
    assert await stream.read_bytes(5) == b"hello"


# Each read: ("bytes", n, partial), ("until", delimiter), ("regex", pattern)
# or ("into", size, partial). The regexes match fixed-length text, so their
# first match does not depend on how much data has arrived.
_reads = st.lists(
    st.one_of(
        st.tuples(st.just("bytes"), st.integers(0, 40), st.booleans()),
        st.tuples(st.just("until"), st.sampled_from([b"\n", b"\r\n", b"--"])),
        st.tuples(st.just("regex"), st.sampled_from([rb"[ab]c", rb"\r\n\r\n"])),
        st.tuples(st.just("into"), st.integers(1, 40), st.booleans()),
    ),
    max_size=12,
)
_text = st.lists(st.sampled_from([b"a", b"b", b"c", b"-", b"\r", b"\n"]), max_size=400)


def _expected(read: tuple[Any, ...], rest: bytes) -> bytes | None:
    """What ``read`` returns from ``rest`` (all that is left), or None if it
    cannot complete before the end of input. Partial reads may return less."""
    kind = read[0]
    if kind in ("bytes", "into"):
        n, partial = read[1], read[2]
        if partial and rest:
            return rest[:n]
        return rest[:n] if len(rest) >= n else None
    if kind == "until":
        i = rest.find(read[1])
        return None if i < 0 else rest[: i + len(read[1])]
    match = re.search(read[1], rest)
    return None if match is None else rest[: match.end()]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_text,
    cuts=st.lists(st.integers(1, 50), max_size=20),
    pauses=st.lists(st.integers(0, 2), max_size=20),
    reads=_reads,
    chunk=st.sampled_from([1, 3, 16, 4096]),
)
def test_any_fragmentation_gives_the_same_reads(
    reactor_backend: Any,
    text: list[bytes],
    cuts: list[int],
    pauses: list[int],
    reads: list[tuple[Any, ...]],
    chunk: int,
) -> None:
    """However the bytes are cut into packets and whatever reads consume
    them (with tiny read chunks, and compaction forced early), each read
    returns what the stream model says, in order, and at the end of input
    read_until_close returns exactly what is left."""
    data = b"".join(text)
    loop = IOLoop(backend=reactor_backend, make_current=True)  # type: ignore[call-arg]
    compact_after = iostream._COMPACT_AFTER
    iostream._COMPACT_AFTER = 8  # exercise compaction on small data
    a, b = socket.socketpair()
    try:
        stream = IOStream(a, read_chunk_size=chunk)

        async def send() -> None:
            sent = 0
            for i, cut in enumerate([*cuts, len(data)]):
                b.sendall(data[sent : sent + cut])
                sent += cut
                for _ in range(pauses[i] if i < len(pauses) else 0):
                    await gen.moment
                if sent >= len(data):
                    break
            b.close()

        async def receive() -> None:
            rest = data
            for read in reads:
                want = _expected(read, rest)
                try:
                    if read[0] == "bytes":
                        got = await stream.read_bytes(read[1], partial=read[2])
                    elif read[0] == "until":
                        got = await stream.read_until(read[1])
                    elif read[0] == "regex":
                        got = await stream.read_until_regex(read[1])
                    else:
                        buf = bytearray(read[1])
                        got = bytes(buf[: await stream.read_into(buf, partial=read[2])])
                except StreamClosedError:
                    assert want is None, f"{read} failed, expected {want!r}"
                    break
                assert want is not None, f"{read} returned {got!r}, expected a failure"
                if read[0] in ("bytes", "into") and read[2] and read[1]:
                    assert got and want.startswith(got)  # a partial read: some of it
                else:
                    assert got == want
                rest = rest[len(got) :]
            assert await stream.read_until_close() == rest

        loop.run_sync(lambda: gen.multi([send(), receive()]), timeout=WAIT)
        stream.close()
    finally:
        iostream._COMPACT_AFTER = compact_after
        a.close()
        b.close()
        IOLoop.clear_current()
        loop.close(all_fds=True)


# -- writing ---------------------------------------------------------------------


async def test_write_larger_than_the_socket_buffers(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    writer, reader = stream_pair(cleanup, small_buffers=True)
    data = random_bytes(BIG)
    order: list[str] = []
    big = writer.write(data)
    tail = writer.write(b"tail")
    big.add_done_callback(lambda _: order.append("big"))
    tail.add_done_callback(lambda _: order.append("tail"))
    assert writer.writing()
    for _ in range(3):
        await gen.moment
    assert not big.done() and not tail.done()  # nobody reads: it cannot all be written

    assert await reader.read_bytes(BIG + 4) == data + b"tail"
    await tail
    assert big.done() and order == ["big", "tail"]
    assert not writer.writing()


async def test_writes_of_every_buffer_type_and_many_small_ones(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    writer, reader = stream_pair(cleanup, small_buffers=True)
    numbers = array.array("i", range(1000))
    expected = [b"bytes;", b"bytearray;", bytes(numbers), b"view"]
    writer.write(b"bytes;")
    writer.write(bytearray(b"bytearray;"))
    writer.write(memoryview(numbers))
    writer.write(memoryview(b"a view")[2:])
    # Queue small writes behind a big one: they are coalesced, in order.
    big = random_bytes(BIG // 4)
    writer.write(big)
    expected.append(big)
    smalls = [b"%05d," % i for i in range(5000)]
    futures = [writer.write(s) for s in smalls]
    expected += smalls
    futures.append(writer.write(b""))
    total = sum(map(len, expected))
    assert await reader.read_bytes(total) == b"".join(expected)
    await gen.multi(futures)


async def test_max_write_buffer_size(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    # Before connect() every write queues, so the limit is exact.
    listener, port = bind_unused_port()
    cleanup(listener)
    stream = cleanup(IOStream(socket.socket(), max_write_buffer_size=1000))
    first = stream.write(b"a" * 600)
    with pytest.raises(StreamBufferFullError, match="max_write_buffer_size"):
        stream.write(b"b" * 600)
    second = stream.write(b"c" * 400)  # exactly the limit
    await stream.connect(("127.0.0.1", port))
    listener.settimeout(WAIT)
    peer = cleanup(listener.accept()[0])
    peer.settimeout(WAIT)
    await gen.multi([first, second])
    stream.close()
    assert recv_until_eof(peer) == b"a" * 600 + b"c" * 400


async def test_max_write_buffer_size_on_a_full_socket(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    a, b = connected_sockets(cleanup, small_buffers=True)
    limit = 1024 * 1024
    writer = cleanup(IOStream(a, max_write_buffer_size=limit))
    reader = cleanup(IOStream(b))
    chunk = b"z" * 65536
    futures = []
    for _ in range(1000):  # the kernel's buffers fill, then ours, then it refuses
        try:
            futures.append(writer.write(chunk))
        except StreamBufferFullError:
            break
    else:
        pytest.fail("max_write_buffer_size never refused a write")
    assert writer.writing() and not writer.closed()
    assert await reader.read_bytes(len(futures) * len(chunk)) == chunk * len(futures)
    await gen.multi(futures)
    await writer.write(b"still usable")
    assert await reader.read_bytes(12) == b"still usable"


# -- connecting ------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_connect_and_echo(io_loop: IOLoop, cleanup: Cleanup[Any], host: str) -> None:
    listener, port = bind_unused_port(address=host)
    cleanup(listener)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    client = cleanup(IOStream(socket.socket(family)))
    connecting = client.connect((host, port))
    early = client.write(b"early\n")  # waits for the connection
    reply = client.read_until(b"\n")
    assert await connecting is client
    listener.settimeout(WAIT)
    server = cleanup(IOStream(listener.accept()[0]))
    assert await server.read_until(b"\n") == b"early\n"
    await early
    server.set_nodelay(True)
    assert server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    await server.write(b"pong\n")
    assert await reply == b"pong\n"
    with pytest.raises(RuntimeError, match="already connected"):
        client.connect((host, port))


async def test_connect_refused(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    with socket.socket() as probe:  # a port just freed refuses connections
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stream = cleanup(IOStream(socket.socket()))
    write = stream.write(b"never sent")
    with pytest.raises(StreamClosedError) as refused:
        await stream.connect(("127.0.0.1", port))
    assert isinstance(refused.value.real_error, ConnectionRefusedError)
    assert stream.closed() and stream.error is refused.value.real_error
    with pytest.raises(StreamClosedError):
        await write


# -- closing ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["idle", "reading", "writing"])
@pytest.mark.parametrize("side", ["local", "peer"])
async def test_close_at_every_stage(
    io_loop: IOLoop, cleanup: Cleanup[Any], side: str, stage: str
) -> None:
    stream, peer = stream_and_peer(cleanup, small_buffers=True)
    closed: Future[None] = Future()
    stream.set_close_callback(lambda: closed.set_result(None))
    pending: Future[Any] | None = None
    if stage == "reading":
        pending = stream.read_bytes(10)
    elif stage == "writing":
        pending = stream.write(random_bytes(BIG))
        assert stream.writing()
    if side == "local":
        stream.close()
    else:
        peer.close()  # with our unread data in its buffer, that is a reset
    await closed
    assert stream.closed()
    if pending is not None:
        with pytest.raises(StreamClosedError) as failed:
            await pending
        if side == "peer" and stage == "writing":
            assert isinstance(failed.value.real_error, (ConnectionResetError, BrokenPipeError))
        else:
            assert failed.value.real_error is None
    with pytest.raises(StreamClosedError):
        stream.write(b"x")
    with pytest.raises(StreamClosedError):
        stream.read_bytes(1)
    if side == "local" and stage != "writing":
        assert peer.recv(1) == b""  # the peer sees our FIN


async def test_local_close_resolves_read_until_close(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    reading = stream.read_until_close()
    peer.sendall(b"so far")
    await consumed(stream)
    stream.close()
    assert await reading == b"so far"


async def test_peer_reset_mid_write(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup, small_buffers=True)
    writing = stream.write(random_bytes(BIG))
    await gen.moment
    assert not writing.done()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # SO_LINGER 0: an RST, not a FIN
    with pytest.raises(StreamClosedError) as reset:
        await writing
    assert isinstance(reset.value.real_error, (ConnectionResetError, BrokenPipeError))
    assert stream.closed() and stream.error is reset.value.real_error


async def test_set_close_callback_runs_once(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    calls: list[str] = []
    first: Future[None] = Future()

    def on_close() -> None:
        calls.append("close")
        first.set_result(None)

    stream.set_close_callback(on_close)
    peer.close()
    await first
    stream.close()
    stream.close()
    for _ in range(3):
        await gen.moment
    assert calls == ["close"]
    # Set after the close, a callback still runs (once).
    late: Future[None] = Future()
    stream.set_close_callback(lambda: late.set_result(None))
    await late


@pytest.mark.parametrize("peer_closes", ["shutdown", "close"])
@pytest.mark.parametrize("when", ["before", "after"])
async def test_read_until_close_closes_the_stream(
    io_loop: IOLoop, cleanup: Cleanup[Any], peer_closes: str, when: str
) -> None:
    """As in Tornado, the end of input closes the stream: closed() is True,
    the close callback runs, and the fd is closed (no CLOSE_WAIT socket is
    left behind), whether the peer only shut down its side or closed, and
    whether the read was waiting before the data and the FIN or after."""
    stream, peer = stream_and_peer(cleanup)
    reading = stream.read_until_close() if when == "before" else None
    peer.sendall(b"request body")
    if peer_closes == "shutdown":
        peer.shutdown(socket.SHUT_WR)
    else:
        peer.close()
    if reading is None:
        reading = stream.read_until_close()  # the data and the FIN are there
    assert await reading == b"request body"
    assert stream.closed()
    closed: Future[None] = Future()
    stream.set_close_callback(lambda: closed.set_result(None))  # runs: closed
    await closed
    assert stream.socket.fileno() == -1
    if peer_closes == "shutdown":
        assert peer.recv(1) == b""  # our FIN
    with pytest.raises(StreamClosedError):
        stream.write(b"too late")


@pytest.mark.parametrize("error", [None, "reset", "protocol"])
async def test_read_until_close_is_not_a_truncated_success_after_an_error(
    io_loop: IOLoop, cleanup: Cleanup[Any], error: str | None
) -> None:
    """A clean close, or a reset (a peer that closes with data unread resets
    the connection), delivers what was buffered; a close for any other
    error fails the read, so a cut-short body never looks complete (as in
    Tornado 6.6)."""
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"half a body")
    assert await stream.read_bytes(2) == b"ha"  # the recv buffered the rest
    reading = stream.read_until_close()
    cause = {
        None: None,
        "reset": ConnectionResetError(errno.ECONNRESET, "reset"),
        "protocol": ValueError("bad framing"),
    }[error]
    stream.close(exc_info=cause or False)
    if cause is None or error == "reset":
        assert await reading == b"lf a body"
    else:
        with pytest.raises(StreamClosedError) as caught:
            await reading
        assert caught.value.real_error is cause


async def test_data_sent_just_before_close_is_read(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    # Small enough for the kernel to hold while nobody reads.
    stream, peer = stream_and_peer(cleanup)
    stream.set_close_callback(lambda: None)  # watching the fd while idle
    peer.sendall(b"last words")
    peer.close()
    assert await stream.read_bytes(10) == b"last words"
    with pytest.raises(StreamClosedError):
        await stream.read_bytes(1)

    # Larger than the kernel holds: the peer writes while we read.
    payload = random_bytes(3 * 1024 * 1024)
    for read in ("read_bytes", "read_until_close"):
        ours, theirs = stream_pair(cleanup)
        reading = ours.read_bytes(len(payload)) if read == "read_bytes" else ours.read_until_close()
        await theirs.write(payload)
        theirs.close()
        assert await reading == payload

    # Buffered data outlives the close and is still read afterwards.
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"kept:1234")
    peer.close()
    with pytest.raises(StreamClosedError):
        await stream.read_bytes(100)
    assert stream.closed()
    assert await stream.read_until(b":") == b"kept:"
    assert await stream.read_until_close() == b"1234"


# -- push-mode reading: start_reading / stop_reading -------------------------------


class Collector:
    """A start_reading callback: keeps what arrives; ``wait_for(n)`` until n bytes."""

    def __init__(self, io_loop: IOLoop) -> None:
        self.io_loop = io_loop
        self.pieces: list[bytes] = []
        self.types: set[type] = set()
        self.eof = Future[None]()
        self._waiter: tuple[int, Future[None]] | None = None

    def __call__(self, data: bytes | memoryview) -> None:
        self.types.add(type(data))
        if not data:
            self.eof.set_result(None)
            return
        self.pieces.append(bytes(data))  # a view is only valid during the call
        if self._waiter is not None and len(self.data) >= self._waiter[0]:
            self._waiter[1].set_result(None)
            self._waiter = None

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)

    async def wait_for(self, n: int) -> bytes:
        if len(self.data) < n:
            future = Future[None]()
            self._waiter = (n, future)
            await gen.with_timeout(self.io_loop.time() + WAIT, future)
        return self.data


async def test_start_reading_delivers_what_arrives(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    got = Collector(io_loop)
    stream.start_reading(got)
    peer.sendall(b"first")
    assert await got.wait_for(5) == b"first"
    payload = random_bytes(1024 * 1024)  # many reads' worth, all of it, in order
    peer.sendall(payload)
    assert await got.wait_for(5 + len(payload)) == b"first" + payload
    assert got.types == {bytes}


async def test_start_reading_hands_over_buffered_data_first(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    peer.sendall(b"line\nrest")
    assert await stream.read_until(b"\n") == b"line\n"
    await consumed(stream)  # "rest" is in the stream's buffer, not the kernel's
    got = Collector(io_loop)
    stream.start_reading(got)
    assert got.data == b"rest"  # within the call
    peer.sendall(b"+more")
    assert await got.wait_for(9) == b"rest+more"


async def test_start_reading_with_views(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    stream, peer = stream_and_peer(cleanup)
    got = Collector(io_loop)
    stream.start_reading(got, views=True)
    peer.sendall(b"viewed")
    assert await got.wait_for(6) == b"viewed"
    assert got.types == {memoryview}


async def test_start_reading_end_of_input_is_a_half_close(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    """b"" once at the peer's FIN; the stream stays open so a reply can go out."""
    stream, peer = stream_and_peer(cleanup)
    got = Collector(io_loop)
    stream.start_reading(got)
    peer.sendall(b"question")
    peer.shutdown(socket.SHUT_WR)
    await gen.with_timeout(io_loop.time() + WAIT, got.eof)
    assert got.data == b"question"
    assert not stream.closed()
    await stream.write(b"answer")
    stream.close()
    assert recv_until_eof(peer) == b"answer"


async def test_stop_reading_pauses_and_keeps_the_data(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    got = Collector(io_loop)
    stream.start_reading(got)
    peer.sendall(b"one")
    await got.wait_for(3)
    stream.stop_reading()
    peer.sendall(b"two")
    for _ in range(5):
        await gen.moment
    assert got.data == b"one"  # nothing delivered while stopped
    assert await stream.read_bytes(3) == b"two"  # back to read_*: nothing lost
    peer.sendall(b"three")
    stream.start_reading(got)
    assert await got.wait_for(8) == b"onethree"


async def test_start_reading_refuses_while_a_read_is_pending(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    pending = stream.read_bytes(1)
    with pytest.raises(RuntimeError, match="a read is pending"):
        stream.start_reading(Collector(io_loop))
    peer.sendall(b"x")
    assert await pending == b"x"


async def test_start_reading_callback_error_is_logged_and_closes(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    stream, peer = stream_and_peer(cleanup)
    closed = Future[None]()
    stream.set_close_callback(lambda: closed.set_result(None))

    def boom(data: bytes) -> None:
        raise ValueError("callback failed on purpose")

    stream.start_reading(boom)
    with ExpectLog("reactor.general", "Uncaught exception"):
        peer.sendall(b"x")
        await gen.with_timeout(io_loop.time() + WAIT, closed)
    assert isinstance(stream.error, ValueError)


# -- pipes -----------------------------------------------------------------------


async def test_pipe_stream_read_and_write(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    r, w = os.pipe()
    reader = cleanup(PipeIOStream(r))
    writer = cleanup(PipeIOStream(w))
    await writer.write(b"line one\nline two\n")
    assert await reader.read_until(b"\n") == b"line one\n"
    big = random_bytes(1024 * 1024)  # many times a pipe's capacity
    reading = reader.read_bytes(len(b"line two\n") + len(big))
    await writer.write(big)
    writer.close()
    assert await reading == b"line two\n" + big
    assert await reader.read_until_close() == b""
    assert reader.closed()  # a pipe's EOF closes it


async def test_pipe_writer_whose_reader_is_gone(io_loop: IOLoop, cleanup: Cleanup[Any]) -> None:
    r, w = os.pipe()
    writer = cleanup(PipeIOStream(w))
    os.close(r)
    with pytest.raises(StreamClosedError) as broken:
        await writer.write(b"nobody listens")
    assert isinstance(broken.value.real_error, BrokenPipeError)
    assert writer.closed()

    # Idle, with a close callback: poll and epoll report the reader's close
    # (ERROR) at once, the others at the next write; either way it is EPIPE.
    r, w = os.pipe()
    writer = cleanup(PipeIOStream(w))
    writer.set_close_callback(lambda: None)
    os.close(r)
    for _ in range(3):
        await gen.moment
    with pytest.raises(StreamClosedError) as broken:
        await writer.write(b"nobody listens")
    assert isinstance(broken.value.real_error, BrokenPipeError)


async def test_pipe_reader_notices_the_writer_closing(
    io_loop: IOLoop, cleanup: Cleanup[Any]
) -> None:
    r, w = os.pipe()
    reader = cleanup(PipeIOStream(r))
    closed: Future[None] = Future()
    reader.set_close_callback(lambda: closed.set_result(None))
    os.write(w, b"tail")
    os.close(w)
    await closed
    assert await reader.read_until_close() == b"tail"


# -- TLS -------------------------------------------------------------------------


async def tls_pair(
    cleanup: Cleanup[Any],
    certificate: TLSCertificate,
    server_hostname: str = "localhost",
    server_context: ssl.SSLContext | None = None,
) -> tuple[SSLIOStream, SSLIOStream, Future[SSLIOStream], Future[SSLIOStream]]:
    """A client and a server SSLIOStream and their handshake futures (not awaited)."""
    listener, port = bind_unused_port()
    with listener:
        client = cleanup(SSLIOStream(socket.socket(), ssl_options=certificate.client_context()))
        connecting = client.connect(("127.0.0.1", port), server_hostname=server_hostname)
        listener.settimeout(WAIT)
        conn = cleanup(listener.accept()[0])
    context = server_context or certificate.server_context()
    server = cleanup(
        SSLIOStream(context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False))
    )
    return client, server, connecting, server.wait_for_handshake()


async def test_tls_handshake_and_data(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    client, server, connecting, accepting = await tls_pair(cleanup, tls_certificate)
    early = server.read_until(b"\n")  # reads and writes wait for the handshake
    assert await gen.multi([connecting, accepting]) == [client, server]
    assert await client.wait_for_handshake() is client
    await client.write(b"hello over TLS\n")
    assert await early == b"hello over TLS\n"

    big = random_bytes(2 * 1024 * 1024)
    receiving = client.read_bytes(len(big))
    await server.write(big)
    assert await receiving == big

    # One TLS record, read a few bytes at a time: the rest waits inside the
    # SSL object, where the poller cannot see it.
    await server.write(bytes(range(100)))
    buf = bytearray(10)
    pieces = []
    for _ in range(10):
        assert await client.read_into(buf) == 10
        pieces.append(bytes(buf))
    assert b"".join(pieces) == bytes(range(100))

    server.close()
    with pytest.raises(StreamClosedError):
        await client.read_bytes(1)


async def test_tls_sni_is_seen_by_the_server(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    seen: list[str | None] = []
    context = tls_certificate.server_context()
    context.sni_callback = lambda sslobj, name, ctx: seen.append(name)
    _, _, connecting, accepting = await tls_pair(cleanup, tls_certificate, server_context=context)
    await gen.multi([connecting, accepting])
    assert seen == ["localhost"]


async def test_tls_hostname_mismatch_fails(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    client, _, connecting, accepting = await tls_pair(
        cleanup, tls_certificate, server_hostname="wrong.example"
    )
    pending_write = client.write(b"never sent")
    # As in Tornado, the handshake's futures fail with the ssl error itself...
    with pytest.raises(ssl.SSLCertVerificationError, match=r"wrong\.example") as mismatch:
        await connecting
    assert client.closed()
    assert client.error is mismatch.value
    with pytest.raises(ssl.SSLCertVerificationError):  # later, too
        await client.wait_for_handshake()
    # ...and the other operations with StreamClosedError, the ssl error inside.
    with pytest.raises(StreamClosedError) as closed:
        await pending_write
    assert closed.value.real_error is mismatch.value
    with pytest.raises(OSError):  # the server is refused, by an alert or EOF
        await accepting
    with pytest.raises(ValueError, match="server_hostname"):
        SSLIOStream(cleanup(socket.socket())).connect(("127.0.0.1", 1))


async def test_tls_client_against_a_plaintext_server(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    listener, port = bind_unused_port()
    cleanup(listener)
    client = cleanup(SSLIOStream(socket.socket(), ssl_options=tls_certificate.client_context()))
    connecting = client.connect(("127.0.0.1", port), server_hostname="localhost")
    pending_read = client.read_bytes(1)
    listener.settimeout(WAIT)
    plain = cleanup(listener.accept()[0])
    plain.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ssl.SSLError) as failed:
        await connecting
    with pytest.raises(StreamClosedError) as closed:
        await pending_read
    assert closed.value.real_error is failed.value


async def test_tls_server_against_a_plaintext_client(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    plain, conn = connected_sockets(cleanup)
    server = cleanup(
        SSLIOStream(
            tls_certificate.server_context().wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        )
    )
    plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    with pytest.raises(ssl.SSLError) as failed:
        await server.wait_for_handshake()
    assert server.closed() and server.error is failed.value


async def test_start_tls_handshake_failure_raises_the_ssl_error(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    client, server = stream_pair(cleanup)
    accepting = server.start_tls(True, ssl_options=tls_certificate.server_context())
    connecting = client.start_tls(
        False, ssl_options=tls_certificate.client_context(), server_hostname="wrong.example"
    )
    with pytest.raises(ssl.SSLCertVerificationError, match=r"wrong\.example"):
        await connecting
    with pytest.raises(OSError):
        await accepting


async def test_tls_handshake_cut_short_by_a_local_close(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    """No ssl error to report: the handshake fails with a plain StreamClosedError."""
    _, conn = connected_sockets(cleanup)
    server = cleanup(
        SSLIOStream(
            tls_certificate.server_context().wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        )
    )
    accepting = server.wait_for_handshake()
    server.close()
    with pytest.raises(StreamClosedError) as closed:
        await accepting
    assert closed.value.real_error is None


async def test_start_tls_on_both_sides(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    client, server = stream_pair(cleanup)
    await client.write(b"STARTTLS\r\n")
    assert await server.read_until(b"\r\n") == b"STARTTLS\r\n"
    await server.write(b"GO\r\n")
    assert await client.read_until(b"\r\n") == b"GO\r\n"

    busy = client.read_bytes(1)
    with pytest.raises(ValueError, match="not idle"):
        client.start_tls(False, server_hostname="localhost")
    busy.cancel()

    server_closed: Future[None] = Future()
    server.set_close_callback(lambda: server_closed.set_result(None))
    server_tls, client_tls = await gen.multi(
        [
            server.start_tls(
                True,
                ssl_options={
                    "certfile": str(tls_certificate.cert_file),
                    "keyfile": str(tls_certificate.key_file),
                },
            ),
            client.start_tls(
                False,
                ssl_options={"ca_certs": str(tls_certificate.ca_file)},
                server_hostname="localhost",
            ),
        ]
    )
    cleanup(server_tls)
    cleanup(client_tls)
    assert client.closed() and server.closed()  # the plain streams are done
    assert isinstance(client_tls, SSLIOStream) and isinstance(server_tls, SSLIOStream)
    await client_tls.write(b"secret\n")
    assert await server_tls.read_until(b"\n") == b"secret\n"
    await server_tls.write(b"ack\n")
    assert await client_tls.read_until(b"\n") == b"ack\n"
    # The close callback moved to the TLS stream.
    assert not server_closed.done()
    server_tls.close()
    await server_closed


async def test_start_tls_refuses_bad_ssl_options(
    io_loop: IOLoop, cleanup: Cleanup[Any], tls_certificate: TLSCertificate
) -> None:
    client, server = stream_pair(cleanup)
    with pytest.raises(ValueError, match="needs ssl_options with a certificate"):
        server.start_tls(True)
    with pytest.raises(ValueError, match="unknown ssl_options"):
        client.start_tls(False, ssl_options={"cafile": "x"}, server_hostname="localhost")
    with pytest.raises(ValueError, match="pass server_hostname"):
        client.start_tls(False, ssl_options=tls_certificate.client_context())
    # Refused before anything changed: the plain streams still work.
    await client.write(b"still plain\n")
    assert await server.read_until(b"\n") == b"still plain\n"
    # Without verification (cert_reqs=CERT_NONE) no hostname is needed.
    server_tls, client_tls = await gen.multi(
        [
            server.start_tls(True, ssl_options=tls_certificate.server_context()),
            client.start_tls(False, ssl_options={"cert_reqs": ssl.CERT_NONE}),
        ]
    )
    cleanup(server_tls)
    cleanup(client_tls)
    await client_tls.write(b"unverified\n")
    assert await server_tls.read_until(b"\n") == b"unverified\n"
