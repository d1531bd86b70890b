"""Request routing: which delegate answers a request.

A :class:`Router` is an :class:`~reactor.httputil.HTTPServerConnectionDelegate`
that, for each request, builds the :class:`~reactor.httputil.HTTPServerRequest`
from its start line and headers and asks :meth:`Router.find_handler` for the
:class:`~reactor.httputil.HTTPMessageDelegate` that will receive the rest.
:class:`RuleRouter` holds an ordered list of :class:`Rule` (a
:class:`Matcher` and a target); the first rule whose matcher matches and
whose target gives a delegate wins. A target may be another router, an
:class:`~reactor.httputil.HTTPServerConnectionDelegate` (an
``Application``, an ``HTTPServer``'s delegate), or a callable of one
request (as ``HTTPServer`` takes). :class:`reactor.web.Application` is a
router whose targets may also be ``RequestHandler`` classes::

    router = RuleRouter([
        Rule(HostMatches("api\\.example\\.com"), api_app),
        Rule(PathMatches("/legacy/.*"), legacy_wsgi_container),
        (r"/metrics", metrics_callback),  # a (pattern, target, ...) tuple
    ])
    HTTPServer(router).listen(8888)

Facts a maintainer needs:

- A path pattern is anchored at its end (``$`` is added) and matched with
  ``re.match``, so it is anchored at its start too. Its groups are either
  all named (they become ``path_kwargs``) or all positional (``path_args``);
  mixing them is refused when the rule is made. Group values are
  percent-decoded to bytes here; ``RequestHandler`` decodes them to str.
- :meth:`PathMatches.reverse` rebuilds a URL from a pattern made of literal
  text and simple groups; each argument is percent-encoded (no ``+`` for
  spaces; ``/`` is kept), so a reversed argument can never add a query or a
  fragment.
- A request no rule takes is answered 404 by the router itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from functools import partial
from re import Pattern
from typing import Any

from reactor.escape import url_escape, url_unescape, utf8
from reactor.httpserver import _CallableAdapter
from reactor.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
)
from reactor.log import app_log
from reactor.util import import_object, re_unescape

__all__ = [
    "AnyMatches",
    "DefaultHostMatches",
    "HostMatches",
    "Matcher",
    "PathMatches",
    "ReversibleRouter",
    "ReversibleRuleRouter",
    "Router",
    "Rule",
    "RuleRouter",
    "URLSpec",
    "url",
]


class Router(HTTPServerConnectionDelegate):
    """Chooses, per request, the message delegate that answers it."""

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> HTTPMessageDelegate | None:
        """The delegate for ``request`` (its headers have arrived, its body
        not yet), or None when this router has none.

        ``kwargs`` are what a parent router's rule passed on (a matcher's
        ``path_args`` / ``path_kwargs``, a rule's ``target_kwargs``).
        """
        raise NotImplementedError()

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        return _RoutingDelegate(self, server_conn, request_conn)


class ReversibleRouter(Router):
    """A router that can also build the URL of a named rule."""

    def reverse_url(self, name: str, *args: Any) -> str | None:
        """The URL of the rule named ``name`` with ``args`` in its groups, or None."""
        raise NotImplementedError()


class _RoutingDelegate(HTTPMessageDelegate):
    """Routes one request once its headers have arrived, then hands the
    request's events to the chosen delegate."""

    __slots__ = ("delegate", "request_conn", "router", "server_conn")

    def __init__(self, router: Router, server_conn: object, request_conn: HTTPConnection) -> None:
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.router = router
        self.delegate: HTTPMessageDelegate | None = None

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        request = HTTPServerRequest(
            connection=self.request_conn,
            server_connection=self.server_conn,
            start_line=start_line,
            headers=headers,
        )
        delegate = self.router.find_handler(request)
        if delegate is None:
            app_log.debug(
                "Delegate for %s %s request not found", start_line.method, start_line.path
            )
            delegate = _NotFoundDelegate(self.request_conn)
        self.delegate = delegate
        return delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


class _NotFoundDelegate(HTTPMessageDelegate):
    """Answers 404 to a request no rule took."""

    __slots__ = ("connection",)

    def __init__(self, connection: HTTPConnection) -> None:
        self.connection = connection

    def finish(self) -> None:
        self.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 404, "Not Found"),
            HTTPHeaders({"Content-Length": "0"}),
        )
        self.connection.finish()


# A rule as a tuple: (pattern or matcher, target[, target_kwargs[, name]]).
_RuleList = Sequence["Rule | list[Any] | tuple[Any, ...]"]


class RuleRouter(Router):
    """Routes by an ordered list of :class:`Rule`; the first match wins.

    ``rules``: :class:`Rule` objects, or tuples ``(matcher, target,
    [target_kwargs, [name]])`` where a str in the matcher's place is a
    :class:`PathMatches` pattern.
    """

    def __init__(self, rules: _RuleList | None = None) -> None:
        self.rules: list[Rule] = []
        if rules:
            self.add_rules(rules)

    def add_rules(self, rules: _RuleList) -> None:
        """Append ``rules`` (as the constructor takes them)."""
        for rule in rules:
            if isinstance(rule, (tuple, list)):
                if len(rule) not in (2, 3, 4):
                    raise ValueError(
                        f"a rule tuple is (matcher, target[, target_kwargs[, name]]), got {rule!r}"
                    )
                if isinstance(rule[0], (str, Pattern)):
                    rule = Rule(PathMatches(rule[0]), *rule[1:])
                else:
                    rule = Rule(*rule)
            self.rules.append(self.process_rule(rule))

    def add_rule(self, rule: Rule) -> None:
        """Append one rule."""
        self.add_rules([rule])

    def process_rule(self, rule: Rule) -> Rule:
        """Hook: transform each rule as it is added (return the rule to keep)."""
        return rule

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> HTTPMessageDelegate | None:
        for rule in self.rules:
            target_params = rule.matcher.match(request)
            if target_params is not None:
                if rule.target_kwargs:
                    target_params["target_kwargs"] = rule.target_kwargs
                delegate = self.get_target_delegate(rule.target, request, **target_params)
                if delegate is not None:
                    return delegate
        return None

    def get_target_delegate(
        self, target: Any, request: HTTPServerRequest, **target_params: Any
    ) -> HTTPMessageDelegate | None:
        """The delegate for a matched rule's ``target``, or None.

        ``target_params``: the matcher's result, and ``target_kwargs`` when
        the rule has some. A subclass (``Application``) adds its own kinds
        of target.
        """
        if isinstance(target, Router):
            return target.find_handler(request, **target_params)
        if isinstance(target, HTTPServerConnectionDelegate):
            assert request.connection is not None
            return target.start_request(request.server_connection, request.connection)
        if callable(target):
            assert request.connection is not None
            return _CallableAdapter(partial(target, **target_params), request.connection)
        return None


class ReversibleRuleRouter(ReversibleRouter, RuleRouter):
    """A :class:`RuleRouter` whose named rules can be reversed to URLs
    (its own, and those of the reversible routers it routes to)."""

    def __init__(self, rules: _RuleList | None = None) -> None:
        self.named_rules: dict[str, Rule] = {}
        super().__init__(rules)

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if rule.name:
            if rule.name in self.named_rules:
                app_log.warning("Multiple handlers named %s; replacing previous value", rule.name)
            self.named_rules[rule.name] = rule
        return rule

    def reverse_url(self, name: str, *args: Any) -> str | None:
        if name in self.named_rules:
            return self.named_rules[name].matcher.reverse(*args)
        for rule in self.rules:
            if isinstance(rule.target, ReversibleRouter):
                reversed_url = rule.target.reverse_url(name, *args)
                if reversed_url is not None:
                    return reversed_url
        return None


class Rule:
    """A routing rule: a :class:`Matcher` and the ``target`` it routes to.

    ``target``: a router, an ``HTTPServerConnectionDelegate``, a callable of
    one request, a ``RequestHandler`` class (in an ``Application``), or the
    dotted name of one of these (imported now). ``target_kwargs``: passed to
    the target (a handler's ``initialize``). ``name``: for ``reverse_url``.
    """

    def __init__(
        self,
        matcher: Matcher,
        target: Any,
        target_kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(target, str):
            target = import_object(target)
        self.matcher = matcher
        self.target = target
        self.target_kwargs = target_kwargs if target_kwargs else {}
        self.name = name

    def reverse(self, *args: Any) -> str | None:
        return self.matcher.reverse(*args)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.matcher!r}, {self.target!r}, "
            f"kwargs={self.target_kwargs!r}, name={self.name!r})"
        )


class Matcher:
    """Decides whether a request is a rule's."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        """None if ``request`` does not match; else the keyword arguments
        for the rule's target (``{}`` when there are none)."""
        raise NotImplementedError()

    def reverse(self, *args: Any) -> str | None:
        """The URL this matcher matches, with ``args`` filled in, or None."""
        return None


class AnyMatches(Matcher):
    """Matches every request."""

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        return {}


class HostMatches(Matcher):
    """Matches a request whose ``host_name`` matches ``host_pattern`` (a
    regex, anchored at both ends)."""

    def __init__(self, host_pattern: str | Pattern[str]) -> None:
        if isinstance(host_pattern, str):
            if not host_pattern.endswith("$"):
                host_pattern += "$"
            self.host_pattern = re.compile(host_pattern)
        else:
            self.host_pattern = host_pattern

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if self.host_pattern.match(request.host_name):
            return {}
        return None


class DefaultHostMatches(Matcher):
    """Matches when ``application.default_host`` matches ``host_pattern``,
    for requests that did not come through a proxy (no ``X-Real-Ip``)."""

    def __init__(self, application: Any, host_pattern: Pattern[str]) -> None:
        self.application = application
        self.host_pattern = host_pattern

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if "X-Real-Ip" not in request.headers and self.host_pattern.match(
            self.application.default_host
        ):
            return {}
        return None


class PathMatches(Matcher):
    """Matches a request whose path matches ``path_pattern`` (a regex;
    ``$`` is added to a str that lacks it); see the module docstring."""

    def __init__(self, path_pattern: str | Pattern[str]) -> None:
        if isinstance(path_pattern, str):
            if not path_pattern.endswith("$"):
                path_pattern += "$"
            self.regex = re.compile(path_pattern)
        else:
            self.regex = path_pattern
        if self.regex.groupindex and len(self.regex.groupindex) != self.regex.groups:
            raise ValueError(
                "groups in url regexes must either be all named or all positional: "
                f"{self.regex.pattern!r}"
            )
        self._path, self._group_count = self._find_groups()
        # A pattern of plain text matches one path only: routers may look
        # it up by string comparison instead of running the regex.
        body = self.regex.pattern.removeprefix("^").removesuffix("$")
        self._literal: str | None = (
            body if self.regex.flags == re.UNICODE and not _REGEX_SYNTAX.search(body) else None
        )

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        match = self.regex.match(request.path)
        if match is None:
            return None
        if not self.regex.groups:
            return {}
        path_args: list[bytes | None] = []
        path_kwargs: dict[str, bytes | None] = {}
        if self.regex.groupindex:
            path_kwargs = {str(k): _unquote_or_none(v) for k, v in match.groupdict().items()}
        else:
            path_args = [_unquote_or_none(s) for s in match.groups()]
        return {"path_args": path_args, "path_kwargs": path_kwargs}

    def reverse(self, *args: Any) -> str | None:
        if self._path is None:
            raise ValueError(f"Cannot reverse url regex {self.regex.pattern}")
        if len(args) != self._group_count:
            raise ValueError(
                f"{self.regex.pattern!r} takes {self._group_count} arguments, got {len(args)}"
            )
        if not args:
            return self._path
        converted = []
        for arg in args:
            if not isinstance(arg, (str, bytes)):
                arg = str(arg)
            converted.append(url_escape(utf8(arg), plus=False))
        return self._path % tuple(converted)

    def _find_groups(self) -> tuple[str | None, int | None]:
        """The pattern as a ``%s`` template (``/a/([0-9]+)`` -> ``/a/%s``)
        and its group count; ``(None, None)`` if it is not that simple
        (nested groups, or regex syntax outside the groups)."""
        pattern = self.regex.pattern
        if pattern.startswith("^"):
            pattern = pattern[1:]
        if pattern.endswith("$"):
            pattern = pattern[:-1]
        if self.regex.groups != pattern.count("("):
            return None, None  # nested or escaped parentheses: too complex
        pieces = []
        for i, fragment in enumerate(pattern.split("(")):
            if i == 0:
                literal = fragment
                template = ""
            elif ")" in fragment:
                literal = fragment[fragment.index(")") + 1 :]
                template = "%s"
            else:
                return None, None  # a group opened inside another
            try:
                unescaped = re_unescape(literal)
            except ValueError:
                return None, None  # a regex construct, not literal text
            pieces.append(template + unescaped.replace("%", "%%"))
        return "".join(pieces), self.regex.groups


_REGEX_SYNTAX = re.compile(r"[.^$*+?{}\[\]\\|()]")


class URLSpec(Rule):
    """A rule of a path pattern and a handler: ``url(pattern, handler,
    kwargs=None, name=None)`` in an ``Application``'s list.

    ``regex`` is the compiled pattern, ``handler_class`` the target and
    ``kwargs`` its ``initialize`` arguments.
    """

    def __init__(
        self,
        pattern: str | Pattern[str],
        handler: Any,
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        matcher = PathMatches(pattern)
        super().__init__(matcher, handler, kwargs, name)
        self.regex = matcher.regex
        self.handler_class = self.target
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.regex.pattern!r}, {self.handler_class!r}, "
            f"kwargs={self.kwargs!r}, name={self.name!r})"
        )


url = URLSpec


def _unquote_or_none(s: str | None) -> bytes | None:
    """Percent-decode a matched group to bytes (None, an unmatched optional
    group, stays None). ``+`` stays ``+``: this is a path, not a form."""
    if s is None:
        return s
    return url_unescape(s, encoding=None, plus=False)
