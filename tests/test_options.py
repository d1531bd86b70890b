"""reactor.options: define, parse the command line and config files, help, callbacks."""

from __future__ import annotations

import datetime
import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

import reactor.options
from reactor.log import define_logging_options
from reactor.options import Error, OptionParser

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def parser() -> OptionParser:
    return OptionParser()


# -- define, read, write -------------------------------------------------------


def test_defaults_and_types_come_from_define(parser: OptionParser) -> None:
    parser.define("port", default=8888)
    parser.define("name")
    parser.define("ratio", type=float)
    assert parser.port == 8888 and parser["port"] == 8888
    assert parser.name is None and parser.ratio is None
    assert parser.parse_command_line(["prog", "--port=9000", "--name=x", "--ratio=0.5"]) == []
    assert (parser.port, parser.name, parser.ratio) == (9000, "x", 0.5)


def test_dashes_and_underscores_are_the_same_name(parser: OptionParser) -> None:
    parser.define("max_body_size", default=10)
    parser.parse_command_line(["prog", "--max-body-size=20"])
    assert parser.max_body_size == 20 and parser["max-body-size"] == 20
    assert "max-body-size" in parser and "max_body_size" in parser and "nope" not in parser
    parser["max-body-size"] = 30
    assert parser.max_body_size == 30
    # Iteration gives the names as defined.
    assert "max_body_size" in list(parser)


def test_unknown_options_are_attribute_errors(parser: OptionParser) -> None:
    with pytest.raises(AttributeError, match="nope"):
        parser.nope  # noqa: B018
    with pytest.raises(AttributeError, match="nope"):
        parser.nope = 1
    with pytest.raises(AttributeError):
        parser["nope"]


def test_redefinition_is_an_error_naming_the_first_file(parser: OptionParser) -> None:
    parser.define("port", default=1)
    with pytest.raises(Error, match=r"'port' already defined in .*test_options\.py"):
        parser.define("port", default=2)
    parser.define("max_size", default=1)
    with pytest.raises(Error, match="'max-size' already defined"):
        parser.define("max-size", default=2)


def test_set_checks_the_type(parser: OptionParser) -> None:
    parser.define("port", default=1)
    parser.define("hosts", multiple=True)
    parser.port = None  # None is always allowed
    with pytest.raises(Error, match="required to be a int"):
        parser.port = "80"
    with pytest.raises(Error, match="list of str"):
        parser.hosts = "a,b"
    with pytest.raises(Error, match="list of str"):
        parser.hosts = ["a", 2]
    parser.hosts = ["a", "b"]
    assert parser.hosts == ["a", "b"]


def test_items_groups_and_dicts(parser: OptionParser) -> None:
    parser.define("template_path", group="application")
    parser.define("static_path", default="/s", group="application")
    parser.define("port", default=80)
    assert parser.group_dict("application") == {"template_path": None, "static_path": "/s"}
    assert parser.groups() == {"", "application", __file__}
    everything = parser.as_dict()
    assert everything["port"] == 80 and everything["help"] is None
    assert dict(parser.items()) == everything
    assert parser.group_dict("") == everything


# -- the command line ---------------------------------------------------------


def test_command_line_stops_at_the_first_argument(parser: OptionParser) -> None:
    parser.define("debug", type=bool)
    parser.define("port", default=1)
    args = ["prog", "-debug", "--port=2", "serve", "--port=3"]
    assert parser.parse_command_line(args) == ["serve", "--port=3"]
    assert parser.debug is True and parser.port == 2
    assert parser.parse_command_line(["prog", "--", "--port=4"]) == ["--port=4"]
    assert parser.port == 2


def test_command_line_errors(parser: OptionParser) -> None:
    parser.define("port", default=1)
    help_out = io.StringIO()
    with mock.patch.object(sys, "stderr", help_out), pytest.raises(Error, match="'bogus'"):
        parser.parse_command_line(["prog", "--bogus=1"])
    assert "--port" in help_out.getvalue()  # the help is shown with the error
    with pytest.raises(Error, match="'port' requires a value"):
        parser.parse_command_line(["prog", "--port"])


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (int, "eighty"),
        (float, "1.2.3"),
        (datetime.datetime, "yesterday"),
        (datetime.timedelta, "3 fortnights"),
        (datetime.timedelta, "1h and 2m"),
    ],
)
def test_a_bad_value_is_an_error_and_a_value_error(
    parser: OptionParser, kind: type, text: str
) -> None:
    parser.define("value", type=kind)
    with pytest.raises(Error) as caught:
        parser.parse_command_line(["prog", f"--value={text}"])
    assert isinstance(caught.value, ValueError)  # what a Tornado program may catch
    assert parser.value is None  # nothing half-set


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("F", False), ("0", False)],
)
def test_bool_values(parser: OptionParser, text: str, expected: bool) -> None:
    parser.define("flag", type=bool)
    parser.parse_command_line(["prog", f"--flag={text}"])
    assert parser.flag is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45", datetime.timedelta(seconds=45)),
        ("1h 30m", datetime.timedelta(hours=1, minutes=30)),
        ("2d", datetime.timedelta(days=2)),
        ("1.5 weeks", datetime.timedelta(weeks=1.5)),
        ("100ms 20us", datetime.timedelta(milliseconds=100, microseconds=20)),
        ("5 min 10 sec", datetime.timedelta(minutes=5, seconds=10)),
        ("-1h", datetime.timedelta(hours=-1)),
        ("1e3s", datetime.timedelta(seconds=1000)),
    ],
)
def test_timedelta_values(parser: OptionParser, text: str, expected: datetime.timedelta) -> None:
    parser.define("span", type=datetime.timedelta)
    parser.parse_command_line(["prog", f"--span={text}"])
    assert parser.span == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2013-05-04 12:30:15", datetime.datetime(2013, 5, 4, 12, 30, 15)),
        ("2013-05-04T12:30", datetime.datetime(2013, 5, 4, 12, 30)),
        ("20130504", datetime.datetime(2013, 5, 4)),
        ("Sat May 04 12:30:15 2013", datetime.datetime(2013, 5, 4, 12, 30, 15)),
        ("12:30", datetime.datetime(1900, 1, 1, 12, 30)),
    ],
)
def test_datetime_values(parser: OptionParser, text: str, expected: datetime.datetime) -> None:
    parser.define("when", type=datetime.datetime)
    parser.parse_command_line(["prog", f"--when={text}"])
    assert parser.when == expected


def test_multiple_values_and_integer_ranges(parser: OptionParser) -> None:
    parser.define("ports", type=int, multiple=True)
    parser.define("hosts", multiple=True)
    assert parser.ports == [] and parser.hosts == []
    parser.parse_command_line(["prog", "--ports=80,8000:8002,9", "--hosts=a,b:c"])
    assert parser.ports == [80, 8000, 8001, 8002, 9]
    assert parser.hosts == ["a", "b:c"]  # a range only for integers
    with pytest.raises(Error):
        parser.parse_command_line(["prog", "--ports=1:x"])


def test_callbacks(parser: OptionParser) -> None:
    seen: list[object] = []
    parser.define("port", default=1, callback=seen.append)
    parser.add_parse_callback(lambda: seen.append("parsed"))
    parser.parse_command_line(["prog", "--port=2"], final=False)
    assert seen == [2]
    parser.port = 3
    parser.parse_command_line(["prog"])
    assert seen == [2, 3, "parsed"]
    parser.run_parse_callbacks()
    assert seen[-1] == "parsed" and len(seen) == 4


def test_mockable_patches_and_restores(parser: OptionParser) -> None:
    parser.define("port", default=1)
    with mock.patch.object(parser.mockable(), "port", 99):
        assert parser.port == 99
    assert parser.port == 1


# -- config files --------------------------------------------------------------


def test_config_file(parser: OptionParser, tmp_path: Path) -> None:
    parser.define("port", default=1)
    parser.define("hosts", multiple=True)
    parser.define("ports", type=int, multiple=True)
    parser.define("span", type=datetime.timedelta)
    parser.define("here")
    parser.define("greeting")
    config = tmp_path / "app.conf"
    config.write_text(
        "import os\n"
        "port = 2\n"
        "hosts = ['a', 'b']\n"
        "ports = '1:3'\n"
        "span = '1h'\n"
        "here = os.path.dirname(__file__)\n"
        "greeting = 'gr\u00fc\u00df'\n"
        "unrelated = 42\n",
        encoding="utf-8",
    )
    seen: list[str] = []
    parser.add_parse_callback(lambda: seen.append("parsed"))
    parser.parse_config_file(str(config), final=False)
    assert parser.port == 2 and parser.hosts == ["a", "b"] and parser.ports == [1, 2, 3]
    assert parser.span == datetime.timedelta(hours=1)
    assert parser.here == str(tmp_path) and parser.greeting == "gr\u00fc\u00df"
    assert seen == []
    parser.parse_config_file(str(config))
    assert seen == ["parsed"]


def test_config_file_names_may_use_either_spelling(parser: OptionParser, tmp_path: Path) -> None:
    parser.define("max-size", default=1)
    config = tmp_path / "app.conf"
    config.write_text("max_size = 5\n")
    parser.parse_config_file(str(config))
    assert parser.max_size == 5


def test_config_file_errors(parser: OptionParser, tmp_path: Path) -> None:
    parser.define("hosts", multiple=True)
    parser.define("port", default=1)
    config = tmp_path / "app.conf"
    config.write_text("hosts = 3\n")
    with pytest.raises(Error, match="list of str or a comma-separated string"):
        parser.parse_config_file(str(config))
    config.write_text("port = 'eighty'\n")
    with pytest.raises(ValueError, match="'port'"):
        parser.parse_config_file(str(config))
    config.write_text("port = 2.5\n")
    with pytest.raises(Error, match="required to be a int"):
        parser.parse_config_file(str(config))
    # A syntax error names the file and line, as Python does.
    config.write_text("x = 1\nport = (\n")
    with pytest.raises(SyntaxError) as caught:
        parser.parse_config_file(str(config))
    assert caught.value.filename == str(config)
    assert parser.port == 1


# -- help ------------------------------------------------------------------------


def test_print_help_groups_options(parser: OptionParser) -> None:
    parser.define("port", default=8888, help="port to listen on", metavar="PORT")
    parser.define("template_path", group="application", help="where the templates are")
    parser.define(
        "a_very_long_option_name_that_needs_its_own_line", help="long " * 20, group="application"
    )
    out = io.StringIO()
    parser.print_help(out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0].startswith("Usage: ")
    # The parser's own option comes first, without a heading; then by group name.
    assert lines.index("  --help                           show this help information") < (
        lines.index("application options:")
    )
    # Groups sort by name: this file's absolute path ("/...") before "application".
    assert lines.index(f"{__file__} options:") < lines.index("application options:")
    assert "  --port=PORT                      port to listen on (default 8888)" in lines
    assert "  --template-path                  where the templates are" in lines
    long_at = lines.index("  --a-very-long-option-name-that-needs-its-own-line")
    assert lines[long_at + 1].startswith(" " * 35 + "long")
    option_lines = [line for line in lines if line.startswith(" ") and "--a-very" not in line]
    assert option_lines and all(len(line) <= 80 for line in option_lines)


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's reactor, not the installed one
    script = cwd / "app.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


APP = """\
import logging
from reactor.options import define, options, parse_command_line
define("port", default=8888, help="port to listen on")
rest = parse_command_line()
logging.getLogger("reactor.application").info("port %d rest %s", options.port, rest)
logging.getLogger("reactor.application").debug("a debug line")
"""


def test_help_prints_and_exits_in_a_real_process(tmp_path: Path) -> None:
    result = _run(APP, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "port to listen on (default 8888)" in result.stderr
    assert "--log-file-prefix=PATH" in result.stderr
    assert "port 8888" not in result.stderr  # it exited before the program went on


def test_unknown_option_in_a_real_process(tmp_path: Path) -> None:
    result = _run(APP, "--prot=1", cwd=tmp_path)
    assert result.returncode == 1
    assert "Unrecognized command line option: 'prot'" in result.stderr
    assert "--port" in result.stderr  # with the help


def test_parse_command_line_configures_logging(tmp_path: Path) -> None:
    # The final parse runs enable_pretty_logging with the parsed options.
    result = _run(APP, "--port=9", "extra", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "port 9 rest ['extra']" in result.stderr and "a debug line" not in result.stderr
    log_file = tmp_path / "app.log"
    result = _run(
        APP, "--logging=debug", f"--log-file-prefix={log_file}", "--log-to-stderr=0", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = log_file.read_text()
    assert "port 8888" in text and "a debug line" in text
    assert text.startswith("[I ")  # LogFormatter, no colour codes in a file
    result = _run(APP, "--logging=none", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""  # logging left alone


# -- the global instance ------------------------------------------------------------


def test_global_options_have_the_logging_options() -> None:
    names = set(reactor.options.options)
    assert {
        "help",
        "logging",
        "log_to_stderr",
        "log_file_prefix",
        "log_file_max_size",
        "log_file_num_backups",
        "log_rotate_when",
        "log_rotate_interval",
        "log_rotate_mode",
    } <= names
    assert reactor.options.options.logging == "info"
    assert reactor.options.options.log_file_max_size == 100 * 1000 * 1000


def test_define_logging_options_on_another_parser(tmp_path: Path) -> None:
    parser = OptionParser()
    define_logging_options(parser)
    logger = logging.getLogger("reactor.test-options-logging")
    logger.propagate = False
    log_file = tmp_path / "x.log"
    parser.parse_command_line(
        ["prog", "--logging=warning", f"--log-file-prefix={log_file}"], final=False
    )
    from reactor.log import enable_pretty_logging

    try:
        enable_pretty_logging(parser, logger=logger)
        assert logger.level == logging.WARNING
        logger.warning("to the file")
        logger.info("not written")
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    assert "to the file" in log_file.read_text()
    assert "not written" not in log_file.read_text()
