"""What one console process holds: its settings, database, key seal, templates and one HTTP client pool."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from console.database import migrate
from console.rendering import Pages
from console.sealing import KeySeal
from console.settings import ConsoleSettings
from juwei.database import Database


@dataclass
class ConsoleRuntime:
    settings: ConsoleSettings
    database: Database
    seal: KeySeal
    pages: Pages
    urls: dict[str, str]
    # One connection pool for every person's calls, per event loop (a server has one; tests may run several).
    _http: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(default_factory=dict)

    @classmethod
    def build(cls, config: ConsoleSettings) -> ConsoleRuntime:
        return cls(
            settings=config,
            database=Database(config.resolved_database_url(), pool_size=5),
            seal=KeySeal(config.resolved_secret()),
            pages=Pages(),
            urls=config.urls(),
        )

    def migrate(self) -> None:
        migrate(self.database)

    def open_http(self) -> httpx.AsyncClient:
        """The pool of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        client = self._http.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                timeout=self.settings.service_timeout_seconds,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=40),
            )
            self._http[loop] = client
        return client

    async def close_http(self) -> None:
        client = self._http.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
