"""A client of Juwei's public HTTP APIs: typed calls, a resumable feed follower, a webhook verifier.

    from juwei_client import Residents, follow

    residents = Residents("http://127.0.0.1:8001", key)
    for building in residents.buildings("c1"):
        print(building.number, building.households)
    follow(residents.connection, print, "residents.position").run()

It depends on httpx alone; it imports nothing of the services.
"""

from juwei_client.connection import Connection
from juwei_client.feed import Event, Feed, FeedPage, FilePosition, Follower, MemoryPosition, PositionStore, follow
from juwei_client.models import (
    Answered,
    Batch,
    BatchProgress,
    Building,
    BuildingCount,
    BuildingDelivery,
    FaqEntry,
    Household,
    QuestionGroup,
    QuestionReceived,
    Resident,
    ResultRecorded,
    Round,
    RoundCounts,
    Tube,
    Whoami,
)
from juwei_client.problems import Problem, ProblemError
from juwei_client.services import Notify, Residents, Service, Supplies, Testing
from juwei_client.webhooks import WebhookVerificationError, WebhookVerifier, sign

__all__ = [
    "Answered",
    "Batch",
    "BatchProgress",
    "Building",
    "BuildingCount",
    "BuildingDelivery",
    "Connection",
    "Event",
    "FaqEntry",
    "Feed",
    "FeedPage",
    "FilePosition",
    "Follower",
    "Household",
    "MemoryPosition",
    "Notify",
    "PositionStore",
    "Problem",
    "ProblemError",
    "QuestionGroup",
    "QuestionReceived",
    "Resident",
    "Residents",
    "ResultRecorded",
    "Round",
    "RoundCounts",
    "Service",
    "Supplies",
    "Testing",
    "Tube",
    "WebhookVerificationError",
    "WebhookVerifier",
    "Whoami",
    "follow",
    "sign",
]
