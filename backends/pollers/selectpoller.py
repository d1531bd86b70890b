"""The select(2) backend: portable, and limited to FD_SETSIZE descriptors.

Facts worth knowing:

- select() can only watch fds numbered below FD_SETSIZE (1024 on Linux and
  macOS). CPython raises ``ValueError`` from inside ``select.select`` for a
  larger fd, which would surface deep in the loop, long after the fd was
  added; we refuse it at ``register`` instead, with a message naming the fix.
- The cost of one call grows with the number of fds watched (the sets are
  copied into the kernel and scanned on every call).
- A peer's hang-up shows up as readable (a read returns b""), not as an
  error; the "exceptional" set reports out-of-band data and, on some systems,
  a failed non-blocking connect. We report the exceptional set as ERROR.
"""

from __future__ import annotations

import select

from .base import ERROR, READ, WRITE, Poller

FD_SETSIZE = 1024  # the same on Linux, macOS and the BSDs' default build


class SelectPoller(Poller):
    """Level-triggered readiness through select(2)."""

    name = "select"
    max_fd = FD_SETSIZE

    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._errors: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd in self._errors:
            raise FileExistsError(f"fd {fd} is already registered")
        self._check_fd(fd)
        self._errors.add(fd)  # errors are always reported
        if events & READ:
            self._readers.add(fd)
        if events & WRITE:
            self._writers.add(fd)

    def modify(self, fd: int, events: int) -> None:
        if fd not in self._errors:
            raise KeyError(f"fd {fd} is not registered")
        self.unregister(fd)
        self.register(fd, events)

    def unregister(self, fd: int) -> None:
        self._errors.remove(fd)  # KeyError if unknown, like the others
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        readable, writable, failed = select.select(
            self._readers, self._writers, self._errors, timeout
        )
        if not writable and not failed:
            return [(fd, READ) for fd in readable]
        events: dict[int, int] = dict.fromkeys(readable, READ)
        for fd in writable:
            events[fd] = events.get(fd, 0) | WRITE
        for fd in failed:
            events[fd] = events.get(fd, 0) | ERROR
        return list(events.items())

    def close(self) -> None:
        self._readers.clear()
        self._writers.clear()
        self._errors.clear()
