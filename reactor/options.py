"""Command line and config file options that any module can define.

A program's modules each ``define()`` the options they read, at import time,
on one shared registry (:data:`options`); ``main()`` then calls
:func:`parse_command_line` or :func:`parse_config_file` once, and every module
reads its values as attributes::

    from reactor.options import define, options, parse_command_line

    define("port", default=8888, help="port to listen on")
    define("peers", multiple=True, help="addresses to sync with")

    parse_command_line()  # python app.py --port=9000 --peers=a,b
    app.listen(options.port)

What a caller may rely on:

- Names are the same with ``-`` or ``_``: ``--log-file-prefix`` sets
  ``options.log_file_prefix``, and a config file writes ``log_file_prefix = ...``.
- Values are converted by the option's ``type`` (by default the default's
  type, else ``str``): ``str``, ``int``, ``float``, ``bool``,
  :class:`datetime.datetime` and :class:`datetime.timedelta` (``"1h 30m"``,
  ``"45s"``, ``"2d"``, ``"1.5 weeks"``) have their own parsers, any other type
  is called with the string. A value that does not convert raises
  :class:`Error` (which is also a ValueError).
- ``multiple=True`` options take a comma list; integer ones also take
  inclusive ranges, so ``--ports=80,8000:8002`` is ``[80, 8000, 8001, 8002]``.
- A callback given to ``define`` runs with each new value; callbacks given to
  :func:`add_parse_callback` run once parsing is final (``final=True``, the
  default). Pass ``final=False`` to every parse but the last, or the logging
  set-up below happens twice.
- Importing this module defines the logging options of
  :func:`reactor.log.define_logging_options` (``--logging=debug``,
  ``--log-file-prefix=...``) and makes the final parse call
  :func:`reactor.log.enable_pretty_logging`; ``--logging=none`` (or
  ``options.logging = None``) leaves :mod:`logging` alone.
- ``--help`` prints every option, grouped by the file that defined it (or by
  ``group=``), and exits with status 0.

Separate :class:`OptionParser` instances hold separate sets of options (for
subcommands, or tests).
"""

from __future__ import annotations

import datetime
import numbers
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from reactor.log import define_logging_options

__all__ = [
    "Error",
    "OptionParser",
    "add_parse_callback",
    "define",
    "options",
    "parse_command_line",
    "parse_config_file",
    "print_help",
]


class Error(Exception):
    """An option that is unknown, defined twice, missing its value or given a bad one."""


class _BadValueError(Error, ValueError):
    # Tornado lets the type's own ValueError through for a value such as
    # --port=abc; raising a subclass of both keeps ``except ValueError`` in a
    # ported program working while the message names the option.
    pass


class OptionParser:
    """A set of defined options, read and written as attributes or items.

    The module-level functions work on one shared instance, :data:`options`;
    create another for an isolated set. Every instance starts with ``help``.
    """

    # Attribute access is the options themselves, so the parser's own state
    # lives in __dict__, written around __setattr__.
    _options: dict[str, _Option]
    _parse_callbacks: list[Callable[[], None]]

    def __init__(self) -> None:
        self.__dict__["_options"] = {}
        self.__dict__["_parse_callbacks"] = []
        self.define(
            "help", type=bool, help="show this help information", callback=self._help_callback
        )

    @staticmethod
    def _normalize_name(name: str) -> str:
        return name.replace("_", "-")

    def _option(self, name: str) -> _Option:
        option = self._options.get(self._normalize_name(name))
        if option is None:
            raise AttributeError(f"Unrecognized option {self._normalize_name(name)!r}")
        return option

    def __getattr__(self, name: str) -> Any:
        return self._option(name).value()

    def __setattr__(self, name: str, value: Any) -> None:
        self._option(name).set(value)

    def __getitem__(self, name: str) -> Any:
        return self._option(name).value()

    def __setitem__(self, name: str, value: Any) -> None:
        self._option(name).set(value)

    def __contains__(self, name: str) -> bool:
        return self._normalize_name(name) in self._options

    def __iter__(self) -> Iterator[str]:
        """The options' names, as they were defined."""
        return iter([option.name for option in self._options.values()])

    def items(self) -> Iterable[tuple[str, Any]]:
        """``(name, value)`` for every option."""
        return [(option.name, option.value()) for option in self._options.values()]

    def groups(self) -> set[str]:
        """The group names in use (a file name unless ``define`` was given ``group=``)."""
        return {option.group_name for option in self._options.values()}

    def group_dict(self, group: str) -> dict[str, Any]:
        """``{name: value}`` for the options of ``group`` (all of them if ``group`` is empty).

        Handy for settings: ``Application(handlers, **options.group_dict("application"))``.
        """
        return {
            option.name: option.value()
            for option in self._options.values()
            if not group or option.group_name == group
        }

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}`` for every option."""
        return {option.name: option.value() for option in self._options.values()}

    def define(
        self,
        name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        group: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Define the option ``name``; :class:`Error` if it already exists.

        ``type`` defaults to the type of ``default`` (for a single value),
        else ``str``; with ``multiple=True`` the value is a list of ``type``.
        ``help`` and ``metavar`` appear in :meth:`print_help` as
        ``--name=METAVAR  help``. ``group`` names the help section (default:
        the file that called ``define``). ``callback(value)`` runs whenever the
        value changes, for example to read a config file named on the
        command line: ``callback=lambda path: parse_config_file(path, final=False)``.
        """
        normalized = self._normalize_name(name)
        if normalized in self._options:
            raise Error(
                f"Option {normalized!r} already defined in {self._options[normalized].file_name}"
            )
        file_name = _defining_file()
        if type is None:
            type = str if multiple or default is None else default.__class__
        self._options[normalized] = _Option(
            name,
            default=default,
            type=type,
            help=help,
            metavar=metavar,
            multiple=multiple,
            file_name=file_name,
            group_name=group or file_name,
            callback=callback,
        )

    def parse_command_line(self, args: list[str] | None = None, final: bool = True) -> list[str]:
        """Set options from ``args`` (default ``sys.argv``; ``args[0]``, the
        program, is skipped); return the arguments after the options.

        Options are ``--name=value`` (one dash or two); a ``bool`` option
        alone means true. The options end at the first argument that does not
        start with ``-``, or after ``--``. An unknown option prints the help
        and raises :class:`Error`; so does a non-bool option without a value.
        With ``final=False`` the parse callbacks do not run.
        """
        if args is None:
            args = sys.argv
        remaining: list[str] = []
        for i in range(1, len(args)):
            arg = args[i]
            if arg == "--":
                remaining = args[i + 1 :]
                break
            if not arg.startswith("-"):
                remaining = args[i:]
                break
            name, equals, value = arg.lstrip("-").partition("=")
            normalized = self._normalize_name(name)
            option = self._options.get(normalized)
            if option is None:
                self.print_help()
                raise Error(f"Unrecognized command line option: {normalized!r}")
            if not equals:
                if option.type is not bool:
                    raise Error(f"Option {normalized!r} requires a value")
                value = "true"
            option.parse(value)
        if final:
            self.run_parse_callbacks()
        return remaining

    def parse_config_file(self, path: str, final: bool = True) -> None:
        """Set options from the Python file at ``path`` (UTF-8).

        The file is executed (so it must be trusted), with ``__file__`` set to
        its absolute path; every global whose name is an option sets it. A
        value may be of the option's type (a list for ``multiple``) or a
        string, which is parsed as on the command line. A value of the wrong
        type raises :class:`Error`. With ``final=False`` the parse callbacks
        do not run.
        """
        absolute = os.path.abspath(path)
        with open(path, "rb") as f:
            source = f.read().decode("utf-8")
        config: dict[str, Any] = {"__file__": absolute}
        exec(compile(source, absolute, "exec"), config, config)
        for name, value in config.items():
            option = self._options.get(self._normalize_name(name))
            if option is None:
                continue
            if option.multiple and not isinstance(value, (list, str)):
                raise Error(
                    f"Option {option.name!r} is required to be a list of "
                    f"{option.type.__name__} or a comma-separated string"
                )
            if isinstance(value, str) and (option.multiple or option.type is not str):
                option.parse(value)
            else:
                option.set(value)
        if final:
            self.run_parse_callbacks()

    def print_help(self, file: TextIO | None = None) -> None:
        """Write the usage and every option, by group, to ``file`` (default stderr)."""
        out = sys.stderr if file is None else file
        lines = [f"Usage: {sys.argv[0]} [OPTIONS]", "", "Options:", ""]
        by_group: dict[str, list[_Option]] = {}
        for option in self._options.values():
            by_group.setdefault(option.group_name, []).append(option)
        for group_name in sorted(by_group):
            if group_name:
                lines += ["", f"{os.path.normpath(group_name)} options:", ""]
            for option in sorted(by_group[group_name], key=lambda o: o.name):
                lines += _help_lines(option)
        lines.append("")
        print("\n".join(lines), file=out)

    def _help_callback(self, value: bool) -> None:
        if value:
            self.print_help()
            sys.exit(0)

    def add_parse_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each final parse."""
        self._parse_callbacks.append(callback)

    def run_parse_callbacks(self) -> None:
        """Run the parse callbacks, in the order they were added."""
        for callback in self._parse_callbacks:
            callback()

    def mockable(self) -> _Mockable:
        """A view of these options that :func:`unittest.mock.patch.object` can patch.

        ``with mock.patch.object(options.mockable(), "port", 9000):`` sets the
        option for the block and restores it afterwards.
        """
        return _Mockable(self)


class _Mockable:
    # mock.patch.object restores a patched attribute by deleting it when it
    # was not in the object's __dict__; an OptionParser has its options
    # outside __dict__, so the delete must mean "put the old value back".
    def __init__(self, options: OptionParser) -> None:
        self.__dict__["_options"] = options
        self.__dict__["_originals"] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._options, name)

    def __setattr__(self, name: str, value: Any) -> None:
        assert name not in self._originals, "a mockable() view patches each option once"
        self._originals[name] = getattr(self._options, name)
        setattr(self._options, name, value)

    def __delattr__(self, name: str) -> None:
        setattr(self._options, name, self._originals.pop(name))


def _defining_file() -> str:
    # The group of an option is the file of the code that called define(),
    # looking through the module-level define(); the parser's own "help"
    # (defined here) has no group name, so its help comes first, untitled.
    here = __file__
    frame = sys._getframe(2)  # 0: this function, 1: OptionParser.define
    if frame.f_code.co_filename == here and frame.f_code.co_name == "define":
        frame = frame.f_back or frame
    return "" if frame.f_code.co_filename == here else frame.f_code.co_filename


def _help_lines(option: _Option) -> list[str]:
    flag = OptionParser._normalize_name(option.name)
    if option.metavar:
        flag += "=" + option.metavar
    description = option.help or ""
    if option.default is not None and option.default != "":
        description += f" (default {option.default})"
    wrapped = textwrap.wrap(description.strip(), 44)
    if len(flag) > 30 or not wrapped:
        wrapped.insert(0, "")
    return [f"  --{flag:<30} {wrapped[0]}".rstrip()] + [f"{'':34} {line}" for line in wrapped[1:]]


class _Option:
    _UNSET: Any = object()

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        file_name: str | None = None,
        group_name: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        if type is None:
            raise ValueError("type must not be None")
        self.name = name
        self.default = [] if default is None and multiple else default
        self.type = type
        self.help = help
        self.metavar = metavar
        self.multiple = multiple
        self.file_name = file_name or ""
        self.group_name = group_name or ""
        self.callback = callback
        self._value: Any = _Option._UNSET

    def value(self) -> Any:
        return self.default if self._value is _Option._UNSET else self._value

    def parse(self, value: str) -> Any:
        """Convert ``value`` from its command line form, store it, run the callback."""
        convert = _PARSERS.get(self.type, self.type)
        try:
            if not self.multiple:
                parsed: Any = convert(value)
            else:
                parsed = []
                ranged = self.type is not bool and issubclass(self.type, numbers.Integral)
                for part in value.split(","):
                    low, colon, high = part.partition(":") if ranged else (part, "", "")
                    if colon:
                        parsed.extend(range(convert(low), convert(high) + 1))
                    else:
                        parsed.append(convert(part))
        except Error:
            raise
        except Exception as e:
            raise _BadValueError(
                f"Option {self.name!r}: bad {self.type.__name__} value {value!r}: {e}"
            ) from e
        self._store(parsed)
        return self.value()

    def set(self, value: Any) -> None:
        """Store a value already of the option's type (or None), run the callback."""
        kind = self.type.__name__
        if self.multiple:
            if not isinstance(value, list) or not all(
                item is None or isinstance(item, self.type) for item in value
            ):
                raise Error(f"Option {self.name!r} is required to be a list of {kind}")
        elif value is not None and not isinstance(value, self.type):
            raise Error(f"Option {self.name!r} is required to be a {kind} ({type(value)} given)")
        self._store(value)

    def _store(self, value: Any) -> None:
        self._value = value
        if self.callback is not None:
            self.callback(value)


# -- the value parsers -------------------------------------------------------


def _parse_bool(value: str) -> bool:
    # As Tornado: everything but false / f / 0 (any case) is true, so --flag=yes works.
    return value.lower() not in ("false", "f", "0")


_DATETIME_FORMATS = (
    "%a %b %d %H:%M:%S %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
    "%Y-%m-%d",
    "%Y%m%d",
    "%H:%M:%S",
    "%H:%M",
)


def _parse_datetime(value: str) -> datetime.datetime:
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise _BadValueError(f"Unrecognized date/time format: {value!r}")


_TIMEDELTA_UNITS = {
    "": "seconds",
    "us": "microseconds",
    "microseconds": "microseconds",
    "ms": "milliseconds",
    "milliseconds": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hours": "hours",
    "d": "days",
    "days": "days",
    "w": "weeks",
    "weeks": "weeks",
}
# One "<number> <unit>" term; a value is a run of them: "1h 30m", "90", "1.5d".
_TIMEDELTA_TERM = re.compile(
    r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z]*)\s*", re.IGNORECASE
)


def _parse_timedelta(value: str) -> datetime.timedelta:
    total = datetime.timedelta()
    position = 0
    while position < len(value):
        match = _TIMEDELTA_TERM.match(value, position)
        if match is None:
            raise _BadValueError(f"Unrecognized time span at {value[position:]!r}")
        unit = _TIMEDELTA_UNITS.get(match.group(2).lower())
        if unit is None:
            raise _BadValueError(f"Unknown time unit {match.group(2)!r}")
        total += datetime.timedelta(**{unit: float(match.group(1))})
        position = match.end()
    return total


_PARSERS: dict[type, Callable[[str], Any]] = {
    bool: _parse_bool,
    str: str,
    datetime.datetime: _parse_datetime,
    datetime.timedelta: _parse_timedelta,
}


# -- the shared instance -----------------------------------------------------

options = OptionParser()
"""The global options: every ``define()``, read as ``options.name``."""


def define(
    name: str,
    default: Any = None,
    type: type | None = None,
    help: str | None = None,
    metavar: str | None = None,
    multiple: bool = False,
    group: str | None = None,
    callback: Callable[[Any], None] | None = None,
) -> None:
    """Define an option on :data:`options`; see :meth:`OptionParser.define`."""
    options.define(
        name,
        default=default,
        type=type,
        help=help,
        metavar=metavar,
        multiple=multiple,
        group=group,
        callback=callback,
    )


def parse_command_line(args: list[str] | None = None, final: bool = True) -> list[str]:
    """Parse :data:`options` from the command line; see :meth:`OptionParser.parse_command_line`."""
    return options.parse_command_line(args, final=final)


def parse_config_file(path: str, final: bool = True) -> None:
    """Parse :data:`options` from a config file; see :meth:`OptionParser.parse_config_file`."""
    options.parse_config_file(path, final=final)


def print_help(file: TextIO | None = None) -> None:
    """Print :data:`options`' help to stderr (or ``file``)."""
    options.print_help(file)


def add_parse_callback(callback: Callable[[], None]) -> None:
    """Call ``callback()`` after each final parse of :data:`options`."""
    options.add_parse_callback(callback)


define_logging_options(options)
