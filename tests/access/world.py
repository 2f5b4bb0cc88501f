"""The four services in one process, wired as Kafka would wire them, for access, hostile-input and privacy tests.

Each service is its real ``ServiceDefinition`` on its own database, served by its real FastAPI app (no
relay, no consumers). ``pump`` plays the broker: it hands every event a service appended to each service
that consumes its topic, as the consumer does (inbox row, handler, one transaction), with the private part
stripped as the relay strips it and the keys of sealed fields in the headers the relay adds. Keys are issued
in all four databases at once, as ``juwei keys create``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import insert

from contracts import roles as r
from contracts.roles import HOLDERS
from juwei.auth import issue_key
from juwei.callers import Grant, Holder
from juwei.consumer import Delivery
from juwei.events import Envelope, dump_json, utcnow
from juwei.service import Runtime, create_app, load_definition
from juwei.settings import Settings
from juwei.store import inbox_table
from services.residents.domain import IMPORT_COLUMNS, id_check_char
from services.residents.importing import BUILDING_COLUMNS
from services.testing.views import key_bindings

SERVICES = ("residents", "supplies", "testing", "notify")
TODAY = date(2022, 4, 12)
PROBLEM = "application/problem+json"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "建国", "桂兰", "志强", "丽娟", "文", "敏", "伟", "芳", "娜娜", "子涵", "浩然"]


class World:
    """Four runtimes, four in-process clients, one operator key; ``pump`` moves events between them."""

    def __init__(self, data_dir: Path, database_urls: dict[str, str], **settings: Any) -> None:
        self.settings = Settings(kafka_bootstrap="127.0.0.1:1", today=TODAY, data_dir=data_dir, **settings)
        self.runtimes: dict[str, Runtime] = {}
        self.clients: dict[str, TestClient] = {}
        for name in SERVICES:
            runtime = Runtime(load_definition(name), self.settings, database_url=database_urls[name])
            runtime.migrate()
            self.runtimes[name] = runtime
            client = TestClient(create_app(runtime, background=False, migrate_on_start=False))
            client.__enter__()
            self.clients[name] = client
        self.cursors: dict[tuple[str, str], int] = {}
        self.operator = self.key(r.DISTRICT_OPERATOR, None, label="world operator")

    def close(self) -> None:
        for client in self.clients.values():
            client.__exit__(None, None, None)
        for runtime in self.runtimes.values():
            runtime.database.dispose()

    # ------------------------------------------------------------------ keys

    def key(
        self,
        role: str,
        compound: str | None,
        buildings: list[str] | None = None,
        *,
        point: str | None = None,
        household: str | None = None,
        label: str | None = None,
        holder: Holder | None = None,
        grant: Grant | None = None,
    ) -> str:
        """One key in every service (and, for sampling volunteers and households, testing's binding).

        Every key names its holder: the household of a household key, else someone of the role's kind.
        """
        if holder is None:
            holder = default_holder(role, compound, household, label)
        key: str | None = None
        for runtime in self.runtimes.values():
            with runtime.database.unit_of_work() as session:
                key = issue_key(session, role, compound, buildings, label, key=key, holder=holder, grant=grant).key
        assert key is not None
        if point or household:
            with self.runtimes["testing"].database.unit_of_work() as session:
                session.execute(
                    key_bindings.insert().values(
                        key_id=key.split("_")[1],
                        compound=compound,
                        point=f"{compound}:{point}" if point else None,
                        household=f"{compound}:{household}" if household else None,
                    )
                )
        return key

    # ------------------------------------------------------------------ the bus

    def pump(self) -> int:
        """Deliver every event not yet delivered, until nothing moves; returns how many were delivered."""
        total = 0
        while True:
            moved = 0
            for name, runtime in self.runtimes.items():
                for topic in runtime.definition.consumes:
                    moved += self._deliver(name, runtime, topic)
            if not moved:
                return total
            total += moved

    def _deliver(self, name: str, runtime: Runtime, topic: str) -> int:
        producer = self.runtimes[topic.split(".", 1)[1]]
        after = self.cursors.get((name, topic), 0)
        with producer.database.reading() as session:
            batch = producer.store.read_after(session, after, 2000)
            # What the relay adds: the keys of sealed fields, for the services granted them.
            keys = producer.sealed_key_headers(session, [(envelope.type, envelope.data) for envelope in batch])
        if not batch:
            return 0
        with runtime.database.unit_of_work() as session:
            for envelope, headers in zip(batch, keys, strict=True):
                wire = Envelope.from_cloudevent(envelope.to_cloudevent())  # what the relay puts on Kafka
                seq = session.execute(
                    insert(inbox_table)
                    .returning(inbox_table.c.seq)
                    .values(
                        consumer=runtime.group,
                        event_id=wire.id,
                        type=wire.type,
                        envelope=dump_json(wire.to_cloudevent()).decode(),
                        received_at=utcnow(),
                    )
                ).scalar_one()
                runtime.handle_received(session, Delivery(wire, seq, topic, tuple(value for _, value in headers)))
        self.cursors[(name, topic)] = batch[-1].position or after
        return len(batch)

    def events(self, service: str) -> Iterator[Envelope]:
        runtime = self.runtimes[service]
        with runtime.database.reading() as session:
            yield from runtime.store.read_after(session, 0, 1_000_000)

    # ------------------------------------------------------------------ requests

    def request(self, service: str, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if key is not None:
            headers["X-API-Key"] = key
        return self.clients[service].request(method, path, headers=headers, **kwargs)

    def ok(self, service: str, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        answer = self.request(service, method, path, key or self.operator, **kwargs)
        assert answer.status_code < 300, f"{method} {service}{path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


def default_holder(role: str, compound: str | None, household: str | None, label: str | None) -> Holder:
    """A holder of the kind the role's keys are issued to (``contracts.roles.HOLDERS``)."""
    kind = HOLDERS[role][0]
    if kind == "household":
        assert household is not None and compound is not None, "a household key names its household"
        return Holder("household", f"{compound}:{household}")
    if kind in ("staff", "volunteer"):
        return Holder(kind, f"{compound}:{label or role}".replace(" ", "-"))
    return Holder(kind, label or role)


# ---------------------------------------------------------------------- a compound as a committee types it


def building_rows(buildings: int, floors: int, rooms: int) -> list[dict[str, object]]:
    return [
        {"building": f"b{n}", "number": str(n), "floors": floors, "rooms_per_floor": rooms, "lifts": 1,
         "lift_capacity": 8}
        for n in range(1, buildings + 1)
    ]  # fmt: skip


def resident_rows(buildings: int, floors: int, rooms: int, per_household: int = 2, start: int = 0) -> list[dict]:
    """Residents with real-looking names, mobile numbers and ID-card numbers (check digits right)."""
    rows: list[dict[str, object]] = []
    number = start
    for b in range(1, buildings + 1):
        for floor in range(1, floors + 1):
            for room in range(1, rooms + 1):
                for member in range(per_household):
                    number += 1
                    year = 1940 + number % 70
                    born = f"{year}{number % 12 + 1:02d}{number % 28 + 1:02d}"
                    first17 = f"{310101 + number // 1000}{born}{number % 1000:03d}"
                    rows.append(
                        {
                            "building": f"b{b}",
                            "floor": floor,
                            "room": room,
                            "household": f"h{b}-{floor:02d}{room:02d}",
                            "resident": f"r{number}",
                            "name": SURNAMES[number % len(SURNAMES)] + GIVEN[number % len(GIVEN)],
                            "phone": f"1{3 + number % 6}{number:09d}",
                            "id_number": first17 + id_check_char(first17),
                            "birth_year": year,
                            "regular_medication": "yes" if number % 5 == 0 else "",
                            "bedridden": "yes" if number % 97 == 0 else "",
                            "representative": "yes" if member == 0 else "",
                        }
                    )
    return rows


def as_csv(rows: list[dict[str, object]], columns: tuple[str, ...] | list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def import_compound(
    world: World, compound: str, buildings: int, floors: int, rooms: int, per_household: int = 2
) -> list[dict[str, object]]:
    """Buildings, then households and residents, through the residents service's import (as staff do it)."""
    world.ok("residents", "POST", f"/compounds/{compound}/import", params={"kind": "buildings"},
             content=as_csv(building_rows(buildings, floors, rooms), BUILDING_COLUMNS),
             headers={"content-type": "text/csv"})  # fmt: skip
    rows = resident_rows(buildings, floors, rooms, per_household)
    world.ok("residents", "POST", f"/compounds/{compound}/import", params={"kind": "residents"},
             content=as_csv(rows, IMPORT_COLUMNS), headers={"content-type": "text/csv"})  # fmt: skip
    return rows
