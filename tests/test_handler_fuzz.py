"""Random JSON and bytes on every topic each MQTT consumer handles (#10 item 1): ingest, the web's live hub and the
kiosk's feed. None of them may raise past its guard; ingest accounts for every message."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall.clock import format_ts
from footfall.config import load_toml
from footfall.errors import ValidationError
from footfall.kiosk.config import load_kiosk_config
from footfall.kiosk.feed import Feed
from footfall.kiosk.local import LocalState
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import SqliteStore
from footfall.server.web.live import LiveHub
from footfall.site import site_from_dict
from tests.conftest import EXAMPLE_SITE, ROOT
from tests.webkit import NOW

SITE = "dongsi"
DEVICES = ["door-main", "door-book-bar", "kiosk-hall", "door-nowhere"]
TOPICS = st.one_of(
    st.builds(lambda d, k: f"footfall/{SITE}/device/{d}/{k}", st.sampled_from(DEVICES), st.sampled_from(
        ["event", "status", "config", "cmd"])),
    st.sampled_from([f"footfall/{SITE}/server/cmd", f"footfall/{SITE}/alerts", f"footfall/{SITE}/schedule",
                     f"footfall/{SITE}/room/hall/state", f"footfall/{SITE}/room/moon/state", "footfall/other/alerts",
                     f"footfall/{SITE}/server/status", "footfall", "", "a/b/c/d/e/f"]),
    st.text(max_size=40),
)  # fmt: skip

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["in", "out", "crossing", "checkin", "help", "online", "offline", "hall", "republish-room",
                     format_ts(NOW), "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z"]),
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = ["v", "id", "seq", "ts", "type", "direction", "count", "purpose", "adults", "children", "room", "member",
        "activity", "clock", "state", "kind", "queue", "last_seq", "health", "version", "cmd", "alerts", "date",
        "items", "occupancy", "level", "name"]  # fmt: skip


@st.composite
def payloads(draw) -> bytes:
    """Bytes, JSON text of any value, protocol-shaped objects with random values, or deep nesting."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=300))
    if kind == 1:
        return json.dumps(draw(JSON)).encode()
    if kind == 2:
        depth = draw(st.integers(1, 3000))
        return (draw(st.sampled_from(['{"v":1,"health":', '{"room":"hall","x":', ""])) + "[" * depth).encode()
    base = {"v": 1, "id": "e1", "seq": 1, "ts": format_ts(NOW), "type": "crossing", "direction": "in",
            "state": "online", "room": "hall", "cmd": "republish-room", "alerts": [], "date": "2026-11-28",
            "items": []}  # fmt: skip
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=5)):
        base[key] = draw(JSON)
    text = json.dumps(base)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32"]))
    return text.encode(encoding) if kind == 3 else text.encode(encoding)[: draw(st.integers(0, len(text)))]


def load_site(data_dir: Path):
    site = site_from_dict(load_toml(EXAMPLE_SITE), str(EXAMPLE_SITE))
    return dataclasses.replace(site, server=dataclasses.replace(site.server, data_dir=str(data_dir)))


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def ingest():
    with tempfile.TemporaryDirectory() as tmp:
        site = load_site(Path(tmp))
        store = SqliteStore(site.db_path)
        yield Ingestor(site, store), store
        store.close()


@FUZZ
@given(batch=st.lists(st.tuples(TOPICS, payloads()), min_size=1, max_size=6))
def test_ingest_never_raises_and_accounts_for_every_message(ingest, batch):
    ingestor, store = ingest
    before = store.metrics()
    ingestor.process_guarded([Incoming(topic, payload) for topic, payload in batch], now=NOW)
    after = store.metrics()
    events = [(t, p) for t, p in batch if not t.endswith("/status") and not t.endswith("/server/cmd")]
    handled = sum(after.get(k, 0) - before.get(k, 0) for k in ("events", "duplicates", "dead_letters"))
    assert handled >= len(events)  # statuses and commands are stored or dead-lettered, not counted as events
    json.dumps(store.devices(), allow_nan=False)


@pytest.fixture(scope="module")
def hub():
    with tempfile.TemporaryDirectory() as tmp:
        yield LiveHub(load_site(Path(tmp)))  # never started: its handler is called directly


@FUZZ
@given(topic=TOPICS, payload=payloads())
def test_live_hub_only_ever_rejects_with_a_validation_error(hub, topic, payload):
    q = hub.subscribe()
    try:
        with contextlib.suppress(ValidationError):
            hub.take(topic, payload)
        hub._on_message(SimpleNamespace(topic=topic, payload=payload))  # the guard itself: never raises
        while not q.empty():
            json.dumps(q.get_nowait(), allow_nan=False)  # what the streams send is JSON
    finally:
        hub.unsubscribe(q)


@pytest.fixture(scope="module")
def feed():
    with tempfile.TemporaryDirectory() as tmp:
        config = load_kiosk_config(ROOT / "deploy/examples/kiosk.toml", env={})
        local = LocalState(Path(tmp) / "kiosk")
        yield Feed(config, local), local
        local.close()


@FUZZ
@given(topic=TOPICS, payload=payloads())
def test_kiosk_feed_never_raises(feed, topic, payload):
    f, local = feed
    f.take(topic, payload)
    f.take(f.schedule_topic, payload)
    json.dumps(local.room_list(), allow_nan=False)
    assert f.rejected == 0
