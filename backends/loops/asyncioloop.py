"""The asyncio bridge: reactor's IOLoop interface on an asyncio event loop.

:class:`AsyncioLoop` runs everything above the loop (futures, streams, HTTP)
on a standard-library asyncio loop; :class:`UvloopLoop` on uvloop's. Only
what differs from the interface is documented here:

- ``ERROR`` is never reported on its own: asyncio has no error events. A
  failed or hung-up fd shows up as readable (or writable), and the read or
  write then fails, which is what the native backends' callers do anyway.
- Timers run on ``asyncio_loop.time()``; uvloop's clock has millisecond
  resolution and is cached per iteration.
- Exceptions in callbacks go to :meth:`IOLoop.handle_callback_exception`
  (``reactor.application``), not to asyncio's exception handler.
- After ``close``, ``add_callback`` drops its callback once the asyncio
  loop is closed too (always for a loop the bridge owns). A bridge over an
  asyncio loop someone else runs leaves that loop open, and a callback added
  after the bridge's close still runs there.
- A bridge over an asyncio loop someone else runs (``asyncio.run``) is found
  again through an attribute of that loop (``_reactor_bridge``), not a
  global table: the two refer to each other, and the garbage collector frees
  both once the asyncio loop is dropped.

Some facts about signals and asyncio (each is a conformance test):

- The kernel delivers a process-directed signal to any thread that does not
  block it. CPython's C-level handler then only sets a flag and writes the
  signal number to the wakeup fd (``signal.set_wakeup_fd``); the Python
  handler runs in the main thread, the next time it executes bytecode.
- A stdlib asyncio loop sets a wakeup fd only for ``add_signal_handler``. So
  when the signal lands in another thread while the main thread sleeps in
  ``epoll_wait``, nothing wakes it: the handler (and the
  ``add_callback_from_signal`` it makes) waits for the next timer or I/O.
  While :meth:`AsyncioLoop.start` runs in the main thread, the bridge
  therefore makes a socket it watches the wakeup fd, unless one is set
  already (asyncio's own, for its ``add_signal_handler``, must stay).
- uvloop sets its own wakeup fd in ``run_forever`` and restores the old one
  after, so ``UvloopLoop`` needs none of this.

Some facts behind :meth:`IOLoop.stats` on the bridge (``docs/ioloop.md``,
"Loop statistics", says what each number means on each backend):

- asyncio's selector loop calls ``self._selector.select(timeout)`` once per
  iteration, with ``timeout`` 0 when handles are ready, and nothing else
  waits. So the bridge replaces that selector with :class:`_TimedSelector`,
  which times ``select`` and hands every other method straight to the real
  selector: iterations, idle and busy time are measured as on the native
  loop. What runs in an iteration is the handles queued in ``_ready`` when
  ``select`` returns, plus one per event it returns, plus the timers that
  come due; the bridge counts its own timers, not those asyncio code sets
  straight on the asyncio loop.
- uvloop (libuv) offers no hook around its poll and no count of its
  iterations; its ``time()`` is libuv's clock, brought up to date at each
  call, in whole milliseconds. The bridge sees only what it dispatches
  itself (its callbacks, timers and fd handlers): the first dispatch in a
  new millisecond of ``time()`` counts as a new iteration, and busy time is
  the loop thread's CPU time between those (``time.pthread_getcpuclockid``),
  so a callback that blocks in a system call without using the CPU counts
  as idle there.
"""

from __future__ import annotations

import asyncio
import functools
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from reactor.backends.pollers.base import READ, WRITE
from reactor.concurrent import FUTURES
from reactor.ioloop import (
    FileLike,
    IOLoop,
    _as_future,
    _current,
    _forked_error,
    _LoopCounters,
)
from reactor.log import gen_log

# The attribute of an asyncio loop that holds its bridge (see for_asyncio_loop).
_BRIDGE_ATTR = "_reactor_bridge"
_monotonic = time.monotonic


class _TimedSelector:
    """An asyncio loop's selector with ``select`` timed for ``IOLoop.stats()``.

    Every method but ``select`` is the wrapped selector's own (bound once,
    or looked up on it), so asyncio's ``add_reader`` and the rest pay
    nothing for the wrapper. ``busy_start`` is when the last ``select``
    returned: the start of the busy stretch the next one ends.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        ready: Any,
        counters: _LoopCounters,
    ) -> None:
        self.selector = selector
        self._select = selector.select
        self.register = selector.register
        self.unregister = selector.unregister
        self.modify = selector.modify
        self.get_key = selector.get_key
        self.get_map = selector.get_map
        self.close = selector.close
        self._ready = ready  # the asyncio loop's deque of ready handles
        self._counters = counters
        self.busy_start = _monotonic()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.selector, name)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # Once per iteration: end_busy() inline, as the native loop's _run.
        counters = self._counters
        t0 = _monotonic()
        busy = t0 - self.busy_start
        counters.busy_time += busy
        if t0 >= counters.bucket_end:
            counters.rotate(t0)
        if busy > counters.longest:
            counters.longest = busy
        counters.iterations += 1
        events = self._select(timeout)
        if timeout == 0:
            self.busy_start = t0  # a poll that may not wait is busy
        else:
            t1 = self.busy_start = _monotonic()
            counters.idle_time += t1 - t0
        # What this iteration runs: the queued handles, one per event (a
        # reader or a writer; rarely both), and timers (counted as they run).
        counters.callbacks += len(self._ready) + len(events)
        return events

    def end_busy(self, now: float) -> None:
        """Count the busy stretch from ``busy_start`` to ``now`` (when the
        loop stops; ``select`` does the same inline)."""
        counters = self._counters
        busy = now - self.busy_start
        self.busy_start = now
        counters.busy_time += busy
        if now >= counters.bucket_end:
            counters.rotate(now)
        if busy > counters.longest:
            counters.longest = busy


class AsyncioLoop(IOLoop):
    """The IOLoop interface on an asyncio event loop.

    ``asyncio_loop``: wrap this loop (the bridge does not own it, and
    ``close`` leaves it open); by default a new loop is created and owned.
    """

    backend_name = "asyncio"

    # Bridges of asyncio loops that refuse new attributes (none of asyncio's
    # or uvloop's do): a plain table, pruned of closed loops as bridges are
    # made, so it keeps at most the loops still open.
    _unattributable: dict[asyncio.AbstractEventLoop, AsyncioLoop] = {}

    # Whether start() must give the asyncio loop a signal wakeup fd (see the
    # module docstring); uvloop sets its own.
    _needs_signal_wakeup = True

    def __init__(
        self,
        make_current: bool | None = True,
        asyncio_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._owns_loop = asyncio_loop is None
        self.asyncio_loop = asyncio_loop or self._new_asyncio_loop()
        self._register_bridge()
        self._handlers: dict[int, tuple[Any, Callable[[Any, int], Any]]] = {}
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._thread_ident = threading.get_ident()
        self._pid = os.getpid()  # see start(): a forked child must not run it
        self._signal_wakeup: tuple[socket.socket, socket.socket] | None = None
        self._closed = False
        self._run = self._run_callback  # bound once: one less object per callback
        self._run_timer_bound = self._run_timer
        self._counters = _LoopCounters()  # see stats()
        self._timed_selector: _TimedSelector | None = self._time_selector()
        super().__init__(make_current=make_current)

    def _time_selector(self) -> _TimedSelector | None:
        """Put a :class:`_TimedSelector` in front of the asyncio loop's
        selector (see the module docstring); None if it has none."""
        loop: Any = self.asyncio_loop
        selector = getattr(loop, "_selector", None)
        ready = getattr(loop, "_ready", None)
        if isinstance(selector, _TimedSelector):
            selector = selector.selector  # left by a bridge that was not closed
        if not isinstance(selector, selectors.BaseSelector) or ready is None:
            return None
        timed = _TimedSelector(selector, ready, self._counters)
        loop._selector = timed
        return timed

    def _untime_selector(self) -> None:
        timed = self._timed_selector
        self._timed_selector = None
        if timed is None:
            return
        loop: Any = self.asyncio_loop
        original = timed.selector
        if getattr(loop, "_selector", None) is timed:
            loop._selector = original

    def _new_asyncio_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    @classmethod
    def for_asyncio_loop(cls, asyncio_loop: asyncio.AbstractEventLoop) -> AsyncioLoop:
        """The bridge over an asyncio loop someone else runs (one per loop).

        The bridge lives as long as the asyncio loop does, and no longer.
        """
        loop = getattr(asyncio_loop, _BRIDGE_ATTR, None)
        if loop is None:
            loop = AsyncioLoop._unattributable.get(asyncio_loop)
        if loop is None:
            is_uvloop = type(asyncio_loop).__module__.startswith("uvloop")
            bridge = UvloopLoop if is_uvloop else AsyncioLoop
            loop = bridge(make_current=False, asyncio_loop=asyncio_loop)
        return loop

    def _register_bridge(self) -> None:
        existing = getattr(
            self.asyncio_loop, _BRIDGE_ATTR, None
        ) or AsyncioLoop._unattributable.get(self.asyncio_loop)
        if existing is not None and not existing._closed:
            # As in Tornado: two IOLoops over one asyncio loop would each
            # think they own its handlers and its current-loop slot.
            raise RuntimeError(
                f"{existing!r} already wraps {self.asyncio_loop!r}: use "
                "IOLoop.current() while it runs, or close that IOLoop first"
            )
        try:
            setattr(self.asyncio_loop, _BRIDGE_ATTR, self)
        except (AttributeError, TypeError):
            table = AsyncioLoop._unattributable
            for stale in [aloop for aloop in table if aloop.is_closed()]:
                del table[stale]
            table[self.asyncio_loop] = self

    def _unregister_bridge(self) -> None:
        if getattr(self.asyncio_loop, _BRIDGE_ATTR, None) is self:
            delattr(self.asyncio_loop, _BRIDGE_ATTR)
        elif AsyncioLoop._unattributable.get(self.asyncio_loop) is self:
            del AsyncioLoop._unattributable[self.asyncio_loop]

    def time(self) -> float:
        return self.asyncio_loop.time()

    # -- running -----------------------------------------------------------

    def _is_running(self) -> bool:
        return self.asyncio_loop.is_running()

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("the IOLoop is closed")
        if self._pid != os.getpid():
            raise _forked_error(self, self._pid)
        old_current = _current.loop
        _current.loop = self
        self._thread_ident = threading.get_ident()
        wakeup_fd = -1
        if self._needs_signal_wakeup and threading.current_thread() is threading.main_thread():
            wakeup_fd = self._install_signal_wakeup()
        self._started()
        try:
            self.asyncio_loop.run_forever()
        finally:
            self._stopped()
            if wakeup_fd != -1:
                # Put back "none", unless asyncio code took the wakeup fd
                # meanwhile (add_signal_handler): then it stays theirs.
                now = signal.set_wakeup_fd(-1)
                if now != wakeup_fd:
                    signal.set_wakeup_fd(now)
            _current.loop = old_current

    def _started(self) -> None:
        """The loop starts: the time it stood still is nobody's busy time."""
        if self._timed_selector is not None:
            self._timed_selector.busy_start = _monotonic()

    def _stopped(self) -> None:
        """The loop stopped: count the busy stretch after its last poll."""
        if self._timed_selector is not None:
            self._timed_selector.end_busy(_monotonic())

    def _install_signal_wakeup(self) -> int:
        """Make a socket the asyncio loop watches the signal wakeup fd, if
        none is set; return its fd, or -1 if another one was kept."""
        if self._signal_wakeup is None:
            r, w = socket.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            self.asyncio_loop.add_reader(r.fileno(), _drain, r)
            self._signal_wakeup = (r, w)
        fd = self._signal_wakeup[1].fileno()
        old = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        if old != -1:
            signal.set_wakeup_fd(old)  # someone's own (asyncio's signal handling)
            return -1
        return fd

    def stop(self) -> None:
        if threading.get_ident() == self._thread_ident:
            self.asyncio_loop.stop()
        else:
            try:
                self.asyncio_loop.call_soon_threadsafe(self.asyncio_loop.stop)
            except RuntimeError:
                pass  # the asyncio loop is closed: nothing left to stop

    def close(self, all_fds: bool = False) -> None:
        if self.asyncio_loop.is_running():
            raise RuntimeError("cannot close a running IOLoop")
        if self._closed:
            return
        self._closed = True
        for fd in list(self._handlers):
            fileobj, _ = self._handlers[fd]
            self.remove_handler(fd)
            if all_fds:
                self.close_fd(fileobj)
        if self._signal_wakeup is not None:
            r, w = self._signal_wakeup
            self._signal_wakeup = None
            try:
                self.asyncio_loop.remove_reader(r.fileno())
            except (OSError, ValueError, RuntimeError):
                pass
            r.close()
            w.close()
        self._untime_selector()
        self._unregister_bridge()
        super().close(all_fds)
        if self._owns_loop:
            self.asyncio_loop.close()

    # -- file descriptors ----------------------------------------------------

    def add_handler(self, fd: FileLike, handler: Callable[[Any, int], Any], events: int) -> None:
        fd_number, fileobj = self.split_fd(fd)
        if fd_number in self._handlers:
            raise ValueError(f"fd {fd_number} added twice")
        self._handlers[fd_number] = (fileobj, handler)
        self.update_handler(fd_number, events)

    def update_handler(self, fd: FileLike, events: int) -> None:
        fd_number, _ = self.split_fd(fd)
        if fd_number not in self._handlers:
            raise KeyError(f"fd {fd_number} is not registered")
        loop = self.asyncio_loop
        if events & READ:
            if fd_number not in self._readers:
                loop.add_reader(fd_number, self._handle_events, fd_number, READ)
                self._readers.add(fd_number)
        elif fd_number in self._readers:
            loop.remove_reader(fd_number)
            self._readers.discard(fd_number)
        if events & WRITE:
            if fd_number not in self._writers:
                loop.add_writer(fd_number, self._handle_events, fd_number, WRITE)
                self._writers.add(fd_number)
        elif fd_number in self._writers:
            loop.remove_writer(fd_number)
            self._writers.discard(fd_number)

    def remove_handler(self, fd: FileLike) -> None:
        fd_number, _ = self.split_fd(fd)
        if self._handlers.pop(fd_number, None) is None:
            return
        try:
            if fd_number in self._readers:
                self.asyncio_loop.remove_reader(fd_number)
            if fd_number in self._writers:
                self.asyncio_loop.remove_writer(fd_number)
        except (OSError, ValueError):
            gen_log.debug("error unregistering fd %d", fd_number, exc_info=True)
        self._readers.discard(fd_number)
        self._writers.discard(fd_number)

    def _handle_events(self, fd: int, events: int) -> None:
        entry = self._handlers.get(fd)
        if entry is None:
            return
        try:
            entry[1](entry[0], events)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            self.handle_callback_exception(entry[1])

    # -- callbacks and timers ------------------------------------------------

    def _run_callback(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            ret = callback(*args)
            if ret is not None:
                self._returned(ret)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:  # asyncio.CancelledError included, as the native loop does
            self.handle_callback_exception(callback)

    def _returned(self, ret: Any) -> None:
        if isinstance(ret, FUTURES) or hasattr(ret, "__await__"):
            self.add_future(_as_future(ret), self._discard_future_result)

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        try:
            if threading.get_ident() == self._thread_ident:
                self.asyncio_loop.call_soon(self._run, callback, args)
            else:
                self.asyncio_loop.call_soon_threadsafe(self._run, callback, args)
        except RuntimeError:
            # The asyncio loop is closed. Like the native loop, a callback
            # added to a closed loop is dropped rather than raising into
            # whatever thread is shutting down.
            pass

    def add_callback_from_signal(
        self, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        self.asyncio_loop.call_soon_threadsafe(self._run, callback, args)

    def _run_timer(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        # _run_callback's body inline (one frame per timer), after the counts.
        lag = self.asyncio_loop.time() - when
        counters = self._counters
        # asyncio runs a timer up to its clock's resolution early: not late.
        counters.timer_lag = lag if lag > 0.0 else 0.0
        counters.callbacks += 1
        try:
            ret = callback(*args)
            if ret is not None:
                self._returned(ret)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            self.handle_callback_exception(callback)

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        return self.asyncio_loop.call_at(when, self._run_timer_bound, when, callback, args)

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        # Straight to the asyncio loop's call_at (its call_later is that,
        # after the same addition); the deadline is kept for timer_lag.
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        loop = self.asyncio_loop
        when = loop.time() + delay
        return loop.call_at(when, self._run_timer_bound, when, callback, args)

    def remove_timeout(self, timeout: object) -> None:
        # asyncio.TimerHandle, or uvloop's own TimerHandle class.
        timeout.cancel()  # type: ignore[attr-defined]

    # -- statistics -------------------------------------------------------------

    def stats(self) -> dict[str, float | int | str]:
        loop: Any = self.asyncio_loop
        timed = self._timed_selector
        if timed is None:  # no selector (a proactor loop): the bridge's own
            fds = len(self._handlers)
        else:
            watched = timed.get_map()
            fds = len(watched)
            internal = [getattr(loop, "_ssock", None)]  # asyncio's self-pipe
            if self._signal_wakeup is not None:
                internal.append(self._signal_wakeup[0])
            for sock in internal:
                if sock is not None and sock.fileno() in watched:
                    fds -= 1
        # Every timer of the asyncio loop; cancelled ones wait in the heap.
        timers = len(getattr(loop, "_scheduled", ())) - getattr(loop, "_timer_cancelled_count", 0)
        return self._counters.as_stats(self.backend_name, _monotonic(), fds, timers)


class UvloopLoop(AsyncioLoop):
    """The asyncio bridge on a uvloop event loop.

    :meth:`stats` is an estimate here (see the module docstring): iterations
    are the milliseconds of ``time()`` in which the bridge dispatched something,
    busy time is the loop thread's CPU time, and ``fds`` and ``timers`` are
    the bridge's own (asyncio code's transports and timers on the uvloop
    loop are not seen).
    """

    backend_name = "uvloop"
    _needs_signal_wakeup = False  # uvloop's run_forever sets its own wakeup fd

    def __init__(
        self,
        make_current: bool | None = True,
        asyncio_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(make_current=make_current, asyncio_loop=asyncio_loop)
        # The bridge's own timers, for stats()'s estimate of those pending.
        self._timers_set = 0
        self._timers_ran = 0
        self._timers_cancelled = 0
        self._clock = self.asyncio_loop.time
        # The millisecond of time() the bridge last dispatched in (a counted
        # iteration), and the loop thread's wall and CPU clocks at its start.
        self._tick = -1.0
        self._tick_wall = _monotonic()
        self._cpu_time = _thread_cpu_clock(threading.get_ident())
        self._tick_cpu = self._cpu_time()

    def _new_asyncio_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        return uvloop.new_event_loop()

    def _time_selector(self) -> _TimedSelector | None:
        return None  # uvloop has no selector: see _next_tick

    def _next_tick(self, now: float) -> None:
        """The first dispatch in a new millisecond: count the stretch before."""
        self._tick = now
        self._counters.iterations += 1
        self._end_stretch()

    def _end_stretch(self) -> None:
        wall = _monotonic()
        cpu = self._cpu_time()
        busy = cpu - self._tick_cpu
        counters = self._counters
        counters.busy_time += busy
        idle = wall - self._tick_wall - busy
        if idle > 0.0:
            counters.idle_time += idle
        if wall >= counters.bucket_end:
            counters.rotate(wall)
        if busy > counters.longest:
            counters.longest = busy
        self._tick_wall = wall
        self._tick_cpu = cpu

    def _started(self) -> None:
        self._cpu_time = _thread_cpu_clock(threading.get_ident())
        self._tick_wall = _monotonic()
        self._tick_cpu = self._cpu_time()

    def _stopped(self) -> None:
        self._end_stretch()

    # The dispatch of AsyncioLoop, each with the counting inline (one frame
    # per callback, as there): a new millisecond of time() is a new iteration.

    def _run_callback(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        now = self._clock()
        if now != self._tick:
            self._next_tick(now)
        self._counters.callbacks += 1
        try:
            ret = callback(*args)
            if ret is not None:
                self._returned(ret)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            self.handle_callback_exception(callback)

    def _run_timer(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        now = self._clock()
        if now != self._tick:
            self._next_tick(now)
        counters = self._counters
        lag = now - when
        # uvloop rounds deadlines to milliseconds: a timer a little early is not late.
        counters.timer_lag = lag if lag > 0.0 else 0.0
        counters.callbacks += 1
        self._timers_ran += 1
        try:
            ret = callback(*args)
            if ret is not None:
                self._returned(ret)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            self.handle_callback_exception(callback)

    def _handle_events(self, fd: int, events: int) -> None:
        now = self._clock()
        if now != self._tick:
            self._next_tick(now)
        self._counters.callbacks += 1
        entry = self._handlers.get(fd)
        if entry is None:
            return
        try:
            entry[1](entry[0], events)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            self.handle_callback_exception(entry[1])

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        self._timers_set += 1
        return self.asyncio_loop.call_at(when, self._run_timer_bound, when, callback, args)

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> asyncio.TimerHandle:
        # uvloop's call_later is its fast path (its call_at goes through it).
        if kwargs:
            callback = functools.partial(callback, **kwargs)
        loop = self.asyncio_loop
        self._timers_set += 1
        return loop.call_later(delay, self._run_timer_bound, loop.time() + delay, callback, args)

    def remove_timeout(self, timeout: object) -> None:
        # uvloop's TimerHandle does not say whether it ran; one whose
        # deadline is still ahead has not (for the estimate in stats()).
        # Its clock counts milliseconds, and when() can exceed time() by a
        # rounding error after the timer ran: ahead means by over 0.5 ms. A
        # deadline already past gives a plain Handle, without when(): run.
        handle: Any = timeout
        if not handle.cancelled() and getattr(handle, "when", _never)() > self._clock() + 0.0005:
            self._timers_cancelled += 1
        handle.cancel()

    def stats(self) -> dict[str, float | int | str]:
        pending = self._timers_set - self._timers_ran - self._timers_cancelled
        return self._counters.as_stats(
            self.backend_name, _monotonic(), len(self._handlers), pending if pending > 0 else 0
        )


def _never() -> float:
    return float("-inf")


def _thread_cpu_clock(thread_ident: int) -> Callable[[], float]:
    """A clock of the CPU time thread ``thread_ident`` has used, readable
    from any thread (``time.thread_time`` where the platform has no
    per-thread clock id: then only right in that thread)."""
    try:
        clock_id = time.pthread_getcpuclockid(thread_ident)
    except (AttributeError, OSError):
        return time.thread_time
    return functools.partial(time.clock_gettime, clock_id)


def _drain(sock: socket.socket) -> None:
    """Empty the signal wakeup socket: its bytes only had to wake the loop."""
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
