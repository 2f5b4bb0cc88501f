"""The route of a lab's result file: the upload read (raw body or a form's file part, within the size limit), the
sheet parsed, then imported by ``application.labfiles`` (all rows or none). File-level refusals are said in the
caller's language (Accept-Language), each bad row in Chinese and English."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.access import Staff
from juwei.auth import CompoundId
from juwei.dependencies import Unit
from juwei.problems import Problem
from juwei.wording import Said, negotiate
from services.testing.application import labfiles
from services.testing.domain.labfile import MAX_LAB_BYTES, MAX_LAB_ROWS
from services.testing.labsheets import XLSX_MEDIA_TYPE, LabSheet, UnreadableLabFile, read_lab_sheet, say
from services.testing.models import LabFileOut

router = APIRouter(tags=["samples and results"])


LAB_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "The lab's result file: CSV (UTF-8 or GB18030) or XLSX (first sheet), the first row naming the columns "
            "tube, result, time and optionally plate, well — in English or Chinese (试管号/管号, 结果/检测结果, "
            "时间/检测时间, 板号, 孔位). Results as labs spell them (阴性/阳性/无效, negative/positive/invalid, N/P, "
            "-/+); a time without an offset is the compound's wall-clock time. "
            f"At most {MAX_LAB_BYTES // (1024 * 1024)} MB and {MAX_LAB_ROWS} rows; an old .xls is refused."
        ),
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "试管号,检测结果,检测时间,板号,孔位\nT0412-0001,阴性,2022-04-12 18:30,L1,A1\n",
            },
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _refused(code: str, status: int, language: str, **params: Any) -> Problem:
    return Problem(status, say(code, "en", params), code, said=Said(code, params, labfiles.LAB_FILE_ZH), **params)


async def _upload(request: Request, language: str) -> tuple[bytes, str | None, str | None]:
    """The file (the body itself, or a form's file part), its name and media type; refused past the limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LAB_BYTES + 64 * 1024:  # room for a form's boundaries
            raise _refused("file-too-large", 413, language, limit_mb=MAX_LAB_BYTES // (1024 * 1024))
    media_type = request.headers.get("content-type", "")
    if media_type.startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _once(bytes(body)), max_files=1, max_fields=10).parse()
        except MultiPartException as exc:
            raise Problem(400, f"the form cannot be read: {exc.message}", "bad-form") from None
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise _refused("no-file", 422, language)
        return await files[0].read(), files[0].filename, files[0].content_type
    if not body:
        raise _refused("no-file", 422, language)
    return bytes(body), None, media_type


def _read(content: bytes, filename: str | None, media_type: str | None, language: str) -> LabSheet:
    try:
        return read_lab_sheet(content, filename, media_type)
    except UnreadableLabFile as exc:
        raise _refused(exc.code, exc.status, language, **exc.params) from None


@router.post(
    "/compounds/{compound}/lab-files",
    response_model=LabFileOut,
    summary="A lab's result file (CSV or XLSX): every tube's result as a plate's would be, all rows or none",
    openapi_extra=LAB_FILE_BODY,
    responses={
        413: {"description": f"The file is larger than {MAX_LAB_BYTES // (1024 * 1024)} MB"},
        415: {"description": "An old .xls file, or a file that is no sheet"},
        422: {
            "description": "Bad rows (`lab-file-refused`: `errors` lists each one's `row`, `column`, `heading`, "
            "`type`, `message` in Chinese and `message_en`; nothing recorded), columns missing "
            "(`headings-missing`), an empty file or one of too many rows"
        },
    },
)
async def import_lab_file(compound: CompoundId, request: Request, caller: Staff, unit: Unit) -> dict[str, Any]:
    """Negative clears the pool, positive asks each of them for a re-test, invalid re-calls them, a positive
    individual test confirms a case — as a plate's results would. All rows or none: every bad row is listed
    (unknown tubes, a tube twice, a time in the future, a result other than one already recorded…). The same
    file again records nothing new (``already_imported``); tubes that already had the file's result are
    ``repeated``."""
    language = negotiate(request.headers.get("accept-language"))
    content, filename, media_type = await _upload(request, language)
    sheet = await run_in_threadpool(_read, content, filename, media_type, language)
    digest = hashlib.sha256(content).hexdigest()
    return await run_in_threadpool(labfiles.import_lab_file, unit, caller, sheet, digest, filename)
