"""FHIR R4 search over test results: ``Observation`` and ``DiagnosticReport`` searchset Bundles per compound."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from contracts import roles as r
from juwei.audit import reading_of
from juwei.auth import CompoundId, admit
from juwei.callers import Caller
from juwei.dependencies import RuntimeOf
from services.testing.application import fhir
from services.testing.domain.fhir import FHIR_JSON, MAX_COUNT

router = APIRouter(tags=["FHIR R4"])
# Results are health data: staff, and other systems whose grant includes health data (checked in the use case).
HealthReaders = Annotated[Caller, Depends(admit(*r.STAFF, r.EXTERNAL_CONSUMER))]
Text = Annotated[str | None, Query(max_length=200)]


class FhirJSON(JSONResponse):
    media_type = FHIR_JSON


# What a search answers, as far as JSON Schema says it: the searchset Bundle's frame. The resources themselves
# follow FHIR R4's own definitions (validated by an independent FHIR library in tests/testing/test_fhir_api.py).
_BUNDLE = {
    "type": "object",
    "required": ["resourceType", "type", "total", "link"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "id": {"type": "string"},
        "meta": {"type": "object"},
        "type": {"const": "searchset"},
        "timestamp": {"type": "string"},
        "total": {"type": "integer", "minimum": 0},
        "link": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["relation", "url"],
                "properties": {"relation": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {"type": "object", "required": ["resourceType"]},
                    "search": {"type": "object", "properties": {"mode": {"enum": ["match", "include"]}}},
                },
            },
        },
    },
}
BUNDLE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "A FHIR R4 searchset Bundle", "content": {FHIR_JSON: {"schema": _BUNDLE}}}
}


def _answer(request: Request, compound: str, resource: str, caller: Caller, runtime: Any) -> FhirJSON:
    pairs = list(request.query_params.multi_items())
    base = f"{str(request.base_url).rstrip('/')}/compounds/{compound}/fhir"
    kept = [(name, value) for name, value in pairs if name != "_cursor"]

    def next_url(cursor: str) -> str:
        return f"{base}/{resource}?{urlencode([*kept, ('_cursor', cursor)])}"

    bundle = fhir.read(
        runtime,
        caller,
        compound,
        resource,
        pairs,
        base,
        str(request.url),
        next_url,
        reading_of(request, f"FHIR {resource} search"),
    )
    return FhirJSON(bundle)


_DOC = f"""Parameters (FHIR search, strict: an unknown one is refused): `round` (a round's id), `date` (when the sample
was taken or the self-test done; FHIR date with `eq`/`ne`/`gt`/`lt`/`ge`/`le`, repeat for a range), `_lastUpdated`
(when the result came), `code` (`http://loinc.org|94500-6` PCR, `…|94558-4` antigen), `subject`/`patient`
(`Patient/<pseudonym>`), `_count` (1 to {MAX_COUNT}, default 100), `_include`; the next page is `Bundle.link`
`next`. Every person shown is recorded in the sensitive-read audit."""


def search_parameters(
    round: Text = None,
    date: Text = None,
    code: Text = None,
    subject: Text = None,
    patient: Text = None,
    count: Annotated[str | None, Query(alias="_count", max_length=10)] = None,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=300)] = None,
    include: Annotated[str | None, Query(alias="_include", max_length=100)] = None,
    last_updated: Annotated[str | None, Query(alias="_lastUpdated", max_length=100)] = None,
    format: Annotated[str | None, Query(alias="_format", max_length=100)] = None,
) -> None:
    """FHIR's search parameters, declared once for both searches' documents; the use case reads them from the
    query string itself, strictly (an unknown or repeated one is refused, which FastAPI's parsing would not do)."""


SearchParameters = Annotated[None, Depends(search_parameters)]


@router.get(
    "/compounds/{compound}/fhir/Observation",
    response_class=FhirJSON,
    responses=BUNDLE_ANSWER,
    summary="PCR and antigen results as FHIR R4 Observations (searchset Bundle)",
    description=_DOC,
)
def observations(
    compound: CompoundId,
    request: Request,
    caller: HealthReaders,
    runtime: RuntimeOf,
    _: SearchParameters,
) -> FhirJSON:
    return _answer(request, compound, "Observation", caller, runtime)


@router.get(
    "/compounds/{compound}/fhir/DiagnosticReport",
    response_class=FhirJSON,
    responses=BUNDLE_ANSWER,
    summary="One FHIR R4 DiagnosticReport per tube (PCR) or self-report (antigen), as a searchset Bundle",
    description=_DOC + " `_include=DiagnosticReport:result` brings the reports' Observations.",
)
def diagnostic_reports(
    compound: CompoundId,
    request: Request,
    caller: HealthReaders,
    runtime: RuntimeOf,
    _: SearchParameters,
) -> FhirJSON:
    return _answer(request, compound, "DiagnosticReport", caller, runtime)
