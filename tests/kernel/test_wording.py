"""Problems in the caller's language: Chinese titles, kernel details and validation messages for a caller whose
Accept-Language prefers zh; English otherwise; a stable ``code`` in every problem body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from juwei.service import Runtime, create_app
from juwei.settings import Settings
from juwei.wording import Said, negotiate
from tests.kernel.harness import key
from tests.kernel.sample import definitions

PROBLEM = "application/problem+json"
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("ZH-hans-cn;q=0.5", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("de-DE,zh-TW;q=0.7,en;q=0.5", "zh"),
        ("*", "en"),
        ("fr, de", "en"),
        ("zh;q=0", "en"),
        ("zh;q=nonsense, en;q=0.1", "en"),
        ("en;q=0.5, zh;q=0.5", "en"),  # a tie: the earlier range
    ],
)
def test_the_language_is_the_one_accept_language_prefers(header: str | None, language: str) -> None:
    assert negotiate(header) == language


@pytest.fixture
def desk(new_database, suffix: str) -> Iterator[tuple[TestClient, Runtime]]:
    config = Settings(
        kafka_bootstrap="127.0.0.1:1", max_body_bytes=2048, rate_limit_per_second=0.001, rate_limit_burst=3
    )
    made = Runtime(definitions(suffix)[0], config, database_url=new_database())
    made.migrate()
    with TestClient(create_app(made, background=False)) as client:
        yield client, made


def _problem(response, status: int, code: str, language: str = "zh") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["content-language"] == language
    body = response.json()
    assert body["code"] == code and body["type"] == f"urn:juwei:problem:{code}"
    return body


def test_the_kernels_own_problems_speak_chinese_to_a_chinese_caller(desk) -> None:
    client, made = desk
    no_key = _problem(client.get("/whoami", headers=ZH), 401, "not-authenticated")
    assert no_key["title"] == "未认证" and no_key["detail"] == "请在 X-API-Key 请求头中发送 API 密钥"
    wrong = _problem(client.get("/whoami", headers={**ZH, "X-API-Key": "jw_nope_nope"}), 401, "not-authenticated")
    assert "无效" in wrong["detail"]
    route = _problem(client.get("/no/such/route", headers=ZH), 404, "not-found")
    assert route["title"] == "未找到" and route["detail"] == "没有这个地址：/no/such/route"
    method = _problem(client.put("/healthz", headers=ZH), 405, "method-not-allowed")
    assert method["detail"] == "此地址不接受 PUT 请求"
    big = _problem(client.post("/compounds/c1/tallies/1", content=b"x" * 4096, headers=ZH), 413, "body-too-large")
    assert big["title"] == "请求过大" and big["detail"] == "请求体超过 2048 字节"
    household = key(made, "household")
    role = _problem(client.post("/compounds/c1/tallies/1", json={"amount": 1}, headers={**ZH, "X-API-Key": household}),
                    403, "forbidden")  # fmt: skip
    assert role["title"] == "无权访问" and role["detail"] == "角色 household 不能执行此操作；需要以下角色之一：staff"
    staff = key(made, "staff", "c1", ["2"])
    scope = _problem(client.post("/compounds/c1/tallies/1", json={"amount": 1}, headers={**ZH, "X-API-Key": staff}),
                     403, "forbidden")  # fmt: skip
    assert scope["detail"] == "此密钥不能操作小区 c1 的楼栋 1"
    limited = key(made, "district-operator", None)
    for _ in range(3):
        assert client.get("/whoami", headers={"X-API-Key": limited}).status_code == 200
    answer = client.get("/whoami", headers={**ZH, "X-API-Key": limited})
    slow = _problem(answer, 429, "rate-limited")
    assert slow["title"] == "请求过于频繁" and "Retry-After" in slow["detail"] and "retry-after" in answer.headers
    # A rule of the service is said in the service's own Chinese wording, filled from the rule's details.
    rule = _problem(client.post("/compounds/c1/tallies/2", json={"amount": -1}, headers={**ZH, "X-API-Key": staff}),
                    422, "negative-tally")  # fmt: skip
    assert rule["title"] == "请求无效" and rule["detail"] == "楼栋 2 的计数不能小于零" and rule["building"] == "2"
    english = client.post("/compounds/c1/tallies/2", json={"amount": -1}, headers={"X-API-Key": staff})
    assert _problem(english, 422, "negative-tally", language="en")["detail"] == "building 2 would go below zero"


def test_a_wording_that_names_a_value_the_rule_did_not_give_keeps_the_english() -> None:
    rules = definitions("w")[0].wording
    assert Said("negative-tally", {"building": "7"}, rules).text("zh") == "楼栋 7 的计数不能小于零"
    assert Said("tally-missing", {}, rules).text("zh") is None
    assert Said("no-such-rule", {}, rules).text("zh") is None
    assert Said("negative-tally", {"building": "7"}, rules).text("en") is None


def test_validation_errors_say_what_is_wrong_in_chinese(desk) -> None:
    client, made = desk
    operator = {**ZH, "X-API-Key": key(made, "district-operator", None)}
    body = {"role": "", "holder": {"kind": "robot", "id": "-x"}, "expires_in": 0, "label": "x" * 201, "extra": 1}
    refused = _problem(client.post("/compounds/c1/keys", json=body, headers=operator), 422, "validation")
    messages = {(tuple(e["location"]), e["type"]): e["message"] for e in refused["errors"]}
    assert messages == {
        (("body", "role"), "string_too_short"): "至少需要 1 个字符",
        (("body", "holder", "kind"), "literal_error"): "应为以下之一：volunteer、household、staff",
        (("body", "holder", "id"), "string_pattern_mismatch"): "格式不符合要求（^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$）",
        (("body", "label"), "string_too_long"): "最多 200 个字符",
        (("body", "expires_in"), "greater_than_equal"): "应大于或等于 1",
        (("body", "extra"), "extra_forbidden"): "不允许此字段",
    }
    assert refused["title"] == "请求无效"
    assert refused["detail"].startswith("body.role：至少需要 1 个字符（另有 5 处错误）")
    missing = _problem(client.post("/compounds/c1/keys", json={}, headers=operator), 422, "validation")
    assert {e["message"] for e in missing["errors"]} == {"缺少此字段"}
    staff = {**ZH, "X-API-Key": key(made)}
    numbers = client.post("/compounds/c1/tallies/1", json={"amount": "many", "expected_version": -1}, headers=staff)
    assert [e["message"] for e in _problem(numbers, 422, "validation")["errors"]] == ["应为整数", "应大于或等于 0"]
    broken = client.post("/compounds/c1/tallies/1", content=b"{", headers={**staff, "content-type": "application/json"})
    assert _problem(broken, 422, "validation")["errors"][0]["message"] == "JSON 格式错误"


def test_english_stays_the_default(desk) -> None:
    client, made = desk
    for headers in ({}, {"Accept-Language": "en-GB,zh;q=0.1"}, {"Accept-Language": "fr"}):
        plain = _problem(client.get("/whoami", headers=headers), 401, "not-authenticated", language="en")
        assert plain["title"] == "Not authenticated" and plain["detail"] == "send an API key in the X-API-Key header"
    wrong = client.post("/compounds/c1/tallies/1", json={"amount": "many"}, headers={"X-API-Key": key(made)})
    body = _problem(wrong, 422, "validation", language="en")
    assert body["errors"][0]["message"] == "Input should be a valid integer, unable to parse string as an integer"
    assert body["title"] == "Invalid request"
