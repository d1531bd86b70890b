"""Templates: Tornado's ``tornado.template`` API and syntax, compiled by Jinja2.

A ported Tornado application keeps its templates and its calls::

    loader = template.Loader("templates")
    html = loader.load("page.html").generate(items=items)   # bytes

One engine underneath: a Tornado-syntax template is parsed into its block
tree, translated into Jinja2's nodes and compiled by Jinja2 (see
``reactor/_template_compile.py`` for how, and ``docs/templates.md`` for what
differs from Tornado's own engine). A loader also serves Jinja2-syntax
templates, chosen per file: names ending in ``.j2``, ``.jinja`` or
``.jinja2`` are Jinja2 syntax, the rest Tornado syntax, unless the loader's
``syntax=`` says otherwise. Both kinds give ``generate(**kwargs) -> bytes``,
autoescaping, the loader's namespace and its cache (``reset()`` clears it).

Tornado templates are trusted code (they run Python); they are not sandboxed.
"""

from __future__ import annotations

import datetime
import os.path
import posixpath
import threading
from collections import OrderedDict
from types import CodeType, FunctionType
from typing import Any

import jinja2

from reactor import escape
from reactor._template_compile import ENVIRONMENT, compile_template
from reactor._template_parse import Node, ParseError, Source, filter_whitespace, parse
from reactor.util import ObjectDict

__all__ = ["BaseLoader", "DictLoader", "Loader", "ParseError", "Template", "filter_whitespace"]

_DEFAULT_AUTOESCAPE = "xhtml_escape"
_JINJA_SUFFIXES = (".j2", ".jinja", ".jinja2")
_SYNTAXES = ("auto", "tornado", "jinja2")


class _UnsetMarker:
    pass


_UNSET: Any = _UnsetMarker()


def _to_str(value: Any) -> str:
    """An expression's value as text: str kept, bytes decoded, anything else str()."""
    if isinstance(value, str):
        return str.__str__(value)  # a plain str, also from a str subclass
    if isinstance(value, bytes):
        # surrogateescape: bytes that are not UTF-8 come out unchanged in generate().
        return value.decode("utf-8", "surrogateescape")
    return str.__str__(str(value))


_DEFAULT_NAMESPACE: dict[str, Any] = {
    "escape": escape.xhtml_escape,
    "xhtml_escape": escape.xhtml_escape,
    "url_escape": escape.url_escape,
    "json_encode": escape.json_encode,
    "squeeze": escape.squeeze,
    "linkify": escape.linkify,
    "datetime": datetime,
    "_tt_utf8": escape.utf8,
    "_tt_string_types": (str, bytes),
    "_tt_str": _to_str,
    "_tt_strtype": str,
}


class _LRU:
    """A small bounded cache of compiled loader-less templates, safe from threads.

    Applications that build ``Template(source)`` per request (Tornado compiles
    it every time) compile each source once.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_STANDALONE = _LRU(256)


class Template:
    """A compiled template; ``generate(**kwargs)`` renders it to UTF-8 bytes."""

    def __init__(
        self,
        template_string: str | bytes,
        name: str = "<string>",
        loader: BaseLoader | None = None,
        compress_whitespace: bool | _UnsetMarker = _UNSET,
        autoescape: str | _UnsetMarker | None = _UNSET,
        whitespace: str | None = None,
    ) -> None:
        """Parse and compile ``template_string``.

        :arg name: the file name, used in errors and tracebacks.
        :arg loader: resolves ``{% extends %}`` and ``{% include %}``.
        :arg compress_whitespace: deprecated; ``True`` is ``whitespace="single"``.
        :arg autoescape: the name of an escape function in the namespace, or
            ``None`` for no escaping (default: the loader's, else ``"xhtml_escape"``).
        :arg whitespace: ``"all"``, ``"single"`` or ``"oneline"`` (see
            `filter_whitespace`); default: the loader's, else ``"single"`` for
            ``.html`` and ``.js`` files and ``"all"`` for the rest.

        Raises `ParseError` (with the file and line) for a syntax error, in
        the template or in the Python it holds.
        """
        self.name = escape.native_str(name)
        if not isinstance(compress_whitespace, _UnsetMarker):
            if whitespace is not None:
                raise Exception("cannot set both whitespace and compress_whitespace")
            whitespace = "single" if compress_whitespace else "all"
        if whitespace is None:
            if loader and loader.whitespace:
                whitespace = loader.whitespace
            elif self.name.endswith(".html") or self.name.endswith(".js"):
                whitespace = "single"
            else:
                whitespace = "all"
        filter_whitespace(whitespace, "")  # validates the mode
        if not isinstance(autoescape, _UnsetMarker):
            self.autoescape: str | None = autoescape
        elif loader:
            self.autoescape = loader.autoescape
        else:
            self.autoescape = _DEFAULT_AUTOESCAPE
        self.namespace: dict[str, Any] = loader.namespace if loader else {}
        self.loader = loader
        text = escape.to_unicode(template_string)
        filename = loader._filename(self.name) if loader else self.name
        key = (text, self.name, self.autoescape, whitespace)
        cached = _STANDALONE.get(key) if loader is None else None
        self._source: Source
        self._body: list[Node]
        self.code: str
        self._codes: list[CodeType]
        self.compiled: CodeType
        self._jinja: jinja2.Template
        if cached is not None:
            # A template without a loader depends on nothing but these four.
            self._source, self._body, self.code, self._codes, self.compiled, self._jinja = cached
        else:
            self._source = Source(self.name, filename, text, self.autoescape)
            self._body = parse(self._source, whitespace)
            self.code, self._codes = compile_template(self, loader)
            self.compiled = compile(self.code, filename, "exec", dont_inherit=True)
            self._jinja = jinja2.Template.from_code(ENVIRONMENT, self.compiled, {}, None)
            if loader is None:
                _STANDALONE.put(
                    key,
                    (self._source, self._body, self.code, self._codes, self.compiled, self._jinja),
                )
        self.autoescape = self._source.autoescape  # {% autoescape %} applies to the whole file
        self._base_namespace = dict(_DEFAULT_NAMESPACE)
        self._base_namespace["__name__"] = self.name.replace(".", "_")
        # Lets linecache (so tracebacks) show the template's own lines.
        self._base_namespace["__loader__"] = ObjectDict(get_source=lambda name: text)

    def generate(self, **kwargs: Any) -> bytes:
        """Render the template with ``kwargs`` added to its namespace."""
        namespace = self._base_namespace.copy()
        namespace.update(self.namespace)
        namespace.update(kwargs)
        jinja_template = self._jinja
        context = jinja_template.new_context(namespace, shared=True)
        context.vars["_tt_fns"] = [FunctionType(code, namespace) for code in self._codes]
        try:
            return "".join(jinja_template.root_render_func(context)).encode(
                "utf-8", "surrogateescape"
            )
        except Exception:
            # Jinja2 maps the render function's frames to the template's lines.
            ENVIRONMENT.handle_exception()


class _JinjaSyntaxTemplate(Template):
    """A Jinja2-syntax template from a loader, with Template's face."""

    def __init__(self, name: str, loader: BaseLoader) -> None:
        self.name = name
        self.loader = loader
        self.autoescape = loader.autoescape
        self.namespace = loader.namespace
        try:
            self._jinja = loader._jinja_environment().get_template(name)
        except jinja2.TemplateSyntaxError as e:
            raise ParseError(e.message or str(e), e.name or name, e.lineno) from e
        self.code = ""
        self._codes = []

    def generate(self, **kwargs: Any) -> bytes:
        return self._jinja.render(**kwargs).encode("utf-8", "surrogateescape")


class BaseLoader:
    """Base class of template loaders: loads each template once and caches it.

    A loader is needed for ``{% extends %}`` and ``{% include %}``.
    ``syntax`` picks the template syntax: ``"auto"`` (Jinja2 for names ending
    in ``.j2``, ``.jinja``, ``.jinja2``; Tornado for the rest), ``"tornado"``
    or ``"jinja2"``.
    """

    def __init__(
        self,
        autoescape: str | None = _DEFAULT_AUTOESCAPE,
        namespace: dict[str, Any] | None = None,
        whitespace: str | None = None,
        syntax: str = "auto",
    ) -> None:
        """:arg autoescape: the name of an escape function in the namespace, or ``None``.
        :arg namespace: names added to every template's namespace.
        :arg whitespace: the default whitespace mode (see `filter_whitespace`).
        :arg syntax: ``"auto"``, ``"tornado"`` or ``"jinja2"``.
        """
        if syntax not in _SYNTAXES:
            raise ValueError(
                "syntax must be one of {}, not {!r}".format(", ".join(_SYNTAXES), syntax)
            )
        self.autoescape = autoescape
        self.namespace = namespace or {}
        self.whitespace = whitespace
        self.syntax = syntax
        self.templates: dict[str, Template] = {}
        # Reentrant: loading a template loads its parents and includes.
        self.lock = threading.RLock()
        self._loading: set[str] = set()
        self._jinja: jinja2.Environment | None = None

    def reset(self) -> None:
        """Forget every compiled template; the next load reads and compiles again."""
        with self.lock:
            self.templates = {}
            self._jinja = None

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        """Turn a name relative to ``parent_path`` into a loader-absolute one."""
        raise NotImplementedError()

    def load(self, name: str, parent_path: str | None = None) -> Template:
        """The compiled template ``name`` (relative to ``parent_path`` if given)."""
        name = self.resolve_path(name, parent_path=parent_path)
        with self.lock:
            template = self.templates.get(name)
            if template is None:
                if name in self._loading:
                    raise ParseError(
                        f"template {name!r} extends or includes itself", parent_path, 0
                    )
                self._loading.add(name)
                try:
                    if self._is_jinja(name):
                        template = _JinjaSyntaxTemplate(name, self)
                    else:
                        template = self._create_template(name)
                finally:
                    self._loading.discard(name)
                self.templates[name] = template
            return template

    def _create_template(self, name: str) -> Template:
        raise NotImplementedError()

    def _is_jinja(self, name: str) -> bool:
        if self.syntax == "auto":
            # A loader written for Tornado (its own _create_template, no Jinja2
            # source) keeps Tornado syntax for every name, as in Tornado.
            serves_jinja = type(self)._jinja_source is not BaseLoader._jinja_source
            return serves_jinja and name.endswith(_JINJA_SUFFIXES)
        return self.syntax == "jinja2"

    def _filename(self, name: str) -> str:
        """The file name tracebacks show for template ``name``."""
        return name

    def _jinja_source(self, name: str) -> tuple[str, str | None, Any]:
        """Jinja2-syntax source of ``name``: (text, filename, uptodate)."""
        raise jinja2.TemplateNotFound(name)

    def _jinja_environment(self) -> jinja2.Environment:
        with self.lock:
            if self._jinja is None:
                env = jinja2.Environment(
                    loader=jinja2.FunctionLoader(self._jinja_source),
                    autoescape=self.autoescape is not None,
                    keep_trailing_newline=True,
                    # The loader's cache decides, as for Tornado syntax: a
                    # parent or include is not re-read (nor stat()ed on each
                    # render) until reset().
                    auto_reload=False,
                )
                env.globals.update(
                    (k, v) for k, v in _DEFAULT_NAMESPACE.items() if not k.startswith("_tt_")
                )
                env.globals.update(self.namespace)
                self._jinja = env
            return self._jinja


def _relative_to_parent(name: str, parent_path: str | None) -> bool:
    return bool(
        parent_path
        and not parent_path.startswith("<")
        and not parent_path.startswith("/")
        and not name.startswith("/")
    )


class Loader(BaseLoader):
    """Loads templates from files under ``root_directory``.

    ``load()`` takes names relative to the root (or absolute paths); names in
    ``{% extends %}`` / ``{% include %}`` are relative to the including file.
    """

    def __init__(self, root_directory: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = os.path.abspath(root_directory)

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if _relative_to_parent(name, parent_path):
            assert parent_path is not None
            file_dir = os.path.dirname(os.path.abspath(os.path.join(self.root, parent_path)))
            relative_path = os.path.abspath(os.path.join(file_dir, name))
            if relative_path.startswith(self.root):
                name = relative_path[len(self.root) + 1 :]
        return name

    def _create_template(self, name: str) -> Template:
        with open(os.path.join(self.root, name), "rb") as f:
            return Template(f.read(), name=name, loader=self)

    def _filename(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _jinja_source(self, name: str) -> tuple[str, str | None, Any]:
        # Jinja2's own rule for names: "/"-separated, no "..".
        pieces = jinja2.loaders.split_template_path(name)
        path = os.path.join(self.root, *pieces)
        try:
            mtime = os.path.getmtime(path)
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            raise jinja2.TemplateNotFound(name) from None

        def uptodate() -> bool:
            try:
                return os.path.getmtime(path) == mtime
            except OSError:
                return False

        return text, path, uptodate


class DictLoader(BaseLoader):
    """Loads templates from a dict of name -> source."""

    def __init__(self, dict: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dict = dict

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if _relative_to_parent(name, parent_path):
            assert parent_path is not None
            name = posixpath.normpath(posixpath.join(posixpath.dirname(parent_path), name))
        return name

    def _create_template(self, name: str) -> Template:
        return Template(self.dict[name], name=name, loader=self)

    def _jinja_source(self, name: str) -> tuple[str, str | None, Any]:
        try:
            text = self.dict[name]
        except KeyError:
            raise jinja2.TemplateNotFound(name) from None
        # The name as the file name: tracebacks say which template.
        return text, name, lambda: self.dict.get(name) == text
