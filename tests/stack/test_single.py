"""The single-broker stack on a real engine, as an operator meets it: images, an upgrade from an earlier
release with its data, down and up, down --volumes, backup and restore onto a fresh stack.

One stack for the module (compose project ``juwei``), brought up by the first test and left up by each.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from kafka import KafkaConsumer
from sqlalchemy import text

from contracts.testing import disinfection_photo_path
from demo.compound import Size, make_compound
from juwei import envfile
from juwei.images import VERSION
from juwei.migrate import alembic_config
from juwei.service import load_definition
from juwei.signed_links import signed_query
from tests.conftest import ROOT
from tests.stack.checks import every_event_everywhere, kafka_event_ids, read_models
from tests.stack.conftest import (
    CONSOLE_PORT,
    HTTP_PORTS,
    SERVICES,
    DockerEngine,
    StackUnderTest,
    juwei,
    record,
    taken_down,
    wait_for,
)

# The last commit before the deploy path was built: an operator's "earlier release".
EARLIER = "408e4de488c935dbaac9856bb67e902bb4281258"
C = "/compounds/c1"


# Minutes, not the suite's default of five; the test alone: its fixtures (images built, stacks started) run
# under their own commands' limits, and a slow image build once failed the first test that needed it.
pytestmark = pytest.mark.timeout(1800, func_only=True)


@pytest.fixture(scope="module")
def stack(
    docker_engine: DockerEngine, stack_images: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackUnderTest]:
    with taken_down(StackUnderTest(docker_engine, tmp_path_factory.mktemp("single"), profile="single")) as made:
        yield made


def _import_compound(stack: StackUnderTest, scale: float = 0.04) -> None:
    """Buildings and residents (realistic names, mobiles, ID numbers, needs) through the import API."""
    compound = make_compound("c1", Size.at(scale), seed=7, today=date(2022, 4, 10))
    with stack.http("residents") as client:
        for kind, sheet in (("buildings", compound.buildings_csv()), ("residents", compound.residents_csv())):
            done = client.post(f"{C}/import", params={"kind": kind}, content=sheet,
                               headers={"Content-Type": "text/csv"})  # fmt: skip
            assert done.status_code in (200, 201), done.text


def _script(service: str) -> ScriptDirectory:
    definition = load_definition(service)
    return ScriptDirectory.from_config(alembic_config([definition.migrations] if definition.migrations else []))


def _at_heads(service: str, versions: set[str]) -> bool:
    """Whether every head of the service's migrations is applied (alembic keeps only the newest of a branch that
    another depends on, so the table may name fewer revisions than there are heads)."""
    script = _script(service)
    applied = {revision.revision for revision in script.iterate_revisions(tuple(versions), "base")}
    return set(script.get_heads()) <= applied


def _stored_events(stack: StackUnderTest, service: str) -> list[tuple[Any, ...]]:
    rows = stack.rows(service, text("SELECT position, id, type, stream_id, version, data FROM juwei_events"))
    return sorted(tuple(row) for row in rows)


def _alembic(stack: StackUnderTest, service: str) -> set[str]:
    return {row[0] for row in stack.rows(service, text("SELECT version_num FROM alembic_version"))}


def _settled(stack: StackUnderTest) -> bool:
    statuses = []
    for service in SERVICES:
        with stack.http(service) as client:
            statuses.append(client.get("/status").json())
    return all(status["relay"]["backlog"] == 0 for status in statuses) and every_event_everywhere(stack)[0]


def test_the_images_come_from_packages_run_as_users_and_say_what_they_are(
    docker_engine: DockerEngine, stack_images: dict[str, Any]
) -> None:
    assert set(stack_images) == {"service", "kafka", "postgres", "prometheus"}
    for part, image in stack_images.items():
        assert image["present"], part
        assert image["user"] and image["user"].split(":")[0] not in ("", "0", "root"), part
        assert image["version"] == VERSION and image["revision"] not in (None, "", "unknown"), part
        assert image["created"] and image["created"].endswith("Z"), part
    described = json.loads(docker_engine.docker("image", "inspect", stack_images["service"]["image"]).stdout)[0]
    # The root is the debootstrap root filesystem made here: no image came from a registry.
    assert described["Config"]["Labels"]["org.opencontainers.image.base.name"].startswith("juwei/rootfs:")
    repositories = docker_engine.docker("image", "ls", "--format", "{{.Repository}}").stdout.split()
    assert repositories and all(name.startswith("juwei/") or name == "<none>" for name in repositories)


def test_an_earlier_release_is_upgraded_in_place_with_its_data(
    stack: StackUnderTest, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    source = tmp_path / "earlier"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", EARLIER], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    earlier = "juwei/service:earlier"
    built = juwei(docker_engine, "images", "build", "service", "--source", str(source), "--tag", earlier,
                  "--revision", EARLIER)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]

    stack.set(JUWEI_IMAGE=earlier)
    # The earlier commit predates `juwei topics`: the topic job runs from today's image, as the new release's
    # compose file has it; the four services run the earlier image, and their databases are what upgrades.
    plain = stack.override.read_text()
    # It predates the console too: no console container, and PostgreSQL's first start makes the four services'
    # databases only (the override continues the postgres entry of the plain one). The upgrade's one-shot
    # `databases` job must add the console's to the volume the earlier release made.
    four = "JUWEI_DATABASES: residents supplies testing notify"
    earlier_override = (
        f"{plain}    environment:\n      {four}\n"
        f"  databases:\n    environment:\n      {four}\n"
        "  console:\n    profiles: [not-in-the-earlier-release]\n"
        f"  kafka-topics:\n    image: juwei/service:{VERSION}\n"
    )
    stack.override.write_text(earlier_override)
    record("up --wait seconds, first start (empty volumes)", round(stack.up(), 1))
    assert "console" not in stack.scalar("residents", "SELECT string_agg(datname, ',') FROM pg_database")
    _import_compound(stack)
    wait_for(lambda: _settled(stack), 180, "the imported compound to reach every service")
    before = stack.feeds()
    assert len(before["residents"]) > 100  # the others only took it in (their read models)
    stored = {service: _stored_events(stack, service) for service in SERVICES}
    earlier_versions = {service: _alembic(stack, service) for service in SERVICES}
    # The earlier release's schema is behind today's: the upgrade has migrations to apply.
    assert not all(_at_heads(service, earlier_versions[service]) for service in SERVICES)

    stack.set(JUWEI_IMAGE=f"juwei/service:{VERSION}")
    stack.override.write_text(plain)
    record("up --wait seconds, upgrade (containers recreated)", round(stack.up(), 1))
    for service in SERVICES:
        labels = json.loads(docker_engine.docker("inspect", stack.container(service)).stdout)[0]["Config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] != EARLIER  # the current release runs
        assert _at_heads(service, _alembic(stack, service)), f"{service} did not migrate to the current heads"
    after = stack.feeds()
    for service in SERVICES:
        # Stored events never change; the feed serves the old ones as today's versions (upcast on read).
        assert _stored_events(stack, service) == stored[service], f"{service} lost or changed stored events"
        ids = [event["id"] for event in after[service][: len(before[service])]]
        assert ids == [event["id"] for event in before[service]], f"{service}'s feed lost events"
    print(f"\nalembic versions before the upgrade: {earlier_versions}")

    # Each service answers through its published port, and its docs need no internet.
    for service, port in HTTP_PORTS.items():
        with stack.http(service) as client:
            assert client.get("/readyz").status_code == 200, service
            page = client.get("/docs").text
            assert "/static/swagger-ui/swagger-ui-bundle.js" in page and "https://" not in page
            assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
            assert client.base_url.port == port

    # The console came with the upgrade: its database was added to the old volume, its pages need no internet.
    assert stack.scalar("console", "SELECT count(*) FROM console_alembic_version") == 1
    signin = httpx.get(f"http://127.0.0.1:{CONSOLE_PORT}/signin", timeout=30)
    assert signin.status_code == 200 and "https://" not in signin.text, signin.text[:500]
    assert httpx.get(f"http://127.0.0.1:{CONSOLE_PORT}/healthz", timeout=30).json()["status"] == "ok"

    # A new write after the upgrade reaches Kafka's external listener (as any outside client reads it).
    with stack.http("residents") as client:
        done = client.post(f"{C}/buildings", json={"building": "99", "number": "99", "floors": 3,
                                                    "rooms_per_floor": 2, "lifts": 1, "lift_capacity": 8})  # fmt: skip
        assert done.status_code == 201, done.text
    newest = stack.feed("residents")[-1]
    assert newest["subject"].endswith("99") or "99" in json.dumps(newest["data"])
    found = wait_for(lambda: newest["id"] in kafka_event_ids(stack, "residents"), 60, "the event on Kafka")
    print(f"event {newest['id']} read from Kafka's external listener after {found:.1f} s")


def test_down_then_up_keeps_every_event_and_read_model_and_down_volumes_removes_them(
    stack: StackUnderTest, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    stack.up()  # up already (the tests before): a no-op
    wait_for(lambda: _settled(stack), 180, "the stack to settle")
    feeds, models = stack.feeds(), read_models(stack, tmp_path)
    assert sum(len(events) for events in feeds.values()) > 100
    stack.down()
    assert docker_engine.docker("ps", "--all", "--quiet").stdout.split() == []  # the containers are gone
    record("up --wait seconds, restart (volumes kept)", round(stack.up(), 1))
    assert stack.feeds() == feeds
    assert read_models(stack, tmp_path) == models
    time.sleep(10)  # idle: the start-up work is done
    usage = docker_engine.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").stdout
    record("idle memory MiB per container (single profile)", _memory(usage))

    stack.down("--volumes")
    volumes = docker_engine.docker("volume", "ls", "--quiet", "--filter", "label=com.docker.compose.project=juwei")
    assert volumes.stdout.split() == []
    stack.up()
    assert all(events == [] for events in stack.feeds().values())


def _memory(stats: str) -> dict[str, float]:
    """`docker stats` memory column ("123.4MiB / 23.4GiB") per container, in MiB."""
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 2**20}
    found = {}
    for line in stats.splitlines():
        name, used = line.split()[0], line.split()[1]
        unit = next(u for u in units if used.endswith(u))
        found[name] = round(float(used.removesuffix(unit)) * units[unit], 1)
    found["total"] = round(sum(found.values()), 1)
    return found


def _demo(stack: StackUnderTest, scale: float, gateway: str, **popen: Any) -> subprocess.Popen[str]:
    """`juwei demo` against the stack from this host; notify reaches its group sinks here through ``gateway``."""
    return subprocess.Popen(
        [*_juwei_command(), "demo", "--key", stack.key, "--scale", str(scale), "--kafka", stack.kafka,
         "--sink-host", "0.0.0.0", "--sink-advertised", gateway, "--role-keys", "operator",
         *[f"--base-url-{s}={stack.url(s)}" for s in SERVICES]],
        cwd=ROOT, text=True, env=_env(stack), **popen,
    )  # fmt: skip


def _juwei_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "juwei.cli"]


def _env(stack: StackUnderTest) -> dict[str, str]:
    import os

    return {**os.environ, **stack.engine.environment, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}


def gateway(docker_engine: DockerEngine) -> str:
    """This host's address on the stack's network (how a container reaches a server on the host)."""
    return docker_engine.docker(
        "network", "inspect", "juwei_default", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"
    ).stdout.strip()


CONSOLE_PASSWORD = "stairwell-15-02"


def _console_overview(stack: StackUnderTest) -> httpx.Response:
    """Sign in to the stack's console as the staff account `wang` (as a browser would) and open the overview."""
    with httpx.Client(base_url=f"http://127.0.0.1:{CONSOLE_PORT}", timeout=60) as browser:
        form = browser.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert form.status_code == 200 and csrf, form.text[:500]
        signed = browser.post("/signin", data={"username": "wang", "password": CONSOLE_PASSWORD, "csrf": csrf[1]})
        assert signed.status_code == 303, signed.text[:500]
        return browser.get(signed.headers["location"], headers={"Accept-Language": "zh-CN"})


def _signed_photo_link(stack: StackUnderTest) -> str:
    """A link to the demo's disinfection photo as notify signs it, under the stack's JUWEI_LINK_SECRET."""
    first = "FROM tst_disinfections ORDER BY done_at, disinfection LIMIT 1"
    record = stack.scalar("testing", f"SELECT disinfection {first}")
    photos = json.loads(stack.scalar("testing", f"SELECT photos {first}"))
    path = disinfection_photo_path("c1", str(record).split(":", 1)[-1], photos[0]["photo"])
    return f"{path}?{signed_query(stack.values['JUWEI_LINK_SECRET'], path, time.time(), 3600)}"


def _opened_with_no_key(stack: StackUnderTest, link: str) -> int:
    with httpx.Client(base_url=stack.url("testing"), timeout=60) as phone:
        opened = phone.get(link)
    assert opened.status_code != 200 or opened.headers["content-type"].startswith("image/")
    return opened.status_code


def test_a_backup_restores_a_fresh_stack_with_the_same_feeds_and_read_models(
    stack: StackUnderTest, docker_engine: DockerEngine, tmp_path: Path
) -> None:
    stack.up()  # up already (the tests before): a no-op
    demo = _demo(stack, 0.05, gateway(docker_engine), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = demo.communicate(timeout=900)
    assert demo.returncode == 0, output[-4000:]
    wait_for(lambda: _settled(stack), 180, "the demo's day to settle")
    # A staff member of the register gets a console account from the admin container, and signs in.
    with stack.http("residents") as client:
        registered = client.put(f"{C}/staff/s-wang/buildings", json={"buildings": []})
        assert registered.status_code in (200, 201, 204), registered.text
    made = stack.juwei("admin", *stack.stack_options(), "console", "add-staff", "--compound", "c1",
                       "--staff", "s-wang", "--username", "wang", "--password", CONSOLE_PASSWORD)  # fmt: skip
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    overview = _console_overview(stack)
    assert overview.status_code == 200 and "总览" in overview.text, overview.text[:1000]

    wait_for(lambda: _settled(stack), 180, "the staff member's registration to settle")
    feeds, models = stack.feeds(), read_models(stack, tmp_path / "scratch")
    photos = stack.engine.docker("exec", stack.container("testing"), "find", "/var/lib/juwei", "-type", "f").stdout
    assert "photos" in photos  # the disinfection photo of the demo's case
    link = _signed_photo_link(stack)
    assert _opened_with_no_key(stack, link) == 200  # a resident taps the link in the group: no key

    started = time.monotonic()
    done = stack.juwei("backup", *stack.stack_options(), "--output", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    record("backup seconds (demo compound at scale 0.05)", round(time.monotonic() - started, 1))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert set(manifest["databases"]) == {*SERVICES, "console"}
    assert manifest["heads"]["console"] == 0  # accounts and sessions, no event log
    assert (tmp_path / "backup" / "vault-keys.env").stat().st_mode & 0o077 == 0

    stack.down("--volumes")
    # A fresh stack: new volumes, and an env file whose vault keys are not the backup's.
    fresh_keys = {name: envfile.new_secret(name) for name in (f"JUWEI_{s.upper()}_VAULT_KEY" for s in SERVICES)}
    fresh_keys["JUWEI_LINK_SECRET"] = envfile.new_secret("JUWEI_LINK_SECRET")  # links posted before must still open
    original_keys = {name: stack.values[name] for name in fresh_keys}
    stack.set(**fresh_keys)
    stack.up()
    started = time.monotonic()
    done = stack.juwei("restore", *stack.stack_options(), str(tmp_path / "backup"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    record("restore seconds (onto a fresh stack)", round(time.monotonic() - started, 1))
    stack.dispose()
    assert {name: stack.values[name] for name in original_keys} == original_keys  # the backup's keys are back
    # The console's accounts came back with their sealed keys (the console's secret travels with the backup).
    assert _console_overview(stack).status_code == 200
    assert stack.feeds() == feeds
    assert read_models(stack, tmp_path / "scratch") == models
    restored_photos = stack.engine.docker("exec", stack.container("testing"), "find", "/var/lib/juwei", "-type", "f")
    assert restored_photos.stdout == photos
    assert _opened_with_no_key(stack, link) == 200  # the photo and the link's secret came back with the backup
    # Every event went to the fresh Kafka again, and the consumers' inboxes took none twice.
    wait_for(lambda: _settled(stack), 300, "the republished events to settle")
    for service in SERVICES:
        assert set(kafka_event_ids(stack, service)) >= {event["id"] for event in feeds[service]}
    # The restored stack works: a new event flows to the other services.
    with stack.http("residents") as client:
        done = client.post(f"{C}/buildings", json={"building": "77", "number": "77", "floors": 3,
                                                    "rooms_per_floor": 2, "lifts": 1, "lift_capacity": 8})  # fmt: skip
        assert done.status_code == 201, done.text
    wait_for(lambda: _settled(stack), 120, "the new event to reach every consumer")


def test_an_event_can_be_read_by_an_outside_client_while_the_stack_runs(stack: StackUnderTest) -> None:
    """The external listener advertises the host's address: a plain Kafka client on this host can join a group."""
    stack.up()
    consumer = KafkaConsumer("juwei.residents", bootstrap_servers=stack.kafka.split(","), group_id="outside-reader",
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)  # fmt: skip
    try:
        first = next(iter(consumer))
    finally:
        consumer.close()
    assert dict(first.headers)["ce_type"].startswith(b"juwei.residents.")
