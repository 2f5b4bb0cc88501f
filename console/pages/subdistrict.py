"""The subdistrict's overview (街道): its compounds side by side, as JSON for the subdistrict office's key.

The key comes in X-API-Key and goes on to the services unchanged: the console holds nothing of it, and the
services decide what it reaches (a compound outside the subdistrict is refused there, in Chinese).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from console.dependencies import Console
from console.services_client import ServiceClient, ServiceProblem
from console.subdistrict import gather_subdistrict

router = APIRouter()
SubdistrictId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


@router.get("/api/subdistricts/{subdistrict}/overview")
async def subdistrict_overview(
    request: Request,
    console: Console,
    subdistrict: SubdistrictId,
    x_api_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    if not x_api_key:
        body = {"status": 401, "title": "未认证", "detail": "请在 X-API-Key 请求头中发送街道的 API 密钥"}
        return JSONResponse(body, status_code=401, media_type="application/problem+json")
    client = ServiceClient(console.open_http(), console.urls, x_api_key, getattr(request.state, "locale", "zh_CN"))
    try:
        overview = await gather_subdistrict(client, subdistrict)
    except ServiceProblem as problem:  # the register refused the key, or did not answer
        status = problem.status or 503
        body = problem.body or {"status": status, "title": "服务不可用", "detail": f"{problem.service} 未应答"}
        return JSONResponse(body, status_code=status, media_type="application/problem+json")
    return JSONResponse(overview)
