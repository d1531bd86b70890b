"""benchmarks/bench_asyncio.py runs, in its bounded quick mode, and reports every row.

The script is run as a user runs it (a fresh process, which starts a real
server process per cell and drives it over 127.0.0.1). Nothing here looks at
a timing: only that every implementation has its row in every table, that a
row holds a number or, for reactor-epoll while its asyncio face lacks a loop
method the benchmark needs, says ``n/a (not built: NativeAsyncioLoop.NAME)``,
and that nothing failed: where a cell holds a number, the benchmark's own
checks (every echo byte for byte, the accept greeting, the aiohttp answer)
passed against that loop.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

from reactor.asyncio_view import NativeAsyncioLoop

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_asyncio.py"
NUMBER = r"[\d,]+(\.\d+)?"
IMPLS = ("reactor-epoll", "asyncio", "uvloop")


def table_rows(report: str, title: str) -> dict[str, list[str]]:
    """The rows of the markdown table under the bold title that starts with ``title``."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"**{title}"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 4 :]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_has_every_row() -> None:
    benches = ["protocol", "streams", "accept"]
    if shutil.which("wrk") is not None:
        benches.append("aiohttp")  # needs wrk, as bench_http.py does
    bench_args = [arg for bench in benches for arg in ("--bench", bench)]
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--repeat",
            "1",
            "--connections",
            "2",
            "--sizes",
            "64",
            "--accept-clients",
            "4",
            *bench_args,
        ],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout
    assert "FAILED" not in report, report
    built = NativeAsyncioLoop.create_server is not asyncio.AbstractEventLoop.create_server
    titles = {
        "protocol": "asyncio.Protocol echo, 64 B, C = 2: messages per second",
        "streams": "asyncio streams echo, 64 B, C = 2: messages per second",
        "accept": "asyncio.start_server accept rate, 4 connecting at once: connections per second",
        "aiohttp": "aiohttp hello world, wrk -t1 -c100: requests per second",
    }
    for bench in benches:
        rows = table_rows(report, titles[bench])
        assert set(rows) == set(IMPLS), (bench, rows)
        for impl, cells in rows.items():
            if impl == "reactor-epoll" and not built:
                assert cells[0] == "n/a (not built: NativeAsyncioLoop.create_server)", cells
            else:
                assert re.fullmatch(NUMBER, cells[0]), (bench, impl, cells)
    summary = table_rows(report, "All cases: median rate")
    assert len(summary) == len(benches)
