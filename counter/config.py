"""counter.toml: which device this is, its broker, its outbox, and its sensor (beam pins or camera line)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footfall.config import (
    DEVICE_MQTT_SCHEMA,
    OUTBOX_SCHEMA,
    Key,
    MqttSettings,
    OutboxSettings,
    Schema,
    load_toml,
    non_negative,
    one_of,
    positive,
    typed,
    validate,
)
from footfall.errors import ConfigError
from footfall.topics import check_name


def _name(value: str) -> None:
    check_name(value, "id")


GPIO_MAX = 27  # a Raspberry Pi's 40-pin header carries BCM GPIO 0-27


def pin_number(value: int | str) -> int | str:
    """A pin as gpiozero names it: 17, "17", "GPIO17" and "BCM17" are BCM 17; other names ("BOARD11", "J8:11")
    are kept as written. Raises ValueError for a BCM number the Pi does not have."""
    text = str(value).strip().upper()
    for prefix in ("GPIO", "BCM", ""):
        digits = text[len(prefix) :] if text.startswith(prefix) else None
        if digits is not None and digits.lstrip("-").isdigit():
            number = int(digits)
            if not 0 <= number <= GPIO_MAX:
                raise ValueError(f"{value!r} is not a GPIO pin of a Raspberry Pi (BCM 0-{GPIO_MAX})")
            return number
    if not text:
        raise ValueError("must not be empty")
    return text


def _pin(value: int | str) -> None:
    pin_number(value)


def _line(value: list) -> None:
    if len(value) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError("must be four numbers [x1, y1, x2, y2] in pixels of the camera frame")


def _size_model(value: dict) -> None:
    from footfall.counter.camera.size_model import SizeModel

    SizeModel.from_config(value)


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
    "mqtt": DEVICE_MQTT_SCHEMA,
    "outbox": OUTBOX_SCHEMA,
    "beam": {
        "pin_a": Key((int, str), 17, check=_pin),
        "pin_b": Key((int, str), 27, check=_pin),
        "pull_up": Key(bool, True),
        "active_high": Key(bool),
        "swap": Key(bool, False),
        "debounce": Key(float, 0.03, check=non_negative),
        "max_crossing": Key(float, 8.0, check=positive),
        "stuck_after": Key(float, 10.0, check=positive),
    },
    "led": {"pin": Key((int, str), check=_pin)},
    "camera": {
        "source": Key(str, "picamera"),
        "line": Key(list, check=_line),
        "in_direction": Key(str, "down", check=one_of("up", "down", "L->R", "R->L")),
        "person_size": Key(float, check=positive),
        "size_model": Key(dict, check=_size_model, help="written by `footfall counter calibrate`"),
        "process_width": Key(int, 320, check=positive),
    },
}


@dataclass(frozen=True)
class CounterDevice:
    """[device] of counter.toml: which counter of which site, and what senses the door."""

    id: str
    site: str
    sensor: str
    clock: str
    data_dir: str


@dataclass(frozen=True)
class BeamSettings:
    """[beam]: the two break-beams' pins and the timings that tell a crossing from noise."""

    pin_a: int | str
    pin_b: int | str
    pull_up: bool
    active_high: bool | None  # None: follows pull_up
    swap: bool
    debounce: float
    max_crossing: float
    stuck_after: float


@dataclass(frozen=True)
class LedSettings:
    pin: int | str | None


@dataclass(frozen=True)
class CameraSettings:
    """[camera]: the source, the counting line and the person size (docs/camera.md)."""

    source: str
    line: list | None
    in_direction: str
    person_size: float | None
    size_model: dict | None
    process_width: int


@dataclass(frozen=True)
class CounterConfig:
    path: str
    device: CounterDevice
    mqtt: MqttSettings
    outbox: OutboxSettings
    beam: BeamSettings
    led: LedSettings
    camera: CameraSettings

    @property
    def data_dir(self) -> Path:
        return Path(self.device.data_dir)


def load_counter_config(path: str | os.PathLike, env: dict[str, str] | None = None) -> CounterConfig:
    return counter_config_from_dict(load_toml(path), str(path), env)


def counter_config_from_dict(
    raw: dict[str, Any], path: str = "<counter>", env: dict[str, str] | None = None
) -> CounterConfig:
    data = validate(raw, COUNTER_SCHEMA, path, env=env)
    device = dict(data["device"])
    if not Path(device["data_dir"]).is_absolute() and not path.startswith("<"):
        device["data_dir"] = str(Path(path).resolve().parent / device["data_dir"])
    if device["sensor"] == "beam":
        _check_pins_differ(path, data["beam"], data["led"])
    if device["sensor"] == "camera" and data["camera"]["line"] is None:
        raise ConfigError(path, "camera.line", "is required for a camera counter: [x1, y1, x2, y2]")
    return CounterConfig(
        path,
        typed(CounterDevice, device),
        typed(MqttSettings, data["mqtt"]),
        typed(OutboxSettings, data["outbox"]),
        typed(BeamSettings, data["beam"]),
        typed(LedSettings, data["led"]),
        typed(CameraSettings, data["camera"]),
    )


def _check_pins_differ(path: str, beam: dict[str, Any], led: dict[str, Any]) -> None:
    """Two beams (or a beam and the LED) on one pin would count nothing and fail only at start-up."""
    used: dict[int | str, str] = {}
    for key, value in (("beam.pin_a", beam["pin_a"]), ("beam.pin_b", beam["pin_b"]), ("led.pin", led["pin"])):
        if value is None:
            continue
        number = pin_number(value)
        if number in used:
            raise ConfigError(path, key, f"pin {value!r} is already used by {used[number]}")
        used[number] = key


def edge_settings(config: CounterConfig):
    """The edge runtime's settings for this counter (beam or camera alike)."""
    from footfall.edge import EdgeSettings
    from footfall.link import LinkSettings

    dev = config.device
    return EdgeSettings(
        site=dev.site,
        device=dev.id,
        kind="counter",
        outbox_path=str(config.data_dir / f"outbox-{dev.id}.db"),
        link=LinkSettings.from_config(config.mqtt),
        prefix=config.mqtt.prefix,
        max_events=config.outbox.max_events,
        high_water=config.outbox.high_water,
        clock=dev.clock,
        window=config.outbox.window,
    )
