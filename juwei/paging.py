"""One paging rule for every list: ``limit`` from 1 to ``PAGE_MAX``, positions from 0 to ``MAX_POSITION``, else 422."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Large enough for a building's worth of anything in one go, small enough that one request stays cheap.
PAGE_MAX = 1000

Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description=f"Page size, 1 to {PAGE_MAX}")]

# Positions and seqs are 64-bit signed integers in both databases: a larger `after` is a client's mistake, not a 500.
MAX_POSITION = 2**63 - 1
