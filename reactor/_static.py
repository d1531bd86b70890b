"""StaticFileHandler: files from a directory, with validators and byte ranges.

Some facts about serving files over HTTP, each one a test in
``tests/test_static_ranges.py`` or ``tests/conformance/test_web_static.py``:

- A URL path names a file only after decoding: ``%2e%2e`` is ``..`` and
  ``%2f`` is ``/`` by the time the handler sees its argument, so the root
  check runs on the decoded, joined and normalized path, never on the URL.
- ``os.path.join(root, "/etc/passwd")`` is ``/etc/passwd``: an absolute
  argument discards the root. The root check catches it like ``../``.
- The check on the path as written says nothing about symlinks; the path is
  resolved (``os.path.realpath``) and checked again, against
  ``allowed_symlink_directory`` (default: the root).
- A NUL byte cannot be in a POSIX file name, and ``os.stat`` raises
  ``ValueError`` (not ``OSError``) on one: answered 404 before any stat.
- Only regular files are read: a FIFO blocks ``open`` until a writer comes,
  and ``/dev/zero`` never ends.
- Byte ranges (RFC 9110 section 14): ``bytes=first-last`` is inclusive,
  ``bytes=-N`` is the last N bytes, ``bytes=N-`` runs to the end. A range
  that starts at or past the end, a ``last`` below ``first`` (an invalid
  spec, which section 14.2 lets a server reject) and ``bytes=-0`` are
  answered 416 with ``Content-Range: bytes */SIZE``. A header in another
  unit, or malformed, is ignored (section 14.2: the whole file, 200), and so
  is a request for several ranges, as Tornado does. A range that covers the
  whole file is answered 200, not 206 (Chrome refuses ``206`` to
  ``bytes=0-`` for audio).
- Validators (RFC 9110 section 13.2.2): when ``If-None-Match`` is present,
  ``If-Modified-Since`` is ignored. ``If-None-Match`` compares weakly and
  ``*`` matches any current representation. ``If-Range`` (section 13.1.5)
  grants the range only to the version it names (the strong entity-tag, or
  exactly ``Last-Modified``); for any other, the whole file, so that a
  resumed download never splices two versions.
- A file can change between its stat and its last read: what is sent stops
  at the Content-Length announced, and a client that leaves is noticed at
  the next write, which ends the response and closes the file.
- A redirect to ``//host/path`` (or ``/\\host/path``, which browsers read
  the same) leaves the site (CVE-2023-28370): the slash-adding redirect for
  a directory refuses such paths with 403.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import mimetypes
import os
import re
import stat
import threading
from collections.abc import Awaitable, Generator
from typing import Any

from reactor.iostream import StreamClosedError
from reactor.log import gen_log
from reactor.web import HTTPError, RequestHandler

__all__ = ["StaticFileHandler"]

_CHUNK_SIZE = 64 * 1024

# A file position wider than this many digits is past the end of any file
# (10**18 bytes is an exabyte); comparing it as a flag keeps a header of
# thousands of digits from costing a big-integer conversion.
_MAX_POSITION_DIGITS = 18
_DIGITS = re.compile(r"[0-9]+")

# Tabs, newlines and carriage returns are removed from anywhere in a URL, and
# C0 controls and spaces from its ends, by browsers (WHATWG URL) before
# parsing; a backslash is a slash in http(s) URLs.
_URL_IGNORED = "".join(chr(i) for i in range(0x21))


class _TooLargeToHash(ValueError):
    """The file is over ``MAX_VERSION_CONTENT_SIZE``: it gets no version."""


class RangeNotSatisfiable(Exception):
    """The Range header asks for no byte of the file: answer 416."""


def _position(digits: str) -> int | None:
    """A byte position, or None for one too wide to be inside any file."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > _MAX_POSITION_DIGITS:
        return None
    return int(digits)


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The slice ``[start, end)`` of a ``size``-byte file that ``Range: header`` asks for.

    Returns None when the whole file is to be sent with 200: the header is in
    a unit other than ``bytes``, malformed, asks for more than one range, or
    covers the whole file. Raises :class:`RangeNotSatisfiable` when the
    answer is 416 (RFC 9110 section 15.5.17).
    """
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    # Without a dash, "bytes=N" reads as "bytes=N-", as in Tornado.
    first, _, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if "," in last:
        return None
    if (first and not _DIGITS.fullmatch(first)) or (last and not _DIGITS.fullmatch(last)):
        return None
    if not first:
        if not last:
            return None
        suffix = _position(last)
        if suffix == 0:
            # RFC 9110 section 14.1.3: a suffix-length of zero selects nothing.
            raise RangeNotSatisfiable
        start = 0 if suffix is None else max(0, size - suffix)
        end = size
    else:
        start_or_huge = _position(first)
        if start_or_huge is None:
            raise RangeNotSatisfiable
        start = start_or_huge
        end = size
        if last:
            last_pos = _position(last)
            if last_pos is not None:
                if last_pos < start:
                    # Section 14.1.1: an invalid byte-range-spec; section 14.2
                    # lets the server reject it, as Tornado does.
                    raise RangeNotSatisfiable
                # Clients ask for more than there is to cap a download: the
                # range ends at the end of the file (section 14.1.2).
                end = min(last_pos + 1, size)
    if start >= size:
        raise RangeNotSatisfiable
    if start == 0 and end == size:
        return None
    return start, end


def content_range(start: int, end: int, size: int) -> str:
    """The ``Content-Range`` value of the slice ``[start, end)`` of ``size`` bytes."""
    return f"bytes {start}-{end - 1}/{size}"


def is_protocol_relative(url: str) -> bool:
    """True if a browser would read ``url`` as ``//host/...`` (another site)."""
    url = url.strip(_URL_IGNORED).replace("\t", "").replace("\n", "").replace("\r", "")
    return url.replace("\\", "/").startswith("//")


def inside(directory: str, path: str) -> bool:
    """True if ``path`` is ``directory`` or below it (both absolute and normalized).

    What ``os.path.commonpath([directory, path]) == directory`` says, for
    normalized paths, at a thirtieth of its cost: a prefix that ends at a
    separator, so that ``/srv/www2`` is not inside ``/srv/www``.
    """
    if os.name == "nt":
        directory, path = os.path.normcase(directory), os.path.normcase(path)
    if path == directory:
        return True
    if not directory.endswith(os.sep):  # only the filesystem root ends with one
        directory += os.sep
    return path.startswith(directory)


class StaticFileHandler(RequestHandler):
    """Serves the files below a directory: ``(r"/static/(.*)", StaticFileHandler, {"path": root})``.

    ``Application(static_path=...)`` mounts one at ``static_url_prefix``
    (default ``/static/``), with ``static_handler_class`` and
    ``static_handler_args`` settings. The route's first group is the file's
    path below ``path``. ``default_filename`` (e.g. ``"index.html"``) is
    served for a directory, after a redirect that adds its trailing slash;
    without it a directory is 403.

    A path outside the root (``..``, an absolute path, a symlink pointing out)
    is 403, a missing file 404. Responses carry ``Accept-Ranges``, an
    ``Etag`` (the file's content hash), ``Last-Modified`` and a
    ``Content-Type``; ``If-None-Match`` and ``If-Modified-Since`` give 304,
    and a ``Range`` 206 or 416. A URL with ``?v=`` (as `make_static_url`
    builds) is cached by the browser for `CACHE_MAX_AGE`. A file is sent in
    64 KiB chunks, each waiting for the one before to reach the kernel, so a
    file of any size holds one chunk of memory per response.

    Symlinks may point anywhere inside ``allowed_symlink_directory`` (one
    directory or a list; default: ``path``). `make_static_url` does not see
    that setting: it hashes any regular file a symlink under the root names,
    so only trusted people should make symlinks there.

    Subclasses may override the class methods `get_absolute_path`,
    `get_content`, `get_content_version`, `make_static_url` and `get_version`
    (as class methods), and `validate_absolute_path`, `get_content_size`,
    `get_modified_time`, `get_content_type`, `get_cache_time`,
    `set_extra_headers`, `compute_etag` and `parse_url_path`; instance methods
    may read ``self.path``, ``self.absolute_path`` and ``self.modified``.
    """

    CACHE_MAX_AGE = 86400 * 365 * 10  # ten years, for versioned URLs

    #: The largest file (bytes) `get_content_version` hashes; hashing blocks
    #: the loop, so a larger file has no version (and no Etag).
    MAX_VERSION_CONTENT_SIZE = 64 * 1024 * 1024

    #: How many versions `get_version` remembers (least recently used dropped
    #: first), so that many distinct paths cannot grow the cache unbounded.
    MAX_CACHED_VERSIONS = 10000

    # absolute path -> content hash (None: unreadable), oldest use first.
    _static_hashes: dict[str, str | None] = {}
    _lock = threading.Lock()  # static_url may be called from other threads

    # On the class, not only in initialize(), so that a subclass whose
    # initialize() does not call ours still has the default.
    allowed_symlink_directory: str | list[str] | None = None

    path: str
    # None until get() has validated a path (a subclass's own get() may never).
    absolute_path: str | None = None
    modified: datetime.datetime | None = None
    _stat_result: os.stat_result

    def initialize(
        self,
        path: str,
        default_filename: str | None = None,
        allowed_symlink_directory: str | list[str] | None = None,
    ) -> None:
        self.root = path
        self.default_filename = default_filename
        self.allowed_symlink_directory = allowed_symlink_directory

    @classmethod
    def reset(cls) -> None:
        """Forget every cached version (``static_hash_cache=False`` does so per request)."""
        with cls._lock:
            cls._static_hashes = {}

    def head(self, path: str) -> Awaitable[None]:
        return self.get(path, include_body=False)

    async def get(self, path: str, include_body: bool = True) -> None:
        self.path = self.parse_url_path(path)
        del path  # only self.path from here on
        absolute_path = self.get_absolute_path(self.root, self.path)
        self.absolute_path = self.validate_absolute_path(self.root, absolute_path)
        if self.absolute_path is None:
            return
        self.modified = self.get_modified_time()
        self.set_headers()
        if self.should_return_304():
            self.set_status(304)
            return

        size = self.get_content_size()
        byte_range = None
        range_header = self.request.headers.get("Range")
        if range_header and self._if_range_holds():
            try:
                byte_range = parse_byte_range(range_header, size)
            except RangeNotSatisfiable:
                self.set_status(416)
                self.set_header("Content-Type", "text/plain")
                self.set_header("Content-Range", f"bytes */{size}")
                return
        if byte_range is None:
            start, end = 0, size
        else:
            start, end = byte_range
            self.set_status(206)
            self.set_header("Content-Range", content_range(start, end, size))
        self.set_header("Content-Length", end - start)
        if not include_body:
            return
        if byte_range is None:
            content = self.get_content(self.absolute_path)
        else:
            content = self.get_content(self.absolute_path, start, end)
        chunks = [content] if isinstance(content, bytes) else content
        remaining = end - start
        try:
            for chunk in chunks:
                if len(chunk) >= remaining:
                    # The last chunk, cut at Content-Length should the file
                    # have grown since its stat.
                    self.write(chunk[:remaining])
                    await self.flush()
                    break
                remaining -= len(chunk)
                self.write(chunk)
                # One chunk in flight at a time: the next is read only once
                # this one has reached the kernel.
                await self.flush()
        except StreamClosedError:
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _if_range_holds(self) -> bool:
        """False if ``If-Range`` names another version: send the whole file (RFC 9110 13.1.5).

        An entity-tag must match strongly (a weak one never does); a date must
        equal ``Last-Modified`` exactly.
        """
        if_range = self.request.headers.get("If-Range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith('"'):
            etag = self.compute_etag()
            return etag is not None and etag == if_range
        if if_range.startswith("W/"):
            return False
        if self.modified is None:
            return False
        try:
            date = email.utils.parsedate_to_datetime(if_range)
        except (TypeError, ValueError):
            return False
        if date.tzinfo is None:
            date = date.replace(tzinfo=datetime.timezone.utc)
        return date == self.modified

    def compute_etag(self) -> str | None:
        """The file's version in quotes, so that a range answer has the whole file's Etag.

        Without a file (a subclass's get() that writes its own body), the
        hash of the body, as for any handler.
        """
        if self.absolute_path is None:
            return super().compute_etag()
        version = self._get_cached_version(self.absolute_path)
        if not version:
            return None
        return f'"{version}"'

    def set_headers(self) -> None:
        """Set the content and caching headers of the response."""
        self.set_header("Accept-Ranges", "bytes")
        self.set_etag_header()
        if self.modified is not None:
            self.set_header("Last-Modified", self.modified)
        content_type = self.get_content_type()
        if content_type:
            self.set_header("Content-Type", content_type)
        cache_time = self.get_cache_time(self.path, self.modified, content_type)
        if cache_time > 0:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                seconds=cache_time
            )
            self.set_header("Expires", expires)
            self.set_header("Cache-Control", f"max-age={cache_time}")
        self.set_extra_headers(self.path)

    def should_return_304(self) -> bool:
        """True if the request's validators say the client's copy is current (RFC 9110 13.2.2)."""
        # If-None-Match, when present, decides alone; If-Modified-Since is
        # then ignored (13.1.3).
        if self.request.headers.get("If-None-Match"):
            return self.check_etag_header()
        since = self.request.headers.get("If-Modified-Since")
        if since is None or self.modified is None:
            return False
        try:
            date = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # not an HTTP-date: ignored
        if date.tzinfo is None:
            date = date.replace(tzinfo=datetime.timezone.utc)
        return date >= self.modified

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        """The absolute location of ``path`` below ``root``.

        Raises `HTTPError` (403) if ``path`` as written leads outside
        ``root`` (``../``, an absolute path); symlinks are checked by
        `validate_absolute_path`. This check also keeps `get_version` (and
        so `static_url`) from reading files outside the root.
        """
        absolute_path = os.path.abspath(os.path.join(root, path))
        cls._check_in_root(root, absolute_path, path)
        return absolute_path

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """Check ``absolute_path`` (from `get_absolute_path`) and return the file to serve.

        Raises `HTTPError`: 403 outside the root (as written, or through a
        symlink), for a directory without ``default_filename`` and for
        anything but a regular file; 404 for a missing file. For a directory
        whose URL lacks its trailing slash it redirects and returns None.
        The result (symlinks resolved) is ``self.absolute_path``.
        """
        if "\x00" in absolute_path:
            # os.stat raises ValueError on a NUL; no such file can exist.
            raise HTTPError(404, "%s contains a NUL byte", self.path.replace("\x00", "\\x00"))
        root = self._check_in_root(root, absolute_path, self.path)
        allowed = self.allowed_symlink_directory or root
        allowed_directories = [allowed] if isinstance(allowed, str) else list(allowed)
        # The check above ran on the path as written; this one on the file
        # it names. They stay two: allowed_symlink_directory may be wider
        # than the root, and must not let a ../ through.
        absolute_path = self._resolve_symlink_target(absolute_path, allowed_directories, self.path)
        if self.default_filename is not None and os.path.isdir(absolute_path):
            # request.path, not self.path: the route may have consumed a prefix.
            if not self.request.path.endswith("/"):
                if is_protocol_relative(self.request.path):
                    # CVE-2023-28370: a Location of //host/ (or /\host/)
                    # sends the browser to another site.
                    raise HTTPError(403, "cannot redirect path with two initial slashes")
                self.redirect(self.request.path + "/", permanent=True)
                return None
            absolute_path = self._resolve_symlink_target(
                os.path.join(absolute_path, self.default_filename),
                allowed_directories,
                self.path,
            )
        # One stat, kept for the headers, so that they describe the file
        # that was validated.
        self._stat_result = self._stat_regular_file(absolute_path, self.path)
        return absolute_path

    @staticmethod
    def _stat_regular_file(absolute_path: str, path_message: str) -> os.stat_result:
        """``os.stat`` of a regular file; `HTTPError` 404 if missing, 403 if not a file."""
        try:
            result = os.stat(absolute_path)
        except (OSError, ValueError):
            raise HTTPError(404) from None
        if not stat.S_ISREG(result.st_mode):
            # Directories, devices, FIFOs (whose open blocks), sockets.
            raise HTTPError(403, "%s is not a file", path_message)
        return result

    @staticmethod
    def _check_in_root(root: str, absolute_path: str, path_message: str) -> str:
        """The absolute root; `HTTPError` 403 if ``absolute_path`` is not in it."""
        root = os.path.abspath(root)
        if not inside(root, absolute_path):
            raise HTTPError(403, "%s is not in root static directory", path_message)
        if os.name == "nt" and ":" in absolute_path[len(root) :]:
            # file.txt:stream names an NTFS alternate data stream.
            raise HTTPError(403, "%s is not a file", path_message)
        return root

    @staticmethod
    def _resolve_symlink_target(
        absolute_path: str, allowed_directories: list[str], path_message: str
    ) -> str:
        """``absolute_path`` with symlinks resolved; 403 outside every allowed directory.

        A check of one moment: a path swapped for a symlink after it is no
        concern of this method (filesystem permissions are).
        """
        resolved = os.path.realpath(absolute_path)
        for directory in allowed_directories:
            # A resolved path has no symlink in it: if it lies below the
            # directory as written, that directory is its own real path, and
            # resolving it too would find nothing new. Otherwise the
            # directory may be reached through a symlink (a /var/www that
            # links to /srv/www): compare with where it really is.
            if inside(os.path.abspath(directory), resolved) or inside(
                os.path.realpath(directory), resolved
            ):
                return resolved
        # The same answer as a ../ escape: the client learns nothing more.
        raise HTTPError(403, "%s is not in root static directory", path_message)

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Generator[bytes, None, None]:
        """The bytes ``[start, end)`` of the file at ``abspath``, in 64 KiB chunks.

        Overrides may return ``bytes`` or an iterator of them. Raises
        `HTTPError` if ``abspath`` is not a regular file.
        """
        cls._stat_regular_file(abspath, abspath)
        with open(abspath, "rb") as file:
            if start:
                file.seek(start)
            remaining = None if end is None else end - (start or 0)
            while remaining is None or remaining > 0:
                want = _CHUNK_SIZE if remaining is None else min(_CHUNK_SIZE, remaining)
                chunk = file.read(want)
                if not chunk:
                    return  # the file shrank: what there is has been sent
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    @classmethod
    def get_content_version(cls, abspath: str) -> str:
        """The version of the file at ``abspath``: the SHA-512 of its content.

        Raises `ValueError` for content over `MAX_VERSION_CONTENT_SIZE`.
        """
        content = cls.get_content(abspath)
        chunks = [content] if isinstance(content, bytes) else content
        hasher = hashlib.sha512()
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > cls.MAX_VERSION_CONTENT_SIZE:
                    raise _TooLargeToHash(
                        f"content is larger than MAX_VERSION_CONTENT_SIZE "
                        f"({cls.MAX_VERSION_CONTENT_SIZE} bytes)"
                    )
                hasher.update(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return hasher.hexdigest()

    def _stat(self) -> os.stat_result:
        assert self.absolute_path is not None
        # validate_absolute_path stats once per request; a subclass that
        # replaced it without calling ours gets its stat here.
        try:
            return self._stat_result
        except AttributeError:
            self._stat_result = os.stat(self.absolute_path)
            return self._stat_result

    def get_content_size(self) -> int:
        """The size in bytes of ``self.absolute_path``."""
        return self._stat().st_size

    def get_modified_time(self) -> datetime.datetime | None:
        """When ``self.absolute_path`` last changed (aware, whole seconds), or None."""
        return datetime.datetime.fromtimestamp(int(self._stat().st_mtime), datetime.timezone.utc)

    def get_content_type(self) -> str:
        """The ``Content-Type`` for ``self.absolute_path``, from its name."""
        assert self.absolute_path is not None
        mime_type, encoding = mimetypes.guess_type(self.absolute_path)
        if encoding == "gzip":
            # RFC 6713: a .gz file is served as itself, not as a
            # Content-Encoding of what it holds.
            return "application/gzip"
        if encoding is not None or mime_type is None:
            return "application/octet-stream"
        return mime_type

    def set_extra_headers(self, path: str) -> None:
        """For subclasses to add headers to the response."""

    def get_cache_time(self, path: str, modified: datetime.datetime | None, mime_type: str) -> int:
        """Seconds the response may be cached: `CACHE_MAX_AGE` with ``?v=``, else 0.

        0 leaves the choice to the browser's heuristics.
        """
        return self.CACHE_MAX_AGE if "v" in self.request.arguments else 0

    @classmethod
    def make_static_url(
        cls, settings: dict[str, Any], path: str, include_version: bool = True
    ) -> str:
        """The URL (relative to this host) of static ``path``, with ``?v=VERSION`` if it has one.

        ``settings`` is `Application.settings`. Overrides need only accept
        ``(settings, path)``; `static_url` passes its other keyword arguments
        through.
        """
        url: str = settings.get("static_url_prefix", "/static/") + path
        if not include_version:
            return url
        version = cls.get_version(settings, path)
        return f"{url}?v={version}" if version else url

    def parse_url_path(self, url_path: str) -> str:
        """The path below the root that ``url_path`` (the route's group) names.

        The inverse of `make_static_url`.
        """
        if os.path.sep != "/":
            url_path = url_path.replace("/", os.path.sep)
        return url_path

    @classmethod
    def get_version(cls, settings: dict[str, Any], path: str) -> str | None:
        """The version string of static ``path`` (below ``settings["static_path"]``), or None.

        ``path`` should name a known static file, never come from a request:
        a version costs a read of the file and a cache entry. Cached (up to
        `MAX_CACHED_VERSIONS`) until `reset`.
        """
        return cls._get_cached_version(cls.get_absolute_path(settings["static_path"], path))

    @classmethod
    def _get_cached_version(cls, abs_path: str) -> str | None:
        with cls._lock:
            versions = cls._static_hashes
            if abs_path in versions:
                version = versions[abs_path] = versions.pop(abs_path)  # now most recent
            else:
                try:
                    version = cls.get_content_version(abs_path)
                except _TooLargeToHash as e:
                    # A limit chosen by the application, not a failure.
                    gen_log.warning("No version for static file %r: %s", abs_path, e)
                    version = None
                except Exception as e:
                    gen_log.error("Could not open static file %r: %s", abs_path, e)
                    version = None
                while versions and len(versions) >= cls.MAX_CACHED_VERSIONS:
                    del versions[next(iter(versions))]
                versions[abs_path] = version
            return version or None
