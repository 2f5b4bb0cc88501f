"""What a service answers about itself: ``GET /healthz``, ``/readyz`` and ``/status`` (and ``juwei status``).

Strict models (a key they do not name is a bug), kept apart from the app factory that serves them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]
    service: str


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ready"]
    checks: dict[str, str] = Field(description="Each part checked (database, consumers) and `ok`")


class RelayStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    published_position: int
    backlog: int = Field(description="Events appended and not yet on Kafka")


class ProjectionStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    own_position: int
    inbox_seq: int


class ConsumerStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str
    topics: list[str]
    lag: dict[str, int | None] | None = Field(
        description="Records behind per topic (None: no such topic); None: unknown"
    )


class KafkaStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    up: bool | None
    error: str | None
    checked_seconds_ago: float | None


class ServiceStatus(BaseModel):
    """What ``GET /status`` (and ``juwei status``) shows of one service."""

    model_config = ConfigDict(extra="forbid")
    service: str
    topic: str
    head_position: int
    relay: RelayStatus
    projections: dict[str, ProjectionStatus]
    consumer: ConsumerStatus
    kafka: KafkaStatus
