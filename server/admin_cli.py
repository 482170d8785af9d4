"""Administration commands: `footfall device`, `footfall user`, `footfall backup`, `footfall restore`.

Only click is imported at the top; each command imports what it needs (the CLI stays fast and light).
Every change is written to the audit log as `cli:<os user>`.
"""

from __future__ import annotations

import click

from footfall.cli_common import SITE_OPTION as CONFIG_OPTION
from footfall.cli_common import load_site_or_exit as _site

ROLE_CHOICE = click.Choice(["viewer", "staff", "admin"])


def _sqlite_only(site, command: str) -> None:
    """backup and restore copy the SQLite file; a PostgreSQL store has its own tools."""
    from footfall.server.store import is_postgres

    if is_postgres(site.server.database):
        raise click.ClickException(
            f"the store is PostgreSQL ([server] database): `footfall {command}` copies the SQLite file;"
            " use pg_dump / pg_restore for PostgreSQL"
        )


def _store(site):
    from footfall.server.store import open_store

    return open_store(site)


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in a bare container
        return "cli:?"


def _audit(site, action: str, target: str, **detail) -> None:
    from footfall.server import audit

    store = _store(site)
    try:
        audit.record(store, _cli_actor(), action, target, detail=detail or None)
    finally:
        store.close()


RELOAD_HINT = "Then make Mosquitto read the change: sudo systemctl reload mosquitto"


# --- devices ------------------------------------------------------------------------------------


@click.group()
def device() -> None:
    """Register devices with the broker: MQTT accounts, ACL and their config files."""


@device.command("add")
@CONFIG_OPTION
@click.argument("device_id")
@click.option("--broker", "broker_host", default=None, help="The broker's address as the Pi sees it.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Broker port (default 8883 with TLS)."
)
@click.option("--tls/--no-tls", default=True, show_default=True, help="Devices connect over TLS.")
@click.option("--ca-file", default="/etc/footfall/ca.crt", show_default=True, help="The CA file on the Pi.")
def device_add(
    config_path: str, device_id: str, broker_host: str | None, port: int | None, tls: bool, ca_file: str
) -> None:
    """Register DEVICE_ID (or give it a new password): writes its config file to copy to the Pi."""
    from footfall.server.mqtt_accounts import AccountError, MqttAccounts, device_snippet, server_mqtt_section

    site = _site(config_path)
    accounts = MqttAccounts(site)
    if device_id not in site.devices_by_id:
        click.echo(f"There is no device {device_id!r} in {config_path}. Add this to it first:\n", err=True)
        click.echo(device_snippet(device_id), err=True)
        raise SystemExit(1)
    servers, created = accounts.ensure_servers()
    if created:
        click.echo(
            f"Created the MQTT accounts of ingest and the web. Put them in {config_path}:\n\n"
            f"{server_mqtt_section(servers)}\n"
            f"(also kept in {accounts.accounts_path}, readable by its owner only)\n"
        )
    try:
        creds = accounts.add_device(device_id)
        path = accounts.write_device_config(
            device_id,
            creds,
            broker_host or site.mqtt.host,
            port or (8883 if tls else 1883),
            tls,
            ca_file,
        )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    _audit(site, "device_add", device_id, username=creds.username)
    click.echo(f"Registered {device_id} as MQTT user {creds.username}.")
    click.echo(f"Its config file (with its password) is {path}: copy it to the Pi, then delete it here.")
    if broker_host is None:
        click.echo(f"(it names the broker {site.mqtt.host!r}; use --broker to give the Pi's view of it)")
    click.echo(RELOAD_HINT)


@device.command("remove")
@CONFIG_OPTION
@click.argument("device_id")
def device_remove(config_path: str, device_id: str) -> None:
    """Revoke DEVICE_ID: its MQTT account and config file are deleted."""
    from footfall.server.mqtt_accounts import MqttAccounts

    site = _site(config_path)
    if not MqttAccounts(site).remove_device(device_id):
        raise click.ClickException(f"device {device_id!r} is not registered")
    _audit(site, "device_remove", device_id)
    click.echo(f"Revoked {device_id}.")
    click.echo(RELOAD_HINT + " (it also drops the connection the device still has open)")


@device.command("list")
@CONFIG_OPTION
def device_list(config_path: str) -> None:
    """List the site file's devices and whether each is registered."""
    from footfall.server.mqtt_accounts import MqttAccounts

    site = _site(config_path)
    accounts = MqttAccounts(site)
    registered = {d["id"]: d for d in accounts.devices()}
    servers = accounts.load()["servers"]
    names = ", ".join(servers[p]["username"] for p in sorted(servers))
    click.echo(f"server accounts: {names or '(none yet: made by the first device add)'}")
    for dev in site.devices:
        entry = registered.pop(dev.id, None)
        state = f"{entry['username']} since {entry['added_at']}" if entry else "not registered"
        click.echo(f"{dev.id:24} {dev.kind:8} {state}")
    for ident in registered:
        click.echo(f"{ident:24} {'?':8} registered but not in the site file: footfall device remove {ident}")


@device.command("server")
@CONFIG_OPTION
def device_server(config_path: str) -> None:
    """Print the MQTT credentials of ingest and the web for site.toml [mqtt] (creating the accounts if needed)."""
    from footfall.server.mqtt_accounts import MqttAccounts, server_mqtt_section

    site = _site(config_path)
    accounts = MqttAccounts(site)
    servers, created = accounts.ensure_servers()
    click.echo(server_mqtt_section(servers), nl=False)
    if created or accounts.rewrote:
        click.echo(RELOAD_HINT, err=True)


# --- staff accounts -------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Manage staff accounts (roles: viewer, staff, admin)."""


def _save_user(config_path: str, username: str, password: str, role: str | None, action: str) -> None:
    from footfall.server.web.auth import add_user

    site = _site(config_path)
    store = _store(site)
    try:
        existing = store.get_user(username.strip())
        if action == "user_passwd" and existing is None:
            raise click.ClickException(f"no user {username!r}")
        role = role or (existing["role"] if existing else "staff")
        try:
            add_user(store, username, password, role)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    _audit(site, action, username.strip(), role=role)


@user.command("add")
@CONFIG_OPTION
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, default="staff", show_default=True)
@click.password_option(help="The password (asked for when not given).")
def user_add(config_path: str, username: str, role: str, password: str) -> None:
    """Add a staff account (or change its password and role)."""
    _save_user(config_path, username, password, role, "user_add")
    click.echo(f"user {username} ({role}) saved")


@user.command("passwd")
@CONFIG_OPTION
@click.argument("username")
@click.password_option(help="The new password (asked for when not given).")
def user_passwd(config_path: str, username: str, password: str) -> None:
    """Set a new password for USERNAME (role unchanged)."""
    _save_user(config_path, username, password, None, "user_passwd")
    click.echo(f"password of {username} changed")


@user.command("remove")
@CONFIG_OPTION
@click.argument("username")
def user_remove(config_path: str, username: str) -> None:
    """Delete USERNAME; the account's open sessions end with its next request."""
    site = _site(config_path)
    store = _store(site)
    try:
        with store.transaction() as tx:
            gone = tx.delete_user(username)
    finally:
        store.close()
    if not gone:
        raise click.ClickException(f"no user {username!r}")
    _audit(site, "user_remove", username)
    click.echo(f"user {username} removed")


@user.command("list")
@CONFIG_OPTION
def user_list(config_path: str) -> None:
    """List staff accounts and their roles."""
    site = _site(config_path)
    store = _store(site)
    try:
        rows = store.users()
    finally:
        store.close()
    for row in rows:
        click.echo(f"{row['username']:24} {row['role']:7} since {row['created_at']}")
    if not rows:
        click.echo("no users yet: footfall user add NAME --role admin -c site.toml")


# --- backup and restore -------------------------------------------------------------------------


@click.command()
@CONFIG_OPTION
@click.argument("out", type=click.Path(dir_okay=False))
def backup(config_path: str, out: str) -> None:
    """Copy the store to OUT while the server runs (SQLite's online backup: a consistent snapshot)."""
    site = _site(config_path)
    _sqlite_only(site, "backup")
    try:
        info = backup_store(site.db_path, out)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {site.db_path} to {out} ({info['events']} events, {info['bytes']} bytes)")


@click.command()
@CONFIG_OPTION
@click.argument("src", metavar="IN", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Restore even though a process has the store open.")
def restore(config_path: str, src: str, force: bool) -> None:
    """Replace the store with the backup IN (stop footfall-ingest and footfall-web first)."""
    site = _site(config_path)
    _sqlite_only(site, "restore")
    try:
        kept = restore_store(src, site.db_path, force=force)
    except StoreInUse as exc:
        raise click.ClickException(
            f"{exc}; stop them first (sudo systemctl stop footfall-ingest footfall-web)"
        ) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    _audit(site, "restore", str(site.db_path), source=str(src), previous=str(kept) if kept else None)
    click.echo(
        f"restored {site.db_path} from {src}" + (f"; the previous store is kept as {kept}" if kept else "")
    )


COMMANDS = (device, user, backup, restore)


class StoreInUse(Exception):
    """Another process has the store open."""


def backup_store(db_path, out) -> dict:
    """Back up the store at `db_path` to the file `out` (mode 0600: it holds password hashes)."""
    import os
    from pathlib import Path

    from footfall.server.store_files import events_in, sqlite_copy

    db_path, out = Path(db_path), Path(out)
    if not db_path.exists():
        raise ValueError(f"there is no store at {db_path}")
    if out.exists() and out.resolve() == db_path.resolve():
        raise ValueError("the backup must not overwrite the store itself")
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        sqlite_copy(db_path, part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    events = events_in(part)
    os.replace(part, out)
    return {"events": events, "bytes": out.stat().st_size}


def processes_using(db_path) -> list[int]:
    """Pids of other processes with the store (or its WAL) open. A `footfall server` whose files this user may
    not read counts as using it (when in doubt, refuse)."""
    import os
    from pathlib import Path

    import psutil

    names = {str(Path(db_path).resolve()) + suffix for suffix in ("", "-wal", "-shm")}
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] == os.getpid():
            continue
        try:
            if any(f.path in names for f in proc.open_files()):
                pids.append(proc.info["pid"])
        except psutil.AccessDenied:
            cmd = " ".join(proc.info["cmdline"] or [])
            if "footfall" in cmd and " server" in cmd:
                pids.append(proc.info["pid"])
        except psutil.NoSuchProcess:
            continue
    return pids


def restore_store(src, db_path, force: bool = False):
    """Replace the store with the backup `src`; the current store is kept beside it. Returns that path."""
    import datetime as dt
    import os
    from pathlib import Path

    from footfall.server.store_files import sqlite_copy, tables_in

    src, db_path = Path(src), Path(db_path)
    tables = tables_in(src)
    if not {"events", "rooms_live", "users"} <= tables:
        raise ValueError(f"{src} is not a Footfall store (no events, rooms_live or users table)")
    users = processes_using(db_path)
    if users and not force:
        raise StoreInUse(f"the store {db_path} is open in process {', '.join(map(str, users))}")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    incoming = db_path.with_name(db_path.name + ".restoring")
    incoming.unlink(missing_ok=True)
    os.close(os.open(incoming, os.O_WRONLY | os.O_CREAT, 0o600))
    sqlite_copy(src, incoming)
    kept = None
    if db_path.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
        os.close(os.open(kept, os.O_WRONLY | os.O_CREAT, 0o600))
        sqlite_copy(db_path, kept)  # includes what is still in the WAL
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    os.replace(incoming, db_path)
    from footfall.server.store import SqliteStore

    SqliteStore(db_path).close()  # applies newer migrations to a backup made by an older version
    return kept
