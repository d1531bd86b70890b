"""reactor.log: the loggers, the formatter, enable_pretty_logging."""

from __future__ import annotations

import logging
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
