"""The operator's commands for the compose stack: ``init``, ``images``, ``up``, ``down``, ``ps``, ``logs``,
``bundle``, ``backup`` and ``restore`` — in the order an operator meets them.

Each one checks what it needs before it changes anything: the env file (named values), the Docker engine
and Compose (one line naming what to install), the images (built or loaded, never pulled).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from juwei import envfile
from juwei.engine import Engine, EngineError, check_engine
from juwei.settings import settings
from juwei.stack import Stack, StackError, deploy_dir

console = Console(stderr=True)
images_app = typer.Typer(help="The stack's images, built from package registries alone.", no_args_is_help=True)
bundle_app = typer.Typer(help="An offline bundle: images, compose file and checksums.", no_args_is_help=True)

ComposeFileOption = Annotated[
    list[Path] | None,
    typer.Option("--file", help="Compose file(s), merged in order (default: deploy/compose.yaml)", show_default=False),
]
EnvFileOption = Annotated[
    list[Path] | None, typer.Option("--env-file", help="Env file(s) (default: deploy/.env)", show_default=False)
]
ProfileOption = Annotated[
    list[str] | None,
    typer.Option("--profile", help="single | cluster | tools (default: COMPOSE_PROFILES of the env file, else single)"),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(code)


def engine() -> Engine:
    """The Docker engine and Compose, or exit with the one line that says what to install."""
    try:
        return check_engine(settings().data_dir)
    except EngineError as exc:
        raise fail(str(exc)) from None


def open_stack(file: list[Path] | None, env_file: list[Path] | None, profile: list[str] | None) -> Stack:
    found = engine()
    try:
        return Stack(
            compose_files=file,
            env_files=env_file,
            profiles=profile,
            docker_config=found.docker_config,
            client_call=list(found.client_call),
        )
    except StackError as exc:
        raise fail(str(exc)) from None


def checked_env(file: list[Path] | None, env_file: list[Path] | None) -> None:
    """Every problem of the env file(s), named; nothing starts on a file that has one."""
    compose_files = file or [deploy_dir() / "compose.yaml"]
    problems = [
        problem for path in env_file or [deploy_dir() / ".env"] for problem in envfile.check(path, *compose_files)
    ]
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]", highlight=False)
        raise fail(f"the env file has {len(problems)} problem(s): nothing was started")


def init(
    env_file: Annotated[Path | None, typer.Option("--env-file", help="Where (default: deploy/.env)")] = None,
    profile: Annotated[str | None, typer.Option(help="COMPOSE_PROFILES to write: single or cluster")] = None,
) -> None:
    """Write the stack's env file with every secret generated (database passwords, vault keys, the bootstrap key,
    the Kafka cluster id). Refuses to overwrite one."""
    folder = deploy_dir()
    target = env_file or folder / ".env"
    overrides = {"COMPOSE_PROFILES": profile} if profile is not None else {}
    if profile is not None and (why := envfile.check_value("COMPOSE_PROFILES", profile)):
        raise fail(f"--profile {profile} {why}")
    try:
        generated = envfile.init(target, folder / ".env.example", folder / "compose.yaml", overrides)
    except envfile.EnvFileError as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {target} (readable by you only) with {len(generated)} generated secrets:")
    for name in generated:
        console.print(f"  {name}")
    console.print(
        "Keep a copy of it apart from the database backups: its vault keys unlock the personal data. "
        "Next: `juwei images build` (or `juwei bundle load FILE`), then `juwei up`."
    )


def up(
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
    wait: Annotated[bool, typer.Option(help="Wait until every container is healthy")] = True,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for every container to be healthy")] = 600,
) -> None:
    """Start the compose stack, wait until every container is healthy and print where each service answers."""
    from juwei.status import containers_table

    checked_env(file, env_file)
    stack = open_stack(file, env_file, profile)
    console.print(f"profiles: {', '.join(stack.profiles) or '(none: outside Kafka)'}; env: {stack.env_files[0]}")
    try:
        missing = stack.missing_images()
    except StackError as exc:
        raise fail(str(exc)) from None
    if missing:
        raise fail(
            f"not on this Docker engine: {', '.join(missing)}. Build them with `juwei images build`, "
            "or load an offline bundle with `juwei bundle load FILE` (nothing is pulled from a registry)"
        )
    started = time.monotonic()
    try:
        containers = stack.up(wait=wait, wait_timeout=timeout)
    except StackError as exc:
        console.print(f"[red]the stack did not become healthy: {exc}[/]")
        if exc.containers:
            Console().print(containers_table(exc.containers))
        for container in exc.containers:
            if not container.ok and container.last_check:
                console.print(
                    f"{container.service}: its last health check said: {container.last_check}", highlight=False
                )
        console.print("Look at `juwei logs <service>`; `juwei down` stops what runs.")
        raise typer.Exit(1) from None
    table = Table(
        title=f"Juwei is up (compose, {time.monotonic() - started:.0f} s)",
        caption="each service: API docs at /docs, event feed at /events",
    )
    table.add_column("service")
    table.add_column("where")
    table.add_column("health")
    for name, url in Stack.endpoints(containers).items():
        health = next((c.health or c.state for c in containers if c.service == name), "?")
        table.add_row(name, url, health)
    table.add_row("Kafka (from this host)", Stack.kafka_bootstrap(containers) or "—", "")
    Console().print(table)


def down(
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the data volumes (all events!)")] = False,
    timeout: Annotated[int, typer.Option(help="Seconds each container gets to stop")] = 30,
) -> None:
    """Stop and remove the compose stack's containers; the data volumes stay unless --volumes."""
    stack = open_stack(file, env_file, None)
    try:
        stack.down(volumes=volumes, timeout=timeout)
    except StackError as exc:
        raise fail(str(exc), 1) from None
    console.print("stack removed; " + ("volumes deleted" if volumes else "volumes kept (--volumes deletes them)"))


def admin(
    context: typer.Context,
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
) -> None:
    """Run a `juwei` command in the stack's admin container, which reaches every database: `juwei admin keys
    create --role … --staff …`, `juwei admin console add-staff --compound c1 --staff s1 --username wang`."""
    if not context.args:
        raise fail("name the command to run, e.g. `juwei admin keys list`")
    checked_env(file, env_file)
    stack = open_stack(file, env_file, None)
    try:
        typer.echo(stack.admin(context.args), nl=False)
    except StackError as exc:
        raise fail(str(exc), 1) from None


def ps(
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """The compose stack's containers: state, health and published ports (exit 1 if one is not healthy)."""
    from juwei.status import containers_table

    stack = open_stack(file, env_file, profile)
    try:
        containers = stack.ps()
    except StackError as exc:
        raise fail(str(exc), 1) from None
    if as_json:
        typer.echo(json.dumps([c.as_json() for c in containers], indent=2))
    else:
        Console().print(containers_table(containers))
    if not all(c.ok for c in containers):
        raise typer.Exit(1)


def logs(
    services: Annotated[list[str] | None, typer.Argument(help="Compose services (default: all)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines")] = False,
    tail: Annotated[str, typer.Option(help="Lines per container to start with ('all' for everything)")] = "200",
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
) -> None:
    """The compose stack's logs (for `juwei run`, the logs are files under the data folder's logs/)."""
    stack = open_stack(file, env_file, profile)
    try:
        for line in stack.logs(services or [], follow=follow, tail=tail):
            typer.echo(line)
    except StackError as exc:
        raise fail(str(exc), 1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


# ---------------------------------------------------------------- images


@images_app.command("build")
def images_build(
    parts: Annotated[list[str] | None, typer.Argument(help="service kafka postgres prometheus (all)")] = None,
    env_file: Annotated[Path | None, typer.Option("--env-file", help="Settings (default: deploy/.env if any)")] = None,
    source: Annotated[Path | None, typer.Option(help="Source tree of the service image (default: this one)")] = None,
    tag: Annotated[str | None, typer.Option(help="Name of the one image built (default: the stack's name)")] = None,
    revision: Annotated[str | None, typer.Option(help="Commit for the revision label (default: git's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Progress and the summary as JSON lines on stdout")] = False,
) -> None:
    """Build every image the stack needs from Debian packages, PyPI and Maven Central (or their mirrors)."""
    from juwei.images import PARTS, REPOSITORY, BuildSettings, ImageBuilder, ImageBuildError
    from juwei.progress import Progress

    found = engine()
    chosen = env_file or deploy_dir() / ".env"
    config = BuildSettings(_env_file=chosen if chosen.is_file() else None)  # type: ignore[call-arg]
    started = time.monotonic()
    with Progress(as_json=as_json, console=console) as progress:
        builder = ImageBuilder(found, config, say=lambda line: progress.console.print(line, highlight=False))
        try:
            built = builder.build(parts or list(PARTS), source or REPOSITORY, tag, revision, progress.stage("images"))
        except ImageBuildError as exc:
            raise fail(str(exc), 1) from None
        if as_json:
            images = [
                {"image": image.name, "bytes": image.size_bytes, "seconds": round(image.seconds, 1),
                 "revision": image.labels.get("org.opencontainers.image.revision", "")}
                for image in built
            ]  # fmt: skip
            progress.finish({"images": images}, "")
            return
    table = Table(title=f"images built in {time.monotonic() - started:.0f} s")
    for column in ("image", "MiB", "seconds", "revision"):
        table.add_column(column)
    for image in built:
        revision_label = image.labels.get("org.opencontainers.image.revision", "")
        table.add_row(image.name, str(image.size_bytes >> 20), f"{image.seconds:.0f}", revision_label)
    Console().print(table)


@images_app.command("list")
def images_list(
    env_file: Annotated[Path | None, typer.Option("--env-file", help="Settings (default: deploy/.env if any)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """The stack's images on this engine: size, version, revision, when built (exit 1 if one is missing)."""
    from juwei.images import BuildSettings

    found = engine()
    chosen = env_file or deploy_dir() / ".env"
    config = BuildSettings(_env_file=chosen if chosen.is_file() else None)  # type: ignore[call-arg]
    docker = found.client()
    rows = []
    for part, name in config.names().items():
        if not docker.image.exists(name):
            rows.append({"part": part, "image": name, "present": False})
            continue
        image = docker.image.inspect(name)
        labels = image.config.labels or {}
        rows.append(
            {
                "part": part,
                "image": name,
                "present": True,
                "id": image.id,
                "bytes": image.size,
                "version": labels.get("org.opencontainers.image.version"),
                "revision": labels.get("org.opencontainers.image.revision"),
                "created": labels.get("org.opencontainers.image.created"),
                "user": image.config.user,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        table = Table(title="the stack's images")
        for column in ("image", "MiB", "version", "revision", "created"):
            table.add_column(column)
        for row in rows:
            if not row["present"]:
                table.add_row(row["image"], "missing", "", "", "")
            else:
                table.add_row(
                    row["image"], str(row["bytes"] >> 20), row["version"] or "", row["revision"] or "",
                    row["created"] or "",
                )  # fmt: skip
        Console().print(table)
    if not all(row["present"] for row in rows):
        raise typer.Exit(1)


# ---------------------------------------------------------------- the offline bundle


@bundle_app.command("create")
def bundle_create(
    output: Annotated[Path | None, typer.Option(help="Default: juwei-bundle-<version>.tar here")] = None,
    env_file: Annotated[Path | None, typer.Option("--env-file", help="Settings (default: deploy/.env if any)")] = None,
    wheels: Annotated[bool, typer.Option(help="Include the wheels that install the juwei command")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Progress and the summary as JSON lines on stdout")] = False,
) -> None:
    """Write one archive with the images, the compose file, the env template, OPERATOR.md and checksums."""
    from juwei import bundle
    from juwei.images import VERSION, BuildSettings
    from juwei.progress import Progress

    found = engine()
    chosen = env_file or deploy_dir() / ".env"
    config = BuildSettings(_env_file=chosen if chosen.is_file() else None)  # type: ignore[call-arg]
    target = (output or Path(f"juwei-bundle-{VERSION}.tar")).resolve()
    with Progress(as_json=as_json, console=console) as progress:
        try:
            report = bundle.create(
                found, config, target, deploy_dir(), wheels, say=lambda line: progress.console.print(line),
                report=progress.stage("bundle"),
            )  # fmt: skip
        except bundle.BundleError as exc:
            raise fail(str(exc), 1) from None
        progress.finish(
            {"path": str(report.path), "bytes": report.bytes, "sha256": report.sha256, "images": report.images,
             "seconds": round(report.seconds, 1)},
            f"wrote {report.path} ({report.bytes / 2**20:.0f} MiB, {report.seconds:.0f} s), sha256 {report.sha256} "
            f"(also in {report.path.name}.sha256)",
        )  # fmt: skip


@bundle_app.command("load")
def bundle_load(
    file: Annotated[Path, typer.Argument(help="The bundle (juwei-bundle-<version>.tar)")],
    into: Annotated[Path | None, typer.Option(help="Deploy folder for compose.yaml etc. (default: deploy/)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Progress and the summary as JSON lines on stdout")] = False,
) -> None:
    """Check every part of a bundle against its manifest, then load its images (no network needed)."""
    from juwei import bundle
    from juwei.progress import Progress

    found = engine()
    folder = (into or deploy_dir()).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with Progress(as_json=as_json, console=console) as progress:
        try:
            manifest = bundle.load(
                found, file.resolve(), folder, say=lambda line: progress.console.print(line, highlight=False),
                report=progress.stage("bundle load"),
            )  # fmt: skip
        except bundle.BundleError as exc:
            raise fail(str(exc), 1) from None
        names = [image["name"] for image in manifest["images"]]
        progress.finish(
            {"images": names, "folder": str(folder)},
            f"loaded {', '.join(names)}; compose.yaml, .env.example and OPERATOR.md are in {folder}",
        )
    if not as_json and not (folder / ".env").exists():
        console.print("Next: `juwei init`, then `juwei up`.")


# ---------------------------------------------------------------- backup and restore


def backup(
    output: Annotated[Path | None, typer.Option(help="A new folder (default: backups/<UTC time>)")] = None,
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
) -> None:
    """Dump every service's database (pg_dump), the services' files and the vault keys, with a manifest."""
    from datetime import UTC, datetime

    from juwei.backup import BackupError, StackBackup

    stack = open_stack(file, env_file, profile)
    folder = (output or Path("backups") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")).resolve()
    try:
        manifest = StackBackup(stack, say=lambda line: console.print(line, highlight=False)).backup(folder)
    except BackupError as exc:
        raise fail(str(exc), 1) from None
    total = sum(entry["bytes"] for entry in manifest["files"].values())
    console.print(
        f"backup of {', '.join(manifest['databases'])} in {folder} ({total >> 10} KiB, {manifest['seconds']} s). "
        "vault-keys.env holds the keys to the personal data: keep it apart from the dumps.",
        highlight=False,
    )


def restore(
    folder: Annotated[Path, typer.Argument(help="A folder `juwei backup` wrote")],
    file: ComposeFileOption = None,
    env_file: EnvFileOption = None,
    profile: ProfileOption = None,
) -> None:
    """Rebuild the stack's databases from a backup (meant for a fresh stack); every event is published again."""
    from juwei.backup import BackupError, StackBackup

    checked_env(file, env_file)
    stack = open_stack(file, env_file, profile)
    try:
        report = StackBackup(stack, say=lambda line: console.print(line, highlight=False)).restore(folder.resolve())
    except BackupError as exc:
        raise fail(str(exc), 1) from None
    replayed = f"; read models replayed in {', '.join(report['replayed'])}" if report["replayed"] else ""
    console.print(f"restored {', '.join(report['databases'])} in {report['seconds']} s{replayed}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the stack's commands to the ``juwei`` command."""
    app.command()(init)
    app.command()(up)
    app.command()(down)
    app.command()(ps)
    app.command()(logs)
    # Everything after admin's own options goes to `juwei` in the container.
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(admin)
    app.command()(backup)
    app.command()(restore)
    app.add_typer(images_app, name="images")
    app.add_typer(bundle_app, name="bundle")
