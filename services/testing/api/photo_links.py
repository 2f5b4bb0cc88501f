"""Disinfection photos behind signed, expiring links: what a resident taps in the building group, with no key.

notify signs the links it posts (``juwei.signed_links`` over the photo's path and the expiry, under
``JUWEI_LINK_SECRET``); the building board signs fresh ones each time it is shown. Here a link is checked
before anything is read: unsigned or altered → 403, expired → 410, and a genuine link to a photo that
retention has since removed → 410. A browser (``Accept: text/html``) gets a small page in Chinese, any other
client an RFC 9457 problem.
"""

from __future__ import annotations

import html
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from contracts.testing import LINK_SECRET, disinfection_photo_path
from juwei.aggregate import NotFound
from juwei.auth import CompoundId, LocalId
from juwei.dependencies import RuntimeOf
from juwei.problems import Problem
from juwei.signed_links import LinkState, check
from services.testing.application import cases
from services.testing.photos import PhotoAlbum

router = APIRouter(tags=["cases and disinfection"])

# Each refusal: (status, code, English detail, Chinese page text). Also the problems' Chinese wording.
REFUSALS = {
    LinkState.UNSIGNED: (403, "photo-link-unsigned", "the link is not signed", "这个链接缺少签名，无法打开照片。"),
    LinkState.FORGED: (
        403,
        "photo-link-forged",
        "the link's signature does not match (altered or forged)",
        "这个链接已被改动或不是居委会发出的，无法打开照片。",
    ),
    LinkState.EXPIRED: (410, "photo-link-expired", "the link has expired", "这个链接已过期。"),
    "removed": (
        410,
        "photo-removed",
        "the photo has been removed (the lockdown is over: retention)",
        "封控结束后，照片已按规定删除。",
    ),
}
WORDING = {code: text for _status, code, _detail, text in REFUSALS.values()}
_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem 1rem;color:#222;line-height:1.6}}
h1{{font-size:1.3rem}}p{{font-size:1.05rem}}</style></head>
<body><main><h1>{title}</h1><p class="why">{why}</p>
<p>请打开楼栋群里最新的消杀通知，或在楼栋公告栏查看消杀照片。</p></main></body></html>
"""


def _refuse(request: Request, reason: LinkState | str) -> Response:
    """A page in Chinese for a person; a problem for a client that asks for JSON."""
    status, code, detail, text = REFUSALS[reason]
    # A browser (a tap in the group's chat) asks for text/html; any other client gets the problem.
    if "text/html" not in request.headers.get("accept", ""):
        raise Problem(status, detail, code)
    title = "照片无法打开" if status == 403 else "照片已不可查看"
    page = _PAGE.format(title=title, why=html.escape(text))
    return HTMLResponse(
        page, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _documented(what: str, *codes: str) -> dict[str, object]:
    """A refusal: a problem (``juwei.openapi`` documents it); a browser asking for text/html gets a page instead."""
    return {"description": f"{what}; to Accept: text/html a page in Chinese", "x-juwei-problem-types": list(codes)}


@router.get(
    "/photos/{compound}/{disinfection}/{photo}",
    summary="A disinfection photo behind a signed, expiring link (no key: for residents in the building group)",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The photo as it was uploaded",
            "content": {
                m: {"schema": {"type": "string", "format": "binary"}} for m in ("image/jpeg", "image/png", "image/webp")
            },
        },
        403: _documented(
            "Unsigned, altered or forged link (a page in Chinese; a problem when JSON is asked for)",
            "photo-link-unsigned",
            "photo-link-forged",
        ),
        410: _documented(
            "The link has expired, or retention has removed the photo", "photo-link-expired", "photo-removed"
        ),
    },
)
def signed_disinfection_photo(
    request: Request,
    compound: CompoundId,
    disinfection: LocalId,
    photo: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    runtime: RuntimeOf,
    expires: Annotated[str | None, Query(max_length=20, description="Unix seconds the link works until")] = None,
    signature: Annotated[str | None, Query(max_length=100, description="HMAC-SHA256 of the path and expiry")] = None,
) -> Response:
    path = disinfection_photo_path(compound, disinfection, photo)
    state = check(runtime.settings.shared_key(LINK_SECRET), path, expires, signature, time.time())
    if state is not LinkState.GOOD:
        return _refuse(request, state)
    try:
        cases.disinfection_photo(runtime, compound, disinfection, photo)
    except NotFound:
        # Only a link this deployment signed gets here: the record was there when it was signed.
        return _refuse(request, "removed")
    try:
        found, content_type = PhotoAlbum(runtime.settings.data_dir).find(compound, photo)
    except Problem:
        return _refuse(request, "removed")
    # The link is the permission: caches may keep the photo no longer than the link works.
    max_age = max(0, min(86400, int(expires or 0) - int(time.time())))
    headers = {"Cache-Control": f"private, max-age={max_age}", "Referrer-Policy": "no-referrer"}
    return FileResponse(found, media_type=content_type, headers=headers)
