"""A griffe extension: reactor's reST-flavoured docstrings, rendered as Markdown.

reactor's docstrings are written the way Tornado's are, for Sphinx: roles
(:class:`~reactor.ioloop.IOLoop`, :meth:`start`, :func:`...`, :mod:`...`),
literal blocks introduced by a paragraph ending in ``::``, and a few
directives (``.. deprecated:: 5.0``). mkdocstrings renders docstrings as
Markdown, where all three would come out as punctuation. This extension runs
once, when griffe has loaded the package, and rewrites each docstring:

- a role becomes an autorefs cross-reference, ``<autoref identifier=...
  optional><code>title</code></autoref>``: a link when the target is
  rendered somewhere in the site, plain code otherwise (a name from the
  standard library, a private helper). The target is looked up as Sphinx
  does: relative to the object and its parents first, then as written, so
  :meth:`start` in ``IOLoop``'s docstring finds ``reactor.ioloop.IOLoop.start``.
  ``~`` shows only the last component; functions and methods get ``()``.
- ``text::`` followed by an indented block becomes ``text:`` and a fenced
  code block (``::`` alone on its line disappears), at the paragraph's own
  indentation, so a literal block inside a list item stays in it.
- ``.. deprecated::``, ``.. versionadded::``, ``.. versionchanged::``,
  ``.. note::`` and ``.. warning::`` become admonitions (any other directive
  a note titled with its name), their bodies inside.

Double backquotes (``code``) need nothing: Markdown reads them as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|data|exc|mod|obj|const):`([^`]+)`")
_FENCED = re.compile(r"(^[ ]*```python\n.*?^[ ]*```$)", re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"^(\s*)\.\. ([a-z-]+)::\s*(.*)$")
_ADMONITIONS = {
    "deprecated": ("warning", "Deprecated since"),
    "versionadded": ("note", "New in"),
    "versionchanged": ("note", "Changed in"),
    "note": ("note", ""),
    "warning": ("warning", ""),
}


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class RstDocstrings(griffe.Extension):
    """Rewrite every docstring of the loaded package from reST to Markdown."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._collection = loader.modules_collection
        seen: set[int] = set()
        self._walk(pkg, seen)

    def _walk(self, obj: griffe.Object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if obj.docstring is not None:
            obj.docstring.value = self.convert(obj.docstring.value, obj)
        for member in obj.members.values():
            if member.is_alias:
                continue
            self._walk(member, seen)  # type: ignore[arg-type]

    # -- roles ---------------------------------------------------------------

    def _find(self, path: str) -> str | None:
        """``path`` if griffe knows an object there (a module imported under
        another name: the module's own path), else None."""
        try:
            found = self._collection.get_member(path)
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
        if found.is_alias:
            try:
                if found.is_module:
                    return str(found.target_path)
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
        return path

    def _resolve(self, target: str, obj: griffe.Object) -> str:
        name = target.lstrip(".")
        scope: griffe.Object | None = obj
        while scope is not None:
            found = self._find(f"{scope.path}.{name}")
            if found:
                return found
            scope = scope.parent
        return self._find(name) or self._find(f"reactor.{name}") or name

    def _role(self, match: re.Match[str], obj: griffe.Object) -> str:
        kind, text = match.group(1), " ".join(match.group(2).split())
        explicit = re.fullmatch(r"(.*?)\s*<([^>]+)>", text)  # :class:`title <target>`
        if explicit:
            title, target = explicit.group(1), explicit.group(2)
        else:
            short = text.startswith("~")
            target = text.lstrip("~!")
            title = target.rsplit(".", 1)[-1] if short else target
        target = target.removesuffix("()")
        if kind in ("meth", "func") and not explicit and not title.endswith(")"):
            title += "()"
        identifier = self._resolve(target, obj)
        title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    # -- blocks --------------------------------------------------------------

    def convert(self, text: str, obj: griffe.Object) -> str:
        """The Markdown for one docstring ``text`` of ``obj``."""
        lines = text.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            directive = _DIRECTIVE.match(line)
            if directive:
                i = self._directive(lines, i, directive, out)
                continue
            stripped = line.rstrip()
            if stripped.endswith("::") and not stripped.endswith(":::"):
                i = self._literal(lines, i, out)
                continue
            out.append(line)
            i += 1
        # Roles last, on the whole text (one may span a line break), but not
        # inside the code blocks made above.
        parts = _FENCED.split("\n".join(out))
        for k in range(0, len(parts), 2):
            parts[k] = _ROLE.sub(lambda m: self._role(m, obj), parts[k])
        return "".join(parts)

    def _block(self, lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
        """The lines from ``start`` indented deeper than ``indent`` (blank lines
        inside kept, trailing ones dropped), and the index after them."""
        block: list[str] = []
        i = start
        while i < len(lines) and (not lines[i].strip() or _indent_of(lines[i]) > indent):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
            i -= 1
        return block, i

    def _literal(self, lines: list[str], i: int, out: list[str]) -> int:
        line = lines[i].rstrip()
        indent = _indent_of(line)
        block, end = self._block(lines, i + 1, indent)
        if not block:
            out.append(line)
            return i + 1
        # reST: "text::" shows "text:", "text ::" shows "text", "::" nothing.
        head = line[:-2]
        if head.strip():
            shown = head.rstrip() if head.endswith(" ") else head + ":"
            out.append(shown)
        # A list item's first line ("- text::"): the block belongs to the
        # item's content, which starts after the marker.
        marker = re.match(r"\s*(?:[-*+]|\d+[.)])\s+", line)
        fence = " " * (marker.end() if marker else indent)
        depth = min(_indent_of(b) for b in block if b.strip())
        out.append("")
        out.append(f"{fence}```python")
        out.extend(f"{fence}{b[depth:]}" if b.strip() else "" for b in block)
        out.append(f"{fence}```")
        out.append("")
        return end

    def _directive(self, lines: list[str], i: int, match: re.Match[str], out: list[str]) -> int:
        indent, name, argument = len(match.group(1)), match.group(2), match.group(3).strip()
        block, end = self._block(lines, i + 1, indent)
        body = [b.strip() for b in block if b.strip()]
        pad = " " * indent
        kind, label = _ADMONITIONS.get(name, ("note", name.capitalize()))
        title = f"{label} {argument}".strip() if label else argument or name.capitalize()
        out.append("")
        out.append(f'{pad}!!! {kind} "{title}"')
        if body:
            out.append("")
            out.extend(f"{pad}    {b}" for b in body)
        out.append("")
        return end
