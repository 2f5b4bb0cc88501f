"""Keys over HTTP: who a key is (``GET /whoami``), and a compound's keys issued and revoked by its staff.

A console acts as the signed-in person with that person's key. Staff invite a volunteer or a household by
issuing a key (``POST /compounds/{compound}/keys``); the console may name the key itself (``"key": "jw_…"``)
so that the same key is stored in every service. Who may issue which roles is the suite's
(``juwei.registration.KeyHolders.issues``); without a suite only the district operator issues keys. A key is
revoked by its compound's staff, or by its own holder (signing out).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from juwei.auth import (
    CompoundId,
    admit,
    aware,
    is_active,
    issue_key,
    key_row,
    opens,
    require,
    revoke_key,
    split_key,
)
from juwei.callers import OPERATOR_ROLE, Caller, Forbidden, Holder
from juwei.events import utcnow
from juwei.problems import Problem
from juwei.registration import suite

MAX_LIFE = 30 * 24 * 3600  # an invitation's key lives at most 30 days
KeyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,32}$", description="The id part of jw_<id>_<secret>")]


class HolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["volunteer", "household", "staff"]
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", description="Local id in the compound, e.g. v12")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(
        None,
        pattern=r"^jw_[A-Za-z0-9-]{1,32}_[A-Za-z0-9_-]{16,100}$",
        description="Store this exact key (the same key in every service); none: a new one is drawn",
    )
    role: str = Field(min_length=1, max_length=64)
    holder: HolderIn
    buildings: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")]] | None = Field(
        None, max_length=200
    )
    label: str | None = Field(None, max_length=200)
    expires_in: int | None = Field(None, ge=1, le=MAX_LIFE, description="Seconds the key lives (1 s to 30 days)")


class HolderOut(BaseModel):
    kind: str = Field(examples=["volunteer"])
    id: str = Field(description="The holder's id as stored: district-wide, e.g. c1:v12", examples=["c1:v12"])


class KeyOut(BaseModel):
    """A key: its id, role, scope, holder and expiry (never its secret's hash)."""

    model_config = ConfigDict(extra="forbid")
    key_id: str
    role: str
    compound: str | None = Field(description="None: a district-wide key")
    buildings: list[str] | None = Field(description="None: every building of its compound")
    holder: HolderOut | None
    expires_at: str | None = Field(description="ISO 8601, or None: no expiry")


class WhoAmI(KeyOut):
    """The calling key, as ``GET /whoami`` shows it."""

    subdistrict: str | None = Field(description="A subdistrict's key: the subdistrict it is scoped to")
    compounds: list[str] | None = Field(
        description="A subdistrict's key: the compounds it reaches now (those registered in its subdistrict)"
    )


class IssuedKey(KeyOut):
    """A key just issued: its secret is shown this once."""

    key: str = Field(description="jw_<id>_<secret>: store it now, it is not shown again")


def _holder_body(kind: str | None, id: str | None) -> dict[str, str] | None:
    return {"kind": kind, "id": id} if kind and id else None


def _moment(value: datetime | None) -> str | None:
    found = aware(value)
    return found.isoformat() if found is not None else None


def issued_roles(caller: Caller) -> frozenset[str] | None:
    """The roles of the keys ``caller`` may issue; None: any (the operator of a deployment without a suite)."""
    holders = suite().key_holders
    if holders is None:
        return None if caller.role == OPERATOR_ROLE else frozenset()
    return frozenset(holders.issues.get(caller.role, ()))


def _issuers() -> tuple[str, ...]:
    holders = suite().key_holders
    return tuple(sorted({OPERATOR_ROLE, *(holders.issues if holders is not None else ())}))


def _within(caller: Caller, buildings: list[str] | None) -> None:
    """A key limited to some buildings issues and revokes keys of those buildings only."""
    if caller.buildings is None:
        return
    if buildings is None or not set(buildings) <= caller.buildings:
        mine = ", ".join(sorted(caller.buildings))
        raise Forbidden(
            f"this key acts on buildings {mine} only: name buildings among them", code="buildings-out-of-scope"
        )


def _may_issue(caller: Caller, role: str) -> None:
    roles = issued_roles(caller)
    if roles is not None and role not in roles:
        allowed = ", ".join(sorted(roles)) or "none"
        raise Forbidden(f"a {caller.role} key may not issue {role} keys (it issues: {allowed})", code="role-not-issued")


def _given_key(session: Any, given: str, role: str, compound: str, holder: Holder) -> None:
    """A key the console names may be stored again (a retry), never take over another key's id."""
    parts = split_key(given)
    assert parts is not None
    row = key_row(session, parts[0])
    if row is None:
        return
    if not opens(row, given):
        raise Problem(409, f"a key with id {parts[0]} already exists with another secret", "key-id-taken")
    if not is_active(row):
        raise Problem(409, f"key {parts[0]} was revoked or has expired; it is not brought back", "key-ended")
    if (row["role"], row["compound"], row["holder_kind"], row["holder"]) != (role, compound, holder.kind, holder.id):
        raise Problem(409, f"key {parts[0]} already exists for another role or holder", "key-id-taken")


def key_router() -> APIRouter:
    """The kernel's key routes; built per app, since who issues keys is the registered suite's."""
    router = APIRouter(tags=["keys"])
    issuers = _issuers()
    # Dependencies as defaults: annotations are strings here, and these are built per app.
    issuer = Depends(admit(*issuers))
    of_compound = Depends(admit())

    @router.get("/whoami", response_model=WhoAmI, summary="The calling key: its role, scope, holder and expiry")
    def whoami(request: Request, caller: Annotated[Caller, Depends(require())]) -> dict[str, Any]:
        runtime = request.app.state.runtime
        with runtime.database.reading() as session:
            row = key_row(session, caller.key_id)
        return {
            "key_id": caller.key_id,
            "role": caller.role,
            "compound": caller.compound,
            "buildings": sorted(caller.buildings) if caller.buildings is not None else None,
            "holder": _holder_body(caller.holder.kind, caller.holder.id) if caller.holder else None,
            "expires_at": _moment(row["expires_at"]) if row else None,
            "subdistrict": caller.subdistrict,
            "compounds": sorted(caller.compounds) if caller.compounds is not None else None,
        }

    @router.post(
        "/compounds/{compound}/keys",
        status_code=201,
        response_model=IssuedKey,
        summary="Issue a key for a volunteer, a household or a staff member of the compound (shown once)",
    )
    def create_key(compound: CompoundId, body: KeyIn, request: Request, caller: Caller = issuer) -> dict[str, Any]:
        runtime = request.app.state.runtime
        _may_issue(caller, body.role)
        holder = Holder(body.holder.kind, f"{compound}:{body.holder.id}")
        holders = suite().key_holders
        problem = holders.problem(body.role, holder) if holders is not None else None
        if problem:
            raise Problem(422, problem, "holder-not-for-role")
        buildings = body.buildings
        check = runtime.definition.holder_check
        if check is not None:
            refused, home = check(runtime, holder)
            if refused:
                raise Problem(422, refused, "holder-not-registered")
            if buildings is None and body.holder.kind in ("volunteer", "household") and home is not None:
                buildings = [home]  # a volunteer's key names their building, a household's its own
        _within(caller, buildings)
        expires_at = utcnow() + timedelta(seconds=body.expires_in) if body.expires_in else None
        with runtime.database.unit_of_work() as session:
            if body.key is not None:
                _given_key(session, body.key, body.role, compound, holder)
            issued = issue_key(
                session, body.role, compound, buildings, body.label, key=body.key, holder=holder, expires_at=expires_at
            )
            if runtime.definition.key_issued is not None:
                runtime.definition.key_issued(runtime, session, issued.caller)
        made = issued.caller
        return {
            "key": issued.key,
            "key_id": made.key_id,
            "role": made.role,
            "compound": made.compound,
            "buildings": sorted(made.buildings) if made.buildings is not None else None,
            "holder": _holder_body(holder.kind, holder.id),
            "expires_at": _moment(expires_at),
        }

    @router.delete(
        "/compounds/{compound}/keys/{key_id}",
        status_code=204,
        summary="Revoke a key of the compound: its staff, or the key's own holder signing out",
    )
    def delete_key(compound: CompoundId, key_id: KeyId, request: Request, caller: Caller = of_compound) -> Response:
        runtime = request.app.state.runtime
        with runtime.database.unit_of_work() as session:
            row = key_row(session, key_id)
            if row is None or row["compound"] != compound:
                raise Problem(404, f"no key {key_id} in compound {compound}", "unknown-key")
            own = key_id == caller.key_id or (
                caller.holder is not None
                and (row["holder_kind"], row["holder"]) == (caller.holder.kind, caller.holder.id)
            )
            if not own:
                if caller.role not in issuers:
                    raise Forbidden("only the compound's staff, or the key's own holder, revoke a key")
                _may_issue(caller, row["role"])
                stored = row["buildings"]
                _within(caller, json.loads(stored) if stored else None)
            revoke_key(session, key_id)
        return Response(status_code=204)

    return router
