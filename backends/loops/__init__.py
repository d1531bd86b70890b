"""Whole loops: backends that implement :class:`reactor.ioloop.IOLoop` themselves.

The asyncio bridge (:mod:`reactor.backends.loops.asyncioloop`) runs reactor's
loop interface on an asyncio event loop (the standard library's or uvloop's).
The pollers that reactor's own loop runs over are in
:mod:`reactor.backends.pollers`.
"""
