"""``juwei console``: serve the console, and give a staff member of the register an account."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console

from console.settings import NAME

console_app = typer.Typer(help="The committee's web console (its own app beside the services).", no_args_is_help=True)
err = Console(stderr=True)


@console_app.command("serve")
def serve(port: Annotated[int | None, typer.Option(help="Default: JUWEI_CONSOLE_PORT or 8005")] = None) -> None:
    """Serve the console over HTTP (migrates its own database first)."""
    import uvicorn

    from console.app import create_app
    from juwei.logs import configure_logging
    from juwei.settings import settings

    configure_logging(settings().log_level, settings().log_levels, service=NAME)
    uvicorn.run(
        create_app(),
        host=settings().host,
        port=port or settings().port(NAME),
        # Uvicorn's own lines as JSON through the root handler (juwei.logs); no access lines (raw query strings).
        log_config=None,
        log_level=None,
        access_log=False,
        proxy_headers=True,
    )


@console_app.command("add-staff")
def add_staff(
    compound: Annotated[str, typer.Option(help="The staff member's compound")],
    staff: Annotated[str, typer.Option(help="Their id in the register (residents' staff list)")],
    username: Annotated[str, typer.Option(help="What they sign in with (a-z, 0-9, . _ -)")],
    password: Annotated[
        str | None, typer.Option(help="Default: asked for twice", envvar="JUWEI_CONSOLE_PASSWORD")
    ] = None,
) -> None:
    """Give a staff member of the register a console account, with their own committee-staff key in every service.

    Running it again for the same username sets a new password and a new key (revoke the old with
    `juwei keys revoke`).
    """
    from console import accounts
    from console.database import migrate
    from console.sealing import KeySeal
    from console.settings import console_settings
    from contracts.roles import COMMITTEE_STAFF
    from juwei.auth import issue_key
    from juwei.callers import Holder
    from juwei.database import Database
    from juwei.registration import suite
    from juwei.service import Runtime, load_definition

    name = username.strip().lower()
    if not accounts.USERNAME.fullmatch(name):
        raise typer.BadParameter("a username is 2-64 of a-z, 0-9, '.', '_', '-'")
    if password is None:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise typer.BadParameter("the two passwords differ")
    if len(password) < accounts.MIN_PASSWORD:
        raise typer.BadParameter(f"a password has at least {accounts.MIN_PASSWORD} characters")
    holder = Holder("staff", f"{compound}:{staff}")
    holders = suite().key_holders
    if holders is not None:
        problem, _home = holders.check(holder)
        if problem:
            err.print(f"[red]{problem}[/]; no account was made")
            raise typer.Exit(1)
    key = None
    key_id = ""
    for service in suite().names:
        runtime = Runtime(load_definition(service))
        runtime.migrate()
        with runtime.database.unit_of_work() as session:
            issued = issue_key(session, COMMITTEE_STAFF, compound, None, f"console: {name}", key=key, holder=holder)
            key, key_id = issued.key, issued.caller.key_id
        runtime.database.dispose()
    if key is None:
        err.print("[red]no service is registered to hold the key[/]")
        raise typer.Exit(1)
    config = console_settings()
    database = Database(config.resolved_database_url())
    migrate(database)
    with database.unit_of_work() as session:
        accounts.add_account(
            session,
            KeySeal(config.resolved_secret()),
            username=name,
            compound=compound,
            staff=staff,
            password=password,
            key_id=key_id,
            key=key,
        )
    database.dispose()
    err.print(f"[green]{name}[/] can sign in to the console (staff {staff} of {compound}; key {key_id})")
