"""The registry of event-loop backends: which exist, which work here, and why.

A backend is either a :class:`~reactor.backends.pollers.base.Poller` (run under reactor's own
loop, :class:`reactor.ioloop.PollIOLoop`) or a complete
:class:`reactor.ioloop.IOLoop` implementation (the asyncio bridge).

How the default is chosen, in order of preference for the platform:

- **Linux: epoll, poll, select.** epoll's cost per wait does not grow with the
  number of idle fds; poll has no FD_SETSIZE limit; select is the last resort.
- **macOS and the BSDs: kqueue, poll, select.** kqueue is the native scalable
  poller there. (poll on old macOS could not watch devices; kqueue avoids it.)
- **Anything else: poll, select.**

Every candidate is *probed*: a backend counts as available only if this
kernel really supports it. ``select.epoll`` can exist in a Python built on a
kernel that lacks the syscall (Tornado issue #615), so we create and close
one instead of trusting ``hasattr``.

The asyncio bridge backends (``asyncio``, ``uvloop``) are never the default:
the native loop is faster for reactor's own layers, and running on asyncio is
a deliberate choice.

Nothing here is imported or probed until asked: importing :mod:`reactor`
chooses no backend.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import select
import sys
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "Backend",
    "BackendError",
    "available",
    "default_name",
    "get",
    "load",
]

ENTRY_POINT_GROUP = "reactor.backends"
"""Third-party packages register backends (``name = "module:Class"``) here."""


class BackendError(RuntimeError):
    """A backend was asked for that does not exist or cannot run here."""


def _probe_select() -> str | None:
    return None if hasattr(select, "select") else "select.select is missing"


def _probe_poll() -> str | None:
    if not hasattr(select, "poll"):
        return f"select.poll does not exist on {sys.platform}"
    select.poll()
    return None


def _probe_epoll() -> str | None:
    if not hasattr(select, "epoll"):
        return f"epoll is Linux-only; select.epoll does not exist on {sys.platform}"
    try:
        select.epoll().close()
    except OSError as e:
        return f"the kernel refused epoll_create: {e}"
    return None


def _probe_kqueue() -> str | None:
    if not hasattr(select, "kqueue"):
        return f"kqueue is BSD/macOS-only; select.kqueue does not exist on {sys.platform}"
    try:
        select.kqueue().close()
    except OSError as e:
        return f"the kernel refused kqueue(): {e}"
    return None


def _probe_asyncio() -> str | None:
    return None


def _probe_uvloop() -> str | None:
    try:
        import uvloop  # noqa: F401
    except ImportError as e:
        return f"uvloop is not installed ({e}); pip install uvloop"
    return None


@dataclass(frozen=True)
class Backend:
    """One entry of the registry."""

    name: str
    target: str
    """``module:Class`` of the Poller or IOLoop class that implements it."""
    description: str
    probe: Callable[[], str | None]
    """Returns None when usable here, else the reason it is not."""

    def unavailable_reason(self) -> str | None:
        try:
            return self.probe()
        except Exception as e:  # a probe that crashes means "not here"
            return f"probe failed: {e!r}"

    def load(self) -> type:
        """Import and return the implementing class (no availability check)."""
        return _import_target(self.target)


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend(
            "epoll",
            "reactor.backends.pollers.epollpoller:EpollPoller",
            "Linux epoll(7) under reactor's native loop; O(1) in idle fds",
            _probe_epoll,
        ),
        Backend(
            "kqueue",
            "reactor.backends.pollers.kqueuepoller:KqueuePoller",
            "BSD/macOS kqueue(2) under reactor's native loop; O(1) in idle fds",
            _probe_kqueue,
        ),
        Backend(
            "poll",
            "reactor.backends.pollers.pollpoller:PollPoller",
            "POSIX poll(2) under reactor's native loop; no fd limit, O(n) per wait",
            _probe_poll,
        ),
        Backend(
            "select",
            "reactor.backends.pollers.selectpoller:SelectPoller",
            "select(2) under reactor's native loop; fds < FD_SETSIZE (1024), O(n)",
            _probe_select,
        ),
        Backend(
            "asyncio",
            "reactor.backends.loops.asyncioloop:AsyncioLoop",
            "the asyncio bridge on the standard library's default event loop",
            _probe_asyncio,
        ),
        Backend(
            "uvloop",
            "reactor.backends.loops.asyncioloop:UvloopLoop",
            "the asyncio bridge on uvloop (libuv)",
            _probe_uvloop,
        ),
    ]
}


def _default_order() -> list[str]:
    if sys.platform.startswith("linux"):
        return ["epoll", "poll", "select"]
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return ["kqueue", "poll", "select"]
    return ["poll", "select"]


def available() -> dict[str, str | None]:
    """Every known backend (built-in, then entry points) and why it is unusable.

    Maps name to None when the backend is usable here, else to the reason.
    """
    result = {name: b.unavailable_reason() for name, b in BACKENDS.items()}
    for ep in _entry_points():
        result.setdefault(ep.name, None)
    return result


def default_name() -> str:
    """The first available backend in the platform's order of preference."""
    for name in _default_order():
        if BACKENDS[name].unavailable_reason() is None:
            return name
    raise BackendError("no native backend is available on this machine")


def get(spec: str | type | None = None) -> tuple[str, type]:
    """Resolve a backend choice to ``(name, class)``.

    ``spec`` is a registry name, ``package.module:Class``, the name of an entry
    point in the ``reactor.backends`` group, a class, or None for the default.
    The class is a :class:`~reactor.backends.pollers.base.Poller` or an IOLoop subclass.

    Raises :class:`BackendError`, listing what is available, for anything
    unknown or unusable here. It never falls back silently.
    """
    if spec is None:
        spec = default_name()
    if isinstance(spec, type):
        return str(getattr(spec, "name", None) or spec.__name__), spec
    name = spec.strip()
    backend = BACKENDS.get(name)
    if backend is not None:
        reason = backend.unavailable_reason()
        if reason is not None:
            raise BackendError(
                f"backend {name!r} is not available on {sys.platform}: {reason}; "
                f"available: {_describe_available()}"
            )
        return name, backend.load()
    if ":" in name:
        try:
            return name, _import_target(name)
        except (ImportError, AttributeError) as e:
            raise BackendError(
                f"cannot load backend {name!r}: {e}; available: {_describe_available()}"
            ) from e
    for ep in _entry_points():
        if ep.name == name:
            try:
                return name, ep.load()
            except Exception as e:
                raise BackendError(
                    f"backend {name!r} (entry point {ep.value}) failed to load: {e}"
                ) from e
    raise BackendError(
        f"unknown backend {name!r}; available: {_describe_available()} "
        "(or give package.module:Class)"
    )


def load(spec: str | type | None = None) -> type:
    """The class that implements ``spec``; see :func:`get`."""
    return get(spec)[1]


def _describe_available() -> str:
    try:
        default: str | None = default_name()
    except BackendError:
        default = None
    names = [
        f"{name} (default)" if name == default else name
        for name, reason in available().items()
        if reason is None
    ]
    return ", ".join(names) or "none"


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _import_target(target: str) -> type:
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise BackendError(f"{target!r} is not a class")
    return obj


def env_choice() -> str | None:
    """The backend named by ``REACTOR_BACKEND``, if set and not empty."""
    return os.environ.get("REACTOR_BACKEND") or None
