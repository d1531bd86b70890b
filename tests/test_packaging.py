"""How reactor installs: one top-level import name, ``reactor``.

The repository keeps the backends in a top-level ``backends/`` folder; they
install as ``reactor.backends`` (setuptools ``package-dir``), so an
application's own ``backends`` module cannot shadow them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The default backend: these tests are about imports, not about a backend
# (and kqueue, on Linux, exists only through the test suite's emulation).
ENV = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in ``cwd``; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60, env=ENV
    )
    assert result.returncode == 0, result.stderr
    return result


def test_an_applications_backends_module_does_not_shadow_reactor(tmp_path: Path) -> None:
    (tmp_path / "backends.py").write_text("SHADOW = True\n")
    code = (
        "import backends; assert backends.SHADOW;"
        "from reactor.ioloop import IOLoop;"
        "loop = IOLoop(make_current=False);"
        "print(loop.backend_name, type(loop).__module__); loop.close()"
    )
    result = run_python(code, tmp_path)
    assert result.stdout.split()[1] == "reactor.ioloop"


def test_the_backends_import_as_reactor_backends_only(tmp_path: Path) -> None:
    code = (
        "import importlib.util, reactor.backends as b;"
        "from reactor.backends.pollers.base import Poller;"
        "from reactor.backends.loops.asyncioloop import AsyncioLoop;"
        "print(importlib.util.find_spec('backends'))"
    )
    result = run_python(code, tmp_path)
    assert result.stdout.strip() == "None"


def test_the_wheel_ships_every_module_under_reactor(tmp_path: Path) -> None:
    """Every .py file of the source tree is in the wheel, at its import path."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("reactor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"reactor/{p.relative_to(ROOT / 'reactor').as_posix()}"
        for p in (ROOT / "reactor").rglob("*.py")
        if "backends" not in p.relative_to(ROOT / "reactor").parts
    }
    expected |= {
        f"reactor/backends/{p.relative_to(ROOT / 'backends').as_posix()}"
        for p in (ROOT / "backends").rglob("*.py")
    }
    assert expected <= names, sorted(expected - names)
    assert "reactor/backends/py.typed" in names
    assert not any(n.startswith("backends/") for n in names)
