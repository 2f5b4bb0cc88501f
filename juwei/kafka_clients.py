"""Kafka clients that leave nothing running when Kafka does not answer.

kafka-python 3.0 starts an admin client's and a consumer's IO thread before the bootstrap and, when the
bootstrap fails, raises from ``__init__`` with that thread still running: it retries the dead address for the
life of the process, logging every try (a service retrying through a broker outage gathered one such thread
per attempt). The library gives no hold on the half-made client, so it is made here in two steps and, on
failure, its parts are stopped by hand.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

Client = TypeVar("Client")

# The parts a half-made client may hold, and how each is stopped (kafka-python 3.0's attribute names).
_PARTS = (("_client", "close"), ("_net", "stop"), ("_metrics", "close"))


def made(kind: type[Client], **configs: Any) -> Client:
    """``kind(**configs)`` (``KafkaAdminClient``, ``KafkaConsumer`` …); if that raises, nothing it started runs on."""
    client = kind.__new__(kind)
    try:
        client.__init__(**configs)  # type: ignore[misc]
    except BaseException:
        abandon(client)
        raise
    return client


def abandon(client: object) -> None:
    """Stop what a client whose ``__init__`` failed had started (its IO thread, its connections, its metrics)."""
    for part, stop in _PARTS:
        held = getattr(client, part, None)
        if held is not None:
            with contextlib.suppress(Exception):  # half-made: a part may not be usable, and the first error stands
                getattr(held, stop)()
