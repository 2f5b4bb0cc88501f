"""The compose stack's env file: ``juwei init`` writes it with every secret generated; ``juwei up`` checks it first.

The secrets are the variables the compose file requires (``${NAME:?…}``); ``init`` fills each empty one of
``.env.example`` with a fresh value of its kind. The check names every missing or malformed value, with its
line, so that nothing starts on a file compose would refuse halfway or, worse, accept.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PASSWORD = re.compile(r"[A-Za-z0-9_-]{12,}")
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")
PROFILES = ("single", "cluster", "tools", "monitoring")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class EnvFileError(RuntimeError):
    """The env file is missing, exists already (init) or holds values the stack can't start with."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Entry:
    line: int
    key: str
    value: str


def parse(text: str) -> tuple[list[Entry], list[str]]:
    """KEY=VALUE lines (comments, blank lines and ``export`` skipped, one pair of quotes removed) and bad lines."""
    entries: list[Entry] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not _NAME.fullmatch(key):
            problems.append(f"line {number}: {raw.strip()[:40]!r} is not NAME=value")
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        entries.append(Entry(number, key, value))
    return entries, problems


def read(path: Path) -> dict[str, str]:
    """The values of an env file (the last of a name wins, as compose reads it)."""
    entries, _ = parse(path.read_text())
    return {entry.key: entry.value for entry in entries}


def required_names(*compose_files: Path) -> list[str]:
    """The variables the compose file(s) refuse to start without (``${NAME:?message}``), in order."""
    text = "\n".join(path.read_text() for path in compose_files)
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return list(dict.fromkeys(name for line in lines for name in _REQUIRED.findall(line)))


# ---------------------------------------------------------------- what each secret is, and how it is made


def _sealing_key(name: str) -> bool:
    """A 32-byte key something is sealed under: the vaults', the health key, the console's secret."""
    return name.endswith("_VAULT_KEY") or name in ("JUWEI_HEALTH_KEY", "JUWEI_CONSOLE_SECRET", "JUWEI_LINK_SECRET")


def cluster_id() -> str:
    """A KRaft cluster id as Kafka's own ``random-uuid`` makes one: never beginning with "-", which Kafka's tools
    would read as an option (the broker then never formats its storage and restarts for good)."""
    while True:
        drawn = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]
        if not drawn.startswith("-"):
            return drawn


def new_secret(name: str) -> str:
    """A fresh value for a secret of the compose file, by the kind its name says."""
    if _sealing_key(name):
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if name == "JUWEI_BOOTSTRAP_KEY":
        return f"jw_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    if name == "JUWEI_KAFKA_CLUSTER_ID":
        return cluster_id()
    # Passwords go into database URLs: hex needs no quoting there.
    return secrets.token_hex(24)


def _vault_key(value: str) -> str | None:
    try:
        # validate=True: the lenient decoder drops characters it does not know instead of refusing them.
        decoded = base64.b64decode(value.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return "is not url-safe base64"
    return None if len(decoded) == 32 else f"is {len(decoded)} bytes, not 32"


def _api_key(value: str) -> str | None:
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != "jw" or not re.fullmatch(r"[A-Za-z0-9]+", parts[1]) or len(parts[2]) < 16:
        return "is not an API key jw_<id>_<secret> (secret of 16 characters or more)"
    return None


def _password(value: str) -> str | None:
    return None if _PASSWORD.fullmatch(value) else "must be 12 or more letters, digits, '-' or '_' (a database URL)"


def _cluster_id(value: str) -> str | None:
    return None if _CLUSTER_ID.fullmatch(value) else "must be 22 characters of url-safe base64"


def _port(value: str) -> str | None:
    return None if value.isdigit() and 1 <= int(value) <= 65535 else "is not a port number (1-65535)"


def _whole(minimum: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        whole = re.fullmatch(r"-?\d+", value) and int(value) >= minimum
        return None if whole else f"is not a whole number >= {minimum}"

    return check


def _number(value: str) -> str | None:
    try:
        return None if float(value) >= 0 else "must not be negative"
    except ValueError:
        return "is not a number"


def _boolean(value: str) -> str | None:
    return None if value.lower() in ("true", "false", "1", "0", "yes", "no") else "is not true or false"


def _address(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address (127.0.0.1 for this host only, 0.0.0.0 for every interface)"
    return None


def _profiles(value: str) -> str | None:
    chosen = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in PROFILES]
    if unknown:
        return f"names {', '.join(unknown)}: the profiles are {', '.join(PROFILES)}"
    if "single" in chosen and "cluster" in chosen:
        return "names both single and cluster: choose one Kafka"
    return None


def _level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"is not one of {', '.join(LOG_LEVELS)}"


def _levels(value: str) -> str | None:
    from juwei.logs import LogLevelsError, parse_levels

    try:
        parse_levels(value)
    except LogLevelsError as exc:
        return str(exc)
    return None


def _zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not a time zone (e.g. Asia/Shanghai)"
    return None


def check_value(name: str, value: str) -> str | None:
    """Why ``value`` can't be ``name``'s (None when it can); names without a known form pass."""
    rules: list[tuple[Callable[[str], bool], Callable[[str], str | None]]] = [
        (_sealing_key, _vault_key),
        (lambda n: n == "JUWEI_BOOTSTRAP_KEY", _api_key),
        (lambda n: n.endswith("_DB_PASSWORD") or n == "JUWEI_POSTGRES_PASSWORD", _password),
        (lambda n: n == "JUWEI_KAFKA_CLUSTER_ID", _cluster_id),
        (lambda n: n.endswith("_HTTP_PORT") or n.startswith("JUWEI_KAFKA_EXTERNAL_PORT"), _port),
        (lambda n: n in ("JUWEI_RELAY", "JUWEI_CONSUMERS"), _boolean),
        (lambda n: n == "JUWEI_PUBLISH_ADDRESS", _address),
        (lambda n: n == "COMPOSE_PROFILES", _profiles),
        (lambda n: n == "JUWEI_LOG_LEVEL", _level),
        (lambda n: n == "JUWEI_LOG_LEVELS", _levels),
        (lambda n: n == "JUWEI_TIMEZONE", _zone),
        (lambda n: n == "JUWEI_RATE_LIMIT_PER_SECOND", _number),
        (lambda n: n in ("JUWEI_KAFKA_RETENTION_MS", "JUWEI_KAFKA_DLQ_RETENTION_MS"), _whole(-1)),
        (lambda n: n == "JUWEI_READY_MAX_LAG", _whole(0)),
        (
            lambda n: n in ("JUWEI_MAX_BODY_BYTES", "JUWEI_FEED_PAGE_MAX", "JUWEI_RATE_LIMIT_BURST",
                            "JUWEI_KAFKA_PARTITIONS", "JUWEI_KAFKA_SESSION_TIMEOUT_MS",
                            "JUWEI_POSTGRES_MAX_CONNECTIONS", "JUWEI_API_WORKERS",
                            "JUWEI_WORKER_HEALTHCHECK_SECONDS"),
            _whole(1),
        ),
    ]  # fmt: skip
    if value == "" and name != "COMPOSE_PROFILES":
        return None
    for applies, rule in rules:
        if applies(name):
            return rule(value)
    return None


def check(path: Path, *compose_files: Path) -> list[str]:
    """Every problem of the env file, one line each, naming the variable (and its line); empty when fine."""
    if not path.is_file():
        return [f"{path} does not exist: write it with `juwei init`"]
    entries, problems = parse(path.read_text())
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.key in seen:
            problems.append(f"line {entry.line}: {entry.key} is set again (first on line {seen[entry.key]})")
        seen[entry.key] = entry.line
        why = check_value(entry.key, entry.value)
        if why:
            problems.append(f"line {entry.line}: {entry.key} {why}")
    values = {entry.key: entry.value for entry in entries}
    for name in required_names(*compose_files):
        if name not in values:
            problems.append(f"{name} is missing: the stack needs it (`juwei init` generates every secret)")
        elif not values[name]:
            problems.append(f"line {seen[name]}: {name} is empty: the stack needs it")
    return problems


def init(path: Path, template: Path, compose_file: Path, overrides: dict[str, str] | None = None) -> list[str]:
    """Write ``path`` from the template with every required empty value generated; refuse to overwrite.

    Returns the names generated. The file is readable by its owner only: it holds the vault keys.
    """
    if path.exists():
        raise EnvFileError(
            f"{path} exists already: nothing was written. Its vault keys unlock the data; to start over, "
            "move it away yourself first"
        )
    required = set(required_names(compose_file))
    chosen = dict(overrides or {})
    generated: list[str] = []
    lines: list[str] = []
    for raw in template.read_text().splitlines():
        key, sep, value = raw.partition("=")
        name = key.strip()
        if sep and not raw.lstrip().startswith("#") and _NAME.fullmatch(name):
            if name in chosen:
                raw = f"{name}={chosen.pop(name)}"
            elif name in required and not value.strip():
                raw = f"{name}={new_secret(name)}"
                generated.append(name)
        lines.append(raw)
    lines += [f"{name}={value}" for name, value in chosen.items()]
    missing = sorted(required - {line.partition("=")[0] for line in lines if "=" in line})
    for name in missing:
        lines.append(f"{name}={new_secret(name)}")
        generated.append(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_text("\n".join(lines) + "\n")
    partial.rename(path)
    return generated
