"""The route of the committee's spreadsheets: the upload read (raw body or a form's file part, within the size
limit), the sheet parsed, the import done by ``application.imports`` (all rows or none)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.access import Staff
from juwei.auth import CompoundId
from juwei.callers import Caller
from juwei.dependencies import RuntimeOf, Today
from juwei.problems import Problem
from juwei.service import Runtime
from services.residents import importing
from services.residents.api.register import PROBLEM_RESPONSES
from services.residents.application import imports
from services.residents.models import ImportOut

router = APIRouter(tags=["register"])

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The spreadsheet: CSV (UTF-8 or GB18030) or XLSX (first sheet), the first row naming the columns. "
            f"Residents: {', '.join(importing.IMPORT_COLUMNS)}. Buildings: {', '.join(importing.BUILDING_COLUMNS)}. "
            f"At most {importing.MAX_BYTES // (1024 * 1024)} MB and {importing.MAX_ROWS} rows."
        ),
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "building,number,floors,rooms_per_floor,lifts,lift_capacity\nb1,1,18,4,2,8\n",
            },
            importing.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """The uploaded file (raw body or the file part of a form), refused past the size limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > importing.MAX_BYTES + 64 * 1024:  # room for a form's boundaries
            raise Problem(413, f"the file is larger than {importing.MAX_BYTES} bytes", "body-too-large")
    media_type = request.headers.get("content-type", "")
    if media_type.startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _once(bytes(body)), max_files=1, max_fields=10).parse()
        except MultiPartException as exc:
            raise Problem(400, f"the form cannot be read: {exc.message}", "bad-form") from None
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise Problem(422, "send the spreadsheet as the form's file part (`file`)", "no-file")
        content = await files[0].read()
        return content, files[0].filename, files[0].content_type
    if not body:
        raise Problem(422, "send the spreadsheet as the body (text/csv or XLSX) or as a form's file part", "no-file")
    return bytes(body), None, media_type


def _read_and_import(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    kind: Literal["buildings", "residents"],
    upload: tuple[bytes, str | None, str | None],
    today: Any,
) -> ImportOut:
    try:
        sheet = importing.read_sheet(*upload)
    except importing.UnreadableFile as exc:
        raise Problem(exc.status, str(exc), exc.code) from None
    return imports.import_sheet(runtime, caller, compound, kind, sheet, today)


@router.post(
    "/compounds/{compound}/import",
    response_model=ImportOut,
    summary="Import buildings, or households and residents, from a CSV or XLSX sheet (all rows or none)",
    openapi_extra=IMPORT_BODY,
    responses={
        **PROBLEM_RESPONSES,
        413: {"description": "The file is larger than 10 MB"},
        415: {"description": "An old .xls file"},
        422: {"description": "Bad rows (each listed with line, column and reason: nothing imported), or too many"},
    },
)
async def import_sheet(
    compound: CompoundId,
    request: Request,
    caller: Staff,
    runtime: RuntimeOf,
    today: Today,
    kind: Annotated[
        Literal["buildings", "residents"], Query(description="What the sheet holds: import buildings first")
    ],
) -> ImportOut:
    upload = await _upload(request)
    return await run_in_threadpool(_read_and_import, runtime, caller, compound, kind, upload, today)
