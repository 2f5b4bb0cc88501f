"""Composing the day's accounts: one message per building group and day, through notify's own fan-out.

A message's id is derived from (building, day), and composing appends to that message's empty stream under
the append lock: a second trigger, a restart, a second notify process or the set hour after an early
on-demand account all find it composed and add nothing. Its deliveries go the way of every message
(``handlers.compose``): one per channel with a unique key, paced, held in quiet hours, digested when a
platform's limit is reached.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select

from juwei.service import Runtime
from juwei.session import Session
from services.notify import handlers
from services.notify.account.domain import (
    COMPOUND,
    TEMPLATE,
    account_params,
    building_figures,
    compound_figures,
    due,
    parse_hour,
)
from services.notify.account.views import account_counts, account_rounds
from services.notify.domain import building_label
from services.notify.rules import day as day_words
from services.notify.rules import render_texts
from services.notify.views import groups

log = structlog.get_logger("notify.account")
ACCOUNT_JOB = "send_daily_accounts"


def message_id(compound: str, building: str, day: date) -> str:
    """The account's id for one group and day: the idempotency key of the whole send."""
    return f"{compound}:m-{handlers.derived_id('daily-account', building, day.isoformat())}"


def day_figures(
    session: Session, compound: str, day: date
) -> tuple[dict[str, dict[str, int | None]], dict[str, int | None]]:
    """Each building's figures for the day, and the compound's."""
    buildings = list(session.execute(select(groups.c.building).where(groups.c.compound == compound)).scalars())
    counted: dict[str, dict[str, int]] = defaultdict(dict)
    for building, figure, count in session.execute(
        select(account_counts.c.building, account_counts.c.figure, account_counts.c.count).where(
            account_counts.c.compound == compound, account_counts.c.day == day
        )
    ):
        counted[building][figure] = int(count)
    missing: dict[str, int] = {}
    for building, residents, tested in session.execute(
        select(account_rounds.c.building, account_rounds.c.residents, account_rounds.c.tested).where(
            account_rounds.c.compound == compound,
            account_rounds.c.last_day == day,
            account_rounds.c.residents.is_not(None),
        )
    ):
        missing[building] = missing.get(building, 0) + max(int(residents) - int(tested), 0)
    per_building = {b: building_figures(counted.get(b, {}), missing.get(b)) for b in buildings}
    return per_building, compound_figures(per_building, counted.get(COMPOUND, {}))


def compose_accounts(
    runtime: Runtime, session: Session, compound: str, day: date, actor: str | None = None
) -> tuple[list[str], int]:
    """Compose the day's account for every building group of the compound: (the buildings, how many new)."""
    per_building, whole = day_figures(session, compound, day)
    numbers = dict(
        session.execute(select(groups.c.building, groups.c.number).where(groups.c.compound == compound)).all()
    )
    new = 0
    for building, figures in sorted(per_building.items()):
        params = account_params(day, building_label(numbers.get(building), building), figures, whole)
        params["day"] = day_words(day)  # 4月12日 / 12 Apr 2022
        composed = handlers.compose(
            runtime,
            session,
            compound,
            message_id=message_id(compound, building, day),
            kind="event",
            priority="normal",
            buildings=[building],
            texts=render_texts(TEMPLATE, params),
            template=TEMPLATE,
            actor=actor,
        )
        new += 1 if composed else 0
    log.info("notify.daily_account", compound=compound, day=day.isoformat(), buildings=len(per_building), new=new)
    return sorted(per_building), new


def check_seconds() -> float:
    return float(os.environ.get("JUWEI_DAILY_ACCOUNT_CHECK_SECONDS", "60"))


# Per runtime: the day and the compounds whose account this process has seen composed (saves a transaction a tick).
_DONE: weakref.WeakKeyDictionary[Runtime, tuple[date, set[str]]] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def hour_from_env() -> time | None:
    """The set hour, read at start: a malformed ``JUWEI_DAILY_ACCOUNT_AT`` fails the start, not each tick."""
    return parse_hour(os.environ.get("JUWEI_DAILY_ACCOUNT_AT", "20:00"))


def job(at: time | None) -> Callable[[Runtime], None]:
    """The periodic job: once the set hour has passed, today's accounts of every compound (once per process,
    and the message ids make it once in all)."""

    def send_daily_accounts(runtime: Runtime) -> None:
        send_due(runtime, at)

    assert send_daily_accounts.__name__ == ACCOUNT_JOB
    return send_daily_accounts


def send_due(runtime: Runtime, at: time | None) -> None:
    now = datetime.now(ZoneInfo(runtime.settings.timezone))
    if not due(now, at):
        return
    today = runtime.settings.local_today()
    with _GUARD:
        seen, done = _DONE.get(runtime, (today, set()))
        if seen != today:  # a new day: yesterday's compounds are forgotten
            done = set()
        _DONE[runtime] = (today, done)
    with runtime.database.reading() as session:
        compounds = set(session.execute(select(groups.c.compound).distinct()).scalars())
    for compound in sorted(compounds):
        if compound in done:
            continue
        with runtime.database.unit_of_work() as session:
            compose_accounts(runtime, session, compound, today)
        done.add(compound)
