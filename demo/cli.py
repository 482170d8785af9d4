"""`footfall demo` (and the hidden `demo-center` it starts): registered through `footfall.commands`."""

from __future__ import annotations

import sys

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit


@click.command("demo")
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
    # Every part's modules first: without the [demo] extra this fails here in one line, not in each child.
    import gpiozero  # noqa: F401

    import footfall.kiosk.main  # noqa: F401
    import footfall.server.ingest  # noqa: F401
    import footfall.server.web.serve  # noqa: F401
    from footfall.demo.run import run_demo

    sys.exit(run_demo(data_dir, speed, port, seed, broker_kind))


@click.command("demo-center", hidden=True)
@SITE_OPTION
@click.option("--speed", type=float, default=60.0)
@click.option("--seed", type=int, default=1)
@click.option("--data-dir", type=click.Path(file_okay=False), required=True)
@click.option("--kiosk-url", required=True, help="Check in through this running kiosk app.")
def demo_center(config_path: str, speed: float, seed: int, data_dir: str, kiosk_url: str) -> None:
    """The simulated door counters and visitors of `footfall demo` (one process for all doors)."""
    import threading
    from pathlib import Path

    from footfall.demo.center_sim import run_center
    from footfall.signals import wait_for_signal

    site = load_site_or_exit(config_path)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_center, args=(site, Path(data_dir), speed, seed, stop, site.mqtt.port, kiosk_url)
    )
    worker.start()
    wait_for_signal(stop)
    stop.set()
    worker.join(20)
