"""counter.toml: which device this is, its broker, its outbox, and its sensor (beam pins or camera line)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footfall.config import MQTT_SCHEMA, Key, Schema, load_toml, non_negative, one_of, positive, validate
from footfall.topics import check_name


def _name(value: str) -> None:
    check_name(value, "id")


def _line(value: list) -> None:
    if len(value) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError("must be four numbers [x1, y1, x2, y2] in pixels of the camera frame")


COUNTER_SCHEMA: Schema = {
    "device": {
        "id": Key(
            str, required=True, check=_name, help='the id of this counter in the site file, e.g. "door-main"'
        ),
        "site": Key(str, required=True, check=_name),
        "sensor": Key(str, "beam", check=one_of("beam", "camera")),
        "clock": Key(str, "auto", check=one_of("auto", "synced", "unsynced")),
        "data_dir": Key(str, "/var/lib/footfall"),
    },
    "mqtt": MQTT_SCHEMA,
    "outbox": {
        "max_events": Key(int, 100_000, check=positive),
        "high_water": Key(int, 1_000, check=positive),
        "window": Key(int, 1_000, check=positive),
    },
    "beam": {
        "pin_a": Key((int, str), 17),
        "pin_b": Key((int, str), 27),
        "pull_up": Key(bool, True),
        "active_high": Key(bool),
        "swap": Key(bool, False),
        "debounce": Key(float, 0.03, check=non_negative),
        "max_crossing": Key(float, 8.0, check=positive),
        "stuck_after": Key(float, 10.0, check=positive),
    },
    "led": {"pin": Key((int, str))},
    "camera": {
        "source": Key(str, "picamera"),
        "line": Key(list, check=_line),
        "in_direction": Key(str, "down", check=one_of("up", "down", "L->R", "R->L")),
        "person_size": Key(float, check=positive),
        "process_width": Key(int, 320, check=positive),
    },
}


@dataclass(frozen=True)
class CounterConfig:
    path: str
    device: dict[str, Any]
    mqtt: dict[str, Any]
    outbox: dict[str, Any]
    beam: dict[str, Any]
    led: dict[str, Any]
    camera: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return Path(self.device["data_dir"])


def load_counter_config(path: str | os.PathLike, env: dict[str, str] | None = None) -> CounterConfig:
    data = validate(load_toml(path), COUNTER_SCHEMA, str(path), env=env)
    device = dict(data["device"])
    if not Path(device["data_dir"]).is_absolute():
        device["data_dir"] = str(Path(path).resolve().parent / device["data_dir"])
    if device["sensor"] == "camera" and data["camera"]["line"] is None:
        from footfall.errors import ConfigError

        raise ConfigError(str(path), "camera.line", "is required for a camera counter: [x1, y1, x2, y2]")
    return CounterConfig(
        str(path), device, data["mqtt"], data["outbox"], data["beam"], data["led"], data["camera"]
    )


def edge_settings(config: CounterConfig):
    """The edge runtime's settings for this counter (beam or camera alike)."""
    from footfall.edge import EdgeSettings
    from footfall.link import LinkSettings

    dev = config.device
    return EdgeSettings(
        site=dev["site"],
        device=dev["id"],
        kind="counter",
        outbox_path=str(config.data_dir / f"outbox-{dev['id']}.db"),
        link=LinkSettings.from_config(config.mqtt),
        prefix=config.mqtt["prefix"],
        max_events=config.outbox["max_events"],
        high_water=config.outbox["high_water"],
        clock=dev["clock"],
        window=config.outbox["window"],
    )
