"""A kevent emulation, so that the kqueue backend's own code runs here on Linux.

This tests *our* KqueuePoller (its filter bookkeeping, merging of per-filter
events, EV_EOF handling), not kqueue's real-world behaviour. The emulation
models, on top of poll(2):

- one registration per (fd, filter), added with EV_ADD and removed with
  EV_DELETE; deleting a filter that is not registered fails with ENOENT, and
  deleting one of a closed fd fails with EBADF, as kqueue does;
- level-triggered readiness: EVFILT_READ fires while POLLIN (or a hang-up
  or an error) is reported, EVFILT_WRITE while POLLOUT (or a hang-up or an
  error) is;
- EV_EOF on the read filter when the peer hung up (POLLRDHUP/POLLHUP), and on
  the write filter when the fd hung up or failed (as for a refused connect);
- a closed fd's filters disappear (kqueue drops them on close(2)).

It does not model EV_ONESHOT, EV_CLEAR (edge triggering), EV_DISPATCH, the
``data`` byte counts, timers, signals, vnodes or process filters, and
``fileno()`` is not a pollable fd. Nothing in KqueuePoller uses those.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
from typing import Any

from reactor.backends.pollers.kqueuepoller import KqueuePoller

KQ_FILTER_READ = -1
KQ_FILTER_WRITE = -2
KQ_EV_ADD = 0x0001
KQ_EV_DELETE = 0x0002
KQ_EV_ERROR = 0x4000
KQ_EV_EOF = 0x8000

_RDHUP = getattr(select, "POLLRDHUP", 0x2000)
_HUP_OR_ERR = select.POLLHUP | select.POLLERR


class kevent:
    def __init__(
        self,
        ident: int,
        filter: int = KQ_FILTER_READ,
        flags: int = KQ_EV_ADD,
        fflags: int = 0,
        data: int = 0,
        udata: Any = 0,
    ) -> None:
        self.ident = ident if isinstance(ident, int) else ident.fileno()
        self.filter = filter
        self.flags = flags
        self.fflags = fflags
        self.data = data
        self.udata = udata

    def __repr__(self) -> str:
        return f"<emulated kevent ident={self.ident} filter={self.filter} flags={self.flags:#x}>"


class kqueue:
    def __init__(self) -> None:
        self._poll = select.poll()
        self._filters: dict[int, set[int]] = {}
        self.closed = False

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.closed = True
        self._filters.clear()

    def control(
        self, changelist: list[kevent] | None, max_events: int, timeout: float | None = None
    ) -> list[kevent]:
        if self.closed:
            raise ValueError("I/O operation on closed kqueue object")
        for change in changelist or ():
            self._apply(change)
        if max_events == 0:
            return []
        ready = self._poll.poll(None if timeout is None else timeout * 1000)
        result: list[kevent] = []
        for fd, events in ready:
            if events & select.POLLNVAL:
                self._forget(fd)
                continue
            filters = self._filters.get(fd, ())
            if KQ_FILTER_READ in filters and events & (select.POLLIN | _RDHUP | _HUP_OR_ERR):
                eof = KQ_EV_EOF if events & (_RDHUP | select.POLLHUP) else 0
                result.append(kevent(fd, KQ_FILTER_READ, eof))
            if KQ_FILTER_WRITE in filters and events & (select.POLLOUT | _HUP_OR_ERR):
                eof = KQ_EV_EOF if events & _HUP_OR_ERR else 0
                result.append(kevent(fd, KQ_FILTER_WRITE, eof))
        return result[:max_events]

    def _apply(self, change: kevent) -> None:
        fd = change.ident
        filters = self._filters.setdefault(fd, set())
        if change.flags & KQ_EV_ADD:
            _check_open(fd)
            filters.add(change.filter)
        elif change.flags & KQ_EV_DELETE:
            _check_open(fd)
            if change.filter not in filters:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            filters.discard(change.filter)
        mask = 0
        if KQ_FILTER_READ in filters:
            mask |= select.POLLIN | _RDHUP
        if KQ_FILTER_WRITE in filters:
            mask |= select.POLLOUT
        if mask:
            self._poll.register(fd, mask)
        else:
            self._forget(fd)

    def _forget(self, fd: int) -> None:
        self._filters.pop(fd, None)
        try:
            self._poll.unregister(fd)
        except KeyError:
            pass


def _check_open(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None


class _EmulatedKqueueModule:
    """Stands in for :mod:`select` where KqueuePoller looks up kqueue's names."""

    kqueue = kqueue
    kevent = kevent
    KQ_FILTER_READ = KQ_FILTER_READ
    KQ_FILTER_WRITE = KQ_FILTER_WRITE
    KQ_EV_ADD = KQ_EV_ADD
    KQ_EV_DELETE = KQ_EV_DELETE
    KQ_EV_ERROR = KQ_EV_ERROR
    KQ_EV_EOF = KQ_EV_EOF


class EmulatedKqueuePoller(KqueuePoller):
    """KqueuePoller's code over the emulation above (registry name "kqueue")."""

    def __init__(self) -> None:
        super().__init__(kqueue_module=_EmulatedKqueueModule)
