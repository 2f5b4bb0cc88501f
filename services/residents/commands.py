"""The residents service's own commands, mounted by the kernel as ``juwei residents …``.

``juwei residents import buildings|residents FILE --compound C`` runs the very use case the HTTP upload runs
(``application.imports.import_sheet``): the same checks, all rows or none, the same events; it only adds a
progress bar (or ``--json`` lines) and acts as the district operator, recorded as ``cli:<user>``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from juwei.aggregate import DomainRuleViolation
from juwei.callers import OPERATOR_ROLE, Caller, Forbidden
from juwei.progress import Progress

commands = typer.Typer(help="The residents service's own commands.", no_args_is_help=True)
console = Console(stderr=True)


def _refuse(as_json: bool, problem: dict[str, Any], say: str) -> typer.Exit:
    """A refused import: the problem as JSON on stdout with --json, else on stderr for a person."""
    if as_json:
        typer.echo(json.dumps({"problem": problem}, ensure_ascii=False))
    else:
        console.print(say, highlight=False, markup=False)
    return typer.Exit(1)


@commands.command("import")
def import_sheet(
    kind: Annotated[Literal["buildings", "residents"], typer.Argument(help="What the sheet holds: buildings first")],
    file: Annotated[Path, typer.Argument(help="The sheet (.csv or .xlsx)", exists=True, dir_okay=False)],
    compound: Annotated[str, typer.Option(help="The compound the sheet belongs to")],
    mapping: Annotated[
        str | None, typer.Option(help='Headings the import does not know, as JSON: {"heading": "field" or null}')
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who imports it (kept with the events; default: $USER)")] = None,
    language: Annotated[Literal["en", "zh"], typer.Option(help="Language of the problems reported")] = "en",
    as_json: Annotated[
        bool, typer.Option("--json", help="Progress (rows done, rows) and the summary as JSON lines on stdout")
    ] = False,
) -> None:
    """Import buildings, or households and residents, from a CSV or XLSX sheet: all rows or none."""
    from juwei.service import Runtime
    from services.residents import spreadsheets
    from services.residents.app import service
    from services.residents.application import imports

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", compound):  # the API's rule for a compound id
        raise typer.BadParameter(f"{compound!r} is not a compound id", param_hint="--compound")
    chosen: dict[str, str | None] | None = None
    if mapping is not None:
        try:
            chosen = json.loads(mapping)
        except ValueError:
            chosen = None
        if not isinstance(chosen, dict):
            raise typer.BadParameter('a JSON object: {"heading": "field" or null}', param_hint="--mapping")
    runtime = Runtime(service)
    runtime.migrate()
    who = f"cli:{actor or os.environ.get('USER') or 'unknown'}"[:64]  # the event table's actor column
    caller = Caller(key_id=who, role=OPERATOR_ROLE, compound=compound, buildings=None)
    try:
        sheet = spreadsheets.read_sheet(file.read_bytes(), file.name)
        with Progress(as_json=as_json) as progress:
            stage = progress.stage(f"import {kind}", len(sheet.cells))
            answer = imports.import_sheet(
                runtime, caller, compound, kind, sheet, runtime.settings.local_today(), chosen, language, stage
            )
            summary = {"compound": compound, **answer.model_dump(mode="json")}
            progress.finish(
                summary,
                f"imported {answer.rows} rows of {file.name} into {compound}: {answer.events} events "
                f"(buildings {answer.buildings.created} new, households {answer.households.created} new, "
                f"residents {answer.residents.created} new, {answer.residents.changed} changed)",
            )
    except spreadsheets.UnreadableFile as exc:
        raise _refuse(as_json, {"code": exc.code, "detail": exc.say_in(language)}, exc.say_in(language)) from None
    except DomainRuleViolation as exc:
        problem = {"code": exc.code, "detail": str(exc), **exc.details}
        rows = (
            f"line {e['line']}, {e['heading'] or e['column']}: {e['reason']}" for e in exc.details.get("errors", [])
        )
        raise _refuse(as_json, problem, "\n".join([str(exc), *rows])) from None
    except Forbidden as exc:
        raise _refuse(as_json, {"code": "forbidden", "detail": str(exc)}, str(exc)) from None
    finally:
        runtime.database.dispose()
