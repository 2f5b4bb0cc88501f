"""The top layer: which services Juwei is composed of, on which ports, and the commands that span them.

Nothing below imports this package. The kernel (``juwei``) finds ``SUITE`` through the entry point
``juwei.suite`` (pyproject.toml) and imports a service only to run it; the services know each other only
through ``contracts``. This layer may import all of them: the demo, retention and the event catalogue
need more than one service, as does the check of who may hold a key.
"""

from __future__ import annotations

from composition.commands import register
from composition.holders import KEY_HOLDERS
from juwei.registration import Companion, Member, Suite

SUITE = Suite(
    members=(
        Member("residents", 8001, "services.residents.app:service", "contracts.residents"),
        Member("supplies", 8002, "services.supplies.app:service", "contracts.supplies"),
        Member("testing", 8003, "services.testing.app:service", "contracts.testing"),
        Member("notify", 8004, "services.notify.app:service", "contracts.notify"),
    ),
    commands=register,
    key_holders=KEY_HOLDERS,
    # The committee's web console: a client of the services' HTTP APIs, started by `juwei run` after them.
    companions=(Companion("console", 8005, ("console", "serve")),),
)
