"""The `monitoring` profile on a real engine: Prometheus from juwei/prometheus (Debian's package) scrapes every
service, has Juwei's alert rules loaded and evaluating, finds every metric they read, and fires the database
alert when PostgreSQL is stopped.

Its own stack (compose project ``juwei``, the single broker plus Prometheus), taken down with its volumes at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT
from tests.stack.conftest import PROMETHEUS_PORT, SERVICES, DockerEngine, StackUnderTest, taken_down, wait_for

pytestmark = pytest.mark.timeout(1800, func_only=True)

RULES = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
ALERTS = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"]}
PROMETHEUS = f"http://127.0.0.1:{PROMETHEUS_PORT}"
# Series that exist only once something happened: a key refused (the rule's tests: deploy/prometheus/alerts.test.yml).
ONLY_AFTER_THE_FACT = {"juwei_forbidden_total"}


@pytest.fixture(scope="module")
def monitored(
    docker_engine: DockerEngine, stack_images: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackUnderTest]:
    folder = tmp_path_factory.mktemp("monitoring")
    with taken_down(StackUnderTest(docker_engine, folder, profile="single,monitoring")) as made:
        yield made


def _api(path: str, **params: str) -> Any:
    answer = httpx.get(PROMETHEUS + path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def _query(expression: str) -> list[dict[str, Any]]:
    return _api("/api/v1/query", query=expression)["result"]


def _metrics_of(expression: str) -> set[str]:
    return set(re.findall(r"\b((?:juwei|notify)_[a-z_]+|up)\b(?=\s*[{\[=<>)])", expression))


def test_prometheus_scrapes_every_service_with_every_rule_loaded(monitored: StackUnderTest) -> None:
    monitored.up()

    def every_target_up() -> bool:
        targets = _api("/api/v1/targets")["activeTargets"]
        health = {target["labels"]["job"]: target["health"] for target in targets}
        return health == {**dict.fromkeys(SERVICES, "up"), "prometheus": "up"}

    wait_for(every_target_up, 180, "Prometheus to scrape every service", every=3)

    # Every rule of alerts.yml, evaluated without error.
    def every_rule_evaluated() -> bool:
        rules = [rule for group in _api("/api/v1/rules")["groups"] for rule in group["rules"]]
        assert {rule["name"] for rule in rules} == set(ALERTS)
        return all(rule["health"] == "ok" and rule["lastEvaluation"][:4] != "0001" for rule in rules)

    wait_for(every_rule_evaluated, 120, "every rule to be evaluated", every=3)
    # Every metric the rules read is one the services expose (a renamed metric would leave its alert mute).
    read = set().union(*(_metrics_of(rule["expr"]) for rule in ALERTS.values()))
    assert {"juwei_database_up", "juwei_relay_backlog", "notify_deliveries_undelivered_total"} <= read

    def every_metric_there() -> bool:
        return all(_query(f"count({name})") for name in read - ONLY_AFTER_THE_FACT)

    wait_for(every_metric_there, 120, f"series of {sorted(read - ONLY_AFTER_THE_FACT)}", every=5)
    up = {sample["metric"]["service"]: sample["value"][1] for sample in _query("juwei_database_up")}
    assert up == dict.fromkeys(SERVICES, "1")
    backlog = {sample["metric"]["job"] for sample in _query("juwei_relay_backlog")}
    assert backlog == set(SERVICES)

    # A healthy stack pages nobody: a service that took over two minutes to start on a loaded machine fired
    # JuweiServiceDown, which resolves at the evaluations after its first good scrape.
    def firing() -> list[dict[str, Any]]:
        return [alert for alert in _api("/api/v1/alerts")["alerts"] if alert["state"] == "firing"]

    wait_for(lambda: not firing(), 120, "every alert to resolve once every target is up", every=5)
    wait_for(every_target_up, 60, "every target to stay up", every=3)
    assert firing() == []


def _database_alerts_firing() -> set[str]:
    """The services JuweiDatabaseUnavailable fires for."""
    return {
        alert["labels"]["service"]
        for alert in _api("/api/v1/alerts")["alerts"]
        if alert["labels"]["alertname"] == "JuweiDatabaseUnavailable" and alert["state"] == "firing"
    }


def test_a_stopped_database_fires_its_alert_and_it_resolves_after(monitored: StackUnderTest) -> None:
    monitored.up()
    monitored.engine.docker("stop", monitored.container("postgres"), timeout=120)
    try:
        # 15 s between probes and between scrapes, a minute of `for`, 15 s between evaluations.
        wait_for(lambda: _database_alerts_firing() == set(SERVICES), 240, "JuweiDatabaseUnavailable for every service",
                 every=5)  # fmt: skip
    finally:
        monitored.engine.docker("start", monitored.container("postgres"), timeout=120)
    wait_for(lambda: not _database_alerts_firing(), 240, "JuweiDatabaseUnavailable to resolve", every=5)
