"""The console's pages, one module per area; each has a ``router``, included by ``console.app`` in this order."""

from __future__ import annotations

from console.pages import overview, session

ROUTERS = [session.router, overview.router]
