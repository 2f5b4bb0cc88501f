"""The Kafka image's health check (deploy/kafka/bin/juwei-kafka-ready) against a real broker: the session's own.

It speaks the Kafka protocol itself (one Metadata request) instead of starting a JVM per check; these tests show
that it tells a serving broker from an absent one, and this broker from another node id.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from juwei.broker import LocalBroker

READY = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "bin" / "juwei-kafka-ready"
LOCAL_NODE = "1"  # deploy/kafka/server.properties.template: the local broker is node 1


def _ready(port: int, node: str | None) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if name != "KAFKA_NODE_ID"}
    if node is not None:
        environment["KAFKA_NODE_ID"] = node
    return subprocess.run([sys.executable, str(READY), str(port)], env=environment, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_a_serving_broker_is_ready_under_its_own_node_id_only(broker: LocalBroker | None) -> None:
    assert broker is not None, "the session's own broker (unset JUWEI_KAFKA_BOOTSTRAP)"
    assert _ready(broker.port, LOCAL_NODE).returncode == 0
    assert _ready(broker.port, None).returncode == 0  # no node id: any live broker answering will do
    other = _ready(broker.port, "2")
    assert other.returncode == 1 and "broker 2 is not among the live brokers [1]" in other.stderr


def test_nothing_listening_is_not_ready() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound, never listening: refused
        refused = _ready(port, LOCAL_NODE)
    assert refused.returncode == 1 and "not ready" in refused.stderr
