"""benchmarks/bench_websocket.py runs, in its bounded quick mode, and reports every row.

The script is run as a user runs it (a fresh process, which starts a real
server process per cell and drives it with its own WebSocket client over
127.0.0.1). Nothing here looks at a timing: only that every implementation
has its row, that a row holds numbers or says why not (``n/a (not built:
reactor.websocket)`` while this checkout has no such module), and that
nothing failed. A row with numbers means the cell's checks passed against
that server: the opening handshake, every echo byte for byte, the Close
handshake at the end.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_websocket.py"
NUMBER = r"[\d,]+(\.\d+)?"
RATIO = r"\d+\.\d\dx"
IMPLEMENTATIONS = [
    "reactor-select",
    "reactor-poll",
    "reactor-epoll",
    "reactor-asyncio",
    "reactor-uvloop",
    "tornado",
    "websockets",
    "websockets-uvloop",
    "aiohttp",
]
BUILT = importlib.util.find_spec("reactor.websocket") is not None


def run_bench(*args: str, timeout: float = 50) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
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


def test_echo_table_has_every_implementation() -> None:
    report = run_bench(
        "--repeat", "1", "--connections", "1", "--sizes", "64", "--deflate", "off",
        "--duration", "0.2", "--warmup", "0.05",
    )  # fmt: skip
    rows = table_rows(report, "64 B text, C=1: messages per second")
    assert list(rows) == IMPLEMENTATIONS, rows
    for impl, cells in rows.items():
        if impl.startswith("reactor-") and not BUILT:
            assert cells[0] == "n/a (not built: reactor.websocket)", (impl, cells)
            continue
        # median, min - max, vs tornado, vs websockets, µs/message, the two CPU ratios
        rate, spread, vs_tornado, vs_websockets, us, cpu_ratios = cells
        assert re.fullmatch(NUMBER, rate), (impl, cells)
        assert re.fullmatch(f"{NUMBER} - {NUMBER}", spread), (impl, cells)
        assert re.fullmatch(RATIO, vs_tornado) and re.fullmatch(RATIO, vs_websockets), cells
        assert re.fullmatch(NUMBER, us), (impl, cells)
        assert re.fullmatch(f"{RATIO} / {RATIO}", cpu_ratios), (impl, cells)
    assert rows["tornado"][2] == "1.00x" and rows["websockets"][3] == "1.00x", rows


def test_deflate_cell_reports_what_each_server_answered() -> None:
    impls = ["reactor-epoll", "tornado", "websockets", "aiohttp"]
    report = run_bench(
        "--repeat", "1", "--connections", "1", "--sizes", "64", "--deflate", "on",
        "--duration", "0.2", "--warmup", "0.05", "--only", *impls,
    )  # fmt: skip
    rows = table_rows(report, "64 B text, C=1, permessage-deflate: messages per second")
    assert list(rows) == impls, rows
    answers = next(line for line in report.splitlines() if "permessage-deflate answers" in line)
    for impl in impls:
        if impl.startswith("reactor-") and not BUILT:
            continue
        assert re.fullmatch(NUMBER, rows[impl][0]), (impl, rows[impl])
        # Every server accepted the offer and compressed every echo.
        assert re.search(
            rf"{impl} `permessage-deflate[^`]*` \(100% of echoes compressed\)", answers
        ), (
            impl,
            answers,
        )


def test_profile_lists_functions_per_message() -> None:
    impl = "reactor-epoll" if BUILT else "tornado"
    report = run_bench("--profile", "--profile-impl", impl, "--duration", "0.3", "--top", "5")
    assert f"cProfile of the {impl} server" in report, report
    own = table_rows(report, "Top 5 by own time")
    # The table's own header row is skipped by table_rows: five functions.
    assert len(own) == 5, report
    cumulative = table_rows(report, "Top 5 by cumulative time")
    assert len(cumulative) == 5, report
    assert any("on_message" in name for name in cumulative) or any(
        "websocket" in name for name in cumulative
    ), report
