"""The console's settings: ``JUWEI_CONSOLE_*`` from the environment, the services' URLs from the suite's."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from juwei.registration import suite
from juwei.settings import settings as suite_settings

NAME = "console"
PORT = 8005


class ConsoleSettings(BaseSettings):
    """What the console needs; every field has a default fit for ``make run``."""

    model_config = SettingsConfigDict(env_prefix="JUWEI_CONSOLE_", extra="ignore")

    database_url: str = Field("", description="Accounts, sessions, invitations; unset: SQLite in the data folder")
    secret: str = Field("", description="Seals the keys the console holds (url-safe base64, 32 bytes); unset: a file")
    # None: Secure when the request came over https (a proxy's X-Forwarded-Proto counts only if uvicorn trusts it).
    secure_cookies: bool | None = Field(None, description="Mark the session cookie Secure")
    staff_idle_seconds: int = Field(2 * 3600, ge=60, description="A staff session ends after this long unused")
    staff_absolute_seconds: int = Field(12 * 3600, ge=60, description="A staff session ends this long after sign-in")
    person_idle_seconds: int = Field(7 * 86400, ge=60, description="A volunteer's or household's, unused")
    invitation_seconds: int = Field(72 * 3600, ge=60, description="An invitation link not opened in time is void")
    invited_key_seconds: int = Field(14 * 86400, ge=3600, description="The key (and session) an invitation makes")
    service_timeout_seconds: float = Field(10.0, gt=0, description="One call to a service")
    # name -> base URL; unset: JUWEI_<NAME>_URL, else http://JUWEI_HOST:JUWEI_<NAME>_PORT for each service.
    service_urls: dict[str, str] = Field(default_factory=dict)

    @field_validator("secure_cookies", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # compose passes an unset tunable on as an empty string

    def resolved_database_url(self) -> str:
        return self.database_url or suite_settings().database_url(NAME)

    def resolved_secret(self) -> str:
        return self.secret or suite_settings().shared_key("JUWEI_CONSOLE_SECRET")

    def url_of(self, service: str) -> str:
        if service in self.service_urls:
            return self.service_urls[service].rstrip("/")
        explicit = os.environ.get(f"JUWEI_{service.upper()}_URL")
        if explicit:
            return explicit.rstrip("/")
        config = suite_settings()
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
        return f"http://{host}:{config.port(service)}"

    def urls(self) -> dict[str, str]:
        return {name: self.url_of(name) for name in suite().names}


@lru_cache
def console_settings() -> ConsoleSettings:
    return ConsoleSettings()
