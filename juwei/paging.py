"""One page-size rule for every list that pages: ``limit`` from 1 to ``PAGE_MAX``, else 422."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Large enough for a building's worth of anything in one go, small enough that one request stays cheap.
PAGE_MAX = 1000

Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description=f"Page size, 1 to {PAGE_MAX}")]
