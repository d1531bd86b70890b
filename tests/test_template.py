"""reactor.template: Tornado's template API and syntax, compiled by Jinja2.

Pure rendering: no event loop, so these run once, not once per backend.
(The web layer's tests render templates through real HTTP on every backend.)
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from reactor import template
from reactor.template import (
    BaseLoader,
    DictLoader,
    Loader,
    ParseError,
    Template,
    filter_whitespace,
)


def render(source: str, name: str = "t.txt", **kwargs: Any) -> bytes:
    return Template(source, name=name).generate(**kwargs)


# -- expressions and escaping ---------------------------------------------------


def test_generate_returns_utf8_bytes() -> None:
    assert render("caf\u00e9 {{ x }}", x="\u2603") == "caf\u00e9 \u2603".encode()


def test_expressions_are_escaped_by_default() -> None:
    out = render('<a title="{{ v }}">{{ v }}</a>', v="<script>'\"&")
    assert out == b'<a title="&lt;script&gt;&#39;&quot;&amp;">&lt;script&gt;&#39;&quot;&amp;</a>'


def test_a_str_subclass_cannot_skip_escaping() -> None:
    # markupsafe.Markup means "already safe" to Jinja2, not to Tornado syntax;
    # and its replace() escapes its arguments, which must not garble the output.
    assert render("{{ v }}", v=Markup("<b>")) == b"&lt;b&gt;"


def test_autoescape_none_and_raw_write_the_value_as_is() -> None:
    assert Template("{{ v }}", autoescape=None).generate(v="<b>") == b"<b>"
    assert render("{% raw v %}|{{ v }}", v="<b>") == b"<b>|&lt;b&gt;"


def test_autoescape_names_a_function_in_the_namespace() -> None:
    t = Template("{{ v }}", autoescape="shout")
    assert t.generate(v="hi", shout=lambda s: s.upper() + "!") == b"HI!"
    # generate() arguments override the defaults, xhtml_escape included.
    assert render("{{ v }}", v="<", xhtml_escape=lambda s: "[" + s + "]") == b"[<]"


def test_autoescape_tag_applies_to_the_whole_file() -> None:
    # Tornado's rule: the tag sets the file's escaping, expressions before it too.
    assert render("{{ v }}{% autoescape None %}{{ v }}", v="<") == b"<<"
    assert render("{% autoescape url_escape %}{{ v }}", v="a b&") == b"a+b%26"


def test_values_become_text_like_str_and_bytes_are_decoded() -> None:
    assert render("{{ n }} {{ f }} {{ b }} {{ none }}", n=3, f=1.5, b=b"\xc3\xa9", none=None) == (
        "3 1.5 \u00e9 None".encode()
    )


def test_bytes_that_are_not_utf8_pass_through_unescaped_output() -> None:
    assert Template("{{ b }}", autoescape=None).generate(b=b"\xff\xfe") == b"\xff\xfe"


def test_module_tag_outputs_tt_modules_unescaped() -> None:
    class Modules:
        def Box(self, text: str) -> str:
            return "<div>" + text + "</div>"

    assert render("{% module Box('x') %}", _tt_modules=Modules()) == b"<div>x</div>"


def test_python_that_jinja2_expressions_cannot_say() -> None:
    src = (
        "{{ [x * 2 for x in xs if x is not None] }}|{{ (lambda a, *, k: a + k)(1, k=2) }}|"
        "{{ '%s-%d' % ('a', 3) }}|{{ {'k': 1}['k'] }}|{{ xs[-1] is None }}|"
        "{{ sorted(d, key=lambda k: -d[k]) }}|{{ f'{n:03d}' }}"
    )
    out = render(src, xs=[1, 2, None], d={"a": 1, "b": 2}, n=7)
    assert out == b"[2, 4]|3|a-3|1|True|[&#39;b&#39;, &#39;a&#39;]|007"


def test_attribute_and_item_access_keep_python_meaning() -> None:
    # Jinja2's a.b falls back to a["b"] and renders a miss as "": not here.
    with pytest.raises(AttributeError):
        render("{{ d.key }}", d={"key": 1})
    with pytest.raises(KeyError):
        render("{{ d['nope'] }}", d={})


def test_a_missing_name_is_a_name_error_when_evaluated() -> None:
    with pytest.raises(NameError, match="'nope'"):
        render("{{ nope }}")
    # Not evaluated, not an error (Python's rule, not a lookup up front).
    assert render("{% if flag %}{{ nope }}{% end %}ok", flag=False) == b"ok"


def test_arguments_shadow_builtins_and_builtins_remain() -> None:
    assert render("{{ type }} {{ len(xs) }}", type="kind", xs=[1, 2]) == b"kind 2"


def test_default_namespace_is_tornados() -> None:
    out = render(
        "{% raw escape('<') %} {{ url_escape('a b') }} {% raw json_encode({'a': '</'}) %} "
        "{{ squeeze('a   b') }} {% raw linkify('http://x.org') %} {{ datetime.date(2020, 1, 2) }}"
    )
    assert out == (b'&lt; a+b {"a": "<\\/"} a b <a href="http://x.org">http://x.org</a> 2020-01-02')


def test_template_exposes_name_autoescape_namespace_and_jinja2_code() -> None:
    loader = DictLoader({"a.html": "{% autoescape None %}x"}, namespace={"k": 1})
    t = loader.load("a.html")
    assert (t.name, t.autoescape, t.namespace, t.loader) == ("a.html", None, {"k": 1}, loader)
    assert "def root(context" in t.code  # Jinja2's code generator wrote it


def test_a_loaderless_template_source_is_compiled_once() -> None:
    first = Template("{{ v }} once", name="same.html")
    assert Template("{{ v }} once", name="same.html").compiled is first.compiled
    # Everything the compiled code depends on is in the cache key.
    other = Template("{{ v }} once", name="same.html", autoescape=None)
    assert other.compiled is not first.compiled
    assert (first.generate(v="<"), other.generate(v="<")) == (b"&lt; once", b"< once")
    renamed = Template("{{ 1 // v }} once", name="other.html")
    with pytest.raises(ZeroDivisionError) as info:
        renamed.generate(v=0)
    assert "other.html" in [f.filename for f in traceback.extract_tb(info.value.__traceback__)]


def test_rendering_leaves_no_reference_cycles() -> None:
    # Per render: a namespace, the helper functions bound to it, Jinja2's
    # context. None of them may point back, or every render feeds the GC.
    t = Template(
        "{% set a = 1 %}{% for x in xs %}{{ x }}{% try %}{{ a }}{% except Exception %}"
        "{% end %}{% end %}{% apply str.upper %}q{% end %}"
    )
    t.generate(xs=[1])
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            t.generate(xs=[1, 2, 3])
        assert gc.collect() == 0
    finally:
        gc.enable()


# -- statements -----------------------------------------------------------------


def test_if_elif_else() -> None:
    src = "{% if n < 0 %}neg{% elif n == 0 %}zero{% elif n < 10 %}small{% else %}big{% end %}"
    assert [render(src, n=n) for n in (-1, 0, 5, 50)] == [b"neg", b"zero", b"small", b"big"]


def test_for_with_unpacking_starred_and_python_for_else() -> None:
    src = "{% for k, (a, *rest) in items %}{{ k }}{{ a }}{{ rest }};{% end %}"
    assert render(src, items=[("x", (1, 2, 3)), ("y", (4,))]) == b"x1[2, 3];y4[];"
    loop = "{% for x in xs %}{% if x == stop %}{% break %}{% end %}{{ x }}{% else %}!{% end %}"
    assert render(loop, xs=[1, 2, 3], stop=9) == b"123!"  # no break: else runs
    assert render(loop, xs=[1, 2, 3], stop=2) == b"1"  # break: else skipped
    assert render(loop, xs=[], stop=2) == b"!"


def test_while_with_continue_and_else() -> None:
    src = (
        "{% set n = 0 %}{% while n < 5 %}{% set n += 1 %}"
        "{% if n % 2 %}{% continue %}{% end %}{{ n }}{% else %}.{% end %}"
    )
    assert render(src) == b"24."


def test_try_except_else_finally() -> None:
    src = (
        "{% try %}{{ 10 // d }}{% except ZeroDivisionError as e %}E:{{ type(e).__name__ }}"
        "{% except Exception %}other{% else %} ok{% finally %} F{% end %}"
    )
    assert render(src, d=2) == b"5 ok F"
    assert render(src, d=0) == b"E:ZeroDivisionError F"
    assert render(src, d="x") == b"other F"


def test_set_in_a_loop_is_seen_after_it() -> None:
    # One function per template, as in Tornado: no Jinja2 loop scoping.
    src = (
        "{% set total = 0 %}{% for x in xs %}{% set total = total + x %}{% end %}"
        "{{ total }} {{ x }}"
    )
    assert render(src, xs=[1, 2, 3]) == b"6 3"


def test_set_takes_any_python_statement() -> None:
    assert render("{% set a, b = 1, 2 %}{% set a, b = b, a %}{{ a }}{{ b }}") == b"21"
    assert render("{% set d = {} %}{% set d['k'] = 5 %}{{ d }}") == b"{&#39;k&#39;: 5}"
    assert render("{% set f = lambda v: v * 2 %}{{ f(4) }}") == b"8"


def test_template_variables_may_take_any_name() -> None:
    # Names that Jinja2's render function itself uses are still free for templates.
    src = (
        "{% set context = 1 %}{% set Undefined = 2 %}{% set t_1 = 3 %}{% set str = 4 %}"
        "{% for concat in [5] %}{% end %}{{ context }}{{ Undefined }}{{ t_1 }}{{ str }}{{ concat }}"
    )
    assert render(src) == b"12345"


def test_a_variable_read_before_the_template_assigns_it() -> None:
    # As in Tornado (one function): the later assignment makes it a local.
    with pytest.raises(UnboundLocalError, match="'x'"):
        render("{{ x }}{% set x = 1 %}", x=5)


def test_import_and_from_import() -> None:
    src = (
        "{% import os.path %}{% from math import sqrt as root %}"
        "{{ os.path.basename('a/b') }}{{ root(9) }}"
    )
    assert render(src) == b"b3.0"


def test_apply_passes_the_rendered_body_to_a_function() -> None:
    assert render("{% apply upper %}a{{ 'b' }}c{% end %}!", upper=str.upper) == b"ABC!"
    assert render("{% apply lambda s: s[::-1] %}abc{% end %}") == b"cba"


def test_comments_and_literal_braces() -> None:
    src = "a{# note #}b{% comment also %}c {{! x }} {%! y %} {#! z #} {{{ 1 }}}"
    assert render(src) == b"abc {{ x }} {% y %} {# z #} {1}"


def test_a_lone_trailing_brace_is_text() -> None:
    assert render("x {") == b"x {"


# -- whitespace ---------------------------------------------------------------------


def test_filter_whitespace_modes() -> None:
    text = "a  \t b\n\n  c"
    assert filter_whitespace("all", text) == text
    assert filter_whitespace("single", text) == "a b\nc"
    assert filter_whitespace("oneline", text) == "a b c"
    with pytest.raises(Exception, match="invalid whitespace mode bogus"):
        filter_whitespace("bogus", text)


def test_whitespace_defaults_by_file_name_and_pre_is_kept() -> None:
    # A text chunk (text between two tags) holding <pre> is never filtered.
    src = "a   b\n\n\nc{{ '' }}<pre>  x  </pre>"
    assert Template(src, name="p.html").generate() == b"a b\nc<pre>  x  </pre>"
    assert Template(src, name="p.js").generate() == b"a b\nc<pre>  x  </pre>"
    assert Template("a   b", name="p.txt").generate() == b"a   b"
    assert Template("a   b", name="p.html", whitespace="all").generate() == b"a   b"
    assert Template("a  \n  b", whitespace="oneline").generate() == b"a b"


def test_whitespace_tag_applies_to_the_text_after_it() -> None:
    assert render("a  b{% whitespace oneline %}c   \n d") == b"a  bc d"
    with pytest.raises(Exception, match="invalid whitespace mode"):
        render("{% whitespace bogus %}")


def test_compress_whitespace_is_the_deprecated_spelling() -> None:
    assert Template("a   b", compress_whitespace=True).generate() == b"a b"
    assert Template("a   b", name="x.html", compress_whitespace=False).generate() == b"a   b"
    with pytest.raises(Exception, match="cannot set both"):
        Template("x", compress_whitespace=True, whitespace="all")


# -- syntax errors: ParseError with the file and line ---------------------------------


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("a\n{% if x %}\nb", "Missing {% end %} block for if", 2),
        ("{% end %}", "Extra {% end %} block", 1),
        ("\n\n{% bogus %}", "unknown operator: 'bogus'", 3),
        ("{% else %}", "else outside", 1),
        ("{% for x in y %}{% elif z %}{% end %}", "elif block cannot be attached to for block", 1),
        ("{% if x %}{% break %}{% end %}", "break outside", 1),
        ("{% apply f %}{% for x in y %}{% end %}{% continue %}{% end %}", "continue outside", 1),
        ("{{ }}", "Empty expression", 1),
        ("{%  %}", "Empty block tag", 1),
        ("x {{ y", "Missing end expression }}", 1),
        ("x {% y", "Missing end block %}", 1),
        ("x {# y", "Missing end comment #}", 1),
        ("{% extends %}", "extends missing file path", 1),
        ("{% include '' %}", "include missing file path", 1),
        ("{% set %}", "set missing statement", 1),
        ("{% import %}", "import missing statement", 1),
        ("{% apply %}{% end %}", "apply missing method name", 1),
        ("{% block %}{% end %}", "block missing name", 1),
        ("a\nb\n{{ 1 + }}", "invalid Python", 3),
        ("{% if x = 1 %}{% end %}", "invalid Python", 1),
        ("\n{% set x = (\n1 +\n) %}", "invalid Python", 4),
        ("{% for x in y %}{% else %}{% else %}{% end %}", "invalid block structure", 1),
        ("{% try %}{% end %}", "invalid block structure", 1),
        ("{% for d['k'] in y %}{% end %}", "target must be names", 1),
        ("{{ (y := 1) }}", "assignment expressions", 1),
        ("{% extends 'x.html' %}", "no template loader", 1),
    ],
)
def test_parse_errors_name_the_file_and_line(source: str, message: str, line: int) -> None:
    with pytest.raises(ParseError) as info:
        Template(source, name="bad.html")
    error = info.value
    assert message in error.message
    assert (error.filename, error.lineno) == ("bad.html", line)
    assert str(error) == f"{error.message} at bad.html:{line}"


def test_parse_error_is_tornados_shape() -> None:
    error = ParseError("boom")
    assert (error.message, error.filename, error.lineno, str(error)) == (
        "boom",
        None,
        0,
        "boom at None:0",
    )


# -- errors while rendering point at the template's own line --------------------------


def _template_frames(exc: BaseException) -> list[tuple[str, int, str | None]]:
    return [(f.filename, f.lineno or 0, f.line) for f in traceback.extract_tb(exc.__traceback__)]


def test_render_error_traceback_names_the_template_line(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<p>\n{% for x in xs %}\n  {{ 10 // x }}\n{% end %}\n")
    loader = Loader(str(tmp_path))
    with pytest.raises(ZeroDivisionError) as info:
        loader.load("page.html").generate(xs=[1, 0])
    frames = _template_frames(info.value)
    path = str(tmp_path / "page.html")
    assert (path, 3, "{{ 10 // x }}") in frames


def test_a_logged_render_error_shows_the_template_file_line_and_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What the web layer's log line carries for a template error (it logs exc_info).
    (tmp_path / "view.html").write_text(
        "<ul>\n{% for u in users %}\n<li>{{ u.nmae }}</li>\n{% end %}"
    )
    loader = Loader(str(tmp_path))
    try:
        loader.load("view.html").generate(users=[object()])
    except AttributeError:
        logging.getLogger("test.template").exception("render failed")
    text = caplog.text
    assert f'File "{tmp_path / "view.html"}", line 3' in text
    assert "<li>{{ u.nmae }}</li>" in text
    assert "AttributeError" in text


def test_render_error_in_a_parent_or_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "base.html").write_text("a\n{% block b %}{% end %}\n{{ boom() }}\n")
    (tmp_path / "inc.html").write_text("\n\n{{ missing_name }}")
    (tmp_path / "child.html").write_text("{% extends 'base.html' %}{% block b %}{% end %}")
    (tmp_path / "user.html").write_text("x\n{% include 'inc.html' %}")
    loader = Loader(str(tmp_path))

    def boom() -> None:
        raise ValueError("in base")

    with pytest.raises(ValueError) as info:
        loader.load("child.html").generate(boom=boom)
    assert (str(tmp_path / "base.html"), 3) in [f[:2] for f in _template_frames(info.value)]
    with pytest.raises(NameError) as name_info:
        loader.load("user.html").generate()
    assert (str(tmp_path / "inc.html"), 3) in [f[:2] for f in _template_frames(name_info.value)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="column positions are Python 3.11's")
@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("<p>{{ user.nmae }}</p>", "user.nmae"),
        ("<i>{% if  user.flag %}{% end %}", "user.flag"),
        ("{% for x in xs %}{% set y = x.v %}{% end %}", "x.v"),
        ("{% try %}{{ 1 // 0 }}{% except   user.E %}{% end %}", "user.E"),
        ("\u00e9\u00e9 {{ user.nmae }}", "user.nmae"),
    ],
)
def test_the_traceback_column_points_into_the_template_line(source: str, text: str) -> None:
    with pytest.raises(AttributeError) as info:
        Template(source, name="col.html").generate(user=1, xs=[1])
    frames = traceback.extract_tb(info.value.__traceback__)
    (frame,) = [f for f in frames if f.name == "<template>"]
    # Python counts columns in UTF-8 bytes (the traceback shows them as characters).
    start = len(source[: source.index(text)].encode())
    assert (frame.lineno, frame.colno, frame.end_colno) == (1, start, start + len(text))


def test_render_error_in_a_dict_template_shows_its_source_line() -> None:
    loader = DictLoader({"d.html": "one\ntwo {{ 1 / zero }}\n"})
    with pytest.raises(ZeroDivisionError) as info:
        loader.load("d.html").generate(zero=0)
    assert ("d.html", 2, "two {{ 1 / zero }}") in _template_frames(info.value)


def test_an_error_in_the_loop_machinery_maps_to_its_line() -> None:
    with pytest.raises(TypeError) as info:
        Template("a\n\n{% for x in n %}{% end %}", name="loop.txt").generate(n=5)
    assert ("loop.txt", 3) in [f[:2] for f in _template_frames(info.value)]


# -- loaders, inheritance, includes ---------------------------------------------------


def test_extends_blocks_and_includes(tmp_path: Path) -> None:
    (tmp_path / "base.html").write_text(
        "<title>{% block title %}Base{% end %}</title>{% block body %}none{% end %}"
    )
    (tmp_path / "mid.html").write_text(
        "{% extends 'base.html' %}{% block title %}Mid{% end %}dropped"
        "{% block body %}[{% block inner %}mid{% end %}]{% end %}"
    )
    (tmp_path / "leaf.html").write_text(
        "{% extends \"mid.html\" %}{% block inner %}{% include 'part.html' %}{% end %}"
    )
    (tmp_path / "part.html").write_text("{{ who }}{% set seen = True %}")
    loader = Loader(str(tmp_path))
    assert loader.load("leaf.html").generate(who="<me>") == b"<title>Mid</title>[&lt;me&gt;]"
    assert loader.load("base.html").generate() == b"<title>Base</title>none"


def test_an_include_shares_the_including_templates_variables() -> None:
    loader = DictLoader(
        {
            "main.html": "{% set a = 1 %}{% include 'inc.html' %}{{ b }}",
            "inc.html": "{{ a }}{% set b = 2 %}",
        }
    )
    assert loader.load("main.html").generate() == b"12"


def test_block_escaping_follows_the_file_that_wrote_it() -> None:
    loader = DictLoader(
        {
            "base.html": "{% autoescape None %}{{ v }}|{% block b %}{% end %}",
            "child.html": "{% extends 'base.html' %}{% block b %}{{ v }}{% end %}",
        }
    )
    assert loader.load("child.html").generate(v="<") == b"<|&lt;"


def test_relative_names_resolve_from_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(
        "{% include 'part.html' %}+{% include '../top.html' %}"
    )
    (tmp_path / "sub" / "part.html").write_text("part")
    (tmp_path / "top.html").write_text("top")
    loader = Loader(str(tmp_path))
    assert loader.resolve_path("part.html", "sub/page.html") == "sub/part.html"
    assert loader.load("sub/page.html").generate() == b"part+top"
    d = DictLoader({"a/b.html": "{% include 'c.html' %}", "a/c.html": "c"})
    assert d.resolve_path("c.html", "a/b.html") == "a/c.html"
    assert d.load("a/b.html").generate() == b"c"


def test_loader_caches_and_reset_rereads(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text("one")
    loader = Loader(str(tmp_path))
    first = loader.load("p.html")
    assert loader.load("p.html") is first
    page.write_text("two")
    assert loader.load("p.html").generate() == b"one"
    loader.reset()
    assert loader.load("p.html").generate() == b"two"


def test_loader_settings_reach_its_templates() -> None:
    loader = DictLoader(
        {"a.txt": "{{ v }} {{ k }}   x"}, autoescape=None, namespace={"k": "K"}, whitespace="single"
    )
    assert loader.load("a.txt").generate(v="<") == b"< K x"


def test_a_cycle_is_a_parse_error_not_a_recursion() -> None:
    loader = DictLoader({"a.html": "{% include 'b.html' %}", "b.html": "{% include 'a.html' %}"})
    with pytest.raises(ParseError, match="includes itself"):
        loader.load("a.html")
    selfish = DictLoader({"s.html": "{% extends 's.html' %}"})
    with pytest.raises(ParseError, match="extends or includes itself"):
        selfish.load("s.html")


def test_a_loader_written_for_tornado_keeps_tornado_syntax_for_every_name() -> None:
    class MemoryLoader(BaseLoader):
        def resolve_path(self, name: str, parent_path: str | None = None) -> str:
            return name

        def _create_template(self, name: str) -> Template:
            return Template("{% if True %}tornado {{ __name__ }}{% end %}", name=name, loader=self)

    assert MemoryLoader().load("page.j2").generate() == b"tornado page_j2"


def test_base_loader_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        BaseLoader().load("x")


def test_loader_load_is_safe_from_threads() -> None:
    loader = DictLoader({"t.html": "{% for i in range(n) %}{{ i }}{% end %}"})
    results: list[bytes] = []

    def work() -> None:
        results.append(loader.load("t.html").generate(n=3))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"012"] * 8


# -- Jinja2-syntax templates through the same loaders ---------------------------------


def test_jinja2_syntax_is_chosen_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "base.j2").write_text("<h1>{% block t %}{% endblock %}</h1>\n")
    (tmp_path / "page.jinja2").write_text(
        "{% extends 'base.j2' %}"
        "{% block t %}{{ v }} {{ xhtml_escape is defined }} {{ k }}{% endblock %}"
    )
    loader = Loader(str(tmp_path), namespace={"k": "K"})
    out = loader.load("page.jinja2").generate(v="<b>")
    assert out == b"<h1>&lt;b&gt; True K</h1>\n"


def test_syntax_keyword_overrides_the_file_name() -> None:
    source = {"p.html": "{% for x in xs %}{{ x }}{% endfor %}"}
    assert DictLoader(source, syntax="jinja2").load("p.html").generate(xs=[1, 2]) == b"12"
    with pytest.raises(ParseError):
        DictLoader(source, syntax="tornado").load("p.html")
    with pytest.raises(ValueError, match="syntax must be one of auto, tornado, jinja2"):
        DictLoader(source, syntax="django")


def test_jinja2_syntax_autoescape_off_and_reset() -> None:
    source = {"p.j2": "{{ v }}"}
    loader = DictLoader(source, autoescape=None)
    assert loader.load("p.j2").generate(v="<") == b"<"
    source["p.j2"] = "new {{ v }}"
    loader.reset()
    assert loader.load("p.j2").generate(v="<") == b"new <"


def test_jinja2_names_may_not_climb_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "secret.j2").write_text("secret")
    (tmp_path / "t" / "p.j2").write_text("{% include '../secret.j2' %}")
    import jinja2

    with pytest.raises(jinja2.TemplateNotFound):
        Loader(str(tmp_path / "t")).load("p.j2").generate()


def test_jinja2_syntax_errors_are_parse_errors_and_render_errors_name_the_file() -> None:
    loader = DictLoader({"bad.j2": "a\n{% for x in %}", "boom.j2": "a\nb {{ 1 // zero }}"})
    with pytest.raises(ParseError) as info:
        loader.load("bad.j2")
    assert (info.value.filename, info.value.lineno) == ("bad.j2", 2)
    with pytest.raises(ZeroDivisionError) as error:
        loader.load("boom.j2").generate(zero=0)
    assert ("boom.j2", 2) in [f[:2] for f in _template_frames(error.value)]


def test_a_tornado_template_cannot_include_a_jinja2_one() -> None:
    loader = DictLoader({"a.html": "{% include 'b.j2' %}", "b.j2": "x"})
    with pytest.raises(ParseError, match="Jinja2-syntax"):
        loader.load("a.html")


def test_module_exports() -> None:
    assert set(template.__all__) == {
        "BaseLoader",
        "DictLoader",
        "Loader",
        "ParseError",
        "Template",
        "filter_whitespace",
    }
    assert os.path.basename(template.__file__ or "") == "template.py"
