"""TOML configuration: a small schema, validated once at start-up, with FOOTFALL_<SECTION>_<KEY> overrides.

Errors name the file, the key and what is wrong (ConfigError). Unknown keys are refused: a typo must not
silently fall back to a default. Once validated, each section becomes a frozen dataclass (`typed`), so code reads
`site.mqtt.port`, not `site.mqtt["port"]`: a misspelt setting fails at its line, not as a KeyError at run time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from footfall.errors import ConfigError, ValidationError

Check = Callable[[Any], None]  # raises ValueError with a message
T = TypeVar("T")


@dataclass(frozen=True)
class Key:
    kind: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    check: Check | None = None
    help: str = ""


# A schema maps section -> {key: Key}; a section named in `tables` is an array of tables.
Schema = dict[str, dict[str, Key]]


def _coerce_env(raw: str, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    try:
        if int in kinds:
            return int(raw)
        if float in kinds:
            return float(raw)
    except ValueError:
        raise ValueError(f"must be {_type_name(kind)}, got {raw!r}") from None
    return raw


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_value(path: str, where: str, spec: Key, value: Any) -> Any:
    if isinstance(value, bool) and bool not in (spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)):
        raise ConfigError(path, where, f"must be {_type_name(spec.kind)}, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and spec.kind is float:
        value = float(value)
    if not isinstance(value, spec.kind):
        raise ConfigError(path, where, f"must be {_type_name(spec.kind)}, got {value!r}")
    if spec.check is not None:
        try:
            spec.check(value)
        except (ValueError, ValidationError) as exc:
            raise ConfigError(path, where, str(getattr(exc, "reason", exc))) from None
    return value


def validate(
    data: Mapping[str, Any],
    schema: Schema,
    path: str,
    tables: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a new dict with defaults filled in; raise ConfigError on the first problem."""
    env = os.environ if env is None else env
    out: dict[str, Any] = {}
    for section in data:
        if section not in schema:
            raise ConfigError(path, f"[{section}]", f"unknown section (known: {', '.join(sorted(schema))})")
    for section, keys in schema.items():
        raw = data.get(section, [] if section in tables else {})
        if section in tables:
            if not isinstance(raw, list):
                raise ConfigError(path, f"[[{section}]]", "must be an array of tables ([[" + section + "]])")
            out[section] = [
                _validate_table(path, f"{section}[{index}]", keys, item, None, env)
                for index, item in enumerate(raw)
            ]
        else:
            if not isinstance(raw, dict):
                raise ConfigError(path, f"[{section}]", "must be a table")
            out[section] = _validate_table(path, section, keys, raw, section, env)
    return out


def _validate_table(path, where, keys, raw, env_section, env) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(path, where, "must be a table")
    for key in raw:
        if key not in keys:
            raise ConfigError(path, f"{where}.{key}", f"unknown key (known: {', '.join(sorted(keys))})")
    table: dict[str, Any] = {}
    for key, spec in keys.items():
        value = raw.get(key)
        if env_section is not None:
            env_name = f"FOOTFALL_{env_section.upper()}_{key.upper()}"
            if env_name in env:
                try:
                    value = _coerce_env(env[env_name], spec.kind)
                except ValueError as exc:
                    raise ConfigError(path, f"{where}.{key} (from ${env_name})", str(exc)) from None
        if value is None:
            if spec.required:
                raise ConfigError(
                    path, f"{where}.{key}", "is required" + (f": {spec.help}" if spec.help else "")
                )
            table[key] = spec.default
            continue
        table[key] = _check_value(path, f"{where}.{key}", spec, value)
    return table


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(p), None, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), None, f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(p), None, f"cannot read: {exc.strerror}") from None


# --- common checks -----------------------------------------------------------------------------


def positive(value: Any) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


def non_empty(value: Any) -> None:
    if not value.strip():
        raise ValueError("must not be empty")


def non_negative(value: Any) -> None:
    if value < 0:
        raise ValueError("must be 0 or more")


def port(value: Any) -> None:
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")


def one_of(*choices: str) -> Check:
    def check(value: Any) -> None:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")

    return check


def host_port(value: Any) -> None:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError('must be "host:port", e.g. "127.0.0.1:8000"')


MQTT_SCHEMA: dict[str, Key] = {
    "host": Key(str, "127.0.0.1", check=non_empty),
    "port": Key(int, 1883, check=port),
    "username": Key(str),
    "password": Key(str),
    "tls": Key(bool, False),
    "ca_file": Key(str),
    "cert_file": Key(str),
    "key_file": Key(str),
    "prefix": Key(str, "footfall"),
    "keepalive": Key(int, 30, check=positive),
}

# A device (counter, kiosk) never runs next to its broker: no silent 127.0.0.1.
DEVICE_MQTT_SCHEMA: dict[str, Key] = {
    **MQTT_SCHEMA,
    "host": Key(
        str,
        required=True,
        check=non_empty,
        help='the broker\'s address, e.g. "192.168.1.10" (or set FOOTFALL_MQTT_HOST)',
    ),
}


OUTBOX_SCHEMA: dict[str, Key] = {
    "max_events": Key(int, 100_000, check=positive),
    "high_water": Key(int, 1_000, check=positive),
    "window": Key(int, 1_000, check=positive),
}


def typed(cls: type[T], table: Mapping[str, Any]) -> T:
    """A validated table as its dataclass. The class must name exactly the schema's keys (tests/test_config.py
    checks each pair), so a key added to a schema and forgotten in its class fails at load, not at first use."""
    return cls(**table)


@dataclass(frozen=True)
class MqttSettings:
    """[mqtt]: the broker and this program's account on it."""

    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    prefix: str
    keepalive: int


@dataclass(frozen=True)
class OutboxSettings:
    """[outbox] of an edge box: how many events may wait unsent, and how many go out at once."""

    max_events: int
    high_water: int
    window: int
