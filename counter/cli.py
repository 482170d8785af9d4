"""`footfall counter`: run a door counter, simulate one, or evaluate and place a camera counter."""

from __future__ import annotations

import click


@click.group("counter", invoke_without_command=True)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="The counter.toml file.")
@click.option("--simulate", is_flag=True, help="Use mock pins driven by simulated visitors (no hardware).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.01),
    default=0.5,
    show_default=True,
    help="Simulated people per second.",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=None, help="Stop simulating after this many people."
)
@click.option("--seed", type=int, default=None, help="Seed of the simulated visitors (repeatable runs).")
@click.option("--fast", is_flag=True, help="Simulate all --count people at once on a simulated clock.")
@click.pass_context
def counter(
    ctx: click.Context,
    config_path: str | None,
    simulate: bool,
    rate: float,
    count: int | None,
    seed: int | None,
    fast: bool,
) -> None:
    """Run the door counter on this Pi: `footfall counter -c counter.toml`."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("give the counter's configuration with -c counter.toml")
    from footfall.counter.config import load_counter_config
    from footfall.counter.run import run_counter

    config = load_counter_config(config_path)
    if config.device.sensor == "camera":
        from footfall.counter.camera_app import run_camera_counter

        ctx.exit(run_camera_counter(config))
    if fast and count is None:
        raise click.UsageError("--fast needs --count")
    ctx.exit(run_counter(config, simulate=simulate, rate=rate, count=count, seed=seed, fast=fast))


def _add_camera_commands() -> None:
    from footfall.counter.camera.cli import calibrate, evaluate, snapshot

    counter.add_command(evaluate)
    counter.add_command(snapshot)
    counter.add_command(calibrate)


_add_camera_commands()
