"""What the call-list routes give: typed answers (no request bodies: ``done`` takes none)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class CallOut(BaseModel):
    """One household to call or visit: where it is (as its officer's grant allows: no name, no phone) and what
    to say (the urgent message's Chinese text)."""

    call: str = Field(description="the id in the done mark's path")
    building: str = Field(examples=["b12"])
    building_number: str = Field(examples=["12"])
    household: str = Field(examples=["b12-0302"])
    floor: int | None = None
    room: int | None = None
    reason: Literal["no_smartphone", "not_in_group"] | None = None
    message: str
    template: str = Field(description="which kind of urgent message (case_confirmed, unit_called, ...)")
    priority: str
    say: str = Field(description="what to tell the household, in Chinese: the message's title and body")
    listed_at: datetime
    due_at: datetime
    overdue: bool
    done: bool
    done_at: datetime | None = None
    done_by: str | None = Field(None, description="the id of the key that marked it done")


class CallListOut(BaseModel):
    building: str
    open: int = Field(description="calls not yet done")
    calls: list[CallOut]


class OverdueOut(BaseModel):
    """Calls not done in time, oldest deadline first: staff follow up with the building's officer."""

    overdue: int
    calls: list[CallOut]
