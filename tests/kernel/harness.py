"""Small pieces the kernel tests share: runtimes on a given database and broker, keys, waiting."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from juwei.auth import issue_key
from juwei.callers import Holder
from juwei.service import Runtime, ServiceDefinition
from juwei.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def runtime(definition: ServiceDefinition, database_url: str, kafka: str = "127.0.0.1:1") -> Runtime:
    made = Runtime(definition, Settings(kafka_bootstrap=kafka), database_url=database_url)
    made.migrate()
    return made


def key(made: Runtime, role: str = "staff", compound: str | None = "c1", buildings: list[str] | None = None) -> str:
    with made.database.unit_of_work() as session:
        return issue_key(session, role, compound, buildings, holder=Holder("system", f"test {role}")).key


def wait_for(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def partitions_of(consumer: KafkaConsumer, *topics: str) -> list[TopicPartition]:
    """Every partition of the topics, once the broker has told the client about each."""
    for topic in topics:
        wait_for(lambda topic=topic: bool(consumer.partitions_for_topic(topic)), what=f"metadata of {topic}")
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]


def start_at_the_end(kafka: str, group: str, *topics: str) -> None:
    """Commit the group's offsets at the topics' ends: what earlier runs and other tests published is not ours."""
    committer = KafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    try:
        partitions = partitions_of(committer, *topics)
        committer.assign(partitions)
        ends = committer.end_offsets(partitions)
        committer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in partitions})
    finally:
        committer.close(autocommit=False)


def relay_everything(made: Runtime) -> int:
    """Publish every stored event the relay has not yet published; how many it published."""
    relay = made.make_relay()
    sent = 0
    try:
        while batch := relay.publish_once():
            sent += batch
    finally:
        relay.close()
    return sent


def published(kafka: str, topic: str, publish: Callable[[], object], compound: str) -> list[ConsumerRecord]:
    """The compound's records that ``publish`` adds to the topic: read exactly from the topic's ends before it to
    its ends after. A shared topic holds every earlier test's records first, and a reader that stops after a few
    quiet seconds stopped early on a loaded broker (it once read none of 5,000)."""
    reader = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    try:
        partitions = partitions_of(reader, topic)
        before = reader.end_offsets(partitions)
        publish()
        return _read_between(reader, before, reader.end_offsets(partitions), compound)
    finally:
        reader.close()


def on_topic(kafka: str, topic: str, compound: str | None = None) -> list[ConsumerRecord]:
    """Every record on the topic now (the compound's only, when named), from its start to its ends at the call:
    what a test published before it calls this is all there, so the reader knows where to stop instead of
    guessing from a few quiet seconds."""
    reader = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    try:
        partitions = partitions_of(reader, topic)
        return _read_between(reader, reader.beginning_offsets(partitions), reader.end_offsets(partitions), compound)
    finally:
        reader.close()


def _read_between(
    reader: KafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    compound: str | None,
) -> list[ConsumerRecord]:
    partitions = list(ends)
    reader.assign(partitions)
    for partition in partitions:
        reader.seek(partition, starts[partition])
    read: list[ConsumerRecord] = []

    def read_to_the_end() -> bool:
        for records in reader.poll(timeout_ms=1000).values():
            read.extend(
                r
                for r in records
                if r.offset < ends[TopicPartition(r.topic, r.partition)]
                and (compound is None or dict(r.headers).get("ce_compound") == compound.encode())
            )
        return all(reader.position(partition) >= ends[partition] for partition in partitions)

    wait_for(read_to_the_end, timeout=300, what=f"the records of {sorted({p.topic for p in partitions})}")
    return sorted(read, key=lambda r: (r.partition, r.offset))


def spawn(command: str, service: str, suffix: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``juwei relay|consume tests.kernel.sample:<service>`` as a real child process."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), JUWEI_SAMPLE_SUFFIX=suffix, **env)
    return subprocess.Popen(
        [sys.executable, "-m", "juwei.cli", command, f"tests.kernel.sample:{service}"],
        cwd=ROOT,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
