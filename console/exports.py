"""The lists staff hand on or report upward, as tables in the person's language, from the services' JSON.

Each export asks the services as the signed-in person and writes what they answered: resident and household
ids, names and phones as the services masked them for this person's key, never more. Headings are msgids
(English), translated when the table is made: Chinese by default, English when the person reads English.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from console.figures import gather_overview, todays_round
from console.i18n import N_
from console.pages.overview import ZONES
from console.services_client import ServiceClient, ServiceProblem, gather_settled
from console.workbooks import Cell, Table

# gettext in the person's language, then %-formatting with the keyword values (as the templates' _()).
Translate = Callable[..., str]

# What testing says of someone to re-sample (status codes), as msgids.
RESAMPLE = {
    "recall": N_("Called again"),
    "recall-individual": N_("Called again for a single tube"),
    "retest": N_("Re-test"),
    "pcr-requested": N_("PCR requested"),
    "antigen-invalid": N_("Antigen test invalid"),
}
# Why a delivery did not reach a household (supplies' outcome codes), as msgids.
NOT_DELIVERED = {
    "no_one_home": N_("Nobody answered"),
    "refused": N_("Refused"),
    "wrong_items": N_("Wrong items"),
}
# Who holds a medical-insurance card now (supplies' holder kinds), as msgids.
HOLDERS = {
    "household": N_("Its household"),
    "volunteer": N_("A volunteer"),
    "staff": N_("Committee staff"),
    "subdistrict": N_("The subdistrict"),
}


@dataclass(frozen=True)
class Export:
    """One export of the exports page: its name in the URL, its title (a msgid) and what it lists (a msgid)."""

    name: str
    title: str
    about: str
    make: Callable[[ServiceClient, str, Translate], Awaitable[Table]]
    needs_round: bool = False


def _yes(flag: bool, _: Translate) -> str:
    return _("Yes") if flag else _("No")


def _items(items: Any) -> str:
    """Items as ``vegetables × 1, rice × 2`` (supplies gives a mapping, or a list of item/quantity)."""
    if isinstance(items, dict):
        return ", ".join(f"{item} × {quantity}" for item, quantity in items.items())
    if isinstance(items, list):
        return ", ".join(f"{entry.get('item')} × {entry.get('quantity')}" for entry in items if isinstance(entry, dict))
    return ""


async def _round_of(client: ServiceClient, compound: str, wanted: str | None) -> dict[str, Any] | None:
    """The round asked for, else today's, else the latest."""
    base = f"/compounds/{compound}"
    settled = await gather_settled({"rounds": client.get("testing", f"{base}/rounds"),
                                    "zones": client.get("residents", f"{base}/zones")})  # fmt: skip
    if isinstance(settled["rounds"], ServiceProblem):
        raise settled["rounds"]
    rounds = settled["rounds"]["rounds"]
    if wanted:
        return next((r for r in rounds if r["round"] == wanted), None)
    today = None if isinstance(settled["zones"], ServiceProblem) else settled["zones"].get("today")
    return todays_round(rounds, today) or (rounds[0] if rounds else None)


async def _homes(client: ServiceClient, compound: str, buildings: list[str]) -> dict[str, dict[str, Any]]:
    """Households by id with their members, as residents shows them to this person (masked, never revealed)."""
    answers = await gather_settled(
        {b: client.get("residents", f"/compounds/{compound}/buildings/{b}/households") for b in buildings}
    )
    homes: dict[str, dict[str, Any]] = {}
    for answer in answers.values():
        if isinstance(answer, ServiceProblem):
            continue
        for household in answer["households"]:
            homes[household["household"]] = household
    return homes


def _name_of(homes: dict[str, dict[str, Any]], household: str, resident: str) -> Cell:
    for member in homes.get(household, {}).get("members", []):
        if member.get("resident") == resident:
            return member.get("name")
    return None


async def untested(client: ServiceClient, compound: str, _: Translate, round: str | None = None) -> Table:
    """Who has not been tested in the round, by building and floor (and who is sampled at home)."""
    headings = [_("Building"), _("Floor"), _("Room"), _("Household"), _("Resident"), _("Name"), _("Status"),
                _("Sampled at home")]  # fmt: skip
    chosen = await _round_of(client, compound, round)
    if chosen is None:
        return Table(_("Not yet tested"), headings, note=_("No testing round yet."))
    base = f"/compounds/{compound}/rounds/{chosen['round']}"
    settled = await gather_settled(
        {"coverage": client.get("testing", f"{base}/coverage"), "visits": client.get("testing", f"{base}/door-to-door")}
    )
    if isinstance(settled["coverage"], ServiceProblem):
        raise settled["coverage"]
    coverage = settled["coverage"]
    visits = settled["visits"] if not isinstance(settled["visits"], ServiceProblem) else {"visits": []}
    at_home = {v["resident"] for v in visits["visits"]}
    homes = await _homes(client, compound, [b["building"] for b in coverage["buildings"] if b["not_tested"]])
    rows: list[list[Cell]] = []
    for building in coverage["buildings"]:
        for floor in building["floors"]:
            for household in floor["households"]:
                room = homes.get(household["household"], {}).get("room")
                chased = [(r, _("Not tested")) for r in household["not_tested"]]
                chased += [(r["resident"], _(RESAMPLE.get(r["status"], r["status"]))) for r in household["to_resample"]]
                for resident, status in chased:
                    rows.append([building["building"], floor["floor"], room, household["household"], resident,
                                 _name_of(homes, household["household"], resident), status,
                                 _yes(resident in at_home, _)])  # fmt: skip
    note = _("Round %(round)s of %(date)s", round=chosen["round"], date=chosen.get("on") or "")
    return Table(_("Not yet tested"), headings, rows, note)


async def undelivered(client: ServiceClient, compound: str, _: Translate) -> Table:
    """Households a delivery has not reached (supplies' follow-ups, until resolved)."""
    answer = await client.get("supplies", f"/compounds/{compound}/follow-ups")
    headings = [_("Batch"), _("Building"), _("Floor"), _("Room"), _("Household"), _("Why not delivered"),
                _("Attempts"), _("Items")]  # fmt: skip
    rows: list[list[Cell]] = []
    for f in answer["follow_ups"]:
        reason = _(NOT_DELIVERED.get(f["reason"], f["reason"])) if f["reason"] else None
        rows.append([f["batch"], f["building"], f["floor"], f["room"], f["household"], reason, f["attempts"],
                     _items(f["items"])])  # fmt: skip
    return Table(_("Undelivered households"), headings, rows)


async def cards(client: ServiceClient, compound: str, _: Translate) -> Table:
    """Where each medical-insurance card is now, and since when (supplies' card custody)."""
    answer = await client.get("supplies", f"/compounds/{compound}/cards")
    headings = [_("Card"), _("Building"), _("Household"), _("Held by"), _("Holder"), _("Since"), _("Away since"),
                _("Overdue")]  # fmt: skip
    rows: list[list[Cell]] = []
    for card in answer["cards"]:
        holder = card.get("holder") or {}
        kind = holder.get("kind")
        held_by = _(HOLDERS[kind]) if kind in HOLDERS else kind
        rows.append([card["card"], card["building"], card["household"], held_by, holder.get("id"), card.get("since"),
                     card.get("out_since"), _yes(bool(card.get("overdue")), _)])  # fmt: skip
    return Table(_("Card custody"), headings, rows)


async def ledger(client: ServiceClient, compound: str, _: Translate) -> Table:
    """The donation ledger: each item given, accepted or refused, where it went (donors by reference)."""
    answer = await client.get("supplies", f"/compounds/{compound}/ledger")
    headings = [_("Donation"), _("Donor"), _("Received on"), _("Item"), _("Category"), _("Quantity"), _("Counted in"),
                _("Accepted"), _("Allocated"), _("In stock"), _("Went into"), _("Reason refused")]  # fmt: skip
    rows: list[list[Cell]] = []
    for accepted, part in ((True, answer["accepted"]), (False, answer["refused"])):
        for gift in part:
            for item in gift["items"]:
                went = "; ".join(f"{b.get('label') or b['batch']} ({b['arrived_on']}) × {b['quantity']}"
                                 for b in item.get("batches", []))  # fmt: skip
                rows.append([gift["donation"], gift["donor"], gift["received_on"], item["item"], item.get("category"),
                             item["quantity"], item.get("unit"), _yes(accepted, _), item.get("allocated"),
                             item.get("in_stock"), went or None, gift.get("reason")])  # fmt: skip
    rows.sort(key=lambda row: (str(row[2]), str(row[0]), str(row[3])))
    return Table(_("Donation ledger"), headings, rows)


async def figures(client: ServiceClient, compound: str, _: Translate) -> Table:
    """The day's figures per building: the overview's, with a total row."""
    overview = await gather_overview(client, compound, None)
    names = ["residents", "called", "sampled", "missing", "pending_deliveries", "follow_ups", "cards_out",
             "cards_overdue", "open_questions"]  # fmt: skip
    headings = [_("Building"), _("Zone"), _("Days left"), _("Residents"), _("Called"), _("Sampled"),
                _("Not yet tested"), _("Deliveries pending"), _("Follow-ups"), _("Cards out"), _("Cards overdue"),
                _("Open questions")]  # fmt: skip
    rows: list[list[Cell]] = [
        [b.building, _(ZONES[b.zone]) if b.zone in ZONES else b.zone, b.days_left, *(getattr(b, n) for n in names)]
        for b in overview.buildings
    ]
    if overview.buildings:
        rows.append([_("All buildings"), None, None, *(overview.total(n) for n in names)])
    parts = [_("Today: %(date)s", date=overview.today)] if overview.today else []
    if overview.round:
        parts.append(_("Today's round: %(round)s", round=overview.round["round"]))
    if overview.missing:
        parts.append(_("Some figures are missing: a service did not answer."))
    return Table(_("The day's figures"), headings, rows, " · ".join(parts) or None)


EXPORTS: dict[str, Export] = {
    e.name: e
    for e in (
        Export("untested", N_("Not yet tested"), N_("Who has not been tested in the round, by building and floor."),
               untested, needs_round=True),
        Export("undelivered", N_("Undelivered households"), N_("Households a delivery has not reached yet."),
               undelivered),
        Export("cards", N_("Card custody"), N_("Where each medical-insurance card is now."), cards),
        Export("ledger", N_("Donation ledger"), N_("Every donation, accepted or refused, and where it went."), ledger),
        Export("figures", N_("The day's figures"), N_("Today's figures per building, as on the overview."), figures),
    )
}  # fmt: skip
