"""MQTT accounts of a site: one per device and one per server process (ingest, web), kept in `<data_dir>/mqtt/`.

- `passwd`: Mosquitto's password file, PBKDF2-SHA512 in Mosquitto 2.0's own format
  (`user:$7$<iterations>$<base64 salt>$<base64 hash>`, as `mosquitto_passwd -b` writes it);
- `acl`: Mosquitto's ACL file: a device may publish only under `<prefix>/<site>/device/<id>/` (event, status) and
  read its own config, cmd and ack topics, the site's room states, schedule and server status; ingest's account reads
  every event and status and publishes room state, schedule, config, cmd, ack (only ingest confirms events),
  alerts and server status; the web's account reads room states, device status, alerts and server status and
  publishes only server commands (asking ingest to republish);
- `accounts.json`: which devices are registered (no device passwords) and the server processes' own credentials.

The secure broker (deploy/mosquitto/secure.conf) sets `use_username_as_clientid`: each connection's client id is its
user name, so no account can take over another's session (a device connecting as `footfall-server-<site>-ingest`
with a clean session used to discard ingest's queued events). That is why ingest and the web have an account each:
under one shared account they would keep closing each other's connection.

Both Mosquitto files are rewritten whole from `accounts.json` on every change (temp file + rename), so they never
drift apart. Mosquitto reads them at start and on SIGHUP (`systemctl reload mosquitto`).
Plain device passwords are never stored here: they go once into the device's config file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from footfall.clock import format_ts, utcnow
from footfall.files import write_private
from footfall.site import Device, SiteConfig

logger = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 101  # Mosquitto's own default; the passwords are random 32-byte tokens, not words
SALT_BYTES = 12


class AccountError(Exception):
    """A device that is not in the site file, not registered, or similar; the message says what to do."""


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The password hash exactly as Mosquitto 2.0's `mosquitto_passwd` writes it (sha512-pbkdf2, `$7$`)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_mosquitto_hash(password: str, encoded: str) -> bool:
    _, kind, iterations, salt, digest = encoded.split("$")
    if kind != "7":
        return False
    expected = mosquitto_hash(password, base64.b64decode(salt), int(iterations))
    return secrets.compare_digest(expected.rsplit("$", 1)[1], digest)


def new_password() -> str:
    return secrets.token_urlsafe(32)


def device_username(site_id: str, device_id: str) -> str:
    # Dots cannot occur in ids, so a device account can never collide with the server's or another site's.
    return f"device.{site_id}.{device_id}"


SERVER_PROCESSES = ("ingest", "web")


def server_username(site_id: str, process: str) -> str:
    return f"server.{site_id}.{process}"


def device_acl(site_id: str, device_id: str, prefix: str = "footfall") -> list[str]:
    base = f"{prefix}/{site_id}"
    own = f"{base}/device/{device_id}"
    return [
        f"topic write {own}/event",
        f"topic write {own}/status",
        f"topic read {own}/config",
        f"topic read {own}/cmd",
        f"topic read {own}/ack",
        f"topic read {base}/room/+/state",
        f"topic read {base}/schedule",
        f"topic read {base}/server/status",
    ]


def ingest_acl(site_id: str, prefix: str = "footfall") -> list[str]:
    base = f"{prefix}/{site_id}"
    return [
        f"topic read {base}/device/+/event",
        f"topic read {base}/device/+/status",
        f"topic readwrite {base}/device/+/config",
        f"topic readwrite {base}/device/+/cmd",
        f"topic write {base}/device/+/ack",
        f"topic readwrite {base}/room/+/state",
        f"topic readwrite {base}/schedule",
        f"topic readwrite {base}/server/status",
        f"topic read {base}/server/cmd",
        f"topic readwrite {base}/alerts",
    ]


def web_acl(site_id: str, prefix: str = "footfall") -> list[str]:
    # The web shows what ingest publishes and asks ingest (server/cmd) for every change: it publishes nothing else.
    base = f"{prefix}/{site_id}"
    return [
        f"topic read {base}/room/+/state",
        f"topic read {base}/device/+/status",
        f"topic read {base}/alerts",
        f"topic read {base}/server/status",
        f"topic write {base}/server/cmd",
    ]


SERVER_ACLS = {"ingest": ingest_acl, "web": web_acl}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


class MqttAccounts:
    """The site's MQTT accounts under `<data_dir>/mqtt/` (see the module docstring)."""

    def __init__(self, site: SiteConfig, directory: Path | None = None):
        self.site = site
        self.dir = Path(directory) if directory is not None else site.data_dir / "mqtt"
        self.passwd_path = self.dir / "passwd"
        self.acl_path = self.dir / "acl"
        self.accounts_path = self.dir / "accounts.json"
        self.configs_dir = self.dir / "devices"
        self.rewrote = False  # ensure_servers rewrote the broker's files: Mosquitto must reread them

    # --- state ----------------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.accounts_path.read_text())
        except FileNotFoundError:
            data = {"site": self.site.id, "devices": {}}
        # Before #11 one account `server.<site>` served both processes; it is replaced by one per process (the
        # next change rewrites the files without it) and site.toml needs the new ones (`footfall device server`).
        data.pop("server", None)
        data.setdefault("servers", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_private(self.accounts_path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        # Mosquitto must read these two; the install guide gives the folder the mosquitto group (setgid).
        write_private(self.passwd_path, self._passwd_text(data), mode=0o640)
        write_private(self.acl_path, self._acl_text(data), mode=0o640)

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    def _server_accounts(self, data: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(user name, password hash, process) of the server processes; with `[server] ingest_workers` = N, ingest
        workers 2..N have accounts `<ingest's user>-<k>` with ingest's password and ACL (server.ingest_service)."""
        out = []
        for process in sorted(data["servers"]):
            entry = data["servers"][process]
            out.append((entry["username"], entry["hash"], process))
            if process == "ingest":
                for k in range(2, self.site.server.ingest_workers + 1):
                    out.append((f"{entry['username']}-{k}", entry["hash"], process))
        return out

    def _passwd_text(self, data: dict[str, Any]) -> str:
        lines = []
        for username, hashed, _process in self._server_accounts(data):
            lines.append(f"{username}:{hashed}")
        for device_id in sorted(data["devices"]):
            entry = data["devices"][device_id]
            lines.append(f"{entry['username']}:{entry['hash']}")
        return "\n".join(lines) + "\n" if lines else ""

    def _acl_text(self, data: dict[str, Any]) -> str:
        prefix = self.site.prefix
        out = [
            "# Generated by `footfall device add/remove`; do not edit (it is rewritten on every change).",
            "# Anonymous clients get nothing: there are no topic lines before the first `user` line.",
            "",
        ]
        for username, _hashed, process in self._server_accounts(data):
            out += [f"user {username}", *SERVER_ACLS[process](self.site.id, prefix), ""]
        for device_id in sorted(data["devices"]):
            entry = data["devices"][device_id]
            out += [f"user {entry['username']}", *device_acl(self.site.id, device_id, prefix), ""]
        return "\n".join(out)

    # --- operations -----------------------------------------------------------------------------

    def ensure_servers(self) -> tuple[dict[str, Credentials], bool]:
        """The accounts of ingest and the web, created on first use. Returns ({process: credentials}, created)."""
        data = self.load()
        created = False
        for process in SERVER_PROCESSES:
            if process not in data["servers"]:
                password = new_password()
                username = server_username(self.site.id, process)
                data["servers"][process] = {
                    "username": username,
                    "password": password,
                    "hash": mosquitto_hash(password),
                }
                created = True
                logger.info("created the MQTT account %s for %s", username, process)
        # Also when only [server] ingest_workers changed: the workers' accounts are derived, not stored.
        self.rewrote = created or self._read(self.passwd_path) != self._passwd_text(data)
        if self.rewrote:
            self._save(data)
        servers = data["servers"]
        return {
            p: Credentials(servers[p]["username"], servers[p]["password"]) for p in SERVER_PROCESSES
        }, created

    def site_device(self, device_id: str) -> Device:
        device = self.site.devices_by_id.get(device_id)
        if device is None:
            raise AccountError(
                f"no device {device_id!r} in {self.site.path}; add it first:\n\n{device_snippet(device_id)}"
            )
        return device

    def add_device(self, device_id: str, now: dt.datetime | None = None) -> Credentials:
        """Register a device (or give it a new password, revoking the old one)."""
        device = self.site_device(device_id)
        data = self.load()
        password = new_password()
        username = device_username(self.site.id, device.id)
        data["devices"][device.id] = {
            "username": username,
            "kind": device.kind,
            "hash": mosquitto_hash(password),
            "added_at": format_ts(now or utcnow()),
        }
        self._save(data)
        logger.info("registered device %s (MQTT user %s)", device.id, username)
        return Credentials(username, password)

    def remove_device(self, device_id: str) -> bool:
        data = self.load()
        if data["devices"].pop(device_id, None) is None:
            return False
        self._save(data)
        config = self.configs_dir / f"{device_id}.toml"
        if config.exists():
            config.unlink()
        logger.info("removed device %s: its MQTT account is revoked", device_id)
        return True

    def devices(self) -> list[dict[str, Any]]:
        data = self.load()
        return [
            {"id": ident, **{k: v for k, v in entry.items() if k != "hash"}}
            for ident, entry in sorted(data["devices"].items())
        ]

    def write_device_config(
        self, device_id: str, creds: Credentials, host: str, port: int, tls: bool, ca_file: str
    ) -> Path:
        """The device's counter.toml / kiosk.toml (with its credentials), to copy to its Pi. Mode 0600."""
        device = self.site_device(device_id)
        text = device_config_text(self.site, device, creds, host, port, tls, ca_file)
        self.configs_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.configs_dir, 0o700)
        path = self.configs_dir / f"{device_id}.toml"
        write_private(path, text)
        return path


def device_snippet(device_id: str, kind: str = "counter") -> str:
    return f'[[devices]]\nid = "{device_id}"\nkind = "{kind}"   # or "kiosk"\n'


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def device_config_text(
    site: SiteConfig,
    device: Device,
    creds: Credentials,
    host: str,
    port: int,
    tls: bool,
    ca_file: str = "/etc/footfall/ca.crt",
) -> str:
    name = "counter" if device.kind == "counter" else "kiosk"
    lines = [
        f"# {device.kind} {device.id} of site {site.id}, written by `footfall device add`.",
        f"# Copy it to the Pi as /etc/footfall/{name}.toml, mode 0640 root:footfall (the service's user reads it,",
        "# nobody else may): it holds this device's MQTT password.",
        "",
        "[device]",
        f"id = {_toml_str(device.id)}",
        f"site = {_toml_str(site.id)}",
        "",
        "[mqtt]",
        f"host = {_toml_str(host)}",
        f"port = {port}",
        f"username = {_toml_str(creds.username)}",
        f"password = {_toml_str(creds.password)}",
        f"tls = {'true' if tls else 'false'}",
    ]
    if tls:
        lines.append(f"ca_file = {_toml_str(ca_file)}   # the site CA certificate (docs/install.md)")
    if site.prefix != "footfall":
        lines.append(f"prefix = {_toml_str(site.prefix)}")
    if device.kind == "kiosk":
        lines += [
            "",
            "[kiosk]",
            "# staff_pin_hash: set it on the Pi with `footfall kiosk pin -c /etc/footfall/kiosk.toml` (required)",
            f"timezone = {_toml_str(site.timezone.key)}",
            f'day_starts = "{site.day_starts.strftime("%H:%M")}"',
            f"center_name = {_toml_str(site.name)}",
        ]
    return "\n".join(lines) + "\n"


def server_mqtt_section(servers: dict[str, Credentials]) -> str:
    """The `[mqtt]` lines of site.toml for the server's two processes."""
    ingest, web = servers["ingest"], servers["web"]
    return (
        "[mqtt]\n"
        f"username = {_toml_str(ingest.username)}   # ingest\n"
        f"password = {_toml_str(ingest.password)}\n"
        f"web_username = {_toml_str(web.username)}\n"
        f"web_password = {_toml_str(web.password)}\n"
    )
