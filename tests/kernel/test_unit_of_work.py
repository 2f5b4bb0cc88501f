"""The unit of work's id contract, in every service: a wrong id is an error, never an empty aggregate.

Before the kernel held one unit of work, each service had its own, and they drifted: residents and notify
loaded aggregates by compound-local ids, supplies and testing by district-wide ones, and an id no stream held
came back as an empty aggregate, so a wrong id failed silently. These tests load each service's aggregates
through ``juwei.unit_of_work`` by an unknown id (a typed ``NotFound``, a 404 problem at the edge), by a
compound-local id and by an id of another compound (``WrongId``), and check that nothing was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from juwei import problems
from juwei.aggregate import Aggregate, NotFound
from juwei.service import Runtime, load_definition
from juwei.settings import Settings
from juwei.store import events_table
from juwei.unit_of_work import UnitOfWork, WrongId
from services.notify.domain import Channel, Message
from services.residents.domain import Building, Household
from services.supplies.domain import Batch, Donation, MedicineCard
from services.testing.domain import Case, Round, SamplingPoint

# An aggregate of each service that commands load (and must find), with the service that owns it.
LOADED: list[tuple[str, type[Aggregate]]] = [
    ("residents", Building),
    ("residents", Household),
    ("supplies", Batch),
    ("supplies", MedicineCard),
    ("supplies", Donation),
    ("testing", Round),
    ("testing", SamplingPoint),
    ("testing", Case),
    ("notify", Channel),
    ("notify", Message),
]
IDS = [pytest.param(service, kind, id=f"{service}-{kind.__name__}") for service, kind in LOADED]


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Runtime]:
    made: dict[str, Runtime] = {}
    for service in sorted({service for service, _ in LOADED}):
        folder: Path = tmp_path_factory.mktemp(service)
        runtime = Runtime(load_definition(service), Settings(data_dir=folder), f"sqlite:///{folder / 'uow.db'}")
        runtime.migrate()
        made[service] = runtime
    return made


def _events(runtime: Runtime) -> int:
    with runtime.database.reading() as session:
        return int(session.execute(select(func.count()).select_from(events_table)).scalar_one())


@pytest.mark.parametrize(("service", "kind"), IDS)
def test_an_unknown_id_is_not_found_never_an_empty_aggregate(
    runtimes: dict[str, Runtime], service: str, kind: type[Aggregate]
) -> None:
    runtime = runtimes[service]
    before = _events(runtime)
    with pytest.raises(NotFound) as refused, UnitOfWork(runtime, "c1", "test") as unit:
        unit.load(kind, "c1:nobody-knows-this")
    assert problems.status_of(refused.value) == 404
    assert "nobody-knows-this" in str(refused.value)
    assert _events(runtime) == before


@pytest.mark.parametrize(("service", "kind"), IDS)
@pytest.mark.parametrize("wrong", ["nobody-knows-this", "c2:nobody-knows-this", "c10:x"])
def test_an_id_not_district_wide_in_the_units_compound_is_a_wrong_id(
    runtimes: dict[str, Runtime], service: str, kind: type[Aggregate], wrong: str
) -> None:
    """A compound-local id (the drift: residents and notify passed those) or another compound's is refused."""
    runtime = runtimes[service]
    before = _events(runtime)
    for load in (UnitOfWork.load, UnitOfWork.load_or_new):
        with pytest.raises(WrongId), UnitOfWork(runtime, "c1", "test") as unit:
            load(unit, kind, wrong)
    assert _events(runtime) == before


@pytest.mark.parametrize(("service", "kind"), IDS)
def test_an_unknown_id_is_a_404_problem_at_the_edge(
    runtimes: dict[str, Runtime], service: str, kind: type[Aggregate]
) -> None:
    runtime = runtimes[service]
    app = FastAPI()
    problems.install(app)

    @app.post("/compounds/{compound}/things/{thing}")
    def command(compound: str, thing: str) -> dict[str, str]:
        with UnitOfWork(runtime, compound, "test") as unit:
            unit.load(kind, f"{compound}:{thing}")
        return {"done": thing}

    with TestClient(app) as client:
        answer = client.post("/compounds/c1/things/nobody-knows-this")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["status"] == 404
    assert "nobody-knows-this" in body["detail"]


def test_a_stream_that_exists_loads_and_a_new_one_begins_only_by_load_or_new(runtimes: dict[str, Runtime]) -> None:
    runtime = runtimes["notify"]
    with UnitOfWork(runtime, "c1", "test") as unit:
        channel = unit.load_or_new(Channel, "c1:ch-uow")
        assert not channel.exists
        channel.attach("c1:b1", "webhook", "zh", "test", "sealed")
    with UnitOfWork(runtime, "c1", "test") as unit:
        loaded = unit.load(Channel, "c1:ch-uow")
        assert loaded.exists and loaded.building == "c1:b1" and loaded.version == 1
