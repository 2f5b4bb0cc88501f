"""The ways out to a building group, behind one interface: ``Sender.send(Outgoing) -> Outcome``.

The chat bots (WeCom, DingTalk, Feishu/Lark) answer HTTP 200 even when they refuse a message, with an
error code in the body: every sender reads the body and says which of five things happened — sent; rate
limited (try later); transient (nothing arrived: try again); permanent (this message will never go, or
the channel itself is wrong: a bad key or signature); uncertain (the request may have arrived, the answer
did not: not resent, so that nothing is doubled). Apprise is not used for the bots because it reports
their HTTP-200 errors as success; e-mail uses the standard library's smtplib.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import smtplib
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from juwei import tracing
from services.notify.domain import truncate_bytes

OutcomeKind = Literal["sent", "rate_limited", "transient", "permanent", "uncertain"]


@dataclass(frozen=True)
class Outgoing:
    """One delivery as a sender sees it: texts already in the channel's language, ids for headers."""

    delivery: str
    title: str
    body: str
    priority: str
    language: str
    compound: str
    building: str
    message: str | None = None


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    code: str = ""
    detail: str = ""
    channel_broken: bool = False  # the platform refuses the channel itself: pause it until an operator fixes it
    retry_after: float | None = None  # seconds the platform asks us to wait
    requested: bool = True  # a request reached the platform (it counts against the rate limit)


class Sender(Protocol):
    max_bytes: int

    def send(self, outgoing: Outgoing) -> Outcome: ...


# --- configuration (sealed in the vault; validated before sealing) ---------------------------------------

_URL = re.compile(r"^https?://[^\s]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotConfig(_Config):
    url: str = Field(description="the bot's webhook URL as the platform gives it (it carries the key)")
    secret: str | None = Field(None, description="signing secret (DingTalk 'SEC…', Feishu), when signing is on")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URL.match(value):
            raise ValueError("must be an http(s) URL")
        return value


class EmailConfig(_Config):
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    recipients: list[str] = Field(min_length=1, max_length=500)
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _EMAIL.match(v)]
        if bad:
            raise ValueError(f"{len(bad)} recipient(s) are not e-mail addresses")
        return value


class WebhookConfig(_Config):
    url: str
    secret: str = Field(min_length=16, description="HMAC-SHA256 key the receiver checks our signature with")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _URL.match(value):
            raise ValueError("must be an http(s) URL")
        return value


CONFIGS: dict[str, type[_Config]] = {
    "wecom": BotConfig,
    "dingtalk": BotConfig,
    "feishu": BotConfig,
    "email": EmailConfig,
    "webhook": WebhookConfig,
}


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return CONFIGS[kind].model_validate(config).model_dump()


def describe(kind: str, config: dict[str, Any]) -> str:
    """What the API may show of a configuration: the host, never the key, secret or addresses."""
    if kind == "email":
        return f"smtp://{config.get('host')}:{config.get('port')} ({len(config.get('recipients', []))} recipients)"
    return urllib.parse.urlsplit(str(config.get("url", ""))).netloc


# --- the text each platform receives ---------------------------------------------------------------------

_MARK = {"zh": {"critical": "【紧急】", "important": "【重要】"}, "en": {"critical": "[URGENT] ", "important": ""}}
_CUT = {"zh": "…（全文见楼栋公告栏）", "en": "… (full text on the building board)"}


def plain_text(outgoing: Outgoing, max_bytes: int) -> str:
    lang = "en" if outgoing.language == "en" else "zh"
    mark = _MARK[lang].get(outgoing.priority, "")
    head = f"{mark}{outgoing.title}"
    text = f"{head}\n{outgoing.body}" if outgoing.body else head
    return truncate_bytes(text, max_bytes, _CUT[lang])


def _http_failure(exc: httpx.HTTPError) -> Outcome:
    # Nothing left the machine: safe to try again. Anything later: the platform may have it already.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol):
        return Outcome("transient", f"http:{type(exc).__name__}", str(exc)[:300], requested=False)
    return Outcome("uncertain", f"http:{type(exc).__name__}", str(exc)[:300])


def _status_failure(response: httpx.Response) -> Outcome | None:
    status = response.status_code
    if status == 429:
        retry = response.headers.get("retry-after")
        return Outcome("rate_limited", "http:429", "too many requests", retry_after=_seconds(retry))
    if status >= 500:
        return Outcome("transient", f"http:{status}", response.text[:300])
    if status in (401, 403, 404, 410):
        return Outcome("permanent", f"http:{status}", response.text[:300], channel_broken=True)
    if status >= 400:
        return Outcome("permanent", f"http:{status}", response.text[:300])
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class BotCodes:
    """How one platform's body codes read: which say "too fast", which say "this channel is wrong"."""

    field: str
    rate_limited: frozenset[int]
    broken: frozenset[int]

    def outcome(self, response: httpx.Response) -> Outcome:
        failed = _status_failure(response)
        if failed is not None:
            return failed
        body = _json(response)
        if body is None:
            return Outcome("uncertain", "body:unreadable", response.text[:300])
        raw = body.get(self.field, body.get("StatusCode"))
        try:
            code = int(raw) if raw is not None else 0
        except (TypeError, ValueError):
            return Outcome("uncertain", "body:unreadable", json.dumps(body, ensure_ascii=False)[:300])
        message = str(body.get("errmsg") or body.get("msg") or body.get("StatusMessage") or "")[:300]
        if code == 0:
            return Outcome("sent", "0", message)
        if code in self.rate_limited:
            return Outcome("rate_limited", str(code), message)
        return Outcome("permanent", str(code), message, channel_broken=code in self.broken)


# WeCom: 45009 rate limit; 93000 invalid webhook URL (a wrong or removed key).
WECOM = BotCodes("errcode", frozenset({45009}), frozenset({93000}))
# DingTalk: 130101 "send too fast" (the bot is blocked for 10 minutes); 310000 bad signature / keyword / IP;
# 300001 the access token does not exist.
DINGTALK = BotCodes("errcode", frozenset({130101}), frozenset({310000, 300001}))
# Feishu/Lark: 11232 rate limit; 19021 bad signature or stale timestamp; 19024 IP not allowed; 19001 bad token.
FEISHU = BotCodes("code", frozenset({11232}), frozenset({19021, 19024, 19001}))


class WeComBot:
    max_bytes = 2000  # WeCom text messages: 2048 bytes

    def __init__(self, config: dict[str, Any], client: httpx.Client) -> None:
        self.url = config["url"]
        self.client = client

    def send(self, outgoing: Outgoing) -> Outcome:
        text: dict[str, Any] = {"content": plain_text(outgoing, self.max_bytes)}
        if outgoing.priority == "critical":
            text["mentioned_list"] = ["@all"]
        try:
            response = self.client.post(self.url, json={"msgtype": "text", "text": text})
        except httpx.HTTPError as exc:
            return _http_failure(exc)
        return WECOM.outcome(response)


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """HMAC-SHA256 keyed by the secret over ``timestamp\\nsecret``, base64, URL-encoded once."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalkRobot:
    max_bytes = 18000

    def __init__(self, config: dict[str, Any], client: httpx.Client) -> None:
        self.url = config["url"]
        self.secret = config.get("secret")
        self.client = client

    def signed_url(self, now_ms: int | None = None) -> str:
        if not self.secret:
            return self.url
        timestamp = now_ms if now_ms is not None else int(time.time() * 1000)
        glue = "&" if "?" in self.url else "?"
        return f"{self.url}{glue}timestamp={timestamp}&sign={dingtalk_signature(self.secret, timestamp)}"

    def send(self, outgoing: Outgoing) -> Outcome:
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": plain_text(outgoing, self.max_bytes)}}
        if outgoing.priority == "critical":
            body["at"] = {"isAtAll": True}
        try:
            # The URL is passed as text so that the already-encoded signature is not encoded a second time.
            response = self.client.post(httpx.URL(self.signed_url()), json=body)
        except httpx.HTTPError as exc:
            return _http_failure(exc)
        return DINGTALK.outcome(response)


def feishu_signature(secret: str, timestamp_s: int) -> str:
    """HMAC-SHA256 keyed by ``timestamp\\nsecret`` over an empty message, base64."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuBot:
    max_bytes = 18000  # the whole body must stay under 20 KB

    def __init__(self, config: dict[str, Any], client: httpx.Client) -> None:
        self.url = config["url"]
        self.secret = config.get("secret")
        self.client = client

    def send(self, outgoing: Outgoing) -> Outcome:
        text = plain_text(outgoing, self.max_bytes)
        if outgoing.priority == "critical":
            text = '<at user_id="all">所有人</at> ' + text
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if self.secret:
            timestamp = int(time.time())
            body.update(timestamp=str(timestamp), sign=feishu_signature(self.secret, timestamp))
        try:
            response = self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            return _http_failure(exc)
        return FEISHU.outcome(response)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``<timestamp>.<body>``: the receiver checks it and the timestamp's age."""
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SignedWebhook:
    """For other systems: the message as JSON, signed, with our delivery id so that the receiver can dedupe."""

    max_bytes = 100_000

    def __init__(self, config: dict[str, Any], client: httpx.Client) -> None:
        self.url = config["url"]
        self.secret = config["secret"]
        self.client = client

    def send(self, outgoing: Outgoing) -> Outcome:
        body = json.dumps(
            {
                "delivery": outgoing.delivery,
                "message": outgoing.message,
                "compound": outgoing.compound,
                "building": outgoing.building,
                "priority": outgoing.priority,
                "language": outgoing.language,
                "title": outgoing.title,
                "body": truncate_bytes(outgoing.body, self.max_bytes),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Juwei-Delivery": outgoing.delivery,
            "X-Juwei-Timestamp": timestamp,
            "X-Juwei-Signature": webhook_signature(self.secret, timestamp, body),
        }
        traced = tracing.traceparent_now()
        if traced is not None:  # the receiver may continue the delivery's trace
            headers["traceparent"] = traced
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return _http_failure(exc)
        failed = _status_failure(response)
        return failed if failed is not None else Outcome("sent", f"http:{response.status_code}")


class Email:
    max_bytes = 100_000

    def __init__(self, config: dict[str, Any], timeout: float) -> None:
        self.config = EmailConfig.model_validate(config)
        self.timeout = timeout

    def send(self, outgoing: Outgoing) -> Outcome:
        cfg = self.config
        mail = EmailMessage()
        mail["From"] = cfg.sender
        mail["To"] = "undisclosed-recipients:;"  # members never see each other's addresses
        mail["Subject"] = outgoing.title
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{outgoing.delivery}@notify.juwei>"  # the same delivery always has the same id
        mail["X-Juwei-Delivery"] = outgoing.delivery
        if outgoing.priority == "critical":
            mail["Importance"] = "high"
        mail.set_content(truncate_bytes(outgoing.body or outgoing.title, self.max_bytes))
        kind = smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP
        try:
            server = kind(cfg.host, cfg.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome("transient", f"smtp:{type(exc).__name__}", str(exc)[:300], requested=False)
        try:
            try:
                if cfg.starttls:
                    server.starttls()
                if cfg.username:
                    server.login(cfg.username, cfg.password or "")
            except smtplib.SMTPAuthenticationError as exc:
                return Outcome("permanent", f"smtp:{exc.smtp_code}", "authentication refused", channel_broken=True)
            except (OSError, smtplib.SMTPException) as exc:
                return Outcome("transient", f"smtp:{type(exc).__name__}", str(exc)[:300], requested=False)
            try:
                refused = server.send_message(mail, to_addrs=cfg.recipients)
            except smtplib.SMTPRecipientsRefused as exc:
                return Outcome("permanent", "smtp:recipients", f"{len(exc.recipients)} recipients refused")
            except smtplib.SMTPSenderRefused as exc:
                return Outcome("permanent", f"smtp:{exc.smtp_code}", "sender refused", channel_broken=True)
            except smtplib.SMTPResponseException as exc:
                kind_of = "transient" if 400 <= exc.smtp_code < 500 else "permanent"
                return Outcome(kind_of, f"smtp:{exc.smtp_code}", str(exc.smtp_error)[:300])
            except (TimeoutError, OSError, smtplib.SMTPServerDisconnected) as exc:
                return Outcome("uncertain", f"smtp:{type(exc).__name__}", str(exc)[:300])
            detail = f"{len(refused)} recipients refused" if refused else ""
            return Outcome("sent", "250", detail)
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()


def sender_for(kind: str, config: dict[str, Any], client: httpx.Client, timeout: float) -> Sender:
    if kind == "wecom":
        return WeComBot(config, client)
    if kind == "dingtalk":
        return DingTalkRobot(config, client)
    if kind == "feishu":
        return FeishuBot(config, client)
    if kind == "webhook":
        return SignedWebhook(config, client)
    if kind == "email":
        return Email(config, timeout)
    raise ValueError(f"no sender for channel kind {kind!r}")
