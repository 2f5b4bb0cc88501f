"""Schemathesis against each service's own OpenAPI schema, in process: no 5xx, no answer that breaks the schema.

Every operation of the four apps gets ``JUWEI_FUZZ_EXAMPLES`` valid requests and as many invalid ones (default 12
each, which keeps ``make test`` inside the hour; 20 before; derandomized, so CI sees the same inputs every run),
sent with a district operator's key so that they reach the deepest code: once with the generated compound, once in
compound c1, which already has buildings, residents, points, rounds, batches and channels. Each answer must be
below 500, be problem+json when it is an error and, where the schema documents that status, match its schema and
its media type. Streaming routes are left out (they never end) and so is /readyz (it waits on an absent broker);
both are covered elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.access.seed import seed
from tests.access.world import PROBLEM, SERVICES, World

EXAMPLES = int(os.environ.get("JUWEI_FUZZ_EXAMPLES", "12"))
SKIPPED = {"/events/stream", "/boards/{token}/stream", "/readyz"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    made = World(tmp / "data", {s: f"sqlite:///{tmp / s}.db" for s in SERVICES}, rate_limit_per_second=0)
    seed(made)
    yield made
    made.close()


def fuzz(
    operation: Any, mode: GenerationMode, in_c1: bool, headers: dict[str, str], statuses: Counter[int]
) -> list[str]:
    """Send the operation's generated requests; returns what went wrong."""
    label = f"{operation.method.upper()} {operation.path} ({mode.value}{', in c1' if in_c1 else ''})"
    failures: list[str] = []

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing input is reported as it was
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(mode, path_parameters={"compound": "c1"} if in_c1 else None))
    def probe(case: schemathesis.Case) -> None:
        # What is checked is no 5xx and the schema, not speed: on a loaded CI machine an answer took over
        # schemathesis's default 10 s and failed as a timeout.
        response = case.call(headers=headers, timeout=120)
        statuses[response.status_code] += 1
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )
            if response.status_code >= 400:
                assert response.headers.get("content-type", [""])[0] == PROBLEM, "an error without problem+json"
        except Exception as exc:
            failures.append(f"{label}: {exc}\n  {case.as_curl_command()}")

    # Unsatisfiable: nothing to make invalid (no parameters, no body); the valid requests covered it.
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        probe()
    return failures


@pytest.mark.timeout(900)
@pytest.mark.parametrize("service", SERVICES)
def test_no_generated_request_breaks_the_service_or_its_schema(world: World, service: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.clients[service].app)
    headers = {"X-API-Key": world.operator}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        for mode in GenerationMode:
            for in_c1 in (False, True) if "{compound}" in operation.path else (False,):
                failures += fuzz(operation, mode, in_c1, headers, statuses)
    took = time.perf_counter() - started
    print(
        f"\n{service}: {statuses.total()} generated requests in {took:.0f}s, statuses {dict(sorted(statuses.items()))}"
    )
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
