"""Chinese first, English available: every msgid of the console's Python and templates is translated in both
catalogues, and each catalogue is read the way the console reads it (compiled in memory)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from console import i18n
from console.app import FALLBACK
from console.navigation import MENU
from console.pages.overview import ZONES

CONSOLE = Path(i18n.__file__).resolve().parent
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}}


def msgids() -> dict[str, str]:
    """Every msgid the console's source names, with where (file:line) it is first named."""
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        CONSOLE, METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None, "N_": None}
    ):
        text = message if isinstance(message, str) else message[0]
        found.setdefault(text, f"{filename}:{line}")
    # Named through a table rather than a literal call: the menu, the zones, the fallbacks by status.
    for entries in MENU.values():
        for _path, label in entries:
            found.setdefault(label, "navigation.MENU")
    for label in (*ZONES.values(), *FALLBACK.values()):
        found.setdefault(label, "a table of msgids")
    return found


def catalogue(locale: str) -> dict[str, str]:
    with i18n.po_path(locale).open("rb") as source:
        return {m.id: m.string for m in read_po(source, locale=locale) if m.id and isinstance(m.id, str)}


def test_the_source_names_enough_msgids_for_the_check_to_mean_something() -> None:
    found = msgids()
    assert len(found) > 50
    assert "Sign in" in found and "Overview" in found and "Deliveries pending" in found


def test_every_msgid_is_translated_in_chinese_and_in_english() -> None:
    found = msgids()
    for locale in i18n.LOCALES:
        translated = catalogue(locale)
        untranslated = sorted(f"{where}: {msgid!r}" for msgid, where in found.items() if not translated.get(msgid))
        assert not untranslated, f"{locale} lacks:\n" + "\n".join(untranslated)


def test_chinese_really_is_chinese_and_placeholders_survive() -> None:
    chinese = catalogue("zh_CN")
    for msgid, text in chinese.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{msgid!r} is not translated into Chinese: {text!r}"
        for placeholder in ("%(number)s", "%(date)s", "%(round)s", "%(name)s", "%(count)s"):
            assert (placeholder in msgid) == (placeholder in text), (msgid, text)


def test_the_catalogues_compile_in_memory_and_choose_by_accept_language() -> None:
    assert i18n.load("zh_CN").gettext("Sign in") == "登录"
    assert i18n.load("en").gettext("Sign in") == "Sign in"
    assert i18n._from_header("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert i18n._from_header("fr-FR,zh-TW;q=0.5,en;q=0.4") == "zh_CN"
    assert i18n._from_header("fr-FR") is None
    assert i18n._from_header("en;q=0,zh-CN;q=0.1") == "zh_CN"
