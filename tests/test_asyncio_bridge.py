"""The asyncio bridge over a loop someone else runs (asyncio.run)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from reactor import backends
from reactor.backends.loops.asyncioloop import AsyncioLoop
from reactor.ioloop import IOLoop

LOOP_FACTORIES = {"asyncio": asyncio.new_event_loop}
if backends.BACKENDS["uvloop"].unavailable_reason() is None:
    import uvloop

    LOOP_FACTORIES["uvloop"] = uvloop.new_event_loop


@pytest.mark.parametrize("name", sorted(LOOP_FACTORIES))
def test_current_inside_a_running_asyncio_loop_is_its_bridge(name: str) -> None:
    IOLoop.clear_current()
    aloop = LOOP_FACTORIES[name]()

    async def main() -> tuple[IOLoop, str]:
        loop = IOLoop.current()
        assert IOLoop.current() is loop  # one bridge per asyncio loop
        done = asyncio.get_running_loop().create_future()
        loop.add_callback(done.set_result, "via reactor")
        loop.call_later(0.001, lambda: None)
        return loop, await done

    try:
        loop, result = aloop.run_until_complete(main())
        assert isinstance(loop, AsyncioLoop) and loop.asyncio_loop is aloop
        assert loop.backend_name == name
        assert result == "via reactor"
        loop.close()
        assert not aloop.is_closed()  # the bridge does not own a loop it wraps
    finally:
        aloop.close()


@pytest.mark.parametrize("name", sorted(LOOP_FACTORIES))
def test_asyncio_task_awaits_a_reactor_future(name: str) -> None:
    from reactor.concurrent import Future

    loop = IOLoop(backend=name, make_current=False)

    async def main() -> str:
        f: Future[str] = Future()
        IOLoop.current().call_later(0.01, f.set_result, "awaited")
        return await f

    try:
        assert loop.run_sync(lambda: _as_task(loop, main())) == "awaited"
    finally:
        loop.close()


@pytest.mark.parametrize("name", sorted(LOOP_FACTORIES))
def test_bridges_of_finished_asyncio_loops_are_freed(name: str) -> None:
    """200 asyncio runs that each touch IOLoop.current(): once a run is
    over, nothing of reactor's keeps its asyncio loop or its bridge alive."""
    IOLoop.clear_current()
    refs: list[weakref.ref[Any]] = []

    async def main() -> None:
        bridge = IOLoop.current()
        assert IOLoop.current() is bridge
        refs.append(weakref.ref(bridge))
        refs.append(weakref.ref(asyncio.get_running_loop()))

    for _ in range(200):
        with asyncio.Runner(loop_factory=LOOP_FACTORIES[name]) as runner:
            runner.run(main())
    gc.collect()
    assert len(refs) == 400
    assert [ref() for ref in refs if ref() is not None] == []


def _as_task(loop: IOLoop, coro: Any) -> Any:
    """Run ``coro`` as an asyncio task and hand back a reactor future."""
    from reactor.concurrent import Future

    assert isinstance(loop, AsyncioLoop)
    task = loop.asyncio_loop.create_task(coro)
    out: Future[Any] = Future()
    task.add_done_callback(lambda t: out.set_result(t.result()))
    return out


@pytest.mark.parametrize("name", sorted(LOOP_FACTORIES))
def test_a_second_ioloop_over_one_asyncio_loop_is_refused(name: str) -> None:
    """As in Tornado: one IOLoop per asyncio loop while it is open."""
    aloop = LOOP_FACTORIES[name]()
    try:
        first = IOLoop(asyncio_loop=aloop, make_current=False)
        with pytest.raises(RuntimeError, match="already wraps"):
            IOLoop(asyncio_loop=aloop, make_current=False)
        assert AsyncioLoop.for_asyncio_loop(aloop) is first
        first.close()
        second = IOLoop(asyncio_loop=aloop, make_current=False)  # once closed, a new one
        assert AsyncioLoop.for_asyncio_loop(aloop) is second
        second.close()
    finally:
        aloop.close()
