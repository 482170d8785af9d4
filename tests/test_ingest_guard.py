"""Ingest survives any payload (#10 item 1, #11 item 7): each poison message of the hostile test is dead-lettered
with topic, excerpt and reason, and counting goes on. Real SQLite files; the MQTT path is in test_ingest_poison."""

from __future__ import annotations

import dataclasses
import json

import pytest

from footfall.clock import format_ts
from footfall.errors import ValidationError
from footfall.messages import decode_event, decode_status, load_json, nesting_depth
from footfall.server.ingest import Incoming, Ingestor
from footfall.server.store import Tx
from tests.webkit import NOW

EVENT = "footfall/dongsi/device/door-main/event"
STATUS = "footfall/dongsi/device/door-main/status"
KIOSK_EVENT = "footfall/dongsi/device/kiosk-hall/event"
CMD = "footfall/dongsi/server/cmd"


def crossing(event_id: str, seq: int = 0, **fields) -> dict:
    return {
        "v": 1,
        "id": event_id,
        "seq": seq,
        "ts": format_ts(NOW),
        "type": "crossing",
        "direction": "in",
        **fields,
    }


def status(**fields) -> dict:
    return {"v": 1, "state": "online", "kind": "counter", "queue": 0, "last_seq": 1, **fields}


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def raw(obj: dict, **replace: str) -> bytes:
    """JSON text of obj, with some values replaced by raw JSON text (NaN, huge ints, deep nesting)."""
    text = json.dumps({**obj, **{k: f"@@{k}@@" for k in replace}})
    for key, value in replace.items():
        text = text.replace(f'"@@{key}@@"', value)
    return text.encode()


# Each seen by the hostile tester, with otherwise valid fields; and the two holes of #11 item 7.
POISON = {
    "seq 2**63": (EVENT, raw(crossing("p1"), seq="9223372036854775808")),
    "ts year 1 east of UTC": (EVENT, json.dumps(crossing("p2", ts="0001-01-01T00:00:00+01:00")).encode()),
    "1500-deep array": (EVENT, raw(crossing("p3"), direction=deep(1500))),
    "status queue 10**30": (STATUS, raw(status(), queue=str(10**30))),
    "status health 1500 deep": (STATUS, raw(status(), health='{"a":' + deep(1500) + "}")),
    "status health NaN": (STATUS, raw(status(), health='{"temp": NaN}')),
    "status health Infinity": (STATUS, raw(status(), health='{"temp": -Infinity}')),
    "float overflow": (STATUS, raw(status(), health='{"temp": 1e999}')),
    "ts year 9999": (EVENT, json.dumps(crossing("p4", ts="9999-12-31T23:59:59.999Z")).encode()),
    "checkin room not in the site": (
        KIOSK_EVENT,
        json.dumps(
            {
                "v": 1,
                "id": "k1",
                "seq": 1,
                "ts": format_ts(NOW),
                "type": "checkin",
                "purpose": "reading",
                "adults": 1,
                "children": 0,
                "room": "moon-base",
            }
        ).encode(),
    ),  # fmt: skip
    "UTF-16": (EVENT, json.dumps(crossing("p5")).encode("utf-16")),
    "UTF-16 without BOM": (EVENT, json.dumps(crossing("p6")).encode("utf-16-le")),
    "cmd room is a list": (CMD, b'{"cmd":"republish-room","room":[]}'),
    "cmd room is an object": (CMD, b'{"cmd":"republish-room","room":{"a":1}}'),
    "cmd not an object": (CMD, b"[1,2]"),
}


@pytest.fixture
def ingestor(site, store):
    return Ingestor(site, store)


def valid_crossings(n: int, start: int = 0) -> list[Incoming]:
    return [Incoming(EVENT, json.dumps(crossing(f"ok-{i}", i)).encode()) for i in range(start, start + n)]


@pytest.mark.parametrize("name", POISON)
def test_each_poison_message_is_dead_lettered_and_counting_goes_on(ingestor, store, name):
    topic, payload = POISON[name]
    ingestor.process_guarded([Incoming(topic, payload)], NOW)
    ingestor.process_guarded(valid_crossings(20), NOW)
    assert store.count("events") == 20
    letters = store.dead_letters()
    assert len(letters) == 1, name
    assert letters[0]["topic"] == topic and letters[0]["reason"] and letters[0]["size"] == len(payload)
    assert letters[0]["excerpt"] == payload[:256].decode("utf-8", errors="replace")
    json.dumps(store.devices(), allow_nan=False)  # what /api/v1/devices serves is JSON


def test_all_poison_in_one_batch_with_valid_crossings(ingestor, store):
    batch = [Incoming(topic, payload) for topic, payload in POISON.values()]
    batch[3:3] = valid_crossings(10)
    batch += valid_crossings(10, start=10)
    ingestor.process_guarded(batch, NOW)
    assert store.count("events") == 20
    assert store.count("dead_letters") == len(POISON)
    assert store.metrics()["dead_letters"] == len(POISON)
    hall = store.rooms_live()["hall"]
    assert hall.entries == 20


def test_reasons_name_the_problem(ingestor, store):
    for topic, payload in POISON.values():
        ingestor.process_guarded([Incoming(topic, payload)], NOW)
    reasons = [row["reason"] for row in reversed(store.dead_letters())]
    expected = [
        "64 bits", "ts:", "nested more than", "64 bits", "nested more than", "NaN", "Infinity", "out of range",
        "ts: must be between", "room 'moon-base' is not in the site file", "not UTF-8", "payload: not JSON",
        "room: must be a room", "room: must be a room", "must be a JSON object",
    ]  # fmt: skip
    assert len(reasons) == len(expected)
    for reason, part in zip(reasons, expected, strict=True):
        assert part in reason


def test_a_valid_checkin_room_and_command_still_work(ingestor, store):
    checkin = {"v": 1, "id": "k2", "seq": 2, "ts": format_ts(NOW), "type": "checkin", "purpose": "reading",
               "adults": 1, "children": 0, "room": "book-bar"}  # fmt: skip
    ingestor.process_guarded([Incoming(KIOSK_EVENT, json.dumps(checkin).encode())], NOW)
    assert store.count("events") == 1 and store.count("dead_letters") == 0
    ingestor.process_guarded([Incoming(CMD, b'{"v":1,"cmd":"republish-room","room":"hall"}')], NOW)
    assert ingestor.take_requested_rooms() == {"hall"} and store.count("dead_letters") == 0


def test_an_unexpected_failure_dead_letters_that_message_only(ingestor, store, monkeypatch):
    """A bug in handling one message (not a validation error) dead-letters it; the rest of the batch is stored."""
    real = ingestor._event  # an event's handling, before the transaction and (if that fails) in it

    def flaky(item, device, now, live_day):
        if b"boom" in item.payload:
            raise ZeroDivisionError("a bug")
        return real(item, device, now, live_day)

    monkeypatch.setattr(ingestor, "_event", flaky)
    batch = (
        valid_crossings(5)
        + [Incoming(EVENT, json.dumps(crossing("boom", 99)).encode())]
        + valid_crossings(5, 5)
    )
    ingestor.process_guarded(batch, NOW)
    assert store.count("events") == 10
    [letter] = store.dead_letters()
    assert "ZeroDivisionError" in letter["reason"]


def test_a_failing_batch_is_stored_one_by_one(ingestor, store, monkeypatch):
    """A failure while storing the batch (after validation) falls back to one message per transaction."""

    store_them = Tx.insert_events

    def insert_events(self, rows):
        if any(r["id"] == "ok-3" for r in rows):
            raise TypeError("cannot bind")
        store_them(self, rows)

    monkeypatch.setattr(Tx, "insert_events", insert_events)
    ingestor.process_guarded(valid_crossings(6), NOW)
    assert store.count("events") == 5
    [letter] = store.dead_letters()
    assert "could not store" in letter["reason"] and '"ok-3"' in letter["excerpt"]


# --- the bounds themselves, on the pure decoder ---------------------------------------------------------------


def test_depth_scan_ignores_brackets_inside_strings():
    assert nesting_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [1]}') == 2
    assert nesting_depth('{"a": "\\"[[[["}') == 1
    assert load_json('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}


@pytest.mark.parametrize(
    "text",
    ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e400}', '{"a": 9223372036854775808}',
     '{"a": -9223372036854775809}', deep(17)],
)  # fmt: skip
def test_load_json_rejects(text):
    with pytest.raises(ValidationError):
        load_json(text)


def test_load_json_keeps_the_limits_inclusive():
    assert load_json('{"a": 9223372036854775807, "b": -9223372036854775808}')["a"] == 2**63 - 1
    assert load_json(deep(16)) == json.loads(deep(16))


def test_status_fields_are_bounded():
    with pytest.raises(ValidationError, match="queue"):
        decode_status(json.dumps(status(queue=-1)))
    with pytest.raises(ValidationError, match="version"):
        decode_status(json.dumps(status(version="v" * 65)))
    assert decode_status(json.dumps(status(queue=2**63 - 1))).queue == 2**63 - 1


def test_event_time_window():
    assert decode_event(json.dumps(crossing("a", ts="1970-01-01T00:00:00.000Z"))).ts.year == 1970
    with pytest.raises(ValidationError, match="ts"):
        decode_event(json.dumps(crossing("a", ts="1969-12-31T23:59:59.999Z")))
    with pytest.raises(ValidationError, match="ts"):
        decode_event(json.dumps(crossing("a", ts="2100-01-01T00:00:00.000Z")))


# --- dead letters are bounded (#10 item 3) --------------------------------------------------------------------


def junk(n: int, device: str = "door-main") -> list[Incoming]:
    return [Incoming(f"footfall/dongsi/device/{device}/event", f"junk {i}".encode()) for i in range(n)]


def test_dead_letters_per_device_rate_counts_the_rest(site, store):
    ingestor = Ingestor(site, store)  # default: 60 stored per device per minute
    ingestor.process_guarded(junk(500), NOW)
    ingestor.process_guarded(junk(5, "door-book-bar") + junk(3, "door-nowhere"), NOW)
    assert store.count("dead_letters") == 60 + 5 + 3
    counts = {(c["device"], c["reason"]): (c["stored"], c["dropped"]) for c in store.dead_letter_counts()}
    assert counts == {("door-main", "payload"): (60, 440), ("door-book-bar", "payload"): (5, 0),
                      ("(unknown)", "topic"): (3, 0)}  # fmt: skip
    metrics = store.metrics()
    assert metrics["dead_letters"] == 508 and metrics["dead_letters_dropped"] == 440
    # Counting goes on for the device that sent the junk.
    ingestor.process_guarded(valid_crossings(3), NOW)
    assert store.count("events") == 3


def test_the_rate_window_moves_on(site, store):
    ingestor = Ingestor(site, store)
    limit = ingestor.dead_letter_limit
    assert all(limit.allow("d", now=0.0) for _ in range(60)) and not limit.allow("d", now=59.0)
    assert limit.allow("d", now=60.0)


def test_dead_letter_table_keeps_the_newest(site, store):
    small = dataclasses.replace(
        site,
        server=dataclasses.replace(site.server, dead_letters_max=50, dead_letters_per_device_minute=10**6),
    )
    ingestor = Ingestor(small, store)
    for start in range(0, 120, 40):
        ingestor.process_guarded(
            [Incoming(EVENT, f"junk {i}".encode()) for i in range(start, start + 40)], NOW
        )
    letters = store.dead_letters(limit=1000)
    assert len(letters) == 50
    assert [r["excerpt"] for r in letters] == [f"junk {i}" for i in range(119, 69, -1)]
    assert store.metrics()["dead_letters_pruned"] == 70
