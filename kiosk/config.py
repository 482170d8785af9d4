"""kiosk.toml: which device this is, its broker, and the kiosk's own settings (listen, PIN, idle timers...)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.config import MQTT_SCHEMA, Key, Schema, host_port, load_toml, one_of, positive, validate
from footfall.topics import check_name

LANGUAGES = ("zh-CN", "en")


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


def _pin(value: str) -> None:
    if not value.isdigit() or not 4 <= len(value) <= 8:
        raise ValueError('must be 4 to 8 digits, as a string (e.g. "2468")')


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
    "mqtt": MQTT_SCHEMA,
    "kiosk": {
        "listen": Key(str, "127.0.0.1:8080", check=_loopback),
        "data_dir": Key(str, "/var/lib/footfall-kiosk"),
        "staff_pin": Key(
            str, required=True, check=_pin, help='a PIN of 4 to 8 digits for staff mode, e.g. "2468"'
        ),
        "idle_seconds": Key(int, 60, check=positive),
        "warn_seconds": Key(int, 15, check=positive),
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
}


@dataclass(frozen=True)
class KioskConfig:
    path: str
    device: dict[str, Any]
    mqtt: dict[str, Any]
    kiosk: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return Path(self.kiosk["data_dir"])

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.kiosk["listen"].rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.kiosk["timezone"])


def kiosk_config_from_dict(
    raw: dict[str, Any], path: str = "<kiosk>", env: dict[str, str] | None = None
) -> KioskConfig:
    data = validate(raw, KIOSK_SCHEMA, path, env=env)
    kiosk = dict(data["kiosk"])
    if not Path(kiosk["data_dir"]).is_absolute() and not path.startswith("<"):
        kiosk["data_dir"] = str(Path(path).resolve().parent / kiosk["data_dir"])
    return KioskConfig(path, data["device"], data["mqtt"], kiosk)


def load_kiosk_config(path: str | os.PathLike, env: dict[str, str] | None = None) -> KioskConfig:
    return kiosk_config_from_dict(load_toml(path), str(path), env)
