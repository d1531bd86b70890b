#!/usr/bin/env python
"""Template benchmark: one page with a 100-row loop, four engines.

``page``
    Render a page (a title, a 100-row table: an index, an escaped name, a
    formatted price, an ``if`` / ``else`` cell with a join) to bytes, 2,000
    times after 200 untimed renders. Reported in CPU microseconds per render
    (``time.process_time``: the machine is shared, and CPU time is what a
    render costs, where wall time also counts the waits for a core).
``compile``
    Parse and compile the same template from its source, 200 times (each
    source with a different comment, so no cache answers).
    Reported in microseconds per compile (what a cache miss costs, and what
    ``compiled_template_cache=False`` costs every request).

The implementations, each with the same page logic and the same output bytes:

``reactor-tornado``
    ``reactor.template.Template`` on the page in Tornado syntax (translated
    onto Jinja2's compiler).
``reactor-jinja2``
    the page in Jinja2 syntax, loaded through ``reactor.template.DictLoader``
    (a ``.j2`` name), rendered with ``generate()``.
``tornado``
    ``tornado.template.Template`` 6.6 on the Tornado-syntax page.
``jinja2``
    ``jinja2.Environment(autoescape=True)`` directly, ``render().encode()``.

The two syntaxes differ only in their closing tags; both get ``enumerate``
and index the rows the same way, so the engines do the same work. Each cell
runs in a fresh subprocess; the parent reports medians of ``--repeat`` runs
and the ratio to plain Jinja2. Run ``python benchmarks/bench_template.py --help``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Case,
    Metric,
    add_arguments,
    emit_result,
    finish,
    load_average,
    machine_info,
    progress,
    render_table,
    report_header,
    run_cases,
    run_main,
    with_baseline,
)

BASELINE = "jinja2"
IMPLEMENTATIONS = ("reactor-tornado", "reactor-jinja2", "tornado", "jinja2")
BENCHES = ("page", "compile")
RENDERS = (2_000, 200)  # (full, quick)
COMPILES = (200, 20)
WARMUP = 200

TORNADO_PAGE = """<!DOCTYPE html>
<html><head><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1>
<table>
{% for i, row in enumerate(rows) %}<tr class="{{ 'even' if i % 2 == 0 else 'odd' }}">\
<td>{{ i }}</td><td>{{ row['name'] }}</td><td>{{ '%.2f' % row['price'] }}</td>\
{% if row['tags'] %}<td>{{ ', '.join(row['tags']) }}</td>{% else %}<td>-</td>{% end %}</tr>
{% end %}</table>
<p>{{ len(rows) }} rows</p>
</body></html>
"""
JINJA_PAGE = (
    TORNADO_PAGE.replace("{% end %}</tr>", "{% endif %}</tr>")
    .replace("{% end %}</table>", "{% endfor %}</table>")
    .replace("{{ len(rows) }}", "{{ rows|length }}")
)


def page_data() -> dict[str, Any]:
    rows = [
        {
            "name": f"item <{i}> & co",
            "price": i * 1.25,
            "tags": [f"t{i % 3}", "x"] if i % 4 else [],
        }
        for i in range(100)
    ]
    return {"title": "Prices & <rows>", "rows": rows, "enumerate": enumerate}


def _fresh(source: str) -> str:
    """``source`` with a new comment: a compile that no cache can answer."""
    _compiles[0] += 1
    return source + "{# " + str(_compiles[0]) + " #}"


_compiles = [0]


def make_renderer(impl: str) -> tuple[Callable[[], bytes], Callable[[], Any]]:
    """(render the page once, compile the page once) for one implementation."""
    data = page_data()
    if impl == "reactor-tornado":
        from reactor import template as rt

        def compile_() -> Any:
            return rt.Template(_fresh(TORNADO_PAGE), name="page.html", whitespace="all")

        t = compile_()
        return (lambda: t.generate(**data)), compile_
    if impl == "reactor-jinja2":
        from reactor import template as rt

        def compile_j() -> Any:
            return rt.DictLoader({"page.j2": _fresh(JINJA_PAGE)}).load("page.j2")

        tj = compile_j()
        return (lambda: tj.generate(**data)), compile_j
    if impl == "tornado":
        import tornado.template as tt

        def compile_t() -> Any:
            return tt.Template(_fresh(TORNADO_PAGE), name="page.html", whitespace="all")

        tt_page = compile_t()
        return (lambda: tt_page.generate(**data)), compile_t
    if impl == "jinja2":
        import jinja2

        def compile_plain() -> Any:
            return jinja2.Environment(autoescape=True, keep_trailing_newline=True).from_string(
                _fresh(JINJA_PAGE)
            )

        jp = compile_plain()
        return (lambda: jp.render(**data).encode()), compile_plain
    raise ValueError(f"unknown implementation {impl!r}")


def worker(spec: dict[str, Any]) -> int:
    gc.collect()
    render, compile_ = make_renderer(spec["impl"])
    output = render()
    if spec["bench"] == "page":
        for _ in range(WARMUP):
            render()
        n = spec["n"]
        start = time.process_time()
        for _ in range(n):
            render()
        elapsed = time.process_time() - start
        result = {"us_per_render": elapsed / n * 1e6}
    else:
        n = spec["n"]
        start = time.process_time()
        for _ in range(n):
            compile_()
        elapsed = time.process_time() - start
        result = {"us_per_compile": elapsed / n * 1e6}
    # The same bytes from every engine: the parent checks the digests agree.
    result["output_sha1"] = hashlib.sha1(output).hexdigest()[:12]
    result["output_bytes"] = len(output)
    emit_result(result)
    return 0


RENDER_METRIC = Metric("us_per_render", "CPU µs per render", "µs", False, 1)
COMPILE_METRIC = Metric("us_per_compile", "CPU µs per compile", "µs", False, 0)
TITLES = {
    "page": "A page with a 100-row loop, rendered to bytes",
    "compile": "Parse and compile the page",
}


def make_cases(benches: list[str], quick: bool) -> list[Case]:
    q = 1 if quick else 0
    cases = []
    if "page" in benches:
        n = RENDERS[q]
        label = f"{n:,} renders of a 100-row page"
        cases.append(Case("page", label, {"n": n}, [RENDER_METRIC], 120, baseline=BASELINE))
    if "compile" in benches:
        n = COMPILES[q]
        label = f"{n:,} compiles of the page"
        cases.append(Case("compile", label, {"n": n}, [COMPILE_METRIC], 120, baseline=BASELINE))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Template benchmark: reactor.template (2 syntaxes), tornado.template, jinja2."
    )
    add_arguments(parser, IMPLEMENTATIONS, BENCHES)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    impls = list(args.only or IMPLEMENTATIONS)
    unknown = [n for n in impls if n not in IMPLEMENTATIONS]
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; known: {', '.join(IMPLEMENTATIONS)}")
    cases = make_cases(args.bench or list(BENCHES), args.quick)
    info = machine_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    command = "python benchmarks/bench_template.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    impls = with_baseline(args, impls)
    t_start = time.monotonic()
    results, failures = run_cases(__file__, cases, impls, args.repeat, args.timeout_scale)
    info["load"] = load_average()
    digests = {
        r["output_sha1"]
        for cells in results
        for runs in cells.values()
        for r in runs
        if "error" not in r
    }
    if len(digests) > 1:
        progress(f"the engines' outputs differ: {sorted(digests)}")
        failures += 1
    out = report_header(
        command=command,
        started=started,
        elapsed=time.monotonic() - t_start,
        info=info,
        repeat=args.repeat,
        skipped={},
        markdown=args.markdown,
        baseline=BASELINE,
    )
    h = "### " if args.markdown else ""
    for ci, case in enumerate(cases):
        out += [f"{h}{TITLES[case.bench]}", ""]
        for metric in case.metrics:
            out += render_table(case, metric, impls, results[ci])
    print("\n".join(out))
    return finish(
        args,
        failures,
        command=command,
        started=started,
        info=info,
        skipped={},
        cases=cases,
        results=results,
    )


if __name__ == "__main__":
    run_main(main)
