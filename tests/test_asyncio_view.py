"""The short paths of a native loop's asyncio face (an implementation test).

On the native backends, ``await`` of a pending future, a task step and a
``gen.coroutine`` wake-up are queued on the native loop without making an
:class:`asyncio.Handle` (see :mod:`reactor.asyncio_view`). Nothing observable
changes, so the conformance suite cannot tell; this test counts the handles,
so that a Python upgrade that renames asyncio's internals shows up here
instead of as a silent slowdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from reactor import asyncio_view, gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, PollIOLoop


def test_tasks_and_coroutines_wait_without_handles(
    io_loop: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(io_loop, PollIOLoop):
        pytest.skip("the asyncio backends make their own handles")
    assert asyncio_view._TASK_STEP is not None, "a C task's step was not recognised"
    made: list[Any] = []
    new_handle = asyncio_view._new_handle

    def counting_new_handle(cls: type) -> Any:
        made.append(cls)
        return new_handle(cls)

    monkeypatch.setattr(asyncio_view, "_new_handle", counting_new_handle)

    async def native() -> int:
        total = 0
        for i in range(10):
            f: Future[int] = Future()
            io_loop.add_callback(f.set_result, i)
            total += await f
            await gen.moment
            await asyncio.sleep(0)
        return total

    @gen.coroutine
    def generator() -> Generator[Any, Any, int]:
        total = 0
        for i in range(10):
            f: Future[int] = Future()
            io_loop.add_callback(f.set_result, i)
            total += yield f
            yield gen.moment
        return total

    assert io_loop.run_sync(native) == 45
    assert io_loop.run_sync(generator) == 45
    assert made == []
    io_loop.asyncio_loop.call_soon(lambda: None)  # other callbacks still get handles
    assert made == [asyncio_view._Handle]
