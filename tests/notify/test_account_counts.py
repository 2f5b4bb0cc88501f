"""The daily account's day counters as notify keeps them, events handed over as its consumer does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from services.notify.account.views import account_counts
from tests.conftest import both_databases
from tests.notify.conftest import compound_events, make_notify, receive
from tests.notify.test_daily_account import DAY, _activity


def _counts(runtime, compound: str) -> dict[tuple[str, str], int]:
    with runtime.database.reading() as session:
        rows = session.execute(
            select(account_counts.c.building, account_counts.c.figure, account_counts.c.count).where(
                account_counts.c.compound == compound, account_counts.c.day == DAY
            )
        ).all()
    return {(building.split(":")[-1], figure): count for building, figure, count in rows}


@both_databases
def test_a_result_heard_before_its_samples_still_counts_and_compounds_never_mix(
    new_database, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("JUWEI_TODAY", str(DAY))
    runtime = make_notify(new_database("notify"), tmp_path)
    receive(runtime, *compound_events("c1", buildings=2), *compound_events("c2", buildings=2))
    testing, supplies = _activity("c1")
    other, _ = _activity("c2")  # the same tube numbers in another compound
    receive(runtime, testing[5], topic="juwei.testing")  # T-1001's result, before any of its samples
    receive(runtime, *testing[:5], testing[6], *other[:4], topic="juwei.testing")
    receive(runtime, *supplies, topic="juwei.supplies")
    c1 = _counts(runtime, "c1")
    assert c1[("1", "samples_taken")] == 3 and c1[("1", "results")] == 2 and c1[("2", "results")] == 1
    assert c1[("1", "delivered")] == 2 and c1[("2", "cards_returned")] == 1
    assert c1[("", "donations_accepted")] == 1 and c1[("", "donations_refused")] == 1  # the compound's
    c2 = _counts(runtime, "c2")
    assert c2 == {("1", "samples_taken"): 3, ("2", "samples_taken"): 1}  # c2's tubes are not resulted
    runtime.database.dispose()
