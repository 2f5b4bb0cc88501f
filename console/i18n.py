"""Translations: the .po files read and compiled in memory at start (no build step), the person's locale.

zh_CN is the default; en is the other. The first visit follows Accept-Language; the language switch then
keeps the choice in a cookie. msgids are English; both catalogues translate every one of them.
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LOCALES = ("zh_CN", "en")
DEFAULT = "zh_CN"
COOKIE = "console_lang"
DOMAIN = "console"


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(locale: str) -> gettext.GNUTranslations:
    """One locale's catalogue, compiled from its .po in memory."""
    with po_path(locale).open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _from_header(header: str) -> str | None:
    """The first of our locales the Accept-Language header asks for (by q), if any."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            wanted.append((-quality, index, tag.strip().lower()))
    for negative, _index, tag in sorted(wanted):
        if negative >= 0:
            continue
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return None


def negotiate(request: Request) -> str:
    """The cookie's choice, else the browser's first language we have, else Chinese."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LOCALES:
        return chosen
    return _from_header(request.headers.get("accept-language", "")) or DEFAULT


def html_lang(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else "en"


def N_(message: str) -> str:
    """Marks a msgid for the catalogues where it is translated later, at render time."""
    return message
