"""The epoll(7) backend, Linux's scalable poller and its default.

Some facts about epoll (each is a conformance test):

- epoll watches the open file description, not the fd number. Closing an fd
  removes it from the set only when no duplicate (dup(), fork) still refers to
  the same description; until then events keep arriving for a number that may
  now mean something else. So handlers must be removed *before* their fd is
  closed; ``unregister`` of an already-closed fd fails with EBADF/ENOENT,
  which we swallow because the registration is gone either way.
- EPOLLERR and EPOLLHUP are always reported. A socket whose peer closed is
  readable (a read returns b""); a pipe whose writer closed reports EPOLLHUP.
- The cost of an idle epoll_wait does not depend on how many fds are
  registered, which is the point of it.
- Our READ/WRITE/ERROR values are EPOLLIN/EPOLLOUT/EPOLLERR|EPOLLHUP, so the
  kernel's masks pass through untranslated. We never register EPOLLRDHUP,
  EPOLLPRI or EPOLLET, so no other bit can appear.
"""

from __future__ import annotations

import select

from .base import Poller


class EpollPoller(Poller):
    """Level-triggered readiness through epoll(7)."""

    name = "epoll"

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._fds: set[int] = set()
        # The loop calls poll() once per iteration: hand it the C method
        # itself (it takes None for "forever"), saving a Python frame each time.
        self.poll = self._epoll.poll  # type: ignore[method-assign]

    def fileno(self) -> int:
        return self._epoll.fileno()

    def register(self, fd: int, events: int) -> None:
        if fd in self._fds:
            raise FileExistsError(f"fd {fd} is already registered")
        self._epoll.register(fd, events)
        self._fds.add(fd)

    def modify(self, fd: int, events: int) -> None:
        if fd not in self._fds:
            raise KeyError(f"fd {fd} is not registered")
        self._epoll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._fds.remove(fd)
        try:
            self._epoll.unregister(fd)
        except OSError:
            pass  # closed before it was unregistered: the kernel dropped it

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        return self._epoll.poll(timeout)  # replaced by the C method in __init__

    def close(self) -> None:
        self._epoll.close()
        self._fds.clear()
