"""What one console process holds: its settings, database, key seal, templates and one HTTP client pool."""

from __future__ import annotations

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
    # Made when the app starts (one pool for every person's calls), closed when it stops.
    http: httpx.AsyncClient | None = field(default=None)

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
        if self.http is None:
            self.http = httpx.AsyncClient(
                timeout=self.settings.service_timeout_seconds,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=40),
            )
        return self.http
