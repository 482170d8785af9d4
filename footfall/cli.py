"""The `footfall` command. Top floor: every app is imported lazily, inside its command."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit
from footfall.errors import ConfigError, FootfallError

logger = logging.getLogger(__name__)


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class FootfallGroup(click.Group):
    """Turns Footfall's own errors into one clear line and a non-zero exit, never a traceback.

    The apps' commands are added when click first asks for a command, not at import: importing this module
    imports no app (tests/test_layers.py)."""

    apps_added = False

    def _add_apps(self) -> None:
        if not self.apps_added:
            self.apps_added = True
            add_app_commands(self)

    def get_command(self, ctx, cmd_name):
        self._add_apps()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        self._add_apps()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None
        except FootfallError as exc:
            raise click.ClickException(str(exc)) from None
        except ModuleNotFoundError as exc:
            raise click.ClickException(missing_extra_message(exc, ctx.invoked_subcommand)) from None


def missing_extra_message(exc: ModuleNotFoundError, command: str | None) -> str:
    """One line naming the extra that brings the missing module, for a box installed without it."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module) or EXTRA_OF_COMMAND.get(command or "", "all")
    return f"`footfall {command}` needs {module}, which is not installed: pip install 'footfall[{extra}]'"


# Modules that only one extra brings, then the extra of each command's app (pyproject.toml).
EXTRA_OF_MODULE = {
    "cv2": "camera",
    "numpy": "camera",
    "picamera2": "picamera",
    "amqtt": "demo",
    "psycopg": "district",
}
EXTRA_OF_COMMAND = {
    "counter": "beam",
    "kiosk": "kiosk",
    "demo": "demo",
    "demo-center": "demo",
    **dict.fromkeys(["server", "token", "report", "user", "device", "backup", "restore"], "server"),
}


@click.group(cls=FootfallGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.version_option(package_name="footfall")
def main(verbose: bool) -> None:
    """Footfall: door counters and check-in kiosks for community service centers."""
    setup_logging(verbose)


@main.command("check-config")
@SITE_OPTION
def check_config(config_path: str) -> None:
    """Validate a site file and print what it describes."""
    site = load_site_or_exit(config_path)
    click.echo(
        f"site {site.id} ({site.name}): {len(site.rooms)} rooms, {len(site.doors)} doors, {len(site.devices)} devices"
    )


# --- commands that live with their apps ---------------------------------------------------------------
# Each app registers its commands under the `footfall.commands` entry-point group (pyproject.toml), so this
# ground floor never imports an app. A command module imports only click at its top.
def add_app_commands(group: click.Group) -> None:
    for entry in entry_points(group="footfall.commands"):
        try:
            loaded = entry.load()
        except ImportError as exc:  # an app whose extra is not installed: list nothing rather than crash
            logger.debug("command %s not available: %s", entry.name, exc)
            continue
        for command in loaded if isinstance(loaded, list | tuple) else (loaded,):
            group.add_command(command)


if __name__ == "__main__":
    main()
