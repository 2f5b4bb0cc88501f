"""What a phone may ask the console to do for it, by kind: who may, what it names, and the service call it is.

A phone sends ``{command_id, kind, params}``; the console checks the person's role and building, then calls
the service as that person with ``Idempotency-Key: <command_id>``, so a resent command happens once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.i18n import N_
from console.sessions import Person
from contracts.roles import LOGISTICS_VOLUNTEER, SAMPLING_VOLUNTEER

LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class ActionRefused(Exception):
    """The console refuses the action before any service sees it: ``status`` and a msgid of the catalogues."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Call:
    method: str
    service: str
    path: str
    json: Any


@dataclass(frozen=True)
class Kind:
    """One kind of action: the roles that may send it, the ids it names, and the call it becomes."""

    roles: tuple[str, ...]
    names: tuple[str, ...]
    call: Callable[[Person, dict[str, str], str], Call]
    # The action names a building, which must be one of the person's (the service checks their key again).
    in_building: bool = True


def own_id(person: Person) -> str:
    """The person's own id in the register (their holder, without the compound)."""
    return person.holder.rsplit(":", 1)[-1]


def _outcome(outcome: str) -> Callable[[Person, dict[str, str], str], Call]:
    def call(person: Person, params: dict[str, str], _command: str) -> Call:
        path = f"/compounds/{person.compound}/batches/{params['batch']}/buildings/{params['building']}/outcomes"
        body = {"volunteer": own_id(person), "outcomes": [{"household": params["household"], "outcome": outcome}]}
        return Call("POST", "supplies", path, body)

    return call


def _call_next(person: Person, params: dict[str, str], _command: str) -> Call:
    path = f"/compounds/{person.compound}/rounds/{params['round']}/points/{params['point']}/calls/next"
    return Call("POST", "testing", path, None)


def _collect(person: Person, params: dict[str, str], _command: str) -> Call:
    path = f"/compounds/{person.compound}/cards/{params['card']}/collection"
    return Call("POST", "supplies", path, {"leader": own_id(person)})


def _handover(to_subdistrict: bool) -> Callable[[Person, dict[str, str], str], Call]:
    """The card changes hands between the volunteer and the subdistrict's runner; the handover's id comes from
    the phone's command id, so the same tap is one handover."""

    def call(person: Person, params: dict[str, str], command: str) -> Call:
        volunteer = {"kind": "volunteer", "id": own_id(person)}
        other = {"kind": "subdistrict", "id": params["other"]}
        giver, receiver = (volunteer, other) if to_subdistrict else (other, volunteer)
        body = {"handover": f"hv-{command.replace('-', '')}", "giver": giver, "receiver": receiver,
                "cards": [params["card"]]}  # fmt: skip
        return Call("POST", "supplies", f"/compounds/{person.compound}/card-handovers", body)

    return call


def _return(person: Person, params: dict[str, str], _command: str) -> Call:
    path = f"/compounds/{person.compound}/cards/{params['card']}/return"
    return Call("POST", "supplies", path, {"giver": {"kind": "volunteer", "id": own_id(person)}})


KINDS: dict[str, Kind] = {
    "delivery.delivered": Kind((LOGISTICS_VOLUNTEER,), ("batch", "building", "household"), _outcome("delivered")),
    "delivery.no_one_home": Kind((LOGISTICS_VOLUNTEER,), ("batch", "building", "household"), _outcome("no_one_home")),
    "card.collect": Kind((LOGISTICS_VOLUNTEER,), ("building", "card"), _collect),
    "card.hand_over": Kind((LOGISTICS_VOLUNTEER,), ("building", "card", "other"), _handover(to_subdistrict=True)),
    "card.take_back": Kind((LOGISTICS_VOLUNTEER,), ("building", "card", "other"), _handover(to_subdistrict=False)),
    "card.return": Kind((LOGISTICS_VOLUNTEER,), ("building", "card"), _return),
    # The point's key is bound to its point: the testing service refuses any other point.
    "round.call_next": Kind((SAMPLING_VOLUNTEER,), ("round", "point"), _call_next, in_building=False),
}


def parse(person: Person, body: Any) -> tuple[str, Kind, dict[str, str]]:
    """The command id, kind and params of a phone's action, once the person may send it (else refused)."""
    if not isinstance(body, dict) or set(body) - {"command_id", "kind", "params"}:
        raise ActionRefused(400, N_("The request was not understood."))
    command_id, kind_name, params = body.get("command_id"), body.get("kind"), body.get("params")
    try:
        command = str(uuid.UUID(str(command_id)))
    except ValueError:
        raise ActionRefused(400, N_("The request was not understood.")) from None
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None or not isinstance(params, dict) or set(params) != set(kind.names):
        raise ActionRefused(400, N_("The request was not understood."))
    if not all(isinstance(v, str) and LOCAL_ID.fullmatch(v) for v in params.values()):
        raise ActionRefused(422, N_("Some of what was entered is not valid."))
    if person.role not in kind.roles:
        raise ActionRefused(403, N_("This page is not for your role."))
    if kind.in_building and not person.may_see(params["building"]):
        raise ActionRefused(403, N_("This building is not yours."))
    return command, kind, params
