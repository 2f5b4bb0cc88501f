"""The services' topics on a Kafka cluster: created where missing, their retention kept in line with the settings.

The compose stack's one-shot ``kafka-topics`` job runs this (``juwei topics``) from the service image: one
process and one admin client. Apache Kafka's shell tools start a JVM per topic and per setting, which took 27 of
the 58 seconds of a ``juwei up``. Existing topics keep their partitions (adding some moves buildings to other
partitions: an operator's decision, see OPERATOR.md); the replication factor is the brokers' default (1 with
one broker, 3 in the cluster profile).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from juwei.kafka_clients import made

# Kafka takes -1 as "the brokers' default.replication.factor" (CreateTopics v4 and later).
BROKERS_DEFAULT = -1


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicState:
    name: str
    created: bool
    partitions: int
    replication_factor: int
    retention_ms: str


def ensure_topics(
    bootstrap: str,
    retention: dict[str, int],
    partitions: int,
    security: dict[str, Any] | None = None,
    timeout: float = 120,
) -> list[TopicState]:
    """Create each topic of ``retention`` that is missing, then set every one's ``retention.ms``."""
    admin = _admin(bootstrap, security or {}, timeout)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in retention if name not in existing]
        if missing:
            topics = [
                NewTopic(name, partitions, BROKERS_DEFAULT, topic_configs={"retention.ms": str(retention[name])})
                for name in missing
            ]
            # Another job of a second `up` may be quicker: the retention is set below all the same.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(topics)
        admin.wait_for_topics(list(retention), timeout_ms=int(timeout * 1000))
        # Incremental: other settings an operator gave a topic by hand stay as they are.
        answered = admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": str(value)})
                for name, value in retention.items()
            ]
        )
        refused = {name: why for name, why in answered.get("topic", {}).items() if why != "OK"}
        if refused:
            raise KafkaError(f"retention not set: {refused}")
        # The brokers learn the change from the controller a moment later: report what they then say.
        deadline = time.monotonic() + timeout
        while True:
            states = _states(admin, retention, set(missing))
            if all(state.retention_ms == str(retention[state.name]) for state in states) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)
    finally:
        admin.close()


def _admin(bootstrap: str, security: dict[str, Any], timeout: float) -> KafkaAdminClient:
    """An admin client, retried while the brokers are still electing (a fresh cluster's first seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return made(KafkaAdminClient, bootstrap_servers=bootstrap.split(","), request_timeout_ms=30_000, **security)
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _states(admin: KafkaAdminClient, names: Iterable[str], created: set[str]) -> list[TopicState]:
    described = {topic["name"]: topic for topic in admin.describe_topics(list(names))}
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in described])
    retention = {name: _retention(configs, name) for name in described}
    return [
        TopicState(
            name=name,
            created=name in created,
            partitions=len(topic["partitions"]),
            replication_factor=len(topic["partitions"][0]["replica_nodes"]) if topic["partitions"] else 0,
            retention_ms=retention[name],
        )
        for name, topic in sorted(described.items())
    ]


def _retention(configs: dict[str, Any], name: str) -> str:
    """``retention.ms`` of one topic from a DescribeConfigs answer (``{"topic": {name: {key: {"value": …}}}}``)."""
    return str(configs.get("topic", {}).get(name, {}).get("retention.ms", {}).get("value", "?"))
