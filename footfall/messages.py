"""Typed messages of the wire contract (PROTOCOL.md v1) with validation that names the bad field.

No I/O here: decode bytes -> message, encode message -> bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from footfall import member_code
from footfall.clock import format_ts, parse_ts
from footfall.errors import ValidationError
from footfall.levels import level_for  # noqa: F401 - re-exported: the server and tests import it from here
from footfall.topics import check_name

VERSION = 1
MAX_PAYLOAD = 4096
MAX_DEPTH = 16  # events are flat; a status's health object may nest a little
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # SQLite's INTEGER: a bigger int would overflow on the way in
# Event times outside this window are not clocks but garbage (and near year 1 or 9999 `datetime` overflows).
TS_MIN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TS_MAX = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
PURPOSES = ("affairs", "class", "activity", "reading", "counselling", "culture", "other")
CLOCK_STATES = ("synced", "unsynced")


def _require(obj: dict, key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if key not in obj:
        if optional:
            return None
        raise ValidationError("missing", key)
    value = obj[key]
    # bool is an int in Python; the contract's ints are never booleans.
    if isinstance(value, bool) and kind is not bool:
        raise ValidationError(f"must be {_kind_name(kind)}, got boolean", key)
    if not isinstance(value, kind):
        raise ValidationError(f"must be {_kind_name(kind)}, got {type(value).__name__}", key)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", str: "a string", dict: "an object", float: "a number", bool: "a boolean"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _int_in(obj: dict, key: str, low: int, high: int, default: int | None = None) -> int:
    value = _require(obj, key, int, optional=default is not None)
    if value is None:
        return default  # type: ignore[return-value]
    if not low <= value <= high:
        raise ValidationError(f"must be between {low} and {high}", key)
    return value


def _timestamp(obj: dict, key: str) -> dt.datetime:
    text = _require(obj, key, str)
    if len(text) > 40:
        raise ValidationError("not an ISO 8601 UTC time: too long", key)
    try:
        when = parse_ts(text)
    except (ValueError, OverflowError) as exc:  # OverflowError: year 1 with an offset east of UTC
        raise ValidationError(f"not an ISO 8601 UTC time: {exc}", key) from None
    if not TS_MIN <= when < TS_MAX:
        raise ValidationError(f"must be between {TS_MIN.year} and {TS_MAX.year - 1}", key)
    return when


def _short_text(obj: dict, key: str, limit: int = 64) -> str | None:
    value = _require(obj, key, str, optional=True)
    if value is not None and len(value) > limit:
        raise ValidationError(f"must be at most {limit} characters", key)
    return value


@dataclass(frozen=True)
class Event:
    """Fields common to every device event."""

    id: str
    seq: int
    ts: dt.datetime
    clock: str | None = None

    type = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION,
            "id": self.id,
            "seq": self.seq,
            "ts": format_ts(self.ts),
            "type": self.type,
        }
        if self.clock is not None:
            out["clock"] = self.clock
        out.update(self._body())
        return out

    def _body(self) -> dict[str, Any]:
        return {}

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Crossing(Event):
    direction: str = "in"
    count: int = 1

    type = "crossing"

    def _body(self) -> dict[str, Any]:
        return {"direction": self.direction, "count": self.count}


@dataclass(frozen=True)
class Checkin(Event):
    purpose: str = "other"
    adults: int = 1
    children: int = 0
    activity: str | None = None
    member: str | None = None
    room: str | None = None

    type = "checkin"

    @property
    def people(self) -> int:
        return self.adults + self.children

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"purpose": self.purpose, "adults": self.adults, "children": self.children}
        for key in ("activity", "member", "room"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass(frozen=True)
class Help(Event):
    """A visitor pressed "call staff" at a kiosk (extension: no body). Shown to staff until cleared."""

    type = "help"


def _reject_constant(name: str) -> Any:
    raise ValidationError(f"{name} is not a JSON number", "payload")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValidationError(f"{text} is out of range", "payload")
    return value


def _int63(text: str) -> int:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise ValidationError(f"integer {text[:30]} does not fit in 64 bits", "payload")
    return value


def nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, counted without parsing (json recurses per level)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@functools.cache
def _decoder() -> json.JSONDecoder:
    # One decoder for every message: json.loads with hooks would build a new one per call.
    return json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int63)


def load_json(payload: bytes | str, *, max_bytes: int = MAX_PAYLOAD, max_depth: int = MAX_DEPTH) -> Any:
    """Bytes -> JSON value, within bounds checked before parsing: size, strict UTF-8, nesting depth; and while
    parsing: no NaN/Infinity, no float that overflows, no integer beyond 64 bits. Raises ValidationError."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", errors="surrogatepass")
    if len(payload) > max_bytes:
        raise ValidationError(f"payload is {len(payload)} bytes, more than {max_bytes}", "payload")
    try:
        # Strict UTF-8 (the protocol's encoding): json.loads(bytes) would also take UTF-16 and UTF-32.
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"not JSON: not UTF-8 ({exc.reason} at byte {exc.start})", "payload") from None
    # Only a payload with more brackets than the limit can nest deeper than it: most skip the scan.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ValidationError(f"nested more than {max_depth} levels deep", "payload")
    try:
        return _decoder().decode(text)
    except ValueError as exc:  # JSONDecodeError, or int() beyond Python's digit limit
        raise ValidationError(f"not JSON: {exc}", "payload") from None
    except RecursionError:  # the depth scan makes this unreachable; a guard, not a path
        raise ValidationError("nested too deep", "payload") from None


def load_json_object(payload: bytes | str) -> dict:
    """Bytes -> dict, enforcing the bounds of `load_json` and JSON-object-ness."""
    obj = load_json(payload)
    if not isinstance(obj, dict):
        raise ValidationError("must be a JSON object", "payload")
    return obj


def decode_event(payload: bytes | str) -> Crossing | Checkin | Help:
    """Validate and decode an event payload; raise ValidationError naming the bad field."""
    return event_from_dict(load_json_object(payload))


def event_from_dict(obj: dict) -> Crossing | Checkin | Help:
    if _require(obj, "v", int) != VERSION:
        raise ValidationError(f"unsupported version (this server speaks {VERSION})", "v")
    event_id = _require(obj, "id", str)
    if not 1 <= len(event_id) <= 64:
        raise ValidationError("must be 1..64 characters", "id")
    seq = _int_in(obj, "seq", 0, INT_MAX)
    ts = _timestamp(obj, "ts")
    clock = _require(obj, "clock", str, optional=True)
    if clock is not None and clock not in CLOCK_STATES:
        raise ValidationError(f"must be one of {', '.join(CLOCK_STATES)}", "clock")
    kind = _require(obj, "type", str)
    common = {"id": event_id, "seq": seq, "ts": ts, "clock": clock}
    if kind == "crossing":
        direction = _require(obj, "direction", str)
        if direction not in ("in", "out"):
            raise ValidationError("must be in or out", "direction")
        return Crossing(**common, direction=direction, count=_int_in(obj, "count", 1, 20, default=1))
    if kind == "checkin":
        purpose = _require(obj, "purpose", str)
        if purpose not in PURPOSES:
            raise ValidationError(f"must be one of {', '.join(PURPOSES)}", "purpose")
        adults = _int_in(obj, "adults", 0, 50)
        children = _int_in(obj, "children", 0, 50)
        if adults + children < 1:
            raise ValidationError("a check-in needs at least one person", "adults")
        extras = {}
        for key in ("activity", "member"):
            value = _require(obj, key, str, optional=True)
            if value is not None and not 1 <= len(value) <= 64:
                raise ValidationError("must be 1..64 characters", key)
            extras[key] = value
        if extras["member"] is not None:  # a center-issued code, never a phone number or a name (#11, #16)
            member_code.validate(extras["member"])
        room = _require(obj, "room", str, optional=True)
        if room is not None:
            check_name(room, "room")
        return Checkin(**common, purpose=purpose, adults=adults, children=children, room=room, **extras)
    if kind == "help":
        return Help(**common)
    raise ValidationError(f"unknown event type {kind!r}", "type")


@dataclass(frozen=True)
class DeviceStatus:
    state: str  # online | offline
    kind: str | None = None
    version: str | None = None
    ts: str | None = None
    queue: int | None = None
    last_seq: int | None = None
    health: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"v": VERSION, **{k: v for k, v in asdict(self).items() if v is not None}}
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()


OFFLINE = DeviceStatus(state="offline")


def decode_status(payload: bytes | str) -> DeviceStatus:
    obj = load_json_object(payload)
    if _require(obj, "v", int) != VERSION:
        raise ValidationError("unsupported version", "v")
    state = _require(obj, "state", str)
    if state not in ("online", "offline"):
        raise ValidationError("must be online or offline", "state")
    kind = _short_text(obj, "kind")
    queue = _int_in(obj, "queue", 0, INT_MAX, default=-1)
    last_seq = _int_in(obj, "last_seq", 0, INT_MAX, default=-1)
    health = _require(obj, "health", dict, optional=True)
    return DeviceStatus(
        state=state,
        kind=kind,
        version=_short_text(obj, "version"),
        ts=_short_text(obj, "ts"),
        queue=None if queue == -1 else queue,
        last_seq=None if last_seq == -1 else last_seq,
        health=health,
    )


def encode_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
