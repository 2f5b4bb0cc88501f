"""``juwei serve --workers N``: one service's HTTP API in N uvicorn worker processes, its metrics summed across them.

The parent process migrates the database, stores the bootstrap key and runs the service's background work (relay,
consumers, periodic jobs) once; the workers, which uvicorn spawns fresh, only answer HTTP. Every process writes its
metrics into one folder made for this start (prometheus-client's multiprocess mode): ``/metrics`` in any worker
reads them all (``juwei.observability.metrics_exposition``), so counters add up across the workers and the
parent's relay and consumer figures are there too. A worker that dies is marked dead, so its live gauges drop out.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The service a worker serves, named in the environment the workers inherit: uvicorn then pickles only an import
# string for them, so a worker answers its supervisor's pings while it imports the service (a pickled factory made
# it import everything before its ping thread started).
WORKER_SERVICE = "JUWEI_WORKER_SERVICE"


def serve_workers(spec: str, host: str, port: int | None, workers: int, background: bool) -> None:
    """Serve ``spec`` with ``workers`` API processes until SIGTERM or SIGINT."""
    # prometheus-client picks its value store (memory, or files in the folder) when it is first imported: the
    # folder must be named before that, here and in the workers (they inherit it). juwei.cli does not import it.
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess folder was set")
    folder = Path(tempfile.mkdtemp(prefix="juwei-metrics-"))  # fresh each start: no counts from a previous run
    os.environ[MULTIPROC_DIR] = str(folder)
    try:
        _serve(spec, host, port, workers, background)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _serve(spec: str, host: str, port: int | None, workers: int, background: bool) -> None:
    from juwei.logs import configure_logging
    from juwei.service import Runtime, load_definition

    runtime = Runtime(load_definition(spec))
    configure_logging(runtime.settings.log_level, runtime.settings.log_levels, service=runtime.definition.name)
    # Once, before any worker starts: workers racing over migrations would fail each other's start.
    runtime.migrate()
    runtime.ensure_bootstrap_key()
    os.environ[WORKER_SERVICE] = spec
    config = uvicorn.Config(
        f"{__name__}:worker_from_environment",
        factory=True,
        timeout_worker_healthcheck=runtime.settings.worker_healthcheck_seconds,
        host=host,
        port=port or runtime.settings.port(runtime.definition.name),
        workers=workers,
        # As `juwei serve` with one process: uvicorn's lines as JSON through the root handler, no access lines.
        log_config=None,
        log_level=None,
        access_log=False,
    )
    sock = config.bind_socket()
    supervisor = _Supervisor(config, [sock])
    if background:
        runtime.start_background()
    try:
        supervisor.run()
    finally:
        sock.close()
        runtime.stop()


class _Supervisor(Multiprocess):
    """Uvicorn's supervisor of workers, which also tells prometheus-client when a worker has gone."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self._known: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        # Runs every half second after the signals are handled: a worker replaced by either is gone by now.
        super().keep_subprocess_alive()
        from prometheus_client import multiprocess

        running = {process.pid for process in self.processes if process.pid is not None}
        for pid in self._known - running:
            multiprocess.mark_process_dead(pid)
        self._known = running


def worker_from_environment() -> FastAPI:
    """A worker's app (uvicorn's factory): the service named by the parent in ``JUWEI_WORKER_SERVICE``."""
    from juwei.service import worker_app

    return worker_app(os.environ[WORKER_SERVICE])
