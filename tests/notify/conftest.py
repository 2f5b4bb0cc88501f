"""A notify service on a fresh database, residents events fed to it as the consumer would, fake platforms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from contracts.residents import BuildingRegistered, HouseholdRegistered, RepresentativeChosen
from demo.sinks import Mailbox, Platforms
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.consumer import Delivery
from juwei.events import DomainEvent, Envelope, dump_json, new_event_id, utcnow
from juwei.service import Runtime, ServiceDefinition, create_app
from juwei.settings import Settings
from juwei.store import inbox_table
from services.notify.app import service
from services.notify.dispatch import Dispatcher, DispatchPolicy

TODAY = date(2022, 4, 10)
# Fast enough for tests: retries after a tenth of a second, a rate-limited bot rests one second.
FAST = DispatchPolicy(
    tick=0.05,
    lease_seconds=5,
    http_timeout=5,
    retry_base=0.05,
    retry_cap=0.5,
    max_attempts=4,
    workers=4,
    rate_limit_pause={k: 1.0 for k in ("wecom", "dingtalk", "feishu", "email", "webhook")},
)


def make_notify(
    database_url: str, data_dir: Path, kafka: str = "127.0.0.1:1", definition: ServiceDefinition = service
) -> Runtime:
    runtime = Runtime(
        definition, Settings(kafka_bootstrap=kafka, today=TODAY, data_dir=data_dir), database_url=database_url
    )
    runtime.migrate()
    return runtime


def envelope(event: DomainEvent, compound: str, service_name: str = "residents", subject: str = "s-1") -> Envelope:
    return Envelope(
        id=new_event_id(),
        source=f"/juwei/{service_name}",
        type=event.type_name(),
        subject=subject,
        time=utcnow(),
        data=event.model_dump(mode="json", exclude=set(event.private_fields) or None),
        compound=compound,
        streamversion=1,
        building=event.building_id(),
    )


def receive(runtime: Runtime, *envelopes: Envelope, topic: str = "juwei.residents") -> None:
    """Hand events to notify exactly as its consumer does: inbox row and effects in one transaction."""
    with runtime.database.unit_of_work() as session:
        for env in envelopes:
            seq = session.execute(
                insert(inbox_table)
                .returning(inbox_table.c.seq)
                .values(
                    consumer=runtime.group,
                    event_id=env.id,
                    type=env.type,
                    envelope=dump_json(env.to_cloudevent()).decode(),
                    received_at=utcnow(),
                )
            ).scalar_one()
            runtime.handle_received(session, Delivery(env, seq, topic))


def compound_events(compound: str, buildings: int = 3, households: int = 4) -> list[Envelope]:
    """Buildings "1".."n", each with ``households`` households that have chosen a representative."""
    out = []
    for b in range(1, buildings + 1):
        building = f"{compound}:{b}"
        out.append(
            envelope(
                BuildingRegistered(
                    building=building, number=str(b), floors=18, rooms_per_floor=4, lifts=2, lift_capacity=10
                ),
                compound,
                subject=f"building-{building}",
            )
        )
        for h in range(1, households + 1):
            household = f"{compound}:h{b}-{h}"
            out.append(
                envelope(
                    HouseholdRegistered(household=household, building=building, floor=h, room=1),
                    compound,
                    subject=f"household-{household}",
                )
            )
            out.append(
                envelope(
                    RepresentativeChosen(household=household, resident=f"{compound}:r{b}-{h}", building=building),
                    compound,
                    subject=f"household-{household}",
                )
            )
    return out


@dataclass
class Notify:
    client: TestClient
    runtime: Runtime
    dispatcher: Dispatcher

    def key(self, role: str, compound: str | None = "c1", buildings: list[str] | None = None) -> dict[str, str]:
        with self.runtime.database.unit_of_work() as session:
            return {
                "X-API-Key": issue_key(session, role, compound, buildings, holder=Holder("system", f"test {role}")).key
            }

    def attach(
        self,
        building: str,
        kind: str,
        config: dict[str, Any],
        compound: str = "c1",
        language: str = "zh",
        headers: dict[str, str] | None = None,
    ) -> str:
        answer = self.client.post(
            f"/compounds/{compound}/groups/{building}/channels",
            json={"kind": kind, "config": config, "language": language, "label": f"{building}号楼{kind}"},
            headers=headers or self.key("committee-staff", compound),
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["channel"]

    def announce(
        self,
        title: str,
        buildings: list[str] | None = None,
        priority: str = "normal",
        body: str = "",
        compound: str = "c1",
    ) -> dict[str, Any]:
        answer = self.client.post(
            f"/compounds/{compound}/announcements",
            json={"title": title, "body": body, "buildings": buildings, "priority": priority},
            headers=self.key("committee-staff", compound),
        )
        assert answer.status_code == 201, answer.text
        return answer.json()


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    made = Platforms().start()
    yield made
    made.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    made = Mailbox().start()
    yield made
    made.stop()


def open_notify(database_url: str, data_dir: Path, policy: DispatchPolicy = FAST, **kwargs: Any) -> Notify:
    runtime = make_notify(database_url, data_dir)
    dispatcher = Dispatcher(runtime, replace(policy, **kwargs) if kwargs else policy)
    client = TestClient(create_app(runtime, background=False))
    client.__enter__()
    return Notify(client, runtime, dispatcher)


def close_notify(made: Notify) -> None:
    made.client.__exit__(None, None, None)
    made.dispatcher.close()
    made.runtime.database.dispose()


@pytest.fixture
def notify(new_database, tmp_path: Path) -> Iterator[Notify]:
    made = open_notify(new_database("notify"), tmp_path)
    receive(made.runtime, *compound_events("c1"))
    yield made
    close_notify(made)
