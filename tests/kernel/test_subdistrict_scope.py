"""A subdistrict's key: its reach is the compounds placed in its subdistrict (plain data, no I/O)."""

from __future__ import annotations

import pytest

from juwei.callers import Caller, Forbidden, Grant
from juwei.wording import DETAILS_ZH


def _subdistrict(compounds: set[str]) -> Caller:
    return Caller("k1", "subdistrict-staff", None, None, subdistrict="s1", compounds=frozenset(compounds))


def test_a_subdistrict_key_reaches_its_compounds_and_no_other() -> None:
    caller = _subdistrict({"c1", "c3"})
    assert not caller.is_district and caller.reach == {"c1", "c3"}
    assert caller.may_act_on("c3", "b7") and not caller.may_see_compound("c2")
    with pytest.raises(Forbidden) as refused:
        caller.require_scope("c2")
    assert refused.value.said is not None and refused.value.said.id == "scope-subdistrict"
    assert "街道" in DETAILS_ZH["scope-subdistrict"].format(**refused.value.said.params)
    caller.require_subdistrict("s1")
    with pytest.raises(Forbidden):
        caller.require_subdistrict("s2")


def test_a_subdistrict_with_no_compounds_yet_reaches_nothing_and_a_district_key_everything() -> None:
    assert _subdistrict(set()).reach == frozenset() and not _subdistrict(set()).may_see_compound("c1")
    district = Caller("k2", "district-operator", None, None)
    assert district.is_district and district.reach is None and district.may_see_compound("c9")
    district.require_subdistrict("s2")
    compound = Caller("k3", "committee-staff", "c1", None)
    assert compound.reach == {"c1"}
    with pytest.raises(Forbidden):
        compound.require_subdistrict("s1")
    system = Caller("k4", "external-consumer", None, None, grant=Grant(compounds=frozenset({"c2"})))
    assert system.reach == {"c2"}
    with pytest.raises(Forbidden):  # a grant limited to some compounds reads no subdistrict's list
        system.require_subdistrict("s1")
