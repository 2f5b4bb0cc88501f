"""How the kernel finds the services it runs: by registration, never by name.

A distribution that composes a suite of services registers a ``Suite`` under the entry-point group
``juwei.suite`` (Juwei's own is ``composition:SUITE``, declared in pyproject.toml). The kernel reads which
services exist, their default ports and the commands that span them from there, and imports a service only
when it is asked to run it. Without any registration the kernel runs nothing but what it is handed
(``module:attribute`` of a ``ServiceDefinition``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from juwei.callers import Holder

GROUP = "juwei.suite"
FALLBACK_PORT = 8000


@dataclass(frozen=True)
class Member:
    """One service of a suite: its name (topic ``juwei.<name>``, settings ``JUWEI_<NAME>_*``), its default HTTP
    port, where its ``ServiceDefinition`` is (``module:attribute``) and the module of its published events."""

    name: str
    port: int
    definition: str
    contract: str

    def load(self) -> Any:
        """The service's definition (imports the service)."""
        module_name, _, attribute = self.definition.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class Companion:
    """An app of a suite beside its services, with no events of its own (a web console): ``juwei run`` starts it
    after the services as ``juwei <command...>`` on its port (``JUWEI_<NAME>_PORT`` overrides), answering /healthz."""

    name: str
    port: int
    command: tuple[str, ...]


@dataclass(frozen=True)
class KeyHolders:
    """Who may hold a key: ``problem(role, holder)`` says why a holder may not hold a key of a role (None: they
    may); ``check(holder)`` whether the person is in the register, and the building (local id) they belong to.
    ``issues`` names, per role, the roles of the keys it may issue over HTTP (``POST /compounds/{c}/keys``)."""

    problem: Callable[[str, Holder], str | None]
    check: Callable[[Holder], tuple[str | None, str | None]]
    issues: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """The services of a deployment, in the order they start, and what spans them."""

    members: tuple[Member, ...] = ()
    # Adds the commands that span services (a demo, retention, the event catalogue) to the ``juwei`` command.
    commands: Callable[[typer.Typer], None] | None = None
    key_holders: KeyHolders | None = None
    companions: tuple[Companion, ...] = ()
    _by_name: dict[str, Member] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((member.name, member) for member in self.members)

    @property
    def names(self) -> list[str]:
        return [member.name for member in self.members]

    def member(self, name: str) -> Member | None:
        return self._by_name.get(name)

    def port(self, name: str) -> int:
        member = self.member(name)
        if member is not None:
            return member.port
        return next((companion.port for companion in self.companions if companion.name == name), FALLBACK_PORT)


@cache
def suite() -> Suite:
    """The registered suite (the first registration when several are installed; none: an empty suite)."""
    for entry in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        found = entry.load()
        if not isinstance(found, Suite):
            raise TypeError(f"entry point {entry.name} of {GROUP} is not a juwei.registration.Suite")
        return found
    return Suite()


def topic_of(service: str) -> str:
    """Every service publishes on ``juwei.<service>``."""
    return f"juwei.{service}"
