"""The residents service's domain rules as plain Python: no database, no broker."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest

from contracts import residents as ev
from juwei.aggregate import DomainRuleViolation
from services.residents.domain import (
    IMPORT_COLUMNS,
    LOGISTICS_GROUP_SIZE,
    Building,
    BuildingRoles,
    Household,
    Needs,
    RowError,
    Staff,
    Volunteer,
    Zone,
    elderly,
    find_by_skill,
    id_check_char,
    id_number_problem,
    staff_coverage,
    strictest,
    validate_rows,
    zone_for,
)

TODAY = date(2022, 4, 20)


def raises_rule(code: str, fn, *args, **kwargs) -> DomainRuleViolation:
    with pytest.raises(DomainRuleViolation) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, f"{info.value.code}: {info.value}"
    assert str(info.value)
    return info.value


# --- event catalogue --------------------------------------------------------------------------------------


# Version 2 seals the health flags and keeps the birth year in the service (issue 15); v1 is upcast.
SEALED_NEEDS = (ev.ResidentRegistered, ev.ResidentArrived, ev.ResidentNeedsChanged)


def test_catalogue_is_registered_versioned_and_named_for_the_service() -> None:
    assert len(ev.registry.classes) == len(ev.CATALOGUE)
    for cls in ev.CATALOGUE:
        assert cls.event_type == f"juwei.residents.{cls.__name__}"
        assert cls.version == (2 if cls in SEALED_NEEDS else 1)
        assert ev.registry.classes[cls.type_name()] is cls
    for cls in SEALED_NEEDS:
        assert ev.registry.knows(f"{cls.event_type}.v1")  # stored events of version 1 are read as version 2


@pytest.mark.parametrize("cls", ev.CATALOGUE, ids=lambda c: c.__name__)
def test_no_event_carries_identity(cls) -> None:
    forbidden = {"name", "phone", "id_number", "id_card", "mobile", "full_name"}
    assert not forbidden & set(cls.model_fields)


def test_events_concerning_one_building_carry_it() -> None:
    for cls in ev.CATALOGUE:
        if cls is ev.StaffAssigned:
            assert "buildings" in cls.model_fields
        else:
            assert "building" in cls.model_fields, cls.__name__


def test_resident_registered_has_derived_elderly_and_round_trips() -> None:
    household = registered_household()
    household.add_resident("r1", 1940, Needs(regular_medication=True), today=TODAY)
    event = household.pending()[-1]
    assert isinstance(event, ev.ResidentRegistered)
    assert event.elderly and event.regular_medication and event.building == "b1"
    assert event.building_id() == "b1"
    again = ev.registry.decode(event.type_name(), event.model_dump(mode="json"))
    assert again == event


# --- buildings and households -----------------------------------------------------------------------------


def test_building_registers_and_validates_its_size() -> None:
    building = Building("b1")
    building.register("1", floors=18, rooms_per_floor=4, lifts=2, lift_capacity=8)
    assert building.pending() == [
        ev.BuildingRegistered(building="b1", number="1", floors=18, rooms_per_floor=4, lifts=2, lift_capacity=8)
    ]
    assert building.floors == 18
    raises_rule("building-exists", building.register, "1", 18, 4, 2, 8)
    for floors, rooms, lifts, capacity in [(0, 4, 1, 8), (5, 0, 1, 8), (5, 4, -1, 8), (5, 4, 1, 0)]:
        raises_rule("invalid-building", Building("x").register, "2", floors, rooms, lifts, capacity)
    walkup = Building("b2")
    walkup.register("2", floors=6, rooms_per_floor=2, lifts=0, lift_capacity=0)
    assert walkup.lifts == 0


def registered_household(id: str = "h1", building: str = "b1", floor: int = 3, room: int = 2) -> Household:
    household = Household(id)
    household.register(building, floor, room, floors=18, rooms_per_floor=4)
    return household


def test_household_must_be_inside_the_building() -> None:
    registered_household()
    raises_rule("no-such-room", Household("h").register, "b1", 19, 1, floors=18, rooms_per_floor=4)
    raises_rule("no-such-room", Household("h").register, "b1", 0, 1, floors=18, rooms_per_floor=4)
    raises_rule("no-such-room", Household("h").register, "b1", 18, 5, floors=18, rooms_per_floor=4)
    Household("h").register("b1", 18, 4, floors=18, rooms_per_floor=4)
    raises_rule("household-exists", registered_household().register, "b1", 1, 1, floors=18, rooms_per_floor=4)


def test_representative_must_be_a_member() -> None:
    household = registered_household()
    household.add_resident("r1", 1980, Needs(), today=TODAY)
    raises_rule("resident-exists", household.add_resident, "r1", 1980, Needs(), today=TODAY)
    raises_rule("not-a-member", household.choose_representative, "stranger")
    household.choose_representative("r1")
    household.add_resident("r2", 1985, Needs(), today=TODAY)
    household.choose_representative("r2")
    chosen = [e for e in household.pending() if isinstance(e, ev.RepresentativeChosen)]
    assert [(e.resident, e.previous) for e in chosen] == [("r1", None), ("r2", "r1")]
    before = len(household.pending())
    household.choose_representative("r2")
    assert len(household.pending()) == before
    assert household.representative == "r2"


def test_residents_need_a_registered_household_and_a_plausible_birth_year() -> None:
    raises_rule("household-unknown", Household("nowhere").add_resident, "r1", 1980, Needs(), today=TODAY)
    raises_rule("invalid-resident", registered_household().add_resident, "r1", 1899, Needs(), today=TODAY)
    raises_rule("invalid-resident", registered_household().add_resident, "r1", 2023, Needs(), today=TODAY)


def test_moving_out_records_both_halves_and_drops_the_representative() -> None:
    source = registered_household("h1", "b1")
    target = registered_household("h2", "b2", floor=5, room=1)
    source.add_resident("r1", 1950, Needs(mobility_impaired=True), today=TODAY)
    source.choose_representative("r1")
    source.move_out("r1", target, today=TODAY)
    moved = source.pending()[-1]
    assert moved == ev.ResidentMoved(
        resident="r1", from_household="h1", from_building="b1", to_household="h2", building="b2", floor=5, room=1
    )
    arrived = target.pending()[-1]
    assert isinstance(arrived, ev.ResidentArrived)
    assert arrived.mobility_impaired and arrived.elderly and arrived.birth_year == 1950
    assert "r1" not in source.members and source.representative is None
    assert "r1" in target.members
    raises_rule("not-a-member", source.move_out, "r1", target, today=TODAY)
    raises_rule("same-household", target.move_out, "r1", target, today=TODAY)
    target.choose_representative("r1")


def test_needs_change_only_when_different_and_erase_removes_member() -> None:
    household = registered_household()
    household.add_resident("r1", 1990, Needs(), today=TODAY)
    household.change_needs("r1", Needs(), today=TODAY)
    assert not isinstance(household.pending()[-1], ev.ResidentNeedsChanged)
    household.change_needs("r1", Needs(pregnant=True), today=TODAY)
    changed = household.pending()[-1]
    assert isinstance(changed, ev.ResidentNeedsChanged) and changed.pregnant and not changed.elderly
    assert household.members["r1"].needs.pregnant
    household.choose_representative("r1")
    household.erase("r1")
    assert household.pending()[-1] == ev.ResidentErased(resident="r1", household="h1", building="b1")
    assert household.members == {} and household.representative is None
    raises_rule("not-a-member", household.erase, "r1")


def test_household_rebuilds_from_its_events() -> None:
    household = registered_household()
    household.add_resident("r1", 1950, Needs(bedridden=True), today=TODAY)
    household.add_resident("r2", 2021, Needs(infant=True), today=TODAY)
    household.choose_representative("r1")
    again = Household("h1").replay(household.pending())
    assert again.members == household.members and again.representative == "r1" and again.version == 4
    restored = Household("h1")
    restored.restore_state(household.snapshot_state())
    assert restored.members == household.members


# --- residents' needs -------------------------------------------------------------------------------------


def test_elderly_threshold() -> None:
    assert elderly(1952, TODAY)
    assert not elderly(1953, TODAY)
    assert elderly(1962, TODAY, threshold=60)
    assert not elderly(1963, TODAY, threshold=60)


# --- staff and volunteers ---------------------------------------------------------------------------------


def test_staff_assignment_and_coverage_warnings() -> None:
    staff = Staff("s1")
    staff.assign(["b1", "b2"], known_buildings={"b1", "b2", "b3"})
    staff.assign(["b2", "b1"], known_buildings={"b1", "b2", "b3"})
    assert len(staff.pending()) == 1
    raises_rule("building-unknown", staff.assign, ["b9"], known_buildings={"b1"})

    buildings = [f"b{i}" for i in range(1, 26)]
    assignments = {f"s{i}": buildings[(i - 1) * 4 : i * 4] for i in range(1, 7)}  # b1..b24
    assert staff_coverage(assignments, buildings).uncovered == ["b25"]
    assert staff_coverage(assignments, buildings).overloaded == {}
    assignments["s7"] = buildings[18:25]  # 7 buildings
    coverage = staff_coverage(assignments, buildings)
    assert coverage.uncovered == [] and coverage.overloaded == {"s7": 7}
    assert staff_coverage(assignments, buildings, max_buildings=7).overloaded == {}
    assert staff_coverage({"s1": ["b1"] * 6}, ["b1"]).overloaded == {}


def test_find_volunteers_by_skill() -> None:
    volunteers = [
        ("v1", "b1", ["Spreadsheets", "writing"]),
        ("v2", "b3", ["spreadsheets"]),
        ("v3", "b7", ["spreadsheets"]),
        ("v4", "b2", ["publicity"]),
    ]
    assert find_by_skill(volunteers, "spreadsheets") == [("v1", "b1"), ("v2", "b3"), ("v3", "b7")]
    first_five = {f"b{i}" for i in range(1, 6)}
    assert find_by_skill(volunteers, " SPREADSHEETS ", first_five) == [("v1", "b1"), ("v2", "b3")]
    assert find_by_skill(volunteers, "driving") == []
    volunteer = Volunteer("v1")
    volunteer.enlist("b1", ["Spreadsheets", "spreadsheets ", "", "Writing"])
    assert volunteer.skills == ["spreadsheets", "writing"]
    raises_rule("volunteer-exists", volunteer.enlist, "b1")


ENLISTED = {f"v{i}": "b1" for i in range(1, 10)} | {"other": "b2"}


def test_one_information_officer_per_building_replaced_explicitly() -> None:
    roles = BuildingRoles("b1")
    roles.assign("v1", "information_officer", enlisted=ENLISTED)
    roles.assign("v2", "information_officer", enlisted=ENLISTED)
    first, second = roles.pending()
    assert first.replaces is None
    assert second == ev.VolunteerRoleAssigned(volunteer="v2", building="b1", role="information_officer", replaces="v1")
    assert roles.information_officer == "v2"
    raises_rule("already-assigned", roles.assign, "v2", "information_officer", enlisted=ENLISTED)
    raises_rule("not-assigned", roles.release, "v1", "information_officer")
    roles.release("v2", "information_officer", reason="tested positive")
    assert roles.information_officer is None
    roles.assign("v3", "information_officer", enlisted=ENLISTED)
    assert roles.pending()[-1].replaces is None
    raises_rule("invalid-shift", roles.assign, "v4", "information_officer", enlisted=ENLISTED, shift="A")
    again = BuildingRoles("b1").replay(roles.pending())
    assert again.information_officer == "v3"


def test_volunteer_must_be_enlisted_in_the_building() -> None:
    roles = BuildingRoles("b1")
    raises_rule("volunteer-other-building", roles.assign, "other", "logistics", enlisted=ENLISTED, shift="A")
    raises_rule("volunteer-unknown", roles.assign, "ghost", "information_officer", enlisted=ENLISTED)
    raises_rule("invalid-role", roles.assign, "v1", "cook", enlisted=ENLISTED)
    assert roles.pending() == []


def test_logistics_group_limit_shifts_and_single_leader() -> None:
    roles = BuildingRoles("b1")
    raises_rule("shift-required", roles.assign, "v1", "logistics", enlisted=ENLISTED)
    raises_rule("invalid-shift", roles.assign, "v1", "logistics", enlisted=ENLISTED, shift="C")
    roles.assign("v1", "logistics", enlisted=ENLISTED, shift="A", leader=True)
    raises_rule("already-assigned", roles.assign, "v1", "logistics", enlisted=ENLISTED, shift="B")
    raises_rule("leader-exists", roles.assign, "v2", "logistics", enlisted=ENLISTED, shift="B", leader=True)
    for i in range(2, LOGISTICS_GROUP_SIZE + 1):
        roles.assign(f"v{i}", "logistics", enlisted=ENLISTED, shift="AB"[i % 2])
    assert len(roles.logistics) == LOGISTICS_GROUP_SIZE == 6
    raises_rule("logistics-group-full", roles.assign, "v7", "logistics", enlisted=ENLISTED, shift="A")
    assert roles.logistics_leader == "v1"
    assert {s["shift"] for s in roles.logistics.values()} == {"A", "B"}
    roles.release("v1", "logistics")
    assert roles.logistics_leader is None
    roles.assign("v7", "logistics", enlisted=ENLISTED, shift="A", leader=True)
    assert roles.logistics_leader == "v7"
    raises_rule("invalid-role", roles.assign, "v8", "sampling_point", enlisted=ENLISTED, leader=True)
    roles.assign("v8", "sampling_point", enlisted=ENLISTED)
    roles.assign("v1", "information_officer", enlisted=ENLISTED)  # one person may hold several roles
    again = BuildingRoles("b1").replay(roles.pending())
    assert again.logistics == roles.logistics and again.sampling_point == {"v8": None}


# --- zone status ------------------------------------------------------------------------------------------

CASE = date(2022, 4, 1)


def on_day(n: int) -> date:
    return CASE + timedelta(days=n)


@pytest.mark.parametrize(
    ("day", "zone", "next_zone", "next_on"),
    [
        (0, "sealed", "controlled", on_day(7)),
        (6, "sealed", "controlled", on_day(7)),
        (7, "controlled", "precaution", on_day(14)),
        (13, "controlled", "precaution", on_day(14)),
        (14, "precaution", None, None),
        (40, "precaution", None, None),
    ],
)
def test_zone_by_days_since_the_last_case(day: int, zone: str, next_zone: str | None, next_on: date | None) -> None:
    view = zone_for(CASE, on_day(day))
    assert (view.zone, view.days_since_last_case, view.next_zone, view.next_change_on) == (
        zone,
        day,
        next_zone,
        next_on,
    )


def test_zone_without_any_case_and_configurable_thresholds() -> None:
    assert zone_for(None, TODAY).zone == "precaution"
    assert zone_for(None, TODAY).days_since_last_case is None
    view = zone_for(CASE, on_day(3), sealed_days=3, precaution_days=10)
    assert (view.zone, view.next_change_on) == ("controlled", on_day(10))
    with pytest.raises(ValueError):
        zone_for(CASE, TODAY, sealed_days=14, precaution_days=7)
    raises_rule("case-in-future", zone_for, on_day(1), on_day(0))


def zone_changes(zone: Zone) -> list[ev.ZoneStatusChanged]:
    return [e for e in zone.pending() if isinstance(e, ev.ZoneStatusChanged)]


def test_zone_aggregate_moves_with_the_days_and_records_only_changes() -> None:
    zone = Zone("c1:b1")
    zone.refresh(on_day(0))
    assert zone.pending() == []  # precaution, no case ever: nothing changes
    zone.record_case(CASE, today=on_day(0))
    [sealed] = zone_changes(zone)
    assert (sealed.zone, sealed.previous, sealed.building, sealed.scope) == (
        "sealed",
        "precaution",
        "c1:b1",
        "building",
    )
    assert (sealed.next_zone, sealed.next_change_on, sealed.days_since_last_case) == ("controlled", on_day(7), 0)
    for day in range(1, 7):
        zone.refresh(on_day(day))
    assert len(zone_changes(zone)) == 1
    zone.refresh(on_day(7))
    zone.refresh(on_day(8))
    zone.refresh(on_day(14))
    zone.refresh(on_day(15))
    changes = zone_changes(zone)
    assert [(c.previous, c.zone) for c in changes] == [
        ("precaution", "sealed"),
        ("sealed", "controlled"),
        ("controlled", "precaution"),
    ]
    assert changes[1].next_change_on == on_day(14) and changes[1].days_since_last_case == 7
    assert changes[2].next_zone is None and not changes[2].decided_by_authority
    again = Zone("c1:b1").replay(zone.pending())
    assert (again.zone, again.last_case_on) == ("precaution", CASE)


def test_a_new_case_re_seals_and_moves_the_next_change() -> None:
    zone = Zone("c1:b1")
    zone.record_case(CASE, today=CASE)
    zone.refresh(on_day(8))
    zone.record_case(on_day(9), today=on_day(9))
    last = zone_changes(zone)[-1]
    assert (last.previous, last.zone, last.next_change_on) == ("controlled", "sealed", on_day(16))
    count = len(zone.pending())
    zone.record_case(on_day(5), today=on_day(10))  # an older case changes nothing
    assert len(zone.pending()) == count
    zone.record_case(on_day(10), today=on_day(10))  # a newer one while sealed: no zone change, later exit
    assert len(zone_changes(zone)) == 3 and zone.view(on_day(10)).next_change_on == on_day(17)
    raises_rule("case-in-future", zone.record_case, on_day(12), today=on_day(11))


def test_authority_decision_wins_until_the_next_case() -> None:
    zone = Zone("c1:b1")
    zone.record_case(CASE, today=CASE)
    raises_rule("reason-required", zone.decide, "precaution", " ", today=on_day(3))
    raises_rule("invalid-zone", zone.decide, "open", "why not", today=on_day(3))
    zone.decide("precaution", "district notice 2022-45", today=on_day(3))
    decided = zone_changes(zone)[-1]
    assert decided.decided_by_authority and decided.reason == "district notice 2022-45"
    assert (decided.previous, decided.zone, decided.next_change_on) == ("sealed", "precaution", None)
    count = len(zone.pending())
    zone.refresh(on_day(4))
    zone.refresh(on_day(30))
    zone.decide("precaution", "district notice 2022-45", today=on_day(5))
    assert len(zone.pending()) == count
    assert zone.view(on_day(4)).zone == "precaution" and zone.view(on_day(4)).next_change_on is None
    assert zone.view(on_day(4)).days_since_last_case == 4
    zone.record_case(on_day(20), today=on_day(20))
    resealed = zone_changes(zone)[-1]
    assert (resealed.zone, resealed.decided_by_authority, resealed.next_change_on) == ("sealed", False, on_day(27))
    assert not zone.by_authority


def test_compound_zone_is_the_strictest_unless_decided() -> None:
    assert strictest(["precaution", "controlled", "sealed"]) == "sealed"
    assert strictest([]) == "precaution"
    b1, b2, compound = Zone("c1:b1"), Zone("c1:b2"), Zone("c1")
    raises_rule("not-compound", b1.reconcile, [b2], today=CASE)
    b1.record_case(CASE, today=CASE)
    compound.reconcile([b1, b2], today=CASE)
    [sealed] = zone_changes(compound)
    assert (sealed.scope, sealed.building, sealed.zone, sealed.last_case_on) == ("compound", None, "sealed", CASE)
    compound.reconcile([b1, b2], today=on_day(1))
    assert len(zone_changes(compound)) == 1
    b2.record_case(on_day(3), today=on_day(3))
    compound.reconcile([b1, b2], today=on_day(8))  # b1 controlled, b2 still sealed
    assert compound.zone == "sealed" and compound.last_case_on == on_day(3)
    compound.reconcile([b1, b2], today=on_day(10))
    assert compound.zone == "controlled"
    compound.decide("precaution", "subdistrict decision", today=on_day(11))
    compound.reconcile([b1, b2], today=on_day(12))
    assert compound.zone == "precaution" and compound.by_authority
    b1.record_case(on_day(13), today=on_day(13))
    compound.reconcile([b1, b2], today=on_day(13))
    assert compound.zone == "sealed" and not compound.by_authority
    assert compound.view(on_day(13)).next_change_on == on_day(20)


# --- bulk import ------------------------------------------------------------------------------------------


def make_id(birth: str = "19491231", area: str = "110105", seq: str = "002") -> str:
    first17 = area + birth + seq
    return first17 + id_check_char(first17)


def test_id_card_check_digit() -> None:
    assert id_number_problem("11010519491231002X") is None  # the standard's example
    assert id_check_char("11010519491231002") == "X"
    assert id_number_problem("110105194912310021") == "the ID-card number's check digit is wrong"
    assert id_number_problem(make_id("19800229")) is None  # a leap day is a date
    assert id_number_problem("11010519491231002x".upper()) is None
    assert id_number_problem(make_id("19810229")) == "the ID-card number's birth date (characters 7-14) is not a date"
    assert id_number_problem("1101051949123100") is not None
    assert id_number_problem("11010519491231002Y") is not None


def row(**overrides: str) -> dict[str, str]:
    base = {
        "building": "b1",
        "floor": "3",
        "room": "2",
        "household": "h1",
        "resident": "r1",
        "name": "张三",
        "phone": "13800138000",
        "id_number": "11010519491231002X",
        "birth_year": "1949",
        "regular_medication": "是",
        "mobility_impaired": "no",
        "bedridden": "",
        "pregnant": "false",
        "infant": "0",
        "representative": "yes",
    }
    return base | overrides


def as_csv(rows: list[dict[str, str]], columns=IMPORT_COLUMNS) -> io.StringIO:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    out.seek(0)
    return out


def test_good_rows_are_parsed() -> None:
    rows = [
        row(),
        row(
            resident="r2",
            name="李四",
            phone="+86 139-0013-9000",
            id_number="",
            birth_year="2021",
            infant="TRUE",
            representative="否",
            regular_medication="否",
        ),
    ]
    good, errors = validate_rows(csv.DictReader(as_csv(rows)), today=TODAY)
    assert errors == []
    first, second = good
    assert (first.line, first.floor, first.room, first.birth_year, first.representative) == (2, 3, 2, 1949, True)
    assert first.needs == Needs(regular_medication=True)
    assert (second.line, second.phone, second.needs, second.representative) == (
        3,
        "13900139000",
        Needs(infant=True),
        False,
    )


def test_bad_rows_are_each_reported_with_line_column_and_reason() -> None:
    rows = [
        row(),  # line 2: good
        row(resident="r2", id_number="110105194912310021", representative="no"),  # 3: check digit
        row(resident="r3", phone="23800138000", representative="no", id_number=""),  # 4: phone
        row(
            resident="r4", phone="1380013800", birth_year="1899", representative="no", id_number=""
        ),  # 5: phone and year
        row(resident="r1", representative="no", id_number=""),  # 6: duplicate resident
        row(resident="r6", bedridden="maybe", floor="0", room="x", representative="no", id_number=""),  # 7
        row(resident="r7", birth_year="2030", id_number="", representative="no"),  # 8: future
        row(resident="r8", birth_year="1950", representative="no", id_number=make_id(seq="123")),  # 9: mismatch
        row(resident="r9", household="h1", floor="4", representative="no", id_number=""),  # 10: household moved
        row(resident="r10", name="", id_number=""),  # 11: no name, second representative of h1
        row(resident="bad id!", id_number=""),  # 12
        row(resident="r12", household="h2", id_number="11010519491231002X"),  # 13: same ID number as line 2
    ]
    good, errors = validate_rows(csv.DictReader(as_csv(rows)), today=TODAY)
    assert [g.line for g in good] == [2]
    found = {(e.line, e.column) for e in errors}
    assert found == {
        (3, "id_number"),
        (4, "phone"),
        (5, "phone"),
        (5, "birth_year"),
        (6, "resident"),
        (7, "bedridden"),
        (7, "floor"),
        (7, "room"),
        (8, "birth_year"),
        (9, "birth_year"),
        (10, "household"),
        (11, "name"),
        (11, "representative"),
        (12, "resident"),
        (12, "representative"),
        (13, "id_number"),
    }
    reasons = {(e.line, e.column): e.reason for e in errors}
    assert reasons[(3, "id_number")] == "the ID-card number's check digit is wrong"
    assert reasons[(6, "resident")] == "resident r1 is already on line 2"
    assert "between 1900" in reasons[(5, "birth_year")]
    assert "1949" in reasons[(9, "birth_year")]
    assert "yes/no" in reasons[(7, "bedridden")]
    assert all(isinstance(e, RowError) and e.reason for e in errors)


def test_missing_columns_and_ragged_rows() -> None:
    columns = [c for c in IMPORT_COLUMNS if c not in ("name", "room")]
    good, errors = validate_rows(csv.DictReader(as_csv([row()], columns)), today=TODAY)
    assert good == [] and errors == [
        RowError.of(1, "room", "column-missing", field="room"),
        RowError.of(1, "name", "column-missing", field="name"),
    ]
    assert errors[0].reason == "column missing from the header: room"
    assert errors[0].say_in("zh") == "标题行缺少此列：房号"
    text = as_csv([row()]).getvalue() + "b1,3,2,h1,r2\n" + "b1,3,2,h1,r3,李四,,,1980,,,,,,no,extra\n"
    good, errors = validate_rows(csv.DictReader(io.StringIO(text)), today=TODAY)
    assert [g.line for g in good] == [2]
    assert {(e.line, e.column) for e in errors} == {(3, "name"), (3, "birth_year"), (4, "")}


def test_five_thousand_rows_of_a_whole_compound_validate_without_an_error() -> None:
    # Import speed is measured in bench/, not asserted here: a compound's worth of rows is all good.
    rows = [
        row(
            household=f"h{i // 3}",
            resident=f"r{i}",
            id_number=make_id(seq=f"{i % 1000:03d}", area=f"{110000 + i // 1000}"),
            representative="yes" if i % 3 == 0 else "no",
            room=str(i // 3 % 4 + 1),
            floor=str(i // 12 % 18 + 1),
            building=f"b{i // 216 + 1}",
        )
        for i in range(5000)
    ]
    good, errors = validate_rows(rows, today=TODAY)
    assert errors == [] and len(good) == 5000
    assert len({g.resident for g in good}) == 5000
