"""Disinfection photos behind signed links: the route (200/403/410, page or problem), notify's group message
with a link that opens with no key, the building board's photos, and retention removing the files."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from contracts.testing import disinfection_photo_path
from demo.sinks import Platforms, free_port
from juwei.service import create_app
from juwei.signed_links import signed_query
from juwei.store import events_table
from services.notify import rules
from tests.browser import PHONE, Browser, LiveApp
from tests.conftest import both_databases
from tests.notify.conftest import Notify, close_notify, compound_events, open_notify
from tests.notify.conftest import receive as notify_receive
from tests.testing.compound import Compound
from tests.testing.conftest import Testing, receive, small_compound
from tests.testing.test_cases_and_photos_api import JPEG, png

SECRET = "photo-links-test-secret"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"}
BASE = "https://photos.example.org"


@pytest.fixture(autouse=True)
def _link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """notify signs and testing checks under one secret (compose gives both JUWEI_LINK_SECRET)."""
    monkeypatch.setenv("JUWEI_LINK_SECRET", SECRET)
    monkeypatch.setattr(rules, "PHOTO_BASE_URL", BASE)


def _record(testing: Testing, compound: Compound, second: tuple[str, bytes] = ("lift.jpg", JPEG)) -> tuple[dict, bytes]:
    receive(testing.runtime, compound.envelopes)
    picture = png(3, 3)
    recorded = testing.ok(
        "POST",
        "/buildings/1/disinfections",
        data={"areas": ["lobby", "lifts"], "done_at": "2022-04-12T16:30"},
        files=[("photos", ("lobby.png", picture, "image/png")), ("photos", (*second, "image/jpeg"))],
    )
    return recorded, picture


def _signed(path: str, lifetime: int = 600, now: float | None = None) -> str:
    return f"{path}?{signed_query(SECRET, path, time.time() if now is None else now, lifetime)}"


@both_databases
def test_a_signed_link_opens_the_photo_with_no_key_and_bad_links_get_a_page_or_a_problem(testing: Testing) -> None:
    recorded, picture = _record(testing, small_compound())
    photo = recorded["photos"][0]["photo"]
    path = disinfection_photo_path("c1", recorded["disinfection"], photo)
    served = testing.client.get(_signed(path))  # no X-API-Key
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"].startswith("private, max-age=")
    jpeg = disinfection_photo_path("c1", recorded["disinfection"], recorded["photos"][1]["photo"])
    assert testing.client.get(_signed(jpeg)).headers["content-type"] == "image/jpeg"

    good = _signed(path)
    query = parse_qs(urlsplit(good).query)
    expires, signature = query["expires"][0], query["signature"][0]
    other_photo = disinfection_photo_path("c1", recorded["disinfection"], recorded["photos"][1]["photo"])
    refused = {
        "unsigned": (path, 403, "photo-link-unsigned"),
        "no signature": (f"{path}?expires={expires}", 403, "photo-link-unsigned"),
        "signature of another photo": (
            f"{other_photo}?expires={expires}&signature={signature}",
            403,
            "photo-link-forged",
        ),
        "expiry pushed later": (
            f"{path}?expires={int(expires) + 86400}&signature={signature}",
            403,
            "photo-link-forged",
        ),
        # The first character changed for another: always a different signature (replacing the last two with "AA"
        # left it unchanged whenever it already ended so).
        "altered signature": (
            f"{path}?expires={expires}&signature={'B' if signature[0] == 'A' else 'A'}{signature[1:]}",
            403,
            "photo-link-forged",
        ),
        "signed elsewhere": (
            f"{path}?{signed_query('another secret', path, time.time(), 600)}",
            403,
            "photo-link-forged",
        ),
        "expired": (_signed(path, lifetime=60, now=time.time() - 3600), 410, "photo-link-expired"),
        "absurd expiry": (f"{path}?expires=99999999999999999999&signature={signature}", 403, "photo-link-forged"),
    }
    for what, (url, status, code) in refused.items():
        page = testing.client.get(url, headers=BROWSER)
        assert page.status_code == status, what
        assert page.headers["content-type"].startswith("text/html"), what
        assert "照片" in page.text and picture not in page.content, what
        problem = testing.client.get(url, headers={"Accept": "application/json"})
        assert problem.status_code == status, what
        assert problem.headers["content-type"] == "application/problem+json", what
        assert problem.json()["code"] == code, what
    assert "已过期" in testing.client.get(refused["expired"][0], headers=BROWSER).text
    assert "改动" in testing.client.get(refused["altered signature"][0], headers=BROWSER).text
    # A client that names no type (curl, a script) gets the problem too.
    assert testing.client.get(path).headers["content-type"] == "application/problem+json"
    # Chinese problems for a client that asks for them.
    chinese = testing.client.get(path, headers={"Accept": "application/json", "Accept-Language": "zh-CN"})
    assert chinese.json()["detail"] == "这个链接缺少签名，无法打开照片。"
    # A malformed photo id is refused before any signature is looked at.
    assert testing.client.get(f"/photos/c1/{recorded['disinfection']}/xyz").status_code == 422


@both_databases
def test_retention_removes_the_disinfection_photos_and_their_links_then_get_410(
    testing: Testing, tmp_path: Path
) -> None:
    recorded, _picture = _record(testing, small_compound())
    album = tmp_path / "testing" / "photos" / "c1"
    assert len(list(album.iterdir())) == 2
    link = _signed(disinfection_photo_path("c1", recorded["disinfection"], recorded["photos"][0]["photo"]))
    assert testing.client.get(link).status_code == 200
    report = testing.runtime.retire("c1")
    assert report["disinfection_photos_deleted"] == 2
    assert list(album.iterdir()) == []
    gone = testing.client.get(link, headers=BROWSER)
    assert gone.status_code == 410 and "已按规定删除" in gone.text
    assert testing.client.get(link, headers={"Accept": "application/json"}).json()["code"] == "photo-removed"
    # The record itself stays (when, which areas): the committee's account of its work.
    kept = testing.ok("GET", "/buildings/1/disinfections")["disinfections"]
    assert kept[0]["areas"] == ["lobby", "lifts"]


@pytest.fixture
def notify(new_database, tmp_path: Path) -> Iterator[Notify]:
    made = open_notify(new_database("notify"), tmp_path / "notify")
    notify_receive(made.runtime, *compound_events("c1"))
    yield made
    close_notify(made)


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    made = Platforms().start()
    yield made
    made.stop()


def disinfection_to_notify(testing: Testing, notify: Notify) -> None:
    """What Kafka carries: testing's DisinfectionRecorded, as notify's consumer receives it."""
    with testing.runtime.database.reading() as session:
        head = session.execute(select(events_table.c.position).order_by(events_table.c.position.desc())).scalar()
        envelopes = testing.runtime.store.read_after(session, 0, limit=int(head or 0))
    recorded = [e for e in envelopes if e.type.startswith("juwei.testing.DisinfectionRecorded")]
    assert len(recorded) == 1
    notify_receive(notify.runtime, *recorded, topic="juwei.testing")


def group_links(text: str) -> list[str]:
    return re.findall(r"https://photos\.example\.org(/photos/\S+)", text)


def test_the_group_message_carries_signed_links_that_open_and_the_board_shows_the_photos(
    testing: Testing, notify: Notify, platforms: Platforms
) -> None:
    bot = platforms.bot("wecom", "wk")
    notify.attach("1", "wecom", platforms.config(bot))
    _recorded, picture = _record(testing, small_compound())
    disinfection_to_notify(testing, notify)
    assert notify.dispatcher.drain() == 1
    (text,) = bot.texts
    assert "消杀已完成" in text and "照片 1：" in text
    links = group_links(text)
    assert len(links) == 2
    opened = testing.client.get(links[0])  # a resident's phone: no key
    assert opened.status_code == 200 and opened.content == picture
    expires = int(parse_qs(urlsplit(links[0]).query)["expires"][0])
    assert 29 * 86400 < expires - time.time() <= 30 * 86400  # JUWEI_PHOTO_LINK_DAYS after the event
    tampered = links[0].replace(links[0][-3:], "AAA") if not links[0].endswith("AAA") else links[0][:-3] + "BBB"
    assert testing.client.get(tampered).status_code == 403

    board = notify.client.get("/compounds/c1/buildings/1/board", headers=notify.key("committee-staff")).json()["url"]
    page = notify.client.get(board)
    assert page.status_code == 200 and "最近一次消杀照片" in page.text
    shown = re.findall(r'<img src="https://photos\.example\.org(/photos/[^"]+)"', page.text)
    assert len(shown) == 2
    fresh = testing.client.get(shown[0].replace("&amp;", "&"))
    assert fresh.status_code == 200 and fresh.content == picture
    # Another building's board shows none of them.
    other = notify.client.get("/compounds/c1/buildings/2/board", headers=notify.key("committee-staff")).json()["url"]
    assert "/photos/" not in notify.client.get(other).text


def test_a_residents_browser_opens_a_photo_link_from_the_group_message(
    testing: Testing, notify: Notify, platforms: Platforms, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Real headless Chromium, as a phone: the link in the group's message shows the photo; an altered one a
    page in Chinese; the building board shows the photos."""
    bot = platforms.bot("wecom", "wk")
    notify.attach("1", "wecom", platforms.config(bot))
    _record(testing, small_compound(), ("lift.png", png(4, 4)))  # both decodable: the board shows them
    photos_app = create_app(testing.runtime, background=False, migrate_on_start=False)
    board_app = create_app(notify.runtime, background=False, migrate_on_start=False)
    with LiveApp(photos_app, free_port()) as photos, LiveApp(board_app, free_port()) as boards:
        monkeypatch.setattr(rules, "PHOTO_BASE_URL", photos.url)  # testing's public address, as compose sets it
        disinfection_to_notify(testing, notify)
        assert notify.dispatcher.drain() == 1
        links = re.findall(rf"{re.escape(photos.url)}/photos/\S+", bot.texts[0])
        assert len(links) == 2
        with Browser(tmp_path / "chromium") as browser:
            browser.viewport(PHONE)
            browser.open(links[0])
            assert browser.evaluate("document.contentType") == "image/png"
            browser.wait("document.images.length === 1 && document.images[0].naturalWidth === 3", what="the photo")
            # Someone edits the link (another photo's id, the same signature): a page that says so, in Chinese.
            other = links[1].split("?")[0] + "?" + links[0].split("?")[1]
            browser.open(other)
            assert browser.evaluate("document.contentType") == "text/html"
            assert "照片无法打开" in browser.text("h1") and "改动" in browser.text()
            assert browser.evaluate("document.documentElement.lang") == "zh-CN"

            token = notify.client.get("/compounds/c1/buildings/1/board", headers=notify.key("committee-staff"))
            browser.open(f"{boards.url}{token.json()['url']}")
            loaded = "[...document.querySelectorAll('#photos img')].filter(i => i.complete && i.naturalWidth > 0)"
            browser.wait(f"{loaded}.length === 2", what="the board's disinfection photos")
            assert "最近一次消杀照片" in browser.text("#photos")
