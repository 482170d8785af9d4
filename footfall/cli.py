"""The `footfall` command. Top floor: every app is imported lazily, inside its command."""

from __future__ import annotations

import logging
import sys

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit
from footfall.errors import ConfigError, FootfallError

logger = logging.getLogger(__name__)

CONFIG_OPTION = SITE_OPTION  # the site file; counter and kiosk commands take their own -c


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class FootfallGroup(click.Group):
    """Turns Footfall's own errors into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=FootfallGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.version_option(package_name="footfall")
def main(verbose: bool) -> None:
    """Footfall: door counters and check-in kiosks for community service centers."""
    setup_logging(verbose)


@main.command()
@CONFIG_OPTION
@click.option(
    "--only",
    type=click.Choice(["ingest", "web"]),
    default=None,
    help="Run one part (as two systemd units do).",
)
def server(config_path: str, only: str | None) -> None:
    """Run the central server: ingest (MQTT -> store -> room state) and web (dashboard, API)."""
    site = load_site_or_exit(config_path)
    if only == "ingest":
        from server.process import run_ingest

        run_ingest(site)
    elif only == "web":
        from server.web.serve import main_web

        main_web(site)
    else:
        from server.process import run_both

        sys.exit(run_both(config_path))


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@CONFIG_OPTION
@click.option("--role", type=click.Choice(["viewer", "staff", "admin"]), required=True)
@click.option("--label", default="", help="What the token is for (e.g. lobby screen).")
def token_create(config_path: str, role: str, label: str) -> None:
    """Create a bearer token and print it once (only its hash is stored)."""
    site = load_site_or_exit(config_path)
    from server.store import SqliteStore
    from server.web.auth import create_token

    click.echo(create_token(SqliteStore(site.db_path), role, label or role))


@main.command()
@click.option(
    "--speed",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="How many times faster than real time the simulated day runs.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Web port (default: a free one).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the demo's data here (default: a temporary folder, removed at exit).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulated day.")
@click.option(
    "--broker",
    "broker_kind",
    type=click.Choice(["mosquitto", "amqtt"]),
    default=None,
    help="Which broker to start (default: Mosquitto if installed, else the embedded amqtt).",
)
def demo(speed: float, port: int | None, data_dir: str | None, seed: int, broker_kind: str | None) -> None:
    """Run a whole center on this machine: broker, server, simulated door counters and a kiosk."""
    from footfall.demo import run_demo

    sys.exit(run_demo(data_dir, speed, port, seed, broker_kind))


@main.command("demo-center", hidden=True)
@CONFIG_OPTION
@click.option("--speed", type=float, default=60.0)
@click.option("--seed", type=int, default=1)
@click.option("--data-dir", type=click.Path(file_okay=False), required=True)
@click.option("--kiosk-url", default=None, help="Check in through this running kiosk app.")
def demo_center(config_path: str, speed: float, seed: int, data_dir: str, kiosk_url: str | None) -> None:
    """The simulated devices of `footfall demo` (one process for all doors and the kiosk)."""
    import threading
    from pathlib import Path

    from counter.center_sim import run_center
    from footfall.signals import wait_for_signal

    site = load_site_or_exit(config_path)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_center, args=(site, Path(data_dir), speed, seed, stop, site.mqtt["port"])
    )
    worker.start()
    wait_for_signal(stop)
    stop.set()
    worker.join(20)


@main.command("check-config")
@CONFIG_OPTION
def check_config(config_path: str) -> None:
    """Validate a site file and print what it describes."""
    site = load_site_or_exit(config_path)
    click.echo(
        f"site {site.id} ({site.name}): {len(site.rooms)} rooms, {len(site.doors)} doors, {len(site.devices)} devices"
    )


# --- commands that live with their apps ---------------------------------------------------------------
# Each module below imports only click at its top; its commands import their app lazily. One line each.
from counter.cli import counter as counter_command  # noqa: E402

main.add_command(counter_command)
from kiosk.cli import kiosk as kiosk_command  # noqa: E402

main.add_command(kiosk_command)
from server.reports_cli import report  # noqa: E402

main.add_command(report)
from server.admin_cli import COMMANDS as admin_commands  # noqa: E402 - device, user, backup, restore

for admin_command in admin_commands:
    main.add_command(admin_command)


if __name__ == "__main__":
    main()
