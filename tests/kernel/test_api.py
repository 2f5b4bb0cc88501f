"""The service factory over HTTP: problem+json, auth, the feed and its SSE tail, operations endpoints."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from juwei.service import create_app
from tests.conftest import both_databases
from tests.kernel.harness import key, runtime
from tests.kernel.sample import definitions

PROBLEM = "application/problem+json"


@pytest.fixture
def desk_client(new_database, suffix: str) -> Iterator[tuple[TestClient, object]]:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    with TestClient(create_app(made, background=False)) as client:
        yield client, made


def _add(client: TestClient, secret: str, building: str = "1", **body: object) -> httpx.Response:
    return client.post(f"/compounds/c1/tallies/{building}", json={"amount": 1, **body}, headers={"X-API-Key": secret})


@both_databases
def test_stale_expected_version_answers_409_problem_json(desk_client) -> None:
    client, made = desk_client
    secret = key(made)
    assert _add(client, secret).status_code == 201
    assert _add(client, secret).status_code == 201
    stale = _add(client, secret, expected_version=1)
    assert stale.status_code == 409
    assert stale.headers["content-type"] == PROBLEM
    body = stale.json()
    assert body["type"] == "urn:juwei:problem:concurrency-conflict"
    assert body["expected_version"] == 1 and body["actual_version"] == 2
    assert body["instance"] == "/compounds/c1/tallies/1"
    assert body["request_id"] == stale.headers["x-request-id"]


@both_databases
def test_bad_input_is_a_422_that_names_the_field_and_writes_nothing(desk_client) -> None:
    client, made = desk_client
    secret = key(made)
    wrong = client.post("/compounds/c1/tallies/1", json={"amount": "many"}, headers={"X-API-Key": secret})
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == PROBLEM
    assert wrong.json()["errors"][0]["location"] == ["body", "amount"]
    broken = client.post(
        "/compounds/c1/tallies/1", content=b"{", headers={"X-API-Key": secret, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    rule = _add(client, secret, amount=-5)
    assert rule.status_code == 422 and rule.json()["type"] == "urn:juwei:problem:negative-tally"
    feed = client.get("/events", headers={"X-API-Key": secret}).json()
    assert feed["events"] == []


def test_unknown_key_401_wrong_role_or_building_403(desk_client) -> None:
    client, made = desk_client
    assert _add(client, "").status_code == 401
    assert _add(client, "jw_nope_nope").status_code == 401
    assert _add(client, key(made, role="external-consumer")).status_code == 403
    confined = key(made, buildings=["2"])
    assert _add(client, confined, building="1").status_code == 403
    assert _add(client, confined, building="2").status_code == 201
    other_compound = key(made, compound="c2")
    assert _add(client, other_compound).status_code == 403
    for response in (_add(client, ""), _add(client, other_compound)):
        assert response.headers["content-type"] == PROBLEM


def test_revoked_key_stops_working(desk_client) -> None:
    from juwei.auth import revoke_key, split_key

    client, made = desk_client
    secret = key(made)
    assert _add(client, secret).status_code == 201
    with made.database.unit_of_work() as session:
        assert revoke_key(session, split_key(secret)[0])
    assert _add(client, secret).status_code == 401


@both_databases
def test_feed_pages_cover_every_event_once_and_respect_the_compound(desk_client) -> None:
    client, made = desk_client
    secret = key(made)
    for i in range(23):
        assert _add(client, secret, building=str(i % 4)).status_code == 201
    seen: list[int] = []
    after = 0
    while True:
        page = client.get("/events", params={"after": after, "limit": 5}, headers={"X-API-Key": secret}).json()
        seen += [event["position"] for event in page["events"]]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert len(seen) == 23 and seen == sorted(set(seen))
    event = client.get("/events", params={"limit": 1}, headers={"X-API-Key": secret}).json()["events"][0]
    assert event["specversion"] == "1.0" and event["compound"] == "c1" and event["type"].endswith(".v2")
    elsewhere = client.get("/events", headers={"X-API-Key": key(made, compound="c2")}).json()
    assert elsewhere["events"] == []
    too_big = client.get("/events", params={"limit": 100000}, headers={"X-API-Key": secret})
    assert too_big.status_code == 422 and too_big.headers["content-type"] == PROBLEM


def test_operations_endpoints(desk_client) -> None:
    client, _made = desk_client
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200  # the runtime points at a Kafka that does not exist: the outbox keeps writes
    assert ready.json()["checks"] == {"database": "ok"}
    assert "juwei_http_requests_total" in client.get("/metrics").text
    status = client.get("/status").json()
    assert status["relay"] == {"published_position": 0, "backlog": 0}
    assert set(status["projections"]) == {"desk_totals"}
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def test_readyz_is_ready_with_a_real_broker(new_database, suffix: str, kafka: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database(), kafka=kafka)
    with TestClient(create_app(made, background=False)) as client:
        ready = client.get("/readyz")
        kafka_state = client.get("/status").json()["kafka"]
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}
    assert kafka_state["up"] is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sse_events(url: str, secret: str, count: int, last_event_id: str | None = None) -> list[dict]:
    headers = {"X-API-Key": secret, "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    found: list[dict] = []
    current: dict = {}
    with httpx.stream("GET", url, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("id:"):
                current["id"] = line[3:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif line == "" and "data" in current:
                found.append(current)
                current = {}
                if len(found) == count:
                    break
    return found


@both_databases
def test_sse_tail_delivers_live_events_and_resumes_from_last_event_id(new_database, suffix: str) -> None:
    desk, _ = definitions(suffix)
    made = runtime(desk, new_database())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(made, background=False), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        secret = key(made)
        for _ in range(3):
            httpx.post(f"{base}/compounds/c1/tallies/1", json={"amount": 1}, headers={"X-API-Key": secret})
        first = _sse_events(f"{base}/events/stream", secret, 3)
        assert [int(e["id"]) for e in first] == [e["data"]["position"] for e in first]

        def later() -> None:
            time.sleep(0.5)
            for _ in range(2):
                httpx.post(f"{base}/compounds/c1/tallies/2", json={"amount": 5}, headers={"X-API-Key": secret})

        threading.Thread(target=later).start()
        resumed = _sse_events(f"{base}/events/stream", secret, 2, last_event_id=first[-1]["id"])
        assert [e["data"]["data"]["building"] for e in resumed] == ["2", "2"]
        assert int(resumed[0]["id"]) > int(first[-1]["id"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        made.database.dispose()


def test_api_docs_load_nothing_from_the_internet(desk_client) -> None:
    """/docs works on a network without internet: every asset it names is served by the service itself."""
    import re

    client, _made = desk_client
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert re.findall(r"https?://", page.text) == []  # no CDN, no validator badge
    assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 500, asset
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    assert client.get("/redoc").status_code == 404  # ReDoc would load its script from a CDN


def test_a_position_beyond_64_bits_is_a_clear_error_not_a_500(desk_client) -> None:
    client, made = desk_client
    secret = key(made)
    huge = client.get("/events", params={"after": 2**63}, headers={"X-API-Key": secret})
    assert huge.status_code == 422 and huge.headers["content-type"] == PROBLEM
    largest = client.get("/events", params={"after": 2**63 - 1}, headers={"X-API-Key": secret})
    assert largest.status_code == 200 and largest.json()["events"] == []
    resumed = client.get("/events/stream", headers={"X-API-Key": secret, "Last-Event-ID": str(2**64)})
    assert resumed.status_code == 400 and resumed.headers["content-type"] == PROBLEM
