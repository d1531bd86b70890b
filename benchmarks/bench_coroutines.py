#!/usr/bin/env python
"""Coroutine micro-benchmarks: futures, steps and queues on reactor, asyncio, uvloop, Tornado.

Each measured in a fresh subprocess per implementation:

``ready``
    One coroutine awaits 100,000 futures that are already done (created and
    given their result first, untimed): the cost of an ``await`` that does
    not suspend. Reported in ns per await.
``moment``
    One coroutine awaits ``gen.moment`` 100,000 times (``asyncio.sleep(0)``
    where there is no awaitable ``gen.moment``): every step goes round the
    loop once. Reported in ns per step.
``pingpong``
    Two coroutines pass a counter back and forth through two unbounded
    queues, 100,000 round trips. Reported in round trips per second.
``futures``
    The Future choice of docs/coroutines.md, on reactor's native epoll loop:
    ``reactor.concurrent.Future`` against ``asyncio.Future`` made by the
    loop's asyncio face (``io_loop.asyncio_loop.create_future()``), with a
    row without any future as the floor. Two cases: 200,000 futures, each
    created, given one done-callback and a result, the loop running the
    callback (which starts the next one); and an ``async def`` awaiting
    100,000 futures that loop callbacks complete. Reported in ns per future.

The implementations of ``ready``, ``moment`` and ``pingpong``: reactor's
``IOLoop(backend=...)`` for each backend, running an ``async def`` with
``run_sync``; Tornado 6's ``IOLoop.run_sync``; ``asyncio.new_event_loop()``
and ``uvloop.new_event_loop()`` with ``run_until_complete``. The ``/gen.coroutine``
rows run the same benchmark as a ``@gen.coroutine`` generator (``yield``
instead of ``await``) on reactor's epoll loop and on Tornado: the
coroutine runners themselves, and the only way to use Tornado's ``gen.moment``.

Like bench_loop.py, the parent runs every cell ``--repeat`` times and prints
medians and ratios to asyncio's default loop (``futures``: to ``asyncio.Future``).
Run ``python benchmarks/bench_coroutines.py --help``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import (
    BASELINE_SUFFIX,
    Case,
    Metric,
    add_arguments,
    choose_implementations,
    drive,
    emit_result,
    render_table,
    run_main,
    unavailable_reason,
)

# Sizes: (full, quick).
READY_AWAITS = (100_000, 10_000)
MOMENT_STEPS = (100_000, 10_000)
PINGPONG_ROUND_TRIPS = (100_000, 10_000)
FUTURE_CALLBACKS = (200_000, 20_000)
FUTURE_AWAITS = (100_000, 10_000)
# Every benchmark first runs untimed at this fraction of its size (at least
# WARMUP_MIN), so first-use costs (imports, the asyncio face, allocations)
# stay out of the timed run.
WARMUP_FRACTION = 10
WARMUP_MIN = 1_000

FUTURE_KINDS = ("reactor.Future", "asyncio.Future", "no-future")
FUTURE_BASELINE = "reactor-epoll/asyncio.Future"


# -- implementations ---------------------------------------------------------
#
# An Env is one event loop with the coroutine tools that go with it. The
# benchmarks below use the library's own objects directly (its Future class,
# its Queue, its moment), so nothing of ours sits on the measured path.


@dataclass
class Env:
    """One loop and its coroutine toolkit."""

    run: Callable[[Callable[[], Any]], Any]
    """Run a coroutine function (no arguments) to completion; its result."""
    call_soon: Callable[..., Any]
    """Schedule a plain callback on the loop."""
    new_future: Callable[[], Any]
    """A pending future of the library's own kind (called inside the loop)."""
    moment: Any
    """A reusable awaitable (or yieldable) that lets the loop run once, or None."""
    sleep: Callable[[float], Any] | None
    """``sleep(0)`` where there is no reusable moment."""
    queue: Callable[[], Any]
    """An unbounded queue of the library."""
    spawn: Callable[[Any], Any]
    """Start a coroutine object (or, for generators, the returned future) running."""
    close: Callable[[], Any]
    coroutine: Callable[[Any], Any] | None = None
    """For the generator rows: the library's ``gen.coroutine``."""


def reactor_env(backend: str, generator: bool = False, sleep0: bool = False) -> Env:
    import asyncio

    from reactor import gen
    from reactor.concurrent import Future
    from reactor.ioloop import IOLoop
    from reactor.queues import Queue

    loop = IOLoop(backend=backend, make_current=False)
    assert loop.backend_name == backend, loop.backend_name
    return Env(
        run=loop.run_sync,
        call_soon=loop.add_callback,
        new_future=Future,
        moment=None if sleep0 else gen.moment,
        sleep=asyncio.sleep if sleep0 else None,
        queue=Queue,
        spawn=gen.convert_yielded,
        close=loop.close,
        coroutine=gen.coroutine if generator else None,
    )


def tornado_env(generator: bool = False) -> Env:
    import asyncio

    from tornado import gen
    from tornado.concurrent import Future
    from tornado.ioloop import IOLoop
    from tornado.queues import Queue

    loop = IOLoop(make_current=False)
    return Env(
        run=loop.run_sync,
        call_soon=loop.add_callback,
        new_future=Future,
        # Tornado's gen.moment can only be yielded from a gen.coroutine; in
        # native coroutines its documented equivalent is asyncio.sleep(0).
        moment=gen.moment if generator else None,
        sleep=None if generator else asyncio.sleep,
        queue=Queue,
        spawn=gen.convert_yielded,
        close=loop.close,
        coroutine=gen.coroutine if generator else None,
    )


def asyncio_env(uvloop: bool) -> Env:
    import asyncio

    if uvloop:
        import uvloop as uv

        loop = uv.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    def run(fn: Callable[[], Any]) -> Any:
        return loop.run_until_complete(fn())

    return Env(
        run=run,
        call_soon=loop.call_soon,
        new_future=loop.create_future,
        moment=None,
        sleep=asyncio.sleep,
        queue=asyncio.Queue,
        spawn=loop.create_task,
        close=loop.close,
    )


def _reactor_impl(backend: str) -> tuple[str, str, Callable[[], Env]]:
    kind = "bridge" if backend in ("asyncio", "uvloop") else "native loop"
    return (
        f"reactor-{backend}",
        f"reactor IOLoop(backend={backend!r}) ({kind}), async def",
        lambda: reactor_env(backend),
    )


# name -> (description, factory), for ready / moment / pingpong
COROUTINE_IMPLS: dict[str, tuple[str, Callable[[], Env]]] = {
    name: (desc, make)
    for name, desc, make in [
        _reactor_impl("select"),
        _reactor_impl("poll"),
        _reactor_impl("epoll"),
        _reactor_impl("kqueue"),
        _reactor_impl("asyncio"),
        _reactor_impl("uvloop"),
        (
            "asyncio",
            "asyncio.new_event_loop() (stdlib default loop), async def",
            lambda: asyncio_env(uvloop=False),
        ),
        ("uvloop", "uvloop.new_event_loop(), async def", lambda: asyncio_env(uvloop=True)),
        ("tornado", "tornado.ioloop.IOLoop (Tornado on asyncio), async def", tornado_env),
        (
            "reactor-epoll/sleep0",
            "reactor IOLoop(backend='epoll'), async def, asyncio.sleep(0) for gen.moment",
            lambda: reactor_env("epoll", sleep0=True),
        ),
        (
            "reactor-epoll/gen.coroutine",
            "reactor IOLoop(backend='epoll'), @reactor.gen.coroutine generator",
            lambda: reactor_env("epoll", generator=True),
        ),
        (
            "tornado/gen.coroutine",
            "tornado.ioloop.IOLoop, @tornado.gen.coroutine generator",
            lambda: tornado_env(generator=True),
        ),
    ]
}
FUTURE_IMPLS = [f"reactor-epoll/{kind}" for kind in FUTURE_KINDS]
IMPLEMENTATIONS = [*COROUTINE_IMPLS, *FUTURE_IMPLS]
BENCHES = ["ready", "moment", "pingpong", "futures"]


def coroutine_unavailable(name: str) -> str | None:
    """Why an implementation cannot run here (the loop under it cannot), or None."""
    return unavailable_reason(name.split("/", 1)[0])


# -- the benchmarks (run in the worker subprocess) ---------------------------


def _warmup(n: int) -> int:
    return max(n // WARMUP_FRACTION, WARMUP_MIN)


def bench_ready(env: Env, n: int) -> dict[str, Any]:
    """``n`` awaits of futures that are done already."""

    def done_futures(k: int) -> list[Any]:
        futures = [env.new_future() for _ in range(k)]
        for f in futures:
            f.set_result(1)
        return futures

    if env.coroutine is not None:

        def gen_body(k: int) -> Any:
            futures = done_futures(k)
            total = 0
            t0 = time.perf_counter()
            for f in futures:
                total += yield f
            return total, time.perf_counter() - t0

        body = env.coroutine(gen_body)
    else:

        async def body(k: int) -> tuple[int, float]:
            futures = done_futures(k)
            total = 0
            t0 = time.perf_counter()
            for f in futures:
                total += await f
            return total, time.perf_counter() - t0

    for k in (_warmup(n), n):
        total, elapsed = env.run(lambda k=k: body(k))
        if total != k:
            raise AssertionError(f"awaited results add up to {total}, expected {k}")
    return {"awaits": n, "seconds": elapsed, "ns_per_await": elapsed / n * 1e9}


async def _nothing() -> None:
    pass


def bench_moment(env: Env, n: int) -> dict[str, Any]:
    """``n`` steps that each let the loop run once.

    The untimed warm-up also runs a self-rescheduling callback beside the
    coroutine and checks that it ran once per step: each step really went
    round the loop.
    """
    moment, sleep = env.moment, env.sleep
    ticks = 0
    ticking = False

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticking:
            env.call_soon(tick)

    if env.coroutine is not None:

        def gen_body(k: int) -> Any:
            ticks0, t0 = ticks, time.perf_counter()
            for _ in range(k):
                yield moment
            return time.perf_counter() - t0, ticks - ticks0

        body = env.coroutine(gen_body)
    elif moment is not None:

        async def body(k: int) -> tuple[float, int]:
            ticks0, t0 = ticks, time.perf_counter()
            for _ in range(k):
                await moment
            return time.perf_counter() - t0, ticks - ticks0

    else:
        assert sleep is not None

        async def body(k: int) -> tuple[float, int]:
            ticks0, t0 = ticks, time.perf_counter()
            for _ in range(k):
                await sleep(0)
            return time.perf_counter() - t0, ticks - ticks0

    k = _warmup(n)
    ticking = True
    env.call_soon(tick)
    _, steps_ticked = env.run(lambda: body(k))
    ticking = False
    if abs(steps_ticked - k) > 1:
        raise AssertionError(f"{steps_ticked} loop iterations ran during {k} steps, not {k}")
    env.run(_nothing)  # lets the last tick run, untimed
    elapsed, _ = env.run(lambda: body(n))
    return {"steps": n, "seconds": elapsed, "ns_per_step": elapsed / n * 1e9}


def bench_pingpong(env: Env, n: int) -> dict[str, Any]:
    """``n`` round trips between two coroutines through two queues."""
    if env.coroutine is not None:
        coroutine = env.coroutine

        def gen_ponger(ping: Any, pong: Any, k: int) -> Any:
            for _ in range(k):
                item = yield ping.get()
                yield pong.put(item)

        ponger = coroutine(gen_ponger)

        def gen_body(k: int) -> Any:
            ping, pong = env.queue(), env.queue()
            other = ponger(ping, pong, k)
            total = 0
            t0 = time.perf_counter()
            for i in range(k):
                yield ping.put(i)
                total += yield pong.get()
            elapsed = time.perf_counter() - t0
            yield other
            return total, elapsed

        body = coroutine(gen_body)
    else:

        async def ponger(ping: Any, pong: Any, k: int) -> None:
            for _ in range(k):
                item = await ping.get()
                await pong.put(item)

        async def body(k: int) -> tuple[int, float]:
            ping, pong = env.queue(), env.queue()
            other = env.spawn(ponger(ping, pong, k))
            total = 0
            t0 = time.perf_counter()
            for i in range(k):
                await ping.put(i)
                total += await pong.get()
            elapsed = time.perf_counter() - t0
            await other
            return total, elapsed

    for k in (_warmup(n), n):
        total, elapsed = env.run(lambda k=k: body(k))
        if total != k * (k - 1) // 2:
            raise AssertionError(f"the items add up to {total}, not {k * (k - 1) // 2}")
    return {"round_trips": n, "seconds": elapsed, "per_second": n / elapsed}


def bench_future_callbacks(kind: str, n: int) -> dict[str, Any]:
    """``n`` futures, one at a time, on reactor's epoll loop.

    Each is created, given one done-callback and then its result; the loop
    runs the callback, which checks the result and starts the next future.
    ``no-future``: the same chain of loop callbacks without the futures.
    """
    from reactor.concurrent import Future
    from reactor.ioloop import IOLoop

    loop = IOLoop(backend="epoll", make_current=False)
    make = Future if kind == "reactor.Future" else loop.asyncio_loop.create_future
    add_callback = loop.add_callback
    remaining = 0
    wrong = 0

    def on_done(future: Any) -> None:
        nonlocal remaining, wrong
        if future.result() != remaining:
            wrong += 1
        remaining -= 1
        if remaining:
            start_one()
        else:
            loop.stop()

    def start_one() -> None:
        future = make()
        future.add_done_callback(on_done)
        future.set_result(remaining)

    def on_callback(value: int) -> None:
        nonlocal remaining, wrong
        if value != remaining:
            wrong += 1
        remaining -= 1
        if remaining:
            add_callback(on_callback, remaining)
        else:
            loop.stop()

    def first() -> None:
        if kind == "no-future":
            add_callback(on_callback, remaining)
        else:
            start_one()

    try:
        for k in (_warmup(n), n):
            remaining = k
            add_callback(first)
            t0 = time.perf_counter()
            loop.start()
            elapsed = time.perf_counter() - t0
            if remaining or wrong:
                raise AssertionError(f"{remaining} futures left, {wrong} wrong results")
    finally:
        loop.close()
    return {"futures": n, "seconds": elapsed, "ns_per_future": elapsed / n * 1e9}


def bench_future_awaits(kind: str, n: int) -> dict[str, Any]:
    """An ``async def`` on reactor's epoll loop awaiting ``n`` futures, each
    completed by a loop callback (``add_callback(future.set_result, i)``).

    ``no-future``: ``add_callback`` of a no-op and ``await gen.moment``, the
    same trip round the loop without a future.
    """
    from reactor import gen
    from reactor.concurrent import Future
    from reactor.ioloop import IOLoop

    loop = IOLoop(backend="epoll", make_current=False)
    make = Future if kind == "reactor.Future" else loop.asyncio_loop.create_future
    add_callback = loop.add_callback
    moment = gen.moment

    def noop(_: int) -> None:
        pass

    async def with_futures(k: int) -> tuple[int, float]:
        total = 0
        t0 = time.perf_counter()
        for i in range(k):
            future = make()
            add_callback(future.set_result, i)
            total += await future
        return total, time.perf_counter() - t0

    async def without(k: int) -> tuple[int, float]:
        total = 0
        t0 = time.perf_counter()
        for i in range(k):
            add_callback(noop, i)
            await moment
            total += i
        return total, time.perf_counter() - t0

    body = without if kind == "no-future" else with_futures
    try:
        for k in (_warmup(n), n):
            total, elapsed = loop.run_sync(lambda k=k: body(k))
            if total != k * (k - 1) // 2:
                raise AssertionError(f"results add up to {total}, not {k * (k - 1) // 2}")
    finally:
        loop.close()
    return {"futures": n, "seconds": elapsed, "ns_per_future": elapsed / n * 1e9}


def worker(spec: dict[str, Any]) -> int:
    """Run one benchmark on one implementation; print its result as JSON."""
    gc.collect()
    impl, bench, n = spec["impl"], spec["bench"], spec["n"]
    if bench in ("future_callbacks", "future_awaits"):
        kind = impl.split("/", 1)[1]
        if bench == "future_callbacks":
            result = bench_future_callbacks(kind, n)
        else:
            result = bench_future_awaits(kind, n)
    else:
        env = COROUTINE_IMPLS[impl][1]()
        try:
            if bench == "ready":
                result = bench_ready(env, n)
            elif bench == "moment":
                result = bench_moment(env, n)
            elif bench == "pingpong":
                result = bench_pingpong(env, n)
            else:
                raise ValueError(f"unknown benchmark {bench!r}")
        finally:
            env.close()
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------

READY_METRIC = Metric("ns_per_await", "ns per await", "ns", False, 1)
MOMENT_METRIC = Metric("ns_per_step", "ns per step", "ns", False, 1)
PINGPONG_METRIC = Metric("per_second", "round trips per second", "round trips/s", True, 0)
FUTURE_METRIC = Metric("ns_per_future", "ns per future", "ns", False, 1)


def make_cases(benches: list[str], quick: bool) -> list[Case]:
    q = 1 if quick else 0
    # reactor-epoll/sleep0 differs from reactor-epoll in the moment case only.
    coroutine_impls = tuple(i for i in COROUTINE_IMPLS if i != "reactor-epoll/sleep0")
    cases = []
    if "ready" in benches:
        n = READY_AWAITS[q]
        cases.append(
            Case(
                "ready",
                f"{n:,} awaits of a done future",
                {"n": n},
                [READY_METRIC],
                120,
                coroutine_impls,
            )
        )
    if "moment" in benches:
        n = MOMENT_STEPS[q]
        cases.append(
            Case(
                "moment",
                f"{n:,} awaits of gen.moment (asyncio.sleep(0))",
                {"n": n},
                [MOMENT_METRIC],
                120,
                tuple(COROUTINE_IMPLS),
            )
        )
    if "pingpong" in benches:
        n = PINGPONG_ROUND_TRIPS[q]
        cases.append(
            Case(
                "pingpong",
                f"{n:,} queue ping-pong round trips",
                {"n": n},
                [PINGPONG_METRIC],
                180,
                coroutine_impls,
            )
        )
    if "futures" in benches:
        n = FUTURE_CALLBACKS[q]
        cases.append(
            Case(
                "future_callbacks",
                f"{n:,} futures: create, add a done-callback, set_result, the loop runs it",
                {"n": n},
                [FUTURE_METRIC],
                120,
                tuple(FUTURE_IMPLS),
                FUTURE_BASELINE,
            )
        )
        n = FUTURE_AWAITS[q]
        cases.append(
            Case(
                "future_awaits",
                f"{n:,} futures completed by loop callbacks, awaited by an async def",
                {"n": n},
                [FUTURE_METRIC],
                120,
                tuple(FUTURE_IMPLS),
                FUTURE_BASELINE,
            )
        )
    return cases


TITLES = {
    "ready": "Coroutine step, ready future",
    "moment": "Coroutine step, gen.moment",
    "pingpong": "Ping-pong through two queues",
    "future_callbacks": "The Future choice, on reactor-epoll: callbacks",
    "future_awaits": "The Future choice, on reactor-epoll: awaits",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Coroutine benchmarks: reactor's backends vs asyncio, uvloop, Tornado.",
    )
    add_arguments(parser, IMPLEMENTATIONS, BENCHES)
    args = parser.parse_args(argv)

    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    impls, skipped = choose_implementations(
        parser, args, list(IMPLEMENTATIONS), coroutine_unavailable
    )
    benches = args.bench or BENCHES
    cases = [
        case
        for case in make_cases(benches, args.quick)
        if case.impls is None or any(i in case.impls for i in impls)
    ]
    command = "python benchmarks/bench_coroutines.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )

    run = drive(__file__, args, cases, impls, skipped)
    results, impls = run.results, run.impls

    out = run.header(args, command, skipped)
    if any(c.baseline != "asyncio" for c in cases):
        out[-1:-1] = [f"- the Future choice: ratio = median / median of {FUTURE_BASELINE}"]
    h = "### " if args.markdown else ""
    for ci, case in enumerate(cases):
        out += [f"{h}{TITLES[case.bench]}", ""]
        shown = [
            i for i in impls if case.impls is None or i.removesuffix(BASELINE_SUFFIX) in case.impls
        ]
        for metric in case.metrics:
            out += render_table(case, metric, shown, results[ci])
    print("\n".join(out))

    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
