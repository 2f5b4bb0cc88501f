"""What of the register a caller is shown: identities masked unless revealed, health flags only with a grant.

``?reveal=true`` shows identities to committee staff, district operators and the building's information
officer; logistics volunteers never see ID-card numbers. A read that shows a revealed identity or health flags
leaves one row per resident in the audit of sensitive reads (``juwei.audit``), in the transaction that reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Row

from contracts.ids import global_id, local_id
from contracts.roles import COMMITTEE_STAFF, DISTRICT_OPERATOR, HEALTH_ROLES, INFORMATION_OFFICER, LOGISTICS_VOLUNTEER
from juwei.audit import Reading, SensitiveRead, record_reads
from juwei.callers import Caller, Forbidden
from juwei.service import Runtime
from juwei.session import Session
from juwei.vault import Vault
from services.residents import views
from services.residents.models import HouseholdOut, ResidentOut

REVEALERS = (DISTRICT_OPERATOR, COMMITTEE_STAFF, INFORMATION_OFFICER)
IDENTITY_FIELDS = ("name", "phone", "id_number")


def mask_phone(phone: str | None) -> str | None:
    """13800138000 → 138****8000."""
    if not phone:
        return phone
    return phone[:3] + "*" * max(len(phone) - 7, 1) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def mask_id_number(id_number: str | None) -> str | None:
    """310101199001011234 → 3101**********1234."""
    if not id_number:
        return id_number
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:] if len(id_number) > 8 else "*" * len(id_number)


def mask_name(name: str | None) -> str | None:
    """张三 → 张*, 欧阳娜娜 → 欧***."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) > 1 else "*"


def disclosure(caller: Caller, reveal: bool) -> bool:
    """Whether ID-card numbers may be listed at all; refuses a reveal to a role that may not see identity."""
    if reveal and caller.role not in REVEALERS:
        raise Forbidden(f"role {caller.role} may not see identities unmasked", code="reveal-forbidden")
    return caller.role != LOGISTICS_VOLUNTEER


def _views(
    session: Session,
    vault: Vault,
    residents: Sequence[Row],
    households: dict[str, Row],
    *,
    reveal: bool,
    id_numbers: bool,
    health: bool,
) -> list[ResidentOut]:
    """Residents as the caller may see them; identities are unsealed in one batch."""
    identities = vault.unseal_many(session, {r.resident: r.identity for r in residents if not r.erased})
    out: list[ResidentOut] = []
    for row in residents:
        home = households[row.household]
        item: dict[str, Any] = {
            "resident": local_id(row.resident),
            "household": local_id(row.household),
            "building": local_id(row.building),
            "floor": home.floor,
            "room": home.room,
            "birth_year": row.birth_year,
            **{flag: bool(getattr(row, flag)) for flag in views.FLAGS if flag not in views.HEALTH},
            "representative": home.representative == row.resident,
            "erased": bool(row.erased),
            "masked": not reveal,
        }
        if health and not row.erased:
            item.update({flag: bool(getattr(row, flag)) for flag in views.HEALTH})
        if not row.erased:
            identity = identities.get(row.resident) or {}
            item["name"] = identity.get("name") if reveal else mask_name(identity.get("name"))
            item["phone"] = identity.get("phone") if reveal else mask_phone(identity.get("phone"))
            if id_numbers:
                item["id_number"] = identity.get("id_number") if reveal else mask_id_number(identity.get("id_number"))
        out.append(ResidentOut(**item))
    return out


def _reads(compound: str, shown: Sequence[ResidentOut], *, identity: bool, health: bool) -> list[SensitiveRead]:
    """The sensitive reads of residents just shown: unmasked identity, health flags (none of the erased)."""
    reads = []
    for resident in shown:
        subject, building = global_id(compound, resident.resident), global_id(compound, resident.building)
        if identity and not resident.masked:
            fields = tuple(f for f in IDENTITY_FIELDS if getattr(resident, f, None))
            reads.append(SensitiveRead(subject, "identity", fields, building))
        if health and not resident.erased:
            reads.append(SensitiveRead(subject, "health", views.HEALTH, building))
    return reads


def show(
    runtime: Runtime,
    caller: Caller,
    compound: str,
    query: Select[Any],
    *,
    reveal: bool,
    households: Sequence[Row] = (),
    reading: Reading | None = None,
) -> list[ResidentOut]:
    """Run ``query`` over residents and show them. A read (``reading`` given) that reveals identities or shows
    health flags is audited in the same transaction; a command's answer echoes what its caller just wrote."""
    id_numbers = disclosure(caller, reveal)
    health = caller.role in HEALTH_ROLES
    audited = reveal or (reading is not None and health)
    with runtime.database.unit_of_work() if audited else runtime.database.reading() as session:
        residents = session.execute(query).all()
        homes = {h.household: h for h in households}
        missing = sorted({r.household for r in residents} - homes.keys())
        if missing:
            homes.update(
                (h.household, h)
                for h in session.execute(select(views.households).where(views.households.c.household.in_(missing)))
            )
        shown = _views(session, runtime.vault, residents, homes, reveal=reveal, id_numbers=id_numbers, health=health)
        if audited:
            reads = _reads(compound, shown, identity=reveal, health=reading is not None and health)
            record_reads(session, reading or Reading("revealed in the answer to a change"), caller, compound, reads)
    return shown


def resident_out(runtime: Runtime, caller: Caller, compound: str, resident: str) -> ResidentOut:
    """One resident as the caller sees them, in the answer to a change."""
    query = select(views.residents).where(views.residents.c.resident == global_id(compound, resident))
    return show(runtime, caller, compound, query, reveal=False)[0]


def household_out(row: Row) -> HouseholdOut:
    return HouseholdOut(
        household=local_id(row.household),
        building=local_id(row.building),
        floor=row.floor,
        room=row.room,
        representative=local_id(row.representative) if row.representative else None,
    )
