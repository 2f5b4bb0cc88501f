"""A compound on the running suite: its residents published, its groups given sinks, a round sampled.

Shared by ``result_latency.py`` and ``seed_round.py``. Everything after the residents' events goes through
the services' public HTTP APIs. Residents' events are built from the residents service's published
catalogue by ``tests.testing.compound`` (as the testing service's own tests and ``testing_round.py`` do)
and published onto ``juwei.residents`` as the residents relay would.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from suite import Publisher, Suite, group_lag

from tests.testing.compound import Compound

T = TypeVar("T")
R = TypeVar("R")
ROUND = "r1"
POINTS = 6
UPLOAD_TUBES = 100  # the most tubes one upload may carry (testing's MAX_UPLOAD_TUBES)
PLATE_WELLS = 96


def in_parallel(work: Callable[[T], R], items: Iterable[T], workers: int = 8) -> list[R]:
    """``work`` over ``items`` on ``workers`` threads; the first error is raised."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-client") as pool:
        return list(pool.map(work, items))


def token(compound: str, building: str) -> str:
    return f"{compound}-{building}"


def tokens(compound: Compound) -> list[str]:
    return [token(compound.compound, b) for b in compound.buildings]


def settled(suite: Suite, topics: Sequence[tuple[str, str]]) -> Callable[[], bool]:
    """True once every (group, topic) pair has no lag."""
    return lambda: all(group_lag(suite.bootstrap, group, topic) == 0 for group, topic in topics)


def stored_time(value: str | datetime) -> float:
    """A DateTime column → POSIX seconds: PostgreSQL's timestamptz, or SQLite's naive UTC text."""
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def notify_unsent(suite: Suite) -> int:
    rows = suite.rows("notify", "SELECT count(*) FROM notify_deliveries WHERE status IN ('pending', 'sending')")
    return int(rows[0][0])


def publish_residents(suite: Suite, compound: Compound, log: Callable[..., None]) -> None:
    """Residents' events onto the bus; waits until testing's and notify's consumers have taken them all."""
    publisher = Publisher(suite.bootstrap)
    try:
        started = time.perf_counter()
        publisher.send(compound.envelopes)
        publisher.flush()
    finally:
        publisher.close()
    published = time.perf_counter() - started
    waited = suite.wait(
        "residents consumed",
        settled(suite, [("juwei-testing", "juwei.residents"), ("juwei-notify", "juwei.residents")]),
        timeout=900,
        every=0.5,
    )
    events = len(compound.envelopes)
    log(
        f"{compound.compound}: {events:,} residents events published in {published:.1f} s, "
        f"consumed by testing and notify {waited:.1f} s later"
    )


def attach_sinks(suite: Suite, compound: Compound) -> None:
    """One signed webhook per building group (no platform rate limit: every message goes out on its own)."""
    assert suite.sink is not None
    sink = suite.sink

    def attach(building: str) -> None:
        suite.post(
            "notify",
            f"/compounds/{compound.compound}/groups/{building}/channels",
            {
                "kind": "webhook",
                "config": sink.config(token(compound.compound, building)),
                "language": "zh",
                "label": f"{building}号楼 bench sink",
            },
        )

    in_parallel(attach, list(compound.buildings), workers=4)


def open_round(suite: Suite, c: str, pool_size: int = 10) -> None:
    """Six sampling points, the proposed assignment, and round r1 (notify tells every group it is coming)."""
    for n in range(1, POINTS + 1):
        suite.post(
            "testing",
            f"/compounds/{c}/points",
            {"point": f"p{n}", "name": f"Point {n}", "location": f"gate {n}", "throughput": 4.0},
        )
    suite.post("testing", f"/compounds/{c}/assignment/proposal")
    suite.post(
        "testing",
        f"/compounds/{c}/rounds",
        {
            "round": ROUND,
            "starts_at": "2022-04-12T07:00",
            "points": [f"p{n}" for n in range(1, POINTS + 1)],
            "mode": "floor",
            "floors_per_call": 3,
            "window_minutes": 15,
            "pool_size": pool_size,
        },
    )


def residents_by_building(compound: Compound) -> list[str]:
    """Local resident ids, building by building (a tube holds neighbours, as when floors are called down)."""
    return [
        resident
        for building in compound.buildings
        for resident, (b, *_rest) in compound.residents.items()
        if b == building
    ]


def sample(suite: Suite, c: str, tubes: Sequence[tuple[str, list[str]]], workers: int = 8) -> None:
    """Each (tube, residents) collected at a point of compound ``c``, in parallel."""

    def collect(item: tuple[int, tuple[str, list[str]]]) -> None:
        number, (tube, people) = item
        suite.post(
            "testing",
            f"/compounds/{c}/rounds/{ROUND}/samples",
            {"tube": tube, "residents": people, "point": f"p{number % POINTS + 1}"},
        )

    in_parallel(collect, list(enumerate(tubes)), workers=workers)


def upload(suite: Suite, c: str, tubes: Sequence[tuple[str, list[str]]], workers: int = 8) -> int:
    """The same tubes as ``sample`` (same points), each point uploading up to 100 tubes a request; requests sent."""
    by_point: dict[str, list[dict[str, Any]]] = {}
    for number, (tube, people) in enumerate(tubes):
        by_point.setdefault(f"p{number % POINTS + 1}", []).append({"tube": tube, "residents": people})
    uploads = [
        {"point": point, "tubes": listed[start : start + UPLOAD_TUBES]}
        for point, listed in by_point.items()
        for start in range(0, len(listed), UPLOAD_TUBES)
    ]
    in_parallel(lambda body: suite.post("testing", f"/compounds/{c}/rounds/{ROUND}/tubes", body), uploads, workers)
    return len(uploads)


def plates(suite: Suite, c: str, results: Sequence[tuple[str, str]], workers: int = 8) -> int:
    """The same results as ``tube_results``, 96 tubes to a lab plate; requests sent."""
    bodies = [
        (f"L{n + 1:05d}", {"results": [{"tube": t, "result": x} for t, x in results[start : start + PLATE_WELLS]]})
        for n, start in enumerate(range(0, len(results), PLATE_WELLS))
    ]
    in_parallel(
        lambda item: suite.post("testing", f"/compounds/{c}/plates/{item[0]}/results", item[1]), bodies, workers
    )
    return len(bodies)


def pools(people: Sequence[str], size: int, prefix: str = "T") -> list[tuple[str, list[str]]]:
    return [
        (f"{prefix}{n + 1:06d}", list(people[start : start + size]))
        for n, start in enumerate(range(0, len(people), size))
    ]


def tube_results(suite: Suite, c: str, results: Sequence[tuple[str, str]], workers: int = 8) -> None:
    in_parallel(
        lambda item: suite.post("testing", f"/compounds/{c}/tubes/{item[0]}/result", {"result": item[1]}),
        list(results),
        workers=workers,
    )


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q < 1) by linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of seconds, in milliseconds."""
    if not values:
        return {}
    return {
        "p50": round(quantile(values, 0.5) * 1000, 1),
        "p90": round(quantile(values, 0.9) * 1000, 1),
        "p99": round(quantile(values, 0.99) * 1000, 1),
        "max": round(max(values) * 1000, 1),
        "mean": round(statistics.fmean(values) * 1000, 1),
    }
