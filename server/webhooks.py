"""Outgoing webhooks: every alert notice (raised, cleared) is POSTed to each `[[webhooks]]` of site.toml.

Formats: `generic` (Footfall's JSON), and the group-robot messages of 企业微信 (`wecom`), 钉钉 (`dingtalk`, with the
optional signing secret) and 飞书 (`feishu`, likewise). Deliveries live in the store (`alert_deliveries`): one row per
notice and webhook, created by the worker, retried with jittered exponential backoff up to `[alerts] retry_max_s`,
given up after `give_up_after_h`. A worker claims a row by moving its due time past the request timeout before
sending, so the ingest and web processes can both run one without sending twice; a row is marked delivered only
after the receiver answered 2xx (and, for the robots, errcode 0). A crash between sending and marking can repeat
a delivery: each carries the header `X-Footfall-Delivery` (and `delivery` in the generic body) for receivers to
drop repeats.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

from footfall.clock import format_ts, utcnow
from footfall.site import Webhook

logger = logging.getLogger(__name__)

TIMEOUT_S = 10.0
CLAIM_S = TIMEOUT_S + 5  # a claimed row is not picked by another worker until the request has surely ended
FIRST_RETRY_S = 2.0
BATCH = 50

KIND_TEXT = {
    "help": ("求助", "help call"),
    "device_offline": ("设备离线", "device offline"),
    "ingest_stalled": ("计数服务停止", "ingest stalled"),
    "disk_low": ("磁盘空间不足", "disk nearly full"),
}


def alert_text(site_name: str, what: str, alert: dict[str, Any]) -> str:
    """One line staff read on a phone: site, what, where, when (Chinese first, then English)."""
    zh, en = KIND_TEXT.get(alert["kind"], (alert["kind"], alert["kind"]))
    where = " ".join(x for x in (alert.get("room") or "", alert.get("device") or "") if x)
    head = (
        f"【{site_name}】{zh} / {en}" if what == "raised" else f"【{site_name}】已解除 cleared: {zh} / {en}"
    )
    parts = [head, where, alert.get("message") or "", alert["raised_at"]]
    return " · ".join(p for p in parts if p)


def body_for(hook: Webhook, site: Any, what: str, alert: dict[str, Any], delivery: str) -> dict[str, Any]:
    text = alert_text(site.name, what, alert)
    fmt = hook.format
    if fmt == "wecom":
        return {"msgtype": "text", "text": {"content": text}}
    if fmt == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}}
    if fmt == "feishu":
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
        if hook.secret:
            stamp = str(int(time.time()))
            key = f"{stamp}\n{hook.secret}".encode()
            body["timestamp"] = stamp
            body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return body
    return {
        "v": 1,
        "site": site.id,
        "delivery": delivery,
        "event": what,
        "text": text,
        "alert": {
            k: alert.get(k) for k in ("id", "kind", "device", "room", "message", "raised_at", "cleared_at")
        },
    }


def url_for(hook: Webhook) -> str:
    """DingTalk signs in the query string: timestamp (ms) and the HMAC-SHA256 of "timestamp\\nsecret"."""
    url = hook.url
    if hook.format == "dingtalk" and hook.secret:
        stamp = str(int(time.time() * 1000))
        mac = hmac.new(hook.secret.encode(), f"{stamp}\n{hook.secret}".encode(), hashlib.sha256).digest()
        sign = urllib.parse.quote_plus(base64.b64encode(mac).decode())
        url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={sign}"
    return url


def accepted(fmt: str, status: int, text: str) -> tuple[bool, str]:
    """Did the receiver take it? The robots answer HTTP 200 with an error code in the body."""
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if fmt in ("wecom", "dingtalk", "feishu"):
        try:
            reply = json.loads(text)
        except ValueError:
            return False, "reply is not JSON"
        code = (
            reply.get("errcode", reply.get("code", reply.get("StatusCode", 0)))
            if isinstance(reply, dict)
            else 1
        )
        if code != 0:
            return False, f"robot error {code}: {str(reply)[:200]}"
    return True, ""


def post(url: str, body: dict[str, Any], delivery: str) -> tuple[int, str]:
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "X-Footfall-Delivery": delivery},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.read(64 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def backoff_s(attempts: int, maximum: float) -> float:
    """2 s, 4 s, 8 s ... up to `maximum`, each jittered down to half (many alerts do not retry in step)."""
    delay = min(FIRST_RETRY_S * 2 ** max(0, attempts - 1), maximum)
    return random.uniform(delay / 2, delay)


class Deliverer:
    """Turns alert notices into deliveries and sends the due ones. `run_once` is one pass (tests call it)."""

    def __init__(self, site: Any, store: Any, sender=post):
        self.site = site
        self.store = store
        self.sender = sender
        self.hooks = {h.name: h for h in site.webhooks}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def start(self) -> Deliverer:
        if self.hooks:
            self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT_S + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once(utcnow())
            except Exception:  # a locked or full store: try again shortly, never stop delivering
                logger.exception("webhook delivery pass failed")
                busy = False
            self._stop.wait(0.2 if busy else 1.0)

    def run_once(self, now: dt.datetime) -> bool:
        """Create missing deliveries, send the due ones; True if there was something to send."""
        self._create(now)
        due = self._claim(now)
        for notice, target, attempts in due:
            self._deliver(notice, target, attempts)
        return bool(due)

    def _create(self, now: dt.datetime) -> None:
        """One delivery per (notice, webhook) for notices newer than what this webhook already has.

        A webhook added later starts with the notices of the last give_up_after_h, not the whole history.
        """
        since = format_ts(now - dt.timedelta(hours=self.site.alerts.give_up_after_h))
        with self.store.transaction() as tx:
            for name, hook in self.hooks.items():
                tx.queue_deliveries(name, since, hook.kinds)  # kinds None: every kind

    def _claim(self, now: dt.datetime) -> list[tuple[int, str, int]]:
        at = format_ts(now)
        until = format_ts(now + dt.timedelta(seconds=CLAIM_S))
        limit = format_ts(now - dt.timedelta(hours=self.site.alerts.give_up_after_h))
        with self.store.transaction() as tx:
            rows = tx.due_deliveries(at, BATCH)
            claimed = []
            for notice, target, attempts, notice_at in rows:
                if target not in self.hooks or notice_at < limit:
                    reason = (
                        "webhook removed from site.toml" if target not in self.hooks else "gave up (too old)"
                    )
                    tx.give_up_delivery(notice, target, at, reason)
                    continue
                tx.claim_delivery(notice, target, until)
                claimed.append((notice, target, attempts + 1))
        return claimed

    def _deliver(self, notice: int, target: str, attempts: int) -> None:
        hook = self.hooks[target]
        row = self.store.notice_alert(notice)
        if row is None:
            return
        alert = {**row, "id": row["pk"], "kind": row["kind"] or "help"}
        delivery = f"{self.site.id}-{notice}-{target}"
        try:
            status, text = self.sender(
                url_for(hook), body_for(hook, self.site, row["what"], alert, delivery), delivery
            )
            ok, error = accepted(hook.format, status, text)
        except Exception as exc:  # noqa: BLE001 - any network failure is a retry, never a crash
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        now = utcnow()
        with self.store.transaction() as tx:
            if ok:
                tx.delivered(notice, target, format_ts(now))
                tx.bump("webhook_delivered")
            else:
                retry = now + dt.timedelta(seconds=backoff_s(attempts, self.site.alerts.retry_max_s))
                tx.retry_delivery(notice, target, format_ts(retry), error)
                tx.bump("webhook_failures")
        if ok:
            self.sent += 1
            logger.info("webhook %s: delivered %s of alert %s", target, row["what"], alert["id"])
        else:
            self.failed += 1
            logger.warning("webhook %s: attempt %d failed (%s); retrying", target, attempts, error)


def pending_deliveries(store: Any) -> int:
    return store.pending_deliveries()
