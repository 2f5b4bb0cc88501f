"""Reading a Juwei process's log as a log shipper would: every line is one JSON object with the same fields."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# What every line carries (juwei/logs.py); request_id and trace_id only where there is one.
FIELDS = ("time", "level", "service", "logger", "message")
LEVELS = ("debug", "info", "warning", "error", "critical")


def log_line(text: str) -> dict[str, Any]:
    """One line of a log, asserted to be a JSON object with every field a line has; the object."""
    try:
        line = json.loads(text)
    except ValueError:
        raise AssertionError(f"not a JSON log line: {text[:500]!r}") from None
    assert isinstance(line, dict), f"a log line is one JSON object, not {text[:200]!r}"
    assert list(line)[:4] == list(FIELDS[:4]), f"the fields do not lead in their order: {text[:300]}"
    missing = [name for name in FIELDS if not isinstance(line.get(name), str)]
    assert not missing, f"no {missing} in {text[:300]}"
    assert line["level"] in LEVELS, line
    stamp = datetime.fromisoformat(line["time"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0, line["time"]  # type: ignore[union-attr]
    for optional in ("request_id", "trace_id"):
        assert optional not in line or (isinstance(line[optional], str) and line[optional]), line
    return line


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log (a file's whole text), each asserted by ``log_line``."""
    return [log_line(line) for line in text.splitlines()]
