"""Static files for :mod:`reactor.web`: :class:`StaticFileHandler`.

``reactor.web`` re-exports :class:`StaticFileHandler`; an Application with
a ``static_path`` setting routes ``static_url_prefix``, ``/favicon.ico``
and ``/robots.txt`` to it (or to the ``static_handler_class`` setting).

This is the skeleton the web layer is built against: the signatures that
``RequestHandler.static_url`` and ``Application`` call.
"""

from __future__ import annotations

from typing import Any

from reactor.web import HTTPError, RequestHandler


class StaticFileHandler(RequestHandler):
    """Serves the files under ``path`` (``initialize(path, default_filename=None)``)."""

    def initialize(self, path: str, default_filename: str | None = None) -> None:
        self.root = path
        self.default_filename = default_filename

    @classmethod
    def reset(cls) -> None:
        """Forget the cached content hashes (the ``static_hash_cache`` setting)."""

    def get(self, path: str, include_body: bool = True) -> None:
        raise HTTPError(404)

    @classmethod
    def make_static_url(
        cls, settings: dict[str, Any], path: str, include_version: bool = True
    ) -> str:
        """The URL of ``path`` under ``static_url_prefix``, with ``?v=`` its
        version unless ``include_version`` is false."""
        url: str = settings.get("static_url_prefix", "/static/") + path
        if not include_version:
            return url
        version_hash = cls.get_version(settings, path)
        if not version_hash:
            return url
        return f"{url}?v={version_hash}"

    @classmethod
    def get_version(cls, settings: dict[str, Any], path: str) -> str | None:
        """The version string of ``path`` for its URL (a content hash), or None."""
        return None
