"""Prometheus metrics (prometheus_client), for the two server processes (docs/alerts.md "Metrics").

- The web process serves `GET /metrics` (viewer token or session): what the store knows, read at scrape time
  (events, duplicates and dead letters per device and reason, room occupancy, device online and outbox depth from
  their status, open alerts, webhook deliveries, ingest's heartbeat), plus its own HTTP requests by route and
  status, SSE clients and broker link. Counters from the store survive restarts of either process.
- Ingest serves its own on `[server] ingest_metrics_listen` (default 127.0.0.1:9108, "" for none): ingest lag
  (receive time - event time), batch latency and size, queue depth, broker link, store writable.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from footfall.clock import parse_ts, utcnow

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector:
    """Reads the store at every scrape: a few small queries (counters live in `metrics` and `dead_letter_counts`)."""

    def __init__(self, site: Any, store: Any, live: Any = None):
        self.site = site
        self.store = store
        self.live = live

    def describe(self) -> list:
        return []  # collected at scrape time only (no store reads when registering)

    def collect(self):
        from footfall.server.health import heartbeat_age, read_heartbeat
        from footfall.server.web.data import device_list
        from footfall.server.webhooks import pending_deliveries

        store = self.store
        counts = store.metrics()
        events = CounterMetricFamily(
            "footfall_events_ingested", "New events stored, per device", labels=["device"]
        )
        dups = CounterMetricFamily(
            "footfall_events_duplicate",
            "Repeated deliveries acknowledged and ignored, per device",
            labels=["device"],
        )
        for name, value in sorted(counts.items()):
            kind, _, device = name.partition(":")
            if device and kind == "events":
                events.add_metric([device], value)
            elif device and kind == "duplicates":
                dups.add_metric([device], value)
        yield events
        yield dups
        letters = CounterMetricFamily(
            "footfall_dead_letters",
            "Rejected messages per device (or '(unknown)') and reason (the field that failed)",
            labels=["device", "reason", "kept"],
        )
        for row in store.dead_letter_counts():
            letters.add_metric([row["device"], row["reason"], "stored"], row["stored"])
            letters.add_metric([row["device"], row["reason"], "dropped"], row["dropped"])
        yield letters
        yield CounterMetricFamily(
            "footfall_dead_letters_pruned",
            "Oldest dead letters deleted to keep the cap",
            value=counts.get("dead_letters_pruned", 0),
        )
        occupancy = GaugeMetricFamily("footfall_room_occupancy", "People in the room now", labels=["room"])
        capacity = GaugeMetricFamily("footfall_room_capacity", "Capacity from site.toml", labels=["room"])
        live_rooms = store.rooms_live()
        from footfall.server.rooms import today

        day = today(self.site, utcnow())
        for room in self.site.rooms:
            counts_row = live_rooms.get(room.id)
            occupancy.add_metric(
                [room.id], counts_row.occupancy if counts_row and counts_row.day == day else 0
            )
            capacity.add_metric([room.id], room.capacity)
        yield occupancy
        yield capacity
        hearing = self.live is None or self.live.live_status()["live"]
        online = GaugeMetricFamily(
            "footfall_device_online",
            "1 online, 0 offline (absent while the server cannot hear the bus)",
            labels=["device", "kind"],
        )
        outbox = GaugeMetricFamily(
            "footfall_device_outbox_depth",
            "Events waiting in the device's outbox (its last status)",
            labels=["device"],
        )
        seen = GaugeMetricFamily(
            "footfall_device_last_seen_timestamp_seconds",
            "When the device was last heard from",
            labels=["device"],
        )
        for device in device_list(self.site, store.devices(), utcnow(), unknown=not hearing):
            if device["state"] != "unknown":
                online.add_metric([device["id"], device["kind"]], 1 if device["state"] == "online" else 0)
            if isinstance(device.get("queue"), int):
                outbox.add_metric([device["id"]], device["queue"])
            if device.get("last_seen"):
                seen.add_metric([device["id"]], parse_ts(device["last_seen"]).timestamp())
        yield online
        yield outbox
        yield seen
        alerts = GaugeMetricFamily("footfall_alerts_open", "Open alerts per kind", labels=["kind"])
        for kind, n in store.open_alert_counts():
            alerts.add_metric([kind], n)
        yield alerts
        yield GaugeMetricFamily(
            "footfall_webhook_pending", "Webhook deliveries not yet made", value=pending_deliveries(store)
        )
        yield CounterMetricFamily(
            "footfall_webhook_delivered", "Webhook deliveries made", value=counts.get("webhook_delivered", 0)
        )
        yield CounterMetricFamily(
            "footfall_webhook_failures",
            "Failed webhook attempts (retried)",
            value=counts.get("webhook_failures", 0),
        )
        beat = read_heartbeat(self.site.data_dir)
        age = heartbeat_age(beat) if beat else float("inf")
        yield GaugeMetricFamily(
            "footfall_ingest_heartbeat_age_seconds", "Age of ingest's heartbeat file", value=age
        )
        yield GaugeMetricFamily(
            "footfall_ingest_problems",
            "Problems ingest reports in its heartbeat (its store, broker link and ingest workers)",
            value=len(beat.get("problems") or []) if beat else 0,
        )


class WebMetrics:
    """The web process's registry: the store collector plus its own requests, streams and broker link."""

    def __init__(self, site: Any, store: Any, live: Any):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(site, store, live))
        self.requests = Counter(
            "footfall_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        Gauge("footfall_sse_clients", "Open live streams", registry=self.registry).set_function(
            lambda: live.subscriber_count
        )
        Gauge(
            "footfall_web_broker_connected", "1 while the web's MQTT link is up", registry=self.registry
        ).set_function(lambda: 1 if live.connected else 0)
        Gauge(
            "footfall_web_ingest_online",
            "1 while ingest's retained server status says online",
            registry=self.registry,
        ).set_function(lambda: 1 if live.live_status()["ingest"] else 0)
        Gauge(
            "footfall_web_rejected_messages",
            "Bad messages the web's live hub ignored",
            registry=self.registry,
        ).set_function(lambda: getattr(live, "rejected", 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


# Batch latency: a batch is a transaction of up to batch_max events; typical ones take milliseconds.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Lag: normally under a second; a device replaying its outbox after an outage sends events hours old.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class IngestMetrics:
    """Ingest's own registry, served on its metrics port."""

    def __init__(self, service: Any):
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.lag = Histogram(
            "footfall_ingest_lag_seconds",
            "Receive time minus event time of new events",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "footfall_ingest_batch_seconds",
            "Time to store one batch (one transaction)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "footfall_ingest_batch_messages",
            "Messages per batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.messages = Counter(
            "footfall_ingest_messages", "Messages taken from the broker by this process", registry=r
        )
        Gauge(
            "footfall_ingest_queue_depth", "Messages received, waiting for the worker", registry=r
        ).set_function(lambda: service._queue.qsize())
        Gauge(
            "footfall_ingest_broker_connected", "1 while ingest's MQTT link is up", registry=r
        ).set_function(lambda: 1 if service.link.connected.is_set() else 0)
        Gauge(
            "footfall_ingest_store_writable", "0 while the store cannot be written (disk full...)", registry=r
        ).set_function(lambda: 0 if service.health.store_problem else 1)
        Gauge(
            "footfall_ingest_worker_stalled_seconds", "Seconds since the worker loop last ran", registry=r
        ).set_function(service.health.stalled_for)

    def observe(self, messages: int, seconds: float, lags: list[float]) -> None:
        self.messages.inc(messages)
        self.batch.observe(seconds)
        self.batch_size.observe(messages)
        for lag in lags:
            self.lag.observe(max(0.0, lag))


def serve_ingest_metrics(metrics: IngestMetrics, listen: str) -> Any:
    """Start the ingest metrics server; a busy port is one logged line, and counting goes on without it."""
    from prometheus_client import start_http_server

    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    try:
        server, _thread = start_http_server(int(port), addr=host, registry=metrics.registry)
    except OSError as exc:
        logger.error(
            "ingest metrics: cannot listen on %s (%s); ingest runs without them", listen, exc.strerror
        )
        return None
    logger.info("ingest metrics on http://%s/metrics", listen)
    return server
