"""The server on a PostgreSQL store (#14 item 1): `footfall server` (ingest and web, real subprocesses), a real
Mosquitto and a throwaway PostgreSQL cluster; the CLI commands that open the store; the SQLite-only commands
refusing it. docs/operations.md, "The store on PostgreSQL"."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner

from footfall.cli import main
from footfall.demo.broker import free_port
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.pg import PgCluster
from tests.test_ingest_mqtt import api, api_ready, crossing, make_token, pub


def test_ingest_and_web_run_on_postgresql(broker, site_file, procs, tmp_path):
    cluster = PgCluster().start()
    try:
        url = cluster.create_database("dongsi")
        web_port = free_port()
        env = footfall_env(
            broker, FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}", FOOTFALL_SERVER_DATABASE=url
        )
        procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
        procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
        wait_until(lambda: api_ready(web_port), 30, message="web up")
        token = make_token(site_file, env)  # `footfall token create` stores it in PostgreSQL
        wait_server_online(broker)
        for seq in range(5):
            pub(broker, "door-main", crossing(f"main-{seq}", seq))
        pub(broker, "door-main", crossing("main-3", 3))  # delivered twice: stored once

        def hall():
            return {r["room"]: r for r in api(web_port, "/api/v1/rooms", token)}["hall"]

        wait_until(lambda: hall()["entries_today"] == 5, 20, message="five entries on the web")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 5
            assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
        assert not (tmp_path / "data" / "footfall.db").exists()  # no SQLite file beside it
    finally:
        cluster.stop()


def test_cli_commands_use_postgresql_and_file_copies_refuse_it(site_file, tmp_path, monkeypatch):
    cluster = PgCluster().start()
    try:
        url = cluster.create_database("cli")
        monkeypatch.setenv("FOOTFALL_SERVER_DATABASE", url)
        runner = CliRunner()
        added = runner.invoke(
            main,
            ["user", "add", "ana", "--role", "staff", "-c", str(site_file)],
            input="pw-123456789\npw-123456789\n",
        )
        assert added.exit_code == 0, added.output
        listed = runner.invoke(main, ["user", "list", "-c", str(site_file)])
        assert "ana" in listed.output and "staff" in listed.output
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT username FROM users").fetchall() == [("ana",)]
        daily = runner.invoke(main, ["report", "daily", "-c", str(site_file)])
        assert daily.exit_code == 0, daily.output
        (tmp_path / "in.db").write_bytes(b"")
        for args in (
            ["backup", str(tmp_path / "b.db")],
            ["restore", str(tmp_path / "in.db")],
            ["store", "check"],
        ):
            refused = runner.invoke(main, [*args, "-c", str(site_file)])
            assert (
                refused.exit_code == 1
                and "PostgreSQL" in refused.output
                and "Traceback" not in refused.output
            )
        assert not (tmp_path / "data" / "footfall.db").exists()
    finally:
        cluster.stop()
