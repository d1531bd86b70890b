"""The poll(2) backend: no FD_SETSIZE limit, cost still linear in fds watched.

Facts worth knowing:

- poll reports POLLERR, POLLHUP and POLLNVAL whether or not they were asked
  for. POLLNVAL means the fd was closed while registered; we report it as
  ERROR so its handler learns, and the loop can drop it.
- A pipe whose writer closed reports POLLHUP, without POLLIN on Linux once the
  pipe is empty; a socket whose peer closed reports POLLIN (read returns b"").
- Our READ/WRITE/ERROR values are poll's own, so results pass through
  untranslated unless an unusual bit (POLLNVAL, POLLPRI...) is present.
"""

from __future__ import annotations

import select

from .base import ERROR, EVENT_MASK, Poller

_NVAL = select.POLLNVAL if hasattr(select, "POLLNVAL") else 0x020


class PollPoller(Poller):
    """Level-triggered readiness through poll(2)."""

    name = "poll"

    def __init__(self) -> None:
        self._poll = select.poll()
        self._fds: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd in self._fds:
            raise FileExistsError(f"fd {fd} is already registered")
        self._poll.register(fd, events)
        self._fds.add(fd)

    def modify(self, fd: int, events: int) -> None:
        if fd not in self._fds:
            raise KeyError(f"fd {fd} is not registered")
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._fds.remove(fd)
        self._poll.unregister(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        # poll() takes milliseconds and rounds them up, so short timers do not spin.
        ready = self._poll.poll(None if timeout is None else timeout * 1000)
        for ev in ready:
            if ev[1] & ~EVENT_MASK:
                return [_translate(fd, events) for fd, events in ready]
        return ready

    def close(self) -> None:
        self._fds.clear()


def _translate(fd: int, events: int) -> tuple[int, int]:
    if events & _NVAL:
        events |= ERROR
    return fd, events & EVENT_MASK
