"""``import reactor; reactor.web``: submodules load on first access (PEP 562), as
Tornado's do, and ``import reactor`` alone loads none of them.

Each check runs in a fresh interpreter (in the worktree, so that its reactor is
the one imported): what a process has imported cannot be undone in this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tornado

import reactor

ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "REACTOR_BACKEND"}


# Every child first checks that it imports this worktree's reactor.
_CHECK_ROOT = (
    "import os, reactor as _r\n"
    "assert os.path.dirname(_r.__file__) == os.path.join(os.getcwd(), 'reactor'), _r.__file__\n"
)


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _CHECK_ROOT + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_reactor_imports_no_submodule() -> None:
    out = run_python(
        "import sys, reactor;print(sorted(m for m in sys.modules if m.startswith('reactor.')))"
    )
    assert out.strip() == "[]"


def test_attribute_access_imports_the_submodule() -> None:
    out = run_python(
        "import sys, reactor;"
        "assert 'reactor.wsgi' not in sys.modules;"
        "wsgi = reactor.wsgi;"
        "import reactor.wsgi as direct;"
        "assert wsgi is direct is sys.modules['reactor.wsgi'];"
        "assert reactor.httpserver.HTTPServer.__name__ == 'HTTPServer';"
        "assert reactor.platform.asyncio.AsyncIOLoop.backend_name == 'asyncio';"
        "print(reactor.wsgi.WSGIContainer.__name__)"
    )
    assert out.strip() == "WSGIContainer"


def test_unknown_names_raise_attribute_error() -> None:
    out = run_python(
        "import reactor;"
        "assert not hasattr(reactor, 'auth');"  # Tornado's, not reactor's
        "assert not hasattr(reactor, 'curl_httpclient');"
        "\ntry:\n reactor.no_such_module\nexcept AttributeError as e:\n print(e)"
    )
    assert out.strip() == "module 'reactor' has no attribute 'no_such_module'"


def test_dir_lists_the_submodules() -> None:
    names = dir(reactor)
    for name in ("web", "wsgi", "ioloop", "version", "version_info"):
        assert name in names
    assert names == sorted(names)


def test_every_public_module_is_listed() -> None:
    """Each public module file of the package is reachable as an attribute."""
    package = Path(reactor.__file__).parent
    found = {
        path.stem if path.is_file() else path.name
        for path in package.iterdir()
        if not path.name.startswith(("_", "."))
        and (path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()))
    }
    found.discard("demo")  # ``python -m reactor demo``'s application, not an API
    assert found <= set(reactor.__all__), found - set(reactor.__all__)


def test_tornados_submodules_are_listed() -> None:
    missing = set(tornado.__all__) - set(reactor.__all__)
    assert missing == {"auth", "curl_httpclient"}


def test_listed_modules_that_exist_import_lazily() -> None:
    # Modules of this checkout only: the shared environment's editable
    # install may add another checkout's reactor/ to the package's path.
    package = Path(reactor.__file__).parent
    present = [
        n for n in reactor.__all__ if (package / f"{n}.py").exists() or (package / n).is_dir()
    ]
    code = (
        "import importlib, reactor, sys\n"
        f"for name in {present!r}:\n"
        "    module = getattr(reactor, name)\n"
        "    assert module is sys.modules['reactor.' + name], name\n"
        "print(len(sys.modules))\n"
    )
    assert int(run_python(code)) > 0
