"""Small utilities with Tornado's names: Configurable, ObjectDict, import_object...

The piece that matters is :class:`Configurable`, the pattern behind
``IOLoop.configure``, ``HTTPServer.configure``, ``AsyncHTTPClient.configure``
and ``Resolver.configure``: calling the interface class builds the
implementation chosen at run time, with keyword arguments saved by
``configure``. Some facts about it that callers rely on:

- ``Base()`` builds ``Base.configured_class()`` with the saved keyword
  arguments, overridden by those of the call. ``Impl()`` (a subclass named
  directly) builds ``Impl`` and ignores the saved arguments.
- The instance is set up by ``initialize(*args, **kwargs)``, called once.
  The default ``initialize`` runs ``__init__`` with the same arguments, so a
  class may put its set-up in either: Tornado-style subclasses override
  ``initialize`` (and call the base version), reactor's own classes keep an
  ordinary ``__init__``. Python does not call ``__init__`` a second time.
- Configuration is per configurable base (``configurable_base()``), kept in
  that class's own ``__dict__``: configuring ``Resolver`` does not touch
  ``IOLoop``. ``_save_configuration()`` / ``_restore_configuration()`` let
  tests put it back.

This module imports nothing from reactor, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import inspect
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, NoReturn

__all__ = [
    "ArgReplacer",
    "Configurable",
    "GzipDecompressor",
    "ObjectDict",
    "TimeoutError",
    "errno_from_exception",
    "exec_in",
    "import_object",
    "raise_exc_info",
    "re_unescape",
    "timedelta_to_seconds",
]

# Aliases from the Python 2 era, kept because ported code still names them.
bytes_type = bytes
unicode_type = str
basestring_type = str

TimeoutError = asyncio.TimeoutError  # Tornado's name; the builtin since Python 3.11
"""What ``IOLoop.run_sync(timeout=...)`` and ``gen.with_timeout`` raise."""


class ObjectDict(dict[str, Any]):
    """A dict whose keys are also attributes: ``d.key`` is ``d["key"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class GzipDecompressor:
    """Incremental gzip decoding with a bound on each call's output.

    Like :func:`zlib.decompressobj` but for gzip (header and checksum
    checked), and for streams of several gzip members (RFC 1952, 2.2),
    decoded one after the other. Pass ``max_length`` to bound what one
    call returns; the input it did not use is :attr:`unconsumed_tail`,
    which must be passed back. :meth:`flush` at the end raises
    :class:`zlib.error` if the stream stopped inside a member.
    """

    def __init__(self) -> None:
        # None before the first member and between members: the only places
        # a stream may end (an empty stream is valid, as for a HEAD response).
        self._member: Any = None
        self._tail = b""

    def decompress(self, value: bytes, max_length: int = 0) -> bytes:
        """Decode ``value``; at most ``max_length`` bytes when it is not 0.

        A call may return less than ``max_length`` (even nothing) while
        :attr:`unconsumed_tail` is not empty, at a boundary between
        members: call again with the tail until it is empty. Without
        ``max_length`` everything is decoded at once, however large.
        Raises :class:`zlib.error` for data that is not gzip.
        """
        out = self._step(value, max_length)
        if not max_length:
            while self._tail:
                out += self._step(self._tail, 0)
        return out

    def _step(self, value: bytes, max_length: int) -> bytes:
        if not value:
            self._tail = b""
            return b""
        if self._member is None:
            # A member must start with the gzip magic; check the bytes we
            # have (one byte now, the second on the next call).
            if not b"\x1f\x8b".startswith(value[:2]):
                raise zlib.error(f"not the start of a gzip member: {value[:2]!r}")
            self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        member = self._member
        out: bytes = member.decompress(value, max_length)
        if member.eof:
            # What follows is the next member (or garbage, refused then).
            self._tail = member.unused_data
            self._member = None
        else:
            self._tail = member.unconsumed_tail
        return out

    @property
    def unconsumed_tail(self) -> bytes:
        """Input held back by ``max_length``; pass it to :meth:`decompress`."""
        return self._tail

    def flush(self) -> bytes:
        """End of input: check the stream was complete. Returns ``b""``.

        Raises ValueError if :attr:`unconsumed_tail` was not passed back,
        :class:`zlib.error` if the input stopped inside a gzip member.
        """
        if self._tail:
            raise ValueError("pass unconsumed_tail to decompress() before flush()")
        if self._member is not None:
            raise zlib.error("the gzip stream is truncated (it ends inside a member)")
        return b""


def import_object(name: str) -> Any:
    """The module or object named by a dotted path.

    ``"pkg.mod"`` is the module, ``"pkg.mod.name"`` an attribute of
    ``pkg.mod``; ``"pkg.mod:name"`` (the entry-point spelling) is accepted
    too. Raises ImportError when the module or the attribute is missing.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
    elif "." in name:
        module_name, _, attr = name.rpartition(".")
    else:
        return importlib.import_module(name)
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def exec_in(code: Any, glob: dict[str, Any], loc: Mapping[str, Any] | None = None) -> None:
    """``exec(code, glob, loc)``, a string compiled without this module's
    ``from __future__`` flags."""
    if isinstance(code, str):
        code = compile(code, "<string>", "exec", dont_inherit=True)
    exec(code, glob, loc)


def raise_exc_info(
    exc_info: tuple[type | None, BaseException | None, TracebackType | None],
) -> NoReturn:
    """Re-raise an exception from a :func:`sys.exc_info` triple."""
    exc, tb = exc_info[1], exc_info[2]
    exc_info = (None, None, None)  # no reference cycle through this frame
    if exc is None:
        raise TypeError("raise_exc_info called with no exception")
    try:
        raise exc.with_traceback(tb)
    finally:
        exc = tb = None


def errno_from_exception(e: BaseException) -> int | None:
    """The errno of an exception: its ``errno``, else its first argument, else None."""
    if hasattr(e, "errno"):
        return e.errno  # type: ignore[no-any-return]
    if e.args:
        return e.args[0]  # type: ignore[no-any-return]
    return None


_RE_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _unescape_one(match: re.Match[str]) -> str:
    char = match.group(1)
    if char.isascii() and char.isalnum():
        # re.escape never escapes these; "\d" is a class, not a digit.
        raise ValueError(f"cannot unescape '\\\\{char}'")
    return char


def re_unescape(s: str) -> str:
    r"""Undo :func:`re.escape`. ValueError for what it never produces (``\d``)."""
    return _RE_ESCAPED.sub(_unescape_one, s)


def timedelta_to_seconds(td: datetime.timedelta) -> float:
    """``td.total_seconds()``."""
    return td.total_seconds()


class _InvalidImplementation(TypeError, ValueError):
    """``configure`` got something that is not an implementation of the
    interface. A TypeError, and a ValueError as Tornado raises."""


class _ConfigurableMeta(type):
    """Lets :meth:`Configurable.__new__` build and set up the instance alone
    (Python would otherwise call ``__init__`` again, without the arguments
    that ``configure`` saved)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.__new__(cls, *args, **kwargs)  # type: ignore[arg-type]


class Configurable(metaclass=_ConfigurableMeta):
    """An interface whose constructor builds the implementation chosen with
    :meth:`configure` (see the module docstring for the contract).

    A configurable interface defines :meth:`configurable_base` (itself) and
    :meth:`configurable_default` (the implementation used when none is
    configured).
    """

    # Read from the base's own __dict__ (see configured_class); these are
    # only what an unconfigured base reads through inheritance.
    _configured: ClassVar[Any] = None
    _configured_kwargs: ClassVar[dict[str, Any]] = {}

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        base = cls.configurable_base()
        if cls is base:
            impl = cls.configured_class()
            saved = base.__dict__.get("_configured_kwargs")
            if saved:
                kwargs = {**saved, **kwargs}
        else:
            impl = cls
        if impl.configurable_base() is not base:
            # The implementation is an interface of its own: let it choose.
            return impl(*args, **kwargs)
        instance = object.__new__(impl)
        instance.initialize(*args, **kwargs)
        return instance

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        """The interface of this hierarchy: the class ``configure`` applies to."""
        raise NotImplementedError(f"{cls.__name__}.configurable_base")

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        """The implementation built when none is configured."""
        raise NotImplementedError(f"{cls.__name__}.configurable_default")

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        """Set up a new instance with the constructor's arguments (merged
        over :meth:`configure`'s). This default runs ``__init__``; a
        subclass that overrides it calls ``super().initialize(...)``."""
        self.__init__(*args, **kwargs)  # type: ignore[misc]

    @classmethod
    def configure(cls, impl: str | type[Configurable] | None, **kwargs: Any) -> None:
        """Make the interface build ``impl`` from now on, with ``kwargs``
        added to each construction's keyword arguments.

        ``impl`` is a subclass of ``cls``, its import path
        (``"pkg.module.Class"``), or None for :meth:`configurable_default`.
        Raises ImportError for a path that does not import, and
        TypeError (also a ValueError) for anything that is not a subclass.
        Instances already made are not changed.
        """
        base = cls.configurable_base()
        if isinstance(impl, str):
            if "." not in impl and ":" not in impl:
                raise ImportError(f"{impl!r} is not an import path like 'package.module.Class'")
            impl = import_object(impl)
        if impl is not None and not (isinstance(impl, type) and issubclass(impl, cls)):
            raise _InvalidImplementation(
                f"{base.__qualname__}.configure needs a {cls.__qualname__} subclass, got {impl!r}"
            )
        base._configured = impl
        base._configured_kwargs = dict(kwargs)

    @classmethod
    def configured_class(cls) -> type[Configurable]:
        """The class the interface builds now."""
        base = cls.configurable_base()
        impl = base.__dict__.get("_configured")
        return impl if impl is not None else cls.configurable_default()

    @classmethod
    def _save_configuration(cls) -> tuple[Any, dict[str, Any] | None]:
        base = cls.configurable_base()
        return base.__dict__.get("_configured"), base.__dict__.get("_configured_kwargs")

    @classmethod
    def _restore_configuration(cls, saved: tuple[Any, dict[str, Any] | None]) -> None:
        base = cls.configurable_base()
        base._configured = saved[0]
        base._configured_kwargs = dict(saved[1] or {})


class ArgReplacer:
    """Finds and replaces one named argument in an ``(args, kwargs)`` pair,
    whether it was passed by position or by keyword (for decorators)."""

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self.name = name
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [
            p.name
            for p in params
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        self.arg_pos: int | None = positional.index(name) if name in positional else None

    def get_old_value(
        self, args: Sequence[Any], kwargs: dict[str, Any], default: Any = None
    ) -> Any:
        """The argument's value in this call, or ``default`` if it was not passed."""
        if self.arg_pos is not None and len(args) > self.arg_pos:
            return args[self.arg_pos]
        return kwargs.get(self.name, default)

    def replace(
        self, new_value: Any, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[Any, Sequence[Any], dict[str, Any]]:
        """Put ``new_value`` in place of the argument: ``(old, args, kwargs)``.

        ``kwargs`` may be changed in place; ``args`` is copied if changed.
        An argument not passed is added to ``kwargs`` (old value None).
        """
        if self.arg_pos is not None and len(args) > self.arg_pos:
            old = args[self.arg_pos]
            new_args = list(args)
            new_args[self.arg_pos] = new_value
            return old, new_args, kwargs
        old = kwargs.get(self.name)
        kwargs[self.name] = new_value
        return old, args, kwargs
