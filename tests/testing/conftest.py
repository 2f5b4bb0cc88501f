"""A testing service on a fresh database (SQLite or PostgreSQL), fed residents' events as the consumer would."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from contracts import roles as r
from juwei.auth import issue_key
from juwei.callers import Grant, Holder
from juwei.consumer import Delivery
from juwei.events import Envelope, dump_json, utcnow
from juwei.service import Runtime, create_app
from juwei.settings import Settings
from juwei.store import inbox_table
from services.testing.app import service
from tests.sealing import HEALTH_SEAL
from tests.testing.compound import Compound, make_compound

TODAY = date(2022, 4, 12)
SAME = "same compound"
PROBLEM = "application/problem+json"


def make_testing(database_url: str, data_dir: Path, kafka: str = "127.0.0.1:1", today: date = TODAY) -> Runtime:
    runtime = Runtime(
        service, Settings(kafka_bootstrap=kafka, today=today, data_dir=data_dir), database_url=database_url
    )
    runtime.migrate()
    return runtime


def receive(runtime: Runtime, envelopes: Iterable[Envelope], group: str = "juwei-testing") -> None:
    """What the consumer does with records from ``juwei.residents``: inbox row, then the handler, one transaction."""
    with runtime.database.unit_of_work() as session:
        for envelope in envelopes:
            seq = session.execute(
                insert(inbox_table)
                .returning(inbox_table.c.seq)
                .values(
                    consumer=group,
                    event_id=envelope.id,
                    type=envelope.type,
                    envelope=dump_json(envelope.to_cloudevent()).decode(),
                    received_at=utcnow(),
                )
            ).scalar_one()
            keys = HEALTH_SEAL.sealed_keys(runtime, envelope.id)
            runtime.handle_received(session, Delivery(envelope, seq, "juwei.residents", keys))


@dataclass
class Testing:
    """The service under test, its client and shortcuts for keys and requests in compound c1."""

    __test__ = False  # not a test class, whatever its name says
    client: TestClient
    runtime: Runtime
    compound: str = "c1"
    _staff: dict[str, str] = field(default_factory=dict)

    def key(
        self, role: str, buildings: list[str] | None = None, compound: str | None = SAME, grant: Grant | None = None
    ) -> dict[str, str]:
        """Headers carrying a new API key of that role and scope (by default: this compound)."""
        scope = self.compound if compound == SAME else compound
        holder = Holder("system", f"test {role}")
        with self.runtime.database.unit_of_work() as session:
            return {"X-API-Key": issue_key(session, role, scope, buildings, holder=holder, grant=grant).key}

    @property
    def staff(self) -> dict[str, str]:
        """One committee staff key, issued on first use."""
        if not self._staff:
            self._staff = self.key(r.COMMITTEE_STAFF)
        return self._staff

    def point_key(self, point: str) -> dict[str, str]:
        answer = self.client.post(f"/compounds/{self.compound}/points/{point}/keys", headers=self.staff)
        assert answer.status_code == 201, answer.text
        return {"X-API-Key": answer.json()["key"]}

    def household_key(self, household: str) -> dict[str, str]:
        answer = self.client.post(f"/compounds/{self.compound}/households/{household}/keys", headers=self.staff)
        assert answer.status_code == 201, answer.text
        return {"X-API-Key": answer.json()["key"]}

    def ok(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        answer = self.client.request(
            method, f"/compounds/{self.compound}{url}", headers=headers or self.staff, **kwargs
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def status(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> int:
        answer = self.client.request(method, f"/compounds/{self.compound}{url}", headers=headers, **kwargs)
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == PROBLEM, answer.text
        return answer.status_code

    def problem(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, str]:
        answer = self.client.request(
            method, f"/compounds/{self.compound}{url}", headers=headers or self.staff, **kwargs
        )
        assert answer.status_code >= 400, answer.text
        assert answer.headers["content-type"] == PROBLEM, answer.text
        return answer.status_code, answer.json()["type"].removeprefix("urn:juwei:problem:")


def small_compound(buildings: int = 3, residents: int = 120, bedridden_share: float = 0.02) -> Compound:
    return make_compound(
        "c1",
        buildings=buildings,
        residents=residents,
        floors=(6, 8),
        rooms_per_floor=4,
        bedridden_share=bedridden_share,
        seed=7,
    )


@pytest.fixture
def testing(new_database, tmp_path: Path) -> Iterator[Testing]:
    runtime = make_testing(new_database("testing"), tmp_path)
    with TestClient(create_app(runtime, background=False)) as client:
        yield Testing(client, runtime)
    runtime.database.dispose()


def open_points(testing: Testing, count: int, throughput: float = 2) -> None:
    for n in range(1, count + 1):
        testing.ok(
            "POST",
            "/points",
            json={"point": f"p{n}", "name": f"Point {n}", "location": f"gate {n}", "throughput": throughput},
        )
