"""The cluster profile under fault: three KRaft brokers (replication factor 3, min ISR 2) on the real engine.

While the demo's day runs against the stack, one broker container is killed and started again, then one
service container likewise. Afterwards the checks tests/faults makes: every event of every service reached
every consumer of it, once; each read model equals a rebuild from the log; every event is on Kafka; and the
demo's own verdict, that every building group received exactly what concerns it, once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.checks import every_event_everywhere, kafka_event_ids, read_models_equal_a_rebuild
from tests.stack.conftest import SERVICES, DockerEngine, StackUnderTest, record, taken_down, wait_for
from tests.stack.test_single import _demo, _settled, gateway

pytestmark = pytest.mark.timeout(1800, func_only=True)

# Demo phases (its "✓ <title>" lines) at which a fault starts.
BROKER_DOWN_AT = "✓ the register reaches"
BROKER_UP_AT = "✓ channels"
SERVICE_DOWN_AT = "✓ sampling points"
BROKER = "kafka-2"
SERVICE = "residents"  # consumes juwei.testing while the round's results come in


@pytest.fixture(scope="module")
def cluster(
    docker_engine: DockerEngine, stack_images: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackUnderTest]:
    with taken_down(StackUnderTest(docker_engine, tmp_path_factory.mktemp("cluster"), profile="cluster")) as made:
        record("up --wait seconds, cluster profile (three brokers)", round(made.up(), 1))
        yield made


class Watcher(threading.Thread):
    """Reads the demo's output as it comes and marks the phases it has finished."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: list[str] = []
        self.seen: dict[str, threading.Event] = {}

    def at(self, marker: str) -> threading.Event:
        return self.seen.setdefault(marker, threading.Event())

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            for marker, event in list(self.seen.items()):
                if line.lstrip().startswith(marker):
                    event.set()


def _healthy(engine: DockerEngine, container: str) -> bool:
    return engine.docker("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip() == "healthy"


def test_a_broker_and_a_service_killed_during_the_day_lose_and_double_nothing(
    cluster: StackUnderTest, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    described = docker_engine.docker("exec", cluster.container("kafka-1"), "kafka-topics.sh", "--bootstrap-server",
                                     "kafka:9092", "--describe", "--topic", "juwei.testing").stdout  # fmt: skip
    assert "ReplicationFactor: 3" in described and "min.insync.replicas=2" in described
    demo = _demo(cluster, 0.1, gateway(docker_engine), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watcher = Watcher(demo)
    broker_down, broker_up, service_down = (watcher.at(m) for m in (BROKER_DOWN_AT, BROKER_UP_AT, SERVICE_DOWN_AT))
    watcher.start()
    faults: list[str] = []
    broker, service = cluster.container(BROKER), cluster.container(SERVICE)

    assert broker_down.wait(600), "".join(watcher.lines[-40:])
    docker_engine.docker("kill", broker)
    faults.append(f"{BROKER} killed after '{BROKER_DOWN_AT}'")
    broker_up.wait(120)
    time.sleep(3)
    docker_engine.docker("start", broker)
    took = wait_for(lambda: _healthy(docker_engine, broker), 180, f"{BROKER} to be healthy again")
    faults.append(f"{BROKER} started again, healthy after {took:.0f} s")

    if service_down.wait(600):
        docker_engine.docker("kill", service)
        faults.append(f"{SERVICE} killed after '{SERVICE_DOWN_AT}'")
        time.sleep(3)
        docker_engine.docker("start", service)
        took = wait_for(lambda: _healthy(docker_engine, service), 180, f"{SERVICE} to be healthy again")
        faults.append(f"{SERVICE} started again, healthy after {took:.0f} s")
    demo.wait(timeout=900)
    watcher.join(timeout=30)
    output = "".join(watcher.lines)
    assert service_down.is_set(), "the demo never reached the round: " + output[-4000:]
    assert demo.returncode == 0, output[-6000:]
    assert "every group received exactly what concerns it, once" in output

    settled = wait_for(lambda: _settled(cluster), 300, "every event to reach every consumer")
    complete, checked = every_event_everywhere(cluster)
    assert complete
    replayed = read_models_equal_a_rebuild(cluster, tmp_path)
    for name in SERVICES:
        produced = {row[0] for row in cluster.rows(name, _ids())}
        on_kafka = kafka_event_ids(cluster, name)
        assert produced <= set(on_kafka), f"{name}: events missing on Kafka"
    print("\n" + "; ".join(faults) + f"; settled {settled:.0f} s after the demo; consumers checked {checked}; "
          f"replayed {replayed}")  # fmt: skip
    record("cluster fault run", {"faults": faults, "events checked": checked})


def _ids() -> Any:
    from sqlalchemy import select

    from juwei.store import events_table

    return select(events_table.c.id)
