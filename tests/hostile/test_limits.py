"""Limits a hostile or careless client runs into: body size (declared or chunked), spreadsheet size and rows,
photo type and size, page sizes, and the rate limit per API key. Each answer is problem+json."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import roles as r
from juwei.paging import PAGE_MAX
from services.residents import importing
from services.testing.domain import MAX_PHOTO_BYTES
from tests.access.seed import C, png, seed
from tests.access.world import PROBLEM, SERVICES, World

BODY_MAX = 256 * 1024
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    made = World(tmp / "data", {s: f"sqlite:///{tmp / s}.db" for s in SERVICES}, max_body_bytes=BODY_MAX,
                 rate_limit_per_second=0)  # fmt: skip
    seed(made)
    yield made
    made.close()


def problem(answer: Any) -> tuple[int, str]:
    assert answer.headers["content-type"] == PROBLEM, answer.text
    return answer.status_code, answer.json()["type"].removeprefix("urn:juwei:problem:")


def test_a_body_past_the_limit_gets_413_whether_declared_or_chunked(world: World) -> None:
    big = b'{"title": "' + b"x" * BODY_MAX + b'"}'
    declared = world.request("notify", "POST", f"{C}/announcements", world.operator, content=big,
                             headers={"content-type": "application/json"})  # fmt: skip
    assert problem(declared) == (413, "body-too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server only learns the size by reading
        yield b'{"title": "'
        for _ in range(BODY_MAX // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    form = "multipart/form-data; boundary=juwei"
    for service, path, media in (("notify", f"{C}/announcements", "application/json"),
                                 ("residents", f"{C}/import?kind=buildings", "text/csv"),
                                 ("testing", f"{C}/buildings/b1/disinfections", form)):  # fmt: skip
        chunked = world.request(service, "POST", path, world.operator, content=chunks(),
                                headers={"content-type": media})  # fmt: skip
        assert "content-length" not in chunked.request.headers
        assert problem(chunked) == (413, "body-too-large"), (service, chunked.text)
    # Just under the limit is read (and judged on its merits).
    fine = world.request("notify", "POST", f"{C}/announcements", world.operator,
                         json={"title": "x" * 100, "buildings": ["b1"]})  # fmt: skip
    assert fine.status_code == 201, fine.text


def test_spreadsheets_past_their_size_or_row_limit_are_refused_before_anything_is_written(
    world: World, tmp_path: Path
) -> None:
    heads = "building,number,floors,rooms_per_floor,lifts,lift_capacity\n"
    rows = "".join(f"x{n},{n},6,4,1,8\n" for n in range(importing.MAX_ROWS + 1))
    # The import's own limits, with the deployment's body limit raised above them.
    roomy = World(tmp_path / "data", {s: f"sqlite:///{tmp_path / s}.db" for s in SERVICES},
                  max_body_bytes=64 * 1024 * 1024)  # fmt: skip
    try:
        too_many = roomy.request("residents", "POST", f"{C}/import?kind=buildings", roomy.operator,
                                 content=(heads + rows).encode(), headers={"content-type": "text/csv"})  # fmt: skip
        assert problem(too_many) == (422, "too-many-rows")
        huge = (heads + "b1,1,6,4,1,8," + "x" * importing.MAX_BYTES + "\n").encode()
        answer = roomy.request("residents", "POST", f"{C}/import?kind=buildings", roomy.operator, content=huge,
                               headers={"content-type": "text/csv"})  # fmt: skip
        assert problem(answer)[0] == 413
        assert sum(1 for _ in roomy.events("residents")) == 0
    finally:
        roomy.close()


def test_photos_must_be_images_of_at_most_5_mb(world: World) -> None:
    def disinfection(content: bytes, name: str, media: str) -> tuple[int, str]:
        files = [("photos", (name, content, media))]
        return problem(world.request("testing", "POST", f"{C}/buildings/b1/disinfections", world.operator,
                                     data={"areas": ["lobby"]}, files=files))  # fmt: skip

    # The type is read from the bytes, never from the name or the declared type.
    assert disinfection(GIF, "lobby.png", "image/png") == (415, "photo-type")
    assert disinfection(b"<svg onload=alert(1)>", "x.jpg", "image/jpeg") == (415, "photo-type")
    assert disinfection(b"%PDF-1.7 ...", "x.webp", "image/webp") == (415, "photo-type")
    roomy = world.settings.max_body_bytes
    assert roomy < MAX_PHOTO_BYTES  # here the body limit answers first; the photo's own limit is checked below
    assert disinfection(b"\xff\xd8\xff\xe0" + b"\0" * MAX_PHOTO_BYTES, "big.jpg", "image/jpeg") == (
        413,
        "body-too-large",
    )
    # Behind the body limit, the photo limit itself (a body of 5 MB + 1 byte of JPEG).
    from services.testing.photos import PhotoAlbum

    with pytest.raises(Exception) as refused:
        import io

        PhotoAlbum(world.settings.data_dir).keep("c1", io.BytesIO(b"\xff\xd8\xff\xe0" + b"\0" * MAX_PHOTO_BYTES))
    assert getattr(refused.value, "status", None) == 413 and refused.value.code == "photo-too-large"
    antigen = world.request("testing", "POST", f"{C}/rounds/A1/households/h1-0101/antigen", world.operator,
                            data={"resident": "r1", "result": "negative"},
                            files={"photo": ("cassette.png", GIF, "image/png")})  # fmt: skip
    assert problem(antigen) == (415, "photo-type")
    fine = world.request("testing", "POST", f"{C}/buildings/b1/disinfections", world.operator,
                         data={"areas": ["lobby"]}, files=[("photos", ("ok.png", png(), "image/png"))])  # fmt: skip
    assert fine.status_code == 201, fine.text


def test_every_paged_list_takes_at_most_page_max_and_says_so_in_its_schema(world: World) -> None:
    # What a paged list's path names besides the compound: a subscription's deliveries need a subscription.
    registered = world.ok("notify", "POST", "/subscriptions", json={
        "url": "https://dashboard.example.org/juwei", "types": ["juwei.residents.ZoneStatusChanged"],
        "compounds": ["c1"]})  # fmt: skip
    ids = {"{compound}": "c1", "{subscription}": registered["subscription"]}
    checked = []
    for service in SERVICES:
        spec = world.clients[service].app.openapi()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] != "limit" or parameter["in"] != "query":
                        continue
                    assert parameter["schema"].get("maximum") == PAGE_MAX, (service, path, parameter)
                    assert parameter["schema"].get("minimum") == 1, (service, path, parameter)
                    url = path
                    for name, value in ids.items():
                        url = url.replace(name, value)
                    assert "{" not in url, f"{service} {path}: name a value for its path in `ids`"
                    too_big = world.request(service, method.upper(), url, world.operator,
                                            params={"limit": PAGE_MAX + 1})  # fmt: skip
                    assert problem(too_big) == (422, "validation"), (service, path)
                    full = world.request(service, method.upper(), url, world.operator, params={"limit": PAGE_MAX})
                    assert full.status_code == 200, (service, path, full.text)
                    checked.append(f"{service} {path}")
    assert len(checked) >= 5, checked  # the feed of each service and the lists that page
    print(f"\npaged lists checked: {len(checked)}: {checked}")


def test_a_key_past_its_rate_gets_429_with_retry_after_and_others_do_not(tmp_path: Path) -> None:
    limited = World(tmp_path / "data", {s: f"sqlite:///{tmp_path / s}.db" for s in SERVICES},
                    rate_limit_per_second=2, rate_limit_burst=5)  # fmt: skip
    try:
        greedy = limited.key(r.COMMITTEE_STAFF, "c1")
        patient = limited.key(r.COMMITTEE_STAFF, "c1")
        for service in SERVICES:
            path = "/events?limit=1"
            answers = [limited.request(service, "GET", path, greedy).status_code for _ in range(5)]
            assert answers == [200] * 5, (service, answers)
            refused = limited.request(service, "GET", path, greedy)
            assert problem(refused) == (429, "rate-limited"), service
            wait = int(refused.headers["Retry-After"])
            assert 1 <= wait <= 2
            assert limited.request(service, "GET", path, patient).status_code == 200  # each key has its own rate
            assert limited.request(service, "GET", path).status_code == 401  # no key: refused, not counted
        time.sleep(wait)
        assert limited.request("residents", "GET", "/events?limit=1", greedy).status_code == 200
    finally:
        limited.close()
