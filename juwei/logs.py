"""One log format for every process: each line on stderr is one JSON object.

structlog renders the kernel's and services' own lines; the same renderer formats every stdlib logger's
record (uvicorn, kafka-python, Alembic, SQLAlchemy) through ``ProcessorFormatter`` on the root handler, so
a log shipper reads one format. Every line has ``time`` (ISO 8601, UTC), ``level``, ``service``, ``logger``
and ``message``, and ``request_id`` and ``trace_id`` when there is one; an exception is one ``exception``
field, never lines of its own.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Loggers that are noisy at INFO; JUWEI_LOG_LEVELS overrides them per logger.
DEFAULT_LEVELS: Mapping[str, str] = {
    "kafka": "WARNING",
    "alembic.runtime.plugins": "WARNING",
    # At INFO these log every URL they call: a chat bot's webhook URL holds its secret key.
    "httpx": "WARNING",
    "httpcore": "WARNING",
}
# The fields every line starts with, in this order; a line's own ``message`` field is kept as ``message_``.
LEADING = ("time", "level", "service", "logger", "message", "request_id", "trace_id")

_process_service = "juwei"


class LogLevelsError(ValueError):
    """``JUWEI_LOG_LEVELS`` is not ``logger=LEVEL,…``."""


def parse_levels(text: str) -> dict[str, str]:
    """``"kafka=WARNING, uvicorn.error=INFO"`` → ``{"kafka": "WARNING", "uvicorn.error": "INFO"}``."""
    levels: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, equals, level = item.partition("=")
        name, level = name.strip(), level.strip().upper()
        if not equals or not name or level not in LEVELS:
            raise LogLevelsError(f"{item.strip()!r} is not logger=LEVEL (LEVEL one of {', '.join(LEVELS)})")
        levels[name] = level
    return levels


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the moment (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _service(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    event.setdefault("service", _process_service)
    return event


def _trace_id(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """The trace of the current OpenTelemetry span, else of the traceparent the request or event carried."""
    if "trace_id" in event:
        return event
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = trace.format_trace_id(context.trace_id)
        return event
    from juwei.events import current_traceparent

    carried = current_traceparent.get()
    if carried:
        event["trace_id"] = carried.split("-")[1]
    return event


def _lined_up(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """``event`` becomes ``message``; the leading fields come first, then the line's own, in their order."""
    own = event.pop("message", None)
    event["message"] = str(event.pop("event", "")).rstrip("\n")  # py.warnings' text ends in one
    shown = {key: event.pop(key) for key in LEADING if key in event}
    if own is not None:
        shown["message_"] = own
    shown.update(event)
    return shown


def _shared() -> list[Processor]:
    """What every line gets, whether it came through structlog or a stdlib logger."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _service,
        _trace_id,
    ]


def formatter() -> structlog.stdlib.ProcessorFormatter:
    """The root handler's formatter: one JSON object per record, from structlog or any stdlib logger."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.StackInfoRenderer(),
            _lined_up,
            structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
        ],
    )


def _crashed(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("juwei").critical("process.crashed", exc_info=(kind, value, traceback))


def _thread_crashed(crash: threading.ExceptHookArgs) -> None:
    if crash.exc_type is SystemExit:
        return
    structlog.get_logger("juwei").critical(
        "thread.crashed",
        thread=crash.thread.name if crash.thread else None,
        exc_info=(crash.exc_type, crash.exc_value, crash.exc_traceback),
    )


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """An error Python can only report (in a finaliser, a ``__del__``), which it would print as text."""
    kind = unraisable.exc_type
    structlog.get_logger("juwei").warning(
        "python.unraisable",
        where=repr(unraisable.object)[:200] if unraisable.object is not None else None,
        exc_info=(kind, unraisable.exc_value, unraisable.exc_traceback) if unraisable.exc_value else None,
        error=kind.__name__,
    )


def configure_logging(level: str = "INFO", levels: str = "", service: str | None = None) -> None:
    """Send every logger of this process through the JSON renderer on stderr.

    ``level`` is the root level; ``levels`` (``JUWEI_LOG_LEVELS``) sets single loggers, e.g.
    ``kafka=WARNING,uvicorn.access=INFO``; ``service`` names this process in every line (a request or a
    background thread of a service binds its own). Safe to call again: the last call wins.
    """
    global _process_service
    if service:
        _process_service = service
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(formatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    _through_root()
    for name, chosen in {**DEFAULT_LEVELS, **parse_levels(levels)}.items():
        logging.getLogger(name).setLevel(chosen)
    # Python's warnings and crashes of the process or of a thread are lines too, not text of their own.
    logging.captureWarnings(True)
    sys.excepthook = _crashed
    threading.excepthook = _thread_crashed
    sys.unraisablehook = _unraisable
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _through_root() -> None:
    """Loggers a library gave a handler of its own (uvicorn's default configuration, run in-process; an ini file's
    handlers) write through the root's JSON handler instead, or their lines would be plain text beside ours."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):  # a placeholder for a logger not made yet
            continue
        for own in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]:
            logger.removeHandler(own)
        if not logger.handlers:
            logger.propagate = True  # else Python's last-resort handler prints the line as plain text


def bind_service(service: str) -> None:
    """Name ``service`` in every line this thread (or task) logs from now on."""
    structlog.contextvars.bind_contextvars(service=service)
