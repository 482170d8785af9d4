"""A throwaway PostgreSQL cluster for the tests, as they start their own Mosquitto: `initdb` and `pg_ctl` from
Debian's postgresql package, on a free port, in a temporary folder, removed at the end. Never the machine's own
server, never leftovers.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user (which Debian's
package creates); as anyone else it belongs to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from footfall.demo.broker import free_port, wait_for_port


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(
            f"{name} not found: install PostgreSQL (apt-get install postgresql; `make test` does it as root)"
        )
    return found[-1]


class PgCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="footfall-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> PgCluster:
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w", "start"
        )
        if not wait_for_port(self.port, 20):
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}; see {self.dir / 'log'}")
        return self

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
