"""`juwei init` and the env-file check, as plain Python on files (no engine)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from juwei import envfile
from tests.deploy.conftest import COMPOSE_FILE, ENV_EXAMPLE


def test_init_generates_every_secret_the_compose_file_requires_and_the_result_checks_clean(tmp_path: Path) -> None:
    target = tmp_path / "deploy" / ".env"
    generated = envfile.init(target, ENV_EXAMPLE, COMPOSE_FILE)
    required = envfile.required_names(COMPOSE_FILE)
    assert sorted(generated) == sorted(required)
    assert {"JUWEI_BOOTSTRAP_KEY", "JUWEI_KAFKA_CLUSTER_ID", "JUWEI_POSTGRES_PASSWORD"} <= set(required)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds the vault keys
    assert envfile.check(target, COMPOSE_FILE) == []
    values = envfile.read(target)
    assert len(base64.urlsafe_b64decode(values["JUWEI_RESIDENTS_VAULT_KEY"])) == 32
    # Every secret is its own: no two generated values alike, and a second init makes others.
    assert len({values[name] for name in required}) == len(required)
    other = tmp_path / "other.env"
    envfile.init(other, ENV_EXAMPLE, COMPOSE_FILE)
    assert all(envfile.read(other)[name] != values[name] for name in required)
    # Everything else is the template's, comments included.
    assert target.read_text().count("\n#") == ENV_EXAMPLE.read_text().count("\n#")


def test_init_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("JUWEI_RESIDENTS_VAULT_KEY=the-only-copy\n")
    with pytest.raises(envfile.EnvFileError, match="exists already: nothing was written"):
        envfile.init(target, ENV_EXAMPLE, COMPOSE_FILE)
    assert target.read_text() == "JUWEI_RESIDENTS_VAULT_KEY=the-only-copy\n"


def test_init_takes_the_profile_it_is_given(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    envfile.init(target, ENV_EXAMPLE, COMPOSE_FILE, {"COMPOSE_PROFILES": "cluster"})
    assert envfile.read(target)["COMPOSE_PROFILES"] == "cluster"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("JUWEI_RESIDENTS_VAULT_KEY", "AAAAAAAAAAAAAAAAAAAAAA==", "is 16 bytes, not 32"),
        ("JUWEI_RESIDENTS_VAULT_KEY", "abc", "is not url-safe base64"),
        ("JUWEI_RESIDENTS_VAULT_KEY", "!!!", "is not url-safe base64"),
        ("JUWEI_BOOTSTRAP_KEY", "operator", "is not an API key"),
        ("JUWEI_TESTING_DB_PASSWORD", "p@ss word", "database URL"),
        ("JUWEI_KAFKA_CLUSTER_ID", "short", "22 characters"),
        ("JUWEI_NOTIFY_HTTP_PORT", "80o4", "is not a port number"),
        ("JUWEI_PUBLISH_ADDRESS", "localhost", "is not an IP address"),
        ("COMPOSE_PROFILES", "single,cluster", "choose one Kafka"),
        ("COMPOSE_PROFILES", "singel", "the profiles are"),
        ("JUWEI_LOG_LEVEL", "LOUD", "is not one of"),
        ("JUWEI_LOG_LEVELS", "kafka=LOUD", "is not logger=LEVEL"),
        ("JUWEI_TIMEZONE", "Mars/Olympus", "is not a time zone"),
        ("JUWEI_RELAY", "maybe", "is not true or false"),
        ("JUWEI_KAFKA_PARTITIONS", "0", "whole number >= 1"),
        ("JUWEI_KAFKA_RETENTION_MS", "forever", "whole number >= -1"),
        ("JUWEI_RATE_LIMIT_PER_SECOND", "fast", "is not a number"),
    ],
)
def test_check_names_the_malformed_value_and_its_line(tmp_path: Path, name: str, value: str, said: str) -> None:
    target = tmp_path / ".env"
    envfile.init(target, ENV_EXAMPLE, COMPOSE_FILE)
    lines = target.read_text().splitlines()
    number = next((i for i, line in enumerate(lines) if line.startswith(f"{name}=")), None)
    if number is None:
        lines.append(f"{name}={value}")
        number = len(lines) - 1
    else:
        lines[number] = f"{name}={value}"
    target.write_text("\n".join(lines) + "\n")
    problems = envfile.check(target, COMPOSE_FILE)
    assert problems == [f"line {number + 1}: {name} {said}"] or (
        len(problems) == 1 and problems[0].startswith(f"line {number + 1}: {name} ") and said in problems[0]
    ), problems


def test_check_names_missing_empty_repeated_and_garbled_lines(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    envfile.init(target, ENV_EXAMPLE, COMPOSE_FILE)
    text = target.read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("JUWEI_SUPPLIES_VAULT_KEY="))
    text = text.replace("JUWEI_NOTIFY_DB_PASSWORD=", "JUWEI_NOTIFY_DB_PASSWORD=\n#", 1)
    text += "\nJUWEI_LOG_LEVEL=DEBUG\nthis line is not a setting\n"
    target.write_text(text)
    problems = "\n".join(envfile.check(target, COMPOSE_FILE))
    assert "JUWEI_SUPPLIES_VAULT_KEY is missing" in problems
    assert "JUWEI_NOTIFY_DB_PASSWORD is empty" in problems
    assert "JUWEI_LOG_LEVEL is set again (first on line" in problems
    assert "'this line is not a setting' is not NAME=value" in problems
    assert envfile.check(tmp_path / "absent.env", COMPOSE_FILE) == [f"{tmp_path / 'absent.env'} does not exist: "
                                                                      "write it with `juwei init`"]  # fmt: skip


def test_the_required_names_are_read_from_the_compose_file_not_its_comments(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("# `${VAR:?…}` marks a secret\nx: ${JUWEI_A:?set it}\ny: ${JUWEI_B:-default} ${JUWEI_C:?}\n")
    assert envfile.required_names(compose) == ["JUWEI_A", "JUWEI_C"]
