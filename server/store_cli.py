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

    if is_postgres(site.server.database):
        raise click.ClickException(
            "the store is PostgreSQL ([server] database): check it with PostgreSQL's tools"
        )
    from footfall.server.store_files import integrity_problems

    problems = integrity_problems(Path(site.db_path))
    if problems:
        for problem in problems:
            click.echo(f"{site.db_path}: {problem}", err=True)
        raise SystemExit(1)
    click.echo(f"{site.db_path}: ok")
