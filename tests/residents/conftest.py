"""A residents service on a fresh database (SQLite or PostgreSQL) with today pinned to 10 April 2022."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from juwei.auth import issue_key
from juwei.callers import Grant, Holder
from juwei.service import Runtime, create_app
from juwei.settings import Settings
from services.residents.app import service

TODAY = date(2022, 4, 10)


@dataclass
class Residents:
    client: TestClient
    runtime: Runtime

    def key(
        self, role: str, compound: str | None = "c1", buildings: list[str] | None = None, grant: Grant | None = None
    ) -> dict[str, str]:
        """Headers carrying a new API key of that role and scope."""
        with self.runtime.database.unit_of_work() as session:
            holder = Holder("system", f"test {role}")
            secret = issue_key(session, role, compound, buildings, holder=holder, grant=grant).key
        return {"X-API-Key": secret}


def make_residents(database_url: str, data_dir: Path, kafka: str = "127.0.0.1:1", today: date = TODAY) -> Runtime:
    runtime = Runtime(
        service, Settings(kafka_bootstrap=kafka, today=today, data_dir=data_dir), database_url=database_url
    )
    runtime.migrate()
    return runtime


@pytest.fixture
def residents(new_database, tmp_path: Path) -> Iterator[Residents]:
    runtime = make_residents(new_database("residents"), tmp_path)
    with TestClient(create_app(runtime, background=False)) as client:
        yield Residents(client, runtime)
    runtime.database.dispose()
