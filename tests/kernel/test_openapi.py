"""The four services' OpenAPI documents tell the truth: readable unique operation ids, every error a Problem under
application/problem+json, a response schema on every route, and a document the OpenAPI validator accepts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from juwei.problems import MEDIA_TYPE
from juwei.service import Runtime, create_app, load_definition
from juwei.settings import Settings

SERVICES = ("residents", "supplies", "testing", "notify")
METHODS = ("get", "put", "post", "patch", "delete")
# Routes whose success answer is not JSON: each must name its media type and a schema for it.
NOT_JSON = {
    "text/plain", "text/event-stream", "text/csv", "image/jpeg", "image/png", "image/webp",
    "application/atom+xml", "application/cap+xml",  # residents' zone alerts: validated against their XSD elsewhere
}  # fmt: skip


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp)
    made: dict[str, dict[str, Any]] = {}
    runtimes = []
    for name in SERVICES:
        runtime = Runtime(load_definition(name), settings, database_url=f"sqlite:///{tmp / name}.db")
        runtimes.append(runtime)
        made[name] = create_app(runtime, background=False, migrate_on_start=False).openapi()
    yield made
    for runtime in runtimes:
        runtime.database.dispose()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method in METHODS:
                yield path, method, operation


def test_a_replayed_write_is_documented(documents: dict[str, dict[str, Any]]) -> None:
    paths = documents["residents"]["paths"]
    created = paths["/compounds/{compound}/buildings"]["post"]["responses"]
    assert created["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CommandReplayed"}
    changed = paths["/compounds/{compound}/households/{household}/residents/{resident}/needs"]["patch"]["responses"]
    assert {"$ref": "#/components/schemas/CommandReplayed"} in changed["200"]["content"]["application/json"]["schema"][
        "anyOf"
    ]


def test_every_operation_id_reads_service_dot_function_and_is_unique(documents: dict[str, dict[str, Any]]) -> None:
    for service, document in documents.items():
        ids = Counter(operation["operationId"] for _path, _method, operation in operations(document))
        assert not [i for i, n in ids.items() if n > 1], service
        for path, method, operation in operations(document):
            prefix, _, function = operation["operationId"].partition(".")
            assert prefix == service and function.isidentifier(), (service, method, path, operation["operationId"])
    assert documents["residents"]["paths"]["/compounds/{compound}/buildings"]["post"]["operationId"] == (
        "residents.register_building"
    )


def test_audited_reads_name_the_purpose_header_and_its_400(documents: dict[str, dict[str, Any]]) -> None:
    audited = {
        (service, path)
        for service, document in documents.items()
        for path, _method, operation in operations(document)
        if any(p["name"] == "X-Juwei-Purpose" for p in operation.get("parameters", []))
    }
    assert {("residents", "/compounds/{compound}/residents/{resident}"), ("notify", "/events")} <= audited
    assert ("supplies", "/compounds/{compound}/buildings/{building}/medicine-requests") in audited


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_passes_the_openapi_validator(documents: dict[str, dict[str, Any]], service: str) -> None:
    validate(documents[service])  # raises with the first thing wrong


def test_every_error_is_a_problem_under_problem_json(documents: dict[str, dict[str, Any]]) -> None:
    for service, document in documents.items():
        assert "HTTPValidationError" not in json.dumps(document), service  # FastAPI's 422 is not what we send
        problem = document["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail", "instance", "code"} <= set(problem["required"])
        for path, method, operation in operations(document):
            where = (service, method.upper(), path)
            responses = operation["responses"]
            for status, response in responses.items():
                if status[0] in "45":
                    assert response["content"] == {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            if operation.get("security"):
                assert {"401", "403", "429"} <= set(responses), where
                assert "not-authenticated" in responses["401"]["x-juwei-problem-types"], where
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                assert "404" in responses, where
            if operation.get("parameters") or "requestBody" in operation:
                assert "validation" in responses["422"]["x-juwei-problem-types"], where
            if "requestBody" in operation:
                assert "body-too-large" in responses["413"]["x-juwei-problem-types"], where
            if any(p["name"] == "X-Juwei-Purpose" for p in operation.get("parameters", [])):
                assert "bad-purpose" in responses["400"]["x-juwei-problem-types"], where
            if method != "get":
                assert "command-in-progress" in responses["409"]["x-juwei-problem-types"], where
                assert "idempotency-key-reused" in responses["422"]["x-juwei-problem-types"], where


def described(schema: dict[str, Any]) -> bool:
    """A schema that says something: a model, properties, a type other than object, or alternatives that each do."""
    if "anyOf" in schema:
        return all(described(branch) for branch in schema["anyOf"])
    return bool("$ref" in schema or schema.get("properties") or schema.get("type") not in (None, "object"))


def untyped(document: dict[str, Any]) -> list[str]:
    """The operations whose success answer has no schema worth the name (an object of anything, or nothing)."""
    found = []
    for path, method, operation in operations(document):
        successes = {status: r for status, r in operation["responses"].items() if status.startswith("2")}
        typed = False
        for status, response in successes.items():
            content = response.get("content")
            if not content:
                typed = typed or status == "204"
            for media, body in (content or {}).items():
                schema = body.get("schema") or {}
                typed = typed or bool(schema and media in NOT_JSON) or described(schema)
        if not typed:
            found.append(f"{method.upper()} {path}")
    return found


def test_every_route_says_what_it_answers(documents: dict[str, dict[str, Any]]) -> None:
    left = [f"{service} {path}" for service, document in documents.items() for path in untyped(document)]
    assert not left, f"{len(left)} routes without a response schema:\n" + "\n".join(left)
    # The check itself can fail: an answer of anything is caught.
    assert untyped({"paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": True}}}}}}}}}) == ["GET /x"]  # fmt: skip
