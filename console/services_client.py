"""The services, as the console reaches them: their public HTTP APIs, called as the signed-in person.

Every call carries the person's key (X-API-Key) and language (Accept-Language); a command carries an
Idempotency-Key so a retried form or a replayed phone action happens once. An RFC 9457 problem becomes a
``ServiceProblem`` the pages show in the person's language.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx


class ServiceProblem(Exception):
    """A service refused or could not answer: its status, and its title and detail where it gave them."""

    def __init__(
        self,
        service: str,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        code: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{service}: {status} {title or ''} {detail or ''}".strip())
        self.service = service
        self.status = status  # 0: the service could not be reached
        self.title = title
        self.detail = detail
        self.code = code
        self.body = dict(body or {})


def _problem(service: str, response: httpx.Response) -> ServiceProblem:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ServiceProblem(service, response.status_code)
    code = body.get("type", "")
    return ServiceProblem(
        service,
        response.status_code,
        body.get("title") if isinstance(body.get("title"), str) else None,
        body.get("detail") if isinstance(body.get("detail"), str) else None,
        code.rsplit(":", 1)[-1] if isinstance(code, str) and code else None,
        body,
    )


@dataclass(frozen=True)
class Answer:
    """A service's answer to a command: its status, JSON body, and whether it replayed an earlier answer."""

    status: int
    body: Any
    replayed: bool


@dataclass
class ServiceClient:
    """One person's view of the services for one request: ``urls`` by service name, their key and language."""

    http: httpx.AsyncClient
    urls: Mapping[str, str]
    key: str | None
    locale: str = "zh_CN"

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Accept-Language": "zh-CN,zh;q=0.9" if self.locale == "zh_CN" else "en"}
        if self.key:
            headers["X-API-Key"] = self.key
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The JSON answer (None for 204); a problem, or no answer at all, raises ``ServiceProblem``."""
        answer = await self.send(method, service, path, params=params, json=json, idempotency_key=idempotency_key)
        return answer.body

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        """The answer with what its headers say (a replayed command); a form with files goes as multipart."""
        url = f"{self.urls[service]}{path}"
        headers = self._headers(idempotency_key)
        if files and idempotency_key:
            # A command sent again must be the same bytes (the service compares them): its own fixed boundary.
            boundary = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
            headers["Content-Type"] = f"multipart/form-data; boundary=juwei{boundary}"
        try:
            response = await self.http.request(
                method, url, params=params, json=json, data=data, files=files, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ServiceProblem(service, 0, detail=type(exc).__name__) from exc
        if response.status_code >= 400:
            raise _problem(service, response)
        body = None if response.status_code == 204 or not response.content else response.json()
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return Answer(response.status_code, body, replayed)

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.request("GET", service, path, params={k: v for k, v in params.items() if v is not None})

    async def command(
        self, method: str, service: str, path: str, json: Any = None, idempotency_key: str | None = None
    ) -> Any:
        """A change: sent with an Idempotency-Key (the form's or the phone's own, else a fresh one)."""
        return await self.request(
            method, service, path, json=json, idempotency_key=idempotency_key or str(uuid.uuid4())
        )

    async def post(self, service: str, path: str, json: Any = None, idempotency_key: str | None = None) -> Any:
        return await self.command("POST", service, path, json, idempotency_key)

    async def delete(self, service: str, path: str, idempotency_key: str | None = None) -> Any:
        return await self.command("DELETE", service, path, None, idempotency_key)


async def gather_settled(calls: Mapping[str, Awaitable[Any]]) -> dict[str, Any | ServiceProblem]:
    """Every call at once; each name maps to its answer or to the ``ServiceProblem`` it raised, so one service
    down leaves the rest of a page standing."""
    names = list(calls)
    answers = await asyncio.gather(*(calls[name] for name in names), return_exceptions=True)
    settled: dict[str, Any | ServiceProblem] = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BaseException) and not isinstance(answer, ServiceProblem):
            raise answer
        settled[name] = answer
    return settled


async def send_file(
    client: ServiceClient,
    service: str,
    path: str,
    file: tuple[str, bytes, str],
    *,
    params: Mapping[str, Any] | None = None,
    fields: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Any:
    """A form upload (``file``: name, content, media type) with text ``fields``; JSON answer or ServiceProblem."""
    try:
        response = await client.http.post(
            f"{client.urls[service]}{path}",
            params=params,
            files={"file": file},
            data=dict(fields or {}),
            headers=client._headers(idempotency_key),
            timeout=120,  # a 5,000-row sheet is validated and written in one unit of work
        )
    except httpx.HTTPError as exc:
        raise ServiceProblem(service, 0, detail=type(exc).__name__) from exc
    if response.status_code >= 400:
        raise _problem(service, response)
    return response.json() if response.content else None


async def fetch_file(client: ServiceClient, service: str, path: str, **params: Any) -> httpx.Response:
    """A file a service serves (its bytes and headers), or ServiceProblem."""
    try:
        response = await client.http.get(f"{client.urls[service]}{path}", params=params, headers=client._headers())
    except httpx.HTTPError as exc:
        raise ServiceProblem(service, 0, detail=type(exc).__name__) from exc
    if response.status_code >= 400:
        raise _problem(service, response)
    return response
