"""The CLI against real databases, trace context across HTTP and events, and the event catalogue."""

from __future__ import annotations

import os
import subprocess
import sys

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from juwei.events import current_traceparent
from juwei.repository import Repository
from juwei.service import create_app
from tests.conftest import both_databases
from tests.kernel.harness import ROOT, key, runtime
from tests.kernel.sample import Tally, definitions, desk_totals

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "juwei.cli", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        # A limit for a command that hangs: `run --detach` starts a broker and four services, which took over
        # 120 s on a loaded CI machine.
        timeout=600,
    )


@both_databases
def test_juwei_replay_and_keys_work_from_the_command_line(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    url = new_database()
    made = runtime(desk, url)
    repo = Repository(made.store, Tally)
    for i in range(30):
        with made.database.unit_of_work() as session:
            tally = repo.load(session, str(i % 3))
            tally.add(2)
            repo.save(session, tally, compound="c1")
    with made.database.unit_of_work() as session:
        session.execute(desk_totals.update().values(total=0))  # a read model gone wrong
    env = {f"JUWEI_DESK_{suffix.upper()}_DATABASE_URL": url, "JUWEI_SAMPLE_SUFFIX": suffix}
    replayed = _cli("replay", "tests.kernel.sample:desk", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("replayed 30 events")  # the plain final line; logs on stderr
    with made.database.reading() as session:
        assert sorted(row.total for row in session.execute(select(desk_totals))) == [20, 20, 20]

    created = _cli(
        "keys", "create", "--role", "staff", "--compound", "c1", "--system", "the tally desk's test",
        "--service", "tests.kernel.sample:desk", env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    with TestClient(create_app(made, background=False)) as client:
        ok = client.post("/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret})
        assert ok.status_code == 201
        revoked = _cli("keys", "revoke", secret.split("_")[1], "--service", "tests.kernel.sample:desk", env=env)
        assert revoked.returncode == 0 and "revoked" in revoked.stderr
        again = client.post("/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret})
        assert again.status_code == 401
    made.database.dispose()


def test_a_request_traceparent_follows_into_the_events_it_appends(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    secret = key(made)
    with TestClient(create_app(made, background=False)) as client:
        traced = client.post(
            "/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret, "traceparent": TRACE}
        )
        junk = client.post(
            "/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret, "traceparent": "x\n{forged}"}
        )
        events = client.get("/events", headers={"X-API-Key": secret}).json()["events"]
    assert traced.headers["traceparent"] == TRACE
    assert events[0]["traceparent"] == TRACE
    assert events[1]["traceparent"] != TRACE and len(events[1]["traceparent"]) == 55  # a fresh one
    assert junk.headers["traceparent"] == events[1]["traceparent"]
    assert current_traceparent.get() is None
    made.database.dispose()


def test_the_asyncapi_file_is_generated_from_the_event_registries() -> None:
    from composition.catalogue import render
    from juwei.registration import suite

    expected = render(suite())
    assert (ROOT / "asyncapi.yaml").read_text() == expected, "stale: run `juwei catalogue --write asyncapi.yaml`"
    spec = yaml.safe_load(expected)
    payload = spec["components"]["schemas"]["residents.ResidentRegistered.v2"]
    assert "identity" not in payload["properties"]  # private fields are not part of what is published
    # Every published field shows its class; the health flags travel only sealed (issue 15).
    assert {name: field["x-juwei-sensitivity"] for name, field in payload["properties"].items()}["health"] == "health"
    assert not {"regular_medication", "bedridden", "pregnant", "birth_year"} & set(payload["properties"])
    message = spec["components"]["messages"]["residents.ResidentRegistered.v2"]
    assert message["x-juwei-sealed"]["health"]["subject"] == "resident"
    assert message["x-juwei-kept-in-service"]["birth_year"] == "identity"
    for schema in spec["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_asyncapi_catalogue_describes_what_the_kernel_emits(new_database, suffix: str) -> None:
    spec = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    assert spec["asyncapi"].startswith("3.")
    schemas = spec["components"]["schemas"]
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    repo = Repository(made.store, Tally)
    with made.database.unit_of_work() as session:
        tally = repo.load(session, "4")
        tally.add(3)
        envelope = repo.save(session, tally, compound="c1")[0]
    jsonschema.validate(envelope.to_cloudevent(), schemas["StructuredCloudEvent"])
    _key, _value, headers = envelope.to_kafka()
    as_strings = {name: raw.decode() for name, raw in headers}
    jsonschema.validate(as_strings, schemas["CloudEventHeaders"])
    made.database.dispose()


@pytest.mark.timeout(1200)
def test_juwei_run_detached_starts_the_broker_and_juwei_stop_stops_it(tmp_path) -> None:
    from juwei.broker import LocalBroker

    port = 19592
    env = {
        "JUWEI_DATA_DIR": str(tmp_path / "data"),
        "JUWEI_KAFKA_PORT": str(port),
        "JUWEI_KAFKA_CONTROLLER_PORT": str(port + 1),
    }
    started = _cli("run", "--detach", env=env)
    broker = LocalBroker(tmp_path / "data" / "kafka", port=port, controller_port=port + 1)
    try:
        assert started.returncode == 0, started.stderr
        assert broker.is_running()
        assert (tmp_path / "data" / "operator.key").read_text().startswith("jw_")
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        assert {"juwei.residents", "juwei.residents.dlq", "juwei.notify"} <= set(admin.list_topics())
        admin.close()
    finally:
        stopped = _cli("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not broker.is_running()
