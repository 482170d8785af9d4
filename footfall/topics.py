"""MQTT topic names of the wire contract (PROTOCOL.md v1): builders and a parser."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from footfall.errors import ValidationError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_PREFIX = "footfall"


def check_name(value: object, field: str) -> str:
    """Return `value` if it is a valid site, device or room name, else raise naming `field`."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError("must match [a-z0-9][a-z0-9-]{0,62}", field)
    return value


def device_event(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/{device}/event"


def device_status(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/{device}/status"


def device_config(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/{device}/config"


def device_cmd(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/{device}/cmd"


def device_ack(site: str, device: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Server -> device: which events the server has committed (the device deletes only those)."""
    return f"{prefix}/{site}/device/{device}/ack"


def room_state(site: str, room: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/room/{room}/state"


def schedule(site: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/schedule"


def server_status(site: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/server/status"


def server_cmd(site: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/server/cmd"


def alerts(site: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/alerts"


def all_device_events(site: str = "+", prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/+/event"


def all_device_status(site: str = "+", prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/device/+/status"


def all_room_states(site: str = "+", prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{site}/room/+/state"


@dataclass(frozen=True)
class Topic:
    """A parsed topic: kind is event/status/config/cmd/ack/state/schedule/server-status."""

    prefix: str
    site: str
    kind: str
    name: str | None = None  # device or room id


@functools.lru_cache(maxsize=4096)  # a site has few devices: ingest parses the same topics again and again
def parse(topic: str, prefix: str = DEFAULT_PREFIX) -> Topic:
    """Parse a Footfall topic; raise ValidationError("topic") when it is not one."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        raise ValidationError(f"not under {prefix}/<site>/", "topic")
    site = parts[1]
    if not NAME_RE.match(site):
        raise ValidationError("bad site name", "topic")
    rest = parts[2:]
    if len(rest) == 3 and rest[0] == "device" and rest[2] in ("event", "status", "config", "cmd", "ack"):
        if not NAME_RE.match(rest[1]):
            raise ValidationError("bad device name", "topic")
        return Topic(prefix, site, rest[2], rest[1])
    if len(rest) == 3 and rest[0] == "room" and rest[2] == "state":
        if not NAME_RE.match(rest[1]):
            raise ValidationError("bad room name", "topic")
        return Topic(prefix, site, "state", rest[1])
    if rest == ["schedule"]:
        return Topic(prefix, site, "schedule")
    if rest == ["alerts"]:
        return Topic(prefix, site, "alerts")
    if rest == ["server", "status"]:
        return Topic(prefix, site, "server-status")
    if rest == ["server", "cmd"]:
        return Topic(prefix, site, "server-cmd")
    raise ValidationError("unknown topic shape", "topic")
