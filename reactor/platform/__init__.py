"""Tornado's ``tornado.platform`` package: ``reactor.platform.asyncio``."""
