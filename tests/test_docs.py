"""The documentation site, and the recipes its pages promise.

- ``mkdocs build --strict`` of the whole site, API reference included, into a
  temporary folder; the docstrings' reST roles come out as code and links
  (``docs/_ext/griffe_rst.py``), not as ``:class:`` punctuation.
- Every page in ``docs/`` is in the nav, the nav's sections come in their
  order, every public module has an API page, and README's links into
  ``docs/`` lead to pages that exist.
- ``docs/third-party-backends.md``: the package whose files the page shows is
  built from the page's own code blocks in a temporary folder, installed there
  (its module and the ``.dist-info`` with the entry points an installer would
  write from its ``pyproject.toml``), and reactor's conformance suite runs a
  slice of itself on it, in a child process, by its entry-point name and by
  ``module:Class``; an entry point naming an IOLoop subclass (a whole loop)
  is chosen and tested the same way.
- ``docs/testing.md``: its two test files run, as written, on two backends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Files that may not be pages of the site (the griffe extension).
NOT_PAGES = {"_ext"}

NAV_SECTIONS = [
    "Home",
    "Quickstart",
    "Choosing a backend",
    "Third-party backends",
    "Coroutines and the loop",
    "Streams and TCP",
    "HTTP server",
    "HTTP client",
    "Web framework",
    "WebSockets",
    "Testing",
    "Deployment",
    "Demo",
    "Migrating from Tornado",
    "Benchmarks",
    "API reference",
]

# Public modules with no API page, and why.
NOT_API = {
    "reactor.demo": "the demo application (docs/demo.md), not a library module",
}


def _run(
    args: list[str], cwd: Path, timeout: float, path: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``python args`` in ``cwd``, importing this checkout's reactor (and ``path``)."""
    child = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}
    child["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([str(path)] if path else [])])
    child["NO_MKDOCS_2_WARNING"] = "1"
    child.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=child, capture_output=True, text=True, timeout=timeout
    )


def _outcomes(junit: Path) -> dict[str, str]:
    """``{"package.module[.Class]::test[backend]": "passed" | "failed" | "error"
    | "skipped"}`` from a pytest ``--junitxml`` report."""
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed"
        )
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return outcomes


def _nav_files(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [f for item in nav for f in _nav_files(item)]
    if isinstance(nav, dict):
        return [f for value in nav.values() for f in _nav_files(value)]
    return []


def _config() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (a dependency of mkdocs) is not installed")
    config: dict[str, Any] = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return config


def _pages() -> set[str]:
    return {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not NOT_PAGES & set(p.relative_to(DOCS).parts)
    }


def _public_modules() -> set[str]:
    """Every module of the checkout's reactor package whose dotted name has no
    private part (reactor/backends is a link to the top-level backends/)."""
    found = set()
    for folder, _dirs, files in os.walk(ROOT / "reactor", followlinks=True):
        package = Path(folder).relative_to(ROOT).parts
        if "__init__.py" not in files:
            continue
        for file in files:
            stem = file.removesuffix(".py")
            if file.endswith(".py") and (stem == "__init__" or not stem.startswith("_")):
                found.add(".".join(package if stem == "__init__" else (*package, stem)))
    return {
        name
        for name in found
        if not any(part.startswith("_") for part in name.split("."))
        and not any(name == p or name.startswith(p + ".") for p in NOT_API)
    }


def _page_files(page: str) -> dict[str, str]:
    """The code blocks of a page that name a file (```lang title="path"), by path."""
    text = (DOCS / page).read_text()
    pattern = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.M | re.S)
    return {m["path"]: m["body"] for m in pattern.finditer(text)}


# -- the site --------------------------------------------------------------


def test_every_page_is_in_the_nav_in_its_section() -> None:
    config = _config()
    nav = config["nav"]
    in_nav = _nav_files(nav)
    assert len(in_nav) == len(set(in_nav)), "a page is in the nav twice"
    assert set(in_nav) == _pages(), (
        f"not in the nav: {sorted(_pages() - set(in_nav))}; "
        f"in the nav but missing: {sorted(set(in_nav) - _pages())}"
    )
    assert [next(iter(item)) for item in nav] == NAV_SECTIONS


def test_every_public_module_has_an_api_page() -> None:
    documented = {
        line.split()[1]
        for page in (DOCS / "api").glob("*.md")
        for line in page.read_text().splitlines()
        if line.startswith("::: ")
    }
    missing = _public_modules() - documented
    assert not missing, (
        f"no API page shows {sorted(missing)}: add docs/api/NAME.md with '::: module' "
        "and put it in mkdocs.yml's nav, under API reference"
    )
    assert "reactor.ioloop" in documented and "reactor.backends" in documented


def test_readme_links_into_docs_lead_to_pages() -> None:
    links = re.findall(r"\]\((docs/[^)#\s]*)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


# The build takes about 7 s of CPU; on a shared, loaded machine its wall time
# can pass the suite's 60 s (a limit meant for hung loops, not for CPU work).
@pytest.mark.timeout(150)
def test_strict_build(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    result = _run(
        ["-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT,
        timeout=140,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").exists()
    for page in _pages():
        built = page.removesuffix(".md")
        built = "index.html" if built == "index" else f"{built.removesuffix('/index')}/index.html"
        assert (site / built).exists(), built
    # The reST of the docstrings is rendered, not shown.
    ioloop = (site / "api" / "ioloop" / "index.html").read_text()
    assert 'href="#reactor.ioloop.IOLoop.add_callback"' in ioloop
    assert "autorefs-internal" in ioloop
    for page in (site / "api").rglob("index.html"):
        text = re.sub(r"<[^>]+>", "", page.read_text())
        leftover = re.search(r":(class|meth|func|attr|mod|data|exc):`|\.\. [a-z]+::", text)
        assert leftover is None, f"{page}: {text[leftover.start() - 60 : leftover.end() + 60]}"


# -- the third-party backend recipe ------------------------------------------


def _install(project: Path, site: Path) -> None:
    """What ``pip install project`` leaves behind, for what reactor reads: the
    module, and a ``.dist-info`` with the entry points from pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="Python 3.10 without tomli")
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    site.mkdir()
    for module in project.glob("*.py"):
        shutil.copy(module, site / module.name)
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    lines = []
    for group, entries in meta.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def selectors_backend(tmp_path: Path) -> Path:
    """The page's package, built from its code blocks and installed in a folder."""
    files = _page_files("third-party-backends.md")
    assert set(files) == {
        "reactor-selectors/pyproject.toml",
        "reactor-selectors/selectorspoller.py",
    }
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    site = tmp_path / "site"
    _install(tmp_path / "reactor-selectors", site)
    return site


def test_third_party_backend_is_listed_and_chosen_by_name(selectors_backend: Path) -> None:
    result = _run(["-m", "reactor", "backends"], ROOT, 30, path=selectors_backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["selectors"])
    assert "available" in lines[at] and "unavailable" not in lines[at]
    assert "registered by an entry point" in lines[at + 1]
    code = "from reactor.ioloop import IOLoop; print(IOLoop.current().backend_name)"
    result = _run(["-c", code], ROOT, 30, path=selectors_backend, REACTOR_BACKEND="selectors")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "selectors"


def test_conformance_suite_runs_on_a_third_party_backend(
    selectors_backend: Path, tmp_path: Path
) -> None:
    """A slice of the suite, in a child process as the page says to run it: the
    fd facts, callbacks and real TCP with TLS, by entry-point name and by
    ``module:Class``."""
    spec = "selectorspoller:SelectorsPoller"
    files = ["test_handlers.py", "test_callbacks.py", "test_tcp.py"]
    junit = tmp_path / "report.xml"
    result = _run(
        [
            "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", f"--junitxml={junit}",
            "--reactor-backend", "selectors", "--reactor-backend", spec,
            *[f"tests/conformance/{f}" for f in files],
        ],
        ROOT,
        50,
        path=selectors_backend,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"reactor backends: selectors, {spec}" in output
    outcomes = _outcomes(junit)
    assert set(outcomes.values()) == {"passed"}, output
    by_backend = {
        name: {test.removesuffix(f"[{name}]") for test in outcomes if test.endswith(f"[{name}]")}
        for name in ("selectors", spec)
    }
    assert len(by_backend["selectors"]) > 40
    assert by_backend["selectors"] == by_backend[spec]
    assert len(outcomes) == 2 * len(by_backend["selectors"])
    modules = {test.split("::")[0] for test in by_backend["selectors"]}
    assert modules == {f"tests.conformance.{f.removesuffix('.py')}" for f in files}


def test_conformance_suite_runs_on_a_third_party_loop(tmp_path: Path) -> None:
    """ "Register and test it exactly as a poller": an entry point naming an
    IOLoop subclass (here the asyncio bridge itself, under a name of its own)."""
    site = tmp_path / "site"
    site.mkdir()
    dist = site / "other_loop-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: other-loop\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[reactor.backends]\nother-loop = reactor.backends.loops.asyncioloop:AsyncioLoop\n"
    )
    code = "from reactor.ioloop import IOLoop; print(type(IOLoop.current()).__name__)"
    result = _run(["-c", code], ROOT, 30, path=site, REACTOR_BACKEND="other-loop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "AsyncioLoop"
    junit = tmp_path / "report.xml"
    result = _run(
        ["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", f"--junitxml={junit}",
         "--reactor-backend", "other-loop", "tests/conformance/test_handlers.py"],
        ROOT,
        50,
        path=site,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    outcomes = _outcomes(junit)
    assert set(outcomes.values()) == {"passed"}, output
    assert len(outcomes) > 15 and all(test.endswith("[other-loop]") for test in outcomes)


def test_an_unknown_backend_stops_the_run() -> None:
    result = _run(
        ["-m", "pytest", "-p", "no:cacheprovider", "--reactor-backend", "nosuch",
         "tests/conformance/test_handlers.py"],
        ROOT,
        30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unknown backend 'nosuch'" in result.stdout + result.stderr


# -- docs/testing.md ---------------------------------------------------------


def test_testing_page_examples_run_on_two_backends(tmp_path: Path) -> None:
    files = _page_files("testing.md")
    assert set(files) == {"test_hello.py", "test_hello_unittest.py"}
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    junit = tmp_path / "report.xml"
    result = _run(
        ["-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", "-W", "error",
         "--timeout", "60", f"--junitxml={junit}",
         "--reactor-backend", "poll", "--reactor-backend", "asyncio", *files],
        tmp_path,
        50,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    expected = {
        f"test_hello::{test}[{backend}]"
        for backend in ("poll", "asyncio")
        for test in ("test_hello", "test_echo", "test_backend_names")
    } | {
        f"test_hello_unittest.HelloTest::{test}"
        for test in ("test_hello", "test_hello_async", "test_error_is_logged")
    }
    assert _outcomes(junit) == dict.fromkeys(expected, "passed"), output
