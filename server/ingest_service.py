"""Ingest on MQTT: a network thread queues messages, a worker takes them in batches, has the Ingestor
(server/ingest.py) store each batch in one transaction, then acknowledges them to the broker and publishes the
retained room states. Messages are acknowledged (manual PUBACK) only after their batch is committed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from typing import Any

from footfall import sdnotify, topics
from footfall.clock import utcnow
from footfall.link import LinkSettings, MqttLink
from footfall.messages import encode_json
from footfall.server import acks
from footfall.server.alerting import publish_alerts
from footfall.server.health import EXIT_AFTER_S, IngestHealth
from footfall.server.ingest import RETRY_MAX_S, ROLLUP_EVERY, Incoming, Ingestor
from footfall.server.metrics import IngestMetrics, serve_ingest_metrics
from footfall.server.monitor import Monitor
from footfall.server.reports import rollup_pending
from footfall.server.rooms import live_states, today
from footfall.server.schedule import schedule_message
from footfall.server.store import Store, store_unavailable
from footfall.server.webhooks import Deliverer
from footfall.site import SiteConfig

logger = logging.getLogger(__name__)


SHARE_GROUP = (
    "footfall-ingest"  # the shared subscription of a site's ingest workers ([server] ingest_workers)
)
POLL_S = 0.25  # the first of several workers counts what the others stored at least this often when idle


def worker_client_id(site: SiteConfig, worker: int) -> str:
    base = site.mqtt.client_id or f"footfall-server-{site.id}-ingest"
    return base if worker == 1 else f"{base}-{worker}"


def worker_link_settings(site: SiteConfig, worker: int) -> LinkSettings:
    """Ingest's broker settings; worker k > 1 logs in as `<ingest's user>-<k>` (server.mqtt_accounts makes those
    accounts, with ingest's password and ACL): on the secure broker a client id is its user name, so workers
    under one account would keep closing each other's connection."""
    settings = LinkSettings.from_config(site.mqtt)
    if worker == 1 or not settings.username:
        return settings
    return dataclasses.replace(settings, username=f"{settings.username}-{worker}")


class IngestService:
    """Runs the Ingestor on MQTT: a network thread queues messages, a worker batches, commits, acks, publishes.

    With `[server] ingest_workers` = N > 1 the site's events go to N processes on one shared subscription
    (`$share/footfall-ingest/...`), each storing and acknowledging its share. Worker 1 is the site's ingest as
    before (device status, commands, alerts, rollups, room states) and counts every crossing stored by any of
    them; workers 2..N only store, acknowledge and confirm events (server.process starts and watches them)."""

    def __init__(self, site: SiteConfig, store: Store, client_id: str | None = None, worker: int = 1):
        self.site = site
        self.worker = worker
        self.shared = site.server.ingest_workers > 1
        counting = "batch" if not self.shared else "stored" if worker == 1 else "none"
        self.ingestor = Ingestor(site, store, counting)
        self.batch_max = site.server.batch_max
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        prefix = site.prefix
        self.server_topic = topics.server_status(site.id, prefix)
        self.cmd_topic = topics.server_cmd(site.id, prefix)
        events = topics.all_device_events(site.id, prefix)
        shared_events = f"$share/{SHARE_GROUP}/{events}"
        # A persistent session keeps its subscriptions: the other form is dropped on connect, or a change of
        # ingest_workers would have events delivered twice to this session.
        self._events, self._not_events = (shared_events, events) if self.shared else (events, shared_events)
        subscriptions = [(self._events, 1)]
        if worker == 1:
            subscriptions += [
                (topics.all_device_status(site.id, prefix), 1),
                (topics.server_cmd(site.id, prefix), 1),
                # Other sites' statuses: a device of ours configured with a wrong site (server.device_watch).
                (topics.all_device_status("+", prefix), 1),
                (topics.server_status("+", prefix), 1),
            ]
        self.link = MqttLink(
            client_id or worker_client_id(site, worker),
            worker_link_settings(site, worker),
            will=(self.server_topic, b"offline") if worker == 1 else None,
            subscriptions=subscriptions,
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            manual_ack=True,
        )
        self.health = IngestHealth(site.data_dir, worker)
        self._worker = threading.Thread(target=self._run, name="ingest-worker", daemon=True)
        self._day = None
        self._next_rollup = utcnow() + ROLLUP_EVERY
        # Alerts: offline devices and a nearly full disk, and their webhook deliveries (docs/alerts.md).
        self.monitor = Monitor(site, store, utcnow())
        self.deliverer = Deliverer(site, store)
        self.link_up_since: dt.datetime | None = None
        self.metrics = IngestMetrics(self)
        self._metrics_server = None

    def start(self) -> IngestService:
        if self.worker == 1:
            # Days missed while ingest was not running are counted before new events arrive.
            rollup_pending(self.site, self.ingestor.store, utcnow())
        self._worker.start()
        self.link.start()
        if self.worker == 1:
            self.deliverer.start()
            self._metrics_server = serve_ingest_metrics(self.metrics, self.site.server.ingest_metrics_listen)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(10)
        if self.worker == 1:
            self.deliverer.stop()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.link.stop(final=(self.server_topic, b"offline") if self.worker == 1 else None)
        self.health.close()

    def problem(self) -> str | None:
        """Why this process should be restarted (worker died or stalled), or None while it works."""
        if self._worker.ident is not None and not self._worker.is_alive() and not self._stop.is_set():
            return "the ingest worker thread died"
        if self.health.stalled_for() > EXIT_AFTER_S:
            return f"the ingest worker stalled for {self.health.stalled_for():.0f} s"
        return None

    def _on_message(self, message) -> None:
        self._queue.put(
            Incoming(message.topic, message.payload, message.mid, message.qos, bool(message.retain))
        )

    def _on_disconnect(self) -> None:
        self.link_up_since = None

    def _on_connect(self, session_present: bool) -> None:
        self.health.set_mqtt(True)
        self.link_up_since = utcnow()
        if session_present:
            self.link.client.unsubscribe(self._not_events)
        if self.worker != 1:
            return
        self.link.publish(self.server_topic, b"online", qos=1, retain=True)
        self.publish_all_rooms()
        publish_alerts(self.link, self.site, self.ingestor.store)
        self.link.publish(*schedule_message(self.site, self.ingestor.store, utcnow()), qos=1, retain=True)

    def publish_all_rooms(self) -> None:
        now = utcnow()
        for state in live_states(self.site, self.ingestor.store.rooms_live(), now):
            self._publish_room(state)

    def _publish_room(self, state: dict[str, Any]) -> None:
        topic = topics.room_state(self.site.id, state["room"], self.site.prefix)
        self.link.publish(topic, encode_json(state), qos=1, retain=True)

    def _beat(self) -> None:
        sdnotify.watchdog()
        self.health.beat()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # noqa: BLE001 - logged; problem() sees the dead thread and the process exits
            logger.exception("the ingest worker died")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._beat()  # at least once a second: the queue wait below times out after 1 s
            try:
                first = self._queue.get(timeout=POLL_S if self.ingestor.counting == "stored" else 1.0)
            except queue.Empty:
                self._count_others()
                self._check_day_boundary()
                continue
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            started = time.monotonic()
            changed = self._store(batch)
            self.metrics.observe(len(batch), time.monotonic() - started, self.ingestor.lags)
            self.health.events = self.ingestor.stored
            self.ingestor.lags = []
            if changed is None:
                return  # stopping before the store came back: nothing acknowledged, the broker redelivers
            requested = self.ingestor.take_requested_rooms()
            changed += self._room_states_asked_for(requested, {state["room"] for state in changed})
            self.link.ack_many(batch)  # the QoS 1 PUBACKs in one write
            self._confirm_to_devices()
            self._alert_and_schedule_requests()
            for state in changed:
                self._publish_room(state)
            if self.ingestor.alerts_changed:
                self.ingestor.alerts_changed = False
                publish_alerts(self.link, self.site, self.ingestor.store)
            self._check_day_boundary()

    def _count_others(self) -> None:
        """Worker 1 of several, idle: count what the other workers stored, and publish the rooms it changed."""
        if self.ingestor.counting != "stored":
            return
        try:
            changed = self.ingestor.count_stored()
        except Exception as exc:  # the store: the next batch or poll tries again; health tells of the store
            if not store_unavailable(exc):
                raise
            return
        for state in changed:
            self._publish_room(state)

    def _confirm_to_devices(self) -> None:
        """Tell each device which of its events are now committed: it deletes those from its outbox."""
        for device, events in self.ingestor.confirmed.items():
            topic = topics.device_ack(self.site.id, device, self.site.prefix)
            self.link.publish(topic, acks.ack_payload(acks.seq_ranges(events)), qos=1)
        self.ingestor.confirmed = {}
        for device, why in self.ingestor.watch.take_refusals().items():  # why nothing of theirs is counted
            topic = topics.device_ack(self.site.id, device, self.site.prefix)
            self.link.publish(topic, acks.ack_payload([], refused=why), qos=1)

    def _store(self, batch: list[Incoming]) -> list[dict[str, Any]] | None:
        """Store a batch; while the store is unavailable (disk full), keep it unacknowledged and retry, reporting
        the problem in the heartbeat. None when asked to stop first."""
        delay = 1.0
        while True:
            try:
                changed = self.ingestor.process_guarded(batch)
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                if self.health.store_problem is None:
                    logger.error("store unavailable, not acknowledging until it is back: %s", exc)
                self.health.set_store_problem(f"cannot write ({exc})")
                self.ingestor.store.close()  # a fresh connection for the retry
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline:
                    self._beat()
                    if self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                        return None
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self.health.store_problem is not None:
                logger.info("store writable again; ingest resumed")
                self.health.set_store_problem(None)
            return changed

    def _check_alerts(self, now: dt.datetime) -> None:
        try:
            changed = self.monitor.check_devices(now, self.link_up_since)
            changed |= self.monitor.check_disk(now)
        except Exception:  # a full or locked store: the next check tries again; health reports the store
            logger.exception("alert checks failed")
            return
        if changed:
            publish_alerts(self.link, self.site, self.ingestor.store)

    def _alert_and_schedule_requests(self) -> None:
        """`republish-alerts` (the web after a staff clear; the kiosks of cleared help calls are told) and
        `republish-schedule` (after a schedule edit): ingest is the only publisher of both retained topics."""
        cleared, alerts, schedule = self.ingestor.take_requested_republish()
        try:
            if alerts:
                publish_alerts(self.link, self.site, self.ingestor.store)
                self._tell_kiosks_cleared(cleared)
            if schedule:
                self.link.publish(
                    *schedule_message(self.site, self.ingestor.store, utcnow()), qos=1, retain=True
                )
        except Exception:  # the store is the truth; the next change republishes
            logger.exception("could not republish alerts or schedule")

    def _tell_kiosks_cleared(self, cleared: list[int]) -> None:
        """A kiosk whose help call staff cleared stops showing "help is coming"."""
        for pk in cleared:
            alert = self.ingestor.store.alert(pk)
            if alert and alert.get("kind") == "help" and alert["cleared_at"] and alert["device"]:
                command = {"v": 1, "id": f"alert-{pk}", "cmd": "help-clear"}
                topic = topics.device_cmd(self.site.id, alert["device"], self.site.prefix)
                self.link.publish(topic, encode_json(command), qos=1)

    def _room_states_asked_for(self, rooms: set[str], published: set[str]) -> list[dict[str, Any]]:
        """`republish-room` requests (the web process after a staff correction): read the rooms from the store."""
        rooms = rooms - published
        if not rooms:
            return []
        day = today(self.site, utcnow())
        with self.ingestor.store.transaction() as tx:
            for room in rooms:  # after a staff correction: count on from the corrected, replayed state
                tx.put_room_counts(room, self.ingestor.recount_room(tx, room, day), utcnow())
        states = live_states(self.site, self.ingestor.store.rooms_live(), utcnow())
        return [state for state in states if state["room"] in rooms]

    def _check_day_boundary(self) -> None:
        if self.worker != 1:
            return
        now = utcnow()
        day = today(self.site, now)
        if day != self._day:
            if self._day is not None:
                logger.info("new business day %s: occupancy reset", day)
                self.publish_all_rooms()
                self.link.publish(*schedule_message(self.site, self.ingestor.store, now), qos=1, retain=True)
            self._day = day
        if self.monitor.due(now):
            self._check_alerts(now)
        if now >= self._next_rollup:
            # Recounts the days that late events (an outbox replaying after an outage) re-opened.
            rollup_pending(self.site, self.ingestor.store, now)
            self._next_rollup = now + ROLLUP_EVERY
