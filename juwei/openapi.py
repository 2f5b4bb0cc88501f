"""The OpenAPI document every service publishes, made truthful in one place.

Operation ids read ``<service>.<function>`` (``residents.register_building``). Every error a route can give is
documented as ``application/problem+json`` with one ``Problem`` schema (``juwei.problems`` writes them all), named
by the problem types the kernel answers with; FastAPI's own 422 (``HTTPValidationError``, plain JSON) is not what
the services send, so it is replaced. What a route can give is read from the document itself: a key (401, 403,
429), a path id looked up (404), a body (413), anything to validate (422), a write (409 and the
exactly-once command's refusals, ``juwei.commands``), the database (503) and the unforeseen (500).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi.routing import APIRoute
from pydantic import AfterValidator

from juwei.problems import MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
WRITES = frozenset({"post", "put", "patch", "delete"})

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": (
        "RFC 9457 problem details. Switch on `code` (the last part of `type`), never on the words: `title` and the "
        "kernel's `detail` follow Accept-Language. A rule of a service adds its details as further members."
    ),
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance", "code"],
    "properties": {
        "type": {
            "type": "string",
            "description": "urn:juwei:problem:<code>",
            "examples": ["urn:juwei:problem:validation"],
        },
        "title": {"type": "string", "description": "The status's title, in the caller's language"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What was wrong, for a person"},
        "instance": {"type": "string", "description": "The request's path"},
        "code": {"type": "string", "description": "The problem type's last part", "examples": ["forbidden"]},
        "request_id": {"type": "string", "description": "To quote to an operator"},
        "errors": {
            "type": "array",
            "description": "Each invalid field (422 validation) or refused item (testing's batches)",
            "items": {"type": "object", "additionalProperties": True},
        },
    },
    "additionalProperties": True,
}

# Per status: its description and the kernel's problem types a route of that kind can answer with.
KERNEL_PROBLEMS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("A malformed header", ("bad-purpose", "bad-request")),
    401: ("No API key, or an unknown, revoked or expired one", ("not-authenticated",)),
    403: ("The key's role, compound, buildings or grant do not cover this", ("forbidden",)),
    404: ("Nothing by that id in this compound", ("not-found",)),
    409: ("A conflict with what is already recorded", ("concurrency-conflict", "command-in-progress")),
    413: ("The body is larger than the service takes", ("body-too-large",)),
    422: ("Invalid request; `errors` names each field", ("validation",)),
    429: ("The key's rate limit is spent; see Retry-After", ("rate-limited",)),
    500: ("The request failed inside the service (no details given)", ("internal",)),
    503: ("The database is not reachable; see Retry-After", ("database-unavailable",)),
}
IDEMPOTENCY_PROBLEMS = ("idempotency-key-invalid", "idempotency-key-reused")
# Statuses a service's own rules also answer with (``juwei.problems.REFUSALS``), each under its rule's code.
RULED = frozenset({"403", "404", "409", "422"})


def operation_id(service: str) -> Callable[[APIRoute], str]:
    """``<service>.<function name>``: readable, and the same across releases while the function keeps its name."""

    def generate(route: APIRoute) -> str:
        return f"{service}.{route.name}"

    return generate


def _statuses(method: str, operation: dict[str, Any]) -> dict[int, tuple[str, ...]]:
    """The error statuses an operation can give, each with the kernel's problem types for it."""
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    found: dict[int, tuple[str, ...]] = {500: KERNEL_PROBLEMS[500][1]}
    if operation.get("security"):
        for status in (401, 403, 429, 503):
            found[status] = KERNEL_PROBLEMS[status][1]
    if any(p.get("in") == "path" for p in parameters):
        found[404] = KERNEL_PROBLEMS[404][1]
    if body:
        found[413] = KERNEL_PROBLEMS[413][1]
    if parameters or body:
        found[422] = KERNEL_PROBLEMS[422][1]
    headers = {p.get("name") for p in parameters if p.get("in") == "header"}
    if "X-Juwei-Purpose" in headers:
        found[400] = ("bad-purpose",)
    if "Last-Event-ID" in headers:
        found[400] = (*found.get(400, ()), "bad-request")
    if method in WRITES:
        found[409] = KERNEL_PROBLEMS[409][1]
        found[422] = found.get(422, ()) + IDEMPOTENCY_PROBLEMS
    return found


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error response of ``schema`` as a ``Problem`` under application/problem+json, its types named."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, types in _statuses(method, operation).items():
                responses.setdefault(str(status), {"description": KERNEL_PROBLEMS[status][0]})
                responses[str(status)].setdefault("x-juwei-problem-types", []).extend(
                    t for t in types if t not in responses[str(status)].get("x-juwei-problem-types", [])
                )
            for status, response in responses.items():
                if status[:1] not in ("4", "5"):
                    continue
                if response.get("description") == "Validation Error":
                    response["description"] = KERNEL_PROBLEMS[422][0]
                response["content"] = {MEDIA_TYPE: {"schema": PROBLEM_REF}}
                named = response.get("x-juwei-problem-types")
                if named:
                    listed = ", ".join(f"`{t}`" for t in named)
                    also = ", or a rule's own code" if status in RULED else ""
                    response["description"] = f"{response['description']} (problem types: {listed}{also})"
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)
    return schema


def answered_as(description: str, *media_types: str, binary: bool = False) -> dict[int | str, dict[str, Any]]:
    """A route's 200 that is not JSON (metrics, an event stream, a photo, a sheet): its media types, each a string."""
    schema = {"type": "string", "format": "binary"} if binary else {"type": "string"}
    return {200: {"description": description, "content": {media: {"schema": schema} for media in media_types}}}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# A stored time in an answer: always with its offset (SQLite hands back naive times, which are UTC), so that it is
# the RFC 3339 date-time the document promises.
UtcTime = Annotated[datetime, AfterValidator(_utc)]
