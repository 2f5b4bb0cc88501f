"""The compound's clock: a time without an offset is its wall-clock time, and times go out in its zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from juwei.events import utcnow
from juwei.service import Runtime
from services.testing.views import utc


@dataclass(frozen=True)
class Clock:
    zone: ZoneInfo

    @classmethod
    def of(cls, runtime: Runtime) -> Clock:
        """Where the compounds are (``JUWEI_TIMEZONE``, Asia/Shanghai unless configured)."""
        return cls(ZoneInfo(runtime.settings.timezone))

    def local(self, moment: datetime) -> datetime:
        """A time without an offset is the compound's wall-clock time."""
        return moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment

    def shown(self, moment: datetime | None) -> str | None:
        """Times go out in the compound's time zone: that is the clock residents read."""
        if moment is None:
            return None
        aware = utc(moment)
        assert aware is not None
        return aware.astimezone(self.zone).isoformat()


def now() -> datetime:
    return utcnow()
