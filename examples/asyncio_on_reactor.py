"""Plain asyncio code, unchanged, on whichever reactor backend is chosen.

    REACTOR_BACKEND=select python examples/asyncio_on_reactor.py
    REACTOR_BACKEND=epoll  python examples/asyncio_on_reactor.py

``pipeline`` below is written for asyncio and knows nothing of reactor: it
sleeps with asyncio.sleep, passes work through an asyncio.Queue and bounds a
wait with asyncio.wait_for. reactor runs it on its native loop (or on
asyncio/uvloop), because inside a running reactor loop
``asyncio.get_running_loop()`` is that loop's asyncio face.
"""

from __future__ import annotations

import asyncio

from reactor.ioloop import IOLoop


async def pipeline(items: list[str]) -> list[str]:
    """An 'asyncio library': a producer, a consumer, and a bounded wait."""
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=2)
    done: list[str] = []

    async def producer() -> None:
        for item in items:
            await asyncio.sleep(0.01)
            await queue.put(item)
        await queue.put(None)

    async def consumer() -> None:
        while (item := await queue.get()) is not None:
            done.append(item.upper())

    await asyncio.wait_for(asyncio.gather(producer(), consumer()), timeout=5)
    try:
        await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)
    except asyncio.TimeoutError:
        done.append("(timed out as expected)")
    return done


def main() -> None:
    loop = IOLoop.current()
    result = loop.run_sync(lambda: pipeline(["a", "b", "c"]), timeout=10)
    print(f"backend={loop.backend_name} result={result}")


if __name__ == "__main__":
    main()
