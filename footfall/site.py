"""The site file (site.toml): the center, its rooms, doors and devices, its broker and server settings."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.clock import parse_day_start
from footfall.config import (
    MQTT_SCHEMA,
    Key,
    MqttSettings,
    Schema,
    host_port,
    load_toml,
    non_negative,
    one_of,
    positive,
    typed,
    validate,
)
from footfall.errors import ConfigError
from footfall.topics import check_name

OUTDOORS = "outdoors"


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from None


def _day_start(value: str) -> None:
    try:
        parse_day_start(value)
    except ValueError:
        raise ValueError('must be "HH:MM", e.g. "04:00"') from None


def _floor(value: int) -> None:
    if value == 0 or not -9 <= value <= 99:
        raise ValueError("must be 1 for the ground floor, 2, 3... or -1, -2... below ground (no 0)")


def _name(value: str) -> None:
    check_name(value, "name")


def _optional_host_port(value: str) -> None:
    if value:
        host_port(value)


def _database_url(value: str) -> None:
    if value and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError('must be empty (SQLite in data_dir) or a "postgresql://..." URL')


def _http_url(value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")


SITE_SCHEMA: Schema = {
    "site": {
        "id": Key(str, required=True, check=_name, help='a short name such as "dongsi"'),
        "name": Key(str, required=True),
        "timezone": Key(str, "Asia/Shanghai", check=_timezone),
        "day_starts": Key(str, "00:00", check=_day_start),
    },
    # username/password are ingest's account, web_username/web_password the web's (server/mqtt_accounts.py).
    "mqtt": {**MQTT_SCHEMA, "client_id": Key(str), "web_username": Key(str), "web_password": Key(str)},
    "server": {
        "listen": Key(str, "127.0.0.1:8000", check=host_port),
        "ingest_metrics_listen": Key(str, "127.0.0.1:9108", check=_optional_host_port),
        "data_dir": Key(str, "data"),
        # Empty: SQLite in data_dir (the default); "postgresql://user@host/db": the PostgreSQL store.
        "database": Key(str, "", check=_database_url),
        "secret_key": Key(str),
        "batch_max": Key(int, 500, check=positive),
        # Ingest processes sharing the site's events on one MQTT shared subscription (PostgreSQL store only).
        "ingest_workers": Key(int, 1, check=positive),
        "future_tolerance_s": Key(int, 300, check=non_negative),
        "dead_letters_per_device_minute": Key(int, 60, check=positive),
        "dead_letters_max": Key(int, 10000, check=positive),
        "session_minutes": Key(int, 480, check=positive),
        "language": Key(str, "zh-CN", check=one_of("zh-CN", "en")),
        "cookie_secure": Key(bool, False),
        "trusted_proxies": Key(int, 0, check=non_negative),
        "header_timeout_s": Key(int, 10, check=positive),
        "idle_timeout_s": Key(int, 60, check=positive),
        "send_timeout_s": Key(int, 60, check=positive),
        "max_connections": Key(int, 4000, check=positive),
        "raw_retention_days": Key(int, 400, check=positive),
        "identified_retention_days": Key(int, 180, check=positive),
    },
    # Alerts that reach staff (docs/config.md "Alerts"); [[webhooks]] are where they are sent.
    "alerts": {
        "device_offline_s": Key(int, 300, check=positive),
        "ingest_stall_s": Key(int, 60, check=positive),
        "disk_free_min_mb": Key(int, 500, check=non_negative),
        "check_every_s": Key(int, 10, check=positive),
        "clock_skew_max_s": Key(int, 120, check=positive),
        "retry_max_s": Key(int, 600, check=positive),
        "give_up_after_h": Key(int, 24, check=positive),
    },
    "webhooks": {
        "url": Key(str, required=True, check=_http_url),
        "format": Key(str, "generic", check=one_of("generic", "wecom", "dingtalk", "feishu")),
        "secret": Key(str),
        "name": Key(str),
        "kinds": Key(list),
    },
    "rooms": {
        "id": Key(str, required=True, check=_name),
        "name": Key(str, required=True),
        "name_en": Key(str),
        "capacity": Key(int, required=True, check=non_negative),
        "floor": Key(int, check=_floor, help="the storey: 1 for the ground floor, -1 for the first basement"),
    },
    "doors": {
        "id": Key(str, required=True, check=_name),
        "device": Key(str, required=True, check=_name),
        "inside": Key(str, required=True, check=_name),
        "outside": Key(str, required=True, check=_name),
    },
    "devices": {
        "id": Key(str, required=True, check=_name),
        "kind": Key(str, required=True, check=one_of("counter", "kiosk")),
        "room": Key(str),
    },
}
TABLES = ("rooms", "doors", "devices", "webhooks")


@dataclass(frozen=True)
class Room:
    id: str
    name: str
    capacity: int
    name_en: str | None = None
    floor: int | None = None  # shown to visitors: "请到二楼电教室"


@dataclass(frozen=True)
class Door:
    id: str
    device: str
    inside: str
    outside: str


@dataclass(frozen=True)
class Device:
    id: str
    kind: str
    room: str | None = None


@dataclass(frozen=True)
class SiteMqttSettings(MqttSettings):
    """The site file's [mqtt]: username/password are ingest's account, web_username/web_password the web's."""

    client_id: str | None  # ingest's client id (default footfall-server-<site>-ingest)
    web_username: str | None
    web_password: str | None


@dataclass(frozen=True)
class ServerSettings:
    """[server]: the web's and ingest's own settings (docs/config.md)."""

    listen: str
    ingest_metrics_listen: str
    data_dir: str
    database: str  # empty: SQLite in data_dir
    secret_key: str | None
    batch_max: int
    ingest_workers: int
    future_tolerance_s: int
    dead_letters_per_device_minute: int
    dead_letters_max: int
    session_minutes: int
    language: str
    cookie_secure: bool
    trusted_proxies: int
    header_timeout_s: int
    idle_timeout_s: int
    send_timeout_s: int
    max_connections: int
    raw_retention_days: int
    identified_retention_days: int


@dataclass(frozen=True)
class AlertSettings:
    """[alerts]: when staff are told of a fault, and how long a webhook keeps trying."""

    device_offline_s: int
    ingest_stall_s: int
    disk_free_min_mb: int
    check_every_s: int
    clock_skew_max_s: int
    retry_max_s: int
    give_up_after_h: int


@dataclass(frozen=True)
class Webhook:
    """One [[webhooks]] table: where alert notices are POSTed, in which chat format."""

    url: str
    format: str
    secret: str | None
    name: str
    kinds: tuple[str, ...] | None  # None: every kind


@dataclass(frozen=True)
class SiteConfig:
    path: str
    id: str
    name: str
    timezone: ZoneInfo
    day_starts: dt.time
    mqtt: SiteMqttSettings
    server: ServerSettings
    rooms: tuple[Room, ...]
    doors: tuple[Door, ...]
    devices: tuple[Device, ...]
    alerts: AlertSettings
    rooms_by_id: dict[str, Room] = field(default_factory=dict, repr=False)
    doors_by_device: dict[str, Door] = field(default_factory=dict, repr=False)
    devices_by_id: dict[str, Device] = field(default_factory=dict, repr=False)
    webhooks: tuple[Webhook, ...] = ()

    @property
    def prefix(self) -> str:
        return self.mqtt.prefix

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "footfall.db"

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.server.listen.rpartition(":")
        return host, int(port)


def load_site(path: str | os.PathLike, env: dict[str, str] | None = None) -> SiteConfig:
    return site_from_dict(load_toml(path), str(path), env)


def site_from_dict(
    data: dict[str, Any], path: str = "<site>", env: dict[str, str] | None = None
) -> SiteConfig:
    conf = validate(data, SITE_SCHEMA, path, TABLES, env)
    rooms = tuple(Room(**r) for r in conf["rooms"])
    doors = tuple(Door(**d) for d in conf["doors"])
    devices = tuple(Device(**d) for d in conf["devices"])
    if not rooms:
        raise ConfigError(
            path, "rooms", "a site needs at least one [[rooms]] table: there is nothing to count"
        )
    _unique(path, "rooms", [r.id for r in rooms])
    _unique(path, "doors", [d.id for d in doors])
    _unique(path, "devices", [d.id for d in devices])
    if OUTDOORS in {r.id for r in rooms}:
        raise ConfigError(path, "rooms", f'"{OUTDOORS}" is reserved for the space outside the building')
    room_ids = {r.id for r in rooms}
    devices_by_id = {d.id: d for d in devices}
    doors_by_device: dict[str, Door] = {}
    for index, door in enumerate(doors):
        for side in ("inside", "outside"):
            space = getattr(door, side)
            if space != OUTDOORS and space not in room_ids:
                raise ConfigError(
                    path,
                    f"doors[{index}].{side}",
                    f"no room {space!r} (rooms: {', '.join(sorted(room_ids))})",
                )
        if door.inside == door.outside:
            raise ConfigError(path, f"doors[{index}]", "inside and outside must differ")
        device = devices_by_id.get(door.device)
        if device is None:
            raise ConfigError(path, f"doors[{index}].device", f"no device {door.device!r} in [[devices]]")
        if device.kind != "counter":
            raise ConfigError(
                path, f"doors[{index}].device", f"device {door.device!r} is a {device.kind}, not a counter"
            )
        if door.device in doors_by_device:
            raise ConfigError(
                path, f"doors[{index}].device", f"device {door.device!r} already watches another door"
            )
        doors_by_device[door.device] = door
    for index, device in enumerate(devices):
        if device.room is not None and device.room not in room_ids:
            raise ConfigError(path, f"devices[{index}].room", f"no room {device.room!r}")
    server = dict(conf["server"])
    if server["ingest_workers"] > 1 and not server["database"]:
        raise ConfigError(
            path,
            "server.ingest_workers",
            "more than 1 needs the PostgreSQL store ([server] database): an SQLite file has one writer",
        )
    data_dir = Path(server["data_dir"])
    if not data_dir.is_absolute() and path.startswith("<") is False:
        server["data_dir"] = str(Path(path).resolve().parent / data_dir)
    return SiteConfig(
        path=path,
        id=conf["site"]["id"],
        name=conf["site"]["name"],
        timezone=ZoneInfo(conf["site"]["timezone"]),
        day_starts=parse_day_start(conf["site"]["day_starts"]),
        mqtt=typed(SiteMqttSettings, conf["mqtt"]),
        server=typed(ServerSettings, server),
        rooms=rooms,
        doors=doors,
        devices=devices,
        rooms_by_id={r.id: r for r in rooms},
        doors_by_device=doors_by_device,
        devices_by_id=devices_by_id,
        alerts=typed(AlertSettings, conf["alerts"]),
        webhooks=tuple(_webhooks(path, conf["webhooks"])),
    )


def _webhooks(path: str, hooks: list[dict[str, Any]]) -> list[Webhook]:
    """Each webhook gets a name (its position by default): deliveries are tracked per name."""
    out = []
    for index, hook in enumerate(hooks):
        kinds = hook["kinds"]
        if kinds is not None and not all(isinstance(k, str) for k in kinds):
            raise ConfigError(path, f"webhooks[{index}].kinds", "must be a list of alert kinds (strings)")
        name = hook["name"] or f"webhook-{index}"
        out.append(typed(Webhook, {**hook, "name": name, "kinds": None if kinds is None else tuple(kinds)}))
    names = [h.name for h in out]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(path, f"webhooks[{index}].name", f"duplicate name {name!r}")
    return out


def _unique(path: str, section: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for index, ident in enumerate(ids):
        if ident in seen:
            raise ConfigError(path, f"{section}[{index}].id", f"duplicate id {ident!r}")
        seen.add(ident)
