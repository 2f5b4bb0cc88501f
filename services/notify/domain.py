"""The notify service's domain rules: plain Python, no I/O.

Aggregates decide on commands and record events: a ``Channel`` attached to a building group, a
``Message`` composed once for some groups, a compound's ``QuietHours``, a ``Question`` from a building and
the ``Answer`` staff give to a group of them. Pure functions cover delivery policy (platform rate limits,
which deliveries go out one by one and which are merged into a digest, backoff with jitter, quiet hours)
and the near-duplicate grouping of residents' questions (character bigrams, cosine similarity).
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from contracts.notify import (
    ChannelAttached,
    ChannelDetached,
    ChannelReconfigured,
    MessageComposed,
    QuestionsAnswered,
    QuestionSubmitted,
    QuietHoursSet,
)
from juwei.aggregate import Aggregate, Conflict, Invalid, NotFound

CHANNEL_KINDS = ("wecom", "dingtalk", "feishu", "email", "webhook")
PRIORITIES = ("normal", "important", "critical")
# Channels that ping people's phones: quiet hours hold them back (a webhook feeds machines, the board waits).
PEOPLE_CHANNELS = frozenset({"wecom", "dingtalk", "feishu", "email"})
# Receivers of these dedupe on our delivery id (X-Juwei-Delivery), so a delivery whose fate is unknown may go again.
IDEMPOTENT_CHANNELS = frozenset({"webhook"})


# --- channels -------------------------------------------------------------------------------------------


class Channel(Aggregate):
    """One way of reaching a building group. Its configuration arrives already sealed (the vault's token)."""

    stream_prefix = "channel"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None
        self.kind: str | None = None
        self.language = "zh"
        self.attached = False

    def attach(self, building: str, kind: str, language: str, label: str, sealed_config: str) -> None:
        if self.exists:
            raise Conflict(f"channel {self.id} already exists", code="channel-exists")
        if kind not in CHANNEL_KINDS:
            raise Invalid(f"unknown channel kind {kind!r}", code="invalid-channel")
        self.record(
            ChannelAttached(
                channel=self.id, building=building, kind=kind, language=language, label=label, config=sealed_config
            )
        )

    def reconfigure(self, sealed_config: str, language: str | None = None) -> None:
        building = self._require_attached()
        self.record(
            ChannelReconfigured(
                channel=self.id, building=building, language=language or self.language, config=sealed_config
            )
        )

    def detach(self) -> None:
        building = self._require_attached()
        self.record(ChannelDetached(channel=self.id, building=building))

    def _require_attached(self) -> str:
        if not self.attached or self.building is None:
            raise NotFound(f"channel {self.id} is not attached", code="not-found")
        return self.building

    def on_ChannelAttached(self, event: ChannelAttached) -> None:
        self.building, self.kind, self.language, self.attached = event.building, event.kind, event.language, True

    def on_ChannelReconfigured(self, event: ChannelReconfigured) -> None:
        self.language = event.language

    def on_ChannelDetached(self, event: ChannelDetached) -> None:
        self.attached = False


# --- messages -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Texts:
    """A message's title and body in Chinese (always) and English (falls back to Chinese when missing)."""

    title_zh: str
    body_zh: str
    title_en: str = ""
    body_en: str = ""

    def title(self, language: str) -> str:
        return self.title_en if language == "en" and self.title_en else self.title_zh

    def body(self, language: str) -> str:
        return self.body_en if language == "en" and self.body_en else self.body_zh


class Message(Aggregate):
    """A message to some building groups. Composed once: a redelivered cause finds it already there."""

    stream_prefix = "message"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.buildings: list[str] = []
        self.priority = "normal"

    def compose(
        self,
        kind: str,
        priority: str,
        buildings: Sequence[str],
        texts: Texts,
        template: str = "",
        cause: str | None = None,
    ) -> None:
        if self.exists:
            raise Conflict(f"message {self.id} was already composed", code="message-exists")
        if priority not in PRIORITIES:
            raise Invalid(f"unknown priority {priority!r}", code="invalid-message")
        chosen = sorted(set(buildings))
        if not chosen:
            raise Invalid("a message needs at least one building group", code="no-building")
        if not texts.title_zh.strip() and not texts.body_zh.strip():
            raise Invalid("a message needs a title or a body", code="invalid-message")
        self.record(
            MessageComposed(
                message=self.id,
                kind=kind,
                priority=priority,
                buildings=chosen,
                building=chosen[0] if len(chosen) == 1 else None,
                template=template,
                cause=cause,
                title_zh=texts.title_zh,
                body_zh=texts.body_zh,
                title_en=texts.title_en,
                body_en=texts.body_en,
            )
        )

    def on_MessageComposed(self, event: MessageComposed) -> None:
        self.buildings = list(event.buildings)
        self.priority = event.priority


# --- quiet hours ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietWindow:
    """From ``start`` to ``end`` in the compound's local time; may span midnight (22:00–07:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> QuietWindow | None:
        if not start or not end:
            return None
        return cls(time.fromisoformat(start), time.fromisoformat(end))

    def covers(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def ends_after(self, local: datetime) -> datetime:
        """The first moment after ``local`` (tz-aware, compound-local) when the window is over."""
        candidate = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate


class QuietHours(Aggregate):
    stream_prefix = "quiet-hours"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.start: str | None = None
        self.end: str | None = None

    def set(self, start: str | None, end: str | None) -> None:
        if (start is None) != (end is None):
            raise Invalid("give both the start and the end of quiet hours, or neither", code="invalid-quiet-hours")
        if start is not None and start == end:
            raise Invalid("quiet hours need a start different from the end", code="invalid-quiet-hours")
        if (start, end) == (self.start, self.end) and self.exists:
            return
        self.record(QuietHoursSet(start=start, end=end))

    def on_QuietHoursSet(self, event: QuietHoursSet) -> None:
        self.start, self.end = event.start, event.end


# --- delivery policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """A platform's limits as (window seconds, requests) pairs; all must hold."""

    windows: tuple[tuple[float, int], ...] = ()

    @property
    def long_window(self) -> tuple[float, int] | None:
        return max(self.windows) if self.windows else None

    def budget(self, sent_at: Sequence[datetime], now: datetime) -> int | None:
        """How many more requests fit in every window right now (None: unlimited)."""
        if not self.windows:
            return None
        return max(
            0, min(limit - sum(1 for t in sent_at if t > now - timedelta(seconds=w)) for w, limit in self.windows)
        )

    def long_budget(self, sent_at: Sequence[datetime], now: datetime) -> int | None:
        """Room left in the longest window: what decides whether a backlog must be digested."""
        window = self.long_window
        if window is None:
            return None
        seconds, limit = window
        return max(0, limit - sum(1 for t in sent_at if t > now - timedelta(seconds=seconds)))

    def next_slot(self, sent_at: Sequence[datetime], now: datetime) -> datetime:
        """When the next request fits in every window (``now`` if it already does)."""
        moment = now
        for seconds, limit in self.windows:
            recent = sorted(t for t in sent_at if t > now - timedelta(seconds=seconds))
            if len(recent) >= limit:
                moment = max(moment, recent[len(recent) - limit] + timedelta(seconds=seconds))
        return moment


# WeCom and DingTalk bots: 20/min; Feishu/Lark: 5/s and 100/min (FACTS.md). E-mail and webhooks: ours to choose.
PLATFORM_LIMITS: dict[str, RateLimit] = {
    "wecom": RateLimit(((60.0, 20),)),
    "dingtalk": RateLimit(((60.0, 20),)),
    "feishu": RateLimit(((1.0, 5), (60.0, 100))),
    "email": RateLimit(((60.0, 60),)),
    "webhook": RateLimit(),
}


@dataclass(frozen=True)
class Due:
    """A pending delivery as the planner sees it."""

    id: int
    priority: str
    seq: int

    @property
    def rank(self) -> tuple[int, int]:
        return (-PRIORITIES.index(self.priority), self.seq)


def plan_batch(due: Sequence[Due], room: int | None) -> tuple[list[Due], list[Due]]:
    """Which deliveries go out one by one and which are merged into one digest.

    With room for ``room`` more requests in the platform's window, a backlog that fits goes out as it is;
    a larger one sends the ``room - 1`` most urgent alone and merges the rest into one digest (the last
    request of the window), so nothing is dropped and the limit holds. No room: nothing now.
    """
    ordered = sorted(due, key=lambda d: d.rank)
    if room is None or len(ordered) <= room:
        return ordered, []
    if room <= 0:
        return [], []
    alone = ordered[: room - 1]
    merged = ordered[room - 1 :]
    if len(merged) == 1:
        return [*alone, *merged], []
    return alone, merged


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: exponential, capped, with jitter so retries do not march in step."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class DigestItem:
    title: str
    body: str
    priority: str


DIGEST_HEADINGS = {"zh": "【通知汇总】以下 {n} 条通知合并发送", "en": "[Digest] {n} notices sent together"}
DIGEST_MORE = {"zh": "完整内容请看楼栋公告栏", "en": "Full texts on the building board"}


def digest_text(items: Sequence[DigestItem], language: str, max_bytes: int, board_url: str | None = None) -> Texts:
    """One message listing every merged notice; bodies are cut (never whole notices) to fit the platform."""
    lang = "en" if language == "en" else "zh"
    title = DIGEST_HEADINGS[lang].format(n=len(items))
    more = DIGEST_MORE[lang] + (f": {board_url}" if board_url else "")
    lines = [
        f"{n}. {item.title}" + (f"：{item.body}" if lang == "zh" else f": {item.body}")
        for n, item in enumerate(items, start=1)
    ]
    full = "\n".join(lines)
    if len((title + "\n" + full).encode()) <= max_bytes:
        return Texts(title, full, title, full)
    # Too long: every title stays, bodies go, and the board (which has them all) is named.
    short = "\n".join(f"{n}. {item.title}" for n, item in enumerate(items, start=1)) + "\n" + more
    short = truncate_bytes(short, max_bytes - len(title.encode()) - 1)
    return Texts(title, short, title, short)


def truncate_bytes(text: str, max_bytes: int, ellipsis: str = "…") -> str:
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    cut = raw[: max(0, max_bytes - len(ellipsis.encode()))].decode(errors="ignore")
    return cut + ellipsis


# --- questions ------------------------------------------------------------------------------------------


class Question(Aggregate):
    stream_prefix = "question"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.building: str | None = None

    def submit(self, building: str, text: str) -> None:
        if self.exists:
            raise Conflict(f"question {self.id} was already submitted", code="question-exists")
        if not normalise(text):
            raise Invalid("a question needs some words", code="invalid-question")
        self.record(QuestionSubmitted(question=self.id, building=building, text=text.strip()))

    def on_QuestionSubmitted(self, event: QuestionSubmitted) -> None:
        self.building = event.building


class Answer(Aggregate):
    stream_prefix = "answer"

    def give(
        self,
        questions: Sequence[str],
        buildings: Sequence[str],
        message: str,
        question_text: str,
        answer: str,
        policy_points: Sequence[str],
    ) -> None:
        if self.exists:
            raise Conflict(f"answer {self.id} was already given", code="answer-exists")
        if not questions:
            raise Conflict("nothing to answer: the group has no open questions", code="nothing-to-answer")
        if not answer.strip():
            raise Invalid("an answer needs some words", code="invalid-answer")
        self.record(
            QuestionsAnswered(
                answer_id=self.id,
                questions=list(questions),
                buildings=sorted(set(buildings)),
                message=message,
                question_text=question_text,
                answer=answer.strip(),
                policy_points=[p.strip() for p in policy_points if p.strip()],
            )
        )


# Words nearly every question shares ("when", "please", "we", particles): removed so that what is asked about decides.
_FILLERS = (
    "什么时候",
    "啥时候",
    "几时",
    "什么",
    "怎么办",
    "怎么",
    "为什么",
    "能不能",
    "可不可以",
    "可以",
    "请问",
    "你好",
    "您好",
    "我们",
    "我家",
    "咱们",
    "一下",
    "一个",
    "这个",
    "那个",
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
)
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, punctuation and fillers out: what two askers share."""
    plain = unicodedata.normalize("NFKC", text).lower()
    plain = _PUNCT.sub("", plain)
    for filler in _FILLERS:
        plain = plain.replace(filler, "")
    return plain


def bigrams(text: str) -> Counter[str]:
    """Character bigrams: Chinese has no spaces, and two characters are the commonest word length."""
    plain = normalise(text)
    if len(plain) < 2:
        return Counter([plain]) if plain else Counter()
    return Counter(plain[i : i + 2] for i in range(len(plain) - 1))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[gram] for gram, count in a.items())
    return dot / (math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values())))


def jaccard(a: Counter[str], b: Counter[str]) -> float:
    left, right = set(a), set(b)
    return len(left & right) / len(left | right) if left | right else 0.0


SIMILAR = 0.3


def similarity(a: str, b: str) -> float:
    """Cosine of bigram counts: robust to one asker being wordier than the other, unlike Jaccard."""
    return cosine(bigrams(a), bigrams(b))


@dataclass
class QuestionGroup:
    """Near-duplicate questions; ``grams`` is the sum of its members' bigrams (the group's centroid)."""

    id: str
    grams: Counter[str] = field(default_factory=Counter)
    size: int = 0


def closest_group(text: str, groups: Iterable[QuestionGroup], threshold: float = SIMILAR) -> QuestionGroup | None:
    """The open group most like ``text``, if any is at least ``threshold`` similar."""
    grams = bigrams(text)
    best: tuple[float, QuestionGroup] | None = None
    for group in groups:
        score = cosine(grams, group.grams)
        if score >= threshold and (best is None or score > best[0]):
            best = (score, group)
    return best[1] if best else None


# --- privacy --------------------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_BUILDING_NUMBER = re.compile(r"^[0-9A-Za-z\u4e00-\u9fff-]{1,8}$")


def has_id_number(text: str) -> bool:
    return bool(_ID_NUMBER.search(text))


def redact(text: str) -> str:
    """Mask ID-card and mobile numbers (questions are shown to staff and may be quoted in answers)."""
    return _MOBILE.sub("1**********", _ID_NUMBER.sub("******************", text))


def building_label(number: str | None, building_id: str) -> str:
    """What the groups call a building: its number when it looks like one, else its id in the compound."""
    local = building_id.split(":", 1)[-1]
    if number and _BUILDING_NUMBER.match(number) and not re.search(r"[0-9]{5,}", number):
        return number
    return local if _BUILDING_NUMBER.match(local) else "?"
