"""The kqueue(2) backend, the BSDs' and macOS's scalable poller.

Some facts about kqueue (each is a conformance test):

- kqueue has one filter per direction: EVFILT_READ and EVFILT_WRITE are
  separate registrations of the same fd, added and deleted one by one, and
  readiness arrives as one kevent per filter. We merge them back per fd.
- Deleting a filter that is not registered fails with ENOENT, so we remember
  which filters each fd has.
- Closing an fd removes its filters from every kqueue automatically; deleting
  them afterwards fails with EBADF/ENOENT, which we swallow.
- A peer's hang-up sets EV_EOF on the read filter (and the read returns b"").
  A refused non-blocking connect arrives as a write event with EV_EOF set; we
  report that as ERROR, as poll and epoll report POLLERR/EPOLLERR.

``kqueue_module`` exists so that the same code can run against the kevent
emulation in the test suite on systems without kqueue; it defaults to
:mod:`select`.
"""

from __future__ import annotations

import select
from types import ModuleType
from typing import Any

from .base import ERROR, READ, WRITE, Poller

_MAX_EVENTS = 1024


class KqueuePoller(Poller):
    """Level-triggered readiness through kqueue(2)."""

    name = "kqueue"

    def __init__(self, kqueue_module: ModuleType | Any = select) -> None:
        self._k = kqueue_module
        self._kqueue = kqueue_module.kqueue()
        self._fds: dict[int, int] = {}
        self._READ = kqueue_module.KQ_FILTER_READ
        self._WRITE = kqueue_module.KQ_FILTER_WRITE
        self._EOF = kqueue_module.KQ_EV_EOF
        self._EV_ERROR = kqueue_module.KQ_EV_ERROR

    def fileno(self) -> int:
        return int(self._kqueue.fileno())

    def register(self, fd: int, events: int) -> None:
        if fd in self._fds:
            raise FileExistsError(f"fd {fd} is already registered")
        self._control(fd, events, self._k.KQ_EV_ADD)
        self._fds[fd] = events

    def modify(self, fd: int, events: int) -> None:
        old = self._fds[fd]
        self._control(fd, old & ~events, self._k.KQ_EV_DELETE)
        self._control(fd, events & ~old, self._k.KQ_EV_ADD)
        self._fds[fd] = events

    def unregister(self, fd: int) -> None:
        events = self._fds.pop(fd)
        try:
            self._control(fd, events, self._k.KQ_EV_DELETE)
        except OSError:
            pass  # the fd was closed first: the kernel already dropped it

    def _control(self, fd: int, events: int, flags: int) -> None:
        changes = []
        if events & READ:
            changes.append(self._k.kevent(fd, filter=self._READ, flags=flags))
        if events & WRITE:
            changes.append(self._k.kevent(fd, filter=self._WRITE, flags=flags))
        if changes:
            self._kqueue.control(changes, 0)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        kevents = self._kqueue.control(None, _MAX_EVENTS, timeout)
        events: dict[int, int] = {}
        for kev in kevents:
            fd = kev.ident
            if kev.filter == self._READ:
                mask = READ
            elif kev.flags & self._EOF:
                mask = ERROR  # a refused connect: report it as poll/epoll would
            else:
                mask = WRITE
            if kev.flags & self._EV_ERROR:
                mask |= ERROR
            events[fd] = events.get(fd, 0) | mask
        return list(events.items())

    def close(self) -> None:
        self._kqueue.close()
        self._fds.clear()
