"""The suite's backend selection lives in reactor's pytest plugin
(:mod:`reactor.testing.plugin`), the same one users get: tests that take
``io_loop`` or ``reactor_backend`` run once per backend, narrowed by
``--reactor-backend NAME`` or ``REACTOR_BACKEND``."""
