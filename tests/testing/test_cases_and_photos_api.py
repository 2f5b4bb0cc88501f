"""Antigen self-reports (with photos), cases and transfers, the building's view, disinfection with photos."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from contracts import roles as r
from tests.conftest import both_databases
from tests.testing.compound import Compound
from tests.testing.conftest import Testing, open_points, receive, small_compound


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny) PNG, so that what is served back can be compared byte for byte."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x11" * 200 + b"\xff\xd9"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x22" * 24
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20


def _confirmed_case(testing: Testing, compound: Compound) -> tuple[str, str]:
    """Round r1, one resident of building 1 positive alone: (case id, resident)."""
    open_points(testing, 1)
    testing.ok("POST", "/assignment/proposal")
    testing.ok("POST", "/rounds", json={"round": "r1", "starts_at": "2022-04-12T07:00", "points": ["p1"]})
    person = next(p for p, (b, _h, _f, _bed) in compound.residents.items() if b == "1")
    testing.ok("POST", "/rounds/r1/samples", json={"tube": "T1", "residents": [person], "point": "p1"})
    testing.ok("POST", "/tubes/T1/result", json={"result": "positive"})
    testing.ok("POST", "/rounds/r1/samples", json={"tube": "S1", "residents": [person], "point": "p1"})
    return testing.ok("POST", "/tubes/S1/result", json={"result": "positive"})["case"], person


@both_databases
def test_a_case_is_transferred_and_the_building_is_told_when_never_who(testing: Testing) -> None:
    compound = small_compound()
    receive(testing.runtime, compound.envelopes)
    case, person = _confirmed_case(testing, compound)
    household = testing.key(r.HOUSEHOLD, buildings=["1"])
    board = testing.ok("GET", "/buildings/1/cases", headers=household)
    assert (board["open_cases"], board["awaiting_transfer"]) == (1, 1)
    assert board["cases"][0]["status"] == "confirmed" and board["cases"][0]["transfer_scheduled_at"] is None
    scheduled = testing.ok("POST", f"/cases/{case}/transfer", json={"scheduled_at": "2022-04-12T14:00"})
    assert scheduled["status"] == "transfer-scheduled"
    assert scheduled["transfer_scheduled_at"] == "2022-04-12T14:00:00+08:00"
    board = testing.ok("GET", "/buildings/1/cases", headers=household)
    assert board["cases"][0]["transfer_scheduled_at"] == "2022-04-12T14:00:00+08:00"
    text = json.dumps(board)
    assert person not in text and compound.residents[person][1] not in text and case not in text
    assert testing.status("GET", "/cases", household) == 403  # resident ids are for staff
    assert testing.status("GET", f"/cases/{case}", testing.key(r.INFORMATION_OFFICER, ["1"])) == 403
    assert (
        testing.status("POST", f"/cases/{case}/transfer", household, json={"scheduled_at": "2022-04-12T15:00"}) == 403
    )
    assert testing.problem("POST", f"/cases/{case}/close", json={"outcome": "recovered"}) == (409, "case-wrong-status")
    moved = testing.ok("POST", f"/cases/{case}/transferred", json={"facility": "central isolation"})
    assert moved["status"] == "transferred" and moved["facility"] == "central isolation"
    assert testing.problem("POST", f"/cases/{case}/transfer", json={"scheduled_at": "2022-04-12T16:00"}) == (
        409,
        "case-wrong-status",
    )
    assert testing.problem("POST", f"/cases/{case}/close", json={"outcome": "gone"})[0] == 422
    closed = testing.ok("POST", f"/cases/{case}/close", json={"outcome": "returned"})
    assert (closed["status"], closed["outcome"]) == ("closed", "returned")
    board = testing.ok("GET", "/buildings/1/cases", headers=household)
    assert (board["open_cases"], board["awaiting_transfer"]) == (0, 0)
    assert testing.ok("GET", "/cases?status=closed")["cases"][0]["case"] == case
    assert testing.problem("POST", "/cases/case-none/transfer", json={"scheduled_at": "2022-04-12T16:00"}) == (
        404,
        "case-unknown",
    )
    assert testing.problem("GET", "/buildings/99/cases") == (404, "building-unknown")


@both_databases
def test_disinfection_photos_are_checked_stored_and_served_to_the_building(testing: Testing, tmp_path: Path) -> None:
    compound = small_compound()
    receive(testing.runtime, compound.envelopes)
    case, _ = _confirmed_case(testing, compound)
    picture = png()
    recorded = testing.ok(
        "POST",
        "/buildings/1/disinfections",
        data={"areas": ["lobby", "lifts", "stairwell"], "case": case, "done_at": "2022-04-12T16:30"},
        files=[
            ("photos", ("lobby.png", picture, "image/png")),
            ("photos", ("lift.jpg", JPEG, "image/jpeg")),
            ("photos", ("stairs.webp", WEBP, "application/octet-stream")),
        ],
    )
    assert recorded["areas"] == ["lobby", "lifts", "stairwell"] and recorded["after_case"]
    assert [p["content_type"] for p in recorded["photos"]] == ["image/png", "image/jpeg", "image/webp"]
    stored = list((tmp_path / "testing" / "photos" / "c1").iterdir())
    assert len(stored) == 3
    household = testing.key(r.HOUSEHOLD, buildings=["1"])
    board = testing.ok("GET", "/buildings/1/disinfections", headers=household)["disinfections"]
    assert board[0]["done_at"] == "2022-04-12T16:30:00+08:00"
    served = testing.client.get(board[0]["photos"][0]["url"], headers=household)
    assert served.status_code == 200 and served.content == picture
    assert served.headers["content-type"] == "image/png"
    other = board[0]["photos"][0]["url"].replace(recorded["disinfection"], "d-0000000000")
    assert testing.client.get(other, headers=household).status_code == 404
    assert testing.client.get(board[0]["photos"][0]["url"][:-1] + "z", headers=household).status_code == 422

    def upload(headers: dict[str, str] | None = None, **overrides: object) -> tuple[int, str]:
        form = {"data": {"areas": ["lobby"]}, "files": [("photos", ("p.png", picture, "image/png"))], **overrides}
        answer = testing.client.post(
            "/compounds/c1/buildings/1/disinfections", headers=headers or testing.staff, **form
        )  # type: ignore[arg-type]
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        return answer.status_code, answer.json()["type"].removeprefix("urn:juwei:problem:")

    # The type comes from the bytes, never from what the sender claims.
    assert upload(files=[("photos", ("x.png", GIF, "image/png"))]) == (415, "photo-type")
    assert upload(files=[("photos", ("x.jpg", b"<script>alert(1)</script>", "image/jpeg"))]) == (415, "photo-type")
    too_big = b"\xff\xd8\xff\xe0" + b"\0" * (5 * 1024 * 1024)
    assert upload(files=[("photos", ("big.jpg", too_big, "image/jpeg"))]) == (413, "photo-too-large")
    assert upload(files=[("photos", ("empty.jpg", b"", "image/jpeg"))])[0] == 422
    assert upload(files=[])[0] == 422
    assert upload(data={})[0] == 422
    assert upload(data={"areas": ["lobby"], "case": "no such case!"})[0] == 422
    assert upload(data={"areas": ["lobby"], "done_at": "yesterday"})[0] == 422
    assert upload(data={"areas": ["lobby"], "done_at": "2030-01-01T00:00"}) == (422, "time-in-future")
    assert upload(files=[("photos", (f"{n}.png", picture, "image/png")) for n in range(11)]) == (422, "too-many-photos")
    assert upload(headers=household) == (403, "forbidden")
    assert upload(headers=testing.key(r.INFORMATION_OFFICER, ["2"])) == (403, "forbidden")
    officer = testing.key(r.INFORMATION_OFFICER, ["1"])
    answer = testing.client.post(
        "/compounds/c1/buildings/1/disinfections",
        headers=officer,
        data={"areas": ["lobby"]},
        files=[("photos", ("p.png", picture, "image/png"))],
    )
    assert answer.status_code == 201, answer.text
    assert len(list((tmp_path / "testing" / "photos" / "c1").iterdir())) == 3  # the same photo is kept once


def test_households_report_antigen_results_for_their_own_members(testing: Testing) -> None:
    compound = small_compound()
    receive(testing.runtime, compound.envelopes)
    testing.ok("POST", "/rounds", json={"round": "a1", "kind": "antigen", "starts_at": "2022-04-13T08:00"})
    homes = compound.households_of("1")
    household, members = next((h, m) for h, m in homes.items() if len(m) >= 2)
    neighbour, theirs = next((h, m) for h, m in homes.items() if h != household)
    key = testing.household_key(household)
    url = f"/rounds/a1/households/{household}/antigen"
    negative = testing.ok("POST", url, headers=key, data={"resident": members[0], "result": "negative"})
    assert negative["pcr_requested"] is False and negative["photo"] is None
    positive = testing.ok(
        "POST",
        url,
        headers=key,
        data={"resident": members[1], "result": "positive"},
        files={"photo": ("cassette.jpg", JPEG, "image/jpeg")},
    )
    assert positive["pcr_requested"] is True and len(positive["photo"]) == 64
    assert testing.problem("POST", url, key, data={"resident": members[0], "result": "positive"}) == (
        409,
        "already-reported",
    )
    assert testing.problem("POST", url, key, data={"resident": theirs[0], "result": "negative"}) == (
        422,
        "not-a-member",
    )
    assert testing.problem("POST", url, key, data={"resident": members[0], "result": "unsure"})[0] == 422
    assert testing.problem("POST", url, key, data={"resident": members[0]})[0] == 422
    photo_type = testing.problem(
        "POST",
        url,
        key,
        data={"resident": members[0], "result": "invalid"},
        files={"photo": ("x.gif", GIF, "image/gif")},
    )
    assert photo_type == (415, "photo-type")
    other = f"/rounds/a1/households/{neighbour}/antigen"
    assert testing.status("POST", other, key, data={"resident": theirs[0], "result": "negative"}) == 403
    assert testing.status("GET", other, key) == 403
    reports = testing.ok("GET", url, headers=key)["members"]
    by_member = {m["resident"]: m for m in reports}
    assert by_member[members[1]]["status"] == "pcr-requested" and by_member[members[0]]["result"] == "negative"
    served = testing.client.get(f"/compounds/c1{url}/{members[1]}/photo", headers=key)
    assert served.status_code == 200 and served.content == JPEG
    assert (
        testing.client.get(
            f"/compounds/c1{url}/{members[1]}/photo", headers=testing.key(r.HOUSEHOLD, ["1"])
        ).status_code
        == 403
    )
    assert testing.status("GET", f"{url}/{members[0]}/photo", key) == 404
    # The officer of the building collects the data of every household in it; staff everywhere.
    officer = testing.key(r.INFORMATION_OFFICER, ["1"])
    assert testing.ok("GET", other, headers=officer)["members"]
    assert testing.status("GET", url, testing.key(r.INFORMATION_OFFICER, ["2"])) == 403
    assert testing.status("GET", url, testing.key(r.SAMPLING_VOLUNTEER)) == 403
    # The positive self-test asks for a PCR sample, taken alone; coverage counts the reports.
    open_points(testing, 1)
    sample = testing.ok("POST", "/rounds/a1/samples", json={"tube": "P1", "residents": [members[1]], "point": "p1"})
    assert sample["kind"] == "individual"
    counts = testing.ok("GET", "/rounds/a1/counts?building=1")["buildings"][0]
    assert counts["tested"] == 2 and counts["awaiting_result"] == 1
    # Households keys are issued by staff or by the building's officer, not by other buildings' officers.
    assert testing.status("POST", f"/households/{household}/keys", testing.key(r.INFORMATION_OFFICER, ["2"])) == 403
    assert testing.status("POST", f"/households/{household}/keys", officer) == 201
    assert testing.status("POST", "/households/nowhere/keys", officer) == 404
