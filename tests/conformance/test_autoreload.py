"""reactor.autoreload with real processes: a program is started, one of its
files is changed, and it must run again (it prints a line each time it
starts). Every wait for a line has a deadline, and every child is killed at the
end of its test.

A change is made by writing the file and setting its modification time a
minute ahead, so that it differs from the time the child recorded whatever the
file system's time resolution.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE_WAIT = 20.0
"""Seconds to wait for the child's next line (a restart is an interpreter start)."""


class Child:
    """A child process whose stdout lines are read by a thread into a queue."""

    def __init__(self, args: list[str], cwd: Path, backend: Any = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}
        if backend is not None:
            # A registry name, or a Poller class (kqueue's emulation) by its path.
            env["REACTOR_BACKEND"] = (
                backend
                if isinstance(backend, str)
                else f"{backend.__module__}:{backend.__qualname__}"
            )
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str) -> str:
        """The next line that starts with ``prefix`` (others are kept in ``seen``)."""
        deadline = time.monotonic() + LINE_WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} in time; got {self.seen}") from None
            if line is None:
                raise AssertionError(f"child exited before {prefix!r}; got {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(LINE_WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


def change(path: Path, text: str) -> None:
    path.write_text(text)
    ahead = time.time() + 60
    os.utime(path, (ahead, ahead))


PROGRAM = """\
import os, sys
import helper
from reactor import autoreload
from reactor.ioloop import IOLoop

VERSION = {version!r}
autoreload.watch(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.txt"))
autoreload.add_reload_hook(lambda: print("hook ran", flush=True))
autoreload.start(check_time=20)
loop = IOLoop.current()
args = " ".join(sys.argv[1:])
print("ready", VERSION, helper.VALUE, os.getpid(), loop.backend_name, args, flush=True)
loop.start()
"""


def test_start_restarts_on_a_change(
    tmp_path: Path, children: list[Child], reactor_backend: Any
) -> None:
    """On every backend: the check runs on the program's own loop."""
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.format(version="v1"))
    (tmp_path / "helper.py").write_text("VALUE = 'h1'\n")
    (tmp_path / "data.txt").write_text("x")
    child = Child([str(prog), "--flag", "arg"], tmp_path, reactor_backend)
    children.append(child)
    first = child.expect("ready").split()
    assert first[1:3] == ["v1", "h1"]
    pid, backend = first[3], first[4]
    expected = reactor_backend if isinstance(reactor_backend, str) else "kqueue"
    assert backend == expected
    assert first[5:] == ["--flag", "arg"]

    # the program's own file
    change(prog, PROGRAM.format(version="v2"))
    child.expect("hook ran")
    again = child.expect("ready").split()
    # exec: the same process runs the new program, with the same arguments
    assert again == ["ready", "v2", "h1", pid, backend, "--flag", "arg"]

    # a module it imported
    change(tmp_path / "helper.py", "VALUE = 'h2'\n")
    assert child.expect("ready").split()[1:3] == ["v2", "h2"]

    # a file given to watch()
    change(tmp_path / "data.txt", "y")
    assert child.expect("ready").split()[1:3] == ["v2", "h2"]
    assert child.proc.poll() is None


SCRIPT = """\
import sys
print("run", {version!r}, " ".join(sys.argv), flush=True)
"""


def test_wrapper_reruns_a_script_after_it_exits_or_fails(
    tmp_path: Path, children: list[Child]
) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(version="v1"))
    child = Child(["-m", "reactor.autoreload", str(script), "a1"], tmp_path)
    children.append(child)
    assert child.expect("run").split() == ["run", "v1", str(script), "a1"]

    # a syntax error: the wrapper survives it and watches the file
    change(script, "print('broken'\n")
    child.expect("SyntaxError")
    change(script, SCRIPT.format(version="v3"))
    # the original command line again, sys.argv as the script first saw it
    assert child.expect("run").split() == ["run", "v3", str(script), "a1"]


def test_wrapper_runs_a_module_with_dash_m(tmp_path: Path, children: list[Child]) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "tool.py"
    module_text = "import sys\nprint('tool', {v!r}, __spec__.name, sys.argv[1:], flush=True)\n"
    module.write_text(module_text.format(v="v1"))
    child = Child(["-m", "reactor.autoreload", "-m", "pkg.tool", "x"], tmp_path)
    children.append(child)
    assert child.expect("tool") == "tool v1 pkg.tool ['x']"
    change(module, module_text.format(v="v2"))
    # run as -m again: imports still come from the current directory
    assert child.expect("tool") == "tool v2 pkg.tool ['x']"


def test_wrapper_until_success_stops(tmp_path: Path, children: list[Child]) -> None:
    script = tmp_path / "ok.py"
    script.write_text("print('ran once', flush=True)\n")
    child = Child(["-m", "reactor.autoreload", "--until-success", str(script)], tmp_path)
    children.append(child)
    child.expect("ran once")
    assert child.proc.wait(LINE_WAIT) == 0


def test_wrapper_usage_errors(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for args, code, text in [
        ([], 2, "give a module (-m) or a script"),
        (["--bogus"], 2, "unknown option '--bogus'"),
        (["--help"], 0, "python -m reactor.autoreload -m module.to.run"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "reactor.autoreload", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=LINE_WAIT,
        )
        assert result.returncode == code
        assert text in result.stdout + result.stderr


def test_api_in_process() -> None:
    from reactor import autoreload

    before = set(autoreload._watched_files)
    autoreload.watch("/nonexistent/file")
    try:
        assert "/nonexistent/file" in autoreload._watched_files
        times: dict[str, float] = {}
        autoreload._reload_on_update(times)  # a missing file is skipped, not a change
        assert "/nonexistent/file" not in times
        assert __file__ in times or __file__.rstrip("c") in times
    finally:
        autoreload._watched_files.clear()
        autoreload._watched_files.update(before)
