"""The backend registry: choosing, precedence, errors that list what exists."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from reactor import backends
from reactor.backends.pollers.base import Poller
from reactor.backends.pollers.pollpoller import PollPoller
from reactor.ioloop import IOLoop, PollIOLoop

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=60
    )


@pytest.fixture
def clean_configuration(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    previous = IOLoop._configured
    monkeypatch.delenv("REACTOR_BACKEND", raising=False)
    IOLoop.configure(None)
    yield
    IOLoop.configure(previous)


def test_unknown_backend_lists_the_available_ones() -> None:
    result = _run("from reactor.ioloop import IOLoop; IOLoop.current()", REACTOR_BACKEND="nonsense")
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "unknown backend 'nonsense'" in message
    for name, reason in backends.available().items():
        if reason is None:
            assert name in message
    assert f"{backends.default_name()} (default)" in message


@pytest.mark.skipif(
    backends.BACKENDS["kqueue"].unavailable_reason() is None,
    reason="kqueue is available natively on this platform",
)
def test_unavailable_backend_says_why() -> None:
    result = _run("from reactor.ioloop import IOLoop; IOLoop.current()", REACTOR_BACKEND="kqueue")
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert f"backend 'kqueue' is not available on {sys.platform}" in message
    assert "available:" in message


def test_importing_reactor_chooses_nothing() -> None:
    # A broken REACTOR_BACKEND does not break imports, only the first loop;
    # and no module makes a loop at import (e.g. for a shared done future).
    result = _run(
        "import importlib, pkgutil, reactor\n"
        "for m in pkgutil.iter_modules(reactor.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module('reactor.' + m.name)\n"
        "from reactor.ioloop import IOLoop\n"
        "print('ok', IOLoop.initialized(), IOLoop.current(instance=False))",
        REACTOR_BACKEND="nonsense",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok False None"


def test_default_is_the_platforms_first_available_choice(clean_configuration: None) -> None:
    expected = {"linux": "epoll", "darwin": "kqueue"}.get(sys.platform)
    if expected is None and "bsd" in sys.platform:
        expected = "kqueue"
    assert backends.default_name() == (expected or "poll")
    loop = IOLoop(make_current=False)
    try:
        assert loop.backend_name == backends.default_name()
    finally:
        loop.close()


def test_precedence_argument_then_configure_then_environment(
    clean_configuration: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REACTOR_BACKEND", "select")
    assert IOLoop.configured_backend() == "select"
    IOLoop.configure("poll")
    assert IOLoop.configured_backend() == "poll"
    loops = [IOLoop(make_current=False), IOLoop(backend="asyncio", make_current=False)]
    try:
        assert [loop.backend_name for loop in loops] == ["poll", "asyncio"]
    finally:
        for loop in loops:
            loop.close()


def test_configure_checks_at_once(clean_configuration: None) -> None:
    with pytest.raises(backends.BackendError, match="unknown backend 'bogus'"):
        IOLoop.configure("bogus")
    assert IOLoop._configured is None


def test_module_class_spec(clean_configuration: None) -> None:
    loop = IOLoop(backend="reactor.backends.pollers.pollpoller:PollPoller", make_current=False)
    try:
        assert isinstance(loop, PollIOLoop) and loop.backend_name == "poll"
    finally:
        loop.close()
    with pytest.raises(backends.BackendError, match="cannot load backend"):
        IOLoop(backend="no.such.module:Thing")


def test_class_spec_and_poller_instance(clean_configuration: None) -> None:
    loop = IOLoop(backend=PollPoller, make_current=False)
    loop2 = PollIOLoop(backend=PollPoller(), make_current=False)
    try:
        assert loop.backend_name == loop2.backend_name == "poll"
    finally:
        loop.close()
        loop2.close()


def test_a_class_that_is_no_backend_is_refused(clean_configuration: None) -> None:
    with pytest.raises(backends.BackendError, match="neither"):
        IOLoop(backend=dict)


def test_entry_point_backend(tmp_path: Path) -> None:
    """A third-party package registers a backend under ``reactor.backends``."""
    package = tmp_path / "thirdparty_loop.py"
    package.write_text(
        textwrap.dedent(
            """
            from reactor.backends.pollers.pollpoller import PollPoller

            class FancyPoller(PollPoller):
                name = "fancy"
            """
        )
    )
    dist = tmp_path / "thirdparty_loop-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-loop\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[reactor.backends]\nfancy = thirdparty_loop:FancyPoller\n"
    )
    code = (
        "import backends; from reactor.ioloop import IOLoop;"
        "assert 'fancy' in backends.available();"
        "print(IOLoop.current().backend_name)"
    )
    result = _run(
        code,
        REACTOR_BACKEND="fancy",
        PYTHONPATH=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fancy"


def test_cli_lists_every_backend_and_the_default() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reactor", "backends"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"},
    )
    assert result.returncode == 0, result.stderr
    for name, reason in backends.available().items():
        line = next(line for line in result.stdout.splitlines() if line.split()[:1] == [name])
        assert ("available" in line) and (reason is None) == ("unavailable" not in line)
        if reason is not None:
            assert reason in line
    assert f"default: {backends.default_name()}" in result.stdout


def test_every_builtin_backend_names_a_loadable_class() -> None:
    for name, backend in backends.BACKENDS.items():
        if backend.unavailable_reason() is None:
            cls = backend.load()
            assert issubclass(cls, (Poller, IOLoop)), name
