"""Typed calls of the four services' public APIs that an integrator uses most; each service also has its feed.

Every call takes the compound (``c1``) and compound-local ids, as the paths do. A refusal raises
``ProblemError``; a write may carry ``idempotency_key`` (8 to 100 of ``A-Za-z0-9_-``, made once per action):
sent again, the service answers the first answer and does nothing twice, and the client may retry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from juwei_client.connection import DEFAULT_TIMEOUT, Connection
from juwei_client.feed import Feed
from juwei_client.models import (
    Answered,
    Batch,
    BatchProgress,
    Building,
    FaqEntry,
    Household,
    QuestionGroup,
    QuestionReceived,
    ResultRecorded,
    Round,
    RoundCounts,
    Tube,
    Whoami,
)


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(part, safe="") for part in parts)


class Service:
    """A service's API at ``base_url`` with the key ``key``; the options are ``Connection``'s."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        language: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.connection = Connection(
            base_url, key, timeout=timeout, retries=retries, backoff=backoff, language=language, client=client
        )
        self.feed = Feed(self.connection)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def whoami(self) -> Whoami:
        return Whoami.of(self.connection.get("/whoami"))

    def _get(self, *parts: str, params: dict[str, Any] | None = None) -> Any:
        return self.connection.get(_path(*parts), params)

    def _post(self, *parts: str, body: Any, idempotency_key: str | None = None) -> Any:
        return self.connection.post(_path(*parts), body, idempotency_key=idempotency_key)


class Residents(Service):
    """The register: buildings and households (names and phones masked unless revealed; reveals are audited)."""

    def buildings(self, compound: str) -> list[Building]:
        return [Building.of(b) for b in self._get("compounds", compound, "buildings")["buildings"]]

    def households(self, compound: str, building: str, *, reveal: bool = False) -> list[Household]:
        params = {"reveal": "true"} if reveal else None
        body = self._get("compounds", compound, "buildings", building, "households", params=params)
        return [Household.of(h) for h in body["households"]]


class Testing(Service):
    """Rounds, tubes and results; results are health data, read only by keys granted them."""

    def rounds(self, compound: str) -> list[Round]:
        return [Round.of(r) for r in self._get("compounds", compound, "rounds")["rounds"]]

    def round(self, compound: str, round: str) -> Round:
        return Round.of(self._get("compounds", compound, "rounds", round))

    def counts(self, compound: str, round: str, *, building: str | None = None) -> RoundCounts:
        body = self._get("compounds", compound, "rounds", round, "counts", params={"building": building})
        return RoundCounts.of(body)

    def tube(self, compound: str, tube: str) -> Tube:
        return Tube.of(self._get("compounds", compound, "tubes", tube))

    def record_result(
        self, compound: str, round: str, resident: str, result: str, *, idempotency_key: str | None = None
    ) -> ResultRecorded:
        """A resident's individual result (``negative``, ``positive`` or ``invalid``) for the sample of theirs
        that awaits one; a positive one opens a case (``case``)."""
        path = ("compounds", compound, "rounds", round, "residents", resident, "result")
        return ResultRecorded.of(self._post(*path, body={"result": result}, idempotency_key=idempotency_key))

    def record_tube_result(
        self, compound: str, tube: str, result: str, *, idempotency_key: str | None = None
    ) -> ResultRecorded:
        """The lab's result for a pooled tube: negative clears it, positive asks each of its people to re-test."""
        path = ("compounds", compound, "tubes", tube, "result")
        return ResultRecorded.of(self._post(*path, body={"result": result}, idempotency_key=idempotency_key))


class Supplies(Service):
    """Supply batches, their allocation and delivery progress."""

    def batches(self, compound: str) -> list[Batch]:
        return [Batch.of(b) for b in self._get("compounds", compound, "batches")["batches"]]

    def batch(self, compound: str, batch: str) -> Batch:
        return Batch.of(self._get("compounds", compound, "batches", batch))

    def progress(self, compound: str, batch: str, *, building: str | None = None) -> BatchProgress:
        body = self._get("compounds", compound, "batches", batch, "progress", params={"building": building})
        return BatchProgress.of(body)


class Notify(Service):
    """notify's questions: passed on from a building, grouped as near-duplicates, answered to every building."""

    def ask(self, compound: str, building: str, text: str, *, idempotency_key: str | None = None) -> QuestionReceived:
        path = ("compounds", compound, "buildings", building, "questions")
        return QuestionReceived.of(self._post(*path, body={"text": text}, idempotency_key=idempotency_key))

    def question_groups(self, compound: str, *, status: str = "open", limit: int = 100) -> list[QuestionGroup]:
        body = self._get("compounds", compound, "question-groups", params={"status": status, "limit": limit})
        return [QuestionGroup.of(g) for g in body["groups"]]

    def answer(
        self,
        compound: str,
        group: str,
        question: str,
        answer: str,
        *,
        policy_points: Sequence[str] = (),
        priority: str | None = None,
        idempotency_key: str | None = None,
    ) -> Answered:
        """The answer goes to every building that asked, and to the FAQ."""
        body: dict[str, Any] = {"question": question, "answer": answer, "policy_points": list(policy_points)}
        if priority is not None:
            body["priority"] = priority
        path = ("compounds", compound, "question-groups", group, "answer")
        return Answered.of(self._post(*path, body=body, idempotency_key=idempotency_key))

    def faq(self, compound: str) -> list[FaqEntry]:
        return [FaqEntry.of(f) for f in self._get("compounds", compound, "faq")["faq"]]
