"""The asyncio bridge over a loop someone else runs (asyncio.run)."""

from __future__ import annotations

import asyncio

import pytest

import backends
from backends.asyncioloop import AsyncioLoop
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
