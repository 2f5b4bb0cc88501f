"""The register of compounds: which subdistrict (街道) each belongs to, and its own zone rules. Plain Python.

The zone rules (days without a case before a sealed zone becomes controlled, and before it becomes precaution)
are the deployment's unless the compound set its own; a compound may set them before it is registered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.residents import CompoundRegistered, CompoundZoneRulesSet
from juwei.aggregate import Aggregate, Invalid

SUBDISTRICT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class ZoneRules:
    """Days without a case: before ``sealed_days`` the zone is sealed, before ``precaution_days`` controlled."""

    sealed_days: int
    precaution_days: int

    def __post_init__(self) -> None:
        if not 1 <= self.sealed_days < self.precaution_days <= 365:
            raise Invalid(
                f"zone rules need 1 <= sealed_days < precaution_days <= 365, got {self.sealed_days} and "
                f"{self.precaution_days}",
                code="zone-rules-invalid",
            )


class Compound(Aggregate):
    """One compound of the district (id: the compound's id): its subdistrict, its name and its zone rules."""

    stream_prefix = "compound"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.subdistrict: str | None = None
        self.name: str | None = None
        self.sealed_days: int | None = None
        self.precaution_days: int | None = None

    @property
    def registered(self) -> bool:
        return self.subdistrict is not None

    def register(self, subdistrict: str, name: str) -> None:
        """Enter the compound in the register, or move it to another subdistrict (a repeat changes nothing)."""
        name = name.strip()
        if not SUBDISTRICT_ID.match(subdistrict):
            raise Invalid(
                f"a subdistrict id is lower-case letters, digits and '-' (at most 40), not {subdistrict!r}",
                code="subdistrict-invalid",
            )
        if not name or len(name) > 100:
            raise Invalid("a compound needs its name (at most 100 characters)", code="name-required")
        if (subdistrict, name) == (self.subdistrict, self.name):
            return
        self.record(CompoundRegistered(subdistrict=subdistrict, label=name))

    def set_zone_rules(self, rules: ZoneRules) -> None:
        """The compound's own zone thresholds from now on (the same ones again change nothing)."""
        if (rules.sealed_days, rules.precaution_days) == (self.sealed_days, self.precaution_days):
            return
        self.record(CompoundZoneRulesSet(sealed_days=rules.sealed_days, precaution_days=rules.precaution_days))

    def zone_rules(self, default: ZoneRules) -> ZoneRules:
        """The rules in force here: the compound's own, else the deployment's."""
        if self.sealed_days is None or self.precaution_days is None:
            return default
        return ZoneRules(self.sealed_days, self.precaution_days)

    def on_CompoundRegistered(self, event: CompoundRegistered) -> None:
        self.subdistrict = event.subdistrict
        self.name = event.label

    def on_CompoundZoneRulesSet(self, event: CompoundZoneRulesSet) -> None:
        self.sealed_days = event.sealed_days
        self.precaution_days = event.precaution_days
