"""Hole 2 of #11: logout, `footfall user passwd`, a role change and `footfall user remove` end every session of
the user, including a copy of the cookie taken before (a per-user session version checked on each request)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from footfall.server.admin_cli import user as user_cli
from footfall.server.store import SqliteStore
from footfall.server.web import create_app
from footfall.server.web.auth import add_user
from footfall.server.web.live import LocalHub
from footfall.site import load_site
from tests.webkit import NOW

COOKIE = "footfall_session"
PASSWORD = "correct horse"


@pytest.fixture
def setup(site_file):
    site = load_site(site_file)
    store = SqliteStore(site.db_path)
    add_user(store, "wang", PASSWORD, "staff")
    add_user(store, "li", PASSWORD, "staff")
    app = create_app(
        site, store, LocalHub(), {"TESTING": True, "CSRF_ENABLED": False, "FOOTFALL_NOW": lambda: NOW}
    )
    yield app, site_file
    store.close()


def login(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data
    assert client.get("/api/v1/adjustments").status_code == 200
    return client


def copy_of(app, client):
    """A second browser holding a copy of `client`'s session cookie (as an attacker who copied it would)."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    assert thief.get("/api/v1/adjustments").status_code == 200
    return thief


def assert_logged_out(client):
    assert client.get("/api/v1/adjustments").status_code == 401
    page = client.get("/schedule")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def cli(site_file, *args: str) -> None:
    result = CliRunner().invoke(user_cli, [*args, "-c", str(site_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_logout_ends_a_copied_cookie_and_the_users_other_sessions(setup):
    app, _ = setup
    client = login(app, "wang")
    thief = copy_of(app, client)
    other_browser = login(app, "wang")
    someone_else = login(app, "li")
    assert client.post("/logout").status_code == 302
    assert_logged_out(client)
    assert_logged_out(thief)
    assert_logged_out(other_browser)
    assert someone_else.get("/api/v1/adjustments").status_code == 200  # only wang's sessions end


def test_footfall_user_passwd_ends_every_session(setup):
    app, site_file = setup
    thief = copy_of(app, login(app, "wang"))
    cli(site_file, "passwd", "wang", "--password", "a new password")
    assert_logged_out(thief)
    fresh = app.test_client()
    fresh.post("/login", data={"username": "wang", "password": "a new password"})
    assert fresh.get("/api/v1/adjustments").status_code == 200


def test_a_role_change_ends_every_session(setup):
    app, site_file = setup
    thief = copy_of(app, login(app, "wang"))
    cli(site_file, "add", "wang", "--role", "viewer", "--password", PASSWORD)
    assert_logged_out(thief)
    relogged = app.test_client()
    relogged.post("/login", data={"username": "wang", "password": PASSWORD})
    assert relogged.get("/api/v1/adjustments").status_code == 403  # back in, with the new role only


def test_user_remove_ends_every_session(setup):
    app, site_file = setup
    thief = copy_of(app, login(app, "wang"))
    cli(site_file, "remove", "wang")
    assert_logged_out(thief)
