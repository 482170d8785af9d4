"""`footfall server` and `footfall token`: registered through the `footfall.commands` entry points.

Only click and the shared core are imported here; the server itself is imported inside each command, so a box
without the `[server]` extra still lists these commands and says which extra to install.
"""

from __future__ import annotations

import sys

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit


@click.command("server")
@SITE_OPTION
@click.option(
    "--only",
    type=click.Choice(["ingest", "web", "ingest-worker"]),
    default=None,
    help="Run one part (as two systemd units do); ingest starts its own workers ([server] ingest_workers).",
)
@click.option(
    "--worker",
    type=click.IntRange(min=2),
    default=None,
    help="With --only ingest-worker: which of [server] ingest_workers (2..N) this is.",
)
def server(config_path: str, only: str | None, worker: int | None) -> None:
    """Run the central server: ingest (MQTT -> store -> room state) and web (dashboard, API)."""
    site = load_site_or_exit(config_path)
    if (only == "ingest-worker") != (worker is not None):
        raise click.UsageError("--worker K goes with --only ingest-worker, and only there")
    if worker is not None and worker > site.server.ingest_workers:
        raise click.UsageError(f"--worker {worker}: [server] ingest_workers is {site.server.ingest_workers}")
    if only in ("ingest", "ingest-worker"):
        from footfall.server.process import run_ingest

        run_ingest(site, worker or 1)
    elif only == "web":
        from footfall.server.web.serve import main_web

        main_web(site)
    else:
        # Both parts' modules first: without the [server] extra this fails here in one line, not in each child.
        import footfall.server.ingest  # noqa: F401
        import footfall.server.web.serve  # noqa: F401
        from footfall.server.process import run_both

        sys.exit(run_both(config_path, site))


@click.group("token")
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@SITE_OPTION
@click.option("--role", type=click.Choice(["viewer", "staff", "admin"]), required=True)
@click.option("--label", default="", help="What the token is for (e.g. lobby screen).")
def token_create(config_path: str, role: str, label: str) -> None:
    """Create a bearer token and print it once (only its hash is stored)."""
    site = load_site_or_exit(config_path)
    from footfall.server.store import open_store
    from footfall.server.web.auth import create_token

    click.echo(create_token(open_store(site), role, label or role))
