"""The AsyncAPI event catalogue of the suite, generated from the contracts of its services."""

from __future__ import annotations

import importlib

from juwei import catalogue
from juwei.events import EventRegistry
from juwei.registration import Suite


def registries(suite: Suite) -> list[EventRegistry]:
    """Each service's published registry (``contracts.<service>.registry``), in the suite's order."""
    return [importlib.import_module(member.contract).registry for member in suite.members]


def render(suite: Suite) -> str:
    return catalogue.render(registries(suite))
