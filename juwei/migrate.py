"""Alembic per service: the kernel's revisions (branch ``juwei``) plus the service's own, upgraded to heads.

A service calls ``upgrade`` on start. On PostgreSQL an advisory lock keeps two processes of the same
service from migrating at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from juwei.database import Database

KERNEL_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x4A5557454D  # any constant shared by every process of a service


def alembic_config(version_dirs: Sequence[Path] = ()) -> Config:
    config = Config()
    config.set_main_option("script_location", str(KERNEL_MIGRATIONS))
    locations = [KERNEL_MIGRATIONS / "versions", *version_dirs]
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(str(p) for p in locations))
    return config


def upgrade(database: Database, version_dirs: Sequence[Path] = ()) -> None:
    config = alembic_config(version_dirs)
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
