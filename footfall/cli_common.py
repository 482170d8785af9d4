"""What every `footfall` command that reads a site file shares: the `-c site.toml` option and its loading.

Imports only click and the shared core, so the apps' command modules can use it without importing each other.
"""

from __future__ import annotations

import click

from footfall.errors import ConfigError

SITE_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The site file (site.toml).",
)


def load_site_or_exit(path: str):
    """The validated site file, or one clear line naming the file and key and a non-zero exit."""
    from footfall.site import load_site

    try:
        return load_site(path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
