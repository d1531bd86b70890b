"""``python -m reactor bench``: runs benchmark scripts, writes their tables and plots.

The command is run as a user runs it (``python -m reactor`` from the
checkout, a fresh process, which runs a real benchmark script that starts a
fresh subprocess per cell), in quick mode, one repeat, two backends, into a
temporary folder. Nothing here looks at a timing: only what the command
wrote (the tables naming every backend run and no other, a valid PNG, the
page's marked section replaced and the rest of the page kept) and its exit
statuses. The plot and page helpers are also driven directly, on results
made up for the purpose.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reactor import _bench, backends

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGE = """\
# Benchmarks

Text before, kept.

<!-- bench:loop:start -->
an old table
<!-- bench:loop:end -->

Text after, kept.
"""


def bench(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 55):
    return subprocess.run(
        [sys.executable, "-m", "reactor", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def two_backends() -> list[str]:
    """Two backends that run here, from the registry (the native epoll, poll
    or select loop first, then another)."""
    names = [n for n, reason in backends.available().items() if reason is None]
    if len(names) < 2:
        pytest.skip(f"fewer than two backends run here: {names}")
    return names[:2]


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)  # decodes the whole image, or raises
    height, width = pixels.shape[:2]
    assert height > 100 and width > 100


def test_quick_run_writes_tables_plot_and_page_section(tmp_path: Path) -> None:
    chosen = two_backends()
    (tmp_path / "benchmarks.md").write_text(PAGE)
    proc = bench(
        "loop", "--quick", "--repeat", "1", "--backends", *chosen, "--out", str(tmp_path),
        "--script-args", "--bench chain",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]

    tables = (tmp_path / "loop.md").read_text()
    for name in chosen:
        assert f"| reactor-{name} |" in tables
    for name in backends.available():
        if name not in chosen:
            assert f"| reactor-{name} |" not in tables
    assert "| asyncio |" in tables  # the other libraries still run
    assert "Timers" not in tables  # --script-args reached the script
    assert "FAILED" not in tables
    assert "--json" not in tables  # the temporary file is no part of the command shown
    assert "(img/loop.png)" in tables
    assert_png(tmp_path / "img" / "loop.png")
    # The tables were printed too, and the progress bar went to stderr.
    assert f"| reactor-{chosen[0]} |" in proc.stdout
    assert "loop: 100%" in proc.stderr

    page = (tmp_path / "benchmarks.md").read_text()
    assert "an old table" not in page
    assert page.startswith("# Benchmarks\n\nText before, kept.\n")
    assert page.rstrip().endswith("Text after, kept.")
    start, end = page.index("<!-- bench:loop:start -->"), page.index("<!-- bench:loop:end -->")
    section = page[start:end]
    assert f"| reactor-{chosen[1]} |" in section
    assert "![" in section and "(img/loop.png)" in section
    # The report's headings sit below the page's own.
    assert "\n#### Run\n" in section
    assert "\n## " not in section


def test_no_plots_writes_tables_only(tmp_path: Path) -> None:
    chosen = two_backends()[:1]
    proc = bench(
        "loop", "--quick", "--repeat", "1", "--backends", *chosen, "--no-plots",
        "--out", str(tmp_path), "--script-args", "--bench chain --only reactor-" + chosen[0],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"| reactor-{chosen[0]} |" in (tmp_path / "loop.md").read_text()
    assert not (tmp_path / "img").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "unknown benchmark(s) nosuch; known: loop, coroutines"),
        (["loop", "--backends", "nosuch"], "unknown backend(s) nosuch; known: "),
        (["loop", "--repeat", "0"], "--repeat must be at least 1"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = bench(*args, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_installed_without_checkout_exits_2(tmp_path: Path) -> None:
    """reactor imported from a folder with no benchmarks/ beside it (as an
    installed package is) says where the benchmarks live."""
    shutil.copytree(ROOT / "reactor", tmp_path / "site" / "reactor")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")}
    proc = bench("loop", "--quick", cwd=tmp_path, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "the benchmarks are not installed with the package" in proc.stderr
    assert str(tmp_path / "site" / "benchmarks") in proc.stderr
    assert "from the root of a clone" in proc.stderr


def made_up_run() -> dict[str, object]:
    """A run's raw results as the scripts' --json writes them."""

    def runs(*values: float) -> list[dict[str, object]]:
        return [{"rate": v} for v in values]

    return {
        "date": "2026-01-02T03:04:05+00:00",
        "repeat": 3,
        "machine": {"cpu": "a CPU, 2 logical CPUs", "reactor": "0.1 (commit abc1234)", "load": "1"},
        "cases": [
            {
                "label": "first case",
                "baseline": "asyncio",
                "metrics": [{"key": "rate", "unit": "ops/s", "higher_is_better": True}],
                "results": {
                    "reactor-epoll": runs(10, 30, 20),
                    "asyncio": runs(10, 10, 10),
                    # Failed, n/a and flagged runs are no part of a median.
                    "tornado": [{"error": "boom"}, {"rate": 5, "flag": "3 read errors"}],
                },
            },
            {
                "label": "a case without results",
                "metrics": [{"key": "rate", "unit": "ops/s"}],
                "results": {"reactor-epoll": [{"na": "not built"}]},
            },
        ],
    }


def test_headline_is_the_median_of_clean_runs() -> None:
    raw = made_up_run()
    metric, medians = _bench.headline(raw["cases"][0])  # type: ignore[index, misc]
    assert metric["key"] == "rate"
    assert medians == {"reactor-epoll": 20, "asyncio": 10}


def test_plot_draws_each_case_with_results(tmp_path: Path) -> None:
    path = tmp_path / "img" / "made.png"
    assert _bench.plot(made_up_run(), path, "made")
    assert_png(path)
    nothing = {"cases": [made_up_run()["cases"][1]]}  # type: ignore[index]
    assert not _bench.plot(nothing, tmp_path / "none.png", "none")
    assert not (tmp_path / "none.png").exists()


def test_page_without_markers_gets_a_section_at_the_end(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nOld text.\n")
    _bench.rewrite_page(page, "http", "the tables\n")
    _bench.rewrite_page(page, "http", "the new tables\n")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nOld text.\n")
    assert text.count("<!-- bench:http:start -->") == 1
    assert "the new tables" in text and "the tables\n" not in text.replace("new tables", "")


def test_headings_are_demoted_outside_code() -> None:
    text = "## Run\n\n### Case\n\n```\n# a comment\n```\n"
    assert _bench.demote_headings(text) == "#### Run\n\n##### Case\n\n```\n# a comment\n```\n"
