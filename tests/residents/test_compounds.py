"""The register of compounds and each compound's own zone rules: pure rules, then the service on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select

from contracts import roles as r
from juwei.aggregate import Invalid
from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.service import create_app
from juwei.store import events_table
from services.residents import handlers
from services.residents.domain import Compound, Zone, ZoneRules
from tests.conftest import both_databases
from tests.residents.conftest import TODAY, make_residents
from tests.residents.seed import register_buildings

DEFAULT = ZoneRules(7, 14)


def test_a_compound_registers_once_and_moves_between_subdistricts() -> None:
    compound = Compound("c1")
    compound.register("s1", " 石泉小区 ")
    compound.register("s1", "石泉小区")  # the same again records nothing
    compound.register("s2", "石泉小区")
    assert [type(e).__name__ for e in compound.pending()] == ["CompoundRegistered", "CompoundRegistered"]
    assert (compound.subdistrict, compound.name) == ("s2", "石泉小区")
    with pytest.raises(Invalid):
        compound.register("S 1", "x")
    with pytest.raises(Invalid):
        compound.register("s1", "  ")


def test_a_compound_follows_the_deployment_rules_until_it_sets_its_own() -> None:
    compound = Compound("c1")
    assert compound.zone_rules(DEFAULT) == DEFAULT
    compound.set_zone_rules(ZoneRules(10, 21))
    compound.set_zone_rules(ZoneRules(10, 21))
    assert len(compound.pending()) == 1 and compound.zone_rules(DEFAULT) == ZoneRules(10, 21)
    for sealed, precaution in ((0, 14), (14, 14), (15, 14), (7, 400)):
        with pytest.raises(Invalid):
            ZoneRules(sealed, precaution)


def test_the_same_case_seals_under_longer_rules_and_not_under_the_default() -> None:
    eight_days_ago = TODAY - timedelta(days=8)
    usual, longer = Zone("c1:1").follow(7, 14), Zone("c2:1").follow(10, 21)
    usual.record_case(eight_days_ago, today=TODAY)
    longer.record_case(eight_days_ago, today=TODAY)
    assert (usual.zone, longer.zone) == ("controlled", "sealed")
    assert longer.view(TODAY).next_change_on == eight_days_ago + timedelta(days=10)
    assert "sealed_days" not in longer.snapshot_state()  # the rules are the compound's, never a zone's snapshot


def _key(runtime, role: str, compound: str | None) -> dict[str, str]:
    with runtime.database.unit_of_work() as session:
        return {"X-API-Key": issue_key(session, role, compound, holder=Holder("system", f"test {role}")).key}


@both_databases
def test_per_compound_zone_rules_change_a_zone_and_leave_other_compounds_alone(new_database, tmp_path: Path) -> None:
    runtime = make_residents(new_database("residents"), tmp_path)
    register_buildings(runtime, "c1", 2)
    register_buildings(runtime, "c2", 2)
    eight_days_ago = TODAY - timedelta(days=8)
    with runtime.database.unit_of_work() as session:
        handlers.record_case(runtime, session, "c1", "c1:1", eight_days_ago)
        handlers.record_case(runtime, session, "c2", "c2:1", eight_days_ago)
    with TestClient(create_app(runtime, background=False)) as client:
        staff, other = _key(runtime, r.COMMITTEE_STAFF, "c1"), _key(runtime, r.COMMITTEE_STAFF, "c2")
        before = client.get("/compounds/c1/buildings/1/zone", headers=staff).json()
        assert (before["zone"], before["next_change_on"]) == ("controlled", "2022-04-16")

        answer = client.put("/compounds/c1/zone-rules", json={"sealed_days": 10, "precaution_days": 21}, headers=staff)
        assert answer.status_code == 200, answer.text
        assert answer.json()["zone_rules"] == {"sealed_days": 10, "precaution_days": 21, "own": True}
        after = client.get("/compounds/c1/zones", headers=staff).json()
        assert (after["compound"]["zone"], after["buildings"][0]["zone"]) == ("sealed", "sealed")
        assert after["buildings"][0]["next_change_on"] == "2022-04-12"
        # The other compound keeps the deployment's rules.
        theirs = client.get("/compounds/c2/zones", headers=other).json()
        assert theirs["buildings"][0]["zone"] == "controlled"
        assert client.get("/compounds/c2/registration", headers=other).json()["zone_rules"]["own"] is False

        # Bad rules, and another compound's staff: a problem, nothing recorded.
        with runtime.database.reading() as session:
            count = session.execute(select(func.count()).select_from(events_table)).scalar()
        bad = client.put("/compounds/c1/zone-rules", json={"sealed_days": 14, "precaution_days": 14}, headers=staff)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        refused = client.put("/compounds/c1/zone-rules", json={"sealed_days": 3, "precaution_days": 5}, headers=other)
        assert refused.status_code == 403
        assert "c1" in refused.json()["detail"]
        refused = client.put("/compounds/c1/registration", json={"subdistrict": "s1", "name": "石泉"}, headers=other)
        assert refused.status_code == 403
        with runtime.database.reading() as session:
            assert session.execute(select(func.count()).select_from(events_table)).scalar() == count
    runtime.database.dispose()


@both_databases
def test_the_migrations_create_the_register_of_compounds_and_the_subdistrict_tables(new_database, tmp_path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from juwei.store import metadata as kernel
    from services.residents.views import tables

    runtime = make_residents(new_database("residents"), tmp_path)
    with runtime.database.engine.connect() as connection:
        for metadata, table in ((tables, "res_compounds"), (kernel, "juwei_compound_subdistricts")):
            only = {
                "include_name": lambda name, kind, _parent, table=table: kind != "table" or name == table,
                "include_object": lambda found, name, kind, _reflected, _other, table=table: (
                    (name if kind == "table" else getattr(getattr(found, "table", None), "name", None)) == table
                ),
            }
            differences = compare_metadata(MigrationContext.configure(connection, opts=only), metadata)
            assert differences == [], differences
        keys = {column["name"] for column in inspect(connection).get_columns("juwei_api_keys")}
        assert "subdistrict" in keys
    runtime.database.dispose()
