"""Who is calling: a key's holder, its grant and its scope (plain data, no I/O).

The kernel knows one role by name, the district operator's: the bootstrap key is one. Every other role is the
suite's (``contracts.roles``). A caller outside its scope is ``Forbidden``, answered as 403 at the edge
(``juwei.problems``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from juwei.wording import Said

OPERATOR_ROLE = "district-operator"
HOLDER_KINDS = ("staff", "volunteer", "household", "official", "system")


class Forbidden(Exception):
    """The caller's role, scope or binding does not cover what it asked for (HTTP 403)."""

    def __init__(self, detail: str, *, code: str = "forbidden", said: Said | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.said = said  # the kernel's wording of the detail in other languages


@dataclass(frozen=True)
class Holder:
    """Whom a key was issued to: ``kind`` is one of ``HOLDER_KINDS``; ``id`` the person's id (district-wide for
    staff, volunteers and households) or a name (an official, a system)."""

    kind: str
    id: str

    def __post_init__(self) -> None:
        if self.kind not in HOLDER_KINDS:
            raise ValueError(f"a key's holder is one of {', '.join(HOLDER_KINDS)}, not {self.kind!r}")
        if not self.id or not self.id.strip() or len(self.id) > 200:
            raise ValueError("a key's holder needs an id or a name (at most 200 characters)")

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Grant:
    """What another system's key may read: event types (base names, ``juwei.testing.*`` for a whole service),
    compounds, and whether health data. None means no limit of that kind beyond the key's own scope."""

    types: frozenset[str] | None = None
    compounds: frozenset[str] | None = None
    health: bool = False

    def names_type(self, type_name: str) -> bool:
        if self.types is None:
            return True
        base = type_name.rsplit(".v", 1)[0]
        service = base.rsplit(".", 1)[0]
        return base in self.types or f"{service}.*" in self.types

    def to_json(self) -> str:
        return json.dumps(
            {
                "types": sorted(self.types) if self.types is not None else None,
                "compounds": sorted(self.compounds) if self.compounds is not None else None,
                "health": self.health,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Grant | None:
        if not text:
            return None
        raw = json.loads(text)
        types, compounds = raw.get("types"), raw.get("compounds")
        return cls(
            frozenset(types) if types is not None else None,
            frozenset(compounds) if compounds is not None else None,
            bool(raw.get("health")),
        )


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's role and scope. ``compound`` None means every compound (district), unless the key
    is a subdistrict's: then ``compounds`` are those placed in ``subdistrict`` when the request came."""

    key_id: str
    role: str
    compound: str | None
    buildings: frozenset[str] | None
    holder: Holder | None = None
    grant: Grant | None = None
    subdistrict: str | None = None
    compounds: frozenset[str] | None = None

    @property
    def is_district(self) -> bool:
        return self.compound is None and self.subdistrict is None

    @property
    def reach(self) -> frozenset[str] | None:
        """The compounds this key reaches; None for every compound."""
        if self.compound is not None:
            return frozenset({self.compound})
        if self.subdistrict is not None:
            return self.compounds or frozenset()
        return self.grant.compounds if self.grant is not None else None

    def may_see_compound(self, compound: str) -> bool:
        if self.compound is not None:
            return self.compound == compound
        if self.subdistrict is not None:
            return compound in (self.compounds or ())
        # A district key of another system reaches only the compounds its grant names.
        return self.grant is None or self.grant.compounds is None or compound in self.grant.compounds

    def require_subdistrict(self, subdistrict: str) -> None:
        """A subdistrict's own key, or a district key that reaches every compound, reads a subdistrict's lists."""
        if self.subdistrict == subdistrict or (self.is_district and self.reach is None):
            return
        said = Said("scope-subdistrict-other", {"subdistrict": subdistrict})
        raise Forbidden(f"this key may not read subdistrict {subdistrict}", said=said)

    def may_act_on(self, compound: str, building: str | None = None) -> bool:
        if not self.may_see_compound(compound):
            return False
        return building is None or self.buildings is None or building in self.buildings

    def require_scope(self, compound: str, building: str | None = None) -> None:
        if self.subdistrict is not None and not self.may_see_compound(compound):
            said = Said("scope-subdistrict", {"compound": compound, "subdistrict": self.subdistrict})
            raise Forbidden(
                f"compound {compound} is not in subdistrict {self.subdistrict}, this key's scope", said=said
            )
        if not self.may_act_on(compound, building):
            where = f"building {building} of compound {compound}" if building else f"compound {compound}"
            said = Said(
                "scope-building" if building else "scope-compound", {"compound": compound, "building": building}
            )
            raise Forbidden(f"this key may not act on {where}", said=said)
