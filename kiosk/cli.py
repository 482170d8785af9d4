"""`footfall kiosk -c kiosk.toml`: run the touch check-in kiosk on this Pi (registered by footfall.cli)."""

from __future__ import annotations

import click


@click.command("kiosk")
@click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The kiosk.toml file.",
)
@click.pass_context
def kiosk(ctx: click.Context, config_path: str) -> None:
    """Run the check-in kiosk: the local touch UI (for Chromium in kiosk mode) and its outbox to MQTT."""
    from footfall.errors import ConfigError
    from footfall.kiosk.config import load_kiosk_config
    from footfall.kiosk.main import run

    try:
        load_kiosk_config(
            config_path
        )  # a configuration error is one line and exit status 1, never a traceback
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    ctx.exit(run(config_path))
