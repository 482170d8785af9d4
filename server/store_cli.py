"""`footfall store check`: SQLite's integrity check of the site's store, read-only (safe while the server runs).

Only click and the shared core are imported at the top (a command module of the `footfall.commands` group).
"""

from __future__ import annotations

from pathlib import Path

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit


@click.group("store")
def store() -> None:
    """Look after the server's store (the SQLite file in the site's data_dir)."""


@store.command("check")
@SITE_OPTION
def check(config_path: str) -> None:
    """Run SQLite's integrity check on the store; exit 1 and list the problems when it is damaged."""
    site = load_site_or_exit(config_path)
    from footfall.server.store import is_postgres

    if is_postgres(site.server.get("database")):
        raise click.ClickException(
            "the store is PostgreSQL ([server] database): check it with PostgreSQL's tools"
        )
    problems = integrity_problems(Path(site.db_path))
    if problems:
        for problem in problems:
            click.echo(f"{site.db_path}: {problem}", err=True)
        raise SystemExit(1)
    click.echo(f"{site.db_path}: ok")


def integrity_problems(path: Path, limit: int = 20) -> list[str]:
    """SQLite's `PRAGMA integrity_check` on a read-only connection; [] when the file is sound."""
    import sqlite3

    if not path.exists():
        return ["no such file (the server creates it on its first start)"]
    if path.stat().st_size == 0:
        return ["the file is empty (0 bytes): restore it from a backup, or delete it to start a new store"]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [row[0] for row in conn.execute(f"PRAGMA integrity_check({int(limit)})")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"not a usable SQLite database ({exc})"]
    return [] if rows == ["ok"] else rows
