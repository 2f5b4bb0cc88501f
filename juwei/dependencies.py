"""What a route may ask FastAPI for, each named once: the service's runtime, today, one command's unit of work.

The role and scope of the caller are ``juwei.auth.admit`` (the suite names its role sets once, in
``contracts.access``). A route parses its input, calls a use case of its service's application layer with
these, and presents what comes back.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from juwei.auth import CompoundId, current_caller
from juwei.callers import Caller
from juwei.service import Runtime
from juwei.unit_of_work import UnitOfWork


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


def today_of(request: Request) -> date:
    """Today where the compounds are (``JUWEI_TIMEZONE``; ``JUWEI_TODAY`` pins it)."""
    return runtime_of(request).settings.local_today()


def unit_of_work(
    request: Request, compound: CompoundId, caller: Annotated[Caller, Depends(current_caller)]
) -> UnitOfWork:
    """One command of the caller in the compound of the path; the use case enters it (``with unit:``)."""
    return UnitOfWork(runtime_of(request), compound, caller.key_id)


RuntimeOf = Annotated[Runtime, Depends(runtime_of)]
Today = Annotated[date, Depends(today_of)]
Unit = Annotated[UnitOfWork, Depends(unit_of_work)]
