"""Templates: one Jinja2 environment per locale, with its catalogue installed (the i18n extension)."""

from __future__ import annotations

import gettext
import uuid
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from console import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"


class Pages:
    """Renders a template in the person's language."""

    def __init__(self) -> None:
        self.translations: dict[str, gettext.GNUTranslations] = {loc: i18n.load(loc) for loc in i18n.LOCALES}
        self.environments: dict[str, Environment] = {}
        for locale, catalogue in self.translations.items():
            environment = Environment(
                loader=FileSystemLoader(TEMPLATES),
                autoescape=select_autoescape(["html"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            environment.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
            self.environments[locale] = environment

    def gettext(self, locale: str, message: str) -> str:
        return self.translations.get(locale, self.translations[i18n.DEFAULT]).gettext(message)

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        from console.navigation import MENU

        locale = getattr(request.state, "locale", i18n.DEFAULT)
        person = getattr(request.state, "person", None)
        values = {
            "request": request,
            "locale": locale,
            "html_lang": i18n.html_lang(locale),
            "person": person,
            "csrf": person.csrf if person is not None else getattr(request.state, "pre_csrf", ""),
            "menu": MENU.get(person.role, []) if person is not None else [],
            "path": request.url.path,
            # A form's own command id (Idempotency-Key): a double tap or a retry of this form happens once,
            # the same form opened again is a new command.
            "new_command": lambda: uuid.uuid4().hex,
            **(context or {}),
        }
        html = self.environments[locale].get_template(template).render(values)
        response = HTMLResponse(html, status_code=status, headers=headers)
        # Pages show a person's data: never cached, never framed by another site.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        )
        return response
