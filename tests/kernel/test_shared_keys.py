"""A key generated into the data folder (development) is the same for every process that asks at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from juwei.settings import Settings


def _ask(data_dir: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(Settings(data_dir=Path(data_dir)).shared_key("JUWEI_HEALTH_KEY"))


def test_services_started_side_by_side_get_one_shared_key(tmp_path: Path) -> None:
    # Many processes asking at the same moment, as `juwei run` and the tests start the services.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_ask, args=(str(tmp_path), queue)) for _ in range(8)]
    for process in processes:
        process.start()
    keys = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert len(set(keys)) == 1 and len(keys[0]) == 44
    assert (tmp_path / "juwei_health_key.key").read_text().strip() == keys[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["juwei_health_key.key"]  # no candidate left behind
