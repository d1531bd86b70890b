"""Tornado template syntax: the reader and the block tree (private to reactor.template).

Some facts about Tornado's template syntax, each one kept here and tested:

- A tag opens at ``{{``, ``{%`` or ``{#``. With more than two braces in a
  row the innermost pair counts (``{{{ x }}}`` outputs ``{`` + x + ``}``),
  and ``{{!``, ``{%!``, ``{#!`` write the two braces literally.
- ``{% autoescape f %}`` is not scoped: it sets the escape function of the
  whole file it appears in, expressions before it included. Blocks and
  included files use the setting of the file that wrote them.
- ``{% whitespace mode %}`` applies to the text after it, to the end of the
  file. A text chunk containing ``<pre>`` is never filtered.
- ``{% extends %}`` is only looked for at the top level of a file; text and
  statements outside ``{% block %}`` in a child are dropped, and the most
  derived ``{% block %}`` of a name wins, even inside an included file.
- A template is one function: ``{% set %}`` in a loop, a block or an included
  file is visible after it, and ``{% else %}`` after ``for`` / ``while`` runs
  when the loop ended without ``break`` (Python's rule, not Jinja2's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class ParseError(Exception):
    """A template syntax error; ``filename`` and ``lineno`` say where it is.

    ``str()`` reads ``"<message> at <filename>:<lineno>"``.
    """

    def __init__(self, message: str, filename: str | None = None, lineno: int = 0) -> None:
        self.message = message
        self.filename = filename
        self.lineno = lineno

    def __str__(self) -> str:
        return f"{self.message} at {self.filename}:{self.lineno:d}"


def filter_whitespace(mode: str, text: str) -> str:
    """Transform the whitespace in ``text`` according to ``mode``.

    ``"all"`` keeps it unchanged; ``"single"`` turns each run of spaces and
    tabs into one space and each run of whitespace holding a newline into one
    newline; ``"oneline"`` turns every run of whitespace into one space.
    Any other mode raises ``Exception("invalid whitespace mode ...")``.
    """
    if mode == "all":
        return text
    if mode == "single":
        return _NEWLINE_RUN.sub("\n", _BLANK_RUN.sub(" ", text))
    if mode == "oneline":
        return _SPACE_RUN.sub(" ", text)
    raise Exception(f"invalid whitespace mode {mode}")


_BLANK_RUN = re.compile(r"[\t ]+")
_NEWLINE_RUN = re.compile(r"\s*\n\s*")
_SPACE_RUN = re.compile(r"\s+")


class Source:
    """What a parsed node needs to know about the file it came from."""

    def __init__(self, name: str, filename: str, text: str, autoescape: str | None) -> None:
        self.name = name
        self.filename = filename
        self.text = text
        self.autoescape = autoescape  # {% autoescape %} rewrites it for the whole file


@dataclass
class Text:
    value: str
    line: int


@dataclass
class Expression:
    code: str
    line: int
    source: Source
    raw: bool = False
    col: int = 0  # UTF-8 byte column of the code on its line, as Python's AST counts


@dataclass
class Statement:
    """``{% set %}``, ``{% import %}`` / ``{% from %}``: Python run for its names."""

    code: str
    line: int
    source: Source
    col: int = 0


@dataclass
class LoopControl:
    keyword: str  # "break" or "continue"
    line: int


@dataclass
class Intermediate:
    """``else`` / ``elif`` / ``except`` / ``finally`` inside a control block's body."""

    keyword: str
    code: str
    line: int
    col: int = 0


@dataclass
class Control:
    keyword: str  # if, for, while, try
    code: str
    line: int
    source: Source
    body: list[Node] = field(default_factory=list)
    col: int = 0


@dataclass
class Apply:
    code: str
    line: int
    source: Source
    body: list[Node] = field(default_factory=list)
    col: int = 0


@dataclass
class NamedBlock:
    name: str
    line: int
    body: list[Node] = field(default_factory=list)


@dataclass
class Extends:
    name: str
    line: int


@dataclass
class Include:
    name: str
    line: int
    parent: str  # the including template's name, for relative paths


Node = (
    Text
    | Expression
    | Statement
    | LoopControl
    | Intermediate
    | Control
    | Apply
    | NamedBlock
    | Extends
    | Include
)

_INTERMEDIATE_PARENTS = {
    "else": {"if", "for", "while", "try"},
    "elif": {"if"},
    "except": {"try"},
    "finally": {"try"},
}
_NO_BODY = {
    "extends",
    "include",
    "set",
    "import",
    "from",
    "comment",
    "autoescape",
    "whitespace",
    "raw",
    "module",
}
_WITH_BODY = {"apply", "block", "try", "if", "for", "while"}


class _Reader:
    def __init__(self, source: Source, whitespace: str) -> None:
        self.source = source
        self.text = source.text
        self.whitespace = whitespace
        self.pos = 0
        self.line = 1

    def consume(self, end: int) -> str:
        """Take the text up to the absolute position ``end``, counting lines."""
        chunk = self.text[self.pos : end]
        self.line += chunk.count("\n")
        self.pos = end
        return chunk

    def fail(self, message: str) -> ParseError:
        return ParseError(message, self.source.name, self.line)

    def text_node(self, value: str, line: int) -> Text:
        if "<pre>" not in value:
            value = filter_whitespace(self.whitespace, value)
        return Text(value, line)


def parse(source: Source, whitespace: str) -> list[Node]:
    """Parse Tornado template text into its block tree."""
    return _parse(_Reader(source, whitespace), None, False)


def _find_tag(text: str, start: int) -> int:
    """Position of the next tag's opening brace pair, or -1."""
    curly = start
    end = len(text)
    while True:
        curly = text.find("{", curly)
        if curly == -1 or curly + 1 == end:
            return -1
        if text[curly + 1] not in "{%#":
            curly += 1
            continue
        # Three or more braces: the innermost pair opens the tag.
        if curly + 2 < end and text[curly + 1] == "{" and text[curly + 2] == "{":
            curly += 1
            continue
        return curly


def _parse(reader: _Reader, in_block: str | None, in_loop: bool) -> list[Node]:
    body: list[Node] = []
    text = reader.text
    source = reader.source
    while True:
        curly = _find_tag(text, reader.pos)
        if curly == -1:
            if in_block:
                raise reader.fail(f"Missing {{% end %}} block for {in_block}")
            chunk = reader.consume(len(text))
            body.append(reader.text_node(chunk, reader.line))
            return body
        if curly > reader.pos:
            chunk = reader.consume(curly)
            body.append(reader.text_node(chunk, reader.line))
        start_brace = reader.consume(curly + 2)
        line = reader.line

        if text.startswith("!", reader.pos):
            reader.consume(reader.pos + 1)
            body.append(reader.text_node(start_brace, line))
            continue

        closer = {"{#": "#}", "{{": "}}", "{%": "%}"}[start_brace]
        end = text.find(closer, reader.pos)
        if end == -1:
            what = {"{#": "comment #}", "{{": "expression }}", "{%": "block %}"}[start_brace]
            raise reader.fail("Missing end " + what)
        raw = reader.consume(end)
        reader.consume(end + 2)
        contents = raw.strip()
        # The line the contents start on, for Python's error positions.
        lead = len(raw) - len(raw.lstrip())
        code_line = line + raw[:lead].count("\n")
        content_pos = end - len(raw) + lead

        def col_of(offset: int, content_pos: int = content_pos) -> int:
            line_start = text.rfind("\n", 0, content_pos + offset) + 1
            return len(text[line_start : content_pos + offset].encode())

        if start_brace == "{#":
            continue
        if start_brace == "{{":
            if not contents:
                raise reader.fail("Empty expression")
            body.append(Expression(contents, code_line, source, col=col_of(0)))
            continue
        if not contents:
            raise reader.fail("Empty block tag ({% %})")

        operator, _, suffix = contents.partition(" ")
        suffix = suffix.strip()

        parents = _INTERMEDIATE_PARENTS.get(operator)
        if parents is not None:
            if not in_block:
                raise reader.fail(f"{operator} outside {parents} block")
            if in_block not in parents:
                raise reader.fail(f"{operator} block cannot be attached to {in_block} block")
            body.append(Intermediate(operator, contents, code_line, col_of(0)))
            continue
        if operator == "end":
            if not in_block:
                raise reader.fail("Extra {% end %} block")
            return body
        if operator in _NO_BODY:
            suffix_col = col_of(max(contents.find(suffix, len(operator)), 0))
            node = _simple_tag(reader, operator, suffix, contents, code_line, suffix_col, col_of(0))
            if node is not None:
                body.append(node)
            continue
        if operator in _WITH_BODY:
            if operator in ("for", "while"):
                inner = _parse(reader, operator, True)
            elif operator == "apply":
                # The applied body is a function of its own: no break/continue.
                inner = _parse(reader, operator, False)
            else:
                inner = _parse(reader, operator, in_loop)
            if operator == "apply":
                if not suffix:
                    raise reader.fail("apply missing method name")
                apply_col = col_of(max(contents.find(suffix, len(operator)), 0))
                body.append(Apply(suffix, code_line, source, inner, apply_col))
            elif operator == "block":
                if not suffix:
                    raise reader.fail("block missing name")
                body.append(NamedBlock(suffix, code_line, inner))
            else:
                body.append(Control(operator, contents, code_line, source, inner, col_of(0)))
            continue
        if operator in ("break", "continue"):
            if not in_loop:
                raise reader.fail("{} outside {} block".format(operator, {"for", "while"}))
            body.append(LoopControl(operator, code_line))
            continue
        raise reader.fail(f"unknown operator: {operator!r}")


def _simple_tag(
    reader: _Reader,
    operator: str,
    suffix: str,
    contents: str,
    line: int,
    suffix_col: int,
    contents_col: int,
) -> Node | None:
    source = reader.source
    if operator == "comment":
        return None
    if operator == "extends":
        path = suffix.strip('"').strip("'")
        if not path:
            raise reader.fail("extends missing file path")
        return Extends(path, line)
    if operator in ("import", "from"):
        if not suffix:
            raise reader.fail("import missing statement")
        return Statement(contents, line, source, contents_col)
    if operator == "include":
        path = suffix.strip('"').strip("'")
        if not path:
            raise reader.fail("include missing file path")
        return Include(path, line, source.name)
    if operator == "set":
        if not suffix:
            raise reader.fail("set missing statement")
        return Statement(suffix, line, source, suffix_col)
    if operator == "autoescape":
        source.autoescape = None if suffix == "None" else suffix
        return None
    if operator == "whitespace":
        filter_whitespace(suffix, "")  # validates the mode
        reader.whitespace = suffix
        return None
    if operator == "raw":
        return Expression(suffix, line, source, raw=True, col=suffix_col)
    assert operator == "module"
    return Expression("_tt_modules." + suffix, line, source, raw=True)
