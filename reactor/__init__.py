"""reactor: an asynchronous networking library with interchangeable event loops.

Importing reactor chooses no backend; the first :class:`reactor.ioloop.IOLoop`
does (see :mod:`reactor.backends`).
"""

version = "0.1.0"
version_info = (0, 1, 0, 0)
