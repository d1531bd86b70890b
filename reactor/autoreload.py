"""Restart the process when one of its source files changes (development only).

``Application(..., debug=True)`` (or ``autoreload=True``) calls :func:`start`;
``python -m reactor.autoreload prog.py`` (or ``-m package.module``) runs a
program and runs it again whenever a file it imported changes, even when it
failed at import time (a syntax error) or exited.

Some facts about restarting a running program (each is a test in
tests/test_autoreload.py):

- The restart is ``os.execv(sys.executable, [sys.executable] + argv)``: the
  same process (same pid, same parent, same terminal) runs the program from
  the start. Interpreter options such as ``-u`` or ``-X`` are lost, and so is
  anything the program changed in ``sys.argv``. (On Windows, which has no
  real exec, a new process is started and this one exits.)
- ``python -m package.module`` leaves ``sys.argv[0]`` a file path, and
  running a file puts its directory first on ``sys.path`` where ``-m`` puts
  the current directory: the restart passes ``-m package.module`` again, so
  the new process imports what the old one did.
- Sockets Python makes are not inheritable (PEP 446): exec closes them, and a
  listening port is free for the new process to bind again. Files opened
  with ``os.open`` and flags of their own may survive: close those in a
  :func:`add_reload_hook` hook.
- A change is a changed modification time (``st_mtime``). The times of the
  files already imported are taken when :func:`start` is called, so a file
  saved right after start is a change too; a file that cannot be read (being
  replaced by an editor) is skipped until it can.
- Under :func:`reactor.process.fork_processes` the children do not restart:
  each would fork again (and the parent runs no loop): use one process.
"""

from __future__ import annotations

import functools
import os
import sys

# Run as ``python -m reactor.autoreload``, this file's directory (reactor/)
# comes first on sys.path, where its modules would shadow the standard
# library's (reactor/platform hides nothing, but reactor/asyncio_view or a
# future reactor/select... would); take it off before importing anything.
if (
    __name__ == "__main__"
    and sys.path
    and sys.path[0] == os.path.dirname(os.path.abspath(__file__))
):
    del sys.path[0]

import importlib.util
import runpy
import signal
import subprocess
import traceback
import types
import weakref
from collections.abc import Callable
from typing import Any

from reactor import ioloop, process
from reactor.log import gen_log

__all__ = ["add_reload_hook", "main", "start", "wait", "watch"]

_watched_files: set[str] = set()
_reload_hooks: list[Callable[[], None]] = []
_reload_attempted = False
_io_loops: weakref.WeakKeyDictionary[ioloop.IOLoop, bool] = weakref.WeakKeyDictionary()
# Set by main(): the command line to run again, as the user typed it.
_autoreload_is_main = False
_original_argv: list[str] | None = None
_original_spec: Any = None
# The modification times main() took before running the program, so that a
# change made while it runs (or between its exit and wait()) counts.
_initial_times: dict[str, float] = {}


def start(check_time: int = 500) -> None:
    """Watch the imported modules' files (and :func:`watch`'s) every
    ``check_time`` milliseconds on the current loop, and restart the process
    when one changes. Once per loop; a second loop gets a warning."""
    loop = ioloop.IOLoop.current()
    if loop in _io_loops:
        return
    _io_loops[loop] = True
    if len(_io_loops) > 1:
        gen_log.warning("reactor.autoreload started more than once in the same process")
    # The times now (over those main() took before the program ran): a
    # change from here on counts.
    modify_times: dict[str, float] = dict(_initial_times)
    _reload_on_update(modify_times)
    scheduler = ioloop.PeriodicCallback(
        functools.partial(_reload_on_update, modify_times), check_time
    )
    scheduler.start()


def wait() -> None:
    """Wait, on a new loop, for a watched file to change, then restart.

    For the end of a script such as a test runner: run it again on a change.
    """
    loop = ioloop.IOLoop()
    loop.add_callback(start)
    loop.start()


def watch(filename: str) -> None:
    """Restart when ``filename`` changes, too (imported modules always count)."""
    _watched_files.add(filename)


def add_reload_hook(fn: Callable[[], None]) -> None:
    """Call ``fn()`` just before the restart (to close what exec would keep)."""
    _reload_hooks.append(fn)


def _files() -> list[str]:
    paths = []
    for module in list(sys.modules.values()):
        # Some modules are not modules (objects put in sys.modules); their
        # __file__ may be anything, or raise.
        if not isinstance(module, types.ModuleType):
            continue
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path:
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        paths.append(path)
    paths.extend(_watched_files)
    return paths


def _reload_on_update(modify_times: dict[str, float]) -> None:
    if _reload_attempted:
        return  # exec failed once: do not try on every check
    if process.task_id() is not None:
        return  # a fork_processes child: only the parent restarts
    for path in _files():
        if _changed(modify_times, path):
            gen_log.info("%s modified; restarting server", path)
            _reload()
            return


def _changed(modify_times: dict[str, float], path: str) -> bool:
    try:
        modified = os.stat(path).st_mtime
    except OSError:
        return False
    known = modify_times.setdefault(path, modified)
    return known != modified


def _reload() -> None:
    global _reload_attempted
    _reload_attempted = True
    for fn in _reload_hooks:
        fn()
    if hasattr(signal, "setitimer"):
        # An interval timer would outlive exec and kill the new program.
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    if _autoreload_is_main:
        assert _original_argv is not None
        spec, argv = _original_spec, _original_argv
    else:
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        argv = sys.argv
    if spec is not None and spec.name != "__main__":
        # Run as ``-m name`` (a spec named __main__ is a directory or zip
        # run as a script: argv[0] then says it all).
        argv = ["-m", spec.name, *argv[1:]]
    if sys.platform == "win32":
        subprocess.Popen([sys.executable, *argv])
        os._exit(0)
    os.execv(sys.executable, [sys.executable, *argv])


_USAGE = """\
python -m reactor.autoreload -m module.to.run [args...]
python -m reactor.autoreload path/to/script.py [args...]

Runs the program, and runs it again whenever one of its source files changes
(also after it exited or failed). Options: --until-success: stop once a run
exits with status 0."""


def main() -> None:
    """``python -m reactor.autoreload [--until-success] (-m module | script) [args]``."""
    global _autoreload_is_main, _original_argv, _original_spec
    # This may run as __main__, a module apart from reactor.autoreload: set
    # the command line in both, since _reload reads it from the importable one.
    this = sys.modules.get("reactor.autoreload") or importlib.import_module("reactor.autoreload")
    original_argv = sys.argv
    original_spec = getattr(sys.modules["__main__"], "__spec__", None)
    _autoreload_is_main = this._autoreload_is_main = True  # type: ignore[attr-defined]
    _original_argv = this._original_argv = original_argv  # type: ignore[attr-defined]
    _original_spec = this._original_spec = original_spec  # type: ignore[attr-defined]

    # Options end at the program, as for python itself: its own options
    # (``prog.py -m x``) are its own.
    args = sys.argv[1:]
    until_success = False
    module = None
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "--until-success":
            until_success = True
        elif option == "-m" and args:
            module = args.pop(0)
            break
        elif option in ("-h", "--help"):
            print(_USAGE)
            sys.exit(0)
        else:
            print(f"unknown option {option!r}\n\n{_USAGE}", file=sys.stderr)
            sys.exit(2)
    if module is None:
        if not args:
            print(f"give a module (-m) or a script\n\n{_USAGE}", file=sys.stderr)
            sys.exit(2)
        path = args[0]
        sys.argv = args[:]
    else:
        path = None
        sys.argv = [sys.argv[0], *args]

    # Before the program runs: its own file and what is imported already.
    # (A module file is found without importing it: runpy does that.)
    if module is not None:
        found = importlib.util.find_spec(module)
        main_file = found.origin if found is not None and found.has_location else None
    else:
        main_file = path
    if main_file:
        watch(main_file)
    for file in _files():
        _changed(_initial_times, file)

    exit_status: object = 1
    try:
        if module is not None:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            assert path is not None
            runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        exit_status = e.code
        gen_log.info("Script exited with status %s", e.code)
    except Exception as e:
        gen_log.warning("Script exited with uncaught exception", exc_info=True)
        # A module that failed to import is not in sys.modules: watch every
        # file of the traceback instead (and a SyntaxError's file, which is
        # not in its traceback).
        for frame in traceback.extract_tb(e.__traceback__):
            watch(frame.filename)
        if isinstance(e, SyntaxError) and e.filename:
            watch(e.filename)
    else:
        exit_status = 0
        gen_log.info("Script exited normally")
    sys.argv = original_argv
    if until_success and not exit_status:
        return
    wait()


if __name__ == "__main__":
    main()
