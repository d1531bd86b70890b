"""The pollers: the kernel interfaces that sit below reactor's own loop.

Each module wraps one readiness API (select, poll, epoll, kqueue) in the
:class:`~reactor.backends.pollers.base.Poller` interface that
:class:`reactor.ioloop.PollIOLoop` drives. They are not loops themselves; the
asyncio bridge, which is one, lives in :mod:`reactor.backends.loops`.
"""
