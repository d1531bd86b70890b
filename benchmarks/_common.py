"""What the benchmark scripts share: the subprocess driver, the machine report, the tables.

Every script in this folder works the same way. The parent process runs each
(benchmark, implementation) cell in a fresh subprocess of the script itself
(``--worker SPEC``), with a time limit; the worker prints one result line
(:data:`RESULT_MARK` + JSON). The whole set is repeated ``--repeat`` times,
rotating the order of the implementations, and each cell is reported as the
median, the min-max range and the ratio of the median to a baseline's
(asyncio's default event loop unless a case says otherwise).

This module is imported, never run. Importing it puts the checkout it lives
in on ``sys.path``, so the scripts benchmark that checkout, installed or not;
with ``REACTOR_BENCH_TREE`` set, that checkout instead (how ``bench_http.py
--baseline-tree`` runs the commit before a change beside it).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TREE = Path(os.environ.get("REACTOR_BENCH_TREE") or ROOT)
if (TREE / "reactor").is_dir():
    # Benchmark the checkout this script lives in (or the one named), installed or not.
    sys.path.insert(0, str(TREE))

BASELINE = "asyncio"
RESULT_MARK = "BENCH-RESULT "

BASELINE_SUFFIX = "@base"
"""With ``--baseline-tree PATH``, ``reactor-X@base`` is ``reactor-X`` run from
the checkout at PATH (e.g. ``git worktree add ../base HEAD~1``), in the same
rounds as the others: a change measured against its parent in one run."""
_BASELINE_TREE_ENV = "REACTOR_BENCH_BASELINE_TREE"

Cells = dict[str, list[dict[str, Any]]]
"""One case's results: implementation name -> one result dict per run."""


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool
    digits: int


@dataclass(frozen=True)
class Case:
    """One benchmark with its parameters: a group of cells in the report.

    ``impls``: the implementations this case runs (None: all of the run's);
    ``baseline``: the implementation the ratio column divides by.
    """

    bench: str
    label: str
    params: dict[str, Any]
    metrics: list[Metric]
    timeout: float
    impls: tuple[str, ...] | None = None
    baseline: str = BASELINE


def unavailable_reason(name: str) -> str | None:
    """Why an event-loop implementation cannot run on this machine, or None.

    ``reactor-BACKEND`` asks reactor's backend registry; ``uvloop`` and
    ``tornado`` need their distribution installed; anything else is assumed
    to be available.
    """
    if name.startswith("reactor-"):
        from reactor import backends

        return backends.available().get(name.removeprefix("reactor-"), "unknown backend")
    module = {"uvloop": "uvloop", "tornado": "tornado"}.get(name)
    if module is not None:
        try:
            importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return f"{module} is not installed (pip install -e .[bench])"
    return None


def emit_result(result: dict[str, Any]) -> None:
    """The worker's last word: its result, on one line of stdout."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_one(script: str | Path, impl: str, case: Case, timeout_scale: float) -> dict[str, Any]:
    """One subprocess of ``script --worker``: returns its result, or {"error": ...}."""
    env = dict(os.environ)
    env.pop("REACTOR_BACKEND", None)
    cwd = ROOT
    if impl.endswith(BASELINE_SUFFIX):
        # The same worker, importing reactor from the baseline checkout.
        impl = impl.removesuffix(BASELINE_SUFFIX)
        cwd = Path(env[_BASELINE_TREE_ENV])
        env["REACTOR_BENCH_TREE"] = str(cwd)
    spec = {"impl": impl, "bench": case.bench, **case.params}
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", json.dumps(spec)]
    timeout = case.timeout * timeout_scale
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK) and proc.returncode == 0:
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"exit status {proc.returncode}: {tail}", "stderr": proc.stderr}


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    import reactor

    commit = "unknown commit"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "reactor", "backends"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        commit = f"commit {head}" + (
            " with local changes in reactor/ or backends/" if dirty else ""
        )
    except (OSError, subprocess.SubprocessError):
        pass

    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "tornado": version("tornado"),
        "uvloop": version("uvloop"),
        "reactor": f"{reactor.version} ({commit}, from {Path(reactor.__file__).parent.parent})",
        "load": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or "" where there are none."""
    if not hasattr(os, "getloadavg"):
        return ""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def runs(cells: Cells) -> int:
    """The number of runs in the fullest cell."""
    return max((len(v) for v in cells.values()), default=0)


def medians(metric: Metric, impls: Sequence[str], cells: Cells) -> dict[str, float]:
    """The median of ``metric`` for each implementation that has a value."""
    out: dict[str, float] = {}
    for impl in impls:
        values = [r[metric.key] for r in cells.get(impl, []) if metric.key in r]
        if values:
            out[impl] = statistics.median(values)
    return out


def render_table(
    case: Case,
    metric: Metric,
    impls: Sequence[str],
    cells: Cells,
    notes: Sequence[str] = (),
) -> list[str]:
    """Lines of a markdown table: implementation | median | min - max | ratio,
    under a bold title and followed by ``notes`` (one paragraph), if any."""
    direction = "higher is better" if metric.higher_is_better else "lower is better"
    meds = medians(metric, impls, cells)
    base = meds.get(case.baseline)
    header = [
        f"| implementation | median {metric.unit} | min - max | ratio vs {case.baseline} |",
        "|---|---:|---:|---:|",
    ]
    rows = []
    for impl in impls:
        results = cells.get(impl, [])
        errors = [r["error"] for r in results if "error" in r]
        na = [r for r in results if "na" in r]
        values = [r[metric.key] for r in results if metric.key in r]
        if errors:
            cell = f"FAILED ({len(errors)}/{len(results)}): {errors[0]}"
            rows.append(f"| {impl} | {cell} | | |")
        elif na:
            rows.append(f"| {impl} | n/a ({na[0]['na']}) | | |")
        elif values:
            med = meds[impl]
            spread = f"{fmt(min(values), metric.digits)} - {fmt(max(values), metric.digits)}"
            ratio = "—" if not base else f"{med / base:.2f}x"
            rows.append(f"| {impl} | {fmt(med, metric.digits)} | {spread} | {ratio} |")
        else:
            rows.append(f"| {impl} | no result | | |")
    title = f"**{case.label}: {metric.title}** ({direction}; n = {runs(cells)} runs per cell)"
    return [title, "", *header, *rows, "", *([" ".join(notes), ""] if notes else [])]


def add_arguments(
    parser: argparse.ArgumentParser, implementations: Sequence[str], benches: Sequence[str]
) -> None:
    """The options every benchmark script takes (see benchmarks/README.md)."""
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        metavar="R",
        help="run the whole set R times and report medians (default 5)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"only these implementations (of: {', '.join(implementations)})",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        metavar="BACKEND",
        help="of the reactor-* implementations, only those on these backends "
        "(e.g. epoll uvloop); the other libraries all run",
    )
    parser.add_argument(
        "--bench",
        action="append",
        choices=list(benches),
        help="only this benchmark (may be repeated; default: all)",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print a markdown fragment with headings, ready for docs/",
    )
    parser.add_argument("--json", metavar="PATH", help="also save every raw result here")
    parser.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every subprocess time limit by this",
    )
    parser.add_argument(
        "--baseline-tree",
        metavar="PATH",
        help="also run each chosen reactor-* implementation from the checkout at PATH, "
        f"as NAME{BASELINE_SUFFIX}, in the same rounds",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def with_baseline(args: argparse.Namespace, impls: Sequence[str]) -> list[str]:
    """``impls`` and, with ``--baseline-tree``, each reactor one again as NAME@base."""
    if not getattr(args, "baseline_tree", None):
        return list(impls)
    tree = Path(args.baseline_tree).resolve()
    if not (tree / "reactor" / "__init__.py").is_file():
        raise SystemExit(f"--baseline-tree: no reactor checkout at {tree}")
    os.environ[_BASELINE_TREE_ENV] = str(tree)
    return [*impls, *(i + BASELINE_SUFFIX for i in impls if i.startswith("reactor-"))]


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


PROGRESS_ENV = "REACTOR_BENCH_PROGRESS"
"""Set (to anything) by ``python -m reactor bench``: the driver then also writes
machine-readable lines to stderr: :data:`PLAN_MARK` + the number of cells
before the first, :data:`NEXT_MARK` + JSON before each cell and
:data:`CELL_MARK` + JSON after it."""
PLAN_MARK = "BENCH-PLAN "
NEXT_MARK = "BENCH-NEXT "
CELL_MARK = "BENCH-CELL "


def _machine_progress(mark: str, value: Any) -> None:
    if os.environ.get(PROGRESS_ENV):
        print(mark + json.dumps(value), file=sys.stderr, flush=True)


def _runs_case(case: Case, impl: str) -> bool:
    return case.impls is None or impl.removesuffix(BASELINE_SUFFIX) in case.impls


def _backend_of(impl: str) -> str | None:
    """``reactor-epoll/sleep0@base`` -> ``epoll``; None for other libraries."""
    if not impl.startswith("reactor-"):
        return None
    return impl.removeprefix("reactor-").removesuffix(BASELINE_SUFFIX).split("/", 1)[0]


def choose_implementations(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    implementations: Sequence[str],
    unavailable: Callable[[str], str | None] = unavailable_reason,
) -> tuple[list[str], dict[str, str]]:
    """The implementations to run (``--only``, narrowed by ``--backends``) and
    those skipped, with why (``unavailable(name)`` returns a reason or None).

    An unknown name in ``--only`` is a usage error (exit status 2).
    """
    names = list(args.only or implementations)
    unknown = [n for n in names if n not in implementations]
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; known: {', '.join(implementations)}")
    if getattr(args, "backends", None):
        names = [n for n in names if _backend_of(n) in (None, *args.backends)]
    impls, skipped = [], {}
    for name in names:
        reason = unavailable(name)
        if reason is None:
            impls.append(name)
        else:
            skipped[name] = reason
    return impls, skipped


@dataclass
class Run:
    """What :func:`drive` ran: the results (``results[case index][impl]``),
    the implementations (with ``--baseline-tree``'s NAME@base), the failed runs
    and the minutes it took; ``info`` is :func:`machine_info` with the load at
    the end."""

    cases: list[Case]
    impls: list[str]
    results: list[Cells]
    failures: int
    started: datetime.datetime
    elapsed: float
    info: dict[str, str]

    def header(
        self, args: argparse.Namespace, command: str, skipped: dict[str, str], **kwargs: Any
    ) -> list[str]:
        """:func:`report_header` for this run (``kwargs``: its ``baseline``)."""
        return report_header(
            command=command,
            started=self.started,
            elapsed=self.elapsed,
            info=self.info,
            repeat=args.repeat,
            skipped=skipped,
            markdown=args.markdown,
            **kwargs,
        )

    def finish(self, args: argparse.Namespace, command: str, skipped: dict[str, str]) -> int:
        """:func:`finish` for this run: its record saved with ``--json``; the exit status."""
        return finish(
            args,
            self.failures,
            command=command,
            started=self.started,
            info=self.info,
            skipped=skipped,
            cases=self.cases,
            results=self.results,
        )


def drive(
    script: str | Path,
    args: argparse.Namespace,
    cases: Sequence[Case],
    impls: Sequence[str],
    skipped: dict[str, str],
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> Run:
    """The common part of every script's ``main``: say what is skipped, run
    every case ``args.repeat`` times (:func:`run_cases`) and time it."""
    info = machine_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    chosen = with_baseline(args, impls)
    for name, reason in skipped.items():
        progress(f"skipping {name}: {reason}")
    t_start = time.monotonic()
    results, failures = run_cases(
        script, cases, chosen, args.repeat, args.timeout_scale, describe=describe
    )
    elapsed = time.monotonic() - t_start
    info["load"] = load_average()
    info["elapsed_s"] = f"{elapsed:.1f}"
    return Run(list(cases), chosen, results, failures, started, elapsed, info)


def run_cases(
    script: str | Path,
    cases: Sequence[Case],
    impls: Sequence[str],
    repeat: int,
    timeout_scale: float,
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> tuple[list[Cells], int]:
    """Run every case ``repeat`` times, each cell in its own subprocess.

    Returns the results (``results[case index][impl]`` = list of per-run
    result dicts) and the number of failed runs. Progress goes to stderr;
    ``describe(result)`` may add to a successful run's progress line.
    """
    results: list[Cells] = [{} for _ in cases]
    failures = 0
    per_round = sum(1 for case in cases for impl in impls if _runs_case(case, impl))
    _machine_progress(PLAN_MARK, per_round * repeat)
    for rep in range(repeat):
        # Rotate the order each round, so no implementation always runs first.
        order = list(impls[rep % len(impls) :]) + list(impls[: rep % len(impls)]) if impls else []
        for ci, case in enumerate(cases):
            for impl in order:
                if not _runs_case(case, impl):
                    continue
                _machine_progress(NEXT_MARK, {"round": rep + 1, "case": case.label, "impl": impl})
                result = run_one(script, impl, case, timeout_scale)
                results[ci].setdefault(impl, []).append(result)
                _machine_progress(
                    CELL_MARK,
                    {
                        "round": rep + 1,
                        "case": case.label,
                        "impl": impl,
                        "ok": "error" not in result,
                    },
                )
                if "error" in result:
                    failures += 1
                    progress(
                        f"[{rep + 1}/{repeat}] {case.label} / {impl}: FAILED: {result['error']}"
                    )
                    if result.get("stderr"):
                        progress(result["stderr"].rstrip())
                else:
                    shown = (
                        ", ".join(
                            f"{m.key}={fmt(result[m.key], m.digits)}"
                            for m in case.metrics
                            if m.key in result
                        )
                        or f"n/a ({result.get('na')})"
                    )
                    if describe is not None:
                        shown += describe(result)
                    progress(f"[{rep + 1}/{repeat}] {case.label} / {impl}: {shown}")
    return results, failures


def report_header(
    *,
    command: str,
    started: datetime.datetime,
    elapsed: float,
    info: dict[str, str],
    repeat: int,
    skipped: dict[str, str],
    markdown: bool,
    baseline: str = BASELINE,
) -> list[str]:
    """The "how it was run" lines that open every report; ``baseline``: the
    implementation the ratio columns divide by."""
    out: list[str] = []
    if markdown:
        out += ["## Run", ""]
    out += [
        f"- command: `{command.strip()}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min in all",
        f"- CPU: {info['cpu']}",
        f"- OS: {info['os']}",
        f"- Python: {info['python']}; tornado {info['tornado']}; uvloop {info['uvloop']}; "
        f"reactor {info['reactor']}",
        f"- load average at the end: {info['load']}",
        f"- each cell: median of {repeat} runs, each in a fresh subprocess; "
        f"ratio = median / median of {baseline}",
    ]
    for name, reason in skipped.items():
        out.append(f"- skipped {name}: {reason}")
    out.append("")
    return out


def save_json(
    path: str | Path,
    *,
    command: str,
    started: datetime.datetime,
    info: dict[str, str],
    repeat: int,
    quick: bool,
    skipped: dict[str, str],
    cases: Sequence[Case],
    results: Sequence[Cells],
) -> None:
    """Every raw per-run result (less the failed workers' stderr), as JSON."""
    raw = {
        "command": command,
        "date": started.isoformat(),
        "machine": info,
        "repeat": repeat,
        "quick": quick,
        "skipped": skipped,
        "cases": [
            {
                "bench": c.bench,
                "label": c.label,
                "params": c.params,
                "baseline": c.baseline,
                "metrics": [
                    {
                        "key": m.key,
                        "title": m.title,
                        "unit": m.unit,
                        "higher_is_better": m.higher_is_better,
                    }
                    for m in c.metrics
                ],
                "results": {
                    k: [{x: y for x, y in r.items() if x != "stderr"} for r in v]
                    for k, v in results[i].items()
                },
            }
            for i, c in enumerate(cases)
        ],
    }
    Path(path).write_text(json.dumps(raw, indent=1) + "\n")


def finish(args: argparse.Namespace, failures: int, **record: Any) -> int:
    """Save the raw results if ``--json`` asked for it; the exit status."""
    if args.json:
        save_json(args.json, repeat=args.repeat, quick=args.quick, **record)
    if failures:
        progress(f"{failures} run(s) FAILED; see above")
        return 1
    return 0


def run_main(main: Callable[[], int]) -> None:
    """Run a script's ``main`` with the exit codes the scripts share."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
