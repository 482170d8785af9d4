"""Outgoing webhooks: the four message formats (generic, 企业微信, 钉钉 with its signature, 飞书 with its signature)
received by a real local HTTP server; retries with backoff on failure; and, against the real processes and a real
Mosquitto, a device gone offline and a help call delivered once each although both server processes were killed
(SIGKILL) between the alert and its delivery."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from footfall.clock import format_ts, utcnow
from footfall.demo.broker import free_port
from footfall.server.alerting import raise_alert
from footfall.server.store import SqliteStore
from footfall.server.webhooks import Deliverer, backoff_s
from footfall.site import load_site
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_mqtt import pub

NOW = utcnow()


class Receiver:
    """A local HTTP server that records every POST and answers with the next scripted (status, body)."""

    def __init__(self, port: int = 0):
        self.requests: list[dict] = []
        self.replies: list[tuple[int, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                status, reply = (
                    receiver.replies.pop(0) if receiver.replies else (200, {"errcode": 0, "code": 0})
                )
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


HOOKS = """
[[webhooks]]
name = "ops"
url = "{base}/generic"

[[webhooks]]
name = "wecom"
format = "wecom"
url = "{base}/cgi-bin/webhook/send?key=abc"

[[webhooks]]
name = "dingtalk"
format = "dingtalk"
url = "{base}/robot/send?access_token=tok"
secret = "SECdingsecret"

[[webhooks]]
name = "feishu"
format = "feishu"
url = "{base}/open-apis/bot/v2/hook/xyz"
secret = "feishusecret"
kinds = ["help"]
"""


def site_with_hooks(site_file, base: str, extra: str = ""):
    site_file.write_text(site_file.read_text() + HOOKS.format(base=base) + extra)
    return load_site(site_file)


def test_every_format_reaches_the_receiver_signed(site_file, receiver):
    site = site_with_hooks(site_file, receiver.url(""))
    store = SqliteStore(site.db_path)
    with store.transaction() as tx:
        raise_alert(tx, "help", "kiosk-hall", "help call", NOW, room="hall")
    deliverer = Deliverer(site, store)
    assert deliverer.run_once(utcnow()) is True
    by_path = {urllib.parse.urlsplit(r["path"]).path: r for r in receiver.requests}
    assert len(receiver.requests) == 4

    generic = by_path["/generic"]
    assert generic["body"]["event"] == "raised" and generic["body"]["site"] == "dongsi"
    assert generic["body"]["alert"]["kind"] == "help" and generic["body"]["alert"]["room"] == "hall"
    assert generic["headers"]["X-Footfall-Delivery"] == generic["body"]["delivery"]
    assert "求助" in generic["body"]["text"] and "东四街道党群服务中心" in generic["body"]["text"]

    wecom = by_path["/cgi-bin/webhook/send"]["body"]
    assert wecom["msgtype"] == "text" and "求助" in wecom["text"]["content"]

    ding = by_path["/robot/send"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(ding["path"]).query)
    stamp, sign = query["timestamp"][0], query["sign"][0]
    expected = hmac.new(b"SECdingsecret", f"{stamp}\nSECdingsecret".encode(), hashlib.sha256).digest()
    assert base64.b64decode(sign) == expected and query["access_token"] == ["tok"]
    assert ding["body"]["msgtype"] == "text" and "求助" in ding["body"]["text"]["content"]

    feishu = by_path["/open-apis/bot/v2/hook/xyz"]["body"]
    key = f"{feishu['timestamp']}\nfeishusecret".encode()
    assert base64.b64decode(feishu["sign"]) == hmac.new(key, b"", hashlib.sha256).digest()
    assert feishu["msg_type"] == "text" and "求助" in feishu["content"]["text"]

    assert deliverer.run_once(utcnow()) is False and len(receiver.requests) == 4  # delivered once, not again
    with store.transaction() as tx:
        raise_alert(tx, "disk_low", "", "300 MB free", NOW)
    deliverer.run_once(utcnow())
    assert len(receiver.requests) == 7  # feishu takes only help calls (kinds = ["help"])


def test_failures_are_retried_with_backoff_and_robot_errors_count_as_failures(site_file, receiver):
    site = site_with_hooks(site_file, receiver.url(""))
    site = type(site)(**{**site.__dict__, "webhooks": site.webhooks[1:2]})  # only the 企业微信 robot
    store = SqliteStore(site.db_path)
    with store.transaction() as tx:
        raise_alert(tx, "device_offline", "door-main", "no word for 5 min", NOW)
    receiver.replies = [(500, {}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"})]
    deliverer = Deliverer(site, store)
    now = utcnow()
    deliverer.run_once(now)
    assert deliverer.run_once(now) is False  # not due again at once
    row = store.conn.execute("SELECT attempts, next_at, last_error FROM alert_deliveries").fetchone()
    assert row[0] == 1 and row[1] > format_ts(now) and row[2] == "HTTP 500"
    deliverer.run_once(now + dt.timedelta(seconds=5))
    assert "45009" in store.conn.execute("SELECT last_error FROM alert_deliveries").fetchone()[0]
    deliverer.run_once(now + dt.timedelta(seconds=15))
    assert len(receiver.requests) == 3
    row = store.conn.execute("SELECT delivered_at IS NOT NULL, attempts FROM alert_deliveries").fetchone()
    assert tuple(row) == (1, 3)
    assert store.metrics()["webhook_failures"] == 2 and store.metrics()["webhook_delivered"] == 1
    delays = [backoff_s(n, 600) for n in range(1, 12)]
    assert delays[0] <= 2 and delays[3] >= 8 and max(delays) <= 600  # doubling, jittered, capped


@pytest.mark.integration
def test_offline_device_and_help_call_are_delivered_once_across_a_kill(broker, site_file, procs):
    port = free_port()
    site_file.write_text(
        site_file.read_text() + f'\n[[webhooks]]\nname = "ops"\nurl = "http://127.0.0.1:{port}/hook"\n'
    )
    env = footfall_env(
        broker,
        FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{free_port()}",
        FOOTFALL_SERVER_INGEST_METRICS_LISTEN="",
        FOOTFALL_ALERTS_DEVICE_OFFLINE_S="2",
        FOOTFALL_ALERTS_CHECK_EVERY_S="1",
    )

    def start():
        return [
            procs("server", "-c", str(site_file), "--only", part, env=env, name=part)
            for part in ("ingest", "web")
        ]

    running = start()
    wait_server_online(broker)
    now = format_ts(utcnow())
    online = {"v": 1, "state": "online", "kind": "counter", "version": "t", "ts": now, "queue": 0, "last_seq": 0,
              "health": {"sensor": "ok", "clock": "synced"}}  # fmt: skip
    pub(broker, "door-main", json.dumps(online), kind="status")
    pub(broker, "door-main", json.dumps({"v": 1, "state": "offline"}), kind="status")  # its Last Will
    pub(broker, "kiosk-hall", json.dumps({"v": 1, "id": "h-kill", "seq": 1, "ts": now, "type": "help"}))
    store = SqliteStore(site_file.parent / "data" / "footfall.db")

    def tried(kind: str, device: str) -> bool:
        """The alert is stored and its delivery was attempted (and failed: nobody listens yet)."""
        row = store.conn.execute(
            "SELECT d.attempts FROM alert_deliveries d JOIN alert_notices n ON n.pk = d.notice"
            " JOIN alerts a ON a.pk = n.alert WHERE a.kind=? AND a.device=? AND n.what='raised'",
            (kind, device),
        ).fetchone()
        return bool(row and row[0] >= 1)

    wait_until(lambda: tried("help", "kiosk-hall") and tried("device_offline", "door-main"), 30)
    for proc in running:
        proc.kill()  # SIGKILL, between the alert and its delivery

    receiver = Receiver(port)
    try:
        start()

        def delivered(kind: str, device: str) -> list[dict]:
            return [
                r["body"]
                for r in receiver.requests
                if r["body"]["alert"]["kind"] == kind
                and r["body"]["alert"]["device"] == device
                and r["body"]["event"] == "raised"
            ]

        wait_until(lambda: delivered("help", "kiosk-hall") and delivered("device_offline", "door-main"), 60)
        wait_until(
            lambda: (
                not store.conn.execute(
                    "SELECT 1 FROM alert_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL"
                ).fetchone()
            ),
            30,
        )
        ids = [r["body"]["delivery"] for r in receiver.requests]
        assert len(ids) == len(set(ids))  # two workers (ingest, web), a kill and a restart: each notice once
        assert (
            len(delivered("help", "kiosk-hall")) == 1 and len(delivered("device_offline", "door-main")) == 1
        )
        assert delivered("help", "kiosk-hall")[0]["alert"]["room"] == "hall"
    finally:
        receiver.close()
