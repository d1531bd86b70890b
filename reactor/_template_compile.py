"""Tornado template syntax onto Jinja2's compiler (private to reactor.template).

How a Tornado template becomes a Jinja2 one, and the facts that shaped it:

- Jinja2 compiles the template: its code generator writes the render function
  (output, ``if``, ``break`` / ``continue``, buffers), its ``Template`` runs it
  and its traceback rewriting maps the render function's lines back to the
  template's lines. A small subclass of its code generator adds the nodes
  Jinja2 has no statement for, with Python's meaning: ``for`` / ``while`` with
  ``else`` (runs when no ``break``), ``try`` / ``except`` / ``finally``, and
  ``{% apply %}`` (the body rendered into a buffer, passed to a function).
- Tornado expressions are Python, and Jinja2's expressions are not (``a.b``
  falls back to ``a["b"]``, a missing name renders as "", ``is`` means a test,
  no comprehension, lambda or keyword-only call). So each expression,
  condition, iterable and ``{% set %}`` / ``{% import %}`` statement is
  compiled by Python, once per template, into a small function whose code
  carries the template's file name and original line numbers, so a traceback
  through it points at the template line. Its globals are the render's
  namespace (Tornado's: escape functions, the loader's namespace, the
  ``generate()`` arguments), so a missing name is a ``NameError`` at the
  moment it is evaluated, and builtins resolve as in Python.
- The names a template assigns (``set``, ``for`` targets, ``import``,
  ``except ... as``) are Python locals of the one render function, as in
  Tornado where the template is one function: an assignment in a loop, a
  block or an included file is seen after it. They are passed to the
  expression functions that read them.
- ``{% extends %}``, ``{% block %}`` and ``{% include %}`` are resolved when
  the template is compiled, as Tornado does: the result is one function.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from types import CodeType
from typing import Any, NamedTuple, Protocol

import jinja2.runtime
from jinja2 import Environment, nodes
from jinja2.compiler import CodeGenerator, Frame

from reactor import _template_parse as tp
from reactor._template_parse import ParseError

# The template's own variables are Python locals of Jinja2's render function,
# under their own names, unless a name is one that function's code reads (then
# it gets a prefix): assigning it anywhere would make it a local everywhere.
_JINJA_NAMES = frozenset(jinja2.runtime.exported) | {
    "context",
    "environment",
    "missing",
    "resolve",
    "undefined",
    "concat",
    "cond_expr_undefined",
    "name",
    "blocks",
    "debug_info",
    "root",
    "parent_template",
    "_loop_vars",
    "_block_vars",
}
_JINJA_TEMPORARY = re.compile(r"[tl]_\d|_tt_")


def _local(name: str) -> str:
    """The render function's name for the template variable ``name``."""
    if name in _JINJA_NAMES or _JINJA_TEMPORARY.match(name):
        return "_tt_v_" + name
    return name


_MAX_NESTING = 64  # extends / include depth: a cycle fails clearly instead of recursing


def _node_class(name: str, base: type[nodes.Node], fields: tuple[str, ...]) -> Any:
    """A Jinja2 node class for a statement Jinja2 lacks.

    Jinja2's node metaclass refuses new classes once its module is loaded
    (extensions are meant to reuse its nodes); the code generator below is the
    only thing that ever sees these, so they are built with the metaclass's
    own layout rule (fields and attributes inherited and extended).
    """
    namespace = {
        "fields": base.fields + fields,
        "attributes": base.attributes,
        "abstract": False,
        "__module__": __name__,
        "__qualname__": name,
    }
    if issubclass(base, nodes.Expr):
        namespace["as_const"] = _not_constant
    return type.__new__(nodes.NodeType, name, (base,), namespace)


def _not_constant(self: nodes.Node, eval_ctx: Any = None) -> Any:
    raise nodes.Impossible()


# _tt_f<index>(<template locals>): one compiled Python function, called directly.
HelperCall = _node_class("HelperCall", nodes.Expr, ("index", "args"))
# _tt_f0, _tt_f1, ... = the render's helper functions, at the top of the render function.
Prologue = _node_class("Prologue", nodes.Stmt, ("count",))
PyAssign = _node_class("PyAssign", nodes.Stmt, ("targets", "call"))
PyFor = _node_class("PyFor", nodes.Stmt, ("target", "iter", "body", "else_"))
PyWhile = _node_class("PyWhile", nodes.Stmt, ("test", "body", "else_"))
PyHandler = _node_class("PyHandler", nodes.Helper, ("type", "name", "body"))
PyTry = _node_class("PyTry", nodes.Stmt, ("body", "handlers", "else_", "finally_"))
PyApply = _node_class("PyApply", nodes.Stmt, ("call", "body"))


def _call_source(call: Any, first: str | None = None) -> str:
    args = [_local(name) for name in call.args]
    if first is not None:
        args.insert(0, first)
    return f"_tt_f{call.index}({', '.join(args)})"


class TornadoCodeGenerator(CodeGenerator):
    """Jinja2's code generator plus the Python statements Tornado templates have."""

    def visit_HelperCall(self, node: Any, frame: Frame) -> None:
        self.write(_call_source(node))

    def visit_Prologue(self, node: Any, frame: Frame) -> None:
        if node.count:
            names = "".join(f"_tt_f{i}, " for i in range(node.count))
            self.writeline(names + '= context.vars["_tt_fns"]')

    def visit_PyAssign(self, node: Any, frame: Frame) -> None:
        self.newline(node)
        if node.targets:
            self.write("".join(_local(name) + ", " for name in node.targets) + "= ")
        self.write(_call_source(node.call))

    def _block(self, body: list[nodes.Node], frame: Frame) -> None:
        self.indent()
        self.blockvisit(body, frame)
        self.outdent()

    def visit_PyFor(self, node: Any, frame: Frame) -> None:
        inner = frame.soft()
        self.writeline(f"for {node.target} in {_call_source(node.iter)}:", node)
        self._block(node.body, inner)
        if node.else_:
            self.writeline("else:")
            self._block(node.else_, inner)

    def visit_PyWhile(self, node: Any, frame: Frame) -> None:
        inner = frame.soft()
        self.writeline(f"while {_call_source(node.test)}:", node)
        self._block(node.body, inner)
        if node.else_:
            self.writeline("else:")
            self._block(node.else_, inner)

    def visit_PyTry(self, node: Any, frame: Frame) -> None:
        inner = frame.soft()
        self.writeline("try:", node)
        self._block(node.body, inner)
        for handler in node.handlers:
            clause = "except"
            if handler.type is not None:
                clause += " " + _call_source(handler.type)
                if handler.name is not None:
                    clause += " as " + _local(handler.name)
            self.writeline(clause + ":", handler)
            self._block(handler.body, inner)
        if node.else_:
            self.writeline("else:")
            self._block(node.else_, inner)
        if node.finally_:
            self.writeline("finally:")
            self._block(node.finally_, inner)

    def visit_PyApply(self, node: Any, frame: Frame) -> None:
        inner = frame.soft()
        inner.buffer = self.temporary_identifier()
        self.writeline(f"{inner.buffer} = []", node)
        self.blockvisit(node.body, inner)
        self.start_write(frame, node)
        self.write(_call_source(node.call, f"concat({inner.buffer})"))
        self.end_write(frame)

    # A helper's result is already a str: no str() around it.
    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if not isinstance(node, HelperCall):
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if not isinstance(node, HelperCall):
            super()._output_child_post(node, frame, finalize)


ENVIRONMENT = Environment(autoescape=False, cache_size=0)
ENVIRONMENT.code_generator_class = TornadoCodeGenerator


class TemplateLike(Protocol):
    """What the compiler needs from reactor.template.Template."""

    name: str
    _source: tp.Source
    _body: list[tp.Node]


class LoaderLike(Protocol):
    def load(self, name: str, parent_path: str | None = None) -> Any: ...


# -- Python fragments ---------------------------------------------------------


class _Names(ast.NodeVisitor):
    """The names a fragment reads from outside itself and binds in its own scope."""

    def __init__(self) -> None:
        self.loads: set[str] = set()
        self.stores: set[str] = set()
        self.walrus = False
        self.unsupported: str | None = None
        self._scopes: list[set[str]] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if not any(node.id in scope for scope in self._scopes):
                self.loads.add(node.id)
        elif self._scopes:
            self._scopes[-1].add(node.id)
        elif isinstance(node.ctx, ast.Del):
            self.unsupported = "del"
        else:
            self.stores.add(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and not self._scopes:
            self.loads.add(node.target.id)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.walrus = True
        self.visit(node.value)
        self.visit(node.target)

    def _comprehension(self, node: Any, parts: list[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators
        self.visit(generators[0].iter)
        scope: set[str] = set()
        for gen in generators:
            scope.update(n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name))
        self._scopes.append(scope)
        for i, gen in enumerate(generators):
            if i:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for part in parts:
            self.visit(part)
        self._scopes.pop()

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_Lambda(self, node: ast.Lambda) -> None:
        args = node.args
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        self._scopes.append({a.arg for a in every})
        self.visit(node.body)
        self._scopes.pop()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.stores.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.unsupported = "import *"
            self.stores.add(alias.asname or alias.name)

    def _unsupported(self, node: ast.AST) -> None:
        self.unsupported = type(node).__name__.lower()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _unsupported
    visit_Global = visit_Nonlocal = _unsupported


def _names(*trees: ast.AST | None) -> _Names:
    scan = _Names()
    for tree in trees:
        if tree is not None:
            scan.visit(tree)
    return scan


def _parse_python(
    code: str, mode: str, source: tp.Source, line: int, what: str, col: int = 0
) -> Any:
    """Parse a fragment, its nodes placed at their line and column in the template."""
    try:
        tree = ast.parse(code, filename=source.name, mode=mode)
    except SyntaxError as e:
        raise ParseError(
            f"invalid Python in {what}: {e.msg}", source.name, line + (e.lineno or 1) - 1
        ) from None
    if col:
        # The fragment's first line starts mid-line in the template.
        for node in ast.walk(tree):
            if "lineno" in node._attributes:
                if node.lineno == 1:  # type: ignore[attr-defined]
                    node.col_offset += col  # type: ignore[attr-defined]
                if getattr(node, "end_lineno", None) == 1:
                    node.end_col_offset += col  # type: ignore[attr-defined]
    return ast.increment_lineno(tree, line - 1)


def _parse_clause(code: str, source: tp.Source, line: int, col: int = 0) -> ast.stmt:
    """A control tag (``for x in y``, ``except E as e``) as the Python statement it opens."""
    keyword = code.split(None, 1)[0]
    if keyword == "except":
        # Parsed inside a try at lines 1-2: placed on "line" once shifted.
        text = f"try:\n pass\n{code}:\n pass\n"
        tree = _parse_python(text, "exec", source, line - 2, f"{{% {code} %}}")
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) == line:
                node.col_offset += col  # type: ignore[attr-defined]
                if getattr(node, "end_lineno", None) == line:
                    node.end_col_offset += col  # type: ignore[attr-defined]
        handler: ast.stmt = tree.body[0].handlers[0]
        return handler
    if keyword == "elif":
        code, col = code[2:], col + 2
    tree = _parse_python(code + ":\n pass\n", "exec", source, line, f"{{% {code} %}}", col)
    stmt: ast.stmt = tree.body[0]
    return stmt


class _Build:
    """Python AST for the helper functions, every node placed at one template line."""

    def __init__(self, line: int) -> None:
        self.pos: dict[str, Any] = {
            "lineno": line,
            "col_offset": 0,
            "end_lineno": line,
            "end_col_offset": 0,
        }

    def load(self, name: str) -> ast.Name:
        return ast.Name(id=name, ctx=ast.Load(), **self.pos)

    def store(self, name: str) -> ast.Name:
        return ast.Name(id=name, ctx=ast.Store(), **self.pos)

    def call(self, func: ast.expr, *args: ast.expr) -> ast.Call:
        return ast.Call(func=func, args=list(args), keywords=[], **self.pos)

    def ret(self, value: ast.expr) -> ast.Return:
        return ast.Return(value=value, **self.pos)

    def as_text(self, value: ast.expr) -> list[ast.stmt]:
        """``_tt_tmp = value``, then made a str unless it is one (no call if it is)."""
        not_str = ast.Compare(
            left=ast.Attribute(
                value=self.load("_tt_tmp"), attr="__class__", ctx=ast.Load(), **self.pos
            ),
            ops=[ast.IsNot()],
            comparators=[self.load("_tt_strtype")],
            **self.pos,
        )
        convert = ast.Assign(
            targets=[self.store("_tt_tmp")],
            value=self.call(self.load("_tt_str"), self.load("_tt_tmp")),
            **self.pos,
        )
        return [
            ast.Assign(targets=[self.store("_tt_tmp")], value=value, **self.pos),
            ast.If(test=not_str, body=[convert], orelse=[], **self.pos),
        ]

    def function(self, name: str, params: list[str], body: list[ast.stmt]) -> ast.FunctionDef:
        args = ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=p, **self.pos) for p in params],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        )
        extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
        return ast.FunctionDef(
            name=name, args=args, body=body, decorator_list=[], returns=None, **extra, **self.pos
        )


# Tracebacks name a helper's frame "<template>" (co_qualname is 3.11's).
_QUALNAME: dict[str, Any] = {"co_qualname": "<template>"} if sys.version_info >= (3, 11) else {}


def _refile(code: CodeType, filename: str) -> CodeType:
    """``code`` (and the lambdas and comprehensions in it) as from ``filename``."""
    consts = tuple(_refile(c, filename) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


class _Section(NamedTuple):
    keyword: str
    code: str
    line: int
    col: int
    body: list[tp.Node]


class Compiler:
    """Turns one Tornado template, with its parents and includes, into Jinja2 nodes."""

    def __init__(self, template: TemplateLike, loader: LoaderLike | None) -> None:
        self.template = template
        self.loader = loader
        self.codes: list[CodeType] = []
        self._functions: list[tuple[ast.FunctionDef, tp.Source]] = []
        self.bound: set[str] = set()
        self.named: dict[str, tuple[tp.NamedBlock, TemplateLike]] = {}

    # -- resolving extends, blocks and includes -----------------------------

    def _load(self, name: str, parent: str, line: int, source: tp.Source) -> TemplateLike:
        if self.loader is None:
            raise ParseError(
                "{% extends %} or {% include %} found, but no template loader", source.name, line
            )
        loaded: TemplateLike = self.loader.load(name, parent)
        if not hasattr(loaded, "_body"):
            raise ParseError(
                f"{name!r} is a Jinja2-syntax template; a Tornado-syntax template"
                " cannot include or extend it",
                source.name,
                line,
            )
        return loaded

    def _ancestors(self, template: TemplateLike, depth: int = 0) -> list[TemplateLike]:
        if depth > _MAX_NESTING:
            raise ParseError("{% extends %} nested too deep (a cycle?)", template.name, 0)
        found = [template]
        for node in template._body:
            if isinstance(node, tp.Extends):
                parent = self._load(node.name, template.name, node.line, template._source)
                found.extend(self._ancestors(parent, depth + 1))
        return found

    def _find_blocks(self, body: list[tp.Node], owner: TemplateLike, depth: int) -> None:
        if depth > _MAX_NESTING:
            raise ParseError("{% include %} nested too deep (a cycle?)", owner.name, 0)
        for node in body:
            if isinstance(node, tp.NamedBlock):
                self.named[node.name] = (node, owner)
                self._find_blocks(node.body, owner, depth)
            elif isinstance(node, tp.Include):
                included = self._load(node.name, node.parent, node.line, owner._source)
                self._find_blocks(included._body, included, depth + 1)
            elif isinstance(node, (tp.Control, tp.Apply)):
                self._find_blocks(node.body, owner, depth)

    def _flatten(self, body: list[tp.Node], owner: TemplateLike, depth: int) -> list[tp.Node]:
        if depth > _MAX_NESTING:
            raise ParseError("{% include %} nested too deep (a cycle?)", owner.name, 0)
        out: list[tp.Node] = []
        for node in body:
            if isinstance(node, tp.NamedBlock):
                block, block_owner = self.named[node.name]
                out.extend(self._flatten(block.body, block_owner, depth + 1))
            elif isinstance(node, tp.Include):
                included = self._load(node.name, node.parent, node.line, owner._source)
                out.extend(self._flatten(included._body, included, depth + 1))
            elif isinstance(node, tp.Extends):
                continue
            elif isinstance(node, (tp.Control, tp.Apply)):
                out.append(dataclasses.replace(node, body=self._flatten(node.body, owner, depth)))
            else:
                out.append(node)
        return out

    # -- the whole template ---------------------------------------------------

    def compile(self) -> nodes.Template:
        ancestors = self._ancestors(self.template)
        ancestors.reverse()
        for ancestor in ancestors:
            self._find_blocks(ancestor._body, ancestor, 0)
        root = ancestors[0]
        body = self._flatten(root._body, root, 0)
        self.parsed: dict[int, Any] = {}
        self._bind(body)
        jinja_body: list[nodes.Node] = [Prologue(0, lineno=1)]
        jinja_body += self._translate(body)
        self._compile_helpers()
        prologue = jinja_body[0]
        assert isinstance(prologue, Prologue)
        prologue.count = len(self.codes)
        return nodes.Template(jinja_body, lineno=1)

    # -- pass 1: parse every fragment, collect the names the template binds --

    def _bind(self, body: list[tp.Node]) -> None:
        for node in body:
            if isinstance(node, tp.Statement):
                what = f"{{% set/import %}} {node.code!r}"
                tree = _parse_python(node.code, "exec", node.source, node.line, what, node.col)
                scan = _names(tree)
                if scan.unsupported:
                    raise ParseError(
                        f"{scan.unsupported} is not supported in a template statement",
                        node.source.name,
                        node.line,
                    )
                self.parsed[id(node)] = (tree, scan)
                self.bound |= scan.stores
            elif isinstance(node, tp.Control):
                sections = self._sections(node)
                for section in sections:
                    if section.keyword in ("for", "except"):
                        clause = _parse_clause(section.code, node.source, section.line)
                        target = clause.target if isinstance(clause, ast.For) else None
                        if isinstance(clause, ast.ExceptHandler) and clause.name:
                            self.bound.add(clause.name)
                        if target is not None:
                            self.bound |= _names(target).stores
                for section in sections:
                    self._bind(section.body)
            elif isinstance(node, tp.Apply):
                self._bind(node.body)

    def _sections(self, node: tp.Control) -> list[_Section]:
        """The control block cut at its ``elif`` / ``else`` / ``except`` / ``finally``."""
        sections = [_Section(node.keyword, node.code, node.line, node.col, [])]
        for child in node.body:
            if isinstance(child, tp.Intermediate):
                sections.append(_Section(child.keyword, child.code, child.line, child.col, []))
            else:
                sections[-1].body.append(child)
        for section in sections:
            if section.keyword in ("try", "else", "finally") and section.code != section.keyword:
                raise ParseError(
                    f"invalid {{% {section.code} %}}: {section.keyword!r} takes no argument",
                    node.source.name,
                    section.line,
                )
        keywords = [s.keyword for s in sections]
        if not _valid_order(keywords):
            raise ParseError(
                "invalid block structure: {}".format(" ... ".join(keywords)),
                node.source.name,
                node.line,
            )
        return sections

    # -- pass 2: Jinja2 nodes and the Python helpers ------------------------

    def _helper(
        self,
        stmts: list[ast.stmt],
        loads: set[str],
        source: tp.Source,
        line: int,
        first: str | None = None,
    ) -> Any:
        """A helper function of ``stmts``, taking the template locals it reads."""
        params = sorted(loads & self.bound)
        index = len(self._functions)
        fn = _Build(line).function(f"_tt_h{index}", ([first] if first else []) + params, stmts)
        self._functions.append((fn, source))
        return HelperCall(index, params, lineno=line)

    def _compile_helpers(self) -> None:
        """Compile every helper in one go, each then given its own file's name."""
        module = ast.Module(body=[fn for fn, _ in self._functions], type_ignores=[])
        try:
            code = compile(module, self.template._source.filename, "exec", dont_inherit=True)
        except SyntaxError:
            # Find the fragment at fault, to name its file.
            for fn, source in self._functions:
                single = ast.Module(body=[fn], type_ignores=[])
                try:
                    compile(single, source.filename, "exec", dont_inherit=True)
                except SyntaxError as e:
                    raise ParseError(
                        f"invalid Python: {e.msg}", source.name, e.lineno or 0
                    ) from None
            raise
        found = {c.co_name: c for c in code.co_consts if isinstance(c, CodeType)}
        for index, (_, source) in enumerate(self._functions):
            function_code = _refile(found[f"_tt_h{index}"], source.filename)
            self.codes.append(function_code.replace(co_name="<template>", **_QUALNAME))

    def _expression(
        self, code: str, source: tp.Source, line: int, what: str, col: int = 0
    ) -> tuple[ast.expr, _Names]:
        tree = _parse_python(code, "eval", source, line, what, col)
        scan = _names(tree)
        if scan.walrus:
            raise ParseError(
                "assignment expressions (:=) are not supported; use {% set %}", source.name, line
            )
        return tree.body, scan

    def _value_helper(self, expr: ast.expr, scan: _Names, source: tp.Source, line: int) -> Any:
        return self._helper([_Build(line).ret(expr)], scan.loads, source, line)

    def _translate(self, body: list[tp.Node]) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        output: list[nodes.Expr] = []

        def flush() -> None:
            if output:
                out.append(nodes.Output(list(output), lineno=output[0].lineno))
                output.clear()

        for node in body:
            if isinstance(node, tp.Text):
                if node.value:
                    output.append(nodes.TemplateData(node.value, lineno=node.line))
            elif isinstance(node, tp.Expression):
                output.append(self._output(node))
            else:
                flush()
                out.extend(self._statement(node))
        flush()
        return out

    def _output(self, node: tp.Expression) -> Any:
        what = f"{{{{ {node.code} }}}}"
        expr, scan = self._expression(node.code, node.source, node.line, what, node.col)
        build = _Build(node.line)
        stmts = build.as_text(expr)
        escape = node.source.autoescape
        if not node.raw and escape is not None:
            escape_expr, escape_scan = self._expression(
                escape, node.source, node.line, f"autoescape {escape!r}"
            )
            scan.loads |= escape_scan.loads
            stmts += build.as_text(build.call(escape_expr, build.load("_tt_tmp")))
        stmts.append(build.ret(build.load("_tt_tmp")))
        return self._helper(stmts, scan.loads, node.source, node.line)

    def _statement(self, node: tp.Node) -> list[nodes.Node]:
        if isinstance(node, tp.Statement):
            tree, scan = self.parsed[id(node)]
            stores = sorted(scan.stores)
            build = _Build(node.line)
            values = ast.Tuple(elts=[build.load(n) for n in stores], ctx=ast.Load(), **build.pos)
            body = [*tree.body, build.ret(values)]
            call = self._helper(body, scan.loads, node.source, node.line)
            return [PyAssign(stores, call, lineno=node.line)]
        if isinstance(node, tp.LoopControl):
            cls = nodes.Break if node.keyword == "break" else nodes.Continue
            return [cls(lineno=node.line)]
        if isinstance(node, tp.Apply):
            what = f"{{% apply {node.code} %}}"
            expr, scan = self._expression(node.code, node.source, node.line, what, node.col)
            build = _Build(node.line)
            result = build.call(build.load("_tt_str"), build.call(expr, build.load("_tt_body")))
            call = self._helper([build.ret(result)], scan.loads, node.source, node.line, "_tt_body")
            return [PyApply(call, self._translate(node.body), lineno=node.line)]
        if isinstance(node, tp.Control):
            return [self._control(node)]
        raise AssertionError(node)  # pragma: no cover

    def _control(self, node: tp.Control) -> Any:
        sections = self._sections(node)
        source = node.source
        keyword, code, line, col, body = sections[0]
        clause = _parse_clause(code, source, line, col) if keyword != "try" else None
        rest = {s.keyword: s for s in sections[1:]}
        else_ = self._translate(rest["else"].body) if "else" in rest else []
        if keyword == "if":
            assert isinstance(clause, ast.If)
            elifs = []
            for kw, c, ln, cl, b in sections[1:]:
                if kw == "elif":
                    sub = _parse_clause(c, source, ln, cl)
                    assert isinstance(sub, ast.If)
                    elifs.append(
                        nodes.If(
                            self._value_helper(sub.test, _names(sub.test), source, ln),
                            self._translate(b),
                            [],
                            [],
                            lineno=ln,
                        )
                    )
            test = self._value_helper(clause.test, _names(clause.test), source, line)
            return nodes.If(test, self._translate(body), elifs, else_, lineno=line)
        if keyword == "while":
            assert isinstance(clause, ast.While)
            test = self._value_helper(clause.test, _names(clause.test), source, line)
            return PyWhile(test, self._translate(body), else_, lineno=line)
        if keyword == "for":
            assert isinstance(clause, ast.For)
            target = clause.target
            for part in ast.walk(target):
                if not isinstance(
                    part, (ast.Name, ast.Tuple, ast.List, ast.Starred, ast.expr_context)
                ):
                    raise ParseError("a {% for %} target must be names", source.name, line)
                if isinstance(part, ast.Name):
                    part.id = _local(part.id)
            iterable = self._value_helper(clause.iter, _names(clause.iter), source, line)
            return PyFor(ast.unparse(target), iterable, self._translate(body), else_, lineno=line)
        assert keyword == "try"
        handlers = []
        for kw, c, ln, cl, b in sections[1:]:
            if kw == "except":
                handler = _parse_clause(c, source, ln, cl)
                assert isinstance(handler, ast.ExceptHandler)
                type_call = None
                if handler.type is not None:
                    type_call = self._value_helper(handler.type, _names(handler.type), source, ln)
                handlers.append(PyHandler(type_call, handler.name, self._translate(b), lineno=ln))
        finally_ = self._translate(rest["finally"].body) if "finally" in rest else []
        return PyTry(self._translate(body), handlers, else_, finally_, lineno=line)


def _valid_order(keywords: list[str]) -> bool:
    head, rest = keywords[0], keywords[1:]
    if head == "if":
        return all(k == "elif" for k in rest[:-1]) and (not rest or rest[-1] in ("elif", "else"))
    if head in ("for", "while"):
        return rest in ([], ["else"])
    # try: except+ [else] [finally]  |  finally
    excepts = 0
    while excepts < len(rest) and rest[excepts] == "except":
        excepts += 1
    tail = rest[excepts:]
    if not excepts:
        return tail == ["finally"]
    return tail in ([], ["else"], ["finally"], ["else", "finally"])


def compile_template(
    template: TemplateLike, loader: LoaderLike | None
) -> tuple[str, list[CodeType]]:
    """Jinja2's Python source for ``template`` and the helper functions it calls."""
    compiler = Compiler(template, loader)
    tree = compiler.compile()
    source: str = ENVIRONMENT.compile(tree, template.name, template._source.filename, raw=True)
    return source, compiler.codes
