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

# ANSI colours by level, used only when the stream is a terminal.
_COLORS = {
    logging.DEBUG: "\033[34m",  # blue
    logging.INFO: "\033[32m",  # green
    logging.WARNING: "\033[33m",  # yellow
    logging.ERROR: "\033[31m",  # red
    logging.CRITICAL: "\033[31m",
}
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

    def __init__(
        self,
        fmt: str = DEFAULT_FORMAT,
        datefmt: str = DEFAULT_DATE_FORMAT,
        style: str = "%",
        color: bool = True,
        colors: dict[int, str] | None = None,
    ) -> None:
        super().__init__(datefmt=datefmt)
        self._line_format = fmt
        self._colors = (colors or _COLORS) if color and _stderr_supports_color() else {}

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
    """Send log records to stderr (and optionally a file) with :class:`LogFormatter`.

    ``options`` may be any object with Tornado's logging options as
    attributes: ``logging`` (a level name, or ``"none"`` to do nothing),
    ``log_file_prefix``, ``log_rotate_mode`` (``"size"`` or ``"time"``),
    ``log_file_max_size``, ``log_file_num_backups``, ``log_rotate_when``,
    ``log_rotate_interval`` and ``log_to_stderr``. Missing attributes take
    sensible defaults; ``options=None`` means INFO to stderr.
    """
    level = str(getattr(options, "logging", "info") or "none")
    if level.lower() == "none":
        return
    if logger is None:
        logger = logging.getLogger()
    logger.setLevel(getattr(logging, level.upper()))

    prefix = getattr(options, "log_file_prefix", None)
    if prefix:
        handler: logging.Handler
        if getattr(options, "log_rotate_mode", "size") == "time":
            handler = logging.handlers.TimedRotatingFileHandler(
                prefix,
                when=getattr(options, "log_rotate_when", "midnight"),
                interval=getattr(options, "log_rotate_interval", 1),
                backupCount=getattr(options, "log_file_num_backups", 10),
                encoding="utf-8",
            )
        else:
            handler = logging.handlers.RotatingFileHandler(
                prefix,
                maxBytes=getattr(options, "log_file_max_size", 100 * 1000 * 1000),
                backupCount=getattr(options, "log_file_num_backups", 10),
                encoding="utf-8",
            )
        handler.setFormatter(LogFormatter(color=False))
        logger.addHandler(handler)

    to_stderr = getattr(options, "log_to_stderr", None)
    if to_stderr or (to_stderr is None and not logger.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(LogFormatter())
        logger.addHandler(stream)
