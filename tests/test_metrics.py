"""GET /metrics (web) and ingest's own metrics port, against the real processes and a real Mosquitto fed by
Debian's mosquitto_pub, parsed with prometheus_client's own parser: the numbers match what was published."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from footfall.clock import format_ts, utcnow
from footfall.demo.broker import free_port
from tests.conftest import footfall_env, wait_server_online, wait_until
from tests.test_ingest_mqtt import crossing, make_token, pub

pytestmark = pytest.mark.integration


def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def status(queue: int) -> str:
    return json.dumps(
        {"v": 1, "state": "online", "kind": "counter", "version": "t", "ts": format_ts(utcnow()), "queue": queue,
         "last_seq": 7, "health": {"sensor": "ok", "clock": "synced"}}
    )  # fmt: skip


def test_metrics_match_what_was_published(broker, site_file, procs):
    web_port, metrics_port = free_port(), free_port()
    env = footfall_env(
        broker,
        FOOTFALL_SERVER_LISTEN=f"127.0.0.1:{web_port}",
        FOOTFALL_SERVER_INGEST_METRICS_LISTEN=f"127.0.0.1:{metrics_port}",
    )
    procs("server", "-c", str(site_file), "--only", "ingest", env=env, name="ingest")
    procs("server", "-c", str(site_file), "--only", "web", env=env, name="web")
    wait_server_online(broker)
    token = make_token(site_file, env)
    web = f"http://127.0.0.1:{web_port}/metrics"
    wait_until(lambda: _up(web, token), 20, message="web /metrics")

    with pytest.raises(urllib.error.HTTPError) as denied:
        scrape(web)
    assert denied.value.code == 401  # occupancy and device names are for staff tools, not the world

    for i in range(7):  # seven people in through the main door...
        pub(broker, "door-main", crossing(f"m{i}", i + 1))
    pub(broker, "door-main", crossing("m0", 1))  # ...two of them delivered twice
    pub(broker, "door-main", crossing("m1", 2))
    for i in range(3):  # three of them on into the book bar
        pub(broker, "door-book-bar", crossing(f"b{i}", i + 1))
    pub(broker, "door-meeting", "not json")
    pub(broker, "door-meeting", crossing("x", 1, direction="sideways"))
    pub(broker, "no-such-door", crossing("u", 1))
    pub(broker, "door-main", status(queue=42), kind="status")

    def settled():
        s = scrape(web, token)
        return (
            s
            if value(s, "footfall_device_outbox_depth", device="door-main") == 42
            and total(s, "footfall_dead_letters_total") == 3
            and value(s, "footfall_events_ingested_total", device="door-book-bar") == 3
            else None
        )

    samples = wait_until(settled, 20, message="metrics to show the published messages")
    assert value(samples, "footfall_events_ingested_total", device="door-main") == 7
    assert value(samples, "footfall_events_duplicate_total", device="door-main") == 2
    assert value(samples, "footfall_events_duplicate_total", device="door-book-bar") is None
    assert total(samples, "footfall_dead_letters_total", device="door-meeting") == 2
    assert total(samples, "footfall_dead_letters_total", device="(unknown)") == 1
    reasons = {
        dict(ls)["reason"] for (n, ls), v in samples.items() if n == "footfall_dead_letters_total" and v
    }
    assert len(reasons) >= 2  # not-JSON and a bad direction fail on different fields
    assert value(samples, "footfall_room_occupancy", room="hall") == 4
    assert value(samples, "footfall_room_occupancy", room="book-bar") == 3
    assert value(samples, "footfall_room_capacity", room="book-bar") == 40
    assert value(samples, "footfall_device_online", device="door-main", kind="counter") == 1
    assert value(samples, "footfall_web_broker_connected") == 1

    # A live stream and some requests are counted by route pattern and status.
    stream = urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{web_port}/api/v1/stream", headers={"Authorization": f"Bearer {token}"}
        ),
        timeout=5,
    )
    threading.Thread(target=lambda: stream.read(1), daemon=True).start()
    for room in ("hall", "book-bar", "roof"):
        try:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{web_port}/api/v1/rooms/{room}",
                    headers={"Authorization": f"Bearer {token}"},
                ),
                timeout=5,
            )
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    samples = wait_until(
        lambda: (s := scrape(web, token)) and value(s, "footfall_sse_clients") == 1 and s, 10
    )
    ok = value(
        samples, "footfall_http_requests_total", route="/api/v1/rooms/<room>", method="GET", status="200"
    )
    missing = value(
        samples, "footfall_http_requests_total", route="/api/v1/rooms/<room>", method="GET", status="404"
    )
    assert (ok, missing) == (2, 1)
    assert value(samples, "footfall_http_requests_total", route="/metrics", method="GET", status="401") == 1
    stream.close()

    own = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert value(own, "footfall_ingest_lag_seconds_count") == 10  # the ten new events, not the repeats
    assert value(own, "footfall_ingest_lag_seconds_bucket", le="60.0") == 10  # all sent moments ago
    assert value(own, "footfall_ingest_batch_seconds_count") >= 1
    assert value(own, "footfall_ingest_messages_total") >= 15
    assert value(own, "footfall_ingest_broker_connected") == 1
    assert value(own, "footfall_ingest_store_writable") == 1


def _up(url: str, token: str) -> bool:
    try:
        scrape(url, token)
        return True
    except OSError:
        return False
