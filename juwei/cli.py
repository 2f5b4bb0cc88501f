"""``juwei``: run the suite locally, serve one service, relay, consume, replay, manage keys and the broker."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from juwei import stack_cli
from juwei.dead_letters_cli import dlq_app
from juwei.keys_cli import keys_app
from juwei.registration import suite, topic_of
from juwei.settings import Settings, settings

app = typer.Typer(
    help="Juwei — event-sourced services for a residents' committee.",
    epilog="A service's own commands: juwei <service> --help (e.g. juwei residents import).",
    no_args_is_help=True,
)
broker_app = typer.Typer(help="The local Kafka broker (KRaft, jars from Maven Central).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(broker_app, name="broker")
app.add_typer(dlq_app, name="dlq")
console = Console(stderr=True)

ServiceArg = Annotated[str, typer.Argument(help="A registered service (residents, supplies, …) or module:attribute")]


@app.callback()
def _json_logs() -> None:
    # Every command's log lines are JSON on stderr (stdout keeps a command's own output, e.g. --json).
    from juwei.logs import configure_logging

    try:
        config = settings()
    except ValueError:  # a bad setting is reported by the command that reads it
        configure_logging(service="cli")
        return
    configure_logging(config.log_level, config.log_levels, service="cli")


def _runtime(spec: str):
    from juwei.service import configured_runtime

    return configured_runtime(spec)


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, _frame: object) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command()
def serve(
    service: ServiceArg,
    port: Annotated[int | None, typer.Option(help="Default: JUWEI_<SERVICE>_PORT or the service's port")] = None,
    background: Annotated[bool, typer.Option(help="Run the relay and consumers in this process")] = True,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="API processes; default: JUWEI_API_WORKERS (1)")
    ] = None,
) -> None:
    """Serve one service over HTTP (migrates its database first)."""
    count = workers or settings().api_workers
    if count > 1:
        from juwei.workers import serve_workers

        # Before juwei.service (and prometheus_client with it) is imported: see juwei.workers.
        serve_workers(service, settings().host, port, count, background)
        return
    import uvicorn

    from juwei.service import create_app

    runtime = _runtime(service)
    application = create_app(runtime, background=background)
    uvicorn.run(
        application,
        host=runtime.settings.host,
        port=port or runtime.settings.port(runtime.definition.name),
        # Uvicorn's lines go through the root handler as JSON (juwei.logs); the app logs each request itself
        # (`http.request`: method, route template, status), so uvicorn's access lines, which carry the raw
        # query string, stay off.
        log_config=None,
        log_level=None,
        access_log=False,
    )


@app.command()
def relay(service: ServiceArg) -> None:
    """Run only the outbox relay of a service (its database → its Kafka topic)."""
    runtime = _runtime(service)
    runtime.migrate()
    _stop_on_signals(runtime._stop.set)
    runtime.start_background(relay=True, consumers=False)
    runtime.wait_forever()
    runtime.stop()


@app.command()
def consume(service: ServiceArg) -> None:
    """Run only the Kafka consumers of a service."""
    runtime = _runtime(service)
    runtime.migrate()
    _stop_on_signals(runtime._stop.set)
    runtime.start_background(relay=False, consumers=True)
    runtime.wait_forever()
    runtime.stop()


@app.command()
def migrate(service: ServiceArg) -> None:
    """Upgrade a service's database to the newest schema."""
    import structlog

    _runtime(service).migrate()
    structlog.get_logger("juwei.cli").info("service.migrated")  # a log line like Alembic's, not text among them


@app.command()
def replay(
    service: ServiceArg,
    projection: Annotated[list[str] | None, typer.Argument(help="Projections to rebuild (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Progress and the summary as JSON lines on stdout")] = False,
) -> None:
    """Rebuild read models from position 0; the service keeps answering from the old ones until done."""
    from juwei.progress import Progress

    runtime = _runtime(service)
    runtime.migrate()
    started = time.perf_counter()
    with Progress(as_json=as_json) as progress:
        count = runtime.projector.rebuild(projection or None, report=progress.stage("replay"))
        elapsed = time.perf_counter() - started
        chosen = projection or [p.name for p in runtime.projector.projections]
        progress.finish(
            {"service": runtime.definition.name, "projections": chosen, "events": count},
            f"replayed {count} events into {projection or 'all projections'} in {elapsed:.2f}s",
        )


def _broker(config: Settings):
    from juwei.broker import LocalBroker

    return LocalBroker(
        config.data_dir / "kafka",
        port=config.kafka_port,
        controller_port=config.kafka_controller_port,
        partitions=config.kafka_partitions,
    )


def _topics(services: list[str]) -> list[str]:
    from juwei.consumer import dead_letter_topic

    return [name for s in services for name in (topic_of(s), dead_letter_topic(topic_of(s)))]


@broker_app.command("start")
def broker_start() -> None:
    """Fetch (first time), format and start the local broker; create the services' topics."""
    broker = _broker(settings())
    broker.start()
    broker.create_topics(_topics(suite().names))
    console.print(f"Kafka broker at [bold]{broker.bootstrap}[/]")


@app.command()
def topics(
    bootstrap: Annotated[str | None, typer.Option(help="Default: JUWEI_KAFKA_BOOTSTRAP, else the local broker")] = None,
    partitions: Annotated[int | None, typer.Option(help="Of new topics (default: JUWEI_KAFKA_PARTITIONS)")] = None,
    retention_ms: Annotated[
        int, typer.Option(envvar="JUWEI_KAFKA_RETENTION_MS", help="Of the event topics; -1 keeps every event")
    ] = -1,
    dlq_retention_ms: Annotated[
        int, typer.Option(envvar="JUWEI_KAFKA_DLQ_RETENTION_MS", help="Of the dead-letter topics (30 days)")
    ] = 30 * 24 * 3600 * 1000,
) -> None:
    """Create the services' topics where missing and bring their retention in line (the stack's topic job)."""
    from juwei.consumer import dead_letter_topic
    from juwei.topics import ensure_topics

    config = settings()
    names = _topics(suite().names)
    dead = {dead_letter_topic(name) for name in names}
    retention = {name: dlq_retention_ms if name in dead else retention_ms for name in names}
    states = ensure_topics(
        bootstrap or config.bootstrap, retention, partitions or config.kafka_partitions, config.kafka_security()
    )
    for state in states:
        typer.echo(
            f"{state.name}: {'created' if state.created else 'kept'}, {state.partitions} partitions, "
            f"replication factor {state.replication_factor}, retention.ms {state.retention_ms}"
        )


@broker_app.command("stop")
def broker_stop() -> None:
    _broker(settings()).stop()


@broker_app.command("fetch")
def broker_fetch() -> None:
    """Fetch the broker jars from Maven Central (once)."""
    _broker(settings()).fetch()


def _run_dir(config: Settings) -> Path:
    path = config.data_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _operator_key(config: Settings) -> str:
    path = config.data_dir / "operator.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"jw_operator_{secrets.token_urlsafe(32)}\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _spawn_service(
    config: Settings, name: str, key: str, command: tuple[str, ...] | None = None
) -> subprocess.Popen[bytes]:
    logs = config.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JUWEI_BOOTSTRAP_KEY=key, JUWEI_KAFKA_BOOTSTRAP=config.bootstrap)
    log_file = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "juwei.cli", *(command or ("serve", name))],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    (_run_dir(config) / f"{name}.pid").write_text(str(process.pid))
    return process


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


@app.command()
def run(
    detach: Annotated[bool, typer.Option(help="Start everything and return (stop with `juwei stop`)")] = False,
) -> None:
    """Start the local broker and every service as processes, with SQLite under the data folder."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    config = settings()
    services = suite().names
    key = _operator_key(config)
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as progress:
            if not config.kafka_broker_external:
                task = progress.add_task("Kafka broker (first start fetches it from Maven Central)…")
                broker = _broker(config)
                broker.start()
                broker.create_topics(_topics(services))
                progress.update(task, description=f"Kafka broker at {broker.bootstrap}", completed=1, total=1)
            for name in services:
                task = progress.add_task(f"{name}…")
                started[name] = _spawn_service(config, name, key)
                ok = _wait_healthy(f"http://{config.host}:{config.port(name)}/healthz", started[name])
                state = "up" if ok else "did not answer (see logs)"
                progress.update(task, description=f"{name} {state}", completed=1, total=1)
            for companion in suite().companions:
                task = progress.add_task(f"{companion.name}…")
                started[companion.name] = _spawn_service(config, companion.name, key, companion.command)
                url = f"http://{config.host}:{config.port(companion.name)}/healthz"
                ok = _wait_healthy(url, started[companion.name])
                state = "up" if ok else "did not answer (see logs)"
                progress.update(task, description=f"{companion.name} {state}", completed=1, total=1)
    except KeyboardInterrupt:
        # Ctrl-C while starting: stop what already runs rather than leave it behind.
        stop()
        raise typer.Exit(130) from None
    table = Table(title="Juwei is running")
    table.add_column("part")
    table.add_column("where")
    table.add_row("Kafka", config.bootstrap)
    for name in services:
        table.add_row(name, f"http://{config.host}:{config.port(name)}  (docs: /docs, feed: /events)")
    for companion in suite().companions:
        table.add_row(companion.name, f"http://{config.host}:{config.port(companion.name)}")
    table.add_row("logs", str((config.data_dir / "logs").resolve()))
    table.add_row("operator key", key)
    Console().print(table)
    if not services:
        console.print("No services are built yet: only the broker runs.")
    if detach:
        return
    console.print("Ctrl-C stops everything.")
    stopping = False

    def _interrupt(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    while not stopping:
        time.sleep(0.3)
    stop()


@app.command()
def stop() -> None:
    """Stop what `juwei run` started: the services, then the local broker."""
    config = settings()
    for pid_file in sorted(_run_dir(config).glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if _reaped(pid):
                    break
                os.kill(pid, 0)
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink(missing_ok=True)
        console.print(f"stopped {pid_file.stem}")
    if not config.kafka_broker_external:
        _broker(config).stop()
        console.print("stopped the Kafka broker")


def _reaped(pid: int) -> bool:
    """True once our own child has exited (a zombie still answers kill -0)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


# ---------------------------------------------------------------- the compose stack and `juwei status`

stack_cli.register(app)
ComposeFileOption = stack_cli.ComposeFileOption
EnvFileOption = stack_cli.EnvFileOption
ProfileOption = stack_cli.ProfileOption


@app.command("status")
def status_command(
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="A service name, or name=URL (default: the services `juwei run` starts)"),
    ] = None,
    compose: Annotated[bool, typer.Option("--compose", help="The compose stack instead of `juwei run`'s")] = False,
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
    sample: Annotated[float, typer.Option(help="Seconds between two looks at each log head (0: no rate)")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Health, readiness, relay backlog, consumer lag per topic and events per second of every service."""
    import json

    from juwei.stack import Stack, StackError
    from juwei.status import Target, collect, render

    config = settings()
    explicit = dict(item.split("=", 1) if "=" in item else (item, "") for item in service or [])
    containers = None
    if compose:
        stack = stack_cli.open_stack(file, env_file, profile)
        try:
            containers = stack.ps()
        except StackError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        urls = Stack.endpoints(containers)
        names = list(explicit) or suite().names
        targets = [Target(name, explicit.get(name) or urls.get(name)) for name in names]
        # The brokers' external listener is plain PLAINTEXT on this host; an outside cluster uses the settings.
        bootstrap = Stack.kafka_bootstrap(containers) or config.kafka_bootstrap
        extra = {} if Stack.kafka_bootstrap(containers) else config.kafka_security()
    else:
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
        names = list(explicit) or suite().names
        targets = [Target(name, explicit.get(name) or f"http://{host}:{config.port(name)}") for name in names]
        bootstrap, extra = config.bootstrap, config.kafka_security()
    report = collect(targets, bootstrap, extra, sample_seconds=sample, containers=containers)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        render(report, Console())
    if not report.ok:
        raise typer.Exit(1)


# The commands that span the registered suite's services (a demo, retention, the event catalogue).
_commands = suite().commands
if _commands is not None:
    _commands(app)


def mount_service_commands(names: list[str]) -> None:
    """The named services' own commands (``ServiceDefinition.commands``) as ``juwei <service> …``."""
    from juwei.service import load_definition

    for name in names:
        own = load_definition(name).commands
        if own is not None:
            app.add_typer(own, name=name)


# Only the service named on the command line is imported (`juwei residents import …`): the others' imports
# would slow every command down.
if len(sys.argv) > 1 and sys.argv[1] in suite().names:
    mount_service_commands([sys.argv[1]])


def main() -> None:
    try:
        app()
    except Exception:
        # A crash is one JSON line too (with the traceback in its `exception` field), not a screen of text.
        import structlog

        structlog.get_logger("juwei.cli").exception("command.failed", command=" ".join(sys.argv[1:2]))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
