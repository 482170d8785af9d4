"""The wire contract: topics and messages (pure, no I/O)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from footfall import topics
from footfall.errors import ValidationError
from footfall.messages import Checkin, Crossing, decode_event, decode_status, level_for

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
BASE = {"v": 1, "id": "e1", "seq": 3, "ts": "2026-11-28T01:30:12.345Z", "type": "crossing", "direction": "in"}


def bad(field: str, **changes) -> tuple[str, dict]:
    body = {**BASE, **changes}
    return field, {k: v for k, v in body.items() if v is not ...}


def test_documented_example_decodes_and_round_trips():
    example = re.search(r"```json\n(.*?)\n```", DOC.read_text(), re.S).group(1)
    event = decode_event(example)
    assert isinstance(event, Crossing) and event.seq == 1207 and event.direction == "in"
    assert json.loads(event.encode()) == json.loads(example)


def test_checkin_with_optional_fields():
    event = decode_event(
        json.dumps(
            {
                **BASE,
                "type": "checkin",
                "purpose": "reading",
                "adults": 1,
                "children": 2,
                "activity": "a-7",
                "member": "202400174",
                "room": "book-bar",
            }
        )
    )
    assert isinstance(event, Checkin) and event.people == 3 and event.room == "book-bar"
    assert decode_event(event.encode()) == event


@pytest.mark.parametrize(
    ("field", "body"),
    [
        bad("v", v=2),
        bad("id", id=""),
        bad("id", id="x" * 65),
        bad("seq", seq=-1),
        bad("seq", seq="7"),
        bad("seq", seq=True),
        bad("ts", ts="yesterday"),
        bad("ts", ts="2026-11-28T01:30:12"),
        bad("type", type="teleport"),
        bad("direction", direction="up"),
        bad("count", count=0),
        bad("count", count=21),
        bad("clock", clock="maybe"),
        bad("direction", direction=...),
        bad("purpose", type="checkin", purpose="shopping", adults=1, children=0),
        bad("adults", type="checkin", purpose="other", adults=0, children=0),
        bad("children", type="checkin", purpose="other", adults=1, children=51),
        bad("room", type="checkin", purpose="other", adults=1, children=0, room="Book Bar"),
    ],
)
def test_bad_fields_are_named(field, body):
    with pytest.raises(ValidationError) as info:
        decode_event(json.dumps(body))
    assert info.value.field == field


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"[1,2]", b"null", b"{" + b" " * 5000 + b"}"])
def test_bad_payloads(payload):
    with pytest.raises(ValidationError) as info:
        decode_event(payload)
    assert info.value.field == "payload"


def test_status_and_levels():
    status = decode_status(b'{"v":1,"state":"online","kind":"counter","queue":3,"health":{"sensor":"ok"}}')
    assert status.queue == 3 and status.health == {"sensor": "ok"}
    assert decode_status(b'{"v":1,"state":"offline"}').state == "offline"
    assert [level_for(n, 40) for n in (0, 31, 32, 39, 40, 45)] == ["ok", "ok", "busy", "busy", "full", "full"]


def test_topics_build_and_parse():
    assert topics.device_event("dongsi", "door-main") == "footfall/dongsi/device/door-main/event"
    parsed = topics.parse("footfall/dongsi/room/book-bar/state")
    assert (parsed.site, parsed.kind, parsed.name) == ("dongsi", "state", "book-bar")
    assert topics.parse("ff/x/schedule", prefix="ff").kind == "schedule"
    for topic in ("footfall/dongsi/device/Door/event", "other/dongsi/schedule", "footfall/dongsi/device/x/y"):
        with pytest.raises(ValidationError):
            topics.parse(topic)
