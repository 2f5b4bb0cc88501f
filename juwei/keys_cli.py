"""``juwei keys``: API keys for people and systems, stored hashed in every service's database."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from juwei.callers import OPERATOR_ROLE
from juwei.registration import suite

if TYPE_CHECKING:
    from juwei.service import Runtime

keys_app = typer.Typer(help="API keys (stored hashed in every service's database).", no_args_is_help=True)
console = Console(stderr=True)


def _runtime(spec: str) -> Runtime:
    # Imported when a command runs: the services' modules would slow every other command down.
    from juwei.service import configured_runtime

    return configured_runtime(spec)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="Role the key acts in")],
    compound: Annotated[str | None, typer.Option(help="Compound it is scoped to (none: district-wide)")] = None,
    subdistrict: Annotated[
        str | None, typer.Option(help="Subdistrict it is scoped to (an official's key): its registered compounds")
    ] = None,
    buildings: Annotated[str | None, typer.Option(help="Comma-separated buildings it may act on")] = None,
    label: Annotated[str | None, typer.Option(help="A note for the key list")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Services to store it in (default: all)")] = None,
    staff: Annotated[str | None, typer.Option(help="Issued to this registered staff member (id)")] = None,
    volunteer: Annotated[
        str | None, typer.Option(help="Issued to this enlisted volunteer (id); default buildings: theirs")
    ] = None,
    household: Annotated[str | None, typer.Option(help="Issued to this household (id); its building")] = None,
    official: Annotated[str | None, typer.Option(help="Issued to a named official (district, subdistrict)")] = None,
    system: Annotated[str | None, typer.Option(help="Issued to another system (its name)")] = None,
    grant_types: Annotated[
        str | None, typer.Option(help="external-consumer: event types it reads (a.b.Event, or a.b.* for all)")
    ] = None,
    grant_compounds: Annotated[str | None, typer.Option(help="external-consumer: compounds it reads")] = None,
    grant_health: Annotated[bool, typer.Option(help="external-consumer: may read health data")] = False,
) -> None:
    """Create one key for one person or system and store it in every service, so it works everywhere.

    Staff, volunteers and households must be in the register (a volunteer stood down gets none); the key is
    printed once.
    """
    from juwei.auth import issue_key
    from juwei.callers import Grant, Holder

    given = {"staff": staff, "volunteer": volunteer, "household": household, "official": official, "system": system}
    named = [(kind, value) for kind, value in given.items() if value]
    if len(named) != 1:
        raise typer.BadParameter("name whom the key is for: --staff, --volunteer, --household, --official or --system")
    kind, value = named[0]
    if subdistrict is not None:
        if compound is not None or buildings is not None:
            raise typer.BadParameter("a subdistrict's key names no --compound and no --buildings")
        if kind != "official" or role == OPERATOR_ROLE:
            raise typer.BadParameter(
                "a subdistrict's key is issued to an official (--official), not as district operator"
            )
    if kind in ("staff", "volunteer", "household"):
        if compound is None:
            raise typer.BadParameter(f"a key for a {kind} belongs to a compound: add --compound")
        value = f"{compound}:{value}"
    try:
        holder = Holder(kind, value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    chosen_services = service or suite().names
    # The suite's roles and who may hold them; another definition (module:attribute) names its own roles.
    holders = suite().key_holders if all(":" not in name for name in chosen_services) else None
    problem = holders.problem(role, holder) if holders is not None else None
    if problem:
        raise typer.BadParameter(problem)
    grant = None
    if grant_types or grant_compounds or grant_health:
        if role != "external-consumer":
            raise typer.BadParameter("only an external-consumer key carries a grant")
        grant = Grant(_names(grant_types), _names(grant_compounds), grant_health)
    chosen = buildings.split(",") if buildings else None
    if holders is not None and kind in ("staff", "volunteer", "household"):
        problem, home = holders.check(holder)
        if problem:
            console.print(f"[red]{problem}[/]; no key was made")
            raise typer.Exit(1)
        if chosen is None and kind in ("volunteer", "household") and home is not None:
            chosen = [home]  # a volunteer's key names their building, a household's its own
    key = None
    for name in chosen_services:
        runtime = _runtime(name)
        runtime.migrate()
        with runtime.database.unit_of_work() as session:
            key = issue_key(
                session, role, compound, chosen, label, key=key, holder=holder, grant=grant, subdistrict=subdistrict
            ).key
    if key is None:
        raise typer.BadParameter("no service to store the key in")
    typer.echo(key)


def _names(text: str | None) -> frozenset[str] | None:
    return frozenset(part.strip() for part in text.split(",") if part.strip()) if text else None


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The id part of jw_<id>_<secret>")],
    service: Annotated[list[str] | None, typer.Option()] = None,
) -> None:
    """Revoke a key everywhere at once (to replace it with a grace period: `juwei keys rotate`)."""
    from juwei.auth import revoke_key

    for name in service or suite().names:
        runtime = _runtime(name)
        with runtime.database.unit_of_work() as session:
            done = revoke_key(session, key_id)
        console.print(f"{name}: {'revoked' if done else 'no such active key'}")


def parse_duration(text: str) -> timedelta:
    """ "90s", "30m", "24h", "7d" or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            return timedelta(seconds=float(value[:-1]) * units[value[-1]])
        return timedelta(seconds=float(value))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m, 24h or 7d") from None


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The id part of the key to replace")],
    grace: Annotated[str, typer.Option(help="How long the old key keeps working: 0, 30m, 24h, 7d")] = "24h",
    service: Annotated[list[str] | None, typer.Option(help="Services to rotate it in (default: all)")] = None,
) -> None:
    """Issue a successor with the same role and scope everywhere; the old key stops after the grace period.

    The new key is printed once. Hand it out; `juwei keys revoke <old id>` ends the grace period early.
    """
    from juwei.auth import KeyNotActive, rotate_key

    period = parse_duration(grace)
    if period < timedelta(0):
        raise typer.BadParameter("the grace period cannot be negative")
    successor = None
    rotated = []
    for name in service or suite().names:
        runtime = _runtime(name)
        runtime.migrate()
        try:
            with runtime.database.unit_of_work() as session:
                successor = rotate_key(session, key_id, period, successor).key
            rotated.append(name)
        except KeyNotActive:
            console.print(f"{name}: no active key {key_id}")
    if successor is None:
        console.print(f"[red]no service has an active key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"rotated in {', '.join(rotated)}; the old key stops in {period}")
    typer.echo(successor)


@keys_app.command("list")
def keys_list(
    service: Annotated[
        str | None, typer.Option(help="The service whose key table to show (default: the suite's first)")
    ] = None,
) -> None:
    """Keys that still work (ids, roles, scopes and expiry; never secrets)."""
    from juwei.auth import active_keys

    service = service or suite().names[0]
    runtime = _runtime(service)
    runtime.migrate()
    with runtime.database.reading() as session:
        rows = active_keys(session)
    table = Table(title=f"active keys ({service})")
    for column in ("id", "role", "compound", "buildings", "holder", "label", "expires", "successor"):
        table.add_column(column)
    for row in rows:
        expires = row["expires_at"].isoformat(timespec="minutes") if row["expires_at"] else ""
        scope = row["compound"] or (f"(subdistrict {row['subdistrict']})" if row["subdistrict"] else "(district)")
        table.add_row(
            row["id"], row["role"], scope, row["buildings"] or "(all)",
            f"{row['holder_kind']}:{row['holder']}", row["label"] or "", expires, row["successor"] or "",
        )  # fmt: skip
    Console().print(table)
