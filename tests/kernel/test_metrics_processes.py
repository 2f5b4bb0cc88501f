"""Metrics with several API processes: `juwei serve --workers 2` as a real process, its counters summed across
the workers (prometheus-client's multiprocess mode), the parent's relay figures beside them, a killed worker's
counts kept and its live gauges dropped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from juwei.topics import ensure_topics
from tests.conftest import ROOT
from tests.kernel.harness import key, runtime, wait_for
from tests.kernel.sample import definitions


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _samples(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _served_by_pid(folder: Path, route: str) -> dict[int, float]:
    """Requests to ``route`` per process, read from each process's own counter file."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key_text, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _family, sample, labels, _help = json.loads(key_text)
            if sample == "juwei_http_requests_total" and labels.get("route") == route:
                counts[pid] = counts.get(pid, 0) + value
    return counts


@pytest.fixture
def served(kafka: str, tmp_path: Path, suffix: str) -> Iterator[dict]:
    desk, _board = definitions(suffix)
    ensure_topics(kafka, {desk.topic: -1}, 3)
    database = f"sqlite:///{tmp_path / 'desk.db'}"
    made = runtime(desk, database, kafka)
    staff = key(made)
    made.database.dispose()
    port = _free_port()
    temp = tmp_path / "tmp"  # where the service makes its metrics folder (tempfile honours TMPDIR)
    temp.mkdir()
    env = {
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(temp),
        "JUWEI_SAMPLE_SUFFIX": suffix,
        f"JUWEI_{desk.name.upper()}_DATABASE_URL": database,
        "JUWEI_KAFKA_BOOTSTRAP": kafka,
        "JUWEI_HOST": "127.0.0.1",
        "JUWEI_DATA_DIR": str(tmp_path / "data"),
        "JUWEI_LOG_LEVEL": "WARNING",
    }
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | env
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "juwei.cli", "serve", "tests.kernel.sample:desk", "--workers", "2",
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            # A long wait: a request given up on would still be counted, after the test read the counts.
            return httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=120, what="juwei serve --workers 2 to answer")
        folders = list(temp.glob("juwei-metrics-*"))
        assert len(folders) == 1, folders
        yield {"url": url, "process": process, "folder": folders[0], "staff": staff, "desk": desk, "log": log}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()[-3000:]
    assert not folders[0].exists()  # the folder goes with the service


def test_counters_add_up_across_worker_processes(served: dict) -> None:
    url, folder, parent = served["url"], served["folder"], served["process"].pid
    sent = sum(_served_by_pid(folder, "/healthz").values())  # the fixture's own waits for an answer

    def get(_: int) -> int:
        with httpx.Client() as fresh:  # a new connection each: either worker may accept it
            return fresh.get(f"{url}/healthz", timeout=60).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        # Batches until both workers have answered some (the kernel hands connections to whichever accepts; on a
        # loaded machine the second worker may still be starting).
        deadline = time.monotonic() + 300
        while len(_served_by_pid(folder, "/healthz")) < 2 and time.monotonic() < deadline:
            assert set(pool.map(get, range(40))) == {200}
            sent += 40
    served_by = _served_by_pid(folder, "/healthz")
    assert len(served_by) == 2 and parent not in served_by, served_by
    assert sum(served_by.values()) == sent

    for _ in range(6):  # each scrape is answered by one worker, and counts what both served
        scraped = httpx.get(f"{url}/metrics", timeout=60).text
        assert _samples(scraped, "juwei_http_requests_total", route="/healthz", status="200") == sent

    # The parent runs the relay: what it published is in every worker's /metrics.
    written = httpx.post(
        f"{url}/compounds/c1/tallies/1", json={"amount": 3}, headers={"X-API-Key": served["staff"]}, timeout=60
    )
    assert written.status_code == 201, written.text
    topic = served["desk"].topic
    wait_for(
        lambda: _samples(httpx.get(f"{url}/metrics", timeout=60).text, "juwei_relay_published_total", topic=topic) == 1,
        what="the parent's relay to be counted",
    )

    # A killed worker: uvicorn starts another; its counts stay in the sum, its live gauges are dropped.
    victim = next(iter(served_by))
    assert (folder / f"gauge_livemin_{victim}.db").exists()  # juwei_kafka_up, from its look at Kafka
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not (folder / f"gauge_livemin_{victim}.db").exists(), what="the dead worker to be marked")
    scraped = httpx.get(f"{url}/metrics", timeout=60).text
    assert _samples(scraped, "juwei_http_requests_total", route="/healthz", status="200") == sent
