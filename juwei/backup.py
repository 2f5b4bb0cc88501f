"""Backup and restore of the compose stack: ``juwei backup`` and ``juwei restore``.

A backup is a folder::

    manifest.json       when, which images, each database's log head, the sha256 and size of every file
    <database>.dump     ``pg_dump --format=custom`` of each service's database (one consistent snapshot each)
    files-<service>.tar what a service keeps under its data folder (testing's disinfection photos)
    vault-keys.env      the vault keys the personal data is sealed under, and the health key (owner-readable only)

The databases are the source of truth (events, read models, relay checkpoint and consumer inbox change in
the same transactions); Kafka needs no backup. A restore recreates each database from its dump, puts the
backup's vault keys into the env file (keeping the old file beside it), and moves every relay's checkpoint
back to 0: the relays publish every event again, so a fresh Kafka gets the whole history, and the consumers'
inboxes (restored with them) skip what they had already handled. A restore onto a stack of a newer Juwei
migrates on start and replays the read models.

The databases are the compose file's: every ``JUWEI_<NAME>_DB_PASSWORD`` of the env file names one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from juwei import envfile
from juwei.images import VERSION
from juwei.stack import Container, Stack, StackError

FORMAT = "juwei-backup/1"
_DATABASE = re.compile(r"JUWEI_([A-Z0-9]+)_DB_PASSWORD")
SERVICE_DATA = "/var/lib/juwei"
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup could not be written, or a restore could not trust or apply one."""


def databases(env: dict[str, str]) -> list[str]:
    """The services' databases: one per ``JUWEI_<NAME>_DB_PASSWORD`` of the env file."""
    return sorted(found.group(1).lower() for name in env if (found := _DATABASE.fullmatch(name)))


def _is_key(name: str) -> bool:
    """A key personal or health data is sealed under (or handed over with): it travels with a backup."""
    # The console's secret seals the keys it holds for people: without it, its accounts open nothing.
    return name.endswith("_VAULT_KEY") or name in ("JUWEI_HEALTH_KEY", "JUWEI_CONSOLE_SECRET", "JUWEI_LINK_SECRET")


def _sha256(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


class StackBackup:
    """Backup and restore through ``docker exec`` into the stack's containers (PostgreSQL is not published)."""

    def __init__(self, stack: Stack, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> None:
        self.stack = stack
        self.say = say
        self.docker_cmd = [str(part) for part in stack.docker.client_config.docker_cmd]
        self.env: dict[str, str] = {}
        for path in stack.env_files:
            self.env.update(envfile.read(path))

    # ------------------------------------------------------------ containers

    def _containers(self) -> list[Container]:
        try:
            return self.stack.ps()
        except StackError as exc:
            raise BackupError(str(exc)) from None

    def _postgres(self) -> str:
        running = [c for c in self._containers() if c.service == "postgres" and c.state == "running"]
        if not running:
            raise BackupError("the stack's PostgreSQL is not running: `juwei up` first")
        return running[0].name

    def _exec(self, container: str, *command: str, stdin: Path | None = None, stdout: Path | None = None) -> str:
        """Run a command in a container; stdin/stdout may be files (dumps stream, never held in memory)."""
        call = [*self.docker_cmd, "exec", *(["-i"] if stdin else []), container, *command]
        with (
            stdin.open("rb") if stdin else open("/dev/null", "rb") as source,
            stdout.open("wb") if stdout else open("/dev/null", "wb") as sink,
        ):
            done = subprocess.run(
                call, stdin=source, stdout=sink if stdout else subprocess.PIPE, stderr=subprocess.PIPE, timeout=3600
            )
        if done.returncode != 0:
            raise BackupError(f"`{' '.join(command[:3])} …` in {container} failed: {done.stderr.decode().strip()}")
        return "" if stdout else done.stdout.decode()

    def _sql(self, container: str, database: str, query: str) -> str:
        return self._exec(container, "psql", "-U", "postgres", "-d", database, "-Atc", query).strip()

    def _holds_events(self, container: str, database: str) -> bool:
        # The console's database holds accounts and sessions, no event log.
        return self._sql(container, database, "SELECT to_regclass('juwei_events') IS NOT NULL") == "t"

    def _head(self, container: str, database: str) -> int:
        """The last event's position in ``database`` (0: none, or a database without an event log)."""
        if not self._holds_events(container, database):
            return 0
        return int(self._sql(container, database, "SELECT coalesce(max(position), 0) FROM juwei_events") or 0)

    def _service_containers(self) -> dict[str, str]:
        """Running Juwei service containers (those that mount the services' data folder): service → container."""
        found = {}
        docker = self.stack.docker
        for container in self._containers():
            if container.state != "running" or container.one_shot:
                continue
            mounts = docker.container.inspect(container.name).mounts or []
            if any(mount.destination == SERVICE_DATA for mount in mounts):
                found[container.service] = container.name
        return found

    # ------------------------------------------------------------ backup

    def backup(self, folder: Path) -> dict[str, Any]:
        started = time.monotonic()
        if folder.exists() and any(folder.iterdir()):
            raise BackupError(f"{folder} is not empty: choose a new folder for each backup")
        folder.mkdir(parents=True, exist_ok=True)
        postgres = self._postgres()
        names = databases(self.env)
        if not names:
            raise BackupError("the env file names no database (no JUWEI_<NAME>_DB_PASSWORD)")
        files: dict[str, dict[str, Any]] = {}
        heads: dict[str, int] = {}
        for name in names:
            heads[name] = self._head(postgres, name)
            target = folder / f"{name}.dump"
            self._exec(postgres, "pg_dump", "-U", "postgres", "--format=custom", name, stdout=target)
            files[target.name] = _sha256(target)
            self.say(f"{name}: {heads[name]} events, dump {files[target.name]['bytes'] >> 10} KiB")
        for service, container in sorted(self._service_containers().items()):
            target = folder / f"files-{service}.tar"
            self._exec(container, "tar", "-C", SERVICE_DATA, "-cf", "-", ".", stdout=target)
            files[target.name] = _sha256(target)
        keys = folder / "vault-keys.env"
        keys.touch(mode=0o600)
        keys.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.env.items()) if _is_key(k)))
        files[keys.name] = _sha256(keys)
        manifest = {
            "format": FORMAT,
            "juwei": VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "databases": names,
            "heads": heads,
            "images": self.stack.images(),
            "files": files,
            "seconds": round(time.monotonic() - started, 1),
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return manifest

    # ------------------------------------------------------------ restore

    def verify(self, folder: Path) -> dict[str, Any]:
        """The backup's manifest, once every file matches its checksum."""
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            raise BackupError(f"{folder} has no readable manifest.json: not a Juwei backup") from None
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{folder} is not a {FORMAT} backup")
        for name, wanted in manifest["files"].items():
            path = folder / name
            if not path.is_file() or _sha256(path) != wanted:
                raise BackupError(f"{name} in {folder} is missing or does not match its checksum: nothing restored")
        return manifest

    def restore(self, folder: Path) -> dict[str, Any]:
        started = time.monotonic()
        manifest = self.verify(folder)
        self._adopt_vault_keys(folder / "vault-keys.env")
        try:
            self.stack.up(wait=True, services=["postgres"])
        except StackError as exc:
            raise BackupError(f"PostgreSQL did not start: {exc}") from None
        postgres = self._postgres()
        services = self._juwei_services()
        if services:
            self.say(f"stopping {', '.join(services)}")
            self.stack.docker.compose.stop(services)
        for name in manifest["databases"]:
            self._exec(postgres, "dropdb", "-U", "postgres", "--if-exists", "--force", name)
            # The image's init script makes every missing database and role again, with today's passwords.
            self._exec(postgres, "juwei-init-databases")
            self._exec(postgres, "pg_restore", "-U", "postgres", "--dbname", name, "--no-owner", "--role", name,
                       "--exit-on-error", stdin=folder / f"{name}.dump")  # fmt: skip
            if self._holds_events(postgres, name):
                # Publish every event again: a fresh Kafka gets the whole history; inboxes skip what they hold.
                self._sql(postgres, name, "UPDATE juwei_checkpoints SET position = 0 WHERE name LIKE 'relay:%'")
            head = self._head(postgres, name)
            if head != manifest["heads"][name]:
                raise BackupError(f"{name}: restored {head} events, the backup holds {manifest['heads'][name]}")
            self.say(f"{name}: restored, {head} events")
        try:
            containers = self.stack.up(wait=True)
        except StackError as exc:
            raise BackupError(f"the stack did not come back healthy: {exc}") from None
        running = self._service_containers()
        for name in manifest["files"]:
            service = name.removeprefix("files-").removesuffix(".tar")
            if name.startswith("files-") and service in running:
                self._exec(running[service], "tar", "-C", SERVICE_DATA, "-xf", "-", stdin=folder / name)
        replayed = []
        if manifest.get("juwei") != VERSION:
            # Another release wrote the read models: rebuild them from the restored events.
            for service, container in sorted(running.items()):
                self._exec(container, "juwei", "replay", service)
                replayed.append(service)
        return {
            "databases": manifest["databases"],
            "heads": manifest["heads"],
            "replayed": replayed,
            "containers": len(containers),
            "seconds": round(time.monotonic() - started, 1),
        }

    def _juwei_services(self) -> list[str]:
        """The compose services that run Juwei (they mount its data folder), whether running or not."""
        config = self.stack.docker.compose.config(return_json=True)
        return sorted(
            name
            for name, service in config.get("services", {}).items()
            if any(str(volume.get("target")) == SERVICE_DATA for volume in service.get("volumes", []) or [])
            or (service.get("command") or [None])[0] == "serve"
        )

    def _adopt_vault_keys(self, keys_file: Path) -> None:
        """Put the backup's vault keys into the env file (the old file kept beside it) where they differ."""
        wanted = envfile.read(keys_file)
        target = self.stack.env_files[-1]
        current = envfile.read(target)
        if all(current.get(name) == value for name, value in wanted.items()):
            return
        kept = target.with_name(f"{target.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        shutil.copy2(target, kept)
        lines = []
        for raw in target.read_text().splitlines():
            name = raw.partition("=")[0].strip()
            if name in wanted and not raw.lstrip().startswith("#"):
                raw = f"{name}={wanted.pop(name)}"
            lines.append(raw)
        lines += [f"{name}={value}" for name, value in wanted.items()]
        target.write_text("\n".join(lines) + "\n")
        self.env.update(envfile.read(target))
        self.say(f"the backup's vault keys are now in {target} (the previous file is {kept.name})")
