"""The examples run as a user would run them: a fresh process per backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import backends

ROOT = Path(__file__).resolve().parent.parent
AVAILABLE = [name for name, reason in backends.available().items() if reason is None]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_asyncio_code_runs_unchanged_on_each_backend(backend: str) -> None:
    env = dict(os.environ, REACTOR_BACKEND=backend)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "asyncio_on_reactor.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"backend={backend} result=['A', 'B', 'C', '(timed out as expected)']"
    )
