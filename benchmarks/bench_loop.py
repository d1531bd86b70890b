#!/usr/bin/env python
"""Event-loop micro-benchmarks: reactor's backends next to asyncio, uvloop and Tornado.

Three benchmarks, each measured in a fresh subprocess per implementation:

``chain``
    A chain of callbacks, each scheduling the next with ``add_callback`` (or
    ``call_soon``), so every loop iteration runs exactly one callback and
    polls once with a zero timeout. Reported as callbacks per second.
``timers``
    200,000 ``call_later`` with seeded random delays in [0, 0.2) s, every
    second one cancelled, then run until the last live timer has fired.
    Reports the time to schedule and cancel, the wall time until the last
    live timer ran, the CPU time of the whole, and the growth of peak RSS.
    Exactly half the timers must fire; anything else fails the run.
``idle``
    N idle sockets (N/2 socket pairs, both ends registered for reading with a
    no-op handler) and a self-rescheduling callback: the cost of one loop
    iteration (one zero-timeout poll) with N sockets watched, in µs.

The parent process runs every implementation in turn, repeats the whole set
``--repeat`` times, and prints the median of each cell and its ratio to
asyncio's default event loop. Run ``python benchmarks/bench_loop.py --help``.

Timings depend on the machine and on whatever else it is doing: they belong
in documents, never in tests.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import (
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
CHAIN_CALLBACKS = (1_000_000, 100_000)
TIMER_COUNT = (200_000, 20_000)
TIMER_MAX_DELAY = 0.2
TIMER_SEED = 20240601
IDLE_SOCKETS = (100, 1_000, 10_000)
# The idle loop runs K iterations, K chosen per run from a short calibration
# so that the timed part lasts about this long (full, quick), within bounds.
IDLE_TARGET_SECONDS = (0.5, 0.1)
IDLE_WARMUP = 200
IDLE_CALIBRATION = 500
IDLE_MIN_ITERATIONS = 1_000
IDLE_MAX_ITERATIONS = 1_000_000


# -- implementations ---------------------------------------------------------
#
# Every implementation is reduced to the same handful of operations. The
# adapters hand out the implementation's own bound methods (no wrapper is
# called per operation), so the hot loops below call straight into the loop
# under test.


def _noop(*args: Any) -> None:
    pass


class Adapter:
    """One event loop, seen through the operations the benchmarks need."""

    # Set by subclasses: the loop's own methods.
    call_soon: Callable[..., Any]
    call_later: Callable[..., Any]
    run: Callable[[], Any]
    stop: Callable[[], Any]

    def cancel_all(self, handles: list[Any]) -> None:
        raise NotImplementedError

    def watch_read(self, fd: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ReactorAdapter(Adapter):
    """reactor's ``IOLoop`` on one of its backends (native or bridged)."""

    def __init__(self, backend: str) -> None:
        from reactor.ioloop import IOLoop

        self.loop = IOLoop(backend=backend, make_current=False)
        assert self.loop.backend_name == backend, self.loop.backend_name
        self.call_soon = self.loop.add_callback
        self.call_later = self.loop.call_later
        self.run = self.loop.start
        self.stop = self.loop.stop
        self._read = IOLoop.READ

    def cancel_all(self, handles: list[Any]) -> None:
        remove = self.loop.remove_timeout
        for handle in handles:
            remove(handle)

    def watch_read(self, fd: int) -> None:
        # reactor's select backend raises ValueError here for fd >= FD_SETSIZE.
        self.loop.add_handler(fd, _noop, self._read)

    def close(self) -> None:
        self.loop.close()


class TornadoAdapter(ReactorAdapter):
    """Tornado's ``IOLoop`` (on asyncio's default loop since Tornado 5)."""

    def __init__(self) -> None:
        from tornado.ioloop import IOLoop

        self.loop = IOLoop(make_current=False)
        self.call_soon = self.loop.add_callback
        self.call_later = self.loop.call_later
        self.run = self.loop.start
        self.stop = self.loop.stop
        self._read = IOLoop.READ


class AsyncioAdapter(Adapter):
    """A bare asyncio event loop (the standard library's, or uvloop's)."""

    def __init__(self, uvloop: bool) -> None:
        if uvloop:
            import uvloop as uv

            self.loop = uv.new_event_loop()
        else:
            import asyncio

            self.loop = asyncio.new_event_loop()
        self.call_soon = self.loop.call_soon
        self.call_later = self.loop.call_later
        self.run = self.loop.run_forever
        self.stop = self.loop.stop

    def cancel_all(self, handles: list[Any]) -> None:
        for handle in handles:
            handle.cancel()

    def watch_read(self, fd: int) -> None:
        self.loop.add_reader(fd, _noop)

    def close(self) -> None:
        self.loop.close()


@dataclass(frozen=True)
class Impl:
    name: str
    description: str
    make: Callable[[], Adapter]


def _reactor(backend: str) -> Impl:
    kind = "bridge" if backend in ("asyncio", "uvloop") else "native loop"
    return Impl(
        f"reactor-{backend}",
        f"reactor IOLoop(backend={backend!r}) ({kind})",
        lambda: ReactorAdapter(backend),
    )


IMPLEMENTATIONS: dict[str, Impl] = {
    impl.name: impl
    for impl in [
        _reactor("select"),
        _reactor("poll"),
        _reactor("epoll"),
        _reactor("kqueue"),
        _reactor("asyncio"),
        _reactor("uvloop"),
        Impl(
            "asyncio",
            "asyncio.new_event_loop() (stdlib default loop)",
            lambda: AsyncioAdapter(uvloop=False),
        ),
        Impl("uvloop", "uvloop.new_event_loop()", lambda: AsyncioAdapter(uvloop=True)),
        Impl("tornado", "tornado.ioloop.IOLoop (Tornado on asyncio)", TornadoAdapter),
    ]
}


# -- the benchmarks (run in the worker subprocess) ---------------------------


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def bench_chain(ad: Adapter, n: int) -> dict[str, Any]:
    """``n`` callbacks, each scheduling the next one."""
    soon = ad.call_soon
    stop = ad.stop
    remaining = 0

    def step() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining:
            soon(step)
        else:
            stop()

    # Warm-up: a short chain, untimed, so first-use allocations are not measured.
    remaining = max(n // 100, 1000)
    soon(step)
    ad.run()

    remaining = n
    soon(step)
    c0 = time.process_time()
    t0 = time.perf_counter()
    ad.run()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if remaining != 0:
        raise AssertionError(f"the chain stopped with {remaining} callbacks left")
    return {"callbacks": n, "seconds": elapsed, "cpu_seconds": cpu, "per_second": n / elapsed}


def bench_timers(ad: Adapter, n: int) -> dict[str, Any]:
    """``n`` timers with random delays, every second one cancelled."""
    rng = random.Random(TIMER_SEED)
    delays = [rng.random() * TIMER_MAX_DELAY for _ in range(n)]
    live = (n + 1) // 2  # indices 0, 2, 4...; the odd ones are cancelled
    max_live_delay = max(delays[0::2])
    fired = 0
    wrongly_fired = 0
    out: dict[str, float] = {}

    def on_live() -> None:
        nonlocal fired
        fired += 1
        if fired == live:
            out["t_end"] = time.monotonic()
            out["c_end"] = time.process_time()
            ad.stop()

    def on_cancelled() -> None:
        nonlocal wrongly_fired
        wrongly_fired += 1

    callbacks = [on_live, on_cancelled] * (n // 2) + [on_live] * (n % 2)

    def schedule() -> None:
        call_later = ad.call_later
        out["rss0"] = _maxrss_mib()
        out["c0"] = time.process_time()
        out["t0"] = t0 = time.monotonic()
        handles = [call_later(d, cb) for d, cb in zip(delays, callbacks, strict=True)]
        ad.cancel_all(handles[1::2])
        out["t_sched"] = time.monotonic() - t0
        # A safety net, scheduled after the measured part: if timers go
        # missing, stop long after they were due and fail below.
        out["guard"] = call_later(TIMER_MAX_DELAY + 30.0, ad.stop)
        del handles

    ad.call_soon(schedule)
    ad.run()
    rss1 = _maxrss_mib()
    if fired != live:
        raise AssertionError(
            f"{fired} live timers fired, expected exactly {live} (guard timer stopped the loop)"
        )
    # Keep running past the latest deadline any timer could have, to catch
    # cancelled timers firing anyway (not measured).
    latest = out["t0"] + out["t_sched"] + TIMER_MAX_DELAY
    ad.cancel_all([out.pop("guard")])
    ad.call_later(max(latest - time.monotonic(), 0.0) + 0.05, ad.stop)
    ad.run()
    if fired != live or wrongly_fired:
        raise AssertionError(
            f"{fired} live timers fired (expected exactly {live}) and "
            f"{wrongly_fired} cancelled timers fired (expected 0)"
        )
    # The live timer with the longest delay was scheduled after t0; firing
    # it before t0 + delay would be a bug (uvloop rounds delays to 1 ms).
    early = out["t0"] + max_live_delay - out["t_end"]
    if early > 0.005:
        raise AssertionError(f"the last live timer fired {early * 1000:.1f} ms early")
    return {
        "timers": n,
        "fired": fired,
        "cancelled": n - live,
        "schedule_cancel_ms": out["t_sched"] * 1000,
        "wall_ms": (out["t_end"] - out["t0"]) * 1000,
        "cpu_ms": (out["c_end"] - out["c0"]) * 1000,
        "peak_rss_delta_mib": rss1 - out["rss0"],
    }


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def bench_idle(ad: Adapter, nsockets: int, target: float) -> dict[str, Any]:
    """Cost of one loop iteration with ``nsockets`` idle sockets watched.

    A callback that reschedules itself K times: every iteration runs it and
    polls once with a zero timeout. K is chosen from short untimed warm-up
    and calibration runs so that the timed run lasts about ``target`` seconds.
    """
    nofile = _raise_nofile()
    pairs = [socket.socketpair() for _ in range(nsockets // 2)]
    socks = [s for pair in pairs for s in pair]
    max_fd = max(s.fileno() for s in socks)
    try:
        for s in socks:
            try:
                ad.watch_read(s.fileno())
            except ValueError as e:
                # reactor's select backend refuses fds >= FD_SETSIZE.
                return {"na": "FD_SETSIZE", "detail": str(e), "max_fd": max_fd}

        soon = ad.call_soon
        stop = ad.stop
        remaining = 0

        def step() -> None:
            nonlocal remaining
            remaining -= 1
            if remaining:
                soon(step)
            else:
                stop()

        def timed(k: int) -> float:
            nonlocal remaining
            remaining = k
            soon(step)
            t0 = time.perf_counter()
            ad.run()
            elapsed = time.perf_counter() - t0
            if remaining != 0:
                raise AssertionError(f"the chain stopped with {remaining} iterations left")
            return elapsed

        timed(IDLE_WARMUP)  # untimed: some loops do first-iteration work (uvloop)
        estimate = timed(IDLE_CALIBRATION) / IDLE_CALIBRATION
        iterations = int(min(max(target / estimate, IDLE_MIN_ITERATIONS), IDLE_MAX_ITERATIONS))
        elapsed = timed(iterations)
        return {
            "sockets": len(socks),
            "iterations": iterations,
            "max_fd": max_fd,
            "nofile": nofile,
            "us_per_iteration": elapsed / iterations * 1e6,
        }
    finally:
        # Closing the loop without unregistering first is fine for a loop we
        # drop anyway; the sockets are closed after it (outside the timing).
        ad.close()
        for s in socks:
            s.close()


def worker(spec: dict[str, Any]) -> int:
    """Run one benchmark on one implementation; print its result as JSON."""
    gc.collect()
    ad = IMPLEMENTATIONS[spec["impl"]].make()
    bench = spec["bench"]
    if bench == "idle":
        result = bench_idle(ad, spec["n"], spec["target"])  # closes the loop
    else:
        try:
            if bench == "chain":
                result = bench_chain(ad, spec["n"])
            elif bench == "timers":
                result = bench_timers(ad, spec["n"])
            else:
                raise ValueError(f"unknown benchmark {bench!r}")
        finally:
            ad.close()
    emit_result(result)
    return 0


# -- the driver ----------------------------------------------------------------


CHAIN_METRIC = Metric("per_second", "callbacks per second", "callbacks/s", True, 0)
TIMER_METRICS = [
    Metric("schedule_cancel_ms", "time to schedule + cancel", "ms", False, 1),
    Metric("wall_ms", "wall time until the last live timer ran", "ms", False, 1),
    Metric("cpu_ms", "CPU time (process_time) of the whole", "ms", False, 1),
    Metric("peak_rss_delta_mib", "peak RSS growth (ru_maxrss delta)", "MiB", False, 1),
]
IDLE_METRIC = Metric("us_per_iteration", "µs per loop iteration", "µs", False, 2)


def make_cases(benches: list[str], quick: bool) -> list[Case]:
    q = 1 if quick else 0
    cases = []
    if "chain" in benches:
        n = CHAIN_CALLBACKS[q]
        cases.append(Case("chain", f"chain of {n:,} callbacks", {"n": n}, [CHAIN_METRIC], 120))
    if "timers" in benches:
        n = TIMER_COUNT[q]
        cases.append(
            Case(
                "timers",
                f"{n:,} timers, every second one cancelled",
                {"n": n},
                TIMER_METRICS,
                120,
            )
        )
    if "idle" in benches:
        for nsock in IDLE_SOCKETS:
            cases.append(
                Case(
                    "idle",
                    f"{nsock:,} idle sockets",
                    {"n": nsock, "target": IDLE_TARGET_SECONDS[q]},
                    [IDLE_METRIC],
                    180,
                )
            )
    return cases


def idle_notes(cells: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Below an idle table: the fds the sockets got, and the K timed per run."""
    notes = []
    done = [r for v in cells.values() for r in v if "error" not in r]
    fds = [r["max_fd"] for r in done if "max_fd" in r]
    ks = [r["iterations"] for r in done if "iterations" in r]
    if fds:
        notes.append(f"Highest socket fd: {min(fds)} to {max(fds)}.")
    if ks:
        notes.append(f"K (iterations timed per run): {min(ks):,} to {max(ks):,}.")
    return notes


def _describe(result: dict[str, Any]) -> str:
    return f" (K={result['iterations']:,})" if "iterations" in result else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Event-loop benchmarks: reactor's backends vs asyncio, uvloop, Tornado.",
    )
    add_arguments(parser, list(IMPLEMENTATIONS), ["chain", "timers", "idle"])
    args = parser.parse_args(argv)

    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    impls, skipped = choose_implementations(parser, args, list(IMPLEMENTATIONS), unavailable_reason)
    benches = args.bench or ["chain", "timers", "idle"]
    cases = make_cases(benches, args.quick)
    command = "python benchmarks/bench_loop.py " + " ".join(argv or sys.argv[1:])

    run = drive(__file__, args, cases, impls, skipped, describe=_describe)
    results, impls = run.results, run.impls

    out = run.header(args, command, skipped)
    h = "### " if args.markdown else ""
    titles = {"chain": "Callback chain", "timers": "Timers", "idle": "Idle poll cost"}
    shown_bench = None
    for ci, case in enumerate(cases):
        if case.bench != shown_bench:
            out += [f"{h}{titles[case.bench]}", ""]
            shown_bench = case.bench
        notes = idle_notes(results[ci]) if case.bench == "idle" else []
        for metric in case.metrics:
            out += render_table(case, metric, impls, results[ci], notes)
    print("\n".join(out))

    return run.finish(args, command, skipped)


if __name__ == "__main__":
    run_main(main)
