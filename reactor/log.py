"""Logging: the three loggers reactor writes to, and a readable formatter.

- ``reactor.access`` (:data:`access_log`): one line per HTTP request served.
- ``reactor.application`` (:data:`app_log`): errors from application code,
  such as a callback or handler that raised.
- ``reactor.general`` (:data:`gen_log`): everything else reactor itself says
  (backend chosen, a blocked loop, a client's protocol error).

reactor configures no handlers by itself; call :func:`enable_pretty_logging`
(or configure :mod:`logging` as usual) to see them.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from typing import Any

access_log = logging.getLogger("reactor.access")
app_log = logging.getLogger("reactor.application")
gen_log = logging.getLogger("reactor.general")

_RESET = "\033[0m"


def _stderr_supports_color() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class LogFormatter(logging.Formatter):
    """One line per record: ``[L yymmdd hh:mm:ss module:line] message``.

    The bracketed prefix is coloured by level when ``color`` is true and the
    output is a terminal. Tracebacks follow on their own lines, indented so a
    multi-line record reads as one block.
    """

    DEFAULT_FORMAT = (
        "%(color)s[%(levelname)1.1s %(asctime)s %(module)s:%(lineno)d]%(end_color)s %(message)s"
    )
    DEFAULT_DATE_FORMAT = "%y%m%d %H:%M:%S"
    DEFAULT_COLORS = {
        logging.DEBUG: 4,  # blue
        logging.INFO: 2,  # green
        logging.WARNING: 3,  # yellow
        logging.ERROR: 1,  # red
        logging.CRITICAL: 5,  # magenta
    }
    """ANSI colour numbers by level (``30 + n`` is the foreground code)."""

    def __init__(
        self,
        fmt: str = DEFAULT_FORMAT,
        datefmt: str = DEFAULT_DATE_FORMAT,
        style: str = "%",
        color: bool = True,
        colors: dict[int, int] = DEFAULT_COLORS,
    ) -> None:
        """``colors`` maps a level to an ANSI colour number, as :attr:`DEFAULT_COLORS`
        (a ready escape string is taken too)."""
        super().__init__(datefmt=datefmt)
        self._line_format = fmt
        self._colors: dict[int, str] = {}
        if color and _stderr_supports_color():
            for level, code in colors.items():
                self._colors[level] = code if isinstance(code, str) else f"\033[3{code}m"

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception as e:  # a bad format string must not lose the record
            message = f"Bad message ({e!r}): {record.__dict__!r}"
        record.message = message
        record.asctime = self.formatTime(record, self.datefmt)
        color = self._colors.get(record.levelno, "")
        fields: dict[str, Any] = dict(record.__dict__)
        fields["color"] = color
        fields["end_color"] = _RESET if color else ""
        formatted = self._line_format % fields
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        extra = [formatted.rstrip()]
        if record.exc_text:
            extra.append(record.exc_text)
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        return "\n    ".join("\n".join(extra).split("\n"))


def enable_pretty_logging(options: Any = None, logger: logging.Logger | None = None) -> None:
    """Configure ``logger`` (default: the root logger) from the logging options.

    ``options`` is an object with the options :func:`define_logging_options`
    defines as attributes; ``None`` means :data:`reactor.options.options`
    (the final ``parse_command_line`` / ``parse_config_file`` calls this with
    it). ``logging`` is the level, or ``None`` / ``"none"`` to do nothing. With
    ``log_file_prefix`` records also go to that file, rotated by size
    (``log_rotate_mode="size"``: ``log_file_max_size`` bytes) or by time
    (``"time"``: every ``log_rotate_interval`` ``log_rotate_when``), keeping
    ``log_file_num_backups`` old files; another mode is a ValueError.
    ``log_to_stderr`` true adds a stderr handler, ``None`` adds one only if
    the logger has no handler yet. An attribute the object lacks takes the
    option's default.
    """
    if options is None:
        # The registry sits above this module (it imports us to define the
        # options); the global instance is looked up only when asked for.
        from reactor.options import options as global_options

        options = global_options

    def option(name: str) -> Any:
        return getattr(options, name, _LOGGING_DEFAULTS[name])

    level = option("logging")
    if level is None or str(level).lower() == "none":
        return
    if logger is None:
        logger = logging.getLogger()
    logger.setLevel(getattr(logging, str(level).upper()))

    prefix = option("log_file_prefix")
    if prefix:
        mode = option("log_rotate_mode")
        handler: logging.Handler
        if mode == "size":
            handler = logging.handlers.RotatingFileHandler(
                prefix,
                maxBytes=option("log_file_max_size"),
                backupCount=option("log_file_num_backups"),
                encoding="utf-8",
            )
        elif mode == "time":
            handler = logging.handlers.TimedRotatingFileHandler(
                prefix,
                when=option("log_rotate_when"),
                interval=option("log_rotate_interval"),
                backupCount=option("log_file_num_backups"),
                encoding="utf-8",
            )
        else:
            raise ValueError(f'log_rotate_mode must be "size" or "time", not {mode!r}')
        handler.setFormatter(LogFormatter(color=False))
        logger.addHandler(handler)

    to_stderr = option("log_to_stderr")
    if to_stderr or (to_stderr is None and not logger.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(LogFormatter())
        logger.addHandler(stream)


# name: (default, type, metavar, help)
_LOGGING_OPTIONS: dict[str, tuple[Any, type, str | None, str]] = {
    "logging": (
        "info",
        str,
        "debug|info|warning|error|none",
        "the log level; 'none' leaves the logging configuration alone",
    ),
    "log_to_stderr": (
        None,
        bool,
        None,
        "log to stderr (coloured on a terminal); by default only when no "
        "log file is given and no other handler is configured",
    ),
    "log_file_prefix": (
        None,
        str,
        "PATH",
        "log to this file too; each process needs its own (put the port in it)",
    ),
    "log_file_max_size": (100 * 1000 * 1000, int, None, "bytes in a log file before it rotates"),
    "log_file_num_backups": (10, int, None, "rotated log files to keep"),
    "log_rotate_when": (
        "midnight",
        str,
        None,
        "the unit of timed rotation: S, M, H, D, W0-W6 or midnight",
    ),
    "log_rotate_interval": (1, int, None, "log_rotate_when units between timed rotations"),
    "log_rotate_mode": ("size", str, None, "rotate log files by 'size' or by 'time'"),
}
_LOGGING_DEFAULTS = {name: spec[0] for name, spec in _LOGGING_OPTIONS.items()}


def define_logging_options(options: Any = None) -> None:
    """Define the logging options on ``options`` (an :class:`~reactor.options.OptionParser`;
    default :data:`reactor.options.options`, which has them already) and make
    its final parse call :func:`enable_pretty_logging` with them.

    The options: ``logging`` (default ``"info"``), ``log_to_stderr``,
    ``log_file_prefix``, ``log_file_max_size`` (100 MB),
    ``log_file_num_backups`` (10), ``log_rotate_when`` (``"midnight"``),
    ``log_rotate_interval`` (1) and ``log_rotate_mode`` (``"size"``).
    """
    if options is None:
        from reactor.options import options as global_options

        options = global_options
    for name, (default, kind, metavar, text) in _LOGGING_OPTIONS.items():
        options.define(name, default=default, type=kind, help=text, metavar=metavar)
    parser = options
    parser.add_parse_callback(lambda: enable_pretty_logging(parser))
