"""The commands of the ``juwei`` command that span services: the demo, retention, the event catalogue.

``register`` adds them to the kernel's command (``juwei.cli``), which finds it through the registered suite.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from juwei.progress import Progress
from juwei.registration import suite
from juwei.settings import settings

if TYPE_CHECKING:
    from juwei.service import Runtime

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command()(retention)
    app.command()(catalogue)
    app.command()(demo)
    from console.cli import console_app

    app.add_typer(console_app, name="console")


def _runtime(name: str) -> Runtime:
    from juwei.service import Runtime, load_definition

    return Runtime(load_definition(name))


def retention(
    compound: Annotated[str, typer.Argument(help="The compound whose lockdown is over")],
    force: Annotated[
        bool, typer.Option(help="Retire even though the residents service does not see the lockdown over")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who ordered it (kept with the record)")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Services to apply it in (default: all)")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Progress (a line per service) and the figures as JSON lines on stdout")
    ] = False,
) -> None:
    """Remove the compound's identity and health data in every service, keeping aggregate figures.

    Refused while the compound or one of its buildings is sealed or controlled (residents' zones), unless
    --force. Identities, prescriptions and donor names are crypto-shredded; per-person health rows are
    deleted or blanked; the figures kept are printed and recorded in each service. Running it again is safe.
    """
    # Logs are JSON on stderr (the `juwei` command's callback set them up): stdout carries only the figures.
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", compound):
        raise typer.BadParameter(f"{compound!r} is not a compound id")
    chosen = service or suite().names
    if not force:
        from services.residents.retention import lockdown_over

        runtime = _runtime("residents")
        runtime.migrate()
        over, why = lockdown_over(runtime, compound)
        runtime.database.dispose()
        if not over:
            console.print(f"[red]{why}[/]; nothing was removed (--force overrides)")
            raise typer.Exit(1)
        console.print(why)
    reports = {}
    with Progress(as_json=as_json) as progress:
        stage = progress.stage("retention", len(chosen))
        for name in chosen:
            runtime = _runtime(name)
            runtime.migrate()
            reports[name] = runtime.retire(compound, actor=actor or os.environ.get("USER"))
            runtime.database.dispose()
            stage.advance()
        # Without --json stdout stays the one JSON document of the figures kept, as scripts read it.
        progress.finish(
            {"compound": compound, "services": reports},
            json.dumps(reports, indent=2, ensure_ascii=False, sort_keys=True),
        )


def catalogue(
    write: Annotated[Path | None, typer.Option(help="Write the AsyncAPI file here (default: print it)")] = None,
) -> None:
    """Generate the AsyncAPI event catalogue from the services' contracts (their published events)."""
    from composition.catalogue import render

    text = render(suite())
    if write is None:
        typer.echo(text)
    else:
        write.write_text(text)
        console.print(f"wrote {write}")


def demo(
    base_url_residents: Annotated[str | None, typer.Option(help="Default: JUWEI_HOST and JUWEI_RESIDENTS_PORT")] = None,
    base_url_supplies: Annotated[str | None, typer.Option(help="Default: JUWEI_HOST and JUWEI_SUPPLIES_PORT")] = None,
    base_url_testing: Annotated[str | None, typer.Option(help="Default: JUWEI_HOST and JUWEI_TESTING_PORT")] = None,
    base_url_notify: Annotated[str | None, typer.Option(help="Default: JUWEI_HOST and JUWEI_NOTIFY_PORT")] = None,
    key: Annotated[str | None, typer.Option(help="Operator key (default: JUWEI_DEMO_KEY or the data dir's)")] = None,
    compound: Annotated[str, typer.Option(help="The compound to register (must be new)")] = "c1",
    scale: Annotated[float, typer.Option(help="1.0: 25 buildings, 5,000 residents; 0.16: 4 buildings")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same compound")] = 2022,
    kafka: Annotated[str | None, typer.Option(help="Broker to read consumer lag from (default: the suite's)")] = None,
    role_keys: Annotated[
        str, typer.Option(help="auto | cli (`juwei keys create` per role) | operator (the operator key for all)")
    ] = "auto",
    sink_host: Annotated[str, typer.Option(help="Address the local WeCom/DingTalk/e-mail sinks listen on")] = (
        "127.0.0.1"
    ),
    sink_advertised: Annotated[
        str | None, typer.Option(help="Host notify reaches the sinks at (compose: host.docker.internal)")
    ] = None,
) -> None:
    """Run the seed compound's day against a running suite, through the services' HTTP APIs only."""
    from demo.compound import Size
    from demo.scenario import DemoError, Options, run_demo

    config = settings()
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    operator = key or os.environ.get("JUWEI_DEMO_KEY")
    if operator is None:
        path = config.data_dir / "operator.key"
        if not path.exists():
            console.print(f"[red]no operator key: {path} does not exist[/] (start with `juwei run --detach`, or --key)")
            raise typer.Exit(2)
        operator = path.read_text().strip()
    given = {
        "residents": base_url_residents,
        "supplies": base_url_supplies,
        "testing": base_url_testing,
        "notify": base_url_notify,
    }
    urls = {name: url or f"http://{host}:{config.port(name)}" for name, url in given.items()}
    options = Options(
        urls=urls,
        key=operator,
        compound=compound,
        size=Size.at(scale),
        seed=seed,
        kafka=kafka or config.bootstrap,
        role_keys=role_keys,
        sink_host=sink_host,
        sink_advertised=sink_advertised,
    )
    try:
        outcome = run_demo(options, console)
    except DemoError as exc:
        console.print(f"[red]the demo stopped: {exc}[/]")
        raise typer.Exit(1) from None
    if not outcome.ok:
        raise typer.Exit(1)
