"""The Kafka image's entrypoint formats the broker's storage with any cluster id ``juwei init`` could have written.

An id beginning with "-" (1 in 64 random ones, before ``juwei init`` stopped drawing them) was read by
StorageTool as an option: the broker never formatted its storage and restarted for good (seen once in CI, in the
offline bundle's stack). Run here with the real StorageTool, from the jars the session's broker uses.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

from juwei.broker import LocalBroker
from juwei.envfile import cluster_id

ROOT = Path(__file__).resolve().parents[2]
DASHED = "-5MgS5THDQfi6_mWESKFp5"  # 22 characters of url-safe base64, a valid UUID, beginning with "-"


def entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_entrypoint", ROOT / "deploy" / "kafka" / "entrypoint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_storage_is_formatted_with_a_cluster_id_that_begins_with_a_dash(
    broker: LocalBroker | None, tmp_path: Path
) -> None:
    assert broker is not None, "the session's own broker has the jars (unset JUWEI_KAFKA_BOOTSTRAP)"
    config = tmp_path / "server.properties"
    data = tmp_path / "data"
    config.write_text(
        "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:1\n"
        "listeners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1\ncontroller.listener.names=CONTROLLER\n"
        f"log.dirs={data}\n"
    )
    command = entrypoint().format_command(DASHED, config, str(broker.libs_dir / "*"))
    formatted = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    assert f"cluster.id={DASHED}" in (data / "meta.properties").read_text()


def test_juwei_init_never_draws_a_cluster_id_beginning_with_a_dash() -> None:
    drawn = [cluster_id() for _ in range(5000)]  # with 1 in 64 beginning with "-", about 78 would
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", one) for one in drawn)
    assert len(set(drawn)) == len(drawn)
