"""Bulk import over HTTP: a whole compound of 5,000 residents, re-imports, changes, bad rows, XLSX, limits."""

from __future__ import annotations

import csv
import io
import time
from collections import Counter

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select

from contracts import roles as r
from contracts.residents import BuildingRegistered
from juwei.store import ConcurrencyError, events_table
from juwei.vault import subject_keys_table
from services.residents import importing, views
from services.residents.domain import IMPORT_COLUMNS, id_check_char
from tests.conftest import both_databases

PROBLEM = "application/problem+json"
BUILDINGS, FLOORS, ROOMS = 25, 20, 4
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "建国", "桂兰", "志强", "丽娟", "文", "敏", "伟", "芳", "娜娜", "子涵", "浩然"]


def buildings_rows(count: int = BUILDINGS) -> list[dict[str, object]]:
    return [
        {"building": f"b{n}", "number": str(n), "floors": FLOORS, "rooms_per_floor": ROOMS, "lifts": 2,
         "lift_capacity": 8}
        for n in range(1, count + 1)
    ]  # fmt: skip


def compound_rows(buildings: int = BUILDINGS) -> list[dict[str, object]]:
    """A compound like the one in the news: 2–3 residents per flat, 5,000 residents in 25 buildings.

    Every ID number has its check digit right and its birth date in the resident's birth year; every fifth
    resident is elderly and on regular medication; the first member of each household is its representative.
    """
    rows: list[dict[str, object]] = []
    number = 0
    for b in range(1, buildings + 1):
        for floor in range(1, FLOORS + 1):
            for room in range(1, ROOMS + 1):
                household = f"{b}-{floor:02d}{room:02d}"
                for member in range(2 if (floor + room) % 2 else 3):
                    number += 1
                    year = 1935 + number % 5 * 20 if number % 5 else 1945
                    first17 = (
                        f"{310101 + number // 1000}{year}{number % 12 + 1:02d}{number % 28 + 1:02d}{number % 1000:03d}"
                    )
                    rows.append(
                        {
                            "building": f"b{b}",
                            "floor": floor,
                            "room": room,
                            "household": household,
                            "resident": f"r{number}",
                            "name": SURNAMES[number % len(SURNAMES)] + GIVEN[number % len(GIVEN)],
                            "phone": f"1{3 + number % 6}{number:09d}",
                            "id_number": first17 + id_check_char(first17),
                            "birth_year": year,
                            "regular_medication": "是" if number % 5 == 0 else "",
                            "mobility_impaired": "yes" if number % 97 == 0 else "no",
                            "bedridden": "",
                            "pregnant": "",
                            "infant": "1" if year >= 2021 else "0",
                            "representative": "yes" if member == 0 else "",
                        }
                    )
    return rows


def as_csv(rows: list[dict[str, object]], columns: tuple[str, ...] | list[str] = IMPORT_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def as_xlsx(rows: list[dict[str, object]], columns: tuple[str, ...] = IMPORT_COLUMNS) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(columns))
    for row in rows:
        # As a committee types it: numbers stay numbers (Excel keeps 13800138000 as a number), ID numbers text.
        sheet.append([int(v) if isinstance(v, str) and v.isdigit() and c != "id_number" else v
                      for c, v in ((c, row.get(c, "")) for c in columns)])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(residents, kind: str, content: bytes, headers: dict[str, str], media: str = "text/csv") -> httpx.Response:
    return residents.client.post(
        "/compounds/c1/import", params={"kind": kind}, content=content, headers={**headers, "content-type": media}
    )


def head(residents) -> int:
    with residents.runtime.database.reading() as session:
        return residents.runtime.store.head(session)


def count(residents, table) -> int:
    with residents.runtime.database.reading() as session:
        return session.execute(select(func.count()).select_from(table)).scalar()


def event_types(residents) -> Counter[str]:
    with residents.runtime.database.reading() as session:
        return Counter(t.split(".")[2] for t in session.execute(select(events_table.c.type)).scalars())


@both_databases
def test_a_compound_of_five_thousand_residents_imports_once_and_re_imports_as_nothing(residents, request) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    built = upload(residents, "buildings", as_csv(buildings_rows(), importing.BUILDING_COLUMNS), staff)
    assert built.status_code == 200, built.text
    assert built.json()["buildings"] == {"created": 25, "changed": 0, "unchanged": 0}
    rows = compound_rows()
    assert len(rows) == 5000 and len({row["household"] for row in rows}) == 2000
    content = as_csv(rows)

    started = time.perf_counter()
    first = upload(residents, "residents", content, staff)
    elapsed = time.perf_counter() - started
    assert first.status_code == 200, first.text[:2000]
    dialect = request.node.callspec.params["new_database"]
    print(f"\nimport of 5,000 residents / 2,000 households on {dialect}: {elapsed:.2f} s")
    result = first.json()
    assert result["residents"] == {"created": 5000, "changed": 0, "unchanged": 0}
    assert result["households"] == {"created": 2000, "changed": 0, "unchanged": 0}
    assert result["changes"]["representative_chosen"] == 2000
    assert result["events"] == 2000 + 5000 + 2000  # households, residents, representatives
    assert event_types(residents) == {
        "BuildingRegistered": 25,
        "HouseholdRegistered": 2000,
        "ResidentRegistered": 5000,
        "RepresentativeChosen": 2000,
    }
    assert count(residents, views.buildings) == 25
    assert count(residents, views.households) == 2000
    assert count(residents, views.residents) == 5000
    with residents.runtime.database.reading() as session:
        medication = session.execute(
            select(func.count()).select_from(views.residents).where(views.residents.c.regular_medication.is_(True))
        ).scalar()
        represented = session.execute(
            select(func.count()).select_from(views.households).where(views.households.c.representative.is_not(None))
        ).scalar()
    assert medication == 1000 and represented == 2000
    listing = residents.client.get("/compounds/c1/buildings/b25/households", headers=staff).json()["households"]
    assert len(listing) == 80 and sum(len(h["members"]) for h in listing) == 200

    position = head(residents)
    started = time.perf_counter()
    again = upload(residents, "residents", content, staff)
    print(f"re-import of the same file on {dialect}: {time.perf_counter() - started:.2f} s")
    assert again.status_code == 200, again.text[:2000]
    assert again.json()["residents"] == {"created": 0, "changed": 0, "unchanged": 5000}
    assert again.json()["households"] == {"created": 0, "changed": 0, "unchanged": 2000}
    assert again.json()["events"] == 0
    assert head(residents) == position
    rebuilt = upload(residents, "buildings", as_csv(buildings_rows(), importing.BUILDING_COLUMNS), staff)
    assert rebuilt.json()["buildings"] == {"created": 0, "changed": 0, "unchanged": 25}
    assert head(residents) == position


def small_compound(residents) -> tuple[dict[str, str], list[dict[str, object]]]:
    staff = residents.key(r.COMMITTEE_STAFF)
    assert (
        upload(residents, "buildings", as_csv(buildings_rows(2), importing.BUILDING_COLUMNS), staff).status_code == 200
    )
    rows = [row for row in compound_rows(2) if row["floor"] == 1]  # 8 households, 20 residents
    assert upload(residents, "residents", as_csv(rows), staff).status_code == 200
    return staff, rows


@both_databases
def test_a_changed_row_records_its_change_and_nothing_else(residents) -> None:
    staff, rows = small_compound(residents)
    by_id = {row["resident"]: dict(row) for row in rows}
    first, second, third = rows[0]["resident"], rows[1]["resident"], rows[-1]["resident"]
    by_id[first]["bedridden"] = "是"  # needs changed
    by_id[second]["name"] = "王更正"  # identity corrected
    by_id[second]["representative"] = "yes"  # and now the household's representative
    by_id[first]["representative"] = ""
    target = rows[-1]["household"]
    mover = rows[3]["resident"]  # the representative of the second flat, moving to the other building
    assert rows[3]["household"] != target and rows[3]["representative"] == "yes"
    by_id[mover].update(
        household=target, building=rows[-1]["building"], floor=1, room=rows[-1]["room"], representative=""
    )
    newcomer = dict(rows[0], resident="r-new", name="新来", phone="", id_number="", birth_year=2022, infant="yes",
                    representative="")  # fmt: skip
    position = head(residents)
    changed = upload(residents, "residents", as_csv([*by_id.values(), newcomer]), staff)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["residents"] == {"created": 1, "changed": 3, "unchanged": len(rows) - 3}
    assert body["changes"] == {"moved": 1, "needs_changed": 1, "identity_corrected": 1, "representative_chosen": 1}
    with residents.runtime.database.reading() as session:
        appended = residents.runtime.store.read_after(session, position)
    assert Counter(e.type.split(".")[2] for e in appended) == {
        "ResidentNeedsChanged": 1,
        "ResidentIdentityCorrected": 1,
        "RepresentativeChosen": 1,
        "ResidentMoved": 1,
        "ResidentArrived": 1,
        "ResidentRegistered": 1,
    }
    assert body["households"]["changed"] == 3  # the first flat, the one left and the one moved into
    revealed = residents.client.get(f"/compounds/c1/residents/{second}", params={"reveal": True}, headers=staff)
    assert revealed.json()["name"] == "王更正" and revealed.json()["representative"] is True
    moved = residents.client.get(f"/compounds/c1/residents/{mover}", headers=staff).json()
    assert moved["household"] == target
    assert residents.client.get(f"/compounds/c1/residents/{third}", headers=staff).json()["household"] == target

    position = head(residents)
    same = upload(residents, "residents", as_csv([*by_id.values(), newcomer]), staff)
    assert same.json()["events"] == 0 and head(residents) == position


@both_databases
def test_a_file_with_bad_rows_imports_nothing_and_lists_each_bad_row(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    assert (
        upload(residents, "buildings", as_csv(buildings_rows(3), importing.BUILDING_COLUMNS), staff).status_code == 200
    )
    rows = compound_rows(3)[:300]
    rows[9] = rows[9] | {"phone": "2380013800"}  # line 11
    rows[99] = rows[99] | {"id_number": rows[99]["id_number"][:17] + ("0" if rows[99]["id_number"][17] != "0" else "1")}
    rows[149] = rows[149] | {"building": "b99", "household": "99-0101"}  # line 151: no such building
    rows[199] = rows[199] | {"floor": 21, "household": "3-2101", "representative": "yes"}  # line 201: above the top
    rows[249] = rows[249] | {"birth_year": 1890, "bedridden": "maybe"}  # line 251: two cells
    position = head(residents)
    refused = upload(residents, "residents", as_csv(rows), staff)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert body["type"] == "urn:juwei:problem:import-rejected"
    found = {(e["line"], e["column"]) for e in body["errors"]}
    assert (11, "phone") in found and (101, "id_number") in found and (251, "birth_year") in found
    assert (251, "bedridden") in found
    assert body["error_count"] == len(body["errors"]) == len(found)
    # Rows wrong on their own and rows that disagree with the register's buildings are listed together.
    assert {line for line, _ in found} == {11, 101, 151, 201, 251}
    reasons = {(e["line"], e["column"]): e["reason"] for e in body["errors"]}
    assert reasons[(101, "id_number")] == "the ID-card number's check digit is wrong"
    assert "b99 is not registered" in reasons[(151, "building")]
    assert reasons[(201, "floor")] == f"building 1 has floors 1-20; room 21{rows[199]['room']:02d} is on floor 21"
    codes = {(e["line"], e["column"]): e["code"] for e in body["errors"]}
    assert codes[(151, "building")] == "building-unknown" and codes[(201, "floor")] == "floor-above-top"
    assert "nothing was imported" in body["detail"]
    assert head(residents) == position
    assert count(residents, views.residents) == count(residents, views.households) == 0
    with residents.runtime.database.reading() as session:
        assert session.execute(select(func.count()).select_from(subject_keys_table)).scalar() == 0


def test_xlsx_workbooks_import_too(residents) -> None:
    staff = residents.key(r.DISTRICT_OPERATOR, None)
    workbook = as_xlsx(buildings_rows(2), importing.BUILDING_COLUMNS)
    built = residents.client.post(
        "/compounds/c1/import",
        params={"kind": "buildings"},
        files={"file": ("楼栋.xlsx", workbook, importing.XLSX_MEDIA_TYPE)},
        headers=staff,
    )
    assert built.status_code == 200, built.text
    assert built.json()["buildings"]["created"] == 2
    rows = compound_rows(2)[:60]
    imported = upload(residents, "residents", as_xlsx(rows), staff, importing.XLSX_MEDIA_TYPE)
    assert imported.status_code == 200, imported.text
    assert imported.json()["residents"]["created"] == 60
    revealed = residents.client.get("/compounds/c1/residents/r1", params={"reveal": True}, headers=staff).json()
    assert revealed["phone"] == rows[0]["phone"] and revealed["id_number"] == rows[0]["id_number"]
    assert upload(residents, "residents", as_xlsx(rows), staff, importing.XLSX_MEDIA_TYPE).json()["events"] == 0
    assert upload(residents, "residents", as_csv(rows), staff).json()["events"] == 0  # same data, other format

    rows[4] = rows[4] | {"phone": "12345"}
    refused = upload(residents, "residents", as_xlsx(rows), staff, importing.XLSX_MEDIA_TYPE)
    assert refused.status_code == 422
    assert [(e["line"], e["column"]) for e in refused.json()["errors"]] == [(6, "phone")]


def test_sheets_as_chinese_excel_saves_them_and_blank_lines(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    text = "building,number,floors,rooms_per_floor,lifts,lift_capacity\n\nb1,一号楼,18,4,2,8\n,,,,,\nb2,,x,4,2,8\n"
    refused = upload(residents, "buildings", text.encode("gb18030"), staff)
    assert refused.status_code == 422
    assert [(e["line"], e["column"]) for e in refused.json()["errors"]] == [(5, "floors"), (5, "number")]
    fixed = text.replace("b2,,x", "b2,二号楼,16")
    built = upload(residents, "buildings", b"\xef\xbb\xbf" + fixed.encode(), staff)  # UTF-8 with a BOM
    assert built.status_code == 200, built.text
    numbers = [b["number"] for b in residents.client.get("/compounds/c1/buildings", headers=staff).json()["buildings"]]
    assert sorted(numbers) == ["一号楼", "二号楼"]


def test_limits_and_unreadable_files(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    header = ",".join(IMPORT_COLUMNS) + "\n"
    too_big = upload(residents, "residents", header.encode() + b"x" * (importing.MAX_BYTES + 1), staff)
    assert too_big.status_code == 413 and too_big.headers["content-type"] == PROBLEM
    row = "b1,1,1,h1,r{},张三,,,1980,,,,,,\n"
    many = header + "".join(row.format(n) for n in range(importing.MAX_ROWS + 1))
    too_many = upload(residents, "residents", many.encode(), staff)
    assert too_many.status_code == 422 and too_many.json()["type"] == "urn:juwei:problem:too-many-rows"
    padded = upload(residents, "residents", (header + row.format(1)).encode() + b"\n" * importing.MAX_LINES, staff)
    assert padded.status_code == 422 and "delete the empty rows" in padded.json()["detail"]
    missing = upload(residents, "residents", b"building,floor,room\nb1,1,1\n", staff)
    assert missing.status_code == 422
    assert missing.json()["type"] == "urn:juwei:problem:headings-missing"
    assert missing.json()["missing"] == ["name", "birth_year"] and missing.json()["unknown"] == []
    assert upload(residents, "residents", b"", staff).status_code == 422
    assert upload(residents, "residents", header.encode(), staff).json()["errors"][0]["reason"].endswith("no rows")
    old_excel = upload(residents, "residents", b"\xd0\xcf\x11\xe0" + b"\0" * 100, staff, "application/vnd.ms-excel")
    assert old_excel.status_code == 415
    broken = upload(residents, "residents", b"PK\x03\x04 not really a workbook", staff, importing.XLSX_MEDIA_TYPE)
    assert broken.status_code == 422 and broken.json()["type"] == "urn:juwei:problem:unreadable-file"
    form = b'--edge\r\nContent-Disposition: form-data; name="note"\r\n\r\nforgot the file\r\n--edge--\r\n'
    no_file = upload(residents, "residents", form, staff, "multipart/form-data; boundary=edge")
    assert no_file.status_code == 422 and no_file.json()["type"] == "urn:juwei:problem:no-file"
    wrong_kind = upload(residents, "households", header.encode(), staff)
    assert wrong_kind.status_code == 422 and wrong_kind.json()["errors"][0]["location"] == ["query", "kind"]
    assert head(residents) == 0


def test_import_checks_the_register_ids_and_erased_residents(residents) -> None:
    staff = residents.key(r.COMMITTEE_STAFF)
    assert (
        upload(residents, "buildings", as_csv(buildings_rows(1), importing.BUILDING_COLUMNS), staff).status_code == 200
    )
    changed = buildings_rows(1)[0] | {"floors": 30}
    refused = upload(residents, "buildings", as_csv([changed], importing.BUILDING_COLUMNS), staff)
    assert [(e["line"], e["column"]) for e in refused.json()["errors"]] == [(2, "floors")]
    rows = compound_rows(1)[:5]
    assert upload(residents, "residents", as_csv(rows), staff).status_code == 200
    assert residents.client.delete("/compounds/c1/residents/r1", headers=staff).status_code == 204
    again = upload(residents, "residents", as_csv(rows), staff)
    assert again.status_code == 422
    assert again.json()["errors"] == [
        {"line": 2, "column": "resident", "heading": "resident", "code": "resident-erased",
         "reason": "resident r1 was erased: use a new id"}
    ]  # fmt: skip
    elsewhere = [row | {"floor": 2} if row["household"] == rows[0]["household"] else row for row in rows[1:]]
    moved_flat = upload(residents, "residents", as_csv(elsewhere), staff)
    assert moved_flat.status_code == 422 and moved_flat.json()["errors"][0]["column"] == "household"
    dotted = upload(residents, "residents", as_csv([rows[1] | {"resident": "r.2"}]), staff)
    assert [(e["code"], e["reason"]) for e in dotted.json()["errors"]] == [("local-id", importing.LOCAL_ID_RULE)]
    older = upload(residents, "residents", as_csv([rows[1] | {"birth_year": 1946, "id_number": ""}]), staff)
    assert older.json()["errors"][0]["column"] == "birth_year"


def test_import_is_for_staff_and_their_buildings(residents) -> None:
    content = as_csv(buildings_rows(2), importing.BUILDING_COLUMNS)
    for role, buildings in ((r.INFORMATION_OFFICER, ["b1"]), (r.LOGISTICS_VOLUNTEER, ["b1"])):
        assert upload(residents, "buildings", content, residents.key(role, "c1", buildings)).status_code == 403
    partial = upload(residents, "buildings", content, residents.key(r.COMMITTEE_STAFF, "c1", ["b1"]))
    assert partial.status_code == 403 and "b2" in partial.json()["detail"]
    assert upload(residents, "buildings", content, residents.key(r.COMMITTEE_STAFF, "c2")).status_code == 403
    assert head(residents) == 0


@both_databases
def test_one_stale_stream_in_a_batch_appends_nothing(residents) -> None:
    def registered(building: str) -> list[BuildingRegistered]:
        return [
            BuildingRegistered(building=building, number="1", floors=1, rooms_per_floor=1, lifts=0, lift_capacity=0)
        ]

    store = residents.runtime.store
    with residents.runtime.database.unit_of_work() as session:
        store.append_many(session, [("building-c1:b1", registered("c1:b1"), 0, "c1")])
    with pytest.raises(ConcurrencyError) as stale, residents.runtime.database.unit_of_work() as session:
        store.append_many(
            session,
            [("building-c1:b2", registered("c1:b2"), 0, "c1"), ("building-c1:b1", registered("c1:b1"), 0, "c1")],
        )
    assert (stale.value.stream_id, stale.value.expected, stale.value.actual) == ("building-c1:b1", 0, 1)
    assert head(residents) == 1 and count(residents, views.buildings) == 1
