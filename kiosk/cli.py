"""`footfall kiosk -c kiosk.toml`: run the touch check-in kiosk on this Pi; `footfall kiosk pin -c kiosk.toml`: set
its staff PIN, stored hashed (registered by footfall.cli)."""

from __future__ import annotations

import click

CONFIG_HELP = "The kiosk.toml file."


@click.group("kiosk", invoke_without_command=True)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.pass_context
def kiosk(ctx: click.Context, config_path: str | None) -> None:
    """Run the check-in kiosk: the local touch UI (for Chromium in kiosk mode) and its outbox to MQTT.

    `footfall kiosk pin -c kiosk.toml` sets the staff PIN."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("Missing option '-c' / '--config'.")
    from footfall.errors import ConfigError
    from footfall.kiosk.config import load_kiosk_config, refuse_example_pin
    from footfall.kiosk.main import run

    try:  # a configuration error is one line and a non-zero exit, never a traceback
        refuse_example_pin(load_kiosk_config(config_path))
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    ctx.exit(run(config_path))


@kiosk.command("pin")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Write the hash into this kiosk.toml.",
)
@click.option("--print", "print_only", is_flag=True, help="Only print the staff_pin_hash line.")
def pin(config_path: str | None, print_only: bool) -> None:
    """Ask for a new staff PIN (4 to 8 digits) and store it hashed as `staff_pin_hash` in kiosk.toml."""
    from pathlib import Path

    from footfall.kiosk.pin import check_pin, hash_pin, weak_reason, with_pin_hash, write_keeping_mode

    if not print_only and config_path is None:
        raise click.UsageError("give -c kiosk.toml (or --print to only print the line)")
    new = click.prompt("New staff PIN (4 to 8 digits)", hide_input=True, confirmation_prompt=True)
    try:
        check_pin(new)
    except ValueError as exc:
        raise click.ClickException(f"the PIN {exc}") from None
    reason = weak_reason(new)
    if reason:
        raise click.ClickException(f"choose another PIN: {reason}")
    stored = hash_pin(new)
    if print_only:
        click.echo(f'staff_pin_hash = "{stored}"')
        return
    path = Path(config_path)
    try:
        text = path.read_text("utf-8") if path.exists() else ""
        write_keeping_mode(path, with_pin_hash(text, stored))
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"{path}: staff_pin_hash set (restart the kiosk to use it)")
