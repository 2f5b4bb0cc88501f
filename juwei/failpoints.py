"""Named points where a test can freeze a real process, so that it can SIGKILL it exactly there.

``JUWEI_FAILPOINTS=relay.after_publish,consumer.after_effects`` and ``JUWEI_FAILPOINT_DIR=/tmp/x``:
reaching a listed point writes ``/tmp/x/<name>`` and blocks forever. Unset, a point costs one set lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_ARMED = frozenset(filter(None, os.environ.get("JUWEI_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name not in _ARMED:
        return
    folder = Path(os.environ.get("JUWEI_FAILPOINT_DIR", "."))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(str(os.getpid()))
    while True:  # the test kills us here
        time.sleep(3600)
