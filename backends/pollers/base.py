"""The poller interface every native backend implements.

A poller is the one thing that differs between the native backends: it watches
file descriptors for readiness and says which are ready. Everything else (the
callback queue, timers, the waker, signals) lives once, in
:class:`reactor.ioloop.PollIOLoop`.

Events are neutral bit flags. Their values coincide with poll(2)'s ``POLLIN``,
``POLLOUT`` and ``POLLERR | POLLHUP`` so that the poll and epoll pollers pass
the kernel's masks through without translating them per event; select and
kqueue map their own vocabulary onto them.
"""

from __future__ import annotations

import abc
import selectors
from collections.abc import Mapping
from typing import Any, ClassVar

READ = 0x001
"""The fd is readable, or a read would not block (including at end of file)."""
WRITE = 0x004
"""The fd is writable."""
ERROR = 0x018
"""The fd has an error or the peer hung up. Always reported, never needs asking."""

EVENT_MASK = READ | WRITE | ERROR


class Poller(abc.ABC):
    """Watches file descriptors for readiness.

    Contracts callers may rely on:

    - ``register`` of an fd that is already registered raises
      :class:`FileExistsError`; ``modify``/``unregister`` of an fd that is not
      registered raises :class:`KeyError`.
    - ``ERROR`` is reported whether or not it was asked for.
    - ``poll`` returns each ready fd at most once, with the union of its
      events; an empty list means the timeout expired (or a signal arrived).
    - After ``close`` the poller may not be used again.
    """

    name: ClassVar[str] = "abstract"
    """The registry name of this backend, reported as ``IOLoop.backend_name``."""

    max_fd: ClassVar[int | None] = None
    """The highest fd number plus one that this poller can watch, or None."""

    @abc.abstractmethod
    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (a mask of READ/WRITE/ERROR)."""

    @abc.abstractmethod
    def modify(self, fd: int, events: int) -> None:
        """Replace the events ``fd`` is watched for."""

    @abc.abstractmethod
    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``. Safe to call after the fd was closed."""

    @abc.abstractmethod
    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait at most ``timeout`` seconds (None: forever) for readiness.

        Returns ``[(fd, events), ...]``: a new list each call, which the
        caller owns and may overwrite (the loop strikes out stale entries).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the kernel object behind the poller, if any."""

    def fileno(self) -> int:
        """The fd of the kernel object behind the poller, or -1 if none."""
        return -1

    def _check_fd(self, fd: int) -> None:
        if self.max_fd is not None and fd >= self.max_fd:
            raise ValueError(
                f"the {self.name} backend cannot watch fd {fd}: it is limited to "
                f"fds below {self.max_fd} (FD_SETSIZE); use the poll or epoll "
                "backend to watch more file descriptors"
            )


class PollerSelector(selectors.BaseSelector):
    """A :class:`selectors.BaseSelector` view of a poller.

    ``asyncio.SelectorEventLoop(PollerSelector(PollPoller()))`` runs stdlib
    asyncio on our poll backend. The selector owns the poller and closes it.
    """

    def __init__(self, poller: Poller) -> None:
        self._poller = poller
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        fd = _fileobj_to_fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._poller.register(fd, _to_poller_events(events))
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = _fileobj_to_fd(fileobj)
        key = self._keys.pop(fd)  # KeyError if not registered, as selectors does
        self._poller.unregister(fd)
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = _fileobj_to_fd(fileobj)
        key = self._keys[fd]
        if events != key.events:
            self._poller.modify(fd, _to_poller_events(events))
        key = key._replace(events=events, data=data)
        self._keys[fd] = key
        return key

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout < 0:
            timeout = 0
        ready = []
        for fd, events in self._poller.poll(timeout):
            key = self._keys.get(fd)
            if key is None:
                continue
            mask = 0
            # ERROR counts as both: whatever the caller waits for will fail
            # promptly and tell it why, as the stdlib selectors do.
            if events & (READ | ERROR):
                mask |= selectors.EVENT_READ
            if events & (WRITE | ERROR):
                mask |= selectors.EVENT_WRITE
            mask &= key.events
            if mask:
                ready.append((key, mask))
        return ready

    def close(self) -> None:
        self._poller.close()
        self._keys.clear()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return _KeyMap(self._keys)

    def fileno(self) -> int:
        return self._poller.fileno()


class _KeyMap(Mapping[Any, selectors.SelectorKey]):
    def __init__(self, keys: dict[int, selectors.SelectorKey]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys[_fileobj_to_fd(fileobj)]

    def __iter__(self) -> Any:
        return iter(self._keys)


def _to_poller_events(events: int) -> int:
    mask = 0
    if events & selectors.EVENT_READ:
        mask |= READ
    if events & selectors.EVENT_WRITE:
        mask |= WRITE
    return mask


def _fileobj_to_fd(fileobj: Any) -> int:
    fd = fileobj if isinstance(fileobj, int) else int(fileobj.fileno())
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd
