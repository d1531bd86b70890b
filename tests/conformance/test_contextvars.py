"""Context variables across every kind of coroutine, callback and timer.

The rules (Tornado 6's, which are asyncio's): a ``gen.coroutine`` runs all
its steps in a copy of the context it was called in, as an asyncio task runs
in a copy of the context it was created in; so what the caller set is seen
inside, and what is set inside stays inside. A callback or timer runs in the
context of the code that scheduled it, at the moment it was scheduled.
"""

from __future__ import annotations

import contextvars
from collections.abc import Generator
from typing import Any

from reactor import gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, PeriodicCallback

var: contextvars.ContextVar[str] = contextvars.ContextVar("reactor_test_var")


def _later(io_loop: IOLoop, value: Any = None) -> Future[Any]:
    f: Future[Any] = Future()
    io_loop.call_later(0.001, f.set_result, value)
    return f


def test_gen_coroutine_to_the_async_def_it_yields(io_loop: IOLoop) -> None:
    """A variable set inside a gen.coroutine is seen by a native coroutine it
    yields (issue 9 item 8: it raised LookupError), before and after that
    coroutine suspends; what the native coroutine sets stays in it."""

    async def native() -> list[str]:
        seen = [var.get()]
        await _later(io_loop)
        seen.append(var.get())
        var.set("set in native")
        return seen

    @gen.coroutine
    def old() -> Generator[Any, Any, list[str]]:
        var.set("set in old")
        first = yield native()  # first step: inside the wrapper's own call
        yield _later(io_loop)
        second = yield native()  # a later step: inside the Runner
        nested = yield [native(), {"k": native()}]
        return [*first, *second, *nested[0], *nested[1]["k"], var.get()]

    assert io_loop.run_sync(old) == ["set in old"] * 9


def test_a_gen_coroutine_keeps_one_context_through_all_its_steps(io_loop: IOLoop) -> None:
    """A variable set in any step is seen in every later one, whatever the
    step waited for: a moment, a pending or a ready future, a native coroutine."""

    async def native() -> None:
        await _later(io_loop)

    ready: Future[None] = Future()
    ready.set_result(None)

    @gen.coroutine
    def old() -> Generator[Any, Any, list[str]]:
        seen = []
        for step, waited in enumerate([gen.moment, None, _later(io_loop), ready, native()]):
            var.set(f"step {step}")
            yield waited
            seen.append(var.get())
        return seen

    assert io_loop.run_sync(old) == [f"step {k}" for k in range(5)]


def test_async_def_to_the_gen_coroutine_it_awaits(io_loop: IOLoop) -> None:
    @gen.coroutine
    def old() -> Generator[Any, Any, list[str]]:
        seen = [var.get()]
        yield _later(io_loop)
        seen.append(var.get())
        var.set("set in old")
        return seen

    async def native() -> list[str]:
        var.set("set in native")
        seen = await old()
        return [*seen, var.get()]

    assert io_loop.run_sync(native) == ["set in native"] * 3


def test_caller_context_flows_in_and_nothing_leaks_out(io_loop: IOLoop) -> None:
    @gen.coroutine
    def old() -> Generator[Any, Any, str]:
        var.set("inner")
        yield _later(io_loop)
        return var.get()

    async def native() -> str:
        var.set("inner")
        await _later(io_loop)
        return var.get()

    async def main() -> list[str]:
        var.set("outer")
        # (``await native()`` itself would run in main's own task and context.)
        results = [await old(), await gen.convert_yielded(native()), await gen.multi([old()])]
        return [*results, var.get()]

    assert io_loop.run_sync(main) == ["inner", "inner", ["inner"], "outer"]


def test_callbacks_and_timers_run_in_the_context_they_were_scheduled_in(
    io_loop: IOLoop,
) -> None:
    seen: dict[str, str] = {}
    done: Future[None] = Future()
    expected = {
        "add_callback",
        "spawn_callback",
        "call_later",
        "call_at",
        "add_timeout",
        "add_future",
        "add_done_callback",
        "after_executor",
        "periodic",
    }

    def note(name: str) -> None:
        seen[name] = var.get("unset")
        if set(seen) == expected and not done.done():
            done.set_result(None)

    def periodic() -> None:
        pc.stop()
        note("periodic")

    pc = PeriodicCallback(periodic, 1)

    async def schedule() -> None:
        var.set("scheduler")
        io_loop.add_callback(note, "add_callback")
        io_loop.spawn_callback(note, "spawn_callback")
        io_loop.call_later(0.001, note, "call_later")
        io_loop.call_at(io_loop.time() + 0.001, note, "call_at")
        io_loop.add_timeout(io_loop.time() + 0.001, note, "add_timeout")
        io_loop.add_future(_later(io_loop), lambda _: note("add_future"))
        _later(io_loop).add_done_callback(lambda _: note("add_done_callback"))
        pc.start()
        await io_loop.run_in_executor(None, int, "1")
        note("after_executor")
        var.set("changed after scheduling")

    async def main() -> None:
        await schedule()
        await done

    io_loop.run_sync(main, timeout=10)
    assert seen == dict.fromkeys(expected, "scheduler")
