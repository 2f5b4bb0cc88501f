"""Error answers as one exception: every 4xx/5xx of a Juwei service is an RFC 9457 problem.

A service answers ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and a stable
``code`` (the last part of ``type``); switch on ``code``, never on the words (they follow ``Accept-Language``).
An answer that is not a problem (a proxy's HTML page) is made one with ``type`` ``about:blank``, as RFC 9457 says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

_KNOWN = ("type", "title", "status", "detail", "instance", "code")


@dataclass(frozen=True)
class Problem:
    """RFC 9457 problem details; ``extensions`` holds what a problem adds (``errors``, ``request_id`` …)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, answer: httpx.Response) -> Problem:
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or ("type" not in body and "title" not in body):
            text = answer.text[:300] if answer.content else None
            return cls("about:blank", answer.reason_phrase or "Error", answer.status_code, text or None)
        kind = str(body.get("type") or "about:blank")
        code = body.get("code") or (kind.rsplit(":", 1)[-1] if kind.startswith("urn:juwei:problem:") else None)
        return cls(
            type=kind,
            title=str(body.get("title") or answer.reason_phrase or ""),
            status=int(body.get("status") or answer.status_code),
            detail=body.get("detail"),
            instance=body.get("instance"),
            code=code,
            extensions={k: v for k, v in body.items() if k not in _KNOWN},
        )


class ProblemError(Exception):
    """A service refused or failed a request; ``problem`` says how (``status``, ``code``, ``detail``)."""

    def __init__(self, problem: Problem, method: str = "", url: str = "") -> None:
        self.problem = problem
        self.method = method
        self.url = url
        where = f"{method} {url}: " if method else ""
        super().__init__(f"{where}{problem.status} {problem.code or problem.type}: {problem.detail or problem.title}")

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def code(self) -> str | None:
        return self.problem.code

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str | None:
        return self.problem.detail
