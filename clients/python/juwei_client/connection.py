"""One service's HTTP API as the client reaches it: the API key, timeouts, retries, problems as exceptions.

What is retried: a GET (it changes nothing), and a write that carries an ``Idempotency-Key`` (the service carries
it out at most once and answers a repeat with the first answer), when the request did not get through (a refused
or dropped connection, a timeout) or the service said to wait (503, 429 with ``Retry-After``; 409
``command-in-progress`` for a keyed write). Anything else is answered at once: a value, or ``ProblemError``.
"""

from __future__ import annotations

import time
from typing import Any, Self

import httpx

from juwei_client.problems import Problem, ProblemError

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# A Retry-After longer than this is not waited for: the caller hears the 503 or 429.
_LONGEST_WAIT = 30.0
_TRANSIENT = (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError)


class Connection:
    """Requests to one service at ``base_url`` with the key ``key`` (``X-API-Key``).

    ``client``: an ``httpx.Client`` of the caller's (its own transport, hooks or limits); its base URL and
    headers are left alone, ours are added per request. ``language``: ``Accept-Language`` for problems'
    words (``zh-CN`` or ``en``). ``retries``: attempts after the first, ``backoff`` seconds doubling each time up
    to ``backoff_max``.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
        language: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retries = retries
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.language = language
        self._own = client is None
        self.http = client if client is not None else httpx.Client(timeout=self.timeout)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        found = {"X-API-Key": self.key, "Accept": "application/json"}
        if self.language:
            found["Accept-Language"] = self.language
        return {**found, **(extra or {})}

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json=body, idempotency_key=idempotency_key)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The answer's JSON (``None`` for an empty answer); ``ProblemError`` for an error answer."""
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra["Idempotency-Key"] = idempotency_key
        repeatable = method == "GET" or idempotency_key is not None
        url = self.url(path)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                answer = self.http.request(
                    method, url, params=query, json=json, headers=self.headers(extra), timeout=self.timeout
                )
            except _TRANSIENT:
                if not repeatable or attempt >= self.retries:
                    raise
                attempt += 1
                time.sleep(self._pause(attempt - 1))
                continue
            if answer.is_success:
                return answer.json() if answer.content else None
            problem = Problem.of(answer)
            wait = self._wait(answer, problem, repeatable, attempt)
            if wait is None:
                raise ProblemError(problem, method, url)
            attempt += 1
            time.sleep(wait)

    def _wait(self, answer: httpx.Response, problem: Problem, repeatable: bool, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None: the problem is the answer."""
        if not repeatable or attempt >= self.retries:
            return None
        busy = answer.status_code in (429, 503) or (answer.status_code == 409 and problem.code == "command-in-progress")
        if not busy:
            return None
        told = answer.headers.get("Retry-After")
        try:
            wait = float(told) if told is not None else self._pause(attempt)
        except ValueError:
            wait = self._pause(attempt)
        return wait if wait <= _LONGEST_WAIT else None

    def _pause(self, retried: int) -> float:
        return min(self.backoff * 2**retried, self.backoff_max)
