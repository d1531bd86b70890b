"""benchmarks/bench_web.py runs, in its bounded quick mode, and reports every row.

The script is run as a user runs it (a fresh process, which starts a real
server process per cell and drives it over 127.0.0.1). Nothing here looks at
a timing: only that every implementation asked for has its row, that a row
holds a number or says why not (``n/a (not built: ...)`` while a reactor
module does not exist yet), and that nothing failed. Where the reactor module
a cell needs exists, the cell must hold a number: the benchmark's own checks
(status, body, the 50 escaped rows) passed against reactor's application.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_web.py"
NUMBER = r"[\d,]+(\.\d+)?"
LAYER_NEEDS = {
    "bare": ["reactor.httpserver"],
    "routing": ["reactor.web"],
    "handler": ["reactor.web"],
    "template": ["reactor.web", "reactor.template", "reactor.locale"],
}


def run_bench(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", *args],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout, proc.stdout
    return proc.stdout


def table_rows(report: str, title: str) -> dict[str, list[str]]:
    """The rows of the markdown table under the bold title containing ``title``."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("**") and title in line)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 4 :]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def built(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def test_layers_table_has_every_layer_of_every_implementation() -> None:
    report = run_bench("--bench", "layers", "--layer-requests", "64", "--only", "reactor-epoll")
    rows = table_rows(report, "by layer")
    assert set(rows) == {"reactor-epoll"}
    for impl, cells in rows.items():
        assert len(cells) == 4, (impl, cells)
        previous_built = True
        for layer, cell in zip(LAYER_NEEDS, cells, strict=True):
            missing = [m for m in LAYER_NEEDS[layer] if not built(m)]
            if not missing:
                # The first layer has no increment; a later one has (+x)
                # when the layer before it has a number too.
                increment = "" if layer == "bare" or not previous_built else rf" \(\+-?{NUMBER}\)"
                assert re.fullmatch(NUMBER + increment, cell), (impl, layer, cell)
                previous_built = True
            else:
                assert cell == f"n/a (not built: {', '.join(missing)})", (impl, layer, cell)
                previous_built = False


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_wrk_tables_have_every_row() -> None:
    report = run_bench("--bench", "hello", "--bench", "template", "--only", "reactor-epoll")
    for title, needs in (
        ("Hello world, GET /,", ["reactor.web"]),
        ("Template page, 50-row loop", ["reactor.web", "reactor.template", "reactor.locale"]),
    ):
        rows = table_rows(report, title)
        assert list(rows) == ["reactor-epoll"], rows
        cell = rows["reactor-epoll"][0]
        missing = [m for m in needs if not built(m)]
        if not missing:
            assert re.fullmatch(NUMBER, cell), (title, cell)
        else:
            assert cell == f"n/a (not built: {', '.join(missing)})", (title, cell)
    summary = table_rows(report, "All wrk benchmarks")
    assert list(summary) == ["reactor-epoll"]
    assert len(summary["reactor-epoll"]) == 2
