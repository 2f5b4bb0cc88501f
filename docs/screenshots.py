"""Screenshots of the console's main pages, at a phone's width (360x780) and a desktop's (1280x800), in docs/.

The stack as ``bench/console_overview.py`` runs it (broker, the four services and the console as processes),
over a smaller seeded compound (the demo's compound builder: 6 buildings, 600 residents, a round, a batch,
questions); staff s1 signs in as ``bench`` in headless Chromium (Debian's package) and visits each page; an
information officer of building 1 opens the link staff made for them and sees their building. Then the phone
pages: a logistics volunteer's delivery checklist, the same checklist offline with a tap kept in the outbox, a
sampling volunteer's point and a household's home, each opened from its own invitation link.

    JUWEI_KAFKA_BOOTSTRAP=127.0.0.1:23092 .venv/bin/python docs/screenshots.py   # or the bench broker
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable

from console_overview import PASSWORD, SERVICES, TODAY, C, seed, start_console
from openpyxl import Workbook
from suite import running_suite

from tests.browser import Browser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PHONE = {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True}
DESKTOP = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}


def chinese_sheet(path: Path) -> Path:
    """A committee's sheet: Chinese headings, rooms as 1502, one heading residents does not know (户室), and
    one row whose room a floor of building 2 does not have."""
    book = Workbook()
    sheet = book.active
    sheet.append(["楼号", "户室", "姓名", "手机号", "出生年份", "备注"])
    sheet.append(["2号楼", "1502", "张秀英", "13812345678", 1951, ""])
    sheet.append(["2号楼", "1502", "李建国", "13912345678", 1949, "户主"])
    sheet.append(["2号楼", "1509", "王丽娟", "13712345678", 1985, ""])
    book.save(path)
    return path


def upload(browser: Browser, path: Path) -> None:
    root = browser.call("DOM.getDocument")["root"]["nodeId"]
    node = browser.call("DOM.querySelector", nodeId=root, selector="#upload input[type=file]")["nodeId"]
    browser.call("DOM.setFileInputFiles", nodeId=node, files=[str(path)])
    browser.submit("#upload")


def shoot(browser: Browser, name: str, log: Callable[[str], None]) -> None:
    """The page as it is now, at both widths: the phone's whole page (as tall as it is), the desktop's window."""
    for width, metrics in (("phone", PHONE), ("desktop", DESKTOP)):
        browser.viewport(metrics)
        browser.evaluate("window.scrollTo(0, 0)")
        if width == "phone":
            height = int(browser.evaluate("document.documentElement.scrollHeight") or metrics["height"])
            browser.viewport({**metrics, "height": max(metrics["height"], min(height, 4000))})
        time.sleep(0.3)  # a frame laid out at the new size
        path = browser.screenshot(DOCS / f"console-{name}-{width}.png", full_page=False)
        log(f"screenshot: {path.relative_to(ROOT)}")
    browser.viewport(PHONE)


def shoot_at(browser: Browser, name: str, selector: str, log: Callable[[str], None]) -> None:
    """One window's height at both widths, scrolled so ``selector`` ends at the window's bottom (a long page's
    last part: the phone's outbox under the checklist)."""
    for width, metrics in (("phone", PHONE), ("desktop", DESKTOP)):
        browser.viewport(metrics)
        browser.evaluate(f"document.querySelector('{selector}').scrollIntoView({{block: 'end'}})")
        time.sleep(0.3)  # a frame laid out at the new size
        path = browser.screenshot(DOCS / f"console-{name}-{width}.png", full_page=False)
        log(f"screenshot: {path.relative_to(ROOT)}")
    browser.viewport(PHONE)


OUTBOX_READY = "!!document.getElementById('outbox') && document.getElementById('outbox').dataset.ready === '1'"


def invite(browser: Browser, url: str, role: str, holder: str, point: str = "") -> str:
    """Staff's invitation for a volunteer or a household: the one-time link it shows ('' if none)."""
    browser.open(f"{url}/invitations/new", ready="!!document.querySelector('#invite')")
    browser.evaluate(f"document.querySelector('select[name=role]').value = '{role}'")
    browser.fill("input[name=holder]", holder)
    if point:
        browser.fill("input[name=point]", point)
    browser.submit("#invite")
    return str(browser.evaluate("(document.querySelector('.link-box') || {}).innerText || ''")).strip()


def accept(phone: Browser, link: str) -> None:
    """The invited person's phone opens the link once and confirms it."""
    phone.viewport(PHONE)
    phone.open(link, ready="!!document.querySelector('form')")
    phone.submit("main form")


def phone_pages(url: str, links: dict[str, str], work: Path, log: Callable[[str], None]) -> None:
    """The phone pages, each in its own browser as its invited person; the checklist also offline."""
    if links.get("logistics"):
        with Browser(work / "logistics") as phone:
            accept(phone, links["logistics"])
            phone.open(f"{url}/phone/deliveries/1", ready=OUTBOX_READY)
            shoot(phone, "logistics-checklist", log)
            phone.call("Network.enable")
            phone.call(
                "Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1
            )
            phone.wait("navigator.onLine === false", what="the phone offline")
            phone.evaluate("document.querySelector('button[data-action=\"delivery.delivered\"]').click()")
            phone.wait("!!document.querySelector('#outbox-list li[data-status=pending]')", what="the tap kept")
            shoot_at(phone, "logistics-offline", "#outbox", log)
    if links.get("sampling"):
        with Browser(work / "sampling") as phone:
            accept(phone, links["sampling"])
            phone.open(f"{url}/phone/point", ready="!!document.querySelector('main h1')")
            shoot(phone, "sampling-point", log)
    if links.get("household"):
        with Browser(work / "household") as phone:
            accept(phone, links["household"])
            phone.open(f"{url}/phone/home", ready="!!document.querySelector('main h1')")
            shoot(phone, "household-home", log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=6)
    parser.add_argument("--residents", type=int, default=600)
    options = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="juwei-screenshots-"))
    try:
        with running_suite(SERVICES, env={"JUWEI_TODAY": TODAY}, log=log) as suite:
            seed(suite, options.buildings, options.residents, log)
            suite.post("residents", f"{C}/volunteers", {"volunteer": "v1-io", "building": "1", "skills": []})
            suite.request("residents", "PUT", f"{C}/buildings/1/roles/v1-io", json={"role": "information_officer"})
            suite.post("residents", f"{C}/volunteers", {"volunteer": "v1-lg", "building": "1", "skills": []})
            suite.request("residents", "PUT", f"{C}/buildings/1/roles/v1-lg",
                          json={"role": "logistics", "shift": "A", "leader": True})  # fmt: skip
            suite.post("residents", f"{C}/volunteers", {"volunteer": "v1-sp", "building": "1", "skills": []})
            tasks = suite.get("supplies", f"{C}/buildings/1/deliveries")["deliveries"]
            home = next(h["household"] for d in tasks for f in d["floors"] for h in f["households"])
            url, console = start_console(suite, log)
            try:
                with Browser(work / "staff") as browser:
                    browser.viewport(PHONE)
                    browser.open(f"{url}/signin", ready="!!document.querySelector('#signin')")
                    shoot(browser, "signin", log)
                    browser.fill("input[name=username]", "bench")
                    browser.fill("input[name=password]", PASSWORD)
                    browser.submit("#signin")
                    for page, ready in (("overview", "#overview"), ("round", "main h1"), ("supplies", "main h1"),
                                        ("questions", "main h1"), ("exports", "#exports")):  # fmt: skip
                        browser.open(f"{url}/{page}", ready=f"!!document.querySelector('{ready}')")
                        shoot(browser, page, log)
                    browser.open(f"{url}/register", ready="!!document.querySelector('#upload')")
                    upload(browser, chinese_sheet(work / "住户登记.xlsx"))
                    browser.wait("!!document.querySelector('#mapping')", what="the mapping step")
                    shoot(browser, "register-mapping", log)
                    browser.submit("#mapping")
                    browser.wait("!!document.querySelector('#bad-rows')", what="the bad rows")
                    shoot(browser, "register-refused", log)
                    link = invite(browser, url, "information-officer", "v1-io")
                    shoot(browser, "invited", log)
                    links = {
                        "logistics": invite(browser, url, "logistics-volunteer", "v1-lg"),
                        "sampling": invite(browser, url, "sampling-volunteer", "v1-sp", point="p1"),
                        "household": invite(browser, url, "household", home),
                    }
                    log(f"phone links: {sorted(r for r, made in links.items() if made)} of {sorted(links)}")
                    browser.open(f"{url}/language/en?next=/overview", ready="!!document.querySelector('#overview')")
                    shoot(browser, "overview-en", log)
                if link:
                    with Browser(work / "officer") as phone:
                        phone.viewport(PHONE)
                        phone.open(link, ready="!!document.querySelector('form')")
                        phone.submit("main form")
                        shoot(phone, "officer-building", log)
                # An antigen day after the staff pages (the overview shows the PCR round): the household's form.
                antigen = {"round": "A1", "kind": "antigen", "starts_at": f"{TODAY}T18:00", "points": ["p1"]}
                made = suite.client.post(f"{suite.services['testing'].url}{C}/rounds", json=antigen,
                                         headers={"X-API-Key": suite.key()})  # fmt: skip
                log(f"antigen day A1: {made.status_code}")
                phone_pages(url, links, work, log)
            finally:
                console.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
