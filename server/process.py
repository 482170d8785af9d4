"""Server processes: ingest and web run as separate processes sharing the store and the bus, not memory."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from footfall import sdnotify
from footfall.errors import FootfallError
from footfall.signals import stop_children
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)


EXIT_RESTART = 70  # "restart me": the ingest worker died or stalled (the supervisor and systemd restart it)
RESTARTS_PER_MINUTE = 5


def run_ingest(site: SiteConfig, worker: int = 1) -> int:
    """Run ingest until a signal (exit 0), or until its worker dies or stalls (EXIT_RESTART, for a restart).

    Worker 1 is the site's ingest; with `[server] ingest_workers` > 1 it also starts and watches workers 2..N
    (server.ingest_workers), each run here with its number."""
    from footfall.server.ingest_service import IngestService
    from footfall.server.store import open_store

    store = open_store(site)
    service = IngestService(site, store, worker=worker).start()
    workers = None
    if worker == 1 and site.server.ingest_workers > 1:
        from footfall.server.ingest_workers import IngestWorkers

        workers = IngestWorkers(site).start()
    sdnotify.ready()
    logger.info("ingest worker %d running for site %s (store %s)", worker, site.id, store.describe())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    problem = watch(service, stop, workers=workers)
    if problem:
        logger.error("%s: exiting so that it is restarted", problem)
        # No clean stop: a stalled worker may hold the store's lock. Nothing unacknowledged is lost; the
        # other workers die with this process (PR_SET_PDEATHSIG) and start again with it.
        os._exit(EXIT_RESTART)
    if workers is not None:
        workers.stop()
    service.stop()
    return 0


def watch(service, stop: threading.Event, every: float = 1.0, workers=None) -> str | None:
    """Wait for `stop` (None) or for the service to report a problem that needs a restart (its text)."""
    while not stop.wait(every):
        problem = service.problem()
        if problem:
            return problem
        if workers is not None:
            service.health.workers_problems = workers.check()
    return None


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: get SIGTERM when the parent dies, however it dies (SIGKILL included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


PR_SET_PDEATHSIG = 1


def check_port_free(host: str, port: int) -> None:
    """Raise FootfallError (one line) when the web's address is taken, before any child starts."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise FootfallError(busy_port_message(host, port, exc)) from None


def busy_port_message(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: the port is in use (is another footfall server running?)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


class Child:
    """One part (ingest or web) as a child process that dies with its parent."""

    def __init__(self, part: str, args: list[str], data_dir: str, worker: int | None = None):
        self.part, self.args, self.data_dir = part, args, data_dir
        # Whose heartbeat file tells whether it is stalled: ingest worker 1 (the "ingest" part) or k (its workers).
        self.worker = 1 if worker is None and part == "ingest" else worker
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.restarts: list[float] = []

    def start(self) -> None:
        parent = os.getpid()
        self.proc = subprocess.Popen(self.args, preexec_fn=lambda: _die_with_parent(parent))  # noqa: PLW1509
        self.started = time.monotonic()

    def stalled(self) -> str | None:
        """Ingest only: its heartbeat is older than EXIT_AFTER_S (frozen by SIGSTOP, or hung)."""
        from footfall.server.health import EXIT_AFTER_S, heartbeat_age, read_heartbeat

        if self.worker is None or time.monotonic() - self.started < EXIT_AFTER_S:
            return None
        beat = read_heartbeat(self.data_dir, self.worker)
        age = heartbeat_age(beat) if beat else float("inf")
        return f"no heartbeat for {age:.0f} s" if age > EXIT_AFTER_S else None


def run_both(config_path: str, site: SiteConfig | None = None, extra_args: list[str] | None = None) -> int:
    """Run ingest and web as two child processes and supervise them.

    A part that crashes (killed by a signal, or exit EXIT_RESTART: worker dead or stalled) or whose heartbeat
    stops is restarted, at most RESTARTS_PER_MINUTE times a minute; a part that exits with an error (bad store,
    busy port) stops both. The children die with this process, however it dies (PR_SET_PDEATHSIG).
    """
    if site is not None:
        from footfall.server.store import open_store

        open_store(site).close()  # a damaged, empty or unreachable store: one line, before any child starts
        check_port_free(*site.listen)
    data_dir = str(site.data_dir) if site is not None else "."
    children = [
        Child(
            part,
            [
                sys.executable,
                "-m",
                "footfall.cli",
                "server",
                "-c",
                config_path,
                "--only",
                part,
                *(extra_args or []),
            ],
            data_dir,
        )
        for part in ("ingest", "web")
    ]
    for child in children:
        child.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    code = 0
    while not stop.is_set():
        for child in children:
            assert child.proc is not None
            returncode = child.proc.poll()
            stalled = child.stalled() if returncode is None else None
            if stalled:
                logger.error("server part %s: %s; killing it", child.part, stalled)
                child.proc.kill()
                child.proc.wait()
                returncode = -signal.SIGKILL
            if returncode is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < 60]
            if (returncode < 0 or returncode == EXIT_RESTART) and len(child.restarts) < RESTARTS_PER_MINUTE:
                logger.error("server part %s ended (%s); restarting it", child.part, returncode)
                child.restarts.append(now)
                child.start()
                continue
            logger.error("server part %s exited with %s; stopping", child.part, returncode)
            code = returncode if returncode > 0 else 1
            stop.set()
        stop.wait(0.5)
    stop_children([c.proc for c in children if c.proc is not None])
    return code
