"""The console's pages, one module per area; each has a ``router``, included by ``console.app`` in this order."""

from __future__ import annotations

from console.pages import exports, overview, register, session

ROUTERS = [session.router, overview.router, register.router, exports.router]
