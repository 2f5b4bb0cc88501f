"""`juwei run --detach`, `juwei status --json` and `juwei stop` with all four services, as an operator runs them.

The services are started by the CLI on free ports with a data folder of the test's own; Kafka is the test
broker (``JUWEI_KAFKA_BOOTSTRAP``: an outside cluster, so `juwei run` starts no broker of its own and
`juwei stop` leaves it running).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from demo.sinks import free_port
from juwei.registration import suite
from tests.e2e.conftest import GROUPS, start_groups_at_the_end
from tests.kernel.harness import ROOT, wait_for

KNOWN_SERVICES = tuple(suite().names)
COMPANIONS = tuple(companion.name for companion in suite().companions)

pytestmark = pytest.mark.kafka


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "juwei.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # our grandchild may linger as a zombie until its parent (init) reaps it
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(600)
def test_juwei_run_detached_status_json_and_stop_with_the_four_services(tmp_path: Path, kafka: str, broker) -> None:
    start_groups_at_the_end(kafka, broker)
    data = tmp_path / "data"
    ports = {name: free_port() for name in KNOWN_SERVICES}
    companion_ports = {name: free_port() for name in COMPANIONS}
    env = {
        "JUWEI_DATA_DIR": str(data),
        "JUWEI_KAFKA_BOOTSTRAP": kafka,
        "JUWEI_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "JUWEI_CONSUMER_GROUP_PREFIX": GROUPS,
        "JUWEI_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        **{f"JUWEI_{name.upper()}_PORT": str(port) for name, port in {**ports, **companion_ports}.items()},
    }
    started = _cli("run", "--detach", env=env)
    pids = {p.stem: int(p.read_text()) for p in (data / "run").glob("*.pid")}
    try:
        assert started.returncode == 0, started.stderr
        assert set(pids) == {*KNOWN_SERVICES, *COMPANIONS}  # the console is started beside the services
        for name, port in companion_ports.items():
            assert f"http://127.0.0.1:{port}" in started.stdout
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["status"] == "ok", name
        key = (data / "operator.key").read_text().strip()
        assert key.startswith("jw_") and key in started.stdout  # printed for the operator
        for name, port in ports.items():
            assert f"http://127.0.0.1:{port}" in started.stdout
            answer = httpx.get(
                f"http://127.0.0.1:{port}/compounds/c1/buildings"
                if name == "residents"
                else f"http://127.0.0.1:{port}/status",
                headers={"X-API-Key": key},
                timeout=10,
            )
            assert answer.status_code == 200, (name, answer.text)  # the operator key works in every service

        def reported() -> dict | None:
            shown = _cli("status", "--json", "--sample", "0", env=env, timeout=120)
            return json.loads(shown.stdout) if shown.returncode == 0 else None

        wait_for(lambda: reported() is not None, timeout=120, what="`juwei status` to report everything ready")
        report = reported()
        assert report is not None
        services = {s["name"]: s for s in report["services"]}
        assert report["ok"] and report["kafka"] == {"bootstrap": kafka, "error": None}
        assert set(services) == set(KNOWN_SERVICES)
        for name, port in ports.items():
            status = services[name]
            assert status["url"] == f"http://127.0.0.1:{port}"
            assert status["healthy"] and status["ready"] and status["error"] is None, status
            assert status["relay_backlog"] == 0
            assert status["consumer_group"] == f"{GROUPS}-{name}"
        assert set(services["notify"]["lag"]) == {"juwei.residents", "juwei.testing", "juwei.supplies"}
        assert set(services["residents"]["lag"]) == {"juwei.testing"}
        assert all(lag is not None for s in services.values() for lag in s["lag"].values())
    finally:
        stopped = _cli("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    for name in (*KNOWN_SERVICES, *COMPANIONS):
        assert f"stopped {name}" in stopped.stderr
    wait_for(lambda: not any(_alive(pid) for pid in pids.values()), timeout=30, what="the services to exit")
    assert not list((data / "run").glob("*.pid"))
    for port in (*ports.values(), *companion_ports.values()):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert "stopped the Kafka broker" not in stopped.stderr  # an outside cluster is not ours to stop
