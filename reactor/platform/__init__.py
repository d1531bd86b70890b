"""Tornado's ``tornado.platform`` package: ``reactor.platform.asyncio``
(reached as an attribute too: ``reactor.platform.asyncio`` after ``import reactor``)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["asyncio"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
