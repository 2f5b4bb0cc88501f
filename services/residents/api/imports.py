"""The routes of the committee's spreadsheets: the upload read (raw body or a form's file part and its `mapping`,
within the size limit), the sheet parsed, then previewed or imported by ``application.imports`` (all rows or
none); the template to fill in. Problems are worded in the request's language (Accept-Language)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.access import Staff
from juwei.auth import CompoundId
from juwei.dependencies import RuntimeOf, Today
from juwei.openapi import answered_as
from juwei.problems import Problem
from services.residents import importing, spreadsheets
from services.residents.api.register import PROBLEM_RESPONSES
from services.residents.application import imports
from services.residents.domain.wording import Language, language_of, say
from services.residents.models import ImportOut, PreviewOut

router = APIRouter(tags=["register"])

IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The spreadsheet: CSV (UTF-8 or GB18030) or XLSX (first sheet), the first row naming the columns, in "
            "English or as committees write them (楼号, 房号 1502, 姓名, 手机号, 身份证号 ...). Residents: "
            f"{', '.join(importing.IMPORT_COLUMNS)}. Buildings: {', '.join(importing.BUILDING_COLUMNS)}. "
            f"At most {importing.MAX_BYTES // (1024 * 1024)} MB and {importing.MAX_ROWS} rows."
        ),
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "building,number,floors,rooms_per_floor,lifts,lift_capacity\nb1,1,18,4,2,8\n",
            },
            importing.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "mapping": {"type": "string", "description": "JSON: sheet heading → field name or null"},
                    },
                }
            },
        },
    }
}


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


@dataclass(frozen=True)
class Upload:
    """The uploaded file (content, file name, media type) and the form's text fields."""

    content: bytes
    filename: str | None
    media_type: str | None
    fields: dict[str, str]


async def _upload(request: Request, language: Language) -> Upload:
    """The uploaded file (raw body or the file part of a form), refused past the size limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > importing.MAX_BYTES + 64 * 1024:  # room for a form's boundaries
            limit = importing.MAX_BYTES
            raise Problem(413, say("file-too-large", language, {"limit": limit}), "body-too-large")
    media_type = request.headers.get("content-type", "")
    if media_type.startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _once(bytes(body)), max_files=1, max_fields=10).parse()
        except MultiPartException as exc:
            raise Problem(400, f"the form cannot be read: {exc.message}", "bad-form") from None
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        if not files:
            raise Problem(422, "send the spreadsheet as the form's file part (`file`)", "no-file")
        content = await files[0].read()
        return Upload(content, files[0].filename, files[0].content_type, fields)
    if not body:
        raise Problem(422, "send the spreadsheet as the body (text/csv or XLSX) or as a form's file part", "no-file")
    return Upload(bytes(body), None, media_type, {})


def _mapping(upload: Upload, query: str | None, language: Language) -> dict[str, str | None] | None:
    """The form's (or the query's) ``mapping``: a JSON object of sheet heading → field name or null."""
    text = upload.fields.get("mapping") or query
    if not text:
        return None
    try:
        mapping = json.loads(text)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise Problem(422, say("bad-mapping", language), "bad-mapping")
    return {str(k): v for k, v in mapping.items()}


def _read(upload: Upload, language: Language) -> spreadsheets.Sheet:
    try:
        return spreadsheets.read_sheet(upload.content, upload.filename, upload.media_type)
    except spreadsheets.UnreadableFile as exc:
        raise Problem(exc.status, exc.say_in(language), exc.problem, reason_code=exc.code) from None


MAPPING_DESCRIPTION = (
    "JSON object: sheet heading → field name (or null to skip the column), for headings the import does not "
    "recognise; a form field `mapping` of the upload, or this query parameter when the body is the file itself"
)
Lang = Annotated[
    str | None, Header(alias="Accept-Language", description="zh or zh-CN: problems in Chinese; else English")
]
KindQuery = Annotated[Literal["buildings", "residents"], Query(description="What the sheet holds")]


@router.post(
    "/compounds/{compound}/import",
    response_model=ImportOut,
    summary="Import buildings, or households and residents, from a CSV or XLSX sheet (all rows or none)",
    openapi_extra=IMPORT_BODY,
    responses={
        **PROBLEM_RESPONSES,
        413: {"description": "The file is larger than 10 MB"},
        415: {"description": "An old .xls file, or a file that is no spreadsheet"},
        422: {
            "description": "Bad rows (`errors`: line, column, heading, code, reason; nothing imported), required "
            "columns missing (`missing`, `unknown`: map them), a bad `mapping`, or too many rows"
        },
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
    accept_language: Lang = None,
    mapping: Annotated[str | None, Query(description=MAPPING_DESCRIPTION)] = None,
) -> ImportOut:
    language = language_of(accept_language)
    upload = await _upload(request, language)
    chosen = _mapping(upload, mapping, language)
    sheet = await run_in_threadpool(_read, upload, language)
    return await run_in_threadpool(
        imports.import_sheet, runtime, caller, compound, kind, sheet, today, chosen, language
    )


@router.post(
    "/compounds/{compound}/imports/preview",
    response_model=PreviewOut,
    summary="How a sheet's headings would be read, and its first rows (nothing is written)",
    openapi_extra=IMPORT_BODY,
    responses={
        **PROBLEM_RESPONSES,
        413: {"description": "The file is larger than 10 MB"},
        415: {"description": "An old .xls file, or a file that is no spreadsheet"},
    },
)
async def preview_sheet(
    compound: CompoundId,
    request: Request,
    caller: Staff,
    kind: KindQuery = "residents",
    accept_language: Lang = None,
    mapping: Annotated[str | None, Query(description=MAPPING_DESCRIPTION)] = None,
) -> PreviewOut:
    language = language_of(accept_language)
    upload = await _upload(request, language)
    chosen = _mapping(upload, mapping, language)
    sheet = await run_in_threadpool(_read, upload, language)
    return imports.preview(sheet, kind, chosen, language)


@router.get(
    "/compounds/{compound}/imports/template",
    summary="The sheet to fill in (.xlsx): Chinese headings, an example row, and a sheet explaining each column",
    response_class=Response,
    responses={**PROBLEM_RESPONSES, **answered_as("The template", importing.XLSX_MEDIA_TYPE, binary=True)},
)
def import_template(compound: CompoundId, caller: Staff, kind: KindQuery = "residents") -> Response:
    filename = "居民导入模板.xlsx" if kind == "residents" else "楼栋导入模板.xlsx"
    fallback = f"juwei-{kind}-template.xlsx"
    return Response(
        imports.template(kind),
        media_type=importing.XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )
