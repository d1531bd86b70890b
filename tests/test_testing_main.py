"""reactor.testing.main and python -m reactor.testing, in real processes; and
setup_with_context_manager."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

import pytest

from reactor.testing import setup_with_context_manager

ROOT = Path(__file__).resolve().parent.parent

# A test module as a user writes one: an HTTP test through a real server and
# client, a test that fails, and checks of what main() set up.
SUITE = """\
import logging
import signal
import unittest

from reactor.httputil import HTTPHeaders, ResponseStartLine
from reactor.testing import AsyncHTTPTestCase, main


def hello(request):
    body = b"hello " + request.path.encode()
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


class HelloTest(AsyncHTTPTestCase):
    def get_app(self):
        return hello

    def test_hello(self):
        response = self.fetch("/there")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"hello /there")


class Broken(unittest.TestCase):
    def test_one(self):
        self.fail("broken one")

    def test_two(self):
        self.fail("broken two")


class Setup(unittest.TestCase):
    def test_interrupt_is_default(self):
        self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_DFL)

    def test_debug_logging(self):
        self.assertEqual(logging.getLogger().level, logging.DEBUG)


def all():
    return unittest.defaultTestLoader.loadTestsFromTestCase(HelloTest)


if __name__ == "__main__":
    main()
"""


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "suite_mod.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}
    # This checkout's reactor (not the installed one), and the suite's folder.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_main_runs_all_by_default(tmp_path: Path) -> None:
    result = run(tmp_path, "suite_mod.py")
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr


def test_main_runs_named_tests_and_reports_failures(tmp_path: Path) -> None:
    result = run(tmp_path, "suite_mod.py", "--verbose", "suite_mod.HelloTest", "suite_mod.Broken")
    assert result.returncode == 1
    assert "test_hello (suite_mod.HelloTest" in result.stderr and "ok" in result.stderr
    assert "broken one" in result.stderr and "broken two" in result.stderr
    assert "Ran 3 tests" in result.stderr and "FAILED (failures=2)" in result.stderr


def test_failfast(tmp_path: Path) -> None:
    result = run(tmp_path, "suite_mod.py", "--failfast", "suite_mod.Broken")
    assert result.returncode == 1
    assert "Ran 1 test" in result.stderr and "failures=1" in result.stderr


def test_options_reach_the_tests(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "suite_mod.py",
        "--exception_on_interrupt=false",
        "--logging=debug",
        "suite_mod.Setup",
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 2 tests" in result.stderr
    # Without the option, ctrl-c raises KeyboardInterrupt (Python's handler).
    result = run(tmp_path, "suite_mod.py", "suite_mod.Setup.test_interrupt_is_default")
    assert result.returncode == 1 and "AssertionError" in result.stderr


def test_help_lists_the_options(tmp_path: Path) -> None:
    result = run(tmp_path, "suite_mod.py", "--help")
    assert result.returncode == 0
    for option in ("--exception-on-interrupt", "--failfast", "--verbose", "--logging"):
        assert option in result.stderr


def test_python_dash_m_reactor_testing(tmp_path: Path) -> None:
    result = run(tmp_path, "-m", "reactor.testing", "--quiet", "suite_mod.HelloTest")
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr
    result = run(tmp_path, "-m", "reactor.testing")
    assert result.returncode == 1
    assert "No tests specified" in result.stderr


def test_an_unknown_option_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, "suite_mod.py", "--verbos")
    assert result.returncode == 1
    assert "Unrecognized command line option: 'verbos'" in result.stderr


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __enter__(self) -> str:
        self.events.append("enter")
        return "entered"

    def __exit__(self, *exc: object) -> None:
        self.events.append("exit")


@pytest.mark.parametrize("fails", [False, True])
def test_setup_with_context_manager(fails: bool) -> None:
    recorder = _Recorder()
    seen: list[object] = []

    class Case(unittest.TestCase):
        def setUp(self) -> None:
            seen.append(setup_with_context_manager(self, recorder))

        def test_it(self) -> None:
            seen.append(list(recorder.events))
            if fails:
                self.fail("on purpose")

    result = unittest.TestResult()
    Case("test_it").run(result)
    assert seen == ["entered", ["enter"]]
    assert recorder.events == ["enter", "exit"]  # left even when the test fails
    assert len(result.failures) == int(fails)
