"""reactor.log: the loggers, the formatter, enable_pretty_logging."""

from __future__ import annotations

import io
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from reactor.log import LogFormatter, access_log, app_log, enable_pretty_logging, gen_log


def test_logger_names() -> None:
    assert access_log.name == "reactor.access"
    assert app_log.name == "reactor.application"
    assert gen_log.name == "reactor.general"


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("inner")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "reactor.general", logging.WARNING, "/x/mod.py", 12, msg, args, exc_info
    )


def test_formatter_line_and_traceback_indent() -> None:
    text = LogFormatter(color=False).format(_record("hello %s", "world", exc=True))
    first, *rest = text.split("\n")
    assert first.startswith("[W ") and first.endswith("mod:12] hello world")
    assert rest and all(line.startswith("    ") for line in rest)
    assert "RuntimeError: inner" in text


def test_formatter_survives_a_bad_format_string() -> None:
    text = LogFormatter(color=False).format(_record("%d items", "not a number"))
    assert "Bad message" in text


@pytest.fixture
def scratch_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("reactor.test-scratch")
    yield logger
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def test_enable_pretty_logging_to_a_file(scratch_logger: logging.Logger, tmp_path: Path) -> None:
    path = tmp_path / "reactor.log"
    options = SimpleNamespace(logging="debug", log_file_prefix=str(path), log_to_stderr=False)
    enable_pretty_logging(options, logger=scratch_logger)
    assert scratch_logger.level == logging.DEBUG
    scratch_logger.debug("written to %s", "file")
    for handler in scratch_logger.handlers:
        handler.flush()
    assert "written to file" in path.read_text()


def _added_handlers(logger: logging.Logger, before: list[logging.Handler]) -> list[logging.Handler]:
    # pytest may attach its own capture handlers to loggers that do not
    # propagate; only what enable_pretty_logging added counts.
    return [h for h in logger.handlers if h not in before]


def test_enable_pretty_logging_none_does_nothing(scratch_logger: logging.Logger) -> None:
    before = list(scratch_logger.handlers)
    enable_pretty_logging(SimpleNamespace(logging="none"), logger=scratch_logger)
    assert _added_handlers(scratch_logger, before) == []


def test_enable_pretty_logging_defaults_to_stderr(scratch_logger: logging.Logger) -> None:
    before = list(scratch_logger.handlers)
    enable_pretty_logging(logger=scratch_logger)  # no handlers yet: stderr by default
    (handler,) = _added_handlers(scratch_logger, before)
    assert isinstance(handler, logging.StreamHandler)
    assert isinstance(handler.formatter, LogFormatter)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_formatter_colours_by_level_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LogFormatter.DEFAULT_COLORS[logging.ERROR] == 1  # ANSI red
    monkeypatch.setattr(sys, "stderr", _Terminal())
    text = LogFormatter().format(_record("coloured"))
    assert text.startswith("\033[33m[W ") and "\033[0m coloured" in text  # yellow warning
    custom = LogFormatter(colors={logging.WARNING: 6}).format(_record("cyan"))
    assert custom.startswith("\033[36m[W ")
    plain = LogFormatter(color=False).format(_record("plain"))
    assert "\033" not in plain


def test_formatter_has_no_colour_off_a_terminal() -> None:
    # pytest captures stderr: not a terminal.
    assert "\033" not in LogFormatter().format(_record("plain"))


def test_enable_pretty_logging_rotates_by_size(
    scratch_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    options = SimpleNamespace(
        logging="info",
        log_file_prefix=str(path),
        log_to_stderr=False,
        log_rotate_mode="size",
        log_file_max_size=200,
        log_file_num_backups=2,
    )
    enable_pretty_logging(options, logger=scratch_logger)
    for i in range(20):
        scratch_logger.info("line %d %s", i, "x" * 40)
    for handler in scratch_logger.handlers:
        handler.flush()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]  # two backups kept
    assert "line 19" in path.read_text()


def test_enable_pretty_logging_rotates_by_time(
    scratch_logger: logging.Logger, tmp_path: Path
) -> None:
    options = SimpleNamespace(
        logging="info",
        log_file_prefix=str(tmp_path / "app.log"),
        log_to_stderr=False,
        log_rotate_mode="time",
        log_rotate_when="H",
        log_rotate_interval=6,
        log_file_num_backups=3,
    )
    before = list(scratch_logger.handlers)
    enable_pretty_logging(options, logger=scratch_logger)
    (handler,) = _added_handlers(scratch_logger, before)
    assert isinstance(handler, logging.handlers.TimedRotatingFileHandler)
    assert (handler.when, handler.interval, handler.backupCount) == ("H", 6 * 3600, 3)


def test_enable_pretty_logging_refuses_an_unknown_rotate_mode(
    scratch_logger: logging.Logger, tmp_path: Path
) -> None:
    options = SimpleNamespace(log_file_prefix=str(tmp_path / "x.log"), log_rotate_mode="weekly")
    with pytest.raises(ValueError, match="'weekly'"):
        enable_pretty_logging(options, logger=scratch_logger)


def test_enable_pretty_logging_none_level_is_left_alone(scratch_logger: logging.Logger) -> None:
    before = list(scratch_logger.handlers)
    enable_pretty_logging(SimpleNamespace(logging=None), logger=scratch_logger)
    assert _added_handlers(scratch_logger, before) == []
