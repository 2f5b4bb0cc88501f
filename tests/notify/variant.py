"""Notify under a name and topics of its own, for tests that run it as real child processes.

``juwei consume tests.notify.variant:service`` loads this module in the child: the suffix from
``JUWEI_NOTIFY_TEST_SUFFIX`` gives it its own consumer group, database variable and topics, so that crash
tests never read what other tests put on ``juwei.residents``.
"""

from __future__ import annotations

import os
from dataclasses import replace

from juwei.service import ServiceDefinition
from services.notify.app import service as notify


def topics(suffix: str) -> list[str]:
    return [f"notifytest.{suffix}.residents", f"notifytest.{suffix}.testing"]


def definition(suffix: str) -> ServiceDefinition:
    return replace(notify, name=f"notify_{suffix}", consumes=topics(suffix))


service = definition(os.environ.get("JUWEI_NOTIFY_TEST_SUFFIX", "t"))
