"""Cookies, signed values and XSRF tokens for :class:`reactor.web.RequestHandler`.

``reactor.web`` re-exports the public names defined here
(``create_signed_value``, ``decode_signed_value``,
``get_signature_key_version``); ``RequestHandler`` inherits
:class:`CookieMixin`.

The contract between the mixin and the handler:

- The mixin reads ``self.request`` (its ``cookies``, ``headers``,
  ``arguments``), ``self.application.settings`` (``cookie_secret``,
  ``key_version``, ``xsrf_cookie_version``, ``xsrf_cookie_kwargs``,
  ``xsrf_cookie_name``), and calls ``self.require_setting(name, feature)``
  and ``self.get_argument``.
- Cookies set during a request are kept in ``self._new_cookie``: ``None``
  until the first ``set_cookie``, then an ``http.cookies.SimpleCookie``.
  ``RequestHandler.flush`` writes one ``Set-Cookie`` header per morsel
  (``morsel.OutputString(None)``) before the response's headers go out, and
  ``RequestHandler.clear`` does not drop them.
- ``check_xsrf_cookie`` raises ``HTTPError(403, ...)``; the handler calls
  it before ``prepare`` for methods other than GET, HEAD and OPTIONS when
  the ``xsrf_cookies`` setting is true.
"""

from __future__ import annotations


class CookieMixin:
    """Cookie, signed-cookie and XSRF methods of ``RequestHandler``."""
