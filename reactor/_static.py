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
  ``*`` matches any current representation.
- A redirect to ``//host/path`` (or ``/\\host/path``, which browsers read
  the same) leaves the site (CVE-2023-28370): the slash-adding redirect for
  a directory refuses such paths with 403.
"""

from __future__ import annotations

import os
import re

__all__ = ["RangeNotSatisfiable", "parse_byte_range"]

# A file position wider than this many digits is past the end of any file
# (10**18 bytes is an exabyte); comparing it as a flag keeps a header of
# thousands of digits from costing a big-integer conversion.
_MAX_POSITION_DIGITS = 18
_DIGITS = re.compile(r"[0-9]+")

# Tabs, newlines and carriage returns are removed from anywhere in a URL, and
# C0 controls and spaces from its ends, by browsers (WHATWG URL) before
# parsing; a backslash is a slash in http(s) URLs.
_URL_IGNORED = "".join(chr(i) for i in range(0x21))


class RangeNotSatisfiable(Exception):
    """The Range header asks for no byte of the file: answer 416."""


def _position(digits: str) -> int | None:
    """A byte position, or None for one too wide to be inside any file."""
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
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or "," in last:
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
    """True if absolute, normalized ``path`` is ``directory`` or below it."""
    try:
        return os.path.commonpath([directory, path]) == directory
    except ValueError:  # one relative, or (Windows) another drive
        return False
