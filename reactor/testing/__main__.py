"""``python -m reactor.testing some.test.module [more.tests ...]``: :func:`reactor.testing.main`."""

from reactor.testing import main

main()
