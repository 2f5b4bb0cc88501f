"""Configuration from the environment (pydantic-settings); every variable is listed in the README.

A service's own settings are ``JUWEI_<NAME>_*`` (database, port, vault key).
"""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from juwei.registration import suite


class Settings(BaseSettings):
    """Settings shared by every service of one deployment."""

    model_config = SettingsConfigDict(env_prefix="JUWEI_", extra="ignore")

    data_dir: Path = Field(Path(".local"), description="Local data: SQLite files, broker, logs")
    kafka_bootstrap: str | None = Field(None, description="Use this Kafka cluster; unset: the local broker")
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_partitions: int = Field(6, ge=1, le=1000)
    kafka_session_timeout_ms: int = Field(10000, ge=1000, description="Consumer-group session timeout")
    # Two suites on one Kafka cluster (a second deployment, or test suites side by side) need groups of their own.
    consumer_group_prefix: str = Field(
        "juwei", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Consumer groups are named <prefix>-<service>"
    )
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    host: str = "127.0.0.1"
    relay: bool = Field(True, description="Run the outbox relay inside the service process")
    consumers: bool = Field(True, description="Run the Kafka consumers inside the service process")
    bootstrap_key: str | None = Field(None, description="An operator API key to make sure exists at start")
    log_level: str = "INFO"
    log_levels: str = Field(
        "", description="Levels of single loggers over JUWEI_LOG_LEVEL: kafka=WARNING,uvicorn.error=INFO"
    )
    timezone: str = Field("Asia/Shanghai", description="Where the compounds are: decides what 'today' is")
    today: date | None = Field(None, description="Pin today's date (demos and tests); unset: the real date")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Larger request bodies get 413")
    feed_page_max: int = Field(1000, ge=1, le=1000, description="Largest page of GET /events (at most PAGE_MAX)")
    # Per API key and service process; 0 turns the limit off. Generous: a person never comes near it, a
    # runaway script or a leaked key does.
    rate_limit_per_second: float = Field(100.0, ge=0, description="Requests a second per API key, on average")
    rate_limit_burst: int = Field(1000, ge=1, description="Requests a key may make at once before the rate applies")
    api_workers: int = Field(
        1, ge=1, le=64, description="HTTP worker processes of `juwei serve` (more than 1: metrics summed across them)"
    )
    # uvicorn kills a worker that does not answer its supervisor's ping within this time; its own 5 s killed workers
    # still starting on a loaded 2-core host, over and over, so only one of them ever served.
    worker_healthcheck_seconds: int = Field(
        30, ge=1, le=600, description="Seconds a `juwei serve --workers` process may leave its supervisor unanswered"
    )
    # Readiness holds a service's consumers against this bound only: Kafka being away is not a reason (the outbox
    # keeps writes going), consumers far behind are (its read models of other services are stale). 0: never.
    ready_max_lag: int = Field(
        10000, ge=0, description="/readyz fails when the service's group is this many records behind on a topic"
    )

    photo_link_days: int = Field(
        30, ge=1, le=366, description="Signed photo links in group messages work this many days after the event"
    )

    @field_validator("log_levels")
    @classmethod
    def _known_levels(cls, value: str) -> str:
        from juwei.logs import parse_levels

        parse_levels(value)  # a typo fails the start, not silently logs at the wrong level
        return value

    def local_today(self) -> date:
        return self.today or datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def kafka_broker_external(self) -> bool:
        return bool(self.kafka_bootstrap)

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    def kafka_security(self) -> dict[str, object]:
        """kafka-python arguments for TLS/SASL clusters (empty for PLAINTEXT)."""
        extra: dict[str, object] = {}
        if self.kafka_security_protocol != "PLAINTEXT":
            extra["security_protocol"] = self.kafka_security_protocol
        if self.kafka_sasl_mechanism:
            extra.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        if self.kafka_ssl_cafile:
            extra["ssl_cafile"] = self.kafka_ssl_cafile
        return extra

    def database_url(self, service: str) -> str:
        explicit = os.environ.get(f"JUWEI_{service.upper()}_DATABASE_URL")
        if explicit:
            return explicit
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def vault_key(self, service: str) -> str:
        """The key-encryption key of a service's vault: ``JUWEI_<SERVICE>_VAULT_KEY``.

        Without it (development), a key is generated once into the data folder, readable by the owner only.
        """
        explicit = os.environ.get(f"JUWEI_{service.upper()}_VAULT_KEY")
        if explicit:
            return explicit
        from juwei.vault import new_master_key

        path = self.data_dir / f"{service}.vault.key"
        if not path.exists():
            _create_once(path, new_master_key())
        return path.read_text().strip()

    def shared_key(self, variable: str) -> str:
        """A key several services share, from the environment variable named ``variable``.

        Without it (development, where every service shares one data folder), a key is generated once into
        the data folder, readable by the owner only. A deployment sets it for exactly the services that
        share it.
        """
        explicit = os.environ.get(variable)
        if explicit:
            return explicit
        from juwei.vault import new_master_key

        path = self.data_dir / f"{variable.lower()}.key"
        if not path.exists():
            _create_once(path, new_master_key())
        return path.read_text().strip()

    def port(self, service: str) -> int:
        """``JUWEI_<SERVICE>_PORT``, else the port the service is registered with (``juwei.registration``)."""
        explicit = os.environ.get(f"JUWEI_{service.upper()}_PORT")
        return int(explicit) if explicit else suite().port(service)


def _create_once(path: Path, content: str) -> None:
    """Write ``path`` unless another process wrote it first; either way every process reads the same file.

    Services started side by side all find the key missing: each writes its own candidate to a file of its
    own and links it into place, which fails for all but the first (a link never replaces, and never shows
    a half-written file).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    candidate.write_text(content)
    candidate.chmod(0o600)
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass  # another process was first: its key is the one
    finally:
        candidate.unlink()


@lru_cache
def settings() -> Settings:
    return Settings()
