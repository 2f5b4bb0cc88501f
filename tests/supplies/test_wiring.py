"""The service definition and its migration: what ``juwei run`` and ``juwei migrate`` rely on."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from contracts import roles as r
from contracts.residents import ResidentErased, VolunteerRoleAssigned
from juwei.service import create_app, load_definition
from services.supplies.app import service
from services.supplies.views import tables
from tests.conftest import both_databases
from tests.supplies.conftest import make_supplies
from tests.supplies.seed import seeded


def test_the_service_consumes_residents_and_publishes_on_its_own_topic() -> None:
    assert load_definition("supplies") is service
    assert (service.topic, service.source, list(service.consumes)) == (
        "juwei.supplies",
        "/juwei/supplies",
        ["juwei.residents"],
    )
    assert service.catalogue is not None
    assert service.catalogue.knows(ResidentErased.type_name()) and service.catalogue.knows(
        VolunteerRoleAssigned.type_name()
    )
    assert service.periodic and service.on_received is not None


@both_databases
def test_the_migration_creates_exactly_the_read_models(new_database, tmp_path: Path) -> None:
    runtime = make_supplies(new_database("supplies"), tmp_path)
    with runtime.database.engine.connect() as connection:
        # The kernel's tables (events, inbox, keys…) are the kernel migration's business.
        ours = {"include_name": lambda name, kind, _parent: kind != "table" or name.startswith("sup_")}
        differences = compare_metadata(MigrationContext.configure(connection, opts=ours), tables)
    assert differences == [], differences
    runtime.migrate()  # again: nothing to do
    with TestClient(create_app(runtime, background=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "service": "supplies"}
        paths = client.get("/openapi.json").json()["paths"]
        assert "/compounds/{compound}/ledger" in paths and "/compounds/{compound}/card-handovers" in paths
    runtime.database.dispose()


def test_no_route_answers_junk_with_a_500(supplies) -> None:
    seeded(supplies.runtime, buildings=1, residents=8)
    staff = supplies.key(r.COMMITTEE_STAFF)
    paths = supplies.client.get("/openapi.json").json()["paths"]
    junk_bodies: list[object] = [None, [], "x", 7, {"unexpected": 1}, {"batch": {"$gt": ""}}, {"items": [None]}]
    tried = 0
    for path, methods in paths.items():
        if not path.startswith("/compounds/"):
            continue
        concrete = (
            path.replace("{compound}", "c1")
            .replace("{building}", "1")
            .replace("{batch}", "b1")
            .replace("{household}", "h1-0101")
            .replace("{resident}", "r0")
            .replace("{medicine_request}", "m1")
            .replace("{donation}", "d1")
            .replace("{donor}", "donor-1")
        )
        for method in methods:
            for body in junk_bodies if method in ("post", "put") else [None]:
                answer = supplies.client.request(method.upper(), concrete, json=body, headers=staff)
                tried += 1
                assert answer.status_code < 500, (method, concrete, body, answer.text)
                if answer.status_code >= 400:
                    assert answer.headers["content-type"] == "application/problem+json"
            odd = supplies.client.request(method.upper(), concrete.replace("/c1/", "/C 1/"), headers=staff)
            assert odd.status_code in (404, 422), (method, concrete)
    assert tried > 50
