"""Every image the compose stack runs, built from package registries alone: ``juwei images build``.

No image comes from a registry. The root is the operator's own Debian 12 image (``JUWEI_BASE_IMAGE``, e.g.
from their private registry) or, without one or when it can't be pulled, a root filesystem that debootstrap
makes from the configured Debian mirror (kept under the data folder and reused). On it:

    juwei/base       the root + the mirror in sources.list, an extra CA bundle trusted, slim dpkg settings
    juwei/service    the four services: a venv of exactly the packages of deploy/requirements.lock (hashes
                     checked) and Juwei's own wheel, built here from the source tree
    juwei/kafka      Apache Kafka from the Maven artifacts of deploy/kafka/pom.xml, on Debian's Java 17
    juwei/postgres   Debian's PostgreSQL 15, one database and role per service on the first start
    juwei/prometheus Debian's Prometheus, scraping every service with Juwei's alert rules (profile `monitoring`)

Mirrors (Debian, PyPI, Maven) and the CA bundle of a proxy that intercepts TLS are settings. Builds use the
classic builder on the host network (no buildx; a build's downloads need the host's DNS and proxy), from a
context staged under the data folder with only what each Dockerfile copies.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from python_on_whales import DockerClient, DockerException
from python_on_whales.utils import stream_stdout_and_stderr

from juwei.engine import Engine
from juwei.progress import Report

REPOSITORY = Path(__file__).resolve().parents[1]
DEPLOY = REPOSITORY / "deploy"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The packages of the root filesystem: Python for the services and the entrypoints, and the CA store.
ROOT_PACKAGES = ("python3", "python3-venv", "ca-certificates")
OCI = "org.opencontainers.image"


def juwei_version() -> str:
    try:
        return importlib.metadata.version("juwei")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


VERSION = juwei_version()


class BuildSettings(BaseSettings):
    """Where the images' packages come from and what the images are called (also read from deploy/.env)."""

    model_config = SettingsConfigDict(env_prefix="JUWEI_", extra="ignore")

    data_dir: Path = Field(Path(".local"), description="The debootstrap root filesystem and build logs go here")
    base_image: str | None = Field(None, description="Root image (a Debian 12); unset: debootstrap")
    debian_mirror: str = "http://deb.debian.org/debian"
    debian_security_mirror: str = "http://deb.debian.org/debian-security"
    debian_suite: str = "bookworm"
    pypi_index: str = Field(default_factory=lambda: os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple")
    maven_repository: str = "https://repo.maven.apache.org/maven2"
    # A PEM file (any number of certificates) the images trust besides Debian's; "none" for none.
    ca_bundle: str | None = None
    image: str = f"juwei/service:{VERSION}"
    kafka_image: str = f"juwei/kafka:{VERSION}"
    postgres_image: str = f"juwei/postgres:{VERSION}"
    prometheus_image: str = f"juwei/prometheus:{VERSION}"

    def extra_ca(self) -> Path | None:
        """The CA bundle to trust: the setting, else this host's own bundle (a proxy's CA is usually in it)."""
        if self.ca_bundle is not None:
            return None if self.ca_bundle.strip().lower() in ("", "none") else Path(self.ca_bundle)
        fallback = os.environ.get("SSL_CERT_FILE") or str(SYSTEM_CA_BUNDLE)
        return Path(fallback) if Path(fallback).is_file() else None

    @property
    def base_tag(self) -> str:
        return f"juwei/base:{VERSION}"

    def names(self) -> dict[str, str]:
        """Image of each part of the stack: the names deploy/compose.yaml runs."""
        return {
            "service": self.image,
            "kafka": self.kafka_image,
            "postgres": self.postgres_image,
            "prometheus": self.prometheus_image,
        }


def build_steps(settings: BuildSettings, parts: Sequence[str], tag: str | None = None) -> list[str]:
    """What ``ImageBuilder.build`` makes, in order: the root filesystem, juwei/base, then each part's image
    (the progress bar counts these)."""
    return ["root filesystem", settings.base_tag, *(tag or settings.names()[part] for part in parts)]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step and where its log is."""


@dataclass(frozen=True)
class BuiltImage:
    part: str
    name: str
    image_id: str
    size_bytes: int
    seconds: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """One image: its Dockerfile's folder, the files its context needs, and its build arguments."""

    part: str
    title: str
    folder: Path
    files: tuple[str, ...]
    build_args: Callable[[BuildSettings], dict[str, str]]


RECIPES: dict[str, Recipe] = {
    "service": Recipe(
        "service",
        "Juwei services",
        DEPLOY,
        ("Dockerfile", "requirements.lock"),
        lambda s: {"PIP_INDEX_URL": s.pypi_index},
    ),
    "kafka": Recipe(
        "kafka",
        "Apache Kafka (KRaft) for Juwei",
        DEPLOY / "kafka",
        ("Dockerfile", "pom.xml", "entrypoint.py", "log4j2.yaml", "tools-log4j2.yaml", "bin"),
        lambda s: {"MAVEN_REPOSITORY": s.maven_repository},
    ),
    "postgres": Recipe(
        "postgres",
        "PostgreSQL for Juwei",
        DEPLOY / "postgres",
        ("Dockerfile", "entrypoint.py", "init-databases.sh"),
        lambda s: {},
    ),
    "prometheus": Recipe(
        "prometheus",
        "Prometheus for Juwei",
        DEPLOY / "prometheus",
        ("Dockerfile", "prometheus.yml", "alerts.yml"),
        lambda s: {},
    ),
}
# Every image, in the order `juwei images build` makes them by default.
PARTS = tuple(RECIPES)
BASE_RECIPE = Recipe(
    "base",
    "Juwei base",
    DEPLOY / "base",
    ("Dockerfile", "dpkg-slim.cfg", "policy-rc.d"),
    lambda s: {
        "DEBIAN_MIRROR": s.debian_mirror,
        "DEBIAN_SECURITY_MIRROR": s.debian_security_mirror,
        "DEBIAN_SUITE": s.debian_suite,
    },
)


def revision_of(source: Path) -> str:
    """The commit a source tree is at ("-dirty" with uncommitted changes), or "unknown" outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


class ImageBuilder:
    """Builds the stack's images on one engine, reporting each step through ``say``."""

    def __init__(
        self,
        engine: Engine,
        settings: BuildSettings | None = None,
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    ) -> None:
        self.engine = engine
        self.settings = settings or BuildSettings()
        self.docker: DockerClient = engine.client()
        self.say = say
        self.work = (self.settings.data_dir / "images").resolve()
        self.logs = self.work / "logs"

    # ------------------------------------------------------------ the whole set

    def build(
        self,
        parts: Sequence[str] = PARTS,
        source: Path = REPOSITORY,
        tag: str | None = None,
        revision: str | None = None,
        report: Report | None = None,
    ) -> list[BuiltImage]:
        """Build the root (if needed), juwei/base, then each part; ``source`` is the tree the service comes from.

        ``report`` is told (steps done, steps) after each of ``build_steps``.
        """
        unknown = [part for part in parts if part not in RECIPES]
        if unknown:
            raise ImageBuildError(f"no image called {', '.join(unknown)}: choose from {', '.join(RECIPES)}")
        if tag is not None and len(parts) != 1:
            raise ImageBuildError("--tag names one image: build one part with it")
        self.logs.mkdir(parents=True, exist_ok=True)
        labels = {
            f"{OCI}.version": VERSION,
            f"{OCI}.revision": revision or revision_of(source),
            f"{OCI}.created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            f"{OCI}.vendor": "Juwei",
        }
        steps = len(build_steps(self.settings, parts, tag))
        tell: Report = report or (lambda _done, _total: None)
        tell(0, steps)
        root = self.root_image()
        tell(1, steps)
        base = self._build(BASE_RECIPE, self.settings.base_tag, {"ROOT_IMAGE": root}, {f"{OCI}.base.name": root})
        tell(2, steps)
        built = []
        for part in parts:
            recipe = RECIPES[part]
            name = tag or self.settings.names()[part]
            extra = {"BASE_IMAGE": base.name}
            built.append(
                self._build(recipe, name, extra, {**labels, f"{OCI}.title": recipe.title, f"{OCI}.base.name": root},
                            source=source)
            )  # fmt: skip
            tell(2 + len(built), steps)
        return built

    # ------------------------------------------------------------ the root filesystem

    def root_image(self) -> str:
        """JUWEI_BASE_IMAGE when it is here or can be pulled, else the debootstrap root (made once, then reused)."""
        wanted = self.settings.base_image
        if wanted:
            if self.docker.image.exists(wanted):
                return wanted
            self.say(f"pulling the base image {wanted}")
            try:
                self.docker.image.pull(wanted, quiet=True)
                return wanted
            except DockerException as exc:
                reason = (exc.stderr or "").strip().splitlines()
                self.say(f"could not pull {wanted} ({reason[-1] if reason else 'no answer'}): using debootstrap")
        return self.debootstrap_image()

    def debootstrap_image(self) -> str:
        s = self.settings
        recipe = f"{s.debian_suite} {s.debian_mirror} {' '.join(ROOT_PACKAGES)}"
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
        tag = f"juwei/rootfs:{s.debian_suite}-{digest}"
        if self.docker.image.exists(tag):
            return tag
        tarball = self.work / f"rootfs-{s.debian_suite}-{digest}.tar"
        if not tarball.is_file():
            self._debootstrap(tarball)
        self.say(f"importing {tarball.name} as {tag}")
        self.docker.image.import_(tarball, tag, changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
        return tag

    def _debootstrap(self, tarball: Path) -> None:
        s = self.settings
        if shutil.which("debootstrap") is None:
            raise ImageBuildError(
                "debootstrap is not installed (apt-get install debootstrap), and no base image is set "
                "(JUWEI_BASE_IMAGE): one of them is needed to make the root filesystem"
            )
        if os.geteuid() != 0:
            raise ImageBuildError("debootstrap needs root: run `juwei images build` as root, or set JUWEI_BASE_IMAGE")
        root = self.work / "rootfs.partial"
        shutil.rmtree(root, ignore_errors=True)
        log = self.logs / "debootstrap.log"
        self.say(f"debootstrap {s.debian_suite} from {s.debian_mirror} (log: {log})")
        started = time.monotonic()
        with log.open("w") as output:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}", s.debian_suite,
                 str(root), s.debian_mirror],
                stdout=output, stderr=subprocess.STDOUT, timeout=1800,
            )  # fmt: skip
        if done.returncode != 0:
            raise ImageBuildError(f"debootstrap failed (exit {done.returncode}): {_tail(log)}")
        _slim(root)
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
        shutil.rmtree(root, ignore_errors=True)
        self.say(f"root filesystem ready in {time.monotonic() - started:.0f} s ({tarball.stat().st_size >> 20} MiB)")

    # ------------------------------------------------------------ one image

    def _build(
        self,
        recipe: Recipe,
        name: str,
        extra_args: dict[str, str],
        labels: dict[str, str],
        source: Path = REPOSITORY,
    ) -> BuiltImage:
        context = self._stage(recipe, source)
        arguments = {**recipe.build_args(self.settings), **extra_args}
        log = self.logs / f"{recipe.part}.log"
        command = [*self.docker.client_config.docker_cmd, "build", "--network", "host", "--tag", name]
        for key, value in sorted(arguments.items()):
            command += ["--build-arg", f"{key}={value}"]
        for key, value in sorted(labels.items()):
            command += ["--label", f"{key}={value}"]
        command.append(str(context))
        self.say(f"building {name} (log: {log})")
        started = time.monotonic()
        # The classic builder: the engine's BuildKit needs the buildx plugin from the CLI, which hosts lack.
        environment = {"DOCKER_BUILDKIT": "0", **self.engine.environment()}
        with log.open("w") as output:
            try:
                for _origin, line in stream_stdout_and_stderr(command, env=environment):
                    output.write(line.decode(errors="replace"))
            except DockerException as exc:
                output.write(exc.stderr or "")
                output.flush()
                raise ImageBuildError(f"building {name} failed: {_tail(log)}\n(whole log: {log})") from None
        seconds = time.monotonic() - started
        image = self.docker.image.inspect(name)
        self.say(f"built {name} in {seconds:.0f} s ({image.size >> 20} MiB)")
        return BuiltImage(recipe.part, name, image.id, image.size, seconds, dict(image.config.labels or {}))

    def _stage(self, recipe: Recipe, source: Path) -> Path:
        """A build context with only what the Dockerfile copies (and the CA bundle, the service's wheel)."""
        context = self.work / "context" / recipe.part
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        for name in recipe.files:
            origin = recipe.folder / name
            if origin.is_dir():
                shutil.copytree(origin, context / name)
            else:
                shutil.copy2(origin, context / name)
        ca = self.settings.extra_ca()
        if recipe.part == "base":
            if ca is not None and not ca.is_file():
                raise ImageBuildError(f"JUWEI_CA_BUNDLE names {ca}, which is not a file")
            (context / "extra-ca.pem").write_bytes(ca.read_bytes() if ca else b"")
        if recipe.part == "service":
            build_wheel(source, context / "wheels", self.work / "context", self.settings.pypi_index)
        return context


def build_wheel(source: Path, into: Path, scratch: Path, index: str | None = None) -> Path:
    """Juwei's wheel from a source tree, built on this host (the image needs no build tools)."""
    into.mkdir(parents=True, exist_ok=True)
    # From a clean copy: setuptools' build/ folder in a work tree keeps modules that were since deleted.
    tree = scratch / "source"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    for path in packaged_paths(source):
        if path.is_dir():
            shutil.copytree(path, tree / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, tree / path.name)
    environment = {**os.environ, **({"PIP_INDEX_URL": index} if index else {})}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(into), str(tree)],
        capture_output=True, text=True, timeout=600, env=environment,
    )  # fmt: skip
    shutil.rmtree(tree, ignore_errors=True)
    wheels = sorted(into.glob("juwei-*.whl"))
    if built.returncode != 0 or not wheels:
        raise ImageBuildError(f"building Juwei's wheel from {source} failed: {built.stderr.strip()[-2000:]}")
    return wheels[-1]


def packaged_paths(source: Path) -> list[Path]:
    """What a wheel of ``source`` is made of: pyproject.toml, the README and the packages it includes."""
    project = tomllib.loads((source / "pyproject.toml").read_text())
    patterns = project.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("include", [])
    packages = sorted(
        path
        for path in source.iterdir()
        if path.is_dir() and (path / "__init__.py").is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns)
    )
    return [source / "pyproject.toml", source / "README.md", *packages]


def _slim(root: Path) -> None:
    """What a container never reads: package caches and lists, manuals, documentation, translations."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in root.glob(pattern):
            if path.is_file():
                path.unlink()
    for folder in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir(parents=True, exist_ok=True)
    # update-alternatives links manual pages into these (Java's postinst fails without them).
    for section in ("man1", "man5", "man7", "man8"):
        (root / "usr/share/man" / section).mkdir(exist_ok=True)


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
