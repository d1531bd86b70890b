"""reactor: an asynchronous networking library with interchangeable event loops.

Importing reactor chooses no backend; the first :class:`reactor.ioloop.IOLoop`
does (see :mod:`reactor.backends`).

Importing reactor imports none of its submodules either: as in Tornado,
``import reactor`` then ``reactor.web`` imports :mod:`reactor.web` at that
first access (PEP 562), so a program pays only for the layers it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

version = "0.1.0"
version_info = (0, 1, 0, 0)

# The public submodules, reached as attributes: Tornado's list (less auth and
# curl_httpclient, which reactor does not have), and reactor's own.
__all__ = [
    "asyncio_view",
    "autoreload",
    "backends",
    "concurrent",
    "escape",
    "gen",
    "http1connection",
    "httpclient",
    "httpserver",
    "httputil",
    "ioloop",
    "iostream",
    "locale",
    "locks",
    "log",
    "metrics",
    "netutil",
    "options",
    "platform",
    "process",
    "queues",
    "routing",
    "simple_httpclient",
    "tcpclient",
    "tcpserver",
    "template",
    "testing",
    "util",
    "web",
    "websocket",
    "wsgi",
]


def __getattr__(name: str) -> Any:
    # Called only for names the package does not have yet: import_module
    # also sets the attribute, so the next access is a plain lookup.
    if name in __all__:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
