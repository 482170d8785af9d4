"""kiosk.toml: which device this is, its broker, and the kiosk's own settings (listen, PIN, idle timers...)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.config import (
    DEVICE_MQTT_SCHEMA,
    OUTBOX_SCHEMA,
    Key,
    MqttSettings,
    OutboxSettings,
    Schema,
    host_port,
    load_toml,
    one_of,
    positive,
    typed,
    validate,
)
from footfall.errors import ConfigError
from footfall.i18n import LANGUAGES
from footfall.kiosk.pin import EXAMPLE_PIN, check_hash, is_example
from footfall.topics import check_name


def _name(value: str) -> None:
    check_name(value, "id")


def _loopback(value: str) -> None:
    host_port(value)
    host = value.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f'must be a loopback address (127.0.0.1, ::1 or localhost), got "{host}"')


def _plain_pin(value: str) -> None:
    raise ValueError(
        "a PIN in plain text is not accepted any more: run `footfall kiosk pin -c kiosk.toml`, which stores it "
        "hashed as staff_pin_hash (docs/kiosk.md)"
    )


def _pin_hash(value: str) -> None:
    check_hash(value)


def _hosts(value: list) -> None:
    if not value or not all(isinstance(h, str) and h and " " not in h for h in value):
        raise ValueError('must be a list of host names, e.g. ["127.0.0.1", "localhost"]')


def _answer_time(value: int) -> None:
    # WCAG 2.2.1: someone warned of a time-out gets at least 20 s to answer.
    if value < 20:
        raise ValueError("must be at least 20 (seconds to answer the idle warning)")


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None


def _day_start(value: str) -> None:
    hours, sep, minutes = value.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or int(hours) > 23 or int(minutes) > 59:
        raise ValueError('must be "HH:MM", e.g. "04:00"')


KIOSK_SCHEMA: Schema = {
    "device": {
        "id": Key(
            str, required=True, check=_name, help='the id of this kiosk in the site file, e.g. "kiosk-hall"'
        ),
        "site": Key(str, required=True, check=_name),
        "clock": Key(str, "auto", check=one_of("auto", "synced", "unsynced")),
    },
    "mqtt": DEVICE_MQTT_SCHEMA,
    "kiosk": {
        "listen": Key(str, "127.0.0.1:8080", check=_loopback),
        "data_dir": Key(str, "/var/lib/footfall-kiosk"),
        "staff_pin": Key(str, check=_plain_pin),
        "staff_pin_hash": Key(
            str,
            required=True,
            check=_pin_hash,
            help="the staff-mode PIN, hashed: run `footfall kiosk pin -c kiosk.toml` to set it",
        ),
        # Host names the UI answers to (the Host header; against DNS rebinding); the listen host is always one.
        "allowed_hosts": Key(list, ["127.0.0.1", "localhost", "::1"], check=_hosts),
        "idle_seconds": Key(int, 60, check=positive),
        "warn_seconds": Key(int, 30, check=_answer_time),
        "success_seconds": Key(int, 5, check=positive),
        "language": Key(str, "zh-CN", check=one_of(*LANGUAGES)),
        "sound": Key(bool, False),
        "camera": Key(bool, False),
        "camera_device": Key(int, 0),
        "timezone": Key(str, "Asia/Shanghai", check=_timezone),
        "day_starts": Key(str, "00:00", check=_day_start),
        "center_name": Key(str, "党群服务中心"),
        "center_name_en": Key(str, "Community service center"),
        "member_retention_days": Key(int, 180, check=positive),
    },
    # The durable outbox of check-ins and help calls (as in counter.toml): when max_events wait unsent, a new
    # check-in is refused and the visitor is asked to see the service desk.
    "outbox": OUTBOX_SCHEMA,
}


@dataclass(frozen=True)
class KioskDevice:
    """[device] of kiosk.toml: which kiosk of which site this is."""

    id: str
    site: str
    clock: str


@dataclass(frozen=True)
class KioskSettings:
    """[kiosk]: the kiosk app's own settings (docs/kiosk.md)."""

    listen: str
    data_dir: str
    staff_pin: str | None  # refused when set: only the hash is accepted
    staff_pin_hash: str
    allowed_hosts: tuple[str, ...]
    idle_seconds: int
    warn_seconds: int
    success_seconds: int
    language: str
    sound: bool
    camera: bool
    camera_device: int
    timezone: str
    day_starts: str
    center_name: str
    center_name_en: str
    member_retention_days: int


@dataclass(frozen=True)
class KioskConfig:
    path: str
    device: KioskDevice
    mqtt: MqttSettings
    kiosk: KioskSettings
    outbox: OutboxSettings

    @property
    def data_dir(self) -> Path:
        return Path(self.kiosk.data_dir)

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.kiosk.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        hosts = [h.lower().strip("[]") for h in self.kiosk.allowed_hosts]
        return tuple(dict.fromkeys([self.listen[0].lower(), *hosts]))

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.kiosk.timezone)


def kiosk_config_from_dict(
    raw: dict[str, Any], path: str = "<kiosk>", env: dict[str, str] | None = None
) -> KioskConfig:
    data = validate(raw, KIOSK_SCHEMA, path, env=env)
    kiosk = {**data["kiosk"], "allowed_hosts": tuple(data["kiosk"]["allowed_hosts"])}
    if not Path(kiosk["data_dir"]).is_absolute() and not path.startswith("<"):
        kiosk["data_dir"] = str(Path(path).resolve().parent / kiosk["data_dir"])
    return KioskConfig(
        path,
        typed(KioskDevice, data["device"]),
        typed(MqttSettings, data["mqtt"]),
        typed(KioskSettings, kiosk),
        typed(OutboxSettings, data["outbox"]),
    )


def load_kiosk_config(path: str | os.PathLike, env: dict[str, str] | None = None) -> KioskConfig:
    return kiosk_config_from_dict(load_toml(path), str(path), env)


def refuse_example_pin(config: KioskConfig) -> None:
    """At start-up: the example's PIN would let anyone who has read the documentation into staff mode."""
    if is_example(config.kiosk.staff_pin_hash):
        raise ConfigError(
            config.path,
            "kiosk.staff_pin_hash",
            f"is the example's PIN {EXAMPLE_PIN}, refused outside the demo: "
            f"set your own with `footfall kiosk pin -c {config.path}`",
        )
