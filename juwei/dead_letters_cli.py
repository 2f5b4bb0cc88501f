"""``juwei dlq``: list, show, requeue and drop dead letters, and list what operators did to them.

Bad input (an unknown or malformed id, a time that is not one) is one line on stderr and exit code 2; Kafka
not answering is one line and exit code 1. ``--json`` puts only JSON on stdout.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from juwei.dead_letters import (
    ACTIONS_TOPIC,
    Action,
    DeadLetter,
    DeadLetterError,
    DeadLetterId,
    DeadLetterOffice,
    KafkaUnreachable,
    Ledger,
    Selection,
)

dlq_app = typer.Typer(
    help="Dead letters: what consumers could not handle (<topic>.dlq) — list, show, requeue, drop.",
    no_args_is_help=True,
)

BootstrapOption = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers (default: JUWEI_KAFKA_BOOTSTRAP, else the local broker)")
]
TimeoutOption = Annotated[float, typer.Option(min=0.5, help="Seconds Kafka may take to answer before giving up")]
ActionsTopicOption = Annotated[str, typer.Option(help="Where actions (requeue, drop) are recorded")]
TopicOption = Annotated[
    list[str] | None, typer.Option("--topic", "-t", help="Original topic (juwei.residents) or its .dlq; repeatable")
]
TypeOption = Annotated[str | None, typer.Option("--type", help="Event type contains this (HouseholdRegistered)")]
ErrorOption = Annotated[str | None, typer.Option("--error", help="Error or error type contains this (any case)")]
SinceOption = Annotated[
    str | None, typer.Option(help="Dead-lettered at or after: ISO time (UTC unless it says) or a duration ago: 2h")
]
UntilOption = Annotated[str | None, typer.Option(help="Dead-lettered at or before: ISO time or a duration ago")]
JsonOption = Annotated[bool, typer.Option("--json", help="Only JSON on stdout")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who acts (default: $USER); recorded with the action")]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why; recorded with the action")]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="Dead letters' ids: <topic>.dlq:<partition>:<offset>")]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter the filters admit (not dropped)")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Say what would be done; do nothing")]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WHO = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")


def parse_moment(option: str, text: str, now: datetime | None = None) -> datetime:
    """An ISO time (naive: UTC; a date alone: its midnight) or a duration ago ("90s", "30m", "2h", "7d", "1w")."""
    value = text.strip()
    duration = _DURATION.fullmatch(value.lower())
    if duration:
        seconds = float(duration.group(1)) * _UNITS[duration.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DeadLetterError(
            f"{option} {text!r} is neither a time (2026-12-06T08:00, UTC unless it says +08:00) "
            "nor a duration like 90s, 30m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _selection(
    topic: list[str] | None, event_type: str | None, error: str | None, since: str | None, until: str | None
) -> Selection:
    now = datetime.now(UTC)
    return Selection(
        topics=tuple(topic or ()),
        event_type=event_type,
        error=error,
        since=parse_moment("--since", since, now) if since else None,
        until=parse_moment("--until", until, now) if until else None,
    )


def _office(bootstrap: str | None, actions_topic: str, timeout: float) -> DeadLetterOffice:
    from juwei.settings import settings

    config = settings()
    return DeadLetterOffice(bootstrap or config.bootstrap, config.kafka_security(), actions_topic, timeout)


@contextmanager
def _answering() -> Iterator[None]:
    """The operator's mistakes end in one line and exit 2, Kafka's absence in one line and exit 1."""
    try:
        yield
    except DeadLetterError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KafkaUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _who(by: str | None) -> str:
    who = (by or os.environ.get("USER") or "").strip()
    if not who:
        raise DeadLetterError("say who acts: --by <your name> (or set USER)")
    if not _WHO.match(who):
        raise DeadLetterError("--by must be 1-100 printable characters")
    return who


def _short(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dlq_app.command("list")
def list_letters(
    topic: TopicOption = None,
    event_type: TypeOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    include_dropped: Annotated[bool, typer.Option("--include-dropped", help="Dropped ones too")] = False,
    with_actions: Annotated[bool, typer.Option("--with-actions", help="Each letter's actions (who, when)")] = False,
    as_json: JsonOption = False,
    bootstrap: BootstrapOption = None,
    timeout: TimeoutOption = 30.0,
    actions_topic: ActionsTopicOption = ACTIONS_TOPIC,
) -> None:
    """Dead letters, oldest first: id, original topic, event type, error, when; dropped ones left out."""
    with _answering(), _office(bootstrap, actions_topic, timeout) as office:
        selection = _selection(topic, event_type, error, since, until)
        ledger = office.ledger()
        letters = [letter for letter in office.letters(selection) if include_dropped or not ledger.dropped(letter.id)]
    if as_json:
        rows = [_listed(letter, ledger, with_actions) for letter in letters]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"dead letters ({len(letters)})")
    table.add_column("id", no_wrap=True)  # copied into show, requeue and drop: kept whole
    for column in ("original topic", "event type", "error", "dead-lettered (UTC)", "state"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        error_text = f"{letter.error_type}: {_short(letter.error, 80)}" if letter.error_type else ""
        state = ledger.state(letter.id)
        if with_actions:
            state = "\n".join([state, *(f"{a.action} by {a.by} {_time(a.at)}" for a in ledger.of(letter.id))])
        # The type without its topic's prefix (juwei.residents.X.v1 → X.v1): the column beside names the topic.
        event_type = (letter.event_type or "(none)").removeprefix(f"{letter.original_topic}.")
        table.add_row(str(letter.id), letter.original_topic, event_type, error_text, _time(letter.at), state)
    Console().print(table)


def _listed(letter: DeadLetter, ledger: Ledger, with_actions: bool) -> dict[str, Any]:
    row = {**letter.summary(), "state": ledger.state(letter.id)}
    if with_actions:
        row["actions"] = [action.as_json() for action in ledger.of(letter.id)]
    return row


@dlq_app.command("show")
def show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="<topic>.dlq:<partition>:<offset>")],
    bootstrap: BootstrapOption = None,
    timeout: TimeoutOption = 30.0,
    actions_topic: ActionsTopicOption = ACTIONS_TOPIC,
) -> None:
    """One dead letter whole, as JSON: where it came from, the error, its headers, key, payload and actions."""
    with _answering(), _office(bootstrap, actions_topic, timeout) as office:
        letter = office.letter(DeadLetterId.parse(letter_id))
        ledger = office.ledger()
    whole = {
        **letter.whole(),
        "state": ledger.state(letter.id),
        "actions": [a.as_json() for a in ledger.of(letter.id)],
    }
    typer.echo(json.dumps(whole, indent=2, ensure_ascii=False))


def _chosen(
    office: DeadLetterOffice, ids: list[str] | None, every: bool, selection: Selection, ledger: Ledger
) -> list[DeadLetter]:
    """The letters named by id (each must exist), or with ``--all`` those the filters admit, not dropped."""
    if ids and every:
        raise DeadLetterError("name dead letters by id or choose --all with filters, not both")
    if ids:
        return [office.letter(DeadLetterId.parse(text)) for text in dict.fromkeys(ids)]
    if not every:
        raise DeadLetterError("name the dead letters by id, or say --all (with --topic, --type, --error, --since)")
    return [letter for letter in office.letters(selection) if not ledger.dropped(letter.id)]


def _report(actions: list[Action], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([action.as_json() for action in actions], indent=2, ensure_ascii=False))
        return
    for action in actions:
        where = f" → {action.requeued_as}" if action.requeued_as else ""
        typer.echo(f"{action.action} {action.dead_letter}{where} (event {action.event_id or 'without id'})")


@dlq_app.command("requeue")
def requeue(
    ids: IdsArgument = None,
    every: AllOption = False,
    topic: TopicOption = None,
    event_type: TypeOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    again: Annotated[bool, typer.Option("--again", help="With --all: also those requeued before")] = False,
    by: ByOption = None,
    note: NoteOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    bootstrap: BootstrapOption = None,
    timeout: TimeoutOption = 30.0,
    actions_topic: ActionsTopicOption = ACTIONS_TOPIC,
) -> None:
    """Send dead letters back to their original topic and partition (key, value and headers as they were).

    Safe to repeat: each consumer group skips an event its inbox already holds. Fix the cause first (deploy
    the handler or catalogue that failed), or the letter comes back as a new dead letter.
    """
    with _answering(), _office(bootstrap, actions_topic, timeout) as office:
        who = _who(by)
        selection = _selection(topic, event_type, error, since, until)
        ledger = office.ledger()
        letters = _chosen(office, ids, every, selection, ledger)
        if every and not again:
            letters = [letter for letter in letters if not ledger.requeued(letter.id)]
        if dry_run:
            for letter in letters:
                typer.echo(f"would requeue {letter.id} to {letter.original_topic}", err=as_json)
            return
        done = [office.requeue(letter, who, note) for letter in letters]
    _report(done, as_json)
    if not done:
        typer.echo("nothing to requeue", err=True)


@dlq_app.command("drop")
def drop(
    ids: IdsArgument = None,
    every: AllOption = False,
    topic: TopicOption = None,
    event_type: TypeOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = None,
    note: NoteOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    bootstrap: BootstrapOption = None,
    timeout: TimeoutOption = 30.0,
    actions_topic: ActionsTopicOption = ACTIONS_TOPIC,
) -> None:
    """Mark dead letters dropped, so lists leave them out (Kafka keeps the record until its retention)."""
    with _answering(), _office(bootstrap, actions_topic, timeout) as office:
        who = _who(by)
        selection = _selection(topic, event_type, error, since, until)
        ledger = office.ledger()
        letters = _chosen(office, ids, every, selection, ledger)
        if dry_run:
            for letter in letters:
                typer.echo(f"would drop {letter.id}", err=as_json)
            return
        done = [office.drop(letter, who, note) for letter in letters if not ledger.dropped(letter.id)]
    _report(done, as_json)
    if not done:
        typer.echo("nothing to drop", err=True)


@dlq_app.command("actions")
def actions(
    topic: TopicOption = None,
    by: Annotated[str | None, typer.Option("--by", help="Only this operator's")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
    bootstrap: BootstrapOption = None,
    timeout: TimeoutOption = 30.0,
    actions_topic: ActionsTopicOption = ACTIONS_TOPIC,
) -> None:
    """What operators did to dead letters: who, when, which letter and event, requeued where."""
    with _answering(), _office(bootstrap, actions_topic, timeout) as office:
        selection = _selection(topic, None, None, since, until)
        recorded = office.ledger().actions
    wanted = {name.removesuffix(".dlq") for name in selection.topics}
    chosen = [
        action
        for action in recorded
        if (not wanted or action.original_topic in wanted)
        and (by is None or action.by == by)
        and (selection.since is None or action.at >= selection.since)
        and (selection.until is None or action.at <= selection.until)
    ]
    if as_json:
        typer.echo(json.dumps([action.as_json() for action in chosen], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"dead-letter actions ({len(chosen)})")
    for column in ("when (UTC)", "by", "action", "dead letter", "event", "requeued as", "note"):
        table.add_column(column, overflow="fold")
    for action in chosen:
        event = f"{action.event_type or '(none)'} {action.event_id or ''}".strip()
        table.add_row(
            _time(action.at), action.by, action.action, action.dead_letter, event, action.requeued_as or "",
            action.note or "",
        )  # fmt: skip
    Console().print(table)
