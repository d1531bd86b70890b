"""``python -m reactor bench``: run the checkout's benchmarks, write their tables and plots.

The benchmark scripts live in the source checkout (``benchmarks/`` beside the
``reactor`` package), not in the installed package: each is a program of its
own that runs every cell in a fresh subprocess and prints markdown tables
(see ``benchmarks/README.md``). This command runs the scripts named (all by
default) one after the other, each with the arguments that make its set
(:data:`SCRIPTS`), and from each run keeps three things:

- the tables, printed, and written to ``DIR/NAME.md``; when ``DIR`` holds a
  ``benchmarks.md``, the part of it between ``<!-- bench:NAME:start -->`` and
  ``<!-- bench:NAME:end -->`` is replaced by the plot's link and the tables
  (the section is added at the end if the markers are missing). In the
  checkout's own ``docs/`` (the default) the tables go into that page only:
  a ``docs/NAME.md`` would be a page outside the site's navigation (which
  ``mkdocs build --strict`` refuses) and ``docs/websocket.md`` is the
  WebSocket guide;
- a plot, ``DIR/img/NAME.png`` (matplotlib, Agg): one panel per benchmark
  case, a bar per implementation with the median of the case's first
  (headline) metric, reactor's backends in one colour and the other libraries
  in another, each bar annotated with its ratio to the case's baseline;
- the exit status: 0 when every script ran and no cell failed.

Progress: one tqdm bar per script, a step per cell (a subprocess), showing
the cell running; the scripts report their cells through
``REACTOR_BENCH_PROGRESS`` (``benchmarks/_common.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import reactor

PROGRESS_ENV = "REACTOR_BENCH_PROGRESS"
PLAN_MARK = "BENCH-PLAN "
NEXT_MARK = "BENCH-NEXT "
CELL_MARK = "BENCH-CELL "
DEFAULT_REPEAT = 3
PAGE = "benchmarks.md"


@dataclass(frozen=True)
class Script:
    """One benchmark script: ``benchmarks/bench_NAME.py``, what it measures,
    and its arguments for a full run and for ``--quick`` (``--repeat``,
    ``--backends``, ``--markdown`` and ``--json`` are added to both)."""

    name: str
    what: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ("--quick",)


SCRIPTS: dict[str, Script] = {
    s.name: s
    for s in (
        Script("loop", "the event loop: callback chain, timers, idle poll cost"),
        Script("coroutines", "futures and coroutines: a coroutine step, a queue ping-pong"),
        Script(
            "streams",
            "TCP echo ping-pong (IOStream, asyncio streams and Protocols, Tornado)",
            full=("--bench", "echo"),
            quick=("--quick", "--bench", "echo"),
        ),
        Script(
            "http",
            "HTTP servers under wrk: hello, pipelined, 1-MiB uploads",
            quick=("--quick", "--bench", "hello"),
        ),
        Script(
            "web",
            "web frameworks under wrk: hello, JSON, template, static, 404; CPU per layer",
            quick=("--quick", "--bench", "hello", "--bench", "layers"),
        ),
        Script(
            "websocket",
            "WebSocket echo servers: messages/s and server CPU per message",
            full=("--deflate", "off"),
            quick=("--quick", "--connections", "1", "--sizes", "64", "--deflate", "off"),
        ),
        Script(
            "asyncio",
            "asyncio programs on reactor's loop: Protocol and streams echo, aiohttp, accept",
            full=("--connections", "1", "100", "--sizes", "64"),
            quick=("--quick", "--connections", "2", "--sizes", "64", "--accept-clients", "4"),
        ),
        Script(
            "serve",
            "python -m reactor serve --processes 2 against Tornado, gunicorn + uvicorn, "
            "aiohttp: hello under wrk, the drain of 1,000 keep-alive connections",
        ),
    )
}


class BenchError(Exception):
    """A reason the command cannot run at all (exit status 2)."""


def checkout() -> Path:
    """The source checkout reactor was imported from: the folder holding both
    the ``reactor`` package and ``benchmarks/``.

    Raises :class:`BenchError` when reactor is installed without it.
    """
    root = Path(reactor.__file__).resolve().parent.parent
    if not (root / "benchmarks" / "_common.py").is_file():
        raise BenchError(
            f"the benchmarks are not installed with the package: {root / 'benchmarks'} "
            "does not exist. They live in reactor's source checkout; run "
            "`python -m reactor bench` from the root of a clone (git clone, then "
            "`cd reactor && python -m reactor bench`)"
        )
    return root


# -- running one script ------------------------------------------------------------


@dataclass
class Outcome:
    """What one script's run left: its markdown report, its raw results (the
    ``--json`` file's content, None if it wrote none), its exit status, and
    the tail of its stderr when it failed."""

    name: str
    markdown: str
    raw: dict[str, Any] | None
    status: int
    failed_cells: int
    stderr_tail: str


def _pump_stderr(stream: IO[str], name: str, lines: list[str], failed: list[str]) -> None:
    """Follow a script's stderr: advance its progress bar on the cell lines,
    keep the rest (the last 200 lines) for the report of a failure."""
    # Through importlib: tqdm ships no type information.
    tqdm: Any = importlib.import_module("tqdm").tqdm
    bar = None
    try:
        for line in stream:
            if line.startswith(PLAN_MARK):
                total = int(line[len(PLAN_MARK) :])
                if bar is None:
                    bar = tqdm(total=total, desc=name, unit="cell", file=sys.stderr, leave=True)
                else:
                    bar.total = (bar.total or 0) + total
                    bar.refresh()
            elif line.startswith(NEXT_MARK) and bar is not None:
                cell = json.loads(line[len(NEXT_MARK) :])
                bar.set_postfix_str(f"[{cell['round']}] {cell['case']} / {cell['impl']}")
            elif line.startswith(CELL_MARK) and bar is not None:
                cell = json.loads(line[len(CELL_MARK) :])
                if not cell["ok"]:
                    failed.append(f"{cell['case']} / {cell['impl']}")
                bar.update(1)
            else:
                if "FAILED" in line:
                    tqdm.write(f"{name}: {line.rstrip()}", file=sys.stderr)
                lines.append(line)
                del lines[:-200]
    finally:
        if bar is not None:
            bar.close()


def run_script(
    root: Path,
    script: Script,
    *,
    quick: bool,
    repeat: int,
    backends: Sequence[str] | None,
    extra: Sequence[str] = (),
) -> Outcome:
    """Run ``benchmarks/bench_NAME.py`` with its arguments, in the checkout."""
    path = root / "benchmarks" / f"bench_{script.name}.py"
    if not path.is_file():
        return Outcome(script.name, "", None, 2, 0, f"{path} does not exist in this checkout")
    with tempfile.TemporaryDirectory(prefix="reactor-bench-") as tmp:
        raw_path = Path(tmp) / f"{script.name}.json"
        cmd = [
            sys.executable,
            str(path),
            *(script.quick if quick else script.full),
            "--repeat",
            str(repeat),
            "--markdown",
            "--json",
            str(raw_path),
        ]
        if backends:
            cmd += ["--backends", *backends]
        cmd += extra
        env = {**os.environ, PROGRESS_ENV: "1"}
        env.pop("REACTOR_BACKEND", None)
        lines: list[str] = []
        failed: list[str] = []
        with subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            pump = threading.Thread(
                target=_pump_stderr, args=(proc.stderr, script.name, lines, failed), daemon=True
            )
            pump.start()
            markdown = proc.stdout.read()
            status = proc.wait()
            pump.join()
        raw = json.loads(raw_path.read_text()) if raw_path.is_file() else None
    tail = "".join(lines[-20:]) if status else ""
    return Outcome(script.name, markdown, raw, status, len(failed), tail)


# -- the tables --------------------------------------------------------------------


def demote_headings(markdown: str, top: int = 4) -> str:
    """The report with its headings shifted so that the highest is level
    ``top`` (inside a page's section), outside code blocks."""
    lines = markdown.splitlines()
    fenced = False
    levels = []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#+) ", line)):
            levels.append(len(m.group(1)))
    if not levels:
        return markdown.strip() + "\n"
    shift = top - min(levels)
    out, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#+) ", line)):
            line = "#" * min(6, len(m.group(1)) + shift) + line[len(m.group(1)) :]
        out.append(line)
    return "\n".join(out).strip() + "\n"


def section(name: str, markdown: str, image: str | None) -> str:
    """The text between a page's markers for benchmark ``name``."""
    what = SCRIPTS[name].what if name in SCRIPTS else name
    parts = [f"_Written by `python -m reactor bench {name}`: {what}._", ""]
    if image is not None:
        parts += [f"![bench_{name}.py: the headline metric of each case]({image})", ""]
    parts.append(demote_headings(markdown) if markdown.strip() else "(no tables: the run failed)")
    return "\n".join(parts).strip() + "\n"


def markers(name: str) -> tuple[str, str]:
    """The comments that delimit benchmark ``name``'s generated part of a page."""
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def rewrite_page(page: Path, name: str, content: str) -> None:
    """Replace what lies between ``name``'s markers in ``page`` by
    ``content``; append a section with the markers if the page has none."""
    start, end = markers(name)
    text = page.read_text()
    block = f"{start}\n{content.rstrip()}\n{end}"
    i, j = text.find(start), text.find(end)
    if i >= 0 and j > i:
        text = text[:i] + block + text[j + len(end) :]
    else:
        text = text.rstrip() + f"\n\n## bench_{name}.py\n\n{block}\n"
    page.write_text(text)


# -- the plot ----------------------------------------------------------------------


def _clean(result: dict[str, Any], key: str) -> float | None:
    """A run's value of ``key``, or None for a failed, n/a or flagged run."""
    if "error" in result or "na" in result or result.get("flag"):
        return None
    value = result.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def medians(case: dict[str, Any], key: str) -> dict[str, float]:
    """The median of ``key`` per implementation over a case's clean runs."""
    meds = {}
    for impl, runs in case["results"].items():
        values = [v for r in runs if (v := _clean(r, key)) is not None]
        if values:
            meds[impl] = statistics.median(values)
    return meds


def headline(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]] | None:
    """A case's headline metric (its first) and the median of that metric per
    implementation over its clean runs; None if the case has no metric."""
    metrics = case.get("metrics") or []
    if not metrics:
        return None
    return metrics[0], medians(case, metrics[0]["key"])


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def is_reactor(impl: str) -> bool:
    """Whether an implementation is reactor on one of its backends."""
    return impl.startswith("reactor-") or impl.startswith("flask-wsgicontainer")


def _tick_label(top: float) -> Any:
    """An axis label formatter: thousands separators, or 3 digits for small values."""

    def label(value: float, _pos: int) -> str:
        return f"{value:,.0f}" if top >= 10 else f"{value:.3g}"

    return label


def plot(raw: dict[str, Any], path: Path, name: str) -> bool:
    """Draw ``raw``'s cases into the PNG ``path``; False if nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    panels = [(c, h) for c in raw["cases"] if (h := headline(c)) is not None and h[1]]
    if not panels:
        return False
    cols = 1 if len(panels) == 1 else 2
    rows = (len(panels) + cols - 1) // cols
    tallest = max(len(h[1]) for _, h in panels)
    fig, axes = plt.subplots(
        rows, cols, figsize=(7.0 * cols, 0.6 + rows * (0.75 + 0.32 * tallest)), squeeze=False
    )
    colours = {True: "#2f6db5", False: "#d9822b"}
    for ax, (case, (metric, meds)) in zip(axes.flat, panels, strict=False):
        impls = [i for i in case["results"] if i in meds]
        values = [meds[i] for i in impls]
        base = meds.get(case.get("baseline", ""))
        y = list(range(len(impls)))
        bars = ax.barh(y, values, color=[colours[is_reactor(i)] for i in impls])
        for bar, impl in zip(bars, impls, strict=True):
            if impl == case.get("baseline"):
                bar.set_hatch("//")
        ax.set_yticks(y, impls, fontsize=8)
        ax.invert_yaxis()
        top = max(values)
        # The case's other metrics beside each bar: a drain's time means
        # little without the requests it cut, requests/s without the CPU.
        others = [(m, medians(case, m["key"])) for m in case["metrics"][1:]]
        for yi, impl, value in zip(y, impls, values, strict=True):
            label = [f"{value / base:.2f}x"] if base else []
            label += [f"{_short(meds2[impl])} {m['unit']}" for m, meds2 in others if impl in meds2]
            ax.text(value, yi, "  " + ", ".join(label), va="center", fontsize=7)
        ax.set_xlim(0, top * (1.45 if others else 1.18))
        better = "higher" if metric.get("higher_is_better", True) else "lower"
        ax.set_xlabel(f"median {metric['unit']} ({better} is better)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_formatter(FuncFormatter(_tick_label(top)))
        title = case["label"]
        beside = [f"ratio vs {case['baseline']}"] if base else []
        beside += [m["title"] for m in case["metrics"][1:]]
        if beside:
            title += "\n(beside each bar: " + "; ".join(beside) + ")"
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    machine = raw.get("machine", {})
    commit = re.search(r"commit [0-9a-f]+", machine.get("reactor", ""))
    fig.suptitle(
        f"bench_{name}.py, {raw.get('date', '')[:16].replace('T', ' ')} UTC, "
        f"{commit.group(0) if commit else 'unknown commit'}, median of {raw.get('repeat')} "
        f"run(s)\n{machine.get('cpu', '')}; load at the end {machine.get('load', '?')}; "
        "blue: reactor, orange: other libraries, hatched: the baseline",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


# -- the command -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options."""
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"the benchmarks to run (default: all): {', '.join(SCRIPTS)}",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        metavar="BACKEND",
        help="reactor's backends to run (default: every one available here); "
        "the other libraries always run",
    )
    parser.add_argument("--quick", action="store_true", help="each script's small, short set")
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        metavar="N",
        help=f"runs per cell; each table shows the median (default {DEFAULT_REPEAT})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where the tables (NAME.md) and the plots (img/NAME.png) go "
        "(default: the checkout's docs/, whose benchmarks.md gets the tables)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNG")
    parser.add_argument(
        "--script-args",
        metavar="ARGS",
        default="",
        help="more arguments for every script run, one shell-quoted string "
        '(e.g. "--bench chain" with loop; see benchmarks/README.md)',
    )


def run(args: argparse.Namespace) -> int:
    """``python -m reactor bench``: the exit status (2: cannot run at all)."""
    unknown = [n for n in args.names if n not in SCRIPTS]
    if unknown:
        print(
            f"reactor bench: unknown benchmark(s) {', '.join(unknown)}; "
            f"known: {', '.join(SCRIPTS)}",
            file=sys.stderr,
        )
        return 2
    if args.repeat < 1:
        print("reactor bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    if args.backends:
        from reactor import backends

        known = backends.available()
        bad = [b for b in args.backends if b not in known]
        if bad:
            print(
                f"reactor bench: unknown backend(s) {', '.join(bad)}; known: {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
    try:
        root = checkout()
    except BenchError as e:
        print(f"reactor bench: {e}", file=sys.stderr)
        return 2
    docs = root / "docs"
    out = Path(args.out).resolve() if args.out else docs
    into_docs = out == docs.resolve()
    out.mkdir(parents=True, exist_ok=True)
    page = out / PAGE
    status = 0
    for name in args.names or list(SCRIPTS):
        outcome = run_script(
            root,
            SCRIPTS[name],
            quick=args.quick,
            repeat=args.repeat,
            backends=args.backends,
            extra=shlex.split(args.script_args),
        )
        # The temporary JSON file is no part of the command a reader reruns.
        outcome.markdown = re.sub(r" --json [^\s`]+", "", outcome.markdown)
        if outcome.markdown:
            print(outcome.markdown, flush=True)
        if outcome.status:
            print(
                f"reactor bench: bench_{name}.py exited with status {outcome.status}"
                + (f" ({outcome.failed_cells} cell(s) failed)" if outcome.failed_cells else "")
                + (f":\n{outcome.stderr_tail}" if outcome.stderr_tail else ""),
                file=sys.stderr,
            )
            status = 1
        if not outcome.markdown:
            continue
        image = None
        png = out / "img" / f"{name}.png"
        if not args.no_plots and outcome.raw is not None and plot(outcome.raw, png, name):
            image = f"img/{name}.png"
        if not into_docs:
            (out / f"{name}.md").write_text(section(name, outcome.markdown, image))
        if page.is_file():
            rewrite_page(page, name, section(name, outcome.markdown, image))
    return status
