"""benchmarks/bench_serve.py runs, in its bounded quick mode, and reports every row.

The script is run as a user runs it: a fresh process that starts, per cell,
a worker, which starts a real multi-process server (``python -m reactor
serve --processes 2`` on the backend under test, Tornado's
``fork_processes``, gunicorn with uvicorn workers, aiohttp in two
processes), drives it with wrk and with real keep-alive connections, sends
its main process a real SIGTERM and waits for it to exit. Nothing here looks
at a timing: only that every row holds a number, that nothing failed, and
what the drain left: every server exited with status 0 and closed every
connection, and each request in flight was either answered or counted cut.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reactor import backends

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_serve.py"
PEERS = ["tornado", "gunicorn-uvicorn", "aiohttp"]
DRAIN_CONNECTIONS = 20

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def native_backends() -> list[str]:
    """The registry's backends that run here (``serve --backend`` takes a name)."""
    return [n for n, reason in backends.available().items() if reason is None]


def run_quick(tmp_path: Path, impls: list[str]) -> tuple[str, dict[str, object]]:
    raw = tmp_path / "raw.json"
    proc = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--only", *impls,
            "--drain-connections", str(DRAIN_CONNECTIONS), "--json", str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "FAILED" not in proc.stdout, proc.stdout
    return proc.stdout, json.loads(raw.read_text())


def check(report: str, raw: dict[str, object], impls: list[str]) -> None:
    cases = {c["bench"]: c for c in raw["cases"]}  # type: ignore[attr-defined]
    assert set(cases) == {"hello", "drain"}
    for impl in impls:
        assert f"| {impl} | " in report
        (hello,) = cases["hello"]["results"][impl]
        assert hello["rps"] > 0 and hello["requests"] > 0
        assert hello["server_us"] > 0  # the CPU of every process of the server was counted
        (drain,) = cases["drain"]["results"][impl]
        assert drain["flag"] == "", drain
        assert drain["exit_status"] == 0
        assert drain["closed"] == DRAIN_CONNECTIONS and drain["left_open"] == 0
        assert drain["cut"] + drain["answered"] == drain["busy"] > 0


@pytest.mark.parametrize("backend", native_backends())
def test_reactor_serve_on_each_backend(tmp_path: Path, backend: str) -> None:
    impl = f"reactor-{backend}"
    report, raw = run_quick(tmp_path, [impl])
    check(report, raw, [impl])
    (hello,) = raw["cases"][0]["results"][impl]  # type: ignore[index]
    assert f"on {backend}, 2 processes" in hello["server_stderr"]  # what reactor serve printed


def test_the_peers(tmp_path: Path) -> None:
    report, raw = run_quick(tmp_path, PEERS)
    check(report, raw, PEERS)


def test_backends_option_runs_only_those(tmp_path: Path) -> None:
    """The --backends filter of every script: only the backends named run."""
    chosen = native_backends()[:1]
    raw = tmp_path / "raw.json"
    proc = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--bench", "hello",
            "--backends", *chosen, "--only", *(f"reactor-{b}" for b in native_backends()),
            "--json", str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (case,) = json.loads(raw.read_text())["cases"]
    assert set(case["results"]) == {f"reactor-{b}" for b in chosen}
