"""The compose stack as the benchmarks' target: the same ``Suite`` as the processes, served by containers.

``running_stack`` is ``suite.running_suite`` for the deployed stack (issue 20, item 3):

* the Docker engine of the stack tests (``tests/stack/conftest.py``: Debian's dockerd on a socket of its own,
  its data root under ``.local/test/docker`` unless ``--engine-home`` says otherwise), so the images
  ``make test`` built are reused; ``juwei images build`` runs only when one is missing;
* ``juwei init`` and ``juwei up`` (the single profile: one broker, PostgreSQL, the four services and the
  console), with the stack tests' published ports and an override file that publishes PostgreSQL on the
  loopback (the latency split reads the services' tables, as it reads the SQLite files of the processes)
  and gives testing and notify the bench's ``JUWEI_TODAY`` and dispatcher tick;
* the operator's bootstrap key; the per-key rate limit is raised instead of handing out eight keys (the
  same check runs per request either way);
* residents' events published on the broker's external listener, as the process suite does;
* the webhook sink on the host, bound to the compose network's gateway, which notify's container reaches;
* CPU and memory of each service read from ``/proc`` of its process on the host (the child of the
  container's init);
* ``juwei down --volumes`` at the end.

Nothing here asserts timings; the scripts print what they measure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from suite import SUITE_HOME, Process, Service, Suite, running_suite, start_sink

from tests.conftest import TEST_HOME
from tests.stack.conftest import HTTP_PORTS, KAFKA_PORTS, POSTGRES_PORT, DockerEngine, StackUnderTest, juwei

ENGINE_HOME = TEST_HOME / "docker"
OVERRIDE = """services:
  postgres:
    ports: ["127.0.0.1:{postgres}:5432"]
  testing:
    environment: {{JUWEI_TODAY: "{today}"}}
  notify:
    environment: {{JUWEI_TODAY: "{today}", JUWEI_NOTIFY_DISPATCH_SECONDS: "{dispatch}"}}
"""


@dataclass
class ContainerProcess(Process):
    """A service's process inside its container, seen from the host: ``/proc`` of the child of tini."""

    container: str = ""
    engine: DockerEngine | None = None
    host_pid: int = 0

    @property
    def pid(self) -> int:
        return self.host_pid

    def alive(self) -> bool:
        assert self.engine is not None
        state = self.engine.docker("inspect", "--format", "{{.State.Running}}", self.container, check=False)
        return state.stdout.strip() == "true"

    def stop(self, timeout: float = 30) -> None:
        """The stack stops as a whole (``juwei down``)."""

    def log_tail(self, lines: int = 30) -> str:
        assert self.engine is not None
        return self.engine.docker("logs", "--tail", str(lines), self.container, check=False).stdout


def _service_pid(engine: DockerEngine, container: str) -> int:
    """The host pid of the container's service: its init (``init: true``) has the one child."""
    init = int(engine.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())
    children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
    return int(children[0]) if children else init


class StackSuite(Suite):
    """``Suite`` whose services are the stack's containers and whose tables are in its PostgreSQL."""

    stack: StackUnderTest

    def database_path(self, service: str) -> Path:
        raise NotImplementedError("the stack's databases are PostgreSQL: use rows()")

    def rows(self, service: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
        # The stack's pooled engine: a benchmark settling asks every half second, a new connection each time cost more.
        with self.stack.sql(service).connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(query.replace("?", "%s"), params)]


def _ensure_images(engine: DockerEngine, log: Callable[..., None]) -> None:
    """Build the stack's images unless every one is on the engine (``juwei images list`` exits 1 if one is missing)."""
    listed = juwei(engine, "images", "list", "--json")
    if listed.returncode != 0:
        log("stack: building the images (juwei images build; minutes on a fresh engine)")
        started = time.monotonic()
        built = juwei(engine, "images", "build", timeout=3600)
        if built.returncode != 0:
            raise RuntimeError(f"juwei images build failed:\n{built.stderr[-3000:]}")
        log(f"stack: images built in {time.monotonic() - started:.0f} s")
        listed = juwei(engine, "images", "list", "--json")
    service = next(row for row in json.loads(listed.stdout) if row["part"] == "service")
    log(f"stack: {service['image']} built {service['created']} from revision {service['revision']}")


@contextmanager
def running_stack(
    services: Sequence[str],
    *,
    sink_tokens: Sequence[str] = (),
    env: dict[str, str] | None = None,
    engine_home: Path = ENGINE_HOME,
    log: Callable[..., None] = print,
) -> Iterator[Suite]:
    """The compose stack up with the bench's settings, the sink beside it; ``down --volumes`` on exit."""
    settings = env or {}
    with ExitStack() as exits:
        engine = DockerEngine(engine_home)
        if engine.start():
            exits.callback(engine.stop)
        log(f"stack: engine {engine.docker('version', '--format', '{{.Server.Version}}').stdout.strip()}")
        _ensure_images(engine, log)
        folder = SUITE_HOME / time.strftime("stack-%Y%m%d-%H%M%S")
        stack = StackUnderTest(engine, folder, JUWEI_RATE_LIMIT_PER_SECOND="10000", JUWEI_RATE_LIMIT_BURST="100000")
        stack.override.write_text(
            OVERRIDE.format(
                postgres=POSTGRES_PORT,
                today=settings.get("JUWEI_TODAY", ""),
                dispatch=settings.get("JUWEI_NOTIFY_DISPATCH_SECONDS", "0.25"),
            )
        )
        started = time.monotonic()
        exits.callback(lambda: stack.down("--volumes"))
        stack.up()
        log(f"stack: up in {time.monotonic() - started:.0f} s (juwei up --wait), folder {folder}")
        suite = StackSuite(f"127.0.0.1:{KAFKA_PORTS[0]}", folder, [stack.key])
        suite.stack = stack
        exits.callback(suite.client.close)
        exits.callback(stack.dispose)
        if sink_tokens:
            network = engine.docker("network", "inspect", "juwei_default", "--format",
                                    "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()  # fmt: skip
            suite.sink = start_sink(folder, sink_tokens, {}, host=network)
            exits.callback(suite.sink.process.stop)
        for name in services:
            container = stack.container(name)
            process = ContainerProcess(name, None, folder / f"{name}.log", container=container, engine=engine,  # type: ignore[arg-type]
                                       host_pid=_service_pid(engine, container))  # fmt: skip
            suite.services[name] = Service(name, HTTP_PORTS[name], process)
        log(f"stack: {', '.join(f'{s.name} :{s.port} (host pid {s.process.pid})' for s in suite.services.values())}")
        yield suite


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=["processes", "stack", "both"],
        default="processes",
        help="the services as processes on SQLite (default), the compose stack (containers, PostgreSQL), or both "
        "one after the other with their figures side by side",
    )
    parser.add_argument("--engine-home", type=Path, default=ENGINE_HOME, help="the Docker engine's home (stack)")


def targets(args: argparse.Namespace) -> list[str]:
    return ["processes", "stack"] if args.target == "both" else [args.target]


def run_targets(
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, str, Console], dict[str, Any]],
    figures: Callable[[dict[str, Any]], list[tuple[str, float]]],
    title: str,
) -> int:
    """Each chosen target's whole run; with both, their ``figures`` side by side (stack ÷ processes), or JSON."""
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 130)
    results = [run(args, target, console) for target in targets(args)]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return 0
    if len(results) == 2:
        table = Table(title=title)
        for name in ("figure", *(r["target"] for r in results), "stack ÷ processes"):
            table.add_column(name, justify="left" if name == "figure" else "right")
        for (label, processes), (_label, stack) in zip(figures(results[0]), figures(results[1]), strict=True):
            table.add_row(label, f"{processes:,.2f}", f"{stack:,.2f}", f"{stack / processes:.2f}" if processes else "—")
        console.print(table)
    return 0


def running(
    target: str,
    services: Sequence[str],
    *,
    engine_home: Path = ENGINE_HOME,
    profile: Sequence[str] = (),
    **settings: Any,
) -> AbstractContextManager[Suite]:
    """``running_suite`` for ``processes``, ``running_stack`` for ``stack``."""
    if target == "processes":
        return running_suite(services, profile=profile, **settings)
    if profile:
        raise SystemExit("--profile runs the services under py-spy as processes: not with --target stack")
    return running_stack(services, engine_home=engine_home, **settings)


if __name__ == "__main__":  # a smoke run: up, the services' status, down
    with running_stack(["testing", "notify"], env={"JUWEI_TODAY": "2022-04-12"}) as made:
        for service_name in made.services:
            print(service_name, made.status(service_name)["relay"], file=sys.stderr)
