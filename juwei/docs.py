"""The interactive API docs (``/docs``) from files inside the package: they work on a network without internet.

FastAPI's own page loads Swagger UI from a public CDN, which district government networks can't reach, so the
page stays blank there. Swagger UI 5 (the one that reads OpenAPI 3.1) is vendored under ``static/swagger-ui``
(the npm registry's swagger-ui-dist, unmodified; its VERSION file says which).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "static" / "swagger-ui"
PREFIX = "/static/swagger-ui"


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets from the package; the app must be made with ``docs_url=None``."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            # No validator badge: it is an image from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
