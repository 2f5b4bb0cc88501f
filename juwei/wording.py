"""What the kernel's problems say, in English (the default) and in Chinese: the one catalogue of their words.

A caller whose ``Accept-Language`` prefers Chinese (``zh``, ``zh-CN``, ``zh-Hans``…) gets Chinese titles, the
kernel's own details (401, 403 role and scope, 404 route, 405, 413, 415, the 422 summary, 429, 503, the
exactly-once commands) and the messages of the common validation errors in Chinese. A detail a service wrote
itself stays as written. The negotiation is the RFC 9110 one, small enough to keep here (babel is not a
dependency of the kernel): the highest quality wins, ties go to the earlier range, ``*`` means English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

ENGLISH, CHINESE = "en", "zh"
SUPPORTED = (ENGLISH, CHINESE)


def negotiate(accept_language: str | None) -> str:
    """The supported language an ``Accept-Language`` header prefers (English when it names none of them)."""
    best, best_q = ENGLISH, 0.0
    for part in (accept_language or "").split(",")[:20]:  # a header of hundreds of ranges is not read to its end
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        language = ENGLISH if primary == "*" else primary
        if language in SUPPORTED and quality > best_q:
            best, best_q = language, quality
    return best


TITLES_ZH = {
    400: "请求有误",
    401: "未认证",
    403: "无权访问",
    404: "未找到",
    405: "不支持的方法",
    409: "冲突",
    413: "请求过大",
    415: "不支持的媒体类型",
    422: "请求无效",
    429: "请求过于频繁",
    500: "内部错误",
    503: "服务不可用",
}

# The kernel's own details by message id; ``{name}`` is filled from the message's parameters.
DETAILS_ZH = {
    "key-missing": "请在 X-API-Key 请求头中发送 API 密钥",
    "key-unknown": "API 密钥无效、已被吊销或已过期",
    "rate-limited": "此密钥每秒请求超过 {rate} 次（突发上限 {burst} 次）；请放慢速度，在 Retry-After 所示秒数后重试",
    "role-refused": "角色 {role} 不能执行此操作；需要以下角色之一：{allowed}",
    "scope-compound": "此密钥不能操作小区 {compound}",
    "scope-building": "此密钥不能操作小区 {compound} 的楼栋 {building}",
    "scope-subdistrict-other": "此密钥无权查看街道 {subdistrict}",
    "scope-subdistrict": "小区 {compound} 不属于街道 {subdistrict}，此密钥无权访问",
    "route-not-found": "没有这个地址：{path}",
    "method-not-allowed": "此地址不接受 {method} 请求",
    "unsupported-media-type": "不支持请求的内容类型",
    "body-too-large": "请求体超过 {limit} 字节",
    "validation": "{where}：{message}",
    "validation-more": "{where}：{message}（另有 {more} 处错误）",
    "database-unavailable": "暂时无法连接数据库，请稍后重试",
    "not-ready": "服务尚未就绪：{checks}",
    "internal": "请求在服务内部出错",
    "idempotency-key-invalid": "Idempotency-Key 须为 8 到 100 个字符，只能包含 A-Z、a-z、0-9、_ 和 -",
    "idempotency-key-reused": "Idempotency-Key {id} 已用于另一个请求；新的命令请使用新的编号",
    "command-in-progress": "命令 {id} 正由另一个请求执行；请重新发送以获取其结果",
}

# The common validation errors (pydantic's ``type``); ``{name}`` is filled from the error's ``ctx``.
ERRORS_ZH = {
    "missing": "缺少此字段",
    "extra_forbidden": "不允许此字段",
    "string_type": "应为字符串",
    "string_too_short": "至少需要 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符合要求（{pattern}）",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能带小数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "enum": "应为以下之一：{expected}",
    "literal_error": "应为以下之一：{expected}",
    "json_invalid": "JSON 格式错误",
    "json_type": "应为 JSON",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "datetime_parsing": "应为日期时间（ISO 8601）",
    "datetime_from_date_parsing": "应为日期时间（ISO 8601）",
    "uuid_parsing": "应为 UUID",
}


@dataclass(frozen=True)
class Said:
    """A kernel message: its id in the catalogue and the values it names."""

    id: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # Where the Chinese wording is looked up: the kernel's details, or a service's rules (``ServiceDefinition``).
    wording: Mapping[str, str] = field(default_factory=lambda: DETAILS_ZH)

    def text(self, language: str) -> str | None:
        """The message in ``language``; None where the catalogue has no wording for it (the English stays)."""
        if language != CHINESE or self.id not in self.wording:
            return None
        try:
            return self.wording[self.id].format(**self.params)
        except (KeyError, IndexError, AttributeError):  # a value the wording names was not given: keep the English
            return None


def title(status: int, language: str, english: str) -> str:
    return TITLES_ZH.get(status, english) if language == CHINESE else english


def default_said(status: int, detail: str, method: str, path: str) -> Said | None:
    """Starlette's own 404, 405 and 415 (their detail is the status's phrase): said in the caller's language."""
    if status not in (404, 405, 415) or detail != HTTPStatus(status).phrase:
        return None
    return {
        404: Said("route-not-found", {"path": path}),
        405: Said("method-not-allowed", {"method": method}),
        415: Said("unsupported-media-type"),
    }[status]


def error_message(error: Mapping[str, Any], language: str) -> str:
    """One validation error's message in ``language`` (pydantic's English where the catalogue has none)."""
    english = str(error.get("msg", ""))
    wording = ERRORS_ZH.get(str(error.get("type", ""))) if language == CHINESE else None
    if wording is None:
        return english
    context = dict(error.get("ctx") or {})
    if "expected" in context:
        # pydantic's "'a', 'b' or 'c'" as a Chinese list: a、b、c
        context["expected"] = str(context["expected"]).replace(" or ", ", ").replace(", ", "、").replace("'", "")
    try:
        return wording.format(**context)
    except (KeyError, IndexError):
        return english
