"""Local stand-ins for the platforms notify sends to: WeCom, DingTalk and Feishu bots, a webhook receiver, SMTP.

Shared by the notify tests, the end-to-end test and ``juwei demo`` (which attaches them to every building
group when no real channel is configured). The bots behave as the real ones are documented to (FACTS.md):
HTTP 200 with an error code in the body; WeCom and DingTalk allow 20 messages a minute per bot (DingTalk then
blocks the bot), Feishu 5 a second and 100 a minute; DingTalk and Feishu check their HMAC signatures. A test
can script the next answers of a bot (a rate limit, a bad key) and reads back what each bot received and when.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LIMITS = {"wecom": ((60.0, 20),), "dingtalk": ((60.0, 20),), "feishu": ((1.0, 5), (60.0, 100)), "webhook": ()}
RATE_CODE = {"wecom": 45009, "dingtalk": 130101, "feishu": 11232}
FIELD = {"wecom": "errcode", "dingtalk": "errcode", "feishu": "code"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Bot:
    kind: str
    token: str
    secret: str | None = None
    script: deque[int] = field(default_factory=deque)  # forced answers, oldest first (0: accept)
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted messages
    requests: list[float] = field(default_factory=list)  # every request's time (what the limit counts)
    refusals: list[tuple[float, int]] = field(default_factory=list)
    blocked_until: float = 0.0
    block_seconds: float = 600.0  # DingTalk blocks a bot that went too fast

    @property
    def texts(self) -> list[str]:
        return [entry["text"] for entry in self.received]

    def most_in_window(self, seconds: float) -> int:
        """The most accepted messages seen within any ``seconds`` window."""
        times = sorted(entry["at"] for entry in self.received)
        best, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


class Platforms:
    """One HTTP server for every fake bot and webhook receiver; ``url_for`` gives a channel's config."""

    def __init__(self, host: str = "127.0.0.1", advertised: str | None = None) -> None:
        self.bots: dict[tuple[str, str], Bot] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        # Where notify reaches us: the bound address, or (compose) the host's name as seen from a container.
        self.advertised = advertised or host
        platforms = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = platforms.handle(self.path, dict(self.headers.items()), raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Platforms:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bot(self, kind: str, token: str, secret: str | None = None) -> Bot:
        made = Bot(kind, token, secret)
        self.bots[(kind, token)] = made
        return made

    def config(self, bot: Bot) -> dict[str, Any]:
        """The channel configuration an operator would paste for this bot."""
        base = f"http://{self.advertised}:{self.port}"
        if bot.kind == "wecom":
            return {"url": f"{base}/cgi-bin/webhook/send?key={bot.token}"}
        if bot.kind == "dingtalk":
            return {"url": f"{base}/robot/send?access_token={bot.token}", "secret": bot.secret}
        if bot.kind == "feishu":
            return {"url": f"{base}/open-apis/bot/v2/hook/{bot.token}", "secret": bot.secret}
        return {"url": f"{base}/hooks/{bot.token}", "secret": bot.secret}

    def everything_received(self) -> str:
        """Every byte any bot or receiver accepted, for privacy checks."""
        return "\n".join(json.dumps(entry, ensure_ascii=False) for bot in self.bots.values() for entry in bot.received)

    # --- the platforms' behaviour -----------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "not json"}
        if url.path == "/cgi-bin/webhook/send":
            return 200, self._bot("wecom", query.get("key", ""), body, lambda bot: True)
        if url.path == "/robot/send":
            return 200, self._bot(
                "dingtalk", query.get("access_token", ""), body, lambda bot: _dingtalk_signed(bot, url.query)
            )
        if url.path.startswith("/open-apis/bot/v2/hook/"):
            return 200, self._bot("feishu", url.path.rsplit("/", 1)[-1], body, lambda bot: _feishu_signed(bot, body))
        if url.path.startswith("/hooks/"):
            return self._webhook(url.path.rsplit("/", 1)[-1], headers, raw, body)
        return 404, {"error": "no such endpoint"}

    def _bot(self, kind: str, token: str, body: dict[str, Any], signed: Any) -> dict[str, Any]:
        code_field = FIELD[kind]
        now = time.time()
        with self.lock:
            bot = self.bots.get((kind, token))
            if bot is None:
                unknown = {"wecom": 93000, "dingtalk": 300001, "feishu": 19001}[kind]
                return {code_field: unknown, "msg": "invalid webhook"}
            bot.requests.append(now)
            if bot.secret and not signed(bot):
                bot.refusals.append((now, {"dingtalk": 310000, "feishu": 19021}[kind]))
                return {code_field: {"dingtalk": 310000, "feishu": 19021}[kind], "msg": "sign not match"}
            if bot.script:
                forced = bot.script.popleft()
                if forced:
                    bot.refusals.append((now, forced))
                    return {code_field: forced, "msg": "scripted refusal"}
            if now < bot.blocked_until or self._over_limit(bot, now):
                if kind == "dingtalk" and now >= bot.blocked_until:
                    bot.blocked_until = now + bot.block_seconds
                bot.refusals.append((now, RATE_CODE[kind]))
                return {code_field: RATE_CODE[kind], "msg": "send too fast"}
            text = _text_of(kind, body)
            bot.received.append({"at": now, "text": text, "body": body})
            return {code_field: 0, "msg": "ok"}

    @staticmethod
    def _over_limit(bot: Bot, now: float) -> bool:
        accepted = [entry["at"] for entry in bot.received]
        return any(sum(1 for t in accepted if now - t < seconds) >= limit for seconds, limit in LIMITS[bot.kind])

    def _webhook(self, token: str, headers: dict[str, str], raw: bytes, body: dict[str, Any]) -> tuple[int, Any]:
        lowered = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            bot = self.bots.get(("webhook", token))
            if bot is None:
                return 404, {"error": "unknown"}
            timestamp = lowered.get("x-juwei-timestamp", "")
            expected = (
                "v1="
                + hmac.new((bot.secret or "").encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
            )
            if not hmac.compare_digest(expected, lowered.get("x-juwei-signature", "")):
                return 401, {"error": "bad signature"}
            delivery = lowered.get("x-juwei-delivery", "")
            if any(entry["delivery"] == delivery for entry in bot.received):
                return 200, {"duplicate": True}  # receivers dedupe on our delivery id
            bot.received.append(
                {"at": time.time(), "text": f"{body['title']}\n{body['body']}", "body": body, "delivery": delivery}
            )
            return 200, {"ok": True}


def _text_of(kind: str, body: dict[str, Any]) -> str:
    if kind == "feishu":
        return body["content"]["text"]
    return body["text"]["content"]


def _dingtalk_signed(bot: Bot, raw_query: str) -> bool:
    # Decode the query once, as DingTalk does: a sign encoded twice no longer matches.
    query = dict(urllib.parse.parse_qsl(raw_query))
    timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
    if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
        return False
    digest = hmac.new(bot.secret.encode(), f"{timestamp}\n{bot.secret}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), sign)


def _feishu_signed(bot: Bot, body: dict[str, Any]) -> bool:
    timestamp = str(body.get("timestamp", ""))
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 3600:
        return False
    digest = hmac.new(f"{timestamp}\n{bot.secret}".encode(), b"", hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), str(body.get("sign", "")))


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps what it accepts."""

    def __init__(self, host: str = "127.0.0.1", advertised: str | None = None) -> None:
        # Imported here: aiosmtpd is a development dependency, and only the e-mail sink needs it.
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], Message]] = []
        self.port = free_port()
        self.advertised = advertised or host
        mailbox = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                mailbox.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname=host, port=self.port)

    def start(self) -> Mailbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def config(self, recipients: list[str]) -> dict[str, Any]:
        return {"host": self.advertised, "port": self.port, "sender": "juweihui@example.org", "recipients": recipients}

    def texts(self) -> list[str]:
        return [f"{subject}\n{body}" for _rcpt, subject, body in self.letters()]

    def letters(self, recipient: str | None = None) -> list[tuple[list[str], str, str]]:
        """(recipients, subject, body) of every accepted mail, or of those sent to ``recipient``."""
        out = []
        for rcpt, mail in list(self.messages):
            if recipient is not None and recipient not in rcpt:
                continue
            body = mail.get_payload(decode=True)
            out.append((rcpt, _subject(mail), body.decode() if isinstance(body, bytes) else str(body)))
        return out


def _subject(mail: Message) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(mail["Subject"] or "")))


class GroupSinks:
    """The demo's stand-in platforms: a chat bot per building group (WeCom, or a signed DingTalk robot every
    other building) and one e-mail list per group, all in this process."""

    def __init__(
        self, compound: str, host: str = "127.0.0.1", advertised: str | None = None, email: bool = True
    ) -> None:
        self.compound = compound
        self.platforms = Platforms(host, advertised).start()
        self.mailbox: Mailbox | None = None
        if email:
            try:
                self.mailbox = Mailbox(host, advertised).start()
            except ImportError:  # aiosmtpd missing (installed without the dev extras): chat bots only
                self.mailbox = None
        self.bots: dict[str, Bot] = {}
        self.addresses: dict[str, str] = {}

    def stop(self) -> None:
        self.platforms.stop()
        if self.mailbox is not None:
            self.mailbox.stop()

    def channels_for(self, building: str) -> list[tuple[str, dict[str, Any]]]:
        """(kind, configuration) of the channels to attach to one building's group."""
        kind = "dingtalk" if building[-1:].isdigit() and int(building[-1]) % 2 == 0 else "wecom"
        secret = f"SEC{self.compound}{building}" if kind == "dingtalk" else None
        bot = self.bots[building] = self.platforms.bot(kind, f"{self.compound}-{building}", secret)
        chosen = [(kind, self.platforms.config(bot))]
        if self.mailbox is not None:
            self.addresses[building] = f"group-{building}@{self.compound}.juwei.example.org"
            chosen.append(("email", self.mailbox.config([self.addresses[building]])))
        return chosen

    def channels_of(self, building: str) -> list[str]:
        """The kinds of the sink channels attached to a building's group."""
        bot = self.bots.get(building)
        return ([bot.kind] if bot else []) + (["email"] if building in self.addresses else [])

    def received(self, building: str) -> dict[str, list[tuple[str, str]]]:
        """channel kind → (title, body) of each text the building's channels accepted, oldest first."""
        found: dict[str, list[tuple[str, str]]] = {}
        bot = self.bots.get(building)
        if bot is not None:
            with self.platforms.lock:
                texts = list(bot.texts)
            found[bot.kind] = [(title, body) for title, _, body in (t.partition("\n") for t in texts)]
        address = self.addresses.get(building)
        if address is not None and self.mailbox is not None:
            found["email"] = [(subject, body) for _rcpt, subject, body in self.mailbox.letters(address)]
        return found

    def total(self) -> int:
        with self.platforms.lock:
            chats = sum(len(bot.received) for bot in self.bots.values())
        return chats + (len(self.mailbox.messages) if self.mailbox is not None else 0)
