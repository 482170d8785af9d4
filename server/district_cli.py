"""`footfall district ...`: accounts and bridges for a district broker, and the district's PostgreSQL ingest.

Only click is imported at the top; each command imports what it needs.
"""

from __future__ import annotations

import os
import sys

import click

from footfall.cli_common import SITE_OPTION, load_site_or_exit

DATABASE = click.option(
    "--database",
    envvar="FOOTFALL_DISTRICT_DATABASE",
    required=True,
    help="PostgreSQL URL (or FOOTFALL_DISTRICT_DATABASE), e.g. postgresql://footfall@db/district.",
)
ACCOUNTS_DIR = click.option(
    "--dir",
    "accounts_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="The district broker's accounts folder (passwd, acl, accounts.json).",
)


@click.group("district")
def district() -> None:
    """Link sites to a district broker and store every site's events in PostgreSQL."""


@district.command("add-site")
@ACCOUNTS_DIR
@SITE_OPTION
@click.option("--district-host", required=True, help="The district broker's address, as the site reaches it.")
@click.option("--district-port", type=click.IntRange(1, 65535), default=8883, show_default=True)
@click.option(
    "--cafile", type=click.Path(dir_okay=False), help="The district CA (TLS); omit only for a test."
)
@click.option(
    "--out", type=click.Path(dir_okay=False), required=True, help="Write the site's bridge file here."
)
@click.option(
    "--database", envvar="FOOTFALL_DISTRICT_DATABASE", default=None, help="Also register its doors."
)
@click.option("--site-url", help="The site's own dashboard, linked from the district web (with --database).")
def add_site(
    accounts_dir, config_path, district_host, district_port, cafile, out, database, site_url
) -> None:
    """Give a site an account on the district broker and write its site broker's bridge file."""
    from footfall.server.district import BridgeSettings, DistrictAccounts, bridge_config

    site = load_site_or_exit(config_path)
    accounts = DistrictAccounts(accounts_dir, site.prefix)
    password = accounts.add_site(site.id)
    settings = BridgeSettings(site.id, district_host, district_port, password, cafile, site.prefix)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the site's district password
    with os.fdopen(fd, "w") as f:
        f.write(bridge_config(settings))
    if database:
        from footfall.server.district_store import DistrictStore

        store = DistrictStore(database)
        store.add_site(site)
        if site_url:
            store.set_site_url(site.id, site_url)
        store.close()
    click.echo(f"site {site.id}: account site.{site.id} on the district broker; bridge file {out}")


@district.command("accounts")
@ACCOUNTS_DIR
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--broker-conf",
    type=click.Path(dir_okay=False),
    help="Also write the district broker's whole config, listeners included (run Mosquitto on it alone).",
)
@click.option(
    "--tls-port",
    type=click.IntRange(0, 65535),
    default=8883,
    show_default=True,
    help="The sites' TLS listener (0: none, for a test district on one machine).",
)
@click.option("--tls-bind", help="Its address (default: every address).")
@click.option(
    "--certfile", type=click.Path(exists=True, dir_okay=False), help="The broker's certificate (PEM)."
)
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="Its private key (PEM).")
@click.option(
    "--cafile",
    type=click.Path(exists=True, dir_okay=False),
    help="Optional: a CA of client certificates, for the TLS listener's cafile (sites log in with passwords).",
)
@click.option(
    "--local-port",
    type=click.IntRange(0, 65535),
    default=1883,
    show_default=True,
    help="The ingest workers' plain listener on 127.0.0.1 (0: none).",
)
@click.option(
    "--persistence-dir",
    default="/var/lib/mosquitto/",
    show_default=True,
    help="Where Mosquitto keeps its sessions and queued messages (writable by the mosquitto user).",
)
@click.option(
    "--autosave-interval",
    type=click.IntRange(1, 1800),
    default=1,
    show_default=True,
    help="Seconds between saves of the sessions and queues: what a killed broker can lose (docs/district.md).",
)
def accounts(
    accounts_dir,
    workers,
    broker_conf,
    tls_port,
    tls_bind,
    certfile,
    keyfile,
    cafile,
    local_port,
    persistence_dir,
    autosave_interval,
) -> None:
    """Make the ingest workers' accounts (district.ingest.N) and the district broker's config."""
    from pathlib import Path

    from footfall.server.district import DistrictAccounts, Listener

    listeners = []
    if broker_conf:
        # A conf.d/ file is read along with the distro's mosquitto.conf, whose listeners would not lock client ids.
        if Path(broker_conf).parent.name == "conf.d":
            raise click.BadParameter(
                "run the district broker on this file alone: not in conf.d/", param_hint="--broker-conf"
            )
        if tls_port:
            if not (certfile and keyfile):
                raise click.UsageError("the TLS listener needs --certfile and --keyfile (or --tls-port 0)")
            files = (os.path.abspath(f) if f else None for f in (certfile, keyfile, cafile))
            listeners.append(Listener(tls_port, tls_bind, *files))
        if local_port:
            if local_port == tls_port:
                raise click.UsageError("--local-port and --tls-port must differ")
            listeners.append(Listener.local(local_port))
        if not listeners:
            raise click.UsageError("the district broker needs a listener: --tls-port or --local-port")
    made = DistrictAccounts(accounts_dir).ensure_workers(workers)
    if broker_conf:
        with open(broker_conf, "w") as f:
            f.write(
                DistrictAccounts(accounts_dir).broker_config(listeners, persistence_dir, autosave_interval)
            )
        where = ", ".join(f"{x.bind or '*'}:{x.port}" + (" (TLS)" if x.certfile else "") for x in listeners)
        click.echo(f"district broker config {broker_conf}: listeners {where}")
    click.echo(f"{len(made)} ingest worker accounts in {accounts_dir}/accounts.json")


@district.command("ingest")
@DATABASE
@ACCOUNTS_DIR
@click.option("--worker", "index", type=click.IntRange(1, 64), required=True, help="This worker's number.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The district broker.")
@click.option("--port", type=click.IntRange(1, 65535), default=1883, show_default=True)
def ingest(database, accounts_dir, index, host, port) -> None:
    """Run one district ingest worker (start several: they share one subscription)."""
    import json
    import threading
    from pathlib import Path

    from footfall.server.district import worker_username
    from footfall.server.district_ingest import DistrictWorker, WorkerSettings
    from footfall.signals import wait_for_signal

    name = worker_username(index)
    try:
        password = json.loads((Path(accounts_dir) / "accounts.json").read_text())["workers"][name]["password"]
    except (OSError, ValueError, KeyError):
        raise click.ClickException(
            f"no account {name} in {accounts_dir}: run `footfall district accounts --workers {index}`"
        ) from None
    worker = DistrictWorker(WorkerSettings(database, host, port, name, password))
    thread = threading.Thread(target=worker.run, name="district-ingest")
    thread.start()
    wait_for_signal(worker.stopping)
    thread.join(10)
    sys.exit(0)


@district.command("rollup")
@DATABASE
@click.option("--date", "day", required=True, help="The local day, YYYY-MM-DD.")
def rollup(database, day) -> None:
    """Recount one day's room entries and exits for every site, inside PostgreSQL."""
    import datetime as dt

    from footfall.server.district_store import DistrictStore

    try:
        when = dt.date.fromisoformat(day)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    store = DistrictStore(database)
    click.echo(f"{store.rollup_day(when)} site-room rows for {when}")
    store.close()


@district.command("web")
@DATABASE
@click.option("--listen", default="127.0.0.1:8100", show_default=True, help="HOST:PORT to serve on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="FOOTFALL_DISTRICT_DATA",
    help="Keeps the session key (secret_key, mode 0600), so logins survive a restart.",
)
@click.option(
    "--cookie-secure",
    is_flag=True,
    envvar="FOOTFALL_DISTRICT_COOKIE_SECURE",
    help="Behind TLS: send the session cookie over HTTPS only (and HSTS).",
)
def web(database, listen, data_dir, cookie_secure) -> None:
    """Serve the district dashboard and reports (its own web app; accounts: `footfall district user add`)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()  # before Flask and psycopg: one greenlet per connection
    import logging
    import signal
    from pathlib import Path

    import gevent
    import psycopg

    from footfall.server.district_web import create_app
    from footfall.server.web import persisted_secret_key
    from footfall.server.web.httpserver import guarded_server

    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise click.BadParameter("use HOST:PORT, e.g. 0.0.0.0:8100", param_hint="--listen")
    try:
        app = create_app(
            database,
            persisted_secret_key(Path(data_dir)) if data_dir else None,
            {"SESSION_COOKIE_SECURE": True} if cookie_secure else None,
        )
    except psycopg.Error as exc:
        raise click.ClickException(f"cannot open the district database: {exc}") from None
    server = guarded_server((host, int(port_text)), app, log=logging.getLogger("district.web.access"))
    gevent.signal_handler(signal.SIGTERM, lambda *a: gevent.spawn(server.stop, timeout=3))
    gevent.signal_handler(signal.SIGINT, lambda *a: gevent.spawn(server.stop, timeout=3))
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror}") from None
    click.echo(f"district web on http://{host}:{server.server_port}/", err=True)
    server.serve_forever()


@district.group("user")
def user() -> None:
    """District web accounts: district viewers (every site) and a site's staff (their own site only)."""


@user.command("add")
@DATABASE
@click.argument("username")
@click.option("--role", type=click.Choice(["district", "site"]), required=True)
@click.option("--site", "site_id", help="The site a `site` user may see.")
@click.password_option(help="The password (asked for when not given).")
def user_add(database, username, role, site_id, password) -> None:
    """Add a district web account (or set its password, role and site)."""
    from footfall.server.district_store import DistrictStore
    from footfall.server.district_web.auth import add_user

    store = DistrictStore(database)
    try:
        add_user(store.conn, username, password, role, site_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"saved {role} user {username}" + (f" for site {site_id}" if site_id else ""))
